//! `cargo xtask ext-test [--release] [--keep]`: builds the loadable extension
//! (`crates/vfs-ext`) and drives real SQLite hosts with it.
//!
//! Hosts:
//!
//! * Debian's `sqlite3` shell (installed with apt-get when absent), which
//!   links the system SQLite (3.40 on Debian 12, older than the bindings:
//!   the extension's copied-API-table path);
//! * Python's standard `sqlite3` module (the first interpreter whose module
//!   can load extensions; Debian's `/usr/bin/python3` does), on the system
//!   SQLite, and again on the SQLite amalgamation libsqlite3-sys bundles,
//!   built here as a shared library and put first with `LD_LIBRARY_PATH`
//!   (a host at least as new as the bindings);
//! * the Rust crates themselves: `crates/vfs-ext/interop`, a small program
//!   built outside the workspace (it links the bundled SQLite, which must not
//!   be feature-unified with the extension's), registers the same stacks
//!   from the same source file (`crates/vfs-ext/src/stacks.rs`) through
//!   `vfs_core::register` and reads and writes the same files.
//!
//! Every check compares the exact output (rows, error codes and messages)
//! and the run ends with `N passed, M failed`; any failure fails the run.
//! The xtask keeps no dependencies: hosts are separate processes.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// The checksum checks (`cksm`, `cksm-crc32` and `cksm-mem` stacks).
const CKSM_READY: bool = true;
/// Flip to `true` when `vfs-crypto` is registered as `crypto-cksm` (crypto
/// over cksm over the platform VFS) and reads its key from `hexkey`.
const CRYPTO_READY: bool = true;

/// The VFSes the extension registers, in registration order.
const EXPECTED_NAMES: &[&str] = &[
    "native",
    "mem",
    "mvcc",
    "wrap",
    "cksm",
    "cksm-mem",
    "cksm-crc32",
    "crypto",
    "crypto-cksm",
    "crypto-mem",
];

/// A 256-bit key in hex, and another one, for the crypto checks.
const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const WRONG_KEY: &str = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// The Python side: steps as arguments, like the interop program.
///
/// * `@version`: print `sqlite3.sqlite_version`.
/// * `@load PATH`: load the extension into a fresh connection kept open.
/// * `@open NAME URI`, `@use NAME`, `@close NAME`: connections (autocommit,
///   explicit `BEGIN` works).
/// * `@fake-host SO VERSION [full]`: call the entry point through ctypes
///   with a hand-made API table that reports `VERSION` and has only
///   `sqlite3_libversion_number` and `sqlite3_malloc`; print `rc|message`.
/// * anything else: one SQL statement; rows print as `a|b`, errors as
///   `error: <extended code>: <message>`.
const PY_DRIVER: &str = r#"
import ctypes, sqlite3, sys

conns, cur, keep = {}, None, []

def cell(v):
    if v is None: return ""
    if isinstance(v, bytes): return "x'" + v.hex() + "'"
    return str(v)

def err(e):
    print(f"error: {getattr(e, 'sqlite_errorcode', '?')}: {e}")

for step in sys.argv[1:]:
    w = step.split()
    if w[0] == "@version":
        print(sqlite3.sqlite_version)
    elif w[0] == "@load":
        c = sqlite3.connect(":memory:")
        c.enable_load_extension(True)
        try:
            c.load_extension(w[1])
            keep.append(c)
        except sqlite3.Error as e:
            err(e)
    elif w[0] == "@open":
        if w[1] in conns: conns.pop(w[1]).close()
        try:
            conns[w[1]] = sqlite3.connect(w[2], uri=True, isolation_level=None)
            cur = w[1]
        except sqlite3.Error as e:
            err(e)
    elif w[0] == "@use":
        cur = w[1]
    elif w[0] == "@close":
        conns.pop(w[1]).close()
    elif w[0] == "@fake-host":
        # SQLite's API table is append-only: entry 67 is
        # sqlite3_libversion_number and 68 sqlite3_malloc in every version.
        lib = ctypes.CDLL(w[1])
        version = int(w[2])
        libc = ctypes.CDLL(None)
        libc.malloc.restype = ctypes.c_void_p
        libc.malloc.argtypes = [ctypes.c_size_t]
        ver_fn = ctypes.CFUNCTYPE(ctypes.c_int)(lambda: version)
        malloc_fn = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_int)(lambda n: libc.malloc(n))
        table = (ctypes.c_void_p * 1024)()
        table[67] = ctypes.cast(ver_fn, ctypes.c_void_p).value
        table[68] = ctypes.cast(malloc_fn, ctypes.c_void_p).value
        msg = ctypes.c_char_p()
        entry = lib.sqlite3_vfsext_init
        entry.restype = ctypes.c_int
        entry.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_void_p]
        rc = entry(None, ctypes.byref(msg), ctypes.cast(table, ctypes.c_void_p))
        print(f"{rc}|{(msg.value or b'').decode()}")
    elif w[0].startswith("@"):
        sys.exit(f"bad step {step!r}")
    else:
        try:
            for row in conns[cur].execute(step).fetchall():
                print("|".join(cell(v) for v in row))
        except sqlite3.Error as e:
            err(e)
"#;

pub fn run(args: &[String]) -> ExitCode {
    let mut release = false;
    let mut keep = false;
    for a in args {
        match a.as_str() {
            "--release" => release = true,
            "--keep" => keep = true,
            other => {
                eprintln!("xtask ext-test: unknown option `{other}` (known: --release, --keep)");
                return ExitCode::from(2);
            }
        }
    }
    match Setup::new(release).map(|s| s.run_checks(keep)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask ext-test: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What one host process printed.
struct Out {
    stdout: String,
    stderr: String,
    success: bool,
}

struct Setup {
    /// The extension without its suffix, as hosts are told to load it.
    ext: String,
    /// The extension's file (`.so`).
    ext_file: PathBuf,
    interop: PathBuf,
    shell: PathBuf,
    python: PathBuf,
    /// A directory holding a `libsqlite3.so.0` of the bundled version, and
    /// that version.
    new_sqlite: (PathBuf, String),
    dir: PathBuf,
    /// `cargo test` of the extension crate (its unit tests run in the
    /// loadable-extension mode): the manifest, target dir and profile.
    unit_tests: (PathBuf, PathBuf, bool),
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn step(msg: &str) {
    println!("== {msg}");
}

impl Setup {
    fn new(release: bool) -> Result<Setup, String> {
        let root = root();
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(t) => std::env::current_dir().map_err(|e| e.to_string())?.join(t),
            None => root.join("crates/vfs-ext/target"),
        };
        let profile = if release { "release" } else { "debug" };
        for (what, manifest) in [
            ("the extension", "crates/vfs-ext/Cargo.toml"),
            ("the interop checker", "crates/vfs-ext/interop/Cargo.toml"),
        ] {
            step(&format!("building {what} ({profile})"));
            let mut cmd = cargo();
            cmd.arg("build")
                .arg("--manifest-path")
                .arg(root.join(manifest))
                .arg("--target-dir")
                .arg(&target);
            if release {
                cmd.arg("--release");
            }
            let status = cmd
                .status()
                .map_err(|e| format!("could not start cargo: {e}"))?;
            if !status.success() {
                return Err(format!("building {what} failed ({status})"));
            }
        }
        let out_dir = target.join(profile);
        let ext_file = out_dir.join("libvfs_ext.so");
        if !ext_file.is_file() {
            return Err(format!("{} was not built", ext_file.display()));
        }
        let work = target.join("ext-test");
        let dir = work.join("run");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        Ok(Setup {
            ext: out_dir.join("libvfs_ext").display().to_string(),
            ext_file,
            interop: out_dir.join("vfs-ext-interop"),
            shell: find_shell()?,
            python: find_python()?,
            new_sqlite: build_new_sqlite(&root, &work)?,
            dir,
            unit_tests: (root.join("crates/vfs-ext/Cargo.toml"), target, release),
        })
    }

    fn fill(&self, text: &str) -> String {
        text.replace("{ext}", &self.ext)
            .replace("{dir}", &self.dir.display().to_string())
            .replace("{key}", KEY)
            .replace("{wrong_key}", WRONG_KEY)
    }

    /// Runs `cmd` with `stdin` as its input and `VFSEXT_DEFAULT` set to
    /// `default` (removed when `None`).
    fn exec(&self, mut cmd: Command, stdin: Option<String>, default: Option<&str>) -> Out {
        match default {
            Some(d) => cmd.env("VFSEXT_DEFAULT", d),
            None => cmd.env_remove("VFSEXT_DEFAULT"),
        };
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let spawned = cmd.spawn().and_then(|mut child| {
            if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
                pipe.write_all(text.as_bytes())?;
            }
            child.wait_with_output()
        });
        match spawned {
            Ok(o) => Out {
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
                success: o.status.success(),
            },
            Err(e) => Out {
                stdout: String::new(),
                stderr: format!("could not run {cmd:?}: {e}"),
                success: false,
            },
        }
    }

    /// The sqlite3 shell on `lines` (one command or statement each), with
    /// `VFSEXT_DEFAULT` set to `default` if given.
    fn shell(&self, lines: &[&str], default: Option<&str>) -> Out {
        let mut cmd = Command::new(&self.shell);
        cmd.args(["-batch", ":memory:"]);
        let script: String = lines.iter().map(|l| self.fill(l) + "\n").collect();
        self.exec(cmd, Some(script), default)
    }

    /// Python's sqlite3 module on `steps` (see [`PY_DRIVER`]), on the
    /// system SQLite or (`new_sqlite`) on the bundled version.
    fn python(&self, steps: &[&str], default: Option<&str>, new_sqlite: bool) -> Out {
        let mut cmd = Command::new(&self.python);
        cmd.arg("-c").arg(PY_DRIVER);
        cmd.args(steps.iter().map(|s| self.fill(s)));
        if new_sqlite {
            cmd.env("LD_LIBRARY_PATH", &self.new_sqlite.0);
        }
        self.exec(cmd, None, default)
    }

    /// The Rust crates (the interop program) on `steps`.
    fn rust(&self, steps: &[&str]) -> Out {
        let mut cmd = Command::new(&self.interop);
        cmd.args(steps.iter().map(|s| self.fill(s)));
        self.exec(cmd, None, None)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn run_checks(&self, keep: bool) -> bool {
        let mut t = Tally::default();
        step("unit tests of crates/vfs-ext (loadable-extension mode)");
        let (manifest, target, release) = &self.unit_tests;
        let mut unit_tests = cargo();
        unit_tests
            .args(["test", "--quiet", "--manifest-path"])
            .arg(manifest)
            .arg("--target-dir")
            .arg(target);
        if *release {
            unit_tests.arg("--release");
        }
        let out = self.exec(unit_tests, None, None);
        t.check_fn("cargo test (crates/vfs-ext)", &out, |o| {
            if o.success && o.stdout.contains("test result: ok.") {
                Ok(())
            } else {
                Err("the crate's unit tests failed".into())
            }
        });
        step(&format!(
            "hosts: {} ; {} ; SQLite {} from {}",
            self.shell.display(),
            self.python.display(),
            self.new_sqlite.1,
            self.new_sqlite.0.display()
        ));
        self.shell_checks(&mut t);
        self.python_checks(&mut t);
        self.cross_checks(&mut t);
        if CKSM_READY {
            self.cksm_checks(&mut t);
        } else {
            println!("note: cksm checks are off (CKSM_READY = false in xtask/src/ext.rs)");
        }
        if CRYPTO_READY {
            self.crypto_checks(&mut t);
        } else {
            println!("note: crypto checks are off (CRYPTO_READY = false in xtask/src/ext.rs)");
        }
        if t.failed == 0 && !keep {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            println!("files kept in {}", self.dir.display());
        }
        println!("{} passed, {} failed", t.passed, t.failed);
        t.failed == 0
    }

    fn shell_checks(&self, t: &mut Tally) {
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

    fn python_checks(&self, t: &mut Tally) {
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

    /// The same files through the extension in a host and through the Rust
    /// crates, both ways, for every on-disk stack.
    fn cross_checks(&self, t: &mut Tally) {
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

    /// Checksums through the hosts (enable with [`CKSM_READY`]).
    fn cksm_checks(&self, t: &mut Tally) {
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

    /// Encryption through the hosts (enable with [`CRYPTO_READY`]).
    fn crypto_checks(&self, t: &mut Tally) {
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

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

/// The names in a `.vfslist` listing.
fn vfs_names(listing: &str) -> BTreeSet<String> {
    listing
        .lines()
        .filter_map(|l| l.strip_prefix("vfs.zName"))
        .filter_map(|l| l.split('"').nth(1))
        .map(str::to_owned)
        .collect()
}

fn clean(o: &Out) -> Result<(), String> {
    if !o.success {
        return Err("the host exited with an error".into());
    }
    if !o.stderr.is_empty() {
        return Err("the host wrote to stderr".into());
    }
    Ok(())
}

fn expect_exact(o: &Out, want: &str) -> Result<(), String> {
    clean(o)?;
    if o.stdout == want {
        Ok(())
    } else {
        Err(format!("expected stdout:\n{want}"))
    }
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn expect(&mut self, name: &str, out: &Out, want: &str) {
        self.check_fn(name, out, |o| expect_exact(o, want));
    }

    fn check_fn(&mut self, name: &str, out: &Out, f: impl FnOnce(&Out) -> Result<(), String>) {
        match f(out) {
            Ok(()) => {
                self.passed += 1;
                println!("ok   {name}");
            }
            Err(why) => {
                self.failed += 1;
                println!("FAIL {name}: {why}");
                println!("---- stdout:\n{}", out.stdout);
                println!("---- stderr:\n{}", out.stderr);
                println!("----");
            }
        }
    }
}

/// The `sqlite3` shell, installed from Debian's package when absent.
fn find_shell() -> Result<PathBuf, String> {
    if let Some(p) = which("sqlite3") {
        return Ok(p);
    }
    step("installing the sqlite3 shell (apt-get)");
    apt_install("sqlite3")?;
    which("sqlite3").ok_or_else(|| "apt-get installed sqlite3 but it is not on PATH".to_owned())
}

/// A Python whose sqlite3 module can load extensions (pyenv builds often
/// cannot; Debian's can). `VFSEXT_PYTHON` overrides the search.
fn find_python() -> Result<PathBuf, String> {
    let probe = |p: &Path| {
        Command::new(p)
            .args([
                "-c",
                "import sqlite3; sqlite3.connect(':memory:').enable_load_extension(True)",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("VFSEXT_PYTHON") {
        candidates.push(p.into());
    }
    candidates.extend(which("python3"));
    candidates.push("/usr/bin/python3".into());
    if let Some(p) = candidates.iter().find(|p| probe(p)) {
        return Ok(p.clone());
    }
    step("installing Debian's python3 (its sqlite3 module loads extensions)");
    apt_install("python3")?;
    let debian = PathBuf::from("/usr/bin/python3");
    if probe(&debian) {
        Ok(debian)
    } else {
        Err(format!(
            "no Python whose sqlite3 module can load extensions (tried {candidates:?}); \
             set VFSEXT_PYTHON"
        ))
    }
}

fn apt_install(package: &str) -> Result<(), String> {
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if install() {
        return Ok(());
    }
    let updated = Command::new("apt-get")
        .args(["update", "-q"])
        .status()
        .is_ok_and(|s| s.success());
    if updated && install() {
        Ok(())
    } else {
        Err(format!("apt-get install {package} failed"))
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Builds the SQLite amalgamation that libsqlite3-sys bundles (the version
/// in the interop checker's Cargo.lock) as a shared `libsqlite3.so.0`, once,
/// for a host newer than the system's. Returns its directory and version.
fn build_new_sqlite(root: &Path, work: &Path) -> Result<(PathBuf, String), String> {
    let lock = fs::read_to_string(root.join("crates/vfs-ext/interop/Cargo.lock"))
        .map_err(|e| format!("reading the interop checker's Cargo.lock: {e}"))?;
    let sys_version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"libsqlite3-sys\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map(|v| v.trim_matches('"').to_owned())
        .ok_or("libsqlite3-sys is not in the interop checker's Cargo.lock")?;
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let registry = cargo_home.join("registry/src");
    let amalgamation = fs::read_dir(&registry)
        .map_err(|e| format!("reading {}: {e}", registry.display()))?
        .filter_map(|d| d.ok())
        .map(|d| {
            d.path()
                .join(format!("libsqlite3-sys-{sys_version}/sqlite3"))
        })
        .find(|p| p.join("sqlite3.c").is_file())
        .ok_or(format!(
            "libsqlite3-sys {sys_version}'s sources are not under {}",
            registry.display()
        ))?;
    let header = fs::read_to_string(amalgamation.join("sqlite3.h"))
        .map_err(|e| format!("reading sqlite3.h: {e}"))?;
    let version = header
        .lines()
        .find_map(|l| l.strip_prefix("#define SQLITE_VERSION "))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .ok_or("no SQLITE_VERSION in sqlite3.h")?;
    let dir = work.join(format!("sqlite-{version}"));
    let lib = dir.join("libsqlite3.so.0");
    if lib.is_file() {
        return Ok((dir, version));
    }
    step(&format!(
        "building SQLite {version} as a shared library (once)"
    ));
    fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let tmp = dir.join("libsqlite3.so.0.tmp");
    let status = Command::new(&cc)
        .args(["-shared", "-fPIC", "-O1", "-DSQLITE_THREADSAFE=1", "-o"])
        .arg(&tmp)
        .arg(amalgamation.join("sqlite3.c"))
        .args(["-lpthread", "-lm", "-ldl"])
        .status()
        .map_err(|e| format!("could not start {cc}: {e}"))?;
    if !status.success() {
        return Err(format!("{cc} failed to build SQLite {version} ({status})"));
    }
    fs::rename(&tmp, &lib).map_err(|e| format!("renaming {}: {e}", tmp.display()))?;
    Ok((dir, version))
}
