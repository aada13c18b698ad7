//! The Rust side of `cargo xtask ext-test`: registers the extension's stacks
//! (the same `stacks.rs`, the same names) with the bundled SQLite through
//! vfs-core, then runs a script given as arguments, one step per argument,
//! printing results in the format the test's other hosts use:
//!
//! * `@open NAME URI`: open connection `NAME` (closing one of that name)
//!   and make it current; `@use NAME` switches, `@close NAME` closes.
//! * `@stacks`: print the registered names, one per line.
//! * anything else: one SQL statement on the current connection. Each row
//!   prints as its values joined by `|` (NULL as nothing, blobs as
//!   `x'..'`); a failure prints `error: <extended code>: <message>`.
//!
//! Exits non-zero only when the script itself is malformed.
#![forbid(unsafe_code)]

#[path = "../../src/stacks.rs"]
mod stacks;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

fn main() -> ExitCode {
    let mut registrar = stacks::Registrar::new(None);
    let names = match stacks::register_all(&mut registrar).and_then(|()| registrar.finish()) {
        Ok(names) => names,
        Err(e) => {
            eprintln!("vfs-ext-interop: registering the stacks failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut conns: HashMap<String, Connection> = HashMap::new();
    let mut current: Option<String> = None;
    for step in std::env::args().skip(1) {
        let words: Vec<&str> = step.split_whitespace().collect();
        match words.as_slice() {
            ["@stacks"] => names.iter().for_each(|n| println!("{n}")),
            ["@open", name, uri] => {
                conns.remove(*name);
                let flags = OpenFlags::SQLITE_OPEN_URI
                    | OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE;
                match Connection::open_with_flags(uri, flags) {
                    Ok(c) => {
                        conns.insert((*name).to_owned(), c);
                        current = Some((*name).to_owned());
                    }
                    Err(e) => println!("{}", error_line(&e)),
                }
            }
            ["@use", name] if conns.contains_key(*name) => current = Some((*name).to_owned()),
            ["@close", name] if conns.remove(*name).is_some() => {}
            [first, ..] if first.starts_with('@') => {
                eprintln!("vfs-ext-interop: bad step {step:?}");
                return ExitCode::from(2);
            }
            _ => {
                let Some(conn) = current.as_ref().and_then(|n| conns.get(n)) else {
                    eprintln!("vfs-ext-interop: no open connection for {step:?}");
                    return ExitCode::from(2);
                };
                match run(conn, &step) {
                    Ok(out) => print!("{out}"),
                    Err(e) => println!("{}", error_line(&e)),
                }
            }
        }
    }
    ExitCode::SUCCESS
}

/// Runs one statement, returning its rows as text.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<String> {
    let mut stmt = conn.prepare(sql)?;
    let columns = stmt.column_count();
    let mut out = String::new();
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let mut cells = Vec::with_capacity(columns);
        for i in 0..columns {
            cells.push(match row.get_ref(i)? {
                ValueRef::Null => String::new(),
                ValueRef::Integer(v) => v.to_string(),
                ValueRef::Real(v) => v.to_string(),
                ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                ValueRef::Blob(b) => {
                    let mut hex = String::from("x'");
                    b.iter().for_each(|byte| {
                        let _ = write!(hex, "{byte:02x}");
                    });
                    hex + "'"
                }
            });
        }
        out.push_str(&cells.join("|"));
        out.push('\n');
    }
    Ok(out)
}

fn error_line(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(code, Some(msg)) => {
            format!("error: {}: {msg}", code.extended_code)
        }
        rusqlite::Error::SqliteFailure(code, None) => {
            format!("error: {}: {code}", code.extended_code)
        }
        other => format!("error: rust: {other}"),
    }
}
