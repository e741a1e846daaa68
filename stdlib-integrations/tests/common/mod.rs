//! Finding the servers tests need: present, skip loudly, or (under
//! `DROVER_REQUIRE_SERVICES=1`, as in CI) fail.

#![allow(dead_code)] // each test binary uses a different part

use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Whether missing services fail tests instead of skipping them.
pub fn services_required() -> bool {
    std::env::var("DROVER_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Skips (returns `None`, saying why on stderr) or fails when a service is missing.
pub fn missing<T>(what: &str) -> Option<T> {
    if services_required() {
        panic!("DROVER_REQUIRE_SERVICES=1 but {what}");
    }
    eprintln!("\n*** SKIPPED: {what}. Set DROVER_REQUIRE_SERVICES=1 to make this a failure. ***\n");
    None
}

/// The memcached to test against: `DROVER_MEMCACHED` or 127.0.0.1:11211.
pub fn memcached() -> Option<String> {
    let addr = std::env::var("DROVER_MEMCACHED").unwrap_or_else(|_| "127.0.0.1:11211".into());
    let reachable = addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok());
    if reachable {
        Some(addr)
    } else {
        missing(&format!(
            "no memcached listens at {addr} (set DROVER_MEMCACHED)"
        ))
    }
}

/// A key prefix no other test run shares.
pub fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("drover-test-{tag}-{}-{nanos}", std::process::id())
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A memcached process this test owns; killed on drop.
pub struct OwnMemcached {
    pub port: u16,
    child: Option<Child>,
    extra: Vec<String>,
}

impl OwnMemcached {
    /// Starts `memcached` on a free port, or says why it cannot.
    pub fn start(extra: &[&str]) -> Option<OwnMemcached> {
        let which = Command::new("sh")
            .args(["-c", "command -v memcached"])
            .output()
            .ok()
            .filter(|o| o.status.success());
        if which.is_none() {
            return missing("the memcached binary is not installed");
        }
        let mut m = OwnMemcached {
            port: free_port(),
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        m.restart();
        Some(m)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the process and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.kill();
        let mut cmd = Command::new("memcached");
        cmd.args([
            "-l",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "0",
            "-m",
            "16",
        ]);
        // memcached refuses to run as root unless told which user to be.
        if std::env::var("USER").is_ok_and(|u| u == "root") || is_root() {
            cmd.args(["-u", "root"]);
        }
        cmd.args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        self.child = Some(cmd.spawn().expect("spawn memcached"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "memcached did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

impl Drop for OwnMemcached {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The RabbitMQ to test against: `DROVER_RABBITMQ_URL` or
/// `amqp://guest:guest@127.0.0.1:5672/%2f`, if its port answers.
pub fn rabbitmq() -> Option<String> {
    let url = std::env::var("DROVER_RABBITMQ_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let hostport = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split('/').next())
        .map(|auth| auth.rsplit('@').next().unwrap_or(auth).to_owned())
        .unwrap_or_default();
    let hostport = if hostport.contains(':') {
        hostport
    } else {
        format!("{hostport}:5672")
    };
    let reachable = hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok());
    if reachable {
        Some(url)
    } else {
        missing(&format!(
            "no RabbitMQ listens at {hostport} (set DROVER_RABBITMQ_URL)"
        ))
    }
}
