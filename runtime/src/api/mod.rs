//! The node's HTTP/JSON API (axum), versioned under `/v1`.
//!
//! | route | what |
//! |---|---|
//! | `GET /v1/health` | the node is up; its workflows |
//! | `POST /v1/workflows/{name}/runs` | start (`{input \| args, key, program}`): 201 new, 200 same key |
//! | `POST /v1/workflows/{name}/call` | start, wait, answer the result's value (body = input) |
//! | `GET /v1/runs?workflow=&status=&limit=&after=` | list |
//! | `GET /v1/runs/{id}` | status |
//! | `GET /v1/runs/{id}/result?wait=30s` | 200 ended, 202 still running when the wait ran out |
//! | `POST /v1/runs/{id}/cancel` | `{reason}` |
//! | `POST /v1/runs/{id}/signal` | `{name, value}` |
//! | `GET /v1/runs/{id}/trace` | every effect attempt |
//! | `GET /v1/runs/{id}/journal` | the journal as MessagePack ([`wire::JournalDump`]) |
//! | `GET /v1/programs/{hash}` | a stored program's `.dbc` bytes |
//! | `POST /v1/deploy` | raw `.dbc` body: 201 `{program, workflows}` |
//! | `GET /v1/logs?filter=&follow=&limit=` | log events as NDJSON; `follow` streams new ones |
//!
//! Every error is `{"error": {"kind", "message"}}` with its status code:
//! 400 bad input (with the parse error's text), 404 unknown run, workflow or
//! route, 409 a conflict with the run's state, 503 the node is closed, 500
//! the store failed. Bodies are parsed by hand so that no input reaches
//! axum's plain-text rejections, and nothing a client sends panics.

pub mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use drover_ir::wire::ModuleHash;
use drover_ir::Value;
use drover_store::Store;
use serde::Serialize;

use crate::logs::{Filter, LogEvent};
use crate::node::{NodeError, NodeHandle, NodeRef, RunFilter, RunId, RunStatus};
use wire::*;

/// Largest request body: a `.dbc` module is the biggest thing sent.
const BODY_LIMIT: usize = 64 * 1024 * 1024;
/// Longest `?wait=` a result request may hold a connection.
const MAX_WAIT: Duration = Duration::from_secs(300);
/// Default and largest page of `GET /v1/runs`.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;

/// Parameter names by (program, workflow).
type ParamCache = HashMap<(ModuleHash, String), Arc<Vec<String>>>;

/// Where the API finds its node: one handle, or the current loop of a
/// supervised node (a fresh handle per request, so a loop restart is
/// invisible to clients beyond a 503 while it recovers).
#[derive(Clone)]
pub enum NodeSource {
    /// A node opened on its own.
    Fixed(Arc<NodeHandle>),
    /// A node under its supervision tree.
    Supervised(NodeRef),
}

impl NodeSource {
    fn get(&self) -> Result<Arc<NodeHandle>, NodeError> {
        match self {
            NodeSource::Fixed(node) => Ok(node.clone()),
            NodeSource::Supervised(r) => r.node(),
        }
    }
}

impl From<Arc<NodeHandle>> for NodeSource {
    fn from(node: Arc<NodeHandle>) -> Self {
        NodeSource::Fixed(node)
    }
}

impl From<NodeRef> for NodeSource {
    fn from(r: NodeRef) -> Self {
        NodeSource::Supervised(r)
    }
}

/// What every handler shares.
struct Api {
    source: NodeSource,
    name: String,
    /// Parameter names by (program, workflow), to map JSON input to
    /// arguments without decoding the program on every start.
    params: Mutex<ParamCache>,
    /// Turns true when the server shuts down: following streams end.
    closing: tokio::sync::watch::Receiver<bool>,
}

/// The API's router for `node`; `name` is how traces name the node (its
/// listen address).
pub fn router(node: impl Into<NodeSource>, name: impl Into<String>) -> Router {
    // A router alone is never told to close: follows end with the node.
    let (tx, closing) = tokio::sync::watch::channel(false);
    std::mem::forget(tx);
    router_closing(node.into(), name.into(), closing)
}

fn router_closing(
    source: NodeSource,
    name: String,
    closing: tokio::sync::watch::Receiver<bool>,
) -> Router {
    let api = Arc::new(Api {
        source,
        name,
        params: Mutex::new(HashMap::new()),
        closing,
    });
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/workflows/{name}/runs", post(start))
        .route("/v1/workflows/{name}/call", post(call))
        .route("/v1/runs", get(list))
        .route("/v1/runs/{id}", get(status))
        .route("/v1/runs/{id}/result", get(result))
        .route("/v1/runs/{id}/cancel", post(cancel))
        .route("/v1/runs/{id}/signal", post(signal))
        .route("/v1/runs/{id}/trace", get(trace))
        .route("/v1/runs/{id}/journal", get(journal))
        .route("/v1/programs/{hash}", get(program))
        .route("/v1/deploy", post(deploy))
        .route("/v1/logs", get(logs))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(api)
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes the
/// requests in flight (a following `logs` stream is cut).
pub async fn serve(
    listener: tokio::net::TcpListener,
    node: impl Into<NodeSource>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    let (tx, closing) = tokio::sync::watch::channel(false);
    let app = router_closing(node.into(), addr.to_string(), closing);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = tx.send(true);
        })
        .await
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                kind: self.kind.to_owned(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        let (status, kind) = match &e {
            NodeError::UnknownWorkflow(_) => (StatusCode::NOT_FOUND, "unknown_workflow"),
            NodeError::UnknownRun(_) => (StatusCode::NOT_FOUND, "unknown_run"),
            NodeError::NotRunning(_) => (StatusCode::CONFLICT, "not_running"),
            NodeError::Refused(_) => (StatusCode::CONFLICT, "refused"),
            NodeError::BadInput(_) => (StatusCode::BAD_REQUEST, "bad_input"),
            NodeError::BadProgram(_) => (StatusCode::BAD_REQUEST, "bad_program"),
            NodeError::Closed => (StatusCode::SERVICE_UNAVAILABLE, "closed"),
            NodeError::Store(_) | NodeError::Codec(_) | NodeError::Duplicates(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "store")
            }
        };
        ApiError::new(status, kind, e.to_string())
    }
}

impl From<drover_store::StoreError> for ApiError {
    fn from(e: drover_store::StoreError) -> Self {
        ApiError::from(NodeError::from(e))
    }
}

type ApiResult<T> = Result<T, ApiError>;
type St = State<Arc<Api>>;

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

fn parse_run(id: &str) -> ApiResult<RunId> {
    id.parse::<RunId>()
        .map_err(|e| ApiError::bad(e.to_string()))
}

/// A JSON body, or a 400 that quotes serde's complaint.
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("{what} is not valid: {e}")))
}

/// `30s`, `500ms`, `2m`, or a bare number of seconds.
fn parse_wait(text: &str) -> ApiResult<Duration> {
    let d = match text.trim().parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(text.trim())
            .map_err(|e| ApiError::bad(format!("wait={text:?} is not a duration: {e}")))?,
    };
    Ok(d.min(MAX_WAIT))
}

async fn health(State(api): St) -> ApiResult<Json<Health>> {
    let mut workflows: Vec<String> = api
        .node()?
        .store()
        .deployments()
        .await?
        .into_iter()
        .map(|d| d.workflow)
        .collect();
    workflows.sort();
    Ok(Json(Health {
        status: "ok".into(),
        node: api.name.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        workflows,
    }))
}

impl Api {
    /// The node to ask now.
    fn node(&self) -> Result<Arc<NodeHandle>, NodeError> {
        self.source.get()
    }

    /// The parameter names of the deployed `workflow`, and its program.
    async fn params(&self, workflow: &str) -> ApiResult<(ModuleHash, Arc<Vec<String>>)> {
        let node = self.node()?;
        let store = node.store();
        let d = store
            .deployment(workflow)
            .await?
            .ok_or_else(|| ApiError::from(NodeError::UnknownWorkflow(workflow.to_owned())))?;
        let key = (d.program, workflow.to_owned());
        if let Some(p) = self.lock_params().get(&key) {
            return Ok((d.program, p.clone()));
        }
        let bytes = store.program(d.program).await?.ok_or_else(|| {
            ApiError::from(NodeError::BadProgram(format!(
                "program {} is not stored",
                d.program.short()
            )))
        })?;
        let module = drover_ir::wire::decode(&bytes)
            .map_err(|e| ApiError::from(NodeError::BadProgram(e.to_string())))?;
        let names = module
            .workflow(workflow)
            .map(|(_, w)| w.params.clone())
            .ok_or_else(|| ApiError::from(NodeError::UnknownWorkflow(workflow.to_owned())))?;
        let names = Arc::new(names);
        self.lock_params().insert(key, names.clone());
        Ok((d.program, names))
    }

    fn lock_params(&self) -> std::sync::MutexGuard<'_, ParamCache> {
        self.params.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn start(&self, workflow: &str, req: StartRequest) -> ApiResult<(RunId, bool)> {
        let (program, names) = self.params(workflow).await?;
        if let Some(want) = &req.program {
            if *want != program.to_string() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "program_mismatch",
                    format!(
                        "`{workflow}` is deployed as program {}, not {want}",
                        program.short()
                    ),
                ));
            }
        }
        let args = match (req.args, req.input) {
            (Some(_), Some(_)) => return Err(ApiError::bad("give `input` or `args`, not both")),
            (Some(args), None) => {
                if args.len() != names.len() {
                    return Err(ApiError::bad(format!(
                        "`{workflow}` takes {} arguments, got {}",
                        names.len(),
                        args.len()
                    )));
                }
                args.into_iter().map(Value::from_json).collect()
            }
            (None, input) => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                crate::cli::arguments(&names, input.unwrap_or(serde_json::Value::Null))
                    .map_err(ApiError::bad)?
            }
        };
        Ok(self.node()?.start_created(workflow, args, req.key).await?)
    }
}

async fn start(
    State(api): St,
    Path(workflow): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let mut req: StartRequest = if body.iter().all(u8::is_ascii_whitespace) {
        StartRequest::default()
    } else {
        json_body(&body, "the start request")?
    };
    if req.key.is_none() {
        if let Some(k) = headers.get("idempotency-key") {
            let k = k
                .to_str()
                .map_err(|_| ApiError::bad("the Idempotency-Key header is not text"))?;
            req.key = Some(k.to_owned());
        }
    }
    let (run, created) = api.start(&workflow, req).await?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = Started {
        run: run.to_string(),
        created,
    };
    Ok((code, Json(body)).into_response())
}

/// Starts the workflow with the body as its input and answers with the
/// result's value once the run finished durably: `Ok(v)` and plain values
/// give 200 `v`; `Err(e)` gives 422 with e's kind; a failed run 500.
async fn call(
    State(api): St,
    Path(workflow): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let input: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Null
    } else {
        json_body(&body, "the input")?
    };
    let key = match headers.get("idempotency-key") {
        Some(k) => Some(
            k.to_str()
                .map_err(|_| ApiError::bad("the Idempotency-Key header is not text"))?
                .to_owned(),
        ),
        None => None,
    };
    let req = StartRequest {
        input: Some(input),
        key,
        ..StartRequest::default()
    };
    let (run, _) = api.start(&workflow, req).await?;
    let outcome = api.node()?.result(run).await?;
    match outcome {
        crate::node::Outcome::Completed(Value::Variant(v)) if v.tag == "Err" => {
            let e: crate::Error = drover_ir::from_value(v.payload.clone())
                .unwrap_or_else(|_| crate::Error::failed(v.payload.to_string()));
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(ErrorBody {
                    error: ErrorDetail {
                        kind: e.kind,
                        message: e.message,
                    },
                }),
            )
                .into_response())
        }
        crate::node::Outcome::Completed(Value::Variant(v)) if v.tag == "Ok" => {
            Ok(Json(v.payload.to_json()).into_response())
        }
        crate::node::Outcome::Completed(v) => Ok(Json(v.to_json()).into_response()),
        crate::node::Outcome::Failed(e) => Ok((
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(ErrorBody {
                error: ErrorDetail {
                    kind: e.kind.name().to_owned(),
                    message: format!("run {run} failed: {}", e.message),
                },
            }),
        )
            .into_response()),
    }
}

async fn list(
    State(api): St,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<RunList>> {
    let mut filter = RunFilter {
        limit: DEFAULT_LIMIT,
        ..RunFilter::default()
    };
    for (k, v) in &q {
        match k.as_str() {
            "workflow" => filter.workflow = Some(v.clone()),
            "status" => {
                filter.status = Some(match v.as_str() {
                    "running" => RunStatus::Running,
                    "finished" => RunStatus::Finished,
                    _ => {
                        return Err(ApiError::bad(format!(
                            "status={v:?}: expected `running` or `finished`"
                        )))
                    }
                })
            }
            "limit" => {
                let n: usize = v
                    .parse()
                    .map_err(|_| ApiError::bad(format!("limit={v:?} is not a count")))?;
                filter.limit = n.clamp(1, MAX_LIMIT);
            }
            "after" => filter.after = Some(parse_run(v)?),
            "started_after_ms" | "started_before_ms" => {
                let ms: u64 = v
                    .parse()
                    .map_err(|_| ApiError::bad(format!("{k}={v:?} is not a time in ms")))?;
                if k == "started_after_ms" {
                    filter.started_after_ms = Some(ms);
                } else {
                    filter.started_before_ms = Some(ms);
                }
            }
            other => return Err(ApiError::bad(format!("unknown query parameter `{other}`"))),
        }
    }
    let runs = api.node()?.list(&filter).await?;
    let next = (runs.len() == filter.limit)
        .then(|| runs.last().map(|r| r.run.to_string()))
        .flatten();
    Ok(Json(RunList {
        runs: runs.iter().map(RunRow::of).collect(),
        next,
    }))
}

async fn status(State(api): St, Path(id): Path<String>) -> ApiResult<Json<Status>> {
    let run = parse_run(&id)?;
    Ok(Json(Status::of(&api.node()?.status(run).await?)))
}

async fn result(
    State(api): St,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let run = parse_run(&id)?;
    let wait = match q.get("wait") {
        Some(w) => parse_wait(w)?,
        None => Duration::ZERO,
    };
    let info = api.node()?.status(run).await?;
    let outcome = match info.outcome {
        Some(o) => Some(o),
        None if wait.is_zero() => None,
        None => match tokio::time::timeout(wait, api.node()?.result(run)).await {
            Ok(r) => Some(r?),
            Err(_) => None,
        },
    };
    let outcome = outcome.as_ref().map(OutcomeJson::of);
    let code = if outcome.is_some() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let ok = outcome.as_ref().is_some_and(OutcomeJson::ok);
    let body = RunResult {
        run: run.to_string(),
        outcome,
        ok,
    };
    Ok((code, Json(body)).into_response())
}

async fn cancel(State(api): St, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let run = parse_run(&id)?;
    let req: CancelRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CancelRequest::default()
    } else {
        json_body(&body, "the cancel request")?
    };
    ensure_running(&api, run).await?;
    let reason = req.reason.unwrap_or_else(|| "cancelled".to_owned());
    api.node()?.cancel(run, &reason).await?;
    Ok(Json(serde_json::json!({ "run": run.to_string(), "cancelled": true })).into_response())
}

async fn signal(State(api): St, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let run = parse_run(&id)?;
    let req: SignalRequest = json_body(&body, "the signal request")?;
    ensure_running(&api, run).await?;
    api.node()?
        .signal(run, &req.name, Value::from_json(req.value))
        .await?;
    Ok(Json(serde_json::json!({ "run": run.to_string(), "signal": req.name })).into_response())
}

/// 404 for an unknown run, 409 for a finished one: the loop alone would
/// answer both with a refusal.
async fn ensure_running(api: &Api, run: RunId) -> ApiResult<()> {
    let info = api.node()?.status(run).await?;
    if info.outcome.is_some() {
        return Err(ApiError::from(NodeError::NotRunning(run)));
    }
    Ok(())
}

async fn trace(State(api): St, Path(id): Path<String>) -> ApiResult<Json<Trace>> {
    let run = parse_run(&id)?;
    let info = api.node()?.status(run).await?;
    let items = api.node()?.trace(run).await?;
    Ok(Json(Trace {
        run: run.to_string(),
        workflow: info.workflow,
        node: api.name.clone(),
        tick_ms: api.node()?.tick_ms(),
        items: items.iter().map(TraceRow::of).collect(),
    }))
}

async fn journal(State(api): St, Path(id): Path<String>) -> ApiResult<Response> {
    let run = parse_run(&id)?;
    let info = api.node()?.status(run).await?;
    let entries = api.node()?.journal(run).await?;
    let dump = JournalDump {
        run: run.to_string(),
        workflow: info.workflow,
        program: info.program.to_string(),
        tick_ms: api.node()?.tick_ms(),
        entries,
    };
    let bytes = rmp_serde::to_vec_named(&dump).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "encode",
            format!("journal of {run} does not encode: {e}"),
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "application/msgpack")], bytes).into_response())
}

async fn program(State(api): St, Path(hash): Path<String>) -> ApiResult<Response> {
    let h: ModuleHash = hash
        .parse()
        .map_err(|e| ApiError::bad(format!("{hash:?} is not a program hash: {e}")))?;
    let bytes = api.node()?.store().program(h).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_program",
            format!("no program {}", h.short()),
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

async fn deploy(State(api): St, body: Bytes) -> ApiResult<Response> {
    if body.is_empty() {
        return Err(ApiError::bad("the body must be a compiled .dbc module"));
    }
    let module = drover_ir::wire::decode(&body)
        .map_err(|e| ApiError::from(NodeError::BadProgram(e.to_string())))?;
    let workflows: Vec<String> = module.workflows.iter().map(|w| w.name.clone()).collect();
    let hash = api.node()?.deploy(body.to_vec()).await?;
    let answer = Deployed {
        program: hash.to_string(),
        workflows,
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// One NDJSON line.
fn line<T: Serialize>(v: &T) -> Bytes {
    let mut s = serde_json::to_vec(v).unwrap_or_default();
    s.push(b'\n');
    Bytes::from(s)
}

async fn logs(State(api): St, Query(q): Query<HashMap<String, String>>) -> ApiResult<Response> {
    let filter = match q.get("filter").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        Some(text) => Some(Filter::parse(text).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_filter",
                drover_ir::diagnostics::render(&e),
            )
        })?),
        None => None,
    };
    let follow = match q.get("follow").map(String::as_str) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") | Some("") => true,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "follow={other:?}: expected true or false"
            )))
        }
    };
    let limit = match q.get("limit") {
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiError::bad(format!("limit={v:?} is not a count")))?,
        None => usize::MAX,
    };
    let keep = move |e: &LogEvent| filter.as_ref().is_none_or(|f| f.matches(e));
    // Subscribe before reading the ring, so that nothing falls in between.
    let node = api.node()?;
    let rx = follow.then(|| node.subscribe_logs());
    let past: Vec<LogEvent> = api.node()?.logs().into_iter().filter(|e| keep(e)).collect();
    let skip = past.len().saturating_sub(limit);
    let mut body = Vec::new();
    for e in &past[skip..] {
        body.extend_from_slice(&line(e));
    }
    let headers = [(header::CONTENT_TYPE, "application/x-ndjson")];
    let Some(rx) = rx else {
        return Ok((headers, body).into_response());
    };
    let first = futures::stream::iter(
        (!body.is_empty()).then(|| Ok::<Bytes, std::convert::Infallible>(Bytes::from(body))),
    );
    let closing = api.closing.clone();
    let rest = futures::stream::unfold(
        (rx, keep, closing),
        |(mut rx, keep, mut closing)| async move {
            loop {
                if *closing.borrow() {
                    return None;
                }
                let got = tokio::select! {
                    got = rx.recv() => got,
                    _ = closing.changed() => return None,
                };
                match got {
                    Ok(e) if keep(&e) => {
                        return Some((
                            Ok::<Bytes, std::convert::Infallible>(line(&e)),
                            (rx, keep, closing),
                        ))
                    }
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        let note = serde_json::json!({ "lagged": n });
                        return Some((Ok(line(&note)), (rx, keep, closing)));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    use futures::StreamExt as _;
    Ok((headers, Body::from_stream(first.chain(rest))).into_response())
}

/// The API server as a service of a supervised node
/// ([`NodeServices::service`](crate::node::NodeServices::service)): each
/// start serves a clone of the one listening socket, so a restart keeps the
/// address; a server that stops by itself is a crash, and the supervisor
/// restarts it.
pub struct ApiService {
    task: crate::node::owned_task::OwnedTask<std::io::Result<()>>,
}

/// What an [`ApiService`] starts from.
#[derive(Clone)]
pub struct ApiServiceArgs {
    /// The bound socket, shared by every incarnation.
    pub listener: Arc<std::net::TcpListener>,
    /// The supervised node.
    pub node: NodeRef,
}

impl drover_supervisor::Server for ApiService {
    type Args = ApiServiceArgs;
    type Call = ();
    type Reply = ();
    type Cast = ();

    async fn init(args: ApiServiceArgs) -> Result<Self, drover_supervisor::ExitReason> {
        use drover_supervisor::ExitReason;
        let socket = args
            .listener
            .try_clone()
            .and_then(|s| {
                s.set_nonblocking(true)?;
                tokio::net::TcpListener::from_std(s)
            })
            .map_err(|e| ExitReason::error(format!("api: the listening socket: {e}")))?;
        let task = crate::node::owned_task::OwnedTask::spawn(|stop| serve(socket, args.node, stop));
        Ok(ApiService { task })
    }

    async fn handle_call(&mut self, _: ()) -> Result<(), drover_supervisor::ExitReason> {
        Ok(())
    }

    async fn handle_cast(&mut self, _: ()) -> Result<(), drover_supervisor::ExitReason> {
        Ok(())
    }

    async fn handle_info(&mut self) -> Result<(), drover_supervisor::ExitReason> {
        use drover_supervisor::ExitReason;
        Err(match self.task.ended().await {
            Ok(Ok(())) => ExitReason::error("api: the server stopped by itself"),
            Ok(Err(e)) => ExitReason::error(format!("api: serving failed: {e}")),
            Err(e) => ExitReason::error(format!("api: the server task failed: {e}")),
        })
    }

    async fn terminate(&mut self, _: &drover_supervisor::ExitReason) {
        // Requests in flight get 10 s to finish; a follow stream is cut.
        self.task.stop(Duration::from_secs(10)).await;
    }
}
