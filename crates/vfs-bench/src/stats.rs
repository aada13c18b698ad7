//! Intervals for figures measured over paired rounds, and verdicts
//! against targets.
//!
//! Every figure the bench compares is a set of per-round values: the cost
//! ratio of a target to its baseline measured back to back in round `r`,
//! a scaling ratio (two readers over one) measured in round `r`, … A slow
//! spell of the machine slows both sides of a pair alike, so the paired
//! value keeps most of its precision where the raw throughputs do not.
//! The estimate is the median of the per-round values (robust to one round
//! hit by a burst on one side only); its interval is a seeded percentile
//! bootstrap of that median.

/// The interval's coverage: 95 % (2.5th to 97.5th percentile).
const TAIL: f64 = 0.025;
/// Bootstrap resamples per interval.
const RESAMPLES: usize = 2_000;
/// Fewer rounds than this give no interval (a verdict would be a guess).
pub const MIN_ROUNDS: usize = 3;

/// The median of per-round values, with a 95 % bootstrap interval when
/// there are at least [`MIN_ROUNDS`] of them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// The median.
    pub median: f64,
    /// The interval, `None` with fewer than [`MIN_ROUNDS`] rounds.
    pub bounds: Option<(f64, f64)>,
    /// How many rounds it rests on.
    pub rounds: usize,
}

impl Estimate {
    /// The median and interval of `values` (one per round), resampled with
    /// a generator seeded from `seed` (so a report is reproducible from its
    /// samples). `None` when `values` is empty.
    pub fn of(values: &[f64], seed: &str) -> Option<Estimate> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        let median = median_in_place(&mut sorted);
        let bounds = (values.len() >= MIN_ROUNDS).then(|| bootstrap(values, seed));
        Some(Estimate {
            median,
            bounds,
            rounds: values.len(),
        })
    }

    /// `[lo–hi]`, or `[n<3]` when there is no interval.
    pub fn interval_text(&self) -> String {
        match self.bounds {
            Some((lo, hi)) => format!("[{lo:.2}–{hi:.2}]"),
            None => format!("[n<{MIN_ROUNDS}]"),
        }
    }
}

/// The median of `v` (which it sorts).
pub fn median_in_place(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Percentile bootstrap of the median: resample the rounds with
/// replacement, take each resample's median, and keep the 2.5th and 97.5th
/// percentiles of those medians.
fn bootstrap(values: &[f64], seed: &str) -> (f64, f64) {
    let n = values.len();
    let mut rng = SplitMix(fnv1a(seed));
    let mut medians = Vec::with_capacity(RESAMPLES);
    let mut resample = vec![0.0; n];
    for _ in 0..RESAMPLES {
        for slot in resample.iter_mut() {
            *slot = values[rng.below(n)];
        }
        medians.push(median_in_place(&mut resample));
    }
    medians.sort_by(f64::total_cmp);
    let at = |q: f64| medians[((RESAMPLES as f64 - 1.0) * q).round() as usize];
    (at(TAIL), at(1.0 - TAIL))
}

/// FNV-1a, to turn a figure's name into a seed.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// SplitMix64: small, seeded, good enough to resample rounds.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A uniform value in (0, 1).
    #[cfg(test)]
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// A shuffled order of `0..n`, the same for the same `seed` (the order in
/// which a round visits its targets).
pub fn shuffled(n: usize, seed: &str) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix(fnv1a(seed));
    for i in (1..n).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}

/// A target: a bound the figure must stay under or reach.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Goal {
    /// At most this (costs).
    AtMost(f64),
    /// At least this (scaling, shares).
    AtLeast(f64),
}

impl Goal {
    /// `≤ 1.05×`, `≥ 1.85×`.
    pub fn text(self) -> String {
        match self {
            Goal::AtMost(l) => format!("≤ {l:.2}×"),
            Goal::AtLeast(l) => format!("≥ {l:.2}×"),
        }
    }
}

/// What the interval says about a goal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The whole interval is on the right side.
    Met,
    /// The whole interval is on the wrong side.
    Missed,
    /// The interval straddles the bound (or there is none): more rounds
    /// or a quieter machine are needed to tell.
    NotResolved,
    /// A side of the figure was not measured in this run.
    NotMeasured,
}

impl Verdict {
    /// Judges `estimate` against `goal`.
    pub fn of(estimate: Option<&Estimate>, goal: Goal) -> Verdict {
        let Some(e) = estimate else {
            return Verdict::NotMeasured;
        };
        let Some((lo, hi)) = e.bounds else {
            return Verdict::NotResolved;
        };
        let (good, bad) = match goal {
            Goal::AtMost(l) => (hi <= l, lo > l),
            Goal::AtLeast(l) => (lo >= l, hi < l),
        };
        if good {
            Verdict::Met
        } else if bad {
            Verdict::Missed
        } else {
            Verdict::NotResolved
        }
    }

    /// How reports print it.
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "MISSED",
            Verdict::NotResolved => "not resolved",
            Verdict::NotMeasured => "not measured",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_interval_of_known_values() {
        let e = Estimate::of(&[1.0, 3.0, 2.0], "x").unwrap();
        assert_eq!(e.median, 2.0);
        let (lo, hi) = e.bounds.unwrap();
        assert!(lo >= 1.0 && hi <= 3.0 && lo <= 2.0 && hi >= 2.0);
        // Too few rounds: a median but no interval, so no verdict.
        let two = Estimate::of(&[1.0, 1.2], "x").unwrap();
        assert_eq!(two.median, 1.1);
        assert_eq!(two.bounds, None);
        assert_eq!(
            Verdict::of(Some(&two), Goal::AtMost(5.0)),
            Verdict::NotResolved
        );
        assert_eq!(Estimate::of(&[], "x"), None);
        // Same seed, same interval.
        let v = [1.01, 1.07, 0.98, 1.12, 1.03, 1.05, 1.00];
        assert_eq!(Estimate::of(&v, "s"), Estimate::of(&v, "s"));
    }

    #[test]
    fn verdicts_follow_the_interval() {
        let e = |lo, hi| Estimate {
            median: (lo + hi) / 2.0,
            bounds: Some((lo, hi)),
            rounds: 5,
        };
        let at_most = Goal::AtMost(1.05);
        assert_eq!(Verdict::of(Some(&e(1.00, 1.04)), at_most), Verdict::Met);
        assert_eq!(Verdict::of(Some(&e(1.06, 1.20)), at_most), Verdict::Missed);
        assert_eq!(
            Verdict::of(Some(&e(1.02, 1.08)), at_most),
            Verdict::NotResolved
        );
        let at_least = Goal::AtLeast(1.85);
        assert_eq!(Verdict::of(Some(&e(1.9, 2.0)), at_least), Verdict::Met);
        assert_eq!(Verdict::of(Some(&e(1.5, 1.8)), at_least), Verdict::Missed);
        assert_eq!(
            Verdict::of(Some(&e(1.8, 1.9)), at_least),
            Verdict::NotResolved
        );
        assert_eq!(Verdict::of(None, at_least), Verdict::NotMeasured);
    }

    /// The interval covers the true median of a noisy ratio most of the
    /// time at the round counts the bench uses (lognormal noise of 10 %,
    /// plus now and then a round 40 % off on one side).
    #[test]
    fn intervals_cover_the_true_ratio() {
        let mut rng = SplitMix(42);
        let mut normal = || {
            // Box–Muller.
            let (u, v) = (rng.unit(), rng.unit());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        };
        for n in [5usize, 6, 8, 10] {
            let trials = 300;
            let mut covered = 0;
            for t in 0..trials {
                let values: Vec<f64> = (0..n)
                    .map(|i| {
                        let burst = if (t + i) % 11 == 0 { 1.4 } else { 1.0 };
                        1.1 * (0.1 * normal()).exp() * burst
                    })
                    .collect();
                let e = Estimate::of(&values, &format!("{n}-{t}")).unwrap();
                let (lo, hi) = e.bounds.unwrap();
                if lo <= 1.1 && 1.1 <= hi {
                    covered += 1;
                }
            }
            let share = f64::from(covered) / trials as f64;
            assert!(share >= 0.80, "{n} rounds: covered {share:.2}");
        }
    }

    #[test]
    fn shuffles_are_permutations_and_seeded() {
        let a = shuffled(10, "round 1");
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert_eq!(a, shuffled(10, "round 1"));
        assert_ne!(a, shuffled(10, "round 2"));
    }
}
