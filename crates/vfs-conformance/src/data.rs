//! The standard data set of the cases, and a model of what it should hold.

use std::collections::BTreeMap;

use rusqlite::types::Value;
use rusqlite::{Connection, params};

use crate::check::render;

/// The standard table. Rows have an integer key, a unique text key, a blob
/// whose size varies from empty to overflow-chain sizes, and a real.
pub const KV_SCHEMA: &str =
    "CREATE TABLE kv(id INTEGER PRIMARY KEY, k TEXT NOT NULL UNIQUE, v BLOB, n REAL)";

/// The text key of row `id`.
pub fn kv_key(id: i64) -> String {
    format!("key-{id:06}")
}

/// The blob of row `id`: 0 to 1,999 bytes, plus 9,000 more every 17th row
/// (an overflow chain at any page size).
pub fn kv_blob(id: i64) -> Vec<u8> {
    let len = (id * 97).rem_euclid(2000) as usize + if id % 17 == 0 { 9000 } else { 0 };
    (0..len)
        .map(|j| ((id as usize).wrapping_mul(31).wrapping_add(j * 7) % 251) as u8)
        .collect()
}

/// The real of row `id` when first inserted.
pub fn kv_real(id: i64) -> f64 {
    id as f64 * 0.25
}

/// Inserts rows `ids` into `schema.kv`.
pub fn kv_insert(
    conn: &Connection,
    schema: &str,
    ids: impl IntoIterator<Item = i64>,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT INTO {schema}.kv(id, k, v, n) VALUES (?1, ?2, ?3, ?4)"
    ))?;
    for id in ids {
        stmt.execute(params![id, kv_key(id), kv_blob(id), kv_real(id)])?;
    }
    Ok(())
}

/// What `kv` should hold: a model updated alongside the SQL.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KvModel {
    rows: BTreeMap<i64, f64>,
}

impl KvModel {
    /// An empty table.
    pub fn new() -> KvModel {
        KvModel::default()
    }

    /// Rows `ids` inserted.
    pub fn insert(&mut self, ids: impl IntoIterator<Item = i64>) {
        for id in ids {
            self.rows.insert(id, kv_real(id));
        }
    }

    /// `UPDATE kv SET n = n + delta WHERE <pred(id)>`.
    pub fn bump(&mut self, pred: impl Fn(i64) -> bool, delta: f64) {
        for (id, n) in self.rows.iter_mut() {
            if pred(*id) {
                *n += delta;
            }
        }
    }

    /// `UPDATE kv SET n = f(n) WHERE <pred(id)>`.
    pub fn update(&mut self, pred: impl Fn(i64) -> bool, f: impl Fn(f64) -> f64) {
        for (id, n) in self.rows.iter_mut() {
            if pred(*id) {
                *n = f(*n);
            }
        }
    }

    /// `DELETE FROM kv WHERE <pred(id)>`.
    pub fn delete(&mut self, pred: impl Fn(i64) -> bool) {
        self.rows.retain(|id, _| !pred(*id));
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows as [`KV_SELECT`] renders them.
    pub fn expected(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|(id, n)| {
                [
                    Value::Integer(*id),
                    Value::Text(kv_key(*id)),
                    Value::Blob(kv_blob(*id)),
                    Value::Real(*n),
                ]
                .iter()
                .map(render)
                .collect::<Vec<_>>()
                .join("|")
            })
            .collect()
    }
}

/// The query whose rows [`KvModel::expected`] predicts (schema `main`).
pub const KV_SELECT: &str = "SELECT id, k, v, n FROM kv ORDER BY id";

/// Panics unless `schema.kv` holds exactly what `model` says.
#[track_caller]
pub fn assert_kv(conn: &Connection, schema: &str, model: &KvModel, context: &str) {
    let got = crate::check::rows(
        conn,
        &format!("SELECT id, k, v, n FROM {schema}.kv ORDER BY id"),
    )
    .unwrap_or_else(|e| panic!("{context}: reading {schema}.kv: {e}"));
    let want = model.expected();
    if got != want {
        let i = got
            .iter()
            .zip(&want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "{context}: {schema}.kv has {} rows, expected {}; first difference at {i}: {:?} vs {:?}",
            got.len(),
            want.len(),
            got.get(i),
            want.get(i)
        );
    }
}
