//! The WAL beside a database, frame by frame, as SQLite's recovery reads
//! it: the header's checksum, each frame's salts and cumulative checksum
//! (where the layers leave them readable), then every committed frame's
//! page image handed to a check (its authentication, under encryption).

use serde::Serialize;

use crate::detect::{self, WalInfo};
use crate::error::Result;
use crate::storage::Storage;

const WAL_HEADER: usize = detect::WAL_HEADER as usize;
const FRAME_HEADER: usize = detect::FRAME_HEADER as usize;

/// A WAL frame whose page image failed its check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BadFrame {
    /// The frame's number (1-based, in file order).
    pub frame: u64,
    /// The database page it holds.
    pub page: u32,
    /// Where the frame starts in the WAL.
    pub offset: u64,
    /// What is wrong.
    pub problem: String,
}

/// What the walk found.
#[derive(Debug, Default)]
pub struct WalFindings {
    /// Frames SQLite would apply (up to the last commit of the valid
    /// chain), each checked.
    pub frames_checked: u64,
    /// Transactions among them.
    pub commits: u64,
    /// Frames whose page failed its check.
    pub bad_frames: Vec<BadFrame>,
    /// Damage that loses transactions (a broken chain before its end).
    pub problems: Vec<String>,
    /// What is not damage but worth saying.
    pub notes: Vec<String>,
}

/// Checks a page image: `(frame page number, offset of the image in the
/// WAL, the image)` to its problem, if any.
pub type FrameCheck<'a> = dyn FnMut(u32, u64, &[u8]) -> Option<String> + 'a;

/// Walks the WAL `wal` of a database with `page_size`-byte pages.
/// `checksums_readable`: whether SQLite's frame checksums are over the
/// bytes as stored (false under encryption, which masks them; the frames'
/// authentication stands in for them then).
pub fn check_wal(
    storage: &dyn Storage,
    wal: &WalInfo,
    page_size: usize,
    checksums_readable: bool,
    check: &mut FrameCheck<'_>,
) -> Result<WalFindings> {
    let mut out = WalFindings::default();
    let header = storage.read(&wal.path, 0, WAL_HEADER)?;
    if header.len() < WAL_HEADER {
        out.notes
            .push("the WAL is shorter than its header: SQLite ignores it".into());
        return Ok(out);
    }
    let magic = be32(&header[0..4]);
    let big_endian = match magic {
        0x377f_0682 => false,
        0x377f_0683 => true,
        _ => {
            out.notes
                .push("the WAL has no valid header: SQLite ignores it".into());
            return Ok(out);
        }
    };
    let raw = be32(&header[8..12]) as usize;
    let wal_page = if raw == 1 { 65536 } else { raw };
    if wal_page != page_size {
        out.problems.push(format!(
            "the WAL's header says {wal_page}-byte pages, the database has {page_size}: \
             SQLite ignores this WAL"
        ));
        return Ok(out);
    }
    let mut sum = (0u32, 0u32);
    if checksums_readable {
        sum = checksum(&header[..24], big_endian, sum);
        if (be32(&header[24..28]), be32(&header[28..32])) != sum {
            out.problems.push(
                "the WAL header's checksum does not match: SQLite ignores the whole WAL, \
                 and every transaction in it is lost"
                    .into(),
            );
            return Ok(out);
        }
    }
    let salts = header[16..24].to_vec();
    let frame_len = FRAME_HEADER + page_size;
    // Frames of the valid chain, kept until a commit frame makes them part
    // of the database SQLite reads.
    let mut pending: Vec<(u64, u32, u64, Vec<u8>)> = Vec::new();
    let mut frame = 0u64;
    let mut at = WAL_HEADER as u64;
    // The first frame that fails its checksum, and whether it says it
    // ends a transaction.
    let mut broken_at = None;
    while at + frame_len as u64 <= wal.size {
        let bytes = storage.read(&wal.path, at, frame_len)?;
        if bytes.len() < frame_len || bytes[8..16] != salts[..] {
            break;
        }
        frame += 1;
        let (head, page) = bytes.split_at(FRAME_HEADER);
        if checksums_readable {
            let s = checksum(page, big_endian, checksum(&head[..8], big_endian, sum));
            if (be32(&head[16..20]), be32(&head[20..24])) != s {
                broken_at = Some((frame, be32(&head[4..8]) != 0));
                break;
            }
            sum = s;
        }
        pending.push((frame, be32(&head[0..4]), at, page.to_vec()));
        if be32(&head[4..8]) != 0 {
            out.commits += 1;
            for (frame, pgno, offset, image) in pending.drain(..) {
                out.frames_checked += 1;
                if let Some(problem) = check(pgno, offset + FRAME_HEADER as u64, &image) {
                    out.bad_frames.push(BadFrame {
                        frame,
                        page: pgno,
                        offset,
                        problem,
                    });
                }
            }
        }
        at += frame_len as u64;
    }
    if let Some((bad, commit)) = broken_at {
        let later = frames_with_salts(storage, wal, at + frame_len as u64, frame_len, &salts)?;
        if later > 0 {
            out.problems.push(format!(
                "WAL frame {bad} fails its checksum with {later} frame(s) of the same \
                 generation after it: SQLite stops reading the WAL there, and the \
                 transactions in and after that frame are lost"
            ));
        } else if commit {
            out.notes.push(format!(
                "the last WAL frame ({bad}) fails its checksum: a write cut short by a crash \
                 (its transaction never committed) or damage (a committed transaction lost); \
                 SQLite ignores it"
            ));
        } else {
            out.notes.push(format!(
                "the last WAL frame ({bad}) fails its checksum: a write cut short; SQLite \
                 ignores it"
            ));
        }
    }
    if !pending.is_empty() {
        out.notes.push(format!(
            "{} WAL frame(s) after the last commit belong to no finished transaction: \
             SQLite ignores them",
            pending.len()
        ));
    }
    Ok(out)
}

/// Frames from `at` on whose salts are the header's.
fn frames_with_salts(
    storage: &dyn Storage,
    wal: &WalInfo,
    mut at: u64,
    frame_len: usize,
    salts: &[u8],
) -> Result<u64> {
    let mut n = 0;
    while at + frame_len as u64 <= wal.size {
        let head = storage.read(&wal.path, at, FRAME_HEADER)?;
        if head.len() < FRAME_HEADER || head[8..16] != *salts {
            break;
        }
        n += 1;
        at += frame_len as u64;
    }
    Ok(n)
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// SQLite's WAL checksum (two 32-bit sums over pairs of words, in the
/// byte order the WAL's magic names), continued from `(s1, s2)`.
fn checksum(data: &[u8], big_endian: bool, (mut s1, mut s2): (u32, u32)) -> (u32, u32) {
    let word = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    };
    for pair in data.chunks_exact(8) {
        s1 = s1.wrapping_add(word(&pair[..4])).wrapping_add(s2);
        s2 = s2.wrapping_add(word(&pair[4..])).wrapping_add(s1);
    }
    (s1, s2)
}
