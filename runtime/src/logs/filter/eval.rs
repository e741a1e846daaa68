//! The evaluator: an [`Expr`] against one event, without copying it.
//!
//! Paths resolve to borrowed [`Val`]s. A [`LogEvent`]'s typed fields are
//! read directly; JSON is walked as is. Both give the same answers: the
//! property tests match every filter against an event and its JSON.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use super::{Expr, Op, Operand, Path, Segment, Subject};
use crate::log::Level;
use crate::logs::event::parse_level;
use crate::logs::{LogEvent, Timestamp};

/// How deeply `==` follows nested lists and maps before giving up (as
/// unequal). JSON read by serde_json is at most 128 deep already; the cap
/// also covers values built in code.
const MAX_COMPARE_DEPTH: usize = 128;

pub(super) fn matches(expr: &Expr, subject: Subject<'_>) -> bool {
    eval(expr, &subject)
}

fn eval(expr: &Expr, s: &Subject<'_>) -> bool {
    match expr {
        Expr::Or(items) => items.iter().any(|e| eval(e, s)),
        Expr::And(items) => items.iter().all(|e| eval(e, s)),
        Expr::Not(e) => !eval(e, s),
        Expr::Exists(p) => resolve(s, p).is_some(),
        Expr::Truthy(v) => {
            operand(s, v).is_some_and(|v| !matches!(v, Val::Null | Val::Bool(false)))
        }
        Expr::Compare { left, op, right } => {
            let null = || Val::Null;
            let l = operand(s, left).unwrap_or_else(null);
            let r = operand(s, right).unwrap_or_else(null);
            compare(&l, *op, &r)
        }
    }
}

/// A value borrowed from the event or the filter.
#[derive(Clone, Debug)]
enum Val<'a> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
    Level(Level),
    /// A JSON array.
    Json(&'a [Value]),
    /// A list literal, its elements resolved.
    List(Vec<Val<'a>>),
    Map(&'a Map<String, Value>),
}

impl<'a> Val<'a> {
    fn from_json(v: &'a Value) -> Val<'a> {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => number(n),
            Value::String(s) => Val::Str(s),
            Value::Array(items) => Val::Json(items),
            Value::Object(m) => Val::Map(m),
        }
    }

    /// The elements, if it is a list.
    fn items(&self) -> Option<Box<dyn Iterator<Item = Val<'a>> + '_>> {
        match self {
            Val::Json(items) => Some(Box::new(items.iter().map(Val::from_json))),
            Val::List(items) => Some(Box::new(items.iter().cloned())),
            _ => None,
        }
    }

    fn len(&self) -> Option<usize> {
        match self {
            Val::Json(items) => Some(items.len()),
            Val::List(items) => Some(items.len()),
            _ => None,
        }
    }

    /// The text `contains` and `matches` look at: a string, or a level's
    /// name.
    fn text(&self) -> Option<&'a str> {
        match self {
            Val::Str(s) => Some(s),
            Val::Level(l) => Some(l.name()),
            _ => None,
        }
    }

    fn as_level(&self) -> Option<Level> {
        match self {
            Val::Level(l) => Some(*l),
            Val::Str(s) => parse_level(s),
            _ => None,
        }
    }
}

fn number(n: &Number) -> Val<'_> {
    if let Some(i) = n.as_i64() {
        Val::Int(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Val::Int(i128::from(u))
    } else {
        // Neither i64 nor u64, so a float (serde_json has no other kind
        // without `arbitrary_precision`); NaN would compare as nothing.
        Val::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

fn operand<'a>(s: &Subject<'a>, v: &'a Operand) -> Option<Val<'a>> {
    Some(match v {
        Operand::Path(p) => return resolve(s, p),
        Operand::Null => Val::Null,
        Operand::Bool(b) => Val::Bool(*b),
        Operand::Int(n) => Val::Int(i128::from(*n)),
        Operand::Float(x) => Val::Float(*x),
        Operand::Str(s) => Val::Str(s),
        Operand::Level(l) => Val::Level(*l),
        // A missing element is `null` inside a list, as it is elsewhere.
        Operand::List(items) => Val::List(
            items
                .iter()
                .map(|i| operand(s, i).unwrap_or(Val::Null))
                .collect(),
        ),
    })
}

/// What `path` names in the event, or `None` if it is missing.
fn resolve<'a>(s: &Subject<'a>, path: &Path) -> Option<Val<'a>> {
    let (first, rest) = path.segments.split_first()?;
    let Segment::Key(root) = first else {
        return None;
    };
    let mut v = match s {
        Subject::Event(e) => event_root(e, root)?,
        Subject::Json(j) => json_root(j, root)?,
    };
    for seg in rest {
        v = match (seg, v) {
            (Segment::Key(k), Val::Map(m)) => Val::from_json(m.get(k)?),
            (Segment::Index(i), Val::Json(items)) => Val::from_json(items.get(*i)?),
            _ => return None,
        };
    }
    Some(v)
}

/// A top-level field of an event as JSON. `level` reads as a level, as it
/// does from a [`LogEvent`], so both give the same answers.
fn json_root<'a>(j: &'a Value, key: &str) -> Option<Val<'a>> {
    let v = j.as_object()?.get(key)?;
    if key == "level" {
        if let Some(l) = v.as_str().and_then(parse_level) {
            return Some(Val::Level(l));
        }
    }
    Some(Val::from_json(v))
}

/// A top-level field of a typed event, present exactly when its JSON line
/// would carry the key.
fn event_root<'a>(e: &'a LogEvent, key: &str) -> Option<Val<'a>> {
    let text = |o: &'a Option<String>| o.as_deref().map(Val::Str);
    match key {
        "ts" => Some(match &e.ts {
            Timestamp::Millis(ms) => Val::Int(i128::from(*ms)),
            Timestamp::Rfc3339(s) => Val::Str(s),
        }),
        "level" => Some(Val::Level(e.level)),
        "kind" => Some(Val::Str(e.kind.name())),
        "run" => text(&e.run),
        "workflow" => text(&e.workflow),
        "program" => text(&e.program),
        "inst" => text(&e.inst),
        "span" => text(&e.span),
        "node" => text(&e.node),
        "msg" => text(&e.msg),
        "effect" => text(&e.effect),
        "duration_us" => e.duration_us.map(|d| Val::Int(i128::from(d))),
        "input" => e.input.as_ref().map(Val::from_json),
        "fields" => (!e.fields.is_empty()).then_some(Val::Map(&e.fields)),
        _ => e.extra().get(key).map(Val::from_json),
    }
}

fn compare(l: &Val<'_>, op: Op, r: &Val<'_>) -> bool {
    match op {
        Op::Eq => equal(l, r, 0),
        Op::Ne => !equal(l, r, 0),
        Op::Lt => order(l, r) == Some(Ordering::Less),
        Op::Le => matches!(order(l, r), Some(Ordering::Less | Ordering::Equal)),
        Op::Gt => order(l, r) == Some(Ordering::Greater),
        Op::Ge => matches!(order(l, r), Some(Ordering::Greater | Ordering::Equal)),
        Op::Contains => contains(l, r),
        Op::Matches => match (l.text(), r) {
            (Some(text), Val::Str(pattern)) => glob(pattern, text),
            _ => false,
        },
        Op::In => r
            .items()
            .is_some_and(|mut items| items.any(|i| equal(l, &i, 0))),
    }
}

fn equal(l: &Val<'_>, r: &Val<'_>, depth: usize) -> bool {
    if depth > MAX_COMPARE_DEPTH {
        return false;
    }
    match (l, r) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(a), Val::Bool(b)) => a == b,
        (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => {
            num_order(l, r) == Some(Ordering::Equal)
        }
        (Val::Str(a), Val::Str(b)) => a == b,
        (Val::Level(_), Val::Level(_) | Val::Str(_)) | (Val::Str(_), Val::Level(_)) => {
            matches!((l.as_level(), r.as_level()), (Some(a), Some(b)) if a == b)
        }
        (Val::Map(a), Val::Map(b)) => {
            a.len() == b.len()
                && a.iter().all(|(k, av)| {
                    b.get(k).is_some_and(|bv| {
                        equal(&Val::from_json(av), &Val::from_json(bv), depth + 1)
                    })
                })
        }
        _ => match (l.items(), r.items()) {
            (Some(a), Some(b)) => {
                l.len() == r.len() && a.zip(b).all(|(x, y)| equal(&x, &y, depth + 1))
            }
            _ => false,
        },
    }
}

/// The order of two numbers, two strings or two levels; `None` for any
/// other pair.
fn order(l: &Val<'_>, r: &Val<'_>) -> Option<Ordering> {
    match (l, r) {
        (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => num_order(l, r),
        (Val::Str(a), Val::Str(b)) => Some(a.cmp(b)),
        (Val::Level(_), Val::Level(_) | Val::Str(_)) | (Val::Str(_), Val::Level(_)) => {
            Some(l.as_level()?.cmp(&r.as_level()?))
        }
        _ => None,
    }
}

/// Compares numbers exactly, ints with floats included: `2^53 + 1` is
/// greater than the float `2^53`, which casting to f64 would lose.
fn num_order(l: &Val<'_>, r: &Val<'_>) -> Option<Ordering> {
    match (l, r) {
        (Val::Int(a), Val::Int(b)) => Some(a.cmp(b)),
        (Val::Float(a), Val::Float(b)) => a.partial_cmp(b),
        (Val::Int(a), Val::Float(b)) => int_float(*a, *b),
        (Val::Float(a), Val::Int(b)) => int_float(*b, *a).map(Ordering::reverse),
        _ => None,
    }
}

/// How the int `i` orders against the float `x`.
fn int_float(i: i128, x: f64) -> Option<Ordering> {
    if x.is_nan() {
        return None;
    }
    // Every i128 lies strictly inside ±2^127; past that the float wins,
    // and inside it the float's whole part converts exactly.
    const LIMIT: f64 = 1.7014118346046923e38; // 2^127
    if x >= LIMIT {
        return Some(Ordering::Less);
    }
    if x <= -LIMIT {
        return Some(Ordering::Greater);
    }
    let whole = x.trunc();
    // `whole` is an integer inside the i128 range, so the cast is exact.
    match i.cmp(&(whole as i128)) {
        Ordering::Equal => 0.0_f64.partial_cmp(&(x - whole)),
        o => Some(o),
    }
}

fn contains(l: &Val<'_>, r: &Val<'_>) -> bool {
    if let Val::Map(m) = l {
        return r.text().is_some_and(|k| m.contains_key(k));
    }
    if let Some(mut items) = l.items() {
        return items.any(|i| equal(&i, r, 0));
    }
    match (l.text(), r.text()) {
        (Some(hay), Some(needle)) => hay.contains(needle),
        _ => false,
    }
}

/// Whether all of `text` matches `pattern`, where `*` is any run of chars
/// (none included) and `?` any one char.
///
/// Greedy with one backtrack point: on a mismatch it retries from the last
/// `*`, letting it swallow one more char. Earlier stars never need
/// revisiting, so this is O(len(pattern) × len(text)) at worst, with no
/// recursion.
pub(super) fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // (index of the last `*` in p, index in t it is matched up to)
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_whole_text() {
        let cases = [
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("*b*", "abc", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaa", false),
            ("scan_*", "scan_email", true),
            ("scan_*", "rescan_email", false),
            ("é?", "éü", true),
        ];
        for (p, t, want) in cases {
            assert_eq!(glob(p, t), want, "{p:?} on {t:?}");
        }
    }

    #[test]
    fn ints_and_floats_order_exactly() {
        let big = (1i128 << 53) + 1;
        assert_eq!(int_float(big, 9007199254740992.0), Some(Ordering::Greater));
        assert_eq!(int_float(3, 3.0), Some(Ordering::Equal));
        assert_eq!(int_float(3, 3.5), Some(Ordering::Less));
        assert_eq!(int_float(-3, -3.5), Some(Ordering::Greater));
        assert_eq!(int_float(0, f64::NAN), None);
        assert_eq!(int_float(i128::MAX, f64::INFINITY), Some(Ordering::Less));
        assert_eq!(int_float(i128::MIN, -1e300), Some(Ordering::Greater));
    }
}
