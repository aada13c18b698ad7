//! The `sqlite-vfs` binary on real files: each command's happy path, a
//! damaged page found with the right number and b-tree, wrong keys,
//! existing outputs, a database in use, WAL and hot-journal sources, exit
//! codes, help and completions.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rusqlite::Connection;
use serde_json::Value;
use vfs_cksm::Cksm;
use vfs_core::{Native, Registration, register};
use vfs_crypto::Crypto;

const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const HEX2: &str = "f0e0d0c0b0a09080706050403020100ff0e0d0c0b0a09080706050403020100f";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

/// Runs the binary in `dir` with no key in the environment and no
/// terminal (so it never prompts).
fn sv(dir: &Path, args: &[&str]) -> Run {
    sv_env(dir, args, &[])
}

fn sv_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sqlite-vfs"));
    cmd.current_dir(dir)
        .args(args)
        .env_remove("SQLITE_VFS_KEY")
        .env_remove("SQLITE_VFS_NEW_KEY")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(r: &Run) {
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
}

/// A plaintext database with a table and an index over several pages.
fn plain_db(path: &Path) -> Vec<(i64, String)> {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
         CREATE INDEX tv ON t(v);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 400)
         INSERT INTO t(v) SELECT printf('%05d-', i) || hex(randomblob(60)) FROM n;",
    )
    .unwrap();
    rows(&conn)
}

fn rows(conn: &Connection) -> Vec<(i64, String)> {
    conn.prepare("SELECT id, v FROM t ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn write_key(dir: &Path, name: &str, hex: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{hex}\n")).unwrap();
    p
}

/// A crypto VFS registered in this process (to read what the tool wrote,
/// or to hold a database open while the tool runs).
fn crypto_vfs(name: &str, over_cksm: bool) -> Registration {
    let native = Native::new().unwrap();
    if over_cksm {
        register(name, Crypto::keyless(Cksm::new(native)), false).unwrap()
    } else {
        register(name, Crypto::keyless(native), false).unwrap()
    }
}

fn open_encrypted(vfs: &str, path: &Path, hex: &str) -> Connection {
    Connection::open(format!("file:{}?vfs={vfs}&hexkey={hex}", path.display())).unwrap()
}

#[test]
fn encrypt_and_decrypt_round_trip_with_a_generated_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let expected = plain_db(&d.join("plain.db"));

    let r = sv(
        d,
        &[
            "encrypt",
            "plain.db",
            "secret.db",
            "--generate-key",
            "secret.key",
        ],
    );
    ok(&r);
    assert!(r.stdout.contains("encrypted"), "{}", r.stdout);
    assert!(
        r.stderr.is_empty(),
        "no progress without a terminal: {}",
        r.stderr
    );
    let key = std::fs::read_to_string(d.join("secret.key")).unwrap();
    assert_eq!(key.trim().len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("secret.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let raw = std::fs::read(d.join("secret.db")).unwrap();
    assert!(!raw.starts_with(b"SQLite format 3"));
    assert!(!raw.windows(6).any(|w| w == b"00001-"), "plaintext leaked");
    let info = sv(d, &["info", "--json", "secret.db"]).json();
    assert_eq!(info["format"], "encrypted");
    assert_eq!(info["encryption"]["key_derivation"], "raw 256-bit key");
    assert_eq!(info["reserve"], 48);

    // Readable by the library with that key.
    let vfs = crypto_vfs("cli-roundtrip", false);
    let conn = open_encrypted("cli-roundtrip", &d.join("secret.db"), key.trim());
    assert_eq!(rows(&conn), expected);
    drop(conn);
    vfs.unregister().map_err(|(_, e)| e).unwrap();

    ok(&sv(
        d,
        &[
            "decrypt",
            "secret.db",
            "back.db",
            "--key-file",
            "secret.key",
        ],
    ));
    let back = Connection::open(d.join("back.db")).unwrap();
    assert_eq!(rows(&back), expected);
    assert_eq!(
        sv(d, &["info", "--json", "back.db"]).json()["format"],
        "plain"
    );
}

#[test]
fn passphrases_from_the_environment_with_their_cost() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let expected = plain_db(&d.join("plain.db"));
    let env = [("PASS", "correct horse battery staple")];
    ok(&sv_env(
        d,
        &[
            "encrypt",
            "plain.db",
            "p.db",
            "--passphrase",
            "--kdf",
            "m=1024,t=1,p=1",
            "--key-env",
            "PASS",
        ],
        &env,
    ));
    let info = sv(d, &["info", "--json", "p.db"]).json();
    assert_eq!(
        info["encryption"]["key_derivation"],
        "argon2id m=1024 KiB t=1 p=1"
    );
    assert_eq!(info["encryption"]["kdf_memory_kib"], 1024);

    // The default variable works too; a wrong passphrase is "wrong key".
    let r = sv_env(
        d,
        &["decrypt", "p.db", "x.db"],
        &[("SQLITE_VFS_KEY", "wrong")],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("wrong key"), "{}", r.stderr);
    assert!(!d.join("x.db").exists());
    ok(&sv_env(
        d,
        &["decrypt", "p.db", "x.db"],
        &[("SQLITE_VFS_KEY", env[0].1)],
    ));
    assert_eq!(rows(&Connection::open(d.join("x.db")).unwrap()), expected);
}

#[test]
fn keys_are_never_taken_from_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    plain_db(&d.join("plain.db"));
    write_key(d, "k", HEX);
    ok(&sv(d, &["encrypt", "plain.db", "s.db", "--key-file", "k"]));

    let r = sv(d, &["decrypt", "s.db", "out.db"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no key given"), "{}", r.stderr);
    assert!(r.stderr.contains("--key-file"), "{}", r.stderr);
    let r = sv(
        d,
        &["decrypt", "s.db", "out.db", "--key-env", "NOT_SET_ANYWHERE"],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("NOT_SET_ANYWHERE is not set"),
        "{}",
        r.stderr
    );
    // A passphrase where a raw key is needed.
    std::fs::write(d.join("pass"), "hunter2\n").unwrap();
    let r = sv(d, &["decrypt", "s.db", "out.db", "--key-file", "pass"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("64 hex"), "{}", r.stderr);
    // No option takes a key value itself.
    let r = sv(d, &["decrypt", "s.db", "out.db", "--key", HEX]);
    assert_eq!(r.code, 2);
    assert!(!d.join("out.db").exists());
}

#[test]
fn an_existing_output_is_refused_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let expected = plain_db(&d.join("plain.db"));
    write_key(d, "k", HEX);
    std::fs::write(d.join("taken.db"), b"precious").unwrap();

    let r = sv(d, &["encrypt", "plain.db", "taken.db", "--key-file", "k"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("exists") && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read(d.join("taken.db")).unwrap(), b"precious");

    ok(&sv(
        d,
        &[
            "encrypt",
            "plain.db",
            "taken.db",
            "--key-file",
            "k",
            "--force",
        ],
    ));
    let vfs = crypto_vfs("cli-force", false);
    assert_eq!(
        rows(&open_encrypted("cli-force", &d.join("taken.db"), HEX)),
        expected
    );
    vfs.unregister().map_err(|(_, e)| e).unwrap();
    assert!(!d.join("taken.db.sqlite-vfs-tmp").exists());

    // Not even with --force over a WAL that holds committed frames.
    wal_with_frames(&d.join("live.db"), &d.join("busy.db"));
    let r = sv(
        d,
        &[
            "decrypt",
            "taken.db",
            "busy.db",
            "--key-file",
            "k",
            "--force",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("WAL with"), "{}", r.stderr);
    // The same file as input and output.
    let r = sv(d, &["checksum", "plain.db", "./plain.db"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("same file"), "{}", r.stderr);
}

/// Leaves at `copy` a plaintext WAL-mode database whose WAL holds
/// committed frames not yet checkpointed (the state a crashed process
/// leaves), built at `scratch`. Returns its rows.
fn wal_with_frames(scratch: &Path, copy: &Path) -> Vec<(i64, String)> {
    let conn = Connection::open(scratch).unwrap();
    plain_db_in(&conn, "WAL");
    conn.execute_batch(
        "PRAGMA wal_autocheckpoint=0; PRAGMA wal_checkpoint(TRUNCATE);
         UPDATE t SET v = 'in the wal ' || v WHERE id % 7 = 0;",
    )
    .unwrap();
    let expected = rows(&conn);
    snapshot(scratch, copy, "-wal");
    drop(conn);
    expected
}

fn plain_db_in(conn: &Connection, mode: &str) -> Vec<(i64, String)> {
    conn.execute_batch(&format!(
        "PRAGMA journal_mode={mode};
         CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
         CREATE INDEX tv ON t(v);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 300)
         INSERT INTO t(v) SELECT printf('%05d-', i) || hex(randomblob(40)) FROM n;"
    ))
    .unwrap();
    rows(conn)
}

/// Copies a database and its `suffix` file (WAL or journal) as they are
/// now, while a connection still has them open.
fn snapshot(from: &Path, to: &Path, suffix: &str) {
    std::fs::copy(from, to).unwrap();
    let side = |p: &Path| PathBuf::from(format!("{}{suffix}", p.display()));
    std::fs::copy(side(from), side(to)).unwrap();
}

#[test]
fn info_tells_formats_and_what_sits_beside_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    plain_db(&d.join("plain.db"));
    write_key(d, "k", HEX);
    ok(&sv(d, &["checksum", "plain.db", "ck.db"]));
    ok(&sv(
        d,
        &["checksum", "plain.db", "crc.db", "--mode", "crc32"],
    ));
    ok(&sv(
        d,
        &["encrypt", "crc.db", "enc-crc.db", "--key-file", "k"],
    ));
    let expect = [
        ("plain.db", "plain", 0, Value::Null),
        ("ck.db", "cksumvfs", 8, "cksumvfs".into()),
        ("crc.db", "crc32", 12, "crc32".into()),
        ("enc-crc.db", "encrypted over crc32", 60, "crc32".into()),
    ];
    for (file, format, reserve, checksums) in expect {
        let info = sv(d, &["info", "--json", file]).json();
        assert_eq!(info["format"], format, "{file}");
        assert_eq!(info["reserve"], reserve, "{file}");
        assert_eq!(info["checksums"], checksums, "{file}");
        assert_eq!(info["page_size"], 4096, "{file}");
        assert_eq!(info["journal_mode"], "rollback", "{file}");
    }
    let text = sv(d, &["info", "enc-crc.db"]);
    ok(&text);
    assert!(text.stdout.contains("XAES-256-GCM"), "{}", text.stdout);

    // A WAL with frames.
    let expected_wal = wal_with_frames(&d.join("w-live.db"), &d.join("w.db"));
    assert!(!expected_wal.is_empty());
    let info = sv(d, &["info", "--json", "w.db"]).json();
    assert_eq!(info["journal_mode"], "wal");
    assert!(info["wal"]["frames"].as_u64().unwrap() > 0, "{info}");
    assert!(info["wal"]["commits"].as_u64().unwrap() >= 1, "{info}");

    // A hot journal.
    hot_journal(&d.join("h-live.db"), &d.join("h.db"));
    let info = sv(d, &["info", "--json", "h.db"]).json();
    assert_eq!(info["journal"]["hot"], true, "{info}");
    assert!(info["notes"].to_string().contains("hot journal"), "{info}");

    let r = sv(d, &["info", "k"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not an SQLite database"), "{}", r.stderr);
    let r = sv(d, &["info", "missing.db"]);
    assert_eq!(r.code, 2);

    // Checksums over encryption, the order the tool does not handle: named
    // and refused, never reported as encryption alone.
    let name = format!("cli-cksm-over-crypto-{}", std::process::id());
    let reg = register(
        &name,
        Cksm::new(Crypto::keyless(Native::new().unwrap())),
        false,
    )
    .unwrap();
    let conn = open_encrypted(&name, &d.join("ck-over-enc.db"), HEX);
    conn.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(conn);
    reg.unregister().unwrap();
    for command in ["info", "verify"] {
        let r = sv(
            d,
            &[command, "ck-over-enc.db", "--key-file", "k"]
                [..if command == "info" { 2 } else { 4 }],
        );
        assert_eq!(r.code, 2, "{command}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr
                .contains("8 reserved bytes inside the encrypted part"),
            "{command}: {}",
            r.stderr
        );
    }
}

/// Leaves at `copy` a plaintext database with a hot journal (a crash in
/// the middle of a commit that had already written pages). Returns the
/// rows before that transaction.
fn hot_journal(scratch: &Path, copy: &Path) -> Vec<(i64, String)> {
    let conn = Connection::open(scratch).unwrap();
    let before = plain_db_in(&conn, "DELETE");
    conn.execute_batch("PRAGMA cache_size=2; BEGIN; UPDATE t SET v = 'never committed';")
        .unwrap();
    snapshot(scratch, copy, "-journal");
    conn.execute_batch("ROLLBACK").unwrap();
    before
}

/// The page of b-tree `name` of kind `pagetype` (dbstat) of a database
/// opened through `conn`.
fn page_of(conn: &Connection, name: &str, pagetype: &str) -> u64 {
    conn.query_row(
        "SELECT pageno FROM dbstat WHERE name = ?1 AND pagetype = ?2 ORDER BY pageno LIMIT 1",
        [name, pagetype],
        |r| r.get::<_, i64>(0),
    )
    .unwrap() as u64
}

fn flip(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn verify_names_the_damaged_page_and_its_btree() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    plain_db(&d.join("plain.db"));
    write_key(d, "k", HEX);
    ok(&sv(
        d,
        &[
            "encrypt",
            "plain.db",
            "s.db",
            "--key-file",
            "k",
            "--checksum",
            "cksumvfs",
        ],
    ));
    let clean = sv(d, &["verify", "s.db", "--key-file", "k"]);
    ok(&clean);
    assert!(clean.stdout.contains("clean"), "{}", clean.stdout);
    assert!(clean.stdout.contains("integrity_check"), "{}", clean.stdout);

    let vfs = crypto_vfs("cli-verify", true);
    let conn = open_encrypted("cli-verify", &d.join("s.db"), HEX);
    let index_leaf = page_of(&conn, "tv", "leaf");
    let table_leaf = page_of(&conn, "t", "leaf");
    drop(conn);
    vfs.unregister().map_err(|(_, e)| e).unwrap();
    for p in [index_leaf, table_leaf] {
        flip(&d.join("s.db"), (p - 1) * 4096 + 1000);
    }

    let r = sv(d, &["verify", "s.db", "--key-file", "k", "--json"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let report = r.json();
    assert_eq!(report["verdict"], "damaged");
    let bad = report["bad_pages"].as_array().unwrap();
    let mut found: Vec<(u64, u64, String, String)> = bad
        .iter()
        .map(|b| {
            (
                b["page"].as_u64().unwrap(),
                b["offset"].as_u64().unwrap(),
                b["btree"].as_str().unwrap_or("?").to_owned(),
                b["kind"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    found.sort();
    let mut want = vec![
        (
            index_leaf,
            (index_leaf - 1) * 4096,
            "tv".to_owned(),
            "index".to_owned(),
        ),
        (
            table_leaf,
            (table_leaf - 1) * 4096,
            "t".to_owned(),
            "table".to_owned(),
        ),
    ];
    want.sort();
    assert_eq!(found, want, "{report}");
    assert!(
        bad[0]["problem"].as_str().unwrap().contains("cksumvfs"),
        "{report}"
    );

    // Without the key: the checksums still find both pages.
    let r = sv(d, &["verify", "s.db"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains(&format!("bad page {index_leaf} at offset")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("no key given"), "{}", r.stdout);
}

#[test]
fn verify_finds_tampering_that_only_authentication_sees() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    plain_db(&d.join("plain.db"));
    write_key(d, "k", HEX);
    ok(&sv(d, &["encrypt", "plain.db", "s.db", "--key-file", "k"]));
    flip(&d.join("s.db"), 2 * 4096 + 77); // page 3
    let r = sv(d, &["verify", "s.db", "--key-file", "k", "--json"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let report = r.json();
    assert_eq!(report["bad_pages"][0]["page"], 3);
    assert!(
        report["bad_pages"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("authenticate"),
        "{report}"
    );
    assert!(report["bad_pages"][0]["btree"].is_string(), "{report}");

    // Encrypted without checksums and no key: nothing can be checked.
    let r = sv(d, &["verify", "s.db"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("could not check"), "{}", r.stderr);
    // A wrong key: could not check either.
    write_key(d, "k2", HEX2);
    let r = sv(d, &["verify", "s.db", "--key-file", "k2"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("wrong key"), "{}", r.stderr);
}

#[test]
fn verify_of_crc_pages_moved_and_files_cut() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    plain_db(&d.join("plain.db"));
    ok(&sv(
        d,
        &["checksum", "plain.db", "crc.db", "--mode", "crc32"],
    ));
    ok(&sv(d, &["verify", "crc.db"]));
    // Page 4's image written over page 5: only the CRC format sees it.
    let mut bytes = std::fs::read(d.join("crc.db")).unwrap();
    let four = bytes[3 * 4096..4 * 4096].to_vec();
    bytes[4 * 4096..5 * 4096].copy_from_slice(&four);
    std::fs::write(d.join("moved.db"), &bytes).unwrap();
    let r = sv(d, &["verify", "moved.db", "--json"]);
    assert_eq!(r.code, 1);
    let report = r.json();
    assert_eq!(report["bad_pages"][0]["page"], 5);
    assert!(
        report["bad_pages"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("image of page 4"),
        "{report}"
    );
    // Half a page cut off the end.
    bytes.truncate(bytes.len() - 2048);
    std::fs::write(d.join("cut.db"), &bytes).unwrap();
    let r = sv(d, &["verify", "cut.db"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("truncated"), "{}", r.stdout);

    // A plain database: integrity_check only.
    let r = sv(d, &["verify", "plain.db", "--json"]);
    ok(&r);
    assert_eq!(
        r.json()["checks"],
        serde_json::json!(["PRAGMA integrity_check"])
    );
    let r = sv(d, &["verify", "plain.db", "--no-integrity-check"]);
    assert_eq!(r.code, 2, "nothing was checked");
}

#[test]
fn rekey_in_place_and_the_old_key_stops_working() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let expected = plain_db(&d.join("plain.db"));
    write_key(d, "old", HEX);
    write_key(d, "new", HEX2);
    ok(&sv(
        d,
        &[
            "encrypt",
            "plain.db",
            "s.db",
            "--key-file",
            "old",
            "--checksum",
            "crc32",
        ],
    ));

    let r = sv(
        d,
        &[
            "rekey",
            "s.db",
            "--key-file",
            "old",
            "--new-key-file",
            "new",
        ],
    );
    ok(&r);
    assert!(r.stdout.contains("rekeyed"), "{}", r.stdout);
    let entries: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("s.db"))
        .collect();
    assert_eq!(entries, ["s.db"], "nothing left beside it");
    assert_eq!(sv(d, &["verify", "s.db", "--key-file", "old"]).code, 2);
    ok(&sv(d, &["verify", "s.db", "--key-file", "new"]));
    let info = sv(d, &["info", "--json", "s.db"]).json();
    assert_eq!(info["format"], "encrypted over crc32");

    // To a passphrase, then a wrong current key is refused before anything.
    ok(&sv_env(
        d,
        &[
            "rekey",
            "s.db",
            "--key-file",
            "new",
            "--passphrase",
            "--kdf",
            "m=1024,t=1,p=1",
        ],
        &[("SQLITE_VFS_NEW_KEY", "a long passphrase")],
    ));
    let before = std::fs::read(d.join("s.db")).unwrap();
    let r = sv_env(
        d,
        &["rekey", "s.db", "--new-key-file", "old"],
        &[("SQLITE_VFS_KEY", "not it")],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("wrong key"), "{}", r.stderr);
    assert_eq!(std::fs::read(d.join("s.db")).unwrap(), before);
    ok(&sv_env(
        d,
        &["decrypt", "s.db", "back.db"],
        &[("SQLITE_VFS_KEY", "a long passphrase")],
    ));
    assert_eq!(
        rows(&Connection::open(d.join("back.db")).unwrap()),
        expected
    );

    let r = sv(
        d,
        &[
            "rekey",
            "plain.db",
            "--key-file",
            "old",
            "--new-key-file",
            "new",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not encrypted"), "{}", r.stderr);
}

#[test]
fn rekey_takes_in_a_wal_and_rolls_back_a_hot_journal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let vfs = crypto_vfs("cli-rekey-sources", false);
    let uri = |p: &str| {
        format!(
            "file:{}?vfs=cli-rekey-sources&hexkey={HEX}",
            d.join(p).display()
        )
    };
    write_key(d, "old", HEX);
    write_key(d, "new", HEX2);

    // Encrypted, WAL mode, committed frames not checkpointed.
    let conn = Connection::open(uri("w-live.db")).unwrap();
    plain_db_in(&conn, "WAL");
    conn.execute_batch(
        "PRAGMA wal_autocheckpoint=0; PRAGMA wal_checkpoint(TRUNCATE);
         DELETE FROM t WHERE id % 5 = 0; UPDATE t SET v = 'wal' || v WHERE id < 20;",
    )
    .unwrap();
    let wal_rows = rows(&conn);
    snapshot(&d.join("w-live.db"), &d.join("w.db"), "-wal");
    drop(conn);

    // Encrypted, rollback mode, hot journal.
    let conn = Connection::open(uri("h-live.db")).unwrap();
    let hot_rows = plain_db_in(&conn, "DELETE");
    conn.execute_batch("PRAGMA cache_size=2; BEGIN; DELETE FROM t WHERE id > 10;")
        .unwrap();
    snapshot(&d.join("h-live.db"), &d.join("h.db"), "-journal");
    conn.execute_batch("ROLLBACK").unwrap();
    drop(conn);
    vfs.unregister().map_err(|(_, e)| e).unwrap();
    assert_eq!(
        sv(d, &["info", "--json", "h.db"]).json()["journal"]["hot"],
        true
    );

    for (file, expected, mode) in [("w.db", wal_rows, "wal"), ("h.db", hot_rows, "rollback")] {
        ok(&sv(
            d,
            &["rekey", file, "--key-file", "old", "--new-key-file", "new"],
        ));
        assert!(!d.join(format!("{file}-wal")).exists(), "{file}");
        assert!(!d.join(format!("{file}-journal")).exists(), "{file}");
        let info = sv(d, &["info", "--json", file]).json();
        assert_eq!(info["journal_mode"], mode, "{file}");
        let vfs = crypto_vfs("cli-rekey-check", false);
        let conn = open_encrypted("cli-rekey-check", &d.join(file), HEX2);
        assert_eq!(rows(&conn), expected, "{file}");
        drop(conn);
        vfs.unregister().map_err(|(_, e)| e).unwrap();
    }
}

#[test]
fn rekey_refuses_a_database_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    plain_db(&d.join("plain.db"));
    write_key(d, "old", HEX);
    write_key(d, "new", HEX2);
    ok(&sv(
        d,
        &["encrypt", "plain.db", "s.db", "--key-file", "old"],
    ));
    let before = std::fs::read(d.join("s.db")).unwrap();

    let vfs = crypto_vfs("cli-in-use", false);
    let app = open_encrypted("cli-in-use", &d.join("s.db"), HEX);
    app.execute_batch("BEGIN; SELECT count(*) FROM t;").unwrap();
    let r = sv(
        d,
        &[
            "rekey",
            "s.db",
            "--key-file",
            "old",
            "--new-key-file",
            "new",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("in use"), "{}", r.stderr);
    assert_eq!(std::fs::read(d.join("s.db")).unwrap(), before);
    assert!(!d.join("s.db.sqlite-vfs-tmp").exists());
    app.execute_batch("COMMIT").unwrap();
    drop(app);
    vfs.unregister().map_err(|(_, e)| e).unwrap();
    ok(&sv(
        d,
        &[
            "rekey",
            "s.db",
            "--key-file",
            "old",
            "--new-key-file",
            "new",
        ],
    ));
    // In WAL mode: a reader elsewhere keeps the file in use too.
    let vfs = crypto_vfs("cli-in-use-wal", false);
    let app = open_encrypted("cli-in-use-wal", &d.join("s.db"), HEX2);
    app.execute_batch("PRAGMA journal_mode=WAL; INSERT INTO t(v) VALUES ('w');")
        .unwrap();
    app.execute_batch("BEGIN; SELECT count(*) FROM t;").unwrap();
    let back = [
        "rekey",
        "s.db",
        "--key-file",
        "new",
        "--new-key-file",
        "old",
    ];
    let r = sv(d, &back);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("in use"), "{}", r.stderr);
    app.execute_batch("COMMIT").unwrap();
    drop(app);
    vfs.unregister().map_err(|(_, e)| e).unwrap();
    ok(&sv(d, &back));
    assert_eq!(
        sv(d, &["info", "--json", "s.db"]).json()["journal_mode"],
        "wal"
    );
}

#[test]
fn checksum_adds_changes_and_removes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let expected = plain_db(&d.join("a.db"));
    ok(&sv(d, &["checksum", "a.db", "b.db"]));
    ok(&sv(d, &["checksum", "b.db", "c.db", "--mode", "crc32"]));
    ok(&sv(d, &["checksum", "c.db", "d.db", "--mode", "none"]));
    for (f, format) in [("b.db", "cksumvfs"), ("c.db", "crc32"), ("d.db", "plain")] {
        assert_eq!(
            sv(d, &["info", "--json", f]).json()["format"],
            format,
            "{f}"
        );
        ok(&sv(d, &["verify", f]));
    }
    assert_eq!(rows(&Connection::open(d.join("d.db")).unwrap()), expected);
    let r = sv(d, &["checksum", "b.db", "e.db", "--mode", "cksumvfs"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("already has cksumvfs"), "{}", r.stderr);

    // Encrypted: the copy keeps the encryption and the key.
    write_key(d, "k", HEX);
    ok(&sv(d, &["encrypt", "a.db", "s.db", "--key-file", "k"]));
    ok(&sv(
        d,
        &[
            "checksum",
            "s.db",
            "s-crc.db",
            "--mode",
            "crc32",
            "--key-file",
            "k",
        ],
    ));
    assert_eq!(
        sv(d, &["info", "--json", "s-crc.db"]).json()["format"],
        "encrypted over crc32"
    );
    ok(&sv(d, &["verify", "s-crc.db", "--key-file", "k"]));
}

#[test]
fn stats_prints_every_operation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    plain_db(&d.join("a.db"));
    let r = sv(
        d,
        &[
            "stats",
            "a.db",
            "--json",
            "--",
            "SELECT count(*) FROM t; SELECT 1, 'x'",
        ],
    );
    ok(&r);
    let report = r.json();
    assert_eq!(report["results"][0]["rows"], serde_json::json!([[400]]));
    assert_eq!(report["results"][1]["rows"], serde_json::json!([[1, "x"]]));
    let read = report["ops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["op"] == "read")
        .unwrap();
    assert!(read["count"].as_u64().unwrap() > 0, "{report}");
    assert!(read["bytes"].as_u64().unwrap() >= 4096, "{report}");

    write_key(d, "k", HEX);
    ok(&sv(d, &["encrypt", "a.db", "s.db", "--key-file", "k"]));
    let r = sv(
        d,
        &[
            "stats",
            "s.db",
            "--key-file",
            "k",
            "--storage",
            "--",
            "SELECT count(*) FROM t",
        ],
    );
    ok(&r);
    assert!(r.stdout.starts_with("400\n"), "{}", r.stdout);
    assert!(r.stdout.contains("storage level"), "{}", r.stdout);
    assert!(r.stdout.contains("main-db"), "{}", r.stdout);

    let r = sv(d, &["stats", "s.db", "--", "SELECT 1"]);
    assert_eq!(r.code, 2, "no key");
    let r = sv(d, &["stats", "a.db", "--", "SELECT nope FROM t"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no such column"), "{}", r.stderr);
}

#[test]
fn help_completions_and_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let r = sv(d, &["--help"]);
    ok(&r);
    assert!(r.stdout.contains("Examples:"), "{}", r.stdout);
    for cmd in [
        "info", "verify", "encrypt", "decrypt", "rekey", "checksum", "stats",
    ] {
        let r = sv(d, &[cmd, "--help"]);
        ok(&r);
        assert!(r.stdout.contains("sqlite-vfs"), "{cmd}: {}", r.stdout);
    }
    let r = sv(d, &["completions", "bash"]);
    ok(&r);
    assert!(
        r.stdout.contains("sqlite-vfs") && r.stdout.contains("rekey"),
        "{}",
        r.stdout
    );
    let r = sv(d, &["frobnicate"]);
    assert_eq!(r.code, 2);

    plain_db(&d.join("a.db"));
    let r = sv(d, &["--quiet", "checksum", "a.db", "b.db"]);
    ok(&r);
    assert!(
        r.stdout.is_empty() && r.stderr.is_empty(),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let r = sv(d, &["-v", "checksum", "a.db", "c.db"]);
    ok(&r);
    assert!(r.stderr.contains("checking the copy"), "{}", r.stderr);
}

#[test]
fn verify_leaves_nothing_beside_a_wal_mode_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    wal_with_frames(&d.join("live.db"), &d.join("w.db"));
    // The copy takes the WAL in and keeps WAL mode.
    ok(&sv(d, &["checksum", "w.db", "ck.db"]));
    assert_eq!(
        sv(d, &["info", "--json", "ck.db"]).json()["journal_mode"],
        "wal"
    );
    ok(&sv(d, &["verify", "ck.db"]));
    for side in ["ck.db-wal", "ck.db-shm", "ck.db-journal"] {
        assert!(!d.join(side).exists(), "{side} left behind");
    }
    // A hot journal: integrity_check waits for its rollback, and says so.
    hot_journal(&d.join("h-live.db"), &d.join("h.db"));
    ok(&sv(d, &["checksum", "h.db", "h-ck.db"]));
    let r = sv(d, &["verify", "h-ck.db"]);
    ok(&r);
    hot_journal(&d.join("h2-live.db"), &d.join("h2.db"));
    let r = sv(d, &["verify", "h2.db"]);
    assert_eq!(
        r.code, 2,
        "a plain file with a hot journal: nothing checked"
    );
    assert!(r.stdout.contains("hot journal"), "{}", r.stdout);
}
