//! Image data handlers: upload, download, stage, import, tasks.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::TryStreamExt;
use ims_domain::Error;
use ims_domain::service::data::RangeRequest;
use ims_domain::service::{ImportRequest, UploadSource};
use ims_http::Services;
use serde_json::{Value, json};

use super::{Caller, json_body};
use crate::convert;
use crate::error::GlanceResult;

fn source(headers: &HeaderMap, body: Body) -> GlanceResult<UploadSource> {
    if let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        && ct.split(';').next().unwrap_or("").trim() != "application/octet-stream"
    {
        return Err(Error::UnsupportedMedia(format!(
            "Unsupported Content-Type {ct}; use application/octet-stream"
        ))
        .into());
    }
    let declared = match headers.get("x-openstack-image-size") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    Error::invalid("x-openstack-image-size must be a non-negative integer")
                })?,
        ),
        None => None,
    };
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    Ok(UploadSource {
        stream: Box::pin(stream),
        declared_size: declared,
        store: store_header(headers),
    })
}

/// `X-Image-Meta-Store`: the store an upload (or an import) writes to.
fn store_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-image-meta-store")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
}

/// `PUT /v2/images/{id}/file`.
pub async fn upload_image_data(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> GlanceResult<StatusCode> {
    svc.images
        .upload(&who, &id, source(&headers, body)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v2/images/{id}/stage`.
pub async fn stage_image_data(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> GlanceResult<StatusCode> {
    svc.images.stage(&who, &id, source(&headers, body)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Parses one `Range: bytes=…` range; several are a 400, nonsense a 416.
fn parse_range(headers: &HeaderMap) -> Result<Option<RangeRequest>, Error> {
    let Some(raw) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let unsatisfiable = || Error::RangeNotSatisfiable { size: 0 };
    let spec = raw.to_str().map_err(|_| unsatisfiable())?.trim();
    let ranges = spec.strip_prefix("bytes=").ok_or_else(unsatisfiable)?;
    if ranges.contains(',') {
        return Err(Error::invalid("Multiple ranges are not supported"));
    }
    let (a, b) = ranges.split_once('-').ok_or_else(unsatisfiable)?;
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| unsatisfiable());
    Ok(Some(match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => RangeRequest::Suffix(num(b)?),
        (false, true) => RangeRequest::From(num(a)?, None),
        (false, false) => RangeRequest::From(num(a)?, Some(num(b)?)),
        (true, true) => return Err(unsatisfiable()),
    }))
}

/// `GET /v2/images/{id}/file`: 200, 206 (one range), 204 (no data), 416.
pub async fn download_image_data(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> GlanceResult<Response> {
    let range = parse_range(&headers);
    let dl = match range {
        Ok(r) => svc.images.download(&who, &id, r).await?,
        // Report a bad range only for an image the caller can see.
        Err(e) => {
            let image = svc.images.get(&who, &id).await?;
            return Err(match e {
                Error::RangeNotSatisfiable { .. } => Error::RangeNotSatisfiable {
                    size: image.data.size.unwrap_or(0),
                },
                other => other,
            }
            .into());
        }
    };
    let Some(body) = dl.body else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let total = dl.image.data.size.unwrap_or(0);
    let (status, len) = match dl.range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.len()),
        None => (StatusCode::OK, total),
    };
    let mut resp = Response::new(Body::from_stream(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Some(md5) = dl
        .image
        .data
        .checksum
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        h.insert("content-md5", md5);
    }
    if let Some(r) = dl.range {
        let cr = format!("bytes {}-{}/{total}", r.start, r.end);
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&cr).map_err(Error::internal)?,
        );
    }
    Ok(resp)
}

/// `POST /v2/images/{id}/import`.
pub async fn import_image(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> GlanceResult<StatusCode> {
    let body = json_body(&headers, &raw, &["application/json"])?;
    let multi = svc.images.stores().is_multi();
    let mut req = decode_import(&body, multi)?;
    if multi {
        choose_stores(&mut req, &body, store_header(&headers))?;
    }
    req.request_id = ims_http::request_id(&headers);
    svc.images.import(&who, &id, req).await?;
    Ok(StatusCode::ACCEPTED)
}

/// The stores of a multi-store import: `all_stores`, `stores`, or the
/// `X-Image-Meta-Store` header, with Glance's 400s for combining them. One deliberate
/// difference: `stores` naming exactly the header's store is accepted, as openstacksdk's
/// `import_image(store=…)` sends both.
fn choose_stores(
    req: &mut ImportRequest,
    body: &Value,
    header: Option<String>,
) -> Result<(), Error> {
    let listed = match body.get("stores") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| Error::invalid("'stores' must be a list of store identifiers"))?,
        ),
        Some(_) => {
            return Err(Error::invalid(
                "'stores' must be a list of store identifiers",
            ));
        }
    };
    if req.all_stores && (listed.is_some() || header.is_some()) {
        return Err(Error::invalid(
            "All_stores parameter can't be used with x-image-meta-store header or stores parameter",
        ));
    }
    req.stores = match (listed, header) {
        (Some(list), Some(h)) if list != [h.clone()] => {
            return Err(Error::invalid(
                "Stores parameter and x-image-meta-store header can't be both specified",
            ));
        }
        (Some(list), _) => Some(list),
        (None, header) => header.map(|h| vec![h]),
    };
    Ok(())
}

fn decode_import(body: &Value, multi_store: bool) -> Result<ImportRequest, Error> {
    let method = body
        .get("method")
        .ok_or_else(|| Error::invalid("Import request requires a 'method' field."))?;
    let name = method
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid("Import request requires a 'method.name' string."))?;
    for flag in ["all_stores", "all_stores_must_succeed"] {
        if body.get(flag).is_some_and(|v| !v.is_boolean()) {
            return Err(Error::invalid(format!(
                "'{flag}' must be boolean value only"
            )));
        }
    }
    // With one store, Glance ignores `stores` and `all_stores` (and the
    // X-Image-Meta-Store header); only a request that lets some stores fail is refused.
    let allow_store_failures = body.get("all_stores_must_succeed") == Some(&Value::Bool(false));
    if allow_store_failures && !multi_store {
        let uri = method.get("uri").and_then(Value::as_str).unwrap_or("None");
        return Err(Error::invalid(format!(
            "All_stores_must_succeed can only be set with enabled_backends {uri}"
        )));
    }
    let text = |key: &str| -> Result<Option<String>, Error> {
        match method.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Error::invalid(format!("'method.{key}' must be a string"))),
        }
    };
    Ok(ImportRequest {
        method: name.to_string(),
        uri: text("uri")?,
        glance_image_id: text("glance_image_id")?,
        glance_region: text("glance_region")?,
        glance_service_interface: text("glance_service_interface")?,
        all_stores: body.get("all_stores") == Some(&Value::Bool(true)),
        allow_store_failures,
        ..ImportRequest::default()
    })
}

/// `GET /v2/images/{id}/tasks`.
pub async fn list_image_tasks(
    State(svc): State<Services>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> GlanceResult<Json<Value>> {
    let jobs = svc.images.image_jobs(&who, &id).await?;
    Ok(Json(
        json!({"tasks": jobs.iter().map(convert::task_row).collect::<Vec<_>>()}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str) -> Result<Option<RangeRequest>, Error> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        parse_range(&h)
    }

    #[test]
    fn range_forms() {
        assert_eq!(
            range("bytes=0-3").unwrap(),
            Some(RangeRequest::From(0, Some(3)))
        );
        assert_eq!(
            range("bytes=5-").unwrap(),
            Some(RangeRequest::From(5, None))
        );
        assert_eq!(range("bytes=-4").unwrap(), Some(RangeRequest::Suffix(4)));
        assert!(matches!(
            range("bytes=0-1,3-4"),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            range("items=0-1"),
            Err(Error::RangeNotSatisfiable { .. })
        ));
        assert!(matches!(
            range("bytes=x-y"),
            Err(Error::RangeNotSatisfiable { .. })
        ));
    }
}
