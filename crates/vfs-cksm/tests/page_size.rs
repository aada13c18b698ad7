//! Changing the page size of an existing checksummed database, as SQLite
//! does it: a backup into it from a database of another page size, or
//! `VACUUM` after `PRAGMA page_size`. SQLite's pager writes the new pages
//! in pieces of the old size (and a rollback writes the old pages back the
//! same way); cksm must end with every page of the new layout checksummed,
//! or, after a failure, with the old database intact.

mod common;

use std::path::Path;

use common::*;
use rusqlite::Connection;
use vfs_cksm::Cksm;
use vfs_core::{FileKind, Native, Op};
use vfs_fault::{Failure, Fault, Rule};

fn populate(conn: &Connection, page_size: usize, rows: i64, width: i64) {
    conn.execute_batch(&format!(
        "PRAGMA page_size = {page_size};
         CREATE TABLE IF NOT EXISTS t(a INTEGER PRIMARY KEY, b BLOB);
         CREATE INDEX IF NOT EXISTS t_b ON t(b);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
         INSERT INTO t(b) SELECT randomblob({width}) FROM n;"
    ))
    .unwrap();
}

fn digest(conn: &Connection) -> (i64, i64, String) {
    conn.query_row(
        "SELECT count(*), sum(length(b)), group_concat(hex(substr(b, 1, 4)), '') FROM t",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

fn file_page_size(path: &Path) -> usize {
    page_size(&std::fs::read(path).unwrap())
}

/// Backups between every pair of page sizes into an existing checksummed
/// database, with a page cache small enough that the new pages spill to
/// the file in the middle of the transaction.
#[test]
fn backup_into_a_database_of_another_page_size() {
    let env = Env::new("page-size-backup", Cksm::new(Native::new().unwrap()));
    for (from, to) in [
        (512, 1024),
        (1024, 512),
        (1024, 4096),
        (4096, 1024),
        (512, 65536),
    ] {
        let dst_path = env.path(&format!("dst-{from}-{to}.db"));
        let src_path = env.path(&format!("src-{from}-{to}.db"));
        let dst = env.open(&dst_path);
        populate(&dst, from, 300, 200);
        drop(dst);
        assert_eq!(file_page_size(&dst_path), from);
        let src = env.open(&src_path);
        populate(&src, to, 500, 300);
        let want = digest(&src);

        let mut dst = env.open(&dst_path);
        dst.execute_batch("PRAGMA cache_size = 10").unwrap();
        {
            let backup = rusqlite::backup::Backup::new(&src, &mut dst).unwrap();
            if let Err(e) = backup.step(-1) {
                panic!("{from} -> {to}: {e}: {:?}", vfs_core::last_error());
            }
        }
        assert_eq!(digest(&dst), want, "{from} -> {to}");
        assert_eq!(integrity(&dst), "ok");
        drop(dst);
        assert_eq!(file_page_size(&dst_path), to, "{from} -> {to}");
        assert_reference_trailers(&dst_path);
        let again = env.open(&dst_path);
        assert_eq!(digest(&again), want);
    }
}

/// The same backups failing part-way (the nth write to the destination
/// fails): the destination keeps its old pages, old page size and valid
/// checksums, and a later backup succeeds.
#[test]
fn failed_backup_leaves_the_old_database() {
    let fault = Fault::new(Native::new().unwrap());
    let ctl = fault.controller();
    let env = Env::new("page-size-backup-fails", Cksm::new(fault));
    for (from, to) in [(512, 1024), (1024, 512), (1024, 4096), (4096, 1024)] {
        for nth in [1, 2, 5, 17, 40] {
            let dst_path = env.path(&format!("dst-{from}-{to}-{nth}.db"));
            let src_path = env.path(&format!("src-{from}-{to}-{nth}.db"));
            let dst = env.open(&dst_path);
            populate(&dst, from, 300, 200);
            let before = digest(&dst);
            drop(dst);
            let src = env.open(&src_path);
            populate(&src, to, 500, 300);
            let want = digest(&src);

            let mut dst = env.open(&dst_path);
            dst.execute_batch("PRAGMA cache_size = 10").unwrap();
            let rule = ctl.add(
                Rule::fail(Op::Write, Failure::Io)
                    .file_kind(FileKind::MainDb)
                    .path_contains(format!("dst-{from}-{to}-{nth}.db"))
                    .nth(nth),
            );
            let result = {
                let backup = rusqlite::backup::Backup::new(&src, &mut dst).unwrap();
                backup.step(-1)
            };
            let fired = ctl.fired(rule) > 0;
            ctl.remove(rule);
            assert!(
                fired,
                "{from} -> {to}, write {nth}: the failure was injected"
            );
            assert!(result.is_err(), "{from} -> {to}, write {nth}: {result:?}");
            assert_eq!(digest(&dst), before, "{from} -> {to}, write {nth}");
            assert_eq!(integrity(&dst), "ok");
            drop(dst);
            assert_eq!(file_page_size(&dst_path), from);
            assert_reference_trailers(&dst_path);

            let mut dst = env.open(&dst_path);
            {
                let backup = rusqlite::backup::Backup::new(&src, &mut dst).unwrap();
                backup.step(-1).unwrap();
            }
            assert_eq!(digest(&dst), want);
            drop(dst);
            assert_eq!(file_page_size(&dst_path), to);
            assert_reference_trailers(&dst_path);
        }
    }
}

/// Turning checksums on for a database larger than the page cache (what
/// `vfs_cksm::enable` does: request the reserve, `VACUUM`): VACUUM's pages
/// reach the file before page 1, whose header brings the reserve, and must
/// be checksummed all the same.
#[test]
fn enabling_checksums_with_a_small_cache() {
    let env = Env::new("enable-small-cache", Cksm::new(Native::new().unwrap()));
    for size in [1024, 4096] {
        let path = env.path(&format!("plain-{size}.db"));
        let plain = Connection::open(&path).unwrap();
        populate(&plain, size, 400, 300);
        let want = digest(&plain);
        drop(plain);
        let conn = env.open(&path);
        assert_eq!(text(&conn, "PRAGMA checksum_format"), "none");
        conn.execute_batch("PRAGMA cache_size = 10").unwrap();
        let mut n = 8;
        conn.file_control(Some("main"), rusqlite::FileControl::ReserveBytes(&mut n))
            .unwrap();
        conn.execute_batch("VACUUM").unwrap();
        assert_eq!(text(&conn, "PRAGMA checksum_format"), "cksumvfs");
        assert_eq!(digest(&conn), want);
        assert_eq!(integrity(&conn), "ok");
        drop(conn);
        assert_reference_trailers(&path);
    }
}

/// Power cuts during a backup that changes the page size (both ways, with
/// pages spilling mid-transaction), at every `stride`th durability point
/// from the first: the database reopens through cksm with either its old
/// or its new contents, in the matching layout, every page checksummed,
/// integrity ok. Returns the number of points tried.
fn power_cuts_during_page_size_changes(stride: u64) -> u64 {
    let mut tried = 0;
    for (from, to) in [(512, 1024), (4096, 1024)] {
        let fault = Fault::new(Native::new().unwrap());
        let ctl = fault.controller();
        let mut env = Env::new(
            &format!("page-size-cut-{from}-{to}-{stride}"),
            Cksm::new(fault),
        );
        // The fault layer models durability; real syncs would only cost time.
        if let Ok(ram) = tempfile::tempdir_in("/dev/shm") {
            env.dir = ram;
        }
        let src_path = env.path("src.db");
        let src = env.open(&src_path);
        populate(&src, to, 120, 300);
        let after = digest(&src);
        drop(src);
        ctl.persist_all().unwrap();
        let mut point = 1;
        loop {
            // Files opened before a cut stay dead: a fresh source each time.
            let src = env.open(&src_path);
            let dst_path = env.path(&format!("dst-{point}.db"));
            let dst = env.open(&dst_path);
            populate(&dst, from, 100, 200);
            let before = digest(&dst);
            drop(dst);
            ctl.persist_all().unwrap();

            let mut dst = env.open(&dst_path);
            dst.execute_batch("PRAGMA cache_size = 10; PRAGMA synchronous = FULL")
                .unwrap();
            let cut = ctl.cut_power_at(point);
            let done = {
                let backup = rusqlite::backup::Backup::new(&src, &mut dst).unwrap();
                backup.step(-1).is_ok()
            };
            let fired = ctl.fired(cut) > 0;
            ctl.remove(cut);
            drop((src, dst));
            ctl.restart().unwrap();
            tried += 1;
            let dst = env.open(&dst_path);
            let got = digest(&dst);
            let ctx = format!("{from} -> {to}, cut at durability point {point}");
            assert_eq!(integrity(&dst), "ok", "{ctx}");
            drop(dst);
            let size = file_page_size(&dst_path);
            if got == after {
                assert_eq!(size, to, "{ctx}");
            } else {
                assert_eq!(got, before, "{ctx}: neither the old nor the new contents");
                assert_eq!(size, from, "{ctx}");
            }
            assert_reference_trailers(&dst_path);
            if !fired {
                assert!(done, "{ctx}: the backup failed without a cut");
                assert!(point > 3, "the backup has durability points");
                break;
            }
            point += stride;
        }
    }
    tried
}

#[test]
fn power_cuts_during_a_page_size_change() {
    let tried = power_cuts_during_page_size_changes(5);
    assert!(tried > 10, "{tried} points");
}

/// Every durability point (minutes in a debug build).
#[test]
#[ignore]
fn long_power_cut_at_every_point_of_a_page_size_change() {
    let tried = power_cuts_during_page_size_changes(1);
    println!("{tried} power cuts, all recovered");
}
