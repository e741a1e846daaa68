//! Example Drover workflows, written the way a user's own crate writes them:
//! it depends on `drover` (and serde) alone, marks workflows `#[workflow]`,
//! native side-effecting code `#[activity]` and deterministic helpers
//! `#[pure]`.
//!
//! Each module is one example; `examples/effects/<workflow>.json` holds
//! scripted effect responses for running it with `dslc run`.
//!
//! - [`email_scan`]: a virus scanner for email attachments, with a verdict
//!   cache, a licensed scanner activity, alerts and metrics.
//! - [`order_saga`]: an order placed in three steps, undone in reverse
//!   order when a step fails.
//! - [`fan_out`]: items processed in parallel, results aggregated.
//! - [`bench`]: three no-op activity steps returning `5n + 8`, the
//!   workflow `drover bench` runs by default and the workload of the
//!   side-by-side HTTP benchmark (`POST /v1/workflows/bench_flow/call`).

pub mod bench;
pub mod email_scan;
pub mod fan_out;
pub mod order_saga;

/// Does nothing; calling it from a binary makes sure this crate, and so the
/// registrations of its workflows and activities, is linked in.
pub fn link() {}
