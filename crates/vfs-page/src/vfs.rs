//! [`PageVfs`] and its files: every read and write mapped to page images.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use vfs_core::{
    Control, DeviceCharacteristics, Error, File, FileControl, FileKind, FileName, FileNameBuf,
    LockLevel, OpenName, OpenOptions, PageLayer, PageLayers, Result, SyncFlags, Vfs, codes, fcntl,
};

use crate::codec_io::{CodecIo, copy_in, read_some, wipe};
use crate::db::DbMap;
use crate::geometry::PageGeometry;
use crate::journal::{JournalMap, SubJournalMap};
use crate::reserve::{RESERVE_PRAGMA, install_reserve_hook};
use crate::wal::WalMap;
use crate::{FileInfo, FileStatus, Mapping, PageCodec, Stacking, StreamCtx};

/// A base VFS whose files are mapped to page images for a [`PageCodec`].
/// See the [crate docs](crate).
pub struct PageVfs<B: Vfs, C: PageCodec> {
    base: B,
    codec: Arc<C>,
    /// The page layers of the stack from this one down (the base's, then
    /// this one).
    layers: PageLayers,
    /// Reserved bytes per page the layers below claim.
    below: usize,
    geometries: Mutex<HashMap<FileNameBuf, Weak<PageGeometry>>>,
    /// What files the codec leaves untouched get as their geometry: they
    /// never read or change it, and sharing one saves their open the map's
    /// lock, a hash of the name and an allocation (a rollback journal is
    /// opened per write transaction).
    untouched_geometry: Arc<PageGeometry>,
}

impl<B: Vfs + fmt::Debug, C: PageCodec> fmt::Debug for PageVfs<B, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageVfs")
            .field("base", &self.base)
            .field("layers", &self.layers)
            .finish()
    }
}

impl<B: Vfs, C: PageCodec> PageVfs<B, C> {
    /// Wraps `base` with `codec`. The codec's slice sits above the slices
    /// of the page layers `base` reports ([`Vfs::page_layers`]). The first
    /// call in the process also installs the connection hook that applies
    /// the stack's reserve to new databases.
    pub fn new(base: B, codec: C) -> Self {
        PageVfs::with_shared_codec(base, Arc::new(codec))
    }

    /// Like [`new`](Self::new) with a codec shared with the caller (to read
    /// its statistics or change its settings later).
    pub fn with_shared_codec(base: B, codec: Arc<C>) -> Self {
        install_reserve_hook();
        let mut layers = base.page_layers();
        let below = layers.reserve();
        layers.push(PageLayer {
            name: codec.name(),
            reserve: codec.reserve(),
            min_page_size: codec.min_page_size(),
        });
        PageVfs {
            base,
            codec,
            layers,
            below,
            geometries: Mutex::new(HashMap::new()),
            untouched_geometry: Arc::new(PageGeometry::new()),
        }
    }

    /// The base VFS.
    pub fn base(&self) -> &B {
        &self.base
    }

    /// The codec.
    pub fn codec(&self) -> &Arc<C> {
        &self.codec
    }

    fn geometry_for(&self, db: &FileName) -> Arc<PageGeometry> {
        let mut map = self.geometries.lock();
        if let Some(s) = map.get(db).and_then(Weak::upgrade) {
            return s;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let s = Arc::new(PageGeometry::new());
        map.insert(db.to_owned(), Arc::downgrade(&s));
        s
    }
}

impl<B: Vfs, C: PageCodec> Vfs for PageVfs<B, C> {
    type File = PageFile<B::File, C>;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Self::File> {
        let kind = opts.kind;
        let mapping = self.codec.mapping(kind);
        if mapping == Mapping::Pages
            && matches!(kind, FileKind::TempJournal | FileKind::SuperJournal)
        {
            return Err(Error::cant_open(format!(
                "page mapping is not available for {} files (use Stream or None)",
                kind.name()
            )));
        }
        let path = name.path().unwrap_or(FileName::new("<temp>")).to_owned();
        let stacking = Stacking {
            below: self.below,
            above: opts.page_reserve_above,
        };
        let info = FileInfo {
            kind,
            path: &path,
            stacking,
        };
        let state = match mapping {
            Mapping::None => None,
            _ => Some(self.codec.open(&info, name, opts)?),
        };
        let base_opts = OpenOptions {
            page_reserve_above: opts.page_reserve_above + self.codec.reserve(),
            ..opts
        };
        let base = self.base.open(name, base_opts)?;
        let geometry = match (mapping, kind) {
            (Mapping::None, _) => Some(Arc::clone(&self.untouched_geometry)),
            (_, FileKind::MainDb | FileKind::MainJournal | FileKind::Wal) => {
                name.database_name().map(|db| self.geometry_for(db))
            }
            _ => None,
        }
        .unwrap_or_else(|| Arc::new(PageGeometry::new()));
        let mapper = match (mapping, kind) {
            (Mapping::None, _) => Mapper::Pass,
            (Mapping::Stream, _) => Mapper::Stream,
            (Mapping::Pages, FileKind::Wal) => Mapper::Wal(WalMap::default()),
            (Mapping::Pages, FileKind::MainJournal) => Mapper::Journal(JournalMap::default()),
            (Mapping::Pages, FileKind::SubJournal) => Mapper::Sub(SubJournalMap::default()),
            (Mapping::Pages, _) => Mapper::Db(DbMap::default()),
        };
        Ok(PageFile {
            base,
            codec: self.codec.clone(),
            state,
            kind,
            path,
            mapper,
            scratch: Vec::new(),
            geometry,
            stacking,
        })
    }

    fn page_layers(&self) -> PageLayers {
        self.layers.clone()
    }

    vfs_core::forward_vfs!(base, except page_layers);
}

/// How a file's reads and writes reach the codec: per the codec's
/// [`Mapping`] for its kind, and for page images per the kind's layout.
enum Mapper {
    Pass,
    Stream,
    Db(DbMap),
    Wal(WalMap),
    Journal(JournalMap),
    Sub(SubJournalMap),
}

/// A file of a [`PageVfs`].
pub struct PageFile<F: File, C: PageCodec> {
    base: F,
    codec: Arc<C>,
    state: Option<C::State>,
    kind: FileKind,
    path: FileNameBuf,
    mapper: Mapper,
    scratch: Vec<u8>,
    geometry: Arc<PageGeometry>,
    stacking: Stacking,
}

impl<F: File, C: PageCodec> fmt::Debug for PageFile<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageFile")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("transformed", &self.state.is_some())
            .finish()
    }
}

impl<F: File, C: PageCodec> PageFile<F, C> {
    /// The base file.
    pub fn base(&self) -> &F {
        &self.base
    }

    /// The base file, mutably (bytes written through it bypass the codec).
    pub fn base_mut(&mut self) -> &mut F {
        &mut self.base
    }

    /// The codec's state for this file (`None` for an untransformed kind).
    pub fn state(&self) -> Option<&C::State> {
        self.state.as_ref()
    }

    /// The codec's state for this file, mutably.
    pub fn state_mut(&mut self) -> Option<&mut C::State> {
        self.state.as_mut()
    }

    /// The file's kind.
    pub fn kind(&self) -> FileKind {
        self.kind
    }

    /// The file's path (`"<temp>"` for an anonymous temporary file).
    pub fn path(&self) -> &FileName {
        &self.path
    }

    /// A database file's writes reached a resting point (a sync, the end
    /// of a transaction): pages a writer left in pieces are checksummed,
    /// and what the transaction's writes needed is forgotten.
    fn settle(&mut self) -> Result<()> {
        let Mapper::Db(m) = &mut self.mapper else {
            return Ok(());
        };
        let sealed = match self.state.as_mut() {
            Some(state) => {
                let mut io = CodecIo {
                    base: &mut self.base,
                    codec: &*self.codec,
                    state,
                    kind: self.kind,
                    path: &self.path,
                    geometry: &self.geometry,
                    stacking: self.stacking,
                };
                m.seal_pieces(&mut io, &mut self.scratch)
            }
            None => Ok(()),
        };
        m.settled();
        sealed
    }

    /// Who answers `PRAGMA name` (`set`: with a value) on this file.
    fn pragma_owner(&self, name: &str, set: bool) -> PragmaOwner {
        let main = self.kind == FileKind::MainDb;
        if main && name.eq_ignore_ascii_case(RESERVE_PRAGMA) && self.codec.reserve() > 0 {
            PragmaOwner::Reserve
        } else if self.state.is_none() {
            PragmaOwner::Base
        } else if main
            && set
            && matches!(self.mapper, Mapper::Db(_))
            && !self.codec.verify_only()
            && name.eq_ignore_ascii_case("page_size")
        {
            PragmaOwner::PageSize
        } else if self.codec.owns_pragma(name) {
            PragmaOwner::Codec
        } else {
            PragmaOwner::Base
        }
    }

    fn status(&mut self, refresh: bool) -> Result<(Option<usize>, Option<usize>)> {
        if let (Mapper::Db(m), Some(state)) = (&mut self.mapper, self.state.as_mut()) {
            let mut io = CodecIo {
                base: &mut self.base,
                codec: &*self.codec,
                state,
                kind: self.kind,
                path: &self.path,
                geometry: &self.geometry,
                stacking: self.stacking,
            };
            if refresh {
                m.refresh(&mut io)?;
            }
            return Ok((m.page_size(), m.reserve()));
        }
        Ok((self.geometry.page_size(), self.geometry.reserve()))
    }
}

/// Who answers a `PRAGMA` on a [`PageFile`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PragmaOwner {
    /// `PRAGMA vfs_page_reserve` on a main database.
    Reserve,
    /// `PRAGMA page_size = N` on a database file under a transforming codec.
    PageSize,
    /// One of [`PageCodec::owns_pragma`].
    Codec,
    /// Anything else: passed to the base untouched.
    Base,
}

/// Splits a `PageFile` into its mapper, scratch buffer and codec-facing
/// parts, or runs `$pass` for an untransformed file.
macro_rules! with_io {
    ($self:ident, $pass:expr, |$map:ident, $io:ident, $scratch:ident| $body:expr) => {{
        let Some(state) = $self.state.as_mut() else {
            return $pass;
        };
        let mut $io = CodecIo {
            base: &mut $self.base,
            codec: &*$self.codec,
            state,
            kind: $self.kind,
            path: &$self.path,
            geometry: &$self.geometry,
            stacking: $self.stacking,
        };
        let $scratch = &mut $self.scratch;
        let $map = &mut $self.mapper;
        $body
    }};
}

impl<F: File, C: PageCodec> PageFile<F, C> {
    /// Tells the codec of a main database its new lock level, and reads
    /// page 1 for it when it asks. An I/O error of that read is the lock's
    /// error (SQLite releases the lock as after any failed lock); what the
    /// decode finds is the codec's business.
    fn locked(&mut self, level: LockLevel) -> Result<()> {
        if self.kind != FileKind::MainDb {
            return Ok(());
        }
        with_io!(self, Ok(()), |map, io, scratch| {
            if io.codec.locked(io.state, level)
                && let Mapper::Db(m) = map
            {
                m.check_page1(&mut io, scratch)?;
            }
            Ok(())
        })
    }
}

impl<F: File, C: PageCodec> Drop for PageFile<F, C> {
    /// The scratch buffer last held a page image, decoded when it served a
    /// partial read: clear it before its memory goes back to the allocator.
    fn drop(&mut self) {
        // A rollback journal's buffer holds only what is stored (records
        // as encoded, headers): a record that fails to encode is wiped at
        // once (`journal.rs`). So closing a journal, once per write
        // transaction, needs no wipe.
        if !matches!(self.mapper, Mapper::Journal(_)) {
            wipe(&mut self.scratch);
        }
        match &mut self.mapper {
            Mapper::Wal(m) => m.wipe(),
            Mapper::Sub(m) => m.wipe(),
            _ => {}
        }
    }
}

/// The smallest sector size a transformed file reports (see
/// [`PageCodec::journal_header`]).
const MIN_SECTOR: u32 = 512;

/// Device characteristics a transformed file never reports, whatever its
/// base does: sub-page reads (SQLite would read part of an overflow page
/// directly, which a transform cannot serve without the whole page), and
/// atomic writes of any size or in batches (SQLite then keeps rollback
/// journals in memory and, when one spills, writes it out in chunks that
/// are not records, which the journal mapping cannot follow: they would
/// reach the base untransformed).
const TRANSFORM_CLEARS: i32 = DeviceCharacteristics::SUBPAGE_READ
    | DeviceCharacteristics::BATCH_ATOMIC
    | DeviceCharacteristics::ATOMIC_ANY;

impl<F: File, C: PageCodec> File for PageFile<F, C> {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        with_io!(self, self.base.read_at(buf, offset), |map, io, scratch| {
            match map {
                Mapper::Pass => io.base.read_at(buf, offset),
                Mapper::Stream => {
                    let got = read_some(io.base, buf, offset)?;
                    let ctx = StreamCtx {
                        kind: io.kind,
                        path: io.path,
                        offset,
                    };
                    io.codec.decode_stream(io.state, &ctx, &mut buf[..got])?;
                    Ok(got)
                }
                Mapper::Db(m) => m.read(&mut io, scratch, buf, offset),
                Mapper::Wal(m) => m.read(&mut io, scratch, buf, offset),
                Mapper::Journal(m) => m.read(&mut io, buf, offset),
                Mapper::Sub(m) => m.read(&mut io, buf, offset),
            }
        })
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        with_io!(self, self.base.write_at(buf, offset), |map, io, scratch| {
            match map {
                Mapper::Pass => io.base.write_at(buf, offset),
                Mapper::Stream => {
                    let out = copy_in(scratch, buf);
                    let ctx = StreamCtx {
                        kind: io.kind,
                        path: io.path,
                        offset,
                    };
                    io.codec.encode_stream(io.state, &ctx, out)?;
                    io.base.write_at(out, offset)
                }
                Mapper::Db(m) => m.write(&mut io, scratch, buf, offset),
                Mapper::Wal(m) => m.write(&mut io, scratch, buf, offset),
                Mapper::Journal(m) => m.write(&mut io, scratch, buf, offset),
                Mapper::Sub(m) => m.write(&mut io, scratch, buf, offset),
            }
        })
    }

    fn truncate(&mut self, size: u64) -> Result<()> {
        match &mut self.mapper {
            Mapper::Db(m) => m.invalidate(),
            Mapper::Wal(m) => m.truncated(size),
            Mapper::Sub(m) => m.truncated(size),
            Mapper::Journal(_) | Mapper::Pass | Mapper::Stream => {}
        }
        self.base.truncate(size)?;
        if !matches!(self.mapper, Mapper::Journal(_)) {
            return Ok(());
        }
        with_io!(self, Ok(()), |map, io, _scratch| match map {
            Mapper::Journal(m) => m.truncated(&mut io, size),
            _ => Ok(()),
        })
    }

    fn sync(&mut self, flags: SyncFlags) -> Result<()> {
        self.settle()?;
        self.base.sync(flags)
    }

    fn size(&mut self) -> Result<u64> {
        let size = self.base.size()?;
        Ok(match &self.mapper {
            Mapper::Sub(m) => size.max(m.held_end()),
            _ => size,
        })
    }

    fn lock(&mut self, level: LockLevel) -> Result<()> {
        self.base.lock(level)?;
        self.locked(level)
    }

    fn unlock(&mut self, level: LockLevel) -> Result<()> {
        if level > LockLevel::Shared {
            if let Mapper::Db(m) = &mut self.mapper {
                m.invalidate();
            }
            self.base.unlock(level)?;
            return self.locked(level);
        }
        // The lock goes in any case; the codec hears of it after.
        let settled = self.settle();
        self.base.unlock(level).and(settled)?;
        self.locked(level)
    }

    fn file_control(&mut self, ctl: &mut FileControl<'_>) -> Result<()> {
        let pragma = match ctl.control() {
            Control::Pragma(mut p) => {
                let owner = self.pragma_owner(p.name(), p.value().is_some());
                if owner == PragmaOwner::Reserve {
                    if p.value().is_some() {
                        return Err(Error::new(
                            codes::SQLITE_ERROR,
                            format!("PRAGMA {RESERVE_PRAGMA} is read-only"),
                        ));
                    }
                    // The whole stack's reserve: the layers above this one
                    // opened the file through it, the layers below are its
                    // base.
                    let reserve = self.stacking.total(self.codec.reserve());
                    p.set_result(&reserve.to_string());
                    return Ok(());
                }
                Some(owner)
            }
            _ => None,
        };
        match pragma {
            // Not the layer's: SQLite's own pragmas (journal_mode,
            // cache_size, …) reach the base without any I/O here.
            Some(PragmaOwner::Base) | Some(PragmaOwner::Reserve) => {}
            Some(PragmaOwner::PageSize) => {
                // Page 1 exists: a new page size would only take effect
                // through VACUUM, which writes the new pages in pieces of
                // the old size. Swallowed, as cksumvfs does. (Reading the
                // header is this pragma's own I/O.)
                if self.status(true)?.0.is_some() {
                    return Ok(());
                }
            }
            // A file the codec leaves untouched: nothing of the layer's
            // to say (and no header to read for it).
            Some(PragmaOwner::Codec) | None if self.state.is_none() => {}
            Some(PragmaOwner::Codec) | None => {
                // The codec's own pragmas see the stored header as it is
                // now; other file controls see what the layer knows.
                let (page_size, reserve) = self.status(pragma.is_some())?;
                let status = FileStatus {
                    kind: self.kind,
                    path: &self.path,
                    page_size,
                    reserve,
                    stacking: self.stacking,
                };
                if let Some(state) = self.state.as_mut()
                    && let Some(r) = self.codec.file_control(state, &status, ctl)
                {
                    return r;
                }
                if self.state.is_some() && ctl.op() == fcntl::SQLITE_FCNTL_MMAP_SIZE {
                    // No memory mapping under a transform: answer "not
                    // handled" instead of letting the base map the file.
                    return Err(Error::not_found());
                }
            }
        }
        self.base.file_control(ctl)
    }

    fn device_characteristics(&self) -> DeviceCharacteristics {
        let caps = self.base.device_characteristics();
        if self.state.is_some() {
            caps.without(TRANSFORM_CLEARS)
        } else {
            caps
        }
    }

    fn sector_size(&self) -> u32 {
        let sector = self.base.sector_size();
        if self.state.is_some() {
            // SQLite sizes rollback-journal headers by the database's sector:
            // at least 512 leaves a codec room in the first header.
            sector.max(MIN_SECTOR)
        } else {
            sector
        }
    }

    vfs_core::forward_file!(
        base,
        except read_at,
        write_at,
        truncate,
        sync,
        size,
        lock,
        unlock,
        file_control,
        sector_size,
        device_characteristics
    );
}
