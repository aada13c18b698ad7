//! moto, a real S3-protocol server, on 127.0.0.1 for the tests.
//!
//! Installed by `cargo xtask moto-install` into `target/moto/venv`; one
//! server per test binary, started on first use on a free port chosen by
//! the OS, and gone with the test process: the launcher exits when its
//! standard input closes, which happens however the test process ends.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;

/// The bucket every test uses (tests use their own prefixes).
pub const BUCKET: &str = "vfs-object-test";

/// Starts moto's S3 server on a free port, makes the bucket, prints the
/// port, and serves until stdin closes. Requests are handled one at a time:
/// moto checks a conditional PUT's precondition and stores the object in
/// two steps, so two of its request threads can both "win" one
/// `If-None-Match: *` (seen under load), where S3 decides atomically.
/// Serialising the application keeps the protocol's semantics, which is
/// what the tests are about.
const LAUNCHER: &str = r#"
import logging, sys, threading
logging.getLogger("werkzeug").setLevel(logging.ERROR)
from werkzeug.serving import make_server
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app)
import boto3
app = DomainDispatcherApplication(create_backend_app)
one_at_a_time = threading.Lock()
def serialised(environ, start_response):
    with one_at_a_time:
        return list(app(environ, start_response))
server = make_server("127.0.0.1", 0, serialised, True, request_handler=MotoRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
port = server.server_address[1]
boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="test",
             aws_secret_access_key="test", region_name="us-east-1").create_bucket(Bucket=sys.argv[1])
print(port, flush=True)
sys.stdin.read()
server.shutdown()
"#;

/// A running moto server.
pub struct Moto {
    pub port: u16,
    child: Mutex<Child>,
    _stdin: Mutex<ChildStdin>,
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("VFS_OBJECT_MOTO_PYTHON") {
        return p.into();
    }
    // CARGO_TARGET_TMPDIR is <target>/tmp.
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target directory")
        .join("moto/venv/bin/python")
}

/// Installs moto into `target/moto/venv` the way CI does (`cargo xtask
/// moto-install`), so that `cargo test --workspace` needs no step before
/// it. Test binaries run one after another and each starts its server
/// once, so two installs never race.
fn install() {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!(
        "moto is not installed yet: running `cargo xtask moto-install` (about 1.5 min, once)"
    );
    let status = Command::new(cargo)
        .args(["xtask", "moto-install"])
        .current_dir(&workspace)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            panic!("`cargo xtask moto-install` failed ({s}): Python 3.10+ and PyPI are needed")
        }
        Err(e) => panic!("cannot run `cargo xtask moto-install`: {e}"),
    }
}

impl Moto {
    fn start() -> Moto {
        let python = python();
        if !python.exists() && std::env::var_os("VFS_OBJECT_MOTO_PYTHON").is_none() {
            install();
        }
        assert!(
            python.exists(),
            "moto is not installed ({} is missing): run `cargo xtask moto-install` \
             (Python 3.10+ and PyPI needed), or set VFS_OBJECT_MOTO_PYTHON to a Python with moto[server]",
            python.display()
        );
        let mut child = Command::new(&python)
            .args(["-c", LAUNCHER, BUCKET])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto with {}: {e}", python.display()));
        let stdin = child.stdin.take().expect("stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("moto's port");
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("moto did not start (it printed {line:?})")
        });
        Moto {
            port,
            child: Mutex::new(child),
            _stdin: Mutex::new(stdin),
        }
    }

    /// The server of this test process.
    pub fn shared() -> &'static Moto {
        static MOTO: OnceLock<Moto> = OnceLock::new();
        MOTO.get_or_init(Moto::start)
    }

    /// An S3 client for the test bucket.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        store_at(self.port)
    }

    /// Stops the server now (also happens when the process ends).
    pub fn stop(&self) {
        let mut c = self.child.lock().unwrap();
        let _ = self._stdin.lock().unwrap().write_all(b"");
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// An S3 client for the test bucket of the moto server on `port`.
pub fn store_at(port: u16) -> Arc<dyn ObjectStore> {
    let retry = object_store::RetryConfig {
        max_retries: 2,
        retry_timeout: std::time::Duration::from_secs(20),
        ..Default::default()
    };
    Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(format!("http://127.0.0.1:{port}"))
            .with_allow_http(true)
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .with_retry(retry)
            .build()
            .expect("S3 client for moto"),
    )
}
