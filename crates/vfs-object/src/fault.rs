//! A fault layer over any [`ObjectStore`]: count requests, add latency,
//! fail requests, or apply a request and then lose its response.
//!
//! Built for tests and benchmarks of this crate (crash and ambiguity
//! sweeps, GET counts, an injected per-request latency), and usable on any
//! store:
//!
//! ```
//! use std::sync::Arc;
//! use object_store::memory::InMemory;
//! use vfs_object::fault::{FaultStore, RequestKind, Rule};
//!
//! let store = FaultStore::new(Arc::new(InMemory::new()));
//! let ctl = store.controller();
//! // The first PUT is applied, then its response is lost.
//! ctl.add(Rule::on(&[RequestKind::Put]).lose_response());
//! assert_eq!(ctl.counts().puts, 0);
//! ```

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use parking_lot::Mutex;

/// The kinds of request the layer tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// `get_opts` (whole objects, ranges, heads).
    Get,
    /// `put_opts` and multipart uploads.
    Put,
    /// Listings.
    List,
    /// Deletes (one per key).
    Delete,
    /// Copies and renames.
    Copy,
}

/// What a rule does to the requests it hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Fail without reaching the store.
    Fail,
    /// Reach the store, then fail as if the response were lost (for reads,
    /// the same as `Fail`).
    LoseResponse,
    /// Wait this long, then proceed.
    Delay(Duration),
}

/// A fault: which requests it hits and what it does to them.
#[derive(Clone, Debug)]
pub struct Rule {
    kinds: Option<Vec<RequestKind>>,
    skip: u64,
    times: Option<u64>,
    action: Action,
    /// Only ranged GETs of more than this many bytes.
    longer_than: Option<u64>,
    /// Only requests whose key contains this text.
    key_contains: Option<String>,
}

impl Rule {
    /// A rule for requests of these kinds (by default: fails the first one).
    pub fn on(kinds: &[RequestKind]) -> Rule {
        Rule {
            kinds: Some(kinds.to_vec()),
            skip: 0,
            times: Some(1),
            action: Action::Fail,
            longer_than: None,
            key_contains: None,
        }
    }

    /// A rule for every request.
    pub fn any() -> Rule {
        Rule {
            kinds: None,
            ..Rule::on(&[])
        }
    }

    /// Lets the first `n` matching requests (counted from when the rule is
    /// added) through.
    pub fn after(mut self, n: u64) -> Rule {
        self.skip = n;
        self
    }

    /// Hits `n` requests, then retires.
    pub fn times(mut self, n: u64) -> Rule {
        self.times = Some(n);
        self
    }

    /// Hits every matching request from then on.
    pub fn always(mut self) -> Rule {
        self.times = None;
        self
    }

    /// Hits only GETs of a byte range longer than `bytes` (ranges of
    /// several pages, such as read-ahead), none of the other requests.
    pub fn ranges_longer_than(mut self, bytes: u64) -> Rule {
        self.longer_than = Some(bytes);
        self
    }

    /// Hits only requests whose key contains `text` (such as `"/log/"`:
    /// commits, not the lease).
    pub fn keys_containing(mut self, text: &str) -> Rule {
        self.key_contains = Some(text.to_owned());
        self
    }

    /// Fails the requests it hits.
    pub fn fail(mut self) -> Rule {
        self.action = Action::Fail;
        self
    }

    /// Applies the requests it hits, then loses their responses.
    pub fn lose_response(mut self) -> Rule {
        self.action = Action::LoseResponse;
        self
    }

    /// Delays the requests it hits.
    pub fn delay(mut self, d: Duration) -> Rule {
        self.action = Action::Delay(d);
        self
    }

    fn matches(&self, kind: RequestKind, key: &str, range_len: Option<u64>) -> bool {
        if self
            .key_contains
            .as_deref()
            .is_some_and(|t| !key.contains(t))
        {
            return false;
        }
        self.kinds.as_ref().is_none_or(|k| k.contains(&kind))
            && self
                .longer_than
                .is_none_or(|min| range_len.is_some_and(|l| l > min))
    }
}

/// Requests seen by the layer, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// GETs (and HEADs).
    pub gets: u64,
    /// PUTs.
    pub puts: u64,
    /// LISTs.
    pub lists: u64,
    /// DELETEs.
    pub deletes: u64,
    /// Copies and renames.
    pub copies: u64,
}

impl Counts {
    /// Every request.
    pub fn total(&self) -> u64 {
        self.gets + self.puts + self.lists + self.deletes + self.copies
    }

    /// The counts since `earlier`.
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            gets: self.gets - earlier.gets,
            puts: self.puts - earlier.puts,
            lists: self.lists - earlier.lists,
            deletes: self.deletes - earlier.deletes,
            copies: self.copies - earlier.copies,
        }
    }
}

#[derive(Default)]
struct State {
    counts: Counts,
    latency: Duration,
    rules: Vec<Rule>,
    log: Vec<(RequestKind, String)>,
    logging: bool,
}

/// Steers a [`FaultStore`] from a test.
#[derive(Clone)]
pub struct FaultController {
    state: Arc<Mutex<State>>,
}

impl FaultController {
    /// Adds a rule; rules are tried in the order they were added, and the
    /// first that hits a request decides its fate.
    pub fn add(&self, rule: Rule) {
        self.state.lock().rules.push(rule);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.state.lock().rules.clear();
    }

    /// Sets a latency added to every request (before it reaches the store).
    pub fn set_latency(&self, d: Duration) {
        self.state.lock().latency = d;
    }

    /// The requests seen so far (including failed ones).
    pub fn counts(&self) -> Counts {
        self.state.lock().counts
    }

    /// Starts (or stops) recording every request's kind and key.
    pub fn record(&self, on: bool) {
        let mut st = self.state.lock();
        st.logging = on;
        st.log.clear();
    }

    /// The requests recorded since [`record`](Self::record)`(true)`.
    pub fn recorded(&self) -> Vec<(RequestKind, String)> {
        self.state.lock().log.clone()
    }
}

/// The fault layer. Cloning shares its state.
#[derive(Clone)]
pub struct FaultStore {
    inner: Arc<dyn ObjectStore>,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultStore({})", self.inner)
    }
}

impl fmt::Display for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultStore({})", self.inner)
    }
}

/// What happens to one request.
enum Fate {
    Pass(Duration),
    Fail(Duration),
    LoseResponse(Duration),
}

fn injected(kind: RequestKind, key: &str, what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "FaultStore",
        source: format!("injected fault: {kind:?} {key}: {what}").into(),
    }
}

impl FaultStore {
    /// The layer over `inner`, with no rule and no latency.
    pub fn new(inner: Arc<dyn ObjectStore>) -> FaultStore {
        FaultStore {
            inner,
            state: Arc::default(),
        }
    }

    /// The controller of this layer.
    pub fn controller(&self) -> FaultController {
        FaultController {
            state: Arc::clone(&self.state),
        }
    }

    fn fate(&self, kind: RequestKind, key: &str, range_len: Option<u64>) -> Fate {
        let mut st = self.state.lock();
        match kind {
            RequestKind::Get => st.counts.gets += 1,
            RequestKind::Put => st.counts.puts += 1,
            RequestKind::List => st.counts.lists += 1,
            RequestKind::Delete => st.counts.deletes += 1,
            RequestKind::Copy => st.counts.copies += 1,
        }
        if st.logging {
            st.log.push((kind, key.to_owned()));
        }
        let mut delay = st.latency;
        for rule in st.rules.iter_mut() {
            if !rule.matches(kind, key, range_len) || rule.times == Some(0) {
                continue;
            }
            if rule.skip > 0 {
                rule.skip -= 1;
                continue;
            }
            if let Some(t) = &mut rule.times {
                *t -= 1;
            }
            match rule.action {
                Action::Fail => return Fate::Fail(delay),
                Action::LoseResponse => return Fate::LoseResponse(delay),
                Action::Delay(d) => delay += d,
            }
        }
        Fate::Pass(delay)
    }

    async fn gate(&self, kind: RequestKind, key: &str) -> object_store::Result<bool> {
        self.gate_range(kind, key, None).await
    }

    async fn gate_range(
        &self,
        kind: RequestKind,
        key: &str,
        range_len: Option<u64>,
    ) -> object_store::Result<bool> {
        let (delay, outcome) = match self.fate(kind, key, range_len) {
            Fate::Pass(d) => (d, Ok(false)),
            Fate::Fail(d) => (d, Err(injected(kind, key, "request failed"))),
            Fate::LoseResponse(d) => (d, Ok(true)),
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        outcome
    }
}

#[async_trait]
impl ObjectStore for FaultStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let lose = self.gate(RequestKind::Put, location.as_ref()).await?;
        let r = self.inner.put_opts(location, payload, opts).await;
        if lose {
            return Err(injected(
                RequestKind::Put,
                location.as_ref(),
                &format!(
                    "applied ({}), then the response was lost",
                    if r.is_ok() { "stored" } else { "refused" }
                ),
            ));
        }
        r
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.gate(RequestKind::Put, location.as_ref()).await?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let range_len = match &options.range {
            Some(object_store::GetRange::Bounded(r)) => Some(r.end.saturating_sub(r.start)),
            _ => None,
        };
        if self
            .gate_range(RequestKind::Get, location.as_ref(), range_len)
            .await?
        {
            return Err(injected(
                RequestKind::Get,
                location.as_ref(),
                "response lost",
            ));
        }
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let range_len = ranges.iter().map(|r| r.end.saturating_sub(r.start)).sum();
        if self
            .gate_range(RequestKind::Get, location.as_ref(), Some(range_len))
            .await?
        {
            return Err(injected(
                RequestKind::Get,
                location.as_ref(),
                "response lost",
            ));
        }
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let this = self.clone();
        locations
            .then(move |loc| {
                let this = this.clone();
                async move {
                    let loc = loc?;
                    let lose = this.gate(RequestKind::Delete, loc.as_ref()).await?;
                    let mut out = this
                        .inner
                        .delete_stream(stream::once(async move { Ok(loc) }).boxed())
                        .collect::<Vec<_>>()
                        .await;
                    let r = out.pop().unwrap_or_else(|| {
                        Err(injected(
                            RequestKind::Delete,
                            "",
                            "no answer from the store",
                        ))
                    });
                    match r {
                        Ok(p) if lose => Err(injected(
                            RequestKind::Delete,
                            p.as_ref(),
                            "applied, then the response was lost",
                        )),
                        r => r,
                    }
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let key = prefix.map_or(String::new(), |p| p.to_string());
        let inner = self.inner.list(prefix);
        self.gated_list(key, inner)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let key = prefix.map_or(String::new(), |p| p.to_string());
        let inner = self.inner.list_with_offset(prefix, offset);
        self.gated_list(key, inner)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let key = prefix.map_or(String::new(), |p| p.to_string());
        if self.gate(RequestKind::List, &key).await? {
            return Err(injected(RequestKind::List, &key, "response lost"));
        }
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        let lose = self.gate(RequestKind::Copy, to.as_ref()).await?;
        let r = self.inner.copy_opts(from, to, options).await;
        if lose {
            return Err(injected(
                RequestKind::Copy,
                to.as_ref(),
                "applied, then the response was lost",
            ));
        }
        r
    }
}

impl FaultStore {
    fn gated_list(
        &self,
        key: String,
        inner: BoxStream<'static, object_store::Result<ObjectMeta>>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let this = self.clone();
        stream::once(async move {
            match this.gate(RequestKind::List, &key).await {
                Ok(false) => inner,
                Ok(true) => {
                    stream::once(
                        async move { Err(injected(RequestKind::List, &key, "response lost")) },
                    )
                    .boxed()
                }
                Err(e) => stream::once(async move { Err(e) }).boxed(),
            }
        })
        .flatten()
        .boxed()
    }
}
