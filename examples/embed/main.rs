//! `embed`: a command-line tool that ships its SQLite catalog inside its own
//! binary and answers queries with plain rusqlite, never touching the disk.
//!
//! The catalog (the first 36 chemical elements) is built at compile time
//! from `examples/embed/catalog.sql` by `examples/embed/build.rs` and pulled
//! in with `include_bytes!`; vfs-embed serves those bytes read-only.
//!
//! ```text
//! cargo run -p examples --bin embed                      # tables and examples
//! cargo run -p examples --bin embed -- \
//!     "SELECT symbol, name, mass FROM element WHERE state = 'gas' ORDER BY mass"
//! cargo run -p examples --bin embed -- "SELECT * FROM category_summary"
//! cargo run -p examples --bin embed -- "DELETE FROM element"  # refused: read-only
//! ```
//!
//! Each argument is one SQL statement; its rows are printed as a table.
//! The exit status is 1 if any statement failed.

use std::process::ExitCode;

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use vfs_embed::{Embed, FileSet};

/// The catalog database, built from `catalog.sql` when this crate compiled.
static CATALOG: &[u8] = include_bytes!(concat!(
    env!(
        "OUT_DIR",
        "the embed example needs its build script: examples/Cargo.toml must say build = \"embed/build.rs\""
    ),
    "/catalog.db"
));

const USAGE: &str = "\
usage: embed [SQL]...

Runs each SQL statement against the catalog embedded in this binary and
prints the rows. The catalog is read-only: writes fail with SQLITE_READONLY.
With no argument, lists the catalog's tables and views.

examples:
  embed \"SELECT symbol, name, mass FROM element WHERE state = 'gas' ORDER BY mass\"
  embed \"SELECT * FROM category_summary\"
  embed \"SELECT e.name, c.description FROM element e JOIN category c ON c.name = e.category WHERE e.symbol = 'Fe'\"";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("embed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every statement; `Ok(false)` if any of them failed.
fn run(args: &[String]) -> Result<bool, Box<dyn std::error::Error>> {
    let handle = Embed::register(FileSet::new().with("catalog.db", CATALOG))?;
    let conn = Connection::open(handle.uri("catalog.db"))?;

    let mut all_ok = true;
    if args.is_empty() {
        println!("{USAGE}\n");
        let listing = "SELECT type, name,
                              (SELECT count(*) FROM pragma_table_info(s.name)) AS columns
                       FROM sqlite_schema AS s
                       WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'
                       ORDER BY type, name";
        all_ok &= query(&conn, listing);
    }
    for sql in args {
        all_ok &= query(&conn, sql);
    }

    drop(conn);
    handle.close().map_err(|(_, e)| e)?;
    Ok(all_ok)
}

/// Runs one statement and prints its rows, or the error. Returns success.
fn query(conn: &Connection, sql: &str) -> bool {
    vfs_core::clear_last_error();
    match table(conn, sql) {
        Ok((header, rows)) => {
            print_table(&header, &rows);
            true
        }
        Err(e) => {
            let shown = e.to_string();
            eprintln!("error: {shown}");
            // The VFS's own explanation, when it gave one SQLite's message
            // does not already carry.
            if let Some(detail) = vfs_core::last_error()
                && !shown.contains(&detail.message)
            {
                eprintln!("  ({})", detail.message);
            }
            false
        }
    }
}

type Rows = Vec<Vec<String>>;

fn table(conn: &Connection, sql: &str) -> rusqlite::Result<(Vec<String>, Rows)> {
    let mut stmt = conn.prepare(sql)?;
    let header: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let n = header.len();
    let mut rows = Vec::new();
    let mut cursor = stmt.query([])?;
    while let Some(row) = cursor.next()? {
        let mut cells = Vec::with_capacity(n);
        for i in 0..n {
            cells.push(show(row.get_ref(i)?));
        }
        rows.push(cells);
    }
    Ok((header, rows))
}

fn show(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".to_owned(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Blob(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("x'{hex}'")
        }
    }
}

fn print_table(header: &[String], rows: &[Vec<String>]) {
    if header.is_empty() {
        println!("(done)");
        return;
    }
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join(" | ").trim_end());
    };
    line(header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    println!("{}", rule.join("-+-"));
    for r in rows {
        line(r);
    }
    println!(
        "({} row{})",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
}
