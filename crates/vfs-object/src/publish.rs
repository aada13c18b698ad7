//! Publishing a commit: one conditional create, and the resolution of
//! every outcome that is not a plain success (`docs/object.md`, §2).

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use vfs_core::{Error, codes};

use crate::client::{Client, FailureKind, StoreError};
use crate::db::{Ctx, Db, apply_commit};
use crate::format::{self, HEADER_LEN, Index};
use crate::keys::DbKeys;
use crate::snapshot::log_holds;
use crate::version::Version;

/// How a publication ended.
pub enum Published {
    /// The commit is LSN `version.lsn`.
    Committed(Arc<Version>),
    /// Anything else: the error to report (the transaction is over).
    Failed(Error),
}

impl Db {
    /// Publishes commit `idx` (encoded as `body`) on top of `base` with one
    /// conditional create, resolving every ambiguous outcome (see
    /// `docs/object.md`, §2).
    pub fn publish(&self, ctx: &Ctx, base: &Arc<Version>, idx: Index, body: Vec<u8>) -> Published {
        let published = self.publish_only(ctx, base, idx, body);
        if let Published::Committed(v) = &published {
            self.install(v);
        }
        published
    }

    /// [`Db::publish`] without making the new state the head: the group
    /// commit uploader (`group.rs`) installs its own.
    pub(crate) fn publish_only(
        &self,
        ctx: &Ctx,
        base: &Arc<Version>,
        idx: Index,
        body: Vec<u8>,
    ) -> Published {
        let lsn = idx.header.lsn;
        let txid = idx.header.txid;
        let key = self.keys.commit(lsn);
        let fence_txid: [u8; 16] = rand::random();
        let fence = format::encode(&format::NewCommit {
            lsn,
            txid: fence_txid,
            db_size: base.size,
            chunk_size: if base.chunk_size == 0 {
                idx.header.chunk_size
            } else {
                base.chunk_size
            },
            time_ms: idx.header.time_ms,
            flags: format::FLAG_VOID,
            pages: &[],
        });
        let client = ctx.client.clone();
        let k = key.clone();
        let keys = self.keys.clone();
        let parent_txid = base.txid;
        let body = Bytes::from(body);
        let cached_body = body.clone();
        let outcome = ctx.runtime.run(async move {
            let outcome =
                resolve_publication(&client, &k, lsn, body, txid, Bytes::from(fence), fence_txid)
                    .await;
            match outcome {
                Outcome::Committed if lsn > 1 => {
                    check_not_collected(&client, &keys, lsn, parent_txid).await
                }
                other => other,
            }
        });
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => Outcome::Unknown(e.message().to_owned()),
        };
        match outcome {
            Outcome::Committed => {
                let version = match apply_commit(&ctx.cache, base, &idx, Some(&cached_body)) {
                    Ok(v) => Arc::new(v),
                    Err(m) => {
                        // Our own encoder produced it: cannot happen, but
                        // never publish a state we cannot read.
                        self.mark_refresh_due();
                        return Published::Failed(Error::new(
                            codes::SQLITE_IOERR_WRITE,
                            format!(
                                "vfs-object: {:?}: commit {lsn} stored but not readable: {m}",
                                self.name
                            ),
                        ));
                    }
                };
                Published::Committed(version)
            }
            Outcome::Lost { winner } => {
                self.mark_refresh_due();
                let by = match winner {
                    Some(t) => format!("transaction {}", hex(&t[..8])),
                    None => "an object this build cannot read".to_owned(),
                };
                Published::Failed(Error::new(
                    codes::SQLITE_BUSY_SNAPSHOT,
                    format!(
                        "vfs-object: {:?}: another writer committed LSN {lsn} first ({key} holds {by}); \
                         this transaction was rolled back and nothing of it was stored: retry it",
                        self.name
                    ),
                ))
            }
            Outcome::Collected { removed } => {
                self.mark_refresh_due();
                Published::Failed(Error::new(
                    codes::SQLITE_BUSY_SNAPSHOT,
                    format!(
                        "vfs-object: {:?}: this transaction read LSN {}, whose log has been \
                         compacted and garbage-collected since; {key} could be created again, but \
                         no reader would see it, so the transaction was rolled back ({}): retry it",
                        self.name,
                        lsn - 1,
                        if removed {
                            "the stray object was removed"
                        } else {
                            "removing the stray object failed; readers never apply it"
                        }
                    ),
                ))
            }
            Outcome::NotCommitted(why) => {
                self.mark_refresh_due();
                Published::Failed(Error::new(
                    codes::SQLITE_IOERR_WRITE,
                    format!(
                        "vfs-object: {:?}: the transaction was NOT committed: {why}",
                        self.name
                    ),
                ))
            }
            Outcome::Unknown(why) => {
                self.mark_refresh_due();
                Published::Failed(Error::new(
                    codes::SQLITE_IOERR_WRITE,
                    format!(
                        "vfs-object: {:?}: the outcome of commit {lsn} ({key}) is UNKNOWN: {why}; \
                         the next read transaction will see whether it landed",
                        self.name
                    ),
                ))
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// How the publication of one commit ended.
enum Outcome {
    Committed,
    /// Another object holds the LSN (its transaction id, if readable).
    Lost {
        winner: Option<[u8; 16]>,
    },
    /// Created, but on a parent that garbage collection had deleted: the
    /// key was free again because it had been collected (a stale writer).
    Collected {
        removed: bool,
    },
    /// Certainly not stored (refused, or fenced).
    NotCommitted(String),
    Unknown(String),
}

/// After creating `log/<lsn>` on a parent with transaction id
/// `parent_txid`: committed if `log/<lsn − 1>` still holds that parent.
/// Otherwise the parent was garbage-collected, and so (GC deletes in LSN
/// order, after a snapshot above) was an earlier `log/<lsn>`: this object
/// is a stray no reader will apply, and is removed.
async fn check_not_collected(
    client: &Client,
    keys: &DbKeys,
    lsn: u64,
    parent_txid: [u8; 16],
) -> Outcome {
    match log_holds(client, keys, lsn - 1, parent_txid).await {
        Ok(true) => Outcome::Committed,
        Ok(false) => Outcome::Collected {
            removed: client.delete(&keys.commit(lsn)).await.is_ok(),
        },
        Err(e) => Outcome::Unknown(format!(
            "{} was created, but checking that its parent is still in the log failed: {e}",
            keys.commit(lsn)
        )),
    }
}

/// The transaction id of the commit object at `key`.
async fn read_txid(client: &Client, key: &Path, lsn: u64) -> Result<Option<[u8; 16]>, StoreError> {
    let head = client.get_range(key, 0..HEADER_LEN as u64).await?;
    Ok(format::decode_header(&head)
        .ok()
        .filter(|h| h.lsn == lsn)
        .map(|h| h.txid))
}

async fn resolve_publication(
    client: &Client,
    key: &Path,
    lsn: u64,
    body: Bytes,
    txid: [u8; 16],
    fence: Bytes,
    fence_txid: [u8; 16],
) -> Outcome {
    let first = match client.put_create(key, body).await {
        Ok(()) => return Outcome::Committed,
        Err(e) if e.kind == FailureKind::Permanent => {
            return Outcome::NotCommitted(format!("the store refused it: {e}"));
        }
        Err(e) => e,
    };
    // Taken, or no answer: read back who holds the key.
    match read_txid(client, key, lsn).await {
        Ok(Some(t)) if t == txid => return Outcome::Committed,
        Ok(winner) => return Outcome::Lost { winner },
        Err(e) if e.kind == FailureKind::NotFound => {}
        Err(e) => {
            return Outcome::Unknown(format!("{first}; reading {key} back failed: {e}"));
        }
    }
    // Nothing there, but a PUT of ours may still be in flight: fence the
    // LSN so that it can never land, then read back once more.
    match client.put_create(key, fence).await {
        Ok(()) => {
            return Outcome::NotCommitted(format!(
                "{first}; LSN {lsn} was fenced with a void commit, so it never will be"
            ));
        }
        Err(e) if e.kind == FailureKind::Permanent => {
            return Outcome::Unknown(format!("{first}; fencing {key} failed: {e}"));
        }
        Err(_) => {}
    }
    match read_txid(client, key, lsn).await {
        Ok(Some(t)) if t == txid => Outcome::Committed,
        Ok(Some(t)) if t == fence_txid => Outcome::NotCommitted(format!(
            "{first}; LSN {lsn} was fenced with a void commit, so it never will be"
        )),
        Ok(winner) => Outcome::Lost { winner },
        Err(e) => Outcome::Unknown(format!("{first}; reading {key} back failed: {e}")),
    }
}
