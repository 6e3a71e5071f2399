//! KMS's wire shapes: every value a string (numbers too), timestamps in milliseconds,
//! key states as Huawei's digits.

use ims_domain::Error;
use ims_domain::key::{Key, KeyState};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// Huawei's digit for a key state.
pub fn state_code(state: KeyState) -> &'static str {
    match state {
        KeyState::Enabled => "2",
        KeyState::Disabled => "3",
        KeyState::PendingDeletion => "4",
    }
}

/// The state a `key_state` filter names; `None` for states ims never has keys in.
pub fn state_of(code: &str) -> Option<KeyState> {
    match code {
        "2" => Some(KeyState::Enabled),
        "3" => Some(KeyState::Disabled),
        "4" => Some(KeyState::PendingDeletion),
        _ => None,
    }
}

fn millis(t: OffsetDateTime) -> String {
    (t.unix_timestamp_nanos() / 1_000_000).to_string()
}

/// A key's `KeyDetails`.
pub fn details(key: &Key, region: &str) -> Value {
    json!({
        "key_id": key.id.to_string(),
        "domain_id": key.project_id,
        "key_alias": key.alias,
        "realm": region,
        "key_spec": key.spec,
        "key_usage": key.usage,
        "key_description": key.description,
        "creation_date": millis(key.created_at),
        "scheduled_deletion_date": key.deletion_at.map(millis).unwrap_or_default(),
        "key_state": state_code(key.state),
        "default_key_flag": if key.default_key { "1" } else { "0" },
        "key_type": "1",
        "expiration_time": "",
        "origin": key.origin,
        "key_rotation_enabled": "false",
        "sys_enterprise_project_id": "0",
        "keystore_id": "0",
    })
}

/// A number KMS sends as a string (SDKs) or a JSON number (hand-written calls);
/// anything else is an invalid `field`.
pub fn number(value: Option<&Value>, field: &'static str) -> Result<Option<u64>, Error> {
    let bad = || Error::field(field, format!("{field} must be a whole number."));
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(bad),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}
