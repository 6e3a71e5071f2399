//! ZStack volumes and templates from volumes through the real binary: every volume route,
//! CreateDataVolumeTemplateFromVolume with the seed's own body on the synchronous and the
//! asynchronous path, end to end (image → volume → bytes written with qemu-io → template →
//! download through Glance), bad inputs, tenant isolation and the RPC messages.

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::disk::qemu_io;
use common::zstack::{BS, Reply, Zs, reply, rpc_result};
use common::{Api, Server};
use md5::Digest as _;
use reqwest::Method;
use serde_json::{Value, json};

const PS: &str = "9e1f2c3d4b5a46e7a8b9c0d1e2f3a4b5";
const MIB: usize = 1 << 20;
/// Written into the source image: (offset, byte, length).
const IMAGE_BYTES: &[(usize, u8, usize)] = &[(0, 0x11, 64 * 1024), (3 * MIB, 0x22, 4096)];
/// Written into the volume's file afterwards; the first overwrites part of the image's.
const VOLUME_BYTES: &[(usize, u8, usize)] = &[
    (32 * 1024, 0xee, 4096),
    (MIB, 0xa5, 65536),
    (5 * MIB + 512, 0x5a, 512),
];

fn hex_id(id: &str) -> String {
    id.replace('-', "")
}

/// A fresh random 32-hex uuid (an RFC 4122 version-4 one).
fn fresh_hex() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "{:?}{}{}",
        std::time::SystemTime::now(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut h = hex::encode(md5::Md5::digest(seed.as_bytes()));
    h.replace_range(12..13, "4");
    h.replace_range(16..17, "8");
    h
}

/// This file's own calls.
impl Zs {
    async fn post(&self, path: &str, params: Value) -> Reply {
        self.send_settled(
            Method::POST,
            path,
            json!({"params": params, "systemTags": [], "userTags": []}),
        )
        .await
    }

    async fn action(&self, uuid: &str, action: &str, params: Value) -> Reply {
        self.send_settled(
            Method::PUT,
            &format!("/volumes/{uuid}/actions"),
            json!({ action: params }),
        )
        .await
    }

    async fn delete(&self, uuid: &str) -> Reply {
        let r = reply(
            self.req(Method::DELETE, &format!("/volumes/{uuid}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        self.settle(r).await
    }

    /// `GET /volumes/{uuid}`'s inventories.
    async fn volumes(&self, uuid: &str) -> Vec<Value> {
        let r = self.get(&format!("/volumes/{uuid}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json["inventories"].as_array().unwrap().clone()
    }

    async fn volume(&self, uuid: &str) -> Value {
        let list = self.volumes(uuid).await;
        assert_eq!(list.len(), 1, "{list:?}");
        list[0].clone()
    }

    async fn images_named(&self, name: &str) -> Vec<Value> {
        let r = self.get(&format!("/images?q=name={name}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json["inventories"].as_array().unwrap().clone()
    }

    /// CreateDataVolumeFromVolumeTemplate; the Ready volume's inventory.
    async fn volume_from(&self, image_hex: &str, name: &str) -> Value {
        let r = self
            .post(
                &format!("/volumes/data/from/data-volume-templates/{image_hex}"),
                json!({"name": name, "primaryStorageUuid": PS}),
            )
            .await;
        let inv = r.inventory().clone();
        assert_eq!(inv["status"], "Ready", "{inv}");
        inv
    }

    async fn template(&self, volume: &str, params: Value) -> Reply {
        self.post(
            &format!("/images/data-volume-templates/from/volumes/{volume}"),
            params,
        )
        .await
    }
}

fn writes(patterns: &[(usize, u8, usize)], verb: &str) -> Vec<String> {
    patterns
        .iter()
        .map(|(off, byte, len)| format!("{verb} -P {byte:#x} {off} {len}"))
        .collect()
}

/// An 8 MiB raw DataVolumeTemplate (Glance `virtual_env_type=DataImage`) holding
/// [`IMAGE_BYTES`]; its ZStack uuid.
async fn data_image(server: &Server, name: &str) -> String {
    let api = Api::new(server, server.admin_token().await);
    let mut data = vec![0u8; 8 * MIB];
    for (off, byte, len) in IMAGE_BYTES {
        data[*off..off + len].fill(*byte);
    }
    let image = api
        .create(
            json!({"name": name, "disk_format": "raw", "container_format": "bare",
                       "virtual_env_type": "DataImage"}),
        )
        .await;
    let id = image["id"].as_str().unwrap().to_string();
    assert_eq!(api.upload(&id, data).await.status(), 204);
    hex_id(&id)
}

/// Downloads image `hex` through Glance into `dir`; the file and the bytes' md5.
async fn glance_save(server: &Server, hex: &str, dir: &Path) -> (PathBuf, String) {
    let id = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    let token = server.admin_token().await;
    let r = reqwest::Client::new()
        .get(format!("{}/v2/images/{id}/file", server.url))
        .header("x-auth-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap();
    let file = dir.join(format!("{hex}.saved"));
    std::fs::write(&file, &bytes).unwrap();
    (file, hex::encode(md5::Md5::digest(&bytes)))
}

/// The seed's request example, placeholders filled in, sent as its curl would.
async fn seed_call(zs: &Zs, volume: &str, name: &str, resource: &str, job: Option<&str>) -> Reply {
    let body = format!(
        r#"{{"params":{{"name":"{name}","description":"seed 004 template","volumeUuid":"{volume}","backupStorageUuids":["{BS}"],"resourceUuid":"{resource}","tagUuids":[]}},"systemTags":[],"userTags":["seed-004"]}}"#
    );
    let mut req = zs
        .req(
            Method::POST,
            &format!("/images/data-volume-templates/from/volumes/{volume}"),
        )
        .header("content-type", "application/json;charset=UTF-8")
        .body(body);
    if let Some(job) = job {
        req = req.header("x-job-uuid", job);
    }
    reply(req.send().await.unwrap()).await
}

/// Checks a template made from `vol` after [`VOLUME_BYTES`] were written: its inventory and
/// its bytes as Glance serves them.
async fn check_template(server: &Server, inv: &Value, vol: &Value, resource: &str, dir: &Path) {
    let volume_hex = vol["uuid"].as_str().unwrap();
    assert_eq!(inv["uuid"], resource, "{inv}");
    assert_eq!(inv["mediaType"], "DataVolumeTemplate");
    assert_eq!(inv["status"], "Ready");
    assert_eq!(inv["state"], "Enabled");
    assert_eq!(inv["url"], format!("volume://{volume_hex}"));
    assert_eq!(inv["format"], vol["format"]);
    assert_eq!(inv["size"], vol["size"]);
    assert_eq!(inv["description"], "seed 004 template");
    let refs = inv["backupStorageRefs"].as_array().unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0]["backupStorageUuid"], BS);
    assert_eq!(refs[0]["status"], "Ready");
    let install = server.install_file(refs[0]["installPath"].as_str().unwrap());
    assert!(install.is_file(), "installPath {}", install.display());
    let (file, md5) = glance_save(server, resource, dir).await;
    assert_eq!(inv["md5Sum"], md5, "md5Sum is the md5 of the served bytes");
    assert_eq!(
        inv["actualSize"].as_u64().unwrap(),
        std::fs::metadata(&file).unwrap().len()
    );
    let format = inv["format"].as_str().unwrap();
    // The volume's writes, and the image's bytes it did not overwrite.
    qemu_io(&file, format, &writes(VOLUME_BYTES, "read"));
    qemu_io(
        &file,
        format,
        &writes(&[(0, 0x11, 32 * 1024), (3 * MIB, 0x22, 4096)], "read"),
    );
    qemu_io(&file, format, &writes(&[(7 * MIB, 0, 4096)], "read"));
}

/// A volume from a fresh data image with [`VOLUME_BYTES`] written into its file.
async fn written_volume(server: &Server, zs: &Zs, name: &str) -> Value {
    let image = data_image(server, &format!("{name}-src")).await;
    let vol = zs.volume_from(&image, name).await;
    let file = PathBuf::from(vol["installPath"].as_str().unwrap());
    assert!(
        file.starts_with(&server.dir),
        "{file:?} is under the data dir"
    );
    qemu_io(
        &file,
        vol["format"].as_str().unwrap(),
        &writes(VOLUME_BYTES, "write"),
    );
    vol
}

#[tokio::test]
async fn volume_routes_through_a_life_cycle() {
    let server = Server::start(&[]).await;
    let zs = Zs::admin(&server).await;
    // CreateDataVolume: blank, Ready at once, every inventory field.
    let r = zs
        .post(
            "/volumes/data",
            json!({"name": "blank-1", "description": "d", "diskSize": 4 * MIB, "primaryStorageUuid": PS}),
        )
        .await;
    let inv = r.inventory().clone();
    let uuid = inv["uuid"].as_str().unwrap().to_string();
    assert_eq!(uuid.len(), 32);
    assert!(uuid.bytes().all(|b| b.is_ascii_hexdigit()));
    for (k, v) in [
        ("name", json!("blank-1")),
        ("description", json!("d")),
        ("primaryStorageUuid", json!(PS)),
        ("type", json!("Data")),
        ("format", json!("qcow2")),
        ("size", json!(4 * MIB)),
        ("state", json!("Enabled")),
        ("status", json!("Ready")),
        ("isShareable", json!(false)),
    ] {
        assert_eq!(inv[k], v, "{k}: {inv}");
    }
    assert!(inv["actualSize"].as_u64().unwrap() > 0);
    assert!(inv.get("rootImageUuid").is_none());
    let path = inv["installPath"].as_str().unwrap();
    assert!(Path::new(path).is_file(), "installPath {path}");
    let date = regex_lite_date(inv["createDate"].as_str().unwrap());
    assert!(date, "{inv}");
    assert_eq!(zs.volume(&uuid).await, inv);

    // A caller-chosen uuid, and QueryVolume conditions, sort, count and fields.
    let chosen = fresh_hex();
    let r = zs
        .post(
            "/volumes/data",
            json!({"name": "blank-2", "diskSize": "8388608", "resourceUuid": chosen}),
        )
        .await;
    assert_eq!(r.inventory()["uuid"], chosen);
    let r = zs
        .get("/volumes?q=name~=blank-%25&q=status=Ready&q=size>=5000000&replyWithCount=true")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["total"], 1);
    assert_eq!(r.json["inventories"][0]["uuid"], chosen);
    let r = zs
        .get("/volumes?q=type=Data&q=primaryStorageUuid=9e1f2c3d4b5a46e7a8b9c0d1e2f3a4b5&sort=-size&fields=uuid,size")
        .await;
    assert_eq!(
        r.json["inventories"],
        json!([{"uuid": chosen, "size": 8 * MIB}, {"uuid": uuid, "size": 4 * MIB}]),
        "{}",
        r.text
    );
    let r = zs.get("/volumes?q=name~=blank-%25&count=true").await;
    assert_eq!(r.json, json!({"total": 2}), "{}", r.text);
    assert_eq!(
        zs.get("/volumes?q=type=Root").await.json["inventories"],
        json!([])
    );
    assert_eq!(zs.get("/volumes?q=nosuch=1").await.code(), "SYS.1007");
    assert_eq!(zs.get("/volumes?q=status=Bogus").await.code(), "SYS.1007");

    // UpdateVolume, ResizeDataVolume (grow only).
    let r = zs
        .action(
            &uuid,
            "updateVolume",
            json!({"name": "renamed", "description": "new"}),
        )
        .await;
    assert_eq!(r.inventory()["name"], "renamed");
    assert_eq!(r.inventory()["description"], "new");
    let resize = |size: Value| {
        let zs = &zs;
        let uuid = uuid.clone();
        async move {
            zs.send_settled(
                Method::PUT,
                &format!("/volumes/data/resize/{uuid}/actions"),
                json!({"resizeDataVolume": {"size": size}}),
            )
            .await
        }
    };
    assert_eq!(resize(json!(16 * MIB)).await.inventory()["size"], 16 * MIB);
    assert_eq!(resize(json!(8 * MIB)).await.code(), "SYS.1007");
    assert_eq!(resize(json!(-1)).await.code(), "SYS.1007");
    assert_eq!(zs.volume(&uuid).await["size"], 16 * MIB);

    // DeleteDataVolume (soft), again (SYS.1006), RecoverDataVolume, ExpungeDataVolume.
    let r = zs.delete(&uuid).await;
    assert_eq!((r.status, r.json.clone()), (200, json!({})), "{}", r.text);
    assert_eq!(zs.volume(&uuid).await["status"], "Deleted");
    assert!(Path::new(path).is_file(), "a deleted volume keeps its data");
    assert_eq!(zs.delete(&uuid).await.code(), "SYS.1006");
    let r = zs.action(&uuid, "recoverDataVolume", json!({})).await;
    assert_eq!(r.inventory()["status"], "Ready");
    assert_eq!(
        zs.action(&uuid, "expungeDataVolume", json!({}))
            .await
            .code(),
        "SYS.1006",
        "a Ready volume is deleted before it is expunged"
    );
    assert_eq!(zs.delete(&uuid).await.status, 200);
    let r = zs.action(&uuid, "expungeDataVolume", json!({})).await;
    assert_eq!((r.status, r.json.clone()), (200, json!({})), "{}", r.text);
    assert!(zs.volumes(&uuid).await.is_empty());
    assert!(
        !Path::new(path).exists(),
        "an expunged volume's data is removed"
    );
    // A missing volume deletes successfully, as in ZStack.
    assert_eq!(zs.delete(&fresh_hex()).await.status, 200);
    assert_eq!(
        zs.action(&fresh_hex(), "recoverDataVolume", json!({}))
            .await
            .code(),
        "SYS.1003"
    );

    // Bad input.
    let bad = |params: Value| zs.post("/volumes/data", params);
    assert_eq!(bad(json!({"diskSize": MIB})).await.code(), "SYS.1007");
    assert_eq!(bad(json!({"name": "x"})).await.code(), "SYS.1007");
    assert_eq!(
        bad(json!({"name": "x", "diskSize": 0})).await.code(),
        "SYS.1007"
    );
    assert_eq!(
        bad(json!({"name": "x", "diskSize": MIB, "primaryStorageUuid": fresh_hex()}))
            .await
            .code(),
        "SYS.1003"
    );
    assert_eq!(
        bad(json!({"name": "x", "diskSize": MIB, "resourceUuid": "nope"}))
            .await
            .code(),
        "SYS.1007"
    );
    assert_eq!(
        bad(json!({"name": "x", "diskSize": MIB, "resourceUuid": chosen}))
            .await
            .code(),
        "SYS.1007",
        "a duplicate resourceUuid"
    );
    let r = zs
        .send_settled(
            Method::PUT,
            &format!("/volumes/{chosen}/actions"),
            json!({"nosuch": {}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = reply(
        zs.req(Method::POST, "/volumes/data")
            .body("{\"params\": ")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json, Value::Null, "plain text: {}", r.text);
    // Nothing was left behind by the refusals.
    let r = zs.get("/volumes?q=name=x").await;
    assert_eq!(r.json["inventories"], json!([]));
}

/// `MMM d, yyyy h:mm:ss AM|PM`.
fn regex_lite_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split(' ').collect();
    parts.len() == 5
        && parts[0].len() == 3
        && parts[1].ends_with(',')
        && parts[2].len() == 4
        && parts[3].split(':').count() == 3
        && (parts[4] == "AM" || parts[4] == "PM")
}

#[tokio::test]
async fn volumes_from_templates_check_the_image() {
    let server = Server::start(&[]).await;
    let zs = Zs::admin(&server).await;
    let image = data_image(&server, "tpl").await;
    let vol = zs.volume_from(&image, "from-tpl").await;
    assert_eq!(vol["rootImageUuid"], image);
    assert_eq!(vol["size"], 8 * MIB, "the template's virtual size");
    assert_eq!(vol["format"], "qcow2");
    // A root template is no DataVolumeTemplate; a disabled or unknown image makes nothing.
    let api = Api::new(&server, server.admin_token().await);
    let root = api
        .create(json!({"name": "root", "disk_format": "raw", "container_format": "bare"}))
        .await;
    let root_id = root["id"].as_str().unwrap().to_string();
    assert_eq!(api.upload(&root_id, vec![1u8; 4096]).await.status(), 204);
    let from = |img: String| {
        let zs = &zs;
        async move {
            zs.post(
                &format!("/volumes/data/from/data-volume-templates/{img}"),
                json!({"name": "refused", "primaryStorageUuid": PS}),
            )
            .await
        }
    };
    assert_eq!(from(hex_id(&root_id)).await.code(), "SYS.1007");
    let r = zs
        .send_settled(
            Method::PUT,
            &format!("/images/{image}/actions"),
            json!({"changeImageState": {"stateEvent": "disable"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(from(image.clone()).await.code(), "SYS.1006");
    assert_eq!(from(fresh_hex()).await.code(), "SYS.1003");
    assert_eq!(
        zs.get("/volumes?q=name=refused").await.json["inventories"],
        json!([])
    );
}

#[tokio::test]
async fn seed_example_makes_a_template_synchronously_end_to_end() {
    let server = Server::start(&[]).await;
    let zs = Zs::admin(&server).await;
    let vol = written_volume(&server, &zs, "seed-vol").await;
    let volume_hex = vol["uuid"].as_str().unwrap();
    let resource = fresh_hex();
    let r = seed_call(&zs, volume_hex, "seed-tpl", &resource, None).await;
    assert_eq!(r.status, 200, "the synchronous answer: {}", r.text);
    assert_eq!(r.json["success"], true, "{}", r.text);
    assert!(r.json.get("error").is_none_or(Value::is_null));
    let inv = r.json["inventory"].clone();
    assert_eq!(inv["name"], "seed-tpl");
    let dir = tempfile::tempdir().unwrap();
    check_template(&server, &inv, &vol, &resource, dir.path()).await;
    // The image everywhere: QueryImage, and Glance with the tag from userTags.
    let r = zs.get(&format!("/images/{resource}")).await;
    assert_eq!(r.json["inventories"], json!([inv]));
    let api = Api::new(&server, server.admin_token().await);
    let glance = api.show(&common_id(&resource)).await;
    assert_eq!(glance["status"], "active");
    assert_eq!(glance["tags"], json!(["seed-004"]));
    assert_eq!(glance["checksum"], inv["md5Sum"]);
    // The volume is intact and usable.
    assert_eq!(zs.volume(volume_hex).await["status"], "Ready");
    // The SDK's shape: volumeUuid in the URL only, no backup storage named.
    let r = zs
        .template(
            volume_hex,
            json!({"name": "sdk-tpl", "description": "seed 004 template"}),
        )
        .await;
    let inv = r.inventory();
    check_template(
        &server,
        inv,
        &vol,
        inv["uuid"].as_str().unwrap(),
        dir.path(),
    )
    .await;
}

fn common_id(hex: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[tokio::test]
async fn seed_example_async_path_answers_202_and_its_job_the_inventory() {
    let server = Server::start(&[("IMS_ZSTACK__JOB_WAIT_MS", "0")]).await;
    let zs = Zs::admin(&server).await;
    let vol = written_volume(&server, &zs, "async-vol").await;
    let volume_hex = vol["uuid"].as_str().unwrap();
    let (resource, job) = (fresh_hex(), fresh_hex());
    let first = seed_call(&zs, volume_hex, "async-tpl", &resource, Some(&job)).await;
    assert_eq!(first.status, 202, "{}", first.text);
    let location = first.json["location"].as_str().unwrap();
    assert_eq!(location, format!("{}/zstack/v1/api-jobs/{job}", server.url));
    let done = zs.follow(location).await;
    assert_eq!(done.status, 200, "{}", done.text);
    let inv = done.json["inventory"].clone();
    let dir = tempfile::tempdir().unwrap();
    check_template(&server, &inv, &vol, &resource, dir.path()).await;
    let r = zs.get(&format!("/images/{resource}")).await;
    assert_eq!(r.json["inventories"], json!([inv]));
    // A failing call answers 202 too; its job ends 503 with the error, nothing made.
    let first = zs
        .send(
            Method::POST,
            &format!("/images/data-volume-templates/from/volumes/{}", fresh_hex()),
            json!({"params": {"name": "async-bad"}}),
        )
        .await;
    assert_eq!(first.status, 202, "{}", first.text);
    let done = zs.follow(first.json["location"].as_str().unwrap()).await;
    assert_eq!(
        (done.status, done.code()),
        (503, "SYS.1003"),
        "{}",
        done.text
    );
    assert!(zs.images_named("async-bad").await.is_empty());
}

/// CreateDataVolumeTemplateFromVolume as `who`, refused with `code`; no image of the call's
/// (unique) name is left, neither for the caller nor for the administrator.
async fn refused(admin: &Zs, who: &Zs, volume: &str, mut params: Value, code: &str) {
    let name = format!("refused-{}", fresh_hex());
    // A call that gives its own (null) name is checked against the generated one anyway.
    if params.get("name").is_none() {
        params["name"] = json!(name);
    }
    let r = who.template(volume, params).await;
    assert_eq!((r.status, r.code()), (503, code), "{}", r.text);
    assert!(
        admin.images_named(&name).await.is_empty(),
        "{name} was made"
    );
    assert!(who.images_named(&name).await.is_empty(), "{name} was made");
}

#[tokio::test]
async fn bad_template_requests_get_their_error_and_make_nothing() {
    let server = Server::start(&[]).await;
    server.add_member("p2", "bob", "bob-pass");
    let zs = Zs::admin(&server).await;
    let bob = Zs::login(&server, "bob", "bob-pass").await;
    let image = data_image(&server, "bad-src").await;
    let vol = zs.volume_from(&image, "bad-vol").await;
    let v = vol["uuid"].as_str().unwrap().to_string();
    refused(&zs, &zs, &fresh_hex(), json!({}), "SYS.1003").await;
    refused(&zs, &zs, "not-a-uuid", json!({}), "SYS.1003").await;
    refused(&zs, &bob, &v, json!({}), "SYS.1003").await;
    for bad in ["not-a-uuid", &"0".repeat(31), &"g".repeat(32)] {
        refused(&zs, &zs, &v, json!({"resourceUuid": bad}), "SYS.1007").await;
    }
    refused(&zs, &zs, &v, json!({"resourceUuid": image}), "SYS.1007").await;
    refused(
        &zs,
        &zs,
        &v,
        json!({"backupStorageUuids": [fresh_hex()]}),
        "SYS.1003",
    )
    .await;
    refused(
        &zs,
        &zs,
        &v,
        json!({"name": null, "description": "no name"}),
        "SYS.1007",
    )
    .await;
    // The root variant: a volume no image server holds is a data volume.
    let r = zs
        .post(
            &format!("/images/root-volume-templates/from/volumes/{v}"),
            json!({"name": "root-tpl"}),
        )
        .await;
    assert_eq!(r.code(), "SYS.1007", "{}", r.text);
    // Malformed bodies are the REST layer's plain-text 400.
    for raw in ["{\"params\": {\"name\": ", "{\"params\": [\"x\"]}"] {
        let r = reply(
            zs.req(
                Method::POST,
                &format!("/images/data-volume-templates/from/volumes/{v}"),
            )
            .body(raw)
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(r.status, 400, "{raw}: {}", r.text);
        assert_eq!(r.json, Value::Null, "plain text: {}", r.text);
    }
    // A deleted volume is in the wrong state; an expunged one is gone.
    assert_eq!(zs.delete(&v).await.status, 200);
    refused(&zs, &zs, &v, json!({}), "SYS.1006").await;
    assert_eq!(
        zs.action(&v, "expungeDataVolume", json!({})).await.status,
        200
    );
    refused(&zs, &zs, &v, json!({}), "SYS.1003").await;
    // Nothing is left Creating anywhere.
    let r = zs.get("/images?q=status=Creating").await;
    assert_eq!(r.json["inventories"], json!([]), "{}", r.text);
}

#[tokio::test]
async fn volumes_of_another_project_do_not_exist() {
    let server = Server::start(&[]).await;
    server.add_member("p2", "bob", "bob-pass");
    let admin = Zs::admin(&server).await;
    let bob = Zs::login(&server, "bob", "bob-pass").await;
    let r = bob
        .post("/volumes/data", json!({"name": "bobs", "diskSize": MIB}))
        .await;
    let bobs = r.inventory()["uuid"].as_str().unwrap().to_string();
    let r = admin
        .post("/volumes/data", json!({"name": "admins", "diskSize": MIB}))
        .await;
    let admins = r.inventory()["uuid"].as_str().unwrap().to_string();
    // Bob sees only his; the administrator sees every project's.
    let r = bob.get("/volumes").await;
    let names: Vec<&str> = r.json["inventories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bobs"]);
    assert!(bob.volumes(&admins).await.is_empty());
    assert_eq!(admin.volume(&bobs).await["name"], "bobs");
    // Bob cannot change the administrator's volume: it does not exist for him.
    for r in [
        bob.action(&admins, "updateVolume", json!({"name": "mine"}))
            .await,
        bob.action(&admins, "recoverDataVolume", json!({})).await,
        bob.send_settled(
            Method::PUT,
            &format!("/volumes/data/resize/{admins}/actions"),
            json!({"resizeDataVolume": {"size": 2 * MIB}}),
        )
        .await,
    ] {
        assert_eq!(r.code(), "SYS.1003", "{}", r.text);
    }
    assert_eq!(bob.delete(&admins).await.status, 200);
    assert_eq!(admin.volume(&admins).await["status"], "Ready");
    assert_eq!(admin.volume(&admins).await["name"], "admins");
}

/// `POST /zstack/api/` as zstack-mcp-server sends it; the decoded `result` (polled while
/// Processing).
async fn rpc(server: &Server, class: &str, msg: Value) -> Value {
    let reply: Value = reqwest::Client::new()
        .post(format!("{}/zstack/api/", server.url))
        .json(&json!({ class: msg }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    rpc_result(server, reply).await
}

#[tokio::test]
async fn the_rpc_front_end_serves_the_volume_messages() {
    let server = Server::start(&[]).await;
    let zs = Zs::admin(&server).await;
    let session = json!({"uuid": zs.session});
    let v = "org.zstack.header.volume";
    let call = |class: String, mut msg: Value| {
        msg["session"] = session.clone();
        let server = &server;
        async move { rpc(server, &class, msg).await }
    };
    let out = call(
        format!("{v}.APICreateDataVolumeMsg"),
        json!({"name": "rpc-blank", "diskSize": MIB, "primaryStorageUuid": PS}),
    )
    .await;
    let ev = &out[format!("{v}.APICreateDataVolumeEvent")];
    assert_eq!(ev["success"], true, "{out}");
    let blank = ev["inventory"]["uuid"].as_str().unwrap().to_string();
    let out = call(
        format!("{v}.APIQueryVolumeMsg"),
        json!({"conditions": [{"name": "uuid", "op": "=", "value": blank}]}),
    )
    .await;
    let reply = &out[format!("{v}.APIQueryVolumeReply")];
    assert_eq!(reply["success"], true, "{out}");
    assert_eq!(reply["inventories"][0], zs.volume(&blank).await);
    let out = call(
        format!("{v}.APIUpdateVolumeMsg"),
        json!({"uuid": blank, "name": "rpc-renamed"}),
    )
    .await;
    assert_eq!(
        out[format!("{v}.APIUpdateVolumeEvent")]["inventory"]["name"],
        "rpc-renamed"
    );
    let out = call(
        format!("{v}.APIResizeDataVolumeMsg"),
        json!({"uuid": blank, "size": 2 * MIB}),
    )
    .await;
    assert_eq!(
        out[format!("{v}.APIResizeDataVolumeEvent")]["inventory"]["size"],
        2 * MIB
    );
    let out = call(
        format!("{v}.APIDeleteDataVolumeMsg"),
        json!({"uuid": blank}),
    )
    .await;
    assert_eq!(
        out[format!("{v}.APIDeleteDataVolumeEvent")]["success"],
        true
    );
    let out = call(
        format!("{v}.APIRecoverDataVolumeMsg"),
        json!({"uuid": blank}),
    )
    .await;
    assert_eq!(
        out[format!("{v}.APIRecoverDataVolumeEvent")]["inventory"]["status"],
        "Ready"
    );
    call(
        format!("{v}.APIDeleteDataVolumeMsg"),
        json!({"uuid": blank}),
    )
    .await;
    let out = call(
        format!("{v}.APIExpungeDataVolumeMsg"),
        json!({"uuid": blank}),
    )
    .await;
    assert_eq!(
        out[format!("{v}.APIExpungeDataVolumeEvent")]["success"],
        true
    );
    assert!(zs.volumes(&blank).await.is_empty());

    // A volume from a template, and a template from it, as zstack-mcp-server sends them.
    let image = data_image(&server, "rpc-src").await;
    let out = call(
        format!("{v}.APICreateDataVolumeFromVolumeTemplateMsg"),
        json!({"imageUuid": image, "name": "rpc-vol", "primaryStorageUuid": PS}),
    )
    .await;
    let ev = &out[format!("{v}.APICreateDataVolumeFromVolumeTemplateEvent")];
    assert_eq!(ev["inventory"]["status"], "Ready", "{out}");
    let vol = ev["inventory"]["uuid"].as_str().unwrap().to_string();
    let i = "org.zstack.header.image";
    let out = call(
        format!("{i}.APICreateDataVolumeTemplateFromVolumeMsg"),
        json!({"name": "rpc-tpl", "volumeUuid": vol, "description": "over rpc",
               "backupStorageUuids": [BS]}),
    )
    .await;
    let ev = &out[format!("{i}.APICreateDataVolumeTemplateFromVolumeEvent")];
    assert_eq!(ev["success"], true, "{out}");
    assert_eq!(ev["inventory"]["url"], format!("volume://{vol}"));
    assert_eq!(ev["inventory"]["status"], "Ready");
    let out = call(
        format!("{i}.APICreateDataVolumeTemplateFromVolumeMsg"),
        json!({"name": "rpc-bad", "volumeUuid": fresh_hex()}),
    )
    .await;
    let ev = &out[format!("{i}.APICreateDataVolumeTemplateFromVolumeEvent")];
    assert_eq!(ev["success"], false);
    assert_eq!(ev["error"]["code"], "SYS.1003");
    // A bad session is ID.1001.
    let out = rpc(
        &server,
        &format!("{v}.APIQueryVolumeMsg"),
        json!({"session": {"uuid": fresh_hex()}}),
    )
    .await;
    assert_eq!(
        out[format!("{v}.APIQueryVolumeReply")]["error"]["code"],
        "ID.1001"
    );
}
