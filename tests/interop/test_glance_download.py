"""glance-download with the real clients: openstacksdk, the openstack CLI and glanceclient.

ims is one region; its own catalog is the "remote" Glance, so the source image is an image
of the same server, read as the importing user may see it.
"""

from __future__ import annotations

import os

from conftest import md5, unique, wait_until

REGION = "RegionOne"


def wait_import(server, image_id: str, cloud: str, timeout: float = 60.0) -> dict:
    """The image once its import task has finished (success or failure)."""
    tasks = wait_until(
        lambda: server.request("GET", f"/v2/images/{image_id}/tasks", cloud=cloud).json()["tasks"],
        lambda tasks: tasks and tasks[0]["status"] in ("success", "failure"),
        timeout=timeout, interval=0.2, what="the end of the import")
    return {"task": tasks[0], "image": server.get_image(image_id, cloud=cloud)}


def boot_source(server, cloud: str, data: bytes) -> str:
    """An active raw image of `cloud`'s project with boot properties and one other."""
    img = server.create_image(cloud=cloud, name=unique("gd-src"))
    assert server.upload(img["id"], data, cloud=cloud).status_code == 204
    patch = [{"op": "add", "path": f"/{k}", "value": v}
             for k, v in {"hw_cpu_cores": "5", "os_distro": "rhel", "speed": "88mph"}.items()]
    r = server.request("PATCH", f"/v2/images/{img['id']}", cloud=cloud, json=patch,
                       headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
    assert r.status_code == 200, r.text
    return img["id"]


def test_sdk_glance_download(ims, demo2_conn):
    data = os.urandom(200_000)
    src = boot_source(ims, "demo2", data)
    dst = demo2_conn.image.create_image(name=unique("gd-dst"), disk_format="iso",
                                        container_format="ovf")
    assert "glance-download" in demo2_conn.image.get_import_info().import_methods["value"]
    # openstacksdk 4.22 sends the glance_* parameters only when the interface is given.
    demo2_conn.image.import_image(dst, method="glance-download", remote_region=REGION,
                                  remote_image_id=src, remote_service_interface="public")
    done = wait_import(ims, dst.id, "demo2")
    assert done["task"]["status"] == "success", done["task"]
    img = done["image"]
    assert (img["disk_format"], img["container_format"]) == ("raw", "bare")
    assert (img["hw_cpu_cores"], img["os_distro"]) == ("5", "rhel")
    assert "speed" not in img
    assert img["checksum"] == md5(data)
    got = demo2_conn.image.download_image(dst.id)
    assert got.content == data


def test_sdk_glance_download_bad_uuid(ims, demo2_conn):
    dst = demo2_conn.image.create_image(name=unique("gd-bad"), disk_format="raw",
                                        container_format="bare")
    # openstacksdk returns the raw response of the import call (it raises nothing).
    r = demo2_conn.image.import_image(dst, method="glance-download", remote_region=REGION,
                                      remote_image_id="foo", remote_service_interface="public")
    assert r.status_code == 400, r.text
    assert "image id does not look like a UUID" in r.text, r.text
    assert demo2_conn.image.get_image(dst.id).status == "queued"


def test_osc_glance_download_of_an_invisible_image_fails(ims):
    """The admin's private image does not exist for demo2: the task fails, the target
    stays queued with its own properties."""
    private = boot_source(ims, "ims", b"admin only")
    dst = ims.osc_json("image", "create", "--disk-format", "raw", "--container-format", "bare",
                       "--property", "os_distro=windows", unique("gd-osc"), cloud="demo2")
    ims.osc("image", "import", "--method", "glance-download", "--remote-image", private,
            "--remote-region", REGION, "--remote-service-interface", "public",
            "--disallow-failure", dst["id"], cloud="demo2")
    done = wait_import(ims, dst["id"], "demo2")
    assert done["task"]["status"] == "failure", done["task"]
    assert done["task"]["message"] == f"image {private} not found"
    assert done["image"]["status"] == "queued"
    assert done["image"]["os_distro"] == "windows"


def test_glance_cli_create_via_glance_download(ims):
    data = os.urandom(50_000)
    src = boot_source(ims, "demo2", data)
    # glanceclient sends no interface unless asked: ims, as Glance, defaults to public.
    created = ims.glance("image-create-via-import", "--name", unique("gd-cli"),
                         "--disk-format", "iso", "--container-format", "ovf",
                         "--import-method", "glance-download", "--remote-region", REGION,
                         "--remote-image-id", src, cloud="demo2")
    image_id = next(line.split("|")[2].strip() for line in created.stdout.splitlines()
                    if line.startswith("| id "))
    done = wait_import(ims, image_id, "demo2")
    assert done["task"]["status"] == "success", done["task"]
    assert done["task"]["input"]["import_req"]["method"]["glance_service_interface"] == "public"
    assert done["image"]["checksum"] == md5(data)
    assert done["image"]["disk_format"] == "raw"
