//! A Secrets Manager endpoint that serves one secret and records how it was asked for it.

use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Request;
use serde_json::json;

use super::{reply, serve, Recorded};

#[derive(Clone)]
pub struct SecretsManager {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

impl SecretsManager {
    pub async fn start(secret: &'static str) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let addr = serve(move |req: Request<Incoming>| {
            let seen = seen.clone();
            async move {
                let path = req.uri().path().to_owned();
                let headers = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                    .collect();
                let body = req
                    .into_body()
                    .collect()
                    .await
                    .map(|c| c.to_bytes().to_vec())
                    .unwrap_or_default();
                seen.lock().unwrap().push(Recorded { path, headers, body });
                reply(
                    200,
                    &[("content-type", "application/x-amz-json-1.1".into())],
                    json!({"SecretString": secret}).to_string(),
                )
            }
        })
        .await;
        Self {
            url: format!("http://{addr}"),
            requests,
        }
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}
