"""Issue 5's acceptance, literally: the seeds' own request bodies through huaweicloudsdkims,
and the result read back with the openstack CLI.

Seed 000: `create_data_image` with both documented example bodies (legacy `tags` and
`image_tags`), the file staged with `ims bucket put` as `image-test:fedora_data1.qcow2`;
`show_job` reaches SUCCESS with `entities.image_id`; the image is active with the file's
size and md5 and qemu's virtual size, and `openstack image save` returns the original
bytes. Seed 003: `copy_image_in_region` with the documented body minus `cmk_id` makes a
second active image with the same content.
"""
import hashlib
import json
import shutil
import subprocess

import pytest
from huaweicloudsdkims.v2 import (CopyImageInRegionRequest, CopyImageInRegionRequestBody,
                                  CreateDataImageRequest, CreateDataImageRequestBody, ImageTag)

from conftest import bucket, put, wait_job

SEED_000_BODIES = [
    {"name": "fedora-data1", "image_url": "image-test:fedora_data1.qcow2",
     "description": "Data disk 1 of Fedora", "min_disk": 40, "tags": ["aaa.111", "bbb.222"],
     "os_type": "Linux"},
    {"name": "fedora-data2", "image_url": "image-test:fedora_data1.qcow2",
     "description": "Data disk 2 of Fedora", "min_disk": 40,
     "image_tags": [ImageTag(key="aaa", value="111"), ImageTag(key="bbb", value="222")],
     "os_type": "Linux"},
]


@pytest.fixture(scope="module")
def fedora_data1(ims, tmp_path_factory):
    """A qcow2 with data in it, staged as the seed names it."""
    path = tmp_path_factory.mktemp("seed") / "fedora_data1.qcow2"
    subprocess.run([shutil.which("qemu-img"), "create", "-f", "qcow2", str(path), "8G"],
                   check=True, capture_output=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 3M", "-c", "write -P 0x33 7G 1M",
                    str(path)], check=True, capture_output=True)
    bucket(ims, "image-test")
    put(ims, path, "image-test:fedora_data1.qcow2")
    info = json.loads(subprocess.run([shutil.which("qemu-img"), "info", "--output=json", str(path)],
                                     check=True, capture_output=True, text=True).stdout)
    return path, info["virtual-size"]


def saved_bytes(ims, image_id, tmp_path):
    out = tmp_path / f"{image_id}.out"
    ims.osc("image", "save", "--file", str(out), image_id, cloud="demo2")
    return out.read_bytes()


@pytest.mark.parametrize("body", SEED_000_BODIES, ids=["tags", "image_tags"])
def test_seed_000_data_image_from_the_bucket_file(ims, client, fedora_data1, body, tmp_path):
    path, virtual_size = fedora_data1
    original = path.read_bytes()
    resp = client.create_data_image(CreateDataImageRequest(body=CreateDataImageRequestBody(**body)))
    assert resp.job_id
    job = wait_job(client, resp.job_id)
    assert job.status == "SUCCESS", (job.error_code, job.fail_reason)
    image_id = job.entities.image_id
    assert image_id

    image = ims.osc_json("image", "show", image_id, cloud="demo2")
    assert image["status"] == "active" and image["name"] == body["name"]
    assert image["size"] == len(original)
    assert image["checksum"] == hashlib.md5(original).hexdigest()
    assert image["virtual_size"] == virtual_size
    assert saved_bytes(ims, image_id, tmp_path) == original


def test_seed_003_copy_in_region(ims, client, fedora_data1, tmp_path):
    path, _ = fedora_data1
    original = path.read_bytes()
    source = wait_job(client, client.create_data_image(CreateDataImageRequest(
        body=CreateDataImageRequestBody(**SEED_000_BODIES[1]))).job_id).entities.image_id

    resp = client.copy_image_in_region(CopyImageInRegionRequest(
        image_id=source, body=CopyImageInRegionRequestBody(name="ims_encrypted_copy3",
                                                           description="test copy")))
    job = wait_job(client, resp.job_id)
    assert job.status == "SUCCESS", (job.error_code, job.fail_reason)
    copy_id = job.entities.image_id
    assert copy_id and copy_id != source

    copy = ims.osc_json("image", "show", copy_id, cloud="demo2")
    assert copy["status"] == "active" and copy["name"] == "ims_encrypted_copy3"
    assert copy["checksum"] == hashlib.md5(original).hexdigest()
    assert saved_bytes(ims, copy_id, tmp_path) == original
