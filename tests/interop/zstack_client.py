"""A small ZStack REST v1 client that speaks the wire protocol of ZStack's Java SDK.

It is written from the protocol description (docs/API-COMPAT.md, ZStack section, and the
project's ZStack reference, section 7), not from the SDK's code, and does what the SDK does
on the wire, so that a test passing through it says something about real SDK users:

- URLs are ``http://host:port/<context>/v1/<path>`` (context ``zstack``, as on a real
  management node).
- Every call carries ``X-Job-UUID`` (a fresh random 32-hex id, the SDK sends one even on
  synchronous calls), ``X-JSON-Schema: true`` and, once logged in,
  ``Authorization: OAuth <session uuid>`` (one space).
- POST and PUT send JSON ``{<parameterName>: {...params}}``: ``params`` for creates, the
  action name (``logInByAccount``, ``changeImageState``, ...) for PUT actions. The SDK puts
  ``systemTags``/``userTags`` inside that map, and leaves out the parameters that fill the
  URL's variables.
- GET and DELETE send their parameters in the query string (lists as repeated keys).
- Query APIs send one ``q=`` per condition, ``limit``, ``start``, ``count``,
  ``replyWithCount``, ``sort=%2Bfield`` / ``sort=-field`` (an unescaped ``+`` would decode to
  a space) and ``fields=a,b``.
- 200/204 are results; 202 means "poll ``location``": the SDK cuts the location at the
  literal ``/zstack/v1/api-jobs`` and puts its own base URL in front (so a server behind a
  different host still works, and a location without that string fails), then polls with GET
  every second until the status is not 202. 200 and 503 are final; 503 carries
  ``{"error": ErrorCode}``; any other status is the SDK's ``sdk.1000``.

Passwords go over the wire as the lowercase hex SHA-512 of the clear text (the caller of the
Java SDK hashes; :meth:`ZStackClient.login` does it here).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import quote

import requests

# The literal the Java and Go SDKs split a job location on.
JOB_PATH = "/zstack/v1/api-jobs"


def sha512_hex(password: str) -> str:
    """What ZStack clients send as ``password``."""
    return hashlib.sha512(password.encode("utf-8")).hexdigest()


def zstack_uuid(ims_id: str) -> str:
    """An ims id (hyphenated UUID) as ZStack writes it: 32 lowercase hex, no dashes."""
    return ims_id.replace("-", "").lower()


def ims_uuid(zs_uuid: str) -> str:
    """A ZStack uuid (32 hex) as ims (and the OpenStack API) write it."""
    return str(uuid.UUID(hex=zs_uuid))


@dataclass
class Reply:
    """What one SDK call ended with.

    ``status`` is the final HTTP status (after polling), ``body`` its JSON (or text when it
    is not JSON), ``first_status`` the status of the call itself (200 when the server
    answered synchronously, 202 when it handed out a job), ``location`` the job URL it gave,
    ``polls`` how many times the job URL was read and ``job_uuid`` the X-Job-UUID sent.
    """

    status: int
    body: Any
    first_status: int
    job_uuid: str
    location: str | None = None
    polls: int = 0
    text: str = ""
    headers: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in (200, 204)

    @property
    def error(self) -> dict | None:
        """The ErrorCode of a 503 (``{"error": {...}}``), else None."""
        if self.status == 503 and isinstance(self.body, dict):
            return self.body.get("error")
        return None

    @property
    def inventory(self) -> dict:
        assert self.ok, f"not a success: {self.status} {self.text[:2000]}"
        return self.body["inventory"]

    @property
    def inventories(self) -> list[dict]:
        assert self.ok, f"not a success: {self.status} {self.text[:2000]}"
        return self.body["inventories"]

    def expect_error(self, code: str) -> dict:
        """Asserts a 503 with ErrorCode `code` (with its description and details) and returns
        the ErrorCode."""
        assert self.status == 503, f"expected 503 {code}, got {self.status}: {self.text[:2000]}"
        err = self.error
        assert isinstance(err, dict), f"503 without an error object: {self.text[:2000]}"
        assert err.get("code") == code, f"expected {code}, got {err}"
        assert err.get("description"), f"ErrorCode without description: {err}"
        return err


class ZStackError(AssertionError):
    pass


class ZStackClient:
    """One client, like one ``ZSClient`` configuration plus a session.

    `base_url` is ``http://host:port``; `context` the servlet context (``zstack``).
    `poll_interval` and `poll_timeout` are the SDK's polling interval (1 s) and how long to
    poll before failing (the SDK's default is 3 h; tests want less).
    """

    def __init__(self, base_url: str, context: str = "zstack", poll_interval: float = 1.0,
                 poll_timeout: float = 300.0, http_timeout: float = 120.0):
        self.base_url = base_url.rstrip("/")
        self.context = context.strip("/")
        self.poll_interval = poll_interval
        self.poll_timeout = poll_timeout
        self.http_timeout = http_timeout
        self.session_uuid: str | None = None
        self.http = requests.Session()
        # Loopback servers only: never go through a proxy from the environment.
        self.http.trust_env = False

    # ------------------------------------------------------------------ URLs and headers

    def url(self, path: str) -> str:
        prefix = f"/{self.context}" if self.context else ""
        return f"{self.base_url}{prefix}/v1/{path.lstrip('/')}"

    def headers(self, job_uuid: str, session: str | None | bool = True) -> dict[str, str]:
        h = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Job-UUID": job_uuid,
            "X-JSON-Schema": "true",
        }
        sid = self.session_uuid if session is True else (session or None)
        if sid:
            h["Authorization"] = f"OAuth {sid}"
        return h

    # ------------------------------------------------------------------ the one call path

    def call(self, method: str, path: str, *, parameter_name: str | None = None,
             params: dict | None = None, query: Iterable[tuple[str, Any]] | dict | None = None,
             system_tags: list[str] | None = None, user_tags: list[str] | None = None,
             raw_body: str | bytes | None = None, session: str | None | bool = True,
             job_uuid: str | None = None, poll: bool = True,
             extra_headers: dict | None = None) -> Reply:
        """One API call as the SDK makes it, polling a 202 to its end when `poll`.

        `path` is below ``/v1/`` with its URL variables already filled in. For POST/PUT the
        body is ``{parameter_name: params + tags}`` (tags inside, like the SDK) unless
        `raw_body` gives the exact bytes (e.g. the seed's curl example). For GET/DELETE,
        `query` (pairs or a dict; list values repeat the key) is the query string.
        `session`: True = the logged-in session, a string = that session, None/False = none.
        """
        method = method.upper()
        job_uuid = job_uuid or uuid.uuid4().hex
        headers = self.headers(job_uuid, session)
        headers.update(extra_headers or {})
        url = self.url(path)
        data = None
        if method in ("GET", "DELETE"):
            qs = encode_query(query)
            if qs:
                url = f"{url}?{qs}"
            headers.pop("Content-Type", None)
        elif raw_body is not None:
            data = raw_body if isinstance(raw_body, bytes) else raw_body.encode("utf-8")
        else:
            inner = dict(params or {})
            if system_tags is not None:
                inner["systemTags"] = system_tags
            if user_tags is not None:
                inner["userTags"] = user_tags
            assert parameter_name, "POST/PUT need a parameter name (params or the action name)"
            data = json.dumps({parameter_name: inner}).encode("utf-8")
        r = self.http.request(method, url, headers=headers, data=data,
                              timeout=self.http_timeout)
        reply = to_reply(r, first_status=r.status_code, job_uuid=job_uuid)
        if r.status_code == 202 and poll:
            return self.poll(reply)
        return reply

    def poll(self, reply: Reply) -> Reply:
        """Polls the job of a 202 `reply` every `poll_interval` until it is not 202."""
        body = reply.body if isinstance(reply.body, dict) else {}
        location = body.get("location")
        if not isinstance(location, str) or JOB_PATH not in location:
            raise ZStackError(f"202 without a usable location (the SDK splits on {JOB_PATH!r}): "
                              f"{reply.text[:2000]}")
        # Like the SDK: keep what follows the job path, put our own base in front.
        tail = location.split(JOB_PATH, 1)[1]
        job_url = f"{self.base_url}{JOB_PATH}{tail}"
        deadline = time.monotonic() + self.poll_timeout
        polls = 0
        while True:
            time.sleep(self.poll_interval)
            headers = {"X-JSON-Schema": "true"}
            if self.session_uuid:
                headers["Authorization"] = f"OAuth {self.session_uuid}"
            r = self.http.get(job_url, headers=headers, timeout=self.http_timeout)
            polls += 1
            if r.status_code != 202:
                final = to_reply(r, first_status=reply.first_status, job_uuid=reply.job_uuid)
                final.location = location
                final.polls = polls
                return final
            if time.monotonic() > deadline:
                raise ZStackError(f"job {location} still running after {self.poll_timeout}s "
                                  "(the SDK's sdk.1001)")

    # ------------------------------------------------------------------ typed helpers

    def create(self, path: str, params: dict, **kw) -> Reply:
        """A create API: ``POST`` with ``{"params": {...}}``."""
        return self.call("POST", path, parameter_name="params", params=params, **kw)

    def action(self, path: str, action: str, params: dict | None = None, **kw) -> Reply:
        """A PUT action: ``{"<action>": {...}}``."""
        return self.call("PUT", path, parameter_name=action, params=params or {}, **kw)

    def delete(self, path: str, query=None, **kw) -> Reply:
        return self.call("DELETE", path, query=query, **kw)

    def get(self, path: str, query=None, **kw) -> Reply:
        return self.call("GET", path, query=query, **kw)

    def query(self, path: str, conditions: Iterable[str] = (), *, limit: int | None = None,
              start: int | None = None, count: bool | None = None,
              reply_with_count: bool | None = None, sort: str | None = None,
              fields: Iterable[str] | None = None, **kw) -> Reply:
        """A Query API the way the SDK encodes it. `conditions` are ``name=value`` strings
        (``q=`` each); `sort` is ``+field``/``-field``; `fields` are joined with commas."""
        q: list[tuple[str, Any]] = [("q", c) for c in conditions]
        if limit is not None:
            q.append(("limit", limit))
        if start is not None:
            q.append(("start", start))
        if count is not None:
            q.append(("count", count))
        if reply_with_count is not None:
            q.append(("replyWithCount", reply_with_count))
        if sort is not None:
            q.append(("sort", sort))
        if fields is not None:
            q.append(("fields", ",".join(fields)))
        return self.get(path, query=q, **kw)

    # ------------------------------------------------------------------ sessions

    def login(self, account: str, password: str) -> dict:
        """LogInByAccount (``PUT /v1/accounts/login``, sync); keeps the session."""
        r = self.login_reply(account, password)
        assert r.status == 200, f"login as {account}: {r.status} {r.text[:2000]}"
        inv = r.body["inventory"]
        self.session_uuid = inv["uuid"]
        return inv

    def login_reply(self, account: str, password: str) -> Reply:
        return self.action("accounts/login", "logInByAccount",
                           {"accountName": account, "password": sha512_hex(password)},
                           session=None)

    def logout(self, session_uuid: str | None = None) -> Reply:
        sid = session_uuid or self.session_uuid
        r = self.delete(f"accounts/sessions/{sid}", session=None)
        if sid == self.session_uuid and r.ok:
            self.session_uuid = None
        return r

    def validate_session(self, session_uuid: str) -> Reply:
        return self.get(f"accounts/sessions/{session_uuid}/valid", session=None)


def encode_query(query) -> str:
    """``k=v&k=v2``: values percent-encoded with nothing left safe but unreserved characters,
    so ``+`` becomes ``%2B`` (as the SDK sends ``sort=%2Bfield``); list values repeat the key;
    booleans are ``true``/``false``."""
    if not query:
        return ""
    pairs = query.items() if isinstance(query, dict) else query
    out = []
    for k, v in pairs:
        values = v if isinstance(v, (list, tuple)) else [v]
        for item in values:
            if isinstance(item, bool):
                item = "true" if item else "false"
            out.append(f"{quote(str(k), safe='')}={quote(str(item), safe='')}")
    return "&".join(out)


def to_reply(r: requests.Response, first_status: int, job_uuid: str) -> Reply:
    text = r.text
    try:
        body = r.json() if text.strip() else {}
    except ValueError:
        body = text
    return Reply(status=r.status_code, body=body, first_status=first_status, job_uuid=job_uuid,
                 text=text, headers=dict(r.headers))


# ------------------------------------------------------------------------------------------
# Helpers shared by the ZStack interop tests (test_zstack_rest.py, test_zstack_mcp.py). They
# take a conftest ``Server`` (duck-typed: ``url``, ``data_dir``, ``clouds``, ``create_image``,
# ``upload``, ``get_image``) so that this module stays importable on its own.

# The ZStack date format (Gson's default for java.util.Date, US locale): "Jan 6, 2017 3:51:16 AM".
ZSTACK_DATE = r"^[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2}:\d{2} (AM|PM)$"


def admin_client(server, **kw) -> ZStackClient:
    """A client logged in as the ZStack admin account, which is the ims admin."""
    c = server.clouds["ims"]
    zs = ZStackClient(server.url, **kw)
    zs.login(c.username, c.password)
    return zs


def user_client(server, cloud: str, **kw) -> ZStackClient:
    """A client logged in as the ims user of `cloud` (a ZStack account is an ims user)."""
    c = server.clouds[cloud]
    zs = ZStackClient(server.url, **kw)
    zs.login(c.username, c.password)
    return zs


def storages(zs: ZStackClient) -> tuple[dict, dict]:
    """The one primary storage (ims's volume store) and the one backup storage (its image
    store), as QueryPrimaryStorage and QueryBackupStorage describe them."""
    ps = zs.query("primary-storage")
    bs = zs.query("backup-storage")
    assert ps.status == 200, f"QueryPrimaryStorage: {ps.status} {ps.text[:2000]}"
    assert bs.status == 200, f"QueryBackupStorage: {bs.status} {bs.text[:2000]}"
    assert len(ps.inventories) == 1, ps.inventories
    assert len(bs.inventories) == 1, bs.inventories
    return ps.inventories[0], bs.inventories[0]


def query_one(zs: ZStackClient, path: str, uuid_hex: str) -> dict:
    """``GET /v1/<path>/<uuid>``: the one inventory of that uuid (a Query with an implicit
    uuid condition, answered as a one-element ``inventories`` list)."""
    r = zs.get(f"{path}/{uuid_hex}")
    assert r.status == 200, f"GET {path}/{uuid_hex}: {r.status} {r.text[:2000]}"
    invs = r.inventories
    assert len(invs) == 1 and invs[0]["uuid"] == uuid_hex, invs
    return invs[0]


def volume_from_template(zs: ZStackClient, image_uuid: str, ps_uuid: str, name: str) -> dict:
    """CreateDataVolumeFromVolumeTemplate (``POST /v1/volumes/data/from/data-volume-templates/
    {imageUuid}``), polled to its end like the SDK does; the Ready volume's inventory."""
    r = zs.create(f"volumes/data/from/data-volume-templates/{image_uuid}",
                  {"name": name, "primaryStorageUuid": ps_uuid})
    assert r.status == 200, f"CreateDataVolumeFromVolumeTemplate: {r.status} {r.text[:2000]}"
    inv = r.inventory
    assert inv["status"] == "Ready", inv
    return inv


def blank_volume(zs: ZStackClient, ps_uuid: str, name: str, size: int) -> dict:
    """CreateDataVolume with ``diskSize`` on the primary storage: a Ready blank volume."""
    r = zs.create("volumes/data", {"name": name, "diskSize": size, "primaryStorageUuid": ps_uuid})
    assert r.status == 200, f"CreateDataVolume: {r.status} {r.text[:2000]}"
    inv = r.inventory
    assert inv["status"] == "Ready" and inv["size"] == size, inv
    return inv


def volume_file(server, inv: dict):
    """The file that holds a volume's data: its ``installPath`` when that names a file
    (absolute, or relative to the data directory; a ``file://`` prefix allowed), else the one
    file under the data directory whose name carries the volume's uuid."""
    from pathlib import Path
    data_dir = Path(server.data_dir)
    install = (inv.get("installPath") or "").removeprefix("file://")
    candidates = []
    if install:
        p = Path(install)
        candidates += [p] if p.is_absolute() else [data_dir / p, data_dir / "volumes" / p]
    for p in candidates:
        if p.is_file():
            return p
    hexid = inv["uuid"]
    ids = {hexid, ims_uuid(hexid)}
    found = [p for p in data_dir.rglob("*") if p.is_file() and any(i in str(p.relative_to(data_dir))
                                                                      for i in ids)]
    assert len(found) == 1, (f"cannot tell which file holds volume {hexid} (installPath "
                             f"{install!r}); files naming it: {found}")
    return found[0]
