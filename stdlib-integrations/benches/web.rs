//! The cost of the HTTP-based integrations' own work, over loopback:
//!
//! - `rate_limiter_take`: one token-bucket decision among 1,000 keys.
//! - `raw_reqwest_get`: a GET with a bare pooled `reqwest::Client` to a
//!   loopback axum server, the floor for the next one.
//! - `http_request_perform`: the same GET through
//!   `HttpIntegration::perform`: argument checks, the idempotency header,
//!   the retry wrapper, the per-host bucket and the result record.
//! - `slack_embedded_post`: `slack.post` into the embedded sink.

use std::time::{Duration, Instant};

use criterion::Criterion;
use drover_integrations::http::{HostRate, HttpConfig, HttpIntegration};
use drover_integrations::slack::SlackIntegration;
use drover_integrations::web::RateLimiter;
use drover_integrations::{EffectCall, Integration};
use drover_ir::Value;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let base = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new().route(
            "/ping",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"ok": true})) }),
        );
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        format!("http://{addr}")
    });
    let mut c = Criterion::default().configure_from_args();

    let limiter = RateLimiter::new(1e9, 1_000_000);
    let keys: Vec<String> = (0..1000).map(|i| format!("channel-{i}")).collect();
    let mut i = 0usize;
    c.bench_function("rate_limiter_take", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            limiter.try_take(&keys[i], Instant::now())
        })
    });

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let url = format!("{base}/ping");
    c.bench_function("raw_reqwest_get", |b| {
        b.to_async(&rt).iter(|| async {
            let r = client.get(&url).send().await.unwrap();
            r.bytes().await.unwrap()
        })
    });

    let mut config = HttpConfig::default();
    config.hosts.insert(
        "127.0.0.1".into(),
        HostRate {
            rate_per_second: 1e9,
            burst: 1_000_000,
        },
    );
    let http = HttpIntegration::new(&config).unwrap();
    c.bench_function("http_request_perform", |b| {
        b.to_async(&rt).iter(|| async {
            let args = vec![
                Value::Str("GET".into()),
                Value::Str(url.clone()),
                Value::Null,
                Value::Null,
            ];
            http.perform(EffectCall::new("request", args, "bench/1"))
                .await
                .unwrap()
        })
    });

    let slack = SlackIntegration::embedded();
    c.bench_function("slack_embedded_post", |b| {
        b.to_async(&rt).iter(|| async {
            let args = vec![
                Value::Str("#bench".into()),
                Value::Str("hello".into()),
                Value::Null,
            ];
            slack
                .perform(EffectCall::new("post", args, "bench/2"))
                .await
                .unwrap()
        })
    });
    c.final_summary();
}
