"""IMS tag listings through huaweicloudsdkims: ListTags (`GET /v1/cloudimages/tags`) and
ListImageByTags (`POST /v2/{project_id}/images/resource_instances/action`, filter and
count). The session server is shared with other tests, so every tag key here is unique
to the test, and another project's image with the same tags must never be found.
"""
import pytest
from huaweicloudsdkcore.exceptions import exceptions as sdk_errors
from huaweicloudsdkims.v2 import (ListImageByTagsRequest, ListImageByTagsRequestBody,
                                  ListTagsRequest, TagKeyValue, Tags)

from conftest import ims_sdk, unique


@pytest.fixture(scope="module")
def client(ims):
    return ims_sdk(ims, "demo2", "demo2")


@pytest.fixture(scope="module")
def tagged(ims):
    """Three demo2 images under a fresh key, and an admin-project image with the same tags."""
    key = unique("tms").replace("-", "_")
    names = {}
    for label, tags in [("prod", [f"{key}=prod", "tier=web"]),
                        ("dev", [f"{key}=dev", "tier=web"]),
                        ("db", [f"{key}=prod", "tier=db"])]:
        name = unique(f"{key}-{label}")
        image = ims.create_image(cloud="demo2", name=name, visibility="private", tags=tags)
        names[label] = (name, image["id"])
    ims.create_image(cloud="ims", name=unique(f"{key}-other"), visibility="public",
                     tags=[f"{key}=prod", "tier=web"])
    return key, names


def search(client, action, **body):
    return client.list_image_by_tags(ListImageByTagsRequest(
        body=ListImageByTagsRequestBody(action=action, **body)))


def test_list_tags_through_the_sdk(client, tagged):
    key, names = tagged
    name, _ = names["db"]
    one = client.list_tags(ListTagsRequest(name=name))
    assert one.tags == sorted([f"{key}.prod", "tier.db"])
    everything = client.list_tags(ListTagsRequest(status="queued", imagetype="private"))
    assert {f"{key}.dev", f"{key}.prod", "tier.db", "tier.web"} <= set(everything.tags)
    assert everything.tags == sorted(set(everything.tags))
    first = client.list_tags(ListTagsRequest(status="queued", imagetype="private", limit=1, page=1)).tags
    second = client.list_tags(ListTagsRequest(status="queued", imagetype="private", limit=1, page=2)).tags
    assert first == everything.tags[:1] and second == everything.tags[1:2]
    with pytest.raises(sdk_errors.ClientRequestException) as bad:
        client.list_tags(ListTagsRequest(page=0))
    assert bad.value.status_code == 400 and bad.value.error_code == "IMG.0001"


def test_list_image_by_tags_filter_and_count_through_the_sdk(client, tagged):
    key, names = tagged
    prod = [Tags(key=key, values=["prod"])]
    page = search(client, "filter", tags=prod, limit="10", offset="0")
    assert page.total_count == 2, "the admin project's image is not demo2's"
    found = {r.resource_name: r for r in page.resources}
    assert set(found) == {names["prod"][0], names["db"][0]}
    db = found[names["db"][0]]
    assert db.resource_id == names["db"][1]
    assert db.resource_detail.status == "queued"
    assert {(t.key, t.value) for t in db.tags} == {(key, "prod"), ("tier", "db")}

    assert search(client, "count", tags=prod).total_count == 2
    assert search(client, "count", tags=[Tags(key=key, values=[])],
                  not_tags_any=[Tags(key="tier", values=["db"])]).total_count == 2
    assert search(client, "count", tags_any=[Tags(key=key, values=["dev"])]).total_count == 1
    assert search(client, "count", tags=[Tags(key=key, values=[])],
                  not_tags=[Tags(key=key, values=["prod"]), Tags(key="tier", values=["web"])]
                  ).total_count == 2
    by_name = search(client, "filter", matches=[TagKeyValue(key="resource_name", value=f"{key}-d")])
    assert {r.resource_name for r in by_name.resources} == {names["dev"][0], names["db"][0]}
    by_id = search(client, "count", matches=[TagKeyValue(key="resource_id", value=names["dev"][1])])
    assert by_id.total_count == 1

    window = search(client, "filter", tags=[Tags(key=key, values=[])], limit="1", offset="1")
    assert window.total_count == 3 and len(window.resources) == 1


def test_list_image_by_tags_bad_input_through_the_sdk(client):
    for body, code in [
        (dict(action="list"), "IMG.0001"),
        (dict(action="filter", limit="0"), "IMG.0001"),
        (dict(action="filter", offset="-1"), "IMG.0001"),
        (dict(action="count", tags=[Tags(key=f"k{n}", values=[]) for n in range(11)]), "IMG.0115"),
        (dict(action="count", matches=[TagKeyValue(key="resource_type", value="x")]), "IMG.0001"),
    ]:
        with pytest.raises(sdk_errors.ClientRequestException) as bad:
            client.list_image_by_tags(ListImageByTagsRequest(body=ListImageByTagsRequestBody(**body)))
        assert bad.value.status_code == 400, body
        assert bad.value.error_code == code, body
