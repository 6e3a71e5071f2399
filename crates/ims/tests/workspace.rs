//! Workspace image servers through the real binary with the `none` compute driver (a
//! server is its root volume; the QEMU driver has its own tests): the seed's request
//! signed like huaweicloudsdkworkspaceapp signs it, the create job to `ACTIVE`, bytes
//! written into the root volume, recreate-image to `BUILT` and the bytes read back from
//! the produced image through Glance, batch delete, and the bad inputs with their `WKS`
//! codes, leaving no volume behind.

mod common;

use std::process::Command;

use common::disk::{qemu_io, run};
use common::signed::Signer;
use common::workspace::{add_administrator, ended, image};
use common::{Api, Server};
use reqwest::Method;
use serde_json::{Value, json};

const MIB: u64 = 1 << 20;

fn env() -> Vec<(&'static str, &'static str)> {
    vec![("IMS_SERVERS__DRIVER", "none")]
}

/// The seed's example body (`CreateImageServerReq`), pointed at `image`.
fn seed_body(image: &str) -> Value {
    json!({
        "name": "Image task 0508",
        "description": "Test image creation.",
        "availability_zone": "",
        "image_ref": {
            "id": image,
            "image_type": "gold",
            "spce_code": "90a6e84bb3e822fe54999b6be5bbae1e",
            "product_id": "OFFI874943784560095232"
        },
        "vpc_id": "59785ba5-e5d5-4836-b9de-19f22ac15175",
        "subnet_id": "a5842cb4-5718-4b0a-8b27-3a3e9c74f977",
        "product_id": "workspace.x86.performance.xlarge4",
        "attach_apps": [],
        "authorize_accounts": [{
            "account": "administrator",
            "account_type": "USER",
            "domain": "wksapp**.huawei.com"
        }],
        "ou_name": null,
        "root_volume": {"type": "SATA", "size": 60},
        "is_vdi": true
    })
}

/// A signed GET: status and JSON body.
async fn get(signer: &Signer, path: &str) -> (u16, Value) {
    signer.send(Method::GET, path, None).await
}

/// A server made from the seed's body on `source`, once its create job succeeded: its id
/// and the ended job.
async fn create_server(signer: &Signer, source: &str) -> (String, Value) {
    let (status, created) = signer
        .send(Method::POST, &servers_path(signer), Some(seed_body(source)))
        .await;
    assert_eq!(status, 200, "{created}");
    let job = ended(signer, created["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    let id = job["sub_jobs"][0]["job_resource_info"]["resource_id"]
        .as_str()
        .unwrap()
        .to_string();
    (id, job)
}

fn servers_path(signer: &Signer) -> String {
    format!("/v1/{}/image-servers", signer.project)
}

#[tokio::test]
async fn the_seed_request_makes_a_server_that_is_captured_and_deleted() {
    let server = Server::start(&env()).await;
    let api = Api::new(&server, server.admin_token().await);
    let work = tempfile::tempdir().unwrap();
    let source = image(
        &api,
        work.path(),
        "base",
        "64M",
        json!({"__os_version": "Ubuntu 22.04 server 64bit"}),
    )
    .await;
    add_administrator(&server);
    let signer = Signer::new(&server, "admin", "admin");

    let (id, job) = create_server(&signer, &source).await;
    assert_eq!(job["job_type"], "CREATE_SERVER");
    assert_eq!(job["sub_jobs_total"], 1);
    assert_eq!(
        job["sub_jobs"][0]["job_resource_info"]["resource_name"],
        "Image task 0508"
    );
    assert_eq!(job["sub_jobs"][0]["job_execute_info"]["error_code"], "");

    let (status, listed) = get(
        &signer,
        &format!("{}?server_name=task", servers_path(&signer)),
    )
    .await;
    assert_eq!(
        (status, listed["count"].clone()),
        (200, json!(1)),
        "{listed}"
    );
    let shown = &listed["items"][0];
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["status"], "ACTIVE");
    assert_eq!(
        shown["image_ref"]["spce_code"],
        "90a6e84bb3e822fe54999b6be5bbae1e"
    );
    assert_eq!(shown["authorize_accounts"][0]["account"], "administrator");
    assert_eq!(shown["root_volume"], json!({"type": "SATA", "size": 60}));
    assert_eq!(shown["vpc_id"], "59785ba5-e5d5-4836-b9de-19f22ac15175");
    assert_eq!(shown["is_vdi"], true);
    assert_eq!(shown["image_id"], "");
    assert!(
        shown["status_details"]
            .as_str()
            .unwrap()
            .contains("boots nothing")
    );

    // The root volume: a 60 GB overlay on the image, nothing copied. Bytes written into
    // it (as a user customising the server would) end up in the captured image.
    let vid = shown["volume_id"].as_str().unwrap();
    let volume: Value = serde_json::from_str(&server.admin(&["volume", "show", vid])).unwrap();
    assert_eq!(
        (volume["status"].clone(), volume["size"].clone()),
        (json!("ready"), json!(60u64 << 30))
    );
    let file = server
        .dir
        .join("volumes")
        .join(volume["location"].as_str().unwrap());
    // An overlay on the image's blob, or a copy (sparse) when that blob is in an object
    // store.
    assert!(std::fs::metadata(&file).unwrap().len() < MIB || !server.local_images());
    // Nor made into an image behind its back (a capture pauses the guest first).
    let (status, body) = signer
        .send(
            Method::POST,
            "/v2/cloudimages/action",
            Some(json!({"name": "sneaky", "volume_id": vid, "os_version": "Ubuntu 22.04 server 64bit"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("recreate-image"), "{body}");
    // The running server holds its root volume: it cannot be deleted or grown under it.
    for args in [
        vec!["volume", "delete", vid],
        vec!["volume", "resize", vid, "70G"],
    ] {
        let out = server.admin_output(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("root volume of image server"),
            "{args:?}: {err}"
        );
    }
    qemu_io(
        &file,
        "qcow2",
        &["write -P 0xab 2M 64k".into(), "write -P 0xcd 50G 4k".into()],
    );

    let path = format!("{}/{id}/actions/recreate-image", servers_path(&signer));
    let (status, capture) = signer
        .send(
            Method::POST,
            &path,
            Some(json!({"name": "customised", "execute_sysprep": true})),
        )
        .await;
    assert_eq!(status, 200, "{capture}");
    let job = ended(&signer, capture["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    assert_eq!(job["job_type"], "CREATE_SERVER_IMAGE");
    let made = job["sub_jobs"][0]["job_resource_info"]["resource_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, shown) = get(&signer, &format!("{}/{id}", servers_path(&signer))).await;
    assert_eq!(
        (shown["status"].clone(), shown["image_id"].clone()),
        (json!("BUILT"), json!(made))
    );

    // The produced image is an ordinary image: a system disk, active, in Glance.
    let image = api.show(&made).await;
    assert_eq!(image["status"], "active", "{image}");
    assert_eq!(image["virtual_env_type"], "FusionCompute");
    assert_eq!(image["__os_version"], "Ubuntu 22.04 server 64bit");
    assert_eq!(image["__data_origin"], format!("instance,{id}"));
    assert_eq!(image["virtual_size"], 60u64 << 30);
    let data = api.download(&made).await;
    let out = work.path().join("made.qcow2");
    std::fs::write(&out, &data).unwrap();
    qemu_io(
        &out,
        "qcow2",
        &[
            "read -P 0x11 0 1M".into(),
            "read -P 0xab 2M 64k".into(),
            "read -P 0 3M 1M".into(),
            "read -P 0xcd 50G 4k".into(),
        ],
    );

    // Deleting: the server and its volume go, the image it made stays.
    let path = format!("{}/actions/batch-delete", servers_path(&signer));
    let (status, deleted) = signer
        .send(
            Method::PATCH,
            &path,
            Some(json!({"items": [id, "00000000-0000-0000-0000-000000000000"], "recursive": true})),
        )
        .await;
    assert_eq!(status, 200, "{deleted}");
    let job = ended(&signer, deleted["job_id"].as_str().unwrap()).await;
    assert_eq!(
        (job["status"].clone(), job["job_type"].clone()),
        (json!("SUCCESS"), json!("DELETE_SERVER")),
        "{job}"
    );
    let (status, gone) = get(&signer, &format!("{}/{id}", servers_path(&signer))).await;
    assert_eq!(
        (status, gone["error_code"].clone()),
        (404, json!("WKS.00211902"))
    );
    let expunged = server.admin(&["volume", "list", "--status", "expunged"]);
    assert!(expunged.contains(vid), "{expunged}");
    assert!(!file.exists());
    assert_eq!(api.show(&made).await["status"], "active");

    // The jobs list shows all three, newest first, and filters by type and status.
    let (_, jobs) = get(
        &signer,
        &format!("/v1/{}/image-server-jobs", signer.project),
    )
    .await;
    assert_eq!(jobs["count"], 3, "{jobs}");
    assert_eq!(jobs["items"][0]["job_type"], "DELETE_SERVER");
    let (_, only) = get(
        &signer,
        &format!(
            "/v1/{}/image-server-jobs?job_type=CREATE_SERVER_IMAGE&status=SUCCESS",
            signer.project
        ),
    )
    .await;
    assert_eq!(only["count"], 1, "{only}");
    let (_, subs) = get(
        &signer,
        &format!(
            "/v1/{}/image-server-sub-jobs?job_type=CREATE_SERVER_IMAGE",
            signer.project
        ),
    )
    .await;
    assert_eq!(
        subs["items"][0]["job_resource_info"]["resource_id"],
        made.as_str(),
        "{subs}"
    );
    let (_, count) = get(
        &signer,
        &format!(
            "/v1/{}/image-server-sub-jobs/actions/count?job_type=DELETE_SERVER",
            signer.project
        ),
    )
    .await;
    // The unknown id in the delete was ignored: one sub-job, for the one server.
    assert_eq!(count["count"], 1, "{count}");
}

#[tokio::test]
async fn bad_inputs_get_their_wks_codes_and_leave_nothing_behind() {
    let server = Server::start(&env()).await;
    let api = Api::new(&server, server.admin_token().await);
    let work = tempfile::tempdir().unwrap();
    let source = image(&api, work.path(), "base", "64M", json!({"min_disk": 20})).await;
    let data = image(
        &api,
        work.path(),
        "data",
        "64M",
        json!({"virtual_env_type": "DataImage"}),
    )
    .await;
    add_administrator(&server);
    server.add_member("p2", "bob", "Secret-pass1");
    let signer = Signer::new(&server, "admin", "admin");
    let path = servers_path(&signer);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut body = seed_body(&source);
        f(&mut body);
        body
    };
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "no such image",
            with(&|b| b["image_ref"]["id"] = json!("00000000-0000-0000-0000-000000000001")),
            404,
            "WKS.00211902",
        ),
        (
            "a data image",
            with(&|b| b["image_ref"]["id"] = json!(data)),
            400,
            "WKS.00211102",
        ),
        (
            "under min_disk",
            with(&|b| b["root_volume"]["size"] = json!(10)),
            400,
            "WKS.00211102",
        ),
        (
            "not a multiple of 10",
            with(&|b| b["root_volume"]["size"] = json!(65)),
            400,
            "WKS.00211102",
        ),
        (
            "unknown volume type",
            with(&|b| b["root_volume"]["type"] = json!("HDD")),
            400,
            "WKS.00211102",
        ),
        (
            "a bad name",
            with(&|b| b["name"] = json!("bad;name")),
            400,
            "WKS.00211102",
        ),
        (
            "no account",
            with(&|b| b["authorize_accounts"] = json!([])),
            400,
            "WKS.00211102",
        ),
        (
            "two accounts",
            with(&|b| {
                let a = b["authorize_accounts"][0].clone();
                b["authorize_accounts"] = json!([a.clone(), a]);
            }),
            400,
            "WKS.00211102",
        ),
        (
            "a stranger",
            with(&|b| b["authorize_accounts"][0]["account"] = json!("bob")),
            400,
            "WKS.00211102",
        ),
        (
            "gold without spce_code",
            with(&|b| {
                b["image_ref"].as_object_mut().unwrap().remove("spce_code");
            }),
            400,
            "WKS.00211102",
        ),
        (
            "no vpc",
            with(&|b| {
                b.as_object_mut().unwrap().remove("vpc_id");
            }),
            400,
            "WKS.00211102",
        ),
        (
            "21 tags",
            with(&|b| {
                b["tags"] = json!(
                    (0..21)
                        .map(|n| json!({"key": format!("k{n}")}))
                        .collect::<Vec<_>>()
                )
            }),
            400,
            "WKS.00211102",
        ),
    ];
    for (what, body, want_status, want_code) in cases {
        let (status, answer) = signer.send(Method::POST, &path, Some(body)).await;
        assert_eq!(
            (status, answer["error_code"].as_str()),
            (want_status, Some(want_code)),
            "{what}: {answer}"
        );
        assert!(answer["error_msg"].is_string(), "{what}");
    }
    let ids: Vec<String> = (0..21).map(|_| uuid_like()).collect();
    let (status, answer) = signer
        .send(
            Method::PATCH,
            &format!("{path}/actions/batch-delete"),
            Some(json!({"items": ids})),
        )
        .await;
    assert_eq!(
        (status, answer["error_code"].clone()),
        (400, json!("WKS.00211102"))
    );

    // Another project's server does not exist for you; a capture of an ERROR server is
    // a conflict; nothing was made by the refused requests.
    let (status, created) = signer
        .send(Method::POST, &path, Some(seed_body(&source)))
        .await;
    assert_eq!(status, 200, "{created}");
    let job = ended(&signer, created["job_id"].as_str().unwrap()).await;
    let id = job["sub_jobs"][0]["job_resource_info"]["resource_id"]
        .as_str()
        .unwrap()
        .to_string();
    let bob = Signer::new(&server, "bob", "p2");
    let (status, answer) = get(&bob, &format!("/v1/{}/image-servers/{id}", bob.project)).await;
    assert_eq!(
        (status, answer["error_code"].clone()),
        (404, json!("WKS.00211902"))
    );
    let (status, answer) = get(&bob, &format!("/v1/{}/image-servers/{id}", signer.project)).await;
    assert_eq!(
        (status, answer["error_code"].clone()),
        (400, json!("WKS.00211102")),
        "another project's path"
    );
    let volumes = server.admin(&["volume", "list"]);
    assert_eq!(
        volumes.lines().count(),
        1,
        "only the good server's volume: {volumes}"
    );
}

fn uuid_like() -> String {
    format!("{:032x}", rand_u128())
}

fn rand_u128() -> u128 {
    use std::time::{SystemTime, UNIX_EPOCH};
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    t ^ u128::from(N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) << 64
}

#[tokio::test]
async fn sources_that_cannot_boot_and_busy_servers_are_refused() {
    // No worker takes create jobs here: a new server stays CREATING.
    let mut env = env();
    env.push(("IMS_JOBS__PER_KIND", "{ server_create = 0 }"));
    let server = Server::start(&env).await;
    let api = Api::new(&server, server.admin_token().await);
    let work = tempfile::tempdir().unwrap();
    let source = image(&api, work.path(), "base", "64M", json!({})).await;
    add_administrator(&server);
    server.add_member("p2", "bob", "Secret-pass1");
    let signer = Signer::new(&server, "admin", "admin");
    let path = servers_path(&signer);

    // An image without data yet (queued), an ISO, another project's private image.
    let queued = api
        .create(json!({"name": "empty", "disk_format": "qcow2", "container_format": "bare"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tree = work.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("readme.txt"), b"boot me").unwrap();
    let iso_file = work.path().join("disc.iso");
    run(Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-o"])
        .arg(&iso_file)
        .arg(&tree));
    let iso = api
        .create(json!({"name": "disc", "disk_format": "iso", "container_format": "bare"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = api.upload(&iso, std::fs::read(&iso_file).unwrap()).await;
    assert_eq!(r.status(), 204);
    // An encrypted system image (a cmk_id on the IMS file import).
    let key = common::encryption::new_key(&signer, "wks").await;
    let sealed =
        common::encryption::sealed_system_image(&server, &signer, "wks", "64M", &[], &key).await;
    // Its key disabled: its data cannot be read, so no root volume can be made from it.
    let (status, _) = common::encryption::kms(&signer, "disable-key", json!({"key_id": key})).await;
    assert_eq!(status, 200);
    for (what, id) in [
        ("queued", queued.as_str()),
        ("an ISO", iso.as_str()),
        ("encrypted under a disabled key", sealed.as_str()),
    ] {
        let (status, answer) = signer.send(Method::POST, &path, Some(seed_body(id))).await;
        assert_eq!(
            (status, answer["error_code"].as_str()),
            (400, Some("WKS.00211102")),
            "{what}: {answer}"
        );
    }
    // Another project's private image does not exist for a member of p2.
    let bob = Signer::new(&server, "bob", "p2");
    let mut body = seed_body(&source);
    body["authorize_accounts"][0]["account"] = json!("bob");
    let (status, answer) = bob
        .send(Method::POST, &servers_path(&bob), Some(body))
        .await;
    assert_eq!(
        (status, answer["error_code"].as_str()),
        (404, Some("WKS.00211902")),
        "{answer}"
    );

    // A server still CREATING can be neither captured nor deleted.
    let (status, created) = signer
        .send(Method::POST, &path, Some(seed_body(&source)))
        .await;
    assert_eq!(status, 200, "{created}");
    let job_path = format!(
        "/v1/{}/image-server-jobs/{}",
        signer.project,
        created["job_id"].as_str().unwrap()
    );
    let (_, job) = get(&signer, &job_path).await;
    assert_eq!(job["status"], "WAITING", "{job}");
    let id = job["sub_jobs"][0]["job_resource_info"]["resource_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, shown) = get(&signer, &format!("{path}/{id}")).await;
    assert_eq!(shown["status"], "CREATING");
    let (status, answer) = signer
        .send(
            Method::POST,
            &format!("{path}/{id}/actions/recreate-image"),
            Some(json!({"name": "early"})),
        )
        .await;
    assert_eq!(
        (status, answer["error_code"].clone()),
        (409, json!("WKS.00211103")),
        "{answer}"
    );
    let (status, answer) = signer
        .send(
            Method::PATCH,
            &format!("{path}/actions/batch-delete"),
            Some(json!({"items": [id]})),
        )
        .await;
    assert_eq!(
        (status, answer["error_code"].clone()),
        (409, json!("WKS.00211103")),
        "{answer}"
    );
}

/// ZStack's CreateRootVolumeTemplateFromRootVolume on an image server's root volume is the
/// server's capture: the template is the captured image (a RootVolumeTemplate with the id
/// asked for), the server ends `BUILT`; the data-volume route cannot read the same disk
/// under its running guest, and a reused id is refused.
#[tokio::test]
async fn a_root_volume_becomes_a_zstack_root_volume_template() {
    let server = Server::start(&env()).await;
    let api = Api::new(&server, server.admin_token().await);
    let work = tempfile::tempdir().unwrap();
    let source = image(&api, work.path(), "base", "16M", json!({})).await;
    add_administrator(&server);
    let signer = Signer::new(&server, "admin", "admin");
    let (id, _) = create_server(&signer, &source).await;
    let (_, shown) = get(&signer, &format!("{}/{id}", servers_path(&signer))).await;
    let volume = shown["volume_id"].as_str().unwrap().replace('-', "");

    let zs = common::zstack::Zs::admin(&server).await;
    let r = zs
        .send_settled(
            Method::POST,
            &format!("/images/data-volume-templates/from/volumes/{volume}"),
            json!({"params": {"name": "data-tpl"}}),
        )
        .await;
    assert_eq!((r.status, r.code()), (503, "SYS.1006"), "{}", r.text);

    let template = uuid_like().replace('-', "");
    let path = format!("/images/root-volume-templates/from/volumes/{volume}");
    let body = json!({"params": {"name": "root-tpl", "resourceUuid": template}});
    let r = zs.send_settled(Method::POST, &path, body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let inv = r.inventory();
    assert_eq!(inv["uuid"], template.as_str());
    assert_eq!(inv["mediaType"], "RootVolumeTemplate");
    assert_eq!(inv["status"], "Ready");
    assert_eq!(inv["name"], "root-tpl");
    let (_, shown) = get(&signer, &format!("{}/{id}", servers_path(&signer))).await;
    assert_eq!(shown["status"], "BUILT", "{shown}");
    let hyphenated = api.show(shown["image_id"].as_str().unwrap()).await;
    assert_eq!(
        hyphenated["id"].as_str().unwrap().replace('-', ""),
        template
    );
    assert_eq!(hyphenated["status"], "active");

    // The same id again: the image exists.
    let r = zs.send_settled(Method::POST, &path, body).await;
    assert_eq!((r.status, r.code()), (503, "SYS.1007"), "{}", r.text);
}
