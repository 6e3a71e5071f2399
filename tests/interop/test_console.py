"""The web console in a real headless Chromium (Debian's chromium and chromium-driver,
driven by Selenium): sign-in, a 64 MiB upload whose progress bar reaches 100%, a cancelled
upload, an import whose job percentage rises live to SUCCESS, edits, deletion, escaping
of hostile names, a cross-site form post, an expired session and sign-out. Screenshots of
the main pages go to target/artifacts/console/."""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import threading
import time
from pathlib import Path

import openstack
import pytest
import requests

import conftest
from conftest import (REPO, bucket, create_data_image, finish_setup, ims_sdk, kms_sdk, put, qemu_img,
                      unique, wait_job)

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

MiB = 1 << 20
SHOTS = REPO / "target" / "artifacts" / "console"
HOSTILE = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


def chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or "/usr/lib/chromium/chromedriver"
    if not browser or not Path(driver).exists():
        pytest.fail("chromium and chromium-driver are missing: scripts/test installs them",
                    pytrace=False)
    return browser, driver


@pytest.fixture(scope="module")
def console(ims_factory):
    """A server of its own whose web-download may fetch from loopback."""
    server = ims_factory("console", {"IMS_WEB_DOWNLOAD__ALLOW_PRIVATE": "true",
                                     "IMS_WEB_DOWNLOAD__PORTS": "[]"})
    finish_setup(server)
    return server


@pytest.fixture(scope="module")
def browser():
    binary, driver_path = chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--disable-gpu"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(driver_path))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def sdk(console, monkeypatch):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(console.all_clouds_yaml))
    c = openstack.connect(cloud="demo2")
    try:
        yield c
    finally:
        c.close()


def shot(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def sign_in(driver, server, cloud: str = "demo2", start: str = "/console/images") -> None:
    driver.delete_all_cookies()
    driver.get(server.url + start)
    wait_until(lambda: driver.current_url, lambda u: "/console/signin" in u, timeout=10,
               what="the sign-in page")
    c = server.clouds[cloud]
    driver.find_element(By.ID, "user").send_keys(c.username)
    driver.find_element(By.ID, "password").send_keys(c.password)
    driver.find_element(By.ID, "project").send_keys(c.project_name)
    driver.find_element(By.ID, "signin").click()
    wait_until(lambda: driver.current_url, lambda u: "/console/signin" not in u, timeout=10,
               what="signing in")


def wait_until(fetch, ready, timeout: float = 60.0, interval: float = 0.1, what: str = ""):
    """conftest's wait_until, where a look at a page that is being replaced (a stale or
    vanished element, a node no longer in the document) is just another try."""
    def guarded():
        try:
            return True, fetch()
        except WebDriverException:
            return False, None
    return conftest.wait_until(guarded, lambda r: r[0] and ready(r[1]), timeout=timeout,
                               interval=interval, what=what)[1]


def text(driver, element_id: str) -> str:
    """An element's text; "" while the page is being replaced (so waits retry)."""
    try:
        return driver.find_element(By.ID, element_id).text
    except WebDriverException:
        return ""


def watch_progress(driver, element_id: str, until, timeout: float = 120) -> list[int]:
    """The values a <progress> showed until `until()` holds."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            v = driver.execute_script(
                "const e = document.getElementById(arguments[0]); return e ? e.value : null;",
                element_id)
        except Exception:  # the page moved on
            v = None
        if v is not None and (not seen or seen[-1] != int(v)):
            seen.append(int(v))
        if until():
            return seen
        time.sleep(0.05)
    raise AssertionError(f"progress never finished: {seen}")


def test_sign_in_returns_to_the_page_and_its_filters_and_refuses_bad_passwords(console, browser):
    browser.delete_all_cookies()
    browser.get(console.url + "/console/images?status=active&sort_key=name&sort_dir=asc")
    assert "/console/signin" in browser.current_url
    browser.find_element(By.ID, "user").send_keys("demo2")
    browser.find_element(By.ID, "password").send_keys("not-the-password")
    browser.find_element(By.ID, "signin").click()
    refusal = wait_until(lambda: text(browser, "signin-error"), bool, timeout=10).lower()
    assert "password" in refusal or "authenticat" in refusal, refusal
    shot(browser, "signin-refused")
    c = console.clouds["demo2"]
    browser.find_element(By.ID, "password").send_keys(c.password)
    browser.find_element(By.ID, "project").clear()
    browser.find_element(By.ID, "project").send_keys(c.project_name)
    browser.find_element(By.ID, "signin").click()
    wait_until(lambda: browser.current_url, lambda u: "/console/images?" in u, timeout=10,
               what="back at the list")
    assert "status=active" in browser.current_url
    assert Select(browser.find_element(By.NAME, "status")).first_selected_option.text == "active"
    cookie = browser.get_cookie("ims_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"


def test_a_64_mib_upload_shows_its_progress_and_the_cli_sees_the_image(console, browser, sdk,
                                                                      tmp_path):
    data = os.urandom(64 * MiB)
    src = tmp_path / "disk.raw"
    src.write_bytes(data)
    sign_in(browser, console)
    browser.get(console.url + "/console/images/new")
    name = unique("console-upload")
    browser.find_element(By.ID, "name").send_keys(name)
    browser.find_element(By.ID, "file").send_keys(str(src))
    Select(browser.find_element(By.ID, "disk_format")).select_by_value("raw")
    shot(browser, "create")
    # Slow enough to watch: 16 MiB/s.
    browser.set_network_conditions(offline=False, latency=1, download_throughput=512 * MiB,
                                   upload_throughput=16 * MiB)
    try:
        browser.find_element(By.ID, "create").click()
        seen = watch_progress(browser, "upload-progress",
                              lambda: "/console/images/" in browser.current_url
                              and "/new" not in browser.current_url)
    finally:
        browser.delete_network_conditions()
    assert seen and seen[-1] == 100, seen
    assert any(0 < v < 100 for v in seen), f"no progress between 0 and 100: {seen}"
    wait_until(lambda: text(browser, "image-status"), lambda s: s == "active", timeout=30,
               what="the image page")
    shot(browser, "image-detail")
    image = next(sdk.image.images(name=name))
    assert image.status == "active" and image.size == len(data)
    # …and the OpenStack CLI sees it, as the README's reader would check.
    shown = console.osc_json("image", "show", image.id, cloud="demo2")
    assert shown["status"] == "active" and shown["checksum"] == hashlib.md5(data).hexdigest()
    assert image.checksum == hashlib.md5(data).hexdigest()
    # The list shows it too, readable without the script.
    browser.get(console.url + "/console/images?name=" + name)
    row = browser.find_element(By.CSS_SELECTOR, f"tr[data-id='{image.id}']")
    assert "active" in row.text and "64.0 MiB" in row.text
    shot(browser, "images")


def test_a_cancelled_upload_leaves_the_image_queued_with_no_data(console, browser, sdk, tmp_path):
    src = tmp_path / "big.raw"
    src.write_bytes(os.urandom(48 * MiB))
    image = sdk.image.create_image(name=unique("console-cancel"), disk_format="raw",
                                   container_format="bare")
    sign_in(browser, console)
    browser.get(f"{console.url}/console/images/{image.id}")
    browser.find_element(By.ID, "upload-file").send_keys(str(src))
    browser.set_network_conditions(offline=False, latency=1, download_throughput=512 * MiB,
                                   upload_throughput=8 * MiB)
    try:
        browser.find_element(By.ID, "upload-start").click()
        wait_until(lambda: browser.find_element(By.ID, "upload-progress").get_attribute("value"),
                   lambda v: v is not None and 10 <= int(float(v)) < 90, timeout=60,
                   what="a partial upload")
        browser.find_element(By.ID, "upload-cancel").click()
    finally:
        browser.delete_network_conditions()
    assert "cancelled" in wait_until(lambda: text(browser, "upload-error"), bool, timeout=10)
    got = wait_until(lambda: sdk.image.get_image(image.id), lambda i: i.status == "queued",
                     timeout=30, what="the image queued again")
    assert got.size in (None, 0) and not got.checksum


class _SlowFile(http.server.BaseHTTPRequestHandler):
    """Serves `payload` in 1 MiB pieces, `delay` seconds apart."""
    payload = b""
    delay = 0.1

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        for i in range(0, len(self.payload), MiB):
            self.wfile.write(self.payload[i:i + MiB])
            self.wfile.flush()
            time.sleep(self.delay)

    def log_message(self, *_):
        pass


@pytest.fixture
def slow_file():
    _SlowFile.payload = os.urandom(32 * MiB)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowFile)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/disk.raw", _SlowFile.payload
    finally:
        httpd.shutdown()


def test_an_imports_job_rises_live_to_success_on_the_jobs_page(console, browser, sdk, slow_file):
    url, payload = slow_file
    sign_in(browser, console)
    browser.get(console.url + "/console/images/new")
    name = unique("console-import")
    browser.find_element(By.ID, "name").send_keys(name)
    Select(browser.find_element(By.ID, "disk_format")).select_by_value("raw")
    browser.find_element(By.ID, "url").send_keys(url)
    browser.find_element(By.ID, "create").click()
    wait_until(lambda: browser.current_url, lambda u: "/console/images/" in u and "/new" not in u,
               timeout=10, what="the image page")
    image_id = text(browser, "image-id")
    browser.get(console.url + "/console/jobs")
    row = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "tr[data-job]"), bool,
                     timeout=10, what="a job row")[0]
    job_id = row.get_attribute("data-job")
    seen = []

    def state():
        r = browser.find_element(By.ID, f"job-{job_id}")
        status = r.find_element(By.CSS_SELECTOR, "[data-field='status']").text
        pct = int(r.find_element(By.CSS_SELECTOR, "[data-field='progress']").text.rstrip("%"))
        if not seen or seen[-1] != (status, pct):
            seen.append((status, pct))
        return status

    # The page is not reloaded: the rows change because the server pushes them.
    wait_until(state, lambda s: s in ("SUCCESS", "FAIL"), timeout=90, interval=0.1,
               what="the job's end")
    shot(browser, "jobs")
    assert seen[-1] == ("SUCCESS", 100), seen
    assert any(s == "RUNNING" and 0 < p < 100 for s, p in seen), f"no live progress: {seen}"
    image = sdk.image.get_image(image_id)
    assert image.status == "active" and image.checksum == hashlib.md5(payload).hexdigest()


def test_a_bucket_import_from_the_create_page_ends_in_success_on_the_jobs_page(
        console, browser, sdk, tmp_path):
    src = tmp_path / "disk.qcow2"
    qemu_img("create", "-f", "qcow2", src, "256M")
    name = unique("console-bucket").lower()
    bucket(console, name)
    put(console, src, f"{name}:disk.qcow2")
    sign_in(browser, console)
    browser.get(console.url + "/console/images/new")
    image_name = unique("console-from-bucket")
    browser.find_element(By.ID, "name").send_keys(image_name)
    Select(browser.find_element(By.ID, "disk_format")).select_by_value("qcow2")
    browser.find_element(By.ID, "object").send_keys(f"{name}:disk.qcow2")
    browser.find_element(By.ID, "create").click()
    image_id = wait_until(lambda: text(browser, "image-id"), bool, timeout=10,
                          what="the image page")
    browser.get(console.url + "/console/jobs")
    row = wait_until(lambda: [r for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-job]")
                              if image_id in r.text], bool, timeout=10)[0]
    job_id = row.get_attribute("data-job")
    wait_until(lambda: browser.find_element(By.ID, f"job-{job_id}").find_element(
        By.CSS_SELECTOR, "[data-field='status']").text, lambda s: s in ("SUCCESS", "FAIL"),
        timeout=60, what="the bucket import's end")
    assert browser.find_element(By.ID, f"job-{job_id}").find_element(
        By.CSS_SELECTOR, "[data-field='progress']").text == "100%"
    image = next(sdk.image.images(name=image_name))
    assert image.status == "active" and image.virtual_size == 256 * MiB


def test_the_create_page_suggests_the_format_the_files_first_bytes_show(console, browser,
                                                                        tmp_path):
    disk = tmp_path / "disk.img"  # a name that says nothing: the bytes decide
    qemu_img("create", "-f", "vmdk", disk, "64M")
    sign_in(browser, console)
    browser.get(console.url + "/console/images/new")
    Select(browser.find_element(By.ID, "disk_format")).select_by_value("raw")
    browser.find_element(By.ID, "file").send_keys(str(disk))
    hint = wait_until(lambda: text(browser, "format-hint"), bool, timeout=10)
    assert "vmdk" in hint, hint
    assert Select(browser.find_element(By.ID, "disk_format")).first_selected_option.text == "vmdk"
    plain = tmp_path / "plain.bin"
    plain.write_bytes(os.urandom(MiB))
    browser.find_element(By.ID, "file").send_keys(str(plain))
    wait_until(lambda: text(browser, "format-hint"), lambda h: "could not be told" in h,
               timeout=10)


def test_edit_then_delete_with_confirmation(console, browser, sdk):
    image = sdk.image.create_image(name=unique("console-edit"), disk_format="raw",
                                   container_format="bare", data=b"x" * 4096,
                                   properties={"keep": "1", "drop": "2"})
    sign_in(browser, console)
    browser.get(f"{console.url}/console/images/{image.id}")
    name = browser.find_element(By.ID, "edit-name")
    name.clear()
    name.send_keys("renamed-in-console")
    tags = browser.find_element(By.ID, "edit-tags")
    tags.clear()
    tags.send_keys("alpha, beta")
    props = browser.find_element(By.ID, "edit-properties")
    lines = [l for l in props.get_attribute("value").splitlines() if not l.startswith("drop=")]
    props.clear()
    props.send_keys("\n".join(lines + ["added=yes"]))
    browser.find_element(By.ID, "edit-save").click()
    wait_until(lambda: text(browser, "image-name"), lambda n: n == "renamed-in-console",
               timeout=10)
    got = sdk.image.get_image(image.id)
    assert got.name == "renamed-in-console" and sorted(got.tags) == ["alpha", "beta"]
    assert got.properties.get("added") == "yes" and "drop" not in got.properties
    assert got.properties.get("keep") == "1"
    # A change the API refuses shows the API's message next to the form.
    props = browser.find_element(By.ID, "edit-properties")
    props.send_keys("\nnot a pair")
    browser.find_element(By.ID, "edit-save").click()
    assert "key=value" in wait_until(lambda: text(browser, "action-error"), bool, timeout=10)
    # Deactivate, reactivate, then delete through the confirmation page.
    browser.find_element(By.ID, "deactivate").click()
    wait_until(lambda: text(browser, "image-status"), lambda s: s == "deactivated", timeout=10)
    browser.find_element(By.ID, "reactivate").click()
    wait_until(lambda: text(browser, "image-status"), lambda s: s == "active", timeout=10)
    browser.find_element(By.ID, "delete").click()
    browser.find_element(By.ID, "confirm-delete").click()
    wait_until(lambda: browser.current_url, lambda u: u.endswith("/console/images"), timeout=10)
    wait_until(lambda: list(sdk.image.images(name="renamed-in-console")), lambda l: l == [],
               timeout=10)


def test_share_copy_and_export_from_the_image_page(console, browser, sdk, tmp_path):
    data = os.urandom(3 * MiB)
    image = sdk.image.create_image(name=unique("console-actions"), disk_format="raw",
                                   container_format="bare", data=data)
    admin_project = console.project_ids["admin"]
    out_bucket = unique("console-out").lower()
    bucket(console, out_bucket)
    sign_in(browser, console)
    browser.get(f"{console.url}/console/images/{image.id}")
    browser.find_element(By.ID, "share-project").send_keys(admin_project)
    browser.find_element(By.ID, "share").click()
    row = wait_until(lambda: browser.find_elements(
        By.CSS_SELECTOR, f"tr[data-member='{admin_project}']"), bool, timeout=10)[0]
    assert row.find_element(By.CSS_SELECTOR, "[data-field='member-status']").text == "pending"
    assert [m.member_id for m in sdk.image.members(image)] == [admin_project]
    # A project id the API refuses shows its message.
    browser.find_element(By.ID, "share-project").send_keys(admin_project)
    browser.find_element(By.ID, "share").click()
    assert wait_until(lambda: text(browser, "action-error"), bool, timeout=10)
    # Copy: a job, watched on the jobs page, and a new active image with the same data.
    browser.get(f"{console.url}/console/images/{image.id}")
    copy_name = unique("console-copy")
    name = browser.find_element(By.ID, "copy-name")
    name.clear()
    name.send_keys(copy_name)
    browser.find_element(By.ID, "copy").click()
    wait_until(lambda: browser.current_url, lambda u: u.endswith("/console/jobs"), timeout=10)
    copied = wait_until(lambda: list(sdk.image.images(name=copy_name)),
                        lambda l: l and l[0].status == "active", timeout=60, what="the copy")[0]
    assert copied.checksum == hashlib.md5(data).hexdigest()
    # Export: a job that writes the bucket object, converted.
    browser.get(f"{console.url}/console/images/{image.id}")
    browser.find_element(By.ID, "export-target").send_keys(f"{out_bucket}:disk.qcow2")
    Select(browser.find_element(By.ID, "export-format")).select_by_value("qcow2")
    browser.find_element(By.ID, "export").click()
    wait_until(lambda: browser.current_url, lambda u: u.endswith("/console/jobs"), timeout=10)
    listing = wait_until(lambda: console.bucket("ls", out_bucket).stdout, lambda o: "disk.qcow2" in o,
                         timeout=60, what="the exported object")
    assert "disk.qcow2" in listing
    shot(browser, "jobs-after-actions")


def test_the_list_says_which_api_made_each_image(console, browser, sdk, tmp_path):
    """One catalog, three APIs: an image from openstacksdk (Glance), one from
    huaweicloudsdkims (IMS CreateDataImage from a bucket file), one from the console."""
    glance_made = sdk.image.create_image(name=unique("origin-glance"), disk_format="raw",
                                         container_format="bare")
    src = tmp_path / "data.qcow2"
    qemu_img("create", "-f", "qcow2", src, "64M")
    name = unique("origin-bucket").lower()
    bucket(console, name)
    put(console, src, f"{name}:data.qcow2")
    client = ims_sdk(console)
    job = wait_job(client, create_data_image(client, name=unique("origin-ims"),
                                             image_url=f"{name}:data.qcow2", min_disk=40).job_id)
    assert job.status == "SUCCESS", job.fail_reason
    ims_made = job.entities.image_id
    sign_in(browser, console)
    browser.get(console.url + "/console/images/new")
    browser.find_element(By.ID, "name").send_keys(unique("origin-console"))
    browser.find_element(By.ID, "create").click()
    wait_until(lambda: text(browser, "image-origin"), lambda o: o == "console", timeout=10)
    console_made = text(browser, "image-id")
    browser.get(console.url + "/console/images?limit=100")

    def origin(image_id):
        return browser.find_element(
            By.CSS_SELECTOR, f"tr[data-id='{image_id}'] [data-field='origin']").text

    assert origin(glance_made.id) == "glance"
    assert origin(ims_made) == "ims"
    assert origin(console_made) == "console"


def test_a_copy_under_a_kms_key_made_from_the_image_page(console, browser, sdk, tmp_path):
    from huaweicloudsdkkms.v2 import CreateKeyRequest, CreateKeyRequestBody

    kms = kms_sdk(console)
    key = kms.create_key(CreateKeyRequest(body=CreateKeyRequestBody(
        key_alias=unique("console")))).key_info.key_id
    data = os.urandom(2 * MiB)
    image = sdk.image.create_image(name=unique("console-plain"), disk_format="raw",
                                   container_format="bare", data=data)
    sign_in(browser, console)
    browser.get(f"{console.url}/console/images/{image.id}")
    copy_name = unique("console-sealed")
    name = browser.find_element(By.ID, "copy-name")
    name.clear()
    name.send_keys(copy_name)
    browser.find_element(By.ID, "copy-key").send_keys(key)
    browser.find_element(By.ID, "copy").click()
    wait_until(lambda: browser.current_url, lambda u: u.endswith("/console/jobs"), timeout=10)
    copied = wait_until(lambda: list(sdk.image.images(name=copy_name)),
                        lambda l: l and l[0].status == "active", timeout=60, what="the copy")[0]
    props = sdk.image.get_image(copied.id).properties
    assert props.get("__system__cmkid") == key and props.get("__system_encrypted") == "1", props
    out = tmp_path / "copy.raw"
    console.osc("image", "save", "--file", str(out), copied.id, cloud="demo2")
    assert out.read_bytes() == data
    # A key that does not exist: refused at once (next to the form) or by the job (its
    # row on the jobs page says why), as the IMS API refuses it.
    browser.get(f"{console.url}/console/images/{image.id}")
    browser.find_element(By.ID, "copy-key").send_keys("00000000-0000-0000-0000-000000000000")
    browser.find_element(By.ID, "copy").click()

    def refusal():
        if text(browser, "action-error"):
            return text(browser, "action-error")
        rows = [r for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-job]")
                if "image_copy" in r.text and "FAIL" in r.text]
        return rows[0].find_element(By.CSS_SELECTOR, "[data-field='reason']").text if rows else ""
    assert "key" in wait_until(refusal, bool, timeout=30, what="the refusal").lower()


def test_html_in_names_and_properties_is_shown_as_text(console, browser, sdk):
    image = sdk.image.create_image(name=HOSTILE, disk_format="raw", container_format="bare",
                                   properties={"note": HOSTILE})
    sign_in(browser, console)
    for page in (f"/console/images?name={requests.utils.quote(HOSTILE)}",
                 f"/console/images/{image.id}", "/console/images"):
        browser.get(console.url + page)
        assert browser.execute_script("return window.__xss === undefined"), page
        assert HOSTILE in browser.find_element(By.TAG_NAME, "main").text, page
    shot(browser, "escaped")


class _Evil(http.server.BaseHTTPRequestHandler):
    """Another site's page that posts a form to the console as soon as it loads."""
    target = ""

    def do_GET(self):  # noqa: N802
        body = (f'<form id="f" method="post" action="{self.target}">'
                '<input name="csrf" value="guess"></form>'
                '<script>document.getElementById("f").submit()</script>').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass


def test_a_cross_site_form_post_changes_nothing(console, browser, sdk):
    image = sdk.image.create_image(name=unique("console-csrf"), disk_format="raw",
                                   container_format="bare")
    sign_in(browser, console)
    _Evil.target = f"{console.url}/console/images/{image.id}/delete"
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Evil)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://127.0.0.1:{httpd.server_address[1]}/")
        wait_until(lambda: browser.current_url, lambda u: console.url in u, timeout=10,
                   what="the form's post")
        assert "CSRF" in browser.find_element(By.TAG_NAME, "body").text
    finally:
        httpd.shutdown()
    assert sdk.image.get_image(image.id).status == "queued"
    # The session's own cookie without the form's token is refused the same way.
    cookie = browser.get_cookie("ims_console")["value"]
    r = requests.post(f"{console.url}/console/images/{image.id}/delete",
                      cookies={"ims_console": cookie}, data={"csrf": "0" * 32}, timeout=10,
                      allow_redirects=False)
    assert r.status_code == 403
    assert sdk.image.get_image(image.id).status == "queued"


def test_an_expired_session_keeps_the_filters_and_sign_out_revokes(console, browser):
    sign_in(browser, console)
    token = browser.get_cookie("ims_console")["value"]
    # The token ends (as on expiry or an operator's revocation) while the page is open.
    r = requests.delete(f"{console.url}/v3/auth/tokens",
                        headers={"X-Auth-Token": token, "X-Subject-Token": token}, timeout=10)
    assert r.status_code == 204, r.text
    # Revocation reaches every node within seconds (tokens are checked again at least
    # that often; docs/DEPLOYMENT.md).
    def reload():
        browser.get(console.url + "/console/images?name=kept&visibility=private")
        return browser.current_url
    wait_until(reload, lambda u: "/console/signin" in u, timeout=30, interval=1,
               what="the revoked session sent to sign-in")
    c = console.clouds["demo2"]
    browser.find_element(By.ID, "user").send_keys(c.username)
    browser.find_element(By.ID, "password").send_keys(c.password)
    browser.find_element(By.ID, "project").send_keys(c.project_name)
    browser.find_element(By.ID, "signin").click()
    wait_until(lambda: browser.current_url, lambda u: "name=kept" in u, timeout=10)
    assert browser.find_element(By.NAME, "name").get_attribute("value") == "kept"
    token = browser.get_cookie("ims_console")["value"]
    browser.find_element(By.CSS_SELECTOR, "form.signout button").click()
    wait_until(lambda: browser.current_url, lambda u: "/console/signin" in u, timeout=10)
    assert browser.get_cookie("ims_console") is None
    r = requests.get(f"{console.url}/v2/images", headers={"X-Auth-Token": token}, timeout=10)
    assert r.status_code == 401
    browser.get(console.url + "/console/jobs")
    assert "/console/signin" in browser.current_url


def test_admin_pages_make_projects_users_and_a_credential_shown_once(console, browser):
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.exceptions import exceptions as sdk_errors
    from huaweicloudsdkims.v2 import ImsClient, ListImagesRequest

    # A member has no admin page.
    sign_in(browser, console)
    browser.get(console.url + "/console/admin")
    assert "403" in browser.find_element(By.TAG_NAME, "h1").text
    assert not browser.find_elements(By.LINK_TEXT, "Admin")
    sign_in(browser, console, cloud="ims")
    browser.find_element(By.LINK_TEXT, "Admin").click()
    project, user = unique("proj"), unique("user")
    browser.find_element(By.ID, "project-name").send_keys(project)
    browser.find_element(By.ID, "project-description").send_keys("made in the console")
    browser.find_element(By.ID, "project-create").click()
    row = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, f"tr[data-project='{project}']"),
                     bool, timeout=10)[0]
    project_id = row.find_element(By.CSS_SELECTOR, "td").text
    browser.find_element(By.ID, "user-name").send_keys(user)
    browser.find_element(By.ID, "user-password").send_keys("a-long-password-1")
    browser.find_element(By.ID, "user-project").send_keys(project)
    browser.find_element(By.ID, "user-create").click()
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, f"tr[data-user='{user}']"), bool,
               timeout=10)
    # The new user signs in to Keystone with that password.
    r = requests.post(f"{console.url}/v3/auth/tokens", timeout=10, json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": "a-long-password-1"}}},
        "scope": {"project": {"id": project_id}}}})
    assert r.status_code == 201, r.text
    row = browser.find_element(By.CSS_SELECTOR, f"tr[data-user='{user}']")
    assert row.find_element(By.CSS_SELECTOR, "[data-field='roles']").text == "member"
    # A grant: the user may then act in demo2 too, as a reader.
    browser.find_element(By.ID, "grant-user").send_keys(user)
    Select(browser.find_element(By.ID, "grant-role")).select_by_value("reader")
    browser.find_element(By.ID, "grant-project").send_keys("demo2")
    browser.find_element(By.ID, "grant").click()
    wait_until(lambda: browser.current_url, lambda u: u.endswith("/console/admin"), timeout=10)
    r = requests.post(f"{console.url}/v3/auth/tokens", timeout=10, json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": "a-long-password-1"}}},
        "scope": {"project": {"name": "demo2", "domain": {"name": "Default"}}}}})
    assert r.status_code == 201, r.text
    assert [x["name"] for x in r.json()["token"]["roles"]] == ["reader"]
    # A credential: its secret is on the answer, once, and it signs Huawei SDK calls.
    browser.find_element(By.ID, "credential-user").send_keys(user)
    browser.find_element(By.ID, "credential-create").click()
    access = wait_until(lambda: text(browser, "new-access"), bool, timeout=10)
    secret = text(browser, "new-secret")
    assert len(secret) == 40
    shot(browser, "admin")
    client = ImsClient.new_builder().with_credentials(
        BasicCredentials(access, secret, project_id)).with_endpoints([console.url]).build()
    assert client.list_images(ListImagesRequest(limit=5)).images == []
    browser.get(console.url + "/console/admin")
    assert secret not in browser.page_source
    # Deleting it ends it.
    form = browser.find_element(By.CSS_SELECTOR, f"[data-access='{access}']").find_element(
        By.XPATH, "..")
    form.find_element(By.TAG_NAME, "button").click()
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, f"[data-access='{access}']"),
               lambda found: not found, timeout=10)
    with pytest.raises(sdk_errors.ClientRequestException) as gone:
        client.list_images(ListImagesRequest(limit=5))
    assert gone.value.status_code == 401


def test_an_image_from_a_zstack_volume_made_on_the_volumes_page(console, browser, sdk):
    """A volume made through ZStack's API shows on the console's page, and an image made
    from it there becomes active (the job is watched on the jobs page)."""
    from zstack_client import blank_volume, storages, user_client

    zs = user_client(console, "demo2")
    ps, _ = storages(zs)
    volume = blank_volume(zs, ps["uuid"], unique("console-vol"), 64 * MiB)
    sign_in(browser, console)
    browser.find_element(By.LINK_TEXT, "Volumes & servers").click()
    row = wait_until(lambda: [r for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-volume]")
                              if volume["name"] in r.text], bool, timeout=10)[0]
    assert "ready" in row.text.lower()
    shot(browser, "resources")
    name = unique("from-volume")
    row.find_element(By.NAME, "name").send_keys(name)
    row.find_element(By.TAG_NAME, "button").click()
    wait_until(lambda: browser.current_url, lambda u: u.endswith("/console/jobs"), timeout=10)
    image = wait_until(lambda: list(sdk.image.images(name=name)),
                       lambda l: l and l[0].status == "active", timeout=60, what="the image")[0]
    assert image.size == 64 * MiB or image.virtual_size == 64 * MiB


def test_the_readme_screenshot_and_paging(ims_factory, browser, monkeypatch):
    """The image list as the README shows it, on a server of its own
    (target/artifacts/console/readme-images.png; docs/images/console-images.png is a
    copy), and paging through it."""
    console = ims_factory("readme", {})
    finish_setup(console)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(console.all_clouds_yaml))
    sdk = openstack.connect(cloud="demo2")
    for i in range(6):
        sdk.image.create_image(name=f"build-{i}", disk_format="qcow2", container_format="bare")
    for name, fmt, data in (("ubuntu-24.04-server", "qcow2", None),
                            ("debian-12-genericcloud", "raw", b"\0" * (2 * MiB)),
                            ("windows-2022-datacenter", "vhd", None),
                            ("alpine-3.20-virt", "raw", b"\1" * MiB)):
        kw = {"data": data} if data else {}
        sdk.image.create_image(name=name, disk_format=fmt, container_format="bare",
                               visibility="private", **kw)
    sign_in(browser, console)
    browser.get(console.url + "/console/images?sort_key=name&sort_dir=asc&limit=8")
    first = [r.get_attribute("data-id") for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-id]")]
    assert len(first) == 8
    shot(browser, "readme-images")
    # Paging: the next page carries the filters on, starts after the last row, and the
    # first-page link goes back.
    browser.find_element(By.ID, "next-page").click()
    wait_until(lambda: browser.current_url, lambda u: "marker=" in u, timeout=10)
    assert "sort_key=name" in browser.current_url
    second = [r.get_attribute("data-id") for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-id]")]
    assert second and not set(first) & set(second)
    names = [r.text.split("\n")[0] for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-id] td:first-child")]
    assert names == sorted(names, key=str.lower) or names == sorted(names), names
    browser.find_element(By.ID, "first-page").click()
    wait_until(lambda: [r.get_attribute("data-id") for r in
                        browser.find_elements(By.CSS_SELECTOR, "tr[data-id]")],
               lambda ids: ids == first, timeout=10)
