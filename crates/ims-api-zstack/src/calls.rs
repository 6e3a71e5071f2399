//! The api-jobs protocol. Every mutating call is recorded in the catalog under its job
//! uuid (`X-Job-UUID` or a fresh one), runs, and waits for its durable work up to
//! `job_wait`: finished work answers at once (200 / 503), longer work answers 202 with
//! the job's `location`, which any node can answer from the record and the ims job it
//! links to. Finished records stay pollable for `job_retention`.

use std::future::Future;
use std::time::Duration;

use ims_domain::api_call::{ApiCall, CallState, Caller};
use ims_domain::job::JobStatus;
use ims_domain::principal::Principal;
use serde_json::Value;
use time::OffsetDateTime;

use crate::Zs;
use crate::error::{ZsError, ZsResult};
use crate::ops::{self, Api, Outcome};

/// Where a call is, as a client sees it.
pub(crate) enum Answer {
    /// Finished: `ok` and the result body, or the ErrorCode object when not ok.
    Finished { id: String, ok: bool, body: Value },
    /// Still working.
    Pending { id: String },
}

fn now() -> OffsetDateTime {
    ims_domain::context::now()
}

/// A caller-chosen job uuid must be 32 characters (lower-cased; uuid form).
fn job_uuid(header: Option<&str>) -> ZsResult<String> {
    match header {
        None => Ok(uuid::Uuid::new_v4().simple().to_string()),
        Some(u) if crate::wire::is_zs_uuid(u) => Ok(u.to_ascii_lowercase()),
        Some(u) => Err(ZsError::bad_request(format!(
            "Invalid header[X-Job-UUID], the value[{u}] is not a valid UUID(must be 32 characters without '-')"
        ))),
    }
}

/// Runs a mutation as an api-job (see the module documentation). A REST-layer refusal
/// (bad or duplicate job uuid, mistyped parameter) is the `Err`.
pub(crate) async fn mutate<F>(
    zs: &Zs,
    who: &Principal,
    api: Api,
    header: Option<&str>,
    op: F,
) -> ZsResult<Answer>
where
    F: Future<Output = ZsResult<Outcome>>,
{
    let id = job_uuid(header)?;
    // Refusals for want of rights are ZStack's ID.1002; the domain's other refusals
    // (a protected image, a status that does not allow the change) are SYS.1006.
    ims_domain::policy::check_writer(who).map_err(|e| ZsError::api("ID.1002", e.to_string()))?;
    zs.calls.purge_calls(now()).await?;
    let call = ApiCall {
        id: id.clone(),
        api: api.name().into(),
        caller: Caller::from(who),
        job_id: None,
        subject_id: None,
        state: CallState::Running,
        result: None,
        created_at: now(),
        // A call whose node stops before it finishes is forgotten after the API timeout.
        expires_at: Some(now() + Duration::from_millis(crate::rest::API_TIMEOUT_MS)),
    };
    match zs.calls.insert_call(&call).await {
        Ok(()) => {}
        Err(ims_domain::Error::Conflict(_) | ims_domain::Error::AlreadyExists { .. }) => {
            return Err(ZsError::bad_request(format!(
                "Duplicate job uuid[{id}]: a job with that X-Job-UUID exists"
            )));
        }
        Err(e) => return Err(e.into()),
    }
    match op.await {
        Err(e) => {
            finish(zs, &id, false, e.error_code()).await?;
            if matches!(e, ZsError::Rest { .. }) {
                return Err(e);
            }
            if zs.settings.job_wait.is_zero() {
                // No wait configured: every call is answered the way ZStack answers it,
                // 202 first, its failure read from the (already stored) api-job.
                return Ok(Answer::Pending { id });
            }
            Ok(Answer::Finished {
                id,
                ok: false,
                body: e.error_code(),
            })
        }
        Ok(Outcome::Done(body)) => {
            finish(zs, &id, true, body.clone()).await?;
            if zs.settings.job_wait.is_zero() {
                return Ok(Answer::Pending { id });
            }
            Ok(Answer::Finished { id, ok: true, body })
        }
        Ok(Outcome::Job { job_id, image_id }) => {
            zs.calls
                .link_call(&id, Some(&job_id), Some(&image_id))
                .await?;
            if zs.settings.job_wait.is_zero() {
                // As above: 202 first, even for a job that ended already.
                return Ok(Answer::Pending { id });
            }
            let deadline = tokio::time::Instant::now() + zs.settings.job_wait;
            let linked = ApiCall {
                job_id: Some(job_id),
                subject_id: Some(image_id),
                ..call
            };
            loop {
                if let Some(done) = settle(zs, &linked).await? {
                    return Ok(done);
                }
                if tokio::time::Instant::now() >= deadline {
                    return Ok(Answer::Pending { id });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn finish(zs: &Zs, id: &str, ok: bool, body: Value) -> ZsResult<()> {
    let state = if ok {
        CallState::Succeeded
    } else {
        CallState::Failed
    };
    let until = now() + zs.settings.job_retention;
    zs.calls.finish_call(id, state, &body, until).await?;
    Ok(())
}

/// The answer of a call whose job may have ended meanwhile: `None` while it runs.
async fn settle(zs: &Zs, call: &ApiCall) -> ZsResult<Option<Answer>> {
    let id = call.id.clone();
    match (call.state, &call.result) {
        (CallState::Succeeded, Some(body)) => {
            return Ok(Some(Answer::Finished {
                id,
                ok: true,
                body: body.clone(),
            }));
        }
        (CallState::Failed, Some(body)) => {
            return Ok(Some(Answer::Finished {
                id,
                ok: false,
                body: body.clone(),
            }));
        }
        _ => {}
    }
    let (Some(job_id), Some(subject)) = (&call.job_id, &call.subject_id) else {
        // A call that never linked a job (its node stopped mid-way) stays running
        // until it expires; nothing can finish it.
        return Ok(None);
    };
    let who = Principal::from(&call.caller);
    let job = zs.services.images.job(&who, job_id).await?;
    if !matches!(job.status, JobStatus::Success | JobStatus::Fail) {
        return Ok(None);
    }
    let result = match Api::of_name(&call.api) {
        Some(Api::AddImage) => ops::finish_add_image(zs, &who, subject, &job).await,
        Some(a) if crate::volumes::is_template_api(a) => {
            crate::volumes::finish_template(zs, &who, subject, &job).await
        }
        _ => Err(ZsError::api("SYS.1000", "unknown api-job kind")),
    };
    let (ok, body) = match result {
        Ok(body) => (true, body),
        Err(e) => (false, e.error_code()),
    };
    finish(zs, &id, ok, body.clone()).await?;
    // Another node may have finished it first: what is stored wins.
    if let Some(stored) = zs.calls.get_call(&id).await?
        && let Some(stored_body) = stored.result
    {
        return Ok(Some(Answer::Finished {
            id,
            ok: stored.state == CallState::Succeeded,
            body: stored_body,
        }));
    }
    Ok(Some(Answer::Finished { id, ok, body }))
}

/// The answer for a poll; `None` when the job is unknown or expired. Also returns the
/// API it was, for RPC rendering.
pub(crate) async fn poll(zs: &Zs, id: &str) -> ZsResult<Option<(Api, Answer)>> {
    if !crate::wire::is_zs_uuid(id) {
        return Ok(None);
    }
    let Some(call) = zs.calls.get_call(&id.to_ascii_lowercase()).await? else {
        return Ok(None);
    };
    if call.expires_at.is_some_and(|t| t < now()) {
        return Ok(None);
    }
    let Some(api) = Api::of_name(&call.api) else {
        return Ok(None);
    };
    let answer = settle(zs, &call).await?.unwrap_or(Answer::Pending {
        id: call.id.clone(),
    });
    Ok(Some((api, answer)))
}
