//! Against a real S3-protocol server: moto on 127.0.0.1 (installed by
//! `cargo xtask moto-install`; these tests fail, saying so, when it is
//! not). Several OS processes share one database through it.
//!
//! The child processes are this test binary run again with one of the
//! `child_*` entries (ignored in normal runs) and its instructions in the
//! environment.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use rusqlite::Connection;
use support::moto::{Moto, store_at};
use support::{Node, code, count, integrity, is_busy, opts};

const CHILD: &str = "VFS_OBJECT_CHILD";

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A fresh prefix per test: the bucket is shared by the tests of this
/// binary.
fn node(moto: &Moto, poll: Duration) -> Node {
    Node::new(moto.store(), opts(poll))
}

#[test]
fn conditional_create_has_exactly_one_winner_among_concurrent_writers() {
    let store = Moto::shared().store();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    for round in 0..20 {
        let key = Path::from(format!("cas-race/{round}"));
        let winners = rt.block_on(async {
            let tries = (0..16).map(|i| {
                let (store, key) = (store.clone(), key.clone());
                tokio::spawn(async move {
                    store
                        .put_opts(
                            &key,
                            PutPayload::from(format!("writer {i}")),
                            PutOptions::from(PutMode::Create),
                        )
                        .await
                })
            });
            let mut ok = 0;
            for t in futures::future::join_all(tries).await {
                match t.unwrap() {
                    Ok(_) => ok += 1,
                    Err(object_store::Error::AlreadyExists { .. }) => {}
                    Err(e) => panic!("round {round}: {e}"),
                }
            }
            ok
        });
        assert_eq!(winners, 1, "round {round}");
    }
}

#[test]
fn sql_through_the_s3_protocol_with_range_reads() {
    let moto = Moto::shared();
    let a = node(moto, Duration::from_secs(3600));
    let c = a.open("s3/basic.db");
    c.execute_batch(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<800)
         INSERT INTO t SELECT i, randomblob(2000) FROM n;",
    )
    .unwrap();
    let sum: i64 = count(&c, "SELECT sum(length(b)) FROM t");
    // A cold process reads the large commit by its index and range GETs
    // (the scan's read-ahead: a few ranges of many pages each).
    let b = node(moto, Duration::from_secs(3600));
    let cb = b.open("s3/basic.db");
    assert_eq!(count(&cb, "SELECT sum(length(b)) FROM t"), sum);
    integrity(&cb);
    let s = b.vfs.request_stats();
    assert!(s.gets > 3 && s.lists == 2 && s.puts == 0, "{s}");
    // Conflicting commits through S3's 412.
    cb.execute_batch("BEGIN; DELETE FROM t WHERE id = 1;")
        .unwrap();
    c.execute("DELETE FROM t WHERE id = 2", []).unwrap();
    let e = cb.execute_batch("COMMIT").unwrap_err();
    assert_eq!(code(&e), vfs_core::codes::SQLITE_BUSY_SNAPSHOT, "{e}");
    cb.execute("DELETE FROM t WHERE id = 1", []).unwrap();
    assert_eq!(count(&cb, "SELECT count(*) FROM t"), 798);
}

#[test]
fn a_store_without_conditional_put_is_refused_at_commit_and_nothing_is_stored() {
    let moto = Moto::shared();
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(format!("http://127.0.0.1:{}", moto.port))
        .with_allow_http(true)
        .with_bucket_name(support::moto::BUCKET)
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .with_conditional_put(object_store::aws::S3ConditionalPut::Disabled)
        .build()
        .unwrap();
    let a = Node::new(Arc::new(s3), opts(Duration::ZERO));
    let c = a.open("s3/no-cas.db");
    let e = c.execute_batch("CREATE TABLE t(x)").unwrap_err();
    assert_eq!(code(&e), vfs_core::codes::SQLITE_IOERR_WRITE, "{e}");
    let msg = vfs_core::last_error().unwrap().message;
    assert!(
        msg.contains("NOT committed") && msg.contains("refused"),
        "{msg}"
    );
    assert_eq!(a.vfs.head_lsn("s3/no-cas.db").unwrap(), 0);
}

fn spawn_child(entry: &str, spec: String) -> Child {
    support::spawn_child(entry, CHILD, spec, Stdio::piped())
}

/// The `KEY=VALUE` lines a child printed (after `RESULT `; the test
/// harness may have printed the test's name on the same line).
fn results(child: Child) -> Vec<(String, String)> {
    let out = child.wait_with_output().expect("child");
    assert!(out.status.success(), "child failed: {}", out.status);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn spec_get<'a>(spec: &'a str, key: &str) -> &'a str {
    spec.split(';')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} missing from {spec:?}"))
}

const ACCOUNTS: i64 = 10;
const TRANSFERS: i64 = 25;

#[test]
fn two_processes_transfer_money_without_losing_or_doubling_any() {
    let moto = Moto::shared();
    let db = "s3/bank.db";
    let setup = node(moto, Duration::ZERO);
    let c = setup.open(db);
    c.execute_batch(&format!(
        "CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL CHECK (bal >= 0));
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<{ACCOUNTS})
         INSERT INTO acct SELECT i, 1000 FROM n;
         CREATE TABLE transfer(proc INTEGER, seq INTEGER, src INTEGER, dst INTEGER, amount INTEGER,
                               PRIMARY KEY (proc, seq));"
    ))
    .unwrap();
    let started = Instant::now();
    let children: Vec<Child> = (1..=2)
        .map(|p| {
            spawn_child(
                "child_transfers",
                format!("port={};db={db};proc={p};n={TRANSFERS}", moto.port),
            )
        })
        .collect();
    let mut retries = 0;
    for (p, ch) in children.into_iter().enumerate() {
        let r = results(ch);
        let get = |k: &str| -> i64 {
            r.iter()
                .find(|(key, _)| key == k)
                .unwrap_or_else(|| panic!("child {p}: no {k} in {r:?}"))
                .1
                .parse()
                .unwrap()
        };
        assert_eq!(get("committed"), TRANSFERS, "child {p}");
        retries += get("retries");
    }
    let check = node(moto, Duration::ZERO);
    let c = check.open(db);
    integrity(&c);
    assert_eq!(
        count(&c, "SELECT sum(bal) FROM acct"),
        ACCOUNTS * 1000,
        "money conserved"
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM transfer"),
        2 * TRANSFERS,
        "none lost"
    );
    // Every account's balance is exactly what its recorded transfers say:
    // no transfer applied twice, none applied without its record.
    let off: i64 = count(
        &c,
        "SELECT count(*) FROM acct a WHERE a.bal != 1000
           - (SELECT coalesce(sum(amount), 0) FROM transfer WHERE src = a.id)
           + (SELECT coalesce(sum(amount), 0) FROM transfer WHERE dst = a.id)",
    );
    assert_eq!(off, 0);
    eprintln!(
        "2 processes × {TRANSFERS} transfers over moto in {:?}, {retries} conflicts retried",
        started.elapsed()
    );
}

#[test]
#[ignore = "child process of two_processes_transfer_money_without_losing_or_doubling_any"]
fn child_transfers() {
    let spec = std::env::var(CHILD).expect("run by its parent test");
    let port: u16 = spec_get(&spec, "port").parse().unwrap();
    let proc: i64 = spec_get(&spec, "proc").parse().unwrap();
    let n: i64 = spec_get(&spec, "n").parse().unwrap();
    let node = Node::new(store_at(port), opts(Duration::ZERO));
    let c = node.open(spec_get(&spec, "db"));
    let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ proc as u64;
    let mut next = move |m: i64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % m as u64) as i64
    };
    let mut retries = 0;
    for seq in 0..n {
        let src = next(ACCOUNTS) + 1;
        let dst = (src + next(ACCOUNTS - 1)) % ACCOUNTS + 1;
        let amount = next(50) + 1;
        loop {
            let r = (|| -> rusqlite::Result<()> {
                c.execute_batch("BEGIN")?;
                let bal: i64 =
                    c.query_row("SELECT bal FROM acct WHERE id = ?1", [src], |r| r.get(0))?;
                let amount = amount.min(bal);
                c.execute(
                    "UPDATE acct SET bal = bal - ?1 WHERE id = ?2",
                    [amount, src],
                )?;
                c.execute(
                    "UPDATE acct SET bal = bal + ?1 WHERE id = ?2",
                    [amount, dst],
                )?;
                c.execute(
                    "INSERT INTO transfer VALUES (?1, ?2, ?3, ?4, ?5)",
                    [proc, seq, src, dst, amount],
                )?;
                c.execute_batch("COMMIT")
            })();
            match r {
                Ok(()) => break,
                Err(e) if is_busy(&e) => {
                    if !c.is_autocommit() {
                        c.execute_batch("ROLLBACK").unwrap();
                    }
                    retries += 1;
                }
                Err(e) => panic!("transfer {seq}: {e}"),
            }
        }
    }
    println!("RESULT committed={n}");
    println!("RESULT retries={retries}");
}

#[test]
fn a_reader_process_sees_each_commit_within_its_poll_interval() {
    let moto = Moto::shared();
    let db = "s3/poll.db";
    let poll_ms = 300u64;
    let w = node(moto, Duration::ZERO);
    let c = w.open(db);
    c.execute_batch("CREATE TABLE t(v INTEGER); INSERT INTO t VALUES (0);")
        .unwrap();
    let mut reader = spawn_child(
        "child_reader",
        format!("port={};db={db};poll={poll_ms};last=5", moto.port),
    );
    let mut lines = BufReader::new(reader.stdout.take().unwrap()).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.ends_with("READY"))
        .is_some();
    assert!(ready, "the reader did not start");
    let mut committed = Vec::new();
    for v in 1..=5i64 {
        // Spread the commits over the reader's poll cycle.
        std::thread::sleep(Duration::from_millis(poll_ms * 2 / 3));
        c.execute("UPDATE t SET v = ?1", [v]).unwrap();
        committed.push(unix_ms());
    }
    let seen: Vec<(u64, u64)> = lines
        .map_while(Result::ok)
        .filter_map(|l| {
            let (_, rest) = l.split_once("RESULT seen=")?;
            let (v, at) = rest.split_once('@')?;
            Some((v.parse().ok()?, at.parse().ok()?))
        })
        .collect();
    let stats = reader.wait().unwrap();
    assert!(stats.success(), "reader failed");
    assert_eq!(seen.last().map(|s| s.0), Some(5), "the reader saw {seen:?}");
    // Slack for request latency and a loaded machine; the bound that
    // matters is the poll interval.
    let slack = 1500;
    for (v, at) in &seen {
        let at_commit = committed[*v as usize - 1];
        let lag = at.saturating_sub(at_commit);
        assert!(
            lag <= poll_ms + slack,
            "value {v} seen {lag} ms after its commit (poll {poll_ms} ms)"
        );
    }
    let lags: Vec<u64> = seen
        .iter()
        .map(|(v, at)| at.saturating_sub(committed[*v as usize - 1]))
        .collect();
    eprintln!("poll {poll_ms} ms: commits seen after {lags:?} ms");
}

#[test]
#[ignore = "child process of a_reader_process_sees_each_commit_within_its_poll_interval"]
fn child_reader() {
    let spec = std::env::var(CHILD).expect("run by its parent test");
    let port: u16 = spec_get(&spec, "port").parse().unwrap();
    let poll: u64 = spec_get(&spec, "poll").parse().unwrap();
    let last: i64 = spec_get(&spec, "last").parse().unwrap();
    let node = Node::new(store_at(port), opts(Duration::from_millis(poll)));
    let c: Connection = node.open(spec_get(&spec, "db"));
    let mut current = count(&c, "SELECT v FROM t");
    println!("READY");
    let started = Instant::now();
    let lists_before = node.vfs.request_stats().lists;
    while current != last {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "gave up at {current}"
        );
        let v = count(&c, "SELECT v FROM t");
        if v != current {
            println!("RESULT seen={v}@{}", unix_ms());
            current = v;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // Looked at most once per poll interval.
    let lists = node.vfs.request_stats().lists - lists_before;
    let bound = started.elapsed().as_millis() as u64 / poll + 2;
    assert!(lists <= bound, "{lists} LISTs in {:?}", started.elapsed());
    println!("RESULT lists={lists}");
}

#[test]
fn writer_leases_over_the_s3_protocol_use_if_match() {
    let moto = Moto::shared();
    let store = moto.store();
    // moto honours If-Match on PUT: a stale e-tag is refused, the current
    // one accepted (what a lease's compare-and-swap needs).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use object_store::{ObjectStoreExt, UpdateVersion};
        let key = Path::from(format!("if-match/{}", unix_ms()));
        let first = store
            .put_opts(&key, "one".into(), PutOptions::from(PutMode::Create))
            .await
            .unwrap();
        let v1 = UpdateVersion {
            e_tag: first.e_tag,
            version: first.version,
        };
        store
            .put_opts(
                &key,
                "two".into(),
                PutOptions::from(PutMode::Update(v1.clone())),
            )
            .await
            .unwrap();
        let stale = store
            .put_opts(&key, "three".into(), PutOptions::from(PutMode::Update(v1)))
            .await;
        assert!(
            matches!(stale, Err(object_store::Error::Precondition { .. })),
            "{stale:?}"
        );
        let now = store.get(&key).await.unwrap().bytes().await.unwrap();
        assert_eq!(&now[..], b"two");
    });
    // Two writers with leases contend through moto: every increment lands,
    // none is rolled back.
    let db = format!("lease-{}.db", unix_ms());
    let options = || vfs_object::ObjectOptions {
        lease: Some(Duration::from_secs(10)),
        ..opts(Duration::ZERO)
    };
    let setup = Node::new(store.clone(), options());
    setup
        .open(&db)
        .execute_batch("CREATE TABLE c(k INTEGER PRIMARY KEY, v); INSERT INTO c VALUES (1, 0);")
        .unwrap();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let node = Node::new(store.clone(), options());
            let db = db.clone();
            s.spawn(move || {
                let c = node.open(&db);
                c.busy_timeout(Duration::from_secs(30)).unwrap();
                for _ in 0..5 {
                    c.execute_batch("BEGIN IMMEDIATE; UPDATE c SET v = v + 1; COMMIT;")
                        .unwrap();
                }
            });
        }
    });
    let c = setup.open(&db);
    assert_eq!(count(&c, "SELECT v FROM c"), 10);
    integrity(&c);
}
