//! Where a catch-up starts: the head, when the log still continues it, or
//! the newest snapshot (`snap/<LSN>`), when compaction and garbage
//! collection have moved the log on (`docs/object.md`, §14).
//!
//! The rule that makes deleting log objects safe: garbage collection
//! deletes `log/<k>` only once a snapshot above `k` exists, in ascending LSN
//! order, and never the newest snapshot. So if `log/<n>` still holds the
//! commit a process read as LSN `n`, no log object above `n` was ever
//! deleted, and none of them can be a stray re-created by a stale writer.
//! Readers check that before applying commits after `n`; writers check it
//! after creating `log/<n+1>` (`publish.rs`).

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::cache::PageCache;
use crate::client::{Client, FailureKind, StoreError};
use crate::db::{CatchUpError, apply_commit, fetch_object};
use crate::format::{self, FormatError, HEADER_LEN, Index, KIND_COMMIT};
use crate::keys::DbKeys;
use crate::version::Version;

/// When catching up with at most [`WHOLE_OBJECT_COMMITS`] commits (a
/// poll that found a few), objects up to this size are read whole and
/// their pages go into the cache; otherwise (a cold open of a long log)
/// only as far as their index.
const WHOLE_OBJECT_MAX: u64 = 1 << 20;
/// See [`WHOLE_OBJECT_MAX`].
const WHOLE_OBJECT_COMMITS: usize = 16;
/// Commits fetched at once when catching up.
const FETCH_CONCURRENCY: usize = 16;

type Fetched = Result<(Index, Option<Bytes>), CatchUpError>;

/// Whether `log/<lsn>` holds the commit with transaction id `txid` (false
/// when it is gone or holds another: a tombstone, or a stray).
pub(crate) async fn log_holds(
    client: &Client,
    keys: &DbKeys,
    lsn: u64,
    txid: [u8; 16],
) -> Result<bool, StoreError> {
    match client
        .get_range(&keys.commit(lsn), 0..HEADER_LEN as u64)
        .await
    {
        Ok(head) => Ok(format::decode_header(&head).is_ok_and(|h| {
            h.kind == KIND_COMMIT
                && h.lsn == lsn
                && h.txid == txid
                && h.flags & format::FLAG_COLLECTED == 0
        })),
        Err(e) if e.kind == FailureKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The commits of `found` (sorted) that continue `from` without a gap.
fn run_after(found: &[(u64, u64)], from: u64) -> Vec<(u64, u64)> {
    found
        .iter()
        .skip_while(|(l, _)| *l <= from)
        .enumerate()
        .take_while(|(i, (l, _))| *l == from + 1 + *i as u64)
        .map(|(_, x)| *x)
        .collect()
}

fn fetch_run(client: &Client, keys: &DbKeys, run: Vec<(u64, u64)>) -> BoxStream<'static, Fetched> {
    let whole_max = if run.len() <= WHOLE_OBJECT_COMMITS {
        WHOLE_OBJECT_MAX
    } else {
        0
    };
    let client = client.clone();
    let keys = keys.clone();
    futures::stream::iter(run.into_iter().map(move |(lsn, size)| {
        let client = client.clone();
        let key = keys.commit(lsn);
        async move { fetch_object(&client, key, lsn, size, whole_max, KIND_COMMIT).await }
    }))
    .buffered(FETCH_CONCURRENCY)
    .boxed()
}

/// Applies what `fetches` yields (after `first`, if given) to `base`.
async fn apply_all(
    cache: &PageCache,
    keys: &DbKeys,
    base: Arc<Version>,
    first: Option<Fetched>,
    mut fetches: BoxStream<'static, Fetched>,
) -> Result<Arc<Version>, CatchUpError> {
    let mut version = base;
    let mut next = match first {
        Some(f) => Some(f),
        None => fetches.next().await,
    };
    while let Some(fetched) = next {
        let (idx, whole) = fetched?;
        let applied = apply_commit(cache, &version, &idx, whole.as_deref()).map_err(|m| {
            CatchUpError::Format(keys.commit(idx.header.lsn).to_string(), FormatError(m))
        })?;
        version = Arc::new(applied);
        next = fetches.next().await;
    }
    Ok(version)
}

/// The state after catching up from `head` with the log commits `found`
/// (sorted, all above the head), and the snapshot it started from, if any.
///
/// * The log continues the head and `log/<head>` still holds the head's
///   commit: apply the run (the check overlaps the first fetches).
/// * Otherwise (a cold open, a gap, a collected or replaced `log/<head>`):
///   list the snapshots above the head and start from the newest; without
///   one, a cold open starts from the empty database and anything else
///   stays at the head (a gap is a commit not visible yet).
pub(crate) async fn plan_catch_up(
    client: &Client,
    cache: &PageCache,
    keys: &DbKeys,
    head: Arc<Version>,
    found: &[(u64, u64)],
) -> Result<(Arc<Version>, Option<u64>), CatchUpError> {
    if found.is_empty() && head.lsn > 0 {
        return Ok((head, None));
    }
    if head.lsn > 0 && found[0].0 == head.lsn + 1 {
        let mut fetches = fetch_run(client, keys, run_after(found, head.lsn));
        let (held, first) =
            futures::future::join(log_holds(client, keys, head.lsn, head.txid), fetches.next())
                .await;
        if held.map_err(CatchUpError::Store)? {
            let v = apply_all(cache, keys, head, first, fetches).await?;
            return Ok((v, None));
        }
    }
    let snaps = client
        .list_after(keys.snap_dir(), &keys.snapshot(head.lsn))
        .await
        .map_err(CatchUpError::Store)?;
    let newest = snaps
        .iter()
        .filter_map(|m| keys.snapshot_lsn_of(&m.location).map(|l| (l, m.size)))
        .max();
    let Some((lsn, size)) = newest else {
        if head.lsn > 0 {
            return Ok((head, None));
        }
        let fetches = fetch_run(client, keys, run_after(found, 0));
        return Ok((apply_all(cache, keys, head, None, fetches).await?, None));
    };
    // A whole snapshot object, or a manifest and its page groups.
    let base = crate::page_groups::load_snapshot(client, cache, keys, lsn, size).await?;
    let fetches = fetch_run(client, keys, run_after(found, lsn));
    let v = apply_all(cache, keys, Arc::new(base), None, fetches).await?;
    Ok((v, Some(lsn)))
}

#[cfg(test)]
mod tests {
    use super::run_after;

    #[test]
    fn runs_stop_at_the_first_gap() {
        let found = [(3, 0), (4, 0), (5, 0), (7, 0)];
        assert_eq!(run_after(&found, 2).len(), 3);
        assert_eq!(run_after(&found, 3).len(), 2);
        assert!(run_after(&found, 1).is_empty());
        assert_eq!(run_after(&found, 6), vec![(7, 0)]);
    }
}
