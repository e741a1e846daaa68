//! One-line renderings for `drover trace`, bounded in length.

use drover_ir::Value;

use crate::{EffectCall, EffectFailure};

/// The longest rendering of one value in a summary, in bytes.
pub(crate) const VALUE_BUDGET: usize = 64;

/// `v` in the assembly's literal syntax, cut at `budget` bytes with a note
/// of the full length, so one large value cannot flood a trace.
pub(crate) fn value(v: &Value, budget: usize) -> String {
    // Cut large strings and bytes before rendering, so summarizing a 1 MiB
    // value does not format 1 MiB first.
    let rendered = match v {
        Value::Str(s) if s.len() > budget => {
            format!("{}", Value::Str(cut(s, budget).to_owned()))
        }
        Value::Bytes(b) if b.len() > budget => format!("{}", Value::Bytes(b[..budget].to_vec())),
        other => format!("{other}"),
    };
    let full = match v {
        Value::Str(s) => s.len(),
        Value::Bytes(b) => b.len(),
        _ => rendered.len(),
    };
    if rendered.len() > budget || full > budget {
        format!("{}…({full} bytes)", cut(&rendered, budget))
    } else {
        rendered
    }
}

/// `ns.op name=value ... -> result`, naming arguments by the catalog's
/// parameters. Callers redact secrets from `call` before this sees it.
pub(crate) fn call(ns: &str, call: &EffectCall<'_>, r: &Result<Value, EffectFailure>) -> String {
    let effect = format!("{ns}.{}", call.op);
    let params = drover_ir::catalog::builtin_effect(&effect).map_or(&[][..], |sig| sig.params);
    let mut out = effect;
    for (i, arg) in call.args.iter().enumerate() {
        let name = params.get(i).copied().unwrap_or("?");
        out.push_str(&format!(" {name}={}", value(arg, VALUE_BUDGET)));
    }
    out.push(' ');
    out.push_str(&result(r));
    out
}

/// `-> Ok(v)` or `-> Err(kind: message)`.
pub(crate) fn result(r: &Result<Value, EffectFailure>) -> String {
    match r {
        Ok(v) => format!("-> Ok({})", value(v, VALUE_BUDGET)),
        Err(e) => {
            let retry = if e.retryable { ", retryable" } else { "" };
            format!(
                "-> Err({}: {}{retry})",
                e.kind,
                cut(&e.message, 2 * VALUE_BUDGET)
            )
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub(crate) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_and_say_how_long_they_were() {
        let s = value(&Value::Str("é".repeat(100)), 10);
        assert!(s.ends_with("…(200 bytes)"), "{s}");
        assert!(s.len() < 30, "{s}");
        assert_eq!(value(&Value::Int(7), 10), "7");
        let list = Value::List((0..100).map(Value::Int).collect());
        assert!(value(&list, 16).contains("…("));
    }
}
