//! `sqlite-vfs object …`: databases kept by `vfs-object` in an object
//! store. This module picks the store (`--store`) and dispatches; each
//! subcommand lives in its own file.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use serde::Serialize;
use vfs_object::{ObjectOptions, ObjectVfs};

use crate::error::{CliError, Context, Result};
use crate::ui::{Ui, out};

pub mod cost;
pub mod restore;
pub mod versions;

/// `object`.
#[derive(Args, Debug)]
pub struct ObjectArgs {
    /// The subcommand.
    #[command(subcommand)]
    pub command: ObjectCommand,
}

/// The `object` subcommands.
#[derive(Subcommand, Debug)]
pub enum ObjectCommand {
    /// List a database's retained versions: LSN, commit time, size, object
    /// bytes, pages changed, void commits.
    #[command(
        after_long_help = "Examples:\n  sqlite-vfs object versions orders.db --store s3://bucket/dbs\n  sqlite-vfs object versions orders.db --store file:///srv/objects --json"
    )]
    Versions(versions::VersionsArgs),
    /// Write a past version as a new database in the store (--to) or as a
    /// plain SQLite file (--out).
    #[command(
        after_long_help = "Examples:\n  sqlite-vfs object restore orders.db --lsn 41 --out orders-41.db --store s3://bucket/dbs\n  sqlite-vfs object restore orders.db --asof 2026-12-04T09:30:00Z --to orders-before.db --store s3://bucket/dbs"
    )]
    Restore(restore::RestoreArgs),
    /// What a database holds in the store: objects and bytes by kind (log,
    /// snapshots, leases) and in total.
    #[command(
        after_long_help = "Example:\n  sqlite-vfs object cost orders.db --store s3://bucket/dbs --json"
    )]
    Cost(cost::CostArgs),
}

/// Which store, shared by every `object` subcommand.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// The store and prefix the databases live under: s3://BUCKET[/PREFIX]
    /// (endpoint, region and credentials from the AWS_* environment
    /// variables, as AmazonS3Builder::from_env reads them) or
    /// file:///DIRECTORY (object_store's local-file store rooted there)
    #[arg(long, value_name = "URL")]
    pub store: String,
}

/// A store URL, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `s3://bucket/prefix`.
    S3 {
        /// The bucket.
        bucket: String,
        /// The prefix inside it (may be empty).
        prefix: String,
    },
    /// `file:///dir`.
    Local {
        /// The root directory.
        dir: PathBuf,
    },
}

impl StoreUrl {
    /// Parses `s3://bucket[/prefix]` or `file:///dir`.
    ///
    /// ```
    /// use vfs_cli::object::StoreUrl;
    /// assert_eq!(
    ///     StoreUrl::parse("s3://b/dbs/prod").unwrap(),
    ///     StoreUrl::S3 { bucket: "b".into(), prefix: "dbs/prod".into() }
    /// );
    /// assert_eq!(
    ///     StoreUrl::parse("file:///srv/objects").unwrap(),
    ///     StoreUrl::Local { dir: "/srv/objects".into() }
    /// );
    /// assert!(StoreUrl::parse("http://x").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<StoreUrl> {
        let hint = "use s3://BUCKET[/PREFIX] or file:///DIRECTORY";
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(CliError::new(format!("--store {url}: no bucket")).hint(hint));
            }
            return Ok(StoreUrl::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            });
        }
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(CliError::new(format!(
                    "--store {url}: a file store needs an absolute directory (file:///DIR)"
                ))
                .hint(hint));
            }
            return Ok(StoreUrl::Local { dir: path.into() });
        }
        Err(CliError::new(format!("--store {url}: not a store URL this tool knows")).hint(hint))
    }
}

/// The `ObjectVfs` over the store `args` names.
pub fn open_store(args: &StoreArgs) -> Result<ObjectVfs> {
    let (store, prefix): (Arc<dyn ObjectStore>, String) = match StoreUrl::parse(&args.store)? {
        StoreUrl::S3 { bucket, prefix } => {
            let s3 = AmazonS3Builder::from_env()
                .with_bucket_name(&bucket)
                .build()
                .map_err(|e| CliError::new(format!("--store {}: {e}", args.store)))?;
            (Arc::new(s3), prefix)
        }
        StoreUrl::Local { dir } => {
            let fs = LocalFileSystem::new_with_prefix(&dir).map_err(|e| {
                CliError::new(format!("--store {}: {e}", args.store))
                    .hint("the directory must exist")
            })?;
            (Arc::new(fs), String::new())
        }
    };
    ObjectVfs::new(store, &prefix, ObjectOptions::default())
        .context(|| format!("--store {}", args.store))
}

/// Runs an `object` subcommand; returns the exit status.
pub fn run(args: ObjectArgs, ui: &Ui) -> Result<u8> {
    match args.command {
        ObjectCommand::Versions(a) => versions::run(a),
        ObjectCommand::Restore(a) => restore::run(a, ui),
        ObjectCommand::Cost(a) => cost::run(a),
    }
}

/// Prints `value` as pretty JSON.
pub(crate) fn print_json(value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::new(format!("writing JSON: {e}")))?;
    out(text);
    Ok(())
}

/// `t` as RFC 3339 in UTC with milliseconds.
pub(crate) fn rfc3339(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
