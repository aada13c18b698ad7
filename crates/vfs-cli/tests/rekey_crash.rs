//! The crash sweep of `rekey`: the same code the command runs, over the
//! fault layer's power-cut model (`vfs_fault::Fault` over its in-memory
//! disk, with renames and directory syncs in the model). For every
//! durability operation of a rekey (every open, write, truncate, sync,
//! delete, rename and directory sync, SQLite's and the tool's own), a run
//! with the power cut right before it must leave the database intact and
//! readable with the old key or with the new one, never neither, and with
//! the new one whenever the command reported success. Running `rekey` again
//! after the cut finishes the job and leaves no temporary file.
//!
//! Three starting points: a clean rollback-mode database (crypto over
//! cksumvfs), a WAL-mode one with committed frames not yet checkpointed
//! (crypto alone), and one with a hot journal left by a crash mid-commit
//! (crypto over CRC-32).

use std::sync::Arc;

use rusqlite::{Connection, OpenFlags};
use vfs_cksm::Mode;
use vfs_cli::error::{CliError, Result};
use vfs_cli::stack::{Layers, Registered, StackSpec, register_over};
use vfs_cli::storage::Storage;
use vfs_cli::ui::Ui;
use vfs_core::{
    AccessCheck, File, FileKind, FileName, OpenAccess, OpenName, OpenOptions, SyncFlags, Vfs,
};
use vfs_crypto::{KdfParams, Key, Secret};
use vfs_fault::{Fault, MemDisk, OpSet};

const DB: &str = "/d/app.db";
const OLD: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const NEW: &str = "f0e0d0c0b0a09080706050403020100ff0e0d0c0b0a09080706050403020100f";
const SQLITE_SYNC_FULL: i32 = 3;

fn key(hex: &str) -> Secret {
    Secret::Key(Key::from_hex(hex).unwrap())
}

/// The rekey's storage on the power-cut model: SQLite's I/O, the tool's
/// syncs, removals, rename and directory syncs all go through the fault
/// layer (reads of raw bytes go to the disk directly: they change nothing).
struct FaultStorage {
    fault: Arc<Fault<MemDisk>>,
    disk: MemDisk,
}

fn err(e: vfs_core::Error) -> CliError {
    CliError::new(e.to_string())
}

impl Storage for FaultStorage {
    fn register(&self, spec: &StackSpec) -> Result<Registered> {
        register_over(self.fault.clone(), spec)
    }
    fn size(&self, path: &str) -> Result<Option<u64>> {
        Ok(self.disk.contents(path).map(|c| c.len() as u64))
    }
    fn read(&self, path: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let c = self
            .disk
            .contents(path)
            .ok_or_else(|| CliError::new(format!("{path}: no such file")))?;
        let start = (offset as usize).min(c.len());
        Ok(c[start..(start + len).min(c.len())].to_vec())
    }
    fn remove(&self, path: &str) -> Result<()> {
        if self
            .fault
            .access(FileName::new(path), AccessCheck::Exists)
            .map_err(err)?
        {
            self.fault.delete(FileName::new(path), false).map_err(err)?;
        }
        Ok(())
    }
    fn sync_file(&self, path: &str) -> Result<()> {
        let mut f = self
            .fault
            .open(
                &OpenName::new(path, FileKind::MainDb),
                OpenOptions::new(FileKind::MainDb, OpenAccess::ReadWrite),
            )
            .map_err(err)?;
        f.sync(SyncFlags(SQLITE_SYNC_FULL)).map_err(err)
    }
    fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.fault.rename(from, to).map_err(err)
    }
    fn sync_dir(&self, dir: &str) -> Result<()> {
        self.fault.sync_dir(dir).map_err(err)
    }
}

/// The files a scenario starts from, and what the database holds.
struct Start {
    layers: Layers,
    files: Vec<(String, Vec<u8>)>,
    expected: (i64, i64, String),
}

/// What a database holds, in a form that changes with any row.
fn try_contents(conn: &Connection) -> rusqlite::Result<(i64, i64, String)> {
    conn.query_row(
        "SELECT count(*), total(length(v)), group_concat(id || '=' || substr(v, 1, 6), ',') FROM t",
        [],
        |r| Ok((r.get(0)?, r.get::<_, f64>(1)? as i64, r.get(2)?)),
    )
}

fn contents(conn: &Connection) -> (i64, i64, String) {
    try_contents(conn).unwrap()
}

fn open(vfs: &Registered, path: &str, secret: &Secret) -> rusqlite::Result<Connection> {
    let uri = vfs_cli::uri::database(path, vfs.name(), Some(secret), &[]);
    Connection::open_with_flags(
        uri.as_str(),
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_URI,
    )
}

fn create(vfs: &Registered, path: &str, secret: &Secret) -> Connection {
    let uri = vfs_cli::uri::database(path, vfs.name(), Some(secret), &[]);
    Connection::open(uri.as_str()).unwrap()
}

/// Builds a scenario's files on a scratch in-memory disk (the state of a
/// process that crashed, copied while its connection is open).
fn start(layers: Layers, mode: &str) -> Start {
    let disk = MemDisk::new();
    let vfs = register_over(disk.clone(), &StackSpec::new(layers)).unwrap();
    let conn = create(&vfs, DB, &key(OLD));
    conn.execute_batch(&format!(
        "PRAGMA journal_mode={};
         CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
         CREATE INDEX tv ON t(v);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 150)
         INSERT INTO t(v) SELECT printf('%06d', i) || hex(randomblob(80)) FROM n;",
        if mode == "wal" { "WAL" } else { "DELETE" }
    ))
    .unwrap();
    let expected;
    let mut names = vec![DB.to_owned()];
    match mode {
        "wal" => {
            conn.execute_batch("PRAGMA wal_autocheckpoint=0; PRAGMA wal_checkpoint(TRUNCATE);")
                .unwrap();
            conn.execute_batch(
                "UPDATE t SET v = 'walrow' || v WHERE id % 3 = 0; DELETE FROM t WHERE id > 140;",
            )
            .unwrap();
            expected = contents(&conn);
            names.push(format!("{DB}-wal"));
        }
        "hot" => {
            expected = contents(&conn);
            conn.execute_batch(
                "PRAGMA cache_size = 2; BEGIN; UPDATE t SET v = 'lost' || v; DELETE FROM t WHERE id < 50;",
            )
            .unwrap();
            names.push(format!("{DB}-journal"));
        }
        _ => expected = contents(&conn),
    }
    let files: Vec<(String, Vec<u8>)> = names
        .iter()
        .map(|n| (n.clone(), disk.contents(n).unwrap()))
        .collect();
    match mode {
        "wal" => assert!(files[1].1.len() > 32, "the WAL holds frames"),
        "hot" => assert_eq!(
            files[1].1[..8],
            vfs_cli::detect::JOURNAL_MAGIC,
            "a hot journal"
        ),
        _ => {}
    }
    drop(conn);
    drop(vfs);
    Start {
        layers,
        files,
        expected,
    }
}

/// A fresh machine holding the start files (durable).
fn machine(s: &Start) -> FaultStorage {
    let disk = MemDisk::new();
    for (name, bytes) in &s.files {
        disk.put(name, bytes);
    }
    FaultStorage {
        fault: Arc::new(Fault::new(disk.clone())),
        disk,
    }
}

/// Which key opens the database now (`None`: neither), after checking
/// that it holds the expected rows and passes integrity_check.
fn state(storage: &FaultStorage, s: &Start) -> Option<&'static str> {
    let vfs = storage.register(&StackSpec::new(s.layers)).unwrap();
    for (name, hex) in [("old", OLD), ("new", NEW)] {
        let Ok(conn) = open(&vfs, DB, &key(hex)) else {
            continue;
        };
        let Ok(check) = conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
        else {
            continue;
        };
        assert_eq!(check, "ok", "{name} key");
        match try_contents(&conn) {
            Ok(c) => assert_eq!(c, s.expected, "{name} key"),
            Err(e) => panic!("the {name} key opens the database, but its rows are gone: {e}"),
        }
        return Some(name);
    }
    None
}

fn rekey(storage: &FaultStorage) -> Result<vfs_cli::rekey::RekeyReport> {
    vfs_cli::rekey::rekey(
        storage,
        DB,
        &key(OLD),
        &key(NEW),
        KdfParams::FAST_INSECURE,
        &Ui::silent(),
    )
}

fn sweep(label: &str, s: &Start, journal_mode: &str) {
    // A run without faults: how many durability operations it does.
    let storage = machine(s);
    let ctl = storage.fault.controller();
    ctl.reset_counts();
    let report = rekey(&storage).unwrap();
    assert_eq!(report.journal_mode, journal_mode);
    let total = ctl.count(OpSet::DURABILITY);
    assert!(total > 10, "{total} durability operations");
    // Success means durable: a cut right after it keeps the new database.
    ctl.cut_power_now();
    ctl.restart().unwrap();
    assert_eq!(state(&storage, s), Some("new"));
    assert_eq!(storage.disk.paths(), [DB]);

    let mut outcomes = [0u32; 2];
    for n in 1..=total {
        let storage = machine(s);
        let ctl = storage.fault.controller();
        ctl.cut_power_at(n);
        let result = rekey(&storage);
        assert_eq!(ctl.power_cuts(), 1, "cut {n} of {total} did not happen");
        assert!(
            result.is_err(),
            "cut {n}: rekey reported success without power"
        );
        ctl.restart().unwrap();
        match state(&storage, s) {
            Some("old") => outcomes[0] += 1,
            Some(_) => outcomes[1] += 1,
            None => panic!("cut {n} of {total}: the database opens with neither key"),
        }
        // Running it again finishes the job (or finds it done).
        match rekey(&storage) {
            Ok(_) => {}
            Err(e) => assert!(e.message.contains("wrong key"), "cut {n}: {e}"),
        }
        assert_eq!(
            state(&storage, s),
            Some("new"),
            "cut {n}: after a second run"
        );
        assert_eq!(storage.disk.paths(), [DB], "cut {n}: files left behind");
    }
    // Cuts before the final directory sync leave the old database; the
    // rename is durable only with it.
    assert!(outcomes[0] > 0, "{outcomes:?}");
    eprintln!(
        "{label}: {total} cut points; the old key opens it after {} of them, the new key after \
         {} (and after a cut right after success)",
        outcomes[0], outcomes[1]
    );
}

#[test]
fn rekey_survives_a_power_cut_before_every_durability_operation_rollback() {
    let s = start(
        Layers {
            encrypted: true,
            checksums: Some(Mode::Cksumvfs),
        },
        "rollback",
    );
    sweep("rollback", &s, "rollback");
}

#[test]
fn rekey_survives_a_power_cut_before_every_durability_operation_wal() {
    let s = start(
        Layers {
            encrypted: true,
            checksums: None,
        },
        "wal",
    );
    sweep("wal with frames", &s, "wal");
}

#[test]
fn rekey_survives_a_power_cut_before_every_durability_operation_hot_journal() {
    let s = start(
        Layers {
            encrypted: true,
            checksums: Some(Mode::Crc32),
        },
        "hot",
    );
    sweep("hot journal", &s, "rollback");
}

/// The database at `path` through `layers` with `secret`, if it opens,
/// passes integrity_check and holds rows: its rows.
fn rows_of(
    storage: &FaultStorage,
    path: &str,
    layers: Layers,
    secret: Option<&Secret>,
) -> Option<(i64, i64, String)> {
    let vfs = storage.register(&StackSpec::new(layers)).unwrap();
    let uri = vfs_cli::uri::database(path, vfs.name(), secret, &[]);
    let conn = Connection::open_with_flags(
        uri.as_str(),
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_URI,
    )
    .ok()?;
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .ok()?;
    assert_eq!(check, "ok", "{path} as {layers}");
    Some(try_contents(&conn).unwrap_or_else(|e| panic!("{path} as {layers}: rows gone: {e}")))
}

/// `encrypt --force` over an existing database (which has a stale,
/// not-hot journal beside it): after a cut before any durability
/// operation, the output is the old database with its rows or the new
/// encrypted copy, never neither; the input is untouched; a second run
/// finishes and leaves no temporary file.
#[test]
fn a_forced_copy_survives_a_power_cut_before_every_durability_operation() {
    const IN: &str = "/d/in.db";
    const OUT: &str = "/d/out.db";
    let disk = MemDisk::new();
    let plain = register_over(disk.clone(), &StackSpec::new(Layers::PLAIN)).unwrap();
    let make = |path: &str, sql: &str| {
        let uri = vfs_cli::uri::database(path, plain.name(), None, &[]);
        let conn = Connection::open(uri.as_str()).unwrap();
        conn.execute_batch(sql).unwrap();
        contents(&conn)
    };
    let in_rows = make(
        IN,
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 120)
         INSERT INTO t(v) SELECT 'input' || hex(randomblob(60)) FROM n;",
    );
    let out_rows = make(
        OUT,
        "PRAGMA journal_mode=PERSIST; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO t(v) VALUES ('old output'), ('still here');",
    );
    drop(plain);
    let files: Vec<(String, Vec<u8>)> = [IN, OUT, &format!("{OUT}-journal")]
        .iter()
        .map(|p| (p.to_string(), disk.contents(p).unwrap()))
        .collect();
    assert_ne!(
        files[2].1[..8],
        vfs_cli::detect::JOURNAL_MAGIC,
        "a stale journal"
    );
    let s = Start {
        layers: Layers::PLAIN,
        files,
        expected: in_rows.clone(),
    };
    let encrypted = Layers {
        encrypted: true,
        checksums: Some(Mode::Cksumvfs),
    };
    let new = key(NEW);
    let copy = |storage: &FaultStorage| {
        let layout = vfs_cli::detect::detect(storage, IN)?;
        let job = vfs_cli::copy::CopyJob {
            input: IN,
            output: OUT,
            input_key: None,
            output_layers: encrypted,
            output_key: Some(&new),
            kdf: KdfParams::FAST_INSECURE,
            force: true,
        };
        vfs_cli::copy::copy(storage, &layout, &job, &Ui::silent())
    };
    let outcome = |storage: &FaultStorage, n: u64| -> &'static str {
        assert_eq!(
            rows_of(storage, IN, Layers::PLAIN, None),
            Some(in_rows.clone())
        );
        if rows_of(storage, OUT, Layers::PLAIN, None) == Some(out_rows.clone()) {
            return "old";
        }
        match rows_of(storage, OUT, encrypted, Some(&new)) {
            Some(r) if r == in_rows => "new",
            other => {
                panic!("cut {n}: the output is neither the old database nor the copy: {other:?}")
            }
        }
    };

    let storage = machine(&s);
    let ctl = storage.fault.controller();
    ctl.reset_counts();
    copy(&storage).unwrap();
    let total = ctl.count(OpSet::DURABILITY);
    ctl.cut_power_now();
    ctl.restart().unwrap();
    assert_eq!(outcome(&storage, 0), "new");
    assert_eq!(storage.disk.paths(), [IN, OUT]);
    for n in 1..=total {
        let storage = machine(&s);
        let ctl = storage.fault.controller();
        ctl.cut_power_at(n);
        assert!(copy(&storage).is_err(), "cut {n}: success without power");
        assert_eq!(ctl.power_cuts(), 1);
        ctl.restart().unwrap();
        outcome(&storage, n);
        copy(&storage).unwrap();
        assert_eq!(outcome(&storage, n), "new", "cut {n}: after a second run");
        assert_eq!(
            storage.disk.paths(),
            [IN, OUT],
            "cut {n}: files left behind"
        );
    }
    eprintln!("forced copy: {total} cut points");
}
