//! Group stage: the records of every chunk → partitions of whole requests,
//! each sorted by (request, ts, file, offset).
//!
//! A request's records are spread over many chunks and files. Rather than
//! concatenating everything and sorting one huge array (a second copy of
//! every record at the peak, and a sort that misses the cache on every
//! comparison), each parse worker cuts its chunk by a hash of the request
//! ID's value into [`PARTITIONS`] runs while the records are hot, and
//! appends each run to its partition straight away. Partitions are lists of
//! fixed-size blocks, so they grow without copying and waste at most one
//! block each; the chunk's own buffer is freed by the worker that made it,
//! so memory holds every record about once. Afterwards each partition — a
//! few MB of whole requests — is remapped and sorted on its own, in
//! parallel, in a per-worker scratch buffer, and written back.
//!
//! The partition depends only on the ID's value (its text for interned
//! IDs), never on the chunk, the file order or the thread count; within a
//! partition, (request, ts, file, offset) is unique per record, so the order
//! in which workers appended runs leaves no trace.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;

use crate::model::{IdKey, Interner, Record};

/// Number of partitions: enough that each fits in a core's cache (about
/// 1 MB per GB of input) and that any number of threads balances well.
pub const PARTITIONS: usize = 256;

/// Records per block (56,000 bytes): a partition wastes at most one block,
/// and the size stays inside the allocator's medium class (64 KiB blocks
/// measured 80 MB more resident memory per GB of input).
const BLOCK: usize = 1000;

/// The partition of a compact ID value.
fn partition_of_value(tag: u8, hi: u64, lo: u64) -> usize {
    // splitmix64's finaliser over both halves: every input bit reaches the
    // top byte, which picks the partition.
    let mut x = hi.rotate_left(32) ^ lo ^ u64::from(tag).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x >> 56) as usize % PARTITIONS
}

/// The partition of an interned ID's text.
fn partition_of_text(text: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in text.as_bytes() {
        // FNV-1a: stable across versions and platforms.
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    partition_of_value(0, h, text.len() as u64)
}

/// One partition: its records in blocks of [`BLOCK`], all full but the last.
#[derive(Debug, Default)]
struct Blocks {
    blocks: Vec<Vec<Record>>,
    len: usize,
    /// While gathering: (chunk, count) of each appended run, in order, so
    /// the remap knows every record's chunk without searching for it.
    runs: Vec<(u32, u32)>,
    /// Once sorted: where each request starts, ascending.
    request_starts: Vec<u32>,
}

impl Blocks {
    fn extend(&mut self, mut records: impl Iterator<Item = Record>) {
        loop {
            let block = match self.blocks.last_mut() {
                Some(b) if b.len() < BLOCK => b,
                _ => {
                    self.blocks.push(Vec::with_capacity(BLOCK));
                    match self.blocks.last_mut() {
                        Some(b) => b,
                        None => return,
                    }
                }
            };
            let before = block.len();
            block.extend(records.by_ref().take(BLOCK - before));
            self.len += block.len() - before;
            if block.len() < BLOCK {
                return;
            }
        }
    }

    /// Copies `range` into `out` (cleared first).
    fn copy_range(&self, range: Range<usize>, out: &mut Vec<Record>) {
        out.clear();
        let (mut at, end) = (range.start, range.end.min(self.len));
        while at < end {
            let Some(block) = self.blocks.get(at / BLOCK) else {
                return;
            };
            let from = at % BLOCK;
            let to = (end - at + from).min(block.len());
            out.extend_from_slice(block.get(from..to).unwrap_or_default());
            at += to.saturating_sub(from).max(1);
        }
    }

    /// `range` borrowed when it lies in one block.
    fn borrow(&self, range: Range<usize>) -> Option<&[Record]> {
        if range.is_empty() {
            return Some(&[]);
        }
        let b = range.start / BLOCK;
        if (range.end - 1) / BLOCK != b {
            return None;
        }
        self.blocks
            .get(b)?
            .get(range.start % BLOCK..range.end - b * BLOCK)
    }
}

/// Takes the records of parsed chunks, from any number of workers at once.
#[derive(Debug)]
pub struct Partitioner {
    parts: Vec<Mutex<Blocks>>,
}

impl Default for Partitioner {
    fn default() -> Self {
        Partitioner {
            parts: (0..PARTITIONS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl Partitioner {
    /// Appends chunk number `chunk`'s records (still with chunk-local ids)
    /// to their partitions; `ids` is the chunk's interner of text IDs, which
    /// the records' text keys index.
    pub fn add(&self, chunk: usize, records: &[Record], ids: &Interner) {
        let text_part: Vec<usize> = ids.names().iter().map(|t| partition_of_text(t)).collect();
        let part = |k: IdKey| match k.text_index() {
            Some(i) => text_part.get(i as usize).copied().unwrap_or(0),
            None => partition_of_value(k.tag, k.hi, k.lo),
        };
        // A counting sort of record indexes by partition, in line order.
        let parts: Vec<u8> = records.iter().map(|r| part(r.req()) as u8).collect();
        let mut bounds = [0usize; PARTITIONS + 1];
        for &p in &parts {
            if let Some(b) = bounds.get_mut(usize::from(p) + 1) {
                *b += 1;
            }
        }
        for i in 1..bounds.len() {
            let prev = bounds.get(i - 1).copied().unwrap_or(0);
            if let Some(b) = bounds.get_mut(i) {
                *b += prev;
            }
        }
        let mut next = bounds;
        let mut order = vec![0u32; records.len()];
        for (i, &p) in parts.iter().enumerate() {
            if let Some(n) = next.get_mut(usize::from(p)) {
                if let Some(o) = order.get_mut(*n) {
                    *o = i as u32;
                }
                *n += 1;
            }
        }
        for (p, part) in self.parts.iter().enumerate() {
            let (Some(&a), Some(&b)) = (bounds.get(p), bounds.get(p + 1)) else {
                continue;
            };
            if a == b {
                continue;
            }
            let run = order.get(a..b).unwrap_or_default();
            let mut blocks = part.lock().unwrap_or_else(PoisonError::into_inner);
            blocks.extend(run.iter().filter_map(|&i| records.get(i as usize).copied()));
            blocks.runs.push((chunk as u32, run.len() as u32));
        }
    }

    /// Remaps every record with `remap(chunk, record)` (chunk-local ids →
    /// global ones) and sorts each partition by (request, ts, file, offset).
    pub fn finish<F>(self, remap: F) -> Grouped
    where
        F: Fn(usize, Record) -> Record + Sync,
    {
        let mut parts: Vec<Blocks> = self
            .parts
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner))
            .collect();
        parts.par_iter_mut().for_each(|part| {
            // One scratch per worker thread for the whole stage (rayon
            // may call an init closure once per split job instead).
            SORT_SCRATCH.with(|cell| match cell.try_borrow_mut() {
                Ok(mut scratch) => sort_partition(part, &remap, &mut scratch),
                Err(_) => sort_partition(part, &remap, &mut SortScratch::default()),
            });
        });
        // The buffers are a partition's size; the next stages need none.
        rayon::broadcast(|_| SORT_SCRATCH.with(|cell| cell.replace(SortScratch::default())));
        Grouped { parts }
    }
}

thread_local! {
    /// Each worker's buffers for sorting partitions.
    static SORT_SCRATCH: std::cell::RefCell<SortScratch> =
        std::cell::RefCell::new(SortScratch::default());
}

/// Remaps the records of one partition and sorts them in place.
fn sort_partition<F>(part: &mut Blocks, remap: &F, scratch: &mut SortScratch)
where
    F: Fn(usize, Record) -> Record,
{
    // Remapped in place, run by run (each run knows its chunk).
    let mut runs = part.runs.iter();
    let (mut chunk, mut left) = (0u32, 0u32);
    for r in part.blocks.iter_mut().flat_map(|b| b.iter_mut()) {
        while left == 0 {
            match runs.next() {
                Some(&(c, n)) => (chunk, left) = (c, n),
                None => break,
            }
        }
        *r = remap(chunk as usize, *r);
        left = left.saturating_sub(1);
    }
    part.runs = Vec::new();
    scratch.sort(&part.blocks);
    part.request_starts = std::mem::take(&mut scratch.starts);
    for (block, sorted) in part.blocks.iter_mut().zip(scratch.sorted.chunks(BLOCK)) {
        block.clear();
        block.extend_from_slice(sorted);
    }
}

/// A worker's buffers for sorting one partition.
#[derive(Default)]
struct SortScratch {
    /// The partition's records sorted by (request, ts, file, offset).
    sorted: Vec<Record>,
    /// Per place in `sorted`, the index of the record it takes (in block
    /// order).
    source: Vec<u32>,
    /// Per request (in order of first appearance): its key and its count.
    requests: Vec<(IdKey, usize)>,
    /// Request key → index in `requests`.
    index: rustc_hash::FxHashMap<IdKey, u32>,
    /// Per record, the index of its request.
    of: Vec<u32>,
    /// Where each request starts in `sorted`, ascending.
    starts: Vec<u32>,
}

impl SortScratch {
    /// Sorts the records of `blocks` into `sorted`: a hash pass groups the
    /// records by request (a few hundred to a few thousand requests per
    /// partition), the requests are sorted by key, each record's place is
    /// computed and the records gathered into it (the blocks are read in
    /// place, not copied first), and each request's handful of records is
    /// sorted by (ts, loc). Linear in the records, where one comparison sort
    /// over 56-byte records cost several times more.
    fn sort(&mut self, blocks: &[Vec<Record>]) {
        self.requests.clear();
        self.index.clear();
        self.of.clear();
        // Sized once: grown by doubling, a large partition's buffers were
        // copied and faulted in again and again.
        let n: usize = blocks.iter().map(Vec::len).sum();
        self.of.reserve(n);
        self.sorted.clear();
        self.sorted.reserve(n);
        for r in blocks.iter().flatten() {
            let next = self.requests.len() as u32;
            let k = *self.index.entry(r.req()).or_insert(next);
            if k == next {
                self.requests.push((r.req(), 0));
            }
            if let Some(q) = self.requests.get_mut(k as usize) {
                q.1 += 1;
            }
            self.of.push(k);
        }
        // Request order by key; `start[k]` is where request k's records go.
        let mut order: Vec<u32> = (0..self.requests.len() as u32).collect();
        order.sort_unstable_by_key(|&k| self.requests.get(k as usize).map(|q| q.0));
        let mut start = vec![0usize; self.requests.len()];
        let mut at = 0usize;
        self.starts = Vec::with_capacity(order.len());
        for &k in &order {
            if let (Some(s), Some(q)) = (start.get_mut(k as usize), self.requests.get(k as usize)) {
                *s = at;
                self.starts.push(at as u32);
                at += q.1;
            }
        }
        // Each record's place, then the records gathered place by place.
        self.source.clear();
        self.source.resize(self.of.len(), 0);
        let mut next = start.clone();
        for (i, &k) in self.of.iter().enumerate() {
            if let Some(n) = next.get_mut(k as usize) {
                if let Some(slot) = self.source.get_mut(*n) {
                    *slot = i as u32;
                }
                *n += 1;
            }
        }
        self.sorted.extend(self.source.iter().filter_map(|&i| {
            let i = i as usize;
            blocks
                .get(i / BLOCK)
                .and_then(|b| b.get(i % BLOCK))
                .copied()
        }));
        for (&s, q) in start.iter().zip(&self.requests) {
            if let Some(run) = self.sorted.get_mut(s..s + q.1) {
                run.sort_unstable_by_key(|r| (r.ts, r.loc));
            }
        }
    }
}

/// Every record, in partitions of whole requests, each partition sorted by
/// (request, ts, file, offset).
#[derive(Debug, Default)]
pub struct Grouped {
    parts: Vec<Blocks>,
}

impl Grouped {
    /// The record ranges of partition `part`'s requests, in order.
    pub fn requests(&self, part: usize) -> impl ExactSizeIterator<Item = Range<usize>> + '_ {
        let (starts, len) = self
            .parts
            .get(part)
            .map_or((&[][..], 0), |p| (&p.request_starts[..], p.len));
        starts.iter().enumerate().map(move |(k, &s)| {
            let end = starts.get(k + 1).map_or(len, |&e| e as usize);
            s as usize..end
        })
    }

    /// Number of partitions.
    pub fn partitions(&self) -> usize {
        self.parts.len()
    }

    /// Copies partition `part` into `out`, contiguous (tests read whole
    /// partitions this way).
    #[cfg(test)]
    fn copy_partition(&self, part: usize, out: &mut Vec<Record>) {
        match self.parts.get(part) {
            Some(p) => p.copy_range(0..p.len, out),
            None => out.clear(),
        }
    }

    /// The records of `range` in partition `part`: borrowed when they lie in
    /// one block (nearly always), else copied.
    pub fn slice(&self, part: usize, range: Range<usize>) -> Cow<'_, [Record]> {
        let Some(p) = self.parts.get(part) else {
            return Cow::Borrowed(&[]);
        };
        match p.borrow(range.clone()) {
            Some(s) => Cow::Borrowed(s),
            None => {
                let mut out = Vec::with_capacity(range.len());
                p.copy_range(range, &mut out);
                Cow::Owned(out)
            }
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.len).sum()
    }

    /// True without records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(req: IdKey, ts: i64, file: u32, offset: u64) -> Record {
        Record::bare(req, ts, Record::pack_loc(file, offset))
    }

    fn keys(records: &[Record]) -> Vec<(IdKey, i64, u64)> {
        records.iter().map(|r| (r.req(), r.ts, r.loc)).collect()
    }

    /// Interned text IDs land in the partition of their text, whatever their
    /// chunk-local index; compact IDs in that of their value.
    #[test]
    fn partition_follows_the_value_not_the_index() {
        let mut a = Interner::default();
        a.intern("req-b");
        a.intern("req-a");
        let mut b = Interner::default();
        b.intern("req-a");
        let p = Partitioner::default();
        p.add(0, &[rec(IdKey::interned(1), 5, 0, 0)], &a);
        p.add(1, &[rec(IdKey::interned(0), 6, 1, 0)], &b);
        let g = p.finish(|_, r| r);
        let want = partition_of_text("req-a");
        assert_eq!(g.parts.get(want).map(|p| p.len), Some(2));
        assert_eq!(g.len(), 2);
        let hex = IdKey::compact("00f067aa0ba902b7").unwrap();
        let p = Partitioner::default();
        p.add(0, &[rec(hex, 1, 0, 0)], &Interner::default());
        let g = p.finish(|_, r| r);
        let at = partition_of_value(hex.tag, hex.hi, hex.lo);
        assert_eq!(g.parts.get(at).map(|p| p.len), Some(1));
    }

    /// Every record comes out once; each partition is sorted by (request,
    /// ts, loc), holds whole requests from several chunks, and reads the
    /// same through `slice` across block boundaries as through
    /// `copy_partition`. The remap is applied to every record.
    #[test]
    fn partitions_hold_whole_sorted_requests() {
        let ids: Vec<IdKey> = (1..=40u64)
            .map(|i| IdKey::compact(&format!("{i:x}")).unwrap())
            .collect();
        let p = Partitioner::default();
        let mut all = Vec::new();
        // Enough records that some partitions span several blocks.
        for file in 0..3u32 {
            let recs: Vec<Record> = (0..40_000u64)
                .map(|i| rec(ids[(i * 7 % 40) as usize], (i % 13) as i64, file, i))
                .collect();
            all.extend(recs.iter().copied());
            p.add(file as usize, &recs, &Interner::default());
        }
        // The remap learns each record's chunk (here: its file).
        let g = p.finish(|chunk, mut r| {
            assert_eq!(chunk as u32, r.file());
            r.service = 9;
            r
        });
        assert_eq!(g.len(), 120_000);
        let mut seen = std::collections::BTreeSet::new();
        let mut got = Vec::new();
        let mut buf = Vec::new();
        let mut multi_block = 0;
        for part in 0..g.partitions() {
            g.copy_partition(part, &mut buf);
            assert!(buf.iter().all(|r| r.service == 9));
            let k = keys(&buf);
            assert!(k.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
            // Request ranges cover the partition, one request each.
            let mut next = 0;
            for range in g.requests(part) {
                assert_eq!(range.start, next);
                let req = buf[range.start].req();
                assert!(buf[range.clone()].iter().all(|r| r.req() == req));
                assert!(buf.get(range.end).is_none_or(|r| r.req() != req));
                next = range.end;
            }
            assert_eq!(next, buf.len());
            let mut reqs: Vec<IdKey> = buf.iter().map(|r| r.req()).collect();
            reqs.dedup();
            for r in reqs {
                assert!(seen.insert(r), "request {r:?} in two partitions");
            }
            if buf.len() > BLOCK {
                multi_block += 1;
                let range = BLOCK - 5..BLOCK + 7;
                let s = g.slice(part, range.clone());
                assert!(matches!(s, Cow::Owned(_)));
                assert_eq!(keys(&s), k[range].to_vec());
                let s = g.slice(part, 3..9);
                assert!(matches!(s, Cow::Borrowed(_)));
                assert_eq!(keys(&s), k[3..9].to_vec());
            }
            got.extend(k);
        }
        assert!(multi_block > 0);
        assert_eq!(seen.len(), 40);
        let mut want = keys(&all);
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(want, got);
    }
}
