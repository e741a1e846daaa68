//! Property tests for the filter language: any text parses or fails
//! without panicking, the printed form reads back as the same filter, and
//! evaluation never panics and agrees between a typed event and its JSON.

use drover::log::Level;
use drover::logs::filter::{Expr, Op, Operand, Path, Subject};
use drover::logs::{EventKind, Filter, LogEvent, Timestamp};
use proptest::prelude::*;
use serde_json::Value;

/// Pieces of filter syntax, right and wrong, so that random text gets past
/// the first token often enough to reach the deeper rules.
fn token_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("and"),
        Just("or"),
        Just("not"),
        Just("AND"),
        Just("&&"),
        Just("||"),
        Just("!"),
        Just("&"),
        Just("("),
        Just(")"),
        Just("["),
        Just("]"),
        Just(","),
        Just("."),
        Just("\""),
        Just("'"),
        Just("\\"),
        Just("\\u{"),
        Just("=="),
        Just("="),
        Just("!="),
        Just("<"),
        Just("<="),
        Just(">"),
        Just(">="),
        Just("<>"),
        Just("contains"),
        Just("matches"),
        Just("in"),
        Just("exists"),
        Just("level"),
        Just("warn"),
        Just("WARN"),
        Just("warning"),
        Just("input"),
        Just("x"),
        Just("fields"),
        Just("[0]"),
        Just("1"),
        Just("-"),
        Just("1.5"),
        Just("1e999"),
        Just("99999999999999999999"),
        Just("null"),
        Just("true"),
        Just(" "),
        Just("é"),
        Just("\"s\""),
        Just("like"),
    ];
    prop::collection::vec(token, 0..24).prop_map(|ts| ts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsing_any_text_never_panics(text in "\\PC{0,80}") {
        if let Ok(f) = Filter::parse(&text) {
            prop_assert_eq!(Filter::parse(&f.to_string()).ok(), Some(f));
        }
    }

    #[test]
    fn parsing_token_soup_never_panics_and_errors_stay_in_the_text(text in token_soup()) {
        match Filter::parse(&text) {
            Ok(f) => prop_assert_eq!(Filter::parse(&f.to_string()).ok(), Some(f)),
            Err(e) => {
                let span = e.span();
                prop_assert!(span.start <= span.end && span.end <= text.len());
                prop_assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
                // Rendering must not panic either.
                let _ = drover_ir::diagnostics::render(&e);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Generated filters

/// Top-level names: the event's own fields and a few others.
const ROOTS: [&str; 10] = [
    "ts",
    "kind",
    "run",
    "msg",
    "duration_us",
    "input",
    "fields",
    "x",
    "_y2",
    "exists",
];

fn path() -> impl Strategy<Value = Path> {
    let segment = prop_oneof![
        "[a-z_]{1,4}".prop_map(Ok),
        any::<String>().prop_map(Ok),
        (0usize..4).prop_map(Err),
    ];
    (
        prop::sample::select(&ROOTS[..]),
        prop::collection::vec(segment, 0..3),
    )
        .prop_map(|(root, segs)| {
            // Every name in ROOTS is a valid root.
            let mut p = Path::new(root).unwrap_or_else(|| panic!("{root} is a root name"));
            for s in segs {
                p = match s {
                    Ok(k) => p.key(k),
                    Err(i) => p.index(i),
                };
            }
            p
        })
}

fn level() -> impl Strategy<Value = Level> {
    prop::sample::select(&Level::ALL[..])
}

fn scalar() -> impl Strategy<Value = Operand> {
    prop_oneof![
        path().prop_map(Operand::Path),
        Just(Operand::Null),
        any::<bool>().prop_map(Operand::Bool),
        any::<i64>().prop_map(Operand::Int),
        (-3i64..3).prop_map(Operand::Int),
        prop::num::f64::NORMAL.prop_map(Operand::Float),
        prop_oneof![Just(0.5), Just(-0.0), Just(1e300), Just(5e-324)].prop_map(Operand::Float),
        any::<String>().prop_map(Operand::Str),
        prop_oneof![Just("a"), Just("warn"), Just("*a?")].prop_map(|s| Operand::Str(s.into())),
        level().prop_map(Operand::Level),
    ]
}

fn operand() -> impl Strategy<Value = Operand> {
    scalar().prop_recursive(2, 8, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(Operand::List)
    })
}

/// A comparison the parser could have built: `matches` against a string or
/// path, `in` against a list or path.
fn compare() -> impl Strategy<Value = Expr> {
    let level_path = || Operand::Path(Path::new("level").unwrap_or_else(|| unreachable!()));
    prop_oneof![
        4 => (operand(), prop::sample::select(&Op::ALL[..]), operand()).prop_map(|(left, op, right)| {
            let right = match (op, right) {
                (Op::Matches, r @ (Operand::Str(_) | Operand::Path(_))) => r,
                (Op::Matches, r) => Operand::Str(r.to_string()),
                (Op::In, r @ (Operand::List(_) | Operand::Path(_))) => r,
                (Op::In, r) => Operand::List(vec![r]),
                (_, r) => r,
            };
            Expr::Compare { left, op, right }
        }),
        1 => (prop::sample::select(&Op::ALL[..6]), level()).prop_map(move |(op, l)| Expr::Compare {
            left: level_path(),
            op,
            right: Operand::Level(l),
        }),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        4 => compare(),
        1 => path().prop_map(Expr::Exists),
        1 => operand().prop_map(Expr::Truthy),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    })
}

// ---------------------------------------------------------------------------
// Generated events

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-3i64..3).prop_map(Value::from),
        // Quarters read back exactly; serde_json (without `float_roundtrip`)
        // may be one ulp off on a long float it reads, which is its
        // business, not the filter's.
        any::<i32>().prop_map(|n| Value::from(f64::from(n) / 4.0)),
        any::<String>().prop_map(Value::from),
        prop_oneof![Just("a"), Just("warn"), Just("WARN"), Just("")].prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(prop_oneof!["[a-z_]{1,4}", any::<String>()], inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn event() -> impl Strategy<Value = LogEvent> {
    let text = || prop::option::of(prop_oneof!["[a-z]{0,3}", any::<String>()]);
    (
        prop_oneof![
            any::<i64>().prop_map(Timestamp::Millis),
            any::<String>().prop_map(Timestamp::Rfc3339)
        ],
        level(),
        prop::sample::select(&EventKind::ALL[..]),
        (text(), text(), prop::option::of(any::<u64>())),
        prop::option::of(json()),
        prop::collection::vec(("[a-z_]{1,4}", json()), 0..3),
        prop::collection::vec((prop::sample::select(&ROOTS[..]), json()), 0..3),
    )
        .prop_map(
            |(ts, level, kind, (run, msg, duration), input, fields, extra)| {
                let mut e = LogEvent::new(ts, level, kind);
                e.run = run;
                e.msg = msg;
                e.duration_us = duration;
                e.input = input;
                for (k, v) in fields {
                    e = e.with_field(k, v);
                }
                for (k, v) in extra {
                    e = e.with_extra(k, v);
                }
                e
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn printed_filters_parse_back_to_the_same_tree(e in expr()) {
        let text = e.to_string();
        match Filter::parse(&text) {
            Ok(f) => prop_assert_eq!(f.expr(), &e, "text: {}", text),
            Err(err) => prop_assert!(false, "`{}` did not parse:\n{}", text, drover_ir::diagnostics::render(&err)),
        }
    }

    #[test]
    fn evaluating_on_any_json_never_panics(e in expr(), v in json()) {
        let f = Filter::parse(&e.to_string()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let _ = f.matches(&v);
        let _ = f.matches(Subject::Json(&Value::Array(vec![v])));
    }

    #[test]
    fn a_typed_event_and_its_json_match_alike(e in expr(), ev in event()) {
        let f = Filter::parse(&e.to_string()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let line = ev.to_json_line();
        let json: Value = serde_json::from_str(&line).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(f.matches(&ev), f.matches(&json), "filter: {}\nevent: {}", f, line);
        // The line reads back as the same event.
        prop_assert_eq!(LogEvent::from_json_line(&line).ok(), Some(ev));
    }
}
