//! Memory-mapped reads across the stacks: the suite with `PRAGMA mmap_size`
//! on every connection, over the backends that lend pages (memdb, native,
//! Wrap over both); and, stack by stack, whether pages are lent at all:
//! memdb, native and Wrap lend them, every layer that reads its own way
//! (cksm and crypto on the page layer, the fault layer) lends none, since a
//! page read in place would bypass it. Either way the rows and
//! `PRAGMA integrity_check` are the same as without mapping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;
use vfs_cksm::Cksm;
use vfs_conformance::vfs_fault::Fault;
use vfs_conformance::{Backend, Capabilities, Location, conformance_suite, unique};
use vfs_core::{File, Mapping, Native, OpenName, OpenOptions, Result, Vfs};
use vfs_crypto::{Crypto, Key};
use vfs_memdb::MemDb;
use vfs_observe::{StatsRecorder, Wrap};

const MMAP: &str = "PRAGMA mmap_size = 268435456";

fn memory_caps() -> Capabilities {
    Capabilities {
        durable: false,
        ..Capabilities::full()
    }
}

conformance_suite!(memdb_mapped, |case: &str| {
    Backend::register(&format!("memdb-mmap-{case}"), MemDb::new(), memory_caps())
        .at(Location::Prefix("/conf".into()))
        .setup_sql(MMAP)
});

conformance_suite!(native_mapped, |case: &str| {
    Backend::register(
        &format!("native-mmap-{case}"),
        Native::new().expect("native VFS"),
        Capabilities::full(),
    )
    .setup_sql(MMAP)
});

conformance_suite!(wrap_native_mapped, |case: &str| {
    Backend::register(
        &format!("wrap-native-mmap-{case}"),
        Wrap::new(
            Native::new().expect("native VFS"),
            Arc::new(StatsRecorder::new()),
        ),
        Capabilities::full(),
    )
    .setup_sql(MMAP)
});

/// A base, counting the pages it lends to whatever sits above it.
struct CountLent<B> {
    base: B,
    lent: Arc<AtomicU64>,
}

struct CountLentFile<F> {
    base: F,
    lent: Arc<AtomicU64>,
}

impl<B: Vfs> Vfs for CountLent<B> {
    type File = CountLentFile<B::File>;
    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Self::File> {
        Ok(CountLentFile {
            base: self.base.open(name, opts)?,
            lent: Arc::clone(&self.lent),
        })
    }
    vfs_core::forward_vfs!(base);
}

impl<F: File> File for CountLentFile<F> {
    fn fetch(&mut self, offset: u64, len: usize) -> Result<Option<Mapping>> {
        let r = self.base.fetch(offset, len);
        if let Ok(Some(_)) = &r {
            self.lent.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
    vfs_core::forward_file!(base, except fetch);
}

fn counted<B>(base: B) -> (CountLent<B>, Arc<AtomicU64>) {
    let lent = Arc::new(AtomicU64::new(0));
    (
        CountLent {
            base,
            lent: Arc::clone(&lent),
        },
        lent,
    )
}

fn answers(c: &Connection) -> (i64, i64, i64) {
    c.query_row(
        "SELECT count(*), sum(length(b)), sum(a) FROM t WHERE a % 5 <> 2",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

/// Fills a database through `vfs` at `path`, reads it with and without
/// mapping, and answers how many pages the bottom lent meanwhile.
fn pages_lent<V: Vfs>(label: &str, vfs: V, lent: &AtomicU64, path: &str) -> u64 {
    let name = unique(label);
    let reg = vfs_core::register(&name, vfs, false).unwrap();
    let uri = format!("file:{path}?vfs={name}");
    let w = Connection::open(&uri).unwrap();
    w.execute_batch(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<3000)
         INSERT INTO t SELECT i, i * 17 % 1000, zeroblob(100 + i % 500) FROM n;",
    )
    .unwrap();
    let expected = answers(&w);
    let before = lent.load(Ordering::Relaxed);
    let r = Connection::open(&uri).unwrap();
    // Transforming layers do not answer the pragma (no row): run it as a
    // statement either way.
    r.execute_batch(MMAP).unwrap();
    assert_eq!(answers(&r), expected, "{label}");
    let ok: String = r
        .query_row("PRAGMA integrity_check", [], |x| x.get(0))
        .unwrap();
    assert_eq!(ok, "ok", "{label}");
    drop((w, r));
    reg.unregister().unwrap();
    lent.load(Ordering::Relaxed) - before
}

#[test]
fn bases_and_wrap_lend_pages_layers_that_read_their_own_way_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let disk = |f: &str| dir.path().join(f).display().to_string();
    let mem = |f: &str| format!("/{}/{f}", unique("mmap-stacks"));
    let native = || Native::new().unwrap();
    let key = Key::generate;

    let (v, n) = counted(MemDb::new());
    assert!(pages_lent("memdb", v, &n, &mem("a.db")) > 0, "memdb");
    let (v, n) = counted(native());
    assert!(pages_lent("native", v, &n, &disk("a.db")) > 0, "native");
    let (v, n) = counted(MemDb::new());
    let stats = Arc::new(StatsRecorder::new());
    let wrapped = Wrap::new(v, stats);
    assert!(pages_lent("wrap", wrapped, &n, &mem("b.db")) > 0, "wrap");

    let (v, n) = counted(MemDb::new());
    assert_eq!(pages_lent("cksm", Cksm::new(v), &n, &mem("c.db")), 0);
    let (v, n) = counted(native());
    assert_eq!(
        pages_lent("cksm-native", Cksm::new(v), &n, &disk("c.db")),
        0
    );
    let (v, n) = counted(MemDb::new());
    assert_eq!(
        pages_lent("crypto", Crypto::new(v, key()), &n, &mem("d.db")),
        0
    );
    let (v, n) = counted(MemDb::new());
    assert_eq!(
        pages_lent(
            "crypto-cksm",
            Crypto::new(Cksm::new(v), key()),
            &n,
            &mem("e.db")
        ),
        0
    );
    let (v, n) = counted(native());
    assert_eq!(
        pages_lent("crypto-native", Crypto::new(v, key()), &n, &disk("d.db")),
        0
    );
    let (v, n) = counted(MemDb::new());
    assert_eq!(pages_lent("fault", Fault::new(v), &n, &mem("f.db")), 0);
}
