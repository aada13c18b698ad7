//! diesel, with an r2d2 pool, on an encrypted and checksummed database file.
//!
//! The stack `crypto(cksm(native))` is registered once; diesel opens it
//! with `?vfs=` in its database URL, and the key travels in the URL too
//! (`hexkey=`), so one registration serves databases with different keys.
//! The program writes with diesel's query builder from several pooled
//! connections, reads back, shows that the file holds no plaintext, and that
//! the wrong key is refused.
//!
//! Run: `cargo run --manifest-path examples/diesel/Cargo.toml`

use std::error::Error;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use vfs_cksm::Cksm;
use vfs_core::Native;
use vfs_crypto::{Crypto, Key};

diesel::table! {
    orders (id) {
        id -> Integer,
        customer -> Text,
        amount -> BigInt,
    }
}

#[derive(Insertable)]
#[diesel(table_name = orders)]
struct NewOrder<'a> {
    customer: &'a str,
    amount: i64,
}

/// Every pooled connection: WAL mode, and wait for the writer's lock.
#[derive(Debug)]
struct Setup;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Setup {
    fn on_acquire(&self, c: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        c.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;")
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

const CUSTOMER: &str = "Globex Corporation";

fn main() -> Result<(), Box<dyn Error>> {
    // Keys from URLs: `Crypto::keyless(Cksm::new(base))`.
    let reg = vfs_core::register(
        "orders-vfs",
        Crypto::keyless(Cksm::new(Native::new()?)),
        false,
    )?;
    let dir = std::env::temp_dir().join(format!("vfs-example-diesel-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("orders.db");
    let key = Key::generate();
    let url = |key: &Key| {
        format!(
            "file:{}?vfs=orders-vfs&hexkey={}",
            path.display(),
            key.to_hex().as_str()
        )
    };

    let pool = Pool::builder()
        .max_size(4)
        .connection_customizer(Box::new(Setup))
        .build(ConnectionManager::<SqliteConnection>::new(url(&key)))?;
    pool.get()?.batch_execute(
        "CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT NOT NULL, amount BIGINT NOT NULL)",
    )?;

    std::thread::scope(|s| {
        for t in 0..4_i64 {
            let pool = pool.clone();
            s.spawn(move || -> QueryResult<()> {
                let mut c = pool.get().expect("a pooled connection");
                let rows: Vec<NewOrder> = (0..25)
                    .map(|i| NewOrder {
                        customer: CUSTOMER,
                        amount: t * 100 + i,
                    })
                    .collect();
                c.immediate_transaction(|c| {
                    diesel::insert_into(orders::table).values(&rows).execute(c)
                })?;
                Ok(())
            });
        }
    });

    let mut c = pool.get()?;
    let count: i64 = orders::table.count().get_result(&mut c)?;
    let amounts: Vec<i64> = orders::table.select(orders::amount).load(&mut c)?;
    let total: i64 = amounts.iter().sum();
    let biggest: Vec<(i32, i64)> = orders::table
        .select((orders::id, orders::amount))
        .order(orders::amount.desc())
        .limit(3)
        .load(&mut c)?;
    println!("{count} orders, total {total}, biggest (id, amount) {biggest:?}");
    #[derive(QueryableByName)]
    struct Check {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    let check: Check = diesel::sql_query("PRAGMA integrity_check").get_result(&mut c)?;
    println!("integrity_check: {}", check.integrity_check);
    c.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")?;
    drop(c);
    drop(pool);

    let bytes = std::fs::read(&path)?;
    let leaked = bytes
        .windows(CUSTOMER.len())
        .any(|w| w == CUSTOMER.as_bytes());
    println!(
        "{}: {} bytes, plaintext found: {leaked}, SQLite header: {}",
        path.display(),
        bytes.len(),
        bytes.starts_with(b"SQLite format 3")
    );

    // The wrong key: SQLite says the file is not a database.
    let mut wrong = SqliteConnection::establish(&url(&Key::generate()))?;
    match orders::table.count().get_result::<i64>(&mut wrong) {
        Ok(n) => return Err(format!("the wrong key read {n} rows").into()),
        Err(e) => println!("with the wrong key: {e}"),
    }
    drop(wrong);

    reg.unregister().map_err(|(_, e)| e)?;
    std::fs::remove_dir_all(&dir)?;
    if leaked {
        return Err("plaintext reached the disk".into());
    }
    Ok(())
}
