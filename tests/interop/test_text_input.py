"""Control characters in text input, through the real clients: refused with a 400 that
the client reports, on SQLite and PostgreSQL alike (PostgreSQL cannot store a NUL;
without the rule the same request would be a 500 there and stored on SQLite)."""

from __future__ import annotations

import requests

from conftest import unique


def test_openstack_cli_reports_a_control_character_in_a_property(ims):
    name = unique("ctl")
    proc = ims.osc("image", "create", "--disk-format", "raw", "--container-format", "bare",
                   "--property", "note=bell\x07", name, check=False)
    assert proc.returncode != 0, proc.stdout
    assert "control characters" in proc.stderr, proc.stderr
    assert ims.osc_json("image", "list", "--name", name) == []


def test_glance_cli_reports_a_control_character_in_a_name(ims):
    proc = ims.glance("image-create", "--name", "esc\x1b[0m", "--disk-format", "raw",
                      "--container-format", "bare", check=False)
    assert proc.returncode != 0, proc.stdout
    want = "HTTP 400 Bad Request: Invalid name: control characters are not allowed (found U+001B)"
    assert want in proc.stderr, proc.stderr


def test_nul_in_a_list_filter_and_in_a_keystone_login(ims):
    r = ims.request("GET", "/v2/images?name=%00")
    assert r.status_code == 400, r.text
    assert "control characters" in r.json()["message"]
    auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin\u0000", "domain": {"name": "Default"}, "password": "x"}}}}}
    r = requests.post(f"{ims.url}/v3/auth/tokens", json=auth, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == 400
    # The catalog is fine afterwards: the client still lists images.
    ims.osc_json("image", "list")
