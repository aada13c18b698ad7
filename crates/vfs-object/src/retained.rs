//! Which versions of a database can still be opened, and what the state
//! at one of them is built from: the newest snapshot at or below it and
//! the log after it, or the whole log from LSN 1 when no snapshot is
//! that old (`docs/object.md`, §11 and §14).
//!
//! A **span** is a run of versions that open from one base: the snapshot
//! `snap/<s>` (versions `s..=s+k`, applying the consecutive log objects
//! `s+1..=s+k`), or the empty database (versions `1..=k`, from `log/1`).
//! The versions that can be opened are exactly the union of the spans.
//!
//! Two things the listing alone cannot tell are checked with a request:
//!
//! * `log/1` may be the tombstone garbage collection leaves there (a void
//!   commit of 96 bytes, flagged collected): the span from the empty
//!   database exists only when it is not.
//! * A log object above a snapshot may be a **stray**: a commit a stale
//!   writer created in a key garbage collection had freed (it was refused,
//!   but its removal can fail). Strays only ever lie below the newest
//!   snapshot minus one (`snapshot.rs`), so the log after the newest
//!   snapshot is trusted as it is; after an older snapshot `s`, only when
//!   `log/<s>` still holds the commit the snapshot holds (the same
//!   transaction id), which proves no log object above `s` was ever freed.
//!   Otherwise that span is the snapshot's own version alone.

use std::collections::HashMap;

use futures::StreamExt;

use crate::client::{Client, StoreError};
use crate::db::{CatchUpError, FETCH_CONCURRENCY, fetch_object};
use crate::format::{FLAG_COLLECTED, HEADER_LEN, Index, KIND_COMMIT};
use crate::history::{At, HistoryError, Listed, from_ms, list_log, list_snapshots, rfc3339};
use crate::keys::DbKeys;
use crate::page_groups::{Manifest, SnapHead, fetch_groups, fetch_snapshot};
use crate::snapshot::log_holds;

/// Versions that open from one base: see the module's doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    /// The base: the snapshot's LSN, or 1 (with `snapshot` false) for the
    /// empty database plus `log/1`.
    pub first: u64,
    /// The newest version it reaches.
    pub last: u64,
    /// Based on `snap/<first>`.
    pub snapshot: bool,
}

impl Span {
    fn contains(&self, lsn: u64) -> bool {
        (self.first..=self.last).contains(&lsn)
    }
}

/// The newest LSN `m ≥ from` such that every log object `from+1..=m` is in
/// `logs` (sorted, distinct).
fn run_end(logs: &[u64], from: u64) -> u64 {
    let start = logs.partition_point(|&l| l <= from);
    let mut end = from;
    for &l in &logs[start..] {
        if l != end + 1 {
            break;
        }
        end = l;
    }
    end
}

/// The spans the listing allows before any check: one from the empty
/// database when `log/1` is listed, one per snapshot.
fn candidate_spans(logs: &[u64], snaps: &[u64]) -> Vec<Span> {
    let mut spans = Vec::new();
    if logs.first() == Some(&1) {
        spans.push(Span {
            first: 1,
            last: run_end(logs, 1),
            snapshot: false,
        });
    }
    for &s in snaps {
        spans.push(Span {
            first: s,
            last: run_end(logs, s),
            snapshot: true,
        });
    }
    spans
}

/// The listing of a database's log and snapshots, and the indexes fetched
/// so far (each object is fetched at most once per question).
pub(crate) struct Retained {
    client: Client,
    keys: DbKeys,
    logs: Vec<Listed>,
    snaps: Vec<Listed>,
    indexes: HashMap<(bool, u64), Index>,
    /// The manifests of snapshots written as page groups, by LSN (their
    /// entry in `indexes` is [`Manifest::summary`]).
    manifests: HashMap<u64, Manifest>,
    /// Answers of [`Retained::checked`], by span base.
    checked: HashMap<(bool, u64), Span>,
}

/// What the state at one version is built from.
pub(crate) struct Plan {
    /// The version.
    pub lsn: u64,
    /// The snapshot it starts from (`None`: the empty database).
    pub snapshot: Option<Index>,
    /// When that snapshot is a manifest: it and its groups' indexes.
    pub groups: Option<(Manifest, Vec<(u32, Index)>)>,
    /// The log objects applied after the base, in LSN order.
    pub chain: Vec<Index>,
}

impl Retained {
    /// Lists the log and the snapshots: ⌈c/1000⌉ + ⌈s/1000⌉ LIST.
    pub(crate) async fn list(client: Client, keys: DbKeys) -> Result<Retained, StoreError> {
        let logs = list_log(&client, &keys).await?;
        let snaps = list_snapshots(&client, &keys).await?;
        Ok(Retained {
            client,
            keys,
            logs,
            snaps,
            indexes: HashMap::new(),
            manifests: HashMap::new(),
            checked: HashMap::new(),
        })
    }

    fn log_lsns(&self) -> Vec<u64> {
        self.logs.iter().map(|l| l.lsn).collect()
    }

    fn snap_lsns(&self) -> Vec<u64> {
        self.snaps.iter().map(|l| l.lsn).collect()
    }

    fn listed(&self, snapshot: bool, lsn: u64) -> Option<&Listed> {
        let list = if snapshot { &self.snaps } else { &self.logs };
        list.binary_search_by_key(&lsn, |l| l.lsn)
            .ok()
            .map(|i| &list[i])
    }

    /// The newest LSN in the store (0: none).
    fn head(&self) -> u64 {
        let log = self.logs.last().map_or(0, |l| l.lsn);
        let snap = self.snaps.last().map_or(0, |l| l.lsn);
        log.max(snap)
    }

    /// The header and index of `log/<lsn>` or `snap/<lsn>` (listed), one
    /// GET of at most 64 KiB unless fetched before; CRC-checked.
    async fn index(&mut self, snapshot: bool, lsn: u64) -> Result<&Index, CatchUpError> {
        if !self.indexes.contains_key(&(snapshot, lsn)) {
            let size = self.listed(snapshot, lsn).map_or(0, |l| l.size);
            let idx = if snapshot {
                match fetch_snapshot(&self.client, &self.keys, lsn, size).await? {
                    SnapHead::Whole(idx) => idx,
                    SnapHead::Groups(m) => {
                        let summary = m.summary();
                        self.manifests.insert(lsn, m);
                        summary
                    }
                }
            } else {
                let key = self.keys.commit(lsn);
                fetch_object(&self.client, key, lsn, size, 0, KIND_COMMIT)
                    .await?
                    .0
            };
            self.indexes.insert((snapshot, lsn), idx);
        }
        Ok(&self.indexes[&(snapshot, lsn)])
    }

    /// Fetches the indexes of the log objects `lsns` not fetched yet,
    /// [`FETCH_CONCURRENCY`] at once.
    async fn fetch_logs(&mut self, lsns: &[u64]) -> Result<(), CatchUpError> {
        let wanted: Vec<(u64, u64)> = lsns
            .iter()
            .filter(|&&l| !self.indexes.contains_key(&(false, l)))
            .map(|&l| (l, self.listed(false, l).map_or(0, |x| x.size)))
            .collect();
        let mut fetches = futures::stream::iter(wanted.into_iter().map(|(lsn, size)| {
            let client = self.client.clone();
            let key = self.keys.commit(lsn);
            async move { fetch_object(&client, key, lsn, size, 0, KIND_COMMIT).await }
        }))
        .buffered(FETCH_CONCURRENCY);
        while let Some(fetched) = fetches.next().await {
            let (idx, _) = fetched?;
            self.indexes.insert((false, idx.header.lsn), idx);
        }
        Ok(())
    }

    /// `span` after its check (module doc): `None` when it does not exist
    /// (`log/1` is a tombstone), else the span, cut to the snapshot's own
    /// version when the log after it cannot be trusted. At most two GETs,
    /// each at most once per span.
    async fn checked(&mut self, span: Span) -> Result<Option<Span>, CatchUpError> {
        let key = (span.snapshot, span.first);
        if let Some(s) = self.checked.get(&key) {
            return Ok((s.last >= s.first).then_some(*s));
        }
        let newest_snapshot = self.snaps.last().map(|l| l.lsn);
        let result = if !span.snapshot {
            // A tombstone is a 96-byte void commit: anything larger is not.
            let size = self.listed(false, 1).map_or(0, |l| l.size);
            let collected = size == HEADER_LEN as u64
                && self.index(false, 1).await?.header.flags & FLAG_COLLECTED != 0;
            if collected {
                Span { last: 0, ..span }
            } else {
                span
            }
        } else if span.last == span.first || Some(span.first) == newest_snapshot {
            span
        } else {
            let txid = self.index(true, span.first).await?.header.txid;
            let holds = log_holds(&self.client, &self.keys, span.first, txid)
                .await
                .map_err(CatchUpError::Store)?;
            if holds {
                span
            } else {
                Span {
                    last: span.first,
                    ..span
                }
            }
        };
        self.checked.insert(key, result);
        Ok((result.last >= result.first).then_some(result))
    }

    /// Every span, checked, ordered by base.
    async fn spans(&mut self) -> Result<Vec<Span>, CatchUpError> {
        let mut out = Vec::new();
        for span in candidate_spans(&self.log_lsns(), &self.snap_lsns()) {
            if let Some(s) = self.checked(span).await? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// The span the state at `lsn` is built from: the one with the newest
    /// base at or below it (an older base needs the same log and more),
    /// or why there is none.
    async fn span_for(&mut self, lsn: u64) -> Result<Span, HistoryError> {
        let head = self.head();
        if head == 0 {
            return Err(HistoryError::Version(format!(
                "LSN {lsn} does not exist: the database has no commit"
            )));
        }
        if lsn > head {
            return Err(HistoryError::Version(format!(
                "LSN {lsn} does not exist: the newest commit is LSN {head}"
            )));
        }
        let cands = candidate_spans(&self.log_lsns(), &self.snap_lsns());
        let best = cands
            .iter()
            .filter(|s| s.first <= lsn)
            .max_by_key(|s| (s.first, s.snapshot))
            .copied();
        let checked = match best {
            Some(b) => self.checked(b).await?,
            None => None,
        };
        if let Some(span) = checked {
            if span.contains(lsn) {
                return Ok(span);
            }
            let k = span.last + 1;
            return Err(HistoryError::Version(
                if span.snapshot && self.listed(false, k).is_some() {
                    format!(
                        "LSN {lsn} cannot be rebuilt: the log after snapshot {} cannot be \
                     trusted ({} no longer holds the commit the snapshot holds: garbage \
                     collection freed the keys above it)",
                        span.first,
                        self.keys.commit(span.first)
                    )
                } else {
                    format!(
                        "LSN {lsn} cannot be rebuilt: commit {k} ({}) is missing from the log",
                        self.keys.commit(k)
                    )
                },
            ));
        }
        // No base at or below `lsn`: the log's older part was deleted (or
        // `log/1` is a tombstone) and no snapshot that old is left.
        let first_log = self
            .logs
            .iter()
            .map(|l| l.lsn)
            .find(|&l| l > 1 || best.is_none())
            .unwrap_or(head);
        let oldest = match self.snaps.first() {
            Some(s) => format!("the oldest retained version is LSN {}", s.lsn),
            None => format!("no version older than LSN {first_log} is retained"),
        };
        Err(HistoryError::Version(if lsn < first_log {
            format!("LSN {lsn} is no longer retained: {oldest} (older objects were deleted)")
        } else {
            format!(
                "LSN {lsn} cannot be rebuilt: commits 1 to {} were deleted and no snapshot \
                 replaces them ({oldest})",
                first_log - 1
            )
        }))
    }

    /// The commit time of version `lsn` (in a span): its snapshot's when
    /// there is one (a log object at a snapshot's LSN may be a stray), else
    /// its log object's. One GET unless fetched before.
    async fn time_of(&mut self, lsn: u64) -> Result<u64, CatchUpError> {
        let snapshot = self.listed(true, lsn).is_some();
        Ok(self.index(snapshot, lsn).await?.header.time_ms)
    }

    /// The version `at` names and what its state is built from.
    ///
    /// For a time, a binary search over the versions that can be opened:
    /// commit times never decrease along the log (each committer takes at
    /// least its parent's, and a snapshot carries the commit time of the
    /// commit it holds), so the newest version at or before `t` is found
    /// with ⌈log₂ v⌉ + 1 index GETs for `v` versions.
    pub(crate) async fn plan(&mut self, at: At) -> Result<Plan, HistoryError> {
        let lsn = match at {
            At::Lsn(n) => n,
            At::Time(t) => self.find_time(t).await?,
        };
        let span = self.span_for(lsn).await?;
        let snapshot = if span.snapshot {
            Some(self.index(true, span.first).await?.clone())
        } else {
            None
        };
        let groups = match self.manifests.get(&span.first).filter(|_| span.snapshot) {
            Some(m) => Some((m.clone(), fetch_groups(&self.client, &self.keys, m).await?)),
            None => None,
        };
        let from = if span.snapshot { span.first + 1 } else { 1 };
        let lsns: Vec<u64> = (from..=lsn).collect();
        self.fetch_logs(&lsns).await?;
        let mut chain = Vec::with_capacity(lsns.len());
        for l in lsns {
            let idx = self.indexes.remove(&(false, l)).expect("fetched above");
            if idx.header.flags & FLAG_COLLECTED != 0 {
                return Err(HistoryError::Version(format!(
                    "LSN {lsn} is no longer retained: commit {l} was garbage-collected"
                )));
            }
            chain.push(idx);
        }
        Ok(Plan {
            lsn,
            snapshot,
            groups,
            chain,
        })
    }

    /// The newest version that can be opened whose commit time is at or
    /// before `t`.
    async fn find_time(&mut self, t: std::time::SystemTime) -> Result<u64, HistoryError> {
        let spans = self.spans().await?;
        let mut versions: Vec<u64> = spans.iter().flat_map(|s| s.first..=s.last).collect();
        versions.sort_unstable();
        versions.dedup();
        let describe = At::Time(t).describe();
        let Some(&oldest) = versions.first() else {
            return Err(HistoryError::Version(format!(
                "{describe}: the database has no version that can be opened"
            )));
        };
        // The first version whose time is after `t`.
        let (mut lo, mut hi) = (0usize, versions.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if from_ms(self.time_of(versions[mid]).await?) <= t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == 0 {
            let first = self.time_of(oldest).await?;
            return Err(HistoryError::Version(format!(
                "{describe}: no retained commit is that old (the oldest retained, LSN {oldest}, \
                 was committed at {})",
                rfc3339(from_ms(first))
            )));
        }
        Ok(versions[lo - 1])
    }

    /// Every version that can be opened, oldest first, with the index that
    /// describes it and its listing: the log object's, or for a version
    /// held only by a snapshot, the snapshot's.
    pub(crate) async fn versions(&mut self) -> Result<Vec<(Listed, Index, bool)>, CatchUpError> {
        let spans = self.spans().await?;
        let mut versions: Vec<u64> = spans.iter().flat_map(|s| s.first..=s.last).collect();
        versions.sort_unstable();
        versions.dedup();
        // The log objects that describe them (a log object at a snapshot's
        // LSN only if it holds the snapshot's commit).
        let mut from_log = Vec::new();
        for &v in &versions {
            if self.listed(false, v).is_none() {
                continue;
            }
            if self.listed(true, v).is_some() {
                let snap = self.index(true, v).await?.header.txid;
                let log = self.index(false, v).await?.header.clone();
                if log.txid != snap || log.flags & FLAG_COLLECTED != 0 {
                    continue;
                }
            }
            from_log.push(v);
        }
        self.fetch_logs(&from_log).await?;
        let mut out = Vec::with_capacity(versions.len());
        for v in versions {
            let snapshot = from_log.binary_search(&v).is_err();
            let idx = self.index(snapshot, v).await?.clone();
            let listed = self.listed(snapshot, v).expect("listed");
            out.push((
                Listed {
                    lsn: v,
                    size: listed.size,
                    stored_at: listed.stored_at,
                },
                idx,
                snapshot,
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(first: u64, last: u64, snapshot: bool) -> Span {
        Span {
            first,
            last,
            snapshot,
        }
    }

    #[test]
    fn runs_and_candidate_spans() {
        assert_eq!(run_end(&[1, 2, 3, 5], 0), 3);
        assert_eq!(run_end(&[1, 2, 3, 5], 3), 3);
        assert_eq!(run_end(&[1, 2, 3, 5], 4), 5);
        assert_eq!(run_end(&[], 7), 7);
        // A whole log: one span from the empty database.
        assert_eq!(candidate_spans(&[1, 2, 3], &[]), [span(1, 3, false)]);
        // After GC with snapshot 22 as the base: the tombstone at 1 (its
        // own span until checked), the base's parent 21 (in no span), and
        // the snapshot's span over the log after it.
        let logs: Vec<u64> = [1].into_iter().chain(21..=27).collect();
        assert_eq!(
            candidate_spans(&logs, &[22]),
            [span(1, 1, false), span(22, 27, true)]
        );
        // A hole after a snapshot ends its span; a later snapshot starts
        // another.
        assert_eq!(
            candidate_spans(&[5, 6, 8, 9], &[4, 7]),
            [span(4, 6, true), span(7, 9, true)]
        );
    }
}
