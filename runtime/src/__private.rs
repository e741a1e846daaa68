//! What macro expansions name, so user crates need only `drover`. Not a
//! public API: it changes with the macros.

use std::future::IntoFuture;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use drover_ir;
pub use drover_ir::{RetryPolicy, Value};
pub use futures;
pub use futures::future::BoxFuture;
pub use inventory;
pub use serde;

pub use crate::registry::{ActivityDef, PureDef, WorkflowDef};
use crate::Error;

/// `IntoFuture::into_future`, for `join!`'s arguments.
pub fn into_future<F: IntoFuture>(f: F) -> F::IntoFuture {
    f.into_future()
}

/// Refuses a call with the wrong number of arguments.
pub fn check_arity(callee: &str, got: usize, expected: usize) -> Result<(), Error> {
    if got == expected {
        Ok(())
    } else {
        Err(Error::new(
            Error::ARITY,
            format!("`{callee}` takes {expected} argument(s) but was given {got}"),
        ))
    }
}

/// Decodes argument `param` of `callee`.
pub fn decode_arg<T: DeserializeOwned>(
    callee: &str,
    param: &str,
    value: Option<Value>,
) -> Result<T, Error> {
    let value = value.ok_or_else(|| {
        Error::new(
            Error::ARITY,
            format!("`{callee}` is missing argument `{param}`"),
        )
    })?;
    drover_ir::from_value(value)
        .map_err(|e| Error::decode(format!("argument `{param}` of `{callee}`: {e}")))
}

/// Encodes a value for the wire.
pub fn encode_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, Error> {
    drover_ir::to_value(value).map_err(Error::encode)
}

/// What an activity may return: `Result<T, drover::Error>`.
#[diagnostic::on_unimplemented(
    message = "an #[activity] must return `Result<T, drover::Error>` with `T: Serialize`, not `{Self}`",
    label = "this activity's result"
)]
pub trait ActivityOutput {
    /// The result as the effect's value.
    fn into_value(self) -> Result<Value, Error>;
}

impl<T: Serialize> ActivityOutput for Result<T, Error> {
    fn into_value(self) -> Result<Value, Error> {
        encode_value(&self?)
    }
}

/// Kind markers: each `#[activity]`, `#[pure]` and `#[workflow]` fn has a
/// module of the same name whose `__DroverKind` is one of these, and a
/// workflow checks each callee's kind at the call.
pub mod kind {
    /// The kind of an `#[activity]` fn.
    pub struct ActivityFn;
    /// The kind of a `#[pure]` fn.
    pub struct PureFn;
    /// The kind of a `#[workflow]` fn.
    pub struct WorkflowFn;

    /// Implemented by [`ActivityFn`] only.
    #[diagnostic::on_unimplemented(
        message = "this call is awaited as an activity, but the callee is a `{Self}`",
        label = "awaited as an activity here",
        note = "only `#[activity]` fns can be awaited by name; call a `#[pure]` fn without `.await`, and a child workflow as `child::run(..)`"
    )]
    pub trait Activity {}
    impl Activity for ActivityFn {}

    /// Implemented by [`PureFn`] only.
    #[diagnostic::on_unimplemented(
        message = "this call runs inline as a pure fn, but the callee is a `{Self}`",
        label = "called without `.await` here",
        note = "a workflow calls a fn without `.await` only if it is `#[pure]`; `.await` an `#[activity]`"
    )]
    pub trait Pure {}
    impl Pure for PureFn {}

    /// Implemented by [`WorkflowFn`] only.
    #[diagnostic::on_unimplemented(
        message = "this call starts a child workflow, but the callee is a `{Self}`",
        label = "called as a child workflow here",
        note = "`name::run(..)` calls the `#[workflow]` fn `name`"
    )]
    pub trait Workflow {}
    impl Workflow for WorkflowFn {}

    /// Compiles only if `K` is an activity's kind.
    pub const fn expect_activity<K: Activity>() {}
    /// Compiles only if `K` is a pure fn's kind.
    pub const fn expect_pure<K: Pure>() {}
    /// Compiles only if `K` is a workflow's kind.
    pub const fn expect_workflow<K: Workflow>() {}
}
