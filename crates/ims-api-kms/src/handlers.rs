//! One handler per KMS operation: read the request, call one `KeyService` use case,
//! render the answer.

use axum::Json;
use axum::extract::{FromRequest, Path, Request, State};
use ims_domain::Error;
use ims_domain::key::rules::datakey_bytes;
use ims_domain::key::{KeyChange, WrappedDataKey};
use ims_domain::principal::Principal;
use ims_http::Services;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::KmsError;
use crate::wire::{self, number};

type Res = Result<Json<Value>, KmsError>;

/// The authenticated caller (AK/SK signature or `X-Auth-Token`) and the JSON body.
pub struct Signed {
    who: Principal,
    body: Map<String, Value>,
}

impl FromRequest<Services> for Signed {
    type Rejection = KmsError;

    async fn from_request(req: Request, svc: &Services) -> Result<Self, Self::Rejection> {
        let (who, body) = ims_http::signed::authenticate_with_body(svc, req).await?;
        let body = if body.is_empty() {
            Map::new()
        } else {
            serde_json::from_slice(&body).map_err(|e| {
                KmsError::bad(
                    "KMS.0202",
                    format!("The request body is not a JSON object: {e}"),
                )
            })?
        };
        Ok(Signed { who, body })
    }
}

impl Signed {
    /// The body as `T`; a body that does not fit is `KMS.0308`.
    fn parse<T: for<'de> Deserialize<'de>>(&self) -> Result<T, KmsError> {
        serde_json::from_value(Value::Object(self.body.clone()))
            .map_err(|e| KmsError::bad("KMS.0308", format!("Invalid parameter: {e}")))
    }

    /// The `{project_id}` of the path must be the caller's project.
    fn check_project(&self, project_id: &str) -> Result<(), KmsError> {
        if project_id != self.who.project_id {
            return Err(KmsError::bad(
                "KMS.0201",
                "The project ID in the URL is not the caller's project.",
            ));
        }
        Ok(())
    }

    fn number(&self, field: &'static str) -> Result<Option<u64>, KmsError> {
        Ok(number(self.body.get(field), field)?)
    }
}

#[derive(Deserialize)]
struct KeyRef {
    key_id: String,
}

#[derive(Deserialize)]
struct CreateKey {
    key_alias: Option<String>,
    key_description: Option<String>,
    key_spec: Option<String>,
    key_usage: Option<String>,
    origin: Option<String>,
}

#[derive(Deserialize)]
struct ListKeys {
    key_state: Option<String>,
}

#[derive(Deserialize)]
struct DataKeyReq {
    key_id: String,
    key_spec: Option<String>,
    additional_authenticated_data: Option<String>,
}

#[derive(Deserialize)]
struct EncryptReq {
    key_id: String,
    plain_text: String,
    additional_authenticated_data: Option<String>,
}

#[derive(Deserialize)]
struct DecryptReq {
    key_id: String,
    cipher_text: String,
    additional_authenticated_data: Option<String>,
}

fn aad(text: &Option<String>) -> &[u8] {
    text.as_deref().unwrap_or("").as_bytes()
}

fn small(n: Option<u64>, field: &'static str) -> Result<Option<u32>, KmsError> {
    n.map(|n| u32::try_from(n).map_err(|_| Error::field(field, format!("{field} is too large."))))
        .transpose()
        .map_err(KmsError::from)
}

/// `POST …/create-key`.
pub async fn create_key(
    State(svc): State<Services>,
    Path(project_id): Path<String>,
    req: Signed,
) -> Res {
    req.check_project(&project_id)?;
    let body: CreateKey = req.parse()?;
    let alias = body
        .key_alias
        .ok_or_else(|| KmsError::bad("KMS.0204", "key_alias is required."))?;
    let new = ims_domain::key::NewKey {
        alias,
        description: body.key_description,
        spec: body.key_spec,
        usage: body.key_usage,
        origin: body.origin,
    };
    let key = svc.keys.create(&req.who, new).await?;
    Ok(Json(json!({"key_info": {
        "key_id": key.id.to_string(),
        "domain_id": key.project_id,
        "region_id": svc.region.as_ref(),
    }})))
}

/// `POST …/list-keys`: `limit` (1–1000, default 1000 as Huawei's), `marker` (the
/// number of keys before the page), `key_state`.
pub async fn list_keys(
    State(svc): State<Services>,
    Path(project_id): Path<String>,
    req: Signed,
) -> Res {
    req.check_project(&project_id)?;
    let body: ListKeys = req.parse()?;
    let limit = req.number("limit")?.unwrap_or(1000);
    if !(1..=1000).contains(&limit) {
        return Err(KmsError::bad(
            "KMS.1601",
            "limit must be between 1 and 1000.",
        ));
    }
    let offset = req.number("marker")?.unwrap_or(0);
    let state = match body.key_state.as_deref() {
        None | Some("") => None,
        Some(code) => match wire::state_of(code) {
            Some(state) => Some(state),
            // A state ims never holds keys in (pending activation, import…): no keys.
            None if matches!(code, "1" | "5" | "7") => return Ok(Json(empty_page())),
            None => return Err(KmsError::bad("KMS.0308", "key_state is invalid.")),
        },
    };
    let page = svc.keys.list(&req.who, state, offset, limit).await?;
    let next = offset + page.keys.len() as u64;
    let truncated = next < page.total;
    Ok(Json(json!({
        "keys": page.keys.iter().map(|k| k.id.to_string()).collect::<Vec<_>>(),
        "key_details": page.keys.iter().map(|k| wire::details(k, &svc.region)).collect::<Vec<_>>(),
        "next_marker": if truncated { next.to_string() } else { String::new() },
        "truncated": truncated.to_string(),
        "total": page.total,
    })))
}

fn empty_page() -> Value {
    json!({"keys": [], "key_details": [], "next_marker": "", "truncated": "false", "total": 0})
}

/// `POST …/describe-key`.
pub async fn describe_key(
    State(svc): State<Services>,
    Path(project_id): Path<String>,
    req: Signed,
) -> Res {
    req.check_project(&project_id)?;
    let body: KeyRef = req.parse()?;
    let key = svc.keys.get(&req.who, &body.key_id).await?;
    Ok(Json(json!({"key_info": wire::details(&key, &svc.region)})))
}

/// Applies a state change to the key the body names; a key in the wrong state for it is
/// `conflict` (the operation's own code). Returns the key and its id and state as KMS
/// shows them.
async fn change_key(
    svc: &Services,
    project_id: &str,
    req: &Signed,
    change: KeyChange,
    conflict: &'static str,
) -> Result<Value, KmsError> {
    req.check_project(project_id)?;
    let body: KeyRef = req.parse()?;
    let key = svc
        .keys
        .change(&req.who, &body.key_id, change)
        .await
        .map_err(|e| KmsError::state(e, conflict))?;
    Ok(json!({
        "key_id": key.id.to_string(),
        "key_state": wire::state_code(key.state),
    }))
}

/// `POST …/enable-key` (only a disabled key: `KMS.1201` otherwise).
pub async fn enable_key(
    State(svc): State<Services>,
    Path(project_id): Path<String>,
    req: Signed,
) -> Res {
    let key = change_key(&svc, &project_id, &req, KeyChange::Enable, "KMS.1201").await?;
    Ok(Json(json!({ "key_info": key })))
}

/// `POST …/disable-key` (only an enabled key: `KMS.1301` otherwise).
pub async fn disable_key(
    State(svc): State<Services>,
    Path(project_id): Path<String>,
    req: Signed,
) -> Res {
    let key = change_key(&svc, &project_id, &req, KeyChange::Disable, "KMS.1301").await?;
    Ok(Json(json!({ "key_info": key })))
}

/// `POST …/schedule-key-deletion` (`pending_days` 7–1096; `KMS.1402` when pending).
pub async fn schedule_key_deletion(
    State(svc): State<Services>,
    Path(project_id): Path<String>,
    req: Signed,
) -> Res {
    let days = small(req.number("pending_days")?, "pending_days")?
        .ok_or_else(|| KmsError::bad("KMS.0204", "pending_days is required."))?;
    let change = KeyChange::ScheduleDeletion { days };
    Ok(Json(
        change_key(&svc, &project_id, &req, change, "KMS.1402").await?,
    ))
}

/// `POST …/cancel-key-deletion` (`KMS.1501` unless pending deletion); the key comes
/// back disabled.
pub async fn cancel_key_deletion(
    State(svc): State<Services>,
    Path(project_id): Path<String>,
    req: Signed,
) -> Res {
    let change = KeyChange::CancelDeletion;
    Ok(Json(
        change_key(&svc, &project_id, &req, change, "KMS.1501").await?,
    ))
}

/// Makes a data key for `create-datakey` and its variant without plaintext.
async fn new_datakey(
    svc: &Services,
    req: &Signed,
) -> Result<(Zeroizing<Vec<u8>>, WrappedDataKey), KmsError> {
    let body: DataKeyReq = req.parse()?;
    let bits = small(req.number("datakey_length")?, "datakey_length")?;
    let bytes = datakey_bytes(bits, body.key_spec.as_deref())?;
    let aad = aad(&body.additional_authenticated_data);
    Ok(svc
        .keys
        .generate_data_key(&req.who, &body.key_id, bytes, aad)
        .await?)
}

/// `POST …/create-datakey`: the data key in hex and wrapped.
pub async fn create_datakey(
    State(svc): State<Services>,
    Path(project_id): Path<String>,
    req: Signed,
) -> Res {
    req.check_project(&project_id)?;
    let (plain, wrapped) = new_datakey(&svc, &req).await?;
    Ok(Json(json!({
        "key_id": wrapped.key_id.to_string(),
        "plain_text": hex::encode_upper(plain.as_slice()),
        "cipher_text": wrapped.to_hex(),
    })))
}

/// `POST …/create-datakey-without-plaintext`.
pub async fn create_datakey_without_plaintext(
    State(svc): State<Services>,
    Path(project_id): Path<String>,
    req: Signed,
) -> Res {
    req.check_project(&project_id)?;
    let (_, wrapped) = new_datakey(&svc, &req).await?;
    Ok(Json(json!({
        "key_id": wrapped.key_id.to_string(),
        "cipher_text": wrapped.to_hex(),
    })))
}

/// `POST …/encrypt-datakey`: `plain_text` is hex of the data key followed by its
/// SHA-256, `datakey_plain_length` the data key's length in bytes.
pub async fn encrypt_datakey(
    State(svc): State<Services>,
    Path(project_id): Path<String>,
    req: Signed,
) -> Res {
    req.check_project(&project_id)?;
    let body: EncryptReq = req.parse()?;
    let length = req
        .number("datakey_plain_length")?
        .ok_or_else(|| KmsError::bad("KMS.0204", "datakey_plain_length is required."))?;
    let plain = Zeroizing::new(
        hex::decode(&body.plain_text)
            .map_err(|_| KmsError::bad("KMS.2101", "plain_text is not hex."))?,
    );
    let dek = split_digest(&plain, length)?;
    let wrapped = svc
        .keys
        .wrap_data_key(
            &req.who,
            &body.key_id,
            dek,
            aad(&body.additional_authenticated_data),
        )
        .await?;
    Ok(Json(json!({
        "key_id": wrapped.key_id.to_string(),
        "cipher_text": wrapped.to_hex(),
        "datakey_length": dek.len().to_string(),
    })))
}

/// The data key of `data key ‖ SHA-256(data key)`, checked against `length`.
fn split_digest(plain: &[u8], length: u64) -> Result<&[u8], KmsError> {
    let length = usize::try_from(length).unwrap_or(usize::MAX);
    if plain.len() < 32 || plain.len() - 32 != length {
        return Err(KmsError::bad(
            "KMS.2104",
            "datakey_plain_length does not match plain_text.",
        ));
    }
    let (dek, digest) = plain.split_at(length);
    if Sha256::digest(dek).as_slice() != digest {
        return Err(KmsError::bad(
            "KMS.2103",
            "The SHA-256 digest in plain_text does not match the data key.",
        ));
    }
    Ok(dek)
}

/// `POST …/decrypt-datakey`: `datakey_cipher_length` is the data key's length in bytes.
pub async fn decrypt_datakey(
    State(svc): State<Services>,
    Path(project_id): Path<String>,
    req: Signed,
) -> Res {
    req.check_project(&project_id)?;
    let body: DecryptReq = req.parse()?;
    let length = req.number("datakey_cipher_length")?;
    let wrapped = WrappedDataKey::from_hex(&body.cipher_text)?;
    let dek = svc
        .keys
        .unwrap_data_key(
            &req.who,
            &body.key_id,
            &wrapped,
            aad(&body.additional_authenticated_data),
        )
        .await?;
    if length.is_some_and(|n| n != dek.len() as u64) {
        return Err(KmsError::bad(
            "KMS.2202",
            "datakey_cipher_length does not match the data key.",
        ));
    }
    Ok(Json(json!({
        "data_key": hex::encode_upper(dek.as_slice()),
        "datakey_length": dek.len().to_string(),
        "datakey_dgst": hex::encode_upper(Sha256::digest(dek.as_slice())),
    })))
}
