//! Checks in Debian's `sqlite3` shell (the system SQLite).

use super::*;

impl Setup {
    pub(super) fn shell_checks(&self, t: &mut Tally) {
        step("sqlite3 shell");
        let version = self.shell(&["SELECT sqlite_version();"], None);
        println!("   shell runs SQLite {}", version.stdout.trim());

        let out = self.shell(&[".load {ext}", ".vfslist"], None);
        t.check_fn("shell: .load registers every expected VFS", &out, |o| {
            let names = vfs_names(&o.stdout);
            let missing: Vec<_> = EXPECTED_NAMES
                .iter()
                .filter(|n| !names.contains(**n))
                .collect();
            clean(o)?;
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("missing from .vfslist: {missing:?}"))
            }
        });

        let out = self.shell(
            &[".load {ext}", ".load {ext}.so", "SELECT 'loaded twice';"],
            None,
        );
        t.expect("shell: .load twice is harmless", &out, "loaded twice\n");

        let out = self.shell(
            &[
                ".load {ext}",
                ".open file:{dir}/shell-native.db?vfs=native",
                "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT);",
                "INSERT INTO t(b) VALUES ('one'), ('two'), ('three');",
                "SELECT a, b FROM t ORDER BY a;",
                "PRAGMA integrity_check;",
            ],
            None,
        );
        t.expect(
            "shell: native: create, insert, select, integrity_check",
            &out,
            "1|one\n2|two\n3|three\nok\n",
        );
        let out = self.shell(
            &[
                ".load {ext}",
                ".open file:{dir}/shell-native.db?vfs=native",
                "SELECT count(*), group_concat(b, ',') FROM t;",
                "PRAGMA integrity_check;",
            ],
            None,
        );
        t.expect(
            "shell: native: reopen in a new process",
            &out,
            "3|one,two,three\nok\n",
        );

        for vfs in ["mem", "mvcc"] {
            let lines = [
                ".load {ext}",
                &format!(".open file:/shared.db?vfs={vfs}"),
                "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT);",
                "INSERT INTO t(b) VALUES ('x'), ('y');",
                "PRAGMA integrity_check;",
                &format!(".open file:/shared.db?vfs={vfs}"),
                "SELECT a, b FROM t ORDER BY a;",
                "PRAGMA integrity_check;",
                &format!(".open file:private.db?vfs={vfs}"),
                "CREATE TABLE p(x);",
                &format!(".open file:private.db?vfs={vfs}"),
                "SELECT count(*) FROM sqlite_schema;",
            ];
            let out = self.shell(&lines, None);
            t.expect(
                &format!(
                    "shell: {vfs}: /shared survives close and reopen, a private name does not"
                ),
                &out,
                "ok\n1|x\n2|y\nok\n0\n",
            );
        }

        let out = self.shell(
            &[
                ".load {ext}",
                ".open file:/wal.db?vfs=mem",
                "PRAGMA journal_mode=WAL;",
                "CREATE TABLE t(v);",
                "INSERT INTO t VALUES (1), (2), (3);",
                "PRAGMA wal_checkpoint(TRUNCATE);",
                "SELECT sum(v) FROM t;",
                "PRAGMA integrity_check;",
            ],
            None,
        );
        t.expect(
            "shell: mem: WAL mode and checkpoint",
            &out,
            "wal\n0|0|0\n6\nok\n",
        );

        let def = self.path("shell-default.db");
        let out = self.shell(
            &[
                ".load {ext}",
                ".vfslist",
                ".open {dir}/shell-default.db",
                ".vfsname",
                "CREATE TABLE t(v); INSERT INTO t VALUES ('in memory');",
                ".open {dir}/shell-default.db",
                "SELECT v FROM t;",
            ],
            Some("mem"),
        );
        t.check_fn(
            "shell: VFSEXT_DEFAULT=mem makes mem the default VFS",
            &out,
            |o| {
                clean(o)?;
                // SQLite's default VFS heads its list.
                let first = o.stdout.lines().next().unwrap_or_default();
                if first.split('"').nth(1) != Some("mem") {
                    return Err(format!("the list starts with {first:?}"));
                }
                if !o.stdout.ends_with("\nmem\nin memory\n") {
                    return Err("expected `.vfsname` to say mem, then the row".into());
                }
                if def.exists() {
                    return Err(format!("{} was created on disk", def.display()));
                }
                Ok(())
            },
        );

        let out = self.shell(
            &[
                ".load {ext}",
                ".open {dir}/after-failed-load.db",
                "SELECT 'still alive';",
                ".vfslist",
            ],
            Some("nope"),
        );
        t.check_fn(
            "shell: an unknown VFSEXT_DEFAULT is refused and every VFS taken back",
            &out,
            |o| {
                let want = format!(
                    "Error: error during initialization: VFSEXT_DEFAULT=\"nope\" names no VFS \
                     of this extension; known: {} (SQLITE_ERROR)\n",
                    EXPECTED_NAMES.join(", ")
                );
                if o.stderr != want {
                    return Err(format!("expected stderr:\n{want}"));
                }
                // The host goes on: a new connection (which runs the
                // connection hooks a backend installed before the failure).
                if !o.stdout.starts_with("still alive\n") {
                    return Err("the shell did not go on after the failed load".into());
                }
                let names = vfs_names(&o.stdout);
                let left: Vec<_> = EXPECTED_NAMES
                    .iter()
                    .filter(|n| names.contains(**n))
                    .collect();
                if !left.is_empty() {
                    return Err(format!("still registered after the failed load: {left:?}"));
                }
                Ok(())
            },
        );
    }
}
