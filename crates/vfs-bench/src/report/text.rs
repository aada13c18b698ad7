//! The printed tables.

use std::fmt;

use super::goals::{self, Check};
use super::{Clock, Report, human, human_rows, human_secs};
use crate::stats::{Estimate, MIN_ROUNDS, Verdict};

/// The reader-scaling workloads, by reader count.
pub const READERS: [(&str, usize); 3] = [
    ("readers_1_with_writer", 1),
    ("readers_2_with_writer", 2),
    ("readers_4_with_writer", 4),
];

fn ratio_text(e: &Estimate) -> String {
    if e.median < 0.01 {
        "<0.01×".to_owned()
    } else {
        format!("{:.2}×", e.median)
    }
}

impl Report {
    fn write_checks(
        &self,
        f: &mut fmt::Formatter<'_>,
        title: &str,
        checks: &[Check],
    ) -> fmt::Result {
        writeln!(f, "\n{title}")?;
        writeln!(
            f,
            "  {:<54} {:>8} {:>15} {:>8}  verdict",
            "target", "measured", "95% interval", "goal"
        )?;
        for c in checks {
            let e = c.estimate(self);
            let verdict = c.verdict(self);
            let (m, iv) = match &e {
                Some(e) => (format!("{:.3}×", e.median), e.interval_text()),
                None => ("-".to_owned(), String::new()),
            };
            writeln!(
                f,
                "  {:<54} {:>8} {:>15} {:>8}  {}",
                c.what,
                m,
                iv,
                c.goal.text(),
                verdict.text()
            )?;
        }
        Ok(())
    }

    fn write_workloads(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut footnotes: Vec<String> = Vec::new();
        for w in self.workloads() {
            writeln!(f, "\n{w}")?;
            writeln!(
                f,
                "  {:<26} {:>10} {:>8} {:>15} {:>7}  vs",
                "target", "ops/s", "cost", "95% interval", "wall"
            )?;
            for t in self.targets() {
                let Some(thr) = self.throughput(w, None, t) else {
                    continue;
                };
                let family = self.family_of(t).map(|fam| fam.baseline()).unwrap_or("?");
                let (cost, iv) = match self.cost(w, None, t) {
                    Some(_) if t == family => ("base".to_owned(), String::new()),
                    Some(e) => (ratio_text(&e), e.interval_text()),
                    None if self.is_incomparable(w, family) && t != family => {
                        let note = self
                            .incomparable
                            .iter()
                            .find(|(iw, b, _)| *iw == w && *b == family)
                            .map(|(_, b, why)| format!("n/a: {b} {why}"))
                            .unwrap_or_default();
                        if !footnotes.contains(&note) {
                            footnotes.push(note);
                        }
                        ("n/a".to_owned(), String::new())
                    }
                    None => ("-".to_owned(), String::new()),
                };
                let wall = match self.cost_by(Clock::Wall, w, None, t) {
                    Some(e) if t != family && self.uses_cpu_time(w, t) => ratio_text(&e),
                    _ => String::new(),
                };
                writeln!(
                    f,
                    "  {:<26} {:>10} {:>8} {:>15} {:>7}  {}",
                    t,
                    human(thr.median),
                    cost,
                    iv,
                    wall,
                    family
                )?;
            }
        }
        for note in footnotes {
            writeln!(f, "\n{note}")?;
        }
        Ok(())
    }

    fn write_scaling(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let readers: Vec<&str> = self
            .targets()
            .into_iter()
            .filter(|t| self.throughput(READERS[0].0, None, t).is_some())
            .collect();
        if readers.is_empty() {
            return Ok(());
        }
        writeln!(
            f,
            "\nreader scaling with one writer (reads/s; ×1-reader per round, median and 95% interval)"
        )?;
        writeln!(
            f,
            "  {:<24} {:>9} {:>9} {:>9} {:>7} {:>13} {:>7} {:>13}",
            "target", "1 reader", "2", "4", "2/1", "", "4/1", ""
        )?;
        for t in readers {
            let r = |w| self.throughput(w, None, t).map_or(0.0, |e| e.median);
            let s = |w| self.within(t, w, READERS[0].0);
            let (s2, s4) = (s(READERS[1].0), s(READERS[2].0));
            let show = |e: &Option<Estimate>| match e {
                Some(e) => (format!("{:.2}×", e.median), e.interval_text()),
                None => ("-".to_owned(), String::new()),
            };
            let ((m2, i2), (m4, i4)) = (show(&s2), show(&s4));
            writeln!(
                f,
                "  {:<24} {:>9} {:>9} {:>9} {:>7} {:>13} {:>7} {:>13}",
                t,
                human(r(READERS[0].0)),
                human(r(READERS[1].0)),
                human(r(READERS[2].0)),
                m2,
                i2,
                m4,
                i4
            )?;
        }
        Ok(())
    }

    fn write_sweep(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sizes = self.sweep_sizes();
        if sizes.is_empty() {
            return Ok(());
        }
        writeln!(
            f,
            "\nsize sweep: time per operation (median over rounds), and cost vs SQLite's own VFS with its 95% interval"
        )?;
        for w in self.sweep_workloads() {
            writeln!(f, "\n  {w}")?;
            write!(f, "  {:<22}", "target")?;
            for s in &sizes {
                write!(f, " {:>28}", format!("{} rows", human_rows(*s)))?;
            }
            writeln!(f)?;
            for t in self.targets() {
                if self.seconds_per_op(w, Some(sizes[0]), t).is_none() {
                    continue;
                }
                write!(f, "  {t:<22}")?;
                for s in &sizes {
                    let per_op = self
                        .seconds_per_op(w, Some(*s), t)
                        .map_or("-".to_owned(), |e| human_secs(e.median));
                    let cost = self.cost(w, Some(*s), t).map_or(String::new(), |e| {
                        format!("{} {}", ratio_text(&e), e.interval_text())
                    });
                    write!(f, " {:>28}", format!("{per_op} {cost}"))?;
                }
                writeln!(f)?;
            }
        }
        Ok(())
    }

    fn write_memory(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.memory.is_empty() && self.memory_note.is_none() {
            return Ok(());
        }
        writeln!(
            f,
            "\nmemory: growth of the process's resident memory per byte of database (a child process per figure)"
        )?;
        if let Some(note) = &self.memory_note {
            writeln!(f, "  {note}")?;
        }
        for m in &self.memory {
            writeln!(
                f,
                "  {:<22} {:>6} rows  database {:>10}  process +{:>10}  {:.2} bytes per database byte",
                m.store,
                human_rows(m.rows),
                human_bytes(m.db_bytes),
                human_bytes(m.rss_growth),
                m.per_db_byte()
            )?;
        }
        Ok(())
    }

    fn write_allocations(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.allocations.is_empty() {
            return Ok(());
        }
        writeln!(
            f,
            "\nRust allocations on the page I/O path (point lookups with a 10-page cache, then single-row updates)"
        )?;
        for a in &self.allocations {
            writeln!(
                f,
                "  {:<22} {:>8} allocations over {:>8} page reads and writes  ({:.3} per page I/O)",
                a.target,
                a.allocations,
                a.page_ios,
                a.per_page_io()
            )?;
        }
        Ok(())
    }
}

fn human_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else {
        format!("{:.0} KiB", b / 1024.0)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\nvfs-bench{} — {} round(s), {:.1} s\n{}\n",
            if self.quick { " --quick" } else { "" },
            self.reps,
            self.elapsed.as_secs_f64(),
            self.machine
        )?;
        if let Some(p) = &self.peers {
            writeln!(
                f,
                "peers: {p} (measured in a separate process of each round)"
            )?;
        }
        writeln!(
            f,
            "ops/s = median throughput over rounds; cost = the baseline's ops/s ÷ the target's, per round \
             (measured back to back), median over rounds, lower is better; 95% interval = bootstrap of that \
             median over rounds (none with fewer than {MIN_ROUNDS} rounds). Time is the measuring thread's CPU \
             time for in-memory single-threaded steps (what other processes take is left out), wall time for \
             disk targets and reader threads; wall = the same cost by wall-clock time, for comparison"
        )?;
        self.write_workloads(f)?;
        self.write_scaling(f)?;
        self.write_sweep(f)?;
        self.write_memory(f)?;
        self.write_allocations(f)?;
        self.write_checks(
            f,
            "targets of issue #25 (met: the whole interval within the goal; not resolved: it straddles the goal)",
            &goals::issue_25(),
        )?;
        self.write_checks(f, "standing targets", &goals::standing(self.quick))?;
        let cal = goals::calibration();
        if let Some(e) = cal.estimate(self) {
            let inside = e.bounds.is_some_and(|(lo, hi)| lo <= 1.0 && 1.0 <= hi);
            writeln!(
                f,
                "\ncalibration: {} {:.3}× {} — {}",
                cal.what,
                e.median,
                e.interval_text(),
                match (e.bounds, inside) {
                    (None, _) => "too few rounds to tell",
                    (Some(_), true) => "contains 1.00",
                    (Some(_), false) =>
                        "does NOT contain 1.00: the pairing does not cancel this run's noise",
                }
            )?;
        }
        let unresolved = goals::issue_25()
            .iter()
            .filter(|c| c.verdict(self) == Verdict::NotResolved)
            .count();
        if unresolved > 0 {
            writeln!(
                f,
                "\n{unresolved} target(s) not resolved: more rounds (--reps) or a quieter machine narrow the intervals"
            )?;
        }
        Ok(())
    }
}
