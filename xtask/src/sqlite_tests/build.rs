//! Getting SQLite's source tree and building the three programs.
//!
//! * The source is the `sqlite3` source package of the machine's Debian
//!   release (3.40.1 on Debian 12), fetched with `apt-get source` through a
//!   private apt configuration under `target/sqlite-src/apt/` (a `deb-src`
//!   copy of the machine's `deb` entries, its own package lists and cache):
//!   the machine's apt configuration is never changed. Only the upstream
//!   tarball (`*.orig.tar.xz`) is unpacked, without Debian's patches, so the
//!   tests are SQLite's as released. `VFSEXT_SQLITE_SRC=/path/to/tree` uses
//!   an already unpacked tree instead.
//! * `configure` and `make sqlite3.c` run once in `target/sqlite-tests/build/`.
//! * speedtest1 and mptest are compiled against `xtask/c/vfsext_glue.c`
//!   (which includes the amalgamation) and the extension's static library;
//!   testfixture through SQLite's own makefile, with the glue in place of
//!   `sqlite3.c`. A program is rebuilt when an input is newer than it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use super::{Paths, step};

/// The version the tests were written for: Debian 12's.
pub const SQLITE_VERSION: &str = "3.40.1";

/// The compiler flags SQLite's makefile gives every program (from the
/// configured `Makefile`: `CFLAGS`, `-D_HAVE_SQLITE_CONFIG_H`, `NDEBUG`,
/// threadsafe, math functions), plus URIs on by default so a stack can take
/// its parameters (a crypto key) from the database name.
const COMMON_CFLAGS: &[&str] = &[
    "-O2",
    "-DSQLITE_OS_UNIX=1",
    "-D_HAVE_SQLITE_CONFIG_H",
    "-DNDEBUG",
    "-DSQLITE_THREADSAFE=1",
    "-DSQLITE_ENABLE_MATH_FUNCTIONS",
    "-DSQLITE_USE_URI=1",
];

/// The built programs.
pub struct Programs {
    pub speedtest1: PathBuf,
    pub mptest: PathBuf,
    pub testfixture: PathBuf,
    /// The unpacked source tree (its `test/` and `mptest/` hold the scripts).
    pub tree: PathBuf,
}

pub fn prepare(paths: &Paths) -> Result<Programs, String> {
    let tree = source_tree(paths)?;
    tools()?;
    let ext_lib = build_extension(paths)?;
    let bld = paths.work.join("build");
    amalgamation(&tree, &bld)?;
    let glue = paths.root.join("xtask/c/vfsext_glue.c");
    let bin = paths.work.join("bin");
    fs::create_dir_all(&bin).map_err(|e| format!("creating {}: {e}", bin.display()))?;
    let inputs = [ext_lib.clone(), glue.clone(), bld.join("sqlite3.c")];

    // testfixture (one long compiler run) goes in parallel with the other
    // two, which share one object of the glue.
    let testfixture = bld.join("testfixture");
    let (tf, rest) = std::thread::scope(|s| {
        let tf = s.spawn(|| {
            if stale(&testfixture, &inputs) {
                step("building testfixture (SQLite's makefile, glue in place of sqlite3.c)");
                build_testfixture(&bld, &glue, &ext_lib)
            } else {
                Ok(())
            }
        });
        let rest = (|| {
            let glue_o = bin.join("vfsext_glue.o");
            if stale(&glue_o, &inputs) {
                step("compiling the glue (amalgamation + SQLITE_EXTRA_INIT)");
                cc(&bld, &[glue.as_path()], &glue_o, true, &[])?;
            }
            let objs = [glue_o.clone(), ext_lib.clone()];
            for (name, src, extra) in [
                (
                    "speedtest1",
                    tree.join("test/speedtest1.c"),
                    &["-DSQLITE_OS_KV_OPTIONAL"][..],
                ),
                ("mptest", tree.join("mptest/mptest.c"), &[][..]),
            ] {
                let out = bin.join(name);
                if stale(&out, &objs) || stale(&out, std::slice::from_ref(&src)) {
                    step(&format!("building {name}"));
                    let mut srcs: Vec<&Path> = vec![src.as_path()];
                    srcs.extend(objs.iter().map(PathBuf::as_path));
                    cc(&bld, &srcs, &out, false, extra)?;
                }
            }
            Ok::<(), String>(())
        })();
        (tf.join(), rest)
    });
    tf.map_err(|_| "the testfixture build panicked".to_owned())??;
    rest?;
    Ok(Programs {
        speedtest1: bin.join("speedtest1"),
        mptest: bin.join("mptest"),
        testfixture,
        tree,
    })
}

/// `out` is missing or older than one of `inputs`.
fn stale(out: &Path, inputs: &[PathBuf]) -> bool {
    let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(built) = mtime(out) else {
        return true;
    };
    inputs
        .iter()
        .any(|i| mtime(i).is_none_or(|t: SystemTime| t > built))
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("{what}: could not start {:?}: {e}", cmd.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

/// Runs `cmd` with its output in `log`; on failure the error shows the
/// log's last lines.
fn run_logged(cmd: &mut Command, log: &Path, what: &str) -> Result<(), String> {
    let file = fs::File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    cmd.stdout(file).stderr(err).stdin(Stdio::null());
    run(cmd, what).map_err(|e| {
        let text = fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("{e}; last lines of {}:\n{}", log.display(), tail.join("\n"))
    })
}

fn compiler() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".to_owned())
}

/// Compiles `srcs` into `out` (an object with `object`) with the common
/// flags and the glue's `SQLITE_EXTRA_INIT`.
fn cc(bld: &Path, srcs: &[&Path], out: &Path, object: bool, extra: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new(compiler());
    cmd.args(COMMON_CFLAGS)
        .arg("-DSQLITE_EXTRA_INIT=vfsext_extra_init")
        .args(extra)
        .arg("-I")
        .arg(bld);
    if object {
        cmd.arg("-c");
    }
    cmd.args(srcs).arg("-o").arg(out);
    if !object {
        cmd.args(["-lpthread", "-ldl", "-lm"]);
    }
    let log = out.with_extension("log");
    run_logged(&mut cmd, &log, &format!("compiling {}", out.display()))
}

fn build_testfixture(bld: &Path, glue: &Path, ext_lib: &Path) -> Result<(), String> {
    let mut cmd = Command::new("make");
    cmd.current_dir(bld)
        .arg("testfixture")
        .arg(format!("TESTFIXTURE_SRC1={}", glue.display()))
        .arg("OPTS=-DSQLITE_EXTRA_INIT=vfsext_extra_init")
        .arg(format!("LIBS={} -lpthread -ldl", ext_lib.display()));
    // make decides by its own rules; the glue or the library may be newer.
    let _ = fs::remove_file(bld.join("testfixture"));
    run_logged(
        &mut cmd,
        &bld.join("testfixture.log"),
        "building testfixture",
    )
}

/// `configure` (once) and the amalgamation `sqlite3.c` with its headers.
fn amalgamation(tree: &Path, bld: &Path) -> Result<(), String> {
    if bld.join("sqlite3.c").is_file() && bld.join("Makefile").is_file() {
        return Ok(());
    }
    step("configuring SQLite and generating the amalgamation (once)");
    let _ = fs::remove_dir_all(bld);
    fs::create_dir_all(bld).map_err(|e| format!("creating {}: {e}", bld.display()))?;
    let tcl = tcl_config_dir().ok_or("tclConfig.sh not found (install tcl-dev)")?;
    run_logged(
        Command::new(tree.join("configure"))
            .current_dir(bld)
            .arg(format!("--with-tcl={}", tcl.display())),
        &bld.join("configure.log"),
        "configure",
    )?;
    run_logged(
        Command::new("make").current_dir(bld).arg("sqlite3.c"),
        &bld.join("amalgamation.log"),
        "make sqlite3.c",
    )
}

/// `cargo build --release` of crates/vfs-ext (outside the workspace), into
/// `CARGO_TARGET_DIR` when set, else the crate's own `target/` (the same
/// place `cargo xtask ext-test --release` uses). Returns `libvfs_ext.a`.
fn build_extension(paths: &Paths) -> Result<PathBuf, String> {
    step("building the extension's static library (crates/vfs-ext, release)");
    run(
        crate::cargo()
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(paths.root.join("crates/vfs-ext/Cargo.toml"))
            .arg("--target-dir")
            .arg(&paths.ext_target),
        "cargo build (crates/vfs-ext)",
    )?;
    let lib = paths.ext_target.join("release/libvfs_ext.a");
    if lib.is_file() {
        Ok(lib)
    } else {
        Err(format!("{} was not built", lib.display()))
    }
}

fn tcl_config_dir() -> Option<PathBuf> {
    [
        "/usr/lib/tcl8.6",
        "/usr/lib64/tcl8.6",
        "/usr/local/lib/tcl8.6",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|d| d.join("tclConfig.sh").is_file())
    .or_else(|| {
        // Debian also keeps it under the multiarch directory.
        fs::read_dir("/usr/lib")
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("tcl8.6"))
            .find(|d| d.join("tclConfig.sh").is_file())
    })
}

fn which(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

/// The compiler, make, tclsh and Tcl's headers; installs what is missing
/// with apt-get when running as root.
fn tools() -> Result<(), String> {
    let mut missing = Vec::new();
    if !which("cc") && std::env::var_os("CC").is_none() {
        missing.push("gcc");
    }
    if !which("make") {
        missing.push("make");
    }
    if !which("tclsh") {
        missing.push("tcl");
    }
    if tcl_config_dir().is_none() || !Path::new("/usr/include/tcl8.6/tcl.h").is_file() {
        missing.push("tcl-dev");
    }
    if !which("xz") {
        missing.push("xz-utils");
    }
    if missing.is_empty() {
        return Ok(());
    }
    if !super::is_root() {
        return Err(format!(
            "missing build tools; install them first: apt-get install {}",
            missing.join(" ")
        ));
    }
    step(&format!("installing {} (apt-get)", missing.join(" ")));
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if install() {
        return Ok(());
    }
    run(
        Command::new("apt-get").args(["update", "-q"]),
        "apt-get update",
    )?;
    if install() {
        Ok(())
    } else {
        Err(format!("apt-get install {} failed", missing.join(" ")))
    }
}

/// The unpacked source tree, downloaded once.
fn source_tree(paths: &Paths) -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("VFSEXT_SQLITE_SRC") {
        let dir = PathBuf::from(dir);
        if !dir.join("test/tester.tcl").is_file() {
            return Err(format!(
                "VFSEXT_SQLITE_SRC={} is not a SQLite source tree",
                dir.display()
            ));
        }
        return Ok(dir);
    }
    let cache = &paths.src_cache;
    let tree = cache.join(format!("sqlite3-{SQLITE_VERSION}"));
    if tree.join("test/tester.tcl").is_file() && tree.join("mptest/mptest.c").is_file() {
        return Ok(tree);
    }
    step(&format!(
        "downloading SQLite {SQLITE_VERSION}'s source package (apt-get source, private apt config)"
    ));
    let apt = cache.join("apt");
    let download = cache.join("download");
    for d in [
        apt.join("sources.list.d"),
        apt.join("lists/partial"),
        apt.join("cache/archives/partial"),
        download.clone(),
    ] {
        fs::create_dir_all(&d).map_err(|e| format!("creating {}: {e}", d.display()))?;
    }
    fs::write(
        apt.join("sources.list.d/deb-src.sources"),
        deb_src_entries()?,
    )
    .map_err(|e| format!("writing the private apt sources: {e}"))?;
    let opts = [
        "-o".to_owned(),
        "Dir::Etc::SourceList=/dev/null".to_owned(),
        "-o".to_owned(),
        format!(
            "Dir::Etc::SourceParts={}",
            apt.join("sources.list.d").display()
        ),
        "-o".to_owned(),
        format!("Dir::State::Lists={}", apt.join("lists").display()),
        "-o".to_owned(),
        format!("Dir::Cache={}", apt.join("cache").display()),
        "-o".to_owned(),
        "Debug::NoLocking=1".to_owned(),
        "-q".to_owned(),
    ];
    run_logged(
        Command::new("apt-get").args(&opts).arg("update"),
        &cache.join("apt-update.log"),
        "apt-get update (private deb-src lists)",
    )?;
    run_logged(
        Command::new("apt-get")
            .current_dir(&download)
            .args(&opts)
            .args(["source", "--download-only", "sqlite3"]),
        &cache.join("apt-source.log"),
        "apt-get source --download-only sqlite3",
    )?;
    let orig = download.join(format!("sqlite3_{SQLITE_VERSION}.orig.tar.xz"));
    if !orig.is_file() {
        return Err(format!(
            "apt-get source did not fetch {} (is this Debian 12?)",
            orig.display()
        ));
    }
    step("unpacking the upstream tarball (Debian's patches not applied)");
    let tmp = cache.join("unpack.tmp");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    run(
        Command::new("tar")
            .arg("-xJf")
            .arg(&orig)
            .arg("-C")
            .arg(&tmp),
        "unpacking the source tarball",
    )?;
    let _ = fs::remove_dir_all(&tree);
    fs::rename(tmp.join(format!("sqlite3-{SQLITE_VERSION}")), &tree)
        .map_err(|e| format!("moving the unpacked tree into place: {e}"))?;
    let _ = fs::remove_dir_all(&tmp);
    Ok(tree)
}

/// `deb-src` twins of the machine's `deb` entries, in deb822 form, from
/// `/etc/apt/sources.list.d/*.sources` and one-line `.list` files.
fn deb_src_entries() -> Result<String, String> {
    let mut out = String::new();
    let mut files: Vec<PathBuf> = vec!["/etc/apt/sources.list".into()];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for f in files {
        let Ok(text) = fs::read_to_string(&f) else {
            continue;
        };
        let name = f.to_string_lossy();
        if name.ends_with(".sources") {
            for stanza in text.split("\n\n") {
                let is_deb = stanza.lines().any(|l| {
                    l.strip_prefix("Types:")
                        .is_some_and(|t| t.split_whitespace().any(|t| t == "deb"))
                });
                let enabled = !stanza
                    .lines()
                    .any(|l| l.trim().eq_ignore_ascii_case("Enabled: no"));
                if is_deb && enabled {
                    for l in stanza.lines() {
                        if l.starts_with("Types:") {
                            out.push_str("Types: deb-src\n");
                        } else if !l.starts_with('#') {
                            out.push_str(l);
                            out.push('\n');
                        }
                    }
                    out.push('\n');
                }
            }
        } else if name.ends_with(".list") || name.ends_with("sources.list") {
            for l in text.lines() {
                let l = l.trim();
                if let Some(rest) = l.strip_prefix("deb ") {
                    // deb [opts] URI SUITE COMPONENTS...
                    let mut words: Vec<&str> = rest.split_whitespace().collect();
                    let mut signed = None;
                    if words.first().is_some_and(|w| w.starts_with('[')) {
                        while let Some(w) = words.first().copied() {
                            words.remove(0);
                            if let Some(v) = w.trim_matches(['[', ']']).strip_prefix("signed-by=") {
                                signed = Some(v.to_owned());
                            }
                            if w.ends_with(']') {
                                break;
                            }
                        }
                    }
                    if words.len() >= 3 {
                        out.push_str(&format!(
                            "Types: deb-src\nURIs: {}\nSuites: {}\nComponents: {}\n",
                            words[0],
                            words[1],
                            words[2..].join(" ")
                        ));
                        if let Some(s) = signed {
                            out.push_str(&format!("Signed-By: {s}\n"));
                        }
                        out.push('\n');
                    }
                }
            }
        }
    }
    if out.is_empty() {
        Err("no Debian `deb` entry in /etc/apt to derive a deb-src entry from".to_owned())
    } else {
        Ok(out)
    }
}
