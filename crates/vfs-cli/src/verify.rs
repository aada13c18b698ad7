//! `verify`: every page of a checksummed or encrypted database checked on
//! its own, outside SQLite (which refuses a file with a damaged page), the
//! damaged ones listed with their page number, offset and b-tree; then
//! `PRAGMA integrity_check` when every page is sound.

use std::collections::BTreeSet;

use serde::Serialize;
use vfs_cksm::{CRC_TAG, CRC_TRAILER, Mode, verify_cksumvfs_page, verify_crc_page};
use vfs_crypto::{PageOpener, Secret};

use crate::btree;
use crate::db::READ_ONLY;
use crate::detect::{Layout, detect};
use crate::error::{CliError, EXIT_DAMAGED, EXIT_FAILED, EXIT_OK, Result, sql_message};
use crate::stack::StackSpec;
use crate::storage::Storage;
use crate::ui::Ui;
use crate::wal_check::{BadFrame, check_wal};

/// A page that failed its check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BadPage {
    /// Its number (1-based).
    pub page: u64,
    /// Its offset in the file.
    pub offset: u64,
    /// What is wrong.
    pub problem: String,
    /// The table or index it belongs to, when the walk of the b-trees over
    /// the sound pages found it.
    pub btree: Option<String>,
    /// `table`, `index`, `freelist`, … (with `btree`).
    pub kind: Option<String>,
    /// Its role there: `root`, `interior`, `leaf`, `overflow`, …
    pub role: Option<String>,
}

/// The outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check ran and passed.
    Clean,
    /// Something failed.
    Damaged,
    /// Nothing could be checked.
    NotChecked,
}

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The file.
    pub file: String,
    /// Its layers (`plain`, `cksumvfs`, `encrypted over crc32`, …).
    pub format: String,
    /// Its page size.
    pub page_size: u64,
    /// Whole pages in the file.
    pub pages: u64,
    /// The checks that ran.
    pub checks: Vec<String>,
    /// Pages that failed.
    pub bad_pages: Vec<BadPage>,
    /// Frames of the WAL beside it whose page failed its check.
    pub bad_wal_frames: Vec<BadFrame>,
    /// Other findings (truncation, `integrity_check` messages).
    pub problems: Vec<String>,
    /// What could not be checked, and why.
    pub notes: Vec<String>,
    /// The outcome.
    pub verdict: Verdict,
}

impl VerifyReport {
    /// 0 clean, 1 damaged, 2 not checked.
    pub fn exit_code(&self) -> u8 {
        match self.verdict {
            Verdict::Clean => EXIT_OK,
            Verdict::Damaged => EXIT_DAMAGED,
            Verdict::NotChecked => EXIT_FAILED,
        }
    }
}

/// How to verify.
#[derive(Clone, Copy, Debug)]
pub struct VerifyOptions {
    /// Run `PRAGMA integrity_check` when every page is sound.
    pub integrity_check: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            integrity_check: true,
        }
    }
}

/// The per-page checks a file's layers allow.
struct Checker {
    checksums: Option<Mode>,
    opener: Option<PageOpener>,
}

/// Where a page image was found.
#[derive(Clone, Copy)]
enum Found {
    /// In the database file, at its page's place.
    Database,
    /// In the WAL, at this offset.
    Wal(u64),
}

impl Checker {
    /// The database page's problem, if any; its plaintext when it could be
    /// read.
    fn check(&mut self, pgno: u32, page: &[u8]) -> (Option<String>, Option<Vec<u8>>) {
        self.check_at(Found::Database, pgno, page)
    }

    fn check_at(
        &mut self,
        found: Found,
        pgno: u32,
        page: &[u8],
    ) -> (Option<String>, Option<Vec<u8>>) {
        let n = page.len();
        // Checksum trailers are kept on the database file only (as
        // SQLite's cksumvfs); a WAL frame's are whatever SQLite's cache held.
        let checksums = match found {
            Found::Database => self.checksums,
            Found::Wal(_) => None,
        };
        match checksums {
            Some(Mode::Cksumvfs) if verify_cksumvfs_page(page) != Some(true) => {
                return (Some("cksumvfs checksum mismatch".into()), None);
            }
            Some(Mode::Crc32) => {
                let t = &page[n - CRC_TRAILER..];
                let stored = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
                if t[4..8] != CRC_TAG {
                    return (Some("no CRC-32 trailer (its tag is damaged)".into()), None);
                }
                if verify_crc_page(page, pgno) != Some(true) {
                    let why = if stored != pgno && verify_crc_page(page, stored) == Some(true) {
                        format!("holds the image of page {stored} (a misplaced page)")
                    } else {
                        "CRC-32 mismatch".into()
                    };
                    return (Some(why), None);
                }
            }
            _ => {}
        }
        let opened = match (&mut self.opener, found) {
            (Some(o), Found::Database) => Some(o.open_page(pgno, page)),
            (Some(o), Found::Wal(offset)) => Some(o.open_wal_frame(pgno, offset, page)),
            (None, _) => None,
        };
        match opened {
            Some(opened) => match opened {
                Ok(plain) => (None, Some(plain)),
                Err(e) => (Some(e.message().to_owned()), None),
            },
            None => (None, Some(page.to_vec())),
        }
    }
}

/// Verifies the database at `path` (`key`: its key, if encrypted and
/// known). `Err` when it could not check at all (no such file, not a
/// database, wrong key, encrypted without checksums and no key).
pub fn verify(
    storage: &dyn Storage,
    path: &str,
    key: Option<&Secret>,
    opts: VerifyOptions,
    ui: &Ui,
) -> Result<VerifyReport> {
    let layout = detect(storage, path)?;
    let mut report = VerifyReport {
        file: path.to_owned(),
        format: layout.layers.to_string(),
        page_size: layout.page_size as u64,
        pages: layout.pages(),
        checks: Vec::new(),
        bad_pages: Vec::new(),
        bad_wal_frames: Vec::new(),
        problems: Vec::new(),
        notes: Vec::new(),
        verdict: Verdict::NotChecked,
    };
    if layout.is_empty() {
        report
            .notes
            .push("empty file: a database with no page written yet".into());
        report.verdict = Verdict::Clean;
        return Ok(report);
    }
    let opener = match (&layout.encryption, key) {
        (Some(h), Some(k)) => Some(h.unlock(k).map_err(|e| {
            CliError::new(format!("{path}: {}", e.message()))
                .hint("verify checks authentication with the right key only")
        })?),
        (Some(_), None) if layout.layers.checksums.is_none() => {
            return Err(CliError::new(format!(
                "{path}: could not check: encrypted without checksums, and no key was given"
            ))
            .hint("give the key (--key-file, --key-env or SQLITE_VFS_KEY) to check every page's authentication"));
        }
        (Some(_), None) => {
            report.notes.push(
                "no key given: checksums checked, authentication not (give the key to check it)"
                    .into(),
            );
            None
        }
        (None, _) => None,
    };
    if let Some(m) = layout.layers.checksums {
        report
            .checks
            .push(format!("{} checksum of every page", m.name()));
    }
    if opener.is_some() {
        report
            .checks
            .push("XAES-256-GCM authentication of every page".into());
    }
    let mut checker = Checker {
        checksums: layout.layers.checksums,
        opener,
    };
    let per_page = !report.checks.is_empty();
    if per_page {
        check_pages(storage, &layout, &mut checker, &mut report, ui)?;
    } else {
        report
            .notes
            .push("no page checksums or encryption: pages cannot be checked one by one".into());
    }
    if !report.bad_pages.is_empty() {
        if layout.encryption.is_none() || checker.opener.is_some() {
            attribute(storage, &layout, &mut checker, &mut report)?;
        } else {
            report
                .notes
                .push("b-trees not walked: the pages cannot be decrypted without the key".into());
        }
    }
    if let Some(wal) = &layout.wal
        && wal.frames > 0
    {
        check_wal_frames(storage, &layout, wal, &mut checker, &mut report)?;
    }
    let sound = report.bad_pages.is_empty()
        && report.bad_wal_frames.is_empty()
        && report.problems.is_empty();
    let can_open = layout.encryption.is_none() || key.is_some();
    if opts.integrity_check && sound && can_open {
        integrity(storage, &layout, key, &mut report);
    }
    report.verdict = if !report.bad_pages.is_empty()
        || !report.bad_wal_frames.is_empty()
        || !report.problems.is_empty()
    {
        Verdict::Damaged
    } else if report.checks.is_empty() {
        Verdict::NotChecked
    } else {
        Verdict::Clean
    };
    Ok(report)
}

/// The WAL's frames as SQLite's recovery reads them, and each frame's page
/// checked like a database page.
fn check_wal_frames(
    storage: &dyn Storage,
    layout: &Layout,
    wal: &crate::detect::WalInfo,
    checker: &mut Checker,
    report: &mut VerifyReport,
) -> Result<()> {
    // Under encryption SQLite's frame checksums are masked; the frames'
    // authentication (with the key) stands in for them. Checksum layers
    // keep trailers on the database file only.
    let readable = !layout.layers.encrypted;
    let per_page = checker.opener.is_some();
    let mut check = |pgno: u32, offset: u64, image: &[u8]| {
        if per_page {
            checker.check_at(Found::Wal(offset), pgno, image).0
        } else {
            None
        }
    };
    let found = check_wal(storage, wal, layout.page_size, readable, &mut check)?;
    let mut what = Vec::new();
    if readable {
        what.push("checksums");
    }
    if per_page {
        what.push("authentication");
    }
    if !what.is_empty() {
        report.checks.push(format!(
            "WAL {} of {} frame(s) in {} transaction(s)",
            what.join(" and "),
            found.frames_checked,
            found.commits
        ));
    } else {
        report.notes.push(format!(
            "a WAL with {} frame(s) sits beside it, not checked (its frames are encrypted: \
             give the key to authenticate them)",
            wal.frames
        ));
    }
    report.bad_wal_frames.extend(found.bad_frames);
    report.problems.extend(found.problems);
    report.notes.extend(found.notes);
    Ok(())
}

fn check_pages(
    storage: &dyn Storage,
    layout: &Layout,
    checker: &mut Checker,
    report: &mut VerifyReport,
    ui: &Ui,
) -> Result<()> {
    let n = layout.page_size;
    let pages = layout.pages();
    let bar = ui.bar(pages * n as u64, "verifying");
    let per_read = ((4 << 20) / n).max(1) as u64;
    let mut first = 1u64;
    let mut page1_plain = None;
    while first <= pages {
        let count = per_read.min(pages - first + 1);
        let chunk = storage.read(&layout.path, (first - 1) * n as u64, count as usize * n)?;
        for (i, page) in chunk.chunks_exact(n).enumerate() {
            let pgno = first + i as u64;
            let (problem, plain) = checker.check(pgno as u32, page);
            if pgno == 1 {
                page1_plain = plain;
            }
            if let Some(problem) = problem {
                report.bad_pages.push(BadPage {
                    page: pgno,
                    offset: (pgno - 1) * n as u64,
                    problem,
                    btree: None,
                    kind: None,
                    role: None,
                });
            }
        }
        bar.inc(chunk.len() as u64);
        first += count;
    }
    bar.finish_and_clear();
    let tail = layout.size % n as u64;
    if tail != 0 {
        report.bad_pages.push(BadPage {
            page: pages + 1,
            offset: pages * n as u64,
            problem: format!("truncated: {tail} of {n} bytes (a torn or cut last page)"),
            btree: None,
            kind: None,
            role: None,
        });
    }
    // The header's page count, when SQLite would trust it (bytes 92..96
    // equal to the change counter at 24..28).
    if let Some(p1) = page1_plain
        && p1[92..96] == p1[24..28]
    {
        let in_header = u64::from(u32::from_be_bytes([p1[28], p1[29], p1[30], p1[31]]));
        if in_header > pages {
            report.problems.push(format!(
                "the header counts {in_header} pages but the file holds {pages}: pages {}..{in_header} are missing (truncated file)",
                pages + 1
            ));
        }
    }
    Ok(())
}

/// Names the b-tree of every bad page by walking the b-trees over the
/// sound ones.
fn attribute(
    storage: &dyn Storage,
    layout: &Layout,
    checker: &mut Checker,
    report: &mut VerifyReport,
) -> Result<()> {
    let bad: BTreeSet<u64> = report.bad_pages.iter().map(|b| b.page).collect();
    let n = layout.page_size;
    let mut read_error = None;
    let mut read = |pgno: u32| -> Option<Vec<u8>> {
        if bad.contains(&u64::from(pgno)) {
            return None;
        }
        match storage.read(&layout.path, u64::from(pgno - 1) * n as u64, n) {
            Ok(page) if page.len() == n => checker.check(pgno, &page).1,
            Ok(_) => None,
            Err(e) => {
                read_error = Some(e);
                None
            }
        }
    };
    let map = btree::walk(&mut read, n, layout.reserve, layout.pages() as u32);
    if let Some(e) = read_error {
        return Err(e);
    }
    if !map.schema_complete {
        report.notes.push(
            "the schema itself is damaged: pages of tables and indexes it no longer reaches are \
             not attributed"
                .into(),
        );
    }
    for b in &mut report.bad_pages {
        if let Some(o) = u32::try_from(b.page).ok().and_then(|p| map.owners.get(&p)) {
            b.btree = Some(o.name.clone());
            b.kind = Some(o.kind.clone());
            b.role = Some(o.role.clone());
        }
    }
    Ok(())
}

/// `PRAGMA integrity_check` through the file's layers, read-only.
fn integrity(
    storage: &dyn Storage,
    layout: &Layout,
    key: Option<&Secret>,
    report: &mut VerifyReport,
) {
    if layout.journal.as_ref().is_some_and(|j| j.hot) {
        report.notes.push(
            "integrity_check not run: a hot journal beside it must be rolled back first (open \
             the database read-write once, e.g. with `sqlite-vfs stats FILE -- 'SELECT 1'`)"
                .into(),
        );
        return;
    }
    let vfs = match storage.register(&StackSpec::new(layout.layers)) {
        Ok(v) => v,
        Err(e) => {
            report.notes.push(format!("integrity_check not run: {e}"));
            return;
        }
    };
    // Without WAL frames to read, the file alone is the database: read it
    // as immutable, so that SQLite creates no -wal or -shm beside a
    // WAL-mode file (a read-only connection could not remove them).
    let frames = layout.wal.as_ref().map_or(0, |w| w.frames);
    let params: &[(&str, &str)] = if frames == 0 {
        &[("immutable", "1")]
    } else {
        &[]
    };
    let run = || -> rusqlite::Result<Vec<String>> {
        let uri = crate::uri::database(&layout.path, vfs.name(), key, params);
        let conn = rusqlite::Connection::open_with_flags(uri.as_str(), READ_ONLY)?;
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(rows)
    };
    vfs_core::clear_last_error();
    match run() {
        Ok(rows) => {
            report.checks.push("PRAGMA integrity_check".into());
            if rows != ["ok"] {
                report.problems.extend(rows);
            }
        }
        Err(e) => {
            let damage = e.sqlite_error().is_some_and(|f| {
                matches!(
                    f.code,
                    rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
                ) || f.extended_code == vfs_core::codes::SQLITE_IOERR_DATA
            });
            let msg = format!("integrity_check: {}", sql_message(&e));
            if damage {
                report.checks.push("PRAGMA integrity_check".into());
                report.problems.push(msg);
            } else {
                report.notes.push(format!("{msg} (not run)"));
            }
        }
    }
}
