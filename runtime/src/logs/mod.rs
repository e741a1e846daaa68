//! Structured log events and the filter language that selects them.
//!
//! [`LogEvent`] is what every step, effect and `log` call emits, one JSON
//! line each. [`Filter`] is the small language on-call engineers type into
//! `drover logs --filter` and the control panel, e.g.
//! `workflow == "scan_email" and input.customer_id == 42 and level >= warn`.

mod event;
pub mod filter;

pub use event::{EventKind, LogEvent, Timestamp, TYPED_KEYS};
pub use filter::{Filter, FilterError};
