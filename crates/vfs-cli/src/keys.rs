//! Where keys come from. Never from the command line itself (it shows in
//! `ps` and shell history): a file, an environment variable, or a prompt
//! on the terminal without echo.
//!
//! A database encrypted with a raw key takes 64 hexadecimal digits (or a
//! file of exactly 32 bytes); one encrypted with a passphrase takes the
//! passphrase (Argon2id). The file's header says which one it needs, so the
//! same options serve both.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use vfs_crypto::{KdfParams, Key, KeyDerivation, Secret};
use zeroize::Zeroizing;

use crate::error::{CliError, Context, Result};

/// The environment variable read for the key when no option names one.
pub const KEY_ENV: &str = "SQLITE_VFS_KEY";
/// The environment variable read for the new key of `rekey`.
pub const NEW_KEY_ENV: &str = "SQLITE_VFS_NEW_KEY";

/// The key of an existing database (or of the output of `encrypt`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct KeyArgs {
    /// Read the key from FILE: 64 hex digits (or 32 raw bytes) for a raw
    /// key, the text (one trailing newline dropped) for a passphrase
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Read the key from environment variable VAR [default: SQLITE_VFS_KEY
    /// when set; otherwise a prompt on the terminal]
    #[arg(long, value_name = "VAR", conflicts_with = "key_file")]
    pub key_env: Option<String>,
}

/// How a new key is made: its kind and, for a passphrase, its cost.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NewKeyKind {
    /// The new key is a passphrase (stretched with Argon2id), not a raw
    /// 256-bit key
    #[arg(long)]
    pub passphrase: bool,
    /// Argon2id cost of a new passphrase: m=KiB (a power of two),t=passes,p=lanes
    #[arg(long, value_name = "m=KiB,t=N,p=N", value_parser = parse_kdf, default_value = "m=65536,t=3,p=1", requires = "passphrase")]
    pub kdf: KdfParams,
    /// Generate a fresh random raw key and write it to FILE (created with
    /// mode 0600; never overwritten)
    #[arg(long, value_name = "FILE", conflicts_with = "passphrase")]
    pub generate_key: Option<PathBuf>,
}

/// The new key of `rekey`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NewKeyArgs {
    /// Read the new key from FILE (64 hex digits or 32 bytes; the text for
    /// --passphrase)
    #[arg(long, value_name = "FILE", conflicts_with = "generate_key")]
    pub new_key_file: Option<PathBuf>,
    /// Read the new key from environment variable VAR [default:
    /// SQLITE_VFS_NEW_KEY when set; otherwise a prompt, asked twice]
    #[arg(long, value_name = "VAR", conflicts_with_all = ["new_key_file", "generate_key"])]
    pub new_key_env: Option<String>,
    /// Its kind.
    #[command(flatten)]
    pub kind: NewKeyKind,
}

/// Parses `m=65536,t=3,p=1` (memory in KiB, a power of two).
pub fn parse_kdf(text: &str) -> std::result::Result<KdfParams, String> {
    if text == "default" {
        return Ok(KdfParams::DEFAULT);
    }
    let mut p = KdfParams::DEFAULT;
    for part in text.split(',') {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected name=value (m=65536,t=3,p=1)"))?;
        let n: u32 = value
            .trim()
            .parse()
            .map_err(|_| format!("{part:?}: not a number"))?;
        match name.trim() {
            "m" => {
                if !n.is_power_of_two() {
                    return Err(format!("m={n}: the memory cost must be a power of two KiB"));
                }
                p.memory_kib_log2 = n.trailing_zeros() as u8;
            }
            "t" => p.iterations = u8::try_from(n).map_err(|_| format!("t={n}: too large"))?,
            "p" => p.lanes = u8::try_from(n).map_err(|_| format!("p={n}: too large"))?,
            other => return Err(format!("{other:?}: unknown parameter (m, t or p)")),
        }
    }
    if !p.in_bounds() {
        return Err("out of bounds: m from 8 KiB to 1 GiB, t from 1 to 16, p from 1 to 8".into());
    }
    Ok(p)
}

/// Which kind of key a database needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// A raw 256-bit key.
    Raw,
    /// A passphrase.
    Passphrase,
}

impl KeyKind {
    /// The kind a database's header asks for.
    pub fn of(kdf: KeyDerivation) -> KeyKind {
        match kdf {
            KeyDerivation::RawKey => KeyKind::Raw,
            KeyDerivation::Argon2id(_) => KeyKind::Passphrase,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            KeyKind::Raw => "key (64 hex digits)",
            KeyKind::Passphrase => "passphrase",
        }
    }
}

/// A key as text or bytes → the secret of `kind`.
fn secret_from(bytes: Zeroizing<Vec<u8>>, kind: KeyKind, from: &str) -> Result<Secret> {
    match kind {
        KeyKind::Passphrase => {
            let mut text = bytes;
            for end in [&b"\n"[..], b"\r"] {
                if text.ends_with(end) {
                    let n = text.len() - 1;
                    text.truncate(n);
                }
            }
            if text.is_empty() {
                return Err(CliError::new(format!("{from}: the passphrase is empty")));
            }
            Ok(Secret::Passphrase(text))
        }
        KeyKind::Raw => {
            if bytes.len() == 32 && std::str::from_utf8(&bytes).is_err() {
                let mut raw = [0u8; 32];
                raw.copy_from_slice(&bytes);
                return Ok(Secret::Key(Key::from_bytes(raw)));
            }
            let text = std::str::from_utf8(&bytes).map_err(|_| {
                CliError::new(format!(
                    "{from}: a raw key is 64 hex digits or exactly 32 bytes"
                ))
            })?;
            Key::from_hex(text.trim()).map(Secret::Key).map_err(|e| {
                CliError::new(format!("{from}: {}", e.message())).hint(
                    "a database created with a passphrase takes the passphrase itself; \
                     one created with a raw key takes 64 hex digits",
                )
            })
        }
    }
}

fn from_file(path: &Path, kind: KeyKind) -> Result<Secret> {
    let bytes = Zeroizing::new(
        std::fs::read(path).context(|| format!("reading the key file {}", path.display()))?,
    );
    secret_from(bytes, kind, &format!("key file {}", path.display()))
}

fn from_env(var: &str, kind: KeyKind) -> Result<Option<Secret>> {
    match std::env::var_os(var) {
        None => Ok(None),
        Some(v) => {
            let bytes = Zeroizing::new(v.into_encoded_bytes());
            secret_from(bytes, kind, &format!("environment variable {var}")).map(Some)
        }
    }
}

fn prompt(label: &str, kind: KeyKind, confirm: bool) -> Result<Option<Secret>> {
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let ask = |q: &str| {
        rpassword::prompt_password(q)
            .map(|s| Zeroizing::new(s.into_bytes()))
            .context(|| "reading from the terminal".into())
    };
    let first = ask(&format!("{} for {label}: ", kind.noun()))?;
    if confirm {
        let again = ask(&format!("the same {} again: ", kind.noun()))?;
        if *again != *first {
            return Err(CliError::new("the two entries differ; nothing was changed"));
        }
    }
    secret_from(first, kind, "the terminal").map(Some)
}

fn missing(label: &str, file_opt: &str, env_opt: &str, default_env: &str) -> CliError {
    CliError::new(format!("no key given for {label}")).hint(format!(
        "give {file_opt} FILE, {env_opt} VAR or set {default_env} (keys are never taken from \
         the command line itself); on a terminal you are asked for it"
    ))
}

/// The key of an existing database (`label` names it in prompts and
/// errors), of the kind its header needs.
pub fn existing(args: &KeyArgs, kind: KeyKind, label: &str) -> Result<Secret> {
    optional(args, kind, label)?.ok_or_else(|| missing(label, "--key-file", "--key-env", KEY_ENV))
}

/// The same, `None` when no source gives one (for `verify`, which checks
/// what it can without it).
pub fn optional(args: &KeyArgs, kind: KeyKind, label: &str) -> Result<Option<Secret>> {
    if let Some(f) = &args.key_file {
        return from_file(f, kind).map(Some);
    }
    if let Some(var) = &args.key_env {
        return from_env(var, kind)?
            .map(Some)
            .ok_or_else(|| CliError::new(format!("environment variable {var} is not set")));
    }
    if let Some(s) = from_env(KEY_ENV, kind)? {
        return Ok(Some(s));
    }
    prompt(label, kind, false)
}

/// A new key: generated into a new file, read from a file or variable, or
/// asked twice on the terminal. `file`/`env` are the options that name the
/// source (those of [`NewKeyArgs`] for `rekey`, of [`KeyArgs`] for
/// `encrypt`).
pub fn new_key(
    file: Option<&Path>,
    env: Option<&str>,
    default_env: &str,
    kind: &NewKeyKind,
    label: &str,
    opt_names: (&str, &str),
) -> Result<Secret> {
    let k = if kind.passphrase {
        KeyKind::Passphrase
    } else {
        KeyKind::Raw
    };
    if let Some(path) = &kind.generate_key {
        return generate(path);
    }
    if let Some(f) = file {
        return from_file(f, k);
    }
    if let Some(var) = env {
        return from_env(var, k)?
            .ok_or_else(|| CliError::new(format!("environment variable {var} is not set")));
    }
    if let Some(s) = from_env(default_env, k)? {
        return Ok(s);
    }
    prompt(label, k, true)?.ok_or_else(|| {
        missing(label, opt_names.0, opt_names.1, default_env).hint(format!(
            "give {} FILE, {} VAR, set {default_env}, or --generate-key FILE for a fresh \
                 random key",
            opt_names.0, opt_names.1
        ))
    })
}

/// A fresh random key, written as hex to a new file readable by its owner
/// only.
fn generate(path: &Path) -> Result<Secret> {
    use std::io::Write;
    let key = Key::generate();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::new(format!(
                "{}: exists; a key file is never overwritten",
                path.display()
            ))
            .hint("choose another name for --generate-key")
        } else {
            CliError::new(format!("creating the key file {}: {e}", path.display()))
        }
    })?;
    let mut text = Zeroizing::new(key.to_hex().as_bytes().to_vec());
    text.push(b'\n');
    f.write_all(&text)
        .and_then(|()| f.sync_all())
        .context(|| format!("writing the key file {}", path.display()))?;
    Ok(Secret::Key(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kdf_spec() {
        let p = parse_kdf("m=1024,t=1,p=1").unwrap();
        assert_eq!(p, KdfParams::FAST_INSECURE);
        assert_eq!(parse_kdf("default").unwrap(), KdfParams::DEFAULT);
        assert!(parse_kdf("m=1000,t=1,p=1").is_err());
        assert!(parse_kdf("m=1024,t=99,p=1").is_err());
        assert!(parse_kdf("x=1").is_err());
    }

    #[test]
    fn key_texts() {
        let hex = "00".repeat(32);
        let s = secret_from(
            Zeroizing::new(format!("{hex}\n").into_bytes()),
            KeyKind::Raw,
            "t",
        )
        .unwrap();
        assert!(matches!(s, Secret::Key(k) if k.as_bytes() == &[0u8; 32]));
        let raw = Zeroizing::new(vec![0xffu8; 32]);
        assert!(matches!(
            secret_from(raw, KeyKind::Raw, "t").unwrap(),
            Secret::Key(_)
        ));
        let e = secret_from(Zeroizing::new(b"hunter2".to_vec()), KeyKind::Raw, "t").unwrap_err();
        assert!(e.hint.is_some());
        let s = secret_from(
            Zeroizing::new(b"a b\r\n".to_vec()),
            KeyKind::Passphrase,
            "t",
        )
        .unwrap();
        assert!(matches!(s, Secret::Passphrase(p) if *p == b"a b"));
        assert!(secret_from(Zeroizing::new(b"\n".to_vec()), KeyKind::Passphrase, "t").is_err());
    }
}
