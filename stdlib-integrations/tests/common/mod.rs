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

/// Where `.ci/run` installs Etsy's statsd from the npm registry.
pub const STATSD_DEFAULT: &str = "/opt/drover-statsd/node_modules/statsd/stats.js";

/// A real statsd server (Etsy's, on Node.js) this test owns; killed on drop.
/// Metrics go to `udp_port`; its management console on `mgmt_port`
/// answers `counters`, `gauges`, `timers` and `stats`.
pub struct OwnStatsd {
    pub udp_port: u16,
    pub mgmt_port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl OwnStatsd {
    /// Starts statsd (`DROVER_STATSD`, or [`STATSD_DEFAULT`]) on free
    /// ports, or says why it cannot.
    pub fn start() -> Option<OwnStatsd> {
        let js = std::env::var("DROVER_STATSD").unwrap_or_else(|_| STATSD_DEFAULT.into());
        if !std::path::Path::new(&js).is_file() {
            return missing(&format!(
                "no statsd at {js} (`npm install --prefix /opt/drover-statsd statsd@0.9.0`, or set DROVER_STATSD)"
            ));
        }
        let node = Command::new("node").arg("--version").output();
        if !node.is_ok_and(|o| o.status.success()) {
            return missing("statsd needs Node.js, and `node` is not on the PATH");
        }
        let udp_port = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
            s.local_addr().expect("local addr").port()
        };
        let mgmt_port = free_port();
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("config.js");
        // A flush interval of an hour: the test reads the live aggregates
        // from the management console, before any flush resets them.
        std::fs::write(
            &config,
            format!(
                "{{ port: {udp_port}, address: \"127.0.0.1\", mgmt_port: {mgmt_port}, \
                 mgmt_address: \"127.0.0.1\", backends: [\"./backends/console\"], \
                 flushInterval: 3600000 }}\n"
            ),
        )
        .expect("write the statsd config");
        let root = std::path::Path::new(&js)
            .parent()
            .expect("statsd's directory");
        let child = Command::new("node")
            .arg(&js)
            .arg(&config)
            .current_dir(root)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn statsd");
        let s = OwnStatsd {
            udp_port,
            mgmt_port,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", mgmt_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "statsd did not open its management port {mgmt_port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(s)
    }

    /// Sends one management command and returns its answer up to `END`.
    pub fn ask(&self, command: &str) -> String {
        use std::io::{Read, Write};
        let mut c = TcpStream::connect(("127.0.0.1", self.mgmt_port)).expect("statsd mgmt");
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(format!("{command}\n").as_bytes()).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains("END\n") {
            let n = c.read(&mut buf).expect("statsd answers");
            assert!(
                n > 0,
                "statsd closed the console: {}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&got).into_owned();
        text.split("END\n").next().unwrap_or_default().to_owned()
    }
}

impl Drop for OwnStatsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
