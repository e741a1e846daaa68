// Literals, operators, fields, indexing, construction, casts, format! and methods.
use drover::prelude::*;

#[workflow]
pub async fn expressions(order: Order, n: i64, ratio: f64) -> Summary {
    let small = 7;
    let big = -9_223_372_036_854_775_808;
    let x = 1.5e3;
    let flag = true && !false || n > 3;
    let text = "hi\n";
    let letter = 'c';
    let bytes = b"\x00ab";
    let byte = b'a';
    let arith = (n + 2) * 3 - small / 2 % 5;
    let neg = -arith;
    let cmp = n == 1 || n != 2 && n < 3 && n <= 4 && n > 0 && n >= 0;
    let qty = order.lines[0].qty;
    let pair = (n, "two");
    let second = pair.1;
    let head = &order.tags[..2];
    let tail = &order.tags[1..];
    let mid = &order.tags[1..=2];
    let total = Totals { count: n, ratio, label: text.to_string() };
    let unit = Shape::Empty;
    let circle = Shape::Circle(ratio);
    let rect = Shape::Rect(2, 3);
    let named = Shape::Named { name: order.id.clone() };
    let maybe = Some(n);
    let nothing: Option<i64> = None;
    let ok: Result<i64, Error> = Ok(n);
    let err: Result<i64, Error> = Err(Error::new("bad", "input"));
    let list = vec![1, 2, 3];
    let arr = [n, n];
    let empty: Vec<i64> = Vec::new();
    let map: BTreeMap<String, i64> = BTreeMap::new();
    let s = String::new();
    let msg = format!("{} has {n} lines, {:?} and {0} again; {{literal}} {named_arg}", order.id, pair, named_arg = qty);
    let f = n as f64;
    let i = x as i64;
    let words = text.trim().to_uppercase().split(" ").collect::<Vec<_>>();
    let joined = words.join(",");
    let has = list.contains(&2) && text.starts_with("h") && !text.ends_with("x");
    let lower = joined.to_lowercase().replace("a", "b");
    let count = list.len() + list.iter().sum::<i64>();
    let biggest = n.max(3).min(10).abs();
    let parsed = "42".parse::<i64>().unwrap_or(0);
    let first = list.first();
    let got = map.get("k").is_some() || map.keys().is_empty() || map.values().len() > 0;
    let flags = (maybe.is_none(), ok.is_ok(), err.is_err(), nothing.is_some());
    let reversed: Vec<i64> = list.iter().rev().collect();
    let unwrapped = ok.clone().unwrap() + maybe.expect("present");
    let text2 = n.to_string();
    Summary { total, msg, parts: vec![small, big, arith, neg, qty, second, i, count, biggest, parsed, unwrapped], f, flag, cmp, has, lower, got, flags, reversed, first, text2, letter, bytes, byte, head, tail, mid, unit, circle, rect, named, nothing, err, arr, empty, s, x }
}
