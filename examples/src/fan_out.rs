//! Fan-out/fan-in: every item is processed by its own `process` activity,
//! all in parallel (one fiber each in IR), then the results are aggregated:
//! counts of accepted, rejected and failed items, a total score from a
//! `#[pure]` scoring fn, and the best item.
//!
//! ```sh
//! dslc compile examples/src/fan_out.rs -o /tmp/out
//! dslc run /tmp/out/fan_out.dbc fan_out \
//!   --input '[{"id": "a", "quantity": 2}, {"id": "b", "quantity": 5}, {"id": "c", "quantity": 1}]' \
//!   --effects examples/effects/fan_out.json
//! ```

use drover::effects::{http, statsd};
use drover::prelude::*;
use serde::{Deserialize, Serialize};

/// The worker pool's endpoint.
pub const WORKER_URL: &str = "https://workers.internal/v1/process";

/// One unit of work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The item's id.
    pub id: String,
    /// How many of it there are; weighs its score.
    pub quantity: i64,
}

/// What a worker made of one item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Processed {
    /// Whether the item passed the worker's checks.
    pub accepted: bool,
    /// Its quality, 0 to 100.
    pub quality: i64,
}

/// The aggregate of a fan-out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Items the workers accepted.
    pub accepted: i64,
    /// Items the workers rejected.
    pub rejected: i64,
    /// Items whose processing failed.
    pub failed: i64,
    /// The sum of the accepted items' scores.
    pub total_score: i64,
    /// The id of the accepted item with the highest score (the first, on a tie).
    pub best: Option<String>,
}

/// Processes one item on the worker pool.
#[activity(resources(workers = 1), timeout = "5s")]
pub async fn process(item: Item) -> Result<Processed, Error> {
    let body = serde_json::to_value(&item).map_err(Error::encode)?;
    let resp = http::request("POST", WORKER_URL, &[], Some(body)).await?;
    if resp.status != 200 {
        return Err(Error::new(
            "worker",
            format!("item {} answered {}", item.id, resp.status),
        ));
    }
    serde_json::from_value(resp.body).map_err(Error::decode)
}

/// An accepted item's score: its quality (clamped to 0..=100) weighed by
/// its quantity.
#[pure]
pub fn score(item: &Item, processed: &Processed) -> i64 {
    processed
        .quality
        .clamp(0, 100)
        .saturating_mul(item.quantity)
}

/// Processes every item in parallel and aggregates the results.
#[workflow]
pub async fn fan_out(items: Vec<Item>) -> Result<Summary, Error> {
    statsd::gauge("fan_out.items", items.len() as f64, &[]).await?;
    let results = all(items.iter().map(|item| process(item.clone()))).await;

    let mut summary = Summary {
        accepted: 0,
        rejected: 0,
        failed: 0,
        total_score: 0,
        best: None,
    };
    let mut best_score = -1;
    // `all` keeps the items' order, whichever branch finished first.
    for (i, result) in results.iter().enumerate() {
        let item = &items[i];
        match result {
            Ok(p) if p.accepted => {
                let s = score(item, p);
                summary.accepted += 1;
                summary.total_score += s;
                if s > best_score {
                    best_score = s;
                    summary.best = Some(item.id.clone());
                }
            }
            Ok(_) => summary.rejected += 1,
            Err(e) => {
                log::warn("item failed", (&item.id, e));
                summary.failed += 1;
            }
        }
    }
    statsd::count("fan_out.accepted", summary.accepted, &[]).await?;
    statsd::count("fan_out.failed", summary.failed, &[]).await?;
    Ok(summary)
}
