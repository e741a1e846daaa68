//! Erlang/OTP-style supervision for Drover nodes, on tokio.
//!
//! - [`Server`]: a gen_server-like worker (`init`, `handle_call`,
//!   `handle_cast`, `terminate`), run one incarnation per task, reached
//!   through a bounded mailbox by its registered name ([`ServerRef`],
//!   [`Registry`]), or with encoded bytes through a [`Codec`].
//! - [`Supervisor`]: starts [`ChildSpec`]s in order, restarts them by
//!   [`Strategy`] and [`Restart`] type within a restart intensity, stops
//!   them in reverse order, and escalates to its parent when the intensity
//!   is exceeded. Supervisors nest.
//!
//! A worker's error or panic is an exit reason for its supervisor to act
//! on; it never takes the supervisor down.

mod child;
mod codec;
mod error;
mod exit;
mod intensity;
mod registry;
mod server;
mod supervisor;
mod tree;

pub use child::{
    ChildKind, ChildSpec, ChildStart, Restart, Shutdown, StartError, DEFAULT_WORKER_SHUTDOWN,
};
pub use codec::{Codec, CodecError, JsonCodec, MsgPackCodec};
pub use error::{CallError, CastError, EncodedError};
pub use exit::ExitReason;
pub use registry::{Registry, ServerRef, DEFAULT_MAX_MESSAGE_BYTES};
pub use server::{Server, WorkerSpec, DEFAULT_INIT_TIMEOUT, DEFAULT_MAILBOX_CAPACITY};
pub use supervisor::{
    Reporter, Strategy, Supervisor, SupervisorError, SupervisorRef, SupervisorReport,
    SupervisorSpec, MAX_CHILDREN,
};
pub use tree::{ChildCounts, ChildInfo, ChildStatus, SupervisorTree, TreeNode};
