//! statsd against a real statsd server: Etsy's statsd (Node.js, from the npm
//! registry), which `.ci/run` installs. Its management console reports what
//! it aggregated, so the test checks that the server parsed every line the
//! integration sent, with DogStatsD tags and sample rates, and aggregated
//! each to the value the workflow meant.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use drover_integrations::statsd::line::sampled_in;
use drover_integrations::statsd::{Shaping, StatsdIntegration, UdpSink};
use drover_integrations::{EffectCall, Integration, StatsdConfig};
use drover_ir::Value;

fn s(x: &str) -> Value {
    Value::Str(x.into())
}

fn tags(pairs: &[(&str, &str)]) -> Value {
    Value::List(
        pairs
            .iter()
            .map(|(k, v)| Value::List(vec![s(k), s(v)]))
            .collect(),
    )
}

/// `{ 'a;b=c': 6, x: [ 1, 2 ] }` as statsd's console prints it (Node's
/// `util.inspect`): key → value text.
fn inspect_map(text: &str) -> BTreeMap<String, String> {
    let body = text.trim();
    let body = body
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not an object: {text}"));
    // Entries are separated by commas outside brackets.
    let mut entries = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in body.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                entries.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    entries.push(&body[start..]);
    entries
        .into_iter()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (k, v) = e
                .split_once(": ")
                .unwrap_or_else(|| panic!("no ': ' in {e:?}"));
            (k.trim_matches('\'').to_owned(), v.trim().to_owned())
        })
        .collect()
}

fn number_list(v: &str) -> Vec<f64> {
    v.trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().unwrap_or_else(|_| panic!("not a number: {x}")))
        .collect()
}

#[tokio::test]
async fn a_real_statsd_server_aggregates_every_line_the_integration_sends() {
    let Some(server) = common::OwnStatsd::start() else {
        return;
    };
    let mut c = StatsdConfig::new(format!("127.0.0.1:{}", server.udp_port));
    c.prefix = "drover.".into();
    c.tags = BTreeMap::from([("env".to_owned(), "prod".to_owned())]);
    c.flush = Duration::from_millis(20);
    c.sample_rates = BTreeMap::from([("sampled".to_owned(), 0.5)]);
    let st = StatsdIntegration::new(UdpSink::connect(&c).await.unwrap(), Shaping::from(&c));
    let send = |op: &'static str, args: Vec<Value>, id: String| {
        let st = &st;
        async move {
            st.perform(EffectCall::new(op, args, &id))
                .await
                .unwrap_or_else(|e| panic!("{op}: {e:?}"));
        }
    };

    let mut lines = 0u64;
    // Counters with tags, from two effects.
    for n in 0..2 {
        let args = vec![s("jobs"), Value::Int(3), tags(&[("queue", "mail")])];
        send("count", args, format!("r-1/{n}")).await;
        lines += 1;
    }
    // A gauge set, then set below zero: the line protocol cannot send a
    // negative absolute gauge, so the integration resets and subtracts.
    send(
        "gauge",
        vec![s("depth"), Value::Int(7), tags(&[])],
        "r-1/2".into(),
    )
    .await;
    send(
        "gauge",
        vec![s("depth"), Value::Float(-2.5), tags(&[])],
        "r-1/3".into(),
    )
    .await;
    lines += 3;
    for (n, ms) in [120, 80].into_iter().enumerate() {
        let args = vec![s("latency"), Value::Int(ms), tags(&[("route", "/scan")])];
        send("timing", args, format!("r-1/t{n}")).await;
        lines += 1;
    }
    send(
        "histogram",
        vec![s("size"), Value::Float(0.75), Value::Null],
        "r-1/h".into(),
    )
    .await;
    send(
        "set",
        vec![s("users"), s("u-42"), Value::Null],
        "r-1/s".into(),
    )
    .await;
    lines += 2;
    // Sampled at 0.5 by effect id: statsd scales what arrives by 1/rate.
    let ids: Vec<String> = (0..100).map(|n| format!("r-2/{n}")).collect();
    let sampled = ids
        .iter()
        .filter(|id| sampled_in(id, "drover.sampled", 0.5))
        .count() as u64;
    for id in &ids {
        send(
            "count",
            vec![s("sampled"), Value::Int(1), Value::Null],
            id.clone(),
        )
        .await;
    }
    lines += sampled;
    st.sink().flush();

    // UDP: wait until statsd has seen every line.
    let deadline = Instant::now() + Duration::from_secs(10);
    let counters = loop {
        let counters = inspect_map(&server.ask("counters"));
        let received = counters
            .get("statsd.metrics_received")
            .map_or(0.0, |v| v.parse::<f64>().unwrap());
        if received as u64 >= lines || Instant::now() > deadline {
            break counters;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        counters["statsd.metrics_received"],
        lines.to_string(),
        "{counters:?}"
    );
    assert_eq!(
        counters["statsd.bad_lines_seen"], "0",
        "every line parses: {counters:?}"
    );
    // DogStatsD tags become part of statsd's key, in the order sent.
    assert_eq!(
        counters["drover.jobs;env=prod;queue=mail"], "6",
        "{counters:?}"
    );
    // statsd counts a DogStatsD histogram as a counter; it still arrives whole.
    assert_eq!(counters["drover.size;env=prod"], "0.75", "{counters:?}");
    assert_eq!(
        counters["drover.sampled;env=prod"],
        (sampled * 2).to_string(),
        "{sampled} of 100 sampled in at 0.5: {counters:?}"
    );

    let gauges = inspect_map(&server.ask("gauges"));
    assert_eq!(gauges["drover.depth;env=prod"], "-2.5", "{gauges:?}");

    let timers = inspect_map(&server.ask("timers"));
    let latency = number_list(&timers["drover.latency;env=prod;route=-scan"]);
    assert_eq!(latency, vec![120.0, 80.0], "{timers:?}");
}
