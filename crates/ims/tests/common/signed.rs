//! Requests signed the way huaweicloudsdkcore signs them, with the server's own
//! canonicalisation code as the reference implementation.

use ims_http::sdk_signing::{self, Authorization, Received};
use serde_json::Value;
use sha2::Digest as _;

use super::Server;

/// Signs requests with one AK/SK pair for one project.
pub struct Signer {
    pub url: String,
    pub host: String,
    pub ak: String,
    pub sk: String,
    pub project: String,
}

impl Signer {
    /// A fresh credential of `user`, signing for the user's default project `project`
    /// (a name).
    pub fn new(server: &Server, user: &str, project: &str) -> Signer {
        let out = server.admin(&["credential", "create", "--user", user]);
        let (ak, sk) = out.split_once(' ').unwrap();
        let project = server.project_id(project);
        Signer {
            url: server.url.clone(),
            host: format!("127.0.0.1:{}", server.port),
            ak: ak.to_string(),
            sk: sk.to_string(),
            project,
        }
    }

    /// Sends a signed request; `path` may carry a query string. The answer's status and
    /// JSON body (`Null` if none).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.prepare(method, path, body).send_to(&self.url).await
    }

    /// A request signed now, to be sent (and perhaps sent again) later.
    pub fn prepare(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Prepared {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let date = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap();
        let mut headers = vec![
            ("content-type", "application/json".to_string()),
            ("host", self.host.clone()),
            ("x-project-id", self.project.clone()),
            ("x-sdk-date", date.clone()),
        ];
        let lookup = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        };
        let hash = (!body.is_empty()).then(|| hex::encode(sha2::Sha256::digest(body.as_bytes())));
        let auth = Authorization {
            access: self.ak.clone(),
            signed_headers: headers.iter().map(|(k, _)| k.to_string()).collect(),
            signature: String::new(),
        };
        let (bare, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let req = Received {
            method: method.as_str(),
            path: bare,
            query,
            header: &lookup,
            body_sha256: hash.as_deref(),
        };
        let canonical = sdk_signing::canonical_request(&req, &auth).unwrap();
        let signature =
            sdk_signing::sign(&self.sk, &sdk_signing::string_to_sign(&date, &canonical));
        let authorization = format!(
            "SDK-HMAC-SHA256 Access={}, SignedHeaders={}, Signature={signature}",
            self.ak,
            auth.signed_headers.join(";")
        );
        headers.push(("authorization", authorization));
        Prepared {
            method,
            path: path.to_string(),
            headers,
            body,
        }
    }
}

/// A signed request, as it goes on the wire.
pub struct Prepared {
    method: reqwest::Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Prepared {
    /// Sends it, byte for byte as signed, to the server at `url` (whatever its `Host`
    /// header says, as through a load balancer). The status and JSON body.
    pub async fn send_to(&self, url: &str) -> (u16, Value) {
        let mut builder =
            reqwest::Client::new().request(self.method.clone(), format!("{url}{}", self.path));
        for (k, v) in &self.headers {
            builder = builder.header(*k, v);
        }
        let r = builder.body(self.body.clone()).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// Polls the IMS job until it ends (SUCCESS or FAIL), for two minutes at most; the job.
pub async fn wait_job(signer: &Signer, job_id: &str) -> Value {
    let path = &format!("/v1/cloudimages/job/{job_id}");
    super::wait_until(std::time::Duration::from_secs(120), move || async move {
        let (status, job) = signer.send(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "{job}");
        if job["status"] == "SUCCESS" || job["status"] == "FAIL" {
            Ok(job)
        } else {
            Err(format!("job stuck: {job}"))
        }
    })
    .await
}
