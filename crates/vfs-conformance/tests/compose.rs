//! The composition matrix: page layers stack in any order by plain nesting.
//!
//! Every order (cksm alone, crypto alone, crypto over cksm, cksm over
//! crypto), cksm in both of its formats, with and without `Wrap` at every
//! level, over memdb, the native base and mvcc. For each:
//!
//! * rows round-trip and `PRAGMA integrity_check` answers `ok`;
//! * `checksum_format`, `checksum_verification`, `crypto_format` and
//!   `vfs_page_reserve` tell the truth about the stack;
//! * the header's reserve, and where each layer's bytes sit in every stored
//!   page, are what `docs/formats.md` says (checked on the raw bytes with
//!   the reference checksum functions and the crypto inspector);
//! * a byte flipped anywhere in a stored page (content, or any layer's
//!   slice) is reported by the lowest layer, whose check covers the whole
//!   stored page, and by no other; damage only an upper layer can see (the
//!   lower layer's check made to pass) is reported by that upper layer.
//!   Layers are told apart by their counters: cksm's `faults()`, crypto's
//!   `stats().failures`.
//!
//! Most stacks are built at run time through the type-erased form (one
//! code path per layer, whatever the combination); a few are spelt as
//! static types too.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension};
use vfs_cksm::{Cksm, CksmCodec, Mode};
use vfs_conformance::unique;
use vfs_core::{DynVfs, Native, Op, Vfs, codes, erase};
use vfs_crypto::{Crypto, CryptoCodec, EncryptionHeader, Key, SLICE, Secret};
use vfs_memdb::MemDb;
use vfs_mvcc::Mvcc;
use vfs_observe::{StatsRecorder, Wrap};

const PAGE: usize = 4096;
const ROWS: usize = 120;
const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// One page layer, as stacked from the bottom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layer {
    Cksm(Mode),
    Crypto,
}

impl Layer {
    /// Its slice of the reserved bytes.
    fn reserve(self) -> usize {
        match self {
            Layer::Cksm(m) => m.trailer_len(),
            Layer::Crypto => SLICE,
        }
    }
}

/// The reserved bytes the layers below layer `i` claim.
fn below(layers: &[Layer], i: usize) -> usize {
    layers[..i].iter().map(|l| l.reserve()).sum()
}

/// Where the databases live, and how the test reads and rewrites their
/// stored bytes behind the stack's back.
#[derive(Clone)]
enum Medium {
    MemDb(MemDb),
    Native(Arc<tempfile::TempDir>),
    Mvcc(Mvcc),
}

impl Medium {
    fn memdb() -> Medium {
        Medium::MemDb(MemDb::new())
    }

    fn native() -> Medium {
        Medium::Native(Arc::new(tempfile::tempdir().unwrap()))
    }

    fn mvcc() -> Medium {
        Medium::Mvcc(Mvcc::new())
    }

    /// A base VFS over this medium (sharing its databases).
    fn base(&self) -> Box<dyn DynVfs> {
        match self {
            Medium::MemDb(m) => erase(m.clone()),
            Medium::Native(_) => erase(Native::new().unwrap()),
            Medium::Mvcc(m) => erase(m.clone()),
        }
    }

    fn path(&self, file: &str) -> String {
        match self {
            Medium::Native(dir) => dir.path().join(file).display().to_string(),
            _ => format!("/{file}"),
        }
    }

    fn read(&self, path: &str) -> Vec<u8> {
        match self {
            Medium::MemDb(m) => m.file_bytes(path).unwrap(),
            Medium::Native(_) => std::fs::read(path).unwrap(),
            Medium::Mvcc(m) => m.export(path).unwrap(),
        }
    }

    fn write(&self, path: &str, bytes: &[u8]) {
        match self {
            Medium::MemDb(m) => m.load_raw(path, bytes).unwrap(),
            Medium::Native(_) => std::fs::write(path, bytes).unwrap(),
            Medium::Mvcc(m) => {
                // A new database rather than a new version of the old one:
                // mvcc stamps a new change counter into page 1 of a new
                // version, which a checksum over page 1 would then reject.
                let _ = m.delete(path);
                m.load(path, bytes).unwrap();
            }
        }
    }
}

/// What tells a layer's failures apart.
#[derive(Clone)]
enum Probe {
    Cksm(Arc<CksmCodec>),
    Crypto(Arc<CryptoCodec>),
}

impl Probe {
    fn failures(&self) -> u64 {
        match self {
            Probe::Cksm(c) => c.faults(),
            Probe::Crypto(c) => c.stats().failures,
        }
    }
}

/// A stack under test: its layers (bottom first), their probes, the
/// recorders of its `Wrap`s, the registration key.
struct Stack {
    layers: Vec<Layer>,
    probes: Vec<Probe>,
    recorders: Vec<Arc<StatsRecorder>>,
    key: Key,
    label: String,
}

/// Builds `layers` over `medium`'s base at run time, with a `Wrap` at each
/// level whose bit is set in `wraps` (bit 0: over the base; bit `i`: over
/// layer `i - 1`).
fn build(medium: &Medium, layers: &[Layer], wraps: u32, key: &Key) -> (Box<dyn DynVfs>, Stack) {
    let mut vfs = medium.base();
    let mut probes = Vec::new();
    let mut recorders = Vec::new();
    let mut label = String::from("base");
    for level in 0..=layers.len() {
        if wraps & (1 << level) != 0 {
            let rec = Arc::new(StatsRecorder::new());
            vfs = erase(Wrap::new(vfs, rec.clone()));
            recorders.push(rec);
            label = format!("wrap({label})");
        }
        match layers.get(level) {
            Some(Layer::Cksm(mode)) => {
                let cksm = Cksm::with_mode(vfs, *mode);
                probes.push(Probe::Cksm(cksm.codec().clone()));
                vfs = erase(cksm);
                label = format!("cksm-{mode}({label})");
            }
            Some(Layer::Crypto) => {
                let crypto = Crypto::new(vfs, key.clone());
                probes.push(Probe::Crypto(crypto.codec().clone()));
                vfs = erase(crypto);
                label = format!("crypto({label})");
            }
            None => {}
        }
    }
    let stack = Stack {
        layers: layers.to_vec(),
        probes,
        recorders,
        key: key.clone(),
        label,
    };
    (vfs, stack)
}

fn row(i: usize) -> String {
    format!("row {i:04} {}", "abcdefghij".repeat(10))
}

fn fill(conn: &Connection) {
    conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL); BEGIN;")
        .unwrap();
    let mut insert = conn
        .prepare("INSERT INTO t(id, v) VALUES (?1, ?2)")
        .unwrap();
    for i in 0..ROWS {
        insert.execute(rusqlite::params![i as i64, row(i)]).unwrap();
    }
    drop(insert);
    conn.execute_batch("COMMIT").unwrap();
}

fn assert_rows(conn: &Connection, label: &str) {
    let mut q = conn.prepare("SELECT id, v FROM t ORDER BY id").unwrap();
    let rows: Vec<(i64, String)> = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(rows.len(), ROWS, "{label}");
    for (i, (id, v)) in rows.iter().enumerate() {
        assert_eq!((*id, v.as_str()), (i as i64, row(i).as_str()), "{label}");
    }
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok", "{label}");
}

fn pragma(conn: &Connection, name: &str) -> Option<String> {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .optional()
        .unwrap()
}

/// The pragmas answer what the stack is.
fn assert_pragmas(conn: &Connection, stack: &Stack) {
    let label = &stack.label;
    let cksm = stack.layers.iter().find_map(|l| match l {
        Layer::Cksm(m) => Some(*m),
        Layer::Crypto => None,
    });
    assert_eq!(
        pragma(conn, "checksum_format").as_deref(),
        cksm.map(Mode::name),
        "{label}"
    );
    assert_eq!(
        pragma(conn, "checksum_verification").as_deref(),
        cksm.map(|_| "1"),
        "{label}"
    );
    let crypto = pragma(conn, "crypto_format");
    if stack.layers.contains(&Layer::Crypto) {
        // New databases are in format version 2.
        let format = crypto.unwrap_or_default();
        assert!(format.starts_with("xaes-256-gcm v2"), "{label}: {format}");
    } else {
        assert_eq!(crypto, None, "{label}");
    }
    let reserve: usize = stack.layers.iter().map(|l| l.reserve()).sum();
    assert_eq!(
        pragma(conn, "vfs_page_reserve"),
        Some(reserve.to_string()),
        "{label}"
    );
}

/// Whether `image` (already cut to the end of cksm's trailer) ends with a
/// valid trailer of `mode` for page `pgno`.
fn trailer_ok(mode: Mode, image: &[u8], pgno: u32) -> bool {
    let n = image.len();
    match mode {
        Mode::Cksumvfs => image[n - 8..] == vfs_cksm::cksumvfs_checksum(&image[..n - 8]),
        Mode::Crc32 => image[n - 12..] == vfs_cksm::crc_trailer(&image[..n - 12], pgno),
    }
}

/// The stored bytes are laid out as docs/formats.md says: the header's
/// reserve is the sum of the slices, each layer's slice sits above the
/// slices of the layers below it, cksm's trailer covers what reaches it
/// (ciphertext under crypto, plaintext over it), crypto's pages
/// authenticate where the inspector expects them.
fn assert_layout(stored: &[u8], stack: &Stack) {
    let label = &stack.label;
    let reserve: usize = stack.layers.iter().map(|l| l.reserve()).sum();
    assert_eq!(usize::from(stored[20]), reserve, "{label}: header byte 20");
    assert_eq!(stored[16..18], (PAGE as u16).to_be_bytes(), "{label}");
    assert_eq!(stored.len() % PAGE, 0, "{label}");
    assert!(stored.len() / PAGE >= 4, "{label}: too few pages to test");
    let crypto = stack.layers.iter().position(|l| *l == Layer::Crypto);
    // What SQLite reads back of each page: decrypted when crypto is there.
    let plain: Vec<Vec<u8>> = match crypto {
        None => {
            assert_eq!(&stored[..16], MAGIC, "{label}");
            stored.chunks(PAGE).map(<[u8]>::to_vec).collect()
        }
        Some(at) => {
            assert_ne!(
                &stored[..16],
                MAGIC,
                "{label}: the salt replaces the header string"
            );
            let header = EncryptionHeader::parse(stored).unwrap();
            assert_eq!(header.reserve, reserve, "{label}");
            assert_eq!(header.reserve_below, below(&stack.layers, at), "{label}");
            assert_eq!(
                header.reserve_above,
                reserve - SLICE - header.reserve_below,
                "{label}"
            );
            let mut opener = header.unlock(&Secret::Key(stack.key.clone())).unwrap();
            let pages: Vec<Vec<u8>> = stored
                .chunks(PAGE)
                .enumerate()
                .map(|(i, p)| opener.open_page(i as u32 + 1, p).unwrap())
                .collect();
            assert_eq!(&pages[0][..16], MAGIC, "{label}");
            pages
        }
    };
    for (i, layer) in stack.layers.iter().enumerate() {
        let Layer::Cksm(mode) = *layer else { continue };
        let end = PAGE - below(&stack.layers, i);
        let over_crypto = crypto.is_some_and(|c| c < i);
        for (p, (stored_page, plain_page)) in stored.chunks(PAGE).zip(&plain).enumerate() {
            let image = if over_crypto { plain_page } else { stored_page };
            assert!(
                trailer_ok(mode, &image[..end], p as u32 + 1),
                "{label}: page {} has no valid {mode} trailer ending at {end}",
                p + 1
            );
        }
    }
}

/// Opens the database and reads every row: the read must fail with
/// `SQLITE_IOERR_DATA`, counted by layer `culprit` and no other.
fn assert_caught_by(uri: &str, stack: &Stack, culprit: usize, what: &str) {
    let label = &stack.label;
    let before: Vec<u64> = stack.probes.iter().map(Probe::failures).collect();
    let conn = Connection::open(uri).unwrap();
    let r = conn.query_row("SELECT count(*), sum(length(v)) FROM t", [], |r| {
        r.get::<_, i64>(0)
    });
    let code = r
        .as_ref()
        .err()
        .and_then(|e| e.sqlite_error())
        .map(|e| e.extended_code);
    assert_eq!(
        code,
        Some(codes::SQLITE_IOERR_DATA),
        "{label}, {what}: {r:?}"
    );
    drop(conn);
    let after: Vec<u64> = stack.probes.iter().map(Probe::failures).collect();
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        if i == culprit {
            assert!(
                a > b,
                "{label}, {what}: layer {:?} did not report it",
                stack.layers[i]
            );
        } else {
            assert_eq!(
                a, b,
                "{label}, {what}: layer {:?} reported it too",
                stack.layers[i]
            );
        }
    }
}

/// Runs the whole check on `vfs`, registered under a fresh name.
fn check<V: Vfs>(medium: &Medium, vfs: V, stack: &Stack) {
    let name = unique("compose");
    let reg = vfs_core::register(&name, vfs, false).unwrap();
    let path = medium.path(&format!("{name}.db"));
    let uri = format!("file:{path}?vfs={name}");
    let label = &stack.label;
    {
        let conn = Connection::open(&uri).unwrap();
        fill(&conn);
        assert_rows(&conn, label);
        assert_pragmas(&conn, stack);
    }
    let stored = medium.read(&path);
    assert_layout(&stored, stack);
    assert_rows(&Connection::open(&uri).unwrap(), label);
    for (i, rec) in stack.recorders.iter().enumerate() {
        assert!(
            rec.snapshot().op(Op::Read).count > 0,
            "{label}: Wrap {i} saw no read"
        );
    }

    // A byte flipped in page 2 as stored: in the content, and in each
    // layer's slice. The bottom layer's check covers all of it.
    let mut spots = vec![("content", 200)];
    for (i, layer) in stack.layers.iter().enumerate() {
        let end = PAGE - below(&stack.layers, i);
        spots.push((
            match layer {
                Layer::Cksm(_) => "cksm's slice",
                Layer::Crypto => "crypto's slice",
            },
            end - layer.reserve() / 2,
        ));
    }
    for (what, at) in spots {
        let mut bad = stored.clone();
        bad[PAGE + at] ^= 0x10;
        medium.write(&path, &bad);
        assert_caught_by(&uri, stack, 0, &format!("flip in {what}"));
    }
    medium.write(&path, &stored);
    assert_rows(&Connection::open(&uri).unwrap(), label);

    // Damage the bottom layer cannot see: the upper layer reports it.
    match stack.layers[..] {
        [Layer::Cksm(mode), Layer::Crypto] => {
            // Ciphertext changed, cksm's trailer recomputed over it.
            let mut bad = stored.clone();
            let page = &mut bad[PAGE..2 * PAGE];
            page[200] ^= 0x10;
            let trailer = mode.trailer_len();
            match mode {
                Mode::Cksumvfs => {
                    let sum = vfs_cksm::cksumvfs_checksum(&page[..PAGE - trailer]);
                    page[PAGE - trailer..].copy_from_slice(&sum);
                }
                Mode::Crc32 => {
                    let t = vfs_cksm::crc_trailer(&page[..PAGE - trailer], 2);
                    page[PAGE - trailer..].copy_from_slice(&t);
                }
            }
            medium.write(&path, &bad);
            assert_caught_by(&uri, stack, 1, "ciphertext changed under a valid trailer");
        }
        [Layer::Crypto, Layer::Cksm(_)] => {
            // A write through crypto alone (same key) authenticates but
            // leaves cksm's trailers stale.
            let plain_crypto = unique("compose-crypto-only");
            let reg2 = vfs_core::register(
                &plain_crypto,
                Crypto::new(medium.base(), stack.key.clone()),
                false,
            )
            .unwrap();
            let conn = Connection::open(format!("file:{path}?vfs={plain_crypto}")).unwrap();
            conn.execute("UPDATE t SET v = v || '!' WHERE id = 7", [])
                .unwrap();
            drop(conn);
            reg2.unregister().unwrap();
            assert_caught_by(&uri, stack, 1, "a page written without cksm");
        }
        _ => {}
    }
    medium.write(&path, &stored);
    assert_rows(&Connection::open(&uri).unwrap(), label);
    reg.unregister().unwrap();
}

/// Every order in `orders` over fresh media from `medium`, with a `Wrap`
/// at every combination of levels.
fn matrix(medium: fn() -> Medium, orders: &[&[Layer]]) {
    let key = Key::generate();
    for layers in orders {
        for wraps in 0..1u32 << (layers.len() + 1) {
            let medium = medium();
            let (vfs, stack) = build(&medium, layers, wraps, &key);
            check(&medium, vfs, &stack);
        }
    }
}

const CKSM_ALONE: &[&[Layer]] = &[&[Layer::Cksm(Mode::Cksumvfs)], &[Layer::Cksm(Mode::Crc32)]];
const CRYPTO_ALONE: &[&[Layer]] = &[&[Layer::Crypto]];
const CRYPTO_OVER_CKSM: &[&[Layer]] = &[
    &[Layer::Cksm(Mode::Cksumvfs), Layer::Crypto],
    &[Layer::Cksm(Mode::Crc32), Layer::Crypto],
];
const CKSM_OVER_CRYPTO: &[&[Layer]] = &[
    &[Layer::Crypto, Layer::Cksm(Mode::Cksumvfs)],
    &[Layer::Crypto, Layer::Cksm(Mode::Crc32)],
];

macro_rules! matrix_tests {
    ($($test:ident: $orders:expr, $medium:expr;)*) => {
        $(
            #[test]
            fn $test() {
                matrix($medium, $orders);
            }
        )*
    };
}

matrix_tests! {
    cksm_alone_over_memdb: CKSM_ALONE, Medium::memdb;
    cksm_alone_over_native: CKSM_ALONE, Medium::native;
    cksm_alone_over_mvcc: CKSM_ALONE, Medium::mvcc;
    crypto_alone_over_memdb: CRYPTO_ALONE, Medium::memdb;
    crypto_alone_over_native: CRYPTO_ALONE, Medium::native;
    crypto_alone_over_mvcc: CRYPTO_ALONE, Medium::mvcc;
    crypto_over_cksm_over_memdb: CRYPTO_OVER_CKSM, Medium::memdb;
    crypto_over_cksm_over_native: CRYPTO_OVER_CKSM, Medium::native;
    crypto_over_cksm_over_mvcc: CRYPTO_OVER_CKSM, Medium::mvcc;
    cksm_over_crypto_over_memdb: CKSM_OVER_CRYPTO, Medium::memdb;
    cksm_over_crypto_over_native: CKSM_OVER_CRYPTO, Medium::native;
    cksm_over_crypto_over_mvcc: CKSM_OVER_CRYPTO, Medium::mvcc;
}

/// The same stacks spelt as static types, the way a user writes them.
#[test]
fn static_stacks_compose_as_written() {
    let key = Key::generate();
    let stack = |layers: &[Layer], probes: Vec<Probe>, recorders, label: &str| Stack {
        layers: layers.to_vec(),
        probes,
        recorders,
        key: key.clone(),
        label: label.to_owned(),
    };
    let cksumvfs = Layer::Cksm(Mode::Cksumvfs);
    let crc = Layer::Cksm(Mode::Crc32);

    let m = Medium::memdb();
    let Medium::MemDb(mem) = &m else {
        unreachable!()
    };
    let vfs = Crypto::new(Cksm::new(mem.clone()), key.clone());
    let probes = vec![
        Probe::Cksm(vfs.base().codec().clone()),
        Probe::Crypto(vfs.codec().clone()),
    ];
    let s = stack(
        &[cksumvfs, Layer::Crypto],
        probes,
        vec![],
        "Crypto<Cksm<MemDb>>",
    );
    check(&m, vfs, &s);

    let m = Medium::memdb();
    let Medium::MemDb(mem) = &m else {
        unreachable!()
    };
    let vfs = Cksm::new(Crypto::new(mem.clone(), key.clone()));
    let probes = vec![
        Probe::Crypto(vfs.base().codec().clone()),
        Probe::Cksm(vfs.codec().clone()),
    ];
    let s = stack(
        &[Layer::Crypto, cksumvfs],
        probes,
        vec![],
        "Cksm<Crypto<MemDb>>",
    );
    check(&m, vfs, &s);

    let m = Medium::native();
    let recs: Vec<Arc<StatsRecorder>> = (0..3).map(|_| Arc::new(StatsRecorder::new())).collect();
    let cksm = Cksm::with_mode(
        Wrap::new(Native::new().unwrap(), recs[0].clone()),
        Mode::Crc32,
    );
    let cksm_probe = Probe::Cksm(cksm.codec().clone());
    let crypto = Crypto::new(Wrap::new(cksm, recs[1].clone()), key.clone());
    let probes = vec![cksm_probe, Probe::Crypto(crypto.codec().clone())];
    let vfs = Wrap::new(crypto, recs[2].clone());
    let s = stack(
        &[crc, Layer::Crypto],
        probes,
        recs,
        "Wrap<Crypto<Wrap<Cksm<Wrap<Native>>>>>",
    );
    check(&m, vfs, &s);

    let m = Medium::mvcc();
    let Medium::Mvcc(mvcc) = &m else {
        unreachable!()
    };
    let rec = Arc::new(StatsRecorder::new());
    let crypto = Crypto::new(mvcc.clone(), key.clone());
    let crypto_probe = Probe::Crypto(crypto.codec().clone());
    let vfs = Cksm::with_mode(Wrap::new(crypto, rec.clone()), Mode::Crc32);
    let probes = vec![crypto_probe, Probe::Cksm(vfs.codec().clone())];
    let s = stack(
        &[Layer::Crypto, crc],
        probes,
        vec![rec],
        "Cksm<Wrap<Crypto<Mvcc>>>",
    );
    check(&m, vfs, &s);
}

/// A stack whose page layers cannot work is refused at registration,
/// naming them: six crypto layers claim 288 reserved bytes per page.
#[test]
fn an_impossible_stack_is_refused_at_registration() {
    let key = Key::generate();
    let layer = |base: Box<dyn DynVfs>| erase(Crypto::new(base, key.clone()));
    let mut vfs = erase(Cksm::new(MemDb::new()));
    for _ in 0..5 {
        vfs = layer(vfs);
    }
    // Five crypto layers over cksm: 248 bytes, the most that fits.
    assert_eq!(vfs.page_layers().reserve(), 248);
    let name = unique("compose-too-deep");
    vfs_core::register(&name, vfs, false)
        .unwrap()
        .unregister()
        .unwrap();
    let vfs = Crypto::new(
        Crypto::new(
            Crypto::new(
                Crypto::new(
                    Crypto::new(Crypto::new(MemDb::new(), key.clone()), key.clone()),
                    key.clone(),
                ),
                key.clone(),
            ),
            key.clone(),
        ),
        key.clone(),
    );
    let e = vfs_core::register(&name, vfs, false).unwrap_err();
    assert_eq!(e.code(), Some(codes::SQLITE_MISUSE));
    assert!(
        e.message().contains(
            "crypto (48 bytes) over crypto (48 bytes) over crypto (48 bytes) over crypto (48 \
             bytes) over crypto (48 bytes) over crypto (48 bytes)"
        ),
        "{e}"
    );
    assert!(e.message().contains("288 reserved bytes"), "{e}");
    assert!(!vfs_core::find(&name));
}

/// What a query answers on a database written through one stack and
/// opened through another: the rows, or an error code.
fn read_through(medium: &Medium, path: &str, layers: &[Layer], key: &Key) -> Result<i64, i32> {
    let (vfs, _) = build(medium, layers, 0, key);
    let name = unique("compose-reader");
    let reg = vfs_core::register(&name, vfs, false).unwrap();
    let answer = Connection::open(format!("file:{path}?vfs={name}"))
        .and_then(|conn| conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)))
        .map_err(|e| e.sqlite_error().map_or(-1, |e| e.extended_code));
    reg.unregister().unwrap();
    answer
}

/// docs/formats.md's table of files opened through another stack than the
/// one that wrote them: every mismatch is an error, except where the
/// reading stack's layers all recognise their format.
#[test]
fn a_file_opened_through_another_stack_is_an_error_not_garbage() {
    use Layer::{Cksm as C, Crypto as X};
    let key = Key::generate();
    let cksumvfs = C(Mode::Cksumvfs);
    let crc = C(Mode::Crc32);
    let written = |layers: &[Layer]| {
        let medium = Medium::memdb();
        let (vfs, _) = build(&medium, layers, 0, &key);
        let name = unique("compose-writer");
        let reg = vfs_core::register(&name, vfs, false).unwrap();
        let path = medium.path(&format!("{name}.db"));
        fill(&Connection::open(format!("file:{path}?vfs={name}")).unwrap());
        reg.unregister().unwrap();
        (medium, path)
    };
    let rows = Ok(ROWS as i64);
    let notadb = Err(codes::SQLITE_NOTADB);
    let damaged = Err(codes::SQLITE_IOERR_DATA);
    // (written by, bottom first; read through; answer)
    type Case<'a> = (&'a [Layer], &'a [Layer], Result<i64, i32>);
    let cases: &[Case<'_>] = &[
        (&[cksumvfs, X], &[cksumvfs, X], rows),
        (&[cksumvfs, X], &[X, cksumvfs], notadb),
        (&[X, cksumvfs], &[cksumvfs, X], damaged),
        (&[cksumvfs, X], &[X], notadb),
        (&[cksumvfs, X], &[crc, X], notadb),
        (&[X], &[cksumvfs, X], notadb),
        (&[X], &[X, cksumvfs], rows),
        (&[X, cksumvfs], &[X], rows),
        (&[X, cksumvfs], &[X, crc], rows),
        (&[cksumvfs, X], &[cksumvfs], notadb),
        (&[cksumvfs, X], &[], notadb),
        (&[cksumvfs], &[X], notadb),
        (&[cksumvfs], &[cksumvfs, X], notadb),
        (&[crc], &[cksumvfs], rows),
    ];
    for (writer, reader, expected) in cases {
        let (medium, path) = written(writer);
        assert_eq!(
            read_through(&medium, &path, reader, &key),
            *expected,
            "written by {writer:?}, read through {reader:?}"
        );
    }
}
