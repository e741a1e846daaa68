//! The side-by-side benchmark workload (the same as the Restate baseline's
//! `Bench/flow`): three journaled steps that do no real work,
//! `a = n + 1; b = 2a; c = b + 3`, returning `a + b + c = 5n + 8`.
//!
//! Served synchronously by a node as
//! `POST /v1/workflows/bench_flow/call` with body `n`.

use drover::prelude::*;

/// `n + 1`.
#[activity]
pub async fn bench_add_one(n: i64) -> Result<i64, Error> {
    Ok(n + 1)
}

/// `2a`.
#[activity]
pub async fn bench_double(a: i64) -> Result<i64, Error> {
    Ok(2 * a)
}

/// `b + 3`.
#[activity]
pub async fn bench_add_three(b: i64) -> Result<i64, Error> {
    Ok(b + 3)
}

/// `5n + 8`, in three durable steps.
#[workflow]
pub async fn bench_flow(n: i64) -> Result<i64, Error> {
    let a = bench_add_one(n).await?;
    let b = bench_double(a).await?;
    let c = bench_add_three(b).await?;
    Ok(a + b + c)
}
