"""zstack-mcp-server 0.1.7 from PyPI, unchanged, driven as a real MCP client over stdio (the
`mcp` package's stdio client) against the real binary, and the legacy RPC envelope it speaks.

The MCP server is started the way its users start it: the ``zstack-mcp-server`` console
script, stdio transport (its default), with ``ZSTACK_API_URL`` (ims's base URL; the client
appends ``/zstack/api/``), ``ZSTACK_ACCOUNT``/``ZSTACK_PASSWORD`` (the ims admin, clear text:
the client sends its SHA-512 in ``APILogInByAccountMsg``) and ``ZSTACK_ALLOW_ALL_API=true``
(writes allowed). Its ``execute_api`` tool logs in on first use, then POSTs
``{"org.zstack.header.image.APIQueryImageMsg": {"conditions": [...], "limit": 50,
"replyWithCount": true, "session": {"uuid": …}}}`` and the like to ``/zstack/api/``, and polls
``/zstack/api/result/{uuid}`` while the envelope's ``state`` is not ``Done``.

Checked: the login works (and a wrong password comes back as ID.1000); QueryImage lists the
image made through Glance with its name, size and md5Sum; QueryVolume lists a volume made
through the REST API; CreateDataVolumeTemplateFromVolume makes a template whose inventory,
OpenStack view and bytes are right, on the synchronous path and (on a server with no sync
wait) through the RPC job polling; errors reach the client with their ZStack code.

Nothing here skips: a missing route or a missing client fails.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from conftest import VENV_BIN, md5, unique
from test_zstack_rest import ASYNC_SERVER_ENV, IMAGE_SIZE, make_world, raw_content
from zstack_client import ims_uuid, query_one, sha512_hex

ZSTACK_MCP = VENV_BIN / "zstack-mcp-server"
CALL_TIMEOUT = 180.0


class McpZStack:
    """A running zstack-mcp-server, with an initialised MCP client session over its stdio.

    The session lives in one asyncio task on a thread of its own (the stdio client's
    context managers must be entered and left by the same task); tests call tools from
    the test thread through :meth:`execute`.
    """

    def __init__(self, env: dict[str, str], errlog: Path):
        from mcp import ClientSession, StdioServerParameters
        from mcp.client.stdio import stdio_client

        assert ZSTACK_MCP.is_file(), (f"{ZSTACK_MCP} is missing: scripts/venv installs "
                                      "zstack-mcp-server (scripts/requirements-interop.txt)")
        self.errlog_path = errlog
        self._errlog = open(errlog, "w")
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._ready: concurrent.futures.Future = concurrent.futures.Future()
        params = StdioServerParameters(command=str(ZSTACK_MCP), args=[], env=env)

        async def run():
            self._stop = asyncio.Event()
            try:
                async with stdio_client(params, errlog=self._errlog) as (read, write):
                    async with ClientSession(read, write) as session:
                        init = await session.initialize()
                        tools = await session.list_tools()
                        self.session = session
                        self._ready.set_result((init, [t.name for t in tools.tools]))
                        await self._stop.wait()
            except BaseException as e:
                if not self._ready.done():
                    self._ready.set_exception(e)
                raise

        self._main = asyncio.run_coroutine_threadsafe(run(), self.loop)
        try:
            self.init, self.tools = self._ready.result(timeout=60)
        except BaseException:
            self.close()
            raise AssertionError(f"zstack-mcp-server did not start:\n{self.stderr()}")

    def stderr(self) -> str:
        self._errlog.flush()
        return self.errlog_path.read_text(errors="replace")[-4000:]

    def call_tool(self, name: str, arguments: dict):
        fut = asyncio.run_coroutine_threadsafe(self.session.call_tool(name, arguments),
                                               self.loop)
        return fut.result(timeout=CALL_TIMEOUT)

    def execute(self, api_name: str, parameters: dict) -> dict:
        """``execute_api``: the JSON the tool answers (``success``, ``result`` or ``error``
        and ``code``)."""
        res = self.call_tool("execute_api", {"api_name": api_name, "parameters": parameters})
        assert not res.isError, f"execute_api {api_name} raised: {res.content}\n{self.stderr()}"
        text = res.content[0].text
        try:
            return json.loads(text)
        except ValueError:
            raise AssertionError(f"execute_api {api_name}: not JSON: {text!r}")

    def ok(self, api_name: str, parameters: dict) -> dict:
        out = self.execute(api_name, parameters)
        assert out.get("success") is True, (f"execute_api {api_name} failed: "
                                            f"{json.dumps(out, ensure_ascii=False)[:3000]}\n"
                                            f"{self.stderr()}")
        return out

    def close(self) -> None:
        if getattr(self, "_stop", None) is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        try:
            self._main.result(timeout=30)
        except BaseException:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self._errlog.close()


def mcp_env(server, password: str | None = None, allow_all: bool = True) -> dict[str, str]:
    admin = server.clouds["ims"]
    return {
        "ZSTACK_API_URL": server.url,
        "ZSTACK_ACCOUNT": admin.username,
        "ZSTACK_PASSWORD": admin.password if password is None else password,
        "ZSTACK_ALLOW_ALL_API": "true" if allow_all else "false",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


@pytest.fixture(scope="module")
def world(ims, tmp_path_factory):
    return make_world(ims, tmp_path_factory.mktemp("zstack-mcp"))


@pytest.fixture(scope="module")
def mcp_client(world, tmp_path_factory):
    client = McpZStack(mcp_env(world.server),
                       tmp_path_factory.mktemp("mcp") / "zstack-mcp-server.stderr")
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def async_world(ims_factory, tmp_path_factory):
    server = ims_factory("zstack-mcp-async", ASYNC_SERVER_ENV)
    return make_world(server, tmp_path_factory.mktemp("zstack-mcp-async"))


def test_server_starts_and_offers_execute_api(mcp_client):
    assert mcp_client.init.serverInfo.name == "zstack_mcp_server"
    assert "execute_api" in mcp_client.tools, mcp_client.tools


def test_login_and_query_image(mcp_client, world):
    w = world
    out = mcp_client.ok("QueryImage", {"conditions": [
        {"name": "uuid", "op": "=", "value": w.image_hex}]})
    [inv] = out["result"]["inventories"]
    assert out["resultCount"] == 1 and out["totalCount"] == 1, out
    assert inv["uuid"] == w.image_hex and inv["name"] == w.image_name
    assert inv["size"] == IMAGE_SIZE and inv["md5Sum"] == md5(w.data)
    assert inv["mediaType"] == "DataVolumeTemplate" and inv["status"] == "Ready"
    # The same image as the REST dialect shows it.
    assert inv == query_one(w.zs, "images", w.image_hex)
    # RPC operators: like, and a condition on the size.
    out = mcp_client.ok("QueryImage", {"conditions": [
        {"name": "name", "op": "like", "value": w.image_name[:-3] + "%"},
        {"name": "size", "op": ">=", "value": str(IMAGE_SIZE)}]})
    assert [i["uuid"] for i in out["result"]["inventories"]] == [w.image_hex], out


def test_query_volume(mcp_client, world):
    w = world
    vol = w.new_volume()
    out = mcp_client.ok("QueryVolume", {"conditions": [
        {"name": "uuid", "op": "=", "value": vol["uuid"]}]})
    [inv] = out["result"]["inventories"]
    assert inv["name"] == vol["name"] and inv["size"] == IMAGE_SIZE
    assert inv["status"] == "Ready" and inv["type"] == "Data"
    assert inv == query_one(w.zs, "volumes", vol["uuid"])
    # Every volume of the account, as the tool lists them by default (limit 50).
    out = mcp_client.ok("QueryVolume", {})
    assert vol["uuid"] in [i["uuid"] for i in out["result"]["inventories"]]


def check_mcp_template(w, out: dict, vol: dict, name: str, expected: bytes,
                       workdir: Path) -> dict:
    inv = out["result"]["inventory"]
    assert inv["name"] == name and inv["mediaType"] == "DataVolumeTemplate"
    assert inv["status"] == "Ready" and inv["url"] == f"volume://{vol['uuid']}"
    assert inv["size"] == IMAGE_SIZE
    assert inv["backupStorageRefs"][0]["backupStorageUuid"] == w.bs["uuid"]
    assert inv == query_one(w.zs, "images", inv["uuid"])
    glance = w.server.get_image(ims_uuid(inv["uuid"]))
    assert glance["status"] == "active" and glance["checksum"] == inv["md5Sum"]
    saved = workdir / "template.saved"
    w.server.osc("image", "save", "--file", str(saved), ims_uuid(inv["uuid"]))
    assert md5(saved.read_bytes()) == inv["md5Sum"]
    assert raw_content(saved, inv["format"], workdir) == expected
    return inv


def test_create_template_from_volume(mcp_client, world, tmp_path):
    w = world
    vol, expected = w.written_volume(tmp_path)
    name = unique("mcp-tpl")
    out = mcp_client.ok("CreateDataVolumeTemplateFromVolume", {
        "name": name, "description": "through zstack-mcp-server", "volumeUuid": vol["uuid"],
        "backupStorageUuids": [w.bs["uuid"]]})
    inv = check_mcp_template(w, out, vol, name, expected, tmp_path)
    assert inv["description"] == "through zstack-mcp-server"
    # And the tool finds it.
    out = mcp_client.ok("QueryImage", {"conditions": [
        {"name": "name", "op": "=", "value": name}]})
    assert [i["uuid"] for i in out["result"]["inventories"]] == [inv["uuid"]]


def test_errors_reach_the_client_with_their_code(mcp_client, world):
    name = unique("mcp-bad")
    out = mcp_client.execute("CreateDataVolumeTemplateFromVolume", {
        "name": name, "volumeUuid": uuid.uuid4().hex})
    assert out.get("success") is False and out.get("code") == "SYS.1003", out
    # Nothing was made (nor left Creating).
    out = mcp_client.ok("QueryImage", {"conditions": [{"name": "name", "op": "=", "value": name}]})
    assert out["result"]["inventories"] == [], out
    out = mcp_client.execute("QueryImage", {"conditions": [
        {"name": "nosuchfield", "op": "=", "value": "1"}]})
    assert out.get("success") is False and out.get("code") == "SYS.1007", out


def test_wrong_password_is_id_1000(world, tmp_path):
    client = McpZStack(mcp_env(world.server, password="not-the-password"),
                       tmp_path / "stderr")
    try:
        out = client.execute("QueryImage", {"conditions": []})
        assert out.get("success") is False and out.get("code") == "ID.1000", out
    finally:
        client.close()


def test_rpc_job_polling_on_a_server_without_sync_wait(async_world, tmp_path):
    """With no sync wait the RPC envelope answers ``Processing`` at once; the client polls
    ``/zstack/api/result/{uuid}`` until ``Done``, and gets the same inventory."""
    w = async_world
    client = McpZStack(mcp_env(w.server), tmp_path / "stderr")
    try:
        vol, expected = w.written_volume(tmp_path)
        name = unique("mcp-async")
        out = client.ok("CreateDataVolumeTemplateFromVolume", {
            "name": name, "volumeUuid": vol["uuid"]})
        check_mcp_template(w, out, vol, name, expected, tmp_path)
    finally:
        client.close()


# ---------------------------------------------------------------------------------------
# the RPC envelope itself, as the client parses it


def rpc(server, body: dict) -> requests.Response:
    return requests.post(f"{server.url}/zstack/api/", json=body, timeout=60)


def rpc_login(server) -> str:
    admin = server.clouds["ims"]
    r = rpc(server, {"org.zstack.header.identity.APILogInByAccountMsg": {
        "accountName": admin.username, "password": sha512_hex(admin.password)}})
    assert r.status_code == 200, r.text
    env = r.json()
    assert env["state"] == "Done" and isinstance(env["result"], str), env
    [(reply_class, reply)] = json.loads(env["result"]).items()
    assert reply["success"] is True, reply
    return reply["inventory"]["uuid"]


def test_rpc_envelope_sync_and_polled(async_world):
    w = async_world
    sid = rpc_login(w.server)
    # A query: Done at once, result a JSON string holding {"<Reply class>": {... success}}.
    r = rpc(w.server, {"org.zstack.header.image.APIQueryImageMsg": {
        "conditions": [{"name": "uuid", "op": "=", "value": w.image_hex}],
        "session": {"uuid": sid}}})
    assert r.status_code == 200, r.text
    env = r.json()
    assert set(env) >= {"uuid", "state", "result"} and env["state"] == "Done", env
    assert "error" not in env, env
    [(reply_class, reply)] = json.loads(env["result"]).items()
    assert reply_class.endswith("APIQueryImageReply"), reply_class
    assert reply["success"] is True and reply["inventories"][0]["uuid"] == w.image_hex
    # A mutating call with no sync wait: Processing, then Done at /zstack/api/result/{uuid}
    # (polled without any auth header, as the client does).
    vol = w.new_volume()
    r = rpc(w.server, {"org.zstack.header.image.APICreateDataVolumeTemplateFromVolumeMsg": {
        "name": unique("rpc"), "volumeUuid": vol["uuid"], "session": {"uuid": sid}}})
    assert r.status_code == 200, r.text
    env = r.json()
    assert env["state"] == "Processing" and env["uuid"], env
    deadline = time.monotonic() + 120
    while True:
        p = requests.get(f"{w.server.url}/zstack/api/result/{env['uuid']}", timeout=60)
        assert p.status_code == 200, p.text
        polled = p.json()
        assert "state" in polled, polled  # without it the client stops polling
        if polled["state"] == "Done":
            break
        assert polled["state"] == "Processing", polled
        assert time.monotonic() < deadline, "RPC job did not finish"
        time.sleep(0.5)
    [(event_class, event)] = json.loads(polled["result"]).items()
    assert event_class.endswith("APICreateDataVolumeTemplateFromVolumeEvent"), event_class
    assert event["success"] is True and event["inventory"]["status"] == "Ready", event
    # An invalid session: Done, success false, ID.1001 (the client re-logs in on it).
    r = rpc(w.server, {"org.zstack.header.image.APIQueryImageMsg": {
        "conditions": [], "session": {"uuid": uuid.uuid4().hex}}})
    env = r.json()
    [(_, reply)] = json.loads(env["result"]).items()
    assert reply["success"] is False and reply["error"]["code"] == "ID.1001", reply
