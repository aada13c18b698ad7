//! PRAGMAs cksm does not own behave as on the base alone: they cost no
//! I/O, and a base whose reads fail does not make them fail. cksm's own
//! pragmas read the stored header (and report when they cannot).

mod common;

use common::*;
use rusqlite::Connection;
use vfs_cksm::Cksm;
use vfs_core::{FileKind, Native, Op, Vfs};
use vfs_fault::{Failure, Fault, FaultController, Rule};

/// What ORMs and applications send at every connect, and a few more.
const PRAGMAS: &[&str] = &[
    "PRAGMA journal_mode",
    "PRAGMA cache_size = -4000",
    "PRAGMA cache_size",
    "PRAGMA busy_timeout = 5000",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA synchronous",
    "PRAGMA foreign_keys = ON",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA page_size",
];

/// Each pragma's answer (`None` when it returns no row), or its error.
fn answers(conn: &Connection) -> Vec<rusqlite::Result<Option<String>>> {
    PRAGMAS
        .iter()
        .map(|sql| {
            let mut st = conn.prepare(sql)?;
            let mut rows = st.query([])?;
            match rows.next()? {
                Some(row) => Ok(Some(match row.get_ref(0)? {
                    rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    other => format!("{other:?}"),
                })),
                None => Ok(None),
            }
        })
        .collect()
}

/// A database through `vfs` with a table, its schema loaded.
fn setup<V: Vfs>(tag: &str, vfs: V) -> (Env, Connection) {
    let env = Env::new(&format!("pragmas-{tag}"), vfs);
    let conn = env.open(&env.path("p.db"));
    conn.execute_batch(
        "PRAGMA page_size = 1024; CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);",
    )
    .unwrap();
    assert_eq!(int(&conn, "SELECT count(*) FROM t"), 2);
    (env, conn)
}

fn fault_stack(tag: &str, checksums: bool) -> (Env, Connection, FaultController) {
    let fault = Fault::new(Native::new().unwrap());
    let ctl = fault.controller();
    let (env, conn) = if checksums {
        setup(tag, Cksm::new(fault))
    } else {
        setup(tag, fault)
    };
    (env, conn, ctl)
}

#[test]
fn pragmas_cksm_does_not_own_cost_no_io() {
    let mut seen = Vec::new();
    for checksums in [false, true] {
        let (_env, conn, ctl) = fault_stack(&format!("io-{checksums}"), checksums);
        ctl.reset_counts();
        let got = answers(&conn);
        seen.push((ctl.op_count(Op::Read), ctl.total_ops(), format!("{got:?}")));
        if checksums {
            // Its own pragma still answers (reading the header is its I/O).
            assert_eq!(text(&conn, "PRAGMA checksum_format"), "cksumvfs");
        }
    }
    assert_eq!(
        seen[1], seen[0],
        "(reads, operations, answers) through cksm vs on the base alone"
    );
}

#[test]
fn pragmas_over_a_base_whose_reads_fail_behave_as_on_the_base() {
    let mut seen = Vec::new();
    for checksums in [false, true] {
        let (_env, conn, ctl) = fault_stack(&format!("fail-{checksums}"), checksums);
        let rule = ctl.add(
            Rule::fail(Op::Read, Failure::Io)
                .file_kind(FileKind::MainDb)
                .persistent(),
        );
        let got = answers(&conn);
        assert!(
            got.iter().all(Result::is_ok),
            "checksums {checksums}: {got:?}"
        );
        seen.push(format!("{got:?}"));
        if checksums {
            // cksm's own pragma needs the header: the failure is reported.
            let err = conn
                .query_row("PRAGMA checksum_format", [], |r| r.get::<_, String>(0))
                .unwrap_err();
            assert!(
                err.to_string().contains("injected failure of read"),
                "unexpected error {err}"
            );
        }
        ctl.remove(rule);
        assert_eq!(int(&conn, "SELECT count(*) FROM t"), 2);
        assert_eq!(integrity(&conn), "ok");
    }
    assert_eq!(
        seen[1], seen[0],
        "answers through cksm vs on the base alone"
    );
}
