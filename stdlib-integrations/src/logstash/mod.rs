//! The Logstash integration: `logstash.send(event)` ships one JSON event,
//! and [`Shipper::ship`] ships the node's own structured log lines, both as
//! JSON lines to a Logstash `tcp` or `udp` input (`json_lines` codec).
//!
//! Both only enqueue: a background task drains a bounded buffer to the
//! socket, so an effect never waits on Logstash. While Logstash is
//! unreachable the buffer keeps the newest `buffer` lines; older ones are
//! dropped and counted ([`ShipperStats::dropped`], shown in health).
//!
//! Over TCP the task reconnects with backoff (100 ms doubling to 5 s).
//! Lines being written when the socket broke go back to the front of the
//! buffer and are sent again on the next connection, so a line can arrive
//! twice (and the broken connection may end in a partial line, which
//! Logstash reports as a parse failure). Before each write the task checks
//! that the peer has not closed; lines the kernel accepted before the peer
//! vanished without closing cannot be known about and are lost: TCP gives
//! no receipt. Over UDP each event is one datagram, sent once; a send the
//! kernel refuses (the port answered unreachable) is kept and retried.

pub mod config;

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use drover_ir::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Notify;

pub use config::{LogstashConfig, Protocol};

use crate::{summary, EffectCall, EffectFailure, Health, Integration, ResourceDecl};

/// The operations, in catalog order.
pub const OPERATIONS: &[&str] = &["send"];

/// The longest line shipped over TCP, in bytes.
pub const MAX_TCP_LINE: usize = 1 << 20;
/// The longest line shipped over UDP: the largest IPv4 UDP payload less the newline.
pub const MAX_UDP_LINE: usize = 65_506;

/// Lines written per batch over TCP.
const BATCH: usize = 512;
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a shipper has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShipperStats {
    /// Lines handed to the socket.
    pub sent: u64,
    /// Lines dropped: the oldest, when the buffer overflowed, and lines too long to ship.
    pub dropped: u64,
    /// Lines waiting in the buffer now.
    pub buffered: usize,
    /// Connections made (TCP) or sockets opened (UDP).
    pub connections: u64,
    /// Whether the socket is up now.
    pub connected: bool,
    /// The last connection or send error.
    pub last_error: Option<String>,
}

struct Inner {
    /// `None` for the embedded sink, which keeps lines in memory only.
    target: Option<LogstashConfig>,
    capacity: usize,
    buffer: Mutex<VecDeque<String>>,
    in_flight: AtomicUsize,
    wake: Notify,
    sent: AtomicU64,
    dropped: AtomicU64,
    connections: AtomicU64,
    connected: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        // Each change to the buffer is a push or a pop: a poisoned lock
        // leaves it consistent.
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn max_line(&self) -> usize {
        match self.target.as_ref().map(|t| t.protocol) {
            Some(Protocol::Udp) => MAX_UDP_LINE,
            _ => MAX_TCP_LINE,
        }
    }

    fn set_error(&self, e: impl ToString) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
    }

    /// Puts lines that were in flight back at the front, oldest first,
    /// dropping (and counting) the oldest if the buffer overflows.
    fn requeue(&self, lines: Vec<String>) {
        let mut b = self.lock();
        for line in lines.into_iter().rev() {
            b.push_front(line);
        }
        let over = b.len().saturating_sub(self.capacity);
        b.drain(..over);
        self.dropped.fetch_add(over as u64, Ordering::Relaxed);
        self.in_flight.store(0, Ordering::Relaxed);
    }

    fn take(&self, n: usize) -> Vec<String> {
        let mut b = self.lock();
        let n = n.min(b.len());
        self.in_flight.store(n, Ordering::Relaxed);
        b.drain(..n).collect()
    }
}

/// A handle on a bounded line buffer and the task that ships it. Cheap to
/// clone; the task stops once every handle is dropped.
#[derive(Clone)]
pub struct Shipper {
    inner: Arc<Inner>,
}

impl Shipper {
    /// A shipper to `config.addr`; starts its task (needs a tokio runtime).
    /// Does not wait for a connection: lines buffer until there is one.
    pub fn start(config: &LogstashConfig) -> Shipper {
        let shipper = Shipper::with(Some(config.clone()), config.buffer);
        let weak = Arc::downgrade(&shipper.inner);
        match config.protocol {
            Protocol::Tcp => tokio::spawn(ship_tcp(weak, config.addr.clone())),
            Protocol::Udp => tokio::spawn(ship_udp(weak, config.addr.clone())),
        };
        shipper
    }

    /// An in-memory sink holding the newest `capacity` lines.
    pub fn embedded(capacity: usize) -> Shipper {
        Shipper::with(None, capacity)
    }

    fn with(target: Option<LogstashConfig>, capacity: usize) -> Shipper {
        Shipper {
            inner: Arc::new(Inner {
                target,
                capacity: capacity.max(1),
                buffer: Mutex::new(VecDeque::new()),
                in_flight: AtomicUsize::new(0),
                wake: Notify::new(),
                sent: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                connections: AtomicU64::new(0),
                connected: AtomicBool::new(false),
                last_error: Mutex::new(None),
            }),
        }
    }

    /// Enqueues one line (a JSON object, for Logstash's `json_lines`). Line
    /// breaks become spaces, which keeps valid JSON valid. A line over the
    /// protocol's limit is dropped and counted; returns whether it was kept.
    pub fn ship(&self, line: &str) -> bool {
        let inner = &self.inner;
        if line.len() > inner.max_line() {
            inner.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let line = if line.contains(['\n', '\r']) {
            line.replace(['\n', '\r'], " ")
        } else {
            line.to_owned()
        };
        {
            let mut b = inner.lock();
            b.push_back(line);
            if b.len() > inner.capacity {
                b.pop_front();
                inner.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        inner.wake.notify_one();
        true
    }

    /// Lines dropped so far (the metric).
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Counters and state, for health and metrics.
    pub fn stats(&self) -> ShipperStats {
        let i = &self.inner;
        ShipperStats {
            sent: i.sent.load(Ordering::Relaxed),
            dropped: i.dropped.load(Ordering::Relaxed),
            buffered: i.lock().len() + i.in_flight.load(Ordering::Relaxed),
            connections: i.connections.load(Ordering::Relaxed),
            connected: i.connected.load(Ordering::Relaxed),
            last_error: i
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    /// The lines buffered now, oldest first (for the embedded sink, what it holds).
    pub fn lines(&self) -> Vec<String> {
        self.inner.lock().iter().cloned().collect()
    }

    /// Whether this is the in-memory sink.
    pub fn is_embedded(&self) -> bool {
        self.inner.target.is_none()
    }

    /// Waits until every buffered line was handed to the socket, or `within` passes;
    /// returns whether the buffer drained.
    pub async fn flush(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.stats().buffered == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn health(&self) -> Health {
        let s = self.stats();
        let Some(target) = &self.inner.target else {
            return Health::up(format!(
                "embedded sink: {} lines held, {} dropped",
                s.buffered, s.dropped
            ));
        };
        let counts = format!(
            "{} sent, {} buffered, {} dropped",
            s.sent, s.buffered, s.dropped
        );
        let to = format!("{} {}", target.protocol.name(), target.addr);
        if !s.connected {
            let why = s.last_error.unwrap_or_else(|| "not connected yet".into());
            Health::degraded(format!("logstash at {to} unreachable ({why}); {counts}"))
        } else if s.dropped > 0 {
            Health::degraded(format!("logstash at {to}: {counts}"))
        } else {
            Health::up(format!("logstash at {to}: {counts}"))
        }
    }
}

/// Waits for lines; `None` once every [`Shipper`] is gone.
async fn wait_for_lines(weak: &Weak<Inner>) -> Option<Arc<Inner>> {
    loop {
        let inner = weak.upgrade()?;
        if !inner.lock().is_empty() {
            return Some(inner);
        }
        // `ship` calls `notify_one`, which leaves a permit if nobody waits
        // yet, so a line shipped since the look above is not missed. Wake
        // up now and then to notice that the shippers are gone.
        let _ = tokio::time::timeout(Duration::from_millis(200), inner.wake.notified()).await;
    }
}

async fn backoff(pause: &mut Duration) {
    tokio::time::sleep(*pause).await;
    *pause = (*pause * 2).min(BACKOFF_MAX);
}

async fn ship_tcp(weak: Weak<Inner>, addr: String) {
    let mut pause = BACKOFF_FIRST;
    'connect: loop {
        let Some(inner) = weak.upgrade() else { return };
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr)).await;
        let mut stream = match conn {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                inner.set_error(format!("connect: {e}"));
                drop(inner);
                backoff(&mut pause).await;
                continue;
            }
            Err(_) => {
                inner.set_error("connect: timed out");
                drop(inner);
                backoff(&mut pause).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        inner.connections.fetch_add(1, Ordering::Relaxed);
        inner.connected.store(true, Ordering::Relaxed);
        pause = BACKOFF_FIRST;
        drop(inner);
        loop {
            let Some(inner) = wait_for_lines(&weak).await else {
                return;
            };
            // Logstash never writes to us: readable means closed (or reset).
            let mut probe = [0u8; 256];
            let closed = match stream.try_read(&mut probe) {
                Ok(0) => Some("closed by logstash".to_owned()),
                Ok(_) => None,
                Err(e) if e.kind() == ErrorKind::WouldBlock => None,
                Err(e) => Some(e.to_string()),
            };
            if let Some(why) = closed {
                inner.connected.store(false, Ordering::Relaxed);
                inner.set_error(why);
                drop(inner);
                backoff(&mut pause).await;
                continue 'connect;
            }
            let batch = inner.take(BATCH);
            let mut bytes = Vec::with_capacity(batch.iter().map(|l| l.len() + 1).sum());
            for line in &batch {
                bytes.extend_from_slice(line.as_bytes());
                bytes.push(b'\n');
            }
            match stream.write_all(&bytes).await {
                Ok(()) => {
                    inner.sent.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    inner.in_flight.store(0, Ordering::Relaxed);
                }
                Err(e) => {
                    inner.requeue(batch);
                    inner.connected.store(false, Ordering::Relaxed);
                    inner.set_error(format!("write: {e}"));
                    drop(inner);
                    backoff(&mut pause).await;
                    continue 'connect;
                }
            }
        }
    }
}

async fn ship_udp(weak: Weak<Inner>, addr: String) {
    let mut pause = BACKOFF_FIRST;
    'open: loop {
        let Some(inner) = weak.upgrade() else { return };
        let bind = if addr.starts_with('[') {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        };
        let socket = match UdpSocket::bind(bind).await {
            Ok(s) => s,
            Err(e) => {
                inner.set_error(format!("bind: {e}"));
                drop(inner);
                backoff(&mut pause).await;
                continue;
            }
        };
        if let Err(e) = socket.connect(&addr).await {
            inner.set_error(format!("resolve {addr}: {e}"));
            drop(inner);
            backoff(&mut pause).await;
            continue;
        }
        inner.connections.fetch_add(1, Ordering::Relaxed);
        inner.connected.store(true, Ordering::Relaxed);
        drop(inner);
        loop {
            let Some(inner) = wait_for_lines(&weak).await else {
                return;
            };
            let mut batch = inner.take(1);
            let Some(line) = batch.pop() else { continue };
            let mut datagram = line.into_bytes();
            datagram.push(b'\n');
            match socket.send(&datagram).await {
                Ok(_) => {
                    inner.sent.fetch_add(1, Ordering::Relaxed);
                    inner.in_flight.store(0, Ordering::Relaxed);
                    pause = BACKOFF_FIRST;
                }
                Err(e) => {
                    datagram.pop();
                    let line = String::from_utf8(datagram).unwrap_or_default();
                    inner.requeue(vec![line]);
                    inner.connected.store(false, Ordering::Relaxed);
                    inner.set_error(format!("send: {e}"));
                    drop(inner);
                    backoff(&mut pause).await;
                    continue 'open;
                }
            }
        }
    }
}

/// The Logstash integration over a shipper.
pub struct LogstashIntegration {
    shipper: Shipper,
}

impl LogstashIntegration {
    /// The integration over `shipper`.
    pub fn new(shipper: Shipper) -> Self {
        LogstashIntegration { shipper }
    }

    /// The shipper, for the node's own log lines.
    pub fn shipper(&self) -> &Shipper {
        &self.shipper
    }
}

/// The JSON line for an event: a record as a JSON object, anything else as
/// `{"message": value}` (Logstash events are objects).
pub fn event_line(event: &Value) -> String {
    let json = event.to_json();
    let object = if json.is_object() {
        json
    } else {
        serde_json::json!({ "message": json })
    };
    object.to_string()
}

impl Integration for LogstashIntegration {
    fn name(&self) -> &'static str {
        "logstash"
    }

    fn operations(&self) -> &'static [&'static str] {
        OPERATIONS
    }

    async fn perform(&self, call: EffectCall<'_>) -> Result<Value, EffectFailure> {
        if call.op != "send" {
            return Err(EffectFailure::permanent(
                "unknown_effect",
                format!("logstash has no operation {:?}", call.op),
            ));
        }
        let line = event_line(&call.args[0]);
        let max = self.shipper.inner.max_line();
        if line.len() > max {
            return Err(EffectFailure::permanent(
                "too_large",
                format!(
                    "event: {} bytes as JSON, over the limit of {max}",
                    line.len()
                ),
            ));
        }
        self.shipper.ship(&line);
        Ok(Value::Null)
    }

    async fn health(&self) -> Health {
        self.shipper.health()
    }

    fn resources(&self) -> Vec<ResourceDecl> {
        Vec::new()
    }

    fn summarize(&self, call: &EffectCall<'_>, result: &Result<Value, EffectFailure>) -> String {
        summary::call("logstash", call, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_sink_keeps_the_newest_lines_and_counts_the_rest() {
        let s = Shipper::embedded(3);
        for i in 0..5 {
            assert!(s.ship(&format!("{{\"n\":{i}}}")));
        }
        assert_eq!(s.lines(), ["{\"n\":2}", "{\"n\":3}", "{\"n\":4}"]);
        assert_eq!(s.dropped(), 2);
        assert!(s.ship("{\"a\":\n1}"));
        assert_eq!(s.lines().last().unwrap(), "{\"a\": 1}");
        assert!(!s.ship(&"x".repeat(MAX_TCP_LINE + 1)));
        assert_eq!(s.dropped(), 4);
    }

    #[test]
    fn events_become_json_objects() {
        assert_eq!(
            event_line(&Value::record([("level", Value::Str("info".into()))])),
            r#"{"level":"info"}"#
        );
        assert_eq!(event_line(&Value::Int(3)), r#"{"message":3}"#);
    }
}
