"""Seed 000 through huaweicloudsdkims: a data-disk image from a file in a bucket.

The file is staged with `ims bucket put`; the SDK call returns a job; the job ends
SUCCESS with the image active, its disk_format what the file really is, and its virtual
size qemu's. Bad requests get IMS codes, and an unsafe file fails the job cleanly.
"""
import subprocess

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions import exceptions as sdk_errors
from huaweicloudsdkims.v2 import CreateDataImageRequestBody, ImageTag, ImsClient

from conftest import bucket, create_data_image, ims_bucket, put, qemu_img, unique, wait_job


def test_data_image_from_a_qcow2_in_a_bucket(ims, client, tmp_path):
    src = tmp_path / "data.qcow2"
    qemu_img("create", "-f", "qcow2", src, "10G")
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 7 0 2M", str(src)], check=True, capture_output=True)
    bucket(ims, "seed-bucket")
    put(ims, src, "seed-bucket:disks/data1.qcow2")

    name = unique("data-img")
    resp = create_data_image(client, name=name, image_url="seed-bucket:disks/data1.qcow2", min_disk=40,
                             description="Data disk 1", os_type="Linux",
                             image_tags=[ImageTag(key="aaa", value="111")])
    job = wait_job(client, resp.job_id)
    assert job.status == "SUCCESS", (job.error_code, job.fail_reason)
    assert job.job_type == "imsImportDataImageJob"
    image = ims.get_image(job.entities.image_id, cloud="demo2")
    assert image["name"] == name and image["status"] == "active"
    assert image["visibility"] == "private" and image["__imagetype"] == "private"
    assert image["disk_format"] == "qcow2"
    assert image["virtual_size"] == 10 << 30
    assert image["size"] == src.stat().st_size
    assert image["min_disk"] == 40
    assert image["virtual_env_type"] == "DataImage"
    assert "aaa=111" in image["tags"]


@pytest.mark.parametrize("body, code", [
    ({"image_url": "no-such-bucket:x.qcow2"}, "IMG.0069"),
    ({"image_url": "seed-bucket:missing.qcow2"}, "IMG.0057"),
    ({"image_url": "seed-bucket:../escape"}, "IMG.0017"),
    ({"min_disk": 20}, "IMG.0055"),
    ({"os_type": "BSD"}, "IMG.0122"),
    ({"cmk_id": "11111111-2222-3333-4444-555555555555"}, "IMG.0095"),
    ({"tags": ["a.b"], "image_tags": [ImageTag(key="a", value="b")]}, "IMG.0115"),
])
def test_bad_requests_get_ims_codes(ims, client, body, code):
    bucket(ims, "seed-bucket")
    full = {"name": unique("bad"), "image_url": "seed-bucket:disks/data1.qcow2", "min_disk": 40, **body}
    with pytest.raises(sdk_errors.ClientRequestException) as err:
        create_data_image(client, **full)
    assert err.value.status_code == 400
    assert err.value.error_code == code, err.value.error_msg


def test_an_unsafe_file_fails_the_job_and_kills_the_image(ims, client, tmp_path):
    qemu_img("create", "-f", "qcow2", tmp_path / "base.qcow2", "1G")
    qemu_img("create", "-f", "qcow2", "-b", tmp_path / "base.qcow2", "-F", "qcow2", tmp_path / "over.qcow2")
    bucket(ims, "seed-bucket")
    put(ims, tmp_path / "over.qcow2", "seed-bucket:evil/over.qcow2")
    resp = create_data_image(client, name=unique("evil"), image_url="seed-bucket:evil/over.qcow2", min_disk=40)
    job = wait_job(client, resp.job_id)
    assert job.status == "FAIL"
    assert job.error_code == "IMG.0072"
    assert "backing file" in job.fail_reason
    image = ims.get_image(job.entities.image_id, cloud="demo2")
    assert image["status"] == "killed"
    assert image["size"] is None


@pytest.fixture(scope="module")
def copy_source(ims, tmp_path_factory):
    """`copy-bucket:src.qcow2`, demo2's: a small qcow2 with data in it. Every test that
    names it requests this fixture, so each runs alone too."""
    src = tmp_path_factory.mktemp("copy") / "src.qcow2"
    qemu_img("create", "-f", "qcow2", src, "2G")
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 9 1M 3M", str(src)], check=True, capture_output=True)
    bucket(ims, "copy-bucket")
    put(ims, src, "copy-bucket:src.qcow2")
    return "copy-bucket:src.qcow2"


@pytest.fixture(scope="module")
def data_image(ims, client, copy_source):
    """An active data image of demo2's, made from `copy_source`."""
    resp = create_data_image(client, name=unique("copy-src"), image_url=copy_source, min_disk=40,
                             description="source")
    job = wait_job(client, resp.job_id)
    assert job.status == "SUCCESS", job.fail_reason
    return ims.get_image(job.entities.image_id, cloud="demo2")


def test_copy_in_region_makes_an_identical_private_image(ims, client, data_image):
    from huaweicloudsdkims.v2 import CopyImageInRegionRequest, CopyImageInRegionRequestBody

    name = unique("copy")
    resp = client.copy_image_in_region(CopyImageInRegionRequest(
        image_id=data_image["id"], body=CopyImageInRegionRequestBody(name=name, description="test copy")))
    job = wait_job(client, resp.job_id)
    assert job.status == "SUCCESS", job.fail_reason
    assert job.job_type == "imsCopyImageInRegionJob"
    copy = ims.get_image(job.entities.image_id, cloud="demo2")
    assert copy["id"] != data_image["id"]
    assert copy["name"] == name and copy["status"] == "active" and copy["visibility"] == "private"
    for same in ("checksum", "os_hash_value", "size", "virtual_size", "disk_format", "min_disk"):
        assert copy[same] == data_image[same], same
    assert copy["__description"] == "test copy"


def test_copy_refusals_use_ims_codes(ims, client, data_image):
    from huaweicloudsdkims.v2 import (CopyImageCrossRegionRequest, CopyImageCrossRegionRequestBody,
                                      CopyImageInRegionRequest, CopyImageInRegionRequestBody)

    def copy(image_id, **body):
        with pytest.raises(sdk_errors.ClientRequestException) as err:
            client.copy_image_in_region(CopyImageInRegionRequest(
                image_id=image_id, body=CopyImageInRegionRequestBody(name=unique("c"), **body)))
        return err.value

    assert copy(data_image["id"], cmk_id="bd66288c-9081-460a-8227-4cbd0c814cb4").error_code == "IMG.0095"
    missing = copy("465076de-dc36-4aec-80f5-ef9d8009428f")
    assert (missing.status_code, missing.error_code) == (404, "IMG.0027")
    queued = ims.create_image(cloud="demo2")
    assert copy(queued["id"]).error_code == "IMG.0046"
    private = ims.create_image(cloud="ims")  # the admin project's, invisible to demo2
    assert copy(private["id"]).status_code == 404
    with pytest.raises(sdk_errors.ClientRequestException) as cross:
        client.copy_image_cross_region(CopyImageCrossRegionRequest(
            image_id=data_image["id"], body=CopyImageCrossRegionRequestBody(
                name=unique("x"), region="eu-west-0", project_name="eu-west-0", agency_name="ims")))
    assert cross.value.error_code == "IMG.0105"


def test_export_to_a_bucket_with_and_without_conversion(ims, client, data_image, tmp_path):
    from huaweicloudsdkims.v2 import ExportImageRequest, ExportImageRequestBody

    src = tmp_path / "src.qcow2"
    ims_bucket(ims, "get", "copy-bucket:src.qcow2", src)
    bucket(ims, "export-bucket")
    for fmt, qemu_fmt in (("qcow2", "qcow2"), ("vmdk", "vmdk"), ("vhd", "vpc")):
        target = f"export-bucket:out/disk.{fmt}"
        resp = client.export_image(ExportImageRequest(
            image_id=data_image["id"], body=ExportImageRequestBody(bucket_url=target, file_format=fmt)))
        job = wait_job(client, resp.job_id)
        assert job.status == "SUCCESS", (fmt, job.fail_reason)
        assert job.job_type == "imsNativeExportImageJob"
        assert job.entities.image_id == data_image["id"]
        out = tmp_path / f"out.{fmt}"
        ims_bucket(ims, "get", target, out)
        r = subprocess.run(["qemu-img", "compare", "-q", "-f", "qcow2", "-F", qemu_fmt, str(src), str(out)])
        assert r.returncode == 0, f"{fmt}: exported content differs"
    leftovers = [p for p in (ims.data_dir / "scratch").rglob("*") if p.is_file()]
    assert leftovers == [], f"conversion scratch files left behind: {leftovers}"


@pytest.mark.parametrize("body, code", [
    ({"bucket_url": "copy-bucket:src.qcow2", "file_format": "qcow2"}, "IMG.0070"),
    ({"bucket_url": "export-bucket:x.raw", "file_format": "raw"}, "IMG.0072"),
    ({"bucket_url": "export-bucket:x.zvhd", "file_format": "zvhd"}, "IMG.0105"),
    ({"bucket_url": "nowhere-bucket:x.qcow2", "file_format": "qcow2"}, "IMG.0069"),
    ({"bucket_url": "export-bucket:../x", "file_format": "qcow2"}, "IMG.0075"),
])
def test_export_refusals_use_ims_codes(ims, client, data_image, body, code):
    from huaweicloudsdkims.v2 import ExportImageRequest, ExportImageRequestBody

    bucket(ims, "export-bucket")
    with pytest.raises(sdk_errors.ClientRequestException) as err:
        client.export_image(ExportImageRequest(image_id=data_image["id"], body=ExportImageRequestBody(**body)))
    assert err.value.error_code == code, err.value.error_msg


def test_list_images_filters_and_pages_like_ims(ims, client, data_image):
    from huaweicloudsdkims.v2 import ListImagesRequest

    mine = client.list_images(ListImagesRequest(imagetype="private", virtual_env_type="DataImage",
                                                enterprise_project_id="all_granted_eps", limit=500))
    ids = {i.id for i in mine.images}
    assert data_image["id"] in ids
    assert all(i.virtual_env_type == "DataImage" and i.imagetype == "private" for i in mine.images)
    one = client.list_images(ListImagesRequest(id=data_image["id"]))
    assert [i.id for i in one.images] == [data_image["id"]]
    shown = one.images[0]
    assert shown.data_origin == "file,copy-bucket:src.qcow2"
    assert shown.disk_format == "qcow2" and shown.min_disk == 40 and shown.status == "active"
    assert shown.created_at.endswith("Z") and shown.file == f"/v2/images/{data_image['id']}/file"

    first = client.list_images(ListImagesRequest(virtual_env_type="DataImage", limit=1, sort_key="name",
                                                 sort_dir="asc"))
    assert len(first.images) == 1 and first.page_info.next_marker == first.images[0].id
    second = client.list_images(ListImagesRequest(virtual_env_type="DataImage", limit=1, sort_key="name",
                                                  sort_dir="asc", marker=first.page_info.next_marker))
    assert second.images and second.images[0].id != first.images[0].id
    assert second.images[0].name >= first.images[0].name

    later = client.list_images(ListImagesRequest(created_at="gt:2999-01-01T00:00:00Z"))
    assert later.images == []
    with pytest.raises(sdk_errors.ClientRequestException) as bad:
        client.list_images(ListImagesRequest(sort_key="bogus"))
    assert bad.value.status_code == 400 and bad.value.error_code == "IMG.0001"


def test_safe_mode_twins_under_v2_1(ims, client, data_image, tmp_path):
    from huaweicloudsdkims.v2 import (CopyImageInRegionInSafeModeRequest, CopyImageInRegionRequestBody,
                                      CreateDataImageInSafeModeRequest, ExportImageInSafeModeRequest,
                                      ExportImageRequestBody)

    resp = client.create_data_image_in_safe_mode(CreateDataImageInSafeModeRequest(body=CreateDataImageRequestBody(
        name=unique("safe"), image_url="copy-bucket:src.qcow2", min_disk=40)))
    assert wait_job(client, resp.job_id).status == "SUCCESS"
    resp = client.copy_image_in_region_in_safe_mode(CopyImageInRegionInSafeModeRequest(
        image_id=data_image["id"], body=CopyImageInRegionRequestBody(name=unique("safe-copy"))))
    assert wait_job(client, resp.job_id).status == "SUCCESS"
    bucket(ims, "export-bucket")
    resp = client.export_image_in_safe_mode(ExportImageInSafeModeRequest(
        image_id=data_image["id"], body=ExportImageRequestBody(bucket_url="export-bucket:safe/out.qcow2",
                                                               file_format="qcow2")))
    assert wait_job(client, resp.job_id).status == "SUCCESS"


def test_the_sdks_only_delete_is_glances_delete_signed_with_aksk(ims, client, copy_source):
    from huaweicloudsdkims.v2 import GlanceDeleteImageRequest, GlanceDeleteImageRequestBody, ListImagesRequest

    resp = create_data_image(client, name=unique("to-delete"), image_url="copy-bucket:src.qcow2", min_disk=40)
    image_id = wait_job(client, resp.job_id).entities.image_id
    client.glance_delete_image(GlanceDeleteImageRequest(
        image_id=image_id, body=GlanceDeleteImageRequestBody(delete_backup=False)))
    assert client.list_images(ListImagesRequest(id=image_id)).images == []
    with pytest.raises(sdk_errors.ClientRequestException) as again:
        client.glance_delete_image(GlanceDeleteImageRequest(image_id=image_id))
    assert again.value.status_code == 404


def test_register_a_bucket_file_to_a_queued_image(ims, client, copy_source):
    from huaweicloudsdkims.v2 import RegisterImageRequest, RegisterImageRequestBody

    image = ims.create_image(cloud="demo2", name=unique("register"), disk_format="qcow2")
    resp = client.register_image(RegisterImageRequest(
        image_id=image["id"], body=RegisterImageRequestBody(image_url="copy-bucket:src.qcow2")))
    job = wait_job(client, resp.job_id)
    assert job.status == "SUCCESS", job.fail_reason
    assert job.job_type == "imsNativeImportImageJob"
    done = ims.get_image(image["id"], cloud="demo2")
    assert done["status"] == "active" and done["virtual_size"] == 2 << 30

    # A file that is not the declared format fails the job; the image is queued again.
    raw = ims.create_image(cloud="demo2", name=unique("register-raw"), disk_format="raw")
    resp = client.register_image(RegisterImageRequest(
        image_id=raw["id"], body=RegisterImageRequestBody(image_url="copy-bucket:src.qcow2")))
    job = wait_job(client, resp.job_id)
    assert job.status == "FAIL" and job.error_code == "IMG.0072", job
    assert "does not match" in job.fail_reason
    assert ims.get_image(raw["id"], cloud="demo2")["status"] == "queued"

    with pytest.raises(sdk_errors.ClientRequestException) as busy:
        client.register_image(RegisterImageRequest(
            image_id=image["id"], body=RegisterImageRequestBody(image_url="copy-bucket:src.qcow2")))
    assert busy.value.error_code == "IMG.0046"


def test_update_image_with_ims_patch_semantics(ims, client, data_image):
    from huaweicloudsdkims.v2 import UpdateImageRequest, UpdateImageRequestBody

    def patch(*ops):
        return client.update_image(UpdateImageRequest(
            image_id=data_image["id"], body=[UpdateImageRequestBody(op=o, path=p, value=v) for o, p, v in ops]))

    updated = patch(("replace", "/name", "renamed"), ("add", "/min_ram", "1024"),
                    ("replace", "/__description", "new words"))
    assert updated.name == "renamed" and updated.min_ram == 1024
    shown = ims.get_image(data_image["id"], cloud="demo2")
    assert shown["name"] == "renamed" and shown["min_ram"] == 1024 and shown["__description"] == "new words"

    with pytest.raises(sdk_errors.ClientRequestException) as missing:
        patch(("replace", "/hw_firmware_type", "uefi"))
    assert missing.value.error_code == "IMG.0035"
    assert patch(("add", "/hw_firmware_type", "uefi")).hw_firmware_type == "uefi"

    queued = ims.create_image(cloud="demo2")
    with pytest.raises(sdk_errors.ClientRequestException) as inactive:
        client.update_image(UpdateImageRequest(image_id=queued["id"], body=[
            UpdateImageRequestBody(op="replace", path="/name", value="x")]))
    assert inactive.value.error_code == "IMG.0046"


def test_key_value_tags_through_every_tag_route(ims, client):
    from huaweicloudsdkims.v2 import (AddImageTagRequest, AddImageTagRequestBody, AddOrUpdateTagsRequestBody,
                                      BatchAddOrDeleteTagsRequest, BatchAddOrDeleteTagsRequestBody,
                                      BatchDeleteTagsRequest, BatchDeleteTagsRequestBody, CreateOrUpdateTagsRequest,
                                      DeleteImageTagRequest, ListImagesTagsRequest, ListImageTagsRequest,
                                      ResourceTag)

    image = ims.create_image(cloud="demo2", name=unique("tagged"))
    iid = image["id"]

    def tags():
        return {(t.key, t.value) for t in client.list_image_tags(ListImageTagsRequest(image_id=iid)).tags}

    client.add_image_tag(AddImageTagRequest(image_id=iid, body=AddImageTagRequestBody(
        tag=ResourceTag(key="env", value="dev"))))
    client.add_image_tag(AddImageTagRequest(image_id=iid, body=AddImageTagRequestBody(
        tag=ResourceTag(key="env", value="prod"))))
    assert tags() == {("env", "prod")}, "adding an existing key overwrites it"
    assert ims.get_image(iid, cloud="demo2")["tags"] == ["env=prod"]

    client.batch_add_or_delete_tags(BatchAddOrDeleteTagsRequest(image_id=iid, body=BatchAddOrDeleteTagsRequestBody(
        action="create", tags=[ResourceTag(key="a", value="1"), ResourceTag(key="b", value="2")])))
    client.batch_add_or_delete_tags(BatchAddOrDeleteTagsRequest(image_id=iid, body=BatchAddOrDeleteTagsRequestBody(
        action="delete", tags=[ResourceTag(key="a", value="1")])))
    assert tags() == {("env", "prod"), ("b", "2")}

    client.create_or_update_tags(CreateOrUpdateTagsRequest(body=AddOrUpdateTagsRequestBody(
        image_id=iid, tag="owner.alice")))
    client.batch_delete_tags(BatchDeleteTagsRequest(image_id=iid, body=BatchDeleteTagsRequestBody(
        tags=[ResourceTag(key="b", value="2")])))
    client.delete_image_tag(DeleteImageTagRequest(image_id=iid, key="env"))
    assert tags() == {("owner", "alice")}
    with pytest.raises(sdk_errors.ClientRequestException) as gone:
        client.delete_image_tag(DeleteImageTagRequest(image_id=iid, key="env"))
    assert gone.value.status_code == 404

    everything = client.list_images_tags(ListImagesTagsRequest())
    owner = next(t for t in everything.tags if t.key == "owner")
    assert "alice" in owner.values

    with pytest.raises(sdk_errors.ClientRequestException) as bad:
        client.add_image_tag(AddImageTagRequest(image_id=iid, body=AddImageTagRequestBody(
            tag=ResourceTag(key="", value="x"))))
    assert bad.value.error_code == "IMG.0115"


def test_batch_sharing_is_a_job_and_the_other_project_answers(ims, client, data_image):
    from huaweicloudsdkims.v2 import (BatchAddMembersRequest, BatchAddMembersRequestBody,
                                      BatchDeleteMembersRequest, BatchUpdateMembersRequest,
                                      BatchUpdateMembersRequestBody, ListImagesRequest)

    # demo2 owns an image (made from a file, so active) and shares it with another tenant.
    target = unique("share-target")
    target_project = ims.admin("project", "create", target).stdout.strip()
    ims.admin("user", "create", target, "--password", "pw-" + target, "--project", target, "--role", "member")
    resp = create_data_image(client, name=unique("to-share"), image_url="copy-bucket:src.qcow2", min_disk=40)
    image_id = wait_job(client, resp.job_id).entities.image_id
    resp = client.batch_add_members(BatchAddMembersRequest(body=BatchAddMembersRequestBody(
        images=[image_id], projects=[target_project])))
    job = wait_job(client, resp.job_id)
    assert job.status == "SUCCESS" and job.job_type == "imsAddImageMembersJob"
    assert [(r.image_id, r.project_id, r.status) for r in job.entities.results] == [
        (image_id, target_project, "success")]
    assert ims.get_image(image_id, cloud="demo2")["visibility"] == "shared"

    # The other tenant answers through its own AK/SK; then it sees the image as shared.
    ak, sk = ims.admin("credential", "create", "--user", target).stdout.split()
    other = ImsClient.new_builder().with_credentials(BasicCredentials(ak, sk, target_project)) \
        .with_endpoints([ims.url]).build()
    resp = other.batch_update_members(BatchUpdateMembersRequest(body=BatchUpdateMembersRequestBody(
        images=[image_id], project_id=target_project, status="accepted")))
    assert wait_job(other, resp.job_id).job_type == "imsUpdateImageMembersJob"
    shared = other.list_images(ListImagesRequest(visibility="shared", member_status="accepted"))
    assert image_id in {i.id for i in shared.images}
    from huaweicloudsdkims.v2 import ListImageMembersRequest, ShowImageMemberRequest
    listed = client.list_image_members(ListImageMembersRequest(image_id=image_id))
    assert [(m.member_id, m.status, m.member_type) for m in listed.members] == [
        (target_project, "accepted", "project")]
    one = other.show_image_member(ShowImageMemberRequest(image_id=image_id, member_id=target_project))
    assert one.status == "accepted" and one.image_id == image_id

    resp = client.batch_delete_members(BatchDeleteMembersRequest(body=BatchAddMembersRequestBody(
        images=[image_id], projects=[target_project])))
    assert wait_job(client, resp.job_id).status == "SUCCESS"
    shared = other.list_images(ListImagesRequest(visibility="shared", member_status="accepted"))
    assert image_id not in {i.id for i in shared.images}

    with pytest.raises(sdk_errors.ClientRequestException) as foreign:
        other.batch_add_members(BatchAddMembersRequest(body=BatchAddMembersRequestBody(
            images=[image_id], projects=[target_project])))
    # No longer a member, the other project cannot see the image: to it the image does not
    # exist (404 IMG.0027), as for any image it cannot see, rather than 403 IMG.0026.
    assert (foreign.value.status_code, foreign.value.error_code) == (404, "IMG.0027")


def test_system_and_iso_images_from_files(ims, client, data_image, tmp_path):
    from huaweicloudsdkims.v2 import CreateImageRequest, CreateImageRequestBody

    def create_image(**body):
        return client.create_image(CreateImageRequest(body=CreateImageRequestBody(**body)))

    resp = create_image(name=unique("sys"), image_url="copy-bucket:src.qcow2", min_disk=40,
                        os_version="CentOS 7.0 64bit", architecture="arm",
                        image_tags=[ImageTag(key="k1", value="v1")])
    job = wait_job(client, resp.job_id)
    assert job.status == "SUCCESS" and job.job_type == "imsImportImageJob", job.fail_reason
    image = ims.get_image(job.entities.image_id, cloud="demo2")
    assert (image["disk_format"], image["virtual_env_type"], image["__os_version"]) == (
        "qcow2", "FusionCompute", "CentOS 7.0 64bit")
    assert image["__platform"] == "CentOS" and image["__os_type"] == "Linux"
    assert image["hw_firmware_type"] == "uefi" and image["__support_arm"] == "true"

    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "README").write_text("install me")
    iso = tmp_path / "install.iso"
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-o", str(iso), str(tree)], check=True)
    put(ims, iso, "copy-bucket:install.iso")
    resp = create_image(name=unique("iso"), image_url="copy-bucket:install.iso", min_disk=40,
                        os_version="Ubuntu 14.04 server 64bit", type="IsoImage")
    job = wait_job(client, resp.job_id)
    assert job.status == "SUCCESS", job.fail_reason
    image = ims.get_image(job.entities.image_id, cloud="demo2")
    assert image["disk_format"] == "iso" and image["virtual_env_type"] == "IsoImage"

    # An ISO needs type IsoImage, and type IsoImage needs an ISO: the job fails, the image is killed.
    resp = create_image(name=unique("not-iso"), image_url="copy-bucket:src.qcow2", min_disk=40,
                        os_version="Ubuntu 14.04 server 64bit", type="IsoImage")
    job = wait_job(client, resp.job_id)
    assert job.status == "FAIL" and job.error_code == "IMG.0072"
    assert ims.get_image(job.entities.image_id, cloud="demo2")["status"] == "killed"

    for body, code in [
        ({"type": "Desktop"}, "IMG.0024"),
        ({"type": "IsoImage", "os_version": None}, "IMG.0056"),
        ({"architecture": "mips"}, "IMG.0212"),
        ({"min_disk": 2000}, "IMG.0055"),
        ({"instance_id": "a-server"}, "IMG.0105"),
    ]:
        full = {"name": unique("bad"), "image_url": "copy-bucket:src.qcow2", "min_disk": 40,
                "os_version": "CentOS 7.0 64bit", **body}
        with pytest.raises(sdk_errors.ClientRequestException) as err:
            create_image(**{k: v for k, v in full.items() if v is not None})
        assert err.value.error_code == code, (body, err.value.error_msg)
