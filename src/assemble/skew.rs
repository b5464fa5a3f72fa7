//! Clock skew (SPEC §2): per ordered service pair, the offset θ (callee clock
//! − caller clock) is the median of ((V.start − cs) − (cr − V.end)) / 2 over
//! the pair's exact cs/cr hops of complete requests; pairs at or above the
//! threshold are applied.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::model::SymId;

/// One measured service pair.
#[derive(Clone, Debug, PartialEq)]
pub struct SkewPair {
    /// Caller service.
    pub from: SymId,
    /// Callee service.
    pub to: SymId,
    /// Hops measured.
    pub hops: u64,
    /// θ in ns (callee clock − caller clock).
    pub offset: i64,
    /// |θ| ≥ the threshold and skew correction is on.
    pub applied: bool,
}

/// The offsets that are applied, by (caller, callee). Looked up for every
/// call of every request, so hashed with Fx (the keys are our own ids, and
/// nothing iterates the map).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Offsets {
    applied: FxHashMap<(SymId, SymId), i64>,
}

impl Offsets {
    /// θ of the pair when it is applied, else 0.
    pub fn get(&self, from: SymId, to: SymId) -> i64 {
        self.applied.get(&(from, to)).copied().unwrap_or(0)
    }

    /// True when no pair is applied.
    pub fn is_empty(&self) -> bool {
        self.applied.is_empty()
    }
}

/// Collected samples of 2θ per pair; merges by concatenation.
#[derive(Clone, Debug, Default)]
pub struct SkewSamples {
    /// 2θ values per (caller, callee).
    pub by_pair: BTreeMap<(SymId, SymId), Vec<i64>>,
}

impl SkewSamples {
    /// Adds one sample of 2θ.
    pub fn add(&mut self, from: SymId, to: SymId, twice_theta: i64) {
        self.by_pair
            .entry((from, to))
            .or_default()
            .push(twice_theta);
    }

    /// Adds the samples of one request (see [`crate::assemble::Assembled::skew_samples`]).
    pub fn add_all(&mut self, samples: &[(SymId, SymId, i64)]) {
        for &(from, to, twice_theta) in samples {
            self.add(from, to, twice_theta);
        }
    }

    /// Adds all of `other`.
    pub fn merge(&mut self, other: SkewSamples) {
        for (k, mut v) in other.by_pair {
            self.by_pair.entry(k).or_default().append(&mut v);
        }
    }

    /// The median per pair (mean of the two middle values for an even
    /// count), and which pairs are applied.
    pub fn resolve(mut self, enabled: bool, threshold: i64) -> (Vec<SkewPair>, Offsets) {
        let mut pairs = Vec::new();
        let mut offsets = Offsets::default();
        for ((from, to), values) in self.by_pair.iter_mut() {
            if values.is_empty() {
                continue;
            }
            // The middle value(s) by selection, not a full sort: this runs
            // on one thread after the pass, over every hop's sample.
            let n = values.len();
            let (below, &mut upper, _) = values.select_nth_unstable(n / 2);
            let twice = if n % 2 == 1 {
                i128::from(upper) * 2
            } else {
                // The lower middle is the largest value below the upper one.
                i128::from(below.iter().copied().max().unwrap_or(upper)) + i128::from(upper)
            };
            // `twice` is 4θ: divide by 4, rounding half away from zero.
            let theta = div_round(twice, 4);
            let applied = enabled && theta.unsigned_abs() >= threshold.unsigned_abs();
            if applied {
                offsets.applied.insert((*from, *to), theta);
            }
            pairs.push(SkewPair {
                from: *from,
                to: *to,
                hops: n as u64,
                offset: theta,
                applied,
            });
        }
        (pairs, offsets)
    }
}

fn div_round(num: i128, den: i128) -> i64 {
    let q = if num >= 0 {
        (num + den / 2) / den
    } else {
        (num - den / 2) / den
    };
    i64::try_from(q).unwrap_or(if q > 0 { i64::MAX } else { i64::MIN })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    #[test]
    fn odd_median_example_05() {
        // θ per hop: 50, 50.5, 49.5 ms → 2θ = 100, 101, 99 ms.
        let mut s = SkewSamples::default();
        for v in [100 * MS, 101 * MS, 99 * MS] {
            s.add(1, 2, v);
        }
        let (pairs, off) = s.resolve(true, MS);
        assert_eq!(pairs[0].offset, 50 * MS);
        assert!(pairs[0].applied);
        assert_eq!(off.get(1, 2), 50 * MS);
        assert_eq!(off.get(2, 1), 0);
    }

    #[test]
    fn even_median_example_06() {
        // θ: −8, −9, −11, −12 → mean of the middle two = −10.
        let mut s = SkewSamples::default();
        for v in [-16 * MS, -18 * MS, -22 * MS, -24 * MS] {
            s.add(1, 2, v);
        }
        let (pairs, _) = s.resolve(true, MS);
        assert_eq!(pairs[0].offset, -10 * MS);
        assert_eq!(pairs[0].hops, 4);
    }

    proptest::proptest! {
        /// The median by selection is the median of the sorted samples
        /// (duplicates, negatives and both parities included).
        #[test]
        fn median_by_selection_is_the_sorted_median(
            values in proptest::collection::vec(-50i64..50, 1..40),
        ) {
            let mut s = SkewSamples::default();
            for &v in &values {
                s.add(1, 2, v * MS);
            }
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let n = sorted.len();
            let twice = if n % 2 == 1 {
                i128::from(sorted[n / 2]) * 2
            } else {
                i128::from(sorted[n / 2 - 1]) + i128::from(sorted[n / 2])
            };
            let (pairs, _) = s.resolve(true, MS);
            proptest::prop_assert_eq!(pairs[0].offset, div_round(twice * i128::from(MS), 4));
            proptest::prop_assert_eq!(pairs[0].hops, n as u64);
        }
    }

    #[test]
    fn below_threshold_or_disabled_is_not_applied() {
        let mut s = SkewSamples::default();
        s.add(1, 2, 0);
        s.add(1, 2, MS); // θ 0 and 0.5 → 0.25 ms
        let (pairs, off) = s.clone().resolve(true, MS);
        assert_eq!(pairs[0].offset, 250_000);
        assert!(!pairs[0].applied);
        assert!(off.is_empty());
        let mut big = SkewSamples::default();
        big.add(1, 2, 100 * MS);
        let (pairs, off) = big.resolve(false, MS);
        assert!(!pairs[0].applied);
        assert!(off.is_empty());
    }
}
