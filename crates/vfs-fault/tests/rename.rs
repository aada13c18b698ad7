//! `Fault::rename` and `Fault::sync_dir` in the power-cut model: a rename
//! is durable only after a directory sync, and a cut before it brings back
//! both entries as the last directory sync left them.

use vfs_core::{File, FileKind, Op, OpenAccess, OpenName, OpenOptions, SyncFlags, Vfs};
use vfs_fault::{Failure, Fault, MemDisk, OpSet, Rule};

/// SQLITE_SYNC_FULL.
const FULL: i32 = 3;

fn write_file(fault: &Fault<MemDisk>, path: &str, bytes: &[u8], sync: bool) {
    let mut f = fault
        .open(
            &OpenName::new(path, FileKind::MainDb),
            OpenOptions::new(FileKind::MainDb, OpenAccess::Create),
        )
        .unwrap();
    f.truncate(0).unwrap();
    f.write_at(bytes, 0).unwrap();
    if sync {
        f.sync(SyncFlags(FULL)).unwrap();
    }
}

fn setup() -> (Fault<MemDisk>, MemDisk) {
    let disk = MemDisk::new();
    let fault = Fault::new(disk.clone());
    write_file(&fault, "/d/db", b"old", true);
    fault.sync_dir("/d").unwrap();
    write_file(&fault, "/d/db.tmp", b"new", true);
    (fault, disk)
}

#[test]
fn a_rename_without_a_directory_sync_is_undone_by_a_cut() {
    let (fault, disk) = setup();
    let ctl = fault.controller();
    fault.rename("/d/db.tmp", "/d/db").unwrap();
    assert_eq!(disk.contents("/d/db").as_deref(), Some(&b"new"[..]));
    assert_eq!(disk.contents("/d/db.tmp"), None);
    assert_eq!(ctl.unsynced_paths(), ["/d/db", "/d/db.tmp"]);

    ctl.cut_power_now();
    ctl.restart().unwrap();
    assert_eq!(disk.contents("/d/db").as_deref(), Some(&b"old"[..]));
    // The temporary file's own sync made its data and entry durable.
    assert_eq!(disk.contents("/d/db.tmp").as_deref(), Some(&b"new"[..]));
}

#[test]
fn a_directory_sync_makes_the_rename_durable() {
    let (fault, disk) = setup();
    let ctl = fault.controller();
    fault.rename("/d/db.tmp", "/d/db").unwrap();
    fault.sync_dir("/d").unwrap();
    assert!(ctl.unsynced_paths().is_empty());
    ctl.cut_power_now();
    ctl.restart().unwrap();
    assert_eq!(disk.contents("/d/db").as_deref(), Some(&b"new"[..]));
    assert_eq!(disk.contents("/d/db.tmp"), None);
    assert_eq!(disk.paths(), ["/d/db"]);
}

#[test]
fn unsynced_data_moves_with_the_file_and_is_lost_at_a_cut() {
    let disk = MemDisk::new();
    let fault = Fault::new(disk.clone());
    let ctl = fault.controller();
    write_file(&fault, "/d/a", b"synced", true);
    fault.sync_dir("/d").unwrap();
    // Rewritten without a sync, then renamed durably: the new name holds
    // the synced bytes after a cut.
    write_file(&fault, "/d/a", b"unsynced!", false);
    fault.rename("/d/a", "/d/b").unwrap();
    fault.sync_dir("/d").unwrap();
    ctl.cut_power_now();
    ctl.restart().unwrap();
    assert_eq!(disk.contents("/d/b").as_deref(), Some(&b"synced"[..]));
    assert_eq!(disk.contents("/d/a"), None);
}

#[test]
fn a_never_synced_file_renamed_without_directory_sync_vanishes() {
    let disk = MemDisk::new();
    let fault = Fault::new(disk.clone());
    let ctl = fault.controller();
    write_file(&fault, "/d/a", b"x", false);
    fault.rename("/d/a", "/d/b").unwrap();
    ctl.cut_power_now();
    ctl.restart().unwrap();
    assert!(disk.paths().is_empty(), "{:?}", disk.paths());
}

#[test]
fn directory_syncs_are_per_directory() {
    let disk = MemDisk::new();
    let fault = Fault::new(disk.clone());
    let ctl = fault.controller();
    write_file(&fault, "/d/a", b"x", true);
    fault.rename("/d/a", "/e/a").unwrap();
    fault.sync_dir("/e").unwrap();
    // `/d`'s entry was not synced: the file is back there too (both
    // entries durable, as after a cut between two directory syncs).
    ctl.cut_power_now();
    ctl.restart().unwrap();
    assert_eq!(disk.contents("/e/a").as_deref(), Some(&b"x"[..]));
    assert_eq!(disk.contents("/d/a").as_deref(), Some(&b"x"[..]));
}

#[test]
fn renames_and_directory_syncs_are_counted_and_cut() {
    let (fault, disk) = setup();
    let ctl = fault.controller();
    ctl.reset_counts();
    fault.rename("/d/db.tmp", "/d/db").unwrap();
    fault.sync_dir("/d").unwrap();
    assert_eq!(ctl.op_count(Op::Delete), 1);
    assert_eq!(ctl.op_count(Op::Sync), 1);
    assert_eq!(ctl.count(OpSet::DURABILITY), 2);

    // A cut right before the directory sync: the rename did not happen.
    let (fault, disk2) = setup();
    let ctl = fault.controller();
    ctl.cut_power_at(2);
    fault.rename("/d/db.tmp", "/d/db").unwrap();
    assert!(fault.sync_dir("/d").is_err());
    assert!(fault.rename("/d/db", "/d/x").is_err(), "the power is off");
    ctl.restart().unwrap();
    assert_eq!(disk2.contents("/d/db").as_deref(), Some(&b"old"[..]));

    // Rules on deletes see renames.
    let id = fault.controller().add(Rule::fail(Op::Delete, Failure::Io));
    assert!(fault.rename("/d/db.tmp", "/d/db").is_err());
    assert_eq!(fault.controller().fired(id), 1);
    drop(disk);
}
