//! Checks across hosts: files written by one host read by another (shell, Python, the Rust crates).

use super::*;

impl Setup {
    /// The same files through the extension in a host and through the Rust
    /// crates, both ways, for every on-disk stack.
    pub(super) fn cross_checks(&self, t: &mut Tally) {
        step("extension <-> Rust crates");
        let mut stacks = vec![("native", String::new())];
        if CKSM_READY {
            stacks.push(("cksm", String::new()));
            stacks.push(("cksm-crc32", String::new()));
        }
        if CRYPTO_READY {
            stacks.push(("crypto-cksm", "&hexkey={key}".to_owned()));
        }
        for (vfs, params) in &stacks {
            let uri = |file: &str| format!("file:{{dir}}/{file}?vfs={vfs}{params}");
            let from_shell = format!("cross-shell-{vfs}.db");
            let out = self.shell(
                &[
                    ".load {ext}",
                    &format!(".open {}", uri(&from_shell)),
                    "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT);",
                    "INSERT INTO t(b) SELECT 'row ' || value FROM generate_series(1, 500);",
                    "SELECT count(*) FROM t;",
                ],
                None,
            );
            t.expect(&format!("shell: {vfs}: write 500 rows"), &out, "500\n");
            let out = self.rust(&[
                &format!("@open a {}", uri(&from_shell)),
                "SELECT count(*), min(b), max(a) FROM t",
                "PRAGMA integrity_check",
            ]);
            t.expect(
                &format!("rust: {vfs}: reads what the shell wrote"),
                &out,
                "500|row 1|500\nok\n",
            );

            let from_rust = format!("cross-rust-{vfs}.db");
            let out = self.rust(&[
                &format!("@open a {}", uri(&from_rust)),
                "CREATE TABLE r(k INTEGER PRIMARY KEY, v TEXT)",
                "INSERT INTO r(v) VALUES ('written'), ('by'), ('rust')",
                "SELECT count(*) FROM r",
            ]);
            t.expect(&format!("rust: {vfs}: write"), &out, "3\n");
            let out = self.shell(
                &[
                    ".load {ext}",
                    &format!(".open {}", uri(&from_rust)),
                    "SELECT group_concat(v, ' ') FROM r;",
                    "PRAGMA integrity_check;",
                ],
                None,
            );
            t.expect(
                &format!("shell: {vfs}: reads what Rust wrote"),
                &out,
                "written by rust\nok\n",
            );
            let out = self.python(
                &[
                    "@load {ext}",
                    &format!("@open a {}", uri(&from_rust)),
                    "SELECT group_concat(v, ' ') FROM r",
                    "PRAGMA integrity_check",
                ],
                None,
                false,
            );
            t.expect(
                &format!("python: {vfs}: reads what Rust wrote"),
                &out,
                "written by rust\nok\n",
            );
        }
    }
}
