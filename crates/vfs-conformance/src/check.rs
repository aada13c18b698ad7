//! Checks every case ends with: integrity, exact rows, logical dumps.

use std::fmt::Write as _;

use rusqlite::types::Value;
use rusqlite::{Connection, params};

/// `PRAGMA integrity_check` of schema `schema`, all lines joined.
pub fn integrity(conn: &Connection, schema: &str) -> rusqlite::Result<String> {
    let mut stmt = conn.prepare(&format!("PRAGMA {schema}.integrity_check"))?;
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(lines.join("\n"))
}

/// Panics unless `PRAGMA integrity_check` of `schema` answers `ok`.
#[track_caller]
pub fn assert_integrity(conn: &Connection, schema: &str, context: &str) {
    match integrity(conn, schema) {
        Ok(s) if s == "ok" => {}
        Ok(s) => panic!("{context}: integrity_check of {schema}: {s}"),
        Err(e) => panic!("{context}: integrity_check of {schema} failed: {e}"),
    }
}

/// A short, exact rendering of a value (long blobs and texts by length and
/// a 64-bit FNV-1a hash).
pub fn render(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => format!("{f:?}"),
        Value::Text(s) if s.len() <= 64 => format!("{s:?}"),
        Value::Text(s) => format!("text:{}:{:016x}", s.len(), fnv(s.as_bytes())),
        Value::Blob(b) if b.len() <= 32 => {
            let mut s = String::from("x'");
            for byte in b {
                let _ = write!(s, "{byte:02x}");
            }
            s.push('\'');
            s
        }
        Value::Blob(b) => format!("blob:{}:{:016x}", b.len(), fnv(b)),
    }
}

/// FNV-1a, 64 bits.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Every row of a query, rendered.
pub fn rows(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(sql)?;
    let n = stmt.column_count();
    let out = stmt
        .query_map([], |r| {
            let mut line = Vec::with_capacity(n);
            for i in 0..n {
                line.push(render(&r.get::<_, Value>(i)?));
            }
            Ok(line.join("|"))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(out)
}

/// A logical dump of schema `schema`: its `sqlite_schema` entries (type,
/// name, table, SQL; no root pages) and every row of every table ordered by
/// all columns. Two databases with equal dumps hold the same data whatever
/// their page size or file layout.
pub fn dump(conn: &Connection, schema: &str) -> rusqlite::Result<Vec<String>> {
    let mut out = rows(
        conn,
        &format!(
            "SELECT type, name, tbl_name, sql FROM {schema}.sqlite_schema \
             ORDER BY type, name"
        ),
    )?;
    let tables: Vec<String> = {
        let mut stmt = conn.prepare(&format!(
            "SELECT name FROM {schema}.sqlite_schema WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_stat%' ORDER BY name"
        ))?;
        stmt.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    for t in tables {
        let ncols: i64 = conn.query_row(
            "SELECT count(*) FROM pragma_table_info(?1, ?2)",
            params![t, schema],
            |r| r.get(0),
        )?;
        let order: Vec<String> = (1..=ncols.max(1)).map(|i| i.to_string()).collect();
        out.push(format!("-- {t}"));
        out.extend(rows(
            conn,
            &format!(
                "SELECT * FROM {schema}.\"{}\" ORDER BY {}",
                t.replace('"', "\"\""),
                order.join(", ")
            ),
        )?);
    }
    Ok(out)
}

/// Compares two dumps, panicking with the first difference.
#[track_caller]
pub fn assert_same_dump(a: &[String], b: &[String], context: &str) {
    if a == b {
        return;
    }
    let i = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    panic!(
        "{context}: dumps differ at line {i} ({} vs {} lines):\n  {:?}\n  {:?}",
        a.len(),
        b.len(),
        a.get(i),
        b.get(i)
    );
}

/// The extended result code of an error (-1 when it is not an SQLite
/// error).
pub fn code(e: &rusqlite::Error) -> i32 {
    e.sqlite_error().map_or(-1, |e| e.extended_code)
}

/// Opens a database image (bytes of a database file) read-only with
/// SQLite's own VFS, through a temporary file that disappears with the
/// connection's descriptor.
pub fn open_image(image: &[u8]) -> rusqlite::Result<Connection> {
    use std::io::Write;
    let mut f = tempfile::NamedTempFile::new().map_err(io_err)?;
    f.write_all(image).map_err(io_err)?;
    f.flush().map_err(io_err)?;
    let c = Connection::open(f.path())?;
    // Keep the file until the connection has read what it needs: copy into
    // memory through the backup API, then let the file go.
    let mut mem = Connection::open_in_memory()?;
    {
        let b = rusqlite::backup::Backup::new(&c, &mut mem)?;
        b.run_to_completion(1000, std::time::Duration::ZERO, None)?;
    }
    drop(c);
    drop(f);
    Ok(mem)
}

fn io_err(e: std::io::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

/// The bytes of a database file built by SQLite's own `unix` VFS from
/// `sql` (used to feed read-only backends).
pub fn build_image(sql: &str, page_size: u32) -> rusqlite::Result<Vec<u8>> {
    let dir = tempfile::tempdir().map_err(io_err)?;
    let path = dir.path().join("image.db");
    {
        let c = Connection::open(&path)?;
        c.execute_batch(&format!(
            "PRAGMA page_size={page_size}; PRAGMA journal_mode=DELETE;"
        ))?;
        c.execute_batch(sql)?;
    }
    std::fs::read(&path).map_err(io_err)
}
