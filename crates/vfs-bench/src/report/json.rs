//! `results.json`: every sample, and every figure with its interval.

use serde_json::{Value, json};

use super::goals::{self, Check};
use super::{Clock, Report};
use crate::stats::Estimate;

fn estimate(e: Option<Estimate>) -> Value {
    match e {
        Some(e) => json!({
            "median": e.median,
            "low": e.bounds.map(|b| b.0),
            "high": e.bounds.map(|b| b.1),
            "rounds": e.rounds,
        }),
        None => Value::Null,
    }
}

fn checks(report: &Report, list: &[Check]) -> Value {
    list.iter()
        .map(|c| {
            json!({
                "target": c.what,
                "goal": c.goal.text(),
                "estimate": estimate(c.estimate(report)),
                "verdict": c.verdict(report).text(),
            })
        })
        .collect()
}

impl Report {
    /// The whole report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        let mut results = serde_json::Map::new();
        for w in self.workloads() {
            let mut per_target = serde_json::Map::new();
            for t in self.targets() {
                let Some(thr) = self.throughput(w, None, t) else {
                    continue;
                };
                let baseline = self.family_of(t).map(|f| f.baseline());
                per_target.insert(
                    t.to_owned(),
                    json!({
                        "ops_per_s": estimate(Some(thr)),
                        "baseline": baseline,
                        "cost_ratio_to_baseline": estimate(self.cost(w, None, t)),
                        "clock": if self.uses_cpu_time(w, t) { "thread cpu" } else { "wall" },
                        "cost_ratio_to_baseline_wall_clock":
                            estimate(self.cost_by(Clock::Wall, w, None, t)),
                    }),
                );
            }
            results.insert(w.to_owned(), Value::Object(per_target));
        }
        let mut sweep = serde_json::Map::new();
        for w in self.sweep_workloads() {
            let mut per_target = serde_json::Map::new();
            for t in self.targets() {
                let points: Vec<Value> = self
                    .sweep_sizes()
                    .into_iter()
                    .filter_map(|rows| {
                        let per_op = self.seconds_per_op(w, Some(rows), t)?;
                        Some(json!({
                            "rows": rows,
                            "seconds_per_op": estimate(Some(per_op)),
                            "cost_ratio_to_baseline": estimate(self.cost(w, Some(rows), t)),
                        }))
                    })
                    .collect();
                if !points.is_empty() {
                    per_target.insert(t.to_owned(), Value::Array(points));
                }
            }
            sweep.insert(w.to_owned(), Value::Object(per_target));
        }
        let memory: Vec<Value> = self
            .memory
            .iter()
            .map(|m| {
                json!({
                    "store": m.store,
                    "rows": m.rows,
                    "db_bytes": m.db_bytes,
                    "rss_growth_bytes": m.rss_growth,
                    "bytes_per_db_byte": m.per_db_byte(),
                })
            })
            .collect();
        let allocations: Vec<Value> = self
            .allocations
            .iter()
            .map(|a| {
                json!({
                    "target": a.target,
                    "allocations": a.allocations,
                    "page_ios": a.page_ios,
                    "per_page_io": a.per_page_io(),
                })
            })
            .collect();
        let samples: Vec<Value> = self
            .samples
            .iter()
            .map(|s| {
                json!({
                    "target": s.target,
                    "workload": s.workload,
                    "rows": s.size,
                    "round": s.round,
                    "ops": s.ops,
                    "seconds": s.secs,
                    "cpu_seconds": s.cpu_secs,
                })
            })
            .collect();
        let doc = json!({
            "machine": self.machine,
            "peers": self.peers,
            "quick": self.quick,
            "rounds": self.reps,
            "duration_seconds": self.elapsed.as_secs_f64(),
            "interval": "95% percentile bootstrap of the median over paired rounds",
            "clock": "in-memory single-threaded steps: the measuring thread's CPU time; disk targets and multi-threaded workloads: wall time",
            "targets_issue_25": checks(self, &goals::issue_25()),
            "targets_standing": checks(self, &goals::standing(self.quick)),
            "calibration": checks(self, &[goals::calibration()]),
            "results": results,
            "sweep": sweep,
            "memory": memory,
            "memory_note": self.memory_note,
            "allocations": allocations,
            "samples": samples,
        });
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }
}
