"""The IMS bucket flows through huaweicloudsdkims with the buckets in S3: s3s-fs on
loopback, reached through the S3 adapter (store `east` of the `ims_s3` server).

A qcow2 is put into an S3 bucket with `ims bucket put`; a data image is made from it
(show_job SUCCESS, list_images(id=)), copied, exported back to S3 with and without
conversion, and deleted. Missing buckets and objects and existing targets get the same
IMS codes as with the embedded buckets.
"""
import hashlib
import subprocess

import pytest
from huaweicloudsdkcore.exceptions import exceptions as sdk_errors

from conftest import create_data_image, ims_bucket, ims_sdk, qemu_img, unique, wait_job


@pytest.fixture(scope="module")
def client(ims_s3):
    return ims_sdk(ims_s3)


def test_data_image_copy_export_and_delete_with_s3_buckets(ims_s3, s3s, client, tmp_path):
    from huaweicloudsdkims.v2 import (CopyImageInRegionRequest, CopyImageInRegionRequestBody,
                                      ExportImageRequest, ExportImageRequestBody, GlanceDeleteImageRequest,
                                      GlanceDeleteImageRequestBody, ListImagesRequest)

    src = tmp_path / "src.qcow2"
    qemu_img("create", "-f", "qcow2", src, "2G")
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 5 1M 3M", str(src)], check=True,
                   capture_output=True)
    ims_bucket(ims_s3, "put", src, "s3-seed:disks/src.qcow2")
    assert (s3s.root / "s3-seed" / "disks" / "src.qcow2").read_bytes() == src.read_bytes(), "stored in S3"
    assert not (ims_s3.data_dir / "buckets" / "s3-seed").exists()

    resp = create_data_image(client, name=unique("s3-data"), image_url="s3-seed:disks/src.qcow2", min_disk=40)
    job = wait_job(client, resp.job_id)
    assert job.status == "SUCCESS", (job.error_code, job.fail_reason)
    assert job.job_type == "imsImportDataImageJob"
    image_id = job.entities.image_id
    listed = client.list_images(ListImagesRequest(id=image_id)).images
    assert [(i.id, i.status, i.disk_format) for i in listed] == [(image_id, "active", "qcow2")]
    assert listed[0].data_origin == "file,s3-seed:disks/src.qcow2"
    image = ims_s3.get_image(image_id, cloud="demo2")
    assert image["checksum"] == hashlib.md5(src.read_bytes()).hexdigest()
    assert image["size"] == src.stat().st_size and image["virtual_size"] == 2 << 30

    resp = client.copy_image_in_region(CopyImageInRegionRequest(
        image_id=image_id, body=CopyImageInRegionRequestBody(name=unique("s3-copy"))))
    job = wait_job(client, resp.job_id)
    assert job.status == "SUCCESS", job.fail_reason
    copy_id = job.entities.image_id
    assert ims_s3.get_image(copy_id, cloud="demo2")["checksum"] == image["checksum"]

    for fmt, qemu_fmt in (("qcow2", "qcow2"), ("vmdk", "vmdk")):
        target = f"s3-export:out/disk.{fmt}"
        resp = client.export_image(ExportImageRequest(
            image_id=image_id, body=ExportImageRequestBody(bucket_url=target, file_format=fmt)))
        job = wait_job(client, resp.job_id)
        assert job.status == "SUCCESS", (fmt, job.fail_reason)
        assert (s3s.root / "s3-export" / "out" / f"disk.{fmt}").is_file()
        out = tmp_path / f"back.{fmt}"
        ims_bucket(ims_s3, "get", target, out)
        r = subprocess.run(["qemu-img", "compare", "-q", "-f", "qcow2", "-F", qemu_fmt, str(src), str(out)])
        assert r.returncode == 0, f"{fmt}: exported content differs"
    listing = ims_bucket(ims_s3, "ls", "s3-export:out/").split("\n")
    assert [line.split()[1] for line in listing if line] == ["out/disk.qcow2", "out/disk.vmdk"]

    for image in (image_id, copy_id):
        client.glance_delete_image(GlanceDeleteImageRequest(
            image_id=image, body=GlanceDeleteImageRequestBody(delete_backup=False)))
        assert client.list_images(ListImagesRequest(id=image)).images == []
    assert not [p for p in s3s.root.iterdir() if p.name.startswith(".upload")], "multipart uploads left open"


@pytest.mark.parametrize("body, code", [
    ({"image_url": "s3-absent:x.qcow2"}, "IMG.0069"),
    ({"image_url": "s3-seed:missing.qcow2"}, "IMG.0057"),
])
def test_missing_s3_buckets_and_objects_get_ims_codes(ims_s3, client, body, code):
    with pytest.raises(sdk_errors.ClientRequestException) as err:
        create_data_image(client, **{"name": unique("bad"), "min_disk": 40, **body})
    assert (err.value.status_code, err.value.error_code) == (400, code), err.value.error_msg


def test_export_never_overwrites_an_s3_object(ims_s3, s3s, client, tmp_path):
    from huaweicloudsdkims.v2 import ExportImageRequest, ExportImageRequestBody

    src = tmp_path / "small.qcow2"
    qemu_img("create", "-f", "qcow2", src, "1G")
    ims_bucket(ims_s3, "put", src, "s3-seed:small.qcow2")
    job = wait_job(client, create_data_image(client, name=unique("small"), image_url="s3-seed:small.qcow2",
                                  min_disk=40).job_id)
    assert job.status == "SUCCESS", job.fail_reason
    for target, code in (("s3-seed:small.qcow2", "IMG.0070"), ("s3-absent:x.qcow2", "IMG.0069")):
        with pytest.raises(sdk_errors.ClientRequestException) as err:
            client.export_image(ExportImageRequest(image_id=job.entities.image_id, body=ExportImageRequestBody(
                bucket_url=target, file_format="qcow2")))
        assert err.value.error_code == code, (target, err.value.error_msg)
    assert (s3s.root / "s3-seed" / "small.qcow2").read_bytes() == src.read_bytes()
