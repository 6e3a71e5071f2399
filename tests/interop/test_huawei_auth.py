"""Huawei AK/SK authentication with the official SDK (huaweicloudsdkcore + huaweicloudsdkims).

Given a region but no project id, the SDK signs `GET /v3/projects?name=<region>` with the
AK/SK when the client is built; ims verifies the SDK-HMAC-SHA256 signature and answers with
the key's project. A wrong secret must fail the build.
"""
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions import exceptions as sdk_errors
from huaweicloudsdkcore.region.region import Region
from huaweicloudsdkims.v2 import ImsClient, ListOsVersionsRequest

from conftest import wait_job

REGION = "RegionOne"


def new_credential(ims, user: str = "demo2") -> tuple[str, str]:
    out = ims.admin("credential", "create", "--user", user).stdout.split()
    assert len(out) == 2, out
    return out[0], out[1]


def build(ims, ak: str, sk: str) -> BasicCredentials:
    credentials = BasicCredentials(ak, sk).with_iam_endpoint(ims.url)
    ImsClient.new_builder().with_credentials(credentials).with_region(Region(REGION, ims.url)).build()
    return credentials


def test_sdk_signed_iam_lookup_resolves_the_keys_project(ims):
    ak, sk = new_credential(ims)
    credentials = build(ims, ak, sk)
    assert credentials.project_id == ims.project_ids["demo2"]


def test_a_wrong_secret_is_refused(ims):
    ak, sk = new_credential(ims)
    wrong = sk[:-1] + ("a" if sk[-1] != "a" else "b")
    with pytest.raises(sdk_errors.SdkException):
        build(ims, ak, wrong)
    # With the project given, the IMS call itself is refused in the gateway's shape.
    with pytest.raises(sdk_errors.ClientRequestException) as err:
        ims_client(ims, ak, wrong, "demo2").list_os_versions(ListOsVersionsRequest())
    assert err.value.status_code == 401
    assert err.value.error_code == "APIGW.0301"


def test_an_unknown_access_key_is_refused(ims):
    with pytest.raises(sdk_errors.SdkException):
        build(ims, "UNKNOWNAK00000000000", "x" * 40)


def ims_client(ims, ak: str, sk: str, project: str) -> ImsClient:
    credentials = BasicCredentials(ak, sk, ims.project_ids[project])
    return ImsClient.new_builder().with_credentials(credentials).with_endpoints([ims.url]).build()


def test_quota_and_os_versions_through_the_sdk(ims):
    from huaweicloudsdkims.v2 import ListOsVersionsRequest, ShowImageQuotaRequest

    client = ims_client(ims, *new_credential(ims), "demo2")
    quota = client.show_image_quota(ShowImageQuotaRequest())
    image = next(r for r in quota.quotas.resources if r.type == "image")
    assert image.used >= 0
    versions = client.list_os_versions(ListOsVersionsRequest())
    platforms = {group.platform for group in versions.body}
    assert {"Ubuntu", "Windows"} <= platforms, platforms
    ubuntu = next(g for g in versions.body if g.platform == "Ubuntu")
    assert all(v.os_type == "Linux" and v.os_bit in (32, 64) for v in ubuntu.version_list)


def test_a_glance_import_is_an_ims_job(ims, random_file):
    from huaweicloudsdkims.v2 import ShowJobProgressRequest

    image = ims.create_image(cloud="demo2", name="as-job")
    r = ims.request("PUT", f"/v2/images/{image['id']}/stage", cloud="demo2",
                    headers={"Content-Type": "application/octet-stream"}, data=random_file.read_bytes())
    assert r.status_code == 204, r.text
    r = ims.request("POST", f"/v2/images/{image['id']}/import", cloud="demo2",
                    json={"method": {"name": "glance-direct"}})
    assert r.status_code == 202, r.text
    tasks = ims.request("GET", f"/v2/images/{image['id']}/tasks", cloud="demo2").json()["tasks"]
    job_id = tasks[0]["id"]

    client = ims_client(ims, *new_credential(ims), "demo2")
    job = wait_job(client, job_id)
    assert job.status == "SUCCESS", job
    assert job.job_type == "imsImportImageJob"
    assert job.entities.image_id == image["id"]
    assert job.entities.image_name == "as-job"
    assert job.begin_time.endswith("Z") and job.end_time.endswith("Z")
    progress = client.show_job_progress(ShowJobProgressRequest(job_id=job_id))
    assert progress.status == "SUCCESS"


def test_ims_errors_come_in_ims_shapes(ims):
    from huaweicloudsdkims.v2 import ShowImageQuotaRequest, ShowJobRequest

    ak, sk = new_credential(ims)
    client = ims_client(ims, ak, sk, "demo2")
    with pytest.raises(sdk_errors.ClientRequestException) as missing:
        client.show_job(ShowJobRequest(job_id="9a175ac692fa125401930027b9c026b3"))
    assert missing.value.status_code == 404
    assert missing.value.error_code == "IMG.0121"
    assert missing.value.request_id.startswith("req-")

    forged = ims_client(ims, ak, "x" * 40, "demo2")
    with pytest.raises(sdk_errors.ClientRequestException) as bad:
        forged.show_image_quota(ShowImageQuotaRequest())
    assert bad.value.status_code == 401
    assert bad.value.error_code == "APIGW.0301"

