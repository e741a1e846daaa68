// Assignment to locals, fields and elements; compound assignment; mutating methods; shadowing; let-else; block values.
use drover::prelude::*;

#[workflow]
pub async fn places(mut order: Order, key: String) -> Order {
    let mut count = 0;
    count = count + 1;
    count += 2;
    count -= 1;
    count *= 3;
    count /= 2;
    count %= 7;
    order.status = "open".to_string();
    order.customer.address.city = "Oslo".to_string();
    order.lines[0] = Line { sku: key.clone(), qty: count };
    order.lines[1].qty += 1;
    order.totals.0 = 5;
    let mut tags = vec!["a".to_string()];
    tags.push("b".to_string());
    tags.sort();
    tags.extend(vec!["c".to_string()]);
    let mut index: BTreeMap<String, i64> = BTreeMap::new();
    index.insert(key.clone(), count);
    let old = index.remove(&key);
    let x = 1;
    let x = x + 1;
    {
        let x = 10;
        count += x;
    }
    let Some(first) = tags.first() else {
        return order;
    };
    let y = {
        let z = x * 2;
        z + 1
    };
    let uninit;
    if y > 3 {
        uninit = 1;
    } else {
        uninit = 2;
    }
    order.notes = format!("{first} {x} {y} {uninit} {old:?} {count}");
    order.tags = tags;
    order
}
