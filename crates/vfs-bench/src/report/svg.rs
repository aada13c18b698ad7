//! The charts: `chart.svg` (cost ratios with their intervals, and reader
//! scaling as plots of its own) and `curves.svg` (the size sweep and
//! memory per database byte).

use std::fmt::Write as _;

use super::text::READERS;
use super::{Report, human, human_rows, human_secs};

const PALETTE: [&str; 20] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
    "#e6550d", "#31a354", "#756bb1", "#636363",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A point of a [`Series`]: `(x, y, interval of y)`.
pub type Point = (f64, f64, Option<(f64, f64)>);

/// One line of a [`Panel`].
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub points: Vec<Point>,
}

/// A line chart: log or linear axes, one line per series, interval bars,
/// a legend underneath.
pub struct Panel {
    pub title: String,
    pub x_ticks: Vec<(f64, String)>,
    pub y_log: bool,
    pub y_label: fn(f64) -> String,
    pub series: Vec<Series>,
}

/// Legend rows under a panel of width `w`.
fn legend_rows(series: &[Series], w: f64) -> usize {
    let per_row = ((w / 150.0).floor() as usize).max(1);
    series.len().div_ceil(per_row)
}

impl Panel {
    /// Height the panel takes at width `w` with plot height `h`.
    pub fn height(&self, w: f64, h: f64) -> f64 {
        h + 50.0 + 14.0 * legend_rows(&self.series, w) as f64
    }

    /// The panel's SVG with its top-left corner at `(x0, y0)`, plot area
    /// `w` × `h`.
    pub fn render(&self, x0: f64, y0: f64, w: f64, h: f64) -> String {
        let mut out = String::new();
        let ys: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| {
                s.points.iter().flat_map(|(_, y, b)| {
                    let mut v = vec![*y];
                    if let Some((lo, hi)) = b {
                        v.extend([*lo, *hi]);
                    }
                    v
                })
            })
            .filter(|y| y.is_finite() && (!self.y_log || *y > 0.0))
            .collect();
        let (mut lo, mut hi) = ys
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
                (a.min(*y), b.max(*y))
            });
        if !lo.is_finite() {
            (lo, hi) = (1.0, 10.0);
        }
        let ticks: Vec<f64>;
        if self.y_log {
            lo = 10f64.powf(lo.log10().floor());
            hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
            let mut t = Vec::new();
            let mut v = lo;
            while v <= hi * 1.0001 {
                t.push(v);
                v *= 10.0;
            }
            if t.len() <= 2 {
                let base = t.clone();
                t = base.iter().flat_map(|b| [*b, b * 2.0, b * 5.0]).collect();
                t.retain(|v| *v <= hi * 1.0001);
            }
            ticks = t;
        } else {
            lo = 0.0;
            hi = nice_ceiling(hi.max(1e-12));
            ticks = (0..=4).map(|i| hi * f64::from(i) / 4.0).collect();
        }
        let (xmin, xmax) = self
            .x_ticks
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (x, _)| {
                (a.min(*x), b.max(*x))
            });
        let left = x0 + 64.0;
        let plot_w = w - 74.0;
        let top = y0 + 22.0;
        let px = |x: f64| {
            if xmax > xmin {
                left + 40.0 + (x - xmin) / (xmax - xmin) * (plot_w - 80.0)
            } else {
                left + plot_w / 2.0
            }
        };
        let py = |y: f64| {
            let f = if self.y_log {
                (y.max(lo).log10() - lo.log10()) / (hi.log10() - lo.log10())
            } else {
                (y - lo) / (hi - lo)
            };
            top + h - f.clamp(0.0, 1.0) * h
        };
        let _ = writeln!(
            out,
            "<text x=\"{x0:.0}\" y=\"{:.0}\" font-weight=\"bold\">{}</text>",
            y0 + 12.0,
            esc(&self.title)
        );
        let _ = writeln!(
            out,
            "<rect x=\"{left:.1}\" y=\"{top:.1}\" width=\"{plot_w:.1}\" height=\"{h:.1}\" fill=\"none\" stroke=\"#999\"/>"
        );
        for t in &ticks {
            let y = py(*t);
            let _ = writeln!(
                out,
                "<line x1=\"{left:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">{}</text>",
                left + plot_w,
                left - 4.0,
                y + 4.0,
                esc(&(self.y_label)(*t))
            );
        }
        for (x, label) in &self.x_ticks {
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
                px(*x),
                top + h + 14.0,
                esc(label)
            );
        }
        for s in &self.series {
            let pts: Vec<String> = s
                .points
                .iter()
                .filter(|(_, y, _)| y.is_finite() && (!self.y_log || *y > 0.0))
                .map(|(x, y, _)| format!("{:.1},{:.1}", px(*x), py(*y)))
                .collect();
            let _ = writeln!(
                out,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"/>",
                pts.join(" "),
                s.color
            );
            for (x, y, band) in &s.points {
                if !y.is_finite() || (self.y_log && *y <= 0.0) {
                    continue;
                }
                if let Some((blo, bhi)) = band {
                    let _ = write!(
                        out,
                        "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"{3}\" stroke-opacity=\"0.6\"/>",
                        px(*x),
                        py(*blo),
                        py(*bhi),
                        s.color
                    );
                }
                let _ = writeln!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{}\"/>",
                    px(*x),
                    py(*y),
                    s.color
                );
            }
        }
        let per_row = ((w / 150.0).floor() as usize).max(1);
        for (i, s) in self.series.iter().enumerate() {
            let lx = x0 + 150.0 * (i % per_row) as f64;
            let ly = top + h + 30.0 + 14.0 * (i / per_row) as f64;
            let _ = writeln!(
                out,
                "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"10\" height=\"3\" fill=\"{}\"/>\
                 <text x=\"{:.1}\" y=\"{ly:.1}\">{}</text>",
                ly - 4.0,
                s.color,
                lx + 14.0,
                esc(&s.name)
            );
        }
        out
    }
}

/// 1, 2 or 5 times a power of ten, at least `v`.
fn nice_ceiling(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|c| *c >= v * 0.9999)
        .unwrap_or(10.0 * p)
}

fn document(width: f64, height: f64, body: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{body}</svg>\n"
    )
}

impl Report {
    fn color(&self, target: &str) -> &'static str {
        let i = self
            .targets()
            .iter()
            .position(|t| *t == target)
            .unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    }

    /// Reader scaling: reads/s against reader threads, one panel per
    /// family, on a log scale (SQLite's memdb readers, which wait for the
    /// writer, stay visible beside a million reads per second).
    fn scaling_panels(&self) -> Vec<Panel> {
        let mut panels = Vec::new();
        for (family, title) in [
            (
                "sqlite-memdb",
                "reader scaling in memory: reads/s with one writer",
            ),
            (
                "sqlite-unix",
                "reader scaling on disk: reads/s with one writer",
            ),
        ] {
            let series: Vec<Series> = self
                .targets()
                .into_iter()
                .filter(|t| self.family_of(t).map(|f| f.baseline()) == Some(family))
                .filter_map(|t| {
                    let points: Vec<_> = READERS
                        .iter()
                        .filter_map(|(w, n)| {
                            let e = self.throughput(w, None, t)?;
                            Some(((*n as f64).log2(), e.median, e.bounds))
                        })
                        .collect();
                    (!points.is_empty()).then(|| Series {
                        name: t.to_owned(),
                        color: self.color(t),
                        points,
                    })
                })
                .collect();
            if series.is_empty() {
                continue;
            }
            panels.push(Panel {
                title: title.to_owned(),
                x_ticks: READERS
                    .iter()
                    .map(|(_, n)| ((*n as f64).log2(), format!("{n} reader(s)")))
                    .collect(),
                y_log: true,
                y_label: human,
                series,
            });
        }
        panels
    }

    /// Cost ratios as bars with their 95 % intervals, one group per
    /// workload; workloads whose baseline cannot run them get the scaling
    /// plots underneath instead of ratios.
    pub fn to_svg(&self) -> String {
        let bar_h = 14.0;
        let label_w = 190.0;
        let chart_w = 520.0;
        let cap = 10.0;
        let mut groups = Vec::new();
        let mut max_ratio = 1.0f64;
        for w in self.workloads() {
            let bars: Vec<(&str, crate::stats::Estimate)> = self
                .targets()
                .into_iter()
                .filter(|t| self.family_of(t).is_some_and(|f| f.baseline() != *t))
                .filter_map(|t| self.cost(w, None, t).map(|e| (t, e)))
                .collect();
            // Targets left without a ratio because their baseline cannot
            // run this workload: the scaling plots show them.
            let skipped = self.targets().into_iter().any(|t| {
                self.throughput(w, None, t).is_some()
                    && self
                        .family_of(t)
                        .is_some_and(|f| self.is_incomparable(w, f.baseline()))
            });
            if bars.is_empty() && !skipped {
                continue;
            }
            for (_, e) in &bars {
                max_ratio = max_ratio.max(e.bounds.map_or(e.median, |b| b.1));
            }
            groups.push((w, bars, skipped));
        }
        let max_ratio = max_ratio.min(cap);
        let scale = |r: f64| r.min(cap) / max_ratio * chart_w;
        let mut body = String::new();
        let mut y = 44.0;
        for (w, bars, skipped) in &groups {
            let _ = writeln!(
                body,
                "<text x=\"4\" y=\"{:.0}\" font-weight=\"bold\">{}</text>",
                y + 10.0,
                esc(w)
            );
            y += bar_h + 4.0;
            for (t, e) in bars {
                let color = if e.median <= 1.05 {
                    "#4c9f70"
                } else if e.median <= 1.6 {
                    "#d9a441"
                } else {
                    "#c8553d"
                };
                let width = scale(e.median);
                let mut label = format!("{:.2}×", e.median);
                if let Some((lo, hi)) = e.bounds {
                    let _ = write!(
                        body,
                        "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>",
                        label_w + scale(lo),
                        y + 6.0,
                        label_w + scale(hi),
                        y + 6.0
                    );
                    label = format!("{label} [{lo:.2}–{hi:.2}]");
                }
                let end = label_w + scale(e.bounds.map_or(e.median, |b| b.1)).max(width);
                let _ = writeln!(
                    body,
                    "<text x=\"14\" y=\"{:.0}\">{}</text>\
                     <rect x=\"{label_w}\" y=\"{:.0}\" width=\"{width:.1}\" height=\"{:.0}\" fill=\"{color}\" fill-opacity=\"0.8\"/>\
                     <text x=\"{:.1}\" y=\"{:.0}\">{}</text>",
                    y + 11.0,
                    esc(t),
                    y,
                    bar_h - 2.0,
                    end + 4.0,
                    y + 11.0,
                    esc(&label)
                );
                y += bar_h;
            }
            if *skipped {
                let _ = writeln!(
                    body,
                    "<text x=\"14\" y=\"{:.0}\" fill=\"#555\">in-memory targets: no ratio (SQLite's memdb has no WAL; its readers wait for the writer): see the scaling plots below</text>",
                    y + 11.0
                );
                y += bar_h;
            }
            y += 8.0;
        }
        let one_x = label_w + scale(1.0);
        let _ = writeln!(
            body,
            "<line x1=\"{one_x:.1}\" y1=\"40\" x2=\"{one_x:.1}\" y2=\"{y:.0}\" stroke=\"#888\" stroke-dasharray=\"3,3\"/>"
        );
        let width = label_w + chart_w + 200.0;
        for p in self.scaling_panels() {
            let h = 200.0;
            body.push_str(&p.render(4.0, y + 10.0, width - 10.0, h));
            y += p.height(width - 10.0, h) + 20.0;
        }
        let header = format!(
            "<text x=\"4\" y=\"16\" font-size=\"13\">Cost relative to SQLite's own VFS (memdb for memory \
             targets, unix for disk), median over rounds with 95% interval — lower is better{}</text>\n\
             <text x=\"4\" y=\"30\" fill=\"#555\">{}</text>\n",
            if self.quick { " (quick run)" } else { "" },
            esc(&self.machine)
        );
        document(width, y + 10.0, &(header + &body))
    }

    /// The size sweep (time per operation against rows, one panel per
    /// workload) and memory per database byte.
    pub fn curves_svg(&self) -> Option<String> {
        let sizes = self.sweep_sizes();
        if sizes.is_empty() && self.memory.is_empty() {
            return None;
        }
        let x_ticks: Vec<(f64, String)> = sizes
            .iter()
            .map(|s| ((*s as f64).log10(), format!("{} rows", human_rows(*s))))
            .collect();
        let mut panels = Vec::new();
        for w in self.sweep_workloads() {
            let series: Vec<Series> = self
                .targets()
                .into_iter()
                .filter_map(|t| {
                    let points: Vec<_> = sizes
                        .iter()
                        .filter_map(|s| {
                            let e = self.seconds_per_op(w, Some(*s), t)?;
                            Some(((*s as f64).log10(), e.median, e.bounds))
                        })
                        .collect();
                    (!points.is_empty()).then(|| Series {
                        name: t.to_owned(),
                        color: self.color(t),
                        points,
                    })
                })
                .collect();
            panels.push(Panel {
                title: format!("{w}: time per operation"),
                x_ticks: x_ticks.clone(),
                y_log: true,
                y_label: human_secs,
                series,
            });
        }
        if !self.memory.is_empty() {
            let mut stores: Vec<&str> = Vec::new();
            for m in &self.memory {
                if !stores.contains(&m.store.as_str()) {
                    stores.push(&m.store);
                }
            }
            let colors = ["#2ca02c", "#9467bd", "#e377c2", "#17becf"];
            let series = stores
                .iter()
                .enumerate()
                .map(|(i, store)| Series {
                    name: (*store).to_owned(),
                    color: colors[i % colors.len()],
                    points: self
                        .memory
                        .iter()
                        .filter(|m| m.store == *store)
                        .map(|m| ((m.rows as f64).log10(), m.per_db_byte(), None))
                        .collect(),
                })
                .collect();
            let mem_ticks: Vec<(f64, String)> = {
                let mut rows: Vec<i64> = self.memory.iter().map(|m| m.rows).collect();
                rows.sort_unstable();
                rows.dedup();
                rows.iter()
                    .map(|r| ((*r as f64).log10(), format!("{} rows", human_rows(*r))))
                    .collect()
            };
            panels.push(Panel {
                title: "process memory per byte of database".to_owned(),
                x_ticks: mem_ticks,
                y_log: false,
                y_label: |v| format!("{v:.2}"),
                series,
            });
        }
        let (pw, ph) = (420.0, 180.0);
        let mut body = format!(
            "<text x=\"4\" y=\"16\" font-size=\"13\">Size sweep: time per operation (median over rounds, \
             95% interval) and memory, against database rows{}</text>\n\
             <text x=\"4\" y=\"30\" fill=\"#555\">{}</text>\n",
            if self.quick { " (quick run)" } else { "" },
            esc(&self.machine)
        );
        let mut y = 40.0;
        let mut row_h: f64 = 0.0;
        for (i, p) in panels.iter().enumerate() {
            let x = 4.0 + (i % 2) as f64 * (pw + 20.0);
            body.push_str(&p.render(x, y, pw, ph));
            row_h = row_h.max(p.height(pw, ph));
            if i % 2 == 1 || i + 1 == panels.len() {
                y += row_h + 16.0;
                row_h = 0.0;
            }
        }
        Some(document(2.0 * pw + 30.0, y, &body))
    }
}
