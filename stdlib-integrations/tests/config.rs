//! Config from TOML and the environment, and its error reports.

use std::collections::HashMap;
use std::time::Duration;

use drover_integrations::{Config, Secret};

const FULL: &str = r#"
[memcache]
servers = ["127.0.0.1:11211", "cache-2:11211"]
pool = 4
timeout_ms = 250
username = "drover"
password = "hunter2"

[statsd]
addr = "127.0.0.1:8125"
prefix = "drover."
tags = { env = "prod", region = "eu-1" }
max_packet = 1432
flush_ms = 100
sample_rate = 0.5
sample_rates = { "api.calls" = 0.1 }
"#;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn a_full_file_reads_back() {
    let c = Config::from_toml(FULL, "drover.toml").unwrap();
    let m = c.memcache.as_ref().unwrap();
    assert_eq!(m.servers, ["127.0.0.1:11211", "cache-2:11211"]);
    assert_eq!((m.pool, m.timeout), (4, Duration::from_millis(250)));
    assert_eq!(m.password.as_ref().map(Secret::expose), Some("hunter2"));
    let s = c.statsd.as_ref().unwrap();
    assert_eq!(
        (s.addr.as_str(), s.prefix.as_str()),
        ("127.0.0.1:8125", "drover.")
    );
    assert_eq!(s.tags.get("region").map(String::as_str), Some("eu-1"));
    assert_eq!(
        (s.max_packet, s.flush, s.sample_rate),
        (1432, Duration::from_millis(100), 0.5)
    );
    assert_eq!(s.sample_rates.get("api.calls"), Some(&0.1));
    assert!(
        !format!("{c:?}").contains("hunter2"),
        "Debug shows the password"
    );
}

#[test]
fn missing_sections_select_the_embedded_fallbacks() {
    let c = Config::from_toml("", "empty.toml").unwrap();
    assert_eq!(c, Config::default());
    let c = Config::from_toml("[statsd]\naddr = \"localhost:8125\"\n", "x.toml").unwrap();
    assert!(c.memcache.is_none());
    let s = c.statsd.unwrap();
    assert_eq!(
        (s.max_packet, s.flush),
        (1432, Duration::from_millis(100)),
        "defaults"
    );
}

#[test]
fn every_bad_value_is_reported_with_its_key_and_place() {
    let text = r#"
[memcache]
servers = ["nohost", "ok:11211", "bad:port"]
pool = 0
timeout_ms = 100000

[statsd]
addr = "127.0.0.1:8125"
prefix = "has space"
tags = { "a,b" = "x", env = "p|q" }
max_packet = 10
sample_rate = 1.5
"#;
    let e = Config::from_toml(text, "drover.toml").unwrap_err();
    let keys: Vec<&str> = e.issues.iter().map(|i| i.key.as_str()).collect();
    for want in [
        "memcache.servers",
        "memcache.pool",
        "memcache.timeout_ms",
        "statsd.prefix",
        "statsd.tags",
        "statsd.tags.env",
        "statsd.max_packet",
        "statsd.sample_rate",
    ] {
        assert!(keys.contains(&want), "{want} missing from {keys:?}");
    }
    assert_eq!(keys.iter().filter(|k| **k == "memcache.servers").count(), 2);
    for issue in &e.issues {
        let span = issue
            .span
            .clone()
            .unwrap_or_else(|| panic!("{issue:?} has no span"));
        assert!(span.end <= text.len());
    }
    let pool = e.issues.iter().find(|i| i.key == "memcache.pool").unwrap();
    assert_eq!(&text[pool.span.clone().unwrap()], "0");
    assert!(pool.reason.contains("between 1 and 1024"), "{pool:?}");
    let report = e.render();
    assert!(report.contains("drover.toml"), "{report}");
    assert!(
        report.contains("pool = 0"),
        "the report quotes the text: {report}"
    );
    assert!(
        report.contains("memcache.pool: must be between 1 and 1024, got 0"),
        "{report}"
    );
}

#[test]
fn syntax_errors_unknown_keys_and_wrong_types_point_at_the_text() {
    for (text, needle) in [
        ("[memcache]\nservers = [\"a:1\"]\npoool = 3\n", "poool"),
        (
            "[memcache]\nservers = \"a:1\"\n",
            "memcache.servers: invalid type",
        ),
        ("[statsd\naddr = 1", ""),
        (
            "[memcache]\nservers = [\"a:1\"]\npool = \"eight\"\n",
            "memcache.pool: invalid type",
        ),
        ("[memcache]\npool = 3\n", "servers"),
        (
            "[memcache]\nservers = [\"a:1\"]\nusername = \"u\"\n",
            "password",
        ),
    ] {
        let e = Config::from_toml(text, "t.toml").unwrap_err();
        assert_eq!(e.issues.len(), 1, "{e}");
        assert!(e.issues[0].span.is_some(), "{e}");
        assert!(e.to_string().contains(needle), "{needle:?} not in {e}");
        let _ = e.render();
    }
}

#[test]
fn environment_variables_override_the_file() {
    let mut c = Config::from_toml(FULL, "drover.toml").unwrap();
    c.apply_env(env(&[
        ("DROVER_MEMCACHE_SERVERS", "10.0.0.1:11211, 10.0.0.2:11211"),
        ("DROVER_MEMCACHE_POOL", "16"),
        ("DROVER_MEMCACHE_PASSWORD", "from-env"),
        ("DROVER_STATSD_ADDR", "10.0.0.3:8125"),
        ("DROVER_STATSD_TAGS", "env:staging,team:core"),
        ("DROVER_STATSD_FLUSH_MS", "50"),
        ("DROVER_STATSD_PREFIX", ""), // empty counts as unset
    ]))
    .unwrap();
    let m = c.memcache.as_ref().unwrap();
    assert_eq!(m.servers, ["10.0.0.1:11211", "10.0.0.2:11211"]);
    assert_eq!((m.pool, m.timeout), (16, Duration::from_millis(250)));
    assert_eq!(m.password.as_ref().unwrap().expose(), "from-env");
    let s = c.statsd.as_ref().unwrap();
    assert_eq!(s.addr, "10.0.0.3:8125");
    assert_eq!(s.prefix, "drover.");
    assert_eq!(s.tags.len(), 2);
    assert_eq!(s.tags["env"], "staging");
    assert_eq!(s.flush, Duration::from_millis(50));
}

#[test]
fn an_environment_variable_creates_its_section() {
    let mut c = Config::default();
    c.apply_env(env(&[("DROVER_MEMCACHE_SERVERS", "127.0.0.1:11211")]))
        .unwrap();
    assert_eq!(c.memcache.unwrap().pool, 8);
    assert!(c.statsd.is_none());

    let mut c = Config::default();
    let e = c
        .apply_env(env(&[("DROVER_MEMCACHE_POOL", "4")]))
        .unwrap_err();
    assert!(e.to_string().contains("DROVER_MEMCACHE_POOL"), "{e}");
    assert!(
        e.to_string().contains("DROVER_MEMCACHE_SERVERS"),
        "says how to fix it: {e}"
    );
}

#[test]
fn bad_environment_values_name_the_variable() {
    let mut c = Config::default();
    let e = c
        .apply_env(env(&[
            ("DROVER_MEMCACHE_SERVERS", "a:1,b"),
            ("DROVER_MEMCACHE_TIMEOUT_MS", "soon"),
            ("DROVER_STATSD_ADDR", "x:0"),
            ("DROVER_STATSD_SAMPLE_RATE", "2"),
            ("DROVER_STATSD_TAGS", "novalue"),
        ]))
        .unwrap_err();
    let keys: Vec<&str> = e.issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "DROVER_MEMCACHE_SERVERS",
            "DROVER_MEMCACHE_TIMEOUT_MS",
            "DROVER_STATSD_ADDR",
            "DROVER_STATSD_TAGS",
            "DROVER_STATSD_SAMPLE_RATE"
        ]
    );
    assert!(e.render().contains("DROVER_MEMCACHE_TIMEOUT_MS"));
}

#[test]
fn a_config_file_is_read_from_disk() {
    let path = std::env::temp_dir().join(format!("drover-config-{}.toml", std::process::id()));
    std::fs::write(&path, FULL).unwrap();
    let c = Config::from_file(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(c.memcache.is_some());
    let e = Config::from_file(&path).unwrap_err();
    assert!(e.to_string().contains("cannot read"), "{e}");
}
