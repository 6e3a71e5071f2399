"""Glance's multi-store calls through the real clients (openstack CLI, glanceclient,
openstacksdk) against an ims with two stores: `local` (the default) and `cold`, a second
directory. The main server has one store and behaves as a single-store Glance."""

from __future__ import annotations

import openstack
import pytest

from conftest import md5, unique, wait_until


@pytest.fixture(scope="session")
def ims_stores(ims_factory, tmp_path_factory):
    """A server with stores `local` (default, weight 10) and `cold` (weight 0), with
    demo2."""
    from conftest import finish_setup

    cold = tmp_path_factory.mktemp("cold-store")
    stores = (f'{{ local = {{ kind = "file", weight = 10, description = "fast disk" }}, '
              f'cold = {{ kind = "file", path = "{cold}", description = "slow disk" }} }}')
    server = ims_factory("stores", {"IMS_IMAGE_STORES__DEFAULT": "local",
                                    "IMS_IMAGE_STORES__STORES": stores})
    finish_setup(server)
    server.cold_dir = cold
    return server


def prop(shown: dict, key: str):
    """A field of `openstack image show -f json`, top level or under `properties`."""
    return shown[key] if key in shown else (shown.get("properties") or {}).get(key)


def settled(server, image_id: str) -> dict:
    """The image once no store is left importing (os_glance_importing_to_stores is "")."""
    return wait_until(lambda: server.osc_json("image", "show", image_id),
                      lambda s: prop(s, "os_glance_importing_to_stores") == "",
                      what="copies to finish")


def test_stores_list_through_the_cli(ims_stores, ims):
    listed = ims_stores.osc_json("image", "stores", "list")
    assert [(r["ID"], r.get("Default")) for r in listed] == [("local", True), ("cold", None)] \
        or [(r["ID"], bool(r.get("Default"))) for r in listed] == [("local", True), ("cold", False)], listed
    detail = ims_stores.osc_json("image", "stores", "list", "--detail")
    assert {r["ID"]: r["Properties"]["data_dir"] for r in detail}["cold"] == str(ims_stores.cold_dir)
    out = ims_stores.glance("stores-info").stdout
    assert "local" in out and "cold" in out and "slow disk" in out
    # One store: Glance's 404, which the CLI reports as multi-store being off.
    single = ims.osc("image", "stores", "list", check=False)
    assert single.returncode != 0
    assert "Multi Backend support not enabled" in single.stderr + single.stdout


def test_upload_to_a_store_copy_and_delete_through_the_clis(ims_stores, random_file):
    data = random_file.read_bytes()
    name = unique("ms-cli")
    # glanceclient sends X-Image-Meta-Store with the upload.
    ims_stores.glance("image-create", "--name", name, "--disk-format", "raw",
                      "--container-format", "bare", "--store", "cold", "--file", str(random_file))
    shown = ims_stores.osc_json("image", "show", name)
    image_id = shown["id"]
    assert (shown["status"], prop(shown, "stores")) == ("active", "cold")
    assert [p.name for p in ims_stores.cold_dir.iterdir() if not p.name.startswith(".")], \
        "the data is in the cold store's directory"

    # copy-image through `openstack image import`; local sorts first (heavier).
    # `--store` takes several values, so the image comes first.
    ims_stores.osc("image", "import", image_id, "--method", "copy-image", "--store", "local")
    shown = settled(ims_stores, image_id)
    assert prop(shown, "stores") == "local,cold"
    assert prop(shown, "os_glance_failed_import") == ""
    assert shown["checksum"] == md5(data)

    ims_stores.osc("image", "delete", "--store", "cold", image_id)
    shown = ims_stores.osc_json("image", "show", image_id)
    assert prop(shown, "stores") == "local"
    assert not [p for p in ims_stores.cold_dir.iterdir() if image_id in p.name]
    # The last copy cannot go: the CLI reports Glance's 403.
    last = ims_stores.osc("image", "delete", "--store", "local", image_id, check=False)
    assert last.returncode != 0
    saved = random_file.parent / "saved.img"
    ims_stores.osc("image", "save", "--file", saved, image_id)
    assert saved.read_bytes() == data


def test_stage_and_import_to_stores_through_the_cli(ims_stores, random_file):
    data = random_file.read_bytes()
    image_id = ims_stores.osc_json("image", "create", "--disk-format", "raw",
                                   "--container-format", "bare", unique("ms-stage"))["id"]
    ims_stores.osc("image", "stage", "--file", random_file, image_id)
    # An unknown store is Glance's 409. openstacksdk does not check the status of an
    # import call, so the CLI says nothing; the image shows the import never began.
    ims_stores.osc("image", "import", image_id, "--method", "glance-direct",
                   "--store", "nowhere", check=False)
    shown = ims_stores.osc_json("image", "show", image_id)
    assert shown["status"] == "uploading" and prop(shown, "os_glance_importing_to_stores") is None
    ims_stores.osc("image", "import", "--method", "glance-direct", "--all-stores", image_id)
    shown = wait_until(lambda: ims_stores.osc_json("image", "show", image_id),
                       lambda s: s["status"] == "active", what="the import")
    assert prop(shown, "stores") == "local,cold"
    assert (prop(shown, "os_glance_importing_to_stores"), prop(shown, "os_glance_failed_import")) \
        == ("", "")
    assert shown["checksum"] == md5(data)


def test_openstacksdk_stores_import_copy_and_delete(ims_stores, random_file, monkeypatch):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(ims_stores.all_clouds_yaml))
    admin = openstack.connect(cloud="ims")
    try:
        stores = {s.id: s for s in admin.image.stores()}
        assert set(stores) == {"local", "cold"}
        assert stores["local"].is_default and not stores["cold"].is_default
        # create_image with stores goes through stage + glance-direct import (and returns
        # without waiting for it).
        image = admin.create_image(unique("ms-sdk"), filename=str(random_file),
                                   disk_format="raw", container_format="bare",
                                   stores=["cold"])
        image = wait_until(lambda: admin.image.get_image(image.id),
                           lambda i: i.status == "active", what="the import")
        assert (image.status, image.properties.get("stores")) == ("active", "cold")
        admin.image.import_image(image, method="copy-image", all_stores=True,
                                 all_stores_must_succeed=False)
        image = wait_until(lambda: admin.image.get_image(image.id),
                           lambda i: i.properties.get("os_glance_importing_to_stores") == "",
                           what="copy-image")
        assert image.properties.get("stores") == "local,cold"
        admin.image.delete_image(image, store="cold")
        assert admin.image.get_image(image.id).properties.get("stores") == "local"
        # store= sends both the header and `stores`; ims accepts them as they agree.
        admin.image.import_image(image, method="copy-image", store="cold")
        image = wait_until(lambda: admin.image.get_image(image.id),
                           lambda i: i.properties.get("stores") == "local,cold",
                           what="copy-image with store=")
        assert image.properties["os_glance_failed_import"] == ""
        assert admin.image.download_image(image.id).content == random_file.read_bytes()
    finally:
        admin.close()
