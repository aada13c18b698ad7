//! `sqlite-vfs object compact` and `object gc` on a database kept by
//! vfs-object in a local-directory store.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use rusqlite::Connection;
use serde_json::Value;
use vfs_object::object_store::local::LocalFileSystem;
use vfs_object::{ObjectOptions, ObjectVfs};

fn sv(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sqlite-vfs"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn vfs(dir: &Path, name: &str) -> (ObjectVfs, vfs_core::Registration) {
    let store = Arc::new(LocalFileSystem::new_with_prefix(dir).unwrap());
    let vfs = ObjectVfs::new(store, "", ObjectOptions::default()).unwrap();
    let reg = vfs_core::register(name, vfs.clone(), false).unwrap();
    (vfs, reg)
}

fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[test]
fn compact_then_gc_through_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (_v, reg) = vfs(tmp.path(), "cli-object-a");
    let c = Connection::open("file:/orders.db?vfs=cli-object-a").unwrap();
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    for i in 1..=10 {
        c.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
    }
    drop(c);
    reg.unregister().map_err(|(_, e)| e).unwrap();
    let store = format!("file://{}", tmp.path().display());
    let log = tmp.path().join("orders.db/log");
    let snap = tmp.path().join("orders.db/snap");
    assert_eq!(files_under(&log), 11);

    let (code, out, err) = sv(&[
        "object",
        "compact",
        "orders.db",
        "--store",
        &store,
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["snapshot_lsn"], 11);
    assert_eq!(j["objects_written"], 1);
    assert_eq!(files_under(&snap), 1);

    // The default retention (an hour) keeps everything.
    let (code, out, err) = sv(&["object", "gc", "orders.db", "--store", &store]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("nothing deleted") || out.contains("0 log objects"),
        "{out}"
    );
    assert_eq!(files_under(&log), 11);

    let (code, out, err) = sv(&[
        "object",
        "gc",
        "orders.db",
        "--store",
        &store,
        "--retention",
        "0",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["base_lsn"], 11);
    assert_eq!(j["log_objects_deleted"], 9);
    assert_eq!(
        files_under(&log),
        3,
        "the tombstone at 1, the base's parent and the head"
    );

    // A fresh process reads everything from the snapshot.
    let (_v, reg) = vfs(tmp.path(), "cli-object-b");
    let c = Connection::open("file:/orders.db?vfs=cli-object-b").unwrap();
    let sum: i64 = c
        .query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sum, 55);
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    drop(c);
    reg.unregister().map_err(|(_, e)| e).unwrap();
}

#[test]
fn an_unknown_store_is_an_error_that_says_what_to_pass() {
    let (code, _, err) = sv(&["object", "gc", "x.db", "--store", "ftp://x"]);
    assert_eq!(code, 2);
    assert!(err.contains("s3://BUCKET"), "{err}");
}
