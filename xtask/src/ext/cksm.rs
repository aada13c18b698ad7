//! The checksum stacks' checks: byte compatibility with SQLite's cksumvfs and tamper detection.

use super::*;

impl Setup {
    /// Checksums through the hosts (enable with [`CKSM_READY`]).
    pub(super) fn cksm_checks(&self, t: &mut Tally) {
        step("cksm");
        for (vfs, reserve, format) in [("cksm", 8, "cksumvfs"), ("cksm-crc32", 12, "crc32")] {
            let db = format!("sum-{vfs}.db");
            let uri = format!("file:{{dir}}/{db}?vfs={vfs}");
            let out = self.shell(
                &[
                    ".load {ext}",
                    &format!(".open {uri}"),
                    "CREATE TABLE t(v TEXT);",
                    "INSERT INTO t SELECT printf('%0500d', value) FROM generate_series(1, 50);",
                    "SELECT count(*) FROM t;",
                    "PRAGMA checksum_verification;",
                    "PRAGMA checksum_format;",
                    "PRAGMA integrity_check;",
                ],
                None,
            );
            t.expect(
                &format!("shell: {vfs}: a new database is checksummed from its first page"),
                &out,
                &format!("50\n1\n{format}\nok\n"),
            );
            let file = self.path(&db);
            let header = fs::read(&file).unwrap_or_default();
            t.check_fn(
                &format!("{vfs}: the header reserves {reserve} bytes per page"),
                &out,
                |_| match header.get(20) {
                    Some(r) if *r == reserve => Ok(()),
                    other => Err(format!("byte 20 of {} is {other:?}", file.display())),
                },
            );
            // Damage a byte inside page 2, away from its trailer.
            let page_size = header
                .get(16..18)
                .map(|b| match u16::from_be_bytes([b[0], b[1]]) {
                    1 => 65_536,
                    n => n as usize,
                })
                .unwrap_or(4096);
            let mut bytes = header.clone();
            if let Some(b) = bytes.get_mut(page_size + 200) {
                *b ^= 0xff;
            }
            if let Err(e) = fs::write(&file, &bytes) {
                t.check_fn("damage a page", &out, |_| Err(e.to_string()));
            }
            let out = self.python(
                &[
                    "@load {ext}",
                    &format!("@open a {uri}"),
                    "SELECT count(*) FROM t",
                ],
                None,
                false,
            );
            t.expect(
                &format!("python: {vfs}: a damaged page gives SQLITE_IOERR_DATA (8202)"),
                &out,
                "error: 8202: disk I/O error\n",
            );
            let out = self.rust(&[&format!("@open a {uri}"), "SELECT count(*) FROM t"]);
            t.check_fn(
                &format!("rust: {vfs}: a damaged page gives SQLITE_IOERR_DATA (8202)"),
                &out,
                |o| {
                    clean(o)?;
                    if o.stdout.starts_with("error: 8202: ") && o.stdout.lines().count() == 1 {
                        Ok(())
                    } else {
                        Err("expected one `error: 8202: ...` line".into())
                    }
                },
            );
            let out = self.shell(
                &[
                    ".load {ext}",
                    &format!(".open {uri}"),
                    "PRAGMA checksum_verification = off;",
                    "SELECT count(*) FROM t;",
                ],
                None,
            );
            t.expect(
                &format!("shell: {vfs}: with verification off the damaged page reads"),
                &out,
                "0\n50\n",
            );
        }
        let out = self.shell(
            &[
                ".load {ext}",
                ".open file:/sum.db?vfs=cksm-mem",
                "CREATE TABLE t(v); INSERT INTO t VALUES (1), (2);",
                ".open file:/sum.db?vfs=cksm-mem",
                "SELECT sum(v) FROM t;",
                "PRAGMA checksum_format;",
                "PRAGMA integrity_check;",
            ],
            None,
        );
        t.expect(
            "shell: cksm-mem: checksummed in memory, survives close and reopen",
            &out,
            "3\ncksumvfs\nok\n",
        );
    }
}
