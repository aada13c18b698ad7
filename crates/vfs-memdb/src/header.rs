//! A copy of a database's change counter, read without the store's lock.
//!
//! At the start of every read transaction in rollback-journal mode SQLite
//! reads 16 bytes at offset 24 of the database (the change counter, the
//! size in pages and the freelist's first page and count) to learn whether
//! its cache is still good. [`HeaderCopy`] keeps those bytes beside the
//! store, published by every writer under the store's write lock, so that
//! this read takes no lock.
//!
//! A seqlock: the writer (only ever one, since it holds the store's write
//! lock) marks the sequence word odd, stores the two data words, then
//! stores the next even sequence with `Release`; a reader loads the
//! sequence with `Acquire`, the data, an `Acquire` fence, and the sequence
//! again, and uses the data only when both loads saw the same even value
//! with the copy marked valid. Anything else (a write in progress, a
//! database shorter than 40 bytes) sends the reader to the store under its
//! read lock: the copy never answers with bytes of two different writes,
//! and a reader never waits on it.
//!
//! Why the order suffices: if the reader's data loads saw any store of a
//! later publish, the `Release` fence after that publish's odd mark (which
//! precedes its data stores) synchronises with the reader's `Acquire`
//! fence, so the reader's second sequence load sees that odd mark or
//! later, which differs from the first load. If its first load saw the even
//! value of publish `n`, the `Acquire` makes publish `n`'s data stores
//! visible, so no data older than `n` is read. Both together: the data are
//! exactly publish `n`'s.

use std::sync::atomic::{AtomicU64, Ordering, fence};

/// Where the bytes lie in the database file.
pub(crate) const OFFSET: u64 = 24;
/// How many bytes SQLite reads there.
pub(crate) const LEN: usize = 16;

/// Set in the sequence word while a writer stores the data words.
const WRITING: u64 = 1;
/// Set in the sequence word when the data words hold the file's bytes
/// (the file was at least `OFFSET + LEN` bytes long at the publish).
const VALID: u64 = 2;
/// The publish count, above the two flags.
const STEP: u64 = 4;

/// Bytes 24–39 of a database, published by its store's writers.
#[derive(Debug)]
pub(crate) struct HeaderCopy {
    sequence: AtomicU64,
    words: [AtomicU64; 2],
}

impl HeaderCopy {
    /// A copy holding `bytes` (`None`: the file is too short).
    pub(crate) fn new(bytes: Option<[u8; LEN]>) -> HeaderCopy {
        let copy = HeaderCopy {
            sequence: AtomicU64::new(0),
            words: [AtomicU64::new(0), AtomicU64::new(0)],
        };
        copy.publish(bytes);
        copy
    }

    /// Publishes `bytes` (`None`: the file is now too short). Only one
    /// thread may publish at a time: callers hold the store's write lock.
    pub(crate) fn publish(&self, bytes: Option<[u8; LEN]>) {
        let before = self.sequence.load(Ordering::Relaxed);
        let (low, high, valid) = match bytes {
            Some(b) => {
                let (low, high) = b.split_at(LEN / 2);
                (words_of(low), words_of(high), VALID)
            }
            None => (0, 0, 0),
        };
        let next = (before & !(STEP - 1)).wrapping_add(STEP) | valid;
        self.sequence.store(before | WRITING, Ordering::Relaxed);
        // Orders the mark before the data stores for any reader whose data
        // loads see them (see the module's argument).
        fence(Ordering::Release);
        self.words[0].store(low, Ordering::Relaxed);
        self.words[1].store(high, Ordering::Relaxed);
        self.sequence.store(next, Ordering::Release);
    }

    /// The bytes, if `offset` and `buf` ask exactly for them and a whole
    /// publish could be read; otherwise `None` (ask the store).
    #[inline]
    pub(crate) fn read(&self, buf: &mut [u8], offset: u64) -> Option<usize> {
        if offset != OFFSET || buf.len() != LEN {
            return None;
        }
        let first = self.sequence.load(Ordering::Acquire);
        if first & (WRITING | VALID) != VALID {
            return None;
        }
        let low = self.words[0].load(Ordering::Relaxed);
        let high = self.words[1].load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if self.sequence.load(Ordering::Relaxed) != first {
            return None;
        }
        buf[..LEN / 2].copy_from_slice(&low.to_ne_bytes());
        buf[LEN / 2..].copy_from_slice(&high.to_ne_bytes());
        Some(LEN)
    }
}

/// Eight bytes as one word (native order: only ever turned back into the
/// same bytes).
fn words_of(bytes: &[u8]) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(bytes);
    u64::from_ne_bytes(word)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Barrier};
    use std::thread;

    use super::*;

    #[test]
    fn answers_only_the_header_read_of_a_long_enough_file() {
        let copy = HeaderCopy::new(None);
        let mut buf = [0; LEN];
        assert_eq!(copy.read(&mut buf, OFFSET), None);
        let bytes: [u8; LEN] = std::array::from_fn(|i| i as u8 + 1);
        copy.publish(Some(bytes));
        assert_eq!(copy.read(&mut buf, OFFSET), Some(LEN));
        assert_eq!(buf, bytes);
        assert_eq!(copy.read(&mut buf, 0), None);
        assert_eq!(copy.read(&mut buf[..8], OFFSET), None);
        copy.publish(None);
        assert_eq!(copy.read(&mut buf, OFFSET), None);
    }

    /// One writer publishes headers whose 16 bytes are all the same value,
    /// readers check every answer is one such header: bytes of two
    /// publishes mixed (a torn read) fail it. The writer goes on until the
    /// readers have read twenty million times while it ran. Publishing the data
    /// words without the odd mark makes it fail.
    #[test]
    fn a_reader_never_sees_two_publishes_mixed() {
        const READERS: usize = 2;
        const READS: u64 = 20_000_000;
        let copy = Arc::new(HeaderCopy::new(Some([0; LEN])));
        let done = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicU64::new(0));
        let start = Arc::new(Barrier::new(READERS + 1));
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let (copy, done, reads, start) =
                    (copy.clone(), done.clone(), reads.clone(), start.clone());
                thread::spawn(move || {
                    let mut answered = 0u64;
                    let mut buf = [0; LEN];
                    start.wait();
                    while !done.load(Ordering::Relaxed) {
                        for _ in 0..1024 {
                            if copy.read(&mut buf, OFFSET).is_some() {
                                answered += 1;
                                assert!(
                                    buf.iter().all(|b| *b == buf[0]),
                                    "torn header read: {buf:?}"
                                );
                            }
                        }
                        reads.fetch_add(1024, Ordering::Relaxed);
                    }
                    answered
                })
            })
            .collect();
        start.wait();
        let mut n = 0u8;
        // A reader that stopped has failed: its panic is reported below.
        while reads.load(Ordering::Relaxed) < READS && !readers.iter().any(|r| r.is_finished()) {
            n = n.wrapping_add(1);
            copy.publish(Some([n; LEN]));
        }
        done.store(true, Ordering::Relaxed);
        for reader in readers {
            assert!(reader.join().unwrap() > 0, "the copy never answered");
        }
    }
}
