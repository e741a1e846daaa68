//! Native execution: a workflow awaited as plain Rust, with every effect,
//! signal and log answered by a [`Responder`] installed for the thread.
//!
//! This is how workflows are unit-tested without a node, and the native half
//! of differential tests (the IR half is [`crate::testing::run_ir`]).

use std::cell::RefCell;
use std::future::Future;

use drover_ir::Value;

use crate::error::Error;
use crate::log::Level;

/// Answers the effects of natively running workflows.
pub trait Responder {
    /// The result of effect `effect` (a catalog name like `memcache.get`, an
    /// activity's name when the IR runs in [`crate::testing::run_ir`], or
    /// `signal.NAME`) called with `args` in catalog order.
    fn respond(&mut self, effect: &str, args: Vec<Value>) -> Result<Value, Error>;

    /// A structured log line; ignored unless overridden.
    fn log(&mut self, level: Level, message: &str, fields: &Value) {
        let _ = (level, message, fields);
    }
}

impl<F> Responder for F
where
    F: FnMut(&str, Vec<Value>) -> Result<Value, Error>,
{
    fn respond(&mut self, effect: &str, args: Vec<Value>) -> Result<Value, Error> {
        self(effect, args)
    }
}

thread_local! {
    static RESPONDER: RefCell<Option<Box<dyn Responder>>> = const { RefCell::new(None) };
}

/// Runs `fut` to completion on this thread with `responder` answering its
/// effects, and gives its output.
///
/// # Panics
/// When called from inside another executor's task on this thread
/// (`futures::executor::block_on` refuses to nest).
pub fn run<F: Future>(responder: impl Responder + 'static, fut: F) -> F::Output {
    let _installed = Installed::new(Box::new(responder));
    futures::executor::block_on(fut)
}

/// Keeps a responder installed for the thread until dropped, then puts back
/// whichever one was there before, even when unwinding.
pub(crate) struct Installed {
    previous: Option<Box<dyn Responder>>,
}

impl Installed {
    pub(crate) fn new(responder: Box<dyn Responder>) -> Installed {
        let previous = RESPONDER.with(|r| r.borrow_mut().replace(responder));
        Installed { previous }
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let previous = self.previous.take();
        RESPONDER.with(|r| *r.borrow_mut() = previous);
    }
}

/// Borrows the installed responder for `f`. It is taken out of its slot
/// meanwhile, so a responder that awaits effects itself gets
/// `no_responder` rather than a double borrow.
fn with_responder<T>(missing: impl FnOnce() -> T, f: impl FnOnce(&mut dyn Responder) -> T) -> T {
    let Some(mut responder) = RESPONDER.with(|r| r.borrow_mut().take()) else {
        return missing();
    };
    let out = f(&mut *responder);
    RESPONDER.with(|r| *r.borrow_mut() = Some(responder));
    out
}

/// Asks the installed responder for the result of `effect`.
pub(crate) fn respond(effect: &str, args: Vec<Value>) -> Result<Value, Error> {
    with_responder(
        || {
            Err(Error::new(
                Error::NO_RESPONDER,
                format!("`{effect}` was awaited outside `drover::native::run`, so nothing can answer it"),
            ))
        },
        |r| r.respond(effect, args),
    )
}

/// Hands a log line to the installed responder, if any.
pub(crate) fn log(level: Level, message: &str, fields: &Value) {
    with_responder(|| (), |r| r.log(level, message, fields));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reentrant_responder_finds_none_and_the_slot_is_restored() {
        let answers = run(
            |effect: &str, _: Vec<Value>| match effect {
                // Asking again from inside the responder must not double-borrow.
                "outer" => respond("inner", vec![]).map(|_| Value::Null),
                _ => Ok(Value::Int(1)),
            },
            async { (respond("outer", vec![]), respond("other", vec![])) },
        );
        assert_eq!(answers.0.unwrap_err().kind, Error::NO_RESPONDER);
        assert_eq!(answers.1.unwrap(), Value::Int(1));
        let none = respond("memcache.get", vec![]).unwrap_err();
        assert_eq!(none.kind, Error::NO_RESPONDER);
    }
}
