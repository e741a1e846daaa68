//! The RabbitMQ connection dropped in the middle of a publish, on a durable
//! node: the broker has the message but its confirm never arrives, so the
//! attempt fails retryably; the retry republishes under the same message
//! id (the effect id), the run completes, and the failure shows in the
//! trace. Delivery is at least once: both copies carry one message id.

mod common;
#[path = "../../stdlib-integrations/tests/common/proxy.rs"]
mod proxy;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use drover::effects::rabbitmq;
use drover::node::Outcome;
use drover::prelude::*;
use drover_integrations::{Config, RabbitmqConfig};
use drover_ir::Value;
use lapin::options::BasicGetOptions;
use proxy::Proxy;

const BROKER: &str = common::RABBITMQ;

/// Publishes one message, retrying as an alerting workflow would.
#[workflow]
pub async fn publish_once(queue: String) -> Result<(), Error> {
    rabbitmq::publish("", &queue, "payload")
        .retry(20, Duration::from_millis(100), Duration::from_millis(500))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_cut_mid_flight_is_retried_and_the_run_completes() {
    if !common::service_up(BROKER, "RabbitMQ") {
        return;
    }
    let q = common::TestQueue::declare("drover-test-drop").await;
    let (queue, channel) = (q.name.clone(), q.channel.clone());

    // The node reaches the broker through the proxy.
    let proxy = Proxy::start(BROKER.to_owned()).await;
    let mut rc = RabbitmqConfig::new(format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port));
    rc.confirm_timeout = Duration::from_secs(20);
    let config = Config {
        rabbitmq: Some(rc),
        ..Config::default()
    };
    let (node, _dir) = common::node_with(&config).await;

    // A first run opens the node's connection through the proxy.
    let warm = node
        .start("publish_once", vec![Value::Str(queue.clone())], None)
        .await
        .unwrap();
    let warmed = tokio::time::timeout(Duration::from_secs(30), node.result(warm))
        .await
        .expect("the first run finishes")
        .unwrap();
    assert!(matches!(&warmed, Outcome::Completed(_)), "{warmed:?}");

    // The broker gets the next message but its confirm is held back; then
    // the connection drops.
    proxy.hold.store(true, Ordering::SeqCst);
    let run = node
        .start("publish_once", vec![Value::Str(queue.clone())], None)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while q.ready().await < 2 {
        assert!(
            Instant::now() < deadline,
            "the broker never got the publish"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxy.cut_all();

    let outcome = tokio::time::timeout(Duration::from_secs(60), node.result(run))
        .await
        .expect("the run finishes")
        .unwrap();
    assert!(
        matches!(&outcome, Outcome::Completed(Value::Variant(v)) if v.tag == "Ok"),
        "{outcome:?}"
    );
    let trace = node.trace(run).await.unwrap();
    let publishes: Vec<&drover::node::TraceItem> = trace
        .iter()
        .filter(|t| t.effect == "rabbitmq.publish")
        .collect();
    assert!(publishes.len() >= 2, "{trace:#?}");
    assert!(!publishes[0].ok, "the cut attempt failed: {trace:#?}");
    assert!(publishes.last().unwrap().ok, "{trace:#?}");
    let id = publishes[0].id;
    assert!(publishes.iter().all(|p| p.id == id), "one effect, retried");

    // At least once: the cut attempt's copy and the retry's, one message id;
    // the first run's message once.
    let mut ids = Vec::new();
    while let Some(m) = channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        assert_eq!(m.delivery.data, b"payload");
        ids.push(
            m.delivery
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.to_string()),
        );
    }
    let want = Some(format!("{run}/{id}"));
    let ours = ids.iter().filter(|i| **i == want).count();
    assert!(ours >= 2, "{ids:?} vs {want:?}");
    assert_eq!(ids.len(), ours + 1, "{ids:?}");
    node.shutdown().await;
    q.delete().await;
}
