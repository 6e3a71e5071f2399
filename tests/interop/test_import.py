"""Interoperable image import: web-download (OSC and raw API) and its URL filter."""

from __future__ import annotations

import os

from conftest import md5, sha512, unique, wait_until


def wait_status(server, image_id: str, settled=("active", "queued", "killed"), timeout=60.0):
    return wait_until(lambda: server.get_image(image_id), lambda img: img["status"] in settled,
                      timeout=timeout, interval=0.2, what=f"image {image_id} settling")


def test_web_download_with_osc(ims_web, file_server, workdir):
    srv = ims_web
    data = os.urandom(300_000)
    uri = file_server.serve(data)
    name = unique("web")

    info = srv.request("GET", "/v2/info/import").json()
    assert "web-download" in info["import-methods"]["value"], info

    created = srv.osc_json("image", "create", "--disk-format", "raw", "--container-format", "bare",
                           name)
    image_id = created["id"]
    assert created["status"] == "queued"
    # OSC 10.5 defaults to --allow-failure, i.e. all_stores_must_succeed=false, which a
    # single-store Glance (and ims) refuses with 400 -- and OSC then still exits 0. So
    # pass --disallow-failure, and judge by the image.
    srv.osc("image", "import", "--method", "web-download", "--uri", uri, "--disallow-failure",
            image_id)

    img = wait_status(srv, image_id)
    assert img["status"] == "active", (
        f"import did not happen (status {img['status']}); server log:\n{srv.log_tail(15)}")
    assert img["size"] == len(data)
    assert img["checksum"] == md5(data)
    assert img["os_hash_value"] == sha512(data)
    out = workdir / "web.out"
    srv.osc("image", "save", "--file", out, image_id)
    assert out.read_bytes() == data
    srv.osc("image", "delete", image_id)


def test_web_download_with_glance_cli(ims_web, file_server):
    srv = ims_web
    data = os.urandom(5000)
    uri = file_server.serve(data)
    created = srv.glance("image-create-via-import", "--name", unique("glance-web"),
                         "--disk-format", "raw", "--container-format", "bare",
                         "--import-method", "web-download", "--uri", uri)
    image_id = next(line.split("|")[2].strip() for line in created.stdout.splitlines()
                    if line.startswith("| id "))
    img = wait_status(srv, image_id)
    assert img["status"] == "active", img
    assert img["checksum"] == md5(data)
    srv.glance("image-delete", image_id)


def test_web_download_private_address_refused(ims_web_public_only, file_server):
    """Ports are open, but loopback is private: the import job fails and the image is
    queued again without data."""
    srv = ims_web_public_only
    uri = file_server.serve(os.urandom(1000))
    img = srv.create_image()
    r = srv.request("POST", f"/v2/images/{img['id']}/import",
                    json={"method": {"name": "web-download", "uri": uri}})
    assert r.status_code == 202, r.text
    after = wait_status(srv, img["id"], settled=("active", "queued", "killed"))
    assert after["status"] == "queued", after
    assert after.get("checksum") is None
    # Refused for its address, not for any other failure (the task may end a moment
    # after the image is queued again).
    [task] = wait_until(lambda: srv.request("GET", f"/v2/images/{img['id']}/tasks").json()["tasks"],
                        lambda tasks: tasks and tasks[0]["status"] in ("success", "failure"),
                        what="the end of the import task")
    assert task["status"] == "failure", task
    assert "resolves to an address that is not allowed" in task["message"], task


def test_web_download_port_filtered_400(ims, file_server):
    """Default filter: ports 80/443 only; the import call itself is refused."""
    uri = file_server.serve(os.urandom(10))
    img = ims.create_image()
    try:
        r = ims.request("POST", f"/v2/images/{img['id']}/import",
                        json={"method": {"name": "web-download", "uri": uri}})
        assert r.status_code == 400, r.text
        body = r.json()
        assert str(body["code"]).startswith("400") and body["message"] and body["title"], body
        assert ims.get_image(img["id"])["status"] == "queued"
    finally:
        ims.request("DELETE", f"/v2/images/{img['id']}")


def test_glance_direct_stage_then_import_raw(ims):
    """The glance-direct steps by hand: stage → uploading, import → active."""
    data = os.urandom(2048)
    img = ims.create_image()
    r = ims.request("PUT", f"/v2/images/{img['id']}/stage", data=data,
                    headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    assert ims.get_image(img["id"])["status"] == "uploading"
    r = ims.request("POST", f"/v2/images/{img['id']}/import",
                    json={"method": {"name": "glance-direct"}})
    assert r.status_code == 202, r.text
    done = wait_status(ims, img["id"])
    assert done["status"] == "active"
    assert done["checksum"] == md5(data)
    assert ims.request("GET", f"/v2/images/{img['id']}/file").content == data
    ims.request("DELETE", f"/v2/images/{img['id']}")


def test_import_store_flags_like_single_store_glance(ims):
    """`all_stores_must_succeed: false` needs multiple stores: Glance without
    enabled_backends answers 400 (what OSC's default `image import` sends); `true` and
    `all_stores: false` are accepted."""
    data = os.urandom(1500)
    img = ims.create_image()
    try:
        r = ims.request("PUT", f"/v2/images/{img['id']}/stage", data=data,
                        headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 204, r.text
        r = ims.request("POST", f"/v2/images/{img['id']}/import",
                        json={"method": {"name": "glance-direct"}, "all_stores": False,
                              "all_stores_must_succeed": False})
        assert r.status_code == 400, r.text
        assert ims.get_image(img["id"])["status"] == "uploading"
        r = ims.request("POST", f"/v2/images/{img['id']}/import",
                        json={"method": {"name": "glance-direct"}, "all_stores": False,
                              "all_stores_must_succeed": True})
        assert r.status_code == 202, r.text
        done = wait_status(ims, img["id"])
        assert done["status"] == "active"
        assert done["checksum"] == md5(data)
    finally:
        ims.request("DELETE", f"/v2/images/{img['id']}")
