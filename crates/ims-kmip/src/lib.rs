//! A small KMIP client: ims's adapter for an external key manager (an HSM or an enterprise
//! KMS) that keeps the customer master key inside it and wraps data keys with its own
//! Encrypt/Decrypt.
//!
//! - [`ttlv`]: the wire encoding, written by hand (the Rust KMIP crates are old or
//!   restrictively licensed), with bounds on size and depth.
//! - [`KmipClient`]: KMIP 1.2 requests (1.4 for AES-GCM, whose tag only exists from 1.4)
//!   over mutual TLS (rustls), one TLS connection per call and a timeout on every call.
//! - [`Ciphertext`]: what Encrypt returns, with the mode it used, as one opaque blob.
//!
//! Tested against PyKMIP 0.11.0 on loopback (`tests/pykmip.rs`, `scripts/pykmip-server`).

pub mod backend;
mod ciphertext;
mod client;
mod error;
mod proto;
mod tls;
pub mod ttlv;

pub use backend::KmipBackend;
pub use ciphertext::{CipherMode, Ciphertext, MalformedCiphertext};
pub use client::{CipherPreference, KmipClient, KmipConfig, TlsInfo};
pub use error::{KmipError, State};
pub use proto::{ProtocolVersion, reason};
