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
/// database file) in order. A missing, empty or invalid WAL changes nothing.
/// Returns the number of committed transactions applied.
pub(crate) fn apply(image: &mut Vec<u8>, wal: &Store) -> usize {
    let mut header = [0u8; WAL_HEADER];
    if wal.read(&mut header, 0) < WAL_HEADER {
        return 0;
    }
    let Some(page_size) = header_page_size(&header) else {
        return 0;
    };
    let page_size = page_size as usize;
    let mut sum = Checksum {
        s0: 0,
        s1: 0,
        big_endian: be32(&header[..4]) & 1 == 1,
    };
    sum.add(&header[..24]);
    if !sum.matches(&header[24..]) {
        return 0;
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
    commits
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
            assert_eq!(apply(&mut image, &wal), 1);
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
        assert_eq!(apply(&mut image, &Store::from_bytes(&good)), 2);
        assert_eq!(image, vec![9; 512]);

        // Corrupt the last frame's page: only the first commit applies.
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let mut image = Vec::new();
        assert_eq!(apply(&mut image, &Store::from_bytes(&bad)), 1);
        assert_eq!(image.len(), 1024);

        // A wrong salt in the first frame: nothing applies.
        let mut bad = good;
        bad[WAL_HEADER + 8] ^= 1;
        let mut image = vec![7; 512];
        assert_eq!(apply(&mut image, &Store::from_bytes(&bad)), 0);
        assert_eq!(image, vec![7; 512]);

        // Not a WAL at all.
        assert_eq!(apply(&mut image, &Store::from_bytes(&[0; 100])), 0);
    }
}
