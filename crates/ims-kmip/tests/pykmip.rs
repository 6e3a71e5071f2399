//! The KMIP client against a real PyKMIP 0.11.0 server on 127.0.0.1, started by
//! `scripts/pykmip-server` (which makes the test PKI and installs PyKMIP into .venv when it
//! is missing). If the script fails, every test that needs the server fails with its output:
//! nothing is skipped.
//!
//! One server per test process (a `OnceLock`). Statics are never dropped, so the script's
//! watchdog (`PYKMIP_OWNER_PID`) stops the server when this process ends.

mod common;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ims_kmip::{
    CipherMode, CipherPreference, Ciphertext, KmipClient, KmipConfig, KmipError, ProtocolVersion,
    State,
};

use common::{Pki, scratch_dir, script_pki, var};

/// The running server and the PKI it trusts.
struct Server {
    port: u16,
    pki: Pki,
    log: String,
}

static SERVER: OnceLock<Server> = OnceLock::new();

fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        let dir = scratch_dir("pykmip");
        let (pki, vars) = script_pki(&[dir.to_str().unwrap()]);
        Server {
            port: var(&vars, "PYKMIP_PORT").parse().unwrap(),
            log: var(&vars, "PYKMIP_LOG").to_owned(),
            pki,
        }
    })
}

fn config(cipher: CipherPreference) -> KmipConfig {
    let s = server();
    let mut c = s.pki.config(s.port);
    c.connect_timeout = Duration::from_secs(5);
    c.request_timeout = Duration::from_secs(20);
    c.cipher = cipher;
    c
}

async fn client(cipher: CipherPreference) -> KmipClient {
    let s = server();
    KmipClient::connect(config(cipher))
        .await
        .unwrap_or_else(|e| panic!("connect: {e}; server log {}", s.log))
}

/// A name no other test (or earlier run against the same database) uses.
fn unique_name(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "ims-test-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn active_key(c: &KmipClient, what: &str) -> String {
    let uid = c.create_aes_key(&unique_name(what)).await.unwrap();
    c.activate(&uid).await.unwrap();
    uid
}

/// 32 bytes that look like a data key (not all the same, not zero).
fn data_key() -> Vec<u8> {
    (0..32u8)
        .map(|i| i.wrapping_mul(73).wrapping_add(11))
        .collect()
}

#[tokio::test]
async fn connects_with_tls12_and_ecdhe_ecdsa_aes_gcm() {
    let c = client(CipherPreference::Auto).await;
    let tls = c.tls_info();
    eprintln!(
        "negotiated: {tls:?}; server versions: {:?}",
        c.server_versions()
    );
    assert_eq!(tls.protocol, "TLSv1_2");
    assert!(
        tls.cipher_suite.starts_with("TLS_ECDHE_ECDSA_WITH_AES_")
            && tls.cipher_suite.contains("_GCM_"),
        "{tls:?}"
    );
    assert!(c.server_versions().contains(&ProtocolVersion::V1_2));
    assert!(c.server_versions().contains(&ProtocolVersion::V1_4));
    assert_eq!(c.preferred_mode(), CipherMode::AesGcm);
}

#[tokio::test]
async fn a_key_is_created_activated_and_located_by_name() {
    let c = client(CipherPreference::Auto).await;
    let name = unique_name("lifecycle");
    let uid = c.create_aes_key(&name).await.unwrap();
    assert_eq!(c.get_state(&uid).await.unwrap(), State::PreActive);
    c.activate(&uid).await.unwrap();
    assert_eq!(c.get_state(&uid).await.unwrap(), State::Active);
    assert_eq!(c.locate_by_name(&name).await.unwrap(), vec![uid.clone()]);
    let nobody = unique_name("nobody");
    assert_eq!(
        c.locate_by_name(&nobody).await.unwrap(),
        Vec::<String>::new()
    );
    // Activating twice: the key is no longer Pre-Active.
    match c.activate(&uid).await {
        Err(KmipError::WrongState {
            state: Some(State::Active),
            ..
        }) => {}
        other => panic!("second activate: {other:?}"),
    }
}

#[tokio::test]
async fn encrypt_then_decrypt_restores_a_data_key_with_gcm() {
    let c = client(CipherPreference::Auto).await;
    let uid = active_key(&c, "gcm").await;
    let dek = data_key();
    let ct = c.encrypt(&uid, &dek).await.unwrap();
    assert_eq!(ct.mode(), CipherMode::AesGcm);
    assert_eq!((ct.iv().len(), ct.tag().map(<[u8]>::len)), (12, Some(16)));
    assert_eq!(ct.data().len(), dek.len());
    assert_ne!(ct.data(), dek.as_slice());
    // The opaque blob is what callers store.
    let blob = ct.to_bytes();
    assert!(!blob.windows(8).any(|w| dek.windows(8).any(|d| d == w)));
    let back = Ciphertext::from_bytes(&blob).unwrap();
    assert_eq!(
        c.decrypt(&uid, &back).await.unwrap().as_slice(),
        dek.as_slice()
    );
    // A random IV each time: the same key encrypts to different bytes.
    let again = c.encrypt(&uid, &dek).await.unwrap();
    assert_ne!((again.iv(), again.data()), (ct.iv(), ct.data()));
    timings(&c, &uid, &dek).await;
}

/// Prints the time of encrypt + decrypt round trips (run with --nocapture to see it).
async fn timings(c: &KmipClient, uid: &str, dek: &[u8]) {
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let ct = c.encrypt(uid, dek).await.unwrap();
        let pt = c.decrypt(uid, &ct).await.unwrap();
        times.push(t.elapsed());
        assert_eq!(pt.as_slice(), dek);
    }
    times.sort();
    eprintln!(
        "encrypt+decrypt round trip ({:?}, 20 runs): min {:?}, median {:?}, max {:?}",
        c.preferred_mode(),
        times[0],
        times[10],
        times[19]
    );
}

#[tokio::test]
async fn encrypt_then_decrypt_restores_a_data_key_with_cbc() {
    let c = client(CipherPreference::Cbc).await;
    let uid = active_key(&c, "cbc").await;
    let dek = data_key();
    let ct = c.encrypt(&uid, &dek).await.unwrap();
    assert_eq!(ct.mode(), CipherMode::AesCbcPkcs5Sha256);
    assert_eq!((ct.iv().len(), ct.tag()), (16, None));
    // 32 bytes of key + 32 of SHA-256 + a full block of PKCS#5 padding.
    assert_eq!(ct.data().len(), 80);
    assert!(!ct.data().windows(8).any(|w| dek.windows(8).any(|d| d == w)));
    let back = Ciphertext::from_bytes(&ct.to_bytes()).unwrap();
    assert_eq!(
        c.decrypt(&uid, &back).await.unwrap().as_slice(),
        dek.as_slice()
    );
    // A client that prefers GCM still decrypts a CBC ciphertext: the mode travels with it.
    let auto = client(CipherPreference::Auto).await;
    assert_eq!(
        auto.decrypt(&uid, &ct).await.unwrap().as_slice(),
        dek.as_slice()
    );
    timings(&c, &uid, &dek).await;
}

/// Flips one bit of byte `at` of the envelope.
fn tampered(ct: &Ciphertext, at: usize) -> Ciphertext {
    let mut b = ct.to_bytes();
    b[at] ^= 0x01;
    Ciphertext::from_bytes(&b).unwrap()
}

#[tokio::test]
async fn a_tampered_ciphertext_does_not_decrypt() {
    for cipher in [CipherPreference::Gcm, CipherPreference::Cbc] {
        let c = client(cipher).await;
        let uid = active_key(&c, "tamper").await;
        let ct = c.encrypt(&uid, &data_key()).await.unwrap();
        let len = ct.to_bytes().len();
        // The envelope header is 10 bytes; then IV, tag (GCM) and data: the first IV byte,
        // the first tag or data byte, and the last byte.
        for at in [10, 10 + ct.iv().len(), len - 1] {
            match c.decrypt(&uid, &tampered(&ct, at)).await {
                Err(e @ (KmipError::Integrity | KmipError::Refused { .. })) => {
                    eprintln!("{cipher:?}, byte {at} altered: {e}");
                }
                other => panic!("{cipher:?}, byte {at} altered: {other:?}"),
            }
        }
        // The untouched one still decrypts.
        assert_eq!(c.decrypt(&uid, &ct).await.unwrap().as_slice(), data_key());
    }
}

#[tokio::test]
async fn additional_data_binds_the_ciphertext() {
    for cipher in [CipherPreference::Gcm, CipherPreference::Cbc] {
        let c = client(cipher).await;
        let uid = active_key(&c, "aad").await;
        let dek = data_key();
        let ct = c
            .encrypt_with_aad(&uid, &dek, b"project-1/image-1")
            .await
            .unwrap();
        let back = c.decrypt_with_aad(&uid, &ct, b"project-1/image-1").await;
        assert_eq!(back.unwrap().as_slice(), dek.as_slice(), "{cipher:?}");
        for other in [b"project-1/image-2".as_slice(), b""] {
            match c.decrypt_with_aad(&uid, &ct, other).await {
                Err(KmipError::Integrity | KmipError::Refused { .. }) => {}
                wrong => panic!("{cipher:?} with {other:?}: {wrong:?}"),
            }
        }
        // And the other way: a ciphertext without additional data does not take some.
        let plain = c.encrypt(&uid, &dek).await.unwrap();
        assert!(
            c.decrypt_with_aad(&uid, &plain, b"x").await.is_err(),
            "{cipher:?}"
        );
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused_as_wrong_state() {
    let c = client(CipherPreference::Auto).await;
    let uid = active_key(&c, "revoke").await;
    let ct = c.encrypt(&uid, &data_key()).await.unwrap();
    c.revoke(&uid).await.unwrap();
    assert_eq!(c.get_state(&uid).await.unwrap(), State::Deactivated);
    match c.encrypt(&uid, &data_key()).await {
        Err(KmipError::WrongState {
            state: Some(State::Deactivated),
            message,
        }) => {
            assert!(message.contains("Active"), "{message}");
        }
        other => panic!("encrypt with a revoked key: {other:?}"),
    }
    assert!(matches!(
        c.decrypt(&uid, &ct).await,
        Err(KmipError::WrongState {
            state: Some(State::Deactivated),
            ..
        })
    ));
}

#[tokio::test]
async fn a_destroyed_key_is_not_found() {
    let c = client(CipherPreference::Auto).await;
    let uid = active_key(&c, "destroy").await;
    // An Active key cannot be destroyed.
    assert!(matches!(
        c.destroy(&uid).await,
        Err(KmipError::WrongState {
            state: Some(State::Active),
            ..
        })
    ));
    c.revoke(&uid).await.unwrap();
    c.destroy(&uid).await.unwrap();
    assert!(matches!(
        c.get_state(&uid).await,
        Err(KmipError::NotFound { .. })
    ));
    assert!(matches!(
        c.encrypt(&uid, &data_key()).await,
        Err(KmipError::NotFound { .. })
    ));
    assert!(matches!(
        c.get_state("no-such-object").await,
        Err(KmipError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_unreachable() {
    let s = server();
    let mut config = config(CipherPreference::Auto);
    config.client_cert_pem = s.pki.foreign_cert.clone();
    config.client_key_pem = s.pki.foreign_key.clone().into();
    match KmipClient::connect(config).await {
        Err(KmipError::Unreachable(why)) => eprintln!("refused as expected: {why}"),
        Err(e) => panic!("expected Unreachable, got {e:?}"),
        Ok(_) => panic!("a client from another CA was accepted"),
    }
}
