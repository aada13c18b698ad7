//! Peer libraries on the workloads of `cargo xtask bench`.
//!
//! This binary links SQLCipher (rusqlite's `bundled-sqlcipher-vendored-openssl`)
//! instead of plain SQLite, so it cannot share a process with the workspace's
//! crates: it runs the same workload code (`crates/vfs-bench/src/workloads.rs`,
//! included unchanged) and writes its samples as JSON, which `vfs-bench
//! --peer-samples` folds into the report of the same run. `cargo xtask bench
//! --peers` drives both.
#![forbid(unsafe_code)]

#[path = "../../crates/vfs-bench/src/workloads.rs"]
#[allow(dead_code)]
mod workloads;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde_json::json;
use workloads::{Measure, Scale};

/// The raw 256-bit key SQLCipher is given (`x'…'` skips its PBKDF2, as the
/// workspace's crypto targets use a raw key too).
const RAW_KEY: &str = "2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a";

struct Options {
    quick: bool,
    reps: usize,
    out: PathBuf,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        quick: false,
        reps: 5,
        out: PathBuf::from("target/bench/peer-samples.json"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--reps" => {
                o.reps = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--reps takes a positive number")?
            }
            "--out" => o.out = args.next().ok_or("--out takes a file name")?.into(),
            "-h" | "--help" => {
                println!(
                    "bench-peers [--quick] [--reps N] [--out FILE]\n\
                     Runs the vfs-bench workloads on SQLCipher; writes the samples to FILE."
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if o.quick {
        o.reps = o.reps.min(2);
    }
    Ok(o)
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// One peer configuration.
struct Peer {
    /// Display name in the report.
    name: &'static str,
    /// `memory` (compared with SQLite's memdb) or `disk` (with unix).
    family: &'static str,
    /// Whether SQLCipher is given a key (no key: SQLCipher's build of SQLite
    /// without encryption, to separate its cipher cost from its SQLite).
    keyed: bool,
}

const PEERS: [Peer; 3] = [
    Peer {
        name: "sqlcipher(memdb)",
        family: "memory",
        keyed: true,
    },
    Peer {
        name: "sqlcipher-nokey(memdb)",
        family: "memory",
        keyed: false,
    },
    Peer {
        name: "sqlcipher(unix)",
        family: "disk",
        keyed: true,
    },
];

fn uri(peer: &Peer, dir: &Path, tag: &str) -> String {
    match peer.family {
        "memory" => format!("file:/{tag}.db?vfs=memdb"),
        _ => format!("file:{}/{tag}.db", dir.display()),
    }
}

fn connect(peer: &Peer, uri: &str) -> Res<Connection> {
    let conn = Connection::open(uri)?;
    if peer.keyed {
        conn.execute_batch(&format!("PRAGMA key = \"x'{RAW_KEY}'\";"))?;
    }
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(conn)
}

/// Proves a keyed peer really encrypts: a second connection without the key
/// must not read the database.
fn check_encrypted(peer: &Peer, uri: &str) -> Res<()> {
    if !peer.keyed {
        return Ok(());
    }
    let plain = Connection::open(uri)?;
    match plain.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::NotADatabase =>
        {
            Ok(())
        }
        other => Err(format!(
            "{}: the database opened without a key ({other:?}); SQLCipher is not encrypting",
            peer.name
        )
        .into()),
    }
}

struct Sample {
    target: &'static str,
    family: &'static str,
    workload: &'static str,
    m: Measure,
}

fn run(opts: &Options) -> Res<serde_json::Value> {
    let scale = if opts.quick {
        Scale::QUICK
    } else {
        Scale::FULL
    };
    let tmp = tempfile::tempdir()?;
    let mut samples = Vec::new();
    let mut seq = 0usize;
    let mut next_tag = |what: &str| {
        seq += 1;
        format!("peer{seq}-{what}")
    };
    for peer in &PEERS {
        eprint!("{:<24}", peer.name);
        for rep in 0..opts.reps {
            let u = uri(peer, tmp.path(), &next_tag(&format!("single-{rep}")));
            let mut conn = connect(peer, &u)?;
            // Disk targets run fewer small transactions (fsync-bound).
            let scale = if peer.family == "disk" {
                scale.for_disk()
            } else {
                scale
            };
            let steps = workloads::single_connection(&mut conn, &scale)?;
            check_encrypted(peer, &u)?;
            let mixed: Duration = steps.iter().map(|(_, m)| m.elapsed).sum();
            let mixed_cpu: Option<Duration> = steps.iter().map(|(_, m)| m.cpu).sum();
            for (workload, m) in steps {
                samples.push(Sample {
                    target: peer.name,
                    family: peer.family,
                    workload,
                    m,
                });
            }
            samples.push(Sample {
                target: peer.name,
                family: peer.family,
                workload: "mixed",
                m: Measure {
                    ops: 1,
                    elapsed: mixed,
                    cpu: mixed_cpu,
                },
            });
            eprint!(".");
        }
        if peer.family == "disk" {
            for rep in 0..opts.reps {
                for (workload, sync) in [
                    ("small_txns_sync_normal", "NORMAL"),
                    ("small_txns_sync_full", "FULL"),
                ] {
                    let u = uri(peer, tmp.path(), &next_tag(&format!("sync-{rep}")));
                    let conn = connect(peer, &u)?;
                    conn.execute_batch(&format!("PRAGMA synchronous={sync}"))?;
                    workloads::schema(&conn)?;
                    let m = workloads::small_transactions(&conn, &scale.for_disk())?;
                    samples.push(Sample {
                        target: peer.name,
                        family: peer.family,
                        workload,
                        m,
                    });
                }
            }
        }
        eprintln!();
    }
    let probe = connect(&PEERS[0], "file:/probe.db?vfs=memdb")?;
    let cipher: String = probe.query_row("PRAGMA cipher_version", [], |r| r.get(0))?;
    let provider: String = probe
        .query_row("PRAGMA cipher_provider_version", [], |r| r.get(0))
        .unwrap_or_default();
    Ok(json!({
        "library": format!(
            "SQLCipher {cipher} (SQLite {}, {provider} provider), raw 256-bit key, default cipher settings",
            rusqlite::version()
        ),
        "quick": opts.quick,
        "repetitions": opts.reps,
        "samples": samples.iter().map(|s| json!({
            "target": s.target,
            "family": s.family,
            "workload": s.workload,
            "ops": s.m.ops,
            "seconds": s.m.elapsed.as_secs_f64(),
            "cpu_seconds": s.m.cpu.map(|c| c.as_secs_f64()),
        })).collect::<Vec<_>>(),
    }))
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench-peers: {e}");
            std::process::exit(2);
        }
    };
    let result = run(&opts).and_then(|doc| {
        if let Some(dir) = opts.out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&opts.out, serde_json::to_string_pretty(&doc)?)?;
        Ok(())
    });
    match result {
        Ok(()) => eprintln!("bench-peers: wrote {}", opts.out.display()),
        Err(e) => {
            eprintln!("bench-peers: {e}");
            std::process::exit(1);
        }
    }
}
