//! The value operations behind the instructions: arithmetic, comparison,
//! access, construction, formatting, and the value limits. The hot loop
//! handles the common int cases inline and calls these for everything else.

use std::cmp::Ordering;
use std::fmt::Write;

use drover_ir::value::Map;
use drover_ir::{Block, Symbol, Value};

use crate::error::ErrorKind;
use crate::state::Config;

/// A failure of one instruction, before the interpreter adds its address.
#[derive(Debug)]
pub(crate) struct Fault {
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
    pub(crate) value: Value,
}

/// The result of an operation that may fail the run. Boxed so that the
/// success path returns no more than a `Value`.
pub(crate) type Res<T> = Result<T, Box<Fault>>;

/// A failure of `kind`.
#[cold]
pub(crate) fn fault(kind: ErrorKind, message: impl Into<String>) -> Box<Fault> {
    Box::new(Fault {
        kind,
        message: message.into(),
        value: Value::Null,
    })
}

/// A type error of instruction `op` on the kinds found.
#[cold]
pub(crate) fn type_error(op: &str, what: &str, found: &[&Value]) -> Box<Fault> {
    let kinds: Vec<&str> = found.iter().map(|v| v.kind().name()).collect();
    fault(
        ErrorKind::TypeError,
        format!("`{op}` {what}, got {}", kinds.join(" and ")),
    )
}

/// Checks `v` against the size and depth limits, naming `what` produced it.
/// Stops walking as soon as a limit is passed, so its cost is bounded by the
/// limit rather than by the value.
pub(crate) fn check_limits(v: &Value, config: &Config, what: &str) -> Res<()> {
    let mut budget = config.max_value_bytes;
    if walk(v, config.max_value_depth, &mut budget) {
        Ok(())
    } else {
        Err(fault(
            ErrorKind::ValueTooLarge,
            format!(
                "{what} is larger than {} bytes or deeper than {} levels",
                config.max_value_bytes, config.max_value_depth
            ),
        ))
    }
}

/// Subtracts `v`'s `approx_size` from `budget`; false once the budget or the
/// depth runs out. The recursion never goes deeper than `depth`.
fn walk(v: &Value, depth: usize, budget: &mut usize) -> bool {
    let Some(d) = depth.checked_sub(1) else {
        return false;
    };
    let mut take = |n: usize| match budget.checked_sub(n) {
        Some(left) => {
            *budget = left;
            true
        }
        None => false,
    };
    match v {
        Value::Null | Value::Bool(_) => take(1),
        Value::Int(_) | Value::Float(_) => take(9),
        Value::Str(s) => take(5 + s.len()),
        Value::Bytes(b) => take(5 + b.len()),
        Value::List(items) => take(5) && items.iter().all(|i| walk(i, d, budget)),
        Value::Map(m) => {
            take(5)
                && m.iter()
                    .all(|(k, v)| walk(k, d, budget) && walk(v, d, budget))
        }
        Value::Variant(var) => take(3 + var.tag.len()) && walk(&var.payload, d, budget),
    }
}

/// The arithmetic instructions.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl Arith {
    fn name(self) -> &'static str {
        match self {
            Arith::Add => "add",
            Arith::Sub => "sub",
            Arith::Mul => "mul",
            Arith::Div => "div",
            Arith::Rem => "rem",
        }
    }
}

/// Integer arithmetic, checked.
pub(crate) fn int_arith(op: Arith, x: i64, y: i64) -> Res<Value> {
    let r = match op {
        Arith::Add => x.checked_add(y),
        Arith::Sub => x.checked_sub(y),
        Arith::Mul => x.checked_mul(y),
        Arith::Div | Arith::Rem if y == 0 => {
            return Err(fault(
                ErrorKind::DivideByZero,
                format!("`{}` of {x} by zero", op.name()),
            ))
        }
        Arith::Div => x.checked_div(y),
        Arith::Rem => x.checked_rem(y),
    };
    r.map(Value::Int).ok_or_else(|| {
        fault(
            ErrorKind::Overflow,
            format!("`{}` of {x} and {y} overflows a 64-bit int", op.name()),
        )
    })
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// Arithmetic on any operands: ints, floats (an int meeting a float is
/// promoted), and for `add` concatenation of strings, bytes and lists.
#[inline(never)]
pub(crate) fn arith(op: Arith, a: &Value, b: &Value, config: &Config) -> Res<Value> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => int_arith(op, *x, *y),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let (x, y) = (as_f64(a).unwrap_or(0.0), as_f64(b).unwrap_or(0.0));
            Ok(Value::Float(match op {
                Arith::Add => x + y,
                Arith::Sub => x - y,
                Arith::Mul => x * y,
                // Float division by zero fails like int division, rather
                // than letting inf and nan into workflow data.
                Arith::Div | Arith::Rem if y == 0.0 => {
                    return Err(fault(
                        ErrorKind::DivideByZero,
                        format!("`{}` of {x:?} by zero", op.name()),
                    ))
                }
                Arith::Div => x / y,
                Arith::Rem => x % y,
            }))
        }
        (Value::Str(x), Value::Str(y)) if matches!(op, Arith::Add) => {
            let v = Value::Str([x.as_str(), y.as_str()].concat());
            check_limits(&v, config, "the string `add` built")?;
            Ok(v)
        }
        (Value::Bytes(x), Value::Bytes(y)) if matches!(op, Arith::Add) => {
            let v = Value::Bytes([x.as_slice(), y.as_slice()].concat());
            check_limits(&v, config, "the bytes `add` built")?;
            Ok(v)
        }
        (Value::List(x), Value::List(y)) if matches!(op, Arith::Add) => {
            let mut items = Vec::with_capacity(x.len() + y.len());
            items.extend_from_slice(x);
            items.extend_from_slice(y);
            let v = Value::List(items);
            check_limits(&v, config, "the list `add` built")?;
            Ok(v)
        }
        _ => Err(type_error(
            op.name(),
            match op {
                Arith::Add => "takes two numbers, strings, bytes or lists",
                _ => "takes two numbers",
            },
            &[a, b],
        )),
    }
}

/// `neg`.
pub(crate) fn neg(a: &Value) -> Res<Value> {
    match a {
        Value::Int(x) => x.checked_neg().map(Value::Int).ok_or_else(|| {
            fault(
                ErrorKind::Overflow,
                format!("`neg` of {x} overflows a 64-bit int"),
            )
        }),
        Value::Float(x) => Ok(Value::Float(-x)),
        _ => Err(type_error("neg", "takes a number", &[a])),
    }
}

/// The ordering comparisons.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn name(self) -> &'static str {
        match self {
            Cmp::Lt => "lt",
            Cmp::Le => "le",
            Cmp::Gt => "gt",
            Cmp::Ge => "ge",
        }
    }

    pub(crate) fn holds(self, o: Ordering) -> bool {
        match self {
            Cmp::Lt => o == Ordering::Less,
            Cmp::Le => o != Ordering::Greater,
            Cmp::Gt => o == Ordering::Greater,
            Cmp::Ge => o != Ordering::Less,
        }
    }
}

/// Compares two numbers, two strings or two bytes. A comparison involving
/// NaN is false, as in IEEE 754.
#[inline(never)]
pub(crate) fn compare(op: Cmp, a: &Value, b: &Value) -> Res<bool> {
    let ord = match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => as_f64(a)
            .zip(as_f64(b))
            .and_then(|(x, y)| x.partial_cmp(&y)),
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Bytes(x), Value::Bytes(y)) => Some(x.cmp(y)),
        _ => {
            return Err(type_error(
                op.name(),
                "compares two numbers, two strings or two bytes",
                &[a, b],
            ))
        }
    };
    Ok(ord.is_some_and(|o| op.holds(o)))
}

/// `and`/`or`/`not` operand.
pub(crate) fn boolean(op: &str, v: &Value) -> Res<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => Err(type_error(op, "takes bools", &[v])),
    }
}

/// `field`.
pub(crate) fn field(base: &Value, name: &Symbol) -> Res<Value> {
    match base {
        Value::Map(_) => base.get_field(name.as_str()).cloned().ok_or_else(|| {
            fault(
                ErrorKind::MissingField,
                format!("`field` found no field `{}` in the record", name.as_str()),
            )
        }),
        _ => Err(type_error(
            "field",
            &format!("reads field `{}` of a record", name.as_str()),
            &[base],
        )),
    }
}

/// `setfield`, in place.
pub(crate) fn set_field(base: &mut Value, name: &Symbol, v: Value, config: &Config) -> Res<()> {
    match base {
        Value::Map(m) => {
            m.insert(Value::Str(name.0.clone()), v);
            check_limits(base, config, "the record `setfield` built")
        }
        _ => Err(type_error("setfield", "sets a field of a record", &[base])),
    }
}

fn list_index(op: &str, len: usize, key: i64) -> Res<usize> {
    usize::try_from(key)
        .ok()
        .filter(|&i| i < len)
        .ok_or_else(|| {
            fault(
                ErrorKind::IndexOutOfRange,
                format!("`{op}` at index {key} of a list of {len}"),
            )
        })
}

/// `index`.
pub(crate) fn index(base: &Value, key: &Value) -> Res<Value> {
    match (base, key) {
        (Value::List(items), Value::Int(i)) => {
            Ok(items[list_index("index", items.len(), *i)?].clone())
        }
        (Value::Map(m), _) => m.get(key).cloned().ok_or_else(|| {
            fault(
                ErrorKind::MissingField,
                format!("`index` found no key {key} in the map"),
            )
        }),
        _ => Err(type_error(
            "index",
            "indexes a list with an int or a map with a key",
            &[base, key],
        )),
    }
}

/// `setindex`, in place. A list index must already exist.
pub(crate) fn set_index(base: &mut Value, key: &Value, v: Value, config: &Config) -> Res<()> {
    match (&mut *base, key) {
        (Value::List(items), Value::Int(i)) => {
            let i = list_index("setindex", items.len(), *i)?;
            items[i] = v;
        }
        (Value::Map(m), _) => {
            m.insert(key.clone(), v);
        }
        _ => {
            return Err(type_error(
                "setindex",
                "sets an element of a list (by int) or a map",
                &[base, key],
            ))
        }
    }
    check_limits(base, config, "the collection `setindex` built")
}

/// The value as `format` and `to_string` write it: strings bare, everything
/// else in literal syntax.
pub(crate) fn write_text(out: &mut String, v: &Value) {
    match v {
        Value::Str(s) => out.push_str(s),
        other => {
            // Writing into a String cannot fail.
            let _ = write!(out, "{other}");
        }
    }
}

/// `format`: each `{}` takes the next argument, `{{` and `}}` are braces.
pub(crate) fn format(template: &str, args: &[&Value], config: &Config) -> Res<Value> {
    let mut out = String::with_capacity(template.len());
    let mut next = 0;
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push('{');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push('}');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{}") {
            let Some(arg) = args.get(next) else {
                return Err(fault(
                    ErrorKind::TypeError,
                    format!(
                        "`format` template {template:?} has more placeholders than its {} arguments",
                        args.len()
                    ),
                ));
            };
            write_text(&mut out, arg);
            next += 1;
            rest = after;
        } else {
            // A lone brace stands for itself.
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
        if out.len() > config.max_value_bytes {
            break;
        }
    }
    out.push_str(rest);
    if next != args.len() && out.len() <= config.max_value_bytes {
        return Err(fault(
            ErrorKind::TypeError,
            format!(
                "`format` template {template:?} has {next} placeholders for {} arguments",
                args.len()
            ),
        ));
    }
    let v = Value::Str(out);
    check_limits(&v, config, "the string `format` built")?;
    Ok(v)
}

/// The tag `match` sees: a variant's tag, `None` for null, `Some` otherwise.
pub(crate) fn tag_of(v: &Value) -> &str {
    match v {
        Value::Variant(var) => &var.tag,
        Value::Null => "None",
        _ => "Some",
    }
}

/// `match`: the block of the arm for `v`'s tag, else the default.
pub(crate) fn match_arm(v: &Value, arms: &[(Symbol, Block)], default: Option<Block>) -> Res<Block> {
    let tag = tag_of(v);
    arms.iter()
        .find(|(t, _)| t.as_str() == tag)
        .map(|(_, b)| *b)
        .or(default)
        .ok_or_else(|| {
            fault(
                ErrorKind::NoMatch,
                format!("`match` has no arm for tag `{tag}` and no default"),
            )
        })
}

/// `payload`.
pub(crate) fn payload(v: &Value) -> Value {
    match v {
        Value::Variant(var) => var.payload.clone(),
        other => other.clone(),
    }
}

/// `unwrap`: the payload of `Ok`/`Some`, or a failure carrying the error.
pub(crate) fn unwrap(v: &Value) -> Res<Value> {
    match v {
        Value::Variant(var) => match var.tag.as_str() {
            "Ok" | "Some" => Ok(var.payload.clone()),
            "Err" => {
                let mut f = fault(
                    ErrorKind::Unwrapped,
                    format!("`unwrap` met Err({})", var.payload),
                );
                f.value = var.payload.clone();
                Err(f)
            }
            "None" => Err(fault(ErrorKind::Unwrapped, "`unwrap` met None")),
            tag => Err(fault(
                ErrorKind::TypeError,
                format!("`unwrap` takes Ok, Err, Some or None, got variant `{tag}`"),
            )),
        },
        Value::Null => Err(fault(ErrorKind::Unwrapped, "`unwrap` met None (null)")),
        other => Ok(other.clone()),
    }
}

/// `record`.
pub(crate) fn record<'a>(
    fields: impl Iterator<Item = (&'a Symbol, &'a Value)>,
    config: &Config,
) -> Res<Value> {
    let m: Map = fields
        .map(|(k, v)| (Value::Str(k.0.clone()), v.clone()))
        .collect();
    let v = Value::Map(m);
    check_limits(&v, config, "the record `record` built")?;
    Ok(v)
}

/// The error value a failed effect or child gives the workflow.
pub(crate) fn error_record(kind: &str, message: &str) -> Value {
    Value::record([
        ("kind", Value::Str(kind.to_owned())),
        ("message", Value::Str(message.to_owned())),
    ])
}

/// Checks a list of values (effect or child arguments) as one value.
pub(crate) fn check_all(values: &[Value], config: &Config, what: &str) -> Res<()> {
    let mut budget = config.max_value_bytes.saturating_sub(5);
    if values
        .iter()
        .all(|v| walk(v, config.max_value_depth.saturating_sub(1), &mut budget))
    {
        Ok(())
    } else {
        Err(fault(
            ErrorKind::ValueTooLarge,
            format!(
                "{what} are larger than {} bytes or deeper than {} levels",
                config.max_value_bytes, config.max_value_depth
            ),
        ))
    }
}
