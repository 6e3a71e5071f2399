//! The client side of mutual TLS, from PEM.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::KmipError;

fn config_err(what: &str) -> impl FnOnce(rustls::pki_types::pem::Error) -> KmipError + '_ {
    move |e| KmipError::Config(format!("{what}: {e}"))
}

/// Every certificate in a PEM bundle; at least one.
fn certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, KmipError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(config_err(what))?;
    if certs.is_empty() {
        return Err(KmipError::Config(format!(
            "{what}: no certificate in the PEM"
        )));
    }
    Ok(certs)
}

/// A TLS client configuration that trusts only the CAs in `ca_pem` and presents the
/// certificate chain and key given. TLS 1.3 and 1.2 are offered; the AWS-LC provider is
/// named explicitly so the process-wide default (which another crate may set) plays no part.
pub(crate) fn client_config(
    ca_pem: &[u8],
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<ClientConfig>, KmipError> {
    let mut roots = RootCertStore::empty();
    for ca in certs(ca_pem, "CA certificate")? {
        roots
            .add(ca)
            .map_err(|e| KmipError::Config(format!("CA certificate: {e}")))?;
    }
    let chain = certs(cert_pem, "client certificate")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(config_err("client key"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| KmipError::Config(format!("TLS versions: {e}")))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| KmipError::Config(format!("client certificate and key: {e}")))?;
    Ok(Arc::new(config))
}
