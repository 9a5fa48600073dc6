//! The gateway's retry policy (observability/nginx/nginx.conf), on a real nginx running the
//! repository's configuration, whose pools each hold a replica that fails first and a
//! healthy one:
//! - a replica that takes a request and drops the connection unanswered (a crash
//!   mid-request): a GET is sent on to the healthy replica, and so is a POST placing an
//!   order with an Idempotency-Key, but a plain POST is not (502, a problem document);
//! - a replica that refuses connections: even a plain POST goes to the next one.
//!
//! Needs nginx (`bash .ci/install-observability.sh`); fails, not skips, without it.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use rustix::process::{Pid, Signal, kill_process};

/// How an upstream server behaves.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Reads the request, then closes the connection without a response.
    DropsRequests,
    /// Answers every request 200.
    Answers,
}

/// An upstream server on a free loopback port, counting the requests it received.
struct Upstream {
    port: u16,
    requests: Arc<AtomicUsize>,
}

impl Upstream {
    fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&requests);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let counted = Arc::clone(&counted);
                thread::spawn(move || serve(stream, behaviour, &counted));
            }
        });
        Self { port, requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// One request per connection: its head and body read, then answered or dropped.
fn serve(stream: TcpStream, behaviour: Behaviour, requests: &AtomicUsize) {
    let mut reader = BufReader::new(stream);
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; content_length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    requests.fetch_add(1, Ordering::SeqCst);
    if let Behaviour::Answers = behaviour {
        let _ = reader
            .get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n");
    }
}

/// A port nothing listens on: bound, then released.
fn refused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx on the repository's nginx.conf, its listeners moved to free ports and its pools
/// given as `(pool, servers)`; stopped when dropped.
struct Gateway {
    child: Child,
    url: String,
    _prefix: TempDir,
}

impl Gateway {
    fn start(pools: &[(&str, Vec<u16>)]) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let prefix = TempDir::new("gateway-retries");
        let conf = prefix.0.join("conf");
        fs::create_dir_all(&conf).unwrap();
        fs::create_dir_all(prefix.0.join("logs")).unwrap();
        let (public, status) = (refused_port(), refused_port());
        let nginx_conf = fs::read_to_string(root.join("observability/nginx/nginx.conf")).unwrap();
        let moved = nginx_conf
            .replace(
                "listen 127.0.0.1:8080;",
                &format!("listen 127.0.0.1:{public};"),
            )
            .replace(
                "listen 127.0.0.1:8081;",
                &format!("listen 127.0.0.1:{status};"),
            );
        assert_ne!(
            moved, nginx_conf,
            "nginx.conf no longer listens on 127.0.0.1:8080"
        );
        fs::write(conf.join("nginx.conf"), moved).unwrap();
        fs::write(conf.join("upstreams.native.conf"), upstreams(root, pools)).unwrap();

        let child = Command::new(nginx())
            .arg("-p")
            .arg(&prefix.0)
            .arg("-c")
            .arg(conf.join("nginx.conf"))
            .arg("-e")
            .arg(prefix.0.join("logs/error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx runs");
        let gateway = Self {
            child,
            url: format!("http://127.0.0.1:{public}"),
            _prefix: prefix,
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", public)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx did not listen within 10 s"
            );
            thread::sleep(Duration::from_millis(50));
        }
        gateway
    }
}

impl Drop for Gateway {
    /// SIGTERM, not SIGKILL: nginx's master then stops its workers, which a killed master
    /// would leave running.
    fn drop(&mut self) {
        if let Some(pid) = Pid::from_raw(self.child.id() as i32) {
            let _ = kill_process(pid, Signal::TERM);
        }
        let _ = self.child.wait();
    }
}

/// The committed upstreams, with each pool's one server replaced by `servers`, parameters
/// kept, so that the test runs the pools' real passive-health settings.
fn upstreams(root: &Path, pools: &[(&str, Vec<u16>)]) -> String {
    let committed =
        fs::read_to_string(root.join("observability/nginx/upstreams.native.conf")).unwrap();
    let mut pool = String::new();
    let mut out = String::new();
    for line in committed.lines() {
        if let Some(name) = line.strip_prefix("upstream ") {
            pool = name.trim_end_matches(" {").to_owned();
        }
        let servers = pools.iter().find(|(name, _)| *name == pool);
        match (line.trim_start().strip_prefix("server 127.0.0.1:"), servers) {
            (Some(server), Some((_, ports))) => {
                let parameters = server.split_once(' ').map_or(";", |(_, rest)| rest);
                for port in ports {
                    out.push_str(&format!("    server 127.0.0.1:{port} {parameters}\n"));
                }
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

fn nginx() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .expect("nginx is not installed: bash .ci/install-observability.sh")
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_gateway_retries_only_what_is_safe_to_send_twice() {
    // Each pool lists the failing replica first: nginx's round robin starts with it.
    let (backend_bad, backend_good) = (
        Upstream::start(Behaviour::DropsRequests),
        Upstream::start(Behaviour::Answers),
    );
    let (order_bad, order_good) = (
        Upstream::start(Behaviour::DropsRequests),
        Upstream::start(Behaviour::Answers),
    );
    let (cart_bad, cart_good) = (
        Upstream::start(Behaviour::DropsRequests),
        Upstream::start(Behaviour::Answers),
    );
    let user_good = Upstream::start(Behaviour::Answers);
    let gateway = Gateway::start(&[
        ("backend", vec![backend_bad.port, backend_good.port]),
        ("order_service", vec![order_bad.port, order_good.port]),
        ("cart_service", vec![cart_bad.port, cart_good.port]),
        ("user_service", vec![refused_port(), user_good.port]),
    ]);
    let client = Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let url = |path: &str| format!("{}{path}", gateway.url);

    let get = client.get(url("/api/products")).send().unwrap();
    assert_eq!(get.status(), 200, "a GET the first replica dropped");
    assert_eq!(backend_bad.requests(), 1);
    assert_eq!(backend_good.requests(), 1);

    let keyed = client
        .post(url("/order-api/orders"))
        .header("Idempotency-Key", "gateway-retry-test")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(
        keyed.status(),
        200,
        "an order placed with a key, dropped once"
    );
    assert_eq!(order_bad.requests(), 1);
    assert_eq!(order_good.requests(), 1);

    let plain = client
        .post(url("/cart-api/cart/checkout"))
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(plain.status(), 502, "a plain POST must not be sent twice");
    assert_eq!(
        plain.headers()["content-type"],
        "application/problem+json",
        "the gateway's 502 is a problem document"
    );
    assert_eq!(cart_bad.requests(), 1);
    assert_eq!(cart_good.requests(), 0);

    let refused = client
        .post(url("/user-api/users/register"))
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(
        refused.status(),
        200,
        "a POST whose first connection was refused"
    );
    assert_eq!(user_good.requests(), 1);
}
