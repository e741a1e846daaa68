//! statsd against a real UDP listener that checks the line protocol,
//! against a real statsd server, and the embedded aggregator.
//!
//! The real server is Etsy's statsd (Node.js, from the npm registry), which
//! `.ci/run` installs. Its management console reports what it aggregated,
//! so the test checks that the server parsed every line the integration
//! sent, with DogStatsD tags and sample rates, and aggregated each to the
//! value the workflow meant.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use drover_integrations::statsd::line::sampled_in;
use drover_integrations::statsd::{Aggregator, SeriesKey, Shaping, StatsdIntegration, UdpSink};
use drover_integrations::{EffectCall, EffectFailure, Integration, StatsdConfig};
use drover_ir::Value;
use tokio::net::UdpSocket;

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

/// One parsed line: `name:value|type[|@rate][|#tags]`, checked strictly.
#[derive(Debug, PartialEq)]
struct Line {
    name: String,
    value: String,
    kind: String,
    rate: Option<f64>,
    tags: Vec<String>,
}

fn parse_line(line: &str) -> Line {
    let (name, rest) = line
        .split_once(':')
        .unwrap_or_else(|| panic!("no ':' in {line:?}"));
    assert!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
        "bad name in {line:?}"
    );
    let mut fields = rest.split('|');
    let value = fields.next().unwrap().to_owned();
    assert!(!value.is_empty(), "empty value in {line:?}");
    let kind = fields
        .next()
        .unwrap_or_else(|| panic!("no type in {line:?}"))
        .to_owned();
    assert!(
        ["c", "g", "ms", "h", "s"].contains(&kind.as_str()),
        "bad type in {line:?}"
    );
    if kind != "s" {
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad number in {line:?}"));
    }
    let (mut rate, mut tags) = (None, Vec::new());
    for f in fields {
        if let Some(r) = f.strip_prefix('@') {
            assert!(
                rate.is_none() && tags.is_empty(),
                "rate out of order in {line:?}"
            );
            let r: f64 = r.parse().unwrap_or_else(|_| panic!("bad rate in {line:?}"));
            assert!(r > 0.0 && r < 1.0, "{line:?}");
            rate = Some(r);
        } else if let Some(t) = f.strip_prefix('#') {
            assert!(tags.is_empty(), "two tag sections in {line:?}");
            tags = t.split(',').map(str::to_owned).collect();
            assert!(tags.iter().all(|t| !t.is_empty()), "{line:?}");
        } else {
            panic!("unknown field {f:?} in {line:?}");
        }
    }
    Line {
        name: name.into(),
        value,
        kind,
        rate,
        tags,
    }
}

struct Listener {
    socket: UdpSocket,
}

impl Listener {
    async fn new() -> Self {
        Listener {
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        }
    }

    fn addr(&self) -> String {
        self.socket.local_addr().unwrap().to_string()
    }

    /// The datagrams that arrive until none has for `quiet`.
    async fn datagrams(&self, quiet: Duration) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65_536];
        while let Ok(Ok(n)) = tokio::time::timeout(quiet, self.socket.recv(&mut buf)).await {
            out.push(String::from_utf8(buf[..n].to_vec()).expect("utf-8 datagram"));
        }
        out
    }
}

async fn udp_statsd(
    listener: &Listener,
    edit: impl FnOnce(&mut StatsdConfig),
) -> StatsdIntegration<UdpSink> {
    let mut c = StatsdConfig::new(listener.addr());
    c.prefix = "drover.".into();
    c.tags = BTreeMap::from([("env".to_owned(), "prod".to_owned())]);
    c.flush = Duration::from_millis(20);
    edit(&mut c);
    StatsdIntegration::new(UdpSink::connect(&c).await.unwrap(), Shaping::from(&c))
}

async fn send<S: drover_integrations::statsd::MetricSink>(
    i: &StatsdIntegration<S>,
    op: &str,
    args: Vec<Value>,
    id: &str,
) -> Result<Value, EffectFailure> {
    i.perform(EffectCall::new(op, args, id)).await
}

#[tokio::test]
async fn every_type_reaches_a_udp_listener_in_the_line_protocol() {
    let l = Listener::new().await;
    let st = udp_statsd(&l, |_| {}).await;
    send(
        &st,
        "count",
        vec![s("jobs"), Value::Int(3), tags(&[("queue", "mail")])],
        "r/1",
    )
    .await
    .unwrap();
    send(
        &st,
        "gauge",
        vec![s("depth"), Value::Float(-2.5), Value::Null],
        "r/2",
    )
    .await
    .unwrap();
    send(
        &st,
        "timing",
        vec![s("latency"), Value::Int(120), tags(&[])],
        "r/3",
    )
    .await
    .unwrap();
    send(
        &st,
        "histogram",
        vec![s("size"), Value::Float(0.75), tags(&[("a", "b:c")])],
        "r/4",
    )
    .await
    .unwrap();
    send(
        &st,
        "set",
        vec![s("users"), Value::Int(42), Value::Null],
        "r/5",
    )
    .await
    .unwrap();
    let got = l.datagrams(Duration::from_millis(300)).await;
    let lines: Vec<Line> = got
        .iter()
        .flat_map(|d| d.split('\n'))
        .map(parse_line)
        .collect();
    let want = [
        ("drover.jobs", "3", "c", vec!["env:prod", "queue:mail"]),
        ("drover.depth", "0", "g", vec!["env:prod"]),
        ("drover.depth", "-2.5", "g", vec!["env:prod"]),
        ("drover.latency", "120", "ms", vec!["env:prod"]),
        ("drover.size", "0.75", "h", vec!["env:prod", "a:b:c"]),
        ("drover.users", "42", "s", vec!["env:prod"]),
    ];
    assert_eq!(lines.len(), want.len(), "{got:?}");
    for (line, (name, value, kind, tags)) in lines.iter().zip(want) {
        assert_eq!(
            (line.name.as_str(), line.value.as_str(), line.kind.as_str()),
            (name, value, kind)
        );
        assert_eq!(line.tags, tags);
        assert_eq!(line.rate, None);
    }
    // The flusher sent them: nothing was flushed by hand.
    assert!(st.sink().datagrams().0 >= 1);
}

#[tokio::test]
async fn batches_split_at_the_packet_limit() {
    let l = Listener::new().await;
    let st = udp_statsd(&l, |c| {
        c.max_packet = 200;
        c.flush = Duration::from_secs(60); // only size (and the final flush) sends
    })
    .await;
    for n in 0..30 {
        send(
            &st,
            "count",
            vec![
                s(&format!("batch.metric{n:02}")),
                Value::Int(n),
                Value::Null,
            ],
            "r/1",
        )
        .await
        .unwrap();
    }
    st.sink().flush();
    let got = l.datagrams(Duration::from_millis(300)).await;
    assert!(got.len() > 1, "{got:?}");
    let mut all = Vec::new();
    for (i, d) in got.iter().enumerate() {
        assert!(d.len() <= 200, "datagram {i} is {} bytes", d.len());
        let lines: Vec<&str> = d.split('\n').collect();
        assert!(lines.len() > 1, "datagram {i} carries one line: {d:?}");
        if i + 1 < got.len() {
            // Full: the next line would not have fitted.
            let next = got[i + 1].split('\n').next().unwrap();
            assert!(
                d.len() + 1 + next.len() > 200,
                "datagram {i} was sent early"
            );
        }
        all.extend(lines.into_iter().map(parse_line));
    }
    let values: Vec<String> = all.iter().map(|l| l.value.clone()).collect();
    let want: Vec<String> = (0..30).map(|n| n.to_string()).collect();
    assert_eq!(values, want, "every line, once, in order");
}

#[tokio::test]
async fn sample_rates_are_sent_and_decided_by_effect_id() {
    let l = Listener::new().await;
    let st = udp_statsd(&l, |c| {
        c.sample_rates = BTreeMap::from([("sampled".to_owned(), 0.5)]);
    })
    .await;
    let ids: Vec<String> = (0..200).map(|n| format!("run-9/{n}")).collect();
    for id in &ids {
        send(
            &st,
            "count",
            vec![s("sampled"), Value::Int(1), Value::Null],
            id,
        )
        .await
        .unwrap();
        // A retry of the same effect decides the same way: sent twice or never.
        send(
            &st,
            "count",
            vec![s("sampled"), Value::Int(1), Value::Null],
            id,
        )
        .await
        .unwrap();
    }
    // Gauges are never sampled.
    send(
        &st,
        "gauge",
        vec![s("sampled"), Value::Int(1), Value::Null],
        "run-9/0",
    )
    .await
    .unwrap();
    let got = l.datagrams(Duration::from_millis(300)).await;
    let lines: Vec<Line> = got
        .iter()
        .flat_map(|d| d.split('\n'))
        .map(parse_line)
        .collect();
    let counts: Vec<&Line> = lines.iter().filter(|l| l.kind == "c").collect();
    let expected = ids
        .iter()
        .filter(|id| sampled_in(id, "drover.sampled", 0.5))
        .count();
    assert!((60..140).contains(&expected), "{expected}");
    assert_eq!(counts.len(), 2 * expected);
    assert!(counts.iter().all(|l| l.rate == Some(0.5)));
    assert_eq!(lines.iter().filter(|l| l.kind == "g").count(), 1);
}

#[tokio::test]
async fn bad_metrics_fail_permanently_and_say_why() {
    let l = Listener::new().await;
    let st = udp_statsd(&l, |c| c.max_packet = 64).await;
    for (op, args, needle) in [
        ("count", vec![s("a:b"), Value::Int(1), Value::Null], "name"),
        ("count", vec![s(""), Value::Int(1), Value::Null], "name"),
        ("count", vec![s("ok"), s("1"), Value::Null], "value"),
        (
            "gauge",
            vec![s("ok"), Value::Float(f64::NAN), Value::Null],
            "value",
        ),
        ("timing", vec![s("ok"), Value::Int(-1), Value::Null], "ms"),
        (
            "count",
            vec![s("ok"), Value::Int(1), tags(&[("k,x", "v")])],
            "tags",
        ),
        (
            "count",
            vec![s("ok"), Value::Int(1), tags(&[("k", "v|x")])],
            "tags",
        ),
        ("count", vec![s("ok"), Value::Int(1), Value::Int(3)], "tags"),
        ("count", vec![s("ok"), Value::Int(1)], "takes 3 arguments"),
        ("set", vec![s("ok"), s("a b"), Value::Null], "value"),
    ] {
        let e = send(&st, op, args, "r/1").await.unwrap_err();
        assert_eq!(
            (e.kind.as_str(), e.retryable),
            ("bad_argument", false),
            "{e}"
        );
        assert!(e.message.contains(needle), "{e}");
    }
    let e = send(
        &st,
        "count",
        vec![s(&"n".repeat(80)), Value::Int(1), Value::Null],
        "r/1",
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, "too_large", "{e}");
}

#[tokio::test]
async fn the_aggregator_sums_keeps_and_dedups() {
    let st = StatsdIntegration::new(
        Aggregator::default(),
        Shaping {
            prefix: "p.".into(),
            sample_rates: BTreeMap::from([("half".to_owned(), 0.5)]),
            ..Shaping::default()
        },
    );
    for n in 1..=4 {
        send(
            &st,
            "count",
            vec![s("hits"), Value::Int(n), tags(&[("a", "1"), ("b", "2")])],
            "r/1",
        )
        .await
        .unwrap();
    }
    // Tag order does not split a series.
    send(
        &st,
        "count",
        vec![s("hits"), Value::Int(10), tags(&[("b", "2"), ("a", "1")])],
        "r/2",
    )
    .await
    .unwrap();
    send(
        &st,
        "gauge",
        vec![s("temp"), Value::Float(1.5), Value::Null],
        "r/3",
    )
    .await
    .unwrap();
    send(
        &st,
        "gauge",
        vec![s("temp"), Value::Float(-3.0), Value::Null],
        "r/4",
    )
    .await
    .unwrap();
    for ms in [5, 7, 9] {
        send(
            &st,
            "timing",
            vec![s("lat"), Value::Int(ms), Value::Null],
            "r/5",
        )
        .await
        .unwrap();
    }
    send(
        &st,
        "histogram",
        vec![s("size"), Value::Float(0.5), Value::Null],
        "r/6",
    )
    .await
    .unwrap();
    for member in ["u1", "u2", "u1"] {
        send(&st, "set", vec![s("users"), s(member), Value::Null], "r/7")
            .await
            .unwrap();
    }
    let kept = (0..100)
        .filter(|n| sampled_in(&format!("h/{n}"), "p.half", 0.5))
        .count();
    for n in 0..100 {
        send(
            &st,
            "count",
            vec![s("half"), Value::Int(1), Value::Null],
            &format!("h/{n}"),
        )
        .await
        .unwrap();
    }

    let a = st.sink().snapshot();
    let hits = SeriesKey::new("p.hits", &[("a", "1"), ("b", "2")]);
    assert_eq!(a.counts.get(&hits), Some(&20.0));
    assert_eq!(
        a.counts.get(&SeriesKey::new("p.half", &[])),
        Some(&(kept as f64 * 2.0)),
        "scaled by 1/rate"
    );
    assert_eq!(a.gauges.get(&SeriesKey::new("p.temp", &[])), Some(&-3.0));
    let lat: Vec<f64> = a.timings[&SeriesKey::new("p.lat", &[])]
        .iter()
        .copied()
        .collect();
    assert_eq!(lat, [5.0, 7.0, 9.0]);
    assert_eq!(a.histograms[&SeriesKey::new("p.size", &[])].len(), 1);
    assert_eq!(a.sets[&SeriesKey::new("p.users", &[])].len(), 2);
}

#[tokio::test]
async fn the_aggregator_has_a_series_limit() {
    use drover_integrations::statsd::AggregatorLimits;
    let st = StatsdIntegration::new(
        Aggregator::new(AggregatorLimits {
            max_series: 2,
            ..AggregatorLimits::default()
        }),
        Shaping::default(),
    );
    send(
        &st,
        "count",
        vec![s("a"), Value::Int(1), Value::Null],
        "r/1",
    )
    .await
    .unwrap();
    send(
        &st,
        "count",
        vec![s("b"), Value::Int(1), Value::Null],
        "r/1",
    )
    .await
    .unwrap();
    send(
        &st,
        "count",
        vec![s("a"), Value::Int(1), Value::Null],
        "r/1",
    )
    .await
    .unwrap();
    let e = send(
        &st,
        "count",
        vec![s("c"), Value::Int(1), Value::Null],
        "r/1",
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, "limit");
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
