//! Measure stage: the mergeable latency statistic behind every latency block
//! of the report (SPEC §4, STYLE habits 9 and 10).
//!
//! [`Histogram`] owns the values of one latency block (signed integer
//! nanoseconds: legs can be negative under clock skew) and answers count,
//! exact min/max/sum/mean and nearest-rank quantiles. [`Block`] is the JSON
//! shape of a latency block and [`ns_to_ms`] the one conversion from
//! nanoseconds to the milliseconds the report prints.
//!
//! Two representations, chosen by the total count alone:
//! * up to [`EXACT_MAX_COUNT`] values, every value is kept, so small
//!   inputs — and every hand-checked golden test — get exact quantiles;
//! * above it, a log-linear bucket store (HdrHistogram-style: values below 256
//!   exact, then 128 linear sub-buckets per power of two of |ns|, separate
//!   stores for negative and positive values plus a zero count, integer
//!   counts). A bucket's representative value is within 1/256 (0.39 %) of
//!   every value in it, so quantiles are within 0.4 % of the exact
//!   nearest-rank answer.
//!
//! `merge` is plain addition in both representations and the state is
//! canonical up to the order of kept values (the multiset of values, or
//! bucket counts, plus exact count/sum/min/max; equality compares values
//! sorted), so the result is identical however the values were split across
//! threads, chunks or machines and in whatever order the parts were merged.

use serde::Serialize;

/// Largest count for which a [`Histogram`] keeps every value and answers
/// exact quantiles; one more value converts it to buckets for good.
///
/// The exact store costs 8 bytes per value (at most 16 KiB) and a push per
/// record; values are sorted only when a quantile is asked for.
pub const EXACT_MAX_COUNT: u64 = 2048;

/// Sub-buckets per power of two, as a number of bits: 2^7 = 128 sub-buckets,
/// so a bucket is at most 1/128 of its lower bound wide and its midpoint is
/// within 1/256 of every value in it.
const SUB_BITS: u32 = 7;
/// Magnitudes below this are their own bucket (width 1).
const LINEAR_LIMIT: u64 = 2 << SUB_BITS;
/// A bucket entry packs `index << INDEX_SHIFT | count` in one `u64`: indices
/// are at most 7296 (13 bits), leaving 51 bits of count per bucket.
const INDEX_SHIFT: u32 = 51;
/// Mask of the count part of a bucket entry; a bucket count saturates here
/// (2^51 ≈ 2.3e15 values in one bucket, far beyond any log set).
const COUNT_MASK: u64 = (1 << INDEX_SHIFT) - 1;

/// A mergeable, deterministic latency histogram over signed nanoseconds.
///
/// Empty by default. Exact (all values kept) while `count() <=`
/// [`EXACT_MAX_COUNT`], bucketed above; the representation depends only on
/// the total count, so `merge(h(a), h(b)) == h(a ++ b)` for any split and any
/// merge order, and equal states give equal [`Block`]s. `count`, `sum`,
/// `min`, `max` and the mean are always exact; quantiles are exact in exact
/// mode and within 0.4 % relative error in bucket mode.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    count: u64,
    sum: i128,
    /// Smallest value recorded; `i64::MAX` when empty.
    min: i64,
    /// Largest value recorded; `i64::MIN` when empty.
    max: i64,
    store: Store,
}

/// The value store; `Buckets` exactly when `count > EXACT_MAX_COUNT`.
#[derive(Clone, Debug)]
enum Store {
    /// Every value, in arrival order (a sorted insert per record cost a
    /// memmove of up to 16 KiB).
    Exact(Vec<i64>),
    Buckets(Buckets),
}

/// Equal when they hold the same values: exact stores compare as multisets.
impl PartialEq for Store {
    fn eq(&self, other: &Store) -> bool {
        match (self, other) {
            (Store::Exact(a), Store::Exact(b)) => {
                let (mut a, mut b) = (a.clone(), b.clone());
                a.sort_unstable();
                b.sort_unstable();
                a == b
            }
            (Store::Buckets(a), Store::Buckets(b)) => a == b,
            _ => false,
        }
    }
}

/// Log-linear buckets. Positive values, the bulk of latencies, are counted
/// in a dense window of at most [`WINDOW_SLOTS`] consecutive buckets (one
/// indexed add per value: a search of a sparse store cost a cache miss per
/// probe and a tenth of a 1 GB run); the rest are sparse stores, each a `Vec`
/// of packed `index << INDEX_SHIFT | count` entries sorted by index, holding
/// only non-empty buckets (8 bytes per occupied bucket).
///
/// Equal when they count the same values per bucket, wherever the window
/// lies ([`Buckets::positive`] is the canonical view).
#[derive(Clone, Debug, Default)]
struct Buckets {
    /// Buckets of |ns| for negative values.
    neg: Vec<u64>,
    /// Count of values equal to 0.
    zero: u64,
    /// Buckets of positive ns outside the window (never an index in
    /// `base..base + window.len()`).
    pos: Vec<u64>,
    /// Bucket index of `window[0]`.
    base: u64,
    /// Counts of the positive buckets `base..base + window.len()`.
    window: Vec<u64>,
}

/// Widest dense window, in buckets: 8 octaves of 128 (e.g. 100 µs to 25 ms)
/// in 8 KiB.
const WINDOW_SLOTS: usize = 1024;

impl PartialEq for Buckets {
    fn eq(&self, other: &Buckets) -> bool {
        self.zero == other.zero && self.neg == other.neg && self.positive().eq(other.positive())
    }
}

/// One latency block of the report (SPEC §4): every time in milliseconds
/// (integer ns rounded half-up to µs, see [`ns_to_ms`]).
///
/// Field order is the JSON key order. `mean` and `max` are exact; the
/// quantiles are nearest-rank (the value of rank ⌈q·count⌉), exact up to
/// [`EXACT_MAX_COUNT`] values and within 0.4 % relative error above.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Block {
    /// Number of values summarised (never 0: an empty block is `null`).
    pub count: u64,
    /// Exact mean: exact sum / count rounded to the nearest ns.
    pub mean: f64,
    /// Median (rank ⌈0.5·count⌉).
    pub p50: f64,
    /// 90th percentile (rank ⌈0.9·count⌉).
    pub p90: f64,
    /// 95th percentile (rank ⌈0.95·count⌉).
    pub p95: f64,
    /// 99th percentile (rank ⌈0.99·count⌉).
    pub p99: f64,
    /// Exact maximum.
    pub max: f64,
}

/// Converts integer nanoseconds to the milliseconds the report prints: rounded
/// half-up to whole µs (`floor((ns + 500) / 1000)` in integer arithmetic, also
/// for negatives, so -1500 ns is -1 µs), then `µs / 1000.0`.
///
/// E.g. 1_234_500 → 1.235, 350_000 → 0.35, -1_500 → -0.001. Never panics.
pub fn ns_to_ms(ns: i64) -> f64 {
    let us = (i128::from(ns) + 500).div_euclid(1000);
    // |us| < 2^54, exact in f64 up to 2^53 µs (104 days) and nearest beyond.
    us as f64 / 1000.0
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl FromIterator<i64> for Histogram {
    fn from_iter<I: IntoIterator<Item = i64>>(iter: I) -> Self {
        let mut h = Histogram::new();
        h.extend(iter);
        h
    }
}

impl Extend<i64> for Histogram {
    fn extend<I: IntoIterator<Item = i64>>(&mut self, iter: I) {
        for ns in iter {
            self.record(ns);
        }
    }
}

impl Histogram {
    /// An empty histogram (exact mode, no allocation).
    pub fn new() -> Self {
        Histogram {
            count: 0,
            sum: 0,
            min: i64::MAX,
            max: i64::MIN,
            store: Store::Exact(Vec::new()),
        }
    }

    /// Adds one value in nanoseconds (any `i64`, negative under clock skew).
    ///
    /// Converts to buckets when the count passes [`EXACT_MAX_COUNT`].
    ///
    /// Inlined: the measure stage records a dozen values per visit, and the
    /// call itself cost a quarter of a record.
    #[inline]
    pub fn record(&mut self, ns: i64) {
        self.count = self.count.saturating_add(1);
        self.sum = self.sum.saturating_add(i128::from(ns));
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
        match &mut self.store {
            Store::Exact(values) if self.count <= EXACT_MAX_COUNT => values.push(ns),
            _ => self.record_bucketed(ns),
        }
    }

    /// The bucket side of [`Histogram::record`], kept out of line.
    #[inline(never)]
    fn record_bucketed(&mut self, ns: i64) {
        self.with_buckets(|b| b.add(ns, 1));
    }

    /// Adds every value of `other` to `self` (plain addition: the result is
    /// the histogram of both inputs, whatever the split or merge order).
    ///
    /// Stays exact only while the total count is at most [`EXACT_MAX_COUNT`];
    /// merging with a bucketed histogram always yields a bucketed one.
    pub fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        self.count = self.count.saturating_add(other.count);
        self.sum = self.sum.saturating_add(other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if self.count <= EXACT_MAX_COUNT
            && let (Store::Exact(mine), Store::Exact(theirs)) = (&mut self.store, &other.store)
        {
            mine.extend_from_slice(theirs);
            return;
        }
        self.with_buckets(|buckets| match &other.store {
            Store::Exact(values) => buckets.merge(&Buckets::from_values(values)),
            Store::Buckets(theirs) => buckets.merge(theirs),
        });
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Exact smallest value, `None` when empty.
    pub fn min(&self) -> Option<i64> {
        (self.count > 0).then_some(self.min)
    }

    /// Exact largest value, `None` when empty.
    pub fn max(&self) -> Option<i64> {
        (self.count > 0).then_some(self.max)
    }

    /// Exact sum of all values in ns (0 when empty; cannot overflow: 2^64
    /// values of magnitude 2^63 still fit in an `i128`).
    pub fn sum(&self) -> i128 {
        self.sum
    }

    /// Exact mean in ns: sum / count rounded to the nearest ns, halves away
    /// from zero; `None` when empty.
    pub fn mean_ns(&self) -> Option<i64> {
        if self.count == 0 {
            return None;
        }
        let n = i128::from(self.count);
        let (q, r) = (self.sum / n, self.sum % n);
        let q = if 2 * r.abs() >= n {
            q + self.sum.signum()
        } else {
            q
        };
        // The mean lies within [min, max], so it fits; clamp documents it.
        i64::try_from(q.clamp(i128::from(self.min), i128::from(self.max))).ok()
    }

    /// True while every value is kept (count ≤ [`EXACT_MAX_COUNT`]), so
    /// quantiles are exact.
    pub fn is_exact(&self) -> bool {
        matches!(self.store, Store::Exact(_))
    }

    /// Heap bytes held by the value store (capacity, not length): at most
    /// 16 KiB in exact mode; in bucket mode 8 bytes per occupied bucket plus
    /// at most a quarter of slack (about 4 KiB for a 2–20 ms spread, 48 KiB
    /// for values spread over 1 µs–10 s of both signs).
    pub fn heap_bytes(&self) -> usize {
        match &self.store {
            Store::Exact(values) => values.capacity() * size_of::<i64>(),
            Store::Buckets(b) => {
                (b.neg.capacity() + b.pos.capacity() + b.window.capacity()) * size_of::<u64>()
            }
        }
    }

    /// Nearest-rank quantile: the value of rank ⌈q·n⌉ (1-based, at least 1)
    /// in sorted order; `q` is clamped to [0, 1], so 0 gives the min and 1
    /// the max. `None` when empty or `q` is NaN.
    ///
    /// Exact in exact mode; in bucket mode the representative of the bucket
    /// holding that rank, clamped to [min, max] (within 0.4 %), except that
    /// rank 1 and rank n return the exact min and max. `q·n` is computed in
    /// f64 with a few ulps of tolerance, so a decimal `q` such as 0.07 with
    /// n = 100 gives rank 7, as the decimal arithmetic would.
    pub fn quantile(&self, q: f64) -> Option<i64> {
        if self.count == 0 || q.is_nan() {
            return None;
        }
        let x = q.clamp(0.0, 1.0) * self.count as f64;
        // q and the product each carry at most half an ulp of error; without
        // this tolerance 0.07 * 100 = 7.000000000000001 would give rank 8.
        let rank = (x - x * 4.0 * f64::EPSILON).ceil();
        // Float-to-int `as` saturates; NaN is excluded above.
        self.value_at_rank(rank as u64)
    }

    /// The latency block of these values, `None` when empty (SPEC §4: a block
    /// with no values is `null`). Percentile ranks use exact integer
    /// arithmetic (⌈count·k/100⌉).
    pub fn block(&self) -> Option<Block> {
        let pct = |k: u128| -> Option<f64> {
            let rank = (u128::from(self.count) * k).div_ceil(100);
            let rank = u64::try_from(rank).unwrap_or(u64::MAX);
            self.value_at_rank(rank).map(ns_to_ms)
        };
        Some(Block {
            count: self.count,
            mean: ns_to_ms(self.mean_ns()?),
            p50: pct(50)?,
            p90: pct(90)?,
            p95: pct(95)?,
            p99: pct(99)?,
            max: ns_to_ms(self.max()?),
        })
    }

    /// The value of 1-based `rank` (clamped to [1, count]); `None` when empty.
    fn value_at_rank(&self, rank: u64) -> Option<i64> {
        if self.count == 0 {
            return None;
        }
        let rank = rank.clamp(1, self.count);
        if rank == 1 {
            return Some(self.min);
        }
        if rank == self.count {
            return Some(self.max);
        }
        let clamp = |v: i128| -> i64 {
            let v = v.clamp(i128::from(self.min), i128::from(self.max));
            i64::try_from(v).unwrap_or(self.max)
        };
        match &self.store {
            Store::Exact(values) => {
                let at = usize::try_from(rank - 1).ok()?;
                if at >= values.len() {
                    return None;
                }
                // Report time only: a copy of at most EXACT_MAX_COUNT values.
                let mut v = values.clone();
                let (_, nth, _) = v.select_nth_unstable(at);
                Some(*nth)
            }
            Store::Buckets(b) => {
                let mut seen: u64 = 0;
                for &entry in b.neg.iter().rev() {
                    seen = seen.saturating_add(entry & COUNT_MASK);
                    if seen >= rank {
                        return Some(clamp(-representative(entry >> INDEX_SHIFT)));
                    }
                }
                seen = seen.saturating_add(b.zero);
                if seen >= rank {
                    return Some(clamp(0));
                }
                for (index, count) in b.positive() {
                    seen = seen.saturating_add(count);
                    if seen >= rank {
                        return Some(clamp(representative(index)));
                    }
                }
                // Only reachable if a bucket count saturated.
                Some(self.max)
            }
        }
    }

    /// Runs `f` on the bucket store, converting the exact values into it
    /// first if needed (once the total count passes [`EXACT_MAX_COUNT`]).
    fn with_buckets(&mut self, f: impl FnOnce(&mut Buckets)) {
        if let Store::Exact(values) = &self.store {
            self.store = Store::Buckets(Buckets::from_values(values));
        }
        if let Store::Buckets(b) = &mut self.store {
            f(b);
        }
    }
}

impl Buckets {
    /// The buckets of `values`, counted per bucket index without sorting
    /// the values (adding them one by one inserted into the middle of the
    /// store each time; sorting them first cost as much as the rest of the
    /// measure stage on small inputs). The window is placed on the densest
    /// [`WINDOW_SLOTS`] buckets of the positive values.
    fn from_values(values: &[i64]) -> Buckets {
        let zero = values.iter().filter(|&&ns| ns == 0).count();
        let neg = values.iter().filter(|&&ns| ns < 0);
        let pos = values.iter().filter(|&&ns| ns > 0);
        let (lo, counts) = dense_counts(pos.map(|ns| bucket_index(ns.unsigned_abs())));
        let (start, end) = densest_window(&counts);
        let outside = |range: std::ops::Range<usize>| {
            let at = lo + range.start as u64;
            packed(at, counts.get(range).unwrap_or_default())
        };
        let mut sparse = outside(0..start);
        sparse.extend(outside(end..counts.len()));
        sparse.shrink_to_fit();
        let (neg_lo, neg_counts) = dense_counts(neg.map(|ns| bucket_index(ns.unsigned_abs())));
        Buckets {
            neg: packed(neg_lo, &neg_counts),
            zero: u64::try_from(zero).unwrap_or(u64::MAX),
            pos: sparse,
            base: lo + start as u64,
            window: counts.get(start..end).unwrap_or_default().to_vec(),
        }
    }

    /// Adds `n` occurrences of `ns`.
    fn add(&mut self, ns: i64, n: u64) {
        let index = bucket_index(ns.unsigned_abs());
        let store = match ns.signum() {
            0 => {
                self.zero = self.zero.saturating_add(n);
                return;
            }
            -1 => &mut self.neg,
            _ => {
                if let Some(slot) = self.slot(index) {
                    *slot = slot.saturating_add(n);
                    return;
                }
                &mut self.pos
            }
        };
        add_sparse(store, index, n);
    }

    /// The window's count of positive bucket `index`, if the window has it.
    #[inline]
    fn slot(&mut self, index: u64) -> Option<&mut u64> {
        let k = usize::try_from(index.checked_sub(self.base)?).ok()?;
        self.window.get_mut(k)
    }

    /// Adds every bucket count of `other`.
    fn merge(&mut self, other: &Buckets) {
        self.zero = self.zero.saturating_add(other.zero);
        merge_entries(&mut self.neg, &other.neg);
        // Positive buckets inside this window are added in place, the rest
        // merged into the sparse store.
        let mut outside = Vec::new();
        for (index, count) in other.positive() {
            match self.slot(index) {
                Some(slot) => *slot = slot.saturating_add(count),
                None => outside.push(index << INDEX_SHIFT | count.min(COUNT_MASK)),
            }
        }
        merge_entries(&mut self.pos, &outside);
    }

    /// The non-empty positive buckets as (index, count), by index.
    fn positive(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let unpack = |&e: &u64| (e >> INDEX_SHIFT, e & COUNT_MASK);
        let split = self.pos.partition_point(|&e| e >> INDEX_SHIFT < self.base);
        let (below, above) = self.pos.split_at(split);
        let window = (self.base..)
            .zip(self.window.iter().copied())
            .filter(|&(_, count)| count > 0);
        below
            .iter()
            .map(unpack)
            .chain(window)
            .chain(above.iter().map(unpack))
    }
}

/// Adds `n` occurrences of bucket `index` to a sparse store.
fn add_sparse(store: &mut Vec<u64>, index: u64, n: u64) {
    match find_entry(store, index) {
        Ok(at) => {
            if let Some(entry) = store.get_mut(at) {
                *entry = add_count(*entry, n);
            }
        }
        Err(at) => {
            // Grow by a quarter rather than doubling: a store holds at most
            // 7297 entries and new buckets are rare after warm-up, while
            // thousands of histograms stay alive.
            if store.len() == store.capacity() {
                store.reserve_exact(store.len() / 4 + 8);
            }
            store.insert(at, index << INDEX_SHIFT | n.min(COUNT_MASK));
        }
    }
}

/// Counts of the bucket indices `indices` yields, dense over the span from
/// the lowest index to the highest (at most 7297 slots; a few hundred for
/// latencies): (lowest index, counts).
fn dense_counts(indices: impl Iterator<Item = u64> + Clone) -> (u64, Vec<u64>) {
    let span = indices.clone().fold(None, |acc: Option<(u64, u64)>, i| {
        Some(acc.map_or((i, i), |(lo, hi)| (lo.min(i), hi.max(i))))
    });
    let Some((lo, hi)) = span else {
        return (0, Vec::new());
    };
    let width = usize::try_from(hi - lo).map_or(0, |w| w + 1);
    let mut counts = vec![0u64; width];
    for i in indices {
        if let Some(c) = usize::try_from(i - lo).ok().and_then(|k| counts.get_mut(k)) {
            *c += 1;
        }
    }
    (lo, counts)
}

/// The range of at most [`WINDOW_SLOTS`] consecutive slots of `counts` that
/// holds the most (the first such range on ties, trimmed to non-empty ends):
/// all of it when it fits.
fn densest_window(counts: &[u64]) -> (usize, usize) {
    if counts.len() <= WINDOW_SLOTS {
        return (0, counts.len());
    }
    let first: u64 = counts.iter().take(WINDOW_SLOTS).sum();
    let (mut best, mut best_start, mut sum) = (first, 0, first);
    for start in 1..=counts.len() - WINDOW_SLOTS {
        let leaving = counts.get(start - 1).copied().unwrap_or(0);
        let entering = counts.get(start + WINDOW_SLOTS - 1).copied().unwrap_or(0);
        sum = sum - leaving + entering;
        if sum > best {
            (best, best_start) = (sum, start);
        }
    }
    // Trimmed to its first and last non-empty slot.
    let window = counts
        .get(best_start..best_start + WINDOW_SLOTS)
        .unwrap_or_default();
    let first = window.iter().position(|&c| c > 0).unwrap_or(0);
    let last = window.iter().rposition(|&c| c > 0).map_or(first, |k| k + 1);
    (best_start + first, best_start + last)
}

/// The packed entries of the non-empty slots of `counts`, whose first slot
/// is bucket `lo`.
fn packed(lo: u64, counts: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(counts.iter().filter(|&&c| c > 0).count());
    for (index, &c) in (lo..).zip(counts) {
        if c > 0 {
            out.push(index << INDEX_SHIFT | c.min(COUNT_MASK));
        }
    }
    out
}

/// Where bucket `index` is (`Ok`) or would go (`Err`) in a sorted store.
///
/// Indices are distinct integers, so the entry for `index` sits at most
/// `index − first` places from the start and `last − index` from the end:
/// only the window between those bounds — as wide as the number of empty
/// buckets between the first and last — needs a binary search. Latency
/// stores are dense in their core, so the window is usually a few entries.
fn find_entry(store: &[u64], index: u64) -> Result<usize, usize> {
    let (Some(&first), Some(&last)) = (store.first(), store.last()) else {
        return Err(0);
    };
    let (first, last) = (first >> INDEX_SHIFT, last >> INDEX_SHIFT);
    if index < first {
        return Err(0);
    }
    if index > last {
        return Err(store.len());
    }
    let top = store.len() - 1;
    let lo = top.saturating_sub(usize::try_from(last - index).unwrap_or(usize::MAX));
    let hi = top.min(usize::try_from(index - first).unwrap_or(usize::MAX));
    match store.get(lo..=hi) {
        Some(window) => window
            .binary_search_by_key(&index, |e| e >> INDEX_SHIFT)
            .map(|k| lo + k)
            .map_err(|k| lo + k),
        None => store.binary_search_by_key(&index, |e| e >> INDEX_SHIFT),
    }
}

/// Adds `n` to the count of a packed entry, saturating at [`COUNT_MASK`].
fn add_count(entry: u64, n: u64) -> u64 {
    let count = (entry & COUNT_MASK).saturating_add(n).min(COUNT_MASK);
    (entry & !COUNT_MASK) | count
}

/// Adds the packed entries of `theirs` into `mine` (both sorted by index).
fn merge_entries(mine: &mut Vec<u64>, theirs: &[u64]) {
    if theirs.is_empty() {
        return;
    }
    let mut out = Vec::with_capacity(mine.len() + theirs.len());
    let (mut a, mut b) = (mine.iter().peekable(), theirs.iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (Some(&&x), Some(&&y)) => {
                let (ix, iy) = (x >> INDEX_SHIFT, y >> INDEX_SHIFT);
                if ix < iy {
                    out.push(x);
                    a.next();
                } else if iy < ix {
                    out.push(y);
                    b.next();
                } else {
                    out.push(add_count(x, y & COUNT_MASK));
                    a.next();
                    b.next();
                }
            }
            (Some(&&x), None) => {
                out.push(x);
                a.next();
            }
            (None, Some(&&y)) => {
                out.push(y);
                b.next();
            }
            (None, None) => break,
        }
    }
    out.shrink_to_fit();
    *mine = out;
}

/// Bucket index of a magnitude: itself below [`LINEAR_LIMIT`] (256), then
/// 128 linear sub-buckets per power of two. Continuous and monotonic; the
/// largest magnitude (2^63, from `i64::MIN`) has index 7296.
fn bucket_index(mag: u64) -> u64 {
    if mag < LINEAR_LIMIT {
        return mag;
    }
    let exp = 63 - mag.leading_zeros(); // mag in [2^exp, 2^(exp+1)), exp >= 8
    let shift = exp - SUB_BITS; // bucket width 2^shift
    u64::from(shift) * (1 << SUB_BITS) + (mag >> shift)
}

/// Representative magnitude of a bucket: the midpoint `lo + width/2`, within
/// width/2 ≤ lo/256 of every magnitude in the bucket. May exceed `i64` for
/// the top bucket, hence `i128` (callers clamp to [min, max]).
fn representative(index: u64) -> i128 {
    if index < LINEAR_LIMIT {
        return i128::from(index);
    }
    let shift = index / (1 << SUB_BITS) - 1;
    let mantissa = index % (1 << SUB_BITS) + (1 << SUB_BITS);
    (i128::from(mantissa) << shift) + (1_i128 << (shift - 1))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Exact nearest-rank quantile of a sorted slice.
    fn exact_quantile(sorted: &[i64], q: f64) -> i64 {
        let n = sorted.len() as f64;
        let rank = ((q * n - q * n * 4.0 * f64::EPSILON).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    /// Deterministic splitmix64 for test data.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
        /// Log-uniform over [1 µs, 10 s] in ns, about 5 % negated.
        fn latency(&mut self) -> i64 {
            let (lo, hi) = (1e3_f64.ln(), 1e10_f64.ln());
            let v = (lo + self.unit() * (hi - lo)).exp().round() as i64;
            if self.next().is_multiple_of(20) {
                -v
            } else {
                v
            }
        }
    }

    #[test]
    fn ns_to_ms_rounds_half_up_to_microseconds() {
        assert_eq!(ns_to_ms(1_234_500), 1.235);
        assert_eq!(ns_to_ms(1_234_499), 1.234);
        assert_eq!(ns_to_ms(350_000), 0.35);
        assert_eq!(ns_to_ms(15_000_000), 15.0);
        assert_eq!(ns_to_ms(-1_500), -0.001);
        assert_eq!(ns_to_ms(-1_501), -0.002);
        assert_eq!(ns_to_ms(-499), 0.0);
        assert_eq!(ns_to_ms(0), 0.0);
        assert_eq!(ns_to_ms(62_500_000_000), 62500.0);
        // Extremes do not overflow.
        assert_eq!(ns_to_ms(i64::MAX), 9_223_372_036_854.776);
        assert_eq!(ns_to_ms(i64::MIN), -9_223_372_036_854.775);
        assert_eq!(
            serde_json::to_string(&ns_to_ms(1_234_500)).unwrap(),
            "1.235"
        );
    }

    #[test]
    fn spec_example_block() {
        let values = [
            350_000,
            1_234_500,
            2_500_000,
            7_000_000,
            12_500_000,
            1_200_000_000,
            62_500_000_000,
        ];
        // Record in a shuffled order: the result must not depend on it.
        let h: Histogram = [
            62_500_000_000,
            350_000,
            7_000_000,
            1_234_500,
            12_500_000,
            2_500_000,
            1_200_000_000,
        ]
        .into_iter()
        .collect();
        assert_eq!(h, values.into_iter().collect::<Histogram>());
        assert_eq!(h.count(), 7);
        assert_eq!(h.sum(), 63_723_584_500);
        assert_eq!(h.mean_ns(), Some(9_103_369_214)); // 63_723_584_500 / 7 = 9_103_369_214.28…
        assert_eq!(h.min(), Some(350_000));
        assert_eq!(h.max(), Some(62_500_000_000));
        assert_eq!(h.quantile(0.5), Some(7_000_000)); // rank ⌈3.5⌉ = 4
        assert_eq!(h.quantile(0.0), Some(350_000));
        assert_eq!(h.quantile(0.3), Some(2_500_000)); // rank ⌈2.1⌉ = 3
        assert_eq!(h.quantile(0.8), Some(1_200_000_000)); // rank ⌈5.6⌉ = 6
        let block = h.block().unwrap();
        assert_eq!(
            block,
            Block {
                count: 7,
                mean: 9103.369,
                p50: 7.0,
                p90: 62500.0,
                p95: 62500.0,
                p99: 62500.0,
                max: 62500.0,
            }
        );
        assert_eq!(
            serde_json::to_string(&block).unwrap(),
            r#"{"count":7,"mean":9103.369,"p50":7.0,"p90":62500.0,"p95":62500.0,"p99":62500.0,"max":62500.0}"#
        );
    }

    #[test]
    fn two_values_block() {
        let h: Histogram = [10_000_000, 6_000_000].into_iter().collect();
        let b = h.block().unwrap();
        assert_eq!(
            (b.count, b.mean, b.p50, b.p90, b.p95, b.p99, b.max),
            (2, 8.0, 6.0, 10.0, 10.0, 10.0, 10.0)
        );
    }

    #[test]
    fn negative_values() {
        let h: Histogram = [4_000_000, -1_500, 0, -3_000_000, 2_000_000]
            .into_iter()
            .collect();
        assert_eq!(h.min(), Some(-3_000_000));
        assert_eq!(h.max(), Some(4_000_000));
        assert_eq!(h.sum(), 2_998_500);
        assert_eq!(h.mean_ns(), Some(599_700));
        assert_eq!(h.quantile(0.2), Some(-3_000_000)); // rank 1
        assert_eq!(h.quantile(0.4), Some(-1_500)); // rank 2
        assert_eq!(h.quantile(0.5), Some(0)); // rank ⌈2.5⌉ = 3
        let b = h.block().unwrap();
        assert_eq!(
            (b.count, b.mean, b.p50, b.p90, b.p99, b.max),
            (5, 0.6, 0.0, 4.0, 4.0, 4.0)
        );
        // All negative: max is the least negative.
        let h: Histogram = [-1_000_000, -2_000_000].into_iter().collect();
        let b = h.block().unwrap();
        assert_eq!((b.mean, b.p50, b.p90, b.max), (-1.5, -2.0, -1.0, -1.0));
        // Mean rounds halves away from zero: -3 / 2 = -1.5 → -2, 3 / 2 → 2.
        assert_eq!(
            [-1, -2].into_iter().collect::<Histogram>().mean_ns(),
            Some(-2)
        );
        assert_eq!([1, 2].into_iter().collect::<Histogram>().mean_ns(), Some(2));
        assert_eq!(
            [1, 1, 2].into_iter().collect::<Histogram>().mean_ns(),
            Some(1)
        );
    }

    #[test]
    fn empty_histogram() {
        let h = Histogram::new();
        assert_eq!(h, Histogram::default());
        assert_eq!(h.count(), 0);
        assert_eq!(h.sum(), 0);
        assert_eq!(h.min(), None);
        assert_eq!(h.max(), None);
        assert_eq!(h.mean_ns(), None);
        assert_eq!(h.quantile(0.5), None);
        assert_eq!(h.block(), None);
        assert_eq!(h.heap_bytes(), 0);
        let mut g: Histogram = [5].into_iter().collect();
        g.merge(&h);
        assert_eq!(g, [5].into_iter().collect::<Histogram>());
        let mut e = Histogram::new();
        e.merge(&g);
        assert_eq!(e, g);
        assert_eq!(g.quantile(f64::NAN), None);
        assert_eq!(g.quantile(-1.0), Some(5));
        assert_eq!(g.quantile(2.0), Some(5));
    }

    #[test]
    fn float_rank_matches_integer_percent_rank() {
        for n in 1..=3000u64 {
            for k in 0..=100u64 {
                let want = (n * k).div_ceil(100).max(1);
                let x = (k as f64 / 100.0) * n as f64;
                let got = (x - x * 4.0 * f64::EPSILON).ceil() as u64;
                assert_eq!(got.max(1), want, "n={n} k={k}");
            }
        }
        // 0.07 * 100 is 7.000000000000001 in f64; the rank is still 7.
        let h: Histogram = (1..=100).collect();
        assert_eq!(h.quantile(0.07), Some(7));
        assert_eq!(h.quantile(0.29), Some(29));
    }

    #[test]
    fn bucket_representative_within_0_39_percent() {
        let mut rng = Rng(7);
        let mut mags: Vec<u64> = (0..5000).map(|_| rng.next() >> (rng.next() % 64)).collect();
        for e in 0..64 {
            let p = 1u64 << e;
            mags.extend([p - 1, p, p + 1]);
        }
        mags.extend([u64::MAX, 1 << 63, i64::MAX as u64]);
        for mag in mags {
            let index = bucket_index(mag);
            let rep = representative(index);
            assert!(
                (rep - i128::from(mag)).abs() * 256 <= i128::from(mag),
                "mag {mag}"
            );
            assert!(index < 1 << (64 - INDEX_SHIFT));
        }
        // Exact below 256, boundaries continuous and monotonic.
        assert_eq!(bucket_index(255), 255);
        assert_eq!(bucket_index(256), 256);
        assert_eq!(bucket_index(257), 256);
        assert_eq!(bucket_index(258), 257);
        assert_eq!(bucket_index(511), 383);
        assert_eq!(bucket_index(512), 384);
        assert_eq!(representative(256), 257);
        assert_eq!(bucket_index(1 << 63), 7296);
        // Continuous: consecutive magnitudes never skip an index.
        for mag in 0..100_000u64 {
            let (a, b) = (bucket_index(mag), bucket_index(mag + 1));
            assert!(b == a || b == a + 1, "gap at {mag}");
        }
        // Monotonic across every power of two up to the top.
        for e in 1..64 {
            let p = 1u64 << e;
            assert!(bucket_index(p - 1) < bucket_index(p), "2^{e}");
        }
    }

    #[test]
    fn threshold_switches_on_total_count() {
        let mut rng = Rng(3);
        let values: Vec<i64> = (0..EXACT_MAX_COUNT).map(|_| rng.latency()).collect();
        let mut h: Histogram = values.iter().copied().collect();
        assert!(h.is_exact());
        let mut sorted = values.clone();
        sorted.sort_unstable();
        for k in 0..=1000 {
            let q = k as f64 / 1000.0;
            assert_eq!(h.quantile(q), Some(exact_quantile(&sorted, q)), "q={q}");
        }
        h.record(1_000);
        assert!(!h.is_exact());
        assert_eq!(h.count(), EXACT_MAX_COUNT + 1);
        // Two exact halves whose total passes the limit merge into buckets.
        let (a, b) = values.split_at(1500);
        let mut ha: Histogram = a.iter().copied().collect();
        let hb: Histogram = b.iter().chain([&1_000]).copied().collect();
        assert!(ha.is_exact() && hb.is_exact());
        ha.merge(&hb);
        assert!(!ha.is_exact());
        assert_eq!(ha, h);
    }

    #[test]
    fn large_random_set_within_0_4_percent() {
        let mut rng = Rng(42);
        let mut values: Vec<i64> = (0..100_000).map(|_| rng.latency()).collect();
        values.extend([0, 0, 0, -7, 5]);
        let h: Histogram = values.iter().copied().collect();
        assert!(!h.is_exact());
        values.sort_unstable();
        assert_eq!(h.min(), values.first().copied());
        assert_eq!(h.max(), values.last().copied());
        assert_eq!(h.sum(), values.iter().map(|&v| i128::from(v)).sum::<i128>());
        let mut worst = 0.0_f64;
        for k in 0..=10_000 {
            let q = k as f64 / 10_000.0;
            let want = exact_quantile(&values, q);
            let got = h.quantile(q).unwrap();
            let err = (got - want).abs() as f64 / (want.abs().max(1)) as f64;
            worst = worst.max(err);
            assert!(err <= 0.004, "q={q} want {want} got {got}");
        }
        assert!(worst > 0.0, "bucketed quantiles should not all be exact");
        let b = h.block().unwrap();
        assert_eq!(b.count, 100_005);
        assert_eq!(b.max, ns_to_ms(*values.last().unwrap()));
        let within = |got: f64, q: f64| {
            let want = ns_to_ms(exact_quantile(&values, q));
            (got - want).abs() <= want.abs() * 0.004 + 0.001
        };
        assert!(within(b.p50, 0.5) && within(b.p90, 0.9));
        assert!(within(b.p95, 0.95) && within(b.p99, 0.99));
        // 23 octaves of each sign well occupied: at most 2 × 3000 buckets of
        // 8 bytes, plus at most a quarter of slack.
        assert!(
            h.heap_bytes() <= 2 * 3000 * 8 * 5 / 4,
            "{} bytes",
            h.heap_bytes()
        );
    }

    proptest! {
        /// Building buckets from many values at once gives the buckets of
        /// adding them one by one.
        #[test]
        fn bulk_buckets_match_one_by_one(
            values in proptest::collection::vec(prop_oneof![-5_000_000i64..5_000_000, Just(0i64), any::<i64>()], 0..300),
        ) {
            let mut one = Buckets::default();
            for &v in &values {
                one.add(v, 1);
            }
            prop_assert_eq!(Buckets::from_values(&values), one);
        }

        /// The windowed search finds what a plain binary search finds.
        #[test]
        fn find_entry_matches_binary_search(
            mut idx in proptest::collection::btree_set(0u64..300, 0..60),
            probe in 0u64..320,
        ) {
            let store: Vec<u64> = std::mem::take(&mut idx)
                .into_iter()
                .map(|i| i << INDEX_SHIFT | 1)
                .collect();
            prop_assert_eq!(
                find_entry(&store, probe),
                store.binary_search_by_key(&probe, |e| e >> INDEX_SHIFT)
            );
        }
    }

    #[test]
    fn window_sits_on_the_densest_buckets() {
        // Fits: the whole span.
        assert_eq!(densest_window(&[1, 0, 2]), (0, 3));
        // 3000 slots: a dense core at 1500..1800 beats sparse edges.
        let mut counts = vec![0u64; 3000];
        counts[0] = 5;
        counts[2999] = 5;
        for c in &mut counts[1500..1800] {
            *c = 3;
        }
        let (start, end) = densest_window(&counts);
        assert_eq!((start, end), (1500, 1800));
        // Values in and out of the window all count, in order.
        let mut values: Vec<i64> = (0..3000).map(|i| 2_000_000 + i * 1_000).collect();
        values.extend([1, 300, 30_000_000_000, 40_000_000_000]);
        let h: Histogram = values.iter().copied().collect();
        let Store::Buckets(b) = &h.store else {
            panic!("bucketed")
        };
        assert!(b.window.len() <= WINDOW_SLOTS && !b.pos.is_empty());
        assert_eq!(b.positive().map(|(_, c)| c).sum::<u64>(), 3004);
        let indices: Vec<u64> = b.positive().map(|(i, _)| i).collect();
        assert!(indices.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(h.quantile(0.0), Some(1));
        assert_eq!(h.quantile(1.0), Some(40_000_000_000));
        // Rank 2 is the 300 ns value, as its bucket's representative.
        assert_eq!(
            h.value_at_rank(2),
            Some(representative(bucket_index(300)) as i64)
        );
    }

    #[test]
    fn concentrated_data_is_small() {
        // 1 million values between 2 and 20 ms plus a few 30 s timeouts.
        let mut rng = Rng(9);
        let mut h = Histogram::new();
        for i in 0..1_000_000 {
            let v = if i % 10_000 == 0 {
                30_000_000_000
            } else {
                2_000_000 + (rng.next() % 18_000_000) as i64
            };
            h.record(v);
        }
        assert!(h.heap_bytes() <= 5 * 1024, "{} bytes", h.heap_bytes());
        assert_eq!(h.max(), Some(30_000_000_000));
        assert_eq!(h.quantile(1.0), Some(30_000_000_000));
    }

    #[test]
    fn negative_bucket_mode() {
        let mut rng = Rng(5);
        let mut values: Vec<i64> = (0..5000).map(|_| -(rng.latency().abs())).collect();
        let h: Histogram = values.iter().copied().collect();
        values.sort_unstable();
        for k in 0..=100 {
            let q = k as f64 / 100.0;
            let (want, got) = (exact_quantile(&values, q), h.quantile(q).unwrap());
            assert!(
                (got - want).abs() * 250 <= want.abs(),
                "q={q} want {want} got {got}"
            );
        }
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let mut h: Histogram = [i64::MIN, i64::MAX, i64::MIN, 0].into_iter().collect();
        assert_eq!(h.sum(), 2 * i128::from(i64::MIN) + i128::from(i64::MAX));
        assert_eq!(h.quantile(0.5), Some(i64::MIN));
        assert!(h.block().is_some());
        h.extend((0..EXACT_MAX_COUNT as i64).map(|i| {
            if i % 2 == 0 {
                i64::MIN + i
            } else {
                i64::MAX - i
            }
        }));
        assert!(!h.is_exact());
        for k in 0..=100 {
            assert!(h.quantile(k as f64 / 100.0).is_some());
        }
        assert_eq!(h.quantile(0.0), Some(i64::MIN));
        assert_eq!(h.quantile(1.0), Some(i64::MAX));
        let b = h.block().unwrap();
        assert_eq!(b.max, ns_to_ms(i64::MAX));
        // (2^63 - 1) + (2^63 - 2) = 2^64 - 3; / 2 = 2^63 - 1.5 → away from zero.
        let h: Histogram = [i64::MAX, i64::MAX - 1].into_iter().collect();
        assert_eq!(h.mean_ns(), Some(i64::MAX));
        let h: Histogram = [i64::MIN, i64::MIN + 1].into_iter().collect();
        assert_eq!(h.mean_ns(), Some(i64::MIN));
    }

    /// `len` values from `seed` that exercise both signs, zero, the linear
    /// range and wide spreads (generated here rather than element by element
    /// by proptest, which is ten times slower in debug builds).
    fn mixed(seed: u64, len: usize) -> Vec<i64> {
        let mut rng = Rng(seed);
        (0..len)
            .map(|_| match rng.next() % 8 {
                0 => -((rng.next() % 10_000_000) as i64),
                1 => (rng.next() % 600) as i64 - 300,
                2 => rng.next() as i64,
                _ => rng.latency(),
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn merge_equals_histogram_of_concatenation(
            seed in any::<u64>(),
            len in 0usize..4500,
            cut1 in 0.0f64..1.0,
            cut2 in 0.0f64..1.0,
            order in 0usize..6,
        ) {
            let values = mixed(seed, len);
            let (c1, c2) = {
                let (a, b) = ((cut1 * values.len() as f64) as usize, (cut2 * values.len() as f64) as usize);
                (a.min(b), a.max(b))
            };
            let parts = [&values[..c1], &values[c1..c2], &values[c2..]];
            let hs: Vec<Histogram> = parts.iter().map(|p| p.iter().copied().collect()).collect();
            let whole: Histogram = values.iter().copied().collect();

            // merge(h(a), h(b)) == h(a ++ b), left to right.
            let mut ab = hs[0].clone();
            ab.merge(&hs[1]);
            let two: Histogram = values[..c2].iter().copied().collect();
            prop_assert_eq!(&ab, &two);
            prop_assert_eq!(ab.block(), two.block());

            // Any merge order and grouping of the three parts.
            let perms = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
            let [i, j, k] = perms[order];
            let mut left = hs[i].clone();
            left.merge(&hs[j]);
            left.merge(&hs[k]);
            let mut right = hs[j].clone();
            right.merge(&hs[k]);
            let mut grouped = hs[i].clone();
            grouped.merge(&right);
            prop_assert_eq!(&left, &whole);
            prop_assert_eq!(&grouped, &whole);
            prop_assert_eq!(left.block(), whole.block());
            prop_assert_eq!(grouped.block(), whole.block());
            prop_assert_eq!(whole.is_exact(), values.len() as u64 <= EXACT_MAX_COUNT);
        }

        #[test]
        fn quantiles_within_bounds(seed in any::<u64>(), len in 1usize..3000, q in 0.0f64..=1.0) {
            let values = mixed(seed, len);
            let h: Histogram = values.iter().copied().collect();
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let want = exact_quantile(&sorted, q);
            let got = h.quantile(q).unwrap();
            prop_assert!(got >= sorted[0] && got <= sorted[sorted.len() - 1]);
            let err = (i128::from(got) - i128::from(want)).abs();
            prop_assert!(err * 256 <= i128::from(want).abs(), "want {} got {}", want, got);
            let b = h.block().unwrap();
            prop_assert_eq!(b.count, values.len() as u64);
            prop_assert!(b.p50 <= b.p90 && b.p90 <= b.p95 && b.p95 <= b.p99 && b.p99 <= b.max);
        }
    }
}
