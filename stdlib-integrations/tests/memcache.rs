//! One behaviour suite, run against a real memcached and against the
//! embedded cache: the fallback must behave like the server.

mod common;

use std::time::Duration;

use drover_integrations::memcache::{Cache, EmbeddedCache, MemcacheIntegration, ServerCache};
use drover_integrations::{EffectCall, EffectFailure, Integration, MemcacheConfig};
use drover_ir::Value;

/// The value limit the suite runs under, small enough to test cheaply.
const MAX_VALUE: usize = 200_000;

struct Suite<'a, C> {
    m: &'a MemcacheIntegration<C>,
    prefix: String,
}

impl<C: Cache> Suite<'_, C> {
    fn key(&self, k: &str) -> Value {
        Value::Str(format!("{}-{k}", self.prefix))
    }

    async fn op(&self, op: &str, args: Vec<Value>) -> Result<Value, EffectFailure> {
        self.m.perform(EffectCall::new(op, args, "run-1/7")).await
    }

    async fn ok(&self, op: &str, args: Vec<Value>) -> Value {
        match self.op(op, args.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{op}({args:?}) failed: {e}"),
        }
    }

    async fn err(&self, op: &str, args: Vec<Value>) -> EffectFailure {
        match self.op(op, args.clone()).await {
            Ok(v) => panic!("{op}({args:?}) succeeded with {v}, expected a failure"),
            Err(e) => e,
        }
    }
}

fn s(x: &str) -> Value {
    Value::Str(x.into())
}

fn i(x: i64) -> Value {
    Value::Int(x)
}

/// The behaviour both caches must share.
async fn behaviour_suite<C: Cache>(m: &MemcacheIntegration<C>, tag: &str) {
    let t = Suite {
        m,
        prefix: common::unique(tag),
    };

    // get / set, with types surviving the round trip, binary-safe.
    assert_eq!(t.ok("get", vec![t.key("absent")]).await, Value::Null);
    let values = [
        s("hello"),
        s("line\r\nEND\r\n"),
        Value::Bytes(vec![0, 255, 13, 10, 32]),
        Value::Bytes((0..150_000u32).map(|n| (n % 251) as u8).collect()),
        Value::Float(3.0),
        i(-5),
        i(42),
        Value::Bool(false),
        Value::List(vec![i(1), s("two"), Value::Null]),
        Value::record([("id", i(7)), ("tags", Value::List(vec![s("a")]))]),
        Value::ok(s("done")),
    ];
    for (n, v) in values.iter().enumerate() {
        let k = t.key(&format!("v{n}"));
        assert_eq!(
            t.ok("set", vec![k.clone(), v.clone(), i(0)]).await,
            Value::Null
        );
        let back = t.ok("get", vec![k]).await;
        assert_eq!(back, *v);
        assert_eq!(back.kind(), v.kind(), "{v:?} changed type");
    }

    // get_multi: only the keys found, by key.
    let multi = t
        .ok(
            "get_multi",
            vec![Value::List(vec![t.key("v0"), t.key("absent"), t.key("v6")])],
        )
        .await;
    let Value::Map(found) = multi else {
        panic!("get_multi gave {multi}");
    };
    assert_eq!(found.len(), 2);
    assert_eq!(found.get(&t.key("v0")), Some(&s("hello")));
    assert_eq!(found.get(&t.key("v6")), Some(&i(42)));
    let empty = t.ok("get_multi", vec![Value::List(vec![])]).await;
    assert_eq!(empty, Value::Map(Default::default()));

    // add: only when absent.
    let a = t.key("add");
    assert_eq!(
        t.ok("add", vec![a.clone(), s("first"), i(0)]).await,
        Value::Bool(true)
    );
    assert_eq!(
        t.ok("add", vec![a.clone(), s("second"), i(0)]).await,
        Value::Bool(false)
    );
    assert_eq!(t.ok("get", vec![a.clone()]).await, s("first"));

    // delete: whether it existed.
    assert_eq!(t.ok("delete", vec![a.clone()]).await, Value::Bool(true));
    assert_eq!(t.ok("delete", vec![a.clone()]).await, Value::Bool(false));
    assert_eq!(t.ok("get", vec![a]).await, Value::Null);

    // incr / decr: null when missing, wrap-free arithmetic, stop at 0.
    let c = t.key("counter");
    assert_eq!(t.ok("incr", vec![c.clone(), i(1)]).await, Value::Null);
    assert_eq!(t.ok("decr", vec![c.clone(), i(1)]).await, Value::Null);
    t.ok("set", vec![c.clone(), i(10), i(0)]).await;
    assert_eq!(t.ok("incr", vec![c.clone(), i(5)]).await, i(15));
    assert_eq!(t.ok("decr", vec![c.clone(), i(6)]).await, i(9));
    // memcached pads a shrunk number with spaces; it still reads back as 9.
    assert_eq!(t.ok("get", vec![c.clone()]).await, i(9));
    assert_eq!(t.ok("decr", vec![c.clone(), i(100)]).await, i(0));
    assert_eq!(t.ok("incr", vec![c.clone(), i(1)]).await, i(1));
    let e = t.err("incr", vec![t.key("v0"), i(1)]).await;
    assert_eq!(
        (e.kind.as_str(), e.retryable),
        ("not_a_counter", false),
        "{e}"
    );
    let big = t.key("big");
    t.ok("set", vec![big.clone(), i(i64::MAX), i(0)]).await;
    let e = t.err("incr", vec![big, i(1)]).await;
    assert_eq!(e.kind, "out_of_range", "{e}");

    // cas: stored only if unchanged since the read that gave the token.
    let k = t.key("cas");
    let key = k.as_str().unwrap().to_owned();
    t.ok("set", vec![k.clone(), s("v1"), i(0)]).await;
    let (v, token) = m.gets(&key).await.unwrap().expect("just set");
    assert_eq!(v, s("v1"));
    assert_eq!(
        t.ok("cas", vec![k.clone(), s("v2"), i(token as i64), i(0)])
            .await,
        Value::Bool(true)
    );
    assert_eq!(
        t.ok("cas", vec![k.clone(), s("v3"), i(token as i64), i(0)])
            .await,
        Value::Bool(false)
    );
    assert_eq!(t.ok("get", vec![k.clone()]).await, s("v2"));
    let (_, token2) = m.gets(&key).await.unwrap().expect("still there");
    assert_ne!(token, token2, "a write changes the token");
    // The same through the `memcache.gets` effect a workflow performs.
    let read = t.ok("gets", vec![k.clone()]).await;
    assert_eq!(read.get_field("value"), Some(&s("v2")));
    assert_eq!(read.get_field("cas"), Some(&i(token2 as i64)));
    assert_eq!(t.ok("gets", vec![t.key("absent")]).await, Value::Null);
    t.ok("incr", vec![c.clone(), i(1)]).await;
    let (_, ctoken) = m.gets(c.as_str().unwrap()).await.unwrap().unwrap();
    t.ok("incr", vec![c.clone(), i(1)]).await;
    assert_eq!(
        t.ok("cas", vec![c.clone(), i(0), i(ctoken as i64), i(0)])
            .await,
        Value::Bool(false),
        "incr changes the token too"
    );
    assert_eq!(
        t.ok("cas", vec![t.key("absent"), s("x"), i(1), i(0)]).await,
        Value::Bool(false)
    );
    assert_eq!(
        t.ok("get", vec![t.key("absent")]).await,
        Value::Null,
        "cas on a missing key stores nothing"
    );

    // touch: whether the key exists.
    assert_eq!(
        t.ok("touch", vec![t.key("absent"), i(10)]).await,
        Value::Bool(false)
    );
    assert_eq!(
        t.ok("touch", vec![k.clone(), i(10)]).await,
        Value::Bool(true)
    );

    // Arguments that are wrong fail permanently and say which.
    for (op, args, needle) in [
        ("get", vec![s("has space")], "key"),
        ("get", vec![Value::Str("k".repeat(251))], "key"),
        ("get", vec![i(3)], "key"),
        ("set", vec![t.key("x"), i(1), i(-1)], "ttl_s"),
        ("set", vec![t.key("x"), i(1), i(400_000_000)], "ttl_s"),
        ("incr", vec![t.key("x"), i(-1)], "delta"),
        ("get_multi", vec![s("notalist")], "keys"),
        ("get", vec![], "takes 1 arguments"),
    ] {
        let e = t.err(op, args).await;
        assert_eq!(
            (e.kind.as_str(), e.retryable),
            ("bad_argument", false),
            "{e}"
        );
        assert!(e.message.contains(needle), "{e}");
    }
    let e = t
        .err(
            "set",
            vec![t.key("huge"), Value::Bytes(vec![7; MAX_VALUE + 1]), i(0)],
        )
        .await;
    assert_eq!((e.kind.as_str(), e.retryable), ("too_large", false), "{e}");
    let e = t.err("frobnicate", vec![]).await;
    assert_eq!(e.kind, "unknown_effect");

    // TTLs: expiry, touch extending it, add over an expired key. memcached's
    // clock ticks once a second, so wait two and a bit.
    let (x, y, z) = (t.key("ttl-x"), t.key("ttl-y"), t.key("ttl-z"));
    t.ok("set", vec![x.clone(), s("x"), i(1)]).await;
    t.ok("set", vec![y.clone(), s("y"), i(1)]).await;
    assert_eq!(
        t.ok("touch", vec![y.clone(), i(100)]).await,
        Value::Bool(true)
    );
    assert_eq!(
        t.ok("add", vec![z.clone(), s("z1"), i(1)]).await,
        Value::Bool(true)
    );
    assert_eq!(t.ok("get", vec![x.clone()]).await, s("x"));
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert_eq!(t.ok("get", vec![x.clone()]).await, Value::Null, "expired");
    assert_eq!(
        t.ok("touch", vec![x.clone(), i(10)]).await,
        Value::Bool(false)
    );
    assert_eq!(t.ok("incr", vec![x, i(1)]).await, Value::Null);
    assert_eq!(t.ok("get", vec![y]).await, s("y"), "touch extended it");
    assert_eq!(
        t.ok("add", vec![z.clone(), s("z2"), i(0)]).await,
        Value::Bool(true)
    );
    assert_eq!(t.ok("get", vec![z]).await, s("z2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_cache_passes_the_behaviour_suite() {
    let m = MemcacheIntegration::new(EmbeddedCache::default(), MAX_VALUE);
    behaviour_suite(&m, "embedded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_memcached_passes_the_behaviour_suite() {
    let Some(addr) = common::memcached() else {
        return;
    };
    let cache = ServerCache::new(&MemcacheConfig::new(vec![addr])).unwrap();
    let m = MemcacheIntegration::new(cache, MAX_VALUE);
    behaviour_suite(&m, "real").await;
    let h = m.health().await;
    assert_eq!(h.status, drover_integrations::HealthStatus::Up, "{h:?}");
    assert!(h.detail.contains("1."), "the version is reported: {h:?}");
}

/// Two servers: keys spread over both, multi-get gathers from both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_spread_over_servers_and_multi_get_gathers_them() {
    let Some(a) = common::OwnMemcached::start(&[]) else {
        return;
    };
    let Some(b) = common::OwnMemcached::start(&[]) else {
        return;
    };
    let cache = ServerCache::new(&MemcacheConfig::new(vec![a.addr(), b.addr()])).unwrap();
    let m = MemcacheIntegration::new(cache, MAX_VALUE);
    let keys: Vec<Value> = (0..40).map(|n| s(&format!("spread-{n}"))).collect();
    for (n, k) in keys.iter().enumerate() {
        m.perform(EffectCall::new(
            "set",
            vec![k.clone(), i(n as i64), i(0)],
            "r/1",
        ))
        .await
        .unwrap();
    }
    let all = m
        .perform(EffectCall::new(
            "get_multi",
            vec![Value::List(keys.clone())],
            "r/2",
        ))
        .await
        .unwrap();
    let Value::Map(all) = all else { panic!() };
    assert_eq!(all.len(), 40);
    // Each server holds some: read each directly.
    for server in [&a, &b] {
        let one = ServerCache::new(&MemcacheConfig::new(vec![server.addr()])).unwrap();
        let keys: Vec<&str> = keys.iter().map(|k| k.as_str().unwrap()).collect();
        let held = one.get_multi(&keys).await.unwrap().len();
        assert!(
            held > 0 && held < 40,
            "{} holds {held} of 40",
            server.addr()
        );
    }
}

/// memcached's own count of connections it has accepted.
fn total_connections(addr: &str) -> u64 {
    use std::io::{BufRead, BufReader, Write};
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(b"stats\r\n").unwrap();
    let mut r = BufReader::new(c);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "stats ended early");
        if let Some(n) = line.trim().strip_prefix("STAT total_connections ") {
            return n.parse().unwrap();
        }
        assert_ne!(line.trim(), "END", "no total_connections in stats");
    }
}

/// What the node's pool worker does on each (re)start: the pool is rebuilt,
/// and the next effect connects afresh; the data is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_rebuilds_the_pool_and_the_next_effect_connects_afresh() {
    let Some(server) = common::OwnMemcached::start(&[]) else {
        return;
    };
    let cache = ServerCache::new(&MemcacheConfig::new(vec![server.addr()])).unwrap();
    let m = MemcacheIntegration::new(cache, MAX_VALUE);
    let t = Suite {
        m: &m,
        prefix: common::unique("reset"),
    };
    t.ok("set", vec![t.key("k"), i(1), i(0)]).await;
    for _ in 0..5 {
        assert_eq!(t.ok("get", vec![t.key("k")]).await, i(1));
    }
    assert_eq!(
        m.cache().connections_opened(),
        1,
        "one pooled connection serves them all"
    );
    let before = total_connections(&server.addr());

    m.reset().await;
    assert_eq!(m.cache().rebuilds(), 1);
    // Resetting connects nothing: it cannot fail while the server is down.
    assert_eq!(m.cache().connections_opened(), 1);
    assert_eq!(t.ok("get", vec![t.key("k")]).await, i(1));
    assert_eq!(m.cache().connections_opened(), 2);
    // The server saw one new connection for the pool (and one for `stats`).
    assert_eq!(total_connections(&server.addr()) - before, 2);
    let h = m.health().await;
    assert!(h.detail.contains("pool #2"), "{h:?}");

    // A reset while the server is down succeeds; effects fail until it is
    // back, then the rebuilt pool serves them.
    let mut server = server;
    server.kill();
    m.reset().await;
    let e = t.err("get", vec![t.key("k")]).await;
    assert!(e.retryable, "{e:?}");
    server.restart();
    assert_eq!(
        t.ok("get", vec![t.key("k")]).await,
        Value::Null,
        "a fresh memcached"
    );
}
