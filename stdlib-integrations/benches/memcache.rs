//! The cost of going through the integration layer: a memcache `get` via
//! `Integrations::perform` against the same `get` made directly, on a real
//! memcached (`DROVER_MEMCACHED`, default 127.0.0.1:11211).
//!
//! - `raw_client`: async-memcached's `meta_get` on one connection, no pool.
//! - `server_cache`: `ServerCache::get`: pool checkout, timeout, error mapping.
//! - `integrations_perform`: `Integrations::perform("memcache.get", ..)`:
//!   dispatch, argument checks and value decoding on top.
//!
//! After criterion's report it prints per-operation means from its own timed
//! loop and their ratios.

use std::time::{Duration, Instant};

use async_memcached::{Client, MetaProtocol};
use criterion::Criterion;
use drover_integrations::memcache::{Cache, ServerCache};
use drover_integrations::{Config, Integrations, MemcacheConfig};
use drover_ir::Value;

const KEY: &str = "drover-bench-key";

fn addr() -> String {
    std::env::var("DROVER_MEMCACHED").unwrap_or_else(|_| "127.0.0.1:11211".into())
}

struct Setup {
    rt: tokio::runtime::Runtime,
    raw: std::cell::RefCell<Client>,
    cache: ServerCache,
    reg: Integrations,
}

fn setup() -> Option<Setup> {
    // One runtime for setup and measurement: connections belong to the
    // runtime that opened them.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let addr = addr();
    let (raw, cache, reg) = rt.block_on(async {
        let raw = match Client::new(format!("tcp://{addr}")).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("*** SKIPPED: no memcached at {addr}: {e} ***");
                return None;
            }
        };
        let config = MemcacheConfig::new(vec![addr.clone()]);
        let cache = ServerCache::new(&config).ok()?;
        let reg = Integrations::from_config(&Config {
            memcache: Some(config),
            ..Config::default()
        })
        .await
        .ok()?;
        // A 100-byte string value, stored the integration's way.
        let value = Value::Str("x".repeat(100));
        reg.perform(
            "memcache.set",
            vec![Value::Str(KEY.into()), value, Value::Int(0)],
            "bench/0",
            1,
            None,
        )
        .await
        .ok()?;
        Some((raw, cache, reg))
    })?;
    Some(Setup {
        rt,
        raw: std::cell::RefCell::new(raw),
        cache,
        reg,
    })
}

// Operations run one at a time on a current-thread runtime, so the borrow
// is never contended; a RefCell keeps a lock's cost out of the baseline.
#[allow(clippy::await_holding_refcell_ref)]
async fn raw_get(s: &Setup) {
    let v = s
        .raw
        .borrow_mut()
        .meta_get(KEY, false, None, Some(&["v", "f", "c"]))
        .await
        .unwrap();
    assert!(v.is_some());
}

async fn cache_get(s: &Setup) {
    assert!(s.cache.get(KEY).await.unwrap().is_some());
}

async fn perform_get(s: &Setup) {
    let v = s
        .reg
        .perform(
            "memcache.get",
            vec![Value::Str(KEY.into())],
            "bench/1",
            1,
            None,
        )
        .await
        .unwrap();
    assert!(!v.is_null());
}

fn bench(c: &mut Criterion, s: &Setup) {
    let mut g = c.benchmark_group("memcache_get");
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("raw_client", |b| b.iter(|| s.rt.block_on(raw_get(s))));
    g.bench_function("server_cache", |b| b.iter(|| s.rt.block_on(cache_get(s))));
    g.bench_function("integrations_perform", |b| {
        b.iter(|| s.rt.block_on(perform_get(s)))
    });
    g.finish();
}

/// Mean time per operation over `n` sequential operations.
fn mean(
    s: &Setup,
    n: u32,
    op: for<'a> fn(&'a Setup) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>,
) -> Duration {
    s.rt.block_on(async {
        let start = Instant::now();
        for _ in 0..n {
            op(s).await;
        }
        start.elapsed() / n
    })
}

fn main() {
    let Some(s) = setup() else { return };
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &s);
    c.final_summary();

    let n = 20_000;
    // Interleave rounds so drift in the machine's load hits all three alike.
    let (mut raw, mut cache, mut perform) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..3 {
        raw += mean(&s, n, |s| Box::pin(raw_get(s)));
        cache += mean(&s, n, |s| Box::pin(cache_get(s)));
        perform += mean(&s, n, |s| Box::pin(perform_get(s)));
    }
    let (raw, cache, perform) = (raw / 3, cache / 3, perform / 3);
    println!("memcache get, mean per operation over 3 x {n}:");
    println!("  raw client           {raw:?}");
    println!(
        "  ServerCache::get     {cache:?}  ({:.3}x raw)",
        cache.as_secs_f64() / raw.as_secs_f64()
    );
    println!(
        "  Integrations::perform {perform:?}  ({:.3}x raw, {:.3}x ServerCache, +{:?} per op over raw)",
        perform.as_secs_f64() / raw.as_secs_f64(),
        perform.as_secs_f64() / cache.as_secs_f64(),
        perform.saturating_sub(raw)
    );
}
