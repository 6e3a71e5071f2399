"""CreateImage's other file modes and quick import, through huaweicloudsdkims.

- ImportImageQuick (and its /v2.1 twin) takes RAW or ZVHD2 files only, system or data.
- CreateImage with `is_quick_import`.
- CreateImage with `data_images[]` in the file variant: each data disk becomes an image
  with its own job, listed in the system image's job as sub-jobs. The SDK's
  `CreateDataImage` model only knows the volume variant, so the file entries are sent as
  plain dicts, which the SDK serialises as they are.
- Modes that need servers, volumes or backups answer IMG.0105.
"""
import pytest
from huaweicloudsdkcore.exceptions import exceptions as sdk_errors
from huaweicloudsdkims.v2 import (CreateDataImage, CreateDataImageRequest, CreateDataImageRequestBody,
                                  CreateImageInSafeModeRequest, CreateImageRequest,
                                  CreateImageRequestBody, CreateWholeImageRequest,
                                  CreateWholeImageRequestBody, ImportImageQuickInSafeModeRequest,
                                  ImportImageQuickRequest,
                                  QuickImportImageByFileRequestBody, ShowJobProgressRequest)

from conftest import bucket, put, qemu_img, unique, wait_job


@pytest.fixture(scope="module")
def files(ims, tmp_path_factory):
    """A raw disk, a qcow2 disk and an unsafe qcow2 (with a backing file) in a bucket."""
    d = tmp_path_factory.mktemp("modes")
    qemu_img("create", "-f", "raw", d / "disk.raw", "64M")
    qemu_img("create", "-f", "qcow2", d / "disk.qcow2", "1G")
    qemu_img("create", "-f", "qcow2", "-b", d / "disk.qcow2", "-F", "qcow2", d / "evil.qcow2")
    bucket(ims, "modes")
    for name in ("disk.raw", "disk.qcow2", "evil.qcow2"):
        put(ims, d / name, f"modes:{name}")
    put(ims, d / "disk.raw", "modes:mislabeled.qcow2")
    return d


def quick(client, safe=False, **body):
    body = QuickImportImageByFileRequestBody(**body)
    if safe:
        return client.import_image_quick_in_safe_mode(ImportImageQuickInSafeModeRequest(body=body))
    return client.import_image_quick(ImportImageQuickRequest(body=body))


def test_quick_import_of_a_raw_data_disk(ims, client, files):
    job = wait_job(client, quick(client, name=unique("quick-data"), image_url="modes:disk.raw",
                                 min_disk=1, type="DataImage").job_id)
    assert job.status == "SUCCESS", (job.error_code, job.fail_reason)
    assert job.job_type == "imsImportDataImageJob"
    image = ims.get_image(job.entities.image_id, cloud="demo2")
    assert image["status"] == "active" and image["disk_format"] == "raw"
    assert image["virtual_env_type"] == "DataImage" and image["min_disk"] == 1
    assert image["size"] == (files / "disk.raw").stat().st_size


def test_quick_import_of_a_system_disk_in_safe_mode(ims, client, files):
    job = wait_job(client, quick(client, safe=True, name=unique("quick-sys"),
                                 image_url="modes:disk.raw", min_disk=1,
                                 os_version="Ubuntu 22.04 server 64bit").job_id)
    assert job.status == "SUCCESS", (job.error_code, job.fail_reason)
    image = ims.get_image(job.entities.image_id, cloud="demo2")
    assert image["virtual_env_type"] == "FusionCompute"
    assert image["__os_version"] == "Ubuntu 22.04 server 64bit"


def test_quick_import_refuses_a_qcow2_in_the_job(ims, client, files):
    job = wait_job(client, quick(client, name=unique("quick-qcow"), image_url="modes:disk.qcow2",
                                 min_disk=1, os_version="Ubuntu 22.04 server 64bit").job_id)
    assert job.status == "FAIL" and job.error_code == "IMG.0072"
    assert "RAW or ZVHD2" in job.fail_reason
    assert ims.get_image(job.entities.image_id, cloud="demo2")["status"] == "killed"


def test_a_file_whose_content_does_not_match_its_extension_fails(ims, client, files):
    resp = client.create_data_image(CreateDataImageRequest(body=CreateDataImageRequestBody(
        name=unique("mislabeled"), image_url="modes:mislabeled.qcow2", min_disk=40)))
    job = wait_job(client, resp.job_id)
    assert job.status == "FAIL" and job.error_code == "IMG.0072"
    assert ".qcow2" in job.fail_reason and "raw" in job.fail_reason
    assert ims.get_image(job.entities.image_id, cloud="demo2")["status"] == "killed"


@pytest.mark.parametrize("body, code", [
    ({"os_version": None}, "IMG.0056"),
    ({"min_disk": 1025}, "IMG.0055"),
    ({"name": "n" * 129}, "IMG.0003"),
    ({"type": "IsoImage"}, "IMG.0024"),
    ({"type": "Desktop"}, "IMG.0024"),
    ({"license_type": "rented"}, "IMG.0001"),
])
def test_quick_import_bad_requests(client, files, body, code):
    full = {"name": unique("bad-quick"), "image_url": "modes:disk.raw", "min_disk": 1,
            "os_version": "Ubuntu 22.04 server 64bit", **body}
    with pytest.raises(sdk_errors.ClientRequestException) as err:
        quick(client, **{k: v for k, v in full.items() if v is not None})
    assert err.value.status_code == 400
    assert err.value.error_code == code, err.value.error_msg


def test_create_image_with_is_quick_import(ims, client, files):
    def create(image_url, quick, name=None):
        body = CreateImageRequestBody(name=name or unique("quick-flag"), image_url=image_url,
                                      min_disk=1, os_version="Ubuntu 22.04 server 64bit",
                                      is_quick_import=quick)
        return client.create_image(CreateImageRequest(body=body))

    job = wait_job(client, create("modes:disk.raw", True).job_id)
    assert job.status == "SUCCESS", (job.error_code, job.fail_reason)
    # What only a quick import does: it takes RAW or ZVHD2 content only (a normal import of
    # the same qcow2 succeeds) ...
    job = wait_job(client, create("modes:disk.qcow2", True).job_id)
    assert job.status == "FAIL" and job.error_code == "IMG.0072", (job.error_code, job.fail_reason)
    assert "RAW or ZVHD2" in job.fail_reason
    assert ims.get_image(job.entities.image_id, cloud="demo2")["status"] == "killed"
    normal = wait_job(client, create("modes:disk.qcow2", False).job_id)
    assert normal.status == "SUCCESS", (normal.error_code, normal.fail_reason)
    # ... and names are at most 128 characters (255 otherwise).
    with pytest.raises(sdk_errors.ClientRequestException) as err:
        create("modes:disk.raw", True, name="n" * 129)
    assert (err.value.status_code, err.value.error_code) == (400, "IMG.0003")


def test_a_system_image_with_data_images(ims, client, files):
    name = unique("with-data")
    body = CreateImageRequestBody(
        name=name, image_url="modes:disk.qcow2", min_disk=40, os_version="Ubuntu 22.04 server 64bit",
        data_images=[{"name": name + "-d1", "image_url": "modes:disk.raw", "min_disk": 40},
                     {"name": name + "-d2", "image_url": "modes:disk.qcow2", "min_disk": 50,
                      "description": "second disk", "tags": ["disk.two"]}])
    resp = client.create_image_in_safe_mode(CreateImageInSafeModeRequest(body=body))
    job = wait_job(client, resp.job_id)
    assert job.status == "SUCCESS", (job.error_code, job.fail_reason)
    assert job.job_type == "imsImportImageJob"
    assert len(job.entities.sub_jobs_list) == 2
    subs = job.entities.sub_jobs_result
    assert [s.job_id for s in subs] == job.entities.sub_jobs_list
    assert {s.status for s in subs} == {"SUCCESS"}
    assert {s.job_type for s in subs} == {"imsImportDataImageJob"}
    system = ims.get_image(job.entities.image_id, cloud="demo2")
    assert system["virtual_env_type"] == "FusionCompute" and system["status"] == "active"
    d1, d2 = (ims.get_image(s.entities.image_id, cloud="demo2") for s in subs)
    assert (d1["name"], d1["disk_format"], d1["virtual_env_type"]) == (name + "-d1", "raw", "DataImage")
    assert (d2["name"], d2["disk_format"], d2["min_disk"]) == (name + "-d2", "qcow2", 50)
    assert d2["__description"] == "second disk" and "disk.two" in d2["tags"]
    progress = client.show_job_progress(ShowJobProgressRequest(job_id=resp.job_id))
    assert progress.status == "SUCCESS" and len(progress.entities.sub_jobs_result) == 2


def test_a_failed_data_image_fails_the_whole_job(ims, client, files):
    name = unique("bad-data")
    body = CreateImageRequestBody(
        name=name, image_url="modes:disk.raw", min_disk=1, os_version="Ubuntu 22.04 server 64bit",
        data_images=[{"name": name + "-evil", "image_url": "modes:evil.qcow2", "min_disk": 40}])
    job = wait_job(client, client.create_image(CreateImageRequest(body=body)).job_id)
    assert job.status == "FAIL"
    assert job.error_code == "IMG.0072" and "backing file" in job.fail_reason
    [sub] = job.entities.sub_jobs_result
    assert sub.status == "FAIL"
    assert ims.get_image(sub.entities.image_id, cloud="demo2")["status"] == "killed"


@pytest.mark.parametrize("data_images, code", [
    ([CreateDataImage(name="v", volume_id="11111111-2222-3333-4444-555555555555")], "IMG.0105"),
    ([{"name": "x"}], "IMG.0001"),
    ([{"name": f"d{i}", "image_url": "modes:disk.raw", "min_disk": 40} for i in range(4)], "IMG.0001"),
    ([{"name": "d", "image_url": "modes:missing.raw", "min_disk": 40}], "IMG.0057"),
    ([{"name": "d", "image_url": "modes:disk.raw", "min_disk": 39}], "IMG.0055"),
])
def test_bad_data_images_are_refused_and_nothing_is_made(ims, client, files, data_images, code):
    name = unique("refused")
    body = CreateImageRequestBody(name=name, image_url="modes:disk.raw", min_disk=1,
                                  os_version="Ubuntu 22.04 server 64bit", data_images=data_images)
    with pytest.raises(sdk_errors.ClientRequestException) as err:
        client.create_image(CreateImageRequest(body=body))
    assert err.value.status_code == 400
    assert err.value.error_code == code, err.value.error_msg
    listed = ims.request("GET", "/v2/images?limit=1000", cloud="demo2").json()["images"]
    assert not [i for i in listed if (i["name"] or "").startswith(name)]


def test_modes_that_need_servers_are_not_supported(client):
    with pytest.raises(sdk_errors.ClientRequestException) as err:
        client.create_image(CreateImageRequest(body=CreateImageRequestBody(
            name=unique("ecs"), instance_id="11111111-2222-3333-4444-555555555555")))
    assert (err.value.status_code, err.value.error_code) == (400, "IMG.0105")
    with pytest.raises(sdk_errors.ClientRequestException) as err:
        client.create_whole_image(CreateWholeImageRequest(body=CreateWholeImageRequestBody(
            name=unique("whole"), instance_id="11111111-2222-3333-4444-555555555555")))
    assert (err.value.status_code, err.value.error_code) == (400, "IMG.0105")
