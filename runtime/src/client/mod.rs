//! Starting runs from Rust: the trait the node's client implements, used by
//! each workflow's typed `start`.

use std::fmt;
use std::future::Future;

use drover_ir::Value;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The id of a run.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub String);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Something that can start workflow runs: the node client, or a test double.
pub trait StartWorkflow {
    /// Starts `workflow`, pinned to the program with content hash `hash`
    /// (hex), with its arguments as values.
    fn start_raw(
        &self,
        workflow: &str,
        hash: &str,
        args: Vec<Value>,
    ) -> impl Future<Output = Result<RunId, Error>> + Send;
}

mod http;

pub use http::{Client, ClientError, Followed, ListQuery, LogStream};
