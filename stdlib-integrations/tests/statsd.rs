//! statsd against a real UDP listener, and the embedded aggregator.

use std::collections::BTreeMap;
use std::time::Duration;

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
