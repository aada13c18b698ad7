//! vfs-object targets: SQLite on an object store.
//!
//! * `object(memory)` — `object_store`'s `InMemory`, no latency: every
//!   workload, compared with SQLite's memdb like the other in-memory
//!   targets (its cost divided by memdb's is the overhead against memdb).
//! * `object(memory+20ms)` — the same store behind a 20 ms delay per
//!   request (an S3 round trip): the read workloads on a warm cache, and
//!   the measures below.
//! * `object(moto)` — moto, a real S3-protocol server on loopback, when
//!   `cargo xtask moto-install` has installed it (skipped otherwise).
//!
//! `object(memory+20ms)` also runs the latency sweep (5, 20 and 50 ms per
//! request, cold and warm reads and commits, with and without prefetch:
//! `object_sweep.rs`).
//!
//! Extra measures of the latency targets: `object_small_commit` (one-row
//! transactions), `object_4mb_commit` (a 4 MB transaction),
//! `object_cold_lookup` (a new process with an empty cache opens the
//! database and reads one row). Their request counts are printed once per
//! run (stderr).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use vfs_object::fault::{FaultController, FaultStore};
use vfs_object::object_store::{self, ObjectStore, memory::InMemory};
use vfs_object::{ObjectOptions, ObjectVfs};

use super::{DiscardFn, ExtraFn, Family, Res, SEQ, Target, memory_target};
use crate::workloads::{self, Measure, Scale};

/// The injected per-request latency.
const LATENCY: Duration = Duration::from_millis(20);

pub(super) fn targets() -> Res<Vec<Target>> {
    let mut out = Vec::new();
    let memory = ObjectVfs::new(Arc::new(InMemory::new()), "bench", ObjectOptions::default())?;
    let _ = vfs_core::register("bench-object", memory.clone(), false)?;
    let mut t = memory_target(
        "object(memory)",
        "bench-object",
        false,
        Some(discard(memory)),
    );
    t.readers_without_writer = true;
    out.push(t);

    let faults = FaultStore::new(Arc::new(InMemory::new()));
    let ctl = faults.controller();
    let mut t = remote_target("object(memory+20ms)", Arc::new(faults), Some(ctl))?;
    // The latency sweep (5, 20, 50 ms; `object_sweep.rs`) rides on this
    // target: `--filter 'object(memory+20ms)' --only extras` runs it.
    t.extras.push(super::object_sweep::latency_sweep());
    out.push(t);

    match Moto::start() {
        Ok(moto) => {
            let store = moto.store()?;
            let mut t = remote_target("object(moto)", store, None)?;
            // The server lives as long as the target's closures.
            let moto = Arc::new(moto);
            t.extras.push(Box::new(move |_, _| {
                let _ = &moto;
                Ok(Vec::new())
            }));
            out.push(t);
        }
        Err(e) => eprintln!("vfs-bench: object(moto) skipped: {e}"),
    }
    Ok(out)
}

/// Deletes a database the bench is done with (its objects).
fn discard(vfs: ObjectVfs) -> DiscardFn {
    Box::new(move |db| {
        let _ = vfs.delete_database(&format!("/{db}.db"));
    })
}

/// A read-only-style target over `store`: the database is filled with no
/// latency, then read warm; the extras measure commits and cold lookups.
fn remote_target(
    name: &str,
    store: Arc<dyn ObjectStore>,
    latency: Option<FaultController>,
) -> Res<Target> {
    let slow = move |on: bool| {
        if let Some(c) = &latency {
            c.set_latency(if on { LATENCY } else { Duration::ZERO });
        }
    };
    let vfs_name = format!("bench-{}", name.replace(['(', ')', '+'], "-"));
    let vfs = ObjectVfs::new(store.clone(), "bench", ObjectOptions::default())?;
    let _ = vfs_core::register(&vfs_name, vfs.clone(), false)?;
    let uri_name = vfs_name.clone();
    let mut t = Target::new(
        name,
        Family::Memory,
        false,
        Box::new(move |tag| format!("file:/{tag}.db?vfs={uri_name}")),
        discard(vfs.clone()),
    );
    t.read_only = true;
    t.concurrent = false;
    let fill_vfs = vfs_name.clone();
    let fill_slow = slow.clone();
    t.prefilled = Some(Box::new(move |scale, rep| {
        fill_slow(false);
        let uri = format!("file:/prefilled-{rep}.db?vfs={fill_vfs}");
        let mut conn = Connection::open(&uri)?;
        workloads::schema(&conn)?;
        workloads::bulk_insert(&mut conn, scale)?;
        fill_slow(true);
        Ok(Some(conn))
    }));
    t.extras.push(commit_extra(
        name.to_owned(),
        vfs,
        vfs_name.clone(),
        slow.clone(),
    ));
    t.extras
        .push(cold_lookup_extra(store, name.to_owned(), vfs_name, slow));
    Ok(t)
}

/// Small commits and one 4 MB commit; prints the PUTs per commit.
fn commit_extra(
    label: String,
    object: ObjectVfs,
    vfs: String,
    slow: impl Fn(bool) + 'static,
) -> ExtraFn {
    Box::new(move |scale, rep| {
        slow(true);
        let quick = scale.rows < Scale::FULL.rows;
        let n: i64 = if quick { 10 } else { 50 };
        let conn = Connection::open(format!("file:/commits-{rep}.db?vfs={vfs}"))?;
        conn.execute_batch("CREATE TABLE c(x BLOB)")?;
        let stats = |c: &Connection| -> Res<i64> {
            Ok(
                c.query_row("PRAGMA object_lsn", [], |r| r.get::<_, String>(0))?
                    .parse()?,
            )
        };
        let lsn0 = stats(&conn)?;
        let requests0 = object.request_stats();
        let start = Instant::now();
        for i in 0..n {
            conn.execute("INSERT INTO c VALUES (?1)", [i])?;
        }
        let small = Measure::wall(n as u64, start.elapsed());
        let start = Instant::now();
        conn.execute_batch(
            "BEGIN; WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM k WHERE i<1000)
             INSERT INTO c SELECT randomblob(4000) FROM k; COMMIT;",
        )?;
        let big = Measure::wall(1, start.elapsed());
        let requests = object.request_stats().since(&requests0);
        let commits = stats(&conn)? - lsn0;
        if rep == 0 {
            eprintln!(
                "\nvfs-bench: {label}: {commits} commits ({n} small + one of 4 MB): {requests}"
            );
        }
        Ok(vec![
            ("object_small_commit", small),
            ("object_4mb_commit", big),
        ])
    })
}

/// A new process (an `ObjectVfs` with an empty cache) opens the prefilled
/// database and reads one row by rowid; prints its requests.
fn cold_lookup_extra(
    store: Arc<dyn ObjectStore>,
    label: String,
    vfs: String,
    slow: impl Fn(bool) + 'static,
) -> ExtraFn {
    Box::new(move |scale, rep| {
        slow(true);
        let quick = scale.rows < Scale::FULL.rows;
        let n = if quick { 2 } else { 5 };
        let mut total = Duration::ZERO;
        for i in 0..n {
            let cold = ObjectVfs::new(store.clone(), "bench", ObjectOptions::default())?;
            let name = format!("{vfs}-cold-{}", SEQ.fetch_add(1, Ordering::Relaxed));
            let reg = vfs_core::register(&name, cold.clone(), false)?;
            let start = Instant::now();
            {
                let conn = Connection::open(format!("file:/prefilled-{rep}.db?vfs={name}"))?;
                let _: Option<String> = conn
                    .query_row(
                        "SELECT b FROM t1 WHERE id = ?1",
                        [1 + (i * 7919) % scale.rows],
                        |r| r.get(0),
                    )
                    .ok();
            }
            total += start.elapsed();
            reg.unregister().map_err(|(_, e)| e)?;
            if rep == 0 && i == 0 {
                eprintln!(
                    "vfs-bench: {label}: cold point lookup in {} rows: {} ({:?})",
                    scale.rows,
                    cold.request_stats(),
                    start.elapsed()
                );
            }
        }
        Ok(vec![("object_cold_lookup", Measure::wall(n as u64, total))])
    })
}

/// moto on 127.0.0.1, from `target/moto/venv` (`cargo xtask moto-install`);
/// it exits when its standard input closes, so it never outlives the bench.
struct Moto {
    port: u16,
    child: Child,
}

fn moto_python() -> PathBuf {
    if let Some(p) = std::env::var_os("VFS_OBJECT_MOTO_PYTHON") {
        return p.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("moto/venv/bin/python")
}

const LAUNCHER: &str = r#"
import logging, sys
logging.getLogger("werkzeug").setLevel(logging.ERROR)
from moto.server import ThreadedMotoServer
import boto3
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
port = server.get_host_and_port()[1]
boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="bench",
             aws_secret_access_key="bench", region_name="us-east-1").create_bucket(Bucket="vfs-bench")
print(port, flush=True)
sys.stdin.read()
server.stop()
"#;

impl Moto {
    fn start() -> Result<Moto, String> {
        let python = moto_python();
        if !python.exists() {
            return Err(format!(
                "{} is missing (cargo xtask moto-install)",
                python.display()
            ));
        }
        let mut child = Command::new(&python)
            .args(["-c", LAUNCHER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start moto: {e}"))?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().ok_or("no stdout")?)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let port = line.trim().parse().map_err(|_| {
            let _ = child.kill();
            format!("moto did not start ({line:?})")
        })?;
        Ok(Moto { port, child })
    }

    fn store(&self) -> Res<Arc<dyn ObjectStore>> {
        Ok(Arc::new(
            object_store::aws::AmazonS3Builder::new()
                .with_endpoint(format!("http://127.0.0.1:{}", self.port))
                .with_allow_http(true)
                .with_bucket_name("vfs-bench")
                .with_region("us-east-1")
                .with_access_key_id("bench")
                .with_secret_access_key("bench")
                .build()?,
        ))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
