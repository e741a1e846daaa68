//! What the macros register, found by a node binary (or a test) at
//! start-up: every `#[workflow]`, `#[activity]` and `#[pure]` fn linked into
//! the binary, collected with `inventory`.

use drover_ir::wire::DecodeError;
use drover_ir::{Module, RetryPolicy, Value};
use futures::future::BoxFuture;

use crate::error::Error;

/// A `#[workflow]`: its compiled IR and signature.
#[derive(Debug)]
pub struct WorkflowDef {
    /// The fn's name, which `call` instructions and clients use.
    pub name: &'static str,
    /// The BLAKE3 hash of `ir`, in hex: the program's identity.
    pub hash: &'static str,
    /// The module in Drover bytecode (`.dbc`).
    pub ir: &'static [u8],
    /// Parameters: (name, Rust type as written).
    pub params: &'static [(&'static str, &'static str)],
    /// The return type as written.
    pub ret: &'static str,
}

impl WorkflowDef {
    /// Decodes the embedded IR.
    pub fn module(&self) -> Result<Module, DecodeError> {
        drover_ir::wire::decode(self.ir)
    }
}

/// How a registered activity is called: arguments in, result out, as values.
pub type ActivityFn = fn(Vec<Value>) -> BoxFuture<'static, Result<Value, Error>>;

/// An `#[activity]`: native code a node runs as an effect.
pub struct ActivityDef {
    /// The fn's name, which `perform` instructions use.
    pub name: &'static str,
    /// Parameters: (name, Rust type as written).
    pub params: &'static [(&'static str, &'static str)],
    /// Resource units each call holds while it runs: (resource, units).
    pub resources: &'static [(&'static str, u32)],
    /// The default retry policy, for calls that chain none.
    pub retry: Option<RetryPolicy>,
    /// The default per-attempt timeout in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Calls the fn.
    pub call: ActivityFn,
}

impl std::fmt::Debug for ActivityDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivityDef")
            .field("name", &self.name)
            .field("params", &self.params)
            .field("resources", &self.resources)
            .field("retry", &self.retry)
            .field("timeout_ms", &self.timeout_ms)
            .finish_non_exhaustive()
    }
}

/// How a registered pure fn is called; errors are messages for the run's
/// failure.
pub type PureCall = fn(&[Value]) -> Result<Value, String>;

/// A `#[pure]` fn: deterministic code run inline by the interpreter.
pub struct PureDef {
    /// The fn's name, which `pure` instructions use.
    pub name: &'static str,
    /// Calls the fn.
    pub call: PureCall,
}

impl std::fmt::Debug for PureDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PureDef")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

inventory::collect!(WorkflowDef);
inventory::collect!(ActivityDef);
inventory::collect!(PureDef);

/// Every registered workflow.
pub fn workflows() -> impl Iterator<Item = &'static WorkflowDef> {
    inventory::iter::<WorkflowDef>.into_iter()
}

/// Every registered activity.
pub fn activities() -> impl Iterator<Item = &'static ActivityDef> {
    inventory::iter::<ActivityDef>.into_iter()
}

/// Every registered pure fn.
pub fn pures() -> impl Iterator<Item = &'static PureDef> {
    inventory::iter::<PureDef>.into_iter()
}

/// The workflow called `name`.
pub fn workflow(name: &str) -> Option<&'static WorkflowDef> {
    workflows().find(|w| w.name == name)
}

/// The activity called `name`.
pub fn activity(name: &str) -> Option<&'static ActivityDef> {
    activities().find(|a| a.name == name)
}

/// The pure fn called `name`.
pub fn pure(name: &str) -> Option<&'static PureDef> {
    pures().find(|p| p.name == name)
}

/// Names registered more than once within a kind (fns of the same name in
/// different modules), which a node must refuse: calls are by name.
pub fn duplicates() -> Vec<String> {
    let mut dups = Vec::new();
    let mut check = |kind: &str, names: Vec<&str>| {
        let mut sorted = names;
        sorted.sort_unstable();
        for pair in sorted.windows(2) {
            if pair[0] == pair[1] && !dups.contains(&format!("{kind} {}", pair[0])) {
                dups.push(format!("{kind} {}", pair[0]));
            }
        }
    };
    check("workflow", workflows().map(|w| w.name).collect());
    check("activity", activities().map(|a| a.name).collect());
    check("pure", pures().map(|p| p.name).collect());
    dups
}

/// Every registered pure fn, ready for `drover_interpreter::Program::with_pure`.
pub fn pure_fns() -> drover_interpreter::PureFns {
    let mut fns = drover_interpreter::PureFns::new();
    for p in pures() {
        let call = p.call;
        fns.register(p.name, move |args: &[Value]| call(args));
    }
    fns
}
