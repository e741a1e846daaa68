//! The workflow `drover bench` runs by default: three no-op activity steps,
//! so what is measured is the node (journal appends, group commit, the loop),
//! not the work. For an input `n` it computes `a = n + 1`, `b = 2a`,
//! `c = b + 3` and returns `a + b + c`, which is `5n + 8`.
//!
//! ```sh
//! drover run bench_flow --input 1     # result: 13
//! drover bench -n 10000 -c 64
//! ```

use drover::prelude::*;

/// `n + 1`.
#[activity]
pub async fn bench_inc(n: i64) -> Result<i64, Error> {
    Ok(n.wrapping_add(1))
}

/// `2a`.
#[activity]
pub async fn bench_double(a: i64) -> Result<i64, Error> {
    Ok(a.wrapping_mul(2))
}

/// `b + 3`.
#[activity]
pub async fn bench_add3(b: i64) -> Result<i64, Error> {
    Ok(b.wrapping_add(3))
}

/// Three no-op activity steps; returns `5n + 8`.
#[workflow]
pub async fn bench_flow(n: i64) -> i64 {
    let a = bench_inc(n).await.unwrap();
    let b = bench_double(a).await.unwrap();
    let c = bench_add3(b).await.unwrap();
    a + b + c
}
