//! Just enough of the write-ahead-log format (as described in SQLite's file
//! format documentation) to fold a WAL's committed transactions into a
//! database image, for [`MemDb::export`](crate::MemDb::export).
//!
//! A WAL is a 32-byte header followed by frames of a 24-byte header and one
//! page. A frame counts when its salts equal the header's and its
//! cumulative checksum matches; a frame whose "database size" field is not
//! zero commits every frame since the previous commit. This is the same
//! reading SQLite does when it rebuilds a WAL index from the file.

use crate::store::Store;

/// The WAL magic number; the low bit selects big-endian checksum words.
const MAGIC: u32 = 0x377f_0682;
/// Size of the WAL file header.
pub(crate) const WAL_HEADER: usize = 32;
/// Size of each frame header.
pub(crate) const FRAME_HEADER: usize = 24;

pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// A valid database page size (a power of two from 512 to 65536).
pub(crate) fn valid_page_size(n: u32) -> bool {
    (512..=65_536).contains(&n) && n.is_power_of_two()
}

/// The running two-word checksum of the WAL format.
struct Checksum {
    s0: u32,
    s1: u32,
    big_endian: bool,
}

impl Checksum {
    fn add(&mut self, data: &[u8]) {
        for pair in data.chunks_exact(8) {
            let (x0, x1) = if self.big_endian {
                (be32(&pair[..4]), be32(&pair[4..]))
            } else {
                (le32(&pair[..4]), le32(&pair[4..]))
            };
            self.s0 = self.s0.wrapping_add(x0).wrapping_add(self.s1);
            self.s1 = self.s1.wrapping_add(x1).wrapping_add(self.s0);
        }
    }

    fn matches(&self, stored: &[u8]) -> bool {
        (self.s0, self.s1) == (be32(&stored[..4]), be32(&stored[4..8]))
    }
}

/// The page size a WAL file's header declares, if the header is valid
/// enough to trust (magic and page size; the checksum is not verified here).
pub(crate) fn header_page_size(header: &[u8; WAL_HEADER]) -> Option<u32> {
    let magic = be32(&header[..4]);
    let page_size = be32(&header[8..12]);
    (magic & !1 == MAGIC && valid_page_size(page_size)).then_some(page_size)
}

/// Applies every committed transaction of `wal` to `image` (a copy of the
/// database file) in order and returns how many it applied. A missing or
/// empty WAL, or one without a whole frame, changes nothing. A WAL that
/// holds frames behind a header this reader cannot verify (a layer above
/// memdb transformed it, as vfs-crypto does, or it is damaged) is an
/// error: ignoring it would silently drop committed transactions.
pub(crate) fn apply(image: &mut Vec<u8>, wal: &Store) -> Result<usize, String> {
    let mut header = [0u8; WAL_HEADER];
    if wal.read(&mut header, 0) < WAL_HEADER {
        return Ok(0);
    }
    let unreadable = |why: &str| {
        Err(format!(
            "its WAL holds {} bytes of frames behind a header memdb cannot verify ({why}): \
             it was written through a layer that transforms it (such as vfs-crypto), or is \
             damaged; checkpoint it first (PRAGMA wal_checkpoint(TRUNCATE) on a connection \
             through that layer), or copy the database through that layer",
            wal.len().saturating_sub(WAL_HEADER as u64)
        ))
    };
    let Some(page_size) = header_page_size(&header) else {
        if wal.len() >= (WAL_HEADER + FRAME_HEADER + 512) as u64 {
            return unreadable("no WAL magic number or page size");
        }
        return Ok(0);
    };
    let page_size = page_size as usize;
    let mut sum = Checksum {
        s0: 0,
        s1: 0,
        big_endian: be32(&header[..4]) & 1 == 1,
    };
    sum.add(&header[..24]);
    if !sum.matches(&header[24..]) {
        if wal.len() >= (WAL_HEADER + FRAME_HEADER + page_size) as u64 {
            return unreadable("its checksum does not match");
        }
        return Ok(0);
    }
    let mut frame = vec![0u8; FRAME_HEADER + page_size];
    // Frames of the transaction not yet committed: (page number, offset of
    // the page data in the WAL).
    let mut pending: Vec<(usize, u64)> = Vec::new();
    let mut commits = 0;
    let mut offset = WAL_HEADER as u64;
    loop {
        if wal.read(&mut frame, offset) < frame.len() {
            break;
        }
        let page_no = be32(&frame[..4]) as usize;
        let db_pages = be32(&frame[4..8]) as usize;
        if page_no == 0 || frame[8..16] != header[16..24] {
            break;
        }
        sum.add(&frame[..8]);
        sum.add(&frame[FRAME_HEADER..]);
        if !sum.matches(&frame[16..24]) {
            // SQLite writes frames in order, so a frame still being
            // written is followed by no commit of this WAL generation. A
            // commit further on means committed frames this reader cannot
            // verify.
            if later_commit(wal, offset, &header[16..24], frame.len() as u64) {
                return unreadable("a frame's checksum fails, yet later frames commit");
            }
            break;
        }
        pending.push((page_no, offset + FRAME_HEADER as u64));
        if db_pages != 0 {
            // A commit: the database now has `db_pages` pages, and this
            // transaction's frames are its newest content.
            image.resize(db_pages * page_size, 0);
            for (page_no, data_at) in pending.drain(..) {
                if page_no <= db_pages {
                    let at = (page_no - 1) * page_size;
                    wal.read(&mut image[at..at + page_size], data_at);
                }
            }
            commits += 1;
        }
        offset += frame.len() as u64;
    }
    Ok(commits)
}

/// Whether a frame after the one at `offset` carries `salts` and commits.
fn later_commit(wal: &Store, offset: u64, salts: &[u8], frame_len: u64) -> bool {
    let mut head = [0u8; FRAME_HEADER];
    let mut at = offset + frame_len;
    while wal.read(&mut head, at) == FRAME_HEADER {
        if head[8..16] != *salts || be32(&head[..4]) == 0 {
            return false;
        }
        if be32(&head[4..8]) != 0 {
            return true;
        }
        at += frame_len;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a WAL the way the format describes, for testing the reader
    /// independently of SQLite.
    struct Builder {
        bytes: Vec<u8>,
        sum: Checksum,
        page_size: usize,
        salts: [u8; 8],
    }

    impl Builder {
        fn new(page_size: usize, big_endian: bool) -> Builder {
            let mut h = Vec::new();
            h.extend((MAGIC | big_endian as u32).to_be_bytes());
            h.extend(3_007_000u32.to_be_bytes());
            h.extend((page_size as u32).to_be_bytes());
            h.extend(0u32.to_be_bytes());
            let salts = [1, 2, 3, 4, 5, 6, 7, 8];
            h.extend(salts);
            let mut sum = Checksum {
                s0: 0,
                s1: 0,
                big_endian,
            };
            sum.add(&h);
            h.extend(sum.s0.to_be_bytes());
            h.extend(sum.s1.to_be_bytes());
            Builder {
                bytes: h,
                sum,
                page_size,
                salts,
            }
        }

        fn frame(&mut self, page_no: u32, commit: u32, fill: u8) {
            let mut f = Vec::new();
            f.extend(page_no.to_be_bytes());
            f.extend(commit.to_be_bytes());
            f.extend(self.salts);
            let page = vec![fill; self.page_size];
            self.sum.add(&f[..8]);
            self.sum.add(&page);
            f.extend(self.sum.s0.to_be_bytes());
            f.extend(self.sum.s1.to_be_bytes());
            f.extend(page);
            self.bytes.extend(f);
        }
    }

    #[test]
    fn applies_committed_frames_only() {
        for big_endian in [false, true] {
            let mut b = Builder::new(512, big_endian);
            b.frame(1, 0, 0x11);
            b.frame(3, 3, 0x33); // commit: 3 pages
            b.frame(2, 0, 0x22); // never committed
            let wal = Store::from_bytes(&b.bytes);
            let mut image = vec![0xEE; 512];
            assert_eq!(apply(&mut image, &wal), Ok(1));
            assert_eq!(image.len(), 3 * 512);
            assert!(image[..512].iter().all(|&x| x == 0x11));
            assert!(image[512..1024].iter().all(|&x| x == 0), "gap is zero");
            assert!(image[1024..].iter().all(|&x| x == 0x33));
        }
    }

    #[test]
    fn stops_at_a_bad_checksum_or_salt_and_honours_shrinking_commits() {
        let mut b = Builder::new(512, false);
        b.frame(1, 0, 1);
        b.frame(2, 2, 2);
        b.frame(1, 1, 9); // commit shrinking to one page
        let good = b.bytes.clone();
        let mut image = Vec::new();
        assert_eq!(apply(&mut image, &Store::from_bytes(&good)), Ok(2));
        assert_eq!(image, vec![9; 512]);

        // Corrupt the last frame's page: only the first commit applies.
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let mut image = Vec::new();
        assert_eq!(apply(&mut image, &Store::from_bytes(&bad)), Ok(1));
        assert_eq!(image.len(), 1024);

        // A wrong salt in the first frame: nothing applies.
        let mut bad = good;
        bad[WAL_HEADER + 8] ^= 1;
        let mut image = vec![7; 512];
        assert_eq!(apply(&mut image, &Store::from_bytes(&bad)), Ok(0));
        assert_eq!(image, vec![7; 512]);

        // Too short to hold a frame, whatever it is: nothing to apply.
        assert_eq!(apply(&mut image, &Store::from_bytes(&[0; 100])), Ok(0));
    }

    #[test]
    fn frames_behind_an_unverifiable_header_are_an_error_not_silence() {
        let mut b = Builder::new(512, false);
        b.frame(1, 1, 5);
        let good = b.bytes;
        // The header's checksum masked (as vfs-crypto stores it).
        let mut masked = good.clone();
        masked[24] ^= 0x5a;
        let mut image = vec![7; 512];
        let err = apply(&mut image, &Store::from_bytes(&masked)).unwrap_err();
        assert!(err.contains("checkpoint it first"), "{err}");
        assert_eq!(image, vec![7; 512], "nothing applied");
        // No WAL magic, but frames' worth of bytes.
        let mut foreign = good.clone();
        foreign[0] ^= 0xff;
        assert!(apply(&mut image, &Store::from_bytes(&foreign)).is_err());
        // Frames whose checksums are masked (as vfs-crypto stores them),
        // behind a good header: the commit further on gives them away.
        let mut b = Builder::new(512, false);
        b.frame(1, 0, 5);
        b.frame(2, 2, 6);
        let mut frames_masked = b.bytes.clone();
        frames_masked[WAL_HEADER + 16] ^= 0x5a;
        frames_masked[WAL_HEADER + FRAME_HEADER + 512 + 16] ^= 0x5a;
        let err = apply(&mut image, &Store::from_bytes(&frames_masked)).unwrap_err();
        assert!(err.contains("later frames commit"), "{err}");
        // A last frame still being written (its page not there yet) is not
        // an error: the transaction is not committed.
        let mut in_progress = b.bytes.clone();
        let last = in_progress.len() - 1;
        in_progress[last] ^= 1;
        let mut image = Vec::new();
        assert_eq!(apply(&mut image, &Store::from_bytes(&in_progress)), Ok(0));
        // A lone header (no frame) that does not verify loses nothing.
        assert_eq!(
            apply(&mut image, &Store::from_bytes(&masked[..WAL_HEADER])),
            Ok(0)
        );
    }
}
