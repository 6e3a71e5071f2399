//! Huawei Cloud `SDK-HMAC-SHA256` request signatures, as huaweicloudsdkcore makes them,
//! verified on the server from the request as received.
//!
//! The canonical request is rebuilt from the client's own `SignedHeaders` list, so any
//! header the client chose to sign (user-agent included) must arrive unchanged. Only the
//! canonicalisation lives here; who owns an access key, and its secret, is the domain's.

use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

/// The only algorithm huaweicloudsdkcore uses by default.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// How far `X-Sdk-Date` may be from the server's clock (Huawei's gateway: 15 minutes).
pub const MAX_SKEW: time::Duration = time::Duration::minutes(15);
/// SHA-256 of the empty string: the payload hash of a request without a body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// RFC 3986 unreserved characters stay; every other byte is `%XX`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The parts of an `Authorization: SDK-HMAC-SHA256 …` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key (AK).
    pub access: String,
    /// Lower-case header names, in the client's order.
    pub signed_headers: Vec<String>,
    /// Lower-case hex signature.
    pub signature: String,
}

/// Why a signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// The header is not an `SDK-HMAC-SHA256` authorization.
    Malformed(&'static str),
    /// `X-Sdk-Date` is missing, unparsable, or too far from now.
    Date(&'static str),
    /// The signature does not match.
    Mismatch,
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureError::Malformed(why) | SignatureError::Date(why) => f.write_str(why),
            SignatureError::Mismatch => f.write_str("the request signature does not match"),
        }
    }
}

/// Parses `SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex`.
pub fn parse_authorization(value: &str) -> Result<Authorization, SignatureError> {
    let rest = value
        .strip_prefix(ALGORITHM)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or(SignatureError::Malformed(
            "the Authorization header is not SDK-HMAC-SHA256",
        ))?;
    let (mut access, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Access", v)) => access = Some(v.to_string()),
            Some(("SignedHeaders", v)) => {
                signed = Some(v.split(';').map(str::to_ascii_lowercase).collect())
            }
            Some(("Signature", v)) => signature = Some(v.to_ascii_lowercase()),
            _ => {
                return Err(SignatureError::Malformed(
                    "the Authorization header has an unknown part",
                ));
            }
        }
    }
    match (access, signed, signature) {
        (Some(access), Some(signed_headers), Some(signature)) if !access.is_empty() => {
            Ok(Authorization {
                access,
                signed_headers,
                signature,
            })
        }
        _ => Err(SignatureError::Malformed(
            "the Authorization header lacks Access, SignedHeaders or Signature",
        )),
    }
}

/// A request as the server received it.
#[derive(Clone, Copy)]
pub struct Received<'a> {
    /// `GET`, `POST`…
    pub method: &'a str,
    /// The raw (still percent-encoded) path.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    /// Looks up a header by lower-case name.
    pub header: &'a (dyn Fn(&str) -> Option<String> + Sync),
    /// Lower-case hex SHA-256 of the body (`None` for an empty body).
    pub body_sha256: Option<&'a str>,
}

/// Percent-decodes `s`, refusing bytes that are not UTF-8: two different invalid
/// sequences must not canonicalise to the same replacement character.
fn decode_utf8(s: &str) -> Result<String, SignatureError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| SignatureError::Malformed("the request URI is not valid UTF-8"))
}

/// The canonical URI: the path fully decoded, each segment re-encoded, a trailing `/`.
pub fn canonical_uri(path: &str) -> Result<String, SignatureError> {
    let decoded = decode_utf8(path)?;
    let mut out: String = decoded
        .split('/')
        .map(|segment| utf8_percent_encode(segment, UNRESERVED).to_string())
        .collect::<Vec<_>>()
        .join("/");
    if !out.ends_with('/') {
        out.push('/');
    }
    Ok(out)
}

/// The canonical query: pairs decoded, re-encoded, sorted by key then value.
///
/// A literal `+` is a space, as the handlers' form decoding reads it (the SDK never sends
/// one; it encodes `+` as `%2B`), so a signature over `a%2Bb` cannot be reused for
/// `a+b`, which the handlers would read as `a b`.
pub fn canonical_query(query: Option<&str>) -> Result<String, SignatureError> {
    let decode = |s: &str| decode_utf8(&s.replace('+', "%20"));
    let encode = |s: &str| utf8_percent_encode(s, UNRESERVED).to_string();
    let mut pairs = Vec::new();
    for p in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        pairs.push((encode(&decode(k)?), encode(&decode(v)?)));
    }
    pairs.sort();
    Ok(pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&"))
}

/// The canonical request for `req`, signed over `auth.signed_headers`.
pub fn canonical_request(
    req: &Received<'_>,
    auth: &Authorization,
) -> Result<String, SignatureError> {
    let mut headers = String::new();
    for name in &auth.signed_headers {
        let value =
            (req.header)(name).ok_or(SignatureError::Malformed("a signed header is missing"))?;
        headers.push_str(&format!("{name}:{}\n", value.trim()));
    }
    let unsigned_payload = wants_unsigned_payload(auth, req.header);
    let payload = match req.body_sha256 {
        None => EMPTY_SHA256.to_string(),
        Some(_) if unsigned_payload => "UNSIGNED-PAYLOAD".to_string(),
        Some(hash) => hash.to_string(),
    };
    Ok(format!(
        "{}\n{}\n{}\n{headers}\n{}\n{payload}",
        req.method.to_ascii_uppercase(),
        canonical_uri(req.path)?,
        canonical_query(req.query)?,
        auth.signed_headers.join(";"),
    ))
}

/// `SDK-HMAC-SHA256\n<date>\n<hex sha256 of the canonical request>`.
pub fn string_to_sign(date: &str, canonical: &str) -> String {
    format!(
        "{ALGORITHM}\n{date}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    )
}

fn mac(secret: &str, data: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(data.as_bytes());
    mac
}

/// The hex signature a client with `secret` would send for `string_to_sign`.
pub fn sign(secret: &str, string_to_sign: &str) -> String {
    hex::encode(mac(secret, string_to_sign).finalize().into_bytes())
}

/// Whether the request asks for `UNSIGNED-PAYLOAD` (honoured only when that header is
/// itself signed).
pub fn wants_unsigned_payload(
    auth: &Authorization,
    header: &dyn Fn(&str) -> Option<String>,
) -> bool {
    auth.signed_headers
        .iter()
        .any(|h| h == "x-sdk-content-sha256")
        && header("x-sdk-content-sha256").is_some_and(|v| v.trim() == "UNSIGNED-PAYLOAD")
}

/// The checks that need neither the body nor the secret, run before either is read:
/// `host` and `x-sdk-date` signed, `x-project-id` signed when the request carries it
/// (otherwise it could be switched in transit to any other project of the key's owner),
/// and `X-Sdk-Date` within [`MAX_SKEW`] of `now`. Returns when the signature expires.
pub fn precheck(
    auth: &Authorization,
    header: &dyn Fn(&str) -> Option<String>,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, SignatureError> {
    for required in ["host", "x-sdk-date"] {
        if !auth.signed_headers.iter().any(|h| h == required) {
            return Err(SignatureError::Malformed(
                "host and x-sdk-date must be signed",
            ));
        }
    }
    if header("x-project-id").is_some() && !auth.signed_headers.iter().any(|h| h == "x-project-id")
    {
        return Err(SignatureError::Malformed(
            "X-Project-Id must be signed when it is sent",
        ));
    }
    let date = header("x-sdk-date").ok_or(SignatureError::Date("X-Sdk-Date is missing"))?;
    let when = time::PrimitiveDateTime::parse(
        date.trim(),
        format_description!("[year][month][day]T[hour][minute][second]Z"),
    )
    .map_err(|_| SignatureError::Date("X-Sdk-Date is not YYYYMMDDTHHMMSSZ"))?
    .assume_utc();
    if (now - when).abs() > MAX_SKEW {
        return Err(SignatureError::Date(
            "X-Sdk-Date is more than 15 minutes from the server's time",
        ));
    }
    Ok(when + MAX_SKEW)
}

/// Verifies a request against the secret of `auth.access`, at time `now`.
pub fn verify(
    req: &Received<'_>,
    auth: &Authorization,
    secret: &str,
    now: OffsetDateTime,
) -> Result<(), SignatureError> {
    precheck(auth, req.header, now)?;
    let date = (req.header)("x-sdk-date").ok_or(SignatureError::Date("X-Sdk-Date is missing"))?;
    let canonical = canonical_request(req, auth)?;
    let expected = hex::decode(&auth.signature).map_err(|_| SignatureError::Mismatch)?;
    mac(secret, &string_to_sign(date.trim(), &canonical))
        .verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const AK: &str = "TESTAK1234567890";
    const SK: &str = "TESTSKabcdefghijklmnopqrstuvwxyz0123456789";
    const PROJECT: &str = "0b1e494e2660441a957313163095fe5c";
    const WHEN: OffsetDateTime = datetime!(2024-01-01 00:00:00 UTC);

    fn headers(content_type: &str, unsigned: bool) -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("content-type", content_type.to_string()),
            ("host", "127.0.0.1:18080".to_string()),
            (
                "user-agent",
                "huaweicloud-usdk-python/3.0; test".to_string(),
            ),
            ("x-project-id", PROJECT.to_string()),
            ("x-sdk-date", "20240101T000000Z".to_string()),
        ];
        if unsigned {
            h.push(("x-sdk-content-sha256", "UNSIGNED-PAYLOAD".to_string()));
        }
        h
    }

    fn auth(unsigned: bool, signature: &str) -> Authorization {
        let list = if unsigned {
            "content-type;host;user-agent;x-project-id;x-sdk-content-sha256;x-sdk-date"
        } else {
            "content-type;host;user-agent;x-project-id;x-sdk-date"
        };
        parse_authorization(&format!(
            "SDK-HMAC-SHA256 Access={AK}, SignedHeaders={list}, Signature={signature}"
        ))
        .unwrap()
    }

    /// Checks one of the reference's captured SDK requests.
    fn check(
        method: &str,
        path: &str,
        query: Option<&str>,
        ct: &str,
        body: &[u8],
        unsigned: bool,
        signature: &str,
    ) {
        let h = headers(ct, unsigned);
        let lookup = |name: &str| h.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
        let body_hash = (!body.is_empty()).then(|| hex::encode(Sha256::digest(body)));
        let req = Received {
            method,
            path,
            query,
            header: &lookup,
            body_sha256: body_hash.as_deref(),
        };
        let a = auth(unsigned, signature);
        assert_eq!(verify(&req, &a, SK, WHEN), Ok(()), "{method} {path}");
        assert_eq!(
            verify(&req, &a, "wrong secret", WHEN),
            Err(SignatureError::Mismatch)
        );
        let late = WHEN + time::Duration::minutes(16);
        assert!(matches!(
            verify(&req, &a, SK, late),
            Err(SignatureError::Date(_))
        ));
    }

    #[test]
    fn vector_1_list_with_query() {
        check(
            "GET",
            "/v2/cloudimages",
            Some("__imagetype=private&limit=10&name=my%20image%2B1"),
            "application/json",
            b"",
            false,
            "9232b3d4755acb93e0cc89c08544ebcda184af697d9ddb686b805c9c02bb2941",
        );
    }

    #[test]
    fn vector_1_canonical_request_and_string_to_sign() {
        let h = headers("application/json", false);
        let lookup = |name: &str| h.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
        let req = Received {
            method: "GET",
            path: "/v2/cloudimages",
            query: Some("__imagetype=private&limit=10&name=my%20image%2B1"),
            header: &lookup,
            body_sha256: None,
        };
        let canonical = canonical_request(&req, &auth(false, "00")).unwrap();
        assert_eq!(
            canonical,
            "GET\n/v2/cloudimages/\n__imagetype=private&limit=10&name=my%20image%2B1\n\
             content-type:application/json\nhost:127.0.0.1:18080\nuser-agent:huaweicloud-usdk-python/3.0; test\n\
             x-project-id:0b1e494e2660441a957313163095fe5c\nx-sdk-date:20240101T000000Z\n\n\
             content-type;host;user-agent;x-project-id;x-sdk-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(
            string_to_sign("20240101T000000Z", &canonical)
                .ends_with("f849365f2421d9e8a5549a2caff441f361a75ff649b349ae29834c441cfa42eb")
        );
    }

    #[test]
    fn vector_2_json_body() {
        let body =
            br#"{"image_url": "bucket-a:dir/disk1.qcow2", "min_disk": 40, "name": "data-img"}"#;
        assert_eq!(
            hex::encode(Sha256::digest(body)),
            "f2b6e9dfaa7739465f848706c7d4dcab2be04e5d9c147f3364f9c02b2ac776aa"
        );
        check(
            "POST",
            "/v1/cloudimages/dataimages/action",
            None,
            "application/json;charset=utf-8",
            body,
            false,
            "46700f4c7660b60ade29e007ea7a018fa342ef20893576705d2978e7a0872ceb",
        );
    }

    #[test]
    fn vector_3_unsigned_payload() {
        check(
            "PATCH",
            "/v2/images/aa5306f7-bc95-4fa3-aa40-dd38fbdf2031",
            None,
            "application/openstack-images-v2.1-json-patch",
            br#"[{"op": "replace", "path": "/name", "value": "n2"}]"#,
            true,
            "3d955a18619f0bdf87f29090f4eca3a3e92d50927317caadc9e356fa1fce4c3b",
        );
    }

    #[test]
    fn canonical_forms_follow_the_sdk() {
        assert_eq!(
            canonical_uri("/v2/x/tags/key%20with%20space%2F%C3%A9").unwrap(),
            "/v2/x/tags/key%20with%20space/%C3%A9/"
        );
        assert_eq!(
            canonical_query(Some("b=2&a=x%3Ay&a=%20")).unwrap(),
            "a=%20&a=x%3Ay&b=2"
        );
        assert_eq!(canonical_query(None).unwrap(), "");
    }

    #[test]
    fn plus_and_encoded_plus_do_not_collide() {
        // The handlers read a literal `+` as a space and `%2B` as a plus.
        assert_eq!(canonical_query(Some("name=a%2Bb")).unwrap(), "name=a%2Bb");
        assert_eq!(canonical_query(Some("name=a+b")).unwrap(), "name=a%20b");
        assert_eq!(
            canonical_uri("/v2/a+b").unwrap(),
            canonical_uri("/v2/a%2Bb").unwrap()
        );
    }

    #[test]
    fn invalid_utf8_is_refused_not_replaced() {
        assert!(canonical_uri("/v2/images/%FF").is_err());
        assert!(canonical_query(Some("name=%C3")).is_err());
        assert!(canonical_query(Some("%FE=1")).is_err());
    }

    #[test]
    fn project_id_must_be_signed_when_sent() {
        let h = headers("application/json", false);
        let lookup = |name: &str| h.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
        let a = parse_authorization(
            "SDK-HMAC-SHA256 Access=a, SignedHeaders=content-type;host;x-sdk-date, Signature=00",
        )
        .unwrap();
        assert_eq!(
            precheck(&a, &lookup, WHEN),
            Err(SignatureError::Malformed(
                "X-Project-Id must be signed when it is sent"
            ))
        );
        let signed = auth(false, "00");
        assert_eq!(precheck(&signed, &lookup, WHEN), Ok(WHEN + MAX_SKEW));
    }

    #[test]
    fn malformed_headers_are_refused() {
        assert!(parse_authorization("Bearer x").is_err());
        assert!(parse_authorization("SDK-HMAC-SHA256 Access=a, Signature=b").is_err());
        let a = parse_authorization("SDK-HMAC-SHA256 Access=a, SignedHeaders=host, Signature=00")
            .unwrap();
        let none = |_: &str| None;
        let req = Received {
            method: "GET",
            path: "/",
            query: None,
            header: &none,
            body_sha256: None,
        };
        assert!(matches!(
            verify(&req, &a, SK, WHEN),
            Err(SignatureError::Malformed(_))
        ));
    }
}
