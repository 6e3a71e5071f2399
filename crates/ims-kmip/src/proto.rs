//! The KMIP message layer: the tags and enumeration values this client uses, request
//! framing (one batch item per message) and response parsing. Field order follows the
//! KMIP 1.x specification, which strict servers (PyKMIP among them) enforce.

use crate::ttlv::{Item, Tag, Value};

/// The tags used (KMIP 1.0–1.4, section 9.1.3.1).
pub(crate) mod tag {
    use crate::ttlv::Tag;

    pub const ATTRIBUTE: Tag = Tag(0x420008);
    pub const ATTRIBUTE_NAME: Tag = Tag(0x42000A);
    pub const ATTRIBUTE_VALUE: Tag = Tag(0x42000B);
    pub const AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA: Tag = Tag(0x4200FE);
    pub const AUTHENTICATED_ENCRYPTION_TAG: Tag = Tag(0x4200FF);
    pub const BATCH_COUNT: Tag = Tag(0x42000D);
    pub const BATCH_ITEM: Tag = Tag(0x42000F);
    pub const BLOCK_CIPHER_MODE: Tag = Tag(0x420011);
    pub const CRYPTOGRAPHIC_ALGORITHM: Tag = Tag(0x420028);
    pub const CRYPTOGRAPHIC_PARAMETERS: Tag = Tag(0x42002B);
    pub const DATA: Tag = Tag(0x4200C2);
    pub const IV_COUNTER_NONCE: Tag = Tag(0x42003D);
    pub const NAME_TYPE: Tag = Tag(0x420054);
    pub const NAME_VALUE: Tag = Tag(0x420055);
    pub const OBJECT_TYPE: Tag = Tag(0x420057);
    pub const OPERATION: Tag = Tag(0x42005C);
    pub const PADDING_METHOD: Tag = Tag(0x42005F);
    pub const PROTOCOL_VERSION: Tag = Tag(0x420069);
    pub const PROTOCOL_VERSION_MAJOR: Tag = Tag(0x42006A);
    pub const PROTOCOL_VERSION_MINOR: Tag = Tag(0x42006B);
    pub const REQUEST_HEADER: Tag = Tag(0x420077);
    pub const REQUEST_MESSAGE: Tag = Tag(0x420078);
    pub const REQUEST_PAYLOAD: Tag = Tag(0x420079);
    pub const RESPONSE_HEADER: Tag = Tag(0x42007A);
    pub const RESPONSE_MESSAGE: Tag = Tag(0x42007B);
    pub const RESPONSE_PAYLOAD: Tag = Tag(0x42007C);
    pub const RESULT_MESSAGE: Tag = Tag(0x42007D);
    pub const RESULT_REASON: Tag = Tag(0x42007E);
    pub const RESULT_STATUS: Tag = Tag(0x42007F);
    pub const REVOCATION_REASON: Tag = Tag(0x420081);
    pub const REVOCATION_REASON_CODE: Tag = Tag(0x420082);
    pub const TAG_LENGTH: Tag = Tag(0x4200CE);
    pub const TEMPLATE_ATTRIBUTE: Tag = Tag(0x420091);
    pub const UNIQUE_IDENTIFIER: Tag = Tag(0x420094);
}

/// Operation values.
pub(crate) mod op {
    pub const CREATE: u32 = 0x01;
    pub const LOCATE: u32 = 0x08;
    pub const GET_ATTRIBUTES: u32 = 0x0B;
    pub const ACTIVATE: u32 = 0x12;
    pub const REVOKE: u32 = 0x13;
    pub const DESTROY: u32 = 0x14;
    pub const DISCOVER_VERSIONS: u32 = 0x1E;
    pub const ENCRYPT: u32 = 0x1F;
    pub const DECRYPT: u32 = 0x20;
}

/// Result Reason values (KMIP 1.x, and the few 2.0 ones a newer server may send).
pub mod reason {
    /// Item Not Found.
    pub const ITEM_NOT_FOUND: u32 = 0x01;
    /// Invalid Message.
    pub const INVALID_MESSAGE: u32 = 0x04;
    /// Operation Not Supported.
    pub const OPERATION_NOT_SUPPORTED: u32 = 0x05;
    /// Invalid Field.
    pub const INVALID_FIELD: u32 = 0x07;
    /// Feature Not Supported.
    pub const FEATURE_NOT_SUPPORTED: u32 = 0x08;
    /// Cryptographic Failure (e.g. an authentication tag that does not verify).
    pub const CRYPTOGRAPHIC_FAILURE: u32 = 0x0A;
    /// Illegal Operation.
    pub const ILLEGAL_OPERATION: u32 = 0x0B;
    /// Permission Denied.
    pub const PERMISSION_DENIED: u32 = 0x0C;
    /// Bad Cryptographic Parameters (KMIP 2.0).
    pub const BAD_CRYPTOGRAPHIC_PARAMETERS: u32 = 0x24;
    /// Object Destroyed (KMIP 2.0).
    pub const OBJECT_DESTROYED: u32 = 0x36;
    /// Object Not Found (KMIP 2.0).
    pub const OBJECT_NOT_FOUND: u32 = 0x37;
    /// Wrong Key Lifecycle State (KMIP 2.0).
    pub const WRONG_KEY_LIFECYCLE_STATE: u32 = 0x43;
    /// General Failure.
    pub const GENERAL_FAILURE: u32 = 0x100;

    /// A readable name for a reason, for error messages.
    pub fn name(reason: u32) -> &'static str {
        match reason {
            ITEM_NOT_FOUND => "Item Not Found",
            0x02 => "Response Too Large",
            0x03 => "Authentication Not Successful",
            INVALID_MESSAGE => "Invalid Message",
            OPERATION_NOT_SUPPORTED => "Operation Not Supported",
            0x06 => "Missing Data",
            INVALID_FIELD => "Invalid Field",
            FEATURE_NOT_SUPPORTED => "Feature Not Supported",
            CRYPTOGRAPHIC_FAILURE => "Cryptographic Failure",
            ILLEGAL_OPERATION => "Illegal Operation",
            PERMISSION_DENIED => "Permission Denied",
            0x0D => "Object Archived",
            BAD_CRYPTOGRAPHIC_PARAMETERS => "Bad Cryptographic Parameters",
            OBJECT_DESTROYED => "Object Destroyed",
            OBJECT_NOT_FOUND => "Object Not Found",
            WRONG_KEY_LIFECYCLE_STATE => "Wrong Key Lifecycle State",
            GENERAL_FAILURE => "General Failure",
            _ => "other",
        }
    }
}

/// Enumeration and mask values for attributes and parameters.
pub(crate) mod value {
    pub const OBJECT_SYMMETRIC_KEY: u32 = 0x02;
    pub const ALGORITHM_AES: u32 = 0x03;
    pub const MODE_CBC: u32 = 0x01;
    pub const MODE_GCM: u32 = 0x09;
    pub const PADDING_PKCS5: u32 = 0x03;
    pub const NAME_UNINTERPRETED_TEXT: u32 = 0x01;
    pub const REVOCATION_CESSATION_OF_OPERATION: u32 = 0x06;
    /// Encrypt | Decrypt | Wrap Key | Unwrap Key.
    pub const USAGE_ENCRYPT_DECRYPT_WRAP_UNWRAP: i32 = 0x04 | 0x08 | 0x10 | 0x20;
    pub const STATUS_SUCCESS: u32 = 0;
    pub const STATUS_FAILED: u32 = 1;
}

/// A KMIP protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion {
    /// The major version (1 or 2).
    pub major: i32,
    /// The minor version.
    pub minor: i32,
}

impl ProtocolVersion {
    /// KMIP 1.2: every operation this client needs except AES-GCM.
    pub const V1_2: ProtocolVersion = ProtocolVersion { major: 1, minor: 2 };
    /// KMIP 1.4: the first version with an Authenticated Encryption Tag, which GCM needs.
    pub const V1_4: ProtocolVersion = ProtocolVersion { major: 1, minor: 4 };

    fn item(self) -> Item {
        Item::structure(
            tag::PROTOCOL_VERSION,
            vec![
                Item::integer(tag::PROTOCOL_VERSION_MAJOR, self.major),
                Item::integer(tag::PROTOCOL_VERSION_MINOR, self.minor),
            ],
        )
    }

    /// Reads a Protocol Version structure.
    pub(crate) fn from_item(item: &Item) -> Result<Self, String> {
        let int = |t: Tag| match item.child(t).map(|i| &i.value) {
            Some(Value::Integer(v)) => Ok(*v),
            _ => Err("a protocol version without major/minor integers".to_owned()),
        };
        Ok(ProtocolVersion {
            major: int(tag::PROTOCOL_VERSION_MAJOR)?,
            minor: int(tag::PROTOCOL_VERSION_MINOR)?,
        })
    }
}

impl std::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A request message with one batch item.
pub(crate) fn request(version: ProtocolVersion, operation: u32, payload: Vec<Item>) -> Item {
    Item::structure(
        tag::REQUEST_MESSAGE,
        vec![
            Item::structure(
                tag::REQUEST_HEADER,
                vec![version.item(), Item::integer(tag::BATCH_COUNT, 1)],
            ),
            Item::structure(
                tag::BATCH_ITEM,
                vec![
                    Item::enumeration(tag::OPERATION, operation),
                    Item::structure(tag::REQUEST_PAYLOAD, payload),
                ],
            ),
        ],
    )
}

/// What the server answered to one request.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Success, with the response payload (an empty structure if the server sent none).
    Success(Item),
    /// Operation Failed, with the result reason and message.
    Failed {
        /// The Result Reason (General Failure if absent).
        reason: u32,
        /// The Result Message ("" if absent).
        message: String,
    },
}

/// Reads a response message to a request for `operation`. An `Err` is a message that does
/// not follow the protocol.
pub(crate) fn parse_response(message: Item, operation: u32) -> Result<Outcome, String> {
    if message.tag != tag::RESPONSE_MESSAGE {
        return Err(format!(
            "expected a Response Message, got {:?}",
            message.tag
        ));
    }
    let header = message
        .child(tag::RESPONSE_HEADER)
        .ok_or("a response without a header")?;
    match header.child(tag::BATCH_COUNT).map(|i| &i.value) {
        Some(Value::Integer(1)) => {}
        other => return Err(format!("a batch count of {other:?}, expected 1")),
    }
    let mut items = message.children_with(tag::BATCH_ITEM);
    let item = items.next().ok_or("a response without a batch item")?;
    if items.next().is_some() {
        return Err("more than one batch item in the response".to_owned());
    }
    if let Some(op) = item.child(tag::OPERATION)
        && op.value != Value::Enumeration(operation)
    {
        return Err(format!("a response for operation {:?}", op.value));
    }
    outcome(item)
}

/// The result of one response batch item.
fn outcome(item: &Item) -> Result<Outcome, String> {
    let status = match item.child(tag::RESULT_STATUS).map(|i| &i.value) {
        Some(Value::Enumeration(s)) => *s,
        _ => return Err("a batch item without a result status".to_owned()),
    };
    match status {
        value::STATUS_SUCCESS => Ok(Outcome::Success(
            item.child(tag::RESPONSE_PAYLOAD)
                .cloned()
                .unwrap_or_else(|| Item::structure(tag::RESPONSE_PAYLOAD, vec![])),
        )),
        value::STATUS_FAILED => Ok(Outcome::Failed {
            reason: match item.child(tag::RESULT_REASON).map(|i| &i.value) {
                Some(Value::Enumeration(r)) => *r,
                _ => reason::GENERAL_FAILURE,
            },
            message: match item.child(tag::RESULT_MESSAGE).map(|i| &i.value) {
                Some(Value::TextString(m)) => m.clone(),
                _ => String::new(),
            },
        }),
        // Pending (asynchronous) and Undone (batch undo) never answer a lone synchronous
        // request.
        other => Err(format!("an unexpected result status {other}")),
    }
}

/// An attribute (KMIP 1.x: name and value, no index).
pub(crate) fn attribute(name: &str, value: Value) -> Item {
    Item::structure(
        tag::ATTRIBUTE,
        vec![
            Item::text(tag::ATTRIBUTE_NAME, name),
            Item::new(tag::ATTRIBUTE_VALUE, value),
        ],
    )
}

/// The Name attribute's value: a text name of type "uninterpreted text string".
pub(crate) fn name_value(name: &str) -> Value {
    Value::Structure(vec![
        Item::text(tag::NAME_VALUE, name),
        Item::enumeration(tag::NAME_TYPE, value::NAME_UNINTERPRETED_TEXT),
    ])
}

/// The text child `t` of a payload.
pub(crate) fn text(payload: &Item, t: Tag) -> Result<&str, String> {
    match payload.child(t).map(|i| &i.value) {
        Some(Value::TextString(s)) => Ok(s),
        _ => Err(format!("no text {t:?} in the response payload")),
    }
}

/// The byte-string child `t` of a payload, if there is one.
pub(crate) fn bytes(payload: &Item, t: Tag) -> Result<Option<&[u8]>, String> {
    match payload.child(t).map(|i| &i.value) {
        None => Ok(None),
        Some(Value::ByteString(b)) => Ok(Some(b)),
        Some(_) => Err(format!(
            "{t:?} in the response payload is not a byte string"
        )),
    }
}

#[cfg(test)]
mod tests;
