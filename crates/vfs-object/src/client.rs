//! Store requests: bounded retries with backoff, per-request timeouts,
//! error classification and request counters.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{
    GetOptions, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    UpdateVersion,
};

/// What kind of failure a store error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The object does not exist.
    NotFound,
    /// A conditional create found the key taken.
    Exists,
    /// Timeouts, connection errors, server errors: the request may or may
    /// not have been applied, and may succeed if repeated.
    Transient,
    /// Refused (permissions, credentials, unsupported, bad request): not
    /// applied, and repeating it will not help.
    Permanent,
}

/// A failed request, after retries.
#[derive(Clone, Debug)]
pub struct StoreError {
    pub kind: FailureKind,
    /// `"GET <key>"`, `"PUT <key>"`, …
    pub request: String,
    pub message: String,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.request, self.message)
    }
}

fn classify(e: &object_store::Error) -> FailureKind {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => FailureKind::NotFound,
        E::AlreadyExists { .. } | E::Precondition { .. } => FailureKind::Exists,
        E::Generic { .. } | E::JoinError { .. } => FailureKind::Transient,
        _ => FailureKind::Permanent,
    }
}

/// Request counters of one [`ObjectVfs`](crate::ObjectVfs) (every attempt
/// counts, retries included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestStats {
    /// GET requests (whole objects and ranges).
    pub gets: u64,
    /// Bytes received by GETs.
    pub get_bytes: u64,
    /// PUT requests.
    pub puts: u64,
    /// Bytes sent by PUTs.
    pub put_bytes: u64,
    /// LIST requests (one per listing call; the store may page internally).
    pub lists: u64,
    /// DELETE requests.
    pub deletes: u64,
    /// Attempts that were retried after a transient failure.
    pub retries: u64,
}

impl RequestStats {
    /// The counts since `earlier` was taken.
    pub fn since(&self, earlier: &RequestStats) -> RequestStats {
        RequestStats {
            gets: self.gets - earlier.gets,
            get_bytes: self.get_bytes - earlier.get_bytes,
            puts: self.puts - earlier.puts,
            put_bytes: self.put_bytes - earlier.put_bytes,
            lists: self.lists - earlier.lists,
            deletes: self.deletes - earlier.deletes,
            retries: self.retries - earlier.retries,
        }
    }

    /// All requests.
    pub fn requests(&self) -> u64 {
        self.gets + self.puts + self.lists + self.deletes
    }
}

impl fmt::Display for RequestStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} GET ({} B), {} PUT ({} B), {} LIST, {} DELETE, {} retried",
            self.gets,
            self.get_bytes,
            self.puts,
            self.put_bytes,
            self.lists,
            self.deletes,
            self.retries
        )
    }
}

#[derive(Default)]
struct Counters {
    gets: AtomicU64,
    get_bytes: AtomicU64,
    puts: AtomicU64,
    put_bytes: AtomicU64,
    lists: AtomicU64,
    deletes: AtomicU64,
    retries: AtomicU64,
}

/// How requests are retried.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub retries: u32,
    pub backoff: Duration,
    pub timeout: Duration,
}

impl RetryPolicy {
    fn delay(&self, attempt: u32) -> Duration {
        let exp = self.backoff.saturating_mul(1u32 << attempt.min(16));
        exp.min(Duration::from_secs(1).max(self.backoff))
    }
}

/// The store and how to talk to it; cheap to clone into request futures.
#[derive(Clone)]
pub struct Client {
    store: Arc<dyn ObjectStore>,
    policy: RetryPolicy,
    counters: Arc<Counters>,
}

impl Client {
    pub fn new(store: Arc<dyn ObjectStore>, policy: RetryPolicy) -> Client {
        Client {
            store,
            policy,
            counters: Arc::default(),
        }
    }

    pub fn store_name(&self) -> String {
        self.store.to_string()
    }

    pub fn stats(&self) -> RequestStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RequestStats {
            gets: l(&c.gets),
            get_bytes: l(&c.get_bytes),
            puts: l(&c.puts),
            put_bytes: l(&c.put_bytes),
            lists: l(&c.lists),
            deletes: l(&c.deletes),
            retries: l(&c.retries),
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries are
    /// spent; each attempt bounded by the timeout.
    async fn retrying<T, F, Fut>(&self, request: String, mut attempt: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = object_store::Result<T>>,
    {
        let mut n = 0;
        loop {
            let (kind, message) = match tokio::time::timeout(self.policy.timeout, attempt()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => (classify(&e), e.to_string()),
                Err(_) => (
                    FailureKind::Transient,
                    format!("no answer within {:?}", self.policy.timeout),
                ),
            };
            if kind == FailureKind::Transient && n < self.policy.retries {
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(self.policy.delay(n)).await;
                n += 1;
                continue;
            }
            let message = if n > 0 {
                format!("{message} (after {n} retries)")
            } else {
                message
            };
            return Err(StoreError {
                kind,
                request,
                message,
            });
        }
    }

    /// Every object under `dir` whose key sorts after `after`.
    pub async fn list_after(
        &self,
        dir: &Path,
        after: &Path,
    ) -> Result<Vec<ObjectMeta>, StoreError> {
        self.retrying(format!("LIST {dir}/ after {after}"), || {
            self.counters.lists.fetch_add(1, Ordering::Relaxed);
            self.store
                .list_with_offset(Some(dir), after)
                .try_collect::<Vec<_>>()
        })
        .await
    }

    /// The bytes of `key` in `range`.
    pub async fn get_range(&self, key: &Path, range: Range<u64>) -> Result<Bytes, StoreError> {
        let request = format!("GET {key} bytes {}..{}", range.start, range.end);
        let bytes = self
            .retrying(request, || {
                self.counters.gets.fetch_add(1, Ordering::Relaxed);
                let range = range.clone();
                async move {
                    let opts = GetOptions::new().with_range(Some(range));
                    self.store.get_opts(key, opts).await?.bytes().await
                }
            })
            .await?;
        self.counters
            .get_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(bytes)
    }

    /// The whole object at `key`.
    pub async fn get(&self, key: &Path) -> Result<Bytes, StoreError> {
        let bytes = self
            .retrying(format!("GET {key}"), || {
                self.counters.gets.fetch_add(1, Ordering::Relaxed);
                async move { self.store.get(key).await?.bytes().await }
            })
            .await?;
        self.counters
            .get_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(bytes)
    }

    /// Creates `key` with `body` only if no object has that key
    /// (`If-None-Match: *`). Transient failures are retried: a retry of a
    /// create that did land answers `Exists`.
    pub async fn put_create(&self, key: &Path, body: Bytes) -> Result<(), StoreError> {
        let len = body.len() as u64;
        self.retrying(format!("PUT {key} (create)"), || {
            self.counters.puts.fetch_add(1, Ordering::Relaxed);
            self.counters.put_bytes.fetch_add(len, Ordering::Relaxed);
            let payload = PutPayload::from_bytes(body.clone());
            async move {
                self.store
                    .put_opts(key, payload, PutOptions::from(PutMode::Create))
                    .await
                    .map(drop)
            }
        })
        .await
    }

    /// Writes `key` whatever it holds (garbage collection's tombstone at
    /// `log/1`; never a commit).
    pub async fn put_overwrite(&self, key: &Path, body: Bytes) -> Result<(), StoreError> {
        let len = body.len() as u64;
        self.retrying(format!("PUT {key} (overwrite)"), || {
            self.counters.puts.fetch_add(1, Ordering::Relaxed);
            self.counters.put_bytes.fetch_add(len, Ordering::Relaxed);
            let payload = PutPayload::from_bytes(body.clone());
            async move {
                self.store
                    .put_opts(key, payload, PutOptions::from(PutMode::Overwrite))
                    .await
                    .map(drop)
            }
        })
        .await
    }

    /// The whole object at `key` with its version (e-tag), or `None` when
    /// there is none.
    pub async fn get_versioned(
        &self,
        key: &Path,
    ) -> Result<Option<(Bytes, UpdateVersion)>, StoreError> {
        let r = self
            .retrying(format!("GET {key}"), || {
                self.counters.gets.fetch_add(1, Ordering::Relaxed);
                async move {
                    let got = self.store.get_opts(key, GetOptions::default()).await?;
                    let version = UpdateVersion {
                        e_tag: got.meta.e_tag.clone(),
                        version: got.meta.version.clone(),
                    };
                    Ok((got.bytes().await?, version))
                }
            })
            .await;
        match r {
            Ok((bytes, version)) => {
                self.counters
                    .get_bytes
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                Ok(Some((bytes, version)))
            }
            Err(e) if e.kind == FailureKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes `key` conditionally: `PutMode::Create` (`If-None-Match: *`)
    /// or `PutMode::Update` (`If-Match: <e-tag>`). Returns the new
    /// version. A condition that does not hold is `Exists`; transient
    /// failures are retried (a retry of a write that did land finds its
    /// condition broken, so the caller reads back to tell).
    pub async fn put_conditional(
        &self,
        key: &Path,
        body: Bytes,
        mode: PutMode,
    ) -> Result<UpdateVersion, StoreError> {
        let len = body.len() as u64;
        let what = match mode {
            PutMode::Create => "create",
            _ => "if-match",
        };
        self.retrying(format!("PUT {key} ({what})"), || {
            self.counters.puts.fetch_add(1, Ordering::Relaxed);
            self.counters.put_bytes.fetch_add(len, Ordering::Relaxed);
            let payload = PutPayload::from_bytes(body.clone());
            let opts = PutOptions::from(mode.clone());
            async move {
                let r = self.store.put_opts(key, payload, opts).await?;
                Ok(UpdateVersion {
                    e_tag: r.e_tag,
                    version: r.version,
                })
            }
        })
        .await
    }

    /// Deletes `key` (a missing key is fine).
    pub async fn delete(&self, key: &Path) -> Result<(), StoreError> {
        let r = self
            .retrying(format!("DELETE {key}"), || {
                self.counters.deletes.fetch_add(1, Ordering::Relaxed);
                self.store.delete(key)
            })
            .await;
        match r {
            Err(e) if e.kind == FailureKind::NotFound => Ok(()),
            r => r,
        }
    }
}
