//! The client against a scripted KMIP server in this process (rustls, the test PKI from
//! `scripts/pykmip-server certs`), for what PyKMIP never does: refusing GCM, answering
//! off the protocol, closing or stalling mid-call, announcing only KMIP 1.2.

mod common;

use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ims_kmip::ttlv::{self, Item, Tag, Value};
use ims_kmip::{
    CipherMode, CipherPreference, Ciphertext, KmipClient, KmipConfig, KmipError, reason,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use common::{Pki, scratch_dir, script_pki};

// The few tags the scripted server reads and writes.
const RESPONSE_MESSAGE: Tag = Tag(0x42007B);
const RESPONSE_HEADER: Tag = Tag(0x42007A);
const PROTOCOL_VERSION: Tag = Tag(0x420069);
const BATCH_COUNT: Tag = Tag(0x42000D);
const BATCH_ITEM: Tag = Tag(0x42000F);
const OPERATION: Tag = Tag(0x42005C);
const RESULT_STATUS: Tag = Tag(0x42007F);
const RESULT_REASON: Tag = Tag(0x42007E);
const RESULT_MESSAGE: Tag = Tag(0x42007D);
const REQUEST_HEADER: Tag = Tag(0x420077);
const REQUEST_PAYLOAD: Tag = Tag(0x420079);
const RESPONSE_PAYLOAD: Tag = Tag(0x42007C);
const CRYPTOGRAPHIC_PARAMETERS: Tag = Tag(0x42002B);
const BLOCK_CIPHER_MODE: Tag = Tag(0x420011);
const UNIQUE_IDENTIFIER: Tag = Tag(0x420094);
const DATA: Tag = Tag(0x4200C2);
const AUTH_TAG: Tag = Tag(0x4200FF);

const DISCOVER_VERSIONS: u32 = 0x1E;
const ENCRYPT: u32 = 0x1F;
const DECRYPT: u32 = 0x20;
const GCM: u32 = 9;
const CBC: u32 = 1;

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = scratch_dir("kmip-wire");
        script_pki(&["certs", dir.to_str().unwrap()]).0
    })
}

/// What a request looked like to the server.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    operation: u32,
    minor_version: i32,
    mode: Option<u32>,
}

fn inspect(request: &Item) -> Seen {
    let int = |i: Option<&Item>| match i.map(|i| &i.value) {
        Some(Value::Integer(v)) => *v,
        Some(Value::Enumeration(v)) => *v as i32,
        _ => -1,
    };
    let header = request.child(REQUEST_HEADER).unwrap();
    let version = header.child(PROTOCOL_VERSION).unwrap();
    let batch = request.child(BATCH_ITEM).unwrap();
    let payload = batch.child(REQUEST_PAYLOAD).unwrap();
    Seen {
        operation: int(batch.child(OPERATION)) as u32,
        minor_version: int(version.child(Tag(0x42006B))),
        mode: payload
            .child(CRYPTOGRAPHIC_PARAMETERS)
            .map(|p| int(p.child(BLOCK_CIPHER_MODE)) as u32),
    }
}

/// What the server does with a request.
enum Reply {
    /// Sends these bytes, then closes.
    Bytes(Vec<u8>),
    /// Closes without answering.
    Close,
    /// Never answers (the connection stays open).
    Stall,
}

type Script = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A scripted server on 127.0.0.1 that checks client certificates against the test CA.
struct Fake {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    fn start(script: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Fake {
        let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let port = std_listener.local_addr().unwrap().port();
        let listener = TcpListener::from_std(std_listener).unwrap();
        let acceptor = TlsAcceptor::from(server_config());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, script, log) = (acceptor.clone(), script.clone(), log.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut header = [0u8; 8];
                    if tls.read_exact(&mut header).await.is_err() {
                        return;
                    }
                    let mut msg = vec![0u8; ttlv::message_len(&header).unwrap()];
                    msg[..8].copy_from_slice(&header);
                    tls.read_exact(&mut msg[8..]).await.unwrap();
                    let request = inspect(&ttlv::decode(&msg).unwrap());
                    let reply = script(&request);
                    log.lock().unwrap().push(request);
                    match reply {
                        Reply::Bytes(b) => {
                            let _ = tls.write_all(&b).await;
                            let _ = tls.shutdown().await;
                        }
                        Reply::Close => {}
                        Reply::Stall => {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                        }
                    }
                });
            }
        });
        Fake { port, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn config(&self, cipher: CipherPreference) -> KmipConfig {
        let mut c = pki().config(self.port);
        c.cipher = cipher;
        c.connect_timeout = Duration::from_millis(500);
        c.request_timeout = Duration::from_secs(2);
        c
    }

    async fn client(&self, cipher: CipherPreference) -> KmipClient {
        KmipClient::connect(self.config(cipher)).await.unwrap()
    }
}

fn server_config() -> Arc<rustls::ServerConfig> {
    let p = pki();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(&p.ca).unwrap())
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(&p.server_cert).unwrap()],
            PrivateKeyDer::from_pem_slice(&p.server_key).unwrap(),
        )
        .unwrap();
    Arc::new(config)
}

/// A response message: one batch item for `operation` with `fields` after the operation.
fn response(operation: u32, fields: Vec<Item>) -> Vec<u8> {
    response_with_count(operation, 1, fields)
}

fn response_with_count(operation: u32, count: i32, fields: Vec<Item>) -> Vec<u8> {
    let mut batch = vec![Item::enumeration(OPERATION, operation)];
    batch.extend(fields);
    let message = Item::structure(
        RESPONSE_MESSAGE,
        vec![
            Item::structure(
                RESPONSE_HEADER,
                vec![version(1, 2), Item::integer(BATCH_COUNT, count)],
            ),
            Item::structure(BATCH_ITEM, batch),
        ],
    );
    message.encode().unwrap().to_vec()
}

fn version(major: i32, minor: i32) -> Item {
    Item::structure(
        PROTOCOL_VERSION,
        vec![
            Item::integer(Tag(0x42006A), major),
            Item::integer(Tag(0x42006B), minor),
        ],
    )
}

fn success(operation: u32, payload: Vec<Item>) -> Reply {
    Reply::Bytes(response(
        operation,
        vec![
            Item::enumeration(RESULT_STATUS, 0),
            Item::structure(RESPONSE_PAYLOAD, payload),
        ],
    ))
}

fn failure(operation: u32, why: u32, message: &str) -> Reply {
    Reply::Bytes(response(
        operation,
        vec![
            Item::enumeration(RESULT_STATUS, 1),
            Item::enumeration(RESULT_REASON, why),
            Item::text(RESULT_MESSAGE, message),
        ],
    ))
}

/// Discover Versions answered with these 1.x minor versions.
fn versions(minors: &[i32]) -> Reply {
    success(
        DISCOVER_VERSIONS,
        minors.iter().map(|m| version(1, *m)).collect(),
    )
}

/// A CBC Encrypt success with 80 bytes of "ciphertext".
fn cbc_encrypted() -> Reply {
    success(
        ENCRYPT,
        vec![
            Item::text(UNIQUE_IDENTIFIER, "1"),
            Item::bytes(DATA, &[0xAB; 80]),
        ],
    )
}

fn discover() -> Seen {
    Seen {
        operation: DISCOVER_VERSIONS,
        minor_version: 2,
        mode: None,
    }
}

fn encrypt(minor_version: i32, mode: u32) -> Seen {
    Seen {
        operation: ENCRYPT,
        minor_version,
        mode: Some(mode),
    }
}

#[tokio::test]
async fn auto_falls_back_to_cbc_once_the_server_refuses_gcm() {
    let fake = Fake::start(|s| match (s.operation, s.mode) {
        (DISCOVER_VERSIONS, _) => versions(&[4, 2]),
        (ENCRYPT, Some(GCM)) => failure(ENCRYPT, reason::INVALID_FIELD, "no GCM here"),
        (ENCRYPT, _) => cbc_encrypted(),
        _ => Reply::Close,
    });
    let c = fake.client(CipherPreference::Auto).await;
    assert_eq!(c.preferred_mode(), CipherMode::AesGcm);
    let ct = c.encrypt("1", &[7; 32]).await.unwrap();
    assert_eq!(ct.mode(), CipherMode::AesCbcPkcs5Sha256);
    assert_eq!(c.preferred_mode(), CipherMode::AesCbcPkcs5Sha256);
    // The next call goes straight to CBC.
    c.encrypt("1", &[7; 32]).await.unwrap();
    assert_eq!(
        fake.seen(),
        [
            discover(),
            encrypt(4, GCM),
            encrypt(2, CBC),
            encrypt(2, CBC)
        ]
    );
}

#[tokio::test]
async fn a_gcm_answer_without_a_tag_also_falls_back() {
    let fake = Fake::start(|s| match (s.operation, s.mode) {
        (DISCOVER_VERSIONS, _) => versions(&[4]),
        (ENCRYPT, Some(GCM)) => success(ENCRYPT, vec![Item::bytes(DATA, &[1; 32])]),
        (ENCRYPT, _) => cbc_encrypted(),
        _ => Reply::Close,
    });
    let c = fake.client(CipherPreference::Auto).await;
    let ct = c.encrypt("1", &[7; 32]).await.unwrap();
    assert_eq!(ct.mode(), CipherMode::AesCbcPkcs5Sha256);
}

#[tokio::test]
async fn gcm_only_reports_the_refusal() {
    let fake = Fake::start(|s| match s.operation {
        DISCOVER_VERSIONS => versions(&[4]),
        _ => failure(ENCRYPT, reason::FEATURE_NOT_SUPPORTED, "no GCM here"),
    });
    let c = fake.client(CipherPreference::Gcm).await;
    match c.encrypt("1", &[7; 32]).await {
        Err(KmipError::Refused { reason: r, message }) => {
            assert_eq!(r, reason::FEATURE_NOT_SUPPORTED);
            assert_eq!(message, "no GCM here");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_server_without_kmip_1_4_gets_cbc_directly() {
    let fake = Fake::start(|s| match s.operation {
        DISCOVER_VERSIONS => versions(&[2, 1, 0]),
        _ => cbc_encrypted(),
    });
    let c = fake.client(CipherPreference::Auto).await;
    assert_eq!(c.preferred_mode(), CipherMode::AesCbcPkcs5Sha256);
    c.encrypt("1", &[7; 32]).await.unwrap();
    assert_eq!(fake.seen(), [discover(), encrypt(2, CBC)]);
}

#[tokio::test]
async fn a_server_without_discover_versions_is_taken_as_kmip_1_2() {
    let fake = Fake::start(|_| failure(DISCOVER_VERSIONS, reason::OPERATION_NOT_SUPPORTED, ""));
    let c = fake.client(CipherPreference::Auto).await;
    assert_eq!(c.server_versions(), [ims_kmip::ProtocolVersion::V1_2]);
    assert_eq!(c.preferred_mode(), CipherMode::AesCbcPkcs5Sha256);
}

#[tokio::test]
async fn decrypted_bytes_that_fail_the_check_are_an_integrity_error() {
    let fake = Fake::start(|s| match s.operation {
        DISCOVER_VERSIONS => versions(&[2]),
        DECRYPT => success(DECRYPT, vec![Item::bytes(DATA, &[5; 64])]),
        _ => cbc_encrypted(),
    });
    let c = fake.client(CipherPreference::Auto).await;
    let ct = c.encrypt("1", &[7; 32]).await.unwrap();
    assert_eq!(c.decrypt("1", &ct).await, Err(KmipError::Integrity));
}

#[tokio::test]
async fn a_cryptographic_failure_on_decrypt_is_an_integrity_error() {
    let fake = Fake::start(|s| match s.operation {
        DISCOVER_VERSIONS => versions(&[4]),
        DECRYPT => failure(DECRYPT, reason::CRYPTOGRAPHIC_FAILURE, "bad tag"),
        _ => success(
            ENCRYPT,
            vec![Item::bytes(DATA, &[1; 32]), Item::bytes(AUTH_TAG, &[2; 16])],
        ),
    });
    let c = fake.client(CipherPreference::Auto).await;
    let ct = c.encrypt("1", &[7; 32]).await.unwrap();
    assert_eq!(ct.mode(), CipherMode::AesGcm);
    assert_eq!(c.decrypt("1", &ct).await, Err(KmipError::Integrity));
}

#[tokio::test]
async fn answers_off_the_protocol_are_protocol_errors() {
    let garbage = {
        let mut b = vec![0x42, 0x00, 0x7B, 0x01, 0, 0, 0, 16];
        b.extend([0xFF; 16]);
        b
    };
    let too_big = vec![0x42, 0x00, 0x7B, 0x01, 0x01, 0x00, 0x00, 0x00];
    let not_a_structure = vec![0x42, 0x00, 0x7B, 0x02, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0];
    let wrong_operation = response(0x01, vec![Item::enumeration(RESULT_STATUS, 0)]);
    let two_items = response_with_count(DISCOVER_VERSIONS, 2, vec![]);
    let pending = response(DISCOVER_VERSIONS, vec![Item::enumeration(RESULT_STATUS, 2)]);
    for (what, bytes) in [
        ("garbage", garbage),
        ("16 MiB announced", too_big),
        ("not a structure", not_a_structure),
        ("another operation", wrong_operation),
        ("batch count 2", two_items),
        ("pending", pending),
    ] {
        let fake = Fake::start(move |_| Reply::Bytes(bytes.clone()));
        let t = Instant::now();
        match KmipClient::connect(fake.config(CipherPreference::Auto)).await {
            Err(KmipError::Protocol(why)) => eprintln!("{what}: {why}"),
            Err(e) => panic!("{what}: expected Protocol, got {e:?}"),
            Ok(_) => panic!("{what}: accepted"),
        }
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "{what}: {:?}",
            t.elapsed()
        );
    }
}

#[tokio::test]
async fn a_server_that_closes_without_answering_is_unreachable() {
    let fake = Fake::start(|_| Reply::Close);
    let err = KmipClient::connect(fake.config(CipherPreference::Auto))
        .await
        .err();
    assert!(matches!(err, Some(KmipError::Unreachable(_))), "{err:?}");
}

#[tokio::test]
async fn a_call_the_server_never_answers_times_out() {
    let fake = Fake::start(|s| match s.operation {
        DISCOVER_VERSIONS => versions(&[2]),
        _ => Reply::Stall,
    });
    let c = fake.client(CipherPreference::Auto).await;
    let t = Instant::now();
    let err = c.get_state("1").await.err();
    assert!(matches!(err, Some(KmipError::Unreachable(_))), "{err:?}");
    let waited = t.elapsed();
    // The request timeout is 2 s.
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_request_over_one_mebibyte_is_not_sent() {
    let fake = Fake::start(|s| match s.operation {
        DISCOVER_VERSIONS => versions(&[2]),
        _ => cbc_encrypted(),
    });
    let c = fake.client(CipherPreference::Auto).await;
    let err = c.encrypt("1", &vec![0; 1 << 20]).await.err();
    assert!(matches!(err, Some(KmipError::Protocol(_))), "{err:?}");
    assert_eq!(fake.seen(), [discover()]);
}

/// A configuration whose certificates parse, for a port where no KMIP server is.
fn offline_config(port: u16) -> KmipConfig {
    let mut c = pki().config(port);
    c.connect_timeout = Duration::from_millis(500);
    c.request_timeout = Duration::from_secs(1);
    c
}

#[tokio::test]
async fn a_closed_port_fails_fast_as_unreachable() {
    let port = StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = offline_config(port);
    let t = Instant::now();
    let err = KmipClient::connect(config).await.err();
    assert!(matches!(err, Some(KmipError::Unreachable(_))), "{err:?}");
    // Refused at once, well inside the 500 ms connect timeout.
    let waited = t.elapsed();
    assert!(waited < Duration::from_millis(200), "{waited:?}");
}

#[tokio::test]
async fn a_handshake_that_never_completes_times_out_as_unreachable() {
    // Accepts TCP connections and says nothing.
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let config = offline_config(listener.local_addr().unwrap().port());
    let t = Instant::now();
    let err = KmipClient::connect(config).await.err();
    assert!(matches!(err, Some(KmipError::Unreachable(_))), "{err:?}");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    drop(listener);
}

/// Makes a configuration unusable.
type Spoil = fn(&mut KmipConfig);

#[tokio::test]
async fn bad_configurations_are_config_errors() {
    let p = pki();
    let cases: [(&str, Spoil); 4] = [
        ("no CA", |c| c.ca_cert_pem = b"not pem".to_vec()),
        ("no client certificate", |c| c.client_cert_pem.clear()),
        ("no key", |c| c.client_key_pem = Vec::new().into()),
        ("bad host", |c| c.host = "not a host name!".into()),
    ];
    for (what, spoil) in cases {
        let mut config = p.config(1);
        spoil(&mut config);
        let err = KmipClient::connect(config).await.err();
        assert!(matches!(err, Some(KmipError::Config(_))), "{what}: {err:?}");
    }
    // A key that does not match the certificate.
    let mut config = p.config(1);
    config.client_key_pem = p.foreign_key.clone().into();
    let err = KmipClient::connect(config).await.err();
    assert!(
        matches!(err, Some(KmipError::Config(_))),
        "mismatched key: {err:?}"
    );
}

/// The client and its calls can move between threads (ims spawns them on a runtime).
#[test]
fn the_client_and_its_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<KmipClient>();
    send_sync::<Ciphertext>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let fake = Fake::start(|_| versions(&[2]));
        let c = fake.client(CipherPreference::Auto).await;
        let ct = Ciphertext::from_bytes(
            b"KC\x01\x01\x0c\x10\x00\x00\x00\x01aaaaaaaaaaaabbbbbbbbbbbbbbbbc",
        )
        .unwrap();
        send(&c.encrypt("1", b"x"));
        send(&c.decrypt("1", &ct));
        send(&c.create_aes_key("k"));
        send(&c.locate_by_name("k"));
    });
}
