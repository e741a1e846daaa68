//! The builtin functions of `builtin NAME(...)`, as `drover_ir::builtins`
//! documents them. Every function that builds a collection checks the value
//! limits, and the ones whose result could dwarf their input (`range`,
//! `replace`, `split`, `join`) check the size before allocating it.

use drover_ir::{Builtin, Value};

use crate::error::ErrorKind;
use crate::ops::{check_limits, fault, type_error, write_text, Res};
use crate::state::Config;

fn too_large(b: Builtin, bytes: usize, config: &Config) -> Res<()> {
    if bytes > config.max_value_bytes {
        return Err(fault(
            ErrorKind::ValueTooLarge,
            format!(
                "`{}` would build about {bytes} bytes, more than the limit of {}",
                b.name(),
                config.max_value_bytes
            ),
        ));
    }
    Ok(())
}

fn checked(b: Builtin, v: Value, config: &Config) -> Res<Value> {
    check_limits(&v, config, &format!("the value `{}` built", b.name()))?;
    Ok(v)
}

fn int_arg(b: Builtin, v: &Value) -> Res<i64> {
    v.as_int()
        .ok_or_else(|| type_error(b.name(), "takes an int here", &[v]))
}

/// The tag of an option-like value: `Some`/`None` for options (null is None,
/// any other non-variant is Some), the variant's tag otherwise.
fn option_tag(v: &Value) -> &str {
    crate::ops::tag_of(v)
}

/// A byte offset into `s` that is in range and on a char boundary.
fn str_offset(b: Builtin, s: &str, i: i64) -> Res<usize> {
    usize::try_from(i)
        .ok()
        .filter(|&i| i <= s.len() && s.is_char_boundary(i))
        .ok_or_else(|| {
            fault(
                ErrorKind::IndexOutOfRange,
                format!(
                    "`{}` offset {i} is outside the string of {} bytes or inside a character",
                    b.name(),
                    s.len()
                ),
            )
        })
}

fn range_bounds(b: Builtin, len: usize, start: i64, end: i64) -> Res<(usize, usize)> {
    match (usize::try_from(start), usize::try_from(end)) {
        (Ok(s), Ok(e)) if s <= e && e <= len => Ok((s, e)),
        _ => Err(fault(
            ErrorKind::IndexOutOfRange,
            format!("`{}` range [{start}, {end}) of length {len}", b.name()),
        )),
    }
}

/// Calls builtin `b` on `args`.
pub(crate) fn call(b: Builtin, args: &[&Value], config: &Config) -> Res<Value> {
    if args.len() != b.arity() {
        return Err(fault(
            ErrorKind::TypeError,
            format!(
                "`{}` takes {} arguments, got {}",
                b.name(),
                b.arity(),
                args.len()
            ),
        ));
    }
    // The arity was checked, so these never fall back; they avoid indexing.
    static NULL: Value = Value::Null;
    let arg = |i: usize| args.get(i).copied().unwrap_or(&NULL);
    let a = arg(0);
    let name = b.name();
    Ok(match b {
        Builtin::Len | Builtin::IsEmpty => {
            let n = match a {
                Value::Str(s) => s.len(),
                Value::Bytes(x) => x.len(),
                Value::List(x) => x.len(),
                Value::Map(x) => x.len(),
                _ => return Err(type_error(name, "takes a string, bytes, list or map", &[a])),
            };
            if b == Builtin::Len {
                Value::Int(n as i64)
            } else {
                Value::Bool(n == 0)
            }
        }
        Builtin::Contains => {
            let x = arg(1);
            Value::Bool(match (a, x) {
                (Value::Str(s), Value::Str(sub)) => s.contains(sub.as_str()),
                (Value::Bytes(s), Value::Bytes(sub)) => {
                    sub.is_empty() || s.windows(sub.len()).any(|w| w == sub.as_slice())
                }
                (Value::List(items), _) => items.contains(x),
                (Value::Map(m), _) => m.contains_key(x),
                _ => {
                    return Err(type_error(
                        name,
                        "searches a string, bytes, list or map",
                        &[a, x],
                    ))
                }
            })
        }
        Builtin::Push => match a {
            Value::List(items) => {
                let mut items = items.clone();
                items.push(arg(1).clone());
                checked(b, Value::List(items), config)?
            }
            _ => return Err(type_error(name, "appends to a list", &[a])),
        },
        Builtin::Get => match (a, arg(1)) {
            (Value::List(items), Value::Int(i)) => usize::try_from(*i)
                .ok()
                .and_then(|i| items.get(i))
                .cloned()
                .unwrap_or(Value::Null),
            (Value::Map(m), k) => m.get(k).cloned().unwrap_or(Value::Null),
            (_, k) => {
                return Err(type_error(
                    name,
                    "reads a list by int or a map by key",
                    &[a, k],
                ))
            }
        },
        Builtin::Insert => match a {
            Value::Map(m) => {
                let mut m = m.clone();
                m.insert(arg(1).clone(), arg(2).clone());
                checked(b, Value::Map(m), config)?
            }
            _ => return Err(type_error(name, "sets a key of a map", &[a])),
        },
        Builtin::Remove => match (a, arg(1)) {
            (Value::Map(m), k) => {
                let mut m = m.clone();
                m.remove(k);
                Value::Map(m)
            }
            (Value::List(items), Value::Int(i)) => {
                let idx = usize::try_from(*i)
                    .ok()
                    .filter(|&x| x < items.len())
                    .ok_or_else(|| {
                        fault(
                            ErrorKind::IndexOutOfRange,
                            format!("`remove` at index {i} of a list of {}", items.len()),
                        )
                    })?;
                let mut items = items.clone();
                items.remove(idx);
                Value::List(items)
            }
            (_, k) => {
                return Err(type_error(
                    name,
                    "removes a key of a map or an index of a list",
                    &[a, k],
                ))
            }
        },
        Builtin::Keys | Builtin::Values => match a {
            Value::Map(m) => Value::List(if b == Builtin::Keys {
                m.keys().cloned().collect()
            } else {
                m.values().cloned().collect()
            }),
            _ => return Err(type_error(name, "takes a map", &[a])),
        },
        Builtin::Slice => {
            let (start, end) = (int_arg(b, arg(1))?, int_arg(b, arg(2))?);
            match a {
                Value::List(items) => {
                    let (s, e) = range_bounds(b, items.len(), start, end)?;
                    Value::List(items[s..e].to_vec())
                }
                Value::Bytes(x) => {
                    let (s, e) = range_bounds(b, x.len(), start, end)?;
                    Value::Bytes(x[s..e].to_vec())
                }
                Value::Str(s) => {
                    let (i, j) = (str_offset(b, s, start)?, str_offset(b, s, end)?);
                    if i > j {
                        return Err(fault(
                            ErrorKind::IndexOutOfRange,
                            format!("`slice` range [{start}, {end}) is backwards"),
                        ));
                    }
                    Value::Str(s[i..j].to_owned())
                }
                _ => return Err(type_error(name, "slices a list, bytes or string", &[a])),
            }
        }
        Builtin::Range => {
            let (start, end) = (int_arg(b, a)?, int_arg(b, arg(1))?);
            let n = end.saturating_sub(start).max(0) as u64;
            too_large(
                b,
                usize::try_from(n.saturating_mul(9).saturating_add(5)).unwrap_or(usize::MAX),
                config,
            )?;
            Value::List((start..end.max(start)).map(Value::Int).collect())
        }
        Builtin::Reverse | Builtin::Sort => match a {
            Value::List(items) => {
                let mut items = items.clone();
                if b == Builtin::Reverse {
                    items.reverse();
                } else {
                    items.sort();
                }
                Value::List(items)
            }
            _ => return Err(type_error(name, "takes a list", &[a])),
        },
        Builtin::Sum => match a {
            Value::List(items) => {
                let mut acc = Value::Int(0);
                for item in items {
                    if !matches!(item, Value::Int(_) | Value::Float(_)) {
                        return Err(type_error(name, "adds a list of numbers", &[item]));
                    }
                    acc = crate::ops::arith(crate::ops::Arith::Add, &acc, item, config)?;
                }
                acc
            }
            _ => return Err(type_error(name, "takes a list of numbers", &[a])),
        },
        Builtin::Min => std::cmp::min(a, arg(1)).clone(),
        Builtin::Max => std::cmp::max(a, arg(1)).clone(),
        Builtin::Abs => match a {
            Value::Int(x) => Value::Int(x.checked_abs().ok_or_else(|| {
                fault(
                    ErrorKind::Overflow,
                    format!("`abs` of {x} overflows a 64-bit int"),
                )
            })?),
            Value::Float(x) => Value::Float(x.abs()),
            _ => return Err(type_error(name, "takes a number", &[a])),
        },
        Builtin::ToString => {
            let mut out = String::new();
            write_text(&mut out, a);
            checked(b, Value::Str(out), config)?
        }
        Builtin::ToUpper | Builtin::ToLower | Builtin::Trim => match a {
            Value::Str(s) => Value::Str(match b {
                Builtin::ToUpper => s.to_uppercase(),
                Builtin::ToLower => s.to_lowercase(),
                _ => s.trim().to_owned(),
            }),
            _ => return Err(type_error(name, "takes a string", &[a])),
        },
        Builtin::StartsWith | Builtin::EndsWith => match (a, arg(1)) {
            (Value::Str(s), Value::Str(p)) => Value::Bool(if b == Builtin::StartsWith {
                s.starts_with(p.as_str())
            } else {
                s.ends_with(p.as_str())
            }),
            (_, p) => return Err(type_error(name, "takes two strings", &[a, p])),
        },
        Builtin::Replace => match (a, arg(1), arg(2)) {
            (Value::Str(s), Value::Str(pat), Value::Str(with)) => {
                let hits = if pat.is_empty() {
                    s.chars().count() + 1
                } else {
                    s.matches(pat.as_str()).count()
                };
                let len =
                    (s.len() - hits * pat.len()).saturating_add(hits.saturating_mul(with.len()));
                too_large(b, len.saturating_add(5), config)?;
                Value::Str(s.replace(pat.as_str(), with))
            }
            (_, p, w) => return Err(type_error(name, "takes three strings", &[a, p, w])),
        },
        Builtin::Split => match (a, arg(1)) {
            (Value::Str(s), Value::Str(sep)) => {
                // An empty separator splits into characters.
                let parts = if sep.is_empty() {
                    s.chars().count()
                } else {
                    s.matches(sep.as_str()).count() + 1
                };
                too_large(b, 5 + 5 * parts + s.len(), config)?;
                Value::List(if sep.is_empty() {
                    s.chars().map(|c| Value::Str(c.to_string())).collect()
                } else {
                    s.split(sep.as_str()).map(Value::from).collect()
                })
            }
            (_, p) => return Err(type_error(name, "takes two strings", &[a, p])),
        },
        Builtin::Join => match (a, arg(1)) {
            (Value::List(items), Value::Str(sep)) => {
                let mut len = sep.len().saturating_mul(items.len());
                for item in items {
                    match item {
                        Value::Str(s) => len = len.saturating_add(s.len()),
                        _ => return Err(type_error(name, "joins a list of strings", &[item])),
                    }
                }
                too_large(b, len.saturating_add(5), config)?;
                let strs: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                Value::Str(strs.join(sep))
            }
            (_, p) => {
                return Err(type_error(
                    name,
                    "takes a list of strings and a string",
                    &[a, p],
                ))
            }
        },
        Builtin::ParseInt => match a {
            Value::Str(s) => match s.parse::<i64>() {
                Ok(i) => Value::ok(Value::Int(i)),
                Err(e) => Value::err(Value::Str(format!("cannot parse {s:?} as an int: {e}"))),
            },
            _ => return Err(type_error(name, "takes a string", &[a])),
        },
        Builtin::ToFloat => match a {
            Value::Int(i) => Value::Float(*i as f64),
            Value::Float(f) => Value::Float(*f),
            _ => return Err(type_error(name, "takes a number", &[a])),
        },
        Builtin::ToInt => match a {
            Value::Int(i) => Value::Int(*i),
            Value::Float(f) => {
                let t = f.trunc();
                // i64::MAX as f64 rounds up to 2^63, which does not fit.
                if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&t) {
                    return Err(fault(
                        ErrorKind::Overflow,
                        format!("`to_int` of {f:?} does not fit a 64-bit int"),
                    ));
                }
                Value::Int(t as i64)
            }
            _ => return Err(type_error(name, "takes a number", &[a])),
        },
        Builtin::IsSome => Value::Bool(option_tag(a) == "Some"),
        Builtin::IsNone => Value::Bool(option_tag(a) == "None"),
        Builtin::IsOk => Value::Bool(option_tag(a) == "Ok"),
        Builtin::IsErr => Value::Bool(option_tag(a) == "Err"),
        Builtin::UnwrapOr => match (a, option_tag(a)) {
            (Value::Variant(v), "Some" | "Ok") => v.payload.clone(),
            (_, "Some") => a.clone(),
            (_, "None" | "Err") => arg(1).clone(),
            (_, tag) => {
                return Err(fault(
                    ErrorKind::TypeError,
                    format!("`unwrap_or` takes an option or result, got variant `{tag}`"),
                ))
            }
        },
        Builtin::TypeOf => Value::Str(a.kind().name().to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_ir::value::Map;

    fn run(b: Builtin, args: &[Value]) -> Result<Value, ErrorKind> {
        let refs: Vec<&Value> = args.iter().collect();
        call(b, &refs, &Config::default()).map_err(|f| f.kind)
    }

    fn s(x: &str) -> Value {
        Value::from(x)
    }

    fn l(items: &[i64]) -> Value {
        Value::List(items.iter().copied().map(Value::Int).collect())
    }

    #[test]
    fn collections() {
        assert_eq!(run(Builtin::Len, &[s("héllo")]), Ok(Value::Int(6)));
        assert_eq!(run(Builtin::IsEmpty, &[l(&[])]), Ok(Value::Bool(true)));
        assert_eq!(
            run(Builtin::Contains, &[l(&[1, 2]), Value::Int(2)]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            run(Builtin::Push, &[l(&[1]), Value::Int(2)]),
            Ok(l(&[1, 2]))
        );
        assert_eq!(
            run(Builtin::Get, &[l(&[1]), Value::Int(5)]),
            Ok(Value::Null)
        );
        assert_eq!(
            run(Builtin::Get, &[l(&[1]), Value::Int(-1)]),
            Ok(Value::Null)
        );
        let m = Value::record([("a", Value::Int(1))]);
        let m2 = run(Builtin::Insert, &[m.clone(), s("b"), Value::Int(2)]).unwrap();
        assert_eq!(
            run(Builtin::Keys, std::slice::from_ref(&m2)),
            Ok(Value::List(vec![s("a"), s("b")]))
        );
        assert_eq!(
            run(Builtin::Values, std::slice::from_ref(&m2)),
            Ok(l(&[1, 2]))
        );
        assert_eq!(run(Builtin::Remove, &[m2, s("b")]), Ok(m));
        assert_eq!(
            run(Builtin::Remove, &[l(&[1, 2, 3]), Value::Int(1)]),
            Ok(l(&[1, 3]))
        );
        assert_eq!(
            run(Builtin::Remove, &[l(&[1]), Value::Int(1)]),
            Err(ErrorKind::IndexOutOfRange)
        );
        assert_eq!(
            run(
                Builtin::Slice,
                &[l(&[1, 2, 3]), Value::Int(1), Value::Int(3)]
            ),
            Ok(l(&[2, 3]))
        );
        assert_eq!(
            run(Builtin::Slice, &[l(&[1]), Value::Int(1), Value::Int(0)]),
            Err(ErrorKind::IndexOutOfRange)
        );
        assert_eq!(
            run(Builtin::Slice, &[s("héllo"), Value::Int(0), Value::Int(2)]),
            Err(ErrorKind::IndexOutOfRange)
        );
        assert_eq!(
            run(Builtin::Slice, &[s("héllo"), Value::Int(0), Value::Int(3)]),
            Ok(s("hé"))
        );
        assert_eq!(
            run(Builtin::Range, &[Value::Int(2), Value::Int(5)]),
            Ok(l(&[2, 3, 4]))
        );
        assert_eq!(
            run(Builtin::Range, &[Value::Int(5), Value::Int(2)]),
            Ok(l(&[]))
        );
        assert_eq!(
            run(Builtin::Range, &[Value::Int(0), Value::Int(i64::MAX)]),
            Err(ErrorKind::ValueTooLarge)
        );
        assert_eq!(run(Builtin::Reverse, &[l(&[1, 2])]), Ok(l(&[2, 1])));
        assert_eq!(run(Builtin::Sort, &[l(&[3, 1, 2])]), Ok(l(&[1, 2, 3])));
        assert_eq!(run(Builtin::Sum, &[l(&[1, 2, 3])]), Ok(Value::Int(6)));
        assert_eq!(
            run(
                Builtin::Sum,
                &[Value::List(vec![Value::Int(1), Value::Float(0.5)])]
            ),
            Ok(Value::Float(1.5))
        );
        assert_eq!(
            run(Builtin::Sum, &[l(&[i64::MAX, 1])]),
            Err(ErrorKind::Overflow)
        );
        assert_eq!(
            run(Builtin::Min, &[Value::Int(3), Value::Int(1)]),
            Ok(Value::Int(1))
        );
        assert_eq!(
            run(Builtin::Max, &[Value::Int(3), Value::Int(1)]),
            Ok(Value::Int(3))
        );
        assert_eq!(
            run(Builtin::Abs, &[Value::Int(i64::MIN)]),
            Err(ErrorKind::Overflow)
        );
        assert_eq!(
            run(Builtin::Len, &[Value::Int(1)]),
            Err(ErrorKind::TypeError)
        );
        assert_eq!(run(Builtin::Len, &[]), Err(ErrorKind::TypeError));
    }

    #[test]
    fn strings() {
        assert_eq!(run(Builtin::ToString, &[s("x")]), Ok(s("x")));
        assert_eq!(run(Builtin::ToString, &[l(&[1])]), Ok(s("[1]")));
        assert_eq!(run(Builtin::ToUpper, &[s("ab")]), Ok(s("AB")));
        assert_eq!(run(Builtin::ToLower, &[s("AB")]), Ok(s("ab")));
        assert_eq!(run(Builtin::Trim, &[s(" a ")]), Ok(s("a")));
        assert_eq!(
            run(Builtin::StartsWith, &[s("abc"), s("ab")]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            run(Builtin::EndsWith, &[s("abc"), s("ab")]),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            run(Builtin::Replace, &[s("a-b-c"), s("-"), s("+")]),
            Ok(s("a+b+c"))
        );
        assert_eq!(
            run(Builtin::Split, &[s("a,b"), s(",")]),
            Ok(Value::List(vec![s("a"), s("b")]))
        );
        assert_eq!(
            run(Builtin::Split, &[s("ab"), s("")]),
            Ok(Value::List(vec![s("a"), s("b")]))
        );
        assert_eq!(
            run(Builtin::Join, &[Value::List(vec![s("a"), s("b")]), s(", ")]),
            Ok(s("a, b"))
        );
        assert_eq!(
            run(Builtin::ParseInt, &[s("42")]),
            Ok(Value::ok(Value::Int(42)))
        );
        assert!(
            matches!(run(Builtin::ParseInt, &[s("x")]), Ok(Value::Variant(v)) if v.tag == "Err")
        );
        let big = s(&"x".repeat(1000));
        assert_eq!(
            run(Builtin::Replace, &[big, s("x"), s(&"y".repeat(2000))]),
            Err(ErrorKind::ValueTooLarge)
        );
    }

    #[test]
    fn numbers_and_options() {
        assert_eq!(
            run(Builtin::ToFloat, &[Value::Int(2)]),
            Ok(Value::Float(2.0))
        );
        assert_eq!(
            run(Builtin::ToInt, &[Value::Float(-2.7)]),
            Ok(Value::Int(-2))
        );
        assert_eq!(
            run(Builtin::ToInt, &[Value::Float(1e19)]),
            Err(ErrorKind::Overflow)
        );
        assert_eq!(
            run(Builtin::ToInt, &[Value::Float(f64::NAN)]),
            Err(ErrorKind::Overflow)
        );
        assert_eq!(
            run(Builtin::IsSome, &[Value::Int(1)]),
            Ok(Value::Bool(true))
        );
        assert_eq!(run(Builtin::IsNone, &[Value::Null]), Ok(Value::Bool(true)));
        assert_eq!(
            run(Builtin::IsOk, &[Value::ok(Value::Null)]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            run(Builtin::IsErr, &[Value::ok(Value::Null)]),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            run(Builtin::UnwrapOr, &[Value::err(Value::Null), Value::Int(7)]),
            Ok(Value::Int(7))
        );
        assert_eq!(
            run(
                Builtin::UnwrapOr,
                &[Value::ok(Value::Int(1)), Value::Int(7)]
            ),
            Ok(Value::Int(1))
        );
        assert_eq!(
            run(Builtin::UnwrapOr, &[Value::Int(3), Value::Int(7)]),
            Ok(Value::Int(3))
        );
        assert_eq!(
            run(Builtin::UnwrapOr, &[Value::Null, Value::Int(7)]),
            Ok(Value::Int(7))
        );
        assert_eq!(
            run(Builtin::TypeOf, &[Value::Map(Map::new())]),
            Ok(s("map"))
        );
    }

    #[test]
    fn every_builtin_is_covered_by_a_test_above() {
        // Keeps this file honest when the builtin table grows.
        assert_eq!(Builtin::ALL.len(), 35);
    }
}
