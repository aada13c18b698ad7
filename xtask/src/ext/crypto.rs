//! The encrypting stacks' checks: keys, wrong keys, tampering, files shared with the Rust crates.

use super::*;

impl Setup {
    /// Encryption through the hosts (enable with [`CRYPTO_READY`]).
    pub(super) fn crypto_checks(&self, t: &mut Tally) {
        step("crypto");
        let uri = "file:{dir}/secret.db?vfs=crypto-cksm&hexkey={key}";
        let out = self.shell(
            &[
                ".load {ext}",
                &format!(".open {uri}"),
                "CREATE TABLE t(v TEXT);",
                "INSERT INTO t VALUES ('attack at dawn'), ('bring snacks');",
                "PRAGMA integrity_check;",
            ],
            None,
        );
        t.expect(
            "shell: crypto-cksm: create an encrypted database",
            &out,
            "ok\n",
        );
        let raw = fs::read(self.path("secret.db")).unwrap_or_default();
        t.check_fn("crypto-cksm: no plaintext on disk", &out, |_| {
            if raw.is_empty() {
                Err("secret.db is missing or empty".into())
            } else if raw.windows(14).any(|w| w == b"attack at dawn") {
                Err("the plaintext is in the file".into())
            } else {
                Ok(())
            }
        });
        let out = self.shell(
            &[
                ".load {ext}",
                &format!(".open {uri}"),
                "SELECT group_concat(v, ', ') FROM t;",
                "PRAGMA integrity_check;",
            ],
            None,
        );
        t.expect(
            "shell: crypto-cksm: reopen with the key",
            &out,
            "attack at dawn, bring snacks\nok\n",
        );
        let out = self.shell(
            &[
                ".load {ext}",
                ".open file:{dir}/secret.db?vfs=crypto-cksm&hexkey={wrong_key}",
                "SELECT count(*) FROM t;",
            ],
            None,
        );
        t.check_fn(
            "shell: crypto-cksm: a wrong key gives 'file is not a database'",
            &out,
            |o| {
                if o.stderr.contains("file is not a database") && o.stdout.is_empty() {
                    Ok(())
                } else {
                    Err("expected SQLITE_NOTADB's message".into())
                }
            },
        );
        let out = self.python(
            &[
                "@load {ext}",
                "@open a file:{dir}/secret.db?vfs=crypto-cksm&hexkey={wrong_key}",
                "SELECT count(*) FROM t",
                &format!("@open b {uri}"),
                "SELECT count(*) FROM t",
            ],
            None,
            false,
        );
        t.expect(
            "python: crypto-cksm: wrong key gives SQLITE_NOTADB (26), the right one reads",
            &out,
            "error: 26: file is not a database\n2\n",
        );
        let out = self.rust(&[
            &format!("@open a {uri}"),
            "SELECT group_concat(v, ', ') FROM t",
        ]);
        t.expect(
            "rust: crypto-cksm: reads the shell's encrypted database",
            &out,
            "attack at dawn, bring snacks\n",
        );
    }
}
