//! RabbitMQ and Logstash through the integration layer.
//!
//! - `rabbitmq/publish_confirmed`: one `rabbitmq.publish` via
//!   `Integrations::perform`: a persistent message to a durable queue, the
//!   broker's confirm awaited (`DROVER_RABBITMQ_URL`, default
//!   amqp://guest:guest@127.0.0.1:5672/%2f).
//! - `rabbitmq/publish_then_next`: a publish, then `rabbitmq.next` taking
//!   and acking it.
//! - `logstash/send`: one `logstash.send` (the enqueue the effect waits
//!   for), with the shipper draining to a local TCP receiver.
//!
//! After criterion's report it prints sustained rates from its own timed
//! runs: confirmed publishes per second one at a time, and lines per second
//! from `send` until a TCP receiver has read them all.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use drover_integrations::{Config, Integrations, LogstashConfig, RabbitmqConfig};
use drover_ir::Value;
use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use tokio::io::AsyncBufReadExt;

struct Setup {
    rt: tokio::runtime::Runtime,
    reg: Integrations,
    queue: String,
    received: Arc<AtomicUsize>,
    admin: Option<lapin::Channel>,
}

fn url() -> String {
    std::env::var("DROVER_RABBITMQ_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let queue = format!("drover-bench-{}", std::process::id());
    let received = Arc::new(AtomicUsize::new(0));
    let (reg, admin) = rt.block_on(async {
        // A TCP receiver standing in for Logstash: counts lines.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let r = received.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let r = r.clone();
                tokio::spawn(async move {
                    let mut lines = tokio::io::BufReader::new(sock).lines();
                    while let Ok(Some(_)) = lines.next_line().await {
                        r.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        let mut config = Config {
            logstash: Some(LogstashConfig::new(addr)),
            ..Config::default()
        };
        let admin = match lapin::Connection::connect(&url(), Default::default()).await {
            Ok(conn) => {
                let ch = conn.create_channel().await.unwrap();
                ch.queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions::durable(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
                config.rabbitmq = Some(RabbitmqConfig::new(url()));
                // The connection lives as long as the process.
                std::mem::forget(conn);
                Some(ch)
            }
            Err(e) => {
                eprintln!(
                    "*** SKIPPED rabbitmq benches: no broker at {}: {e} ***",
                    url()
                );
                None
            }
        };
        (Integrations::from_config(&config).await.unwrap(), admin)
    });
    Setup {
        rt,
        reg,
        queue,
        received,
        admin,
    }
}

async fn publish(s: &Setup, i: u64) {
    s.reg
        .perform(
            "rabbitmq.publish",
            vec![
                Value::Str(String::new()),
                Value::Str(s.queue.clone()),
                Value::record([
                    ("order", Value::Int(i as i64)),
                    ("sku", Value::Str("A-1".into())),
                ]),
            ],
            &format!("bench/{i}"),
            1,
            None,
        )
        .await
        .unwrap();
}

async fn next(s: &Setup) {
    let v = s
        .reg
        .perform(
            "rabbitmq.next",
            vec![Value::Str(s.queue.clone())],
            "bench/n",
            1,
            None,
        )
        .await
        .unwrap();
    assert!(!v.is_null());
}

async fn send(s: &Setup, i: u64) {
    s.reg
        .perform(
            "logstash.send",
            vec![Value::record([
                ("n", Value::Int(i as i64)),
                ("level", Value::Str("info".into())),
            ])],
            "bench/l",
            1,
            None,
        )
        .await
        .unwrap();
}

fn purge(s: &Setup) {
    if let Some(ch) = &s.admin {
        s.rt.block_on(async {
            let _ = ch
                .queue_purge(s.queue.as_str().into(), Default::default())
                .await;
        });
    }
}

fn main() {
    let s = setup();
    let mut c = Criterion::default().configure_from_args();
    let mut i = 0u64;
    if s.admin.is_some() {
        let mut g = c.benchmark_group("rabbitmq");
        g.measurement_time(Duration::from_secs(5));
        g.bench_function("publish_confirmed", |b| {
            b.iter(|| {
                i += 1;
                s.rt.block_on(publish(&s, i))
            })
        });
        purge(&s);
        g.bench_function("publish_then_next", |b| {
            b.iter(|| {
                i += 1;
                s.rt.block_on(async {
                    publish(&s, i).await;
                    next(&s).await;
                })
            })
        });
        g.finish();
        purge(&s);
    }
    let mut g = c.benchmark_group("logstash");
    g.bench_function("send", |b| {
        b.iter(|| {
            i += 1;
            s.rt.block_on(send(&s, i))
        })
    });
    g.finish();
    c.final_summary();

    if s.admin.is_some() {
        let n = 2_000;
        let start = Instant::now();
        s.rt.block_on(async {
            for k in 0..n {
                publish(&s, 1_000_000 + k).await;
            }
        });
        let t = start.elapsed();
        println!(
            "rabbitmq: {n} confirmed persistent publishes one at a time in {t:?}: {:.0}/s",
            n as f64 / t.as_secs_f64()
        );
        purge(&s);
    }

    let shipper = s.reg.log_shipper().unwrap();
    assert!(s.rt.block_on(shipper.flush(Duration::from_secs(30))));
    // Wait for the receiver to catch up with what was already sent.
    let target = shipper.stats().sent as usize;
    while s.received.load(Ordering::Relaxed) < target {
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = s.received.load(Ordering::Relaxed);
    let n = 100_000u64;
    let start = Instant::now();
    s.rt.block_on(async {
        for k in 0..n {
            send(&s, k).await;
            // Stay within the buffer so nothing is dropped.
            if k % 5_000 == 4_999 {
                shipper.flush(Duration::from_secs(30)).await;
            }
        }
    });
    while s.received.load(Ordering::Relaxed) < before + n as usize {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "lines went missing"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let t = start.elapsed();
    println!(
        "logstash: {n} events sent and read by a TCP receiver in {t:?}: {:.0}/s; dropped {}",
        n as f64 / t.as_secs_f64(),
        shipper.dropped()
    );

    if let Some(ch) = &s.admin {
        s.rt.block_on(async {
            let _ = ch
                .queue_delete(s.queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        });
    }
}
