"""Negative cases through raw HTTP (requests) with a Keystone token.

Every error must carry the status and a JSON body {"message", "code", "title"} whose
code names the status (Glance writes e.g. "404 Not Found").
"""

from __future__ import annotations

import os
import uuid

import pytest
import requests

from conftest import md5, unique

PATCH_V21 = "application/openstack-images-v2.1-json-patch"


def assert_error(r: requests.Response, status: int) -> dict:
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:500]}"
    ctype = r.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), f"error Content-Type {ctype!r}: {r.text[:300]}"
    body = r.json()
    assert isinstance(body, dict), body
    for key in ("message", "code", "title"):
        assert key in body, f"error body lacks {key!r}: {body}"
    assert isinstance(body["message"], str) and isinstance(body["title"], str), body
    # Glance (webob) renders the code as "404 Not Found"; a bare number is accepted too.
    assert str(body["code"]).split()[0] == str(status), body
    assert body["message"], body
    assert body["title"], body
    return body


@pytest.fixture
def active_image(ims):
    """An active admin-owned image with 100 known bytes."""
    data = os.urandom(100)
    img = ims.create_image()
    r = ims.upload(img["id"], data)
    assert r.status_code == 204, r.text
    yield img["id"], data
    ims.request("DELETE", f"/v2/images/{img['id']}")


@pytest.fixture
def queued_image(ims):
    img = ims.create_image()
    yield img["id"]
    ims.request("DELETE", f"/v2/images/{img['id']}")


# ---- authentication


def test_no_token_401(ims):
    r = ims.request("GET", "/v2/images", cloud=None)
    assert_error(r, 401)
    www = r.headers.get("WWW-Authenticate", "")
    assert www.startswith("Keystone uri="), f"WWW-Authenticate: {www!r}"
    assert ims.url in www, www


def test_bad_token_401(ims):
    r = ims.request("GET", "/v2/images", cloud=None, headers={"X-Auth-Token": "0" * 64})
    assert_error(r, 401)
    assert r.headers.get("WWW-Authenticate", "").startswith("Keystone uri=")


def test_wrong_password_401(ims):
    c = ims.clouds["demo2"]
    r = requests.post(f"{ims.url}/v3/auth/tokens", headers={"Accept": "application/json"}, timeout=30, json={
        "auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": c.username, "domain": {"name": "Default"}, "password": "wrong"}}},
            "scope": {"project": {"name": "demo2", "domain": {"name": "Default"}}}}})
    assert r.status_code == 401, r.text
    assert "X-Subject-Token" not in r.headers
    # Keystone's own error shape, which keystoneauth parses.
    err = r.json()["error"]
    assert err["code"] == 401 and err["title"] and err["message"], err


# ---- request validation on create


def test_malformed_json_400(ims):
    r = ims.request("POST", "/v2/images", headers={"Content-Type": "application/json"},
                    data=b'{"name": "x", ')
    assert_error(r, 400)


def test_wrong_type_400(ims):
    r = ims.request("POST", "/v2/images", json={"min_ram": "x"})
    assert_error(r, 400)


def test_read_only_attribute_403(ims):
    name = unique("ro")
    r = ims.request("POST", "/v2/images", json={"name": name, "status": "active"})
    assert_error(r, 403)
    listed = ims.request("GET", f"/v2/images?name={name}").json()["images"]
    assert listed == [], "a refused create left an image behind"


# ---- listing


def test_unknown_sort_key_400(ims):
    assert_error(ims.request("GET", "/v2/images?sort_key=bogus"), 400)
    assert_error(ims.request("GET", "/v2/images?sort=bogus:asc"), 400)
    # The valid spellings work.
    assert ims.request("GET", "/v2/images?sort_key=name&sort_dir=asc").status_code == 200
    assert ims.request("GET", "/v2/images?sort=name:asc,created_at:desc").status_code == 200


def test_changes_since_400(ims):
    r = ims.request("GET", "/v2/images?changes-since=2020-01-01T00:00:00Z")
    assert_error(r, 400)


# ---- lookups


def test_non_uuid_id_404(ims):
    assert_error(ims.request("GET", "/v2/images/not-a-uuid"), 404)
    assert_error(ims.request("GET", f"/v2/images/{uuid.uuid4()}"), 404)


def test_other_project_private_image_404(ims, queued_image):
    r = ims.request("GET", f"/v2/images/{queued_image}", cloud="demo2")
    assert_error(r, 404)
    r = ims.request("GET", f"/v2/images/{queued_image}/file", cloud="demo2")
    assert_error(r, 404)
    listed = ims.request("GET", "/v2/images", cloud="demo2").json()["images"]
    assert queued_image not in {i["id"] for i in listed}


# ---- PATCH


def test_patch_wrong_content_type_415(ims, queued_image):
    r = ims.request("PATCH", f"/v2/images/{queued_image}",
                    headers={"Content-Type": "application/json"},
                    json=[{"op": "replace", "path": "/name", "value": "x"}])
    assert_error(r, 415)
    accept_patch = r.headers.get("Accept-Patch", "")
    assert PATCH_V21 in accept_patch, f"Accept-Patch: {accept_patch!r}"
    # The right media type works.
    r = ims.request("PATCH", f"/v2/images/{queued_image}", headers={"Content-Type": PATCH_V21},
                    json=[{"op": "replace", "path": "/name", "value": "renamed"}])
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "renamed"


# ---- download ranges


def test_multi_range_400(ims, active_image):
    image_id, _ = active_image
    r = ims.request("GET", f"/v2/images/{image_id}/file", headers={"Range": "bytes=0-1,3-4"})
    assert_error(r, 400)


def test_range_beyond_size_416(ims, active_image):
    image_id, data = active_image
    r = ims.request("GET", f"/v2/images/{image_id}/file", headers={"Range": "bytes=1000-2000"})
    assert_error(r, 416)
    # A satisfiable range still works.
    r = ims.request("GET", f"/v2/images/{image_id}/file", headers={"Range": "bytes=90-"})
    assert r.status_code == 206, r.text
    assert r.content == data[90:]
    assert r.headers.get("Content-Range") == "bytes 90-99/100"


# ---- upload


def test_upload_to_active_image_409(ims, active_image):
    image_id, data = active_image
    r = ims.upload(image_id, os.urandom(50))
    assert_error(r, 409)
    img = ims.get_image(image_id)
    assert img["status"] == "active"
    assert img["checksum"] == md5(data)


def test_upload_size_mismatch_400_then_retry(ims, queued_image):
    data = os.urandom(1000)
    r = ims.upload(queued_image, data, headers={"x-openstack-image-size": "999"})
    assert_error(r, 400)
    img = ims.get_image(queued_image)
    assert img["status"] == "queued"
    assert img.get("checksum") is None and img.get("size") is None, img
    r = ims.upload(queued_image, data, headers={"x-openstack-image-size": "1000"})
    assert r.status_code == 204, r.text
    img = ims.get_image(queued_image)
    assert img["status"] == "active"
    assert img["size"] == 1000
    assert img["checksum"] == md5(data)
    assert ims.request("GET", f"/v2/images/{queued_image}/file").content == data


def test_size_cap_413(ims_small_cap):
    srv = ims_small_cap
    img = srv.create_image()
    # Declared length over the cap.
    r = srv.upload(img["id"], os.urandom(8192))
    assert_error(r, 413)
    assert srv.get_image(img["id"])["status"] == "queued"

    # Chunked (no length known up front): caught while streaming.
    def chunks():
        for _ in range(8):
            yield os.urandom(1024)

    r = srv.upload(img["id"], chunks())
    assert_error(r, 413)
    after = srv.get_image(img["id"])
    assert after["status"] == "queued"
    assert after.get("size") is None

    # Under the cap still works.
    data = os.urandom(4000)
    assert srv.upload(img["id"], data).status_code == 204
    assert srv.get_image(img["id"])["checksum"] == md5(data)


# ---- delete / roles


def test_delete_protected_403(ims):
    img = ims.create_image(protected=True)
    r = ims.request("DELETE", f"/v2/images/{img['id']}")
    assert_error(r, 403)
    assert ims.get_image(img["id"])["protected"] is True
    r = ims.request("PATCH", f"/v2/images/{img['id']}", headers={"Content-Type": PATCH_V21},
                    json=[{"op": "replace", "path": "/protected", "value": False}])
    assert r.status_code == 200, r.text
    assert ims.request("DELETE", f"/v2/images/{img['id']}").status_code == 204
    assert ims.request("GET", f"/v2/images/{img['id']}").status_code == 404


def test_reader_cannot_create_403(ims):
    name = unique("reader")
    r = ims.request("POST", "/v2/images", cloud="reader2",
                    json={"name": name, "disk_format": "raw", "container_format": "bare"})
    assert_error(r, 403)
    # The reader can still read its project's images.
    img = ims.create_image(cloud="demo2")
    try:
        assert ims.request("GET", f"/v2/images/{img['id']}", cloud="reader2").status_code == 200
        r = ims.request("DELETE", f"/v2/images/{img['id']}", cloud="reader2")
        assert_error(r, 403)
    finally:
        ims.request("DELETE", f"/v2/images/{img['id']}", cloud="demo2")
    listed = ims.request("GET", f"/v2/images?name={name}", cloud="demo2").json()["images"]
    assert listed == []


def test_image_count_quota_413(ims_quota):
    srv = ims_quota
    ids = [srv.create_image()["id"] for _ in range(3)]
    r = srv.request("POST", "/v2/images",
                    json={"name": unique("over"), "disk_format": "raw", "container_format": "bare"})
    assert_error(r, 413)
    listed = srv.request("GET", "/v2/images").json()["images"]
    assert sorted(i["id"] for i in listed) == sorted(ids)
    assert srv.request("DELETE", f"/v2/images/{ids[0]}").status_code == 204
    ids[0] = srv.create_image()["id"]
    for i in ids:
        srv.request("DELETE", f"/v2/images/{i}")
