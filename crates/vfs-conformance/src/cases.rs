//! The conformance cases. Each takes a [`Factory`] (a fresh backend per
//! call, so a case can use two instances), runs its workload through
//! rusqlite, and ends with `PRAGMA integrity_check` and an exact row check.
//! A case whose needs the backend's [`Capabilities`](crate::Capabilities)
//! do not meet prints why and returns.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};
use vfs_core::codes;

use crate::Backend;
use crate::check::{assert_integrity, assert_same_dump, code, dump, rows};
use crate::data::{KV_SCHEMA, KvModel, assert_kv, kv_insert};

/// Makes a fresh backend for a case; the argument names the case (use it
/// in the VFS name).
pub type Factory<'a> = &'a dyn Fn(&str) -> Backend;

/// The names of every case, in the order [`conformance_suite!`](crate::conformance_suite)
/// lists them.
pub const ALL: [&str; 32] = [
    "journal_delete",
    "journal_truncate",
    "journal_persist",
    "journal_memory",
    "journal_wal",
    "journal_off",
    "page_size_512",
    "page_size_4096",
    "page_size_65536",
    "auto_vacuum_none",
    "auto_vacuum_full",
    "auto_vacuum_incremental",
    "vacuum_in_place",
    "vacuum_into_other_backends",
    "vacuum_into_from_other_backends",
    "attach_cross_backend_commit",
    "attach_cross_backend_rollback",
    "savepoints_and_statement_rollback",
    "large_blobs",
    "incremental_blob_io",
    "large_sort_temp_store_file",
    "backup_between_backends",
    "busy_timeout_zero",
    "busy_timeout_waits",
    "busy_reader_blocks_commit",
    "wal_snapshots_and_many_frames",
    "differential_random_workload",
    "concurrency_stress_rollback",
    "concurrency_stress_wal",
    "read_only_queries",
    "reopen_persists",
    "file_names_beyond_utf8",
];

fn skip(b: &Backend, case: &str, why: &str) {
    println!("vfs-conformance: {case} skipped on {}: {why}", b.name());
}

fn writable(b: &Backend, case: &str) -> bool {
    if b.caps().read_only {
        skip(b, case, "read-only backend");
        return false;
    }
    true
}

#[track_caller]
fn ok<T>(r: rusqlite::Result<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

fn pragma(c: &Connection, p: &str) -> String {
    let v = ok(
        c.query_row(&format!("PRAGMA {p}"), [], |r| {
            r.get::<_, rusqlite::types::Value>(0)
        }),
        p,
    );
    match v {
        rusqlite::types::Value::Text(s) => s,
        other => crate::check::render(&other),
    }
}

/// Steps `sql` to completion (`execute_batch` steps a statement once).
fn drain(c: &Connection, sql: &str) -> rusqlite::Result<()> {
    let mut stmt = c.prepare(sql)?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

fn count(c: &Connection, sql: &str) -> i64 {
    ok(c.query_row(sql, [], |r| r.get(0)), sql)
}

/// The common body of the journal-mode cases.
fn journal(f: Factory, mode: &str) {
    let case = format!("journal_{}", mode.to_lowercase());
    let b = f(&case);
    if !writable(&b, &case) {
        return;
    }
    let ctx = format!("{case} on {}", b.name());
    let c = ok(b.open("j.db"), &ctx);
    if mode == "WAL" && b.caps().snapshot_reads {
        // Such a backend refuses WAL with an error rather than silently
        // keeping a rollback journal.
        let e = c
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
            .expect_err("WAL must be refused");
        assert!(
            e.to_string().contains("WAL"),
            "{ctx}: refusal names WAL: {e}"
        );
        assert_eq!(pragma(&c, "journal_mode").to_uppercase(), "DELETE", "{ctx}");
        return;
    }
    let exclusive_wal = mode == "WAL" && !b.caps().wal;
    if exclusive_wal {
        // Without shared memory, WAL needs exclusive locking mode.
        ok(c.execute_batch("PRAGMA locking_mode=EXCLUSIVE"), &ctx);
    }
    let got = pragma(&c, &format!("journal_mode={mode}"));
    assert_eq!(got.to_uppercase(), mode, "{ctx}: journal_mode");
    ok(c.execute_batch(KV_SCHEMA), &ctx);
    let mut m = KvModel::new();
    ok(c.execute_batch("BEGIN"), &ctx);
    ok(kv_insert(&c, "main", 1..200), &ctx);
    ok(c.execute_batch("COMMIT"), &ctx);
    m.insert(1..200);
    if mode != "OFF" {
        // ROLLBACK is undefined with journal_mode=OFF.
        ok(c.execute_batch("BEGIN"), &ctx);
        ok(kv_insert(&c, "main", 200..300), &ctx);
        ok(c.execute("UPDATE kv SET n = -1", []), &ctx);
        ok(c.execute_batch("ROLLBACK"), &ctx);
    }
    ok(
        c.execute("UPDATE kv SET n = n + 1 WHERE id % 3 = 0", []),
        &ctx,
    );
    m.bump(|id| id % 3 == 0, 1.0);
    ok(c.execute("DELETE FROM kv WHERE id % 5 = 0", []), &ctx);
    m.delete(|id| id % 5 == 0);
    assert_kv(&c, "main", &m, &ctx);
    assert_integrity(&c, "main", &ctx);
    if mode == "WAL" && b.caps().wal {
        let r = ok(b.open("j.db"), &ctx);
        assert_kv(&r, "main", &m, &format!("{ctx}, second connection"));
        drop(r);
        ok(c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)"), &ctx);
    }
    drop(c);
    if b.caps().persistent {
        let c = ok(b.open("j.db"), &ctx);
        assert_kv(&c, "main", &m, &format!("{ctx}, reopened"));
        assert_integrity(&c, "main", &format!("{ctx}, reopened"));
    }
}

/// `journal_mode=DELETE`.
pub fn journal_delete(f: Factory) {
    journal(f, "DELETE")
}
/// `journal_mode=TRUNCATE`.
pub fn journal_truncate(f: Factory) {
    journal(f, "TRUNCATE")
}
/// `journal_mode=PERSIST`.
pub fn journal_persist(f: Factory) {
    journal(f, "PERSIST")
}
/// `journal_mode=MEMORY`.
pub fn journal_memory(f: Factory) {
    journal(f, "MEMORY")
}
/// `journal_mode=WAL` (with `locking_mode=EXCLUSIVE` when the backend has
/// no shared memory).
pub fn journal_wal(f: Factory) {
    journal(f, "WAL")
}
/// `journal_mode=OFF` (no rollback tested: it is undefined in that mode).
pub fn journal_off(f: Factory) {
    journal(f, "OFF")
}

fn page_size(f: Factory, size: u32) {
    let case = format!("page_size_{size}");
    let b = f(&case);
    if !writable(&b, &case) {
        return;
    }
    if !b.caps().allows_page_size(size) {
        skip(&b, &case, "page size not allowed by the backend");
        return;
    }
    let ctx = format!("{case} on {}", b.name());
    let c = ok(b.open("p.db"), &ctx);
    ok(c.execute_batch(&format!("PRAGMA page_size={size}")), &ctx);
    ok(c.execute_batch(KV_SCHEMA), &ctx);
    ok(c.execute_batch("CREATE INDEX kv_n ON kv(n)"), &ctx);
    let mut m = KvModel::new();
    ok(c.execute_batch("BEGIN"), &ctx);
    ok(kv_insert(&c, "main", 1..400), &ctx);
    ok(c.execute_batch("COMMIT"), &ctx);
    m.insert(1..400);
    assert_eq!(pragma(&c, "page_size"), size.to_string(), "{ctx}");
    assert!(count(&c, "PRAGMA page_count") > 2, "{ctx}: pages");
    if b.caps().wal {
        assert_eq!(pragma(&c, "journal_mode=WAL").to_uppercase(), "WAL");
        ok(
            c.execute("UPDATE kv SET n = n * 2 WHERE id % 2 = 0", []),
            &ctx,
        );
        m.update(|id| id % 2 == 0, |n| n * 2.0);
        ok(c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)"), &ctx);
        assert_eq!(pragma(&c, "journal_mode=DELETE").to_uppercase(), "DELETE");
    }
    assert_kv(&c, "main", &m, &ctx);
    assert_integrity(&c, "main", &ctx);
    // Change the page size of an existing database with VACUUM.
    let other = if size == 4096 { 8192 } else { 4096 };
    if b.caps().allows_page_size(other) && b.caps().page_size_change {
        ok(
            c.execute_batch(&format!("PRAGMA page_size={other}; VACUUM;")),
            &ctx,
        );
        assert_eq!(
            pragma(&c, "page_size"),
            other.to_string(),
            "{ctx}: after VACUUM"
        );
        assert_kv(&c, "main", &m, &format!("{ctx}, after VACUUM"));
        assert_integrity(&c, "main", &ctx);
    }
    drop(c);
    if b.caps().persistent {
        let c = ok(b.open("p.db"), &ctx);
        assert_kv(&c, "main", &m, &format!("{ctx}, reopened"));
        assert_integrity(&c, "main", &ctx);
    }
}

/// `page_size=512`, where the backend allows it.
pub fn page_size_512(f: Factory) {
    page_size(f, 512)
}
/// `page_size=4096`.
pub fn page_size_4096(f: Factory) {
    page_size(f, 4096)
}
/// `page_size=65536`.
pub fn page_size_65536(f: Factory) {
    page_size(f, 65536)
}

fn auto_vacuum(f: Factory, mode: &str, value: i64) {
    let case = format!("auto_vacuum_{}", mode.to_lowercase());
    let b = f(&case);
    if !writable(&b, &case) {
        return;
    }
    let ctx = format!("{case} on {}", b.name());
    let c = ok(b.open("av.db"), &ctx);
    ok(c.execute_batch(&format!("PRAGMA auto_vacuum={mode}")), &ctx);
    ok(c.execute_batch(KV_SCHEMA), &ctx);
    assert_eq!(count(&c, "PRAGMA auto_vacuum"), value, "{ctx}");
    let mut m = KvModel::new();
    ok(c.execute_batch("BEGIN"), &ctx);
    ok(kv_insert(&c, "main", 1..400), &ctx);
    ok(c.execute_batch("COMMIT"), &ctx);
    m.insert(1..400);
    let pages_full = count(&c, "PRAGMA page_count");
    ok(c.execute("DELETE FROM kv WHERE id % 2 = 0", []), &ctx);
    m.delete(|id| id % 2 == 0);
    let free = count(&c, "PRAGMA freelist_count");
    let pages = count(&c, "PRAGMA page_count");
    match value {
        0 => assert!(free > 0 && pages == pages_full, "{ctx}: free {free}"),
        1 => assert!(
            free == 0 && pages < pages_full,
            "{ctx}: free {free}, {pages} pages"
        ),
        _ => {
            assert!(free > 0, "{ctx}: free {free}");
            // Frees a page per step: run it to completion.
            ok(drain(&c, "PRAGMA incremental_vacuum"), &ctx);
            assert_eq!(count(&c, "PRAGMA freelist_count"), 0, "{ctx}");
            assert!(count(&c, "PRAGMA page_count") < pages_full, "{ctx}");
        }
    }
    assert_kv(&c, "main", &m, &ctx);
    assert_integrity(&c, "main", &ctx);
}

/// `auto_vacuum=NONE`: deleted pages stay on the freelist.
pub fn auto_vacuum_none(f: Factory) {
    auto_vacuum(f, "NONE", 0)
}
/// `auto_vacuum=FULL`: the file shrinks at each commit.
pub fn auto_vacuum_full(f: Factory) {
    auto_vacuum(f, "FULL", 1)
}
/// `auto_vacuum=INCREMENTAL` and `PRAGMA incremental_vacuum`.
pub fn auto_vacuum_incremental(f: Factory) {
    auto_vacuum(f, "INCREMENTAL", 2)
}

fn filled(b: &Backend, file: &str, ctx: &str) -> (Connection, KvModel) {
    let c = ok(b.open(file), ctx);
    ok(c.execute_batch(KV_SCHEMA), ctx);
    ok(c.execute_batch("CREATE INDEX kv_n ON kv(n)"), ctx);
    let mut m = KvModel::new();
    ok(c.execute_batch("BEGIN"), ctx);
    ok(kv_insert(&c, "main", 1..300), ctx);
    ok(c.execute_batch("COMMIT"), ctx);
    m.insert(1..300);
    (c, m)
}

/// `VACUUM` in place after deleting half the rows.
pub fn vacuum_in_place(f: Factory) {
    let b = f("vacuum_in_place");
    if !writable(&b, "vacuum_in_place") {
        return;
    }
    let ctx = format!("vacuum_in_place on {}", b.name());
    let (c, mut m) = filled(&b, "v.db", &ctx);
    ok(c.execute("DELETE FROM kv WHERE id % 2 = 1", []), &ctx);
    m.delete(|id| id % 2 == 1);
    let before = count(&c, "PRAGMA page_count");
    ok(c.execute_batch("VACUUM"), &ctx);
    assert!(count(&c, "PRAGMA page_count") < before, "{ctx}: shrank");
    assert_eq!(count(&c, "PRAGMA freelist_count"), 0, "{ctx}");
    assert_kv(&c, "main", &m, &ctx);
    assert_integrity(&c, "main", &ctx);
    drop(c);
    if b.caps().persistent {
        let c = ok(b.open("v.db"), &ctx);
        assert_kv(&c, "main", &m, &format!("{ctx}, reopened"));
        assert_integrity(&c, "main", &ctx);
    }
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `VACUUM INTO` from the backend into SQLite's `memdb`, SQLite's `unix`,
/// and another instance of the backend.
pub fn vacuum_into_other_backends(f: Factory) {
    let b = f("vacuum_into_other");
    if !writable(&b, "vacuum_into_other_backends") {
        return;
    }
    let ctx = format!("vacuum_into_other_backends on {}", b.name());
    let (c, m) = filled(&b, "src.db", &ctx);
    let want = ok(dump(&c, "main"), &ctx);
    let memdb = Backend::sqlite_memdb();
    let unix = Backend::sqlite_unix();
    let twin = f("vacuum_into_other_twin");
    // Keep the memdb target alive across the VACUUM INTO with an open,
    // empty connection (memdb drops a database with its last connection).
    let keep = ok(memdb.open("into.db"), &ctx);
    for target in [&memdb, &unix, &twin] {
        let tctx = format!("{ctx} -> {}", target.name());
        ok(
            c.execute_batch(&format!("VACUUM INTO {}", sql_str(&target.uri("into.db")))),
            &tctx,
        );
        if !target.caps().persistent {
            continue;
        }
        let t = ok(target.open("into.db"), &tctx);
        assert_integrity(&t, "main", &tctx);
        assert_kv(&t, "main", &m, &tctx);
        assert_same_dump(&ok(dump(&t, "main"), &tctx), &want, &tctx);
    }
    drop(keep);
    assert_integrity(&c, "main", &ctx);
    assert_kv(&c, "main", &m, &ctx);
}

/// `VACUUM INTO` the backend from SQLite's `unix` and `memdb`.
pub fn vacuum_into_from_other_backends(f: Factory) {
    let b = f("vacuum_into_from");
    if !writable(&b, "vacuum_into_from_other_backends") {
        return;
    }
    let ctx = format!("vacuum_into_from_other_backends on {}", b.name());
    for (i, src) in [Backend::sqlite_unix(), Backend::sqlite_memdb()]
        .iter()
        .enumerate()
    {
        let sctx = format!("{ctx} <- {}", src.name());
        let (s, m) = filled(src, "src.db", &sctx);
        let file = format!("from-{i}.db");
        ok(
            s.execute_batch(&format!(
                "VACUUM INTO {}",
                sql_str(&b.copy_target_uri(&file))
            )),
            &sctx,
        );
        let t = ok(b.open(&file), &sctx);
        assert_integrity(&t, "main", &sctx);
        assert_kv(&t, "main", &m, &sctx);
        assert_same_dump(
            &ok(dump(&t, "main"), &sctx),
            &ok(dump(&s, "main"), &sctx),
            &sctx,
        );
    }
}

fn attach(f: Factory, commit: bool) {
    let case = if commit {
        "attach_cross_backend_commit"
    } else {
        "attach_cross_backend_rollback"
    };
    let b = f(case);
    if !writable(&b, case) {
        return;
    }
    let ctx = format!("{case} on {}", b.name());
    let twin = f(&format!("{case}_twin"));
    let unix = Backend::sqlite_unix();
    let memdb = Backend::sqlite_memdb();
    let c = ok(b.open("main.db"), &ctx);
    ok(c.execute_batch(KV_SCHEMA), &ctx);
    let schemas = ["main", "twin", "ux", "mem"];
    if twin.caps().reserve.is_some() {
        // ATTACH does not run the connection hook that gives a new database
        // the reserve: create it through its own connection first.
        let pre = ok(twin.open("att.db"), &ctx);
        ok(pre.execute_batch("PRAGMA user_version = 1"), &ctx);
    }
    for (alias, target) in [("twin", &twin), ("ux", &unix), ("mem", &memdb)] {
        ok(
            c.execute(
                &format!("ATTACH {} AS {alias}", sql_str(&target.uri("att.db"))),
                [],
            ),
            &ctx,
        );
        ok(
            c.execute_batch(&KV_SCHEMA.replace("TABLE kv", &format!("TABLE {alias}.kv"))),
            &ctx,
        );
    }
    let mut m = KvModel::new();
    ok(c.execute_batch("BEGIN"), &ctx);
    for s in schemas {
        ok(kv_insert(&c, s, 1..60), &ctx);
    }
    m.insert(1..60);
    ok(c.execute_batch("COMMIT"), &ctx);
    // A second transaction across all four, committed or rolled back.
    ok(c.execute_batch("BEGIN"), &ctx);
    for s in schemas {
        ok(kv_insert(&c, s, 60..90), &ctx);
        ok(
            c.execute(&format!("DELETE FROM {s}.kv WHERE id % 4 = 0"), []),
            &ctx,
        );
    }
    if commit {
        ok(c.execute_batch("COMMIT"), &ctx);
        m.insert(60..90);
        m.delete(|id| id % 4 == 0);
    } else {
        ok(c.execute_batch("ROLLBACK"), &ctx);
    }
    for s in schemas {
        assert_kv(&c, s, &m, &format!("{ctx}, {s}"));
        assert_integrity(&c, s, &format!("{ctx}, {s}"));
    }
    drop(c);
    // Each file on its own, reopened where it persists.
    for (target, file) in [(&b, "main.db"), (&twin, "att.db"), (&unix, "att.db")] {
        if target.caps().persistent {
            let t = ok(target.open(file), &ctx);
            assert_kv(
                &t,
                "main",
                &m,
                &format!("{ctx}, {} reopened", target.name()),
            );
            assert_integrity(&t, "main", &ctx);
        }
    }
}

/// A transaction across the backend, a second instance of it, SQLite's
/// `unix` and `memdb` (a super-journal commit), committed.
pub fn attach_cross_backend_commit(f: Factory) {
    attach(f, true)
}

/// The same, rolled back.
pub fn attach_cross_backend_rollback(f: Factory) {
    attach(f, false)
}

/// Nested savepoints, `ROLLBACK TO`, `RELEASE`, and a statement that fails
/// half way inside a transaction (statement sub-journal).
pub fn savepoints_and_statement_rollback(f: Factory) {
    let b = f("savepoints");
    if !writable(&b, "savepoints_and_statement_rollback") {
        return;
    }
    let ctx = format!("savepoints_and_statement_rollback on {}", b.name());
    let c = ok(b.open("sp.db"), &ctx);
    ok(c.execute_batch(KV_SCHEMA), &ctx);
    let mut m = KvModel::new();
    ok(kv_insert(&c, "main", 1..10), &ctx);
    m.insert(1..10);
    ok(c.execute_batch("BEGIN; SAVEPOINT a;"), &ctx);
    ok(kv_insert(&c, "main", 10..20), &ctx);
    m.insert(10..20);
    ok(
        c.execute_batch("SAVEPOINT b; DELETE FROM kv WHERE id < 5;"),
        &ctx,
    );
    ok(c.execute_batch("ROLLBACK TO b"), &ctx);
    ok(
        c.execute("UPDATE kv SET n = n + 10 WHERE id > 15", []),
        &ctx,
    );
    m.bump(|id| id > 15, 10.0);
    ok(
        c.execute_batch("RELEASE b; SAVEPOINT c; DELETE FROM kv;"),
        &ctx,
    );
    assert_eq!(count(&c, "SELECT count(*) FROM kv"), 0);
    ok(c.execute_batch("ROLLBACK TO c; RELEASE c;"), &ctx);
    // A multi-row statement that fails on its last row: its earlier rows go.
    let e = c
        .execute_batch(
            "INSERT INTO kv(id, k, v, n) SELECT id + 1000, k || '-copy', v, n FROM kv \
             UNION ALL SELECT 5000, 'key-000001', NULL, 0",
        )
        .unwrap_err();
    assert_eq!(
        e.sqlite_error_code(),
        Some(ErrorCode::ConstraintViolation),
        "{ctx}"
    );
    ok(c.execute_batch("RELEASE a; COMMIT;"), &ctx);
    assert_kv(&c, "main", &m, &ctx);
    assert_integrity(&c, "main", &ctx);
}

fn blob_bytes(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| ((j.wrapping_mul(131) ^ seed.wrapping_mul(7919)) % 253) as u8)
        .collect()
}

/// Blobs from 0 bytes to 3 MiB (overflow chains), updated larger and
/// smaller, deleted, read back whole.
pub fn large_blobs(f: Factory) {
    let b = f("large_blobs");
    if !writable(&b, "large_blobs") {
        return;
    }
    let ctx = format!("large_blobs on {}", b.name());
    let c = ok(b.open("lb.db"), &ctx);
    ok(
        c.execute_batch("CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB)"),
        &ctx,
    );
    let sizes = [0usize, 1, 4000, 5000, 100_000, 1 << 20, 3 << 20];
    let mut want: Vec<(i64, Vec<u8>)> = Vec::new();
    for (i, len) in sizes.iter().enumerate() {
        let v = blob_bytes(i, *len);
        ok(
            c.execute(
                "INSERT INTO blobs VALUES (?1, ?2)",
                rusqlite::params![i as i64, v],
            ),
            &ctx,
        );
        want.push((i as i64, v));
    }
    let grow = blob_bytes(99, 2 << 20);
    ok(
        c.execute("UPDATE blobs SET b = ?1 WHERE id = 2", [&grow]),
        &ctx,
    );
    want[2].1 = grow;
    let shrink = blob_bytes(98, 10);
    ok(
        c.execute("UPDATE blobs SET b = ?1 WHERE id = 5", [&shrink]),
        &ctx,
    );
    want[5].1 = shrink;
    ok(c.execute("DELETE FROM blobs WHERE id = 4", []), &ctx);
    want.retain(|(id, _)| *id != 4);
    let check = |c: &Connection, ctx: &str| {
        let mut s = ok(c.prepare("SELECT id, b FROM blobs ORDER BY id"), ctx);
        let got: Vec<(i64, Vec<u8>)> = ok(
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|it| it.collect()),
            ctx,
        );
        assert_eq!(got.len(), want.len(), "{ctx}");
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g == w,
                "{ctx}: blob {} differs ({} vs {} bytes)",
                w.0,
                g.1.len(),
                w.1.len()
            );
        }
        assert_integrity(c, "main", ctx);
    };
    check(&c, &ctx);
    drop(c);
    if b.caps().persistent {
        check(&ok(b.open("lb.db"), &ctx), &format!("{ctx}, reopened"));
    }
}

/// Incremental blob I/O (`sqlite3_blob_*`): chunked writes at aligned and
/// unaligned offsets, reads, `reopen`, and an out-of-range write refused.
pub fn incremental_blob_io(f: Factory) {
    let b = f("incremental_blob_io");
    if !writable(&b, "incremental_blob_io") {
        return;
    }
    let ctx = format!("incremental_blob_io on {}", b.name());
    let c = ok(b.open("ib.db"), &ctx);
    ok(
        c.execute_batch(
            "CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB); \
             INSERT INTO blobs VALUES (1, zeroblob(1000000)), (2, zeroblob(300000));",
        ),
        &ctx,
    );
    let mut one = vec![0u8; 1_000_000];
    let mut two = vec![0u8; 300_000];
    {
        let mut blob = ok(c.blob_open("main", "blobs", "b", 1, false), &ctx);
        let mut off = 0;
        let mut i = 0;
        while off < one.len() {
            let len = (65536 + i * 977).min(one.len() - off);
            let chunk = blob_bytes(i, len);
            ok(blob.write_at(&chunk, off), &ctx);
            one[off..off + len].copy_from_slice(&chunk);
            off += len + 13; // leave small gaps of zeros
            i += 1;
        }
        let e = blob.write_at(&[1, 2, 3], one.len() - 1);
        assert!(e.is_err(), "{ctx}: a write past the end must fail");
        ok(blob.reopen(2), &ctx);
        let chunk = blob_bytes(77, 4097);
        ok(blob.write_at(&chunk, 12345), &ctx);
        two[12345..12345 + 4097].copy_from_slice(&chunk);
        let mut back = vec![0u8; 4097];
        ok(blob.read_at_exact(&mut back, 12345), &ctx);
        assert_eq!(back, chunk, "{ctx}: read back through the blob handle");
        ok(blob.close(), &ctx);
    }
    let check = |c: &Connection, ctx: &str| {
        let got1: Vec<u8> = ok(
            c.query_row("SELECT b FROM blobs WHERE id = 1", [], |r| r.get(0)),
            ctx,
        );
        let got2: Vec<u8> = ok(
            c.query_row("SELECT b FROM blobs WHERE id = 2", [], |r| r.get(0)),
            ctx,
        );
        assert!(got1 == one, "{ctx}: blob 1 differs");
        assert!(got2 == two, "{ctx}: blob 2 differs");
        assert_integrity(c, "main", ctx);
    };
    check(&c, &ctx);
    drop(c);
    if b.caps().persistent {
        check(&ok(b.open("ib.db"), &ctx), &format!("{ctx}, reopened"));
    }
}

/// A sort much larger than the sorter's memory, and a temporary table and
/// index, with `temp_store=FILE` and a tiny cache, so the sorter and the
/// temp schema spill to temporary files of the backend.
pub fn large_sort_temp_store_file(f: Factory) {
    let b = f("large_sort");
    if !writable(&b, "large_sort_temp_store_file") {
        return;
    }
    let ctx = format!("large_sort_temp_store_file on {}", b.name());
    let c = ok(b.open("sort.db"), &ctx);
    const N: u64 = 40_000;
    ok(
        c.execute_batch(&format!(
            "PRAGMA temp_store=FILE; PRAGMA cache_size=16; \
             CREATE TEMP TABLE s(k TEXT, v INT); \
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {N}) \
             INSERT INTO temp.s SELECT printf('%08x', (i * 2654435761) % 4294967296) \
               || printf('%.80c', 'x'), i FROM c; \
             CREATE TABLE m(k TEXT, v INT); INSERT INTO m SELECT k, v FROM temp.s;"
        )),
        &ctx,
    );
    let mut keys: Vec<(String, i64)> = (1..=N)
        .map(|i| {
            (
                format!(
                    "{:08x}{}",
                    (i * 2_654_435_761) % 4_294_967_296,
                    "x".repeat(80)
                ),
                i as i64,
            )
        })
        .collect();
    keys.sort();
    let want: Vec<String> = keys
        .into_iter()
        .map(|(k, v)| {
            format!(
                "{}|{v}",
                crate::check::render(&rusqlite::types::Value::Text(k))
            )
        })
        .collect();
    for table in ["temp.s", "main.m"] {
        let got = ok(
            rows(&c, &format!("SELECT k, v FROM {table} ORDER BY k, v")),
            &ctx,
        );
        assert!(got == want, "{ctx}: sorted {table} differs");
    }
    ok(c.execute_batch("CREATE INDEX temp.s_k ON s(k)"), &ctx);
    let got = ok(
        rows(&c, "SELECT k, v FROM temp.s INDEXED BY s_k ORDER BY k"),
        &ctx,
    );
    assert!(got == want, "{ctx}: index order differs");
    assert_eq!(count(&c, "SELECT count(DISTINCT k) FROM temp.s"), N as i64);
    assert_integrity(&c, "temp", &ctx);
    assert_integrity(&c, "main", &ctx);
}

/// The backup API: backend to `memdb`, `unix` to backend, backend to a
/// second instance of it, a few pages per step.
pub fn backup_between_backends(f: Factory) {
    let b = f("backup");
    if !writable(&b, "backup_between_backends") {
        return;
    }
    let ctx = format!("backup_between_backends on {}", b.name());
    let (src, m) = filled(&b, "bk.db", &ctx);
    let want = ok(dump(&src, "main"), &ctx);
    let memdb = Backend::sqlite_memdb();
    let unix = Backend::sqlite_unix();
    let twin = f("backup_twin");
    let run = |from: &Connection, to: &mut Connection, ctx: &str| {
        let bk = ok(rusqlite::backup::Backup::new(from, to), ctx);
        ok(bk.run_to_completion(7, Duration::ZERO, None), ctx);
    };
    let mut to_mem = ok(memdb.open("bk.db"), &ctx);
    run(&src, &mut to_mem, &format!("{ctx} -> memdb"));
    assert_same_dump(
        &ok(dump(&to_mem, "main"), &ctx),
        &want,
        &format!("{ctx} -> memdb"),
    );
    assert_integrity(&to_mem, "main", &ctx);
    let mut to_twin = ok(twin.open("bk.db"), &ctx);
    run(&src, &mut to_twin, &format!("{ctx} -> twin"));
    assert_kv(&to_twin, "main", &m, &format!("{ctx} -> twin"));
    assert_integrity(&to_twin, "main", &ctx);
    if b.caps().reserve.is_some() {
        skip(
            &b,
            "backup_between_backends (unix -> backend)",
            "a page-for-page copy of a database without the reserve the format needs",
        );
        return;
    }
    let (from_unix, m2) = filled(&unix, "bk.db", &ctx);
    let mut dst = ok(b.open("restored.db"), &ctx);
    run(&from_unix, &mut dst, &format!("{ctx} <- unix"));
    assert_kv(&dst, "main", &m2, &format!("{ctx} <- unix"));
    assert_integrity(&dst, "main", &ctx);
    drop(dst);
    if b.caps().persistent {
        let dst = ok(b.open("restored.db"), &ctx);
        assert_same_dump(
            &ok(dump(&dst, "main"), &ctx),
            &ok(dump(&from_unix, "main"), &ctx),
            &format!("{ctx}, restored and reopened"),
        );
    }
}

fn multi(b: &Backend, case: &str) -> bool {
    if !writable(b, case) {
        return false;
    }
    if !b.caps().multi_connection {
        skip(b, case, "one connection per database");
        return false;
    }
    true
}

fn is_busy(e: &rusqlite::Error) -> bool {
    code(e) & 0xff == codes::SQLITE_BUSY
}

/// Two connections with `busy_timeout=0`: a second writer and a commit
/// blocked by a reader get `SQLITE_BUSY` at once and succeed when retried;
/// readers read beside a writer.
pub fn busy_timeout_zero(f: Factory) {
    let b = f("busy_zero");
    if !multi(&b, "busy_timeout_zero") {
        return;
    }
    let ctx = format!("busy_timeout_zero on {}", b.name());
    let a = ok(b.open("busy.db"), &ctx);
    let r = ok(b.open("busy.db"), &ctx);
    ok(a.execute_batch(KV_SCHEMA), &ctx);
    let mut m = KvModel::new();
    ok(kv_insert(&a, "main", 1..10), &ctx);
    m.insert(1..10);
    ok(a.execute_batch("BEGIN IMMEDIATE"), &ctx);
    ok(kv_insert(&a, "main", 10..20), &ctx);
    let e = kv_insert(&r, "main", 100..101).unwrap_err();
    assert!(is_busy(&e), "{ctx}: second writer: {e}");
    assert_eq!(
        count(&r, "SELECT count(*) FROM kv"),
        9,
        "{ctx}: reader beside a writer"
    );
    ok(a.execute_batch("COMMIT"), &ctx);
    m.insert(10..20);
    ok(kv_insert(&r, "main", 100..101), &ctx);
    m.insert(100..101);
    ok(r.execute_batch("BEGIN"), &ctx);
    assert_eq!(count(&r, "SELECT count(*) FROM kv"), 20);
    if b.caps().snapshot_reads {
        // A reader's open transaction does not block the commit; the
        // reader keeps its snapshot until it ends.
        ok(a.execute("DELETE FROM kv WHERE id = 1", []), &ctx);
        assert_eq!(count(&r, "SELECT count(*) FROM kv"), 20, "{ctx}: snapshot");
        ok(r.execute_batch("COMMIT"), &ctx);
        assert_eq!(
            count(&r, "SELECT count(*) FROM kv"),
            19,
            "{ctx}: new snapshot"
        );
    } else {
        // A reader's open transaction blocks a rollback-mode commit.
        let e = a.execute("DELETE FROM kv WHERE id = 1", []).unwrap_err();
        assert!(is_busy(&e), "{ctx}: commit under a reader: {e}");
        ok(r.execute_batch("COMMIT"), &ctx);
        ok(a.execute("DELETE FROM kv WHERE id = 1", []), &ctx);
    }
    m.delete(|id| id == 1);
    if b.caps().wal {
        assert_eq!(pragma(&a, "journal_mode=WAL").to_uppercase(), "WAL");
        ok(r.execute_batch("BEGIN"), &ctx);
        let before = count(&r, "SELECT count(*) FROM kv");
        ok(a.execute("DELETE FROM kv WHERE id = 2", []), &ctx); // writer beside a reader
        m.delete(|id| id == 2);
        assert_eq!(
            count(&r, "SELECT count(*) FROM kv"),
            before,
            "{ctx}: WAL snapshot"
        );
        ok(r.execute_batch("COMMIT"), &ctx);
        ok(a.execute_batch("BEGIN IMMEDIATE"), &ctx);
        let e = r.execute_batch("BEGIN IMMEDIATE").unwrap_err();
        assert!(is_busy(&e), "{ctx}: two WAL writers: {e}");
        ok(a.execute_batch("COMMIT"), &ctx);
    }
    assert_kv(&r, "main", &m, &ctx);
    assert_kv(&a, "main", &m, &ctx);
    assert_integrity(&a, "main", &ctx);
}

/// `busy_timeout > 0`: a blocked writer gives up with `SQLITE_BUSY` after
/// the timeout while the lock is held, and succeeds when the holder commits
/// during its wait (a busy handler proves it was waiting).
pub fn busy_timeout_waits(f: Factory) {
    let b = f("busy_waits");
    if !multi(&b, "busy_timeout_waits") {
        return;
    }
    let ctx = format!("busy_timeout_waits on {}", b.name());
    let b = Arc::new(b);
    let a = ok(b.open("busy.db"), &ctx);
    ok(a.execute_batch(KV_SCHEMA), &ctx);
    let mut m = KvModel::new();
    ok(a.execute_batch("BEGIN IMMEDIATE"), &ctx);
    ok(kv_insert(&a, "main", 1..5), &ctx);
    // 1. The timeout expires while the lock is held.
    {
        let w = ok(b.open("busy.db"), &ctx);
        ok(w.busy_timeout(Duration::from_millis(60)), &ctx);
        let t0 = Instant::now();
        let e = kv_insert(&w, "main", 100..101).unwrap_err();
        assert!(is_busy(&e), "{ctx}: {e}");
        assert!(
            t0.elapsed() >= Duration::from_millis(50),
            "{ctx}: gave up after {:?}",
            t0.elapsed()
        );
    }
    // 2. The holder commits while the other waits in its busy handler. The
    // waiter takes and drops SHARED as it retries, so the holder's commit
    // (which needs EXCLUSIVE) waits too.
    ok(a.busy_timeout(Duration::from_secs(20)), &ctx);
    let (tx, rx) = mpsc::channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let waiter = {
        let b = b.clone();
        let calls = calls.clone();
        std::thread::spawn(move || {
            let mut w = b.open("busy.db").expect("open waiter");
            let tx = std::sync::Mutex::new(tx);
            let calls2 = calls.clone();
            w.busy_handler(Some(move |n: i32| {
                calls2.fetch_add(1, Ordering::SeqCst);
                if n == 0 {
                    let _ = tx.lock().map(|t| t.send(()));
                }
                std::thread::yield_now();
                n < 50_000_000
            }))
            .expect("busy handler");
            kv_insert(&w, "main", 200..201)
        })
    };
    rx.recv().expect("the waiter reports it is blocked");
    ok(a.execute_batch("COMMIT"), &ctx);
    m.insert(1..5);
    let r = waiter.join().expect("waiter thread");
    ok(r, &format!("{ctx}: waiter after the commit"));
    m.insert(200..201);
    assert!(calls.load(Ordering::SeqCst) >= 1);
    // 3. busy_timeout with a holder that commits once the waiter started.
    ok(a.execute_batch("BEGIN IMMEDIATE"), &ctx);
    ok(kv_insert(&a, "main", 5..8), &ctx);
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let b = b.clone();
        std::thread::spawn(move || {
            let w = b.open("busy.db").expect("open waiter");
            w.busy_timeout(Duration::from_secs(20)).expect("timeout");
            tx.send(()).expect("signal");
            kv_insert(&w, "main", 300..301)
        })
    };
    rx.recv().expect("waiter started");
    ok(a.execute_batch("COMMIT"), &ctx);
    m.insert(5..8);
    ok(waiter.join().expect("waiter thread"), &ctx);
    m.insert(300..301);
    assert_kv(&a, "main", &m, &ctx);
    assert_integrity(&a, "main", &ctx);
}

/// Rollback mode: a long reader makes the writer's commit wait; with a busy
/// timeout the commit completes once the reader ends.
pub fn busy_reader_blocks_commit(f: Factory) {
    let b = f("busy_reader");
    if !multi(&b, "busy_reader_blocks_commit") {
        return;
    }
    let ctx = format!("busy_reader_blocks_commit on {}", b.name());
    let b = Arc::new(b);
    let a = ok(b.open("br.db"), &ctx);
    ok(a.execute_batch("PRAGMA journal_mode=DELETE"), &ctx);
    ok(a.execute_batch(KV_SCHEMA), &ctx);
    let mut m = KvModel::new();
    ok(kv_insert(&a, "main", 1..50), &ctx);
    m.insert(1..50);
    let r = ok(b.open("br.db"), &ctx);
    ok(r.execute_batch("BEGIN"), &ctx);
    assert_eq!(count(&r, "SELECT count(*) FROM kv"), 49);
    let (tx, rx) = mpsc::channel();
    let writer = {
        let b = b.clone();
        std::thread::spawn(move || {
            let w = b.open("br.db").expect("open writer");
            w.busy_timeout(Duration::from_secs(20)).expect("timeout");
            w.execute_batch("BEGIN").expect("begin");
            w.execute("UPDATE kv SET n = n + 1", []).expect("update");
            tx.send(()).expect("signal");
            w.execute_batch("COMMIT")
        })
    };
    rx.recv().expect("writer updated");
    // The reader still sees the old data while the writer waits to commit.
    assert_eq!(count(&r, "SELECT count(*) FROM kv WHERE n = id * 0.25"), 49);
    ok(r.execute_batch("COMMIT"), &ctx);
    ok(writer.join().expect("writer thread"), &ctx);
    m.bump(|_| true, 1.0);
    assert_kv(&r, "main", &m, &ctx);
    assert_integrity(&r, "main", &ctx);
}

/// WAL across connections: a reader's snapshot holds while a writer
/// commits, checkpoints, and a WAL of more than 4,000 frames (a multi-region
/// WAL index) read back by a second connection.
pub fn wal_snapshots_and_many_frames(f: Factory) {
    let b = f("wal_frames");
    if !multi(&b, "wal_snapshots_and_many_frames") {
        return;
    }
    if !b.caps().wal {
        skip(&b, "wal_snapshots_and_many_frames", "no shared memory");
        return;
    }
    let ctx = format!("wal_snapshots_and_many_frames on {}", b.name());
    let a = ok(b.open("w.db"), &ctx);
    let page = if b.caps().allows_page_size(512) {
        512
    } else {
        4096
    };
    ok(
        a.execute_batch(&format!(
            "PRAGMA page_size={page}; PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; {KV_SCHEMA}"
        )),
        &ctx,
    );
    let mut m = KvModel::new();
    ok(kv_insert(&a, "main", 1..100), &ctx);
    m.insert(1..100);
    let r = ok(b.open("w.db"), &ctx);
    ok(r.execute_batch("BEGIN"), &ctx);
    assert_eq!(count(&r, "SELECT count(*) FROM kv"), 99);
    ok(a.execute_batch("BEGIN"), &ctx);
    ok(kv_insert(&a, "main", 100..1100), &ctx);
    ok(a.execute_batch("COMMIT"), &ctx);
    m.insert(100..1100);
    // Many small commits: every commit appends frames.
    for i in 0..(if page == 512 { 1200 } else { 300 }) {
        ok(
            a.execute(
                "UPDATE kv SET n = n + 1 WHERE id = ?1",
                [1 + (i * 7) % 1099],
            ),
            &ctx,
        );
        m.bump(|id| id == 1 + (i * 7) % 1099, 1.0);
    }
    assert_eq!(
        count(&r, "SELECT count(*) FROM kv"),
        99,
        "{ctx}: snapshot held"
    );
    let frames: i64 = ok(
        a.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1)),
        &ctx,
    );
    if page == 512 {
        // More than 4,096 frames: the WAL index needs a second region.
        assert!(frames > 4096, "{ctx}: only {frames} frames in the WAL");
    }
    ok(r.execute_batch("COMMIT"), &ctx);
    let fresh = ok(b.open("w.db"), &ctx);
    assert_kv(&fresh, "main", &m, &format!("{ctx}, new connection"));
    assert_kv(&r, "main", &m, &format!("{ctx}, old reader"));
    drop(fresh);
    drop(r);
    ok(a.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)"), &ctx);
    assert_kv(&a, "main", &m, &ctx);
    assert_integrity(&a, "main", &ctx);
}

/// Differential testing: seeded random workloads give the same results and
/// dumps on the backend as on SQLite's `unix` and `memdb`.
pub fn differential_random_workload(f: Factory) {
    let b = f("differential");
    if !writable(&b, "differential_random_workload") {
        return;
    }
    let plan = crate::differential::Plan::ci();
    let report = crate::differential::run(&b, &plan);
    println!(
        "vfs-conformance: differential on {}: {} seeds, {} statements, {} compared results",
        b.name(),
        report.seeds,
        report.statements,
        report.results
    );
}

/// Bank-transfer stress in rollback-journal mode (see [`crate::stress`]).
pub fn concurrency_stress_rollback(f: Factory) {
    let b = f("stress_rollback");
    if !multi(&b, "concurrency_stress_rollback") {
        return;
    }
    let r = crate::stress::bank(&b, &crate::stress::Plan::ci(false));
    println!("vfs-conformance: {r}");
}

/// Bank-transfer stress in WAL mode.
pub fn concurrency_stress_wal(f: Factory) {
    let b = f("stress_wal");
    if !multi(&b, "concurrency_stress_wal") {
        return;
    }
    if !b.caps().wal {
        skip(&b, "concurrency_stress_wal", "no shared memory");
        return;
    }
    let r = crate::stress::bank(&b, &crate::stress::Plan::ci(true));
    println!("vfs-conformance: {r}");
}

/// Read-only use: a database image (installed through the backend's
/// installer, or written through SQLite) opened read-only answers queries,
/// passes the integrity check, refuses writes with `SQLITE_READONLY`, and
/// can be attached, backed up and `VACUUM INTO`-copied elsewhere.
pub fn read_only_queries(f: Factory) {
    let b = f("read_only");
    let ctx = format!("read_only_queries on {}", b.name());
    let mut m = KvModel::new();
    m.insert(1..300);
    let image = {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("ro.db");
        {
            let c = ok(Connection::open(&path), &ctx);
            ok(c.execute_batch(KV_SCHEMA), &ctx);
            ok(c.execute_batch("CREATE INDEX kv_n ON kv(n); BEGIN;"), &ctx);
            ok(kv_insert(&c, "main", 1..300), &ctx);
            ok(c.execute_batch("COMMIT"), &ctx);
        }
        std::fs::read(&path).expect("image bytes")
    };
    b.install("ro.db", &image)
        .unwrap_or_else(|e| panic!("{ctx}: install: {e}"));
    let c = ok(b.open_read_only("ro.db"), &ctx);
    assert_kv(&c, "main", &m, &ctx);
    assert_integrity(&c, "main", &ctx);
    assert_eq!(
        count(&c, "SELECT count(*) FROM kv INDEXED BY kv_n WHERE n > 10"),
        m.expected().len() as i64 - 40,
        "{ctx}"
    );
    let e = c.execute("DELETE FROM kv", []).unwrap_err();
    assert_eq!(code(&e) & 0xff, codes::SQLITE_READONLY, "{ctx}: {e}");
    // Copies elsewhere.
    let memdb = Backend::sqlite_memdb();
    let keep = ok(memdb.open("copy.db"), &ctx);
    ok(
        c.execute_batch(&format!("VACUUM INTO {}", sql_str(&memdb.uri("copy.db")))),
        &ctx,
    );
    assert_kv(&keep, "main", &m, &format!("{ctx}, VACUUM INTO memdb"));
    let mut dst = ok(Connection::open_in_memory(), &ctx);
    {
        let bk = ok(rusqlite::backup::Backup::new(&c, &mut dst), &ctx);
        ok(bk.run_to_completion(5, Duration::ZERO, None), &ctx);
    }
    assert_kv(&dst, "main", &m, &format!("{ctx}, backup"));
    ok(
        dst.execute(
            &format!(
                "ATTACH {} AS ro",
                sql_str(&format!("{}&mode=ro", b.uri("ro.db")))
            ),
            [],
        ),
        &ctx,
    );
    assert_kv(&dst, "ro", &m, &format!("{ctx}, attached"));
    assert_integrity(&dst, "ro", &ctx);
}

/// Data written, connections closed, the database reopened: everything is
/// there (for persistent backends), including after a WAL-mode session
/// closed without checkpointing by hand.
pub fn reopen_persists(f: Factory) {
    let b = f("reopen");
    if !writable(&b, "reopen_persists") {
        return;
    }
    if !b.caps().persistent {
        skip(
            &b,
            "reopen_persists",
            "databases do not outlive their connections",
        );
        return;
    }
    let ctx = format!("reopen_persists on {}", b.name());
    let mut m = KvModel::new();
    {
        let c = ok(b.open("r.db"), &ctx);
        ok(c.execute_batch(KV_SCHEMA), &ctx);
        ok(kv_insert(&c, "main", 1..100), &ctx);
        m.insert(1..100);
    }
    {
        let c = ok(b.open("r.db"), &ctx);
        assert_kv(&c, "main", &m, &ctx);
        if b.caps().wal {
            assert_eq!(pragma(&c, "journal_mode=WAL").to_uppercase(), "WAL");
        }
        ok(kv_insert(&c, "main", 100..200), &ctx);
        m.insert(100..200);
    }
    let c = ok(b.open("r.db"), &ctx);
    assert_kv(&c, "main", &m, &ctx);
    assert_integrity(&c, "main", &ctx);
}

/// File names are bytes. A database whose name is not UTF-8 (`%ff%fe` in
/// its URI, which SQLite's own `unix` VFS opens like any other) is created,
/// journaled, shared by a second connection, run in WAL mode and reopened;
/// on disk its files carry exactly those bytes (no lossy twin such as
/// `\u{fffd}\u{fffd}-0.db`).
pub fn file_names_beyond_utf8(f: Factory) {
    let b = f("names");
    if !writable(&b, "file_names_beyond_utf8") {
        return;
    }
    if !b.caps().byte_names {
        // A text namespace refuses the name; it never converts it lossily
        // (which could make two names one file).
        let ctx = format!("file_names_beyond_utf8 on {}", b.name());
        let refused = b
            .open("%ff%fe-0.db")
            .and_then(|c| c.execute_batch(KV_SCHEMA).map(|_| c));
        match refused {
            Err(rusqlite::Error::SqliteFailure(e, _)) => {
                assert_eq!(e.extended_code & 0xff, codes::SQLITE_CANTOPEN, "{ctx}: {e}")
            }
            Err(e) => panic!("{ctx}: expected SQLITE_CANTOPEN, got {e}"),
            Ok(_) => panic!("{ctx}: a name that is not UTF-8 opened on a text namespace"),
        }
        return;
    }
    let modes: &[&str] = if b.caps().wal {
        &["DELETE", "WAL"]
    } else {
        &["DELETE"]
    };
    for (i, mode) in modes.iter().enumerate() {
        let ctx = format!("file_names_beyond_utf8 ({mode}) on {}", b.name());
        let file = format!("%ff%fe-{i}.db");
        let mut m = KvModel::new();
        {
            let c = ok(b.open(&file), &ctx);
            assert_eq!(
                pragma(&c, &format!("journal_mode={mode}")),
                mode.to_lowercase()
            );
            ok(c.execute_batch(KV_SCHEMA), &ctx);
            ok(kv_insert(&c, "main", 1..50), &ctx);
            m.insert(1..50);
            if b.caps().multi_connection {
                // The same bytes name the same database, its locks and (in
                // WAL mode) its shared memory.
                let other = ok(b.open(&file), &ctx);
                assert_kv(&other, "main", &m, &ctx);
                ok(kv_insert(&other, "main", 50..60), &ctx);
                m.insert(50..60);
                assert_kv(&c, "main", &m, &ctx);
            }
        }
        if !b.caps().persistent {
            continue;
        }
        let c = ok(b.open(&file), &ctx);
        assert_kv(&c, "main", &m, &ctx);
        assert_integrity(&c, "main", &ctx);
        drop(c);
        #[cfg(unix)]
        if let Some(dir) = b.disk_dir() {
            use std::os::unix::ffi::OsStrExt;
            let mut name = b"\xff\xfe".to_vec();
            name.extend_from_slice(format!("-{i}.db").as_bytes());
            let exact = dir.join(std::ffi::OsStr::from_bytes(&name));
            assert!(exact.exists(), "{ctx}: {exact:?} is not on disk");
            let lossy = dir.join(format!("\u{fffd}\u{fffd}-{i}.db"));
            assert!(!lossy.exists(), "{ctx}: a lossy name {lossy:?} was created");
        }
    }
}

/// The long differential run ([`crate::differential::Plan::long`]):
/// 40 seeds × 2,000 statements in four journal modes.
pub fn long_differential_random_workload(f: Factory) {
    let b = f("differential_long");
    if !writable(&b, "long_differential_random_workload") {
        return;
    }
    let report = crate::differential::run(&b, &crate::differential::Plan::long());
    println!(
        "vfs-conformance: long differential on {}: {} workloads, {} statements, {} compared results",
        b.name(),
        report.seeds,
        report.statements,
        report.results
    );
}

/// The long stress runs ([`crate::stress::Plan::long`]): 8 writers × 5,000
/// transfers and 4 readers, in rollback and (where supported) WAL mode.
pub fn long_concurrency_stress(f: Factory) {
    for wal in [false, true] {
        let b = f(if wal {
            "stress_long_wal"
        } else {
            "stress_long"
        });
        if !multi(&b, "long_concurrency_stress") || (wal && !b.caps().wal) {
            continue;
        }
        let r = crate::stress::bank(&b, &crate::stress::Plan::long(wal));
        println!("vfs-conformance: long {r}");
    }
}
