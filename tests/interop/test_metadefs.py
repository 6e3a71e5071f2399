"""Metadata definitions (`/v2/metadefs/…`) driven by python-glanceclient's `glance md-*`
commands, plus the bad inputs glanceclient refuses before sending (raw HTTP)."""

from __future__ import annotations

import json

from conftest import parse_table, unique


def names_in(out: str) -> list[str]:
    """First column of a `glance … list` table."""
    rows = []
    for line in out.splitlines():
        if line.startswith("|"):
            cell = line.strip().strip("|").split("|")[0].strip()
            if cell and cell not in ("namespace", "name", "Name"):
                rows.append(cell)
    return rows


def error_of(r) -> str:
    body = r.json()
    assert set(body) >= {"message", "code", "title"}, body
    assert body["code"].startswith(str(r.status_code)), body
    return body["message"]


def test_glance_md_commands_manage_a_namespace(ims):
    ns = unique("md-ns")
    created = parse_table(ims.glance("md-namespace-create", ns, "--visibility", "public",
                                     "--protected", "True", "--description", "interop",
                                     "--display-name", ns).stdout)
    assert created["namespace"] == ns and created["protected"] == "True"
    assert ns in names_in(ims.glance("md-namespace-list").stdout)

    resource_types = names_in(ims.glance("md-resource-type-list").stdout)
    assert "OS::Glance::Image" in resource_types
    ims.glance("md-resource-type-associate", ns, "--name", "OS::Glance::Image",
               "--prefix", "hw_")
    listed = ims.glance("md-namespace-resource-type-list", ns).stdout
    assert "OS::Glance::Image" in listed and "hw_" in listed

    ims.glance("md-property-create", ns, "--name", "disk_bus", "--title", "Disk Bus",
               "--type", "string", "--schema", json.dumps({"enum": ["scsi", "virtio"]}))
    shown = ims.glance("md-property-show", ns, "disk_bus").stdout
    assert "Disk Bus" in shown and "virtio" in shown
    bad = ims.glance("md-property-create", ns, "--name", "bad", "--title", "Bad",
                     "--type", "strnig", "--schema", "{}", check=False)
    # glanceclient checks the body against ims's property schema before sending it; the
    # server's own 400 is checked with raw HTTP below.
    assert bad.returncode != 0 and "'strnig' is not one of" in bad.stderr, bad.stderr

    ims.glance("md-object-create", ns, "--name", "CPU Limits", "--schema",
               json.dumps({"properties": {"period": {"title": "Period", "type": "integer"}}}))
    assert "CPU Limits" in ims.glance("md-object-list", ns).stdout

    ims.glance("md-tag-create-multiple", ns, "--names", "t1,t2")
    # `--append` fails inside glanceclient 4.13 (it sends the header as a bool, which
    # requests cannot encode), so the append header goes over raw HTTP.
    r = ims.request("POST", f"/v2/metadefs/namespaces/{ns}/tags",
                    headers={"X-Openstack-Append": "True"}, json={"tags": [{"name": "t3"}]})
    assert r.status_code == 201, r.text
    ims.glance("md-tag-create", ns, "--name", "t4")
    assert sorted(names_in(ims.glance("md-tag-list", ns).stdout)) == ["t1", "t2", "t3", "t4"]
    dup = ims.glance("md-tag-create", ns, "--name", "t4", check=False)
    assert dup.returncode != 0 and "409" in dup.stderr, dup.stderr

    detail = parse_table(ims.glance("md-namespace-show", ns, "--resource-type",
                                    "OS::Glance::Image").stdout)
    assert "hw_disk_bus" in detail["properties"], detail
    assert "CPU Limits" in detail["objects"], detail

    # Protected: deleting fails until an update unprotects it.
    refused = ims.glance("md-namespace-delete", ns, check=False)
    assert refused.returncode != 0 and "403" in refused.stderr, refused.stderr
    ims.glance("md-namespace-update", ns, "--protected", "False")
    ims.glance("md-namespace-tags-delete", ns)
    assert names_in(ims.glance("md-tag-list", ns).stdout) == []
    ims.glance("md-namespace-delete", ns)
    gone = ims.glance("md-namespace-show", ns, check=False)
    assert gone.returncode != 0 and "404" in gone.stderr, gone.stderr


def test_metadef_bad_inputs_get_glances_errors(ims):
    ns = unique("md-bad")
    r = ims.request("POST", "/v2/metadefs/namespaces", json={"namespace": ns})
    assert r.status_code == 201, r.text
    r = ims.request("POST", "/v2/metadefs/namespaces", json={"namespace": ns})
    assert r.status_code == 409 and "already exists" in error_of(r)
    r = ims.request("POST", f"/v2/metadefs/namespaces/{ns}/properties",
                    json={"name": "p", "title": "P", "type": "colour"})
    assert r.status_code == 400 and "'colour' is not one of" in error_of(r)
    r = ims.request("POST", f"/v2/metadefs/namespaces/{ns}/tags",
                    json={"tags": [{"name": "t" * 256}]})
    assert r.status_code == 400 and "too long" in error_of(r)
    r = ims.request("POST", f"/v2/metadefs/namespaces/{unique('missing')}/resource_types",
                    json={"name": "OS::Glance::Image"})
    assert r.status_code == 404, r.text
    error_of(r)

    # A member may not write, and never sees the admin project's private namespace.
    r = ims.request("POST", "/v2/metadefs/namespaces", cloud="demo2",
                    json={"namespace": unique("mine")})
    assert r.status_code == 403 and "not authorized" in error_of(r)
    r = ims.request("GET", f"/v2/metadefs/namespaces/{ns}", cloud="demo2")
    assert r.status_code == 404, r.text
    listed = ims.glance("md-namespace-list", cloud="demo2").stdout
    assert ns not in names_in(listed)
    ims.request("DELETE", f"/v2/metadefs/namespaces/{ns}")
