//! Which b-tree each page of a database belongs to, found by walking the
//! b-trees from the schema's root pages over the pages that can still be
//! read (SQLite's file format, <https://sqlite.org/fileformat2.html>).
//!
//! A page that cannot be read is still attributed: the page that points to
//! it (a b-tree parent, the previous page of an overflow chain, a freelist
//! trunk) says whose it is; only what lies below it stays unknown.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

/// What a page is, as far as the walk could tell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Owner {
    /// The table or index (`sqlite_schema` for the schema's own b-tree),
    /// or `freelist` / `pointer map`.
    pub name: String,
    /// `table`, `index`, `freelist` or `pointer map`.
    pub kind: String,
    /// The page's role: `root`, `interior`, `leaf`, `overflow`, `trunk`,
    /// `free`, `map`, or `unread` (a b-tree page that could not be read).
    pub role: String,
}

/// Reads the plaintext of page `pgno` (1-based), `None` if it cannot be
/// read (damaged, missing).
pub type PageSource<'a> = dyn FnMut(u32) -> Option<Vec<u8>> + 'a;

/// The owners of every page the walk reached.
pub struct Map {
    /// Page number → owner.
    pub owners: BTreeMap<u32, Owner>,
    /// Whether the schema (page 1's b-tree) could be read whole.
    pub schema_complete: bool,
}

/// Walks the database whose pages `read` gives (page size `page_size`,
/// `reserve` bytes reserved per page, `pages` pages).
pub fn walk(read: &mut PageSource<'_>, page_size: usize, reserve: usize, pages: u32) -> Map {
    let mut w = Walker {
        read,
        usable: page_size.saturating_sub(reserve),
        pages,
        owners: BTreeMap::new(),
        visited: HashSet::new(),
        complete: true,
    };
    let page1 = (w.read)(1);
    w.owners.insert(1, owner("sqlite_schema", "table", "root"));
    let Some(page1) = page1 else {
        return Map {
            owners: w.owners,
            schema_complete: false,
        };
    };
    // The schema: rows of (type, name, tbl_name, rootpage, sql).
    let mut schema = Vec::new();
    w.complete = true;
    w.tree(
        1,
        Some(page1.clone()),
        "sqlite_schema",
        "table",
        &mut Some(&mut schema),
    );
    let schema_complete = w.complete;
    for row in schema {
        let (Some(Value::Text(kind)), Some(Value::Text(name)), Some(Value::Int(root))) =
            (row.first(), row.get(1), row.get(3))
        else {
            continue;
        };
        if *root > 0 && *root <= i64::from(pages) && (kind == "table" || kind == "index") {
            let root = *root as u32;
            w.owners
                .entry(root)
                .or_insert_with(|| owner(name, kind, "root"));
            w.tree(root, None, name, kind, &mut None);
        }
    }
    w.freelist(&page1);
    w.pointer_maps(&page1);
    Map {
        owners: w.owners,
        schema_complete,
    }
}

fn owner(name: &str, kind: &str, role: &str) -> Owner {
    Owner {
        name: name.to_owned(),
        kind: kind.to_owned(),
        role: role.to_owned(),
    }
}

/// A value of a schema record.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Int(i64),
    Text(String),
    Other,
}

struct Walker<'r, 'a> {
    read: &'r mut PageSource<'a>,
    usable: usize,
    pages: u32,
    owners: BTreeMap<u32, Owner>,
    visited: HashSet<u32>,
    complete: bool,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be16(b: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

/// A varint at `at`: (value, length).
fn varint(b: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for i in 0..9 {
        let byte = *b.get(at + i)?;
        if i == 8 {
            return Some((v << 8 | u64::from(byte), 9));
        }
        v = v << 7 | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

impl Walker<'_, '_> {
    fn valid(&self, pgno: u32) -> bool {
        pgno >= 1 && pgno <= self.pages
    }

    /// Claims `pgno` for `name` (first claim wins) and reads it once.
    fn claim(&mut self, pgno: u32, name: &str, kind: &str, role: &str) -> Option<Vec<u8>> {
        if !self.valid(pgno) || !self.visited.insert(pgno) {
            return None;
        }
        self.owners
            .entry(pgno)
            .or_insert_with(|| owner(name, kind, role));
        let page = (self.read)(pgno);
        if page.is_none() {
            self.complete = false;
        }
        page
    }

    /// Walks the b-tree rooted at `root`; collects its records when
    /// `rows` is given (the schema).
    fn tree(
        &mut self,
        root: u32,
        page1: Option<Vec<u8>>,
        name: &str,
        kind: &str,
        rows: &mut Option<&mut Vec<Vec<Value>>>,
    ) {
        let mut stack = vec![(root, page1)];
        while let Some((pgno, given)) = stack.pop() {
            let page = match given {
                Some(p) => {
                    self.visited.insert(pgno);
                    Some(p)
                }
                None => self.claim(pgno, name, kind, "unread"),
            };
            let Some(page) = page else { continue };
            let hdr = if pgno == 1 { 100 } else { 0 };
            let Some(&flag) = page.get(hdr) else { continue };
            let interior = matches!(flag, 2 | 5);
            if !matches!(flag, 2 | 5 | 10 | 13) {
                continue;
            }
            if pgno != root {
                let role = if interior { "interior" } else { "leaf" };
                self.owners.insert(pgno, owner(name, kind, role));
            }
            let cells = be16(&page, hdr + 3).unwrap_or(0);
            let ptrs = hdr + if interior { 12 } else { 8 };
            let mut children = Vec::new();
            if interior && let Some(right) = be32(&page, hdr + 8) {
                children.push(right);
            }
            for i in 0..cells {
                let Some(at) = be16(&page, ptrs + 2 * i) else {
                    break;
                };
                if at >= page.len() {
                    continue;
                }
                let mut p = at;
                if interior {
                    let Some(child) = be32(&page, p) else {
                        continue;
                    };
                    children.push(child);
                    p += 4;
                }
                if flag == 5 {
                    continue; // table interior: a key only
                }
                let Some((payload, n)) = varint(&page, p) else {
                    continue;
                };
                p += n;
                if flag == 13 {
                    let Some((_, n)) = varint(&page, p) else {
                        continue;
                    };
                    p += n; // the rowid
                }
                let record = self.payload(&page, p, payload as usize, flag == 13, name, kind);
                if let (Some(rows), Some(rec)) = (rows.as_deref_mut(), record) {
                    rows.push(parse_record(&rec));
                }
            }
            // Children in order (pushed reversed onto the stack).
            for child in children.into_iter().rev() {
                if self.valid(child) && !self.visited.contains(&child) {
                    self.owners
                        .entry(child)
                        .or_insert_with(|| owner(name, kind, "unread"));
                    stack.push((child, None));
                }
            }
        }
    }

    /// A cell's payload at `at` of `len` bytes; follows its overflow chain
    /// (claiming its pages). `None` when part of it cannot be read.
    fn payload(
        &mut self,
        page: &[u8],
        at: usize,
        len: usize,
        table: bool,
        name: &str,
        kind: &str,
    ) -> Option<Vec<u8>> {
        let u = self.usable;
        let x = if table {
            u - 35
        } else {
            (u - 12) * 64 / 255 - 23
        };
        if len <= x {
            return page.get(at..at + len).map(<[u8]>::to_vec);
        }
        let m = (u - 12) * 32 / 255 - 23;
        let k = m + (len - m) % (u - 4);
        let local = if k <= x { k } else { m };
        let mut out = page.get(at..at + local)?.to_vec();
        let mut next = be32(page, at + local)?;
        let mut complete = true;
        while out.len() < len && next != 0 {
            let Some(ov) = self.claim(next, name, kind, "overflow") else {
                complete = false;
                break;
            };
            let take = (len - out.len()).min(u - 4);
            out.extend_from_slice(ov.get(4..4 + take)?);
            next = be32(&ov, 0)?;
        }
        (complete && out.len() == len).then_some(out)
    }

    fn freelist(&mut self, page1: &[u8]) {
        let mut trunk = be32(page1, 32).unwrap_or(0);
        while trunk != 0 {
            let Some(page) = self.claim(trunk, "freelist", "freelist", "trunk") else {
                break;
            };
            let n = be32(&page, 4).unwrap_or(0) as usize;
            for i in 0..n.min((self.usable - 8) / 4) {
                if let Some(leaf) = be32(&page, 8 + 4 * i)
                    && self.valid(leaf)
                {
                    self.owners
                        .entry(leaf)
                        .or_insert_with(|| owner("freelist", "freelist", "free"));
                }
            }
            trunk = be32(&page, 0).unwrap_or(0);
        }
    }

    /// Auto-vacuum databases: the pointer-map pages at fixed places.
    fn pointer_maps(&mut self, page1: &[u8]) {
        if be32(page1, 52).unwrap_or(0) == 0 {
            return;
        }
        let per_map = (self.usable / 5) as u32;
        let mut p = 2u32;
        while p <= self.pages {
            self.owners
                .entry(p)
                .or_insert_with(|| owner("pointer map", "pointer map", "map"));
            p = p.saturating_add(per_map + 1);
        }
    }
}

/// The values of a record (only integers and text are decoded: the schema
/// needs no more).
fn parse_record(rec: &[u8]) -> Vec<Value> {
    let mut values = Vec::new();
    let Some((header_len, n)) = varint(rec, 0) else {
        return values;
    };
    let (mut h, mut body) = (n, header_len as usize);
    while h < header_len as usize {
        let Some((t, n)) = varint(rec, h) else { break };
        h += n;
        let (size, value) = match t {
            0 => (0, Value::Other),
            1..=6 => {
                let size = [0, 1, 2, 3, 4, 6, 8][t as usize];
                let bytes = rec.get(body..body + size).unwrap_or(&[]);
                let mut v: i64 = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                    -1
                } else {
                    0
                };
                for b in bytes {
                    v = v << 8 | i64::from(*b);
                }
                (size, Value::Int(v))
            }
            7 => (8, Value::Other),
            8 => (0, Value::Int(0)),
            9 => (0, Value::Int(1)),
            t if t >= 13 && t % 2 == 1 => {
                let size = ((t - 13) / 2) as usize;
                let text = rec
                    .get(body..body + size)
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                (size, Value::Text(text))
            }
            t if t >= 12 => (((t - 12) / 2) as usize, Value::Other),
            _ => (0, Value::Other),
        };
        values.push(value);
        body += size;
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        assert_eq!(varint(&[0x05], 0), Some((5, 1)));
        assert_eq!(varint(&[0x81, 0x00], 0), Some((128, 2)));
        assert_eq!(varint(&[0xff; 9], 0), Some((u64::MAX, 9)));
    }

    #[test]
    fn records() {
        // header: len 4, types: text(3 bytes)=19, int8=1, null=0
        let rec = [4u8, 19, 1, 0, b'a', b'b', b'c', 0xfe];
        assert_eq!(
            parse_record(&rec),
            [Value::Text("abc".into()), Value::Int(-2), Value::Other]
        );
    }

    /// Every page of a real database is attributed; the names are right.
    #[test]
    fn attributes_every_page_of_a_real_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA page_size=1024;
             CREATE TABLE big(id INTEGER PRIMARY KEY, v BLOB);
             CREATE INDEX big_v ON big(v);
             CREATE TABLE small(x);
             INSERT INTO small VALUES (1);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 300)
             INSERT INTO big(v) SELECT randomblob(200 + (i % 7) * 400) FROM n;
             DELETE FROM big WHERE id % 10 = 0;",
        )
        .unwrap();
        let expected: BTreeMap<u32, String> = conn
            .prepare("SELECT pageno, name FROM dbstat")
            .unwrap()
            .query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let pages: u32 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        let free: u32 = conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .unwrap();
        drop(conn);
        let bytes = std::fs::read(&path).unwrap();
        let mut read = |p: u32| {
            let at = (p as usize - 1) * 1024;
            bytes.get(at..at + 1024).map(<[u8]>::to_vec)
        };
        let map = walk(&mut read, 1024, 0, pages);
        assert!(map.schema_complete);
        for (p, name) in &expected {
            assert_eq!(&map.owners[p].name, name, "page {p}");
        }
        let freelist = map.owners.values().filter(|o| o.kind == "freelist").count();
        assert_eq!(freelist as u32, free);
        assert_eq!(map.owners.len() as u32, pages);

        // With page 5 unreadable, it is still attributed (by its parent).
        let owner5 = map.owners[&5].clone();
        let mut damaged = |p: u32| if p == 5 { None } else { read(p) };
        let map = walk(&mut damaged, 1024, 0, pages);
        assert_eq!(map.owners[&5].name, owner5.name);
    }
}
