//! The Argon2id cost a file may ask for is capped (issue #17, finding 6):
//! the descriptor in page 1 is in clear, so a hostile file could demand
//! 1 GiB × 16 passes × 8 lanes inside `sqlite3_open`. Above the cap the
//! open is refused before any derivation runs, with a message naming the
//! cap; the cap is a setting.

mod common;

use common::*;
use vfs_core::codes::SQLITE_NOTADB;
use vfs_crypto::{CryptoOptions, KdfParams};

const PASS: &str = "&key=correct horse";

/// A passphrase database (cheap parameters) whose page-1 descriptor is then
/// rewritten to ask for `demand`.
fn planted(env: &Env, db: &str, demand: Option<KdfParams>) {
    let conn = env.open(db, PASS);
    fill(&conn, 20);
    drop(conn);
    if let Some(d) = demand {
        let mut raw = env.raw(db, "").unwrap();
        let s = page_size(&raw) - env.stack.reserve();
        assert_eq!(raw[s + 1], 1, "an Argon2id descriptor");
        raw[s + 2] = d.memory_kib_log2;
        raw[s + 3] = d.iterations;
        raw[s + 4] = d.lanes;
        env.store(db, &raw);
    }
}

fn refused(env: &Env, db: &str) -> String {
    vfs_core::clear_last_error();
    let conn = env.open(db, PASS);
    let r = conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0));
    assert_eq!(extended_code(r), SQLITE_NOTADB, "{:?}", env.stack);
    vfs_core::last_error().unwrap().message
}

#[test]
fn the_largest_cost_the_format_allows_is_refused_by_default() {
    for stack in [Stack::Mem, Stack::Native] {
        let env = Env::new("kdf-max", stack);
        let db = env.db("k.db");
        planted(
            &env,
            &db,
            Some(KdfParams {
                memory_kib_log2: 20,
                iterations: 16,
                lanes: 8,
            }),
        );
        let runs = env.codec.stats().kdf_runs;
        let message = refused(&env, &db);
        assert!(
            message.contains("m=1048576 KiB t=16 p=8") && message.contains("kdf_limit"),
            "{message}"
        );
        assert_eq!(env.codec.stats().kdf_runs, runs, "no derivation ran");
    }
}

#[test]
fn the_cap_is_a_setting() {
    let lowered = CryptoOptions {
        kdf: KdfParams::FAST_INSECURE,
        kdf_limit: KdfParams {
            memory_kib_log2: 10,
            iterations: 1,
            lanes: 1,
        },
        ..CryptoOptions::default()
    };
    let env = Env::with("kdf-cap", Stack::Native, lowered);
    let db = env.db("k.db");
    // Within the cap: works.
    planted(&env, &db, None);
    check_rows(&env.open(&db, PASS), 20);
    // One pass more than the cap allows: refused, naming the cap.
    planted(
        &env,
        &db,
        Some(KdfParams {
            iterations: 2,
            ..KdfParams::FAST_INSECURE
        }),
    );
    let message = refused(&env, &db);
    assert!(message.contains("m=1024 KiB t=2 p=1"), "{message}");
    assert!(message.contains("m=1024 KiB t=1 p=1"), "{message}");

    // The same file under a VFS whose cap allows it: the descriptor is
    // authenticated, so the changed cost is damage, not a wrong key.
    let raised = CryptoOptions {
        kdf: KdfParams::FAST_INSECURE,
        kdf_limit: KdfParams {
            memory_kib_log2: 10,
            iterations: 2,
            lanes: 1,
        },
        ..CryptoOptions::default()
    };
    let env2 = Env::with("kdf-cap-raised", Stack::Native, raised);
    let conn = env2.open(&db, PASS);
    assert!(
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
            .is_err()
    );
}

#[test]
fn a_new_database_cannot_ask_for_more_than_the_cap() {
    let opts = CryptoOptions {
        kdf: KdfParams {
            iterations: 2,
            ..KdfParams::FAST_INSECURE
        },
        kdf_limit: KdfParams::FAST_INSECURE,
        ..CryptoOptions::default()
    };
    let env = Env::with("kdf-new", Stack::Mem, opts);
    let conn = env.open(&env.db("n.db"), PASS);
    vfs_core::clear_last_error();
    let e = extended_code(conn.execute_batch("CREATE TABLE t(x)"));
    assert_eq!(e, SQLITE_NOTADB);
    assert!(
        vfs_core::last_error()
            .unwrap()
            .message
            .contains("kdf_limit"),
        "{:?}",
        vfs_core::last_error()
    );
}
