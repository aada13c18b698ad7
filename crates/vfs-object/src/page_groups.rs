//! Snapshots of large databases as page groups (`docs/object.md` §14,
//! `docs/formats.md`).
//!
//! A database of more than [`ObjectOptions::snapshot_group_pages`] chunks
//! is compacted one group of chunks at a time: group `g` (chunks
//! `g·G .. (g+1)·G`) becomes the object `group/<LSN>/<g>` (a commit object
//! of kind [`KIND_GROUP`]), and once every group is stored a small
//! **manifest** is created at `snap/<LSN>` (conditional create): it names
//! each group's object with the CRC-32 of its header and index, so the
//! snapshot exists only once all its groups do, and a reader trusts a group
//! only if it is the one its manifest names. Memory is bounded by one group
//! (and no PUT is larger than one group), not by the database.
//!
//! Readers open from a manifest with one GET for it and one per group for
//! the group's header and index (16 at once); pages are range reads inside
//! their group object. Group objects no kept manifest names are deleted by
//! garbage collection once older than the retention window (a compaction
//! that crashed before its manifest leaves such orphans; nothing reads
//! them).
//!
//! [`ObjectOptions::snapshot_group_pages`]: crate::ObjectOptions::snapshot_group_pages

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use vfs_core::{Error, Result, codes};

use crate::Shared;
use crate::cache::PageCache;
use crate::client::{Client, FailureKind, StoreError};
use crate::compact::{CompactReport, encode_state, gather_pages};
use crate::db::{
    CatchUpError, Db, apply_commit, check_identity, extend_probe, index_from_probe, probe_object,
};
use crate::db::{FETCH_CONCURRENCY, store_error};
use crate::format::{
    self, ENTRY_LEN, FORMAT_VERSION, FormatError, HEADER_LEN, Header, Index, KIND_GROUP,
    KIND_SNAPSHOT, MAGIC,
};
use crate::keys::DbKeys;
use crate::version::{CommitInfo, Version};

/// Object kind of a group snapshot's manifest (`snap/<LSN>`).
pub const KIND_MANIFEST: u16 = 4;
/// Default pages per group: 4,096 (16 MiB at 4 KiB pages). Big enough
/// that a cold open of a 100 GiB database reads ~6,400 small indexes and
/// a PUT is far below every store's single-request limit (5 GiB on S3),
/// small enough that compaction holds little memory.
pub const DEFAULT_GROUP_PAGES: u32 = 4096;
/// Length of one manifest entry.
const MANIFEST_ENTRY_LEN: usize = 16;
const CRC_AT: usize = 92;

/// One group of a manifest: the object holding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupRef {
    /// LSN of the snapshot that wrote the object (`group/<lsn>/<g>`); 0
    /// for a group of holes only, which has no object.
    pub lsn: u64,
    /// Pages it stores.
    pub pages: u32,
    /// The CRC-32 stored in the object's header (it covers its header and
    /// index, so it names exactly one header and index).
    pub index_crc: u32,
}

/// A group snapshot's manifest: what `snap/<LSN>` holds for a database
/// compacted as page groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub lsn: u64,
    pub txid: [u8; 16],
    pub db_size: u64,
    pub chunk_size: u32,
    pub time_ms: u64,
    /// Chunks per group (the last group may hold fewer).
    pub group_pages: u32,
    /// By group number.
    pub groups: Vec<GroupRef>,
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn bad(msg: impl Into<String>) -> FormatError {
    FormatError(msg.into())
}

/// Whether `b` (at least 12 bytes) starts like a manifest.
pub fn is_manifest(b: &[u8]) -> bool {
    b.len() >= 12 && b[..8] == MAGIC && u16::from_le_bytes([b[10], b[11]]) == KIND_MANIFEST
}

impl Manifest {
    /// Chunks of the database.
    pub fn chunk_count(&self) -> u64 {
        self.db_size.div_ceil(u64::from(self.chunk_size))
    }

    /// The chunks of group `g`.
    pub fn group_range(&self, g: u32) -> Range<u64> {
        let gp = u64::from(self.group_pages);
        let start = u64::from(g) * gp;
        start..(start + gp).min(self.chunk_count())
    }

    /// Length of group `g`'s object.
    pub fn group_object_len(&self, g: u32) -> u64 {
        let pages = u64::from(self.groups[g as usize].pages);
        HEADER_LEN as u64 + pages * (ENTRY_LEN as u64 + u64::from(self.chunk_size))
    }

    /// Length of the encoded manifest.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.groups.len() * MANIFEST_ENTRY_LEN
    }

    /// The bytes of `snap/<lsn>` (layout in `docs/formats.md`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&KIND_MANIFEST.to_le_bytes());
        out.extend_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        out.extend_from_slice(&self.lsn.to_le_bytes());
        out.extend_from_slice(&self.lsn.saturating_sub(1).to_le_bytes());
        out.extend_from_slice(&self.txid);
        out.extend_from_slice(&self.db_size.to_le_bytes());
        out.extend_from_slice(&self.chunk_size.to_le_bytes());
        out.extend_from_slice(&(self.groups.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.time_ms.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // flags
        out.extend_from_slice(&(MANIFEST_ENTRY_LEN as u32).to_le_bytes());
        out.extend_from_slice(&u64::from(self.group_pages).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // reserved
        out.extend_from_slice(&0u32.to_le_bytes()); // CRC, filled below
        debug_assert_eq!(out.len(), HEADER_LEN);
        for g in &self.groups {
            out.extend_from_slice(&g.lsn.to_le_bytes());
            out.extend_from_slice(&g.pages.to_le_bytes());
            out.extend_from_slice(&g.index_crc.to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks a whole manifest (`object_len`: its listed size,
    /// when known).
    pub fn decode(b: &[u8], object_len: Option<u64>) -> Result<Manifest, FormatError> {
        if b.len() < HEADER_LEN {
            return Err(bad(format!(
                "manifest is {} bytes, shorter than its {HEADER_LEN}-byte header",
                b.len()
            )));
        }
        if !is_manifest(b) {
            return Err(bad("not a vfs-object snapshot manifest (magic or kind)"));
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != FORMAT_VERSION {
            return Err(bad(format!(
                "format version {version} (this build reads version {FORMAT_VERSION})"
            )));
        }
        if le32(b, 12) as usize != HEADER_LEN || le32(b, 76) as usize != MANIFEST_ENTRY_LEN {
            return Err(bad("manifest header or entry length is not version 1's"));
        }
        let n = le32(b, 60) as usize;
        let len = HEADER_LEN + n * MANIFEST_ENTRY_LEN;
        if b.len() != len || object_len.is_some_and(|l| l != len as u64) {
            return Err(bad(format!(
                "manifest of {n} groups is {len} bytes, not {}",
                object_len.unwrap_or(b.len() as u64)
            )));
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&b[..CRC_AT]);
        crc.update(&[0; 4]);
        crc.update(&b[CRC_AT + 4..]);
        if crc.finalize() != le32(b, CRC_AT) {
            return Err(bad("manifest checksum mismatch"));
        }
        let lsn = le64(b, 16);
        let chunk_size = le32(b, 56);
        let group_pages = le64(b, 80);
        if lsn == 0 || le64(b, 24) != lsn - 1 {
            return Err(bad(format!("manifest LSN {lsn} with a wrong parent")));
        }
        if !format::valid_chunk_size(u64::from(chunk_size)) {
            return Err(bad(format!("chunk size {chunk_size} is not valid")));
        }
        if le32(b, 72) != 0 || le32(b, 88) != 0 {
            return Err(bad("manifest flags or reserved field are not zero"));
        }
        let group_pages = u32::try_from(group_pages)
            .ok()
            .filter(|&g| g > 0)
            .ok_or_else(|| bad(format!("{group_pages} pages per group")))?;
        let mut m = Manifest {
            lsn,
            txid: b[32..48].try_into().expect("16 bytes"),
            db_size: le64(b, 48),
            chunk_size,
            time_ms: le64(b, 64),
            group_pages,
            groups: Vec::with_capacity(n),
        };
        let count = m.chunk_count();
        if count > u64::from(u32::MAX) || count.div_ceil(u64::from(group_pages)) != n as u64 {
            return Err(bad(format!(
                "{n} groups of {group_pages} pages for a database of {count} chunks"
            )));
        }
        for (g, at) in (HEADER_LEN..len).step_by(MANIFEST_ENTRY_LEN).enumerate() {
            let r = GroupRef {
                lsn: le64(b, at),
                pages: le32(b, at + 8),
                index_crc: le32(b, at + 12),
            };
            let span = m.group_range(g as u32);
            if r.lsn > lsn
                || (r.lsn == 0) != (r.pages == 0)
                || u64::from(r.pages) > span.end - span.start
            {
                return Err(bad(format!(
                    "group {g}: LSN {} with {} pages in a group of {} chunks",
                    r.lsn,
                    r.pages,
                    span.end - span.start
                )));
            }
            m.groups.push(r);
        }
        Ok(m)
    }

    /// An index that describes the snapshot for listings and time travel
    /// (header fields; no entries: the pages are in the groups).
    pub fn summary(&self) -> Index {
        Index {
            header: Header {
                kind: KIND_SNAPSHOT,
                lsn: self.lsn,
                parent: self.lsn - 1,
                txid: self.txid,
                db_size: self.db_size,
                chunk_size: self.chunk_size,
                entries: self.groups.iter().map(|g| g.pages).sum(),
                time_ms: self.time_ms,
                flags: 0,
                data_offset: 0,
            },
            entries: Vec::new(),
        }
    }
}

/// What `snap/<LSN>` holds: one whole snapshot object, or a manifest.
pub(crate) enum SnapHead {
    Whole(Index),
    Groups(Manifest),
}

/// Reads `snap/<lsn>` (listed with `size` bytes): the index of a whole
/// snapshot, or a manifest. One GET (two for an index or manifest past
/// 64 KiB).
pub(crate) async fn fetch_snapshot(
    client: &Client,
    keys: &DbKeys,
    lsn: u64,
    size: u64,
) -> Result<SnapHead, CatchUpError> {
    let key = keys.snapshot(lsn);
    let format_err = |e: FormatError| CatchUpError::Format(key.to_string(), e);
    let probe = probe_object(client, &key, size).await?;
    if !is_manifest(&probe) {
        let idx = index_from_probe(client, &key, probe, size).await?;
        check_identity(&key, &idx, lsn, KIND_SNAPSHOT)?;
        return Ok(SnapHead::Whole(idx));
    }
    let bytes = extend_probe(client, &key, probe, size).await?;
    let m = Manifest::decode(&bytes, Some(size)).map_err(format_err)?;
    if m.lsn != lsn {
        return Err(format_err(bad(format!(
            "the manifest says it is LSN {}",
            m.lsn
        ))));
    }
    Ok(SnapHead::Groups(m))
}

/// The header and index of every group object `m` names (one range GET
/// each, [`FETCH_CONCURRENCY`] at once), each checked against the
/// manifest: its CRC, LSN, page count and chunk range. A missing or
/// damaged group is an error naming it.
pub(crate) async fn fetch_groups(
    client: &Client,
    keys: &DbKeys,
    m: &Manifest,
) -> Result<Vec<(u32, Index)>, CatchUpError> {
    let wanted: Vec<u32> = (0..m.groups.len() as u32)
        .filter(|&g| m.groups[g as usize].pages > 0)
        .collect();
    let mut fetches = futures::stream::iter(wanted.into_iter().map(|g| {
        let client = client.clone();
        let r = m.groups[g as usize];
        let key = keys.group(r.lsn, g);
        let len = m.group_object_len(g);
        let end = HEADER_LEN as u64 + u64::from(r.pages) * ENTRY_LEN as u64;
        async move {
            let got = client.get_range(&key, 0..end).await;
            (g, key, len, got)
        }
    }))
    .buffered(FETCH_CONCURRENCY);
    let mut out = Vec::new();
    while let Some((g, key, len, got)) = fetches.next().await {
        let bytes = got.map_err(CatchUpError::Store)?;
        let r = m.groups[g as usize];
        let damaged = |why: String| {
            CatchUpError::Format(
                key.to_string(),
                bad(format!("group {g} of snapshot {}: {why}", m.lsn)),
            )
        };
        if bytes.len() < HEADER_LEN || le32(&bytes, CRC_AT) != r.index_crc {
            return Err(damaged("not the object its manifest names (CRC)".into()));
        }
        let idx = format::decode_index(&bytes, Some(len)).map_err(|e| damaged(e.0))?;
        check_identity(&key, &idx, r.lsn, KIND_GROUP)?;
        let span = m.group_range(g);
        let h = &idx.header;
        if h.entries != r.pages
            || h.chunk_size != m.chunk_size
            || idx
                .entries
                .iter()
                .any(|e| !span.contains(&u64::from(e.chunk)))
        {
            return Err(damaged(format!(
                "its index does not cover chunks {}..{} with {} pages",
                span.start, span.end, r.pages
            )));
        }
        out.push((g, idx));
    }
    Ok(out)
}

/// The state a manifest describes, from its groups' indexes.
pub(crate) fn base_version(
    cache: &PageCache,
    keys: &DbKeys,
    m: &Manifest,
    groups: &[(u32, Index)],
) -> Result<Version, CatchUpError> {
    let mut v = Version::empty();
    for (g, idx) in groups {
        // Applied as a partial commit of the manifest's size: each group
        // adds its own chunks to the ones before.
        let mut patched = idx.clone();
        patched.header.db_size = m.db_size;
        let info = Arc::new(CommitInfo {
            lsn: idx.header.lsn,
            snapshot: true,
            group: Some(*g),
            txid: idx.header.txid,
            data_offset: idx.header.data_offset,
            chunk_size: idx.header.chunk_size,
        });
        v = v
            .apply(&patched, |i, e| cache.page(&info, i as u32, e.crc))
            .map_err(|e| {
                CatchUpError::Format(keys.group(idx.header.lsn, *g).to_string(), bad(e))
            })?;
    }
    v.lsn = m.lsn;
    v.txid = m.txid;
    v.size = m.db_size;
    v.chunk_size = m.chunk_size;
    v.time_ms = m.time_ms;
    Ok(v)
}

/// The state `snap/<lsn>` holds, whole or grouped.
pub(crate) async fn load_snapshot(
    client: &Client,
    cache: &PageCache,
    keys: &DbKeys,
    lsn: u64,
    size: u64,
) -> Result<Version, CatchUpError> {
    match fetch_snapshot(client, keys, lsn, size).await? {
        SnapHead::Whole(idx) => apply_commit(cache, &Version::empty(), &idx, None)
            .map_err(|m| CatchUpError::Format(keys.snapshot(lsn).to_string(), bad(m))),
        SnapHead::Groups(m) => {
            let groups = fetch_groups(client, keys, &m).await?;
            base_version(cache, keys, &m, &groups)
        }
    }
}

/// Writes `version` (of more than `group_pages` chunks) as group objects,
/// one at a time, then its manifest `snap/<lsn>`.
pub(crate) fn write_grouped(
    shared: &Shared,
    db: &Db,
    version: &Version,
    group_pages: u32,
    report: &mut CompactReport,
) -> Result<()> {
    let ctx = &shared.ctx;
    let count = version.size.div_ceil(u64::from(version.chunk_size));
    let mut manifest = Manifest {
        lsn: version.lsn,
        txid: version.txid,
        db_size: version.size,
        chunk_size: version.chunk_size,
        time_ms: version.time_ms,
        group_pages,
        groups: Vec::new(),
    };
    let previous = previous_manifest(shared, db, version.lsn)?;
    let groups = count.div_ceil(u64::from(group_pages));
    for g in 0..groups as u32 {
        let span = manifest_span(g, group_pages, count);
        if let Some(r) = previous
            .as_ref()
            .and_then(|p| reusable(p, version, g, &span))
        {
            manifest.groups.push(r);
            report.groups_reused += 1;
            continue;
        }
        let (pages, fetched) = gather_pages(shared, db, version, span)?;
        report.pages_fetched += fetched;
        if pages.is_empty() {
            manifest.groups.push(GroupRef {
                lsn: 0,
                pages: 0,
                index_crc: 0,
            });
            continue;
        }
        let stored = pages.len() as u32;
        let body = encode_state(version, &pages, KIND_GROUP);
        drop(pages);
        manifest.groups.push(GroupRef {
            lsn: version.lsn,
            pages: stored,
            index_crc: le32(&body, CRC_AT),
        });
        let written = put_group(shared, db, version.lsn, g, body)?;
        if written > 0 {
            report.objects_written += 1;
            report.bytes_written += written;
        }
    }
    check_groups_present(shared, db, &manifest)?;
    let body = manifest.encode();
    let len = body.len() as u64;
    let key = db.keys.snapshot(version.lsn);
    let client = ctx.client.clone();
    let put = ctx
        .runtime
        .run(async move { client.put_create(&key, Bytes::from(body)).await })?;
    match put {
        Ok(()) => {
            report.objects_written += 1;
            report.bytes_written += len;
        }
        // Another compactor wrote the same state first.
        Err(e) if e.kind == FailureKind::Exists => {}
        Err(e) => return Err(store_error(codes::SQLITE_IOERR_WRITE, &db.name, &e)),
    }
    Ok(())
}

/// The newest snapshot below `lsn` in the store, if it is a manifest:
/// one LIST of the snapshots and one or two GETs. Garbage collection never
/// deletes the newest snapshot, nor groups a kept manifest names.
fn previous_manifest(shared: &Shared, db: &Db, lsn: u64) -> Result<Option<Manifest>> {
    let ctx = &shared.ctx;
    let client = ctx.client.clone();
    let keys = db.keys.clone();
    let r = ctx.runtime.run(async move {
        let snaps = client
            .list_after(keys.snap_dir(), &keys.snapshot(0))
            .await?;
        let newest = snaps
            .iter()
            .filter_map(|m| keys.snapshot_lsn_of(&m.location).map(|l| (l, m.size)))
            .filter(|(l, _)| *l < lsn)
            .max();
        match newest {
            Some((l, size)) => read_manifest(&client, &keys, l, size).await,
            None => Ok(None),
        }
    })?;
    r.map_err(|e| store_error(codes::SQLITE_IOERR_READ, &db.name, &e))
}

/// Group `g` of `previous` when it holds exactly `version`'s pages of
/// `span`: the same chunk range, and every page of `version` there last
/// written at or before `previous`'s LSN (so it is the page `previous`
/// holds: pages read from a snapshot or group carry its LSN) and as many
/// of them as `previous` stores (so no page of it became a hole).
fn reusable(previous: &Manifest, version: &Version, g: u32, span: &Range<u64>) -> Option<GroupRef> {
    let r = *previous.groups.get(g as usize)?;
    if previous.lsn >= version.lsn
        || previous.chunk_size != version.chunk_size
        || r.pages == 0
        || previous.group_range(g) != *span
    {
        return None;
    }
    let mut pages = 0u32;
    for chunk in span.clone() {
        if let Some(p) = version.page(chunk) {
            if p.lsn() > previous.lsn {
                return None;
            }
            pages += 1;
        }
    }
    (pages == r.pages).then_some(r)
}

fn manifest_span(g: u32, group_pages: u32, count: u64) -> Range<u64> {
    let start = u64::from(g) * u64::from(group_pages);
    start..(start + u64::from(group_pages)).min(count)
}

/// Creates `group/<lsn>/<g>`; the bytes written (0 when an object with
/// the same header and index was there: an earlier attempt at the same
/// state). A different object there is an error: the manifest would name
/// bytes it does not describe.
fn put_group(shared: &Shared, db: &Db, lsn: u64, g: u32, body: Vec<u8>) -> Result<u64> {
    let ctx = &shared.ctx;
    let key = db.keys.group(lsn, g);
    let len = body.len() as u64;
    let head: Vec<u8> = body[..HEADER_LEN].to_vec();
    let client = ctx.client.clone();
    let k = key.clone();
    let r = ctx.runtime.run(async move {
        match client.put_create(&k, Bytes::from(body)).await {
            Ok(()) => Ok(len),
            Err(e) if e.kind == FailureKind::Exists => {
                let there = client.get_range(&k, 0..HEADER_LEN as u64).await?;
                if there[..] == head[..] {
                    Ok(0)
                } else {
                    Err(StoreError {
                        kind: FailureKind::Exists,
                        request: format!("PUT {k}"),
                        message: "it exists and holds other pages".into(),
                    })
                }
            }
            Err(e) => Err(e),
        }
    })?;
    r.map_err(|e| {
        Error::new(
            codes::SQLITE_IOERR_WRITE,
            format!(
                "vfs-object: {:?}: writing group {g} of snapshot {lsn}: {e}; no snapshot written",
                db.name
            ),
        )
    })
}

/// Lists the groups of the snapshot about to be published: garbage
/// collection deletes group objects no manifest names once they are older
/// than the retention window, so a compaction slower than that window
/// could otherwise publish a manifest naming a deleted group.
fn check_groups_present(shared: &Shared, db: &Db, m: &Manifest) -> Result<()> {
    let ctx = &shared.ctx;
    let client = ctx.client.clone();
    let keys = db.keys.clone();
    let dir = keys.group_dir().clone();
    let listed = ctx
        .runtime
        .run(async move { client.list_after(&dir, &dir).await })?
        .map_err(|e| store_error(codes::SQLITE_IOERR_READ, &db.name, &e))?;
    let present: BTreeSet<(u64, u32)> = listed
        .iter()
        .filter_map(|o| keys.group_of(&o.location))
        .collect();
    if let Some((l, g)) = (0..m.groups.len() as u32)
        .map(|g| (m.groups[g as usize].lsn, g))
        .find(|&(l, g)| l > 0 && !present.contains(&(l, g)))
    {
        return Err(Error::new(
            codes::SQLITE_IOERR_WRITE,
            format!(
                "vfs-object: {:?}: group {} vanished before its snapshot was published \
                 (collected: a compaction slower than the retention window?); no snapshot written",
                db.name,
                db.keys.group(l, g)
            ),
        ));
    }
    Ok(())
}

/// The manifest `snap/<lsn>` (listed with `size` bytes) holds, or `None`
/// for a whole snapshot: one GET for its header, one more for a manifest.
async fn read_manifest(
    client: &Client,
    keys: &DbKeys,
    lsn: u64,
    size: u64,
) -> std::result::Result<Option<Manifest>, StoreError> {
    let key = keys.snapshot(lsn);
    let head = client
        .get_range(&key, 0..(HEADER_LEN as u64).min(size))
        .await?;
    if !is_manifest(&head) {
        return Ok(None);
    }
    let bytes = client.get(&key).await?;
    let m = Manifest::decode(&bytes, Some(size))
        .ok()
        .filter(|m| m.lsn == lsn)
        .ok_or_else(|| StoreError {
            kind: FailureKind::Permanent,
            request: format!("GET {key}"),
            message: "the snapshot manifest is damaged; garbage collection stopped".into(),
        })?;
    Ok(Some(m))
}

/// The group objects garbage collection deletes: those no manifest of
/// `kept` (the snapshots it leaves, `(lsn, size)`) names, older than
/// `cutoff_ms`. One LIST of the groups (⌈g/1000⌉), and when there is any
/// group one or two GETs per kept snapshot. Fails (before anything is
/// deleted) when `base`, the snapshot the oldest retained state is read
/// from, names a group that is not stored: deleting the log below it would
/// lose that state.
pub(crate) async fn unnamed_groups(
    client: &Client,
    keys: &DbKeys,
    kept: &[(u64, u64)],
    base: Option<u64>,
    cutoff_ms: i64,
) -> std::result::Result<Vec<(object_store::path::Path, u64)>, StoreError> {
    let dir = keys.group_dir().clone();
    let listed = client.list_after(&dir, &dir).await?;
    let stored: Vec<((u64, u32), &object_store::ObjectMeta)> = listed
        .iter()
        .filter_map(|o| keys.group_of(&o.location).map(|id| (id, o)))
        .collect();
    let mut named: BTreeSet<(u64, u32)> = BTreeSet::new();
    let mut base_names: Vec<(u64, u32)> = Vec::new();
    if !stored.is_empty() || base.is_some() {
        for &(lsn, size) in kept {
            if stored.is_empty() && Some(lsn) != base {
                continue;
            }
            let Some(m) = read_manifest(client, keys, lsn, size).await? else {
                continue;
            };
            for (g, r) in m.groups.iter().enumerate() {
                if r.pages > 0 {
                    named.insert((r.lsn, g as u32));
                    if Some(lsn) == base {
                        base_names.push((r.lsn, g as u32));
                    }
                }
            }
        }
    }
    let present: BTreeSet<(u64, u32)> = stored.iter().map(|(id, _)| *id).collect();
    if let Some(&(l, g)) = base_names.iter().find(|id| !present.contains(id)) {
        return Err(StoreError {
            kind: FailureKind::NotFound,
            request: format!("LIST {dir}/"),
            message: format!(
                "{} is missing, yet snapshot {} names it; nothing deleted",
                keys.group(l, g),
                base.unwrap_or(0)
            ),
        });
    }
    Ok(stored
        .into_iter()
        .filter(|(id, o)| !named.contains(id) && o.last_modified.timestamp_millis() <= cutoff_ms)
        .map(|(_, o)| (o.location.clone(), o.size))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            lsn: 9,
            txid: [7; 16],
            db_size: 20 * 512,
            chunk_size: 512,
            time_ms: 1234,
            group_pages: 8,
            groups: vec![
                GroupRef {
                    lsn: 9,
                    pages: 8,
                    index_crc: 1,
                },
                GroupRef {
                    lsn: 0,
                    pages: 0,
                    index_crc: 0,
                },
                GroupRef {
                    lsn: 9,
                    pages: 3,
                    index_crc: 3,
                },
            ],
        }
    }

    /// A version after commits `(lsn, db chunks, chunks written)` of
    /// 512-byte chunks.
    fn version(commits: &[(u64, u64, &[u32])]) -> Version {
        let budget = Arc::new(crate::cache::Budget::default());
        let mut v = Version::empty();
        for &(lsn, chunks, pages) in commits {
            let data: Vec<Vec<u8>> = pages.iter().map(|&p| vec![p as u8; 512]).collect();
            let pairs: Vec<(u32, &[u8])> =
                pages.iter().zip(&data).map(|(&p, d)| (p, &d[..])).collect();
            let bytes = format::encode(&format::NewCommit {
                lsn,
                txid: [0; 16],
                db_size: chunks * 512,
                chunk_size: 512,
                time_ms: 0,
                flags: 0,
                pages: &pairs,
            });
            let idx = format::decode_index(&bytes, None).unwrap();
            let info = Arc::new(CommitInfo::of(&idx));
            v = v
                .apply(&idx, |i, e| {
                    Arc::new(crate::version::Page::new(
                        info.clone(),
                        i as u32,
                        e.crc,
                        budget.clone(),
                    ))
                })
                .unwrap();
        }
        v
    }

    /// The manifest of a snapshot at `lsn` of `chunks` chunks in groups
    /// of 4, with `pages` stored pages per group.
    fn previous(lsn: u64, chunks: u64, pages: &[u32]) -> Manifest {
        Manifest {
            lsn,
            txid: [0; 16],
            db_size: chunks * 512,
            chunk_size: 512,
            time_ms: 0,
            group_pages: 4,
            groups: pages
                .iter()
                .map(|&p| GroupRef {
                    lsn,
                    pages: p,
                    index_crc: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn a_group_is_reused_only_when_it_holds_exactly_the_same_pages() {
        let all: Vec<u32> = (0..12).collect();
        // Snapshot at LSN 1 of 12 chunks (3 full groups); commit 2 writes
        // chunk 5 (group 1).
        let prev = previous(1, 12, &[4, 4, 4]);
        let v = version(&[(1, 12, &all), (2, 12, &[5])]);
        let span = |g: u64| g * 4..(g * 4 + 4).min(12);
        assert!(reusable(&prev, &v, 0, &span(0)).is_some());
        assert!(
            reusable(&prev, &v, 1, &span(1)).is_none(),
            "chunk 5 changed"
        );
        assert!(reusable(&prev, &v, 2, &span(2)).is_some());
        // A snapshot at or above the version is never a base for reuse.
        assert!(reusable(&previous(2, 12, &[4, 4, 4]), &v, 0, &span(0)).is_none());
        // Shrunk to 10 chunks then grown back to 12 without writing:
        // chunks 10 and 11 are holes now, so group 2 differs although
        // every page left in it is old.
        let v = version(&[(1, 12, &all), (2, 10, &[]), (3, 12, &[])]);
        assert!(v.page(8).is_some_and(|p| p.lsn() == 1));
        assert!(reusable(&prev, &v, 2, &span(2)).is_none());
        let v = version(&[(1, 12, &all), (2, 10, &[])]);
        assert!(v.page(9).is_some() && v.page(10).is_none());
        // The same pages but another extent (the last group is shorter).
        assert!(reusable(&prev, &v, 2, &(8..10)).is_none());
        assert!(reusable(&prev, &v, 1, &span(1)).is_some());
        // A group the previous snapshot stores fewer pages of (a hole
        // then) is not reused once that page is written.
        let prev = previous(1, 12, &[4, 3, 4]);
        let v = version(&[(1, 12, &[0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11]), (2, 12, &[7])]);
        assert!(reusable(&prev, &v, 1, &span(1)).is_none());
    }

    #[test]
    fn manifests_round_trip_and_damage_is_refused() {
        let m = manifest();
        let b = m.encode();
        assert_eq!(b.len(), 96 + 3 * 16);
        assert_eq!(Manifest::decode(&b, Some(b.len() as u64)).unwrap(), m);
        assert_eq!(m.group_range(2), 16..20);
        assert_eq!(m.summary().header.entries, 11);
        for at in [0, 10, 16, 60, 80, 100, 130] {
            let mut d = b.clone();
            d[at] ^= 1;
            assert!(Manifest::decode(&d, None).is_err(), "byte {at}");
        }
        assert!(Manifest::decode(&b[..100], None).is_err());
        assert!(Manifest::decode(&b, Some(1000)).is_err());
        // A group that cannot fit its range.
        let mut bad = manifest();
        bad.groups[2].pages = 5;
        assert!(Manifest::decode(&bad.encode(), None).is_err());
        // A group count that does not match the size.
        let mut bad = manifest();
        bad.groups.pop();
        assert!(Manifest::decode(&bad.encode(), None).is_err());
        // Not a commit object either.
        assert!(format::decode_header(&b).is_err());
    }
}
