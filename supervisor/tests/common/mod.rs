//! Test servers and helpers shared by the integration tests.
//!
//! Every test runs on tokio's paused clock: time moves only when all tasks
//! are idle, so timeouts and periods are exact and nothing races the wall clock.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drover_supervisor::{ChildSpec, ExitReason, Registry, Server, WorkerSpec};
use serde::{Deserialize, Serialize};

/// A shared, ordered record of `init` and `terminate` calls.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&self, entry: String) {
        self.0.lock().unwrap().push(entry);
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Returns the entries and empties the log.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    pub fn count(&self, entry: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| *e == entry)
            .count()
    }
}

/// How `Probe::init` behaves on its next runs.
#[derive(Clone, Default)]
pub struct InitMode(Arc<AtomicU8>);

impl InitMode {
    pub fn succeed(&self) {
        self.0.store(0, Ordering::SeqCst);
    }
    pub fn fail(&self) {
        self.0.store(1, Ordering::SeqCst);
    }
    pub fn panic(&self) {
        self.0.store(2, Ordering::SeqCst);
    }
    pub fn hang(&self) {
        self.0.store(3, Ordering::SeqCst);
    }
}

/// Arguments of the probe server; cloned into every incarnation.
#[derive(Clone)]
pub struct ProbeArgs {
    pub name: String,
    pub log: Log,
    pub start: i64,
    pub init: InitMode,
    /// `terminate` never returns, like a process that ignores shutdown.
    pub hang_on_terminate: bool,
}

impl ProbeArgs {
    pub fn new(name: &str, log: &Log) -> Self {
        ProbeArgs {
            name: name.to_string(),
            log: log.clone(),
            start: 0,
            init: InitMode::default(),
            hang_on_terminate: false,
        }
    }
}

/// How a probe should stop when asked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Normal,
    Shutdown,
    Error,
    Panic,
}

impl How {
    fn stop<T>(self) -> Result<T, ExitReason> {
        match self {
            How::Normal => Err(ExitReason::Normal),
            How::Shutdown => Err(ExitReason::Shutdown),
            How::Error => Err(ExitReason::error("boom")),
            How::Panic => panic!("boom"),
        }
    }

    /// The reason a supervisor sees for this kind of stop.
    pub fn reason(self) -> ExitReason {
        match self {
            How::Normal => ExitReason::Normal,
            How::Shutdown => ExitReason::Shutdown,
            How::Error => ExitReason::error("boom"),
            How::Panic => ExitReason::Panic("boom".into()),
        }
    }
}

#[derive(Debug)]
pub enum ProbeCall {
    Get,
    Incr,
    Sleep(Duration),
    Exit(How),
}

#[derive(Debug)]
pub enum ProbeCast {
    Incr,
    Sleep(Duration),
    Exit(How),
}

/// A counter that logs its lifecycle and can be told to crash.
pub struct Probe {
    args: ProbeArgs,
    count: i64,
}

impl Server for Probe {
    type Args = ProbeArgs;
    type Call = ProbeCall;
    type Reply = i64;
    type Cast = ProbeCast;

    async fn init(args: ProbeArgs) -> Result<Self, ExitReason> {
        args.log.push(format!("init {}", args.name));
        match args.init.0.load(Ordering::SeqCst) {
            1 => return Err(ExitReason::error("init refused")),
            2 => panic!("init exploded"),
            3 => std::future::pending::<()>().await,
            _ => {}
        }
        Ok(Probe {
            count: args.start,
            args,
        })
    }

    async fn handle_call(&mut self, msg: ProbeCall) -> Result<i64, ExitReason> {
        match msg {
            ProbeCall::Get => {}
            ProbeCall::Incr => self.count += 1,
            ProbeCall::Sleep(d) => tokio::time::sleep(d).await,
            ProbeCall::Exit(how) => return how.stop(),
        }
        Ok(self.count)
    }

    async fn handle_cast(&mut self, msg: ProbeCast) -> Result<(), ExitReason> {
        match msg {
            ProbeCast::Incr => self.count += 1,
            ProbeCast::Sleep(d) => tokio::time::sleep(d).await,
            ProbeCast::Exit(how) => return how.stop(),
        }
        Ok(())
    }

    async fn terminate(&mut self, reason: &ExitReason) {
        self.args
            .log
            .push(format!("terminate {}: {reason}", self.args.name));
        if self.args.hang_on_terminate {
            std::future::pending::<()>().await;
        }
    }
}

/// A permanent probe worker registered under its child id.
pub fn probe(id: &str, log: &Log) -> ChildSpec {
    probe_with(ProbeArgs::new(id, log))
}

/// A permanent probe worker with custom arguments, registered under `args.name`.
pub fn probe_with(args: ProbeArgs) -> ChildSpec {
    let name = args.name.clone();
    ChildSpec::worker(name.clone(), WorkerSpec::<Probe>::new(name, args))
}

/// Tells the probe `name` to stop the given way.
pub fn crash(registry: &Registry, name: &str, how: How) {
    registry
        .server::<Probe>(name)
        .cast(ProbeCast::Exit(how))
        .expect("the probe is running");
}

/// Waits (in paused time) until `cond` holds; fails the test if it never does.
pub async fn until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..10_000 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("never happened: {what}");
}

/// Waits until the log holds at least `n` entries, then lets every task
/// settle and returns them all, so unexpected extra entries show up too.
pub async fn log_after(log: &Log, n: usize) -> Vec<String> {
    until(&format!("{n} log entries"), || async { log.len() >= n }).await;
    settle().await;
    log.take()
}

/// Lets every task run until it waits on something, well past any restart.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

pub const SECOND: Duration = Duration::from_secs(1);

/// A key-value server with serde messages, for the codec tests.
pub struct Kv {
    map: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KvCall {
    Put { key: String, value: String },
    Get { key: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KvCast {
    Put { key: String, value: String },
}

impl Server for Kv {
    type Args = ();
    type Call = KvCall;
    type Reply = Option<String>;
    type Cast = KvCast;

    async fn init(_: ()) -> Result<Self, ExitReason> {
        Ok(Kv {
            map: BTreeMap::new(),
        })
    }

    async fn handle_call(&mut self, msg: KvCall) -> Result<Option<String>, ExitReason> {
        Ok(match msg {
            KvCall::Put { key, value } => self.map.insert(key, value),
            KvCall::Get { key } => self.map.get(&key).cloned(),
        })
    }

    async fn handle_cast(&mut self, msg: KvCast) -> Result<(), ExitReason> {
        let KvCast::Put { key, value } = msg;
        self.map.insert(key, value);
        Ok(())
    }
}
