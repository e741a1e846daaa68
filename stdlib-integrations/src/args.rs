//! Reading effect arguments: each reader names the parameter it wanted, so a
//! workflow that passes the wrong thing gets a `bad_argument` failure that
//! says which one and why (never a panic).

use drover_ir::Value;

use crate::EffectFailure;

/// Fails unless there are exactly `params.len()` arguments.
pub(crate) fn expect_arity(
    effect: &str,
    params: &[&str],
    args: &[Value],
) -> Result<(), EffectFailure> {
    if args.len() == params.len() {
        Ok(())
    } else {
        Err(EffectFailure::permanent(
            "bad_argument",
            format!(
                "{effect} takes {} arguments ({}), got {}",
                params.len(),
                params.join(", "),
                args.len()
            ),
        ))
    }
}

/// A `bad_argument` failure for parameter `name`.
pub(crate) fn bad(name: &str, why: impl std::fmt::Display) -> EffectFailure {
    EffectFailure::permanent("bad_argument", format!("{name}: {why}"))
}

/// A string argument.
pub(crate) fn string<'v>(v: &'v Value, name: &str) -> Result<&'v str, EffectFailure> {
    v.as_str()
        .ok_or_else(|| bad(name, format!("expected a string, got {}", v.kind())))
}

/// A non-negative integer argument.
pub(crate) fn unsigned(v: &Value, name: &str) -> Result<u64, EffectFailure> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        Value::Int(i) => Err(bad(name, format!("must not be negative, got {i}"))),
        other => Err(bad(
            name,
            format!("expected a non-negative int, got {}", other.kind()),
        )),
    }
}

/// A finite number (an int or a float) as f64.
pub(crate) fn number(v: &Value, name: &str) -> Result<f64, EffectFailure> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) if f.is_finite() => Ok(*f),
        Value::Float(f) => Err(bad(name, format!("must be finite, got {f}"))),
        other => Err(bad(
            name,
            format!("expected a number, got {}", other.kind()),
        )),
    }
}

/// An integer argument.
pub(crate) fn int(v: &Value, name: &str) -> Result<i64, EffectFailure> {
    v.as_int()
        .ok_or_else(|| bad(name, format!("expected an int, got {}", v.kind())))
}
