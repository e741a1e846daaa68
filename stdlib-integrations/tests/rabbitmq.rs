//! The rabbitmq integration against a real RabbitMQ: publish with confirms,
//! next, failures, a connection cut mid-publish, and queue-triggered starts.

mod common;
#[path = "common/proxy.rs"]
mod proxy;

use proxy::Proxy;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drover_integrations::rabbitmq::trigger::{self, StartError, Starter, TriggerConfig};
use drover_integrations::rabbitmq::{RabbitmqIntegration, ServerBroker};
use drover_integrations::{EffectCall, EffectFailure, Integration, RabbitmqConfig};
use drover_ir::Value;
use lapin::options::{BasicGetOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::Notify;

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

/// A queue of our own on the test broker, deleted on `cleanup`.
struct TestQueue {
    name: String,
    _conn: Connection,
    channel: Channel,
}

impl TestQueue {
    async fn new(url: &str, tag: &str) -> TestQueue {
        let conn = Connection::connect(url, ConnectionProperties::default())
            .await
            .expect("connect to the test broker");
        let channel = conn.create_channel().await.unwrap();
        let name = common::unique(tag);
        // The broker deletes the queue a minute after its last use, should
        // a failing test not reach `cleanup`.
        let mut args = FieldTable::default();
        args.insert("x-expires".into(), AMQPValue::LongUInt(60_000));
        channel
            .queue_declare(name.as_str().into(), QueueDeclareOptions::durable(), args)
            .await
            .unwrap();
        TestQueue {
            name,
            _conn: conn,
            channel,
        }
    }

    /// Ready messages (not counting ones delivered and unacked).
    async fn ready(&self) -> u32 {
        self.channel
            .queue_declare(
                self.name.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap()
            .message_count()
    }

    /// Takes every message: (message_id, body, delivery mode).
    async fn drain(&self) -> Vec<(String, Vec<u8>, Option<u8>)> {
        let mut out = Vec::new();
        while let Some(m) = self
            .channel
            .basic_get(self.name.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            let d = m.delivery;
            out.push((
                d.properties
                    .message_id()
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
                d.data.clone(),
                *d.properties.delivery_mode(),
            ));
        }
        out
    }

    async fn cleanup(self) {
        let _ = self
            .channel
            .queue_delete(self.name.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
}

fn integration(url: &str) -> RabbitmqIntegration<ServerBroker> {
    let mut c = RabbitmqConfig::new(url);
    c.confirm_timeout = Duration::from_secs(3);
    c.next_wait = Duration::from_millis(300);
    RabbitmqIntegration::new(ServerBroker::new(&c).unwrap())
}

async fn publish(
    r: &RabbitmqIntegration<ServerBroker>,
    exchange: &str,
    key: &str,
    body: Value,
    effect_id: &str,
    attempt: u32,
) -> Result<Value, EffectFailure> {
    let mut call = EffectCall::new("publish", vec![s(exchange), s(key), body], effect_id);
    call.attempt = attempt;
    r.perform(call).await
}

async fn next(r: &RabbitmqIntegration<ServerBroker>, queue: &str) -> Result<Value, EffectFailure> {
    r.perform(EffectCall::new("next", vec![s(queue)], "r/next"))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_values_come_back_in_order_with_the_effect_id_as_message_id() {
    let Some(url) = common::rabbitmq() else {
        return;
    };
    let q = TestQueue::new(&url, "rt").await;
    let r = integration(&url);
    let values = [
        s("hello"),
        s("42"),
        Value::Bytes(vec![0, 255, 1]),
        Value::Int(7),
        Value::record([("order", Value::Int(1)), ("sku", s("A-1"))]),
    ];
    for (i, v) in values.iter().enumerate() {
        let id = format!("run-rt/{i}");
        assert_eq!(
            publish(&r, "", &q.name, v.clone(), &id, 1).await,
            Ok(Value::Null)
        );
    }
    assert_eq!(q.ready().await, values.len() as u32);
    for v in &values {
        assert_eq!(next(&r, &q.name).await.as_ref(), Ok(v));
    }
    // Acked: nothing is left, delivered or not.
    assert_eq!(q.ready().await, 0);
    let empty = next(&r, &q.name).await.unwrap_err();
    assert_eq!((empty.kind.as_str(), empty.retryable), ("empty", true));

    // What the broker holds: persistent, message_id = effect id.
    publish(&r, "", &q.name, s("raw"), "run-rt/9", 1)
        .await
        .unwrap();
    let got = q.drain().await;
    assert_eq!(got, [("run-rt/9".to_owned(), b"raw".to_vec(), Some(2))]);

    assert!(matches!(
        r.health().await.status,
        drover_integrations::HealthStatus::Up
    ));
    assert_eq!(r.broker().connections_opened(), 1);
    q.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_exchanges_queues_and_routes_fail_clearly() {
    let Some(url) = common::rabbitmq() else {
        return;
    };
    let r = integration(&url);
    let missing = common::unique("no-such");
    let e = publish(&r, &missing, "k", s("x"), "r/1", 1)
        .await
        .unwrap_err();
    assert_eq!((e.kind.as_str(), e.retryable), ("not_found", false), "{e}");
    let e = next(&r, &missing).await.unwrap_err();
    assert_eq!((e.kind.as_str(), e.retryable), ("not_found", false), "{e}");
    // The default exchange with no such queue: returned, so not silently lost.
    let e = publish(&r, "", &missing, s("x"), "r/2", 1)
        .await
        .unwrap_err();
    assert_eq!((e.kind.as_str(), e.retryable), ("unroutable", true), "{e}");
    let e = publish(&r, "", &"q".repeat(256), s("x"), "r/3", 1)
        .await
        .unwrap_err();
    assert_eq!(e.kind, "bad_argument");
    let e = next(&r, "").await.unwrap_err();
    assert_eq!(e.kind, "bad_argument");
    // The failed channels were discarded; the connection still serves.
    let q = TestQueue::new(&url, "after-errors").await;
    publish(&r, "", &q.name, Value::Int(1), "r/4", 1)
        .await
        .unwrap();
    assert_eq!(next(&r, &q.name).await, Ok(Value::Int(1)));
    q.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_fails_retryably_and_redacts_the_password() {
    let port = common::free_port();
    let mut c = RabbitmqConfig::new(format!("amqp://guest:hunter2@127.0.0.1:{port}/%2f"));
    c.connect_timeout = Duration::from_secs(2);
    let r = RabbitmqIntegration::new(ServerBroker::new(&c).unwrap());
    let e = publish(&r, "", "q", s("x"), "r/1", 1).await.unwrap_err();
    assert_eq!((e.kind.as_str(), e.retryable), ("unavailable", true), "{e}");
    assert!(!e.message.contains("hunter2"), "{e}");
    let h = r.health().await;
    assert_eq!(h.status, drover_integrations::HealthStatus::Down);
    assert!(!h.detail.contains("hunter2"), "{}", h.detail);
    assert!(h.detail.contains("[redacted]"), "{}", h.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_mid_publish_fails_retryably_and_the_retry_loses_nothing() {
    let Some(url) = common::rabbitmq() else {
        return;
    };
    let upstream = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|auth| auth.rsplit('@').next())
        .unwrap()
        .to_owned();
    let proxy = Proxy::start(upstream.clone()).await;
    let proxied = url.replace(&upstream, &format!("127.0.0.1:{}", proxy.port));
    let q = TestQueue::new(&url, "cut").await;
    let r = Arc::new(integration(&proxied));

    // Confirmed before the fault: these must all survive it.
    for i in 0..5 {
        publish(&r, "", &q.name, Value::Int(i), &format!("run-cut/{i}"), 1)
            .await
            .unwrap();
    }

    // The broker takes the message, but its confirm is held back; then the
    // connection is cut.
    proxy.hold.store(true, Ordering::SeqCst);
    let name = q.name.clone();
    let r2 = r.clone();
    let attempt1 =
        tokio::spawn(async move { publish(&r2, "", &name, s("payload"), "run-cut/5", 1).await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while q.ready().await < 6 {
        assert!(
            Instant::now() < deadline,
            "the broker never got the publish"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxy.cut_all();
    let e = attempt1.await.unwrap().unwrap_err();
    assert!(e.retryable, "{e:?}");
    assert!(e.kind == "unavailable" || e.kind == "timeout", "{e:?}");

    // The retry, as the node's retry policy would make it: same effect id.
    let mut attempt = 2;
    loop {
        match publish(&r, "", &q.name, s("payload"), "run-cut/5", attempt).await {
            Ok(_) => break,
            Err(e) => {
                assert!(e.retryable, "{e:?}");
                assert!(attempt < 20, "the retries never succeeded: {e:?}");
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    assert!(r.broker().connections_opened() >= 2);

    let got = q.drain().await;
    let mut by_id: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for (id, body, mode) in got {
        assert_eq!(mode, Some(2), "persistent");
        by_id.entry(id).or_default().push(body);
    }
    for i in 0..5 {
        assert_eq!(
            by_id.get(&format!("run-cut/{i}")),
            Some(&vec![i.to_string().into_bytes()]),
            "confirmed publish {i}"
        );
    }
    // At least once: the cut attempt's copy and the retry's, under one id.
    let dup = &by_id["run-cut/5"];
    assert!(dup.len() >= 2, "{dup:?}");
    assert!(dup.iter().all(|b| b == b"payload"));
    assert_eq!(by_id.len(), 6, "{:?}", by_id.keys());
    q.cleanup().await;
}

/// A starter that records runs by key, as the node would: a second start
/// with a known key is a no-op. Keys in `fail_first` fail their first start.
#[derive(Default)]
struct Recorder {
    runs: Mutex<BTreeMap<String, Value>>,
    calls: Mutex<BTreeMap<String, u32>>,
    fail_first: Vec<String>,
    /// Keys whose body is never a valid input.
    reject: Vec<String>,
    expected: usize,
    all_started: Notify,
}

impl Starter for Recorder {
    async fn start(&self, message_id: &str, body: Value) -> Result<(), StartError> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(message_id.to_owned()).or_default();
            *n += 1;
            *n
        };
        if n == 1 && self.fail_first.iter().any(|k| k == message_id) {
            return Err("the store is busy".into());
        }
        if self.reject.iter().any(|k| k == message_id) {
            return Err(StartError::reject("missing field `n`"));
        }
        let mut runs = self.runs.lock().unwrap();
        runs.entry(message_id.to_owned()).or_insert(body);
        if runs.len() == self.expected {
            self.all_started.notify_one();
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_queued_message_starts_one_run_and_failed_starts_are_redelivered() {
    let Some(url) = common::rabbitmq() else {
        return;
    };
    let q = TestQueue::new(&url, "trigger").await;
    let r = integration(&url);
    let n = 20;
    for i in 0..n {
        let body = Value::record([("n", Value::Int(i))]);
        publish(&r, "", &q.name, body, &format!("order/{i}"), 1)
            .await
            .unwrap();
    }
    let recorder = Recorder {
        fail_first: vec!["order/3".into(), "order/17".into()],
        expected: n as usize,
        ..Recorder::default()
    };
    let mut config = TriggerConfig::new(RabbitmqConfig::new(url.clone()), q.name.clone());
    config.retry_pause = Duration::from_millis(10);
    let stop = async {
        tokio::time::timeout(Duration::from_secs(20), recorder.all_started.notified())
            .await
            .expect("every message started a run");
        // Let the last ack reach the broker before the trigger closes.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stats = trigger::run(&config, &recorder, stop).await;

    let runs = recorder.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), n as usize);
    for i in 0..n {
        assert_eq!(
            runs.get(&format!("order/{i}")),
            Some(&Value::record([("n", Value::Int(i))]))
        );
    }
    let calls = recorder.calls.lock().unwrap().clone();
    assert_eq!(calls["order/3"], 2, "redelivered after the failed start");
    assert_eq!(calls["order/17"], 2);
    assert!(calls.values().all(|c| *c <= 2), "{calls:?}");
    assert_eq!(stats.started, n as u64, "{stats:?}");
    assert_eq!(stats.failed, 2, "{stats:?}");
    assert_eq!(stats.connections, 1, "{stats:?}");
    // Every message was acked: nothing waits or comes back.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(q.ready().await, 0);
    q.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_never_succeeds_leaves_the_message_on_the_queue() {
    let Some(url) = common::rabbitmq() else {
        return;
    };
    let q = TestQueue::new(&url, "trigger-fail").await;
    let r = integration(&url);
    publish(&r, "", &q.name, s("job"), "job/1", 1)
        .await
        .unwrap();

    struct Refuser(Mutex<u32>);
    impl Starter for Refuser {
        async fn start(&self, message_id: &str, _body: Value) -> Result<(), StartError> {
            assert_eq!(message_id, "job/1");
            *self.0.lock().unwrap() += 1;
            Err("no".into())
        }
    }
    let refuser = Refuser(Mutex::new(0));
    let mut config = TriggerConfig::new(RabbitmqConfig::new(url.clone()), q.name.clone());
    config.retry_pause = Duration::from_millis(10);
    let stats = trigger::run(
        &config,
        &refuser,
        tokio::time::sleep(Duration::from_millis(500)),
    )
    .await;
    assert_eq!(stats.started, 0);
    assert!(stats.failed >= 2, "{stats:?}");
    assert_eq!(*refuser.0.lock().unwrap() as u64, stats.failed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Still there, for the next consumer.
    let left = q.drain().await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0, "job/1");
    q.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_section_queues_live_in_memory() {
    use drover_integrations::{Config, Integrations};
    let reg = Arc::new(Integrations::from_config(&Config::default()).await.unwrap());
    assert!(reg.is_embedded("rabbitmq"));
    let body = Value::record([("id", Value::Int(9))]);
    let publish = |queue: &'static str, body: Value| {
        let reg = reg.clone();
        async move {
            reg.perform(
                "rabbitmq.publish",
                vec![s(""), s(queue), body],
                "r/1",
                1,
                None,
            )
            .await
        }
    };
    publish("jobs", body.clone()).await.unwrap();
    let got = reg
        .perform("rabbitmq.next", vec![s("jobs")], "r/2", 1, None)
        .await;
    assert_eq!(got, Ok(body));
    // Empty: waits until the deadline, then fails retryably.
    let deadline = Instant::now() + Duration::from_millis(50);
    let e = reg
        .perform("rabbitmq.next", vec![s("jobs")], "r/3", 1, Some(deadline))
        .await
        .unwrap_err();
    assert_eq!((e.kind.as_str(), e.retryable), ("empty", true));
    // A message published while `next` waits is handed to it.
    let r = reg.clone();
    let waiting = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(5);
        r.perform("rabbitmq.next", vec![s("later")], "r/4", 1, Some(deadline))
            .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    publish("later", s("now")).await.unwrap();
    assert_eq!(waiting.await.unwrap(), Ok(s("now")));
}

#[test]
fn config_reads_from_toml_and_env_and_never_shows_the_password() {
    use drover_integrations::Config;
    let c = Config::from_toml(
        "[rabbitmq]\nurl = \"amqp://app:s3cret@mq:5672/prod\"\nchannels = 4\nconfirm_timeout_ms = 250\n",
        "drover.toml",
    )
    .unwrap();
    let r = c.rabbitmq.as_ref().unwrap();
    assert_eq!(r.url.expose(), "amqp://app:s3cret@mq:5672/prod");
    assert_eq!(
        (r.channels, r.confirm_timeout),
        (4, Duration::from_millis(250))
    );
    assert_eq!(r.redacted_url(), "amqp://app:[redacted]@mq:5672/prod");
    assert!(!format!("{c:?}").contains("s3cret"), "{c:?}");

    let e = Config::from_toml(
        "[rabbitmq]\nurl = \"amqp://app:s3cret@mq:notaport/prod\"\nchannels = 0\n",
        "drover.toml",
    )
    .unwrap_err();
    let keys: Vec<&str> = e.issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["rabbitmq.url", "rabbitmq.channels"]);
    let report = e.render();
    assert!(!e.to_string().contains("s3cret"), "{e}");
    assert!(report.contains("rabbitmq.channels"), "{report}");

    let e = Config::from_toml("[rabbitmq]\nchannels = 2\n", "drover.toml").unwrap_err();
    assert_eq!(e.issues[0].key, "rabbitmq.url");

    let mut c = Config::default();
    c.apply_env(|k| match k {
        "DROVER_RABBITMQ_URL" => Some("amqp://guest:guest@127.0.0.1:5672/%2f".into()),
        "DROVER_RABBITMQ_NEXT_WAIT_MS" => Some("100".into()),
        _ => None,
    })
    .unwrap();
    let r = c.rabbitmq.unwrap();
    assert_eq!(r.next_wait, Duration::from_millis(100));
    let mut c = Config::default();
    let e = c
        .apply_env(|k| (k == "DROVER_RABBITMQ_CHANNELS").then(|| "many".into()))
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("DROVER_RABBITMQ_CHANNELS") && text.contains("DROVER_RABBITMQ_URL"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_broker_declares_its_channels() {
    let Some(url) = common::rabbitmq() else {
        return;
    };
    let mut config = drover_integrations::Config::default();
    config
        .apply_env(|k| (k == "DROVER_RABBITMQ_URL").then(|| url.clone()))
        .unwrap();
    let reg = drover_integrations::Integrations::from_config(&config)
        .await
        .unwrap();
    assert!(!reg.is_embedded("rabbitmq"));
    assert!(reg
        .resources()
        .contains(&drover_integrations::ResourceDecl {
            name: "rabbitmq.channels".into(),
            limit: drover_integrations::ResourceLimit::Concurrency(8),
        }));
    let health: Vec<_> = reg.health().await;
    let (_, h) = health.iter().find(|(ns, _)| *ns == "rabbitmq").unwrap();
    assert_eq!(
        h.status,
        drover_integrations::HealthStatus::Up,
        "{}",
        h.detail
    );
    assert!(!h.detail.contains(":guest@"), "{}", h.detail);
}

/// Records runs by key; the first start of `block` becomes durable, then
/// waits for `release` before returning (the test cuts the connection then).
struct SlowStarter {
    runs: Mutex<BTreeMap<String, Value>>,
    calls: Mutex<BTreeMap<String, u32>>,
    block: String,
    entered: Notify,
    release: Notify,
}

impl Starter for SlowStarter {
    async fn start(&self, message_id: &str, body: Value) -> Result<(), StartError> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(message_id.to_owned()).or_default();
            *n += 1;
            *n
        };
        self.runs
            .lock()
            .unwrap()
            .entry(message_id.to_owned())
            .or_insert(body);
        if message_id == self.block && n == 1 {
            self.entered.notify_one();
            self.release.notified().await;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_before_the_ack_redelivers_to_the_same_run() {
    let Some(url) = common::rabbitmq() else {
        return;
    };
    let upstream = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|auth| auth.rsplit('@').next())
        .unwrap()
        .to_owned();
    let proxy = Proxy::start(upstream.clone()).await;
    let proxied = url.replace(&upstream, &format!("127.0.0.1:{}", proxy.port));
    let q = TestQueue::new(&url, "trigger-cut").await;
    let r = integration(&url);
    for i in 0..10 {
        publish(&r, "", &q.name, Value::Int(i), &format!("cut/{i}"), 1)
            .await
            .unwrap();
    }
    let starter = SlowStarter {
        runs: Mutex::default(),
        calls: Mutex::default(),
        block: "cut/4".into(),
        entered: Notify::new(),
        release: Notify::new(),
    };
    let mut config = TriggerConfig::new(RabbitmqConfig::new(proxied), q.name.clone());
    config.retry_pause = Duration::from_millis(10);
    let done = || {
        starter.runs.lock().unwrap().len() == 10
            && starter.calls.lock().unwrap().get("cut/4") == Some(&2)
    };
    let stop = async {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "the runs never all started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let cut = async {
        starter.entered.notified().await;
        // The run is durable but its message is not acked yet: cut.
        proxy.cut_all();
        tokio::time::sleep(Duration::from_millis(50)).await;
        starter.release.notify_one();
    };
    let (stats, ()) = tokio::join!(trigger::run(&config, &starter, stop), cut);

    let runs = starter.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 10);
    for i in 0..10 {
        assert_eq!(runs[&format!("cut/{i}")], Value::Int(i));
    }
    assert_eq!(starter.calls.lock().unwrap()["cut/4"], 2, "redelivered");
    assert!(stats.connections >= 2, "{stats:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(q.ready().await, 0, "every message acked in the end");
    q.cleanup().await;
}

/// What the node's pool worker does on each (re)start: the connection and
/// its channels are dropped, and the next effect opens a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_drops_the_connection_and_the_next_effect_opens_a_new_one() {
    let Some(url) = common::rabbitmq() else {
        return;
    };
    let q = TestQueue::new(&url, "reset").await;
    let r = integration(&url);
    publish(&r, "", &q.name, s("one"), "run-rs/1", 1)
        .await
        .unwrap();
    publish(&r, "", &q.name, s("two"), "run-rs/2", 1)
        .await
        .unwrap();
    assert_eq!(r.broker().connections_opened(), 1);
    r.reset().await;
    assert_eq!(
        r.broker().connections_opened(),
        1,
        "a reset connects nothing"
    );
    publish(&r, "", &q.name, s("three"), "run-rs/3", 1)
        .await
        .unwrap();
    assert_eq!(r.broker().connections_opened(), 2);
    let h = r.health().await;
    assert!(h.detail.contains("connection #2"), "{h:?}");
    let ids: Vec<String> = q.drain().await.into_iter().map(|m| m.0).collect();
    assert_eq!(ids, ["run-rs/1", "run-rs/2", "run-rs/3"]);
    q.cleanup().await;
}

/// A message that can never start a run is not requeued for ever: it moves
/// to `<queue>.dead` with the reason, and the rest of the queue flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_message_moves_to_the_dead_letter_queue_with_its_reason() {
    let Some(url) = common::rabbitmq() else {
        return;
    };
    let q = TestQueue::new(&url, "trigger-dead").await;
    let dead = format!("{}.dead", q.name);
    let r = integration(&url);
    for (id, body) in [
        ("order/1", Value::record([("n", Value::Int(1))])),
        ("poison/1", s("not an order")),
        ("order/2", Value::record([("n", Value::Int(2))])),
    ] {
        publish(&r, "", &q.name, body, id, 1).await.unwrap();
    }
    let recorder = Recorder {
        reject: vec!["poison/1".into()],
        expected: 2,
        ..Recorder::default()
    };
    let mut config = TriggerConfig::new(RabbitmqConfig::new(url.clone()), q.name.clone());
    assert_eq!(config.dead_letter.as_deref(), Some(dead.as_str()));
    config.retry_pause = Duration::from_millis(10);
    let stop = async {
        tokio::time::timeout(Duration::from_secs(20), recorder.all_started.notified())
            .await
            .expect("the good messages started runs");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stats = trigger::run(&config, &recorder, stop).await;
    assert_eq!(
        (stats.started, stats.dead_lettered, stats.failed),
        (2, 1, 0),
        "{stats:?}"
    );
    let calls = recorder.calls.lock().unwrap().clone();
    assert_eq!(
        calls["poison/1"], 1,
        "offered once, not requeued: {calls:?}"
    );
    assert!(!recorder.runs.lock().unwrap().contains_key("poison/1"));
    assert_eq!(q.ready().await, 0, "nothing left on the queue");

    let got = q
        .channel
        .basic_get(dead.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("the rejected message is in the dead-letter queue");
    let d = got.delivery;
    assert_eq!(d.data, b"not an order");
    assert_eq!(
        d.properties.message_id().as_ref().map(|m| m.as_str()),
        Some("poison/1")
    );
    assert_eq!(*d.properties.delivery_mode(), Some(2), "persistent");
    let headers = d.properties.headers().clone().expect("headers");
    let header = |k: &str| match headers.inner().get(k) {
        Some(AMQPValue::LongString(v)) => v.to_string(),
        other => panic!("{k}: {other:?}"),
    };
    assert_eq!(header("x-drover-queue"), q.name);
    let why = header("x-drover-error");
    assert!(
        why.contains("poison/1") && why.contains("missing field `n`"),
        "{why}"
    );
    let _ = q
        .channel
        .queue_delete(dead.as_str().into(), QueueDeleteOptions::default())
        .await;
    q.cleanup().await;
}

/// On a node, `next` holds the message unacknowledged until the run's
/// journal has the result: settled as durable it is acked; refused, or
/// never settled before the connection goes, it is back on the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_for_a_node_holds_the_message_until_the_result_is_settled() {
    let Some(url) = common::rabbitmq() else {
        return;
    };
    let q = TestQueue::new(&url, "settle").await;
    let r = integration(&url);
    for (i, body) in ["one", "two", "three"].into_iter().enumerate() {
        publish(&r, "", &q.name, s(body), &format!("run-st/{i}"), 1)
            .await
            .unwrap();
    }
    let held_next = |id: &'static str| {
        let r = &r;
        let queue = q.name.clone();
        async move {
            let mut call = EffectCall::new("next", vec![s(&queue)], id);
            call.settle = true;
            r.perform(call).await
        }
    };
    assert!(r.settles("next") && !r.settles("publish"));

    // Taken and held: not on the queue, not acked.
    assert_eq!(held_next("run-a/1").await, Ok(s("one")));
    assert_eq!(r.broker().held(), 1);
    assert_eq!(q.ready().await, 2);
    // The run refused it: requeued, and the next taker gets it again.
    r.settled("next", "run-a/1", 1, false);
    let deadline = Instant::now() + Duration::from_secs(5);
    while q.ready().await != 3 {
        assert!(Instant::now() < deadline, "not requeued");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(r.broker().held(), 0);
    assert_eq!(held_next("run-b/1").await, Ok(s("one")));
    // Durable: acked, gone for good.
    r.settled("next", "run-b/1", 1, true);
    // A node that dies before settling: its connection closes and the
    // broker requeues what it held.
    assert_eq!(held_next("run-c/1").await, Ok(s("two")));
    assert_eq!(q.ready().await, 1);
    r.reset().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while q.ready().await != 2 {
        assert!(Instant::now() < deadline, "not requeued on close");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left: Vec<Vec<u8>> = q.drain().await.into_iter().map(|m| m.1).collect();
    assert_eq!(
        left,
        [b"two".to_vec(), b"three".to_vec()],
        "`one` was acked"
    );
    q.cleanup().await;
}
