//! Request framing against bytes worked out by hand, and response parsing.

use super::*;
use crate::ttlv::decode;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

#[test]
fn an_activate_request_is_framed_as_the_specification_lays_out() {
    // Request Message (112 bytes of value)
    //   Request Header (56): Protocol Version (32: major 1, minor 2), Batch Count 1
    //   Batch Item (40): Operation Activate (0x12), Request Payload (16): Unique Identifier "1"
    let expected = hex("42 00 78 01 00 00 00 70 \
           42 00 77 01 00 00 00 38 \
             42 00 69 01 00 00 00 20 \
               42 00 6A 02 00 00 00 04 00 00 00 01 00 00 00 00 \
               42 00 6B 02 00 00 00 04 00 00 00 02 00 00 00 00 \
             42 00 0D 02 00 00 00 04 00 00 00 01 00 00 00 00 \
           42 00 0F 01 00 00 00 28 \
             42 00 5C 05 00 00 00 04 00 00 00 12 00 00 00 00 \
             42 00 79 01 00 00 00 10 \
               42 00 94 07 00 00 00 01 31 00 00 00 00 00 00 00");
    let req = request(
        ProtocolVersion::V1_2,
        op::ACTIVATE,
        vec![Item::text(tag::UNIQUE_IDENTIFIER, "1")],
    );
    assert_eq!(req.encode().unwrap().as_slice(), expected.as_slice());
}

/// A response message with one batch item made of `fields`.
fn response(batch_count: i32, fields: Vec<Item>) -> Item {
    Item::structure(
        tag::RESPONSE_MESSAGE,
        vec![
            Item::structure(
                tag::RESPONSE_HEADER,
                vec![
                    ProtocolVersion::V1_2.item(),
                    Item::new(Tag(0x420092), Value::DateTime(1_700_000_000)),
                    Item::integer(tag::BATCH_COUNT, batch_count),
                ],
            ),
            Item::structure(tag::BATCH_ITEM, fields),
        ],
    )
}

/// Encodes and decodes, as the client does with what it reads.
fn wire(item: Item) -> Item {
    decode(&item.encode().unwrap()).unwrap()
}

#[test]
fn a_success_carries_its_payload() {
    let msg = wire(response(
        1,
        vec![
            Item::enumeration(tag::OPERATION, op::ACTIVATE),
            Item::enumeration(tag::RESULT_STATUS, 0),
            Item::structure(
                tag::RESPONSE_PAYLOAD,
                vec![Item::text(tag::UNIQUE_IDENTIFIER, "7")],
            ),
        ],
    ));
    match parse_response(msg, op::ACTIVATE).unwrap() {
        Outcome::Success(p) => assert_eq!(text(&p, tag::UNIQUE_IDENTIFIER).unwrap(), "7"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_success_without_payload_has_an_empty_one() {
    let msg = response(1, vec![Item::enumeration(tag::RESULT_STATUS, 0)]);
    match parse_response(msg, op::DESTROY).unwrap() {
        Outcome::Success(p) => assert_eq!(p.children().unwrap().len(), 0),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failure_carries_reason_and_message() {
    let msg = response(
        1,
        vec![
            Item::enumeration(tag::OPERATION, op::ENCRYPT),
            Item::enumeration(tag::RESULT_STATUS, 1),
            Item::enumeration(tag::RESULT_REASON, reason::PERMISSION_DENIED),
            Item::text(tag::RESULT_MESSAGE, "must be Active"),
        ],
    );
    match parse_response(msg, op::ENCRYPT).unwrap() {
        Outcome::Failed { reason, message } => {
            assert_eq!(reason, reason::PERMISSION_DENIED);
            assert_eq!(message, "must be Active");
        }
        other => panic!("{other:?}"),
    }
    // Without a reason or message.
    let msg = response(1, vec![Item::enumeration(tag::RESULT_STATUS, 1)]);
    assert!(matches!(
        parse_response(msg, op::ENCRYPT).unwrap(),
        Outcome::Failed {
            reason: reason::GENERAL_FAILURE,
            ..
        }
    ));
}

#[test]
fn responses_off_the_protocol_are_errors() {
    let ok = vec![Item::enumeration(tag::RESULT_STATUS, 0)];
    assert!(parse_response(response(2, ok.clone()), op::LOCATE).is_err());
    let wrong_op = vec![
        Item::enumeration(tag::OPERATION, op::CREATE),
        Item::enumeration(tag::RESULT_STATUS, 0),
    ];
    assert!(parse_response(response(1, wrong_op), op::LOCATE).is_err());
    let pending = vec![Item::enumeration(tag::RESULT_STATUS, 2)];
    assert!(parse_response(response(1, pending), op::LOCATE).is_err());
    assert!(parse_response(response(1, vec![]), op::LOCATE).is_err());
    let not_a_response = request(ProtocolVersion::V1_2, op::LOCATE, vec![]);
    assert!(parse_response(not_a_response, op::LOCATE).is_err());
    let no_header = Item::structure(tag::RESPONSE_MESSAGE, vec![]);
    assert!(parse_response(no_header, op::LOCATE).is_err());
}

#[test]
fn attributes_are_name_and_value() {
    let a = attribute("Cryptographic Length", Value::Integer(256));
    assert_eq!(
        text(&a, tag::ATTRIBUTE_NAME).unwrap(),
        "Cryptographic Length"
    );
    assert_eq!(
        a.child(tag::ATTRIBUTE_VALUE).unwrap().value,
        Value::Integer(256)
    );
    let n = attribute("Name", name_value("k1"));
    let v = n.child(tag::ATTRIBUTE_VALUE).unwrap();
    assert_eq!(text(v, tag::NAME_VALUE).unwrap(), "k1");
}
