//! What a codec plugs into the layer: the [`PageCodec`] trait and what it
//! is handed ([`PageCtx`], [`StreamCtx`], [`FileInfo`], [`FileStatus`]).

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use vfs_core::{
    Error, FileControl, FileKind, FileName, LockLevel, OpenName, OpenOptions, Result, codes,
};

/// How a codec wants a kind of file mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mapping {
    /// Pass the file through untouched.
    None,
    /// Whole page images (see the [crate docs](crate) for each kind).
    Pages,
    /// Arbitrary byte ranges with their absolute offset, for a
    /// length-preserving, position-local transform.
    Stream,
}

/// Whether a hook encodes (on the way to the base) or decodes (on the way
/// back to SQLite).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// SQLite's bytes → stored bytes.
    Encode,
    /// Stored bytes → SQLite's bytes.
    Decode,
}

/// Where a layer sits in its stack, for one file: the reserved bytes per
/// page the page layers below it and above it claim. Slices are counted
/// from the end of the page, the lowest layer last, so a layer's own slice
/// of `own` bytes is [`slice`](Self::slice), and a database is in the
/// stack's format when its reserve is [`total`](Self::total).
///
/// `below` comes from the base when the layer is built
/// ([`Vfs::page_layers`](vfs_core::Vfs::page_layers)); `above` from the
/// layers that opened the file through this one
/// ([`OpenOptions::page_reserve_above`](vfs_core::OpenOptions::page_reserve_above)).
///
/// ```
/// // cksm's 8-byte trailer under crypto's 48-byte slice, 4096-byte pages.
/// let cksm = vfs_page::Stacking { below: 0, above: 48 };
/// assert_eq!(cksm.slice(4096, 8), 4088..4096);
/// assert_eq!(cksm.total(8), 56);
/// let crypto = vfs_page::Stacking { below: 8, above: 0 };
/// assert_eq!(crypto.slice(4096, 48), 4040..4088);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stacking {
    /// Reserved bytes per page claimed by the page layers below (the last
    /// bytes of each page).
    pub below: usize,
    /// Reserved bytes per page claimed by the page layers above.
    pub above: usize,
}

impl Stacking {
    /// The reserve of a database in this stack's format, given this layer's
    /// own slice of `own` bytes.
    pub fn total(self, own: usize) -> usize {
        self.above + own + self.below
    }

    /// This layer's slice of `own` bytes in a page of `page_size` bytes.
    /// The caller makes sure the page holds it (`page_size ≥ below + own`).
    pub fn slice(self, page_size: usize, own: usize) -> std::ops::Range<usize> {
        let end = page_size - self.below;
        end - own..end
    }
}

/// A file being opened, for [`PageCodec::open`].
#[derive(Clone, Copy, Debug)]
pub struct FileInfo<'a> {
    /// What the file is.
    pub kind: FileKind,
    /// Its path (`"<temp>"` for an anonymous temporary file).
    pub path: &'a FileName,
    /// Where the layer sits in the stack the file is opened through.
    pub stacking: Stacking,
}

/// What the layer knows about an open file, for
/// [`PageCodec::file_control`].
#[derive(Clone, Copy, Debug)]
pub struct FileStatus<'a> {
    /// What the file is.
    pub kind: FileKind,
    /// Its path (`"<temp>"` for an anonymous temporary file).
    pub path: &'a FileName,
    /// The database page size, if known.
    pub page_size: Option<usize>,
    /// The database's total reserved bytes per page (header byte 20), if
    /// known. For a main database it is re-read from the stored header
    /// before every `PRAGMA` the codec [owns](PageCodec::owns_pragma)
    /// reaches it.
    pub reserve: Option<usize>,
    /// Where the layer sits in the stack the file was opened through.
    pub stacking: Stacking,
}

/// Where a page image belongs, handed to every encode and decode.
#[derive(Clone, Copy, Debug)]
pub struct PageCtx<'a> {
    /// The kind of file the image lives in.
    pub kind: FileKind,
    /// The file's path (`"<temp>"` for an anonymous temporary file).
    pub path: &'a FileName,
    /// The database page number the image belongs to (1-based): from the
    /// offset for database files, from the frame header for WAL frames, from
    /// the record for journals.
    pub pgno: u32,
    /// The page size (the image's length).
    pub page_size: usize,
    /// The database's total reserved bytes per page (page-1 header byte 20),
    /// when known: always for a main database once page 1 exists; for WAL
    /// and journal files, what any file of the same database saw last
    /// through this VFS; possibly `None` for temporary files, whose page 1
    /// may be written last.
    pub reserve: Option<usize>,
    /// (Writes of page 1 of a database file.) The reserve recorded in the
    /// page 1 stored before this write, `None` if none is stored yet, so a
    /// codec can refuse a write that would drop its format. Otherwise equal
    /// to [`reserve`](Self::reserve).
    pub stored_reserve: Option<usize>,
    /// The image's offset in the file.
    pub offset: u64,
    /// (Decode only.) The read asked for less than this page; the whole page
    /// was read to serve it (or, for a write covering part of the page, to
    /// merge the new bytes into it).
    pub partial: bool,
    /// (Decode only, [`verify_only`](PageCodec::verify_only) codecs.) The
    /// layer is trying these bytes as one of two page sizes: while SQLite
    /// changes the page size of a database (a `VACUUM` or a backup into it),
    /// its pages are for a while in either layout. A failure is not a fault
    /// yet: do not count or log it. When no layout fits, the layer decodes
    /// once more with `tentative` false and reports that error.
    pub tentative: bool,
    /// (Decode only.) The image is read by crash recovery: a record of a
    /// rollback journal this handle did not write (a hot journal played
    /// back), or a whole WAL frame this handle did not write (WAL
    /// recovery). Only then may the codec answer [`PageCtx::torn`] for an
    /// image it cannot authenticate: the layer makes SQLite see the end of
    /// the log there, as for a write a power cut tore.
    pub recovery: bool,
    /// (WAL frames, and their checksum hook.) Bytes 0–15 of the frame's
    /// header, as SQLite wrote them and as stored: page number, commit size
    /// and the two salts of the WAL generation the frame belongs to.
    pub frame_header: Option<[u8; 16]>,
    /// Where the layer sits in the stack the file was opened through: its
    /// slice is [`Stacking::slice`], and the database is in the stack's
    /// format when [`reserve`](Self::reserve) is [`Stacking::total`].
    pub stacking: Stacking,
}

impl PageCtx<'_> {
    /// `"<path> (<kind>) page <pgno> at offset <offset>"`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}) page {} at offset {}",
            self.path,
            self.kind.name(),
            self.pgno,
            self.offset
        )
    }

    /// An error with `code` whose message names this page.
    pub fn error(&self, code: i32, what: impl fmt::Display) -> Error {
        Error::new(code, format!("{}: {what}", self.describe()))
    }

    /// The answer of a decode that finds the image torn, during
    /// [`recovery`](Self::recovery) only: the layer ends the log there
    /// (a short read of a journal record; a WAL frame whose salts no
    /// longer match its WAL). Outside recovery the layer reports it as
    /// `SQLITE_IOERR_DATA`.
    pub fn torn(&self, why: impl fmt::Display) -> Error {
        Error::new(TORN, format!("{}: {why}", self.describe()))
    }
}

/// The code of [`PageCtx::torn`].
pub(crate) const TORN: i32 = codes::SQLITE_IOERR_SHORT_READ;

/// Where a byte range lives, for [`Mapping::Stream`] codecs.
#[derive(Clone, Copy, Debug)]
pub struct StreamCtx<'a> {
    /// The kind of file.
    pub kind: FileKind,
    /// The file's path (`"<temp>"` for an anonymous temporary file).
    pub path: &'a FileName,
    /// The absolute offset of the range's first byte.
    pub offset: u64,
}

/// A page transform plugged into [`PageVfs`](crate::PageVfs).
///
/// See the [crate docs](crate) for what the layer guarantees and what a
/// codec must guarantee (above all: decode must give back what SQLite
/// wrote). All methods are called with the file's own per-file state, from
/// one thread at a time per file.
pub trait PageCodec: Send + Sync + 'static {
    /// Per-file state, created by [`open`](Self::open) (keys, salts,
    /// toggles, statistics…).
    type State: Send + 'static;

    /// How files of `kind` are mapped. `Pages` for `TempJournal` or
    /// `SuperJournal` makes the open fail (`SQLITE_CANTOPEN`).
    fn mapping(&self, kind: FileKind) -> Mapping;

    /// The layer's name in messages (the codec's type name unless
    /// overridden).
    fn name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }

    /// The reserved bytes per page this layer claims for itself in a new
    /// database (0: none). The layer sits above the slices of the page
    /// layers below it ([`Stacking`]); the stack's total is answered to
    /// `PRAGMA vfs_page_reserve` and applied to new connections
    /// automatically.
    fn reserve(&self) -> usize {
        0
    }

    /// The smallest page size the codec handles (512, SQLite's smallest,
    /// by default). [`register`](vfs_core::register) refuses a stack that
    /// would leave too few usable bytes in pages of this size.
    fn min_page_size(&self) -> usize {
        512
    }

    /// Whether decoding never changes bytes and encoding changes only the
    /// codec's slice of the page's reserved bytes ([`Stacking::slice`]),
    /// laying out a page whose database reserve is not known yet
    /// ([`PageCtx::reserve`] `None`: a new database's pages spilled before
    /// page 1) for the stack's reserve ([`Stacking::total`]): a checksum
    /// verifier. SQLite's header reads of database files are then served
    /// from the base directly, as its own cksumvfs does, and the layer
    /// follows SQLite through page size changes (whose pages arrive in
    /// pieces it can store as written).
    fn verify_only(&self) -> bool {
        false
    }

    /// Creates the state of a file being opened (only for kinds whose
    /// mapping is not [`Mapping::None`]). `name` answers URI parameters
    /// (`?key=...`) and, for a journal or WAL, the database's name. An error
    /// fails the open.
    fn open(
        &self,
        file: &FileInfo<'_>,
        name: &OpenName<'_>,
        opts: OpenOptions,
    ) -> Result<Self::State>;

    /// Transforms `image` (a copy of what SQLite wrote) into what is stored.
    fn encode(&self, state: &mut Self::State, ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()>;

    /// Transforms `image` (what is stored) back into what SQLite wrote, or
    /// fails (`SQLITE_IOERR_DATA`, `SQLITE_NOTADB`, …).
    fn decode(&self, state: &mut Self::State, ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()>;

    /// (Database files.) Serves a read of part of a page: `image` is the
    /// whole stored page, `ctx` has [`PageCtx::partial`] set, and the bytes
    /// `range` of the decoded page go to `out`. The default
    /// [decodes](Self::decode) `image` in place and copies them. A codec
    /// that keeps the decoded form of a stored page may copy from it and
    /// leave `image` as stored, as long as it fails exactly where `decode`
    /// would.
    fn decode_part(
        &self,
        state: &mut Self::State,
        ctx: &PageCtx<'_>,
        image: &mut [u8],
        range: Range<usize>,
        out: &mut [u8],
    ) -> Result<()> {
        self.decode(state, ctx, image)?;
        out.copy_from_slice(&image[range]);
        Ok(())
    }

    /// Transforms the two checksum words (bytes 16–23) of a WAL frame header;
    /// `ctx` describes the frame's page (offset: the frame header's). The
    /// default leaves them as they are.
    fn wal_frame_checksum(
        &self,
        _state: &mut Self::State,
        _ctx: &PageCtx<'_>,
        _checksum: &mut [u8; 8],
        _dir: Direction,
    ) -> Result<()> {
        Ok(())
    }

    /// Transforms the 4-byte checksum that ends a rollback-journal record;
    /// `ctx` describes the record's page (offset: the checksum's). The
    /// default leaves it as it is.
    fn journal_checksum(
        &self,
        _state: &mut Self::State,
        _ctx: &PageCtx<'_>,
        _checksum: &mut [u8; 4],
        _dir: Direction,
    ) -> Result<()> {
        Ok(())
    }

    /// Rollback journals: sees the first journal header (offset 0).
    ///
    /// `Encode`: SQLite writes it; `header` is the whole write, which may
    /// be changed before it is stored: bytes 28..48 (zero in SQLite's
    /// header, never read by SQLite; a transformed database's journal
    /// header is at least 512 bytes, its sector size) are the codec's. A
    /// write of fewer than 48 bytes at offset 0 (SQLite zeroing the header
    /// of a finished journal, 28 bytes) and a truncation below 48 bytes (an
    /// empty `header`) also come here: the journal no longer describes a
    /// transaction.
    ///
    /// `Decode`: the layer reads the stored header (up to 48 bytes) before
    /// it maps records or serves SQLite's reads of it; restore bytes 28..48
    /// to zeros. Answer `Ok(false)` when the journal is not one the
    /// database may play back (forged, altered, or stale): the layer then
    /// shows SQLite a journal without a valid header, which SQLite ignores
    /// (and deletes when it was about to play it back), before it
    /// truncates or writes anything. The default accepts every header.
    fn journal_header(
        &self,
        _state: &mut Self::State,
        _ctx: &StreamCtx<'_>,
        _header: &mut [u8],
        _dir: Direction,
    ) -> Result<bool> {
        Ok(true)
    }

    /// Main databases: the file's lock changed to `level` (after the base
    /// granted it, or after an unlock). Answer `true` to have the layer
    /// read page 1 and [`decode`](Self::decode) it right away (with
    /// [`PageCtx::partial`] set; its result is not reported, an I/O error
    /// of the read fails the lock), so the codec knows the stored page 1
    /// as it is under this lock. The default does nothing.
    fn locked(&self, _state: &mut Self::State, _level: LockLevel) -> bool {
        false
    }

    /// [`Mapping::Stream`] only: transforms bytes about to be written at
    /// `ctx.offset`.
    fn encode_stream(
        &self,
        _state: &mut Self::State,
        ctx: &StreamCtx<'_>,
        _data: &mut [u8],
    ) -> Result<()> {
        Err(Error::new(
            codes::SQLITE_IOERR_WRITE,
            format!(
                "{} ({}): this codec maps the file as a stream but implements no encode_stream",
                ctx.path,
                ctx.kind.name()
            ),
        ))
    }

    /// [`Mapping::Stream`] only: transforms bytes just read from
    /// `ctx.offset`.
    fn decode_stream(
        &self,
        _state: &mut Self::State,
        ctx: &StreamCtx<'_>,
        _data: &mut [u8],
    ) -> Result<()> {
        Err(Error::new(
            codes::SQLITE_IOERR_READ,
            format!(
                "{} ({}): this codec maps the file as a stream but implements no decode_stream",
                ctx.path,
                ctx.kind.name()
            ),
        ))
    }

    /// Whether `PRAGMA name` (any case) is one this codec answers in
    /// [`file_control`](Self::file_control). Only those pragmas reach the
    /// codec, after the layer has re-read the stored header (so
    /// [`FileStatus`] is current); every other pragma goes to the base
    /// without any I/O by the layer, as it would on the base alone.
    fn owns_pragma(&self, _name: &str) -> bool {
        false
    }

    /// Sees every file control of a transformed file first, except the
    /// `PRAGMA`s it does not [own](Self::owns_pragma). `None`: not handled,
    /// the layer goes on (and forwards to the base); `Some(result)`:
    /// handled, nothing is forwarded.
    fn file_control(
        &self,
        _state: &mut Self::State,
        _file: &FileStatus<'_>,
        _ctl: &mut FileControl<'_>,
    ) -> Option<Result<()>> {
        None
    }
}

impl<C: PageCodec> PageCodec for Arc<C> {
    type State = C::State;
    fn mapping(&self, kind: FileKind) -> Mapping {
        (**self).mapping(kind)
    }
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn reserve(&self) -> usize {
        (**self).reserve()
    }
    fn min_page_size(&self) -> usize {
        (**self).min_page_size()
    }
    fn verify_only(&self) -> bool {
        (**self).verify_only()
    }
    fn open(
        &self,
        file: &FileInfo<'_>,
        name: &OpenName<'_>,
        opts: OpenOptions,
    ) -> Result<Self::State> {
        (**self).open(file, name, opts)
    }
    fn encode(&self, state: &mut Self::State, ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()> {
        (**self).encode(state, ctx, image)
    }
    fn decode(&self, state: &mut Self::State, ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()> {
        (**self).decode(state, ctx, image)
    }
    fn decode_part(
        &self,
        state: &mut Self::State,
        ctx: &PageCtx<'_>,
        image: &mut [u8],
        range: Range<usize>,
        out: &mut [u8],
    ) -> Result<()> {
        (**self).decode_part(state, ctx, image, range, out)
    }
    fn wal_frame_checksum(
        &self,
        state: &mut Self::State,
        ctx: &PageCtx<'_>,
        checksum: &mut [u8; 8],
        dir: Direction,
    ) -> Result<()> {
        (**self).wal_frame_checksum(state, ctx, checksum, dir)
    }
    fn journal_checksum(
        &self,
        state: &mut Self::State,
        ctx: &PageCtx<'_>,
        checksum: &mut [u8; 4],
        dir: Direction,
    ) -> Result<()> {
        (**self).journal_checksum(state, ctx, checksum, dir)
    }
    fn journal_header(
        &self,
        state: &mut Self::State,
        ctx: &StreamCtx<'_>,
        header: &mut [u8],
        dir: Direction,
    ) -> Result<bool> {
        (**self).journal_header(state, ctx, header, dir)
    }
    fn locked(&self, state: &mut Self::State, level: LockLevel) -> bool {
        (**self).locked(state, level)
    }
    fn encode_stream(
        &self,
        state: &mut Self::State,
        ctx: &StreamCtx<'_>,
        data: &mut [u8],
    ) -> Result<()> {
        (**self).encode_stream(state, ctx, data)
    }
    fn decode_stream(
        &self,
        state: &mut Self::State,
        ctx: &StreamCtx<'_>,
        data: &mut [u8],
    ) -> Result<()> {
        (**self).decode_stream(state, ctx, data)
    }
    fn owns_pragma(&self, name: &str) -> bool {
        (**self).owns_pragma(name)
    }
    fn file_control(
        &self,
        state: &mut Self::State,
        file: &FileStatus<'_>,
        ctl: &mut FileControl<'_>,
    ) -> Option<Result<()>> {
        (**self).file_control(state, file, ctl)
    }
}
