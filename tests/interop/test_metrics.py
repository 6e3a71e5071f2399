"""`/metrics`: Prometheus text, read with the Prometheus client's own text-format parser,
whose counters move by exactly what known requests did (through openstacksdk and the
openstack CLI) on a server of its own."""

from __future__ import annotations

import os
import socket

import openstack
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import bucket, finish_setup, ims_sdk, unique, wait_job, wait_until

MiB = 1 << 20


def parse(text: str) -> dict[tuple, float]:
    """Every sample as {(name, sorted labels): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict, name: str, **labels) -> float:
    """A sample's value; 0 when the series does not exist yet."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(server, cloud: str = "ims") -> dict:
    r = server.request("GET", "/metrics", cloud=cloud, headers={"Accept": "text/plain"})
    assert r.status_code == 200, f"/metrics: {r.status_code} {r.text}"
    assert r.headers["Content-Type"].startswith("text/plain"), r.headers
    return parse(r.text)


@pytest.fixture(scope="module")
def metered(ims_factory):
    """A server of its own, so that no other test's requests move its counters; with the
    metrics-only listener on a port of its own."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ims_factory("metrics", {"IMS_METRICS__LISTEN": f"127.0.0.1:{port}",
                                     "IMS_WEB_DOWNLOAD__ALLOW_PRIVATE": "true",
                                     "IMS_WEB_DOWNLOAD__PORTS": "[]"})
    finish_setup(server)
    server.metrics_url = f"http://127.0.0.1:{port}/metrics"
    return server


@pytest.fixture
def conn(metered, monkeypatch):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(metered.all_clouds_yaml))
    c = openstack.connect(cloud="demo2")
    try:
        yield c
    finally:
        c.close()


def test_metrics_need_an_admin_on_the_api_listener_and_nothing_on_their_own(metered):
    r = requests.get(f"{metered.url}/metrics", timeout=30)
    assert r.status_code == 401, r.text
    r = metered.request("GET", "/metrics", cloud="demo2")
    assert r.status_code == 403, r.text
    # The management listener serves the same text without a token, and nothing else.
    r = requests.get(metered.metrics_url, timeout=30)
    assert r.status_code == 200, r.text
    assert value(parse(r.text), "ims_catalog_pool_max_connections") > 0
    assert requests.get(metered.metrics_url.replace("/metrics", "/v2/images"),
                        timeout=30).status_code == 404


def test_upload_download_and_requests_move_their_counters_exactly(metered, conn):
    data = os.urandom(3 * MiB + 17)
    before = scrape(metered)
    image = conn.image.create_image(name=unique("metrics"), disk_format="raw",
                                    container_format="bare", data=data)
    got = conn.image.download_image(image)
    assert (got.content if hasattr(got, "content") else got) == data
    after = scrape(metered)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("ims_data_bytes_total", path="upload") == len(data)
    assert moved("ims_data_bytes_total", path="download") == len(data)
    assert moved("ims_pipeline_bytes_total") == len(data)
    assert moved("ims_pipeline_pass_seconds_count") == 1
    route = "/v2/images/{id}/file"
    assert moved("ims_http_requests_total", dialect="glance", route=route, method="PUT",
                 status="204") == 1
    assert moved("ims_http_requests_total", dialect="glance", route=route, method="GET",
                 status="200") == 1
    assert moved("ims_http_request_duration_seconds_count", dialect="glance", route=route,
                 method="PUT") == 1
    # openstacksdk asked Keystone for its token, once.
    assert moved("ims_http_requests_total", dialect="keystone", route="/v3/auth/tokens",
                 method="POST", status="201") == 1
    # A missing image is a 404 on its route template, never on its raw path.
    r = metered.request("GET", "/v2/images/00000000-0000-0000-0000-000000000000", cloud="demo2")
    assert r.status_code == 404
    last = scrape(metered)
    assert value(last, "ims_http_requests_total", dialect="glance", route="/v2/images/{id}",
                 method="GET", status="404") >= 1
    assert not any("00000000-0000" in str(labels) for (_, labels) in last), \
        "a raw path became a label"
    # Made-up methods share one label value.
    for method in ("FOOBAR", "BAZQUX"):
        requests.request(method, f"{metered.url}/v2/images", timeout=10)
    methods = {dict(labels).get("method") for (name, labels) in scrape(metered)
               if name == "ims_http_requests_total"}
    assert "other" in methods and not methods & {"FOOBAR", "BAZQUX"}, methods
    assert value(last, "process_resident_memory_bytes") > 1 * MiB
    assert value(last, "process_open_fds") > 3


def test_an_import_job_is_claimed_counted_and_its_bytes_are_imports(metered, conn, file_server):
    data = os.urandom(2 * MiB + 5)
    url = file_server.serve(data)
    before = scrape(metered)
    image = conn.image.create_image(name=unique("metrics-import"), disk_format="raw",
                                    container_format="bare")
    conn.image.import_image(image, method="web-download", uri=url)
    wait_until(lambda: conn.image.get_image(image).status, lambda s: s == "active",
               timeout=60, what="the import")
    # The job's outcome is written just after the image turns active.
    def finished():
        return value(scrape(metered), "ims_jobs_finished_total", kind="image_import",
                     status="SUCCESS") - value(before, "ims_jobs_finished_total",
                                               kind="image_import", status="SUCCESS")
    assert wait_until(finished, lambda n: n == 1, timeout=30, what="the job's outcome") == 1
    after = scrape(metered)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("ims_data_bytes_total", path="import") == len(data)
    assert moved("ims_data_bytes_total", path="upload") == 0
    assert moved("ims_pipeline_bytes_total") == len(data)
    assert moved("ims_job_claims_total", kind="image_import") == 1
    assert moved("ims_job_claim_wait_seconds_count", kind="image_import") == 1
    assert moved("ims_job_lease_takeovers_total", kind="image_import") == 0
    # Nothing waits or runs any more, and the gauges say so for every kind.
    assert value(after, "ims_jobs", kind="image_import", status="RUNNING") == 0
    assert value(after, "ims_job_queue_depth") == 0
    assert ("ims_jobs", (("kind", "image_import"), ("status", "INIT"))) in after


def test_qemu_img_runs_are_counted_by_command(metered):
    """An export that converts (huaweicloudsdkims) runs `qemu-img convert` through the one
    wrapper."""
    from huaweicloudsdkims.v2 import ExportImageRequest, ExportImageRequestBody

    client = ims_sdk(metered)
    before = scrape(metered)
    image = metered.create_image(cloud="demo2", disk_format="raw")
    assert metered.upload(image["id"], b"\0" * MiB, cloud="demo2").status_code == 204
    bucket(metered, "metrics-out")
    resp = client.export_image(ExportImageRequest(image_id=image["id"], body=ExportImageRequestBody(
        bucket_url="metrics-out:disk.qcow2", file_format="qcow2")))
    job = wait_job(client, resp.job_id)
    assert job.status == "SUCCESS", job.fail_reason
    after = scrape(metered)
    assert value(after, "ims_qemu_img_runs_total", command="convert", outcome="ok") - \
        value(before, "ims_qemu_img_runs_total", command="convert", outcome="ok") == 1
    assert value(after, "ims_qemu_img_duration_seconds_count", command="convert") - \
        value(before, "ims_qemu_img_duration_seconds_count", command="convert") == 1
    exported = value(after, "ims_data_bytes_total", path="export") - \
        value(before, "ims_data_bytes_total", path="export")
    assert 0 < exported < MiB, exported  # a qcow2 of zeros is smaller than the raw MiB


def test_with_metrics_off_nothing_is_served(ims_factory):
    server = ims_factory("metrics-off", {"IMS_METRICS__ENABLED": "false"})
    r = server.request("GET", "/metrics")
    assert r.status_code == 404, r.text
    assert server.request("GET", "/v2/images").status_code == 200


def test_request_logs_name_the_dialect_route_and_caller_never_the_token(metered):
    token = metered.token("demo2")
    r = metered.request("GET", "/v2/images?limit=1", cloud="demo2")
    assert r.status_code == 200
    request_id = r.headers["x-openstack-request-id"]
    line = wait_until(lambda: [l for l in metered.log_path.read_text().splitlines()
                               if request_id in l and "finished processing request" in l],
                      bool, timeout=10, what="the request's log line")[0]
    assert 'dialect="glance"' in line and 'route="/v2/images"' in line, line
    assert f'project.id="{metered.project_ids["demo2"]}"' in line, line
    assert "user.id=" in line and "status=200" in line, line
    assert token not in metered.log_path.read_text()


def test_the_job_gauges_count_a_running_import_then_none(metered, conn):
    """ims_jobs{status="RUNNING"} is 1 while a web-download runs (its source is slow), and
    0 once it is done: the gauges follow the catalog, not only exist."""
    import http.server
    import threading
    import time

    payload = os.urandom(4 * MiB)

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            for i in range(0, len(payload), MiB):
                self.wfile.write(payload[i:i + MiB])
                self.wfile.flush()
                time.sleep(0.75)

        def log_message(self, *_):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        image = conn.image.create_image(name=unique("metrics-gauge"), disk_format="raw",
                                        container_format="bare")
        conn.image.import_image(image, method="web-download",
                                uri=f"http://127.0.0.1:{httpd.server_address[1]}/d.raw")
        wait_until(lambda: value(scrape(metered), "ims_jobs", kind="image_import",
                                 status="RUNNING"), lambda n: n == 1, timeout=10,
                   interval=0.2, what="the running import in the gauge")
        wait_until(lambda: conn.image.get_image(image).status, lambda s: s == "active",
                   timeout=60, what="the import")
        wait_until(lambda: value(scrape(metered), "ims_jobs", kind="image_import",
                                 status="RUNNING"), lambda n: n == 0, timeout=10,
                   what="the gauge back at 0")
    finally:
        httpd.shutdown()
