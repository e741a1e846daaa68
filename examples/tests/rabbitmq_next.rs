//! `rabbitmq.next` on a durable node: the message a run takes is acked only
//! once the run's journal has it, so every message is either in a journal
//! or still on the queue.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use drover::effects::rabbitmq;
use drover::node::{IntegrationEffects, Node, NodeConfig, Outcome};
use drover::prelude::*;
use drover_integrations::{Config, Integrations, RabbitmqConfig};
use drover_ir::Value;
use lapin::options::BasicPublishOptions;
use lapin::BasicProperties;

/// Takes two messages off a queue.
#[workflow]
pub async fn take_two(queue: String) -> Result<String, Error> {
    let a: String = rabbitmq::next(&queue)
        .retry(20, Duration::from_millis(50), Duration::from_millis(200))
        .await?;
    let b: String = rabbitmq::next(&queue)
        .retry(20, Duration::from_millis(50), Duration::from_millis(200))
        .await?;
    Ok(format!("{a}+{b}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_a_run_takes_are_acked_once_journaled_and_the_rest_stay() {
    if !common::service_up(common::RABBITMQ, "RabbitMQ") {
        return;
    }
    let q = common::TestQueue::declare("drover-test-next").await;
    let (queue, channel) = (q.name.clone(), q.channel.clone());
    for body in ["x", "y", "z"] {
        channel
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default()
                    .with_content_type("text/plain".into())
                    .with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    let config = Config {
        rabbitmq: Some(RabbitmqConfig::new(common::RABBITMQ_URL)),
        ..Config::default()
    };
    let integrations = Integrations::from_config(&config).await.unwrap();
    let effects = Arc::new(IntegrationEffects::new(integrations));
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = Node::open_with(NodeConfig::new(dir.path()), effects.clone())
        .await
        .unwrap();
    let run = node
        .start("take_two", vec![Value::Str(queue.clone())], None)
        .await
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(30), node.result(run))
        .await
        .expect("the run finishes")
        .unwrap();
    let Outcome::Completed(v) = outcome else {
        panic!("{outcome:?}");
    };
    let got: Result<String, Error> = drover_ir::from_value(v).unwrap();
    assert_eq!(got, Ok("x+y".to_owned()));

    // Closing the node's broker connection would put back anything it
    // still held unacknowledged: only `z`, never taken, is left.
    effects
        .integrations()
        .get("rabbitmq")
        .unwrap()
        .reset_dyn()
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = q.ready().await;
        if n == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{n} messages ready: the run's were not acked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node.shutdown().await;
    q.delete().await;
}
