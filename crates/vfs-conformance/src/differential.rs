//! Differential testing: one seeded random workload, run on the backend and
//! on SQLite's own `unix` and `memdb`, must give the same result for every
//! statement and the same logical dump at the end.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::Connection;

use crate::Backend;
use crate::check::{assert_integrity, assert_same_dump, code, dump, render};

/// How much to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// One workload per seed.
    pub seeds: Vec<u64>,
    /// Statements per workload.
    pub statements: usize,
    /// Journal modes to run each workload in (`WAL` only on backends with
    /// shared memory).
    pub journal_modes: Vec<&'static str>,
}

impl Plan {
    /// The CI size: 3 seeds × 300 statements, in DELETE and WAL modes.
    pub fn ci() -> Plan {
        Plan {
            seeds: vec![1, 2, 3],
            statements: 300,
            journal_modes: vec!["DELETE", "WAL"],
        }
    }

    /// The long size: 40 seeds × 2,000 statements in four journal modes.
    pub fn long() -> Plan {
        Plan {
            seeds: (100..140).collect(),
            statements: 2000,
            journal_modes: vec!["DELETE", "TRUNCATE", "PERSIST", "WAL"],
        }
    }
}

/// What a run compared.
#[derive(Clone, Copy, Debug, Default)]
pub struct Report {
    /// Workloads run (seed × journal mode).
    pub seeds: usize,
    /// Statements run on each VFS.
    pub statements: usize,
    /// Statement results compared (each against two references).
    pub results: usize,
}

const SCHEMA: &str = "
CREATE TABLE a(id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB, grp INT);
CREATE INDEX a_grp ON a(grp, score);
CREATE TABLE b(k TEXT PRIMARY KEY, v INT NOT NULL, note TEXT) WITHOUT ROWID;
CREATE TABLE c(x INT, y INT, z TEXT, UNIQUE(x, y));
CREATE INDEX c_z ON c(z);
";

fn hex_blob(rng: &mut StdRng) -> String {
    let len = match rng.gen_range(0..10) {
        0 => 0,
        1 => rng.gen_range(3000..9000),
        _ => rng.gen_range(1..400),
    };
    let mut s = String::with_capacity(len * 2 + 3);
    s.push_str("x'");
    for _ in 0..len {
        s.push_str(&format!("{:02x}", rng.r#gen::<u8>()));
    }
    s.push('\'');
    s
}

fn word(rng: &mut StdRng) -> String {
    let n = rng.gen_range(1..12);
    (0..n)
        .map(|_| char::from(b'a' + rng.gen_range(0..26u8)))
        .collect()
}

fn statement(rng: &mut StdRng) -> String {
    match rng.gen_range(0..17) {
        0 | 1 => format!(
            "INSERT INTO a(name, score, data, grp) VALUES ('{}', {:.3}, {}, {})",
            word(rng),
            rng.gen_range(-1000.0..1000.0f64),
            hex_blob(rng),
            rng.gen_range(0..8)
        ),
        2 => format!(
            "INSERT INTO a(id, name, score, data, grp) VALUES ({}, '{}', {}, {}, {})",
            rng.gen_range(1..300),
            word(rng),
            rng.gen_range(-50..50),
            hex_blob(rng),
            rng.gen_range(0..8)
        ),
        3 => format!(
            "UPDATE a SET score = score * 1.5 + {}, grp = {} WHERE id % {} = {}",
            rng.gen_range(-10..10),
            rng.gen_range(0..8),
            rng.gen_range(2..9),
            rng.gen_range(0..2)
        ),
        4 => format!(
            "UPDATE a SET data = {} WHERE id = {}",
            hex_blob(rng),
            rng.gen_range(1..300)
        ),
        5 => format!(
            "DELETE FROM a WHERE grp = {} AND score > {}",
            rng.gen_range(0..8),
            rng.gen_range(-500..1500)
        ),
        6 => format!(
            "INSERT OR REPLACE INTO b VALUES ('k{}', {}, '{}')",
            rng.gen_range(0..200),
            rng.gen_range(-1000..1000),
            word(rng)
        ),
        7 => format!(
            "UPDATE b SET v = v + {} WHERE k < 'k{}'",
            rng.gen_range(-5..5),
            rng.gen_range(0..200)
        ),
        8 => format!("DELETE FROM b WHERE v % {} = 0", rng.gen_range(3..20)),
        9 => format!(
            "INSERT INTO c VALUES ({}, {}, '{}')",
            rng.gen_range(0..20),
            rng.gen_range(0..20),
            word(rng)
        ),
        10 => format!(
            "INSERT OR IGNORE INTO c VALUES ({}, {}, '{}')",
            rng.gen_range(0..20),
            rng.gen_range(0..20),
            word(rng)
        ),
        11 => {
            "SELECT grp, count(*), sum(score), total(length(data)) FROM a GROUP BY grp ORDER BY grp"
                .to_owned()
        }
        12 => format!(
            "SELECT a.id, b.k, b.v FROM a JOIN b ON b.v % 8 = a.grp WHERE a.id < {} ORDER BY a.id, b.k LIMIT 30",
            rng.gen_range(1..300)
        ),
        13 => format!(
            "SELECT x, y, z FROM c WHERE z > '{}' ORDER BY x, y",
            word(rng)
        ),
        14 => format!(
            "SELECT id, name, score, hex(substr(data, 1, 8)), length(data) FROM a WHERE score BETWEEN {} AND {} ORDER BY id",
            rng.gen_range(-1000..0),
            rng.gen_range(0..1000)
        ),
        15 => "SELECT count(*), sum(v), min(k), max(k) FROM b".to_owned(),
        _ => format!(
            "UPDATE c SET z = z || '{}' WHERE x = {}",
            word(rng),
            rng.gen_range(0..20)
        ),
    }
}

/// The statements of workload `seed`: the schema, then `n` statements, some
/// grouped in transactions (committed or rolled back), savepoints, and an
/// occasional `VACUUM`.
pub fn workload(seed: u64, n: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out: Vec<String> = SCHEMA
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let mut made = 0;
    while made < n {
        match rng.gen_range(0..20) {
            0 | 1 => {
                let k = rng.gen_range(2..8);
                out.push("BEGIN".into());
                for _ in 0..k {
                    out.push(statement(&mut rng));
                }
                out.push(
                    if rng.gen_bool(0.3) {
                        "ROLLBACK"
                    } else {
                        "COMMIT"
                    }
                    .into(),
                );
                made += k;
            }
            2 => {
                out.push("SAVEPOINT s1".into());
                out.push(statement(&mut rng));
                out.push(statement(&mut rng));
                if rng.gen_bool(0.5) {
                    out.push("ROLLBACK TO s1".into());
                }
                out.push("RELEASE s1".into());
                made += 2;
            }
            3 if rng.gen_range(0..10) == 0 => {
                out.push("VACUUM".into());
            }
            _ => {
                out.push(statement(&mut rng));
                made += 1;
            }
        }
    }
    out
}

/// Runs `stmts` and renders each result: rows, or the change count, or the
/// error's extended code.
pub fn transcript(conn: &Connection, stmts: &[String]) -> Vec<String> {
    stmts
        .iter()
        .map(|sql| match run_one(conn, sql) {
            Ok(s) => s,
            Err(e) => format!("error {}", code(&e)),
        })
        .collect()
}

fn run_one(conn: &Connection, sql: &str) -> rusqlite::Result<String> {
    let mut stmt = conn.prepare(sql)?;
    let n = stmt.column_count();
    if n == 0 {
        let changes = stmt.execute([])?;
        return Ok(format!("ok {changes}"));
    }
    let mut out = String::new();
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        for i in 0..n {
            out.push_str(&render(&r.get(i)?));
            out.push('|');
        }
        out.push('\n');
    }
    Ok(out)
}

/// Runs the plan on `b`, `unix` and `memdb`; panics at the first
/// difference.
pub fn run(b: &Backend, plan: &Plan) -> Report {
    let mut report = Report::default();
    let unix = Backend::sqlite_unix();
    let memdb = Backend::sqlite_memdb();
    for &seed in &plan.seeds {
        let stmts = workload(seed, plan.statements);
        for mode in &plan.journal_modes {
            if *mode == "WAL" && !b.caps().wal {
                continue;
            }
            let file = format!("diff-{seed}-{}.db", mode.to_lowercase());
            let ctx = format!("differential seed {seed} {mode} on {}", b.name());
            let mut results = Vec::new();
            let mut dumps = Vec::new();
            for (target, set_mode) in [(b, true), (&unix, true), (&memdb, false)] {
                let mut c = Some(
                    target
                        .open(&file)
                        .unwrap_or_else(|e| panic!("{ctx}: open on {}: {e}", target.name())),
                );
                let conn = c.as_ref().expect("connection");
                if set_mode {
                    conn.query_row(&format!("PRAGMA journal_mode={mode}"), [], |_| Ok(()))
                        .unwrap_or_else(|e| panic!("{ctx}: journal mode: {e}"));
                }
                results.push(transcript(conn, &stmts));
                // Check through a connection with a cold cache, so what is
                // compared is what the VFS stored, not the writer's cache.
                let caps = target.caps();
                let fresh = if caps.multi_connection {
                    Some(target.open(&file))
                } else if caps.persistent {
                    c = None;
                    Some(target.open(&file))
                } else {
                    None
                };
                let fresh = fresh.map(|r| {
                    r.unwrap_or_else(|e| panic!("{ctx}: reopen on {}: {e}", target.name()))
                });
                let check = match (&fresh, &c) {
                    (Some(f), _) | (None, Some(f)) => f,
                    (None, None) => unreachable!("a connection is kept when none is reopened"),
                };
                assert_integrity(check, "main", &format!("{ctx} ({})", target.name()));
                dumps.push(dump(check, "main").unwrap_or_else(|e| panic!("{ctx}: dump: {e}")));
            }
            for (name, i) in [("unix", 1), ("memdb", 2)] {
                if let Some(k) = (0..stmts.len()).find(|k| results[0][*k] != results[i][*k]) {
                    panic!(
                        "{ctx}: statement {k} differs from SQLite's {name}:\n  {}\n  backend: {}\n  {name}: {}",
                        stmts[k].chars().take(200).collect::<String>(),
                        results[0][k].chars().take(300).collect::<String>(),
                        results[i][k].chars().take(300).collect::<String>()
                    );
                }
                assert_same_dump(&dumps[0], &dumps[i], &format!("{ctx} vs {name}"));
            }
            report.seeds += 1;
            report.statements += stmts.len();
            report.results += 2 * stmts.len();
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_are_deterministic_and_varied() {
        assert_eq!(workload(7, 100), workload(7, 100));
        assert_ne!(workload(7, 100), workload(8, 100));
        let w = workload(7, 300);
        assert!(w.iter().any(|s| s.starts_with("SELECT")));
        assert!(w.iter().any(|s| s == "BEGIN"));
        assert!(w.iter().any(|s| s.starts_with("DELETE")));
    }
}
