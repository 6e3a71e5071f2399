//! The client's errors, typed by what a caller does about them.

use crate::proto::reason;

/// A key's lifecycle state (KMIP 1.x).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Created, not yet usable.
    PreActive,
    /// Usable for cryptography.
    Active,
    /// Revoked: no longer usable to protect data.
    Deactivated,
    /// Revoked as compromised.
    Compromised,
    /// Key material destroyed (the object may remain).
    Destroyed,
    /// Destroyed after being compromised.
    DestroyedCompromised,
}

impl State {
    /// The state for a KMIP State enumeration value.
    pub fn from_kmip(v: u32) -> Option<State> {
        Some(match v {
            1 => State::PreActive,
            2 => State::Active,
            3 => State::Deactivated,
            4 => State::Compromised,
            5 => State::Destroyed,
            6 => State::DestroyedCompromised,
            _ => return None,
        })
    }
}

/// Why a KMIP call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmipError {
    /// The object does not exist, or no longer does (KMIP Item Not Found).
    #[error("KMIP object not found: {message}")]
    NotFound {
        /// The server's message.
        message: String,
    },
    /// The object is not in a state that allows the operation (e.g. Encrypt with a key
    /// that is not Active). `state` is the state read back from the server, when it could be.
    #[error("KMIP object is in the wrong state ({state:?}): {message}")]
    WrongState {
        /// The object's state, if known.
        state: Option<State>,
        /// The server's message.
        message: String,
    },
    /// The server refused the request for another reason.
    #[error("KMIP server refused the request ({}, 0x{reason:X}): {message}", reason::name(*reason))]
    Refused {
        /// The KMIP Result Reason (see [`crate::reason`]).
        reason: u32,
        /// The server's message.
        message: String,
    },
    /// The ciphertext did not authenticate: it was altered, or belongs to another key.
    #[error("KMIP ciphertext failed authentication")]
    Integrity,
    /// No answer: connection refused, TLS handshake failed (including a client certificate
    /// the server does not accept), connection lost, or timeout.
    #[error("KMIP server unreachable: {0}")]
    Unreachable(String),
    /// The server's answer does not follow the protocol.
    #[error("malformed KMIP response: {0}")]
    Protocol(String),
    /// The client configuration is unusable (certificates, key, host name).
    #[error("invalid KMIP client configuration: {0}")]
    Config(String),
}

impl KmipError {
    /// The error for an Operation Failed result. Permission Denied and Illegal Operation
    /// stay `Refused` here; the client may turn them into `WrongState` after reading the
    /// object's state.
    pub(crate) fn from_result(reason: u32, message: String) -> Self {
        match reason {
            reason::ITEM_NOT_FOUND | reason::OBJECT_NOT_FOUND | reason::OBJECT_DESTROYED => {
                KmipError::NotFound { message }
            }
            reason::WRONG_KEY_LIFECYCLE_STATE => KmipError::WrongState {
                state: None,
                message,
            },
            _ => KmipError::Refused { reason, message },
        }
    }
}
