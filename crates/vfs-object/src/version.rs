//! One state of a database: its LSN, size, chunk size and page map.
//!
//! The page map is a persistent vector (structurally shared between
//! versions), so applying a commit costs O(pages it changed) and holding a
//! snapshot costs one `Arc`.

use rpds::VectorSync;

use crate::format::{FLAG_FULL_IMAGE, Index};

/// Where the current bytes of one chunk are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    /// The commit holding it; 0 for a hole (reads as zeros).
    pub lsn: u64,
    /// Its entry in that commit's index.
    pub entry: u32,
    /// CRC-32 of the stored bytes.
    pub crc: u32,
}

impl Loc {
    pub const HOLE: Loc = Loc {
        lsn: 0,
        entry: 0,
        crc: 0,
    };
}

/// A committed state.
#[derive(Clone, Debug)]
pub struct Version {
    pub lsn: u64,
    /// Database size in bytes.
    pub size: u64,
    /// Chunk size; 0 while the database is empty and has never been
    /// written.
    pub chunk_size: u32,
    pub map: VectorSync<Loc>,
}

impl Version {
    /// The empty database (LSN 0).
    pub fn empty() -> Version {
        Version {
            lsn: 0,
            size: 0,
            chunk_size: 0,
            map: VectorSync::new_sync(),
        }
    }

    /// Where chunk `chunk` is, `None` past the end of the database.
    pub fn loc(&self, chunk: u64) -> Option<Loc> {
        if self.chunk_size == 0 || chunk >= self.size.div_ceil(u64::from(self.chunk_size)) {
            return None;
        }
        Some(
            usize::try_from(chunk)
                .ok()
                .and_then(|c| self.map.get(c).copied())
                .unwrap_or(Loc::HOLE),
        )
    }

    /// This version with commit `idx` applied. The caller has checked that
    /// `idx` is the commit after this one.
    pub fn apply(&self, idx: &Index) -> Result<Version, String> {
        let h = &idx.header;
        debug_assert_eq!(h.lsn, self.lsn + 1);
        let full = h.flags & FLAG_FULL_IMAGE != 0;
        let mut map = if full {
            VectorSync::new_sync()
        } else {
            if self.chunk_size != 0 && h.chunk_size != self.chunk_size && self.size != 0 {
                return Err(format!(
                    "commit {} changes the chunk size from {} to {} without a full image",
                    h.lsn, self.chunk_size, h.chunk_size
                ));
            }
            self.map.clone()
        };
        let count = usize::try_from(h.chunk_count())
            .map_err(|_| format!("commit {}: database too large", h.lsn))?;
        while map.len() > count {
            map.drop_last_mut();
        }
        for (i, e) in idx.entries.iter().enumerate() {
            let chunk = e.chunk as usize;
            while map.len() < chunk {
                map.push_back_mut(Loc::HOLE);
            }
            let loc = Loc {
                lsn: h.lsn,
                entry: i as u32,
                crc: e.crc,
            };
            if chunk == map.len() {
                map.push_back_mut(loc);
            } else {
                map.set_mut(chunk, loc);
            }
        }
        Ok(Version {
            lsn: h.lsn,
            size: h.db_size,
            chunk_size: h.chunk_size,
            map,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{NewCommit, decode_index, encode};

    fn commit(lsn: u64, size: u64, chunk: u32, flags: u32, pages: &[u32]) -> Index {
        let data: Vec<Vec<u8>> = pages
            .iter()
            .map(|&p| vec![p as u8; chunk as usize])
            .collect();
        let pairs: Vec<(u32, &[u8])> = pages.iter().zip(&data).map(|(&p, d)| (p, &d[..])).collect();
        let bytes = encode(&NewCommit {
            lsn,
            txid: [0; 16],
            db_size: size,
            chunk_size: chunk,
            time_ms: 0,
            flags,
            pages: &pairs,
        });
        decode_index(&bytes, None).unwrap()
    }

    #[test]
    fn apply_grow_overwrite_shrink_and_holes() {
        let v0 = Version::empty();
        assert_eq!(v0.loc(0), None);
        let v1 = v0.apply(&commit(1, 4 * 512, 512, 0, &[0, 1, 3])).unwrap();
        assert_eq!(v1.loc(0).unwrap().lsn, 1);
        assert_eq!(v1.loc(2), Some(Loc::HOLE));
        assert_eq!(v1.loc(3).unwrap().entry, 2);
        assert_eq!(v1.loc(4), None);
        let v2 = v1.apply(&commit(2, 2 * 512, 512, 0, &[1])).unwrap();
        assert_eq!(v2.loc(0).unwrap().lsn, 1);
        assert_eq!(v2.loc(1).unwrap().lsn, 2);
        assert_eq!(v2.loc(2), None);
        // The older version is untouched.
        assert_eq!(v1.loc(1).unwrap().lsn, 1);
        assert_eq!(v1.loc(3).unwrap().lsn, 1);
        // A chunk-size change needs a full image.
        assert!(v2.apply(&commit(3, 2048, 1024, 0, &[0])).is_err());
        let v3 = v2
            .apply(&commit(3, 2048, 1024, FLAG_FULL_IMAGE, &[0, 1]))
            .unwrap();
        assert_eq!(v3.chunk_size, 1024);
        assert_eq!(v3.loc(1).unwrap().lsn, 3);
    }
}
