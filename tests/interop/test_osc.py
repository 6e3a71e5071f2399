"""python-openstackclient (`openstack` CLI) against a real ims."""

from __future__ import annotations


from conftest import md5, sha512, unique, wait_until


def prop(shown: dict, key: str):
    """A field of `openstack image show -f json`: top level, or inside `properties`.

    OSC 10.x moves everything outside its fixed column list (os_hash_algo, custom
    properties, …) into a `properties` dict.
    """
    if key in shown:
        return shown[key]
    props = shown.get("properties") or {}
    assert isinstance(props, dict), f"properties is not a dict: {props!r}"
    return props.get(key)


def list_ids(listing: list[dict]) -> set[str]:
    return {row["ID"] for row in listing}


def test_image_lifecycle(ims, random_file, workdir):
    data = random_file.read_bytes()
    name = unique("osc")

    created = ims.osc_json("image", "create", "--disk-format", "raw", "--container-format", "bare",
                           "--file", random_file, name)
    image_id = created["id"]
    assert created["name"] == name

    shown = ims.osc_json("image", "show", name)
    assert shown["id"] == image_id
    assert shown["status"] == "active"
    assert shown["size"] == len(data)
    assert shown["checksum"] == md5(data)
    assert shown["disk_format"] == "raw"
    assert shown["container_format"] == "bare"
    assert shown["visibility"] in ("shared", "private")
    assert shown["owner"] == ims.project_ids["admin"]
    assert prop(shown, "os_hash_algo") == "sha512"
    assert prop(shown, "os_hash_value") == sha512(data)

    listed = ims.osc_json("image", "list")
    rows = [r for r in listed if r["ID"] == image_id]
    assert rows, f"{image_id} missing from image list: {listed}"
    assert rows[0]["Name"] == name
    assert rows[0]["Status"] == "active"

    out = workdir / "saved.img"
    ims.osc("image", "save", "--file", out, name)
    assert out.read_bytes() == data

    ims.osc("image", "set", "--property", "foo=bar", name)
    ims.osc("image", "set", "--tag", "t1", name)
    shown = ims.osc_json("image", "show", name)
    assert prop(shown, "foo") == "bar"
    assert "t1" in shown["tags"]
    # The same through the raw API: a top-level custom property and a tag.
    raw = ims.get_image(image_id)
    assert raw["foo"] == "bar"
    assert raw["tags"] == ["t1"]
    assert raw["checksum"] == md5(data)

    ims.osc("image", "unset", "--property", "foo", "--tag", "t1", name)
    raw = ims.get_image(image_id)
    assert "foo" not in raw
    assert raw["tags"] == []
    ims.osc("image", "set", "--name", name + "-x", "--min-ram", "256", image_id)
    ims.osc("image", "set", "--name", name, image_id)
    assert ims.get_image(image_id)["min_ram"] == 256

    ims.osc("image", "delete", name)
    missing = ims.osc("image", "show", name, check=False)
    assert missing.returncode != 0
    assert "No Image found" in missing.stderr, missing.stderr
    assert ims.request("GET", f"/v2/images/{image_id}").status_code == 404
    assert image_id not in list_ids(ims.osc_json("image", "list"))


def test_image_create_with_import_qemu_raw(ims, qemu_raw_file, workdir):
    """`openstack image create --import` (glance-direct: stage + import) of a qemu-img raw disk."""
    data = qemu_raw_file.read_bytes()
    name = unique("osc-import")
    created = ims.osc_json("image", "create", "--import", "--disk-format", "raw",
                           "--container-format", "bare", "--file", qemu_raw_file, name)
    image_id = created["id"]
    # Import is asynchronous; poll until it settles.
    shown = wait_until(lambda: ims.osc_json("image", "show", image_id),
                       lambda s: s["status"] not in ("queued", "uploading", "importing", "saving"),
                       interval=0.5, what="the end of the import")
    assert shown["status"] == "active"
    assert shown["size"] == len(data) == 2 * 1024 * 1024
    assert shown["checksum"] == md5(data)
    assert prop(shown, "os_hash_value") == sha512(data)
    out = workdir / "saved.raw"
    ims.osc("image", "save", "--file", out, image_id)
    assert out.read_bytes() == data
    ims.osc("image", "delete", image_id)


def test_sharing_between_projects(ims, random_file, workdir):
    data = random_file.read_bytes()
    name = unique("osc-shared")
    demo2_id = ims.project_ids["demo2"]

    created = ims.osc_json("image", "create", "--disk-format", "raw", "--container-format", "bare",
                           "--shared", "--file", random_file, name)
    image_id = created["id"]
    assert ims.osc_json("image", "show", image_id)["visibility"] == "shared"

    # Not a member yet: invisible to demo2.
    hidden = ims.osc("image", "show", image_id, cloud="demo2", check=False)
    assert hidden.returncode != 0
    assert "No Image found" in hidden.stderr or "404" in hidden.stderr, hidden.stderr
    assert ims.request("GET", f"/v2/images/{image_id}", cloud="demo2").status_code == 404
    assert image_id not in list_ids(ims.osc_json("image", "list", cloud="demo2"))

    # Admin shares it with demo2 (by project name).
    member = ims.osc_json("image", "add", "project", image_id, "demo2")
    assert member["member_id"] == demo2_id
    assert member["image_id"] == image_id
    assert member["status"] == "pending"

    # Pending: the member may GET it (as in Glance) but it is not in its default list.
    assert ims.request("GET", f"/v2/images/{image_id}", cloud="demo2").status_code == 200
    assert image_id not in list_ids(ims.osc_json("image", "list", cloud="demo2"))
    pending = ims.request("GET", "/v2/images?member_status=pending", cloud="demo2")
    assert pending.status_code == 200
    assert image_id in {i["id"] for i in pending.json()["images"]}

    # demo2 accepts.
    ims.osc("image", "set", "--accept", image_id, cloud="demo2")
    members = ims.osc_json("image", "member", "list", image_id)
    by_member = {m["Member ID"]: m for m in members}
    assert by_member[demo2_id]["Status"] == "accepted", members

    shown = ims.osc_json("image", "show", image_id, cloud="demo2")
    assert shown["id"] == image_id
    assert shown["status"] == "active"
    assert shown["checksum"] == md5(data)
    assert image_id in list_ids(ims.osc_json("image", "list", cloud="demo2"))
    out = workdir / "shared.img"
    ims.osc("image", "save", "--file", out, image_id, cloud="demo2")
    assert out.read_bytes() == data

    # A member cannot change the image.
    r = ims.request("PATCH", f"/v2/images/{image_id}", cloud="demo2",
                    headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
                    json=[{"op": "add", "path": "/x", "value": "y"}])
    assert r.status_code == 403, r.text

    # Removing the member hides it again.
    ims.osc("image", "remove", "project", image_id, "demo2")
    assert ims.request("GET", f"/v2/images/{image_id}", cloud="demo2").status_code == 404
    assert image_id not in list_ids(ims.osc_json("image", "list", cloud="demo2"))
    ims.osc("image", "delete", image_id)


def test_set_shared_after_create(ims, random_file):
    """`openstack image set --shared` on a private image, then sharing works."""
    name = unique("osc-set-shared")
    image_id = ims.osc_json("image", "create", "--disk-format", "raw", "--container-format", "bare",
                            "--private", "--file", random_file, name)["id"]
    assert ims.osc_json("image", "show", image_id)["visibility"] == "private"
    ims.osc("image", "set", "--shared", image_id)
    assert ims.osc_json("image", "show", image_id)["visibility"] == "shared"
    ims.osc("image", "add", "project", image_id, ims.project_ids["demo2"])
    ims.osc("image", "set", "--accept", image_id, cloud="demo2")
    assert image_id in list_ids(ims.osc_json("image", "list", cloud="demo2"))
    ims.osc("image", "delete", image_id)
