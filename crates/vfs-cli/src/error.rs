//! The tool's error: a message that says what went wrong and what to do,
//! and the exit status it maps to.

use std::fmt;

/// Exit status: success (for `verify`: every page checked and clean).
pub const EXIT_OK: u8 = 0;
/// Exit status of `verify` when it found damage.
pub const EXIT_DAMAGED: u8 = 1;
/// Exit status of every command that could not do what was asked (for
/// `verify`: could not check), and of command-line errors.
pub const EXIT_FAILED: u8 = 2;

/// What went wrong, for a person: the message names the file and the
/// problem, and the hint (when there is one) what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// What went wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl CliError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            hint: None,
        }
    }

    /// The same error with a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> CliError {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CliError {}

/// The tool's result type.
pub type Result<T> = std::result::Result<T, CliError>;

/// Adds what was being done to an error from a lower layer.
pub trait Context<T> {
    /// On error, prefixes the message with `what` (`"reading app.db: …"`).
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| CliError::new(format!("{}: {e}", what())))
    }
}

impl<T> Context<T> for std::result::Result<T, vfs_core::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| CliError::new(format!("{}: {}", what(), e.message())))
    }
}

impl<T> Context<T> for std::result::Result<T, rusqlite::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| CliError::new(format!("{}: {}", what(), sql_message(&e))))
    }
}

impl<T> Context<T> for Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| CliError {
            message: format!("{}: {}", what(), e.message),
            hint: e.hint,
        })
    }
}

/// SQLite's message for `e`, with the VFS layer's own reason when SQLite
/// only says "disk I/O error" or "file is not a database" (the layers keep
/// the precise reason in `vfs_core::last_error`).
pub fn sql_message(e: &rusqlite::Error) -> String {
    let base = match e {
        rusqlite::Error::SqliteFailure(f, Some(m)) => format!("{m} (code {})", f.extended_code),
        rusqlite::Error::SqliteFailure(f, None) => {
            format!("{} (code {})", f, f.extended_code)
        }
        other => other.to_string(),
    };
    match (e.sqlite_error(), vfs_core::last_error()) {
        (Some(f), Some(layer))
            if layer.code == f.extended_code || layer.code & 0xff == f.code as i32 =>
        {
            format!("{base}: {}", layer.message)
        }
        _ => base,
    }
}
