//! `cargo xtask moto-install`: moto (a real S3-protocol server, from PyPI)
//! in a virtualenv under `target/moto/venv`, for vfs-object's tests. The
//! tests start it on 127.0.0.1 themselves; this only installs it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The pinned version (`moto[server]`). Checked: conditional creates
/// (`If-None-Match: *`) answer 412 to all but one of many concurrent
/// writers, range GETs past the end are clamped.
pub const MOTO_VERSION: &str = "5.2.5";

/// Where the virtualenv goes: `<target>/moto/venv`.
pub fn venv_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => std::env::current_dir()
            .map(|cwd| cwd.join(&t))
            .unwrap_or_else(|_| PathBuf::from(t)),
        None => root.join("target"),
    };
    target.join("moto").join("venv")
}

fn installed_version(python: &Path) -> Option<String> {
    let out = Command::new(python)
        .args(["-c", "import moto, boto3; print(moto.__version__)"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

pub fn run(args: &[String]) -> ExitCode {
    if let Some(a) = args.first() {
        eprintln!("xtask moto-install: unknown argument {a:?}");
        return ExitCode::from(2);
    }
    match install() {
        Ok(python) => {
            println!("{}", python.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask moto-install: {e}");
            ExitCode::FAILURE
        }
    }
}

fn install() -> Result<PathBuf, String> {
    let venv = venv_dir();
    let python = venv.join("bin").join("python");
    if installed_version(&python).as_deref() == Some(MOTO_VERSION) {
        eprintln!(
            "xtask moto-install: moto {MOTO_VERSION} already in {}",
            venv.display()
        );
        return Ok(python);
    }
    let started = std::time::Instant::now();
    let python3 = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let status = Command::new(&python3)
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .status()
        .map_err(|e| format!("cannot run {python3} (Python 3.10 or newer is needed): {e}"))?;
    if !status.success() {
        return Err(format!(
            "`{python3} -m venv {}` failed ({status}); on Debian/Ubuntu install python3-venv",
            venv.display()
        ));
    }
    let spec = format!("moto[server]=={MOTO_VERSION}");
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg(&spec)
        .status()
        .map_err(|e| format!("cannot run pip: {e}"))?;
    if !status.success() {
        return Err(format!(
            "`pip install {spec}` failed ({status}); PyPI must be reachable"
        ));
    }
    match installed_version(&python) {
        Some(v) if v == MOTO_VERSION => {
            eprintln!(
                "xtask moto-install: moto {v} installed in {} ({:.0} s)",
                venv.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(python)
        }
        other => Err(format!("after installing, `import moto` reports {other:?}")),
    }
}
