//! Read-ahead: pages fetched before SQLite asks for them, in few requests.
//!
//! * **B-tree interiors on a cold open.** Page 1, then the root pages the
//!   schema names, then their interior children, level by level: each
//!   level is one batch, its pages grouped by the object holding them (a
//!   commit, or a snapshot: `docs/object.md` §14) and adjacent
//!   ranges coalesced into one range GET each (issued concurrently). A
//!   page's children are fetched only if it has at most
//!   [`MAX_CHILDREN`] of them and they fit the budget
//!   ([`OPEN_BUDGET_PAGES`]): in a large tree the pages above the leaves
//!   have hundreds of children, so the walk stops above the leaves (and a
//!   small tree comes whole).
//! * **Sequential scans.** A connection that misses on pages in ascending
//!   order (within [`SEQUENTIAL_SLACK`] pages of the previous miss) reads
//!   ahead a window of the following pages, which doubles on each further
//!   sequential miss up to [`MAX_WINDOW`] pages.
//!
//! Prefetched pages go into the same cache as any other page and are
//! CRC-checked the same way. Prefetching is a hint: a request that fails
//! or a page that fails its CRC is left out (the read that needs the page
//! fetches it again and reports the failure), and the b-tree pages are
//! parsed only to find page numbers, so a page that does not parse (a
//! damaged one, or ciphertext under `vfs-crypto`) just stops the walk.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;

use crate::cache::DiskKey;
use crate::db::{Ctx, Db};
use crate::format;
use crate::version::{Page, Version};

/// Pages read ahead on a cold open, at most.
pub const OPEN_BUDGET_PAGES: usize = 256;
/// Children of one page fetched, at most (more: they are most likely
/// the leaves of a large tree).
pub const MAX_CHILDREN: usize = 64;
/// A miss within this many pages after the previous miss is sequential.
pub const SEQUENTIAL_SLACK: u64 = 8;
/// First read-ahead window of a scan, in pages.
pub const FIRST_WINDOW: u64 = 16;
/// Largest read-ahead window, in pages.
pub const MAX_WINDOW: u64 = 512;
/// Two ranges of one object closer than this are fetched as one.
const MAX_GAP: u64 = 64 << 10;
/// Largest coalesced range.
const MAX_RANGE: u64 = 8 << 20;
/// Range GETs of one batch in flight at once.
const CONCURRENCY: usize = 16;

/// Fetches the pages of `chunks` in `v` that are not cached, in as few
/// range GETs as their layout allows, and fills the cache with them.
/// Returns the bytes of every chunk of `chunks` now available (cached
/// before or fetched), by chunk; failures leave chunks out.
pub fn fetch_batch(db: &Db, ctx: &Ctx, v: &Version, chunks: &[u64]) -> Vec<(u64, Arc<[u8]>)> {
    let mut have = Vec::new();
    let mut missing: Vec<(u64, Arc<Page>)> = Vec::new();
    // The cache directory names pages by their object's directory, as
    // `Db::fetch_chunk` does.
    let log_dir = db.keys.log_dir().to_string();
    let snap_dir = db.keys.snap_dir().to_string();
    let disk_db = |page: &Page| -> &str {
        if page.commit.snapshot {
            &snap_dir
        } else {
            &log_dir
        }
    };
    let page_count = page_count(v);
    for &chunk in chunks {
        if chunk >= page_count {
            continue;
        }
        let Some(page) = v.page(chunk) else { continue };
        if let Some(bytes) = page.cached() {
            have.push((chunk, bytes));
            continue;
        }
        if ctx.cache.has_dir() {
            let key = disk_key(disk_db(page), page, chunk);
            if let Some(bytes) = ctx.cache.disk_get(&key, page.crc) {
                ctx.cache.fill(page, Arc::clone(&bytes));
                have.push((chunk, bytes));
                continue;
            }
        }
        missing.push((chunk, Arc::clone(page)));
    }
    if missing.is_empty() {
        return have;
    }
    missing.sort_by_key(|(_, p)| (p.lsn(), p.commit.snapshot, p.commit.group, p.range().start));
    missing.dedup_by_key(|(_, p)| (p.lsn(), p.commit.snapshot, p.commit.group, p.range().start));
    let runs = coalesce(missing);
    let client = ctx.client.clone();
    let keys = db.keys.clone();
    let fetched = ctx.runtime.run(async move {
        futures::stream::iter(runs.into_iter().map(|run| {
            let client = client.clone();
            let key = match run.group {
                Some(g) => keys.group(run.lsn, g),
                None => keys.pages_of(run.lsn, run.snapshot),
            };
            async move {
                let bytes = client.get_range(&key, run.start..run.end).await.ok();
                (run, bytes)
            }
        }))
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await
    });
    let Ok(fetched) = fetched else {
        return have;
    };
    for (run, bytes) in fetched {
        let Some(bytes) = bytes else { continue };
        for (chunk, page) in run.pages {
            let r = page.range();
            let at = (r.start - run.start) as usize;
            let Some(b) = bytes.get(at..at + (r.end - r.start) as usize) else {
                continue;
            };
            if !format::check_page(page.crc, b) {
                continue;
            }
            let data: Arc<[u8]> = b.into();
            if ctx.cache.has_dir() {
                ctx.cache
                    .disk_put(&disk_key(disk_db(&page), &page, chunk), &data);
            }
            ctx.cache.fill(&page, Arc::clone(&data));
            have.push((chunk, data));
        }
    }
    have
}

/// Whether the cache can keep what is read ahead (a memory budget or a
/// directory): without either, reading ahead would only waste requests.
pub fn can_keep(ctx: &Ctx) -> bool {
    ctx.cache.limit() > 0 || ctx.cache.has_dir()
}

fn disk_key<'a>(db: &'a str, page: &Page, chunk: u64) -> DiskKey<'a> {
    DiskKey {
        db,
        lsn: page.lsn(),
        txid: page.commit.txid,
        chunk,
    }
}

fn page_count(v: &Version) -> u64 {
    if v.chunk_size == 0 {
        0
    } else {
        v.size.div_ceil(u64::from(v.chunk_size))
    }
}

/// One range GET: bytes `start..end` of commit `lsn` (of its snapshot
/// when `snapshot`, of its group object `group` when given), holding
/// `pages`.
struct Run {
    lsn: u64,
    snapshot: bool,
    group: Option<u32>,
    start: u64,
    end: u64,
    pages: Vec<(u64, Arc<Page>)>,
}

/// Pages sorted by (object, offset) as ranges of their objects (a log
/// object or a snapshot), neighbours (gap at most [`MAX_GAP`]) merged.
fn coalesce(pages: Vec<(u64, Arc<Page>)>) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for (chunk, page) in pages {
        let r = page.range();
        if let Some(last) = runs.last_mut()
            && last.lsn == page.lsn()
            && last.snapshot == page.commit.snapshot
            && last.group == page.commit.group
            && r.start >= last.end
            && r.start - last.end <= MAX_GAP
            && r.end - last.start <= MAX_RANGE
        {
            last.end = r.end;
            last.pages.push((chunk, page));
            continue;
        }
        runs.push(Run {
            lsn: page.lsn(),
            snapshot: page.commit.snapshot,
            group: page.commit.group,
            start: r.start,
            end: r.end,
            pages: vec![(chunk, page)],
        });
    }
    runs
}

/// Which tree a page belongs to, as far as the walk cares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tree {
    /// `sqlite_schema`: its leaves name the other trees' roots.
    Schema,
    /// A table or an index: only its interior pages matter.
    Data,
}

/// Reads ahead the interior b-tree pages of `v` (see the module's doc).
/// Returns the number of pages now cached by the walk.
pub fn btree_interiors(db: &Db, ctx: &Ctx, v: &Version) -> usize {
    let pages = page_count(v);
    if pages == 0 || !can_keep(ctx) {
        return 0;
    }
    let mut seen: HashSet<u64> = HashSet::new();
    let mut level: Vec<(u64, Tree)> = vec![(1, Tree::Schema)];
    seen.insert(1);
    let mut budget = OPEN_BUDGET_PAGES;
    let mut cached = 0;
    while !level.is_empty() {
        budget = budget.saturating_sub(level.len());
        let chunks: Vec<u64> = level.iter().map(|(p, _)| p - 1).collect();
        let got = fetch_batch(db, ctx, v, &chunks);
        cached += got.len();
        // Next level, one group per parent page; a group is taken only
        // whole and only while the budget lasts.
        let mut next = Vec::new();
        for (pgno, tree) in &level {
            let Some((_, bytes)) = got.iter().find(|(c, _)| c + 1 == *pgno) else {
                continue;
            };
            if *pgno == 1 && !is_database_header(bytes, v.chunk_size) {
                return cached;
            }
            let Some(children) = children(bytes, *pgno, *tree, pages) else {
                continue;
            };
            let group: Vec<(u64, Tree)> = children
                .into_iter()
                .filter(|(p, _)| !seen.contains(p))
                .collect();
            if group.len() > MAX_CHILDREN || group.len() > budget.saturating_sub(next.len()) {
                continue;
            }
            for (p, t) in group {
                if seen.insert(p) {
                    next.push((p, t));
                }
            }
        }
        level = next;
    }
    cached
}

/// Whether page 1 starts with SQLite's header and its page size is the
/// chunk size (otherwise the walk cannot read page numbers).
fn is_database_header(page: &[u8], chunk_size: u32) -> bool {
    if page.len() < 100 || &page[..16] != b"SQLite format 3\0" {
        return false;
    }
    let raw = u32::from(u16::from_be_bytes([page[16], page[17]]));
    let size = if raw == 1 { 65536 } else { raw };
    size == chunk_size
}

/// The pages a b-tree page leads to: its children if interior; for a leaf
/// of the schema, the roots it names. `None` when it does not parse.
fn children(page: &[u8], pgno: u64, tree: Tree, pages: u64) -> Option<Vec<(u64, Tree)>> {
    let hdr = if pgno == 1 { 100 } else { 0 };
    let kind = *page.get(hdr)?;
    let cells = usize::from(be16(page, hdr + 3)?);
    let valid = |p: u64| (p >= 1 && p <= pages).then_some(p);
    let mut out = Vec::new();
    match kind {
        // Interior pages: each cell starts with its left child.
        0x02 | 0x05 => {
            for i in 0..cells {
                let at = usize::from(be16(page, hdr + 12 + 2 * i)?);
                if let Some(p) = valid(u64::from(be32(page, at)?)) {
                    out.push((p, tree));
                }
            }
            if let Some(p) = valid(u64::from(be32(page, hdr + 8)?)) {
                out.push((p, tree));
            }
        }
        // A leaf of sqlite_schema: (type, name, tbl_name, rootpage, sql).
        0x0d if tree == Tree::Schema => {
            for i in 0..cells {
                let at = usize::from(be16(page, hdr + 8 + 2 * i)?);
                if let Some(root) = schema_root(page, at).and_then(valid) {
                    out.push((root, Tree::Data));
                }
            }
        }
        0x0a | 0x0d => {}
        _ => return None,
    }
    Some(out)
}

/// The `rootpage` column of the schema record in the table-leaf cell at
/// `at` (`None` if it is not an integer or not within the page).
fn schema_root(page: &[u8], at: usize) -> Option<u64> {
    let (_payload_len, n) = varint(page.get(at..)?)?;
    let (_rowid, m) = varint(page.get(at + n..)?)?;
    let rec = at + n + m;
    let (hdr_len, h) = varint(page.get(rec..)?)?;
    let hdr_end = rec.checked_add(usize::try_from(hdr_len).ok()?)?;
    let mut pos = rec + h;
    let mut body = hdr_end;
    for col in 0..4 {
        let (serial, k) = varint(page.get(pos..hdr_end)?)?;
        pos += k;
        let len = match serial {
            0 | 8 | 9 => 0,
            1..=4 => serial as usize,
            5 => 6,
            6 | 7 => 8,
            t if t >= 12 => ((t - 12) / 2) as usize,
            _ => return None,
        };
        if col == 3 {
            return match serial {
                1..=6 => {
                    let b = page.get(body..body + len)?;
                    let v = b.iter().fold(0i64, |acc, &x| (acc << 8) | i64::from(x));
                    // Sign-extend the big-endian integer of `len` bytes.
                    let shift = 64 - 8 * len as u32;
                    let v = (v << shift) >> shift;
                    u64::try_from(v).ok().filter(|&v| v > 0)
                }
                9 => Some(1),
                _ => None,
            };
        }
        body += len;
    }
    None
}

/// SQLite's big-endian variable-length integer: (value, bytes).
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for i in 0..9 {
        let x = *b.get(i)?;
        if i == 8 {
            return Some(((v << 8) | u64::from(x), 9));
        }
        v = (v << 7) | u64::from(x & 0x7f);
        if x & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A connection's scan detector: where its last miss was and how far it
/// reads ahead now.
#[derive(Debug, Default)]
pub struct ReadAhead {
    last_miss: Option<u64>,
    window: u64,
    /// Read ahead up to (excluding) this chunk already.
    ahead_until: u64,
}

impl ReadAhead {
    /// Called on a cache miss of `chunk`: the chunks to read ahead with it
    /// (including it), or `None` when the access does not look sequential.
    pub fn on_miss(&mut self, chunk: u64, page_count: u64) -> Option<std::ops::Range<u64>> {
        // After a read-ahead, the next miss is past its window.
        let sequential = self.last_miss.is_some_and(|last| {
            chunk > last && chunk <= self.ahead_until.max(last) + SEQUENTIAL_SLACK
        });
        self.last_miss = Some(chunk);
        if !sequential {
            self.window = 0;
            self.ahead_until = 0;
            return None;
        }
        self.window = if self.window == 0 {
            FIRST_WINDOW
        } else {
            (self.window * 2).min(MAX_WINDOW)
        };
        let end = (chunk + self.window).min(page_count);
        self.ahead_until = end;
        (chunk < end).then_some(chunk..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_as_sqlite_writes_them() {
        assert_eq!(varint(&[0x05]), Some((5, 1)));
        assert_eq!(varint(&[0x81, 0x00]), Some((128, 2)));
        assert_eq!(varint(&[0xff; 9]), Some((u64::MAX, 9)));
        assert_eq!(varint(&[0x81]), None);
    }

    #[test]
    fn scans_are_detected_and_the_window_grows() {
        let mut r = ReadAhead::default();
        assert_eq!(r.on_miss(10, 10_000), None, "a first miss is a point read");
        assert_eq!(r.on_miss(500, 10_000), None, "a jump is not a scan");
        assert_eq!(r.on_miss(502, 10_000), Some(502..518));
        assert_eq!(
            r.on_miss(520, 10_000),
            Some(520..552),
            "just past the window"
        );
        assert_eq!(r.on_miss(553, 600), Some(553..600), "bounded by the file");
        assert_eq!(r.on_miss(700, 10_000), None, "too far past the window");
        assert_eq!(r.on_miss(3, 600), None, "backwards resets");
        assert_eq!(r.on_miss(4, 600), Some(4..20));
    }

    #[test]
    fn schema_roots_come_from_the_record() {
        // type='table', name='t', tbl_name='t', rootpage=2, sql='x'
        let record: Vec<u8> = vec![
            6, 0x17, 0x0f, 0x0f, 0x01, 0x0f, b't', b'a', b'b', b'l', b'e', b't', b't', 2, b'x',
        ];
        let mut cell = vec![record.len() as u8, 1];
        cell.extend_from_slice(&record);
        assert_eq!(schema_root(&cell, 0), Some(2));
        // A view: rootpage 0 (serial type 8).
        let mut view = cell.clone();
        view[2 + 4] = 8;
        view.remove(2 + 13);
        assert_eq!(schema_root(&view, 0), None);
        // Cut short: nothing, never a panic.
        for n in 0..cell.len() {
            let _ = schema_root(&cell[..n], 0);
        }
    }
}
