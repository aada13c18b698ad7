//! A database's identity (salt, derived keys) belongs to the file as
//! authenticated, not to its path (issue #17, finding 2): files renamed
//! over each other while connections on both stay open keep being
//! encrypted under their own salt.

mod common;

use common::*;

const ROWS: usize = 60;

fn salt(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap()[..16].to_vec()
}

/// Every page of `path` reads back through a fresh connection.
fn reads_back(env: &Env, path: &str, suffix: &str) {
    let conn = env.open(path, &hexkey());
    check_rows(&conn, ROWS);
    assert_eq!(
        int(
            &conn,
            &format!("SELECT count(*) FROM t WHERE v LIKE '%{suffix}'")
        ),
        ROWS as i64,
        "{:?} {path}",
        env.stack
    );
    assert_eq!(integrity(&conn), "ok", "{:?} {path}", env.stack);
}

#[test]
fn files_renamed_over_each_other_keep_their_own_salt() {
    for stack in [Stack::Native, Stack::CksmNative] {
        let env = Env::new("rename", stack);
        let (x, y) = (env.db("x.db"), env.db("y.db"));
        for path in [&x, &y] {
            let conn = env.open(path, &hexkey());
            conn.execute_batch("PRAGMA journal_mode=DELETE").unwrap();
            fill(&conn, ROWS);
        }
        let (salt_x, salt_y) = (salt(&x), salt(&y));
        assert_ne!(salt_x, salt_y);

        // Connections on both, each having read (and so cached) page 1;
        // a small page cache makes every scan read pages again.
        let cx = env.open(&x, &hexkey());
        let cy = env.open(&y, &hexkey());
        for c in [&cx, &cy] {
            c.execute_batch("PRAGMA cache_size=2").unwrap();
            check_rows(c, ROWS);
        }

        // Swap the files under them (a rekey or VACUUM INTO copy renamed
        // into place looks the same to the open connections).
        let tmp = env.db("tmp.db");
        std::fs::rename(&x, &tmp).unwrap();
        std::fs::rename(&y, &x).unwrap();
        std::fs::rename(&tmp, &y).unwrap();
        assert_eq!(salt(&x), salt_y);

        // New connections by the old names open the other files: cx and
        // cx2 now share the name x.db but not the file.
        let cx2 = env.open(&x, &hexkey());
        let cy2 = env.open(&y, &hexkey());
        for round in 0..3 {
            // The old connections go on reading their files (SQLite refuses
            // their writes: the files moved) ...
            for c in [&cx, &cy] {
                check_rows(c, ROWS);
                assert_eq!(
                    extended_code(c.execute_batch("UPDATE t SET v = v || ' old'")),
                    1032,
                    "{stack:?}: SQLITE_READONLY_DBMOVED"
                );
            }
            // ... while the new ones write theirs.
            cx2.execute_batch(&format!("UPDATE t SET v = v || ' x{round}'"))
                .unwrap();
            cy2.execute_batch(&format!("UPDATE t SET v = v || ' y{round}'"))
                .unwrap();
            for c in [&cx, &cy, &cx2, &cy2] {
                check_rows(c, ROWS);
            }
        }
        drop((cx, cy, cx2, cy2));

        // Each file kept its salt, and every page of it authenticates under
        // that salt.
        assert_eq!(salt(&x), salt_y, "{stack:?}");
        assert_eq!(salt(&y), salt_x, "{stack:?}");
        reads_back(&env, &x, " x0 x1 x2");
        reads_back(&env, &y, " y0 y1 y2");
    }
}

/// A page 1 that does not authenticate (another database's header planted
/// under an open connection) changes nothing for the handles already
/// using the database: they go on with the identity they authenticated.
#[test]
fn an_unauthenticated_page_one_changes_nothing_for_other_handles() {
    for stack in [Stack::Native, Stack::Mem] {
        let env = Env::new("forged-p1", stack);
        let (db, other) = (env.db("a.db"), env.db("b.db"));
        for path in [&db, &other] {
            let conn = env.open(path, &hexkey());
            conn.execute_batch("PRAGMA journal_mode=DELETE").unwrap();
            fill(&conn, ROWS);
        }
        let good = env.raw(&db, "").unwrap();
        let foreign = env.raw(&other, "").unwrap();
        let p = page_size(&good);
        let conn = env.open(&db, &hexkey());
        check_rows(&conn, ROWS);
        // Page 1 of `db` replaced by `other`'s page 1 with one bit flipped
        // in its ciphertext: a new salt that never authenticates.
        let mut bad = good.clone();
        bad[..p].copy_from_slice(&foreign[..p]);
        bad[p / 2] ^= 1;
        env.store(&db, &bad);
        let probe = env.open(&db, &hexkey());
        assert!(
            probe
                .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
                .is_err()
        );
        drop(probe);
        env.store(&db, &good);
        // The first connection writes on; the file reads back whole.
        conn.execute_batch("UPDATE t SET v = v || ' after'")
            .unwrap();
        drop(conn);
        reads_back(&env, &db, " after");
    }
}
