// Control flow: if/else values, if let, match (variants, Option, Result, literals, ranges, tuples, structs, `|`, guards, `@`), loops, break/continue, return, `?`.
use drover::prelude::*;

#[workflow]
pub async fn control(items: Vec<Item>, limit: i64, shape: Shape, res: Result<i64, Error>, opt: Option<i64>) -> Result<i64, Error> {
    let sign = if limit > 0 { 1 } else if limit < 0 { -1 } else { 0 };
    if limit == 42 {
        return Ok(42);
    }
    let area = match shape {
        Shape::Empty => 0,
        Shape::Circle(r) => r * r * 3,
        Shape::Rect(w, h) if w == h => w * w,
        Shape::Rect(w, h) => w * h,
        Shape::Named { name, .. } => name.len(),
    };
    let kind = match limit {
        0 => "zero",
        1 | 2 | 3 => "small",
        4..=9 => "medium",
        n @ 10..100 if n % 2 == 0 => "even",
        _ => "large",
    };
    let v = match opt {
        Some(x) => x,
        None => 0,
    };
    let w = match res {
        Ok(x) => x,
        Err(e) => return Err(e),
    };
    let pair = match (v, w) {
        (0, _) => 0,
        (a, b) => a + b,
    };
    if let Some(x) = opt {
        let _ = x;
    }
    let Item { price, qty, .. } = items[0].clone();
    let checked = res?;
    let o = opt?;
    let mut total = 0;
    for item in &items {
        if item.qty == 0 {
            continue;
        }
        total += item.price * item.qty;
    }
    for i in 0..limit {
        total += i;
    }
    for i in (1..=3).rev() {
        total -= i;
    }
    for (i, item) in items.iter().enumerate() {
        total += i + item.qty;
    }
    let mut n = 0;
    while n < limit {
        n += 1;
    }
    let mut stack = vec![1, 2, 3];
    while let Some(top) = stack.first() {
        total += top;
        stack.remove(0);
    }
    let found = loop {
        n -= 1;
        if n < 5 {
            break n;
        }
    };
    'outer: for a in 0..3 {
        for b in 0..3 {
            if a * b == 2 {
                continue 'outer;
            }
            if a + b == 4 {
                break 'outer;
            }
        }
    }
    let is_circle = matches!(shape, Shape::Circle(_));
    Ok(sign + area + v + w + pair + price + qty + checked + o + total + found + kind.len() + is_circle as i64)
}
