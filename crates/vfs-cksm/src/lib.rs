//! # vfs-cksm
//!
//! Page checksums over any base VFS, in the on-disk format of SQLite's own
//! `ext/misc/cksumvfs.c`: stock SQLite tooling with the cksumvfs extension
//! reads and verifies databases written here, and the other way round.
//!
//! [`Cksm<B>`](Cksm) wraps a base VFS (the native disk, an in-memory store,
//! any Rust backend). On the **main database file** (never journals, WAL or
//! temporary files), when page 1 says so (header byte 20, the reserved bytes
//! per page), every page written gets a trailer in its last bytes and every
//! page read is verified; a mismatch answers `SQLITE_IOERR_DATA` and writes
//! a line naming the file and offset to SQLite's error log (`sqlite3_log`).
//! Reads and writes of any length and offset (a shim above cksm may move
//! several pages at once, or parts of pages) are served page by page: a
//! page read in part is verified whole, a page written in part is verified,
//! merged and checksummed whole. Only SQLite's header reads (within the
//! first 128 bytes) are served unverified, as cksumvfs serves them; page 1
//! is verified when SQLite reads it. Two formats, both documented byte by
//! byte in `docs/formats.md`:
//!
//! * [`Mode::Cksumvfs`] (the default): reserve exactly 8, the trailer is two
//!   little-endian u32 Fletcher-style sums ([`cksumvfs_checksum`]);
//!   byte-compatible with cksumvfs.
//! * [`Mode::Crc32`]: reserve 12, the trailer is the page number, the tag
//!   `CRC1` and a CRC-32 over the page including both ([`crc_trailer`]). It
//!   also detects a page written at the wrong place or an old copy of
//!   another page, which the cksumvfs sums cannot. cksumvfs checksums only
//!   files whose reserve is exactly 8, so it never misreads this format.
//!
//! The format of a file is detected from its header, whatever the mode the
//! VFS was built with: a cksumvfs file opened through a CRC-mode VFS is
//! verified as a cksumvfs file. The mode only chooses the format of new
//! databases and of [`enable`].
//!
//! ## Turning it on
//!
//! * **New databases**: nothing to do. Creating a `Cksm` installs a
//!   connection hook that requests the reserve on every new connection whose
//!   main file is on a cksm VFS (`SQLITE_FCNTL_RESERVE_BYTES`), so the first
//!   page written is already checksummed.
//! * **Existing databases**: one call, [`enable`] with the database's URI
//!   (the reserve file control plus `VACUUM`, on a connection of its own).
//!   From any binding's open connection, or without Rust: open it through
//!   the cksm VFS (the hook has then requested the reserve) and run
//!   `VACUUM`.
//!
//! Once a file is checksummed, a write of page 1 that would drop the format
//! is refused. Changing the page size keeps the format: `VACUUM` after
//! `PRAGMA page_size = N`, or a backup into the database from one of
//! another page size, ends with every page of the new size checksummed (or,
//! if it fails, with the old database intact).
//!
//! The hook sees the `main` database of a connection only. A database
//! `ATTACH`ed through a cksm VFS gets its reserve from its first own
//! connection, or from `conn.file_control(Some("aux"),
//! rusqlite::FileControl::ReserveBytes(&mut 8))` before its first write.
//!
//! ## SQL
//!
//! * `PRAGMA checksum_verification` answers `1` or `0`;
//!   `PRAGMA checksum_verification = off` (or `on`) toggles verification for
//!   this connection (trailers are still written).
//! * `PRAGMA checksum_format` answers `cksumvfs`, `crc32` or `none`.
//!
//! Both pragmas describe the main database file as stored: in WAL mode, as
//! of the last checkpoint that copied page 1. They read its header (and
//! fail if that read fails); every other pragma passes to the base without
//! any I/O by cksm.
//! * `verify_checksum(page)` returns 1 if the blob is a page with a valid
//!   cksumvfs trailer, 0 if not, NULL if the argument is not a blob of a
//!   valid page size; `verify_checksum(page, pgno)` does the same for the
//!   CRC-32 format. Registered on every connection once a `Cksm` exists.
//!
//! ## Stacking
//!
//! cksm composes with other page layers by plain nesting, with `Wrap` or
//! any forwarding shim at any level; each layer learns from its base the
//! reserved bytes the layers beneath it claim, and from the open those the
//! layers above claim ([`vfs_page::Stacking`]). The header's reserve is the
//! sum, and the format is detected from it: a file is checksummed when its
//! reserve is exactly the stack's with an 8-byte (cksumvfs) or 12-byte
//! (CRC-32) trailer in cksm's place.
//!
//! * Under another layer (`Crypto::new(Cksm::new(base), key)`, the
//!   documented default): cksm's trailer is the last 8 (or 12) bytes of
//!   each page, covering everything before it, the upper layer's bytes
//!   included (for encryption: checksums over the ciphertext).
//! * Over another layer (`Cksm::new(Crypto::new(base, key))`): the trailer
//!   sits right before the lower layer's slice and covers what the lower
//!   layer gives back (for encryption: checksums over the plaintext, stored
//!   encrypted).
//! * Alone, the reserve is exactly 8: byte-compatible with cksumvfs.
//!
//! `docs/formats.md` has every layout, and what happens when a file is
//! opened through a different stack than the one that wrote it.
//!
//! ```
//! use vfs_cksm::Cksm;
//! use vfs_core::{Native, register};
//!
//! let reg = register("cksm-doc", Cksm::new(Native::new()?), false)?;
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("app.db");
//! let conn = rusqlite::Connection::open(format!("file:{}?vfs=cksm-doc", path.display())).unwrap();
//! conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);").unwrap();
//! let on: String = conn.query_row("PRAGMA checksum_verification", [], |r| r.get(0)).unwrap();
//! assert_eq!(on, "1");
//! drop(conn);
//!
//! // Every page of the file ends with its cksumvfs trailer.
//! let raw = std::fs::read(&path).unwrap();
//! assert_eq!(raw[20], 8);
//! for page in raw.chunks(4096) {
//!     assert_eq!(page[4088..], vfs_cksm::cksumvfs_checksum(&page[..4088]));
//! }
//! reg.unregister().map_err(|(_, e)| e)?;
//! # Ok::<(), vfs_core::Error>(())
//! ```

#![forbid(unsafe_code)]

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use vfs_core::db::{Database, OpenMode};
use vfs_core::hooks::{self, ArgValue, SqlValue};
use vfs_core::{Control, Error, FileControl, FileKind, OpenName, OpenOptions, Result, Vfs, codes};
use vfs_page::{
    FileInfo, FileStatus, Mapping, PageCodec, PageCtx, PageFile, PageVfs, RESERVE_PRAGMA, Stacking,
};

/// Bytes of the cksumvfs trailer (and its reserve when used alone).
pub const CKSUMVFS_TRAILER: usize = 8;
/// Bytes of the CRC-32 trailer (and its reserve when used alone).
pub const CRC_TRAILER: usize = 12;
/// The tag in bytes 4..8 of a CRC-32 trailer.
pub const CRC_TAG: [u8; 4] = *b"CRC1";
/// The smallest page size cksm handles: SQLite's smallest.
pub const MIN_PAGE_SIZE: usize = 512;

/// A checksum format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// SQLite's cksumvfs format: an 8-byte trailer of two Fletcher-style
    /// sums. Byte-compatible with `ext/misc/cksumvfs.c`.
    #[default]
    Cksumvfs,
    /// A 12-byte trailer: page number, `CRC1`, CRC-32 of the page. Detects
    /// misplaced pages too.
    Crc32,
}

impl Mode {
    /// The trailer's length in bytes.
    pub const fn trailer_len(self) -> usize {
        match self {
            Mode::Cksumvfs => CKSUMVFS_TRAILER,
            Mode::Crc32 => CRC_TRAILER,
        }
    }

    /// The name `PRAGMA checksum_format` answers (`cksumvfs`, `crc32`).
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Cksumvfs => "cksumvfs",
            Mode::Crc32 => "crc32",
        }
    }

    fn from_name(name: &str) -> Option<Mode> {
        match name {
            "cksumvfs" => Some(Mode::Cksumvfs),
            "crc32" => Some(Mode::Crc32),
            _ => None,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The cksumvfs checksum of `data` (a page without its 8-byte trailer): two
/// u32 sums over the data read as little-endian u32 pairs `(w0, w1)`,
/// `s1 += w0 + s2; s2 += w1 + s1` (wrapping, from 0), returned as
/// `LE32(s1) ‖ LE32(s2)`. Bytes past the last whole 8-byte group are
/// ignored (page sizes never leave any).
///
/// ```
/// // An all-zero body sums to zero.
/// assert_eq!(vfs_cksm::cksumvfs_checksum(&[0u8; 4088]), [0u8; 8]);
/// ```
pub fn cksumvfs_checksum(data: &[u8]) -> [u8; 8] {
    let (s1, s2) = fletcher(data);
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&s1.to_le_bytes());
    out[4..].copy_from_slice(&s2.to_le_bytes());
    out
}

/// Pairs per block of the dot-product form (a 4 KiB page is one block).
const BLOCK: usize = 512;

/// The coefficients of the dot-product form for one block, as one table:
/// word `i` of a block of `2·BLOCK` words adds `F(2·BLOCK − 1 − i)·w` to
/// `s1` and `F(2·BLOCK − i)·w` to `s2`, where `F` is the Fibonacci sequence
/// (wrapping). So `table[i] = F(2·BLOCK − i)`, and `s2` reads it from entry
/// `i`, `s1` from entry `i + 1`.
///
/// Why: a pair `(w0, w1)` adds `(w0, w0 + w1)` to the state, which the
/// remaining `d` steps multiply by `M^d = [[F(2d−1), F(2d)], [F(2d),
/// F(2d+1)]]` (`M = [[1, 1], [1, 2]]`), so `w0` ends with `F(2d+1)` in `s1`
/// and `F(2d+2)` in `s2`, `w1` with `F(2d)` and `F(2d+1)`. (The tests check
/// the result against the serial recurrence.)
fn coefficients() -> &'static [u32; 2 * BLOCK + 1] {
    static TABLE: std::sync::OnceLock<Box<[u32; 2 * BLOCK + 1]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Box::new([0u32; 2 * BLOCK + 1]);
        let (mut f, mut next) = (0u32, 1u32); // F(0), F(1)
        for slot in t.iter_mut().rev() {
            *slot = f;
            (f, next) = (next, f.wrapping_add(next));
        }
        t
    })
}

/// The two sums. The recurrence is linear (`s ← M·s + (w0, w0 + w1)`), so
/// over a block of pairs starting from zero it is a dot product of the
/// block's words with fixed coefficients ([`coefficients`]), which
/// [`vfs_core::simd::wrapping_dot2`] computes with vector instructions.
/// Blocks are chained as the recurrence would: a state `s` followed by a
/// block of `l` pairs whose own sums are `t` gives `M^l·s + t`. The result
/// is exactly the serial recurrence's (tested against it).
fn fletcher(data: &[u8]) -> (u32, u32) {
    let (groups, _) = data.as_chunks::<8>();
    let pairs = groups.len();
    let data = &data[..pairs * 8];
    let t = coefficients();
    // The first, partial block aligns with the end of the tables (its
    // coefficients depend on the distance from its own end).
    let first = pairs % BLOCK;
    let (head, blocks) = data.split_at(first * 8);
    let skip = 2 * (BLOCK - first);
    let mut s = vfs_core::simd::wrapping_dot2(head, &t[skip + 1..], &t[skip..]);
    // `M^BLOCK = [[F(2B−1), F(2B)], [F(2B), F(2B+1)]]`, read off the table
    // (`t[0] = F(2B)`, `t[1] = F(2B−1)`).
    let (f_2b, f_2b_less_1) = (t[0], t[1]);
    let m = [f_2b_less_1, f_2b, f_2b, f_2b.wrapping_add(f_2b_less_1)];
    for block in blocks.chunks_exact(BLOCK * 8) {
        let (t1, t2) = vfs_core::simd::wrapping_dot2(block, &t[1..], &t[..2 * BLOCK]);
        s = (
            m[0].wrapping_mul(s.0)
                .wrapping_add(m[1].wrapping_mul(s.1))
                .wrapping_add(t1),
            m[2].wrapping_mul(s.0)
                .wrapping_add(m[3].wrapping_mul(s.1))
                .wrapping_add(t2),
        );
    }
    s
}

/// The CRC-32 trailer of a page: `LE32(pgno) ‖ "CRC1" ‖ LE32(crc)`, where
/// `crc` is the CRC-32 (IEEE, as `crc32fast` computes it) of `body` (the
/// page without its 12-byte trailer) followed by the trailer's first 8
/// bytes.
///
/// ```
/// let t = vfs_cksm::crc_trailer(&[0u8; 500], 3);
/// assert_eq!(&t[..8], &[3, 0, 0, 0, b'C', b'R', b'C', b'1']);
/// ```
pub fn crc_trailer(body: &[u8], pgno: u32) -> [u8; CRC_TRAILER] {
    let mut t = [0u8; CRC_TRAILER];
    t[..4].copy_from_slice(&pgno.to_le_bytes());
    t[4..8].copy_from_slice(&CRC_TAG);
    let mut h = crc32fast::Hasher::new();
    h.update(body);
    h.update(&t[..8]);
    t[8..].copy_from_slice(&h.finalize().to_le_bytes());
    t
}

fn valid_page_len(n: usize) -> bool {
    (512..=65536).contains(&n) && n.is_power_of_two()
}

/// Whether `page` (a whole page, any valid page size) ends with a valid
/// cksumvfs trailer; `None` when its length is not a page size. This is
/// `verify_checksum(page)`.
pub fn verify_cksumvfs_page(page: &[u8]) -> Option<bool> {
    let n = page.len();
    valid_page_len(n).then(|| page[n - 8..] == cksumvfs_checksum(&page[..n - 8]))
}

/// Whether `page` ends with a valid CRC-32 trailer for page number `pgno`;
/// `None` when its length is not a page size. This is
/// `verify_checksum(page, pgno)`.
pub fn verify_crc_page(page: &[u8], pgno: u32) -> Option<bool> {
    let n = page.len();
    valid_page_len(n)
        .then(|| page[n - CRC_TRAILER..] == crc_trailer(&page[..n - CRC_TRAILER], pgno))
}

/// The checksum codec plugged into the page layer
/// ([`vfs_page::PageCodec`]).
#[derive(Debug)]
pub struct CksmCodec {
    mode: Mode,
    faults: AtomicU64,
}

/// Per-file state of a checksummed main database (one per connection).
#[derive(Debug)]
pub struct CksmState {
    verify: bool,
}

impl CksmState {
    /// Whether this connection verifies checksums on reads
    /// (`PRAGMA checksum_verification`).
    pub fn verifying(&self) -> bool {
        self.verify
    }
}

impl CksmCodec {
    /// A codec writing new databases in format `mode`.
    pub fn new(mode: Mode) -> CksmCodec {
        CksmCodec {
            mode,
            faults: AtomicU64::new(0),
        }
    }

    /// The format of new databases.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Checksum mismatches detected so far (all files of this VFS).
    pub fn faults(&self) -> u64 {
        self.faults.load(Ordering::Relaxed)
    }

    /// The format a database with `reserve` reserved bytes per page is in,
    /// for a cksm layer at `stacking` in its stack: the reserve must be
    /// exactly the stack's with the trailer of one format in cksm's place
    /// (`None`: no checksums).
    pub fn detect(&self, reserve: Option<usize>, stacking: Stacking) -> Option<Mode> {
        let r = reserve?;
        [Mode::Cksumvfs, Mode::Crc32]
            .into_iter()
            .find(|m| stacking.total(m.trailer_len()) == r)
    }

    fn check(&self, mode: Mode, ctx: &PageCtx<'_>, image: &[u8]) -> Result<()> {
        // The trailer covers everything before it; the bytes after it
        // belong to the layers below, which checked them.
        let image = &image[..image.len() - ctx.stacking.below];
        let n = image.len();
        let problem = match mode {
            Mode::Cksumvfs => (image[n - 8..] != cksumvfs_checksum(&image[..n - 8]))
                .then(|| "cksumvfs checksum mismatch".to_owned()),
            Mode::Crc32 => {
                let t = &image[n - CRC_TRAILER..];
                let stored_pgno = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
                if t != crc_trailer(&image[..n - CRC_TRAILER], stored_pgno) {
                    Some("CRC-32 checksum mismatch".to_owned())
                } else if stored_pgno != ctx.pgno {
                    Some(format!(
                        "misplaced page: the CRC-32 trailer belongs to page {stored_pgno}"
                    ))
                } else {
                    None
                }
            }
        };
        let Some(problem) = problem else {
            return Ok(());
        };
        if ctx.tentative {
            // The layer tries another layout next (a page size change in
            // progress); it reports the fault if none fits.
            return Err(Error::new(codes::SQLITE_IOERR_DATA, problem));
        }
        self.faults.fetch_add(1, Ordering::Relaxed);
        vfs_core::log(
            codes::SQLITE_IOERR_DATA,
            &format!("checksum fault offset {} of \"{}\"", ctx.offset, ctx.path),
        );
        Err(Error::new(
            codes::SQLITE_IOERR_DATA,
            format!("checksum fault at offset {}: {problem}", ctx.offset),
        ))
    }
}

impl PageCodec for CksmCodec {
    type State = CksmState;

    fn mapping(&self, kind: FileKind) -> Mapping {
        if kind == FileKind::MainDb {
            Mapping::Pages
        } else {
            Mapping::None
        }
    }

    fn name(&self) -> &'static str {
        "cksm"
    }

    fn reserve(&self) -> usize {
        self.mode.trailer_len()
    }

    fn min_page_size(&self) -> usize {
        MIN_PAGE_SIZE
    }

    fn verify_only(&self) -> bool {
        true
    }

    fn open(&self, _: &FileInfo<'_>, _: &OpenName<'_>, _: OpenOptions) -> Result<CksmState> {
        Ok(CksmState { verify: true })
    }

    fn encode(&self, _state: &mut CksmState, ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()> {
        // A new database whose first transaction outgrows SQLite's cache
        // spills pages before page 1 (and its reserve byte) is written.
        // Those pages were laid out with the reserve the connection hook
        // sets for new databases: checksum them in that format. (If page 1
        // then names another reserve, the page layer stamps them again in
        // its format from the bytes SQLite wrote.)
        let reserve = match ctx.reserve {
            None if ctx.kind == FileKind::MainDb && ctx.pgno != 1 => {
                Some(ctx.stacking.total(self.mode.trailer_len()))
            }
            r => r,
        };
        let mode = self.detect(reserve, ctx.stacking);
        if ctx.pgno == 1
            && mode.is_none()
            && let Some(old) = self.detect(ctx.stored_reserve, ctx.stacking)
        {
            return Err(Error::new(
                codes::SQLITE_IOERR_WRITE,
                format!(
                    "refusing to write page 1 with {} reserved bytes per page: it would drop the \
                     {old} checksums of this database",
                    ctx.reserve.unwrap_or(0)
                ),
            ));
        }
        // The trailer ends where the layers below begin (a format was
        // detected only if the page holds them: the reserve is their sum).
        let end = image.len().saturating_sub(ctx.stacking.below);
        let image = &mut image[..end];
        let n = image.len();
        match mode {
            Some(Mode::Cksumvfs) => {
                let sum = cksumvfs_checksum(&image[..n - 8]);
                image[n - 8..].copy_from_slice(&sum);
            }
            Some(Mode::Crc32) => {
                let t = crc_trailer(&image[..n - CRC_TRAILER], ctx.pgno);
                image[n - CRC_TRAILER..].copy_from_slice(&t);
            }
            None => {}
        }
        Ok(())
    }

    fn decode(&self, state: &mut CksmState, ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()> {
        match self.detect(ctx.reserve, ctx.stacking) {
            Some(mode) if state.verify => self.check(mode, ctx, image),
            _ => Ok(()),
        }
    }

    fn owns_pragma(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("checksum_verification")
            || name.eq_ignore_ascii_case("checksum_format")
    }

    fn file_control(
        &self,
        state: &mut CksmState,
        file: &FileStatus<'_>,
        ctl: &mut FileControl<'_>,
    ) -> Option<Result<()>> {
        let Control::Pragma(mut p) = ctl.control() else {
            return None;
        };
        let format = self.detect(file.reserve, file.stacking);
        if p.name().eq_ignore_ascii_case("checksum_verification") {
            if let Some(v) = p.value() {
                match vfs_core::parse_bool(v) {
                    Some(on) => state.verify = on,
                    None => {
                        return Some(Err(Error::new(
                            codes::SQLITE_ERROR,
                            format!("checksum_verification expects on or off, not {v:?}"),
                        )));
                    }
                }
            }
            let on = state.verify && format.is_some();
            p.set_result(if on { "1" } else { "0" });
            return Some(Ok(()));
        }
        if p.name().eq_ignore_ascii_case("checksum_format") {
            if p.value().is_some() {
                return Some(Err(Error::new(
                    codes::SQLITE_ERROR,
                    "checksum_format is read-only: use vfs_cksm::enable or VACUUM",
                )));
            }
            p.set_result(format.map_or("none", Mode::name));
            return Some(Ok(()));
        }
        None
    }
}

/// The checksum shim: a [`Vfs`] over base `B`. See the [crate docs](crate).
pub struct Cksm<B: Vfs> {
    inner: PageVfs<B, CksmCodec>,
}

impl<B: Vfs + fmt::Debug> fmt::Debug for Cksm<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cksm")
            .field("base", self.inner.base())
            .field("mode", &self.mode())
            .finish()
    }
}

impl<B: Vfs> Cksm<B> {
    /// cksumvfs-format checksums over `base` (which may hold other page
    /// layers: see [Stacking](crate#stacking)).
    pub fn new(base: B) -> Self {
        Cksm::with_mode(base, Mode::default())
    }

    /// Checksums of format `mode` for new databases over `base`.
    pub fn with_mode(base: B, mode: Mode) -> Self {
        install_sql_functions();
        Cksm {
            inner: PageVfs::new(base, CksmCodec::new(mode)),
        }
    }

    /// The format of new databases.
    pub fn mode(&self) -> Mode {
        self.inner.codec().mode()
    }

    /// The reserved bytes per page of a new database opened through this
    /// VFS: the trailer plus the slices of the page layers below it (layers
    /// stacked above add theirs).
    pub fn reserve(&self) -> usize {
        self.inner.page_layers().reserve()
    }

    /// The codec (its [`faults`](CksmCodec::faults) counter, the format
    /// detection).
    pub fn codec(&self) -> &Arc<CksmCodec> {
        self.inner.codec()
    }

    /// The base VFS.
    pub fn base(&self) -> &B {
        self.inner.base()
    }
}

impl<B: Vfs> Vfs for Cksm<B> {
    type File = PageFile<B::File, CksmCodec>;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Self::File> {
        self.inner.open(name, opts)
    }
    vfs_core::forward_vfs!(inner);
}

/// Registers `verify_checksum` on every connection opened from now on (once
/// per process; done by every `Cksm` constructor).
pub fn install_sql_functions() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let r = hooks::on_connection(|conn| {
            let one = conn.create_scalar_function("verify_checksum", 1, true, |args| {
                Ok(match args.first().and_then(ArgValue::as_blob) {
                    Some(page) => verify_cksumvfs_page(page)
                        .map_or(SqlValue::Null, |ok| SqlValue::Integer(ok.into())),
                    None => SqlValue::Null,
                })
            });
            let two = conn.create_scalar_function("verify_checksum", 2, true, |args| {
                let page = args.first().and_then(ArgValue::as_blob);
                let pgno = args
                    .get(1)
                    .and_then(ArgValue::as_i64)
                    .and_then(|p| u32::try_from(p).ok());
                Ok(match (page, pgno) {
                    (Some(page), Some(pgno)) => verify_crc_page(page, pgno)
                        .map_or(SqlValue::Null, |ok| SqlValue::Integer(ok.into())),
                    _ => SqlValue::Null,
                })
            });
            if let Err(e) = one.and(two) {
                // Never fail an open over a convenience function.
                vfs_core::log(
                    e.code().unwrap_or(codes::SQLITE_ERROR),
                    &format!("vfs-cksm: verify_checksum not registered: {e}"),
                );
            }
            Ok(())
        });
        if let Err(e) = r {
            vfs_core::log(
                e.code().unwrap_or(codes::SQLITE_ERROR),
                &format!("vfs-cksm: connection hook unavailable: {e}"),
            );
        }
    });
}

/// How long [`enable`] waits for other connections' locks.
const HELPER_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Turns checksums on for the existing database at `uri`, a `file:` URI (or
/// path) that opens it through a cksm VFS (`file:app.db?vfs=cksm`): on a
/// connection of its own, requests the reserve its format needs
/// (`SQLITE_FCNTL_RESERVE_BYTES`) and rewrites the database with `VACUUM`.
/// Afterwards `PRAGMA checksum_format` names the format. A database
/// already in a checksum format is left as it is; an empty one is
/// checksummed from its first write.
///
/// It needs no Rust SQLite binding: the connection is vfs-core's own
/// [`Database`]. On a connection the application already has open (through
/// rusqlite, sqlx, diesel, …) the same is one statement, `VACUUM`: the cksm
/// VFS's connection hook requested the reserve when that connection opened.
///
/// In WAL mode the rewritten pages go to the WAL and `enable` then runs a
/// checkpoint; if other connections' reads hold it back, the file takes the
/// format at the next complete checkpoint (the pragmas report the main
/// database file).
///
/// Errors: `SQLITE_CANTOPEN` for a database that does not exist;
/// `SQLITE_MISUSE` if `uri` does not open it through a cksm VFS;
/// `VACUUM`'s errors (in WAL mode a reserve change needs no other
/// connection reading, and `SQLITE_BUSY` when another connection keeps a
/// lock for more than 5 seconds);
/// `SQLITE_ERROR` if the database keeps a reserve no cksm format uses
/// (SQLite never shrinks a reserve).
///
/// ```
/// use vfs_core::{Native, register};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("old.db");
/// // A plain database written without checksums.
/// let plain = rusqlite::Connection::open(&path).unwrap();
/// plain.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (42);").unwrap();
/// drop(plain);
///
/// let reg = register("cksm-enable-doc", vfs_cksm::Cksm::new(Native::new()?), false)?;
/// let uri = format!("file:{}?vfs=cksm-enable-doc", path.display());
/// vfs_cksm::enable(&uri)?;
/// let conn = rusqlite::Connection::open(&uri).unwrap();
/// let format: String = conn.query_row("PRAGMA checksum_format", [], |r| r.get(0)).unwrap();
/// assert_eq!(format, "cksumvfs");
/// let on: String = conn.query_row("PRAGMA checksum_verification", [], |r| r.get(0)).unwrap();
/// assert_eq!(on, "1");
/// drop(conn);
/// reg.unregister().map_err(|(_, e)| e)?;
/// # Ok::<(), vfs_core::Error>(())
/// ```
pub fn enable(uri: &str) -> Result<()> {
    let db = Database::open(uri, OpenMode::ReadWrite)?;
    db.set_busy_timeout(HELPER_BUSY_TIMEOUT)?;
    let format = |db: &Database| db.query_text("PRAGMA checksum_format", &[]);
    let Some(current) = format(&db)? else {
        return Err(Error::new(
            codes::SQLITE_MISUSE,
            format!("{uri:?} does not open the database through a cksm VFS"),
        ));
    };
    if Mode::from_name(&current).is_some() {
        return Ok(());
    }
    let wanted = db
        .query_text(&format!("PRAGMA {RESERVE_PRAGMA}"), &[])?
        .unwrap_or_default();
    let n: u8 = wanted.trim().parse().map_err(|_| {
        Error::new(
            codes::SQLITE_ERROR,
            format!("unexpected answer {wanted:?} to PRAGMA {RESERVE_PRAGMA}"),
        )
    })?;
    db.connection().set_reserve_bytes("main", n)?;
    if db.query_i64("PRAGMA page_count", &[])?.unwrap_or(0) == 0 {
        // Nothing written yet: the first page will be written checksummed.
        return Ok(());
    }
    db.execute_batch("VACUUM")?;
    let mode = db
        .query_text("PRAGMA journal_mode", &[])?
        .unwrap_or_default();
    if mode.eq_ignore_ascii_case("wal") {
        // The rewritten pages are in the WAL; the file takes the format when
        // they are checkpointed (page 1 first). Readers may delay that.
        let busy = db.query_i64("PRAGMA wal_checkpoint(TRUNCATE)", &[])?;
        if busy != Some(0) {
            return Ok(());
        }
    }
    match format(&db)?.as_deref().and_then(Mode::from_name) {
        Some(_) => Ok(()),
        None => Err(Error::new(
            codes::SQLITE_ERROR,
            format!(
                "VACUUM left the database without checksums: it keeps a reserve of more than \
                 {wanted} bytes per page that no cksm format uses"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition: the serial recurrence over little-endian u32 pairs.
    fn serial(data: &[u8]) -> (u32, u32) {
        let mut s = (0u32, 0u32);
        for g in data.as_chunks::<8>().0 {
            let w0 = u32::from_le_bytes([g[0], g[1], g[2], g[3]]);
            let w1 = u32::from_le_bytes([g[4], g[5], g[6], g[7]]);
            s.0 = s.0.wrapping_add(w0).wrapping_add(s.1);
            s.1 = s.1.wrapping_add(w1).wrapping_add(s.0);
        }
        s
    }

    /// The blocked dot-product evaluation equals the serial recurrence for
    /// every length: short ones, every page size's body, lengths just
    /// around block boundaries, and lengths with bytes past the last whole
    /// pair (ignored).
    #[test]
    fn blocked_sums_equal_the_serial_recurrence() {
        let mut x: u64 = 7;
        let data: Vec<u8> = (0..65536)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect();
        let page_bodies = [504, 1016, 2040, 4088, 8184, 16376, 32760, 65528];
        let around_blocks = [4080, 4096, 4104, 8192, 8200, 12288, 61440, 65536];
        for len in (0..=1100).chain(page_bodies).chain(around_blocks) {
            assert_eq!(fletcher(&data[..len]), serial(&data[..len]), "length {len}");
        }
    }
}
