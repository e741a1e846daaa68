//! [`Client`]: the node's HTTP/JSON API from Rust (see [`crate::api`]).

use std::time::Duration;

use drover_ir::Value;
use serde::de::DeserializeOwned;

use super::{RunId, StartWorkflow};
use crate::api::wire::{
    CancelRequest, Deployed, ErrorBody, Health, JournalDump, OutcomeJson, RunList, RunResult,
    SignalRequest, StartRequest, Started, Status, Trace,
};
use crate::error::Error;
use crate::logs::LogEvent;

/// Longest single long poll [`Client::wait`] asks for.
const POLL: Duration = Duration::from_secs(30);

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node URL is not usable.
    #[error("bad node URL {url:?}: {message}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// The node could not be reached, or the connection broke.
    #[error("cannot reach the node at {url}: {source}")]
    Transport {
        /// The node's URL.
        url: String,
        /// What the HTTP client said.
        #[source]
        source: reqwest::Error,
    },
    /// The node answered with an error.
    #[error("{message} ({kind}, HTTP {status})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The error kind (`unknown_run`, `bad_request`, ...).
        kind: String,
        /// The node's message.
        message: String,
    },
    /// The node's answer did not decode.
    #[error("the node's answer does not decode: {0}")]
    Decode(String),
}

impl ClientError {
    /// The error kind the node gave, if it answered with an error.
    pub fn kind(&self) -> Option<&str> {
        match self {
            ClientError::Api { kind, .. } => Some(kind),
            _ => None,
        }
    }

    /// The HTTP status the node answered with, if it answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Filters of [`Client::list`].
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// Only runs of this workflow.
    pub workflow: Option<String>,
    /// `running` or `finished`.
    pub status: Option<String>,
    /// At most this many.
    pub limit: Option<usize>,
    /// Only runs after this one (the `next` of the previous page).
    pub after: Option<String>,
}

/// What a log follow yields.
#[derive(Clone, Debug, PartialEq)]
pub enum Followed {
    /// An event that matched the filter.
    Event(Box<LogEvent>),
    /// The follower fell behind and this many events were dropped.
    Lagged(u64),
}

/// A connection to one node's API. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client of the node at `url` (`http://127.0.0.1:7070`). Nothing is
    /// sent until the first call.
    pub fn new(url: &str) -> Result<Client, ClientError> {
        let base = url.trim().trim_end_matches('/').to_owned();
        let bad = |message: &str| ClientError::BadUrl {
            url: url.to_owned(),
            message: message.to_owned(),
        };
        let parsed = reqwest::Url::parse(&base).map_err(|e| bad(&e.to_string()))?;
        if parsed.scheme() != "http" {
            return Err(bad("only http:// is supported"));
        }
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Client { http, base })
    }

    /// The node's URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn url_of(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn transport(&self, source: reqwest::Error) -> ClientError {
        ClientError::Transport {
            url: self.base.clone(),
            source,
        }
    }

    /// Sends, and turns an error status into [`ClientError::Api`].
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let resp = req.send().await.map_err(|e| self.transport(e))?;
        if resp.status().is_client_error() || resp.status().is_server_error() {
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.map_err(|e| self.transport(e))?;
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) => ClientError::Api {
                    status,
                    kind: body.error.kind,
                    message: body.error.message,
                },
                Err(_) => ClientError::Api {
                    status,
                    kind: "http".into(),
                    message: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
                },
            });
        }
        Ok(resp)
    }

    async fn json<T: DeserializeOwned>(&self, resp: reqwest::Response) -> Result<T, ClientError> {
        let bytes = resp.bytes().await.map_err(|e| self.transport(e))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let resp = self.send(self.http.get(self.url_of(path))).await?;
        self.json(resp).await
    }

    /// `GET /v1/health`.
    pub async fn health(&self) -> Result<Health, ClientError> {
        self.get("/v1/health").await
    }

    /// Starts `workflow` with `input` (the single parameter's value, an
    /// array of all, or an object by name); the same `key` gives the same run.
    pub async fn start(
        &self,
        workflow: &str,
        input: serde_json::Value,
        key: Option<&str>,
    ) -> Result<Started, ClientError> {
        let req = StartRequest {
            input: Some(input),
            key: key.map(str::to_owned),
            ..StartRequest::default()
        };
        self.start_with(workflow, &req).await
    }

    /// Starts `workflow` with a full [`StartRequest`].
    pub async fn start_with(
        &self,
        workflow: &str,
        req: &StartRequest,
    ) -> Result<Started, ClientError> {
        let path = format!("/v1/workflows/{}/runs", segment(workflow));
        let resp = self
            .send(self.http.post(self.url_of(&path)).json(req))
            .await?;
        self.json(resp).await
    }

    /// Starts `workflow`, waits for it and gives the result's value
    /// (`POST /v1/workflows/{name}/call`).
    pub async fn call(
        &self,
        workflow: &str,
        input: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        let path = format!("/v1/workflows/{}/call", segment(workflow));
        let resp = self
            .send(self.http.post(self.url_of(&path)).json(input))
            .await?;
        self.json(resp).await
    }

    /// Where a run is.
    pub async fn status(&self, run: &str) -> Result<Status, ClientError> {
        self.get(&format!("/v1/runs/{}", segment(run))).await
    }

    /// The run's result, waiting at most `wait` for it (`outcome: None` when
    /// it still runs).
    pub async fn result(&self, run: &str, wait: Duration) -> Result<RunResult, ClientError> {
        let path = format!(
            "/v1/runs/{}/result?wait={}ms",
            segment(run),
            wait.as_millis()
        );
        self.get(&path).await
    }

    /// Waits as long as it takes for the run to end.
    pub async fn wait(&self, run: &str) -> Result<OutcomeJson, ClientError> {
        loop {
            if let Some(o) = self.result(run, POLL).await?.outcome {
                return Ok(o);
            }
        }
    }

    /// Cancels a run; it fails with `Cancelled`.
    pub async fn cancel(&self, run: &str, reason: Option<&str>) -> Result<(), ClientError> {
        let req = CancelRequest {
            reason: reason.map(str::to_owned),
        };
        let path = format!("/v1/runs/{}/cancel", segment(run));
        self.send(self.http.post(self.url_of(&path)).json(&req))
            .await?;
        Ok(())
    }

    /// Sends a signal; returns once it is durable in the run's journal.
    pub async fn signal(
        &self,
        run: &str,
        name: &str,
        value: serde_json::Value,
    ) -> Result<(), ClientError> {
        let req = SignalRequest {
            name: name.to_owned(),
            value,
        };
        let path = format!("/v1/runs/{}/signal", segment(run));
        self.send(self.http.post(self.url_of(&path)).json(&req))
            .await?;
        Ok(())
    }

    /// Runs matching `q`, in increasing id order.
    pub async fn list(&self, q: &ListQuery) -> Result<RunList, ClientError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(w) = &q.workflow {
            params.push(("workflow", w.clone()));
        }
        if let Some(s) = &q.status {
            params.push(("status", s.clone()));
        }
        if let Some(n) = q.limit {
            params.push(("limit", n.to_string()));
        }
        if let Some(a) = &q.after {
            params.push(("after", a.clone()));
        }
        let resp = self
            .send(self.http.get(self.url_of("/v1/runs")).query(&params))
            .await?;
        self.json(resp).await
    }

    /// Every effect attempt of a run, in order.
    pub async fn trace(&self, run: &str) -> Result<Trace, ClientError> {
        self.get(&format!("/v1/runs/{}/trace", segment(run))).await
    }

    /// Deploys a compiled `.dbc` module.
    pub async fn deploy(&self, bytes: Vec<u8>) -> Result<Deployed, ClientError> {
        let req = self
            .http
            .post(self.url_of("/v1/deploy"))
            .header("content-type", "application/octet-stream")
            .body(bytes);
        let resp = self.send(req).await?;
        self.json(resp).await
    }

    /// A run's journal, for an offline replay.
    pub async fn journal(&self, run: &str) -> Result<JournalDump, ClientError> {
        let path = format!("/v1/runs/{}/journal", segment(run));
        let resp = self.send(self.http.get(self.url_of(&path))).await?;
        let bytes = resp.bytes().await.map_err(|e| self.transport(e))?;
        rmp_serde::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// A stored program's `.dbc` bytes by hash (hex).
    pub async fn program(&self, hash: &str) -> Result<Vec<u8>, ClientError> {
        let path = format!("/v1/programs/{}", segment(hash));
        let resp = self.send(self.http.get(self.url_of(&path))).await?;
        let bytes = resp.bytes().await.map_err(|e| self.transport(e))?;
        Ok(bytes.to_vec())
    }

    fn logs_request(
        &self,
        filter: Option<&str>,
        follow: bool,
        limit: Option<usize>,
    ) -> reqwest::RequestBuilder {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(f) = filter {
            params.push(("filter", f.to_owned()));
        }
        if follow {
            params.push(("follow", "true".to_owned()));
        }
        if let Some(n) = limit {
            params.push(("limit", n.to_string()));
        }
        self.http.get(self.url_of("/v1/logs")).query(&params)
    }

    /// The node's newest log events matching `filter`, oldest first.
    pub async fn logs(
        &self,
        filter: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<LogEvent>, ClientError> {
        let resp = self.send(self.logs_request(filter, false, limit)).await?;
        let bytes = resp.bytes().await.map_err(|e| self.transport(e))?;
        let text = String::from_utf8_lossy(&bytes);
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| LogEvent::from_json_line(l).map_err(|e| ClientError::Decode(e.to_string())))
            .collect()
    }

    /// The events matching `filter`: the newest `limit` kept ones, then each
    /// new one as it is emitted, until the node closes the stream. Returns
    /// once the node has subscribed, so every event emitted after this
    /// returns is seen.
    pub async fn follow_logs(
        &self,
        filter: Option<&str>,
        limit: Option<usize>,
    ) -> Result<LogStream, ClientError> {
        let resp = self.send(self.logs_request(filter, true, limit)).await?;
        Ok(LogStream {
            resp,
            buf: Vec::new(),
        })
    }
}

/// A followed log (see [`Client::follow_logs`]).
#[derive(Debug)]
pub struct LogStream {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl LogStream {
    /// The next event; `None` once the node ended the stream.
    pub async fn next(&mut self) -> Option<Result<Followed, ClientError>> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let text = String::from_utf8_lossy(&line);
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                return Some(parse_followed(text));
            }
            match self.resp.chunk().await {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk),
                Ok(None) => return None,
                Err(e) => return Some(Err(ClientError::Decode(format!("log stream: {e}")))),
            }
        }
    }
}

fn parse_followed(line: &str) -> Result<Followed, ClientError> {
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| ClientError::Decode(e.to_string()))?;
    if let Some(n) = v.get("lagged").and_then(serde_json::Value::as_u64) {
        if v.as_object().is_some_and(|o| o.len() == 1) {
            return Ok(Followed::Lagged(n));
        }
    }
    LogEvent::from_json_line(line)
        .map(|e| Followed::Event(Box::new(e)))
        .map_err(|e| ClientError::Decode(e.to_string()))
}

/// A path segment with the characters that would change the path escaped.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl StartWorkflow for Client {
    fn start_raw(
        &self,
        workflow: &str,
        hash: &str,
        args: Vec<Value>,
    ) -> impl std::future::Future<Output = Result<RunId, Error>> + Send {
        let req = StartRequest {
            args: Some(args.iter().map(Value::to_json).collect()),
            program: (!hash.is_empty()).then(|| hash.to_owned()),
            ..StartRequest::default()
        };
        let workflow = workflow.to_owned();
        async move {
            match self.start_with(&workflow, &req).await {
                Ok(s) => Ok(RunId(s.run)),
                Err(ClientError::Api { kind, message, .. }) => Err(Error::new(kind, message)),
                Err(e) => Err(Error::new("unavailable", e.to_string())),
            }
        }
    }
}
