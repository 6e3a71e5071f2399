//! A ZStack REST client for the tests: log in by digest, signed (`OAuth <session>`)
//! calls, api-job polling. Test files add their own calls in `impl Zs` blocks.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest as _;

use super::Server;

/// ims's one backup storage.
pub const BS: &str = "5c8a0ba5e8d84a8f9c4a3b0e2f1d7a61";

/// The SHA-512 hex digest ZStack clients send as the password.
pub fn sha512(s: &str) -> String {
    hex::encode(sha2::Sha512::digest(s.as_bytes()))
}

/// Status, body text, and the body as JSON (`Null` when not JSON).
pub struct Reply {
    pub status: u16,
    pub text: String,
    pub json: Value,
}

impl Reply {
    /// The ZStack error code (empty when none).
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }

    /// The `inventory` of a 200 (panics on any other status).
    pub fn inventory(&self) -> &Value {
        assert_eq!(self.status, 200, "{}", self.text);
        &self.json["inventory"]
    }
}

pub async fn reply(r: reqwest::Response) -> Reply {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, text, json }
}

/// The answer to `PUT /accounts/login` with `password`'s digest.
pub async fn login_reply(url: &str, account: &str, password: &str) -> Reply {
    let r = reqwest::Client::new()
        .put(format!("{url}/zstack/v1/accounts/login"))
        .json(&json!({"logInByAccount": {"accountName": account, "password": sha512(password)}}))
        .send()
        .await
        .unwrap();
    reply(r).await
}

/// A ZStack REST client holding a session.
pub struct Zs {
    pub http: reqwest::Client,
    pub url: String,
    pub session: String,
}

impl Zs {
    pub async fn login(server: &Server, account: &str, password: &str) -> Zs {
        let r = login_reply(&server.url, account, password).await;
        assert_eq!(r.status, 200, "login: {}", r.text);
        Zs {
            http: reqwest::Client::new(),
            url: server.url.clone(),
            session: r.json["inventory"]["uuid"].as_str().unwrap().to_string(),
        }
    }

    pub async fn admin(server: &Server) -> Zs {
        Zs::login(server, "admin", &server.admin_password()).await
    }

    /// A request to `/zstack/v1{path}` carrying the session.
    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/zstack/v1{path}", self.url))
            .header("authorization", format!("OAuth {}", self.session))
    }

    pub async fn get(&self, path: &str) -> Reply {
        reply(self.req(Method::GET, path).send().await.unwrap()).await
    }

    /// The call's first answer (a 202 is not followed).
    pub async fn send(&self, method: Method, path: &str, body: Value) -> Reply {
        reply(self.req(method, path).json(&body).send().await.unwrap()).await
    }

    /// The call's final answer: a 202 is followed to its end, as the SDKs do.
    pub async fn send_settled(&self, method: Method, path: &str, body: Value) -> Reply {
        let r = self.send(method, path, body).await;
        self.settle(r).await
    }

    /// `r` itself, or the end of the api-job a 202 `r` points at.
    pub async fn settle(&self, r: Reply) -> Reply {
        if r.status == 202 {
            return self.follow(r.json["location"].as_str().unwrap()).await;
        }
        r
    }

    /// Polls an api-job location until it is no longer 202.
    pub async fn follow(&self, location: &str) -> Reply {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let r = reply(
                self.http
                    .get(location)
                    .header("authorization", format!("OAuth {}", self.session))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            if r.status != 202 {
                return r;
            }
            assert_eq!(r.json, json!({}), "a running job answers an empty object");
            assert!(std::time::Instant::now() < deadline, "the job never ended");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The decoded `result` of an RPC reply, polling while it is Processing.
pub async fn rpc_result(server: &Server, mut reply: Value) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while reply["state"] == "Processing" {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let uuid = reply["uuid"].as_str().unwrap();
        reply = reqwest::get(format!("{}/zstack/api/result/{uuid}", server.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    }
    assert_eq!(reply["state"], "Done");
    serde_json::from_str(reply["result"].as_str().unwrap()).unwrap()
}
