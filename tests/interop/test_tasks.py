"""Glance's task API and the v2.0 JSON-patch media type, driven by real clients:
glanceclient (`glance task-create/task-list/task-show`, `image-update`), openstacksdk
(`image.tasks()`, `create_task`, `get_task`) and raw requests as Tempest sends them."""

from __future__ import annotations

import json
import os

import pytest

from conftest import finish_setup, md5, unique, wait_until

PATCH_V20 = "application/openstack-images-v2.0-json-patch"


@pytest.fixture(scope="module")
def ims_tasks(ims_factory):
    """A server that may import from 127.0.0.1 (any port) and no other internal address,
    as a Tempest harness configures it for its `http_image`."""
    server = ims_factory("tasks", {"IMS_WEB_DOWNLOAD__ALLOW_ADDRESSES": '["127.0.0.1"]',
                                   "IMS_WEB_DOWNLOAD__PORTS": "[]"})
    finish_setup(server)
    return server


def raw_data(size: int = 200_000) -> bytes:
    data = bytearray(os.urandom(size))
    data[510] = 0  # never an MBR signature by chance
    return bytes(data)


def task_input(uri: str, name: str) -> dict:
    return {"import_from": uri, "import_from_format": "raw",
            "image_properties": {"name": name, "disk_format": "raw",
                                 "container_format": "bare"}}


def wait_task(server, task_id: str, timeout: float = 60.0) -> dict:
    def task():
        r = server.request("GET", f"/v2/tasks/{task_id}")
        assert r.status_code == 200, r.text
        return r.json()
    return wait_until(task, lambda t: t["status"] in ("success", "failure"), timeout=timeout,
                      interval=0.2, what=f"the end of task {task_id}")


def test_glanceclient_creates_lists_and_shows_an_import_task(ims_tasks, file_server):
    srv = ims_tasks
    data = raw_data()
    uri = file_server.serve(data)
    name = unique("task")
    out = srv.glance("task-create", "--type", "import",
                     "--input", json.dumps(task_input(uri, name))).stdout
    assert "import" in out and ("pending" in out or "processing" in out), out
    task_id = next(line.split("|")[2].strip() for line in out.splitlines()
                   if line.startswith("| id "))
    done = wait_task(srv, task_id)
    assert done["status"] == "success", done
    image = srv.get_image(done["result"]["image_id"])
    assert (image["name"], image["status"], image["checksum"]) == (name, "active", md5(data))

    listing = srv.glance("task-list").stdout
    assert task_id in listing, listing
    shown = srv.glance("task-show", task_id).stdout
    assert "success" in shown and done["result"]["image_id"] in shown, shown

    # A non-admin is refused, as Glance's default tasks_api_access policy does.
    proc = srv.glance("task-list", cloud="demo2", check=False)
    assert proc.returncode != 0
    assert "403" in proc.stderr or "Forbidden" in proc.stderr, proc.stderr


def test_glanceclient_reports_glances_400_for_a_bad_task(ims_tasks):
    srv = ims_tasks
    proc = srv.glance("task-create", "--type", "import", "--input",
                      json.dumps(task_input("file:///etc/passwd", unique("bad"))), check=False)
    assert proc.returncode != 0
    assert "File based imports are not allowed" in proc.stderr, proc.stderr
    r = srv.request("POST", "/v2/tasks", json={"type": "import"})
    assert (r.status_code, r.json()["message"]) == (400, "Task 'input' is required")
    r = srv.request("POST", "/v2/tasks", json={"type": "transmogrify", "input": {}})
    assert r.status_code == 400 and "'transmogrify' is not one of" in r.json()["message"]


def test_openstacksdk_task_api(ims_tasks, file_server, monkeypatch):
    import openstack

    srv = ims_tasks
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(srv.clouds_yaml))
    monkeypatch.delenv("OS_CLOUD", raising=False)
    conn = openstack.connect(cloud="ims")
    try:
        data = raw_data(50_000)
        name = unique("sdk-task")
        task = conn.image.create_task(type="import",
                                      input=task_input(file_server.serve(data), name))
        assert task.type == "import" and task.status in ("pending", "processing")
        done = wait_task(srv, task.id)
        assert done["status"] == "success", done
        fetched = conn.image.get_task(task.id)
        assert fetched.result["image_id"] == done["result"]["image_id"]
        assert fetched.input["image_properties"]["name"] == name
        ids = [t.id for t in conn.image.tasks()]
        assert task.id in ids
        assert task.id in [t.id for t in conn.image.tasks(status="success", type="import")]
        assert task.id not in [t.id for t in conn.image.tasks(status="failure")]
        image = conn.image.get_image(done["result"]["image_id"])
        assert image.checksum == md5(data)
    finally:
        conn.close()


def test_a_task_from_a_host_that_cannot_be_fetched_fails_cleanly(ims_tasks):
    """What Tempest's test_task_create_fake_image_location does."""
    srv = ims_tasks
    name = unique("fake")
    r = srv.request("POST", "/v2/tasks", json={
        "type": "import",
        "input": task_input(f"http://{name}.qcow2", name)})
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"/v2/tasks/{r.json()['id']}"
    done = wait_task(srv, r.json()["id"])
    assert done["status"] == "failure" and done["message"], done
    images = srv.request("GET", f"/v2/images?name={name}").json()["images"]
    assert images == [], "the task's image is not left behind"


def test_updates_in_the_v20_patch_form_as_tempest_sends_them(ims_tasks):
    srv = ims_tasks
    img = srv.create_image()
    path = f"/v2/images/{img['id']}"
    h = {"Content-Type": PATCH_V20}
    new_name = unique("renamed")
    r = srv.request("PATCH", path, headers=h, data=json.dumps([
        {"replace": "/name", "value": new_name},
        {"add": "/hw_cpu_cores", "value": "5"},
        {"replace": "/protected", "value": True}]))
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["hw_cpu_cores"], r.json()["protected"]) == (
        new_name, "5", True)
    r = srv.request("PATCH", path, headers=h,
                    data=json.dumps([{"add": "/hw_cpu_cores", "value": "6"}]))
    assert (r.status_code, r.json()["message"]) == (409, "Property hw_cpu_cores already present.")
    r = srv.request("PATCH", path, headers=h,
                    data=json.dumps([{"op": "replace", "path": "/name", "value": "x"}]))
    assert r.status_code == 400 and "exactly one member" in r.json()["message"]
    r = srv.request("PATCH", path, headers=h,
                    data=json.dumps([{"replace": "/protected", "value": False},
                                     {"remove": "/hw_cpu_cores"}]))
    assert r.status_code == 200, r.text
    # glanceclient updates with the v2.1 type; both meet in the same image.
    srv.glance("image-update", "--property", "os_distro=cirros", img["id"])
    shown = srv.get_image(img["id"])
    assert (shown["name"], shown["os_distro"], shown["protected"]) == (new_name, "cirros", False)
    assert "hw_cpu_cores" not in shown
    assert srv.request("DELETE", path).status_code == 204


def test_stores_info_is_glances_single_store_404(ims_tasks):
    r = ims_tasks.request("GET", "/v2/info/stores")
    assert (r.status_code, r.json()["message"]) == (
        404, "Multi backend is not supported at this site.")
    proc = ims_tasks.glance("stores-info", check=False)
    assert proc.returncode != 0
