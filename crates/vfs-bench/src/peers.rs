//! The peer runner (`bench-peers`, SQLCipher): another process, since its
//! SQLite cannot share one with ours. It runs once per round, and its
//! samples join the round's.

use std::path::Path;
use std::time::Duration;

use crate::report::{Report, Sample};
use crate::rounds::Res;
use crate::targets::Family;
use crate::workloads::Measure;

/// Every workload name a peer file may use.
const WORKLOADS: [&str; 12] = [
    "bulk_insert",
    "small_txns",
    "point_rowid",
    "point_index",
    "range_scan",
    "update",
    "order_by_spill",
    "join",
    "delete",
    "mixed",
    "small_txns_sync_normal",
    "small_txns_sync_full",
];

/// Runs one repetition of the peer runner, writing its samples to `out`.
pub fn run(bin: &Path, quick: bool, out: &Path) -> Res<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut cmd = std::process::Command::new(bin);
    cmd.args(["--reps", "1", "--out"]).arg(out);
    if quick {
        cmd.arg("--quick");
    }
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run the peer runner {}: {e}", bin.display()))?;
    if !output.status.success() {
        return Err(format!(
            "the peer runner {} failed ({}): {}",
            bin.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    Ok(())
}

/// Folds the samples `bench-peers` wrote into the report, as round `round`.
pub fn add_samples(report: &mut Report, path: &Path, round: usize) -> Res<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read peer samples {}: {e}", path.display()))?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("peer samples {} are not JSON: {e}", path.display()))?;
    let bad = |what: &str| format!("peer samples {}: {what}", path.display());
    let samples = doc["samples"]
        .as_array()
        .ok_or_else(|| bad("no \"samples\" array"))?;
    for s in samples {
        let target = s["target"]
            .as_str()
            .ok_or_else(|| bad("a sample has no target"))?;
        let family = match s["family"].as_str() {
            Some("memory") => Family::Memory,
            Some("disk") => Family::Disk,
            other => return Err(bad(&format!("unknown family {other:?}")).into()),
        };
        let name = s["workload"].as_str().unwrap_or("");
        let workload = WORKLOADS
            .iter()
            .find(|w| **w == name)
            .ok_or_else(|| bad(&format!("unknown workload {name:?}")))?;
        let (Some(ops), Some(secs)) = (s["ops"].as_u64(), s["seconds"].as_f64()) else {
            return Err(bad("a sample lacks ops or seconds").into());
        };
        let m = Measure {
            ops,
            elapsed: Duration::from_secs_f64(secs.max(0.0)),
            cpu: s["cpu_seconds"]
                .as_f64()
                .map(|c| Duration::from_secs_f64(c.max(0.0))),
        };
        report.add(Sample::named(target.to_owned(), family, workload, round, m));
    }
    report.set_peers(
        doc["library"]
            .as_str()
            .unwrap_or("an unnamed peer library")
            .to_owned(),
    );
    Ok(())
}
