"""Issue 14 through huaweicloudsdkworkspaceapp 3.1.219, unchanged: the seed's own
CreateImageServer body (seed 002) pointed at a real ims image, `show_image_job` polled to
SUCCESS, the server listed and shown ACTIVE, known bytes written into its disk (through
the running VM's QMP, `human-monitor-command` with `qemu-io`, when the server runs on
QEMU; into the root volume's file with the `none` driver), `recreate_server_image` polled
to SUCCESS, and the bytes read back from the produced image with `openstack image save`.
Then the bad inputs with their parsed WKS codes, and a batch delete that leaves no
volume and no QEMU process behind.
"""
import json
import shutil
import socket
import subprocess

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkworkspaceapp.v1 import (BatchDeleteImageServerReq,
                                           BatchDeleteImageServerRequest,
                                           CreateImageServerReq, CreateImageServerRequest,
                                           CreateServerImageReq, ImageAccountInfo,
                                           ImageRef, ListImageJobsRequest,
                                           ListImageServersRequest,
                                           RecreateServerImageRequest,
                                           ShowImageJobRequest, ShowImageServerRequest,
                                           Volume)

from conftest import wait_until

PATTERN_OFFSET = 2 << 20


def workspace_sdk(server, user="demo2", project="demo2"):
    """A huaweicloudsdkworkspaceapp client signing with a fresh AK/SK of `user`."""
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkworkspaceapp.v1 import WorkspaceAppClient
    ak, sk = server.admin("credential", "create", "--user", user).stdout.split()
    credentials = BasicCredentials(ak, sk, server.project_ids[project])
    return (WorkspaceAppClient.new_builder().with_credentials(credentials)
            .with_endpoints([server.url]).build())


@pytest.fixture(scope="module")
def wks(ims):
    ims.admin("user", "create", "administrator", "--password", "Secret-pass1",
              "--project", "demo2", "--role", "member")
    return workspace_sdk(ims)


@pytest.fixture(scope="module")
def base_image(ims, tmp_path_factory):
    """A 1 GiB qcow2 system image of demo2 whose first MiB is 0x11."""
    path = tmp_path_factory.mktemp("wks") / "base.qcow2"
    subprocess.run([shutil.which("qemu-img"), "create", "-q", "-f", "qcow2", str(path), "1G"],
                   check=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 1M", str(path)],
                   check=True, capture_output=True)
    image = ims.osc_json("image", "create", "--disk-format", "qcow2", "--container-format",
                         "bare", "--file", str(path), "wks-base", cloud="demo2")
    return image["id"]


def seed_request(image_id, **changes):
    """The seed's example body, with `image_ref.id` pointed at a real image."""
    body = dict(
        name="Image task 0508", description="Test image creation.", availability_zone="",
        image_ref=ImageRef(id=image_id, image_type="gold",
                           spce_code="90a6e84bb3e822fe54999b6be5bbae1e",
                           product_id="OFFI874943784560095232"),
        vpc_id="59785ba5-e5d5-4836-b9de-19f22ac15175",
        subnet_id="a5842cb4-5718-4b0a-8b27-3a3e9c74f977",
        product_id="workspace.x86.performance.xlarge4", attach_apps=[],
        authorize_accounts=[ImageAccountInfo(account="administrator", account_type="USER",
                                             domain="wksapp**.huawei.com")],
        ou_name=None, root_volume=Volume(type="SATA", size=60), is_vdi=True)
    body.update(changes)
    return CreateImageServerRequest(body=CreateImageServerReq(**body))


def ended(wks, job_id, timeout=180.0):
    return wait_until(lambda: wks.show_image_job(ShowImageJobRequest(job_id=job_id)),
                      lambda job: job.status in ("SUCCESS", "FAILED"), timeout=timeout,
                      what=f"the end of image job {job_id}")


def qmp(sock_path, *commands):
    """Runs QMP `commands` (dicts) on the socket; their answers."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(str(sock_path))
        reader = s.makefile("r")

        def answer():
            while True:
                msg = json.loads(reader.readline())
                if "return" in msg or "error" in msg:
                    return msg

        json.loads(reader.readline())  # the greeting
        out = []
        for cmd in [{"execute": "qmp_capabilities"}, *commands]:
            s.sendall(json.dumps(cmd).encode() + b"\n")
            out.append(answer())
        return out[1:]


def write_in_guest(ims, server, commands):
    """Writes into the server's disk: through the running VM's monitor when QEMU runs it
    (the operator QMP socket, `qemu-io` on the guest's own disk device), else into the
    root volume's file (the `none` driver boots nothing)."""
    operator = ims.data_dir / "servers" / server.id / "qmp-operator.sock"
    if operator.exists():
        for cmd in commands:
            (res,) = qmp(operator, {"execute": "human-monitor-command", "arguments": {
                "command-line":
                    f'qemu-io -d /machine/peripheral/root-disk/virtio-backend "{cmd}"'}})
            assert "error" not in res and "failed" not in res.get("return", ""), res
        return "qmp"
    volume = json.loads(ims.admin("volume", "show", server_volume(ims, server.id)).stdout)
    subprocess.run(["qemu-io", "-f", "qcow2", *sum((["-c", c] for c in commands), []),
                    str(ims.data_dir / "volumes" / volume["location"])], check=True,
                   capture_output=True)
    return "file"


def server_volume(ims, server_id):
    listing = ims.admin("volume", "list").stdout
    line = next(l for l in listing.splitlines() if l.endswith(f"root of image server {server_id}"))
    return line.split()[0]


def test_seed_request_to_active_customise_capture_and_read_back(ims, wks, base_image, tmp_path):
    created = wks.create_image_server(seed_request(base_image))
    assert created.job_id
    job = ended(wks, created.job_id)
    assert job.status == "SUCCESS", job
    assert job.job_type == "CREATE_SERVER" and job.sub_jobs_total == 1
    server_id = job.sub_jobs[0].job_resource_info.resource_id

    listed = wks.list_image_servers(ListImageServersRequest(server_name="task 05"))
    assert listed.count == 1 and listed.items[0].id == server_id
    server = wks.show_image_server(ShowImageServerRequest(server_id=server_id))
    assert server.status == "ACTIVE" and server.name == "Image task 0508"
    assert server.image_ref.spce_code == "90a6e84bb3e822fe54999b6be5bbae1e"
    assert server.authorize_accounts[0].account == "administrator"

    how = write_in_guest(ims, server, [f"write -P 0xab {PATTERN_OFFSET} 64k",
                                       "write -P 0xcd 50G 4k"])
    # scripts/test installs qemu-system-x86, so the suite's server runs real VMs.
    if shutil.which("qemu-system-x86_64"):
        assert how == "qmp"

    capture = wks.recreate_server_image(RecreateServerImageRequest(
        server_id=server_id, body=CreateServerImageReq(name="customised",
                                                       execute_sysprep=True)))
    job = ended(wks, capture.job_id)
    assert job.status == "SUCCESS", job
    assert job.job_type == "CREATE_SERVER_IMAGE"
    image_id = job.sub_jobs[0].job_resource_info.resource_id
    server = wks.show_image_server(ShowImageServerRequest(server_id=server_id))
    assert server.status == "BUILT" and server.image_id == image_id

    out = tmp_path / "made.qcow2"
    ims.osc("image", "save", "--file", str(out), image_id, cloud="demo2")
    checks = ["read -P 0x11 0 1M", f"read -P 0xab {PATTERN_OFFSET} 64k", "read -P 0xcd 50G 4k"]
    r = subprocess.run(["qemu-io", "-f", "qcow2", *sum((["-c", c] for c in checks), []),
                        str(out)], check=True, capture_output=True, text=True)
    assert "failed" not in r.stdout, (how, r.stdout)
    shown = ims.osc_json("image", "show", image_id, cloud="demo2")
    assert shown["status"] == "active" and shown["properties"]["virtual_env_type"] == "FusionCompute"

    jobs = wks.list_image_jobs(ListImageJobsRequest(job_type="CREATE_SERVER_IMAGE"))
    assert any(j.id == capture.job_id for j in jobs.items)

    deleted = wks.batch_delete_image_server(BatchDeleteImageServerRequest(
        body=BatchDeleteImageServerReq(items=[server_id], recursive=True)))
    assert ended(wks, deleted.job_id).status == "SUCCESS"
    with pytest.raises(ClientRequestException) as e:
        wks.show_image_server(ShowImageServerRequest(server_id=server_id))
    assert (e.value.status_code, e.value.error_code) == (404, "WKS.00211902")
    assert not (ims.data_dir / "servers" / server_id).exists()
    assert ims.osc_json("image", "show", image_id, cloud="demo2")["status"] == "active"


BAD = [
    ("no such image", dict(image_ref=ImageRef(id="00000000-0000-0000-0000-000000000001",
                                              image_type="private")), 404, "WKS.00211902"),
    ("not a multiple of 10", dict(root_volume=Volume(type="SATA", size=65)), 400, "WKS.00211102"),
    ("unknown volume type", dict(root_volume=Volume(type="HDD", size=60)), 400, "WKS.00211102"),
    ("a bad name", dict(name="bad;name"), 400, "WKS.00211102"),
    ("no account", dict(authorize_accounts=[]), 400, "WKS.00211102"),
    ("two accounts", dict(authorize_accounts=[
        ImageAccountInfo(account="administrator", account_type="USER"),
        ImageAccountInfo(account="demo2", account_type="USER")]), 400, "WKS.00211102"),
    ("not a user of the project", dict(authorize_accounts=[
        ImageAccountInfo(account="admin", account_type="USER")]), 400, "WKS.00211102"),
    ("gold without spce_code", "gold", 400, "WKS.00211102"),
]


@pytest.mark.parametrize("what,changes,status,code", BAD, ids=[b[0] for b in BAD])
def test_bad_inputs_get_their_wks_codes(ims, wks, base_image, what, changes, status, code):
    if changes == "gold":
        changes = dict(image_ref=ImageRef(id=base_image, image_type="gold",
                                          product_id="OFFI874943784560095232"))
    before = ims.admin("volume", "list").stdout
    with pytest.raises(ClientRequestException) as e:
        wks.create_image_server(seed_request(base_image, **changes))
    assert (e.value.status_code, e.value.error_code) == (status, code), e.value.error_msg
    assert ims.admin("volume", "list").stdout == before


def test_batch_delete_of_21_ids_is_refused(wks):
    ids = [f"{n:08x}-0000-0000-0000-000000000000" for n in range(21)]
    with pytest.raises(ClientRequestException) as e:
        wks.batch_delete_image_server(BatchDeleteImageServerRequest(
            body=BatchDeleteImageServerReq(items=ids)))
    assert (e.value.status_code, e.value.error_code) == (400, "WKS.00211102")
