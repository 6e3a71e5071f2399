"""openstacksdk (in process) against a real ims."""

from __future__ import annotations

import openstack
import pytest

from conftest import md5, sha512, unique


@pytest.fixture
def conn(ims, monkeypatch):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(ims.clouds_yaml))
    monkeypatch.delenv("OS_CLOUD", raising=False)
    c = openstack.connect(cloud="ims")
    try:
        yield c
    finally:
        c.close()


def test_sdk_create_image_with_import(ims, conn, random_file, workdir):
    data = random_file.read_bytes()
    name = unique("sdk-import")

    methods = conn.image.get_import_info().import_methods
    assert "glance-direct" in (methods.get("value") or []), methods

    img = conn.create_image(name, filename=str(random_file), disk_format="raw",
                            container_format="bare", use_import=True, wait=True, timeout=120,
                            validate_checksum=True)
    assert img.name == name
    # The SDK's wait only waits for the image to leave queued/saving; import runs
    # asynchronously (as in Glance), so it may still be `importing` here.
    assert img.status in ("importing", "active"), img.status
    img = conn.image.wait_for_status(img, status="active", failures=["killed", "queued"],
                                     interval=0.2, wait=60)
    assert img.status == "active"
    assert img.checksum == md5(data)
    assert img.size == len(data)
    assert img.hash_algo == "sha512"
    assert img.hash_value == sha512(data)

    raw = ims.get_image(img.id)
    assert raw["status"] == "active"
    assert raw["checksum"] == md5(data)
    # With validate_checksum the SDK records the client-side hashes as properties.
    assert raw["owner_specified.openstack.md5"] == md5(data)
    assert raw["owner_specified.openstack.object"] == f"images/{name}"

    out = workdir / "sdk-import.out"
    conn.image.download_image(img, output=str(out))
    assert out.read_bytes() == data

    assert [i.id for i in conn.image.images(name=name)] == [img.id]
    conn.image.delete_image(img, ignore_missing=False)
    assert conn.image.find_image(img.id) is None


def test_sdk_plain_upload(ims, conn, random_file):
    data = random_file.read_bytes()
    name = unique("sdk-put")
    with open(random_file, "rb") as f:
        img = conn.image.create_image(name, data=f, disk_format="raw", container_format="bare",
                                      use_import=False)
    fetched = conn.image.get_image(img.id)
    assert fetched.status == "active"
    assert fetched.checksum == md5(data)
    assert fetched.size == len(data)
    assert fetched.hash_value == sha512(data)
    assert conn.image.download_image(fetched).content == data

    # A ranged read through the SDK's session.
    r = conn.image.get(f"/images/{img.id}/file", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206
    assert r.content == data[10:20]

    conn.image.update_image(fetched, min_ram=512)
    conn.image.update_image_properties(fetched, foo="bar")
    again = conn.image.get_image(img.id)
    assert again.min_ram == 512
    assert again.properties.get("foo") == "bar"
    assert ims.get_image(img.id)["foo"] == "bar"
    conn.image.delete_image(img, ignore_missing=False)
    assert conn.image.find_image(img.id) is None


def test_sdk_update_image_with_property_kwarg(ims, conn):
    """`conn.image.update_image(img, foo='bar')`: the SDK diffs the image's extra
    properties and PATCHes `remove` for every one it did not get back (it treats the
    kwarg as the new property set). Against Glance this succeeds; any read-only
    attribute that the server reports as an extra property makes it fail with 403.
    """
    img = conn.image.create_image(unique("sdk-kwarg"), data=b"x" * 100, disk_format="raw",
                                  container_format="bare")
    try:
        fetched = conn.image.get_image(img.id)
        conn.image.update_image(fetched, foo="bar")
        assert ims.get_image(img.id)["foo"] == "bar"
    finally:
        conn.image.delete_image(img, ignore_missing=True)


def test_sdk_members(ims, conn, demo2_conn, random_file):
    name = unique("sdk-members")
    img = conn.image.create_image(name, filename=str(random_file), disk_format="raw",
                                  container_format="bare", visibility="shared")
    demo2_id = ims.project_ids["demo2"]
    assert demo2_conn.image.find_image(img.id) is None
    member = conn.image.add_member(img, member_id=demo2_id)
    assert member.status == "pending"
    demo2_conn.image.update_member(demo2_id, img, status="accepted")
    assert conn.image.get_member(demo2_id, img).status == "accepted"
    assert img.id in {i.id for i in demo2_conn.image.images()}
    conn.image.delete_image(img, ignore_missing=False)
