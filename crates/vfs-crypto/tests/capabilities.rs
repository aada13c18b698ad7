//! A transforming layer never advertises atomic writes (issue #17, finding
//! 7): with `SQLITE_IOCAP_ATOMIC*` or `BATCH_ATOMIC`, SQLite keeps rollback
//! journals in memory and, when one spills, writes it out in chunks that
//! are not records, which no page mapping can follow. A base that reports
//! them gets them cleared by the crypto layer, and nothing reaches it in
//! clear.

mod common;

use common::*;
use vfs_core::{DeviceCharacteristics, File, FileKind, OpenAccess, OpenName, OpenOptions, Vfs};
use vfs_crypto::{Crypto, Key};
use vfs_memdb::MemDb;

/// Every `SQLITE_IOCAP_ATOMIC*` bit (ATOMIC, ATOMIC512 … ATOMIC64K) and
/// `BATCH_ATOMIC`.
const ATOMIC_BITS: i32 = 0x1ff | DeviceCharacteristics::BATCH_ATOMIC;

#[test]
fn atomic_write_capabilities_are_cleared() {
    let (spy, log) = Spy::new(MemDb::new());
    log.add_caps(ATOMIC_BITS | DeviceCharacteristics::POWERSAFE_OVERWRITE);
    let vfs = Crypto::new(spy, Key::from_hex(HEX).unwrap());
    for kind in [FileKind::MainDb, FileKind::MainJournal, FileKind::Wal] {
        let path = match kind {
            FileKind::MainDb => "/caps.db",
            FileKind::MainJournal => "/caps.db-journal",
            _ => "/caps.db-wal",
        };
        let file = vfs
            .open(
                &OpenName::new(path, kind),
                OpenOptions::new(kind, OpenAccess::Create),
            )
            .unwrap();
        let caps = file.device_characteristics();
        assert_eq!(caps.0 & ATOMIC_BITS, 0, "{kind:?} advertises {:#x}", caps.0);
        assert!(
            caps.has(DeviceCharacteristics::POWERSAFE_OVERWRITE),
            "{kind:?}: the base's other capabilities stay"
        );
    }
}

/// The same base under SQLite: journals of every mode and rolled-back
/// transactions, no plaintext written to the base.
#[test]
fn a_base_claiming_atomic_writes_gets_only_ciphertext() {
    for stack in [Stack::Mem, Stack::Native] {
        let env = Env::new("atomic", stack);
        env.log.add_caps(ATOMIC_BITS);
        let db = env.db("a.db");
        let conn = env.open(&db, &hexkey());
        for mode in ["DELETE", "TRUNCATE", "PERSIST"] {
            conn.execute_batch(&format!("PRAGMA journal_mode={mode}"))
                .unwrap();
            fill(&conn, 50);
            conn.execute_batch(
                "BEGIN; UPDATE t SET v = v || ' PLAINTEXT-MARKER-7f3a rolled back'; ROLLBACK;",
            )
            .unwrap();
        }
        check_rows(&conn, 150);
        assert_eq!(integrity(&conn), "ok");
        drop(conn);
        assert!(env.log.hits().is_empty(), "{stack:?}: {:?}", env.log.hits());
    }
}
