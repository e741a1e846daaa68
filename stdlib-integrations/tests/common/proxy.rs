//! A TCP proxy to a server (the RabbitMQ broker) that can hold the
//! server's replies and cut every connection, as a network failure would.
//! Shared by the integration's tests and the node-level fault tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy to the broker that can hold the broker's replies and cut
/// every connection, as a network failure would.
pub struct Proxy {
    /// The port it listens on.
    pub port: u16,
    /// While true, the server's replies are held back.
    pub hold: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Proxy {
    /// Forwards connections on a free port to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hold = Arc::new(AtomicBool::new(false));
        let (cut, cut_rx) = watch::channel(0u64);
        let h = hold.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let mut cut_rx = cut_rx.clone();
                let generation = *cut_rx.borrow_and_update();
                let current = cut_rx.clone();
                let h = h.clone();
                tokio::spawn(async move {
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = cr.read(&mut buf).await?;
                            if n == 0 {
                                return Ok::<_, std::io::Error>(());
                            }
                            sw.write_all(&buf[..n]).await?;
                        }
                    };
                    let down = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = sr.read(&mut buf).await?;
                            if n == 0 {
                                return Ok::<_, std::io::Error>(());
                            }
                            // Held: the broker's replies (the confirm) never
                            // arrive; after a cut nothing more is forwarded.
                            while h.load(Ordering::SeqCst) {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                            if *current.borrow() != generation {
                                return Ok(());
                            }
                            cw.write_all(&buf[..n]).await?;
                        }
                    };
                    tokio::select! {
                        _ = cut_rx.changed() => {}
                        _ = up => {}
                        _ = down => {}
                    }
                    // Dropping both halves of both sockets closes them.
                });
            }
        });
        Proxy { port, hold, cut }
    }

    /// Cuts every connection made so far and stops holding replies.
    pub fn cut_all(&self) {
        self.cut.send_modify(|g| *g += 1);
        self.hold.store(false, Ordering::SeqCst);
    }
}
