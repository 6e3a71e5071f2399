"""Fixtures for the interop suite: real `ims` servers driven by real OpenStack clients.

The session fixture `ims` starts the binary (``$IMS_BIN``, default
``target/debug/ims``) on a loopback port it picks itself (``--listen 127.0.0.1:0``; it
writes the address to ``--addr-file`` once it serves) with a fresh data directory, and adds a second project ``demo2`` (user ``demo2``, role member) and a
read-only user ``reader2`` in that project.  Every client is pointed at the server via a
``clouds.yaml``: the generated one for the admin cloud ``ims``, and one written here that
also holds the clouds ``demo2`` and ``reader2``.

With ``IMS_TEST_DATABASE_URL`` set to a ``postgres://`` URL of a server where the user
may ``CREATE DATABASE`` (``eval "$(scripts/pg start DIR)"`` makes one), every server gets a
fresh PostgreSQL database of its own as its catalog (``IMS_DATABASE_URL``, also given to
its ``ims admin`` commands), dropped when the server stops; unset, the catalog is SQLite in
the data directory. Databases are created and dropped by ``scripts/pg createdb|dropdb``,
which needs ``psql`` (on PATH or under /usr/lib/postgresql/*/bin).

Run: ``$(scripts/venv)/bin/python -m pytest -q tests/interop``
"""

from __future__ import annotations

import atexit
import hashlib
import http.server
import json
import os
import pty
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import openstack
import pytest
import requests
import yaml

REPO = Path(__file__).resolve().parents[2]
IMS_BIN = Path(os.environ.get("IMS_BIN", REPO / "target" / "debug" / "ims"))
# The S3 server for the S3 bucket tests; scripts/test installs it there.
S3S_FS = Path(os.environ.get("IMS_TEST_S3S_FS", REPO / ".tools" / "s3s" / "bin" / "s3s-fs"))
# The CLIs live next to the interpreter that runs pytest (the venv from scripts/venv).
VENV_BIN = Path(sys.executable).parent
# The PostgreSQL server on which each ims server gets a database; empty = SQLite.
TEST_DATABASE_URL = os.environ.get("IMS_TEST_DATABASE_URL", "").strip()
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 120.0

# In-process clients (requests, openstacksdk) must reach loopback directly.
for _k in ("NO_PROXY", "no_proxy"):
    os.environ[_k] = ",".join(x for x in (os.environ.get(_k), "127.0.0.1", "localhost") if x)


# --------------------------------------------------------------------------------------
# helpers


def wait_until(fetch, ready, timeout: float = 60.0, interval: float = 0.1, what: str = ""):
    """Calls `fetch()` every `interval` seconds until `ready(value)` holds; returns that
    value. Fails with the last value when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if ready(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or 'condition'} not reached after {timeout}s: {value!r}")
        time.sleep(interval)


def wait_for_file(path: Path, proc: subprocess.Popen, timeout: float, what: str) -> str:
    """The text of `path` once it exists (a server writes it when it is ready), failing
    early if `proc` exits first."""
    def written():
        if proc.poll() is not None:
            return f"exited with {proc.returncode}"
        try:
            return path.read_text()
        except FileNotFoundError:
            return None
    text = wait_until(written, lambda t: t is not None, timeout=timeout, interval=0.05, what=what)
    if proc.poll() is not None:
        raise AssertionError(f"{what}: the process {text}")
    return text


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha512(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()


def clean_env() -> dict[str, str]:
    """The environment minus anything that would point a client elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "IMS_"))}
    # Keep the clients from finding a user-level clouds.yaml or proxies.
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(k, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONWARNINGS"] = "ignore"
    return env


def run(argv: list[str], env: dict[str, str] | None = None, check: bool = True,
        timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
    # stdin is a terminal, as for a person typing the command: the `openstack` and
    # `glance` CLIs read image data from a non-tty stdin ("cannot use both --file and
    # stdin", or an upload of nothing when no --file is given).
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([str(a) for a in argv], env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=slave)
    finally:
        os.close(slave)
        os.close(master)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"command failed ({proc.returncode}): {' '.join(map(str, argv))}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


def create_database() -> str | None:
    """A fresh database on the test PostgreSQL server (None on SQLite)."""
    if not TEST_DATABASE_URL:
        return None
    proc = run([REPO / "scripts" / "pg", "createdb", TEST_DATABASE_URL, "ims_interop"],
               timeout=60)
    return proc.stdout.strip()


def drop_database(url: str) -> None:
    """Best effort: a database left behind only costs disk on a throw-away server."""
    proc = run([REPO / "scripts" / "pg", "dropdb", url], check=False, timeout=60)
    if proc.returncode != 0:
        print(f"could not drop test database {url}: {proc.stderr}", file=sys.stderr)


@dataclass
class Cloud:
    """Password credentials of one user in one project."""

    name: str
    auth_url: str
    username: str
    password: str
    project_name: str
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    region_name: str = "RegionOne"

    def as_clouds_entry(self) -> dict:
        return {
            "auth": {
                "auth_url": self.auth_url,
                "username": self.username,
                "password": self.password,
                "project_name": self.project_name,
                "user_domain_name": self.user_domain_name,
                "project_domain_name": self.project_domain_name,
            },
            "region_name": self.region_name,
            "identity_api_version": 3,
            "image_api_version": 2,
            "interface": "public",
        }


@dataclass
class Server:
    """A running `ims serve`."""

    url: str
    port: int
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen
    clouds_yaml: Path = None  # the generated one (cloud `ims`)
    all_clouds_yaml: Path = None  # written by the suite: ims + demo2 + reader2
    clouds: dict[str, Cloud] = field(default_factory=dict)
    project_ids: dict[str, str] = field(default_factory=dict)
    config: Path | None = None  # the --config file, when the server was given one
    database_url: str | None = None  # its PostgreSQL catalog, when tests run on PostgreSQL
    _tokens: dict[str, str] = field(default_factory=dict)

    # ---- environment for the clients

    @property
    def admin_env(self) -> dict[str, str]:
        """Environment for the `openstack` CLI as admin, using the generated clouds.yaml."""
        env = clean_env()
        env["OS_CLIENT_CONFIG_FILE"] = str(self.clouds_yaml)
        env["OS_CLOUD"] = "ims"
        return env

    def osc_env(self, cloud: str = "ims") -> dict[str, str]:
        if cloud == "ims":
            return self.admin_env
        env = clean_env()
        env["OS_CLIENT_CONFIG_FILE"] = str(self.all_clouds_yaml)
        env["OS_CLOUD"] = cloud
        return env

    def glance_env(self, cloud: str = "ims") -> dict[str, str]:
        """Environment for the `glance` CLI (classic OS_* variables)."""
        c = self.clouds[cloud]
        env = clean_env()
        env.update(
            OS_AUTH_URL=c.auth_url,
            OS_USERNAME=c.username,
            OS_PASSWORD=c.password,
            OS_PROJECT_NAME=c.project_name,
            OS_USER_DOMAIN_NAME=c.user_domain_name,
            OS_PROJECT_DOMAIN_NAME=c.project_domain_name,
            OS_REGION_NAME=c.region_name,
            OS_IDENTITY_API_VERSION="3",
            OS_IMAGE_API_VERSION="2",
        )
        return env

    # ---- running clients

    def osc(self, *args, cloud: str = "ims", check: bool = True) -> subprocess.CompletedProcess:
        return run([VENV_BIN / "openstack", *args], env=self.osc_env(cloud), check=check)

    def osc_json(self, *args, cloud: str = "ims"):
        proc = self.osc(*args, "-f", "json", cloud=cloud)
        try:
            return json.loads(proc.stdout)
        except ValueError as e:
            raise AssertionError(f"not JSON from openstack {' '.join(args)}: {proc.stdout!r}") from e

    def glance(self, *args, cloud: str = "ims", check: bool = True) -> subprocess.CompletedProcess:
        return run([VENV_BIN / "glance", "--os-image-api-version", "2", *args],
                   env=self.glance_env(cloud), check=check)

    def admin(self, *args, check: bool = True) -> subprocess.CompletedProcess:
        """`ims admin …` on this server's data directory and catalog."""
        env = clean_env()
        if self.database_url:
            env["IMS_DATABASE_URL"] = self.database_url
        return run([ims_bin(), "admin", "--data-dir", self.data_dir, *args], env=env,
                   check=check, timeout=60)

    def bucket(self, *args, check: bool = True) -> subprocess.CompletedProcess:
        """`ims bucket …` on this server's data directory, catalog and configuration (the
        commands that say who may use a bucket write to the catalog)."""
        env = clean_env()
        if self.database_url:
            env["IMS_DATABASE_URL"] = self.database_url
        config = getattr(self, "config", None)
        extra = ["--config", config] if config else []
        return run([ims_bin(), *extra, "bucket", "--data-dir", self.data_dir, *args], env=env,
                   check=check, timeout=120)

    # ---- raw HTTP

    def token(self, cloud: str = "ims") -> str:
        if cloud not in self._tokens:
            c = self.clouds[cloud]
            r = requests.post(
                f"{self.url}/v3/auth/tokens",
                json={
                    "auth": {
                        "identity": {
                            "methods": ["password"],
                            "password": {
                                "user": {
                                    "name": c.username,
                                    "domain": {"name": c.user_domain_name},
                                    "password": c.password,
                                }
                            },
                        },
                        "scope": {
                            "project": {
                                "name": c.project_name,
                                "domain": {"name": c.project_domain_name},
                            }
                        },
                    }
                },
                headers={"Accept": "application/json"},
                timeout=30,
            )
            assert r.status_code == 201, f"token for {cloud}: {r.status_code} {r.text}"
            self._tokens[cloud] = r.headers["X-Subject-Token"]
        return self._tokens[cloud]

    def headers(self, cloud: str = "ims", **extra) -> dict[str, str]:
        h = {"X-Auth-Token": self.token(cloud), "Accept": "application/json"}
        h.update(extra)
        return h

    def request(self, method: str, path: str, cloud: str | None = "ims", headers=None,
                **kw) -> requests.Response:
        h = self.headers(cloud) if cloud else {"Accept": "application/json"}
        h.update(headers or {})
        kw.setdefault("timeout", 60)
        return requests.request(method, f"{self.url}{path}", headers=h, **kw)

    def create_image(self, cloud: str = "ims", **body) -> dict:
        body.setdefault("name", unique("img"))
        body.setdefault("disk_format", "raw")
        body.setdefault("container_format", "bare")
        r = self.request("POST", "/v2/images", cloud=cloud, json=body)
        assert r.status_code == 201, f"create image: {r.status_code} {r.text}"
        return r.json()

    def upload(self, image_id: str, data, cloud: str = "ims", headers=None) -> requests.Response:
        h = {"Content-Type": "application/octet-stream"}
        h.update(headers or {})
        return self.request("PUT", f"/v2/images/{image_id}/file", cloud=cloud, headers=h, data=data)

    def get_image(self, image_id: str, cloud: str = "ims") -> dict:
        r = self.request("GET", f"/v2/images/{image_id}", cloud=cloud)
        assert r.status_code == 200, f"get image: {r.status_code} {r.text}"
        return r.json()

    def log_tail(self, n: int = 60) -> str:
        try:
            text = re.sub(r"\x1b\[[0-9;]*m", "", self.log_path.read_text(errors="replace"))
            return "\n".join(text.splitlines()[-n:])
        except OSError:
            return "(no log)"

    # ---- life cycle

    def stop(self) -> int | None:
        """SIGTERM; returns the exit code, or None if it did not exit within STOP_TIMEOUT.
        Then drops its PostgreSQL database, if it has one."""
        try:
            if self.proc.poll() is not None:
                return self.proc.returncode
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                return None
        finally:
            if self.database_url:
                drop_database(self.database_url)
                self.database_url = None


_snapshot: Path | None = None


def ims_bin() -> Path:
    """The binary, snapshotted once per session (hard link, else copy) so that a rebuild
    during the run cannot swap it between servers or admin commands."""
    global _snapshot
    if _snapshot is None:
        if not IMS_BIN.exists():
            pytest.fail(f"ims binary not found at {IMS_BIN} (set IMS_BIN or build it)",
                        pytrace=False)
        target = Path(tempfile.mkdtemp(prefix="ims-interop-bin-")) / "ims"
        try:
            os.link(IMS_BIN, target)
        except OSError:
            shutil.copy2(IMS_BIN, target)
        _snapshot = target
    return _snapshot


def start_server(base: Path, extra_env: dict[str, str] | None = None) -> Server:
    data_dir = base / "data"
    data_dir.mkdir(parents=True)
    addr_file = base / "serve.addr"
    log_path = base / "ims.log"
    env = clean_env()
    env.setdefault("RUST_LOG", "info")
    database_url = create_database()
    if database_url:
        env["IMS_DATABASE_URL"] = database_url
    env.update(image_store_env())
    env.update(extra_env or {})
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [str(ims_bin()), "serve", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0",
         "--addr-file", str(addr_file)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
    )
    log.close()
    server = Server(url="", port=0, data_dir=data_dir, log_path=log_path, proc=proc,
                    database_url=database_url)
    try:
        addr = wait_for_file(addr_file, proc, STARTUP_TIMEOUT, "ims's listen address").strip()
    except AssertionError as e:
        server.stop()
        pytest.fail(f"{e}\n{server.log_tail()}", pytrace=False)
    _, port = addr.rsplit(":", 1)
    server.port = int(port)
    server.url = url = f"http://{addr}"
    # ims writes the address once it serves.
    r = requests.get(f"{url}/healthcheck", timeout=10)
    assert r.status_code == 200, f"healthcheck: {r.status_code} {r.text}\n{server.log_tail()}"

    server.clouds_yaml = data_dir / "clouds.yaml"
    assert server.clouds_yaml.exists(), f"{server.clouds_yaml} was not written"
    generated = yaml.safe_load(server.clouds_yaml.read_text())
    entry = generated["clouds"]["ims"]
    auth = entry["auth"]
    assert auth["auth_url"].rstrip("/") == f"{url}/v3", f"clouds.yaml auth_url: {auth['auth_url']}"
    server.clouds["ims"] = Cloud(
        name="ims",
        auth_url=auth["auth_url"],
        username=auth["username"],
        password=auth["password"],
        project_name=auth.get("project_name", "admin"),
        user_domain_name=auth.get("user_domain_name", "Default"),
        project_domain_name=auth.get("project_domain_name", "Default"),
        region_name=entry.get("region_name", "RegionOne"),
    )
    return server


def ims_sdk(server: Server, user: str = "demo2", project: str = "demo2"):
    """A huaweicloudsdkims client signing with a fresh AK/SK of `user`, for `project` (a
    project name), pointed at `server`."""
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkims.v2 import ImsClient
    ak, sk = server.admin("credential", "create", "--user", user).stdout.split()
    credentials = BasicCredentials(ak, sk, server.project_ids[project])
    return ImsClient.new_builder().with_credentials(credentials).with_endpoints([server.url]).build()


def kms_sdk(server: Server, user: str = "demo2", project: str = "demo2"):
    """A huaweicloudsdkkms client signing with a fresh AK/SK of `user`, for `project`."""
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkkms.v2 import KmsClient
    ak, sk = server.admin("credential", "create", "--user", user).stdout.split()
    credentials = BasicCredentials(ak, sk, server.project_ids[project])
    return KmsClient.new_builder().with_credentials(credentials).with_endpoint(server.url).build()


# --------------------------------------------------------------------------------------
# IMS helpers shared by the huaweicloudsdkims tests


def qemu_img(*args) -> None:
    subprocess.run([shutil.which("qemu-img"), *map(str, args)], check=True, capture_output=True)


def ims_bucket(server: Server, *args) -> str:
    """`ims bucket ARGS…` on `server`, required to succeed; its output."""
    r = server.bucket(*map(str, args), check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout


def put(server: Server, path, target: str) -> None:
    """Stages the file `path` as `bucket:key`."""
    ims_bucket(server, "put", path, target)


def bucket(server: Server, name: str, project: str = "demo2") -> None:
    """A bucket of `project` (the SDK client's, demo2, unless said otherwise)."""
    ims_bucket(server, "create", name, "--project", project)


def wait_job(client, job_id: str, timeout: float = 60.0):
    """The IMS job once it has ended (SUCCESS or FAIL)."""
    from huaweicloudsdkims.v2 import ShowJobRequest
    return wait_until(lambda: client.show_job(ShowJobRequest(job_id=job_id)),
                      lambda job: job.status in ("SUCCESS", "FAIL"), timeout=timeout,
                      what=f"the end of job {job_id}")


def create_data_image(client, **body):
    """CreateDataImage with `body`; the answer (its `job_id`)."""
    from huaweicloudsdkims.v2 import CreateDataImageRequest, CreateDataImageRequestBody
    return client.create_data_image(CreateDataImageRequest(body=CreateDataImageRequestBody(**body)))


def parse_table(out: str) -> dict[str, str]:
    """`| Property | Value |` tables as printed by glance image-create / image-show."""
    rows: dict[str, str] = {}
    last = None
    for line in out.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or cells[0] == "Property":
            continue
        if cells[0]:
            last = cells[0]
            rows[last] = cells[1]
        elif last is not None:
            # prettytable wraps long values (os_hash_value) onto continuation lines.
            rows[last] += cells[1]
    return rows


def add_user(server: Server, project: str, user: str, role: str, create_project: bool) -> None:
    if create_project:
        server.admin("project", "create", project)
    password = secrets.token_hex(12)
    # `user create --project` also grants `--role` (default member) there; say which.
    server.admin("user", "create", user, "--password", password, "--project", project,
                 "--role", role)
    server.admin("role", "grant", "--project", project, "--user", user, "--role", role)
    admin = server.clouds["ims"]
    server.clouds[user] = Cloud(name=user, auth_url=admin.auth_url, username=user,
                                password=password, project_name=project,
                                region_name=admin.region_name)


def finish_setup(server: Server) -> None:
    """Adds demo2 (member) and reader2 (reader, in demo2), writes the combined clouds.yaml."""
    add_user(server, "demo2", "demo2", "member", create_project=True)
    add_user(server, "demo2", "reader2", "reader", create_project=False)
    listing = server.admin("project", "list").stdout
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            server.project_ids[parts[1]] = parts[0]
    assert {"admin", "demo2"} <= set(server.project_ids), f"ims admin project list: {listing!r}"
    generated = yaml.safe_load(server.clouds_yaml.read_text())
    clouds = {"ims": generated["clouds"]["ims"]}
    for name in ("demo2", "reader2"):
        clouds[name] = server.clouds[name].as_clouds_entry()
    server.all_clouds_yaml = server.data_dir.parent / "clouds-all.yaml"
    server.all_clouds_yaml.write_text(yaml.safe_dump({"clouds": clouds}))


def vm_processes(server: Server) -> list[int]:
    """Pids of the QEMU processes of `server`'s image servers (their command lines name
    a pidfile under `<data-dir>/servers/`)."""
    marker = str(server.data_dir / "servers") + "/"
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "qemu-system" in cmdline and marker in cmdline:
            pids.append(int(proc.name))
    return pids


def stop_and_check(server: Server) -> None:
    code = server.stop()
    # VMs outlive ims on purpose (a restart adopts them); the suite's must be gone by now.
    stray = vm_processes(server)
    for pid in stray:
        os.kill(pid, signal.SIGKILL)
    assert code is not None, f"ims did not exit within {STOP_TIMEOUT}s of SIGTERM:\n{server.log_tail()}"
    assert code in (0, -signal.SIGTERM, 128 + signal.SIGTERM), (
        f"ims exited with {code} after SIGTERM:\n{server.log_tail()}")
    assert not stray, f"QEMU processes left running after the tests: {stray}"


# --------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def ims(tmp_path_factory):
    """The main server, with admin, demo2 (member) and reader2 (reader in demo2)."""
    base = tmp_path_factory.mktemp("ims-main")
    server = start_server(base)
    try:
        finish_setup(server)
        yield server
    finally:
        stop_and_check(server)


@pytest.fixture(scope="session")
def client(ims):
    """A huaweicloudsdkims client of demo2 on the main server."""
    return ims_sdk(ims)


@pytest.fixture
def demo2_conn(ims, monkeypatch):
    """An openstacksdk connection as demo2 (a member of project demo2) on the main server."""
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(ims.all_clouds_yaml))
    c = openstack.connect(cloud="demo2")
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(autouse=True)
def _servers_alive(request):
    """Fails a test clearly when a server it uses has exited underneath it."""
    servers = [request.getfixturevalue(n) for n in request.fixturenames
               if n in ("ims", "ims_small_cap", "ims_quota", "ims_web", "ims_web_public_only", "ims_s3")]
    yield
    for server in servers:
        code = server.proc.poll()
        if code is not None:
            pytest.fail(f"ims at {server.url} exited with {code} during the test:\n"
                        f"{server.log_tail(20)}", pytrace=False)


@pytest.fixture(scope="session")
def ims_factory(tmp_path_factory):
    """Starts extra servers with extra environment (config); all stopped at the end."""
    started: list[Server] = []

    def start(label: str, extra_env: dict[str, str]) -> Server:
        server = start_server(tmp_path_factory.mktemp(f"ims-{label}"), extra_env)
        started.append(server)
        return server

    try:
        yield start
    finally:
        errors = []
        for server in started:
            try:
                stop_and_check(server)
            except AssertionError as e:
                errors.append(str(e))
        assert not errors, "\n".join(errors)


@pytest.fixture(scope="session")
def ims_small_cap(ims_factory):
    """A server whose image_size_cap is 4096 bytes."""
    return ims_factory("cap", {"IMS_IMAGES__SIZE_CAP": "4096"})


@pytest.fixture(scope="session")
def ims_quota(ims_factory):
    """A server with a quota of 3 images per project."""
    return ims_factory("quota", {"IMS_IMAGES__QUOTA_IMAGE_COUNT": "3"})


@pytest.fixture(scope="session")
def ims_web(ims_factory):
    """A server whose web-download may fetch from loopback, any port."""
    return ims_factory("web", {"IMS_WEB_DOWNLOAD__ALLOW_PRIVATE": "true",
                               "IMS_WEB_DOWNLOAD__PORTS": "[]"})


@pytest.fixture(scope="session")
def ims_web_public_only(ims_factory):
    """Any port, but private/loopback addresses refused (the default for addresses)."""
    return ims_factory("web-public", {"IMS_WEB_DOWNLOAD__PORTS": "[]"})


@dataclass
class S3Server:
    """A running s3s-fs: an S3 server whose buckets are the subdirectories of `root`."""

    endpoint: str
    root: Path
    access_key: str
    secret_key: str
    proc: subprocess.Popen

    def bucket(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(exist_ok=True)
        return path


# s3s-fs's log line once it listens; the URL is whole once the line ends.
S3S_LISTENING = re.compile(r"server is running at (http://\S+)\s")


def start_s3s(base: Path) -> S3Server:
    """s3s-fs on a loopback port it picks (``--port 0``; its log says which), checking
    SigV4 with a key pair of its own; stop it with ``stop_s3s``."""
    if not S3S_FS.is_file():
        pytest.fail(f"s3s-fs not found at {S3S_FS}: run scripts/test (it installs it) or set "
                    "IMS_TEST_S3S_FS", pytrace=False)
    root = base / "root"
    root.mkdir()
    log_path = base / "s3s.log"
    access, secret = "IMSINTEROPACCESSKEY1", secrets.token_hex(20)
    log = open(log_path, "wb")
    # It logs only errors unless RUST_LOG asks for more.
    proc = subprocess.Popen(
        [str(S3S_FS), "--host", "127.0.0.1", "--port", "0", "--access-key", access,
         "--secret-key", secret, str(root)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**clean_env(), "RUST_LOG": "s3s_fs=info"})
    log.close()

    def listening():
        if proc.poll() is not None:
            pytest.fail(f"s3s-fs exited with {proc.returncode}: {log_path.read_text()}",
                        pytrace=False)
        return S3S_LISTENING.search(log_path.read_text(errors="replace"))

    try:
        endpoint = wait_until(listening, bool, timeout=STARTUP_TIMEOUT, interval=0.05,
                              what="s3s-fs's listen address").group(1)
    except AssertionError:
        proc.kill()
        raise
    return S3Server(endpoint=endpoint, root=root, access_key=access, secret_key=secret,
                    proc=proc)


def stop_s3s(server: S3Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


@pytest.fixture(scope="session")
def s3s(tmp_path_factory):
    """s3s-fs for the tests of S3 buckets."""
    server = start_s3s(tmp_path_factory.mktemp("s3s"))
    try:
        yield server
    finally:
        stop_s3s(server)


# With IMS_TEST_IMAGE_STORE=s3 every server keeps its image data in a bucket of its own
# on one s3s-fs (started on first use, stopped at exit).
IMAGE_STORE = os.environ.get("IMS_TEST_IMAGE_STORE", "").strip()
_image_s3: S3Server | None = None


def image_store_env() -> dict[str, str]:
    """The environment that puts a new server's image data into the test S3 store."""
    global _image_s3
    if IMAGE_STORE != "s3":
        return {}
    if _image_s3 is None:
        base = Path(tempfile.mkdtemp(prefix="ims-interop-s3-"))
        _image_s3 = start_s3s(base)
        # Outside pytest's rotated tmp dirs, so removed here: each run leaves ~0.5 GB.
        atexit.register(shutil.rmtree, base, ignore_errors=True)
        atexit.register(stop_s3s, _image_s3)
    bucket = f"img-{secrets.token_hex(6)}"
    _image_s3.bucket(bucket)
    store = (f'{{ s3 = {{ kind = "s3", endpoint = "{_image_s3.endpoint}", region = "us-east-1", '
             f'bucket = "{bucket}", part_size_mib = 5, access_key_id = "{_image_s3.access_key}", '
             f'secret_access_key = "{_image_s3.secret_key}" }} }}')
    return {"IMS_IMAGE_STORES__DEFAULT": "s3", "IMS_IMAGE_STORES__STORES": store}


@pytest.fixture(scope="session")
def ims_s3(ims_factory, s3s, tmp_path_factory):
    """A server whose buckets s3-seed, s3-export and s3-absent (never created) are in
    s3s-fs, through the S3 store `east`; other buckets stay embedded. With demo2."""
    config = tmp_path_factory.mktemp("ims-s3-config") / "ims.toml"
    config.write_text(
        "[buckets.stores.east]\n"
        'kind = "s3"\n'
        f'endpoint = "{s3s.endpoint}"\n'
        'region = "us-east-1"\n'
        f'access_key_id = "{s3s.access_key}"\n'
        f'secret_access_key = "{s3s.secret_key}"\n'
        'buckets = ["s3-seed", "s3-export", "s3-absent"]\n')
    config.chmod(0o600)
    s3s.bucket("s3-seed")
    s3s.bucket("s3-export")
    server = ims_factory("s3", {"IMS_CONFIG": str(config)})
    server.config = config
    finish_setup(server)
    # Buckets belong to projects: demo2's tests use these two; s3-absent stays unowned.
    for name in ("s3-seed", "s3-export"):
        server.bucket("assign", name, "--project", "demo2")
    return server


class _Files(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@dataclass
class FileServer:
    url: str
    files: dict[str, bytes]

    def serve(self, data: bytes) -> str:
        path = f"/{uuid.uuid4().hex}.img"
        self.files[path] = data
        return self.url + path


@pytest.fixture(scope="session")
def file_server():
    """A loopback HTTP server for web-download imports."""
    handler = type("Files", (_Files,), {"files": {}})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield FileServer(url=f"http://127.0.0.1:{httpd.server_address[1]}", files=handler.files)
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def workdir():
    d = Path(tempfile.mkdtemp(prefix="ims-interop-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def random_file(workdir):
    """A file of random bytes (a little over 1 MiB, not a multiple of any block size)."""
    data = bytearray(os.urandom(1024 * 1024 + 4321))
    # Random bytes end their first sector in 0x55AA once in 65,536 files, and then read
    # as an MBR whose partitions make no sense, which ims refuses (as Glance does).
    data[510] = 0
    path = workdir / "random.img"
    path.write_bytes(data)
    return path


@pytest.fixture
def qemu_raw_file(workdir):
    """A raw disk image made by `qemu-img create -f raw` (2 MiB of zeros)."""
    qemu_img = shutil.which("qemu-img")
    if not qemu_img:
        pytest.skip("qemu-img is not installed")
    path = workdir / "disk.raw"
    run([qemu_img, "create", "-f", "raw", path, "2M"])
    assert path.stat().st_size == 2 * 1024 * 1024
    return path


def pytest_sessionfinish(session, exitstatus):
    if _snapshot is not None:
        shutil.rmtree(_snapshot.parent, ignore_errors=True)
