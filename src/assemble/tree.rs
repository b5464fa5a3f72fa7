//! Building one request's tree: visits from records (with and without span
//! IDs), calls paired inside caller visits, parent links in the SPEC's
//! order, offsets, and the figures of every visit and hop.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;

use rustc_hash::FxHashMap as HashMap;

use super::{
    AssembleOptions, Assembled, Incomplete, Link, Offsets, UnclaimedCall, Universe, VisitFigures,
};
use crate::model::{IdKey, Kind, Record, SymId};

/// Deepest tree walked recursively; deeper subtrees are charged to the
/// visit where the walk stopped (requests that deep are `too_large` by
/// default anyway).
const MAX_DEPTH: usize = 20_000;

/// A record's part in a visit's timing.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Server {
    Recv(Option<i64>),
    Send(Option<i64>),
}

/// A record's part in a call.
#[derive(Clone, Copy, Debug, PartialEq)]
enum CallEvent {
    Send(SymId),
    Recv(SymId),
    Complete(SymId, i64, i64),
}

fn server_role(r: &Record) -> Option<Server> {
    match r.kind {
        Some(Kind::ServerRecv) => Some(Server::Recv(r.duration())),
        Some(Kind::ServerSend) => Some(Server::Send(r.duration())),
        Some(_) => None,
        None if r.peer().is_none() && r.duration().is_some() => Some(if r.anchored_start {
            Server::Recv(r.duration())
        } else {
            Server::Send(r.duration())
        }),
        None => None,
    }
}

fn call_role(r: &Record, u: &Universe) -> Option<CallEvent> {
    let target = *u.peer_target.get(r.peer()? as usize)?;
    match (r.kind, r.duration()) {
        (Some(Kind::ClientSend), Some(d)) => {
            Some(CallEvent::Complete(target, r.ts, r.ts.saturating_add(d)))
        }
        (Some(Kind::ClientSend), None) => Some(CallEvent::Send(target)),
        (Some(Kind::ClientRecv), Some(d)) => {
            Some(CallEvent::Complete(target, r.ts.saturating_sub(d), r.ts))
        }
        (Some(Kind::ClientRecv), None) => Some(CallEvent::Recv(target)),
        (None, Some(d)) if r.anchored_start => {
            Some(CallEvent::Complete(target, r.ts, r.ts.saturating_add(d)))
        }
        (None, Some(d)) => Some(CallEvent::Complete(target, r.ts.saturating_sub(d), r.ts)),
        _ => None,
    }
}

#[derive(Clone, Debug)]
struct Visit {
    service: SymId,
    virtual_: bool,
    /// Its record indices, ascending once finished: a range of
    /// [`Scratch::visit_recs`] (one pool for every visit of the request, so
    /// a visit costs no allocation of its own).
    recs: Range<usize>,
    spans: Vec<IdKey>,
    parent_span: Option<IdKey>,
    sr: Option<usize>,
    ss: Option<usize>,
    start: i64,
    end: i64,
    start_exact: bool,
    end_exact: bool,
    has_events: bool,
    failed: bool,
    first: (u32, u64),
    parent: Option<usize>,
    link: Link,
    /// Its outgoing calls: a range of the request's calls, which
    /// [`finish_visit`] appends visit by visit.
    calls: Range<usize>,
}

impl Visit {
    fn new(service: SymId) -> Visit {
        Visit {
            service,
            virtual_: false,
            recs: 0..0,
            spans: Vec::new(),
            parent_span: None,
            sr: None,
            ss: None,
            start: 0,
            end: 0,
            start_exact: false,
            end_exact: false,
            has_events: false,
            failed: false,
            first: (u32::MAX, u64::MAX),
            parent: None,
            link: Link::Root,
            calls: 0..0,
        }
    }

    fn exact(&self) -> bool {
        self.start_exact && self.end_exact
    }

    /// Its record indices, from the request's pool.
    fn recs<'p>(&self, pool: &'p [usize]) -> &'p [usize] {
        pool.get(self.recs.clone()).unwrap_or_default()
    }

    /// The interval used to decide which records a visit contains, before
    /// its own timing is known.
    fn anchor_interval(&self, recs: &[Record]) -> (i64, i64) {
        let sr = self.sr.and_then(|i| recs.get(i));
        let ss = self.ss.and_then(|i| recs.get(i));
        let lo = match (sr, ss) {
            (Some(r), _) => r.ts,
            (None, Some(s)) => s.duration().map_or(i64::MIN, |d| s.ts.saturating_sub(d)),
            _ => i64::MIN,
        };
        let hi = match (ss, sr) {
            (Some(s), _) => s.ts,
            (None, Some(r)) => r.duration().map_or(i64::MAX, |d| r.ts.saturating_add(d)),
            _ => i64::MAX,
        };
        (lo, hi)
    }
}

/// Appends visits whose records were gathered apart (the rarer paths) to
/// `out`, moving their records into the pool.
fn push_drafts(drafts: Vec<(Visit, Vec<usize>)>, out: &mut Vec<Visit>, pool: &mut Vec<usize>) {
    for (mut v, members) in drafts {
        let at = pool.len();
        pool.extend_from_slice(&members);
        v.recs = at..pool.len();
        out.push(v);
    }
}

/// A client_send waiting for its client_recv: (ts, failed, (file, offset)).
type PendingSend = (i64, bool, (u32, u64));

/// Orders parent candidates: the first is chosen.
type ParentRank = (std::cmp::Reverse<i64>, i64, u32, (u32, u64));

#[derive(Clone, Debug)]
struct Call {
    caller: usize,
    target: SymId,
    cs: Option<i64>,
    cr: Option<i64>,
    failed: bool,
    callee: Option<usize>,
    key: (i64, u32, u64),
}

/// Picks, for a time `ts`, the innermost interval containing it, else the
/// nearest (ties to the earlier); returns the index in `intervals`.
fn containing_or_nearest(intervals: &[(i64, i64)], ts: i64) -> Option<usize> {
    let mut best: Option<(usize, (u8, i128, i128, i128))> = None;
    for (i, &(lo, hi)) in intervals.iter().enumerate() {
        let key = if lo <= ts && ts <= hi {
            // Innermost: shortest, then latest start.
            (0u8, i128::from(hi) - i128::from(lo), 0i128, -i128::from(lo))
        } else {
            let dist = if ts < lo {
                i128::from(lo) - i128::from(ts)
            } else {
                i128::from(ts) - i128::from(hi)
            };
            (1u8, dist, i128::from(lo), 0)
        };
        if best.as_ref().is_none_or(|(_, b)| key < *b) {
            best = Some((i, key));
        }
    }
    best.map(|(i, _)| i)
}

/// [`containing_or_nearest`] for each of `times`, in their order. Asking
/// each time in turn costs intervals × times, which a request of thousands
/// of visits, each with its own lines, turns into seconds (9,000 visits of
/// 10 lines: 5 s); past a small size, one sweep in time order answers all
/// in (intervals + times) × log intervals, with the same ties.
fn containing_or_nearest_all(intervals: &[(i64, i64)], times: &[i64]) -> Vec<Option<usize>> {
    const SWEEP_FROM: usize = 4096;
    if intervals.len().saturating_mul(times.len()) < SWEEP_FROM {
        return times
            .iter()
            .map(|&ts| containing_or_nearest(intervals, ts))
            .collect();
    }
    sweep_containing_or_nearest(intervals, times)
}

/// The sweep of [`containing_or_nearest_all`]: intervals open in start
/// order and close in end order as the times go up.
fn sweep_containing_or_nearest(intervals: &[(i64, i64)], times: &[i64]) -> Vec<Option<usize>> {
    use std::collections::{BTreeSet, BinaryHeap};
    let width = |(lo, hi): (i64, i64)| i128::from(hi) - i128::from(lo);
    // Intervals by start (then index): they open in this order.
    let mut by_start: Vec<usize> = (0..intervals.len()).collect();
    by_start.sort_unstable_by_key(|&i| (intervals.get(i).map_or(0, |iv| iv.0), i));
    let mut queries: Vec<usize> = (0..times.len()).collect();
    queries.sort_by_key(|&q| times.get(q).copied().unwrap_or(0));
    let mut answers = vec![None; times.len()];
    let mut next_open = 0;
    // Open intervals, innermost first: shortest, then latest start, then
    // first index — the order of `containing_or_nearest`'s key.
    let mut open: BTreeSet<(i128, Reverse<i64>, usize)> = BTreeSet::new();
    let mut by_end: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::new();
    // The nearest interval ended before the time: latest end, then
    // earliest start, then first index.
    let mut ended: Option<(Reverse<i64>, i64, usize)> = None;
    for q in queries {
        let Some(&ts) = times.get(q) else { continue };
        while let Some(&i) = by_start.get(next_open) {
            let Some(&(lo, hi)) = intervals.get(i) else {
                break;
            };
            if lo > ts {
                break;
            }
            open.insert((width((lo, hi)), Reverse(lo), i));
            by_end.push(Reverse((hi, i)));
            next_open += 1;
        }
        while let Some(&Reverse((hi, i))) = by_end.peek() {
            if hi >= ts {
                break;
            }
            by_end.pop();
            let lo = intervals.get(i).map_or(0, |iv| iv.0);
            open.remove(&(width((lo, hi)), Reverse(lo), i));
            let key = (Reverse(hi), lo, i);
            if ended.is_none_or(|e| key < e) {
                ended = Some(key);
            }
        }
        let answer = match open.first() {
            Some(&(_, _, i)) => Some(i),
            None => {
                // Nearest: the one ended last before, or the next to start
                // (ties to the earlier start, then the first index).
                let before =
                    ended.map(|(Reverse(hi), lo, i)| (i128::from(ts) - i128::from(hi), lo, i));
                let after = by_start.get(next_open).and_then(|&i| {
                    intervals
                        .get(i)
                        .map(|&(lo, _)| (i128::from(lo) - i128::from(ts), lo, i))
                });
                match (before, after) {
                    (Some(b), Some(a)) => Some(b.min(a).2),
                    (b, a) => b.or(a).map(|x| x.2),
                }
            }
        };
        if let Some(slot) = answers.get_mut(q) {
            *slot = answer;
        }
    }
    answers
}

/// Adds each of the records `idxs` to the draft visit whose interval
/// (`intervals`, one per draft) contains its time, else the nearest one.
fn join_by_time(
    idxs: &[usize],
    recs: &[Record],
    intervals: &[(i64, i64)],
    visits: &mut [(Visit, Vec<usize>)],
) {
    let (idxs, times): (Vec<usize>, Vec<i64>) = idxs
        .iter()
        .filter_map(|&i| recs.get(i).map(|r| (i, r.ts)))
        .unzip();
    for (i, k) in idxs
        .into_iter()
        .zip(containing_or_nearest_all(intervals, &times))
    {
        if let Some((_, members)) = k.and_then(|k| visits.get_mut(k)) {
            members.push(i);
        }
    }
}

/// Pairs server events in order: each `server_send` closes the latest open
/// `server_recv`; what stays unpaired goes to `left`.
fn pair_up(
    events: impl Iterator<Item = (usize, Server)>,
    stack: &mut Vec<(usize, Server)>,
    pairs: &mut Vec<(Option<usize>, Option<usize>)>,
    left: &mut Vec<(usize, Server)>,
) {
    stack.clear();
    for (i, s) in events {
        match s {
            Server::Recv(_) => stack.push((i, s)),
            Server::Send(_) => match stack.pop() {
                Some((sr, _)) => pairs.push((Some(sr), Some(i))),
                None => left.push((i, s)),
            },
        }
    }
    left.append(stack);
}

/// The server events among the records `idxs`, in their order: (index,
/// role).
fn server_events<'r>(
    idxs: &'r [usize],
    recs: &'r [Record],
) -> impl Iterator<Item = (usize, Server)> + 'r {
    idxs.iter()
        .filter_map(|&i| recs.get(i).and_then(server_role).map(|s| (i, s)))
}

/// Visits of one service without span IDs: sr/ss pairing per file, then
/// across files; other records join the innermost containing visit. The
/// visits go to `out`, their records to `pool`.
fn plain_visits(
    service: SymId,
    idxs: &[usize],
    recs: &[Record],
    out: &mut Vec<Visit>,
    pool: &mut Vec<usize>,
) {
    // The usual case — no server event, a lone one, or one sr before one
    // ss — is a single visit holding every record (the general path below
    // gives the same).
    let mut first3 = server_events(idxs, recs);
    let single = match (first3.next(), first3.next(), first3.next()) {
        (None, _, _) => Some((None, None)),
        (Some((i, Server::Recv(_))), None, _) => Some((Some(i), None)),
        (Some((i, Server::Send(_))), None, _) => Some((None, Some(i))),
        (Some((i, Server::Recv(_))), Some((j, Server::Send(_))), None) => Some((Some(i), Some(j))),
        _ => None,
    };
    if let Some((sr, ss)) = single {
        let mut v = Visit::new(service);
        v.sr = sr;
        v.ss = ss;
        let at = pool.len();
        pool.extend_from_slice(idxs);
        v.recs = at..pool.len();
        out.push(v);
        return;
    }
    paired_visits(service, idxs, recs, out, pool);
}

/// [`plain_visits`] in general: any number of server events, paired per
/// file, then across files.
fn paired_visits(
    service: SymId,
    idxs: &[usize],
    recs: &[Record],
    out: &mut Vec<Visit>,
    pool: &mut Vec<usize>,
) {
    // `idxs` ascend, so `servers` does too.
    let servers: Vec<(usize, Server)> = server_events(idxs, recs).collect();
    if servers.is_empty() {
        let v = Visit::new(service);
        push_drafts(vec![(v, idxs.to_vec())], out, pool);
        return;
    }
    let file_of = |i: usize| recs.get(i).map_or(u32::MAX, Record::file);
    let mut pairs: Vec<(Option<usize>, Option<usize>)> = Vec::with_capacity(servers.len() / 2 + 1);
    let mut leftovers: Vec<(usize, Server)> = Vec::new();
    let mut stack: Vec<(usize, Server)> = Vec::new();
    let first_file = servers.first().map_or(u32::MAX, |&(i, _)| file_of(i));
    if servers.iter().all(|&(i, _)| file_of(i) == first_file) {
        // One file (the usual case): no per-file pass needed.
        pair_up(
            servers.iter().copied(),
            &mut stack,
            &mut pairs,
            &mut leftovers,
        );
    } else {
        let mut files: Vec<u32> = servers.iter().map(|&(i, _)| file_of(i)).collect();
        files.sort_unstable();
        files.dedup();
        for f in files {
            let events = servers.iter().copied().filter(|&(i, _)| file_of(i) == f);
            pair_up(events, &mut stack, &mut pairs, &mut leftovers);
        }
    }
    let mut still = Vec::new();
    if !leftovers.is_empty() {
        leftovers.sort_unstable_by_key(|(i, _)| *i);
        pair_up(leftovers.into_iter(), &mut stack, &mut pairs, &mut still);
    }
    for (i, s) in still {
        match s {
            Server::Recv(_) => pairs.push((Some(i), None)),
            Server::Send(_) => pairs.push((None, Some(i))),
        }
    }
    pairs.sort_unstable_by_key(|(a, b)| a.or(*b));
    let mut visits: Vec<(Visit, Vec<usize>)> = pairs
        .into_iter()
        .map(|(sr, ss)| {
            let mut v = Visit::new(service);
            v.sr = sr;
            v.ss = ss;
            let mut members = Vec::with_capacity(4);
            members.extend(sr);
            members.extend(ss);
            (v, members)
        })
        .collect();
    let intervals: Vec<(i64, i64)> = visits
        .iter()
        .map(|(v, _)| v.anchor_interval(recs))
        .collect();
    // Records that anchor a visit (sr/ss) are not assigned again.
    let others: Vec<usize> = idxs
        .iter()
        .copied()
        .filter(|&i| servers.binary_search_by_key(&i, |&(s, _)| s).is_err())
        .collect();
    join_by_time(&others, recs, &intervals, &mut visits);
    push_drafts(visits, out, pool);
}

/// Visits of one service with span IDs (SPEC §2 Visits), appended to `out`
/// with their records in `pool`.
fn span_visits(
    service: SymId,
    idxs: &[usize],
    recs: &[Record],
    u: &Universe,
    out: &mut Vec<Visit>,
    pool: &mut Vec<usize>,
) {
    let mut groups: BTreeMap<IdKey, Vec<usize>> = BTreeMap::new();
    let mut spanless = Vec::new();
    for &i in idxs {
        match recs.get(i).and_then(|r| u.spans_of(r).span) {
            Some(s) => groups.entry(s).or_default().push(i),
            None => spanless.push(i),
        }
    }
    let has_server = |g: &[usize]| {
        g.iter()
            .any(|&i| recs.get(i).and_then(server_role).is_some())
    };
    let parent_of = |g: &[usize]| -> Option<IdKey> {
        g.iter()
            .find_map(|&i| recs.get(i).and_then(|r| u.spans_of(r).parent))
    };
    // Each span without server events joins the visit of its parent span
    // when that span belongs to the same service (repeatedly).
    let names: Vec<IdKey> = groups.keys().copied().collect();
    let owner = span_owners(&names, |cur| {
        let g = groups.get(&cur)?;
        if has_server(g) {
            return None;
        }
        parent_of(g).filter(|p| *p != cur && groups.contains_key(p))
    });
    let mut by_owner: BTreeMap<IdKey, Vec<IdKey>> = BTreeMap::new();
    for &name in &names {
        let o = owner.get(&name).copied().unwrap_or(name);
        by_owner.entry(o).or_default().push(name);
    }
    let mut visits: Vec<(Visit, Vec<usize>)> = Vec::new();
    for (own, members) in by_owner {
        let mut v = Visit::new(service);
        let mut mine = Vec::new();
        for m in &members {
            if let Some(g) = groups.get(m) {
                mine.extend_from_slice(g);
            }
            v.spans.push(*m);
        }
        mine.sort_unstable();
        v.parent_span = groups.get(&own).and_then(|g| parent_of(g));
        for &i in &mine {
            match recs.get(i).and_then(server_role) {
                Some(Server::Recv(_)) if v.sr.is_none() => v.sr = Some(i),
                Some(Server::Send(_)) => v.ss = Some(i),
                _ => {}
            }
        }
        // Spans are primary in the order of their visit's first record.
        if let Some(pos) = v.spans.iter().position(|s| *s == own) {
            v.spans.swap(0, pos);
        }
        visits.push((v, mine));
    }
    visits.sort_by_key(|(_, mine)| mine.first().copied());
    let intervals: Vec<(i64, i64)> = visits
        .iter()
        .map(|(v, mine)| {
            let (lo, hi) = v.anchor_interval(recs);
            let first = mine.first().and_then(|&i| recs.get(i)).map(|r| r.ts);
            let last = mine.last().and_then(|&i| recs.get(i)).map(|r| r.ts);
            (
                if lo == i64::MIN {
                    first.unwrap_or(lo)
                } else {
                    lo
                },
                if hi == i64::MAX {
                    last.unwrap_or(hi)
                } else {
                    hi
                },
            )
        })
        .collect();
    join_by_time(&spanless, recs, &intervals, &mut visits);
    for (_, mine) in &mut visits {
        mine.sort_unstable();
    }
    push_drafts(visits, out, pool);
}

/// Where a span's walk up its parents ends, memoised (see [`span_owners`]):
/// at a span that stops it, or on a cycle of spans that never stop it —
/// the `pos`-th span of `cycles[cycle]` is reached after `dist` steps.
#[derive(Clone, Copy)]
enum WalkEnd {
    Stop(IdKey),
    Cycle {
        cycle: usize,
        pos: usize,
        dist: usize,
    },
}

/// Which span's visit each of `names` joins: `step` moves a span to its
/// parent span, or stops it (`None`: it has server events, or no parent
/// span of the service). A span joins the span its walk stops at; a walk
/// caught in a cycle of spans (bad input) ends where `names.len()` steps
/// take it. Each span is walked once — walking each one to its end cost
/// time quadratic in the depth (9,000 nested inner spans: 7 s).
fn span_owners(names: &[IdKey], step: impl Fn(IdKey) -> Option<IdKey>) -> HashMap<IdKey, IdKey> {
    let mut ends: HashMap<IdKey, WalkEnd> = HashMap::default();
    let mut cycles: Vec<Vec<IdKey>> = Vec::new();
    let mut path: Vec<IdKey> = Vec::new();
    let mut on_path: HashMap<IdKey, usize> = HashMap::default();
    for &start in names {
        path.clear();
        on_path.clear();
        let mut cur = start;
        // Walk until a span whose end is known; `path` holds the spans
        // before it, each one step from the next.
        let end = loop {
            if let Some(&end) = ends.get(&cur) {
                break end;
            }
            if let Some(&at) = on_path.get(&cur) {
                let cycle = cycles.len();
                cycles.push(path.split_off(at));
                for (pos, span) in cycles.last().into_iter().flatten().enumerate() {
                    ends.insert(
                        *span,
                        WalkEnd::Cycle {
                            cycle,
                            pos,
                            dist: 0,
                        },
                    );
                }
                break WalkEnd::Cycle {
                    cycle,
                    pos: 0,
                    dist: 0,
                };
            }
            match step(cur) {
                Some(parent) => {
                    on_path.insert(cur, path.len());
                    path.push(cur);
                    cur = parent;
                }
                None => {
                    ends.insert(cur, WalkEnd::Stop(cur));
                    break WalkEnd::Stop(cur);
                }
            }
        };
        for (k, span) in path.iter().rev().enumerate() {
            let end = match end {
                WalkEnd::Stop(_) => end,
                WalkEnd::Cycle { cycle, pos, dist } => WalkEnd::Cycle {
                    cycle,
                    pos,
                    dist: dist + k + 1,
                },
            };
            ends.insert(*span, end);
        }
    }
    let steps = names.len();
    names
        .iter()
        .map(|&name| {
            let owner = match ends.get(&name) {
                Some(WalkEnd::Stop(owner)) => *owner,
                Some(&WalkEnd::Cycle { cycle, pos, dist }) => {
                    let ring = cycles.get(cycle).map_or(&[][..], Vec::as_slice);
                    let at = (pos + steps.saturating_sub(dist)) % ring.len().max(1);
                    ring.get(at).copied().unwrap_or(name)
                }
                None => name,
            };
            (name, owner)
        })
        .collect()
}

/// Fills in timing, failure and ordering facts from the visit's records,
/// and pairs its client events into its outgoing calls, appended to
/// `calls` (`vi` is the visit's index): one pass over its records serves
/// both. Per peer, each `client_recv` closes the oldest open `client_send`;
/// `pending` is a buffer for the open sends.
fn finish_visit(
    vi: usize,
    v: &mut Visit,
    pool: &mut [usize],
    recs: &[Record],
    u: &Universe,
    calls: &mut Vec<Call>,
    pending: &mut Vec<(SymId, Option<PendingSend>)>,
) {
    let mine = pool.get_mut(v.recs.clone()).unwrap_or_default();
    // A service's lone visit holds its records in order already.
    if !mine.is_sorted() {
        mine.sort_unstable();
    }
    let mine: &[usize] = mine;
    let first_ts = mine.first().and_then(|&i| recs.get(i)).map_or(0, |r| r.ts);
    let last_ts = mine.last().and_then(|&i| recs.get(i)).map_or(0, |r| r.ts);
    let sr = v.sr.and_then(|i| recs.get(i));
    let ss = v.ss.and_then(|i| recs.get(i));
    (v.start, v.start_exact) = match (sr, ss) {
        (Some(r), _) => (r.ts, true),
        (None, Some(s)) => match s.duration() {
            Some(d) => (s.ts.saturating_sub(d), true),
            None => (first_ts, false),
        },
        _ => (first_ts, false),
    };
    (v.end, v.end_exact) = match (ss, sr) {
        (Some(s), _) => (s.ts, true),
        (None, Some(r)) => match r.duration() {
            Some(d) => (v.start.saturating_add(d), true),
            None => (last_ts.max(v.start), false),
        },
        _ => (last_ts.max(v.start), false),
    };
    if v.end < v.start {
        v.end = v.start;
    }
    // Open sends in arrival order: (peer, send); `None` once closed. A
    // visit has a handful of calls, so a scan beats a map of queues.
    pending.clear();
    let first_call = calls.len();
    for &i in mine {
        let Some(r) = recs.get(i) else { continue };
        v.has_events |= r.kind.is_some();
        let key = (r.file(), r.offset());
        v.first = v.first.min(key);
        let Some(ev) = call_role(r, u) else {
            // A client event's failure is its call's, not the visit's.
            v.failed |= r.failed;
            continue;
        };
        match ev {
            CallEvent::Send(t) => pending.push((t, Some((r.ts, r.failed, key)))),
            CallEvent::Recv(t) => {
                let open = pending
                    .iter_mut()
                    .find(|(p, s)| *p == t && s.is_some())
                    .and_then(|(_, s)| s.take());
                calls.push(match open {
                    Some((cs, f, k)) => Call {
                        caller: vi,
                        target: t,
                        cs: Some(cs),
                        cr: Some(r.ts),
                        failed: f || r.failed,
                        callee: None,
                        key: (cs, k.0, k.1),
                    },
                    None => Call {
                        caller: vi,
                        target: t,
                        cs: None,
                        cr: Some(r.ts),
                        failed: r.failed,
                        callee: None,
                        key: (r.ts, key.0, key.1),
                    },
                });
            }
            CallEvent::Complete(t, cs, cr) => calls.push(Call {
                caller: vi,
                target: t,
                cs: Some(cs),
                cr: Some(cr),
                failed: r.failed,
                callee: None,
                key: (cs, key.0, key.1),
            }),
        }
    }
    for &(t, s) in pending.iter() {
        if let Some((cs, f, k)) = s {
            calls.push(Call {
                caller: vi,
                target: t,
                cs: Some(cs),
                cr: None,
                failed: f,
                callee: None,
                key: (cs, k.0, k.1),
            });
        }
    }
    // (cs or cr, file, offset) is unique per call: the order is total.
    if let Some(mine) = calls.get_mut(first_call..) {
        mine.sort_unstable_by_key(|c| c.key);
    }
    v.calls = first_call..calls.len();
}

/// The best-ranked of `candidates` that is not a descendant of `vi`.
/// Candidates come with the first two parts of their [`ParentRank`],
/// read from the packed bounds; the rest is read from the visit on a tie.
/// The descendant test walks up the tree, so it is made on the best one
/// first, only when `vi` has children, and on the others only when that
/// one fails (then in rank order, with `ranked` as a buffer): in a deep
/// nest every visit is a candidate of the next, and testing them all made
/// linking cubic in the depth (1,000 nested visits took a second, 4,000
/// took 83 s).
fn best_non_descendant(
    visits: &[Visit],
    vi: usize,
    has_children: bool,
    candidates: impl Iterator<Item = ((Reverse<i64>, i64), usize)> + Clone,
    ranked: &mut Vec<(ParentRank, usize)>,
) -> Option<usize> {
    let rank = |(a, b): (Reverse<i64>, i64), pi: usize| -> ParentRank {
        let (service, first) = visits.get(pi).map_or((0, (0, 0)), |p| (p.service, p.first));
        (a, b, service, first)
    };
    let mut best: Option<((Reverse<i64>, i64), usize)> = None;
    for (key, pi) in candidates.clone() {
        let better =
            best.is_none_or(|(bk, bpi)| key < bk || (key == bk && rank(key, pi) < rank(bk, bpi)));
        if better {
            best = Some((key, pi));
        }
    }
    let (_, best) = best?;
    if !has_children || !is_descendant(visits, best, vi) {
        return Some(best);
    }
    ranked.clear();
    ranked.extend(
        candidates
            .filter(|&(_, pi)| pi != best)
            .map(|(key, pi)| (rank(key, pi), pi)),
    );
    ranked.sort_unstable();
    ranked
        .iter()
        .map(|&(_, pi)| pi)
        .find(|&pi| !is_descendant(visits, pi, vi))
}

fn is_descendant(visits: &[Visit], candidate: usize, of: usize) -> bool {
    let mut cur = Some(candidate);
    let mut steps = 0;
    while let Some(c) = cur {
        if c == of {
            return true;
        }
        steps += 1;
        if steps > visits.len() {
            return true; // a cycle: refuse the link
        }
        cur = visits.get(c).and_then(|v| v.parent);
    }
    false
}

/// Buffers one request's assembly works in. Assembly makes dozens of small
/// vectors per request; keeping them from one request to the next (one set
/// per thread, see [`build_into`]) saves their allocation, which cost more
/// than a fifth of the stage. Nothing in here outlives one request's build.
#[derive(Debug, Default)]
struct Scratch {
    /// Record indices grouped by service (see [`group_by_service`]).
    by_service: Vec<usize>,
    /// The request's services, ascending, with where each one's group ends
    /// in `by_service`.
    services: Vec<(SymId, usize)>,
    /// Per service id: a counter while grouping, 0 between requests.
    slot: Vec<usize>,
    /// The visits: logged ones by service, then virtual ones.
    visits: Vec<Visit>,
    /// The record indices of every visit (each holds a range).
    visit_recs: Vec<usize>,
    /// The calls, visit by visit.
    calls: Vec<Call>,
    /// Open sends while one visit's calls are paired.
    pending: Vec<(SymId, Option<PendingSend>)>,
    /// Logged visits in start order, for linking parents.
    order: Vec<usize>,
    /// Candidate parents of one visit by rule 2 or 3, with their rank.
    ranked: Vec<(ParentRank, usize)>,
    /// The logged visits' (start, end, has children), for the rule 2 and
    /// 3 scans.
    bounds: Vec<(i64, i64, bool)>,
    /// Visits without a parent, earliest first.
    roots: Vec<usize>,
    /// Buffers of the figure pass.
    fig: FigureScratch,
}

/// Requests with more records than this give their grown buffers back
/// after their build instead of keeping them for the thread's lifetime.
const KEEP_SCRATCH_RECORDS: usize = 1 << 16;

thread_local! {
    /// Each thread's buffers for [`build_into`].
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Builds the request into `out`, reusing `out`'s buffers and this thread's
/// scratch buffers. See the module docs.
pub fn build_into(
    id: &str,
    recs: &[Record],
    u: &Universe,
    offsets: Option<&Offsets>,
    opts: &AssembleOptions,
    out: &mut Assembled,
) {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => {
            build_with(&mut s, id, recs, u, offsets, opts, out);
            if s.by_service.capacity() > KEEP_SCRATCH_RECORDS {
                *s = Scratch::default();
            }
        }
        // Only a build nested in another on the same thread gets here.
        Err(_) => build_with(&mut Scratch::default(), id, recs, u, offsets, opts, out),
    });
}

/// Groups the record indices of a request by service into
/// `s.by_service`: services ascending, each group in record order, and
/// `s.services` says where each group ends. Service ids index the
/// universe's table of `n_services`, so a counter per id groups in linear
/// time (a sort of (service, index) pairs was a tenth of assembly); records
/// with ids outside the table (made by hand) are grouped by that sort.
fn group_by_service(recs: &[Record], n_services: usize, s: &mut Scratch) {
    let (by_service, services, slot) = (&mut s.by_service, &mut s.services, &mut s.slot);
    by_service.clear();
    services.clear();
    if recs.iter().any(|r| r.service as usize >= n_services) {
        let mut pairs: Vec<(SymId, usize)> = recs
            .iter()
            .enumerate()
            .map(|(i, r)| (r.service, i))
            .collect();
        pairs.sort_unstable();
        by_service.extend(pairs.iter().map(|&(_, i)| i));
        for w in pairs.chunk_by(|a, b| a.0 == b.0) {
            let end = services.last().map_or(0, |&(_, e)| e) + w.len();
            if let Some(&(svc, _)) = w.first() {
                services.push((svc, end));
            }
        }
        return;
    }
    if slot.len() < n_services {
        slot.resize(n_services, 0);
    }
    // Count each service's records, noting the services met.
    for r in recs {
        if let Some(c) = slot.get_mut(r.service as usize) {
            if *c == 0 {
                services.push((r.service, 0));
            }
            *c += 1;
        }
    }
    services.sort_unstable();
    // Each counter becomes where its group starts.
    let mut at = 0;
    for (svc, end) in services.iter_mut() {
        if let Some(c) = slot.get_mut(*svc as usize) {
            let count = *c;
            *c = at;
            at += count;
            *end = at;
        }
    }
    by_service.resize(recs.len(), 0);
    for (i, r) in recs.iter().enumerate() {
        if let Some(c) = slot.get_mut(r.service as usize) {
            if let Some(x) = by_service.get_mut(*c) {
                *x = i;
            }
            *c += 1;
        }
    }
    for &(svc, _) in services.iter() {
        if let Some(c) = slot.get_mut(svc as usize) {
            *c = 0;
        }
    }
}

/// Empties `out` for a new request named `id`.
fn reset(out: &mut Assembled, id: &str) {
    out.id.clear();
    out.id.push_str(id);
    out.start = 0;
    out.latency = 0;
    out.failed = false;
    out.root_failed = false;
    out.incomplete = None;
    out.chain.clear();
    out.visits.clear();
    out.unclaimed.clear();
    out.skew_samples.clear();
}

/// [`build_into`] with the buffers given.
fn build_with(
    s: &mut Scratch,
    id: &str,
    recs: &[Record],
    u: &Universe,
    offsets: Option<&Offsets>,
    opts: &AssembleOptions,
    out: &mut Assembled,
) {
    reset(out, id);
    let empty = Offsets::default();
    let offsets = offsets.unwrap_or(&empty);
    // Visits, service by service (record indices grouped by service, each
    // group in time order).
    group_by_service(recs, u.services.len(), s);
    s.visits.clear();
    s.visit_recs.clear();
    s.calls.clear();
    let mut group_start = 0;
    for &(svc, end) in &s.services {
        let idxs = s.by_service.get(group_start..end).unwrap_or_default();
        group_start = end;
        let with_spans = idxs.iter().any(|&i| {
            recs.get(i)
                .is_some_and(|r| r.spans != Record::NO_SPANS && u.spans_of(r).span.is_some())
        });
        let first_new = s.visits.len();
        if with_spans {
            span_visits(svc, idxs, recs, u, &mut s.visits, &mut s.visit_recs);
        } else {
            plain_visits(svc, idxs, recs, &mut s.visits, &mut s.visit_recs);
        }
        for (vi, v) in s.visits.iter_mut().enumerate().skip(first_new) {
            let (pool, calls, pending) = (&mut s.visit_recs, &mut s.calls, &mut s.pending);
            finish_visit(vi, v, pool, recs, u, calls, pending);
        }
    }
    let start = s.visits.iter().map(|v| v.start).min().unwrap_or(0);
    // Calls were paired while the visits were finished, in the same pass
    // over their records; a request cut short here wasted only that pass.
    if s.visits.len() > opts.max_visits {
        too_large(start, &s.visits, out);
        return;
    }
    let logged = s.visits.len();
    link_parents(
        &mut s.visits,
        &mut s.calls,
        offsets,
        logged,
        &mut s.order,
        &mut s.ranked,
        &mut s.bounds,
    );
    // Virtual visits, one per call to a virtual service.
    let (visits, calls) = (&mut s.visits, &mut s.calls);
    for ci in 0..calls.len() {
        let Some(c) = calls.get(ci) else { continue };
        if !u.is_virtual(c.target) {
            continue;
        }
        let mut v = Visit::new(c.target);
        v.virtual_ = true;
        v.start = c.cs.or(c.cr).unwrap_or(0);
        v.end = c.cr.or(c.cs).unwrap_or(v.start).max(v.start);
        v.start_exact = c.cs.is_some() && c.cr.is_some();
        v.end_exact = v.start_exact;
        v.failed = c.failed;
        v.parent = Some(c.caller);
        v.link = Link::Virtual(ci);
        v.first = (u32::MAX, c.key.2);
        if let Some(caller) = visits.get(c.caller) {
            v.first = caller.first;
        }
        let vi = visits.len();
        visits.push(v);
        if let Some(c) = calls.get_mut(ci) {
            c.callee = Some(vi);
        }
    }
    roots_of(&s.visits, &mut s.roots);
    if opts.skew_pass {
        skew_only(start, recs, u, &s.visits, &s.calls, &s.roots, out);
        return;
    }
    figures(start, recs, u, s, offsets, opts, out);
}

fn too_large(start: i64, visits: &[Visit], out: &mut Assembled) {
    let end = visits.iter().map(|v| v.end).max().unwrap_or(start);
    out.start = start;
    out.latency = end - start;
    out.failed = visits.iter().any(|v| v.failed);
    out.incomplete = Some(Incomplete::TooLarge);
}

/// Parent links in the SPEC's order: span links, calls, rule 2, rule 3.
/// `order`, `ranked` and `bounds` are buffers.
fn link_parents(
    visits: &mut [Visit],
    calls: &mut [Call],
    offsets: &Offsets,
    logged: usize,
    order: &mut Vec<usize>,
    ranked: &mut Vec<(ParentRank, usize)>,
    bounds: &mut Vec<(i64, i64, bool)>,
) {
    // 1. Parent spans carried by some visit.
    let mut carrier: HashMap<IdKey, usize> = HashMap::default();
    for (vi, v) in visits.iter().enumerate().take(logged) {
        for s in &v.spans {
            carrier.entry(*s).or_insert(vi);
        }
    }
    for vi in 0..logged {
        let Some(ps) = visits.get(vi).and_then(|v| v.parent_span) else {
            continue;
        };
        if let Some(&p) = carrier.get(&ps)
            && p != vi
            && !is_descendant(visits, p, vi)
            && let Some(v) = visits.get_mut(vi)
        {
            v.parent = Some(p);
            v.link = Link::Span;
        }
    }
    // 2. Callee visits in start order take the latest unmatched call to them.
    order.clear();
    order.extend(0..logged);
    order.sort_by_key(|&i| visits.get(i).map(|v| (v.start, v.first)));
    for &vi in order.iter() {
        let Some(v) = visits.get(vi) else { continue };
        let (svc, vstart, vend, span_parent) = (
            v.service,
            v.start,
            v.end,
            (v.link == Link::Span).then_some(v.parent).flatten(),
        );
        let mut before: Option<(i64, (i64, u32, u64), usize)> = None;
        let mut after: Option<(i64, (i64, u32, u64), usize)> = None;
        for (ci, c) in calls.iter().enumerate() {
            if c.target != svc || c.callee.is_some() || c.caller == vi {
                continue;
            }
            if span_parent.is_some_and(|p| p != c.caller) {
                continue;
            }
            let Some(cs) = c.cs else { continue };
            let caller_svc = visits.get(c.caller).map_or(0, |p| p.service);
            let theta = offsets.get(caller_svc, svc);
            let (vs, ve) = (vstart - theta, vend - theta);
            if cs <= vs {
                if before.is_none_or(|(b, k, _)| (cs, c.key) > (b, k)) {
                    before = Some((cs, c.key, ci));
                }
            } else if cs <= ve && after.is_none_or(|(a, k, _)| (cs, c.key) < (a, k)) {
                after = Some((cs, c.key, ci));
            }
        }
        let mut chosen = None;
        for cand in [before, after].into_iter().flatten() {
            let caller = calls.get(cand.2).map_or(vi, |c| c.caller);
            if !is_descendant(visits, caller, vi) {
                chosen = Some(cand.2);
                break;
            }
        }
        if let Some(ci) = chosen {
            let caller = calls.get(ci).map_or(vi, |c| c.caller);
            if let Some(c) = calls.get_mut(ci) {
                c.callee = Some(vi);
            }
            if let Some(v) = visits.get_mut(vi) {
                v.parent = Some(caller);
                v.link = Link::Call(ci);
            }
        }
    }
    // 3. Rule 2 (containment), then rule 3 (hand-off), never a descendant.
    // Every visit is scanned for every visit without a parent: the scan
    // reads the visits' bounds only, packed apart (a deep request of
    // thousands of visits spent most of its time reading whole visits),
    // with whether each has children yet (one without has no descendant).
    bounds.clear();
    bounds.extend(visits.iter().take(logged).map(|v| (v.start, v.end, false)));
    for v in visits.iter().take(logged) {
        if let Some(b) = v.parent.and_then(|p| bounds.get_mut(p)) {
            b.2 = true;
        }
    }
    for &vi in order.iter() {
        let Some(v) = visits.get(vi) else { continue };
        if v.parent.is_some() {
            continue;
        }
        let (vstart, vend) = (v.start, v.end);
        let has_children = bounds.get(vi).is_some_and(|b| b.2);
        let containers = || {
            bounds
                .iter()
                .enumerate()
                // A visit with the same start that ends first sits inside
                // this one; it is not its container.
                .filter(move |&(pi, &(ps, pe, _))| {
                    pi != vi && ps <= vstart && vstart <= pe && !(ps == vstart && pe < vend)
                })
                .map(|(pi, &(ps, pe, _))| ((Reverse(ps), pe), pi))
        };
        let ended = || {
            bounds
                .iter()
                .enumerate()
                .filter(move |&(pi, &(_, pe, _))| pi != vi && pe < vstart)
                .map(|(pi, &(ps, pe, _))| ((Reverse(pe), ps), pi))
        };
        let mut link = Link::Contains;
        let mut best = best_non_descendant(visits, vi, has_children, containers(), ranked);
        if best.is_none() {
            link = Link::Handoff;
            best = best_non_descendant(visits, vi, has_children, ended(), ranked);
        }
        if let (Some(pi), Some(v)) = (best, visits.get_mut(vi)) {
            v.parent = Some(pi);
            v.link = link;
            if let Some(b) = bounds.get_mut(pi) {
                b.2 = true;
            }
        }
    }
}

/// The roots (visits without a parent, earliest first), into `roots`.
fn roots_of(visits: &[Visit], roots: &mut Vec<usize>) {
    roots.clear();
    roots.extend((0..visits.len()).filter(|&i| visits.get(i).is_some_and(|v| v.parent.is_none())));
    roots.sort_by_key(|&r| visits.get(r).map(|v| (v.start, v.first)));
}

/// The first incomplete reason that applies (SPEC §2), None when complete.
fn completeness(
    recs: &[Record],
    u: &Universe,
    visits: &[Visit],
    calls: &[Call],
    roots: &[usize],
) -> Option<Incomplete> {
    if let Some(r) = roots.first().and_then(|&r| visits.get(r)) {
        let cr_without_cs = calls
            .get(r.calls.clone())
            .unwrap_or_default()
            .iter()
            .any(|c| c.cs.is_none() && c.cr.is_some());
        if (!r.start_exact && r.has_events) || cr_without_cs {
            return Some(Incomplete::NoRoot);
        }
    }
    if roots.len() > 1 {
        return Some(Incomplete::MultipleRoots);
    }
    if calls
        .iter()
        .any(|c| c.callee.is_none() && c.cr.is_none() && !u.is_virtual(c.target))
    {
        return Some(Incomplete::UnpairedCall);
    }
    let open = visits.iter().any(|v| {
        let Some(sr) = v.sr.and_then(|i| recs.get(i)) else {
            return false;
        };
        v.ss.is_none()
            && sr.duration().is_none()
            && !recs.iter().any(|r| r.service == v.service && r.ts > sr.ts)
    });
    open.then_some(Incomplete::OpenVisit)
}

/// The first pass only: completeness, the root's start and the skew samples
/// of exact cs/cr hops, without any figure.
fn skew_only(
    first_start: i64,
    recs: &[Record],
    u: &Universe,
    visits: &[Visit],
    calls: &[Call],
    roots: &[usize],
    out: &mut Assembled,
) {
    out.incomplete = completeness(recs, u, visits, calls, roots);
    for v in visits.iter().filter(|v| !v.virtual_ && v.exact()) {
        let (Link::Call(ci), Some(p)) = (v.link, v.parent.and_then(|p| visits.get(p))) else {
            continue;
        };
        if let Some((cs, cr)) = calls.get(ci).and_then(|c| c.cs.zip(c.cr)) {
            out.skew_samples
                .push((p.service, v.service, (v.start - cs) - (cr - v.end)));
        }
    }
    let root = roots.first().and_then(|&r| visits.get(r));
    out.start = root.map_or(first_start, |r| r.start);
    out.latency = root.map_or(0, |r| r.end - r.start);
    out.failed = visits.iter().any(|v| v.failed);
    out.root_failed = root.is_some_and(|r| r.failed);
}

/// One interval a parent saw a child (or call) take, for the critical path.
#[derive(Clone, Copy, Debug)]
struct Item {
    begin: i64,
    finish: i64,
    target: Target,
}

#[derive(Clone, Copy, Debug)]
enum Target {
    /// A logged child visit, walked into; legs charged to its hop.
    Child(usize),
    /// A virtual visit: the whole window charged to it.
    Virtual(usize),
    /// An unclaimed call: charged to the call.
    Unclaimed(usize),
}

/// Lists of entries per owner (a visit), flattened: entries are pushed
/// for any owner in any order, then [`Lists::group`] gathers each owner's
/// entries, in the order they were pushed, into one slice. Replaces a
/// `Vec<Vec<_>>` (one allocation per visit) and is reused across requests.
#[derive(Debug)]
struct Lists<T> {
    pushed: Vec<(usize, T)>,
    /// After grouping: owner `o`'s entries are `list[start[o]..start[o + 1]]`.
    start: Vec<usize>,
    list: Vec<T>,
}

impl<T> Default for Lists<T> {
    fn default() -> Self {
        Lists {
            pushed: Vec::new(),
            start: Vec::new(),
            list: Vec::new(),
        }
    }
}

impl<T: Copy> Lists<T> {
    fn clear(&mut self) {
        self.pushed.clear();
        self.start.clear();
        self.list.clear();
    }

    fn push(&mut self, owner: usize, entry: T) {
        self.pushed.push((owner, entry));
    }

    /// Groups the pushed entries of owners `0..n` (a counting sort, stable);
    /// entries of other owners are dropped.
    fn group(&mut self, n: usize) {
        // Counts go to start[o + 2], so that after the prefix sums
        // start[o + 1] is where owner o begins; placing its entries moves
        // it to where o ends, which is where o + 1 begins.
        self.start.clear();
        self.start.resize(n + 2, 0);
        for &(o, _) in &self.pushed {
            if o < n
                && let Some(c) = self.start.get_mut(o + 2)
            {
                *c += 1;
            }
        }
        let mut sum = 0;
        for c in &mut self.start {
            sum += *c;
            *c = sum;
        }
        self.list.clear();
        self.list
            .extend(self.pushed.iter().filter(|&&(o, _)| o < n).map(|&(_, e)| e));
        for &(o, e) in &self.pushed {
            if let Some(at) = self.start.get_mut(o + 1)
                && o < n
            {
                if let Some(slot) = self.list.get_mut(*at) {
                    *slot = e;
                }
                *at += 1;
            }
        }
    }

    /// Where owner `o`'s entries are in `list` (empty for an unknown owner).
    fn range(&self, o: usize) -> Range<usize> {
        match (self.start.get(o), self.start.get(o + 1)) {
            (Some(&a), Some(&b)) => a..b,
            _ => 0..0,
        }
    }

    /// Owner `o`'s entries.
    fn of(&self, o: usize) -> &[T] {
        self.list.get(self.range(o)).unwrap_or_default()
    }
}

/// Buffers of [`figures`], one per visit (or call) of the request.
#[derive(Debug, Default)]
struct FigureScratch {
    children: Lists<usize>,
    /// Children without virtual visits, for the chain.
    chain_children: Lists<usize>,
    items: Lists<Item>,
    /// Per entry of `items`: taken by the critical-path walk.
    used: Vec<bool>,
    off: Vec<i64>,
    adjusted: Vec<bool>,
    depth: Vec<usize>,
    queue: VecDeque<usize>,
    cstart: Vec<i64>,
    cend: Vec<i64>,
    figs: Vec<VisitFigures>,
    unclaimed_of_call: Vec<Option<usize>>,
    iv: Vec<(i64, i64)>,
    critical: Vec<i64>,
    critical_prop: Vec<i64>,
    critical_unclaimed: Vec<i64>,
    /// The children of the chain levels being written, level above level.
    siblings: Vec<usize>,
    order: Vec<usize>,
    new_index: Vec<usize>,
}

/// Empties `xs` and fills it with `n` copies of `x`.
fn refill<T: Clone>(xs: &mut Vec<T>, n: usize, x: T) {
    xs.clear();
    xs.resize(n, x);
}

struct Walk<'a> {
    starts: &'a [i64],
    ends: &'a [i64],
    items: &'a Lists<Item>,
    used: &'a mut [bool],
    critical: &'a mut [i64],
    critical_prop: &'a mut [i64],
    unclaimed: &'a mut [i64],
}

impl Walk<'_> {
    fn walk(&mut self, v: usize, lo: i64, hi: i64, depth: usize) {
        let mut t = hi;
        if depth < MAX_DEPTH {
            let items = self.items;
            let range = items.range(v);
            let mine = items.of(v);
            if let Some(used) = self.used.get_mut(range.clone()) {
                used.fill(false);
            }
            loop {
                let mut pick: Option<(usize, Item)> = None;
                for (k, it) in mine.iter().enumerate() {
                    let used = self.used.get(range.start + k).copied().unwrap_or(true);
                    if used || it.finish > t || it.finish <= lo {
                        continue;
                    }
                    if pick.is_none_or(|(_, p)| it.finish > p.finish) {
                        pick = Some((k, *it));
                    }
                }
                let Some((k, it)) = pick else { break };
                if let Some(u) = self.used.get_mut(range.start + k) {
                    *u = true;
                }
                let b = it.begin.max(lo).min(it.finish);
                let f = it.finish;
                self.charge_visit(v, t - f);
                match it.target {
                    Target::Child(c) => {
                        let cs = self.starts.get(c).copied().unwrap_or(b).clamp(b, f);
                        let ce = self.ends.get(c).copied().unwrap_or(f).clamp(cs, f);
                        if let Some(p) = self.critical_prop.get_mut(c) {
                            *p += (f - ce) + (cs - b);
                        }
                        self.walk(c, cs, ce, depth + 1);
                    }
                    Target::Virtual(c) => self.charge_visit(c, f - b),
                    Target::Unclaimed(u) => {
                        if let Some(x) = self.unclaimed.get_mut(u) {
                            *x += f - b;
                        }
                    }
                }
                t = b;
            }
        }
        self.charge_visit(v, t - lo);
    }

    fn charge_visit(&mut self, v: usize, d: i64) {
        if let Some(c) = self.critical.get_mut(v) {
            *c += d;
        }
    }
}

/// Appends a service name to a chain string, escaping `> { } , \\` and
/// whitespace.
fn push_escaped(out: &mut String, name: &str) {
    // Most names need no escape: copy them whole.
    if name
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'>' | b'{' | b'}' | b',' | b'\\'))
    {
        out.push_str(name);
        return;
    }
    for ch in name.chars() {
        if matches!(ch, '>' | '{' | '}' | ',' | '\\') || ch.is_whitespace() {
            out.push('\\');
        }
        out.push(ch);
    }
}

/// Appends the chain of the subtree at `v` (SPEC §2 Chains): siblings in
/// corrected-start order, ties by their chain text. `siblings` is a stack
/// each level sorts its children on.
fn chain_of<'n>(
    v: usize,
    children: &Lists<usize>,
    starts: &[i64],
    name: &dyn Fn(usize) -> &'n str,
    depth: usize,
    siblings: &mut Vec<usize>,
    out: &mut String,
) {
    push_escaped(out, name(v));
    if depth >= MAX_DEPTH {
        return;
    }
    let kids = children.of(v);
    match kids {
        [] => {}
        [only] => {
            out.push('>');
            chain_of(*only, children, starts, name, depth + 1, siblings, out);
        }
        _ => {
            let start = |c: usize| starts.get(c).copied().unwrap_or(0);
            // This level's children, sorted above the levels still open;
            // the calls below push theirs higher and pop them again.
            let base = siblings.len();
            siblings.extend_from_slice(kids);
            let order = siblings.get_mut(base..).unwrap_or_default();
            order.sort_by_key(|&c| start(c));
            out.push_str(">{");
            let tied = order
                .windows(2)
                .any(|w| matches!(w, [a, b] if start(*a) == start(*b)));
            let level = base..base + kids.len();
            if tied {
                // Equal starts are ordered by their own chain text.
                let mut texts: Vec<(i64, String)> = Vec::with_capacity(kids.len());
                for k in level {
                    let Some(&c) = siblings.get(k) else { continue };
                    let mut t = String::new();
                    chain_of(c, children, starts, name, depth + 1, siblings, &mut t);
                    texts.push((start(c), t));
                }
                texts.sort();
                for (k, (_, t)) in texts.iter().enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    out.push_str(t);
                }
            } else {
                for k in level {
                    let Some(&c) = siblings.get(k) else { continue };
                    if k > base {
                        out.push(',');
                    }
                    chain_of(c, children, starts, name, depth + 1, siblings, out);
                }
            }
            siblings.truncate(base);
            out.push('}');
        }
    }
}

/// Total length of the union of the intervals (sorts them in place).
fn union_len(iv: &mut Vec<(i64, i64)>) -> i64 {
    iv.retain(|(a, b)| b > a);
    iv.sort_unstable();
    let mut total = 0i64;
    let mut cur: Option<(i64, i64)> = None;
    for &(a, b) in iv.iter() {
        match cur {
            Some((ca, cb)) if a <= cb => cur = Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                total += cb - ca;
                cur = Some((a, b));
            }
            None => cur = Some((a, b)),
        }
    }
    if let Some((a, b)) = cur {
        total += b - a;
    }
    total
}

/// The second pass: every figure of every visit and hop, the critical path
/// and the chain, into `out`.
fn figures(
    first_start: i64,
    recs: &[Record],
    u: &Universe,
    s: &mut Scratch,
    offsets: &Offsets,
    opts: &AssembleOptions,
    out: &mut Assembled,
) {
    let (visits, calls, pool, roots) = (&s.visits, &s.calls, &s.visit_recs, &s.roots);
    let FigureScratch {
        children,
        chain_children,
        items,
        used,
        off,
        adjusted,
        depth,
        queue,
        cstart,
        cend,
        figs,
        unclaimed_of_call,
        iv,
        critical,
        critical_prop,
        critical_unclaimed,
        siblings,
        order,
        new_index,
    } = &mut s.fig;
    let n = visits.len();
    children.clear();
    for (vi, v) in visits.iter().enumerate() {
        if let Some(p) = v.parent {
            children.push(p, vi);
        }
    }
    children.group(n);
    // Offsets top-down: skew per pair, then Jaeger moves of rule-2 children.
    refill(off, n, 0);
    refill(adjusted, n, false);
    refill(depth, n, 0);
    queue.clear();
    queue.extend(roots.iter().copied());
    while let Some(p) = queue.pop_front() {
        let Some(pv) = visits.get(p) else { continue };
        let p_off = off.get(p).copied().unwrap_or(0);
        let p_depth = depth.get(p).copied().unwrap_or(0);
        for &c in children.of(p) {
            let Some(cv) = visits.get(c) else { continue };
            let mut o = p_off;
            let mut adj = false;
            if !cv.virtual_ {
                let theta = offsets.get(pv.service, cv.service);
                o += theta;
                adj = theta != 0;
                if opts.skew && cv.link == Link::Contains {
                    let (ps, pe) = (pv.start - p_off, pv.end - p_off);
                    let (cs, ce) = (cv.start - o, cv.end - o);
                    if ce > pe {
                        let (plen, clen) = (pe - ps, ce - cs);
                        let new_start = if clen <= plen {
                            ps + (plen - clen) / 2
                        } else {
                            ps
                        };
                        o += cs - new_start;
                        adj = true;
                    }
                }
            }
            if let Some(x) = off.get_mut(c) {
                *x = o;
            }
            if let Some(x) = adjusted.get_mut(c) {
                *x = adj;
            }
            if let Some(x) = depth.get_mut(c) {
                *x = p_depth + 1;
            }
            queue.push_back(c);
        }
    }
    cstart.clear();
    cstart.extend(visits.iter().zip(off.iter()).map(|(v, o)| v.start - o));
    cend.clear();
    cend.extend(visits.iter().zip(off.iter()).map(|(v, o)| v.end - o));
    // A visit's record times, corrected by `o`.
    fn rec_ts<'v>(
        v: &'v Visit,
        pool: &'v [usize],
        recs: &'v [Record],
        o: i64,
    ) -> impl Iterator<Item = i64> + 'v {
        v.recs(pool)
            .iter()
            .filter_map(move |&i| recs.get(i).map(|r| r.ts - o))
    }
    let get = |xs: &[i64], i: usize| xs.get(i).copied().unwrap_or(0);

    figs.clear();
    items.clear();
    refill(unclaimed_of_call, calls.len(), None);
    let unclaimed = &mut out.unclaimed;
    for (ci, c) in calls.iter().enumerate() {
        if c.callee.is_none() {
            if let Some(x) = unclaimed_of_call.get_mut(ci) {
                *x = Some(unclaimed.len());
            }
            unclaimed.push(UnclaimedCall {
                caller: c.caller,
                target: c.target,
                call: c.cs.zip(c.cr).map(|(a, b)| b - a),
                failed: c.failed,
                exact: c.cs.is_some() && c.cr.is_some(),
                critical: 0,
            });
        }
    }
    for (vi, v) in visits.iter().enumerate() {
        let o = get(off, vi);
        let (s, e) = (get(cstart, vi), get(cend, vi));
        let mut f = VisitFigures {
            service: v.service,
            virtual_: v.virtual_,
            parent: v.parent,
            link: v.link,
            span: v.spans.first().cloned(),
            start: s,
            end: e,
            processing: (!v.virtual_).then_some(v.end - v.start),
            self_time: None,
            call: None,
            request_leg: None,
            response_leg: None,
            propagation: None,
            critical: 0,
            critical_propagation: 0,
            failed: v.failed,
            hop_failed: v.failed,
            origin: false,
            exact: v.exact(),
            hop_exact: false,
            skew: o,
            adjusted: adjusted.get(vi).copied().unwrap_or(false),
            first_record: v.first,
        };
        let parent = v.parent.and_then(|p| visits.get(p).map(|pv| (p, pv)));
        match (v.link, parent) {
            (Link::Root, _) | (_, None) => f.hop_exact = v.exact(),
            (Link::Call(ci), Some((p, pv))) => {
                let po = get(off, p);
                let c = calls.get(ci);
                let cs = c.and_then(|c| c.cs).map(|t| t - po);
                let cr = c.and_then(|c| c.cr).map(|t| t - po);
                f.hop_failed |= c.is_some_and(|c| c.failed);
                match (cs, cr) {
                    (Some(cs), Some(cr)) => {
                        f.call = Some(cr - cs);
                        f.request_leg = Some(s - cs);
                        f.response_leg = Some(cr - e);
                        f.propagation = Some((s - cs) + (cr - e));
                        f.hop_exact = v.exact();
                        if v.exact()
                            && let (Some(rcs), Some(rcr)) =
                                (c.and_then(|c| c.cs), c.and_then(|c| c.cr))
                        {
                            out.skew_samples.push((
                                pv.service,
                                v.service,
                                (v.start - rcs) - (rcr - v.end),
                            ));
                        }
                        items.push(
                            p,
                            Item {
                                begin: cs,
                                finish: cr,
                                target: Target::Child(vi),
                            },
                        );
                    }
                    (Some(cs), None) => {
                        f.request_leg = Some(s - cs);
                        f.propagation = f.request_leg;
                        items.push(
                            p,
                            Item {
                                begin: cs,
                                finish: e,
                                target: Target::Child(vi),
                            },
                        );
                    }
                    (None, Some(cr)) => {
                        f.response_leg = Some(cr - e);
                        items.push(
                            p,
                            Item {
                                begin: s,
                                finish: cr,
                                target: Target::Child(vi),
                            },
                        );
                    }
                    (None, None) => {}
                }
            }
            (Link::Handoff, Some((p, _))) => {
                f.request_leg = Some(s - get(cend, p));
                f.propagation = f.request_leg;
            }
            (Link::Span | Link::Contains, Some((p, pv))) => {
                let po = get(off, p);
                let before = rec_ts(pv, pool, recs, po).filter(|&t| t <= s).max();
                let after = rec_ts(pv, pool, recs, po).filter(|&t| t >= e).min();
                f.request_leg = before.map(|b| s - b);
                f.response_leg = after.map(|a| a - e);
                f.propagation = f.request_leg.zip(f.response_leg).map(|(a, b)| a + b);
                items.push(
                    p,
                    Item {
                        begin: before.unwrap_or(s),
                        finish: after.unwrap_or(e),
                        target: Target::Child(vi),
                    },
                );
            }
            (Link::Virtual(ci), Some((p, _))) => {
                let c = calls.get(ci);
                let po = get(off, p);
                let cs = c.and_then(|c| c.cs).map(|t| t - po);
                let cr = c.and_then(|c| c.cr).map(|t| t - po);
                f.call = cs.zip(cr).map(|(a, b)| b - a);
                f.hop_exact = f.call.is_some();
                f.exact = f.hop_exact;
                if let (Some(cs), Some(cr)) = (cs, cr) {
                    items.push(
                        p,
                        Item {
                            begin: cs,
                            finish: cr,
                            target: Target::Virtual(vi),
                        },
                    );
                }
            }
        }
        figs.push(f);
    }
    // Unclaimed calls on the critical path.
    for (ci, c) in calls.iter().enumerate() {
        let (Some(ui), Some(cs), Some(cr)) =
            (unclaimed_of_call.get(ci).copied().flatten(), c.cs, c.cr)
        else {
            continue;
        };
        let po = get(off, c.caller);
        items.push(
            c.caller,
            Item {
                begin: cs - po,
                finish: cr - po,
                target: Target::Unclaimed(ui),
            },
        );
    }
    items.group(n);
    // Self time: processing minus the union of calls and call-less children
    // (intervals clipped to the visit).
    for (vi, v) in visits.iter().enumerate() {
        if v.virtual_ {
            continue;
        }
        let (s, e) = (get(cstart, vi), get(cend, vi));
        let o = get(off, vi);
        let clip = |(a, b): (i64, i64)| (a.clamp(s, e), b.clamp(s, e));
        iv.clear();
        iv.extend(
            calls
                .get(v.calls.clone())
                .unwrap_or_default()
                .iter()
                .filter_map(|c| c.cs.zip(c.cr))
                .map(|(a, b)| clip((a - o, b - o))),
        );
        for &c in children.of(vi) {
            if let Some(cv) = visits.get(c)
                && matches!(cv.link, Link::Span | Link::Contains)
            {
                iv.push(clip((get(cstart, c), get(cend, c))));
            }
        }
        if let Some(f) = figs.get_mut(vi) {
            f.self_time = Some((e - s) - union_len(iv));
        }
    }
    // Failure origins.
    for (vi, f) in figs.iter_mut().enumerate() {
        let failed_child = children
            .of(vi)
            .iter()
            .any(|&c| visits.get(c).is_some_and(|cv| cv.failed));
        f.origin = f.failed && !failed_child;
    }
    // The root, completeness, critical path and chain.
    let root = roots.first().copied();
    out.incomplete = completeness(recs, u, visits, calls, roots);
    (out.latency, out.root_failed, out.start) = match root.and_then(|r| visits.get(r)) {
        Some(r) => (r.end - r.start, r.failed, r.start),
        None => (0, false, first_start),
    };
    refill(used, items.list.len(), false);
    refill(critical, n, 0);
    refill(critical_prop, n, 0);
    refill(critical_unclaimed, out.unclaimed.len(), 0);
    if let Some(r) = root {
        let mut walk = Walk {
            starts: cstart,
            ends: cend,
            items,
            used,
            critical,
            critical_prop,
            unclaimed: critical_unclaimed,
        };
        walk.walk(r, get(cstart, r), get(cend, r), 0);
    }
    for (vi, f) in figs.iter_mut().enumerate() {
        f.critical = critical.get(vi).copied().unwrap_or(0);
        f.critical_propagation = critical_prop.get(vi).copied().unwrap_or(0);
    }
    for (x, &d) in out.unclaimed.iter_mut().zip(critical_unclaimed.iter()) {
        x.critical = d;
    }
    chain_children.clear();
    for (vi, v) in visits.iter().enumerate() {
        if v.virtual_ {
            continue;
        }
        if let Some(p) = v.parent {
            chain_children.push(p, vi);
        }
    }
    chain_children.group(n);
    let name = |vi: usize| visits.get(vi).map_or("", |v| u.name(v.service));
    if let Some(r) = root {
        siblings.clear();
        let chain = &mut out.chain;
        chain_of(r, chain_children, cstart, &name, 0, siblings, chain);
    }
    out.failed = visits.iter().any(|v| v.failed);
    if !opts.visit_order {
        // As built: the figures become the output (their buffer is the
        // scratch's next time), parents and callers already index them.
        std::mem::swap(&mut out.visits, figs);
        return;
    }
    // Visits in corrected-start order; parents re-indexed. The key ends in
    // the index, so it is total and an unstable sort gives the one order.
    order.clear();
    order.extend(0..n);
    order.sort_unstable_by_key(|&i| {
        (
            get(cstart, i),
            depth.get(i).copied().unwrap_or(0),
            figs.get(i).map(|f| f.first_record),
            i,
        )
    });
    refill(new_index, n, 0);
    for (new, &old) in order.iter().enumerate() {
        if let Some(x) = new_index.get_mut(old) {
            *x = new;
        }
    }
    out.visits.reserve(n);
    for &old in order.iter() {
        if let Some(f) = figs.get(old) {
            let mut f = f.clone();
            f.parent = f.parent.and_then(|p| new_index.get(p).copied());
            out.visits.push(f);
        }
    }
    for uc in &mut out.unclaimed {
        uc.caller = new_index.get(uc.caller).copied().unwrap_or(uc.caller);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What a visit list says, for comparing two ways of building it.
    fn shape(
        build: impl Fn(&mut Vec<Visit>, &mut Vec<usize>),
    ) -> Vec<(Option<usize>, Option<usize>, Vec<usize>)> {
        let (mut vs, mut pool) = (Vec::new(), Vec::new());
        build(&mut vs, &mut pool);
        let mut out: Vec<_> = vs
            .iter()
            .map(|v| {
                let mut r = v.recs(&pool).to_vec();
                r.sort_unstable();
                (v.sr, v.ss, r)
            })
            .collect();
        out.sort();
        out
    }

    proptest! {
        /// Grouping by service with counters gives what the sort of
        /// (service, index) pairs gives.
        #[test]
        fn counting_groups_match_sorted_groups(services in proptest::collection::vec(0u32..6, 0..40)) {
            let recs: Vec<Record> = services
                .iter()
                .enumerate()
                .map(|(i, &svc)| {
                    let mut r = Record::bare(IdKey::default(), i as i64, Record::pack_loc(0, i as u64));
                    r.service = svc;
                    r
                })
                .collect();
            let mut counted = Scratch::default();
            group_by_service(&recs, 6, &mut counted);
            let mut sorted = Scratch::default();
            group_by_service(&recs, 0, &mut sorted);
            prop_assert_eq!(&counted.by_service, &sorted.by_service);
            prop_assert_eq!(&counted.services, &sorted.services);
            prop_assert!(counted.slot.iter().all(|&c| c == 0));
        }

        /// The one-visit shortcut of `plain_visits` builds exactly what the
        /// general pairing builds, for any mix of records over two files.
        #[test]
        fn one_visit_shortcut_matches_general_pairing(
            kinds in proptest::collection::vec((0u8..5, 0u32..2, proptest::option::of(1i64..50)), 1..7),
        ) {
            let recs: Vec<Record> = kinds
                .iter()
                .enumerate()
                .map(|(i, &(k, file, dur))| {
                    let mut r = Record::bare(IdKey::default(), i as i64 * 10, Record::pack_loc(file, i as u64));
                    r.duration_ns = match k { 0 | 1 => dur.unwrap_or(Record::NO_DURATION), _ => Record::NO_DURATION };
                    r.peer_id = if (2..=3).contains(&k) { 0 } else { Record::NO_PEER };
                    r.kind = match k {
                        0 => Some(Kind::ServerRecv),
                        1 => Some(Kind::ServerSend),
                        2 => Some(Kind::ClientSend),
                        3 => Some(Kind::ClientRecv),
                        _ => None,
                    };
                    r
                })
                .collect();
            let idxs: Vec<usize> = (0..recs.len()).collect();
            prop_assert_eq!(
                shape(|vs, pool| plain_visits(0, &idxs, &recs, vs, pool)),
                shape(|vs, pool| paired_visits(0, &idxs, &recs, vs, pool))
            );
        }

        /// The sweep answers every time as the scan of every interval
        /// does, ties included: intervals with shared ends, nested, equal,
        /// inverted, or open-ended (`i64::MIN`/`MAX`), times anywhere.
        #[test]
        fn sweep_matches_scanning_every_interval(
            intervals in proptest::collection::vec((-3i64..12, -3i64..12, 0u8..12), 1..9),
            times in proptest::collection::vec(-6i64..16, 1..12),
        ) {
            let intervals: Vec<(i64, i64)> = intervals
                .into_iter()
                .map(|(lo, hi, open)| match open {
                    0 => (i64::MIN, hi),
                    1 => (lo, i64::MAX),
                    _ => (lo, hi),
                })
                .collect();
            let scanned: Vec<Option<usize>> =
                times.iter().map(|&t| containing_or_nearest(&intervals, t)).collect();
            prop_assert_eq!(sweep_containing_or_nearest(&intervals, &times), scanned);
        }

        /// Memoised owners equal those of walking each span up its
        /// parents, step by step, for at most `names.len()` steps — for
        /// any parent graph: chains, shared ancestors, self-parents,
        /// cycles, and parents that are not spans of the service.
        #[test]
        fn span_owners_match_the_step_by_step_walk(
            parents in proptest::collection::vec(proptest::option::of(0u32..14), 1..12),
        ) {
            let names: Vec<IdKey> = (0..parents.len() as u32).map(IdKey::interned).collect();
            let step = |cur: IdKey| -> Option<IdKey> {
                let i = names.iter().position(|n| *n == cur)?;
                let p = IdKey::interned((*parents.get(i)?)?);
                (p != cur && names.contains(&p)).then_some(p)
            };
            let memoised = span_owners(&names, step);
            for &name in &names {
                let mut cur = name;
                for _ in 0..names.len() {
                    match step(cur) {
                        Some(p) => cur = p,
                        None => break,
                    }
                }
                prop_assert_eq!(memoised.get(&name), Some(&cur), "{:?}", name);
            }
        }
    }

    /// A chain of inner spans ending at the span with server events, and
    /// a three-span cycle, where a walk of six steps (one per span) ends
    /// where it began.
    #[test]
    fn span_owners_of_a_chain_and_a_cycle() {
        let k = IdKey::interned;
        // 0 <- 1 <- 2 (0 stops); 3 -> 4 -> 5 -> 3 (no stop).
        let parent = [None, Some(0), Some(1), Some(4), Some(5), Some(3)];
        let names: Vec<IdKey> = (0..6).map(k).collect();
        let owners = span_owners(&names, |cur| {
            let i = names.iter().position(|n| *n == cur)?;
            parent[i].map(k)
        });
        // The chain joins 0; six steps around the 3-cycle end where they
        // began.
        let expected = [0, 0, 0, 3, 4, 5];
        for (i, e) in expected.iter().enumerate() {
            assert_eq!(owners[&k(i as u32)], k(*e), "span {i}");
        }
    }
}
