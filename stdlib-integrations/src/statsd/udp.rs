//! Sends metric lines to a statsd server over UDP, several lines per
//! datagram: a datagram goes out when the next line would not fit in
//! `max_packet` bytes, and a flusher task sends any part-filled one every
//! `flush` interval, so a line waits at most that long.
//!
//! Sending never waits: a datagram the socket cannot take at once is dropped
//! and counted (statsd over UDP is lossy by design, and a metric must not
//! hold up a workflow), and `health` reports drops and send errors.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use std::net::UdpSocket;

use super::line::Metric;
use super::{MetricSink, StatsdError};
use crate::config::StatsdConfig;
use crate::Health;

struct Inner {
    socket: UdpSocket,
    addr: SocketAddr,
    max_packet: usize,
    batch: Mutex<String>,
    sent: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Inner {
    fn send(&self, datagram: &str) {
        match self.socket.send(datagram.as_bytes()) {
            Ok(_) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
            }
        }
    }

    fn take_batch(&self) -> String {
        std::mem::take(&mut *self.batch.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn flush(&self) {
        let batch = self.take_batch();
        if !batch.is_empty() {
            self.send(&batch);
        }
    }
}

/// A batching UDP sender; flushes what is left when dropped.
pub struct UdpSink {
    inner: Arc<Inner>,
}

impl UdpSink {
    /// Resolves the server, binds a local socket and starts the flusher
    /// task (so it must run inside a tokio runtime).
    pub async fn connect(config: &StatsdConfig) -> Result<UdpSink, StatsdError> {
        let err = |reason: String| StatsdError::Address {
            addr: config.addr.clone(),
            reason,
        };
        let addr = tokio::net::lookup_host(&config.addr)
            .await
            .map_err(|e| err(format!("cannot resolve: {e}")))?
            .next()
            .ok_or_else(|| err("resolves to no address".into()))?;
        let local: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        // A std socket in non-blocking mode: a send never waits and never
        // depends on the reactor having seen the socket become writable
        // (tokio's `try_send` refuses until it has), so `record` stays sync.
        let socket = UdpSocket::bind(local)
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| err(format!("cannot bind a local socket: {e}")))?;
        socket
            .connect(addr)
            .map_err(|e| err(format!("cannot connect: {e}")))?;
        let inner = Arc::new(Inner {
            socket,
            addr,
            max_packet: config.max_packet,
            batch: Mutex::new(String::with_capacity(config.max_packet)),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        tokio::spawn(flusher(Arc::downgrade(&inner), config.flush));
        Ok(UdpSink { inner })
    }

    /// Sends whatever is batched now.
    pub fn flush(&self) {
        self.inner.flush();
    }

    /// Datagrams sent and dropped so far.
    pub fn datagrams(&self) -> (u64, u64) {
        (
            self.inner.sent.load(Ordering::Relaxed),
            self.inner.dropped.load(Ordering::Relaxed),
        )
    }
}

impl Drop for UdpSink {
    fn drop(&mut self) {
        self.inner.flush();
    }
}

/// Flushes every `every` until the sink is gone.
async fn flusher(inner: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match inner.upgrade() {
            Some(inner) => inner.flush(),
            None => return,
        }
    }
}

impl MetricSink for UdpSink {
    fn record(&self, metric: &Metric) -> Result<(), StatsdError> {
        let lines = metric.lines();
        let max = self.inner.max_packet;
        if lines.len() > max {
            return Err(StatsdError::TooLong {
                size: lines.len(),
                max,
            });
        }
        let full = {
            let mut batch = self.inner.batch.lock().unwrap_or_else(|p| p.into_inner());
            let full = if !batch.is_empty() && batch.len() + 1 + lines.len() > max {
                Some(std::mem::replace(&mut *batch, String::with_capacity(max)))
            } else {
                None
            };
            if !batch.is_empty() {
                batch.push('\n');
            }
            batch.push_str(&lines);
            full
        };
        // Sent outside the lock so other callers keep batching meanwhile.
        if let Some(datagram) = full {
            self.inner.send(&datagram);
        }
        Ok(())
    }

    fn health(&self) -> Health {
        let (sent, dropped) = self.datagrams();
        let addr = self.inner.addr;
        if dropped == 0 {
            return Health::up(format!("statsd at {addr}: {sent} datagrams sent"));
        }
        let last = self
            .inner
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        Health::degraded(format!(
            "statsd at {addr}: {sent} datagrams sent, {dropped} dropped (last: {last})"
        ))
    }
}
