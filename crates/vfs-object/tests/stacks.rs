//! vfs-crypto over the object store: the bucket holds only ciphertext, and
//! a second process with the key reads it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::memory::InMemory;
use rusqlite::Connection;
use support::{code, count, integrity, objects, opts};
use vfs_crypto::{Crypto, Key};
use vfs_object::ObjectVfs;

const MARKER: &str = "PLAINTEXT-MARKER-7f3a";

fn register(name: &str, store: &Arc<dyn ObjectStore>, key: Key) -> vfs_core::Registration {
    let vfs = ObjectVfs::new(store.clone(), "enc", opts(Duration::ZERO)).unwrap();
    vfs_core::register(name, Crypto::new(vfs, key), false).unwrap()
}

#[test]
fn crypto_over_object_stores_only_ciphertext() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let key = Key::from_bytes([7; 32]);
    let reg = register("crypto-object-a", &store, key.clone());
    let c = Connection::open("file:/secret.db?vfs=crypto-object-a").unwrap();
    c.execute_batch(&format!(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
         CREATE INDEX tv ON t(v);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<2000)
         INSERT INTO t SELECT i, '{MARKER}-' || i FROM n;
         BEGIN; UPDATE t SET v = v || '-{MARKER}' WHERE id % 3 = 0; COMMIT;"
    ))
    .unwrap();
    // With a small cache SQLite spills pages and journals them mid-transaction.
    c.execute_batch(&format!(
        "PRAGMA cache_size=5; BEGIN; UPDATE t SET v = '{MARKER}'; ROLLBACK;"
    ))
    .unwrap();
    integrity(&c);
    let objs = objects(&store);
    assert!(objs.len() >= 4, "{} objects", objs.len());
    let mut bytes = 0;
    for (k, b) in &objs {
        bytes += b.len();
        assert!(
            !b.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
            "plaintext in {k}"
        );
        assert!(
            !b.windows(16).any(|w| w == b"SQLite format 3\0"),
            "a clear SQLite header in {k}"
        );
    }
    eprintln!("{} objects, {bytes} bytes, no plaintext", objs.len());
    // Another process with the key reads it; a wrong key is refused.
    let reg_b = register("crypto-object-b", &store, key);
    let cb = Connection::open("file:/secret.db?vfs=crypto-object-b").unwrap();
    assert_eq!(count(&cb, "SELECT count(*) FROM t"), 2000);
    assert_eq!(
        count(
            &cb,
            &format!("SELECT count(*) FROM t WHERE v LIKE '%-{MARKER}'")
        ),
        666
    );
    integrity(&cb);
    let reg_c = register("crypto-object-c", &store, Key::from_bytes([8; 32]));
    let e = Connection::open("file:/secret.db?vfs=crypto-object-c")
        .and_then(|x| x.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)))
        .unwrap_err();
    assert_eq!(code(&e) & 0xff, vfs_core::codes::SQLITE_NOTADB, "{e}");
    drop((c, cb));
    for r in [reg, reg_b, reg_c] {
        r.unregister().unwrap();
    }
}
