//! Checks in Python's `sqlite3` module, on the system SQLite and on the bundled amalgamation.

use super::*;

impl Setup {
    pub(super) fn python_checks(&self, t: &mut Tally) {
        step("Python sqlite3 module");
        let out = self.python(
            &[
                "@load {ext}",
                "@load {ext}",
                "@open a file:{dir}/shell-native.db?vfs=native",
                "SELECT a, b FROM t ORDER BY a",
                "PRAGMA integrity_check",
            ],
            None,
            false,
        );
        t.expect(
            "python: load_extension in two connections, read the shell's database",
            &out,
            "1|one\n2|two\n3|three\nok\n",
        );

        let out = self.python(
            &[
                "@load {ext}",
                "@open w file:/py.db?vfs=mem",
                "PRAGMA journal_mode=WAL",
                "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)",
                "INSERT INTO t(v) VALUES ('a'), ('b')",
                "@open r file:/py.db?vfs=mem",
                "BEGIN",
                "SELECT count(*) FROM t",
                "@use w",
                "INSERT INTO t(v) VALUES ('c')",
                "@use r",
                "SELECT count(*) FROM t",
                "COMMIT",
                "SELECT group_concat(v, '') FROM t",
                "PRAGMA integrity_check",
            ],
            None,
            false,
        );
        t.expect(
            "python: mem: WAL reader keeps its snapshot while a writer commits",
            &out,
            "wal\n2\n2\nabc\nok\n",
        );

        let out = self.python(
            &[
                "@load {ext}",
                "@open w file:/bank.db?vfs=mvcc",
                "CREATE TABLE t(v)",
                "INSERT INTO t VALUES (1)",
                "@open r file:/bank.db?vfs=mvcc",
                "BEGIN",
                "SELECT count(*) FROM t",
                "@use w",
                "INSERT INTO t VALUES (2)",
                "@use r",
                "SELECT count(*) FROM t",
                "INSERT INTO t VALUES (3)",
                "ROLLBACK",
                "SELECT count(*) FROM t",
            ],
            None,
            false,
        );
        t.expect(
            "python: mvcc: a stale snapshot's write gets SQLITE_BUSY_SNAPSHOT (517)",
            &out,
            "1\n1\nerror: 517: database is locked\n2\n",
        );

        let def = self.path("py-default.db");
        let out = self.python(
            &[
                "@load {ext}",
                "@open a {dir}/py-default.db",
                "CREATE TABLE t(v)",
                "INSERT INTO t VALUES ('shared in memory')",
                "@open b {dir}/py-default.db",
                "SELECT v FROM t",
            ],
            Some("mvcc"),
            false,
        );
        t.check_fn(
            "python: VFSEXT_DEFAULT=mvcc makes plain paths open in mvcc",
            &out,
            |o| {
                expect_exact(o, "shared in memory\n")?;
                if def.exists() {
                    return Err(format!("{} was created on disk", def.display()));
                }
                Ok(())
            },
        );

        let out = self.python(
            &[&format!("@fake-host {} 3031000", self.ext_file.display())],
            None,
            false,
        );
        t.expect(
            "python: a host older than 3.32.0 is refused with both versions named",
            &out,
            "1|this extension needs SQLite 3.32.0 or later; the host runs SQLite 3.31.0\n",
        );
        let out = self.python(
            &[&format!("@fake-host {} 3040000", self.ext_file.display())],
            None,
            false,
        );
        t.expect(
            "python: a host lacking functions is refused with their names",
            &out,
            "1|the host's SQLite 3.40.0 lacks functions this extension needs (built without \
             them?): sqlite3_vfs_find, sqlite3_vfs_register, sqlite3_vfs_unregister, \
             sqlite3_malloc64, sqlite3_free, sqlite3_log, sqlite3_uri_parameter, \
             sqlite3_uri_key, sqlite3_filename_database, sqlite3_filename_journal, \
             sqlite3_filename_wal, sqlite3_create_filename, sqlite3_free_filename, \
             sqlite3_auto_extension, sqlite3_file_control, sqlite3_create_function_v2\n",
        );

        let out = self.python(
            &[
                "@version",
                "@load {ext}",
                "@open a file:{dir}/shell-native.db?vfs=native",
                "SELECT count(*), group_concat(b, ',') FROM t",
                "@open m file:/new.db?vfs=mem",
                "CREATE TABLE t(v)",
                "INSERT INTO t VALUES (42)",
                "@open m2 file:/new.db?vfs=mem",
                "SELECT v FROM t",
            ],
            None,
            true,
        );
        t.expect(
            &format!(
                "python on SQLite {} (newer than the system's): load, read, write",
                self.new_sqlite.1
            ),
            &out,
            &format!("{}\n3|one,two,three\n42\n", self.new_sqlite.1),
        );
    }
}
