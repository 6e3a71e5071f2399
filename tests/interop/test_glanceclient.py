"""python-glanceclient (`glance` CLI) against a real ims."""

from __future__ import annotations

import json
import uuid

import requests

from conftest import md5, parse_table, sha512, unique, wait_until


def test_glance_create_download_list(ims, random_file, workdir):
    data = random_file.read_bytes()
    name = unique("glance")
    created = ims.glance("image-create", "--name", name, "--disk-format", "raw",
                         "--container-format", "bare", "--file", random_file, "--progress")
    table = parse_table(created.stdout)
    image_id = table["id"]
    assert table["name"] == name
    assert table["status"] == "active"
    assert table["checksum"] == md5(data)
    assert int(table["size"]) == len(data)
    assert table["os_hash_algo"] == "sha512"
    assert table["os_hash_value"] == sha512(data)

    out = workdir / "glance.out"
    ims.glance("image-download", "--file", out, image_id)
    assert out.read_bytes() == data

    listing = ims.glance("image-list").stdout
    assert image_id in listing and name in listing, listing

    ims.glance("image-update", "--property", "color=blue", image_id)
    ims.glance("image-tag-update", image_id, "gt1")
    shown = parse_table(ims.glance("image-show", image_id).stdout)
    assert shown["color"] == "blue"
    assert "gt1" in shown["tags"]
    ims.glance("image-update", "--remove-property", "color", image_id)
    ims.glance("image-tag-delete", image_id, "gt1")
    raw = ims.get_image(image_id)
    assert "color" not in raw and raw["tags"] == []

    ims.glance("image-delete", image_id)
    gone = ims.glance("image-show", image_id, check=False)
    assert gone.returncode != 0
    assert "has no attribute" not in gone.stderr, (
        f"glanceclient crashed parsing the 404 error body: {gone.stderr!r}")
    assert "404" in gone.stderr, gone.stderr


def test_glance_create_via_import(ims, random_file, workdir):
    data = random_file.read_bytes()
    name = unique("glance-import")
    info = parse_table(ims.glance("import-info").stdout)
    methods = json.loads(info["import-methods"])
    assert "glance-direct" in methods["value"], methods
    created = ims.glance("image-create-via-import", "--name", name, "--disk-format", "raw",
                         "--container-format", "bare", "--import-method", "glance-direct",
                         "--file", random_file)
    image_id = parse_table(created.stdout)["id"]
    shown = wait_until(lambda: parse_table(ims.glance("image-show", image_id).stdout),
                       lambda s: s["status"] not in ("queued", "uploading", "importing", "saving"),
                       interval=0.5, what="the end of the import")
    assert shown["status"] == "active"
    assert shown["checksum"] == md5(data)
    out = workdir / "glance-import.out"
    ims.glance("image-download", "--file", out, image_id)
    assert out.read_bytes() == data
    ims.glance("image-delete", image_id)


def test_glance_members(ims, random_file):
    name = unique("glance-members")
    created = ims.glance("image-create", "--name", name, "--disk-format", "raw",
                         "--container-format", "bare", "--visibility", "shared",
                         "--file", random_file)
    image_id = parse_table(created.stdout)["id"]
    demo2_id = ims.project_ids["demo2"]
    assert image_id not in ims.glance("image-list", cloud="demo2").stdout
    ims.glance("member-create", image_id, demo2_id)
    ims.glance("member-update", image_id, demo2_id, "accepted", cloud="demo2")
    members = ims.glance("member-list", "--image-id", image_id).stdout
    assert demo2_id in members and "accepted" in members, members
    assert image_id in ims.glance("image-list", cloud="demo2").stdout
    ims.glance("image-delete", image_id)


def test_error_body_parses_in_glanceclient(ims):
    """glanceclient sends no Accept header and turns every error into an exception with
    `glanceclient.exc.from_response`, which reads a JSON body as
    `{"<kind>": {"message": ...}}` (values must be objects) and otherwise parses HTML or
    text. Glance (webob) answers a request without Accept with text/html, so the CLI shows
    the message; a top-level `{"message": "...", ...}` JSON body makes glanceclient crash
    with "'str' object has no attribute 'get'" instead of reporting the 404.
    """
    from glanceclient import exc

    missing = uuid.uuid4()
    for accept in (None, ""):  # glanceclient: no header; openstacksdk: "Accept: "
        r = requests.get(f"{ims.url}/v2/images/{missing}", timeout=30,
                         headers={"X-Auth-Token": ims.token(), "Accept": accept,
                                  "Content-Type": "application/octet-stream"})
        assert r.status_code == 404
        try:
            err = exc.from_response(r, r.content)
        except AttributeError as e:
            raise AssertionError(
                f"glanceclient cannot parse the 404 body (Accept={accept!r}, "
                f"Content-Type={r.headers.get('Content-Type')!r}): {r.text!r}: {e}") from e
        assert isinstance(err, exc.HTTPNotFound)
        assert str(missing) in str(err.details), err.details
