//! Results: the printed tables, `results.json` and `chart.svg`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::json;

use crate::targets::{Family, Target};
use crate::workloads::Measure;

/// One repetition of one workload on one target.
pub struct Sample {
    target: String,
    family: Family,
    workload: &'static str,
    ops: u64,
    secs: f64,
}

impl Sample {
    pub fn new(target: &Target, workload: &'static str, m: Measure) -> Sample {
        Sample {
            target: target.name.clone(),
            family: target.family,
            workload,
            ops: m.ops,
            secs: m.elapsed.as_secs_f64(),
        }
    }

    /// A sample measured by the peer runner (`bench-peers`) in another
    /// process of the same run.
    pub fn peer(target: String, family: Family, workload: &'static str, m: Measure) -> Sample {
        Sample {
            target,
            family,
            workload,
            ops: m.ops,
            secs: m.elapsed.as_secs_f64(),
        }
    }

    fn throughput(&self) -> f64 {
        self.ops as f64 / self.secs.max(1e-9)
    }
}

/// Median, minimum and maximum throughput of a (workload, target) pair.
#[derive(Clone, Copy)]
struct Summary {
    median: f64,
    min: f64,
    max: f64,
    family: Family,
}

pub struct Report {
    quick: bool,
    reps: usize,
    machine: String,
    /// What the peer samples were measured with, when there are any.
    peers: Option<String>,
    samples: Vec<Sample>,
    elapsed: Duration,
}

impl Report {
    pub fn new(quick: bool, reps: usize, machine: String) -> Report {
        Report {
            quick,
            reps,
            machine,
            peers: None,
            samples: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }

    pub fn add(&mut self, s: Sample) {
        self.samples.push(s);
    }

    /// Records which peer library the `sqlcipher…` targets ran on.
    pub fn set_peers(&mut self, library: String) {
        self.peers = Some(library);
    }

    pub fn finish(&mut self, elapsed: Duration) {
        self.elapsed = elapsed;
    }

    /// Workloads in the order they were first measured.
    fn workloads(&self) -> Vec<&'static str> {
        let mut seen = Vec::new();
        for s in &self.samples {
            if !seen.contains(&s.workload) {
                seen.push(s.workload);
            }
        }
        seen
    }

    /// Targets in the order they were first measured.
    fn targets(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for s in &self.samples {
            if !seen.contains(&s.target.as_str()) {
                seen.push(&s.target);
            }
        }
        seen
    }

    fn summary(&self, workload: &str, target: &str) -> Option<Summary> {
        let mut v: Vec<(f64, Family)> = self
            .samples
            .iter()
            .filter(|s| s.workload == workload && s.target == target)
            .map(|s| (s.throughput(), s.family))
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        let median = if v.len() % 2 == 1 {
            v[v.len() / 2].0
        } else {
            (v[v.len() / 2 - 1].0 + v[v.len() / 2].0) / 2.0
        };
        Some(Summary {
            median,
            min: v[0].0,
            max: v[v.len() - 1].0,
            family: v[0].1,
        })
    }

    /// Cost relative to SQLite's own VFS of the same family: baseline
    /// throughput / target throughput (1.10 = 10 % slower).
    fn ratio(&self, workload: &str, target: &str) -> Option<f64> {
        let s = self.summary(workload, target)?;
        let base = self.summary(workload, s.family.baseline())?;
        Some(base.median / s.median)
    }

    /// Ratio of `target`'s median to `other`'s on the same workload.
    pub fn relative(&self, workload: &str, target: &str, other: &str) -> Option<f64> {
        Some(self.summary(workload, other)?.median / self.summary(workload, target)?.median)
    }

    pub fn to_json(&self) -> String {
        let mut results = BTreeMap::new();
        for w in self.workloads() {
            let mut per_target = serde_json::Map::new();
            for t in self.targets() {
                if let Some(s) = self.summary(w, t) {
                    per_target.insert(
                        t.to_owned(),
                        json!({
                            "median_ops_per_s": s.median,
                            "min_ops_per_s": s.min,
                            "max_ops_per_s": s.max,
                            "baseline": s.family.baseline(),
                            "cost_ratio_to_baseline": self.ratio(w, t),
                        }),
                    );
                }
            }
            results.insert(w, per_target);
        }
        let samples: Vec<_> = self
            .samples
            .iter()
            .map(|s| {
                json!({"target": s.target, "workload": s.workload, "ops": s.ops, "seconds": s.secs})
            })
            .collect();
        let doc = json!({
            "machine": self.machine,
            "peers": self.peers,
            "quick": self.quick,
            "repetitions": self.reps,
            "duration_seconds": self.elapsed.as_secs_f64(),
            "results": results,
            "samples": samples,
        });
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }

    /// A horizontal bar chart of cost ratios, one group per workload.
    pub fn to_svg(&self) -> String {
        let workloads = self.workloads();
        let targets = self.targets();
        let bar_h = 14.0;
        let label_w = 190.0;
        let chart_w = 520.0;
        let max_ratio = workloads
            .iter()
            .flat_map(|w| targets.iter().filter_map(|t| self.ratio(w, t)))
            .fold(1.0f64, f64::max)
            .min(10.0);
        let mut rows = String::new();
        let mut y = 40.0;
        for w in &workloads {
            rows.push_str(&format!(
                "<text x=\"4\" y=\"{:.0}\" font-weight=\"bold\">{}</text>\n",
                y + 10.0,
                esc(w)
            ));
            y += bar_h + 4.0;
            for t in &targets {
                let Some(r) = self.ratio(w, t) else { continue };
                let width = (r.min(10.0) / max_ratio) * chart_w;
                let color = if r <= 1.05 {
                    "#4c9f70"
                } else if r <= 1.6 {
                    "#d9a441"
                } else {
                    "#c8553d"
                };
                rows.push_str(&format!(
                    "<text x=\"14\" y=\"{:.0}\">{}</text>\
                     <rect x=\"{label_w}\" y=\"{:.0}\" width=\"{width:.1}\" height=\"{:.0}\" fill=\"{color}\"/>\
                     <text x=\"{:.1}\" y=\"{:.0}\">{r:.2}×</text>\n",
                    y + 11.0,
                    esc(t),
                    y,
                    bar_h - 2.0,
                    label_w + width + 4.0,
                    y + 11.0,
                ));
                y += bar_h;
            }
            y += 8.0;
        }
        let one_x = label_w + chart_w / max_ratio;
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" \
             font-family=\"sans-serif\" font-size=\"11\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"4\" y=\"16\" font-size=\"13\">Cost relative to SQLite's own VFS \
             (memdb for memory targets, unix for disk) — lower is better{quick}</text>\n\
             <text x=\"4\" y=\"30\" fill=\"#555\">{machine}</text>\n\
             <line x1=\"{one_x:.1}\" y1=\"36\" x2=\"{one_x:.1}\" y2=\"{h:.0}\" stroke=\"#888\" stroke-dasharray=\"3,3\"/>\n\
             {rows}</svg>\n",
            w = label_w + chart_w + 80.0,
            h = y + 10.0,
            quick = if self.quick { " (quick run)" } else { "" },
            machine = esc(&self.machine),
        )
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn human(ops: f64) -> String {
    if ops >= 1e6 {
        format!("{:.2}M", ops / 1e6)
    } else if ops >= 1e3 {
        format!("{:.1}k", ops / 1e3)
    } else {
        format!("{ops:.1}")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\nvfs-bench{} — {} repetition(s), {:.1} s\n{}\n",
            if self.quick { " --quick" } else { "" },
            self.reps,
            self.elapsed.as_secs_f64(),
            self.machine
        )?;
        if let Some(p) = &self.peers {
            writeln!(f, "peers: {p} (measured in a separate process of this run)")?;
        }
        writeln!(
            f,
            "ops/s = median throughput; spread = (max-min)/median; cost = SQLite-own ops/s ÷ target ops/s (lower is better)"
        )?;
        for w in self.workloads() {
            writeln!(f, "\n{w}")?;
            writeln!(
                f,
                "  {:<26} {:>10} {:>8} {:>8}  vs",
                "target", "ops/s", "spread", "cost"
            )?;
            for t in self.targets() {
                let Some(s) = self.summary(w, t) else {
                    continue;
                };
                let spread = (s.max - s.min) / s.median * 100.0;
                let ratio = self.ratio(w, t).map_or("-".to_owned(), |r| {
                    // SQLite's memdb readers starve behind a writer (a
                    // few reads per second), so ratios to it round to 0.
                    if r < 0.01 {
                        "<0.01×".to_owned()
                    } else {
                        format!("{r:.2}×")
                    }
                });
                writeln!(
                    f,
                    "  {:<26} {:>10} {:>7.0}% {:>8}  {}",
                    t,
                    human(s.median),
                    spread,
                    ratio,
                    s.family.baseline()
                )?;
            }
        }
        // The project's stated targets, where both sides were measured.
        let checks: [(&str, &str, &str, f64); 11] = [
            ("mixed", "memdb", "sqlite-memdb", 1.15),
            ("mixed", "cksm(memdb)", "memdb", 1.10),
            ("mixed", "crypto(memdb)", "memdb", 1.6),
            ("mixed", "crypto-ring(memdb)", "memdb", 1.6),
            ("mixed", "wrap(memdb)", "memdb", 1.00),
            ("mixed", "wrap(memdb)+stats", "memdb", 1.05),
            ("mixed", "wrap(native)+stats", "native", 1.05),
            ("mixed", "native", "sqlite-unix", 1.10),
            ("mixed", "crypto(memdb)", "sqlcipher(memdb)", 1.0),
            ("mixed", "crypto-ring(memdb)", "sqlcipher(memdb)", 1.0),
            ("mixed", "crypto(cksm(native))", "sqlcipher(unix)", 1.0),
        ];
        let mut header = false;
        for (w, t, other, limit) in checks {
            let Some(r) = self.relative(w, t, other) else {
                continue;
            };
            if !header {
                writeln!(f, "\ntargets (cost on the mixed workload)")?;
                header = true;
            }
            let verdict = if t == "wrap(memdb)" {
                // register_observed with no recorder registers memdb itself:
                // this pair measures the bench's own noise.
                "same code as memdb: the difference is run-to-run noise"
            } else if r <= limit + 0.005 {
                "met"
            } else {
                "MISSED"
            };
            writeln!(
                f,
                "  {t:<22} vs {other:<16} {r:>6.3}×  (target ≤ {limit:.2}×)  {verdict}"
            )?;
        }
        if let (Some(with), Some(without)) = (
            self.summary("readers_2_with_writer", "mvcc"),
            self.summary("readers_2_no_writer", "mvcc"),
        ) {
            let share = with.median / without.median;
            writeln!(
                f,
                "  mvcc readers with a writer running: {:.0}% of their throughput without (target ≥ 90%)  {}",
                share * 100.0,
                if share >= 0.895 { "met" } else { "MISSED" }
            )?;
        }
        let small = self.summary("mvcc_snapshot_1mb", "mvcc");
        let large = self
            .summary("mvcc_snapshot_100mb", "mvcc")
            .or_else(|| self.summary("mvcc_snapshot_10mb", "mvcc"));
        if let (Some(small), Some(large)) = (small, large) {
            let cost = small.median / large.median;
            writeln!(
                f,
                "  mvcc snapshot of the large database costs {cost:.2}× the 1 MB one (target ≤ 2×)  {}",
                if cost <= 2.0 { "met" } else { "MISSED" }
            )?;
        }
        let readers: Vec<&str> = self
            .targets()
            .into_iter()
            .filter(|t| self.summary("readers_1_with_writer", t).is_some())
            .collect();
        if !readers.is_empty() {
            writeln!(
                f,
                "\nreader scaling with one writer (reads/s and ×1-thread)"
            )?;
            writeln!(
                f,
                "  {:<26} {:>10} {:>10} {:>10} {:>7} {:>7}",
                "target", "1 reader", "2 readers", "4 readers", "2/1", "4/1"
            )?;
            for t in readers {
                let r = |w| self.summary(w, t).map_or(0.0, |s| s.median);
                let (r1, r2, r4) = (
                    r("readers_1_with_writer"),
                    r("readers_2_with_writer"),
                    r("readers_4_with_writer"),
                );
                writeln!(
                    f,
                    "  {:<26} {:>10} {:>10} {:>10} {:>6.2}× {:>6.2}×",
                    t,
                    human(r1),
                    human(r2),
                    human(r4),
                    r2 / r1.max(1e-9),
                    r4 / r1.max(1e-9)
                )?;
            }
        }
        Ok(())
    }
}
