"""ZStack REST v1 (issue 13, seed 004) through a client that follows the Java SDK's protocol
(zstack_client.py), against the real binary.

- An image made through Glance (a raw disk made with qemu-img, patterns written with qemu-io,
  marked ``virtual_env_type=DataImage``) is a DataVolumeTemplate in QueryImage, with its name,
  size and ``md5Sum``; queries take ``q=`` conditions, ``sort=%2B…``, counts and ``fields``.
- The acceptance flow: a data volume from that template (CreateDataVolumeFromVolumeTemplate),
  known bytes written at known offsets into the volume's own file with qemu-io (so the
  template must flatten overlay + backing), then the seed's own request example, byte for
  byte the curl body with ``Authorization: OAuth``: 200 with the seed's response shape when
  the job ends within the sync wait; on a server whose sync wait is 0, 202 + ``location``
  and an api-job that ends 200 with the same inventory. The template read back with
  ``openstack image save`` holds the volume's bytes, and its ``md5Sum`` is their md5.
- The issue's bad inputs, each with its documented code (docs/API-COMPAT.md, ZStack), and no
  image left ``Creating``.

Nothing here skips: a missing route fails.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from conftest import IMAGE_STORE, md5, unique
from zstack_client import (JOB_PATH, ZSTACK_DATE, ZStackClient, admin_client, blank_volume,
                           ims_uuid, query_one, sha512_hex, storages, user_client,
                           volume_file, volume_from_template, zstack_uuid)

# Settings of two more servers (docs/CONFIG.md, [zstack]): one answers every mutating call
# with 202 at once (no sync wait); on the other, sessions lapse after 3 s without use.
ASYNC_SERVER_ENV = {"IMS_ZSTACK__JOB_WAIT_MS": "0"}
SHORT_SESSION_ENV = {"IMS_ZSTACK__SESSION_TIMEOUT_SECS": "3"}

MIB = 1024 * 1024
IMAGE_SIZE = 8 * MIB
# (offset, byte, length) written into the source image with qemu-io.
SOURCE_PATTERNS = [(0, 0x11, 64 * 1024), (3 * MIB, 0x22, 4096), (IMAGE_SIZE - 4096, 0x33, 4096)]
# Written into the volume's file afterwards: one overwrites part of the source's first pattern
# (the overlay must win over its backing file), the others land on zeros.
VOLUME_WRITES = [(32 * 1024, 0xEE, 4096), (1 * MIB, 0xA5, 64 * 1024), (5 * MIB + 512, 0x5A, 512)]


def qemu_io(path: Path, fmt: str, writes) -> None:
    cmds = []
    for off, byte, length in writes:
        cmds += ["-c", f"write -P {byte:#04x} {off} {length}"]
    subprocess.run([shutil.which("qemu-io"), "-f", fmt, *cmds, str(path)], check=True,
                   capture_output=True)


def apply(data: bytes, writes) -> bytes:
    out = bytearray(data)
    for off, byte, length in writes:
        out[off:off + length] = bytes([byte]) * length
    return bytes(out)


def raw_content(path: Path, fmt: str, workdir: Path) -> bytes:
    """The guest-visible bytes of a disk file (converted to raw when it is not raw)."""
    if fmt == "raw":
        return path.read_bytes()
    out = workdir / f"{path.name}.raw"
    subprocess.run([shutil.which("qemu-img"), "convert", "-f", fmt, "-O", "raw", str(path),
                    str(out)], check=True, capture_output=True)
    return out.read_bytes()


@dataclass
class World:
    """One server seen through ZStack: an admin client, its storages, and a Glance data image
    with known content."""

    server: object
    zs: ZStackClient
    ps: dict
    bs: dict
    image_id: str  # Glance id (hyphenated)
    image_hex: str  # the same as ZStack writes it
    image_name: str
    data: bytes

    def new_volume(self, name: str | None = None) -> dict:
        return volume_from_template(self.zs, self.image_hex, self.ps["uuid"],
                                    name or unique("zs-vol"))

    def written_volume(self, workdir: Path) -> tuple[dict, bytes]:
        """A volume from the image with VOLUME_WRITES written into its file with qemu-io;
        its inventory and the bytes it now holds."""
        vol = self.new_volume()
        path = volume_file(self.server, vol)
        qemu_io(path, vol["format"], VOLUME_WRITES)
        expected = apply(self.data, VOLUME_WRITES)
        assert raw_content(path, vol["format"], workdir) == expected, "qemu-io did not write"
        return vol, expected


def make_world(server, workdir: Path) -> World:
    src = workdir / "source.raw"
    subprocess.run([shutil.which("qemu-img"), "create", "-f", "raw", str(src), str(IMAGE_SIZE)],
                   check=True, capture_output=True)
    qemu_io(src, "raw", SOURCE_PATTERNS)
    data = src.read_bytes()
    assert len(data) == IMAGE_SIZE
    name = unique("zs-src")
    img = server.create_image(name=name, disk_format="raw", container_format="bare",
                              virtual_env_type="DataImage")
    r = server.upload(img["id"], data)
    assert r.status_code == 204, f"upload: {r.status_code} {r.text}"
    assert server.get_image(img["id"])["status"] == "active"
    zs = admin_client(server, poll_timeout=120)
    ps, bs = storages(zs)
    return World(server=server, zs=zs, ps=ps, bs=bs, image_id=img["id"],
                 image_hex=zstack_uuid(img["id"]), image_name=name, data=data)


@pytest.fixture(scope="module")
def world(ims, tmp_path_factory):
    return make_world(ims, tmp_path_factory.mktemp("zstack-rest"))


@pytest.fixture(scope="module")
def async_server(ims_factory):
    return ims_factory("zstack-async", ASYNC_SERVER_ENV)


@pytest.fixture(scope="module")
def short_session_server(ims_factory):
    return ims_factory("zstack-sessions", SHORT_SESSION_ENV)


@pytest.fixture(scope="module")
def async_world(async_server, tmp_path_factory):
    return make_world(async_server, tmp_path_factory.mktemp("zstack-async"))


def seed_body(name: str, volume_uuid: str, bs_uuid: str, resource_uuid: str) -> str:
    """The seed's request example with its placeholders filled in, as curl would send it.
    ``tagUuids`` is left out (ims has no tag API for it to name); ``systemTags`` is empty and
    ``userTags`` carries one tag."""
    return ('{"params":{"name":"%s","description":"seed 004 template","volumeUuid":"%s",'
            '"backupStorageUuids":["%s"],"resourceUuid":"%s"},"systemTags":[],'
            '"userTags":["seed-004"]}' % (name, volume_uuid, bs_uuid, resource_uuid))


def post_seed(zs: ZStackClient, volume_uuid: str, body: str, **kw):
    """``curl -X POST …/images/data-volume-templates/from/volumes/{volumeUuid}`` with
    ``Authorization: OAuth``, ``Content-Type: application/json;charset=UTF-8`` and `body`."""
    return zs.call("POST", f"images/data-volume-templates/from/volumes/{volume_uuid}",
                   raw_body=body,
                   extra_headers={"Content-Type": "application/json;charset=UTF-8"}, **kw)


def check_template(w: World, inv: dict, vol: dict, name: str, resource_uuid: str,
                   expected: bytes, workdir: Path) -> None:
    """The template's inventory has every field of the seed and the reference, with real
    values, and its bytes read back through `openstack image save` are the volume's."""
    assert inv["uuid"] == resource_uuid
    assert inv["name"] == name and inv["description"] == "seed 004 template"
    assert inv["mediaType"] == "DataVolumeTemplate"
    assert inv["status"] == "Ready" and inv["state"] == "Enabled"
    assert inv["url"] == f"volume://{vol['uuid']}"
    assert inv["format"] in ("raw", "qcow2"), inv["format"]
    assert inv["size"] == IMAGE_SIZE, inv
    assert inv["actualSize"] > 0
    for key in ("platform", "guestOsType", "type", "architecture"):
        assert isinstance(inv.get(key), str), f"{key} missing: {inv}"
    assert isinstance(inv["system"], bool) and isinstance(inv["virtio"], bool)
    for key in ("createDate", "lastOpDate"):
        assert re.match(ZSTACK_DATE, inv[key]), f"{key}: {inv[key]!r}"
    refs = inv["backupStorageRefs"]
    assert len(refs) == 1, refs
    ref = refs[0]
    assert ref["imageUuid"] == resource_uuid
    assert ref["backupStorageUuid"] == w.bs["uuid"]
    assert ref["status"] == "Ready" and ref["installPath"], ref

    # The image is an image everywhere: the OpenStack API has it, active, with that md5.
    image_id = ims_uuid(resource_uuid)
    glance = w.server.get_image(image_id)
    assert glance["status"] == "active" and glance["name"] == name
    assert glance["checksum"] == inv["md5Sum"], (glance["checksum"], inv["md5Sum"])
    assert glance["disk_format"] == inv["format"]

    out = workdir / f"{resource_uuid}.saved"
    w.server.osc("image", "save", "--file", str(out), image_id)
    saved = out.read_bytes()
    assert md5(saved) == inv["md5Sum"], "md5Sum is not the md5 of the bytes served"
    assert len(saved) == inv["actualSize"], (len(saved), inv["actualSize"])
    content = raw_content(out, inv["format"], workdir)
    assert len(content) == len(expected)
    for off, byte, length in SOURCE_PATTERNS + VOLUME_WRITES:
        got = content[off:off + length]
        want = expected[off:off + length]
        if got != want:
            first = next(i for i in range(length) if got[i:i + 1] != want[i:i + 1])
            raise AssertionError(f"the template differs from the volume at byte {off + first}: "
                                 f"{got[first:first + 8].hex()} instead of "
                                 f"{want[first:first + 8].hex()}")
    assert content == expected


# ---------------------------------------------------------------------------------------
# images made elsewhere, and queries


def test_glance_image_in_query_image(world):
    w = world
    r = w.zs.query("images", [f"uuid={w.image_hex}"])
    assert r.status == 200, r.text
    assert r.first_status == 200 and r.polls == 0  # queries are synchronous
    [inv] = r.inventories
    assert inv["name"] == w.image_name
    assert inv["mediaType"] == "DataVolumeTemplate"  # virtual_env_type=DataImage
    assert inv["format"] == "raw"
    assert inv["size"] == IMAGE_SIZE and inv["actualSize"] == IMAGE_SIZE
    assert inv["md5Sum"] == md5(w.data)
    assert inv["status"] == "Ready" and inv["state"] == "Enabled"
    for key in ("createDate", "lastOpDate"):
        assert re.match(ZSTACK_DATE, inv[key]), f"{key}: {inv[key]!r}"
    [ref] = inv["backupStorageRefs"]
    assert ref["backupStorageUuid"] == w.bs["uuid"] and ref["status"] == "Ready"
    assert ref["installPath"]
    # GET /v1/images/{uuid} is the same query with an implicit uuid condition.
    assert query_one(w.zs, "images", w.image_hex) == inv


def test_get_unknown_image_is_an_empty_list(world):
    r = world.zs.get(f"images/{uuid.uuid4().hex}")
    assert r.status == 200 and r.body["inventories"] == [], r.text


def test_storages_have_real_capacity(world):
    for inv in (world.ps, world.bs):
        assert inv["status"] == "Connected" and inv["state"] == "Enabled", inv
        assert re.fullmatch(r"[0-9a-f]{32}", inv["uuid"]), inv
        if inv is world.bs and IMAGE_STORE == "s3":
            # Image data in an object store, whose capacity is not known.
            assert inv["url"].startswith("s3://"), inv
            assert inv["availableCapacity"] == inv["totalCapacity"] == 0, inv
        else:
            assert 0 < inv["availableCapacity"] <= inv["totalCapacity"], inv


def test_query_conditions_sort_count_and_fields(world):
    w = world
    prefix = unique("zsq")
    ids = []
    for i, size in enumerate((1000, 3000, 5000)):
        img = w.server.create_image(name=f"{prefix}-{i}", disk_format="raw",
                                    container_format="bare")
        assert w.server.upload(img["id"], bytes([i + 1]) * size).status_code == 204
        ids.append(zstack_uuid(img["id"]))
    conds = [f"name~={prefix}-%", "status=Ready", "size>=2000"]
    r = w.zs.query("images", conds, sort="+name", reply_with_count=True)
    assert r.status == 200, r.text
    assert [i["name"] for i in r.inventories] == [f"{prefix}-1", f"{prefix}-2"]
    assert r.body["total"] == 2
    r = w.zs.query("images", conds, sort="-name")
    assert [i["name"] for i in r.inventories] == [f"{prefix}-2", f"{prefix}-1"]
    r = w.zs.query("images", conds, count=True)
    assert r.status == 200 and r.body.get("total") == 2 and not r.body.get("inventories"), r.text
    r = w.zs.query("images", [f"name~={prefix}-%"], sort="+name", limit=1, start=1)
    assert [i["name"] for i in r.inventories] == [f"{prefix}-1"]
    r = w.zs.query("images", [f"uuid?={ids[0]},{ids[2]}"], sort="+size",
                   fields=["uuid", "name"])
    assert r.inventories == [{"uuid": ids[0], "name": f"{prefix}-0"},
                             {"uuid": ids[2], "name": f"{prefix}-2"}]
    r = w.zs.query("images", [f"name~={prefix}-%", f"uuid!={ids[1]}", "description is null"])
    assert sorted(i["uuid"] for i in r.inventories) == sorted([ids[0], ids[2]])


def test_query_volume(world):
    w = world
    vol = w.new_volume()
    r = w.zs.query("volumes", [f"uuid={vol['uuid']}"])
    assert r.status == 200, r.text
    [inv] = r.inventories
    assert inv["name"] == vol["name"] and inv["type"] == "Data"
    assert inv["size"] == IMAGE_SIZE and inv["status"] == "Ready" and inv["state"] == "Enabled"
    assert inv["primaryStorageUuid"] == w.ps["uuid"]
    assert inv["format"] in ("qcow2", "raw")
    assert query_one(w.zs, "volumes", vol["uuid"]) == inv


# ---------------------------------------------------------------------------------------
# the seed: CreateDataVolumeTemplateFromVolume


def test_seed_example_answers_200_within_the_sync_wait(world, tmp_path):
    w = world
    vol, expected = w.written_volume(tmp_path)
    name, resource = unique("seed004"), uuid.uuid4().hex
    r = post_seed(w.zs, vol["uuid"], seed_body(name, vol["uuid"], w.bs["uuid"], resource))
    assert r.first_status == 200, f"expected the synchronous answer: {r.first_status} {r.text}"
    assert r.status == 200, r.text
    # The seed's response: success, no error, the inventory.
    assert r.body.get("success") is True, r.body
    assert r.body.get("error") is None, r.body
    inv = r.body["inventory"]
    check_template(w, inv, vol, name, resource, expected, tmp_path)
    assert query_one(w.zs, "images", resource) == inv
    # The volume is intact and still usable.
    assert query_one(w.zs, "volumes", vol["uuid"])["status"] == "Ready"


def test_sdk_shaped_call_makes_the_same_template(world, tmp_path):
    """The Java SDK's own shape: volumeUuid only in the URL, tags inside ``params``, a
    random X-Job-UUID; no backupStorageUuids (ims picks its one backup storage)."""
    w = world
    vol, expected = w.written_volume(tmp_path)
    name, resource = unique("sdk004"), uuid.uuid4().hex
    r = w.zs.create(f"images/data-volume-templates/from/volumes/{vol['uuid']}",
                    {"name": name, "description": "seed 004 template", "resourceUuid": resource},
                    system_tags=[], user_tags=["sdk"])
    assert r.status == 200, r.text
    check_template(w, r.inventory, vol, name, resource, expected, tmp_path)


def test_seed_example_async_path(async_world, tmp_path):
    w = async_world
    vol, expected = w.written_volume(tmp_path)
    name, resource = unique("seed004a"), uuid.uuid4().hex
    job = uuid.uuid4().hex
    first = post_seed(w.zs, vol["uuid"], seed_body(name, vol["uuid"], w.bs["uuid"], resource),
                      job_uuid=job, poll=False)
    assert first.status == 202, f"expected 202 with no sync wait: {first.status} {first.text}"
    location = first.body["location"]
    # X-Job-UUID is honoured, and the location is on ims's own base URL.
    assert location == f"{w.server.url}{JOB_PATH}/{job}", location
    assert isinstance(first.body.get("apiTimeout"), int) and first.body["apiTimeout"] > 0, first.body
    done = w.zs.poll(first)
    assert done.status == 200, f"api-job ended {done.status}: {done.text}"
    inv = done.body["inventory"]
    check_template(w, inv, vol, name, resource, expected, tmp_path)
    assert query_one(w.zs, "images", resource) == inv
    # The finished job answers the same until it expires; unknown jobs are 404 plain text.
    again = requests.get(f"{w.server.url}{JOB_PATH}/{job}", timeout=30)
    assert again.status_code == 200 and again.json()["inventory"] == inv
    gone = requests.get(f"{w.server.url}{JOB_PATH}/{uuid.uuid4().hex}", timeout=30)
    assert gone.status_code == 404, gone.text
    assert not gone.text.lstrip().startswith("{"), f"404 should be plain text: {gone.text!r}"


def test_async_failure_ends_503(async_world):
    """On the async path a failing call still answers 202; its job ends 503 with the error."""
    w = async_world
    missing = uuid.uuid4().hex
    r = w.zs.create(f"images/data-volume-templates/from/volumes/{missing}",
                    {"name": unique("t")})
    assert r.first_status == 202 and r.polls >= 1, (r.first_status, r.text)
    r.expect_error("SYS.1003")


def test_session_slides_then_expires(short_session_server):
    """Sessions last 3 s there without use; each call slides the expiry."""
    zs = admin_client(short_session_server)
    for _ in range(3):
        time.sleep(2)
        r = zs.query("images", limit=1)
        assert r.status == 200, f"a used session expired: {r.text}"
    time.sleep(4.5)
    zs.query("images", limit=1).expect_error("ID.1001")
    v = zs.validate_session(zs.session_uuid)
    assert v.status == 200 and v.body == {"valid": False}, v.text


# ---------------------------------------------------------------------------------------
# bad input (issue 13): each with its documented ZStack error, nothing left Creating


def refused(w: World, zs: ZStackClient, volume_uuid: str, code: str, **params) -> dict:
    """CreateDataVolumeTemplateFromVolume as `zs`, refused with ErrorCode `code`, and nothing
    made: no image of that name in any status, neither for the caller nor for the admin
    (ZStack removes the row of a failed creation; nothing may stay ``Creating``)."""
    name = params.setdefault("name", unique("bad"))
    err = zs.create(f"images/data-volume-templates/from/volumes/{volume_uuid}",
                    params).expect_error(code)
    for who in (zs, w.zs):
        r = who.query("images", [f"name={name}"])
        assert r.status == 200, r.text[:2000]
        assert r.inventories == [], f"a refused call left an image: {r.inventories}"
    return err


def test_missing_volume_is_sys_1003(world):
    refused(world, world.zs, uuid.uuid4().hex, "SYS.1003")


def test_deleted_volume_is_sys_1006_and_expunged_is_sys_1003(world):
    w = world
    vol = w.new_volume()
    d = w.zs.delete(f"volumes/{vol['uuid']}")
    assert d.status == 200 and d.body.get("error") is None, d.text
    assert query_one(w.zs, "volumes", vol["uuid"])["status"] == "Deleted"
    refused(w, w.zs, vol["uuid"], "SYS.1006")
    e = w.zs.action(f"volumes/{vol['uuid']}/actions", "expungeDataVolume")
    assert e.status == 200, e.text
    refused(w, w.zs, vol["uuid"], "SYS.1003")


def test_another_projects_volume_does_not_exist(world):
    w = world
    vol = w.new_volume()  # the admin project's
    demo2 = user_client(w.server, "demo2")
    refused(w, demo2, vol["uuid"], "SYS.1003")
    assert demo2.get(f"volumes/{vol['uuid']}").body["inventories"] == []


def test_bad_resource_uuid_is_sys_1007(world):
    w = world
    vol = w.new_volume()
    for bad in ("not-a-uuid", "0" * 31, "g" * 32):
        refused(w, w.zs, vol["uuid"], "SYS.1007", resourceUuid=bad)


def test_duplicate_resource_uuid_is_sys_1007(world):
    w = world
    vol = w.new_volume()
    refused(w, w.zs, vol["uuid"], "SYS.1007", resourceUuid=w.image_hex)
    # The existing image is untouched.
    assert query_one(w.zs, "images", w.image_hex)["name"] == w.image_name


def test_unknown_backup_storage_is_sys_1003(world):
    w = world
    vol = w.new_volume()
    refused(w, w.zs, vol["uuid"], "SYS.1003", backupStorageUuids=[uuid.uuid4().hex])


def test_query_unknown_field_is_sys_1007(world):
    world.zs.query("images", ["nosuchfield=1"]).expect_error("SYS.1007")


def test_query_condition_without_operator_is_400_plain_text(world):
    r = world.zs.query("images", ["name"])
    assert r.status == 400, r.text
    assert isinstance(r.body, str) and r.body.strip(), f"400 should be plain text: {r.text!r}"


def test_query_limit_minus_one_is_400_plain_text(world):
    r = world.zs.query("images", limit=-1)
    assert r.status == 400, r.text
    assert isinstance(r.body, str) and r.body.strip(), f"400 should be plain text: {r.text!r}"


def test_malformed_params(world):
    w = world
    vol = w.new_volume()
    path = f"images/data-volume-templates/from/volumes/{vol['uuid']}"
    # Not JSON at all, and params that are not an object: the REST layer refuses, 400 text.
    for raw in ('{"params": {"name": ', '{"params": ["x"]}'):
        r = w.zs.call("POST", path, raw_body=raw)
        assert r.status == 400, f"{raw!r}: {r.status} {r.text}"
        assert isinstance(r.body, str), f"400 should be plain text: {r.text!r}"
    # The mandatory name missing: the API's own SYS.1007.
    w.zs.create(path, {"description": "no name"}).expect_error("SYS.1007")


def test_wrong_password_is_id_1000(world):
    c = world.server.clouds["ims"]
    r = ZStackClient(world.server.url).login_reply(c.username, c.password + "x")
    r.expect_error("ID.1000")
    # The clear-text password (not its SHA-512) is wrong too: clients send the hash.
    r = ZStackClient(world.server.url).action(
        "accounts/login", "logInByAccount", {"accountName": c.username, "password": c.password},
        session=None)
    r.expect_error("ID.1000")


def test_invalid_and_logged_out_sessions_are_id_1001(world):
    w = world
    zs = ZStackClient(w.server.url)
    zs.session_uuid = uuid.uuid4().hex
    zs.query("images", limit=1).expect_error("ID.1001")
    zs = admin_client(w.server)
    sid = zs.session_uuid
    assert zs.validate_session(sid).body == {"valid": True}
    out = zs.logout()
    assert out.status == 200, out.text
    zs.session_uuid = sid
    zs.query("images", limit=1).expect_error("ID.1001")
    zs.create(f"images/data-volume-templates/from/volumes/{uuid.uuid4().hex}",
              {"name": unique("t")}).expect_error("ID.1001")


def test_missing_authorization_is_400(world):
    r = world.zs.query("images", limit=1, session=None)
    assert r.status == 400, r.text


def test_sha512_of_the_default_admin_password():
    # The reference's example: ZStack's default admin password "password".
    assert sha512_hex("password").startswith("b109f3bbbc244eb82441917ed06d618b")


def test_blank_volume_and_resize(world):
    w = world
    vol = blank_volume(w.zs, w.ps["uuid"], unique("blank"), 4 * MIB)
    r = w.zs.action(f"volumes/data/resize/{vol['uuid']}/actions", "resizeDataVolume",
                    {"size": 8 * MIB})
    assert r.status == 200 and r.inventory["size"] == 8 * MIB, r.text
    r = w.zs.action(f"volumes/data/resize/{vol['uuid']}/actions", "resizeDataVolume",
                    {"size": 4 * MIB})
    assert r.status == 503, f"shrinking must fail: {r.text}"
    assert r.error["code"] == "SYS.1007", r.error
    assert query_one(w.zs, "volumes", vol["uuid"])["size"] == 8 * MIB


# ---------------------------------------------------------------------------------------
# life cycles through the SDK's PUT actions, and an image's data outliving it for its volumes


def small_data_image(w: World, data: bytes) -> str:
    """Another DataVolumeTemplate made through Glance; its ZStack uuid."""
    img = w.server.create_image(name=unique("zs-life"), disk_format="raw",
                                container_format="bare", virtual_env_type="DataImage")
    assert w.server.upload(img["id"], data).status_code == 204
    return zstack_uuid(img["id"])


def test_image_life_cycle(world):
    w = world
    data = apply(bytes(2 * MIB), [(4096, 0x42, 8192)])
    img = small_data_image(w, data)
    actions = f"images/{img}/actions"
    new_name = unique("renamed")
    r = w.zs.action(actions, "updateImage", {"name": new_name, "description": "updated"})
    assert r.status == 200, r.text
    assert r.inventory["name"] == new_name and r.inventory["description"] == "updated"
    assert w.server.get_image(ims_uuid(img))["name"] == new_name  # the same image in Glance
    r = w.zs.action(actions, "changeImageState", {"stateEvent": "disable"})
    assert r.status == 200 and r.inventory["state"] == "Disabled", r.text
    # A Disabled image makes no volumes.
    refused_vol = w.zs.create(f"volumes/data/from/data-volume-templates/{img}",
                              {"name": unique("v"), "primaryStorageUuid": w.ps["uuid"]})
    refused_vol.expect_error("SYS.1006")
    r = w.zs.action(actions, "changeImageState", {"stateEvent": "enable"})
    assert r.status == 200 and r.inventory["state"] == "Enabled", r.text
    w.zs.action(actions, "recoverImage").expect_error("SYS.1006")  # not deleted
    d = w.zs.delete(f"images/{img}")
    assert d.status == 200 and d.body.get("error") is None, d.text
    assert query_one(w.zs, "images", img)["status"] == "Deleted"
    r = w.zs.action(actions, "recoverImage")
    assert r.status == 200 and r.inventory["status"] == "Ready", r.text
    assert w.zs.delete(f"images/{img}").status == 200
    e = w.zs.action(actions, "expungeImage")
    assert e.status == 200 and e.body.get("error") is None, e.text
    assert w.zs.get(f"images/{img}").body["inventories"] == []


def test_volume_life_cycle(world):
    w = world
    vol = w.new_volume()
    actions = f"volumes/{vol['uuid']}/actions"
    new_name = unique("vol-renamed")
    r = w.zs.action(actions, "updateVolume", {"name": new_name, "description": "updated"})
    assert r.status == 200, r.text
    assert r.inventory["name"] == new_name and r.inventory["description"] == "updated"
    assert w.zs.delete(f"volumes/{vol['uuid']}").status == 200
    assert query_one(w.zs, "volumes", vol["uuid"])["status"] == "Deleted"
    # Deleting it again: wrong state.
    w.zs.delete(f"volumes/{vol['uuid']}").expect_error("SYS.1006")
    r = w.zs.action(actions, "recoverDataVolume")
    assert r.status == 200 and r.inventory["status"] == "Ready", r.text
    assert w.zs.delete(f"volumes/{vol['uuid']}").status == 200
    assert w.zs.action(actions, "expungeDataVolume").status == 200
    assert w.zs.get(f"volumes/{vol['uuid']}").body["inventories"] == []


def test_expunged_image_keeps_its_data_for_its_volumes(world, tmp_path):
    """Deleting and expunging an image whose blob backs a volume keeps the blob: a template
    made from the volume afterwards still has the image's bytes."""
    w = world
    data = apply(bytes(2 * MIB), [(0, 0x61, 4096), (MIB, 0x62, 4096)])
    img = small_data_image(w, data)
    vol = volume_from_template(w.zs, img, w.ps["uuid"], unique("orphan"))
    assert w.zs.delete(f"images/{img}").status == 200
    assert w.zs.action(f"images/{img}/actions", "expungeImage").status == 200
    assert w.zs.get(f"images/{img}").body["inventories"] == []
    r = w.zs.create(f"images/data-volume-templates/from/volumes/{vol['uuid']}",
                    {"name": unique("from-orphan")})
    assert r.status == 200, r.text
    inv = r.inventory
    out = tmp_path / "orphan.saved"
    w.server.osc("image", "save", "--file", str(out), ims_uuid(inv["uuid"]))
    assert raw_content(out, inv["format"], tmp_path) == data
