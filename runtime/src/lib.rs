//! Drover: durable workflows written as plain `async fn`s.
//!
//! Users depend on this crate alone. Mark workflows `#[workflow]`, native
//! side-effecting code `#[activity]`, and deterministic helpers `#[pure]`;
//! await effects from [`effects`]. The macros compile each workflow to Drover
//! IR and register it, its activities and pure fns in [`registry`], where a
//! node binary finds them at start-up.
//!
//! The same workflow also runs natively, as ordinary Rust, under
//! [`native::run`] with a scripted [`native::Responder`]; [`testing::run_ir`]
//! runs its IR in the interpreter against the same responder, so the two can
//! be compared.

pub mod api;
pub mod cli;
pub mod client;
mod effect;
pub mod effects;
mod error;
pub mod log;
pub mod logs;
pub mod native;
pub mod node;
pub mod registry;
pub mod testing;

#[doc(hidden)]
pub mod __private;

pub use drover_macros::{activity, pure, workflow};
/// Supervision trees and gen_server-like workers, for the user's own
/// servers under a node's tree ([`node::NodeServices::child`]).
pub use drover_supervisor as supervisor;
pub use effect::{
    all, now, race, random, signal, sleep, uuid, Effect, EffectFuture, PolicyExt, Race, Signal,
    Sleep, Sys,
};
pub use error::Error;
pub use std::time::Duration;

/// Awaits several futures (or effects) at once and gives a tuple of their
/// outputs; in IR, one fiber per branch. Use it inside an `async` body, without
/// `.await`.
#[macro_export]
macro_rules! join {
    ($($fut:expr),+ $(,)?) => {
        $crate::__private::futures::join!($($crate::__private::into_future($fut)),+)
    };
}

/// Everything a workflow module usually needs, for `use drover::prelude::*`.
pub mod prelude {
    pub use crate::{
        activity, all, join, log, now, pure, race, random, signal, sleep, uuid, workflow, Duration,
        Effect, Error, PolicyExt,
    };
}
