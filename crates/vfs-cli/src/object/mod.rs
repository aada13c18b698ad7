//! `sqlite-vfs object …`: databases kept by vfs-object in an object store
//! (`docs/object.md`). Store selection is shared by every subcommand;
//! each subcommand lives in its own file.

mod compact;

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use vfs_object::object_store::{self, ObjectStore};
use vfs_object::{ObjectOptions, ObjectVfs};

use crate::error::{CliError, Result};

pub use compact::{compact, gc};

/// `object`: which store, and what to do.
#[derive(Args, Debug)]
pub struct ObjectArgs {
    /// Where the databases are.
    #[command(flatten)]
    pub store: StoreArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: ObjectCommand,
}

/// The object store and the prefix of the databases in it.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// The store: `s3://<bucket>` (credentials, region and endpoint from
    /// the AWS_* environment variables) or `file:///<directory>` (a local
    /// directory)
    #[arg(long, global = true, value_name = "URL")]
    pub store: Option<String>,
    /// The prefix the databases were registered under
    #[arg(long, global = true, default_value = "")]
    pub prefix: String,
}

/// The `object` subcommands.
#[derive(Subcommand, Debug)]
pub enum ObjectCommand {
    /// Write a snapshot of a database's newest state, so cold opens and
    /// readers far behind start there instead of reading the whole log.
    #[command(
        after_long_help = "Example:\n  sqlite-vfs object --store s3://my-bucket --prefix dbs compact orders.db"
    )]
    Compact(CompactArgs),
    /// Delete the objects no state committed within the retention window
    /// needs (log below the newest old-enough snapshot, older snapshots).
    #[command(
        after_long_help = "Examples:\n  sqlite-vfs object --store s3://my-bucket gc orders.db\n  sqlite-vfs object --store file:///srv/objects gc orders.db --retention 0"
    )]
    Gc(GcArgs),
}

/// `object compact`.
#[derive(Args, Debug)]
pub struct CompactArgs {
    /// The database's name in the store (as SQLite opened it: `orders.db`)
    pub database: String,
    /// Then collect garbage too, with --retention
    #[arg(long)]
    pub gc: bool,
    /// Retention window in seconds for --gc
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub retention: u64,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// `object gc`.
#[derive(Args, Debug)]
pub struct GcArgs {
    /// The database's name in the store
    pub database: String,
    /// Keep every state committed within this many seconds
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub retention: u64,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// Runs an `object` subcommand.
pub fn run(a: ObjectArgs) -> Result<u8> {
    match a.command {
        ObjectCommand::Compact(c) => compact::compact_cmd(&a.store, c),
        ObjectCommand::Gc(g) => compact::gc_cmd(&a.store, g),
    }
}

/// The store a URL names.
pub fn open_store(url: &str) -> Result<Arc<dyn ObjectStore>> {
    if let Some(dir) = url.strip_prefix("file://") {
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(|e| {
            CliError::new(format!("store {url}: {e}"))
                .hint("file:// takes an existing directory, e.g. file:///srv/objects")
        })?;
        return Ok(Arc::new(fs));
    }
    if let Some(bucket) = url.strip_prefix("s3://") {
        let bucket = bucket.trim_end_matches('/');
        if bucket.is_empty() || bucket.contains('/') {
            return Err(
                CliError::new(format!("store {url}: expected s3://<bucket>"))
                    .hint("put a path inside the bucket in --prefix"),
            );
        }
        let s3 = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| CliError::new(format!("store {url}: {e}")))?;
        return Ok(Arc::new(s3));
    }
    Err(CliError::new(format!(
        "store {url:?} is not s3://<bucket> or file:///<directory>"
    )))
}

/// An `ObjectVfs` over the store `args` select (never registered with
/// SQLite: the commands call it directly).
pub fn open_vfs(args: &StoreArgs, options: ObjectOptions) -> Result<ObjectVfs> {
    let url = args.store.as_deref().ok_or_else(|| {
        CliError::new("no object store given")
            .hint("pass --store s3://<bucket> or --store file:///<directory>")
    })?;
    let store = open_store(url)?;
    ObjectVfs::new(store, &args.prefix, options)
        .map_err(|e| CliError::new(format!("store {url}: {}", e.message())))
}

/// Seconds as a retention window.
fn retention(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}
