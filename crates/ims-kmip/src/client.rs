//! The KMIP client: one request per TLS connection, a timeout on every call.
//!
//! A connection per call costs a TLS handshake, but nothing is shared between calls: no
//! idle connection to go stale, no retry question after a half-done request. The KMS wraps
//! and unwraps data keys, not bulk data, so calls are rare and small.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use zeroize::Zeroizing;

use crate::ciphertext::{self, CipherMode, Ciphertext};
use crate::proto::{self, Outcome, ProtocolVersion, attribute, name_value, op, reason, tag, value};
use crate::ttlv::{self, HEADER_LEN, Item, Value};
use crate::{KmipError, State, tls};

/// Which AES mode `encrypt` uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CipherPreference {
    /// GCM when the server speaks KMIP 1.4; CBC if it does not, or once it refuses GCM.
    #[default]
    Auto,
    /// GCM only: a server that refuses it fails the call.
    Gcm,
    /// CBC only.
    Cbc,
}

/// Where the KMS is and how to authenticate to it.
#[derive(Clone)]
pub struct KmipConfig {
    /// Host name or IP address; it must match the server certificate.
    pub host: String,
    /// TCP port (5696 is KMIP's).
    pub port: u16,
    /// The CA certificate(s) that sign the server's certificate, PEM.
    pub ca_cert_pem: Vec<u8>,
    /// The client certificate chain, PEM. KMIP servers take its identity (PyKMIP: the CN)
    /// as the owner of the objects this client creates.
    pub client_cert_pem: Vec<u8>,
    /// The client's private key, PEM (PKCS#8, SEC1 or PKCS#1). Zeroized on drop.
    pub client_key_pem: Zeroizing<Vec<u8>>,
    /// Bound on the TCP connect and, separately, on the TLS handshake.
    pub connect_timeout: Duration,
    /// Bound on a whole call: connect, handshake, request and response.
    pub request_timeout: Duration,
    /// Which AES mode `encrypt` uses.
    pub cipher: CipherPreference,
}

impl KmipConfig {
    /// A configuration with the default timeouts (5 s to connect, 30 s per call) and
    /// [`CipherPreference::Auto`].
    pub fn new(
        host: impl Into<String>,
        port: u16,
        ca_cert_pem: Vec<u8>,
        client_cert_pem: Vec<u8>,
        client_key_pem: Vec<u8>,
    ) -> Self {
        KmipConfig {
            host: host.into(),
            port,
            ca_cert_pem,
            client_cert_pem,
            client_key_pem: Zeroizing::new(client_key_pem),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            cipher: CipherPreference::Auto,
        }
    }
}

impl fmt::Debug for KmipConfig {
    /// Everything but the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmipConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("cipher", &self.cipher)
            .finish_non_exhaustive()
    }
}

/// What the TLS handshake settled on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// The protocol version, e.g. "TLSv1_2".
    pub protocol: String,
    /// The cipher suite, e.g. "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".
    pub cipher_suite: String,
}

/// A KMIP client. Cheap to share behind an `Arc`; calls may run concurrently.
pub struct KmipClient {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    host: String,
    port: u16,
    connect_timeout: Duration,
    request_timeout: Duration,
    preference: CipherPreference,
    versions: Vec<ProtocolVersion>,
    /// Set once the server refused GCM, so later calls go straight to CBC.
    gcm_refused: AtomicBool,
    tls: TlsInfo,
}

/// The AES-GCM nonce and tag sizes used.
const GCM_NONCE: usize = 12;
const GCM_TAG: usize = 16;
const CBC_IV: usize = 16;
/// How long closing a connection may take once the response is read.
const CLOSE_WAIT: Duration = Duration::from_millis(100);

impl KmipClient {
    /// Checks the configuration and talks to the server once (Discover Versions), so that
    /// a wrong address, CA or client certificate fails here, as `Unreachable`.
    pub async fn connect(config: KmipConfig) -> Result<Self, KmipError> {
        let tls = tls::client_config(
            &config.ca_cert_pem,
            &config.client_cert_pem,
            &config.client_key_pem,
        )?;
        let server_name = ServerName::try_from(config.host.clone())
            .map_err(|e| KmipError::Config(format!("host {:?}: {e}", config.host)))?;
        let mut client = KmipClient {
            connector: TlsConnector::from(tls),
            server_name,
            host: config.host,
            port: config.port,
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            preference: config.cipher,
            versions: Vec::new(),
            gcm_refused: AtomicBool::new(false),
            tls: TlsInfo::default(),
        };
        let (versions, info) = client.discover_versions().await?;
        client.versions = versions;
        client.tls = info;
        Ok(client)
    }

    /// What the TLS handshake of `connect` settled on.
    pub fn tls_info(&self) -> &TlsInfo {
        &self.tls
    }

    /// The protocol versions the server announced (KMIP 1.2 alone if it could not say).
    pub fn server_versions(&self) -> &[ProtocolVersion] {
        &self.versions
    }

    /// The mode the next `encrypt` tries first.
    pub fn preferred_mode(&self) -> CipherMode {
        if self.try_gcm() {
            CipherMode::AesGcm
        } else {
            CipherMode::AesCbcPkcs5Sha256
        }
    }

    /// Creates an AES-256 key named `name`, usable to encrypt, decrypt, wrap and unwrap, and
    /// returns its unique identifier. KMIP keys start Pre-Active: see [`Self::activate`].
    pub async fn create_aes_key(&self, name: &str) -> Result<String, KmipError> {
        let usage = value::USAGE_ENCRYPT_DECRYPT_WRAP_UNWRAP;
        let template = Item::structure(
            tag::TEMPLATE_ATTRIBUTE,
            vec![
                attribute(
                    "Cryptographic Algorithm",
                    Value::Enumeration(value::ALGORITHM_AES),
                ),
                attribute("Cryptographic Length", Value::Integer(256)),
                attribute("Cryptographic Usage Mask", Value::Integer(usage)),
                attribute("Name", name_value(name)),
            ],
        );
        let object_type = Item::enumeration(tag::OBJECT_TYPE, value::OBJECT_SYMMETRIC_KEY);
        let payload = self
            .call(
                ProtocolVersion::V1_2,
                op::CREATE,
                vec![object_type, template],
            )
            .await?;
        uid_of(&payload)
    }

    /// Moves a Pre-Active key to Active.
    pub async fn activate(&self, uid: &str) -> Result<(), KmipError> {
        let result = self.call(ProtocolVersion::V1_2, op::ACTIVATE, vec![uid_item(uid)]);
        self.explained(uid, result.await, |s| s == State::PreActive)
            .await
            .map(drop)
    }

    /// The key's lifecycle state (Get Attributes "State").
    pub async fn get_state(&self, uid: &str) -> Result<State, KmipError> {
        let name = Item::text(tag::ATTRIBUTE_NAME, "State");
        let payload = self
            .call(
                ProtocolVersion::V1_2,
                op::GET_ATTRIBUTES,
                vec![uid_item(uid), name],
            )
            .await?;
        let state = payload
            .children_with(tag::ATTRIBUTE)
            .find(|a| proto::text(a, tag::ATTRIBUTE_NAME) == Ok("State"))
            .and_then(|a| a.child(tag::ATTRIBUTE_VALUE));
        match state.map(|s| &s.value) {
            Some(Value::Enumeration(v)) => State::from_kmip(*v)
                .ok_or_else(|| KmipError::Protocol(format!("unknown key state {v}"))),
            _ => Err(KmipError::Protocol(
                "no State attribute in the response".into(),
            )),
        }
    }

    /// The unique identifiers of the objects named `name` (that this client may see).
    pub async fn locate_by_name(&self, name: &str) -> Result<Vec<String>, KmipError> {
        let filter = attribute("Name", name_value(name));
        let payload = self
            .call(ProtocolVersion::V1_2, op::LOCATE, vec![filter])
            .await?;
        payload
            .children_with(tag::UNIQUE_IDENTIFIER)
            .map(|i| match &i.value {
                Value::TextString(s) => Ok(s.clone()),
                _ => Err(KmipError::Protocol("a non-text unique identifier".into())),
            })
            .collect()
    }

    /// Encrypts `plaintext` with the key, inside the KMS: AES-GCM if the server does it,
    /// otherwise AES-CBC (see [`CipherPreference`]). The IV is random, made here.
    pub async fn encrypt(&self, uid: &str, plaintext: &[u8]) -> Result<Ciphertext, KmipError> {
        self.encrypt_with_aad(uid, plaintext, &[]).await
    }

    /// [`Self::encrypt`], bound to additional data (e.g. the ids of the image and project a
    /// wrapped key belongs to): decrypting needs the same bytes. GCM authenticates them in
    /// the KMS; CBC folds them into its SHA-256 check.
    pub async fn encrypt_with_aad(
        &self,
        uid: &str,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Ciphertext, KmipError> {
        if self.try_gcm() {
            match self.encrypt_gcm(uid, plaintext, aad).await {
                Err(e) if self.preference == CipherPreference::Auto && refuses_gcm(&e) => {
                    self.gcm_refused.store(true, Ordering::Relaxed);
                }
                result => return self.explained(uid, result, |s| s == State::Active).await,
            }
        }
        let result = self.encrypt_cbc(uid, plaintext, aad).await;
        self.explained(uid, result, |s| s == State::Active).await
    }

    /// Decrypts what [`Self::encrypt`] made with the same key, in the mode it used. An altered
    /// ciphertext fails (`Integrity`, or `Refused` if the server does not say why).
    pub async fn decrypt(
        &self,
        uid: &str,
        ciphertext: &Ciphertext,
    ) -> Result<Zeroizing<Vec<u8>>, KmipError> {
        self.decrypt_with_aad(uid, ciphertext, &[]).await
    }

    /// Decrypts what [`Self::encrypt_with_aad`] made; other additional data fails as an
    /// altered ciphertext does.
    pub async fn decrypt_with_aad(
        &self,
        uid: &str,
        ciphertext: &Ciphertext,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KmipError> {
        let result = match ciphertext.mode() {
            CipherMode::AesGcm => self.decrypt_gcm(uid, ciphertext, aad).await,
            CipherMode::AesCbcPkcs5Sha256 => self.decrypt_cbc(uid, ciphertext, aad).await,
        };
        let result = result.map_err(|e| match e {
            KmipError::Refused {
                reason: reason::CRYPTOGRAPHIC_FAILURE,
                ..
            } => KmipError::Integrity,
            e => e,
        });
        self.explained(uid, result, |s| s == State::Active).await
    }

    /// Revokes the key (reason: cessation of operation): it becomes Deactivated and can no
    /// longer encrypt or decrypt. KMIP has no way back.
    pub async fn revoke(&self, uid: &str) -> Result<(), KmipError> {
        let why = Item::structure(
            tag::REVOCATION_REASON,
            vec![Item::enumeration(
                tag::REVOCATION_REASON_CODE,
                value::REVOCATION_CESSATION_OF_OPERATION,
            )],
        );
        let result = self.call(ProtocolVersion::V1_2, op::REVOKE, vec![uid_item(uid), why]);
        self.explained(uid, result.await, |s| {
            matches!(s, State::Active | State::PreActive)
        })
        .await
        .map(drop)
    }

    /// Destroys the key. Servers refuse to destroy an Active key: revoke it first.
    pub async fn destroy(&self, uid: &str) -> Result<(), KmipError> {
        let result = self.call(ProtocolVersion::V1_2, op::DESTROY, vec![uid_item(uid)]);
        self.explained(uid, result.await, |s| s != State::Active)
            .await
            .map(drop)
    }

    fn try_gcm(&self) -> bool {
        match self.preference {
            CipherPreference::Cbc => false,
            CipherPreference::Gcm => true,
            CipherPreference::Auto => {
                self.versions.contains(&ProtocolVersion::V1_4)
                    && !self.gcm_refused.load(Ordering::Relaxed)
            }
        }
    }

    /// GCM needs KMIP 1.4: earlier versions have no field for the authentication tag.
    async fn encrypt_gcm(
        &self,
        uid: &str,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Ciphertext, KmipError> {
        let iv = random::<GCM_NONCE>()?;
        let params = crypto_params(value::MODE_GCM, None, Some(GCM_TAG));
        let mut fields = vec![
            uid_item(uid),
            params,
            Item::bytes(tag::DATA, plaintext),
            Item::bytes(tag::IV_COUNTER_NONCE, &iv),
        ];
        fields.extend(aad_item(aad));
        let payload = self
            .call(ProtocolVersion::V1_4, op::ENCRYPT, fields)
            .await?;
        let (data, iv) = encrypted(&payload, &iv)?;
        let tag = match proto::bytes(&payload, tag::AUTHENTICATED_ENCRYPTION_TAG) {
            Ok(Some(t)) if t.len() == GCM_TAG => t.to_vec(),
            // A server that ignores the tag length or omits the tag cannot do GCM for us;
            // say so the way a server that refuses GCM would, so Auto falls back to CBC.
            _ => {
                return Err(KmipError::Refused {
                    reason: reason::FEATURE_NOT_SUPPORTED,
                    message: "no 16-byte authentication tag in the GCM response".into(),
                });
            }
        };
        Ciphertext::new(CipherMode::AesGcm, iv, Some(tag), data)
            .map_err(|e| KmipError::Protocol(e.to_string()))
    }

    async fn encrypt_cbc(
        &self,
        uid: &str,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Ciphertext, KmipError> {
        let iv = random::<CBC_IV>()?;
        let params = crypto_params(value::MODE_CBC, Some(value::PADDING_PKCS5), None);
        let sealed = ciphertext::with_check(plaintext, aad);
        let payload = self
            .call(
                ProtocolVersion::V1_2,
                op::ENCRYPT,
                vec![
                    uid_item(uid),
                    params,
                    Item::bytes(tag::DATA, &sealed),
                    Item::bytes(tag::IV_COUNTER_NONCE, &iv),
                ],
            )
            .await?;
        let (data, iv) = encrypted(&payload, &iv)?;
        Ciphertext::new(CipherMode::AesCbcPkcs5Sha256, iv, None, data)
            .map_err(|e| KmipError::Protocol(e.to_string()))
    }

    async fn decrypt_gcm(
        &self,
        uid: &str,
        ct: &Ciphertext,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KmipError> {
        let params = crypto_params(value::MODE_GCM, None, Some(GCM_TAG));
        let mut fields = vec![
            uid_item(uid),
            params,
            Item::bytes(tag::DATA, ct.data()),
            Item::bytes(tag::IV_COUNTER_NONCE, ct.iv()),
        ];
        // The specification's order: additional data, then the tag.
        fields.extend(aad_item(aad));
        fields.push(Item::bytes(
            tag::AUTHENTICATED_ENCRYPTION_TAG,
            ct.tag().unwrap_or_default(),
        ));
        let payload = self
            .call(ProtocolVersion::V1_4, op::DECRYPT, fields)
            .await?;
        decrypted(&payload)
    }

    async fn decrypt_cbc(
        &self,
        uid: &str,
        ct: &Ciphertext,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KmipError> {
        let params = crypto_params(value::MODE_CBC, Some(value::PADDING_PKCS5), None);
        let payload = self
            .call(
                ProtocolVersion::V1_2,
                op::DECRYPT,
                vec![
                    uid_item(uid),
                    params,
                    Item::bytes(tag::DATA, ct.data()),
                    Item::bytes(tag::IV_COUNTER_NONCE, ct.iv()),
                ],
            )
            .await?;
        ciphertext::strip_check(decrypted(&payload)?, aad).ok_or(KmipError::Integrity)
    }

    /// Servers answer a key in the wrong state with Permission Denied or Illegal Operation
    /// (PyKMIP: "must be in the Active state"), as they do for access control. When the
    /// key's state does not allow the operation, say `WrongState`; otherwise keep the error.
    async fn explained<T>(
        &self,
        uid: &str,
        result: Result<T, KmipError>,
        allowed: impl Fn(State) -> bool,
    ) -> Result<T, KmipError> {
        let err = match result {
            Err(
                e @ KmipError::Refused {
                    reason: reason::PERMISSION_DENIED | reason::ILLEGAL_OPERATION,
                    ..
                },
            ) => e,
            other => return other,
        };
        match self.get_state(uid).await {
            Ok(state) if !allowed(state) => Err(KmipError::WrongState {
                state: Some(state),
                message: match err {
                    KmipError::Refused { message, .. } => message,
                    _ => String::new(),
                },
            }),
            _ => Err(err),
        }
    }

    /// Asks which protocol versions the server speaks, on the first connection; a server
    /// without Discover Versions (KMIP 1.0) is taken to speak 1.2 only.
    async fn discover_versions(&self) -> Result<(Vec<ProtocolVersion>, TlsInfo), KmipError> {
        let request = encode(ProtocolVersion::V1_2, op::DISCOVER_VERSIONS, vec![])?;
        let (response, info) = self.round_trip(&request).await?;
        let versions = match outcome(&response, op::DISCOVER_VERSIONS)? {
            Outcome::Success(payload) => payload
                .children_with(tag::PROTOCOL_VERSION)
                .map(ProtocolVersion::from_item)
                .collect::<Result<Vec<_>, _>>()
                .map_err(KmipError::Protocol)?,
            Outcome::Failed {
                reason: reason::OPERATION_NOT_SUPPORTED,
                ..
            } => Vec::new(),
            Outcome::Failed { reason, message } => {
                return Err(KmipError::from_result(reason, message));
            }
        };
        if versions.is_empty() {
            return Ok((vec![ProtocolVersion::V1_2], info));
        }
        Ok((versions, info))
    }

    /// One request, one response payload; an Operation Failed result becomes the error.
    async fn call(
        &self,
        version: ProtocolVersion,
        operation: u32,
        payload: Vec<Item>,
    ) -> Result<Item, KmipError> {
        let request = encode(version, operation, payload)?;
        let (response, _) = self.round_trip(&request).await?;
        match outcome(&response, operation)? {
            Outcome::Success(payload) => Ok(payload),
            Outcome::Failed { reason, message } => Err(KmipError::from_result(reason, message)),
        }
    }

    /// Sends a request on a new connection and reads the response, within the call timeout.
    async fn round_trip(&self, request: &[u8]) -> Result<(Zeroizing<Vec<u8>>, TlsInfo), KmipError> {
        let work = async {
            let mut stream = self.open().await?;
            let (_, conn) = stream.get_ref();
            let info = TlsInfo {
                protocol: conn
                    .protocol_version()
                    .map_or_else(String::new, |v| format!("{v:?}")),
                cipher_suite: conn
                    .negotiated_cipher_suite()
                    .map_or_else(String::new, |s| format!("{:?}", s.suite())),
            };
            let lost = |e| self.unreachable("sending the request", e);
            stream.write_all(request).await.map_err(lost)?;
            stream.flush().await.map_err(lost)?;
            let response = self.read_message(&mut stream).await?;
            // close_notify, for an orderly end. The answer is in hand whatever happens, so a
            // peer that stops reading costs at most a moment, not the call.
            let _ = tokio::time::timeout(CLOSE_WAIT, stream.shutdown()).await;
            Ok((response, info))
        };
        self.bounded(self.request_timeout, "the call", work).await
    }

    /// A new TCP connection and TLS handshake, each within the connect timeout.
    async fn open(&self) -> Result<TlsStream<TcpStream>, KmipError> {
        let address = (self.host.as_str(), self.port);
        let connect = async {
            TcpStream::connect(address)
                .await
                .map_err(|e| self.unreachable("connecting", e))
        };
        let tcp = self
            .bounded(self.connect_timeout, "connecting", connect)
            .await?;
        // Requests are single small writes; do not hold them back.
        let _ = tcp.set_nodelay(true);
        let handshake = async {
            self.connector
                .connect(self.server_name.clone(), tcp)
                .await
                .map_err(|e| self.unreachable("TLS handshake", e))
        };
        self.bounded(self.connect_timeout, "the TLS handshake", handshake)
            .await
    }

    /// Reads one TTLV message, whose header says how long it is (at most 1 MiB).
    async fn read_message(
        &self,
        stream: &mut TlsStream<TcpStream>,
    ) -> Result<Zeroizing<Vec<u8>>, KmipError> {
        let mut header = [0u8; HEADER_LEN];
        let lost = |e| self.unreachable("reading the response", e);
        stream.read_exact(&mut header).await.map_err(lost)?;
        let total = ttlv::message_len(&header).map_err(|e| KmipError::Protocol(e.to_string()))?;
        let mut message = Zeroizing::new(vec![0u8; total]);
        message[..HEADER_LEN].copy_from_slice(&header);
        stream
            .read_exact(&mut message[HEADER_LEN..])
            .await
            .map_err(lost)?;
        Ok(message)
    }

    async fn bounded<T>(
        &self,
        limit: Duration,
        what: &str,
        work: impl Future<Output = Result<T, KmipError>>,
    ) -> Result<T, KmipError> {
        tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
            Err(KmipError::Unreachable(format!(
                "{what} with {}:{} took longer than {limit:?}",
                self.host, self.port
            )))
        })
    }

    fn unreachable(&self, what: &str, e: std::io::Error) -> KmipError {
        KmipError::Unreachable(format!("{what} with {}:{}: {e}", self.host, self.port))
    }
}

/// Whether an Encrypt error says "not GCM" rather than "not this key" or "not now".
fn refuses_gcm(e: &KmipError) -> bool {
    matches!(
        e,
        KmipError::Refused {
            reason: reason::INVALID_MESSAGE
                | reason::OPERATION_NOT_SUPPORTED
                | reason::INVALID_FIELD
                | reason::FEATURE_NOT_SUPPORTED
                | reason::CRYPTOGRAPHIC_FAILURE
                | reason::BAD_CRYPTOGRAPHIC_PARAMETERS,
            ..
        }
    )
}

fn encode(
    version: ProtocolVersion,
    operation: u32,
    payload: Vec<Item>,
) -> Result<Zeroizing<Vec<u8>>, KmipError> {
    proto::request(version, operation, payload)
        .encode()
        .map_err(|e| KmipError::Protocol(format!("the request cannot be sent: {e}")))
}

fn outcome(response: &[u8], operation: u32) -> Result<Outcome, KmipError> {
    let message = ttlv::decode(response).map_err(|e| KmipError::Protocol(e.to_string()))?;
    proto::parse_response(message, operation).map_err(KmipError::Protocol)
}

/// The GCM additional data, if any (KMIP 1.4).
fn aad_item(aad: &[u8]) -> Option<Item> {
    (!aad.is_empty()).then(|| Item::bytes(tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, aad))
}

fn uid_item(uid: &str) -> Item {
    Item::text(tag::UNIQUE_IDENTIFIER, uid)
}

fn uid_of(payload: &Item) -> Result<String, KmipError> {
    proto::text(payload, tag::UNIQUE_IDENTIFIER)
        .map(str::to_owned)
        .map_err(KmipError::Protocol)
}

/// Cryptographic Parameters for AES, in the order the specification gives.
fn crypto_params(mode: u32, padding: Option<u32>, tag_len: Option<usize>) -> Item {
    let mut fields = vec![Item::enumeration(tag::BLOCK_CIPHER_MODE, mode)];
    fields.extend(padding.map(|p| Item::enumeration(tag::PADDING_METHOD, p)));
    fields.push(Item::enumeration(
        tag::CRYPTOGRAPHIC_ALGORITHM,
        value::ALGORITHM_AES,
    ));
    fields.extend(tag_len.map(|t| Item::integer(tag::TAG_LENGTH, t as i32)));
    Item::structure(tag::CRYPTOGRAPHIC_PARAMETERS, fields)
}

/// The data and IV of an Encrypt response; the IV sent stands unless the server says it
/// used another.
fn encrypted(payload: &Item, sent_iv: &[u8]) -> Result<(Vec<u8>, Vec<u8>), KmipError> {
    let data = proto::bytes(payload, tag::DATA)
        .map_err(KmipError::Protocol)?
        .ok_or_else(|| KmipError::Protocol("no data in the Encrypt response".into()))?;
    let iv = proto::bytes(payload, tag::IV_COUNTER_NONCE)
        .map_err(KmipError::Protocol)?
        .unwrap_or(sent_iv);
    Ok((data.to_vec(), iv.to_vec()))
}

fn decrypted(payload: &Item) -> Result<Zeroizing<Vec<u8>>, KmipError> {
    proto::bytes(payload, tag::DATA)
        .map_err(KmipError::Protocol)?
        .map(|d| Zeroizing::new(d.to_vec()))
        .ok_or_else(|| KmipError::Protocol("no data in the Decrypt response".into()))
}

fn random<const N: usize>() -> Result<[u8; N], KmipError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)
        .map_err(|e| KmipError::Config(format!("the system's random generator failed: {e}")))?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_about_the_mode_fall_back_to_cbc() {
        let refused = |reason| KmipError::Refused {
            reason,
            message: String::new(),
        };
        for r in [
            reason::INVALID_FIELD,
            reason::FEATURE_NOT_SUPPORTED,
            reason::INVALID_MESSAGE,
            reason::OPERATION_NOT_SUPPORTED,
            reason::CRYPTOGRAPHIC_FAILURE,
            reason::BAD_CRYPTOGRAPHIC_PARAMETERS,
        ] {
            assert!(refuses_gcm(&refused(r)), "{r:#x}");
        }
        for r in [
            reason::PERMISSION_DENIED,
            reason::ILLEGAL_OPERATION,
            reason::GENERAL_FAILURE,
        ] {
            assert!(!refuses_gcm(&refused(r)), "{r:#x}");
        }
        let not_found = KmipError::NotFound {
            message: String::new(),
        };
        assert!(!refuses_gcm(&not_found));
        assert!(!refuses_gcm(&KmipError::Unreachable(String::new())));
        let wrong_state = KmipError::WrongState {
            state: Some(State::Deactivated),
            message: String::new(),
        };
        assert!(!refuses_gcm(&wrong_state));
    }

    #[test]
    fn gcm_parameters_name_the_tag_length_and_cbc_the_padding() {
        let gcm = crypto_params(value::MODE_GCM, None, Some(16));
        let tags: Vec<_> = gcm.children().unwrap().iter().map(|i| i.tag).collect();
        assert_eq!(
            tags,
            [
                tag::BLOCK_CIPHER_MODE,
                tag::CRYPTOGRAPHIC_ALGORITHM,
                tag::TAG_LENGTH
            ]
        );
        let cbc = crypto_params(value::MODE_CBC, Some(value::PADDING_PKCS5), None);
        let tags: Vec<_> = cbc.children().unwrap().iter().map(|i| i.tag).collect();
        assert_eq!(
            tags,
            [
                tag::BLOCK_CIPHER_MODE,
                tag::PADDING_METHOD,
                tag::CRYPTOGRAPHIC_ALGORITHM
            ]
        );
    }

    #[test]
    fn the_config_debug_hides_the_key() {
        let config = KmipConfig::new("h", 1, vec![], vec![], b"-----PRIVATE KEY-----".to_vec());
        assert!(!format!("{config:?}").contains("PRIVATE"));
    }
}
