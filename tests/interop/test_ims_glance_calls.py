"""huaweicloudsdkims's `glance_*` methods, AK/SK-signed, against the Glance routes.

Huawei's SDK reaches the OpenStack image routes with the same signature as its IMS
calls. The flow here is the one its docs describe for a native upload: create the
metadata, register a bucket file to it, wait for `active`; then read, patch, tag,
share and delete it, all through the SDK.
"""
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions import exceptions as sdk_errors
from huaweicloudsdkims.v2 import (GlanceAddImageMemberRequest, GlanceAddImageMemberRequestBody,
                                  GlanceCreateImageMetadataRequest,
                                  GlanceCreateImageMetadataRequestBody, GlanceCreateTagRequest,
                                  GlanceDeleteImageMemberRequest, GlanceDeleteImageRequest,
                                  GlanceDeleteTagRequest, GlanceListImageMembersRequest,
                                  GlanceListImageMemberSchemasRequest,
                                  GlanceListImageSchemasRequest, GlanceListImagesRequest,
                                  GlanceShowImageMemberRequest,
                                  GlanceShowImageMemberSchemasRequest, GlanceShowImageRequest,
                                  GlanceShowImageSchemasRequest, GlanceUpdateImageMemberRequest,
                                  GlanceUpdateImageMemberRequestBody, GlanceUpdateImageRequest,
                                  GlanceUpdateImageRequestBody, ImsClient, ListVersionsRequest,
                                  RegisterImageRequest, RegisterImageRequestBody,
                                  ShowVersionRequest)

from conftest import add_user, bucket, ims_sdk, put, qemu_img, unique, wait_until


@pytest.fixture(scope="module")
def owner(ims):
    return ims_sdk(ims, "demo2", "demo2")


@pytest.fixture(scope="module")
def other(ims):
    """A member of a third project, neither the owner's nor an admin."""
    add_user(ims, "sdk-third", "sdk-third", "member", create_project=True)
    for line in ims.admin("project", "list").stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            ims.project_ids[parts[1]] = parts[0]
    return ims_sdk(ims, "sdk-third", "sdk-third")


def wait_active(client, image_id):
    return wait_until(lambda: client.glance_show_image(GlanceShowImageRequest(image_id=image_id)),
                      lambda image: image.status in ("active", "killed"), timeout=30,
                      what=f"image {image_id} settling")


def test_metadata_register_and_the_glance_calls(ims, owner, other, tmp_path):
    src = tmp_path / "sys.qcow2"
    qemu_img("create", "-f", "qcow2", src, "1G")
    bucket(ims, "glance-calls")
    put(ims, src, "glance-calls:sys.qcow2")

    name = unique("meta")
    created = owner.glance_create_image_metadata(GlanceCreateImageMetadataRequest(
        body=GlanceCreateImageMetadataRequestBody(
            name=name, container_format="bare", disk_format="qcow2", min_disk=1, min_ram=0,
            os_version="Ubuntu 22.04 server 64bit", tags=["stage=one"], visibility="private")))
    assert created.status == "queued" and created.name == name
    job = owner.register_image(RegisterImageRequest(
        image_id=created.id, body=RegisterImageRequestBody(image_url="glance-calls:sys.qcow2")))
    assert job.job_id
    image = wait_active(owner, created.id)
    assert image.status == "active"
    assert image.size == src.stat().st_size and image.virtual_size == 1 << 30
    assert image.os_version == "Ubuntu 22.04 server 64bit"

    listed = owner.glance_list_images(GlanceListImagesRequest(name=name))
    assert [i.id for i in listed.images] == [created.id]

    owner.glance_update_image(GlanceUpdateImageRequest(image_id=created.id, body=[
        GlanceUpdateImageRequestBody(op="replace", path="/name", value=name + "-renamed")]))
    owner.glance_create_tag(GlanceCreateTagRequest(image_id=created.id, tag="extra"))
    owner.glance_delete_tag(GlanceDeleteTagRequest(image_id=created.id, tag="stage=one"))
    image = owner.glance_show_image(GlanceShowImageRequest(image_id=created.id))
    assert image.name == name + "-renamed" and image.tags == ["extra"]

    # Sharing: invisible to the third project until it is a member and accepts.
    with pytest.raises(sdk_errors.ClientRequestException) as err:
        other.glance_show_image(GlanceShowImageRequest(image_id=created.id))
    assert err.value.status_code == 404
    third = ims.project_ids["sdk-third"]
    owner.glance_update_image(GlanceUpdateImageRequest(image_id=created.id, body=[
        GlanceUpdateImageRequestBody(op="replace", path="/visibility", value="shared")]))
    member = owner.glance_add_image_member(GlanceAddImageMemberRequest(
        image_id=created.id, body=GlanceAddImageMemberRequestBody(member=third)))
    assert member.status == "pending" and member.member_id == third
    other.glance_update_image_member(GlanceUpdateImageMemberRequest(
        image_id=created.id, member_id=third,
        body=GlanceUpdateImageMemberRequestBody(status="accepted")))
    members = owner.glance_list_image_members(GlanceListImageMembersRequest(image_id=created.id))
    assert [(m.member_id, m.status) for m in members.members] == [(third, "accepted")]
    shown = other.glance_show_image_member(GlanceShowImageMemberRequest(
        image_id=created.id, member_id=third))
    assert shown.status == "accepted"
    assert other.glance_show_image(GlanceShowImageRequest(image_id=created.id)).id == created.id
    owner.glance_delete_image_member(GlanceDeleteImageMemberRequest(
        image_id=created.id, member_id=third))
    with pytest.raises(sdk_errors.ClientRequestException) as err:
        other.glance_show_image(GlanceShowImageRequest(image_id=created.id))
    assert err.value.status_code == 404

    owner.glance_delete_image(GlanceDeleteImageRequest(image_id=created.id))
    with pytest.raises(sdk_errors.ClientRequestException) as err:
        owner.glance_show_image(GlanceShowImageRequest(image_id=created.id))
    assert err.value.status_code == 404


def test_schemas_and_versions(owner):
    image = owner.glance_show_image_schemas(GlanceShowImageSchemasRequest())
    assert image.name == "image" and "disk_format" in image.properties
    images = owner.glance_list_image_schemas(GlanceListImageSchemasRequest())
    assert images.name == "images"
    member = owner.glance_show_image_member_schemas(GlanceShowImageMemberSchemasRequest())
    assert member.name == "member"
    members = owner.glance_list_image_member_schemas(GlanceListImageMemberSchemasRequest())
    assert members.name == "members"
    versions = owner.list_versions(ListVersionsRequest())
    assert any(v.id == "v2.0" for v in versions.versions)
    one = owner.show_version(ShowVersionRequest(version="v2.0"))
    assert [v.id for v in one.versions] == ["v2.0"]
    current = owner.show_version(ShowVersionRequest(version="v2"))
    assert [v.status for v in current.versions] == ["CURRENT"]


def test_a_bad_signature_on_a_glance_route_is_refused(ims):
    ak, _ = ims.admin("credential", "create", "--user", "demo2").stdout.split()
    forged = BasicCredentials(ak, "0" * 40, ims.project_ids["demo2"])
    client = ImsClient.new_builder().with_credentials(forged).with_endpoints([ims.url]).build()
    with pytest.raises(sdk_errors.ClientRequestException) as err:
        client.glance_list_images(GlanceListImagesRequest())
    assert err.value.status_code == 401
