//! `LogEvent` as JSON lines: what is written, what is read back, and what a
//! line from another producer turns into.

use drover::log::Level;
use drover::logs::{EventKind, Filter, LogEvent, Timestamp};
use serde_json::json;

fn sample() -> LogEvent {
    LogEvent::new(
        Timestamp::Rfc3339("2024-05-01T12:00:00.000Z".into()),
        Level::Warn,
        EventKind::Effect,
    )
    .with_run("r-1")
    .with_workflow("scan_email")
    .with_program("ab12cd")
    .with_inst("w0:bb2:3")
    .with_span("email.rs:10:5")
    .with_node("n1")
    .with_duration_us(250_000)
    .with_msg("request timeout")
    .with_effect("http.get")
    .with_input(json!({"customer_id": 42}))
    .with_field("attempt", json!(2))
    .with_extra("region", json!("eu-west-1"))
}

#[test]
fn a_line_has_every_set_field_in_order_and_no_others() {
    assert_eq!(
        sample().to_json_line(),
        r#"{"ts":"2024-05-01T12:00:00.000Z","level":"warn","kind":"effect","run":"r-1","workflow":"scan_email","program":"ab12cd","inst":"w0:bb2:3","span":"email.rs:10:5","node":"n1","duration_us":250000,"msg":"request timeout","effect":"http.get","input":{"customer_id":42},"fields":{"attempt":2},"region":"eu-west-1"}"#
    );
    let bare = LogEvent::new(
        Timestamp::Millis(1_714_564_800_000),
        Level::Info,
        EventKind::Node,
    );
    assert_eq!(
        bare.to_json_line(),
        r#"{"ts":1714564800000,"level":"info","kind":"node"}"#
    );
}

#[test]
fn a_line_reads_back_as_the_same_event() {
    let e = sample();
    let back = LogEvent::from_json_line(&e.to_json_line()).expect("reads back");
    assert_eq!(back, e);
    assert_eq!(back.extra().get("region"), Some(&json!("eu-west-1")));
    let null_input = LogEvent::new(Timestamp::Millis(0), Level::Info, EventKind::Run)
        .with_input(serde_json::Value::Null);
    let back = LogEvent::from_json_line(&null_input.to_json_line()).expect("reads back");
    assert_eq!(back.input, Some(serde_json::Value::Null));
}

#[test]
fn extra_never_shadows_a_typed_field() {
    let e = sample()
        .with_extra("level", json!("error"))
        .with_extra("msg", json!(1));
    assert!(e.extra().get("level").is_none() && e.extra().get("msg").is_none());
    assert_eq!(e.to_json_line().matches("\"level\"").count(), 1);
}

#[test]
fn lines_from_other_shippers_are_read_leniently_where_it_is_safe() {
    let e = LogEvent::from_json_line(r#"{"ts":"t","level":"WARN","kind":"log","host":"a"}"#)
        .expect("upper-case level and an unknown key are fine");
    assert_eq!(e.level, Level::Warn);
    assert_eq!(e.extra().get("host"), Some(&json!("a")));
    let err = LogEvent::from_json_line(r#"{"ts":"t","level":"fatal","kind":"log"}"#)
        .expect_err("fatal is not a level");
    assert!(err.to_string().contains("unknown level `fatal`"), "{err}");
    LogEvent::from_json_line(r#"{"level":"info","kind":"log"}"#).expect_err("ts is required");
    LogEvent::from_json_line(r#"{"ts":1,"level":"info","kind":"span"}"#)
        .expect_err("kinds are a closed set");
}

#[test]
fn filters_see_typed_fields_extra_keys_and_the_input() {
    let e = sample();
    for (text, want) in [
        (r#"region == "eu-west-1""#, true),
        ("input.customer_id == 42 and fields.attempt >= 2", true),
        (r#"effect matches "http.*" and duration_us > 100000"#, true),
        ("level == warn and kind == \"effect\"", true),
        ("exists(span) and not exists(missing)", true),
        ("level > warn", false),
    ] {
        let f = Filter::parse(text).expect("parses");
        assert_eq!(f.matches(&e), want, "{text}");
    }
}
