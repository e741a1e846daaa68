//! The filter language: a table of filters against events, the errors a
//! user sees (rendered, as on a terminal), and the canonical printed form.

use drover::logs::filter::{Expr, Op, Operand, Path, MAX_DEPTH, MAX_FILTER_LEN};
use drover::logs::{Filter, FilterError, LogEvent};
use drover_ir::diagnostics::render;

const EVENTS: &str = include_str!("data/filter/events.jsonl");
const CASES: &str = include_str!("data/filter/cases.txt");

fn events() -> Vec<(String, serde_json::Value, LogEvent)> {
    EVENTS
        .lines()
        .map(|line| {
            let json: serde_json::Value = serde_json::from_str(line).expect("events.jsonl is JSON");
            let event = LogEvent::from_json_line(line)
                .unwrap_or_else(|e| panic!("not a LogEvent: {e}\n{line}"));
            let id = json["id"]
                .as_str()
                .expect("every event has an id")
                .to_owned();
            (id, json, event)
        })
        .collect()
}

fn parse_ok(text: &str) -> Filter {
    Filter::parse(text).unwrap_or_else(|e| panic!("`{text}` did not parse:\n{}", render(&e)))
}

fn parse_err(text: &str) -> FilterError {
    match Filter::parse(text) {
        Ok(f) => panic!("`{text}` parsed, but should not have: {f}"),
        Err(e) => e,
    }
}

#[test]
fn table_of_filters_and_events() {
    let events = events();
    let all: Vec<&str> = events.iter().map(|(id, ..)| id.as_str()).collect();
    let mut rows = 0;
    let mut failures = Vec::new();
    for (n, line) in CASES.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (text, ids) = line
            .rsplit_once("=>")
            .unwrap_or_else(|| panic!("cases.txt:{}: no `=>`", n + 1));
        let text = text.trim();
        let want: Vec<&str> = match ids.trim() {
            "all" => all.clone(),
            "none" => Vec::new(),
            ids => ids.split_whitespace().collect(),
        };
        let filter = parse_ok(text);
        for (id, json, event) in &events {
            let expected = want.contains(&id.as_str());
            let typed = filter.matches(event);
            let plain = filter.matches(json);
            if typed != expected || plain != expected {
                failures.push(format!(
                    "cases.txt:{}: `{text}` on {id}: expected {expected}, typed {typed}, json {plain}",
                    n + 1
                ));
            }
        }
        // Every row also survives printing and parsing again.
        assert_eq!(
            parse_ok(&filter.to_string()),
            filter,
            "round trip of `{text}`"
        );
        rows += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(rows >= 40, "only {rows} rows");
}

// ---------------------------------------------------------------------------
// Errors, rendered as a user sees them

macro_rules! error_snapshot {
    ($name:ident, $text:expr) => {
        #[test]
        fn $name() {
            let err = parse_err($text);
            insta::with_settings!({
                snapshot_path => "data/filter/snapshots",
                prepend_module_to_snapshot => false,
                description => $text,
            }, {
                insta::assert_snapshot!(render(&err));
            });
        }
    };
}

error_snapshot!(single_equals, r#"workflow = "scan_email""#);
error_snapshot!(
    upper_case_keyword,
    r#"level >= warn AND workflow == "scan_email""#
);
error_snapshot!(upper_case_not, "NOT level >= warn");
error_snapshot!(unknown_level, "level >= warning");
error_snapshot!(unknown_level_in_list, "level in [warn, fatal]");
error_snapshot!(level_against_number, "level >= 3");
error_snapshot!(unterminated_string, r#"msg contains "time"#);
error_snapshot!(unknown_escape, r#"fields."bad \q key" == 1"#);
error_snapshot!(unclosed_paren, r#"(level >= warn and kind == "step""#);
error_snapshot!(unmatched_paren, "level >= warn)");
error_snapshot!(single_quotes, "workflow == 'scan_email'");
error_snapshot!(empty_filter, "   ");
error_snapshot!(dangling_and, "level >= warn and");
error_snapshot!(missing_value, "duration_us >   ");
error_snapshot!(chained_comparison, "1 < duration_us < 5");
error_snapshot!(two_values, r#"workflow "scan_email""#);
error_snapshot!(in_without_list, "input.customer_id in 42");
error_snapshot!(matches_without_string, "workflow matches 42");
error_snapshot!(like, r#"msg like "%timeout%""#);
error_snapshot!(not_in, "level not in [warn, error]");
error_snapshot!(single_ampersand, "a & b");
error_snapshot!(malformed_number, "duration_us > 1.5.3");
error_snapshot!(bad_index, "fields.items[first] == 1");
error_snapshot!(unclosed_list, "kind in [\"step\", \"run\"");
error_snapshot!(keyword_as_value, "kind == or");

#[test]
fn nesting_past_the_limit_is_an_error_at_the_first_extra_level() {
    let ok = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    parse_ok(&ok);
    let deep = format!(
        "{}a{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    let err = parse_err(&deep);
    assert_eq!(err.span(), MAX_DEPTH..MAX_DEPTH + 1);
    assert_eq!(err.message(), "the filter is nested too deeply");
    // `not` and lists count too, and a long chain does not overflow the stack.
    parse_err(&"not ".repeat(10_000));
    parse_err(&format!("x in {}", "[".repeat(1000)));
}

#[test]
fn a_filter_past_the_length_limit_is_an_error() {
    let long = format!("msg == \"{}\"", "é".repeat(MAX_FILTER_LEN));
    let err = parse_err(&long);
    assert!(err.span().start <= MAX_FILTER_LEN, "{:?}", err.span());
    assert_eq!(err.span().end, long.len());
    assert!(err.help().is_some_and(|h| h.contains("4096")));
}

#[test]
fn errors_name_what_was_expected_and_found_at_the_exact_span() {
    let cases: [(&str, &str, &str, std::ops::Range<usize>); 5] = [
        (
            "level >= warn and",
            "a condition after `and`",
            "end of filter",
            17..17,
        ),
        (
            "a == 1 AND b",
            "`and`, `or` or the end of the filter",
            "`AND`",
            7..10,
        ),
        ("(a == 1", "`)`", "end of filter", 7..7),
        ("x == ", "a value after `==`", "end of filter", 5..5),
        (
            "a == 1 b",
            "`and`, `or` or the end of the filter",
            "`b`",
            7..8,
        ),
    ];
    for (text, expected, found, span) in cases {
        let err = parse_err(text);
        assert_eq!(err.expected(), Some(expected), "{text}");
        assert_eq!(err.found(), Some(found), "{text}");
        assert_eq!(err.span(), span, "{text}");
    }
    let err = parse_err("level >= warning");
    assert_eq!(err.span(), 9..16);
    assert_eq!(err.help(), Some("did you mean `warn`? the levels, least severe first, are trace, debug, info, warn and error"));
}

// ---------------------------------------------------------------------------
// The canonical form

#[test]
fn display_prints_the_canonical_form() {
    let cases = [
        ("a==1&&b!=2||!c", "a == 1 and b != 2 or not c"),
        ("(a or b) and c", "(a or b) and c"),
        ("a or (b or c)", "a or (b or c)"),
        ("a and (b and c)", "a and (b and c)"),
        ("not (a and b)", "not (a and b)"),
        ("not(a)", "not a"),
        ("level>=\"WARN\"", "level >= warn"),
        (
            "x in [ 1,2.0 , \"s\",null,true,[]]",
            "x in [1, 2.0, \"s\", null, true, []]",
        ),
        (
            "fields.\"odd key\"[0].\"plain\"",
            "fields.\"odd key\"[0].plain",
        ),
        (
            "msg == \"tab\\there \\u{1F600} \\\"q\\\"\"",
            "msg == \"tab\\there 😀 \\\"q\\\"\"",
        ),
        ("x > 1e300", "x > 1e300"),
        ("x > -0.5", "x > -0.5"),
        ("exists( input.a )", "exists(input.a)"),
    ];
    for (text, canonical) in cases {
        let f = parse_ok(text);
        assert_eq!(f.to_string(), canonical, "{text}");
        assert_eq!(parse_ok(canonical), f, "{canonical}");
    }
}

#[test]
fn precedence_builds_the_expected_tree() {
    let path = |n: &str| Operand::Path(Path::new(n).expect("a root name"));
    let truthy = |n: &str| Expr::Truthy(path(n));
    let f = parse_ok("a or b and c");
    assert_eq!(
        f.expr(),
        &Expr::Or(vec![truthy("a"), Expr::And(vec![truthy("b"), truthy("c")])])
    );
    let f = parse_ok("not a == 1 and b");
    assert_eq!(
        f.expr(),
        &Expr::And(vec![
            Expr::Not(Box::new(Expr::Compare {
                left: path("a"),
                op: Op::Eq,
                right: Operand::Int(1)
            })),
            truthy("b"),
        ])
    );
}

#[test]
fn reserved_words_cannot_start_a_path_but_may_follow_a_dot() {
    for word in ["and", "warn", "null", "Warn", "IN"] {
        assert!(Path::new(word).is_none(), "{word}");
    }
    assert!(Path::new("level").is_some());
    let f = parse_ok("fields.warn and fields.in == 1");
    assert_eq!(f.to_string(), "fields.warn and fields.in == 1");
}
