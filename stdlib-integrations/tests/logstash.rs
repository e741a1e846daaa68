//! The logstash integration against real TCP and UDP receivers: every line
//! arrives as valid JSON in order; an outage drops the oldest lines beyond
//! the buffer, counts them, and the rest arrive once the receiver is back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drover_integrations::logstash::{LogstashIntegration, Protocol, Shipper};
use drover_integrations::{
    Config, EffectCall, HealthStatus, Integration, Integrations, LogstashConfig,
};
use drover_ir::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// A Logstash `tcp` input stand-in: keeps every line it reads, from every
/// connection, in arrival order.
struct Receiver {
    lines: Arc<Mutex<Vec<String>>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Receiver {
    async fn start(port: u16, lines: Arc<Mutex<Vec<String>>>) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (l, t) = (lines.clone(), tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let l = l.clone();
                t.lock().unwrap().push(tokio::spawn(async move {
                    let mut reader = BufReader::new(sock).lines();
                    while let Ok(Some(line)) = reader.next_line().await {
                        l.lock().unwrap().push(line);
                    }
                }));
            }
        });
        Receiver {
            lines,
            tasks,
            accept,
        }
    }

    /// Closes the listener and every connection.
    async fn stop(self) {
        self.accept.abort();
        let _ = self.accept.await;
        let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
    }

    fn count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The `n` field of each line, checking each is a JSON object.
fn numbers(lines: &[String]) -> Vec<i64> {
    lines
        .iter()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"));
            v["n"].as_i64().unwrap_or_else(|| panic!("no n: {l:?}"))
        })
        .collect()
}

fn send(n: i64) -> EffectCall<'static> {
    EffectCall::new(
        "send",
        vec![Value::record([
            ("n", Value::Int(n)),
            ("msg", Value::Str(format!("event \"{n}\"\nwith a break"))),
        ])],
        "r/1",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_once_as_json_in_order() {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let rx = Receiver::start(port, lines.clone()).await;
    let mut config = LogstashConfig::new(format!("127.0.0.1:{port}"));
    config.buffer = 100_000;
    let logstash = LogstashIntegration::new(Shipper::start(&config));
    let total = 5_000;
    for n in 0..total {
        if n % 2 == 0 {
            assert_eq!(logstash.perform(send(n)).await, Ok(Value::Null));
        } else {
            // The node's own log lines take the same path.
            assert!(logstash
                .shipper()
                .ship(&format!("{{\"n\":{n},\"level\":\"info\"}}")));
        }
    }
    assert!(logstash.shipper().flush(Duration::from_secs(15)).await);
    wait_for("every line", || rx.count() == total as usize).await;
    let got = lines.lock().unwrap().clone();
    assert_eq!(numbers(&got), (0..total).collect::<Vec<_>>());
    let first: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(first["msg"], "event \"0\"\nwith a break");
    let stats = logstash.shipper().stats();
    assert_eq!(
        (stats.sent, stats.dropped, stats.buffered),
        (total as u64, 0, 0)
    );
    assert_eq!(stats.connections, 1);
    assert_eq!(logstash.health().await.status, HealthStatus::Up);
    rx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_keeps_the_newest_lines_counts_the_dropped_and_delivers_the_rest() {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let rx = Receiver::start(port, lines.clone()).await;
    let mut config = LogstashConfig::new(format!("127.0.0.1:{port}"));
    config.buffer = 50;
    let shipper = Shipper::start(&config);
    let logstash = LogstashIntegration::new(shipper.clone());

    // Within the buffer at any time while Logstash is up: nothing dropped.
    for n in 0..100 {
        logstash.perform(send(n)).await.unwrap();
        if n % 25 == 24 {
            assert!(shipper.flush(Duration::from_secs(10)).await);
        }
    }
    assert_eq!(shipper.dropped(), 0);
    wait_for("the first 100 lines", || rx.count() == 100).await;

    // Logstash goes away; the shipper sees the connection closed.
    rx.stop().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    for n in 100..300 {
        logstash.perform(send(n)).await.unwrap();
    }
    wait_for("the shipper to notice", || !shipper.stats().connected).await;
    let stats = shipper.stats();
    assert_eq!(stats.dropped, 150, "{stats:?}");
    assert_eq!(stats.buffered, 50, "{stats:?}");
    assert_eq!(shipper.dropped(), 150);
    let health = logstash.health().await;
    assert_eq!(health.status, HealthStatus::Degraded);
    assert!(health.detail.contains("150 dropped"), "{}", health.detail);

    // Back: the 50 newest arrive, in order, after the first 100.
    let rx = Receiver::start(port, lines.clone()).await;
    wait_for("the buffered lines", || rx.count() == 150).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = lines.lock().unwrap().clone();
    let expected: Vec<i64> = (0..100).chain(250..300).collect();
    assert_eq!(numbers(&got), expected);
    let stats = shipper.stats();
    assert!(stats.connected && stats.connections >= 2, "{stats:?}");
    assert_eq!((stats.sent, stats.buffered), (150, 0), "{stats:?}");
    rx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_sends_one_datagram_per_event() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut config = LogstashConfig::new(socket.local_addr().unwrap().to_string());
    config.protocol = Protocol::Udp;
    let logstash = LogstashIntegration::new(Shipper::start(&config));
    for n in 0..50 {
        logstash.perform(send(n)).await.unwrap();
    }
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65_536];
    for _ in 0..50 {
        let len = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
            .await
            .expect("a datagram")
            .unwrap();
        let text = std::str::from_utf8(&buf[..len]).unwrap();
        let line = text.strip_suffix('\n').expect("newline-terminated");
        assert!(!line.contains('\n'), "one event per datagram: {text:?}");
        got.push(line.to_owned());
    }
    assert_eq!(numbers(&got), (0..50).collect::<Vec<_>>());
    // Too big for a datagram: refused up front, not silently lost.
    let huge = EffectCall::new("send", vec![Value::Str("x".repeat(70_000))], "r/2");
    assert_eq!(logstash.perform(huge).await.unwrap_err().kind, "too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_section_events_go_to_the_bounded_in_memory_sink() {
    let reg = Integrations::from_config(&Config::default()).await.unwrap();
    assert!(reg.is_embedded("logstash") && reg.is_embedded("rabbitmq"));
    for n in 0..3 {
        reg.perform(
            "logstash.send",
            vec![Value::record([("n", Value::Int(n))])],
            "r/1",
            1,
            None,
        )
        .await
        .unwrap();
    }
    let shipper = reg.log_shipper().expect("a shipper");
    assert!(shipper.is_embedded());
    shipper.ship(r#"{"n":3}"#);
    assert_eq!(numbers(&shipper.lines()), [0, 1, 2, 3]);
    let e = reg
        .perform("logstash.send", vec![], "r/2", 1, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, "bad_argument");
}

#[test]
fn config_reads_from_toml_and_env_and_names_bad_keys() {
    let c = Config::from_toml(
        "[logstash]\naddr = \"logs:5000\"\nprotocol = \"udp\"\nbuffer = 20\n",
        "drover.toml",
    )
    .unwrap();
    let l = c.logstash.unwrap();
    assert_eq!(
        (l.addr.as_str(), l.protocol, l.buffer),
        ("logs:5000", Protocol::Udp, 20)
    );

    let e = Config::from_toml(
        "[logstash]\naddr = \"logs\"\nprotocol = \"http\"\nbuffer = 0\n",
        "drover.toml",
    )
    .unwrap_err();
    let keys: Vec<&str> = e.issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        ["logstash.addr", "logstash.protocol", "logstash.buffer"]
    );
    assert!(
        e.render().contains("expected \"tcp\" or \"udp\""),
        "{}",
        e.render()
    );

    let env: HashMap<&str, &str> = [
        ("DROVER_LOGSTASH_ADDR", "127.0.0.1:5044"),
        ("DROVER_LOGSTASH_BUFFER", "7"),
    ]
    .into();
    let mut c = Config::default();
    c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
    let l = c.logstash.unwrap();
    assert_eq!(
        (l.addr.as_str(), l.protocol, l.buffer),
        ("127.0.0.1:5044", Protocol::Tcp, 7)
    );

    let mut c = Config::default();
    let e = c
        .apply_env(|k| (k == "DROVER_LOGSTASH_PROTOCOL").then(|| "udp".to_owned()))
        .unwrap_err();
    assert!(e.to_string().contains("DROVER_LOGSTASH_ADDR"), "{e}");
}
