"""Issue 15's acceptance through the real clients: a key made with huaweicloudsdkkms,
seed 000's `create_data_image` body with that `cmk_id`, seed 003's `copy_image_in_region`
body **with** a `cmk_id` (another key), both read back with `openstack image save` to the
original bytes; the key disabled (reads and copies refused with the documented codes) and
enabled again (readable again).
"""
import subprocess

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkims.v2 import (CopyImageInRegionRequest, CopyImageInRegionRequestBody,
                                  CreateDataImageRequest, CreateDataImageRequestBody)
from huaweicloudsdkkms.v2 import (CreateKeyRequest, CreateKeyRequestBody, DisableKeyRequest,
                                  EnableKeyRequest, OperateKeyRequestBody)

from conftest import bucket, kms_sdk, put, unique, wait_job


@pytest.fixture(scope="module")
def kms(ims):
    return kms_sdk(ims)


def new_key(kms):
    body = CreateKeyRequestBody(key_alias=unique("images"))
    return kms.create_key(CreateKeyRequest(body=body)).key_info.key_id


@pytest.fixture(scope="module")
def data_file(ims, tmp_path_factory):
    """A qcow2 data disk with known bytes, staged in bucket `enc-test`."""
    path = tmp_path_factory.mktemp("enc") / "data.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "2G"], check=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 3M", str(path)],
                   check=True, capture_output=True)
    bucket(ims, "enc-test")
    put(ims, path, "enc-test:data.qcow2")
    return path.read_bytes()


def saved(ims, image_id, tmp_path):
    out = tmp_path / f"{image_id}.out"
    done = ims.osc("image", "save", "--file", str(out), image_id, cloud="demo2", check=False)
    return done.returncode, (out.read_bytes() if done.returncode == 0 else b"")


def code(call):
    with pytest.raises(ClientRequestException) as e:
        call()
    return e.value.status_code, e.value.error_code


def test_seed_000_and_003_with_cmk_ids_and_the_key_governing_access(
        ims, client, kms, data_file, tmp_path):
    key, other = new_key(kms), new_key(kms)
    # Seed 000's body with the key.
    made = client.create_data_image(CreateDataImageRequest(body=CreateDataImageRequestBody(
        name="fedora-data-enc", image_url="enc-test:data.qcow2", description="encrypted",
        min_disk=40, os_type="Linux", cmk_id=key)))
    job = wait_job(client, made.job_id)
    assert job.status == "SUCCESS", (job.error_code, job.fail_reason)
    source = job.entities.image_id
    shown = ims.osc_json("image", "show", source, cloud="demo2")
    assert shown["properties"]["__system__cmkid"] == key
    assert shown["properties"]["__system_encrypted"] == "1"
    assert saved(ims, source, tmp_path) == (0, data_file)

    # Seed 003's body, cmk_id included.
    copied = client.copy_image_in_region(CopyImageInRegionRequest(
        image_id=source, body=CopyImageInRegionRequestBody(
            name="ims_encrypted_copy3", description="test copy", cmk_id=other)))
    job = wait_job(client, copied.job_id)
    assert job.status == "SUCCESS", (job.error_code, job.fail_reason)
    copy = job.entities.image_id
    shown = ims.osc_json("image", "show", copy, cloud="demo2")
    assert shown["properties"]["__system__cmkid"] == other
    assert saved(ims, copy, tmp_path) == (0, data_file)

    # The copy's own key again, an unknown key.
    same = CopyImageInRegionRequest(image_id=copy, body=CopyImageInRegionRequestBody(
        name="again", cmk_id=other))
    assert code(lambda: client.copy_image_in_region(same)) == (400, "IMG.0096")
    unknown = CopyImageInRegionRequest(image_id=copy, body=CopyImageInRegionRequestBody(
        name="unknown", cmk_id="0d0466b0-e727-4d9c-b35d-f84bb474a37f"))
    assert code(lambda: client.copy_image_in_region(unknown)) == (400, "IMG.0095")

    # The source's key disabled: its image unreadable and uncopyable; the copy unaffected.
    kms.disable_key(DisableKeyRequest(body=OperateKeyRequestBody(key_id=key)))
    status, _ = saved(ims, source, tmp_path)
    assert status != 0
    again = CopyImageInRegionRequest(image_id=source, body=CopyImageInRegionRequestBody(
        name="blocked", cmk_id=other))
    assert code(lambda: client.copy_image_in_region(again)) == (400, "IMG.0102")
    plain = CopyImageInRegionRequest(image_id=source, body=CopyImageInRegionRequestBody(
        name="blocked-too"))
    assert code(lambda: client.copy_image_in_region(plain)) == (400, "IMG.0102")
    assert saved(ims, copy, tmp_path) == (0, data_file)
    kms.enable_key(EnableKeyRequest(body=OperateKeyRequestBody(key_id=key)))
    assert saved(ims, source, tmp_path) == (0, data_file)
