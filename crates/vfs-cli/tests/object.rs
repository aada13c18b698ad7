//! `sqlite-vfs object …` on a database kept by vfs-object in the
//! local-file store: versions, restore to a file and to a new database,
//! cost by kind, and the refusals (a missing version, an existing target,
//! an unknown store).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use rusqlite::Connection;
use serde_json::Value;
use vfs_object::{ObjectOptions, ObjectVfs};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn sv(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_sqlite-vfs"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(r: &Run) -> Value {
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    serde_json::from_str(&r.stdout).unwrap_or(Value::Null)
}

fn failed(r: &Run, says: &str) {
    assert_eq!(r.code, 2, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(r.stderr.contains(says), "wanted {says:?} in: {}", r.stderr);
}

/// A VFS over the store in `dir`, registered as `name` for the test's
/// connections.
fn vfs(dir: &Path, name: &str) -> (ObjectVfs, vfs_core::Registration) {
    let store = Arc::new(LocalFileSystem::new_with_prefix(dir).unwrap());
    let vfs = ObjectVfs::new(store, "", ObjectOptions::default()).unwrap();
    let reg = vfs_core::register(name, vfs.clone(), false).unwrap();
    (vfs, reg)
}

fn ids(c: &Connection) -> Vec<i64> {
    let mut s = c.prepare("SELECT id FROM t ORDER BY id").unwrap();
    s.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn versions_restore_and_cost_over_the_local_file_store() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("objects");
    std::fs::create_dir(&store_dir).unwrap();
    let store = format!("file://{}", store_dir.display());
    let (_, reg) = vfs(&store_dir, "cli-object-writer");
    let c = Connection::open("file:/app.db?vfs=cli-object-writer").unwrap();
    c.execute_batch(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, pad BLOB);
         INSERT INTO t VALUES (1, zeroblob(3000)), (2, zeroblob(3000));
         INSERT INTO t VALUES (3, zeroblob(3000));
         DELETE FROM t WHERE id = 1;",
    )
    .unwrap();
    drop(c);

    let v = ok(&sv(&[
        "object", "versions", "app.db", "--store", &store, "--json",
    ]));
    let lsns: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["lsn"].as_u64().unwrap())
        .collect();
    assert_eq!(lsns, [1, 2, 3, 4]);
    assert!(v[0]["commit_time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v[3]["void"], Value::Bool(false));
    let text = sv(&["object", "versions", "/app.db", "--store", &store]);
    ok(&text);
    assert!(
        text.stdout.contains("LSN") && text.stdout.lines().count() == 5,
        "{}",
        text.stdout
    );

    // LSN 3 had rows 1, 2 and 3: as a plain file and as a new database.
    let out = tmp.path().join("at3.db");
    let r = ok(&sv(&[
        "object",
        "restore",
        "app.db",
        "--lsn",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--store",
        &store,
        "--json",
    ]));
    assert_eq!(r["lsn"], 3);
    let plain = Connection::open(&out).unwrap();
    assert_eq!(ids(&plain), [1, 2, 3]);
    let check: String = plain
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    ok(&sv(&[
        "object",
        "restore",
        "app.db",
        "--asof",
        "2999-01-01T00:00:00Z",
        "--to",
        "latest.db",
        "--store",
        &store,
    ]));
    let (_, reg2) = vfs(&store_dir, "cli-object-reader");
    let copy = Connection::open("file:/latest.db?vfs=cli-object-reader").unwrap();
    assert_eq!(ids(&copy), [2, 3]);
    drop(copy);

    // What the database holds: four commit objects, every byte counted.
    let cost = ok(&sv(&[
        "object", "cost", "app.db", "--store", &store, "--json",
    ]));
    let log_bytes: u64 = std::fs::read_dir(store_dir.join("app.db").join("log"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(cost["log"]["objects"], 4);
    assert_eq!(cost["log"]["bytes"], log_bytes);
    assert_eq!(cost["total"]["bytes"], log_bytes);
    assert_eq!(cost["snapshots"]["objects"], 0);
    let text = sv(&["object", "cost", "app.db", "--store", &store]);
    ok(&text);
    assert!(text.stdout.contains("total"), "{}", text.stdout);

    // Refusals, each naming the problem.
    failed(
        &sv(&[
            "object", "restore", "app.db", "--lsn", "9", "--out", "x.db", "--store", &store,
        ]),
        "LSN 9 does not exist",
    );
    failed(
        &sv(&[
            "object",
            "restore",
            "app.db",
            "--lsn",
            "2",
            "--out",
            out.to_str().unwrap(),
            "--store",
            &store,
        ]),
        "exists",
    );
    failed(
        &sv(&[
            "object",
            "restore",
            "app.db",
            "--lsn",
            "2",
            "--to",
            "latest.db",
            "--store",
            &store,
        ]),
        "exists",
    );
    failed(
        &sv(&[
            "object", "restore", "app.db", "--asof", "noon", "--to", "n.db", "--store", &store,
        ]),
        "RFC 3339",
    );
    failed(
        &sv(&[
            "object", "restore", "app.db", "--to", "n.db", "--store", &store,
        ]),
        "--lsn",
    );
    failed(
        &sv(&[
            "object",
            "versions",
            "app.db",
            "--store",
            "http://example.com/x",
        ]),
        "not a store URL",
    );
    failed(
        &sv(&[
            "object",
            "versions",
            "app.db",
            "--store",
            "file:///no/such/dir/here",
        ]),
        "must exist",
    );
    reg.unregister().unwrap();
    reg2.unregister().unwrap();
}
