//! Building one request's tree: visits from records (with and without span
//! IDs), calls paired inside caller visits, parent links in the SPEC's
//! order, offsets, and the figures of every visit and hop.

use std::collections::{BTreeMap, VecDeque};

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
    recs: Vec<usize>,
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
    calls: Vec<usize>,
}

impl Visit {
    fn new(service: SymId) -> Visit {
        Visit {
            service,
            virtual_: false,
            recs: Vec::new(),
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
            calls: Vec::new(),
        }
    }

    fn exact(&self) -> bool {
        self.start_exact && self.end_exact
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

/// Visits of one service without span IDs: sr/ss pairing per file, then
/// across files; other records join the innermost containing visit.
fn plain_visits(service: SymId, idxs: &[usize], recs: &[Record]) -> Vec<Visit> {
    let roles = || {
        idxs.iter()
            .filter_map(|&i| recs.get(i).and_then(server_role).map(|s| (i, s)))
    };
    // The usual case — no server event, a lone one, or one sr before one
    // ss — is a single visit holding every record (the general path below
    // gives the same).
    let mut first3 = roles();
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
        v.recs = idxs.to_vec();
        return vec![v];
    }
    paired_visits(service, idxs, recs)
}

/// [`plain_visits`] in general: any number of server events, paired per
/// file, then across files.
fn paired_visits(service: SymId, idxs: &[usize], recs: &[Record]) -> Vec<Visit> {
    // `idxs` ascend, so `servers` does too.
    let servers: Vec<(usize, Server)> = idxs
        .iter()
        .filter_map(|&i| recs.get(i).and_then(server_role).map(|s| (i, s)))
        .collect();
    if servers.is_empty() {
        let mut v = Visit::new(service);
        v.recs = idxs.to_vec();
        return vec![v];
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
    let mut visits: Vec<Visit> = pairs
        .into_iter()
        .map(|(sr, ss)| {
            let mut v = Visit::new(service);
            v.sr = sr;
            v.ss = ss;
            v.recs.reserve(4);
            v.recs.extend(sr);
            v.recs.extend(ss);
            v
        })
        .collect();
    let intervals: Vec<(i64, i64)> = visits.iter().map(|v| v.anchor_interval(recs)).collect();
    for &i in idxs {
        // Records that anchor a visit (sr/ss) are not assigned again.
        if servers.binary_search_by_key(&i, |&(s, _)| s).is_ok() {
            continue;
        }
        let Some(r) = recs.get(i) else { continue };
        if let Some(v) = containing_or_nearest(&intervals, r.ts).and_then(|k| visits.get_mut(k)) {
            v.recs.push(i);
        }
    }
    visits
}

/// Visits of one service with span IDs (SPEC §2 Visits).
fn span_visits(service: SymId, idxs: &[usize], recs: &[Record], u: &Universe) -> Vec<Visit> {
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
    let mut owner: HashMap<IdKey, IdKey> = HashMap::default();
    for &name in &names {
        let mut cur = name;
        for _ in 0..names.len() {
            let Some(g) = groups.get(&cur) else { break };
            if has_server(g) {
                break;
            }
            match parent_of(g) {
                Some(p) if p != cur && groups.contains_key(&p) => cur = p,
                _ => break,
            }
        }
        owner.insert(name, cur);
    }
    let mut by_owner: BTreeMap<IdKey, Vec<IdKey>> = BTreeMap::new();
    for &name in &names {
        let o = owner.get(&name).copied().unwrap_or(name);
        by_owner.entry(o).or_default().push(name);
    }
    let mut visits = Vec::new();
    for (own, members) in by_owner {
        let mut v = Visit::new(service);
        for m in &members {
            if let Some(g) = groups.get(m) {
                v.recs.extend_from_slice(g);
            }
            v.spans.push(*m);
        }
        v.recs.sort_unstable();
        v.parent_span = groups.get(&own).and_then(|g| parent_of(g));
        for &i in &v.recs {
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
        visits.push(v);
    }
    visits.sort_by_key(|v| v.recs.first().copied());
    let intervals: Vec<(i64, i64)> = visits
        .iter()
        .map(|v| {
            let (lo, hi) = v.anchor_interval(recs);
            let first = v.recs.first().and_then(|&i| recs.get(i)).map(|r| r.ts);
            let last = v.recs.last().and_then(|&i| recs.get(i)).map(|r| r.ts);
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
    for i in spanless {
        let Some(r) = recs.get(i) else { continue };
        if let Some(v) = containing_or_nearest(&intervals, r.ts).and_then(|k| visits.get_mut(k)) {
            v.recs.push(i);
        }
    }
    for v in &mut visits {
        v.recs.sort_unstable();
    }
    visits
}

/// Fills in timing, failure and ordering facts from the visit's records.
fn finish_visit(v: &mut Visit, recs: &[Record], u: &Universe) {
    v.recs.sort_unstable();
    let first_ts = v
        .recs
        .first()
        .and_then(|&i| recs.get(i))
        .map_or(0, |r| r.ts);
    let last_ts = v.recs.last().and_then(|&i| recs.get(i)).map_or(0, |r| r.ts);
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
    for &i in &v.recs {
        let Some(r) = recs.get(i) else { continue };
        v.has_events |= r.kind.is_some();
        v.first = v.first.min((r.file(), r.offset()));
        if r.failed && call_role(r, u).is_none() {
            v.failed = true;
        }
    }
}

/// Pairs the client events of one visit per peer into calls: each
/// `client_recv` closes the oldest open `client_send` to the same peer.
fn visit_calls(vi: usize, v: &Visit, recs: &[Record], u: &Universe, calls: &mut Vec<Call>) {
    // Open sends in arrival order: (peer, send); `None` once closed. A
    // visit has a handful of calls, so a scan beats a map of queues.
    let mut pending: Vec<(SymId, Option<PendingSend>)> = Vec::new();
    let first = calls.len();
    for &i in &v.recs {
        let Some(r) = recs.get(i) else { continue };
        let Some(ev) = call_role(r, u) else { continue };
        let key = (r.file(), r.offset());
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
    for (t, s) in pending {
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
    if let Some(mine) = calls.get_mut(first..) {
        mine.sort_unstable_by_key(|c| c.key);
    }
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

/// Builds the request. See the module docs.
pub fn build(
    id: &str,
    recs: &[Record],
    u: &Universe,
    offsets: Option<&Offsets>,
    opts: &AssembleOptions,
) -> Assembled {
    let empty = Offsets::default();
    let offsets = offsets.unwrap_or(&empty);
    // Visits, service by service (record indices grouped by service, each
    // group in time order).
    let mut by_service: Vec<(SymId, usize)> = recs
        .iter()
        .enumerate()
        .map(|(i, r)| (r.service, i))
        .collect();
    by_service.sort_unstable();
    let mut visits: Vec<Visit> = Vec::new();
    let mut idxs: Vec<usize> = Vec::new();
    for group in by_service.chunk_by(|a, b| a.0 == b.0) {
        let Some(&(svc, _)) = group.first() else {
            continue;
        };
        idxs.clear();
        idxs.extend(group.iter().map(|&(_, i)| i));
        let with_spans = idxs.iter().any(|&i| {
            recs.get(i)
                .is_some_and(|r| r.spans != Record::NO_SPANS && u.spans_of(r).span.is_some())
        });
        let mut vs = if with_spans {
            span_visits(svc, &idxs, recs, u)
        } else {
            plain_visits(svc, &idxs, recs)
        };

        for v in &mut vs {
            finish_visit(v, recs, u);
        }
        visits.extend(vs);
    }
    let start = visits.iter().map(|v| v.start).min().unwrap_or(0);
    if visits.len() > opts.max_visits {
        return too_large(id, start, &visits);
    }
    // Calls inside each caller visit.
    let mut calls: Vec<Call> = Vec::new();
    for (vi, v) in visits.iter().enumerate() {
        visit_calls(vi, v, recs, u, &mut calls);
    }
    for (ci, c) in calls.iter().enumerate() {
        if let Some(v) = visits.get_mut(c.caller) {
            v.calls.push(ci);
        }
    }
    let logged = visits.len();
    link_parents(&mut visits, &mut calls, recs, offsets, logged);
    // Virtual visits, one per call to a virtual service.
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
    if opts.skew_pass {
        return skew_only(id, start, recs, u, &visits, &calls);
    }
    figures(id, start, recs, u, &visits, &calls, offsets, opts)
}

fn too_large(id: &str, start: i64, visits: &[Visit]) -> Assembled {
    let end = visits.iter().map(|v| v.end).max().unwrap_or(start);
    Assembled {
        id: id.to_string(),
        start,
        latency: end - start,
        failed: visits.iter().any(|v| v.failed),
        root_failed: false,
        incomplete: Some(Incomplete::TooLarge),
        chain: String::new(),
        visits: Vec::new(),
        unclaimed: Vec::new(),
        skew_samples: Vec::new(),
    }
}

/// Parent links in the SPEC's order: span links, calls, rule 2, rule 3.
fn link_parents(
    visits: &mut [Visit],
    calls: &mut [Call],
    recs: &[Record],
    offsets: &Offsets,
    logged: usize,
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
    let mut order: Vec<usize> = (0..logged).collect();
    order.sort_by_key(|&i| visits.get(i).map(|v| (v.start, v.first)));
    for &vi in &order {
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
    for &vi in &order {
        let Some(v) = visits.get(vi) else { continue };
        if v.parent.is_some() {
            continue;
        }
        let (vstart, vend) = (v.start, v.end);
        let mut best: Option<(usize, ParentRank)> = None;
        for (pi, p) in visits.iter().enumerate().take(logged) {
            if pi == vi || !(p.start <= vstart && vstart <= p.end) {
                continue;
            }
            // A visit with the same start that ends first sits inside this
            // one; it is not its container.
            if p.start == vstart && p.end < vend {
                continue;
            }
            if is_descendant(visits, pi, vi) {
                continue;
            }
            let key = (std::cmp::Reverse(p.start), p.end, p.service, p.first);
            if best.as_ref().is_none_or(|(_, b)| key < *b) {
                best = Some((pi, key));
            }
        }
        let mut link = Link::Contains;
        if best.is_none() {
            link = Link::Handoff;
            for (pi, p) in visits.iter().enumerate().take(logged) {
                if pi == vi || p.end >= vstart || is_descendant(visits, pi, vi) {
                    continue;
                }
                let key = (std::cmp::Reverse(p.end), p.start, p.service, p.first);
                if best.as_ref().is_none_or(|(_, b)| key < *b) {
                    best = Some((pi, key));
                }
            }
        }
        if let (Some((pi, _)), Some(v)) = (best, visits.get_mut(vi)) {
            v.parent = Some(pi);
            v.link = link;
        }
    }
    let _ = recs;
}

/// The roots (visits without a parent, earliest first).
fn roots_of(visits: &[Visit]) -> Vec<usize> {
    let mut roots: Vec<usize> = (0..visits.len())
        .filter(|&i| visits.get(i).is_some_and(|v| v.parent.is_none()))
        .collect();
    roots.sort_by_key(|&r| visits.get(r).map(|v| (v.start, v.first)));
    roots
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
        let cr_without_cs = r
            .calls
            .iter()
            .filter_map(|&ci| calls.get(ci))
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
    id: &str,
    first_start: i64,
    recs: &[Record],
    u: &Universe,
    visits: &[Visit],
    calls: &[Call],
) -> Assembled {
    let roots = roots_of(visits);
    let incomplete = completeness(recs, u, visits, calls, &roots);
    let mut skew_samples = Vec::new();
    for v in visits.iter().filter(|v| !v.virtual_ && v.exact()) {
        let (Link::Call(ci), Some(p)) = (v.link, v.parent.and_then(|p| visits.get(p))) else {
            continue;
        };
        if let Some((cs, cr)) = calls.get(ci).and_then(|c| c.cs.zip(c.cr)) {
            skew_samples.push((p.service, v.service, (v.start - cs) - (cr - v.end)));
        }
    }
    let root = roots.first().and_then(|&r| visits.get(r));
    Assembled {
        id: id.to_string(),
        start: root.map_or(first_start, |r| r.start),
        latency: root.map_or(0, |r| r.end - r.start),
        failed: visits.iter().any(|v| v.failed),
        root_failed: root.is_some_and(|r| r.failed),
        incomplete,
        chain: String::new(),
        visits: Vec::new(),
        unclaimed: Vec::new(),
        skew_samples,
    }
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

struct Walk<'a> {
    starts: &'a [i64],
    ends: &'a [i64],
    items: &'a [Vec<Item>],
    critical: Vec<i64>,
    critical_prop: Vec<i64>,
    unclaimed: Vec<i64>,
}

impl Walk<'_> {
    fn walk(&mut self, v: usize, lo: i64, hi: i64, depth: usize) {
        let mut t = hi;
        if depth < MAX_DEPTH {
            let mut used = vec![false; self.items.get(v).map_or(0, Vec::len)];
            loop {
                let mut pick: Option<(usize, Item)> = None;
                for (k, it) in self.items.get(v).into_iter().flatten().enumerate() {
                    if used.get(k).copied().unwrap_or(true) || it.finish > t || it.finish <= lo {
                        continue;
                    }
                    if pick.is_none_or(|(_, p)| it.finish > p.finish) {
                        pick = Some((k, *it));
                    }
                }
                let Some((k, it)) = pick else { break };
                if let Some(u) = used.get_mut(k) {
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
/// corrected-start order, ties by their chain text.
fn chain_of<'n>(
    v: usize,
    children: &[Vec<usize>],
    starts: &[i64],
    name: &dyn Fn(usize) -> &'n str,

    depth: usize,
    out: &mut String,
) {
    push_escaped(out, name(v));
    if depth >= MAX_DEPTH {
        return;
    }
    let kids = children.get(v).map_or(&[][..], Vec::as_slice);
    match kids {
        [] => {}
        [only] => {
            out.push('>');
            chain_of(*only, children, starts, name, depth + 1, out);
        }
        _ => {
            let start = |c: usize| starts.get(c).copied().unwrap_or(0);
            let mut order: Vec<usize> = kids.to_vec();
            order.sort_by_key(|&c| start(c));
            out.push_str(">{");
            let tied = order
                .windows(2)
                .any(|w| matches!(w, [a, b] if start(*a) == start(*b)));
            if tied {
                // Equal starts are ordered by their own chain text.
                let mut texts: Vec<(i64, String)> = order
                    .iter()
                    .map(|&c| {
                        let mut t = String::new();
                        chain_of(c, children, starts, name, depth + 1, &mut t);
                        (start(c), t)
                    })
                    .collect();
                texts.sort();
                for (k, (_, t)) in texts.iter().enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    out.push_str(t);
                }
            } else {
                for (k, &c) in order.iter().enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    chain_of(c, children, starts, name, depth + 1, out);
                }
            }
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

#[allow(clippy::too_many_arguments)]
fn figures(
    id: &str,
    first_start: i64,
    recs: &[Record],
    u: &Universe,
    visits: &[Visit],
    calls: &[Call],
    offsets: &Offsets,
    opts: &AssembleOptions,
) -> Assembled {
    let n = visits.len();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (vi, v) in visits.iter().enumerate() {
        if let Some(c) = v.parent.and_then(|p| children.get_mut(p)) {
            c.push(vi);
        }
    }
    let roots = roots_of(visits);
    // Offsets top-down: skew per pair, then Jaeger moves of rule-2 children.
    let mut off = vec![0i64; n];
    let mut adjusted = vec![false; n];
    let mut depth = vec![0usize; n];
    let mut queue: VecDeque<usize> = roots.iter().copied().collect();
    while let Some(p) = queue.pop_front() {
        let Some(pv) = visits.get(p) else { continue };
        let p_off = off.get(p).copied().unwrap_or(0);
        let p_depth = depth.get(p).copied().unwrap_or(0);
        for &c in children.get(p).into_iter().flatten() {
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
    let cstart: Vec<i64> = visits.iter().zip(&off).map(|(v, o)| v.start - o).collect();
    let cend: Vec<i64> = visits.iter().zip(&off).map(|(v, o)| v.end - o).collect();
    // A visit's record times, corrected by `o`.
    fn rec_ts<'v>(v: &'v Visit, recs: &'v [Record], o: i64) -> impl Iterator<Item = i64> + 'v {
        v.recs
            .iter()
            .filter_map(move |&i| recs.get(i).map(|r| r.ts - o))
    }
    let get = |xs: &[i64], i: usize| xs.get(i).copied().unwrap_or(0);

    let mut figs: Vec<VisitFigures> = Vec::with_capacity(n);
    let mut items: Vec<Vec<Item>> = vec![Vec::new(); n];
    let mut unclaimed: Vec<UnclaimedCall> = Vec::new();
    let mut unclaimed_of_call: Vec<Option<usize>> = vec![None; calls.len()];
    let mut skew_samples = Vec::new();
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
        let o = get(&off, vi);
        let (s, e) = (get(&cstart, vi), get(&cend, vi));
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
            adjusted: get_b(&adjusted, vi),
            first_record: v.first,
        };
        let parent = v.parent.and_then(|p| visits.get(p).map(|pv| (p, pv)));
        match (v.link, parent) {
            (Link::Root, _) | (_, None) => f.hop_exact = v.exact(),
            (Link::Call(ci), Some((p, pv))) => {
                let po = get(&off, p);
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
                            skew_samples.push((
                                pv.service,
                                v.service,
                                (v.start - rcs) - (rcr - v.end),
                            ));
                        }
                        if let Some(x) = items.get_mut(p) {
                            x.push(Item {
                                begin: cs,
                                finish: cr,
                                target: Target::Child(vi),
                            });
                        }
                    }
                    (Some(cs), None) => {
                        f.request_leg = Some(s - cs);
                        f.propagation = f.request_leg;
                        if let Some(x) = items.get_mut(p) {
                            x.push(Item {
                                begin: cs,
                                finish: e,
                                target: Target::Child(vi),
                            });
                        }
                    }
                    (None, Some(cr)) => {
                        f.response_leg = Some(cr - e);
                        if let Some(x) = items.get_mut(p) {
                            x.push(Item {
                                begin: s,
                                finish: cr,
                                target: Target::Child(vi),
                            });
                        }
                    }
                    (None, None) => {}
                }
            }
            (Link::Handoff, Some((p, _))) => {
                f.request_leg = Some(s - get(&cend, p));
                f.propagation = f.request_leg;
            }
            (Link::Span | Link::Contains, Some((p, pv))) => {
                let po = get(&off, p);
                let before = rec_ts(pv, recs, po).filter(|&t| t <= s).max();
                let after = rec_ts(pv, recs, po).filter(|&t| t >= e).min();
                f.request_leg = before.map(|b| s - b);
                f.response_leg = after.map(|a| a - e);
                f.propagation = f.request_leg.zip(f.response_leg).map(|(a, b)| a + b);
                if let Some(x) = items.get_mut(p) {
                    x.push(Item {
                        begin: before.unwrap_or(s),
                        finish: after.unwrap_or(e),
                        target: Target::Child(vi),
                    });
                }
            }
            (Link::Virtual(ci), Some((p, _))) => {
                let c = calls.get(ci);
                let po = get(&off, p);
                let cs = c.and_then(|c| c.cs).map(|t| t - po);
                let cr = c.and_then(|c| c.cr).map(|t| t - po);
                f.call = cs.zip(cr).map(|(a, b)| b - a);
                f.hop_exact = f.call.is_some();
                f.exact = f.hop_exact;
                if let (Some(cs), Some(cr), Some(x)) = (cs, cr, items.get_mut(p)) {
                    x.push(Item {
                        begin: cs,
                        finish: cr,
                        target: Target::Virtual(vi),
                    });
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
        let po = get(&off, c.caller);
        if let Some(x) = items.get_mut(c.caller) {
            x.push(Item {
                begin: cs - po,
                finish: cr - po,
                target: Target::Unclaimed(ui),
            });
        }
    }
    // Self time: processing minus the union of calls and call-less children
    // (intervals clipped to the visit).
    let mut iv: Vec<(i64, i64)> = Vec::new();
    for (vi, v) in visits.iter().enumerate() {
        if v.virtual_ {
            continue;
        }
        let (s, e) = (get(&cstart, vi), get(&cend, vi));
        let o = get(&off, vi);
        let clip = |(a, b): (i64, i64)| (a.clamp(s, e), b.clamp(s, e));
        iv.clear();
        iv.extend(
            v.calls
                .iter()
                .filter_map(|&ci| calls.get(ci))
                .filter_map(|c| c.cs.zip(c.cr))
                .map(|(a, b)| clip((a - o, b - o))),
        );
        for &c in children.get(vi).into_iter().flatten() {
            if let Some(cv) = visits.get(c)
                && matches!(cv.link, Link::Span | Link::Contains)
            {
                iv.push(clip((get(&cstart, c), get(&cend, c))));
            }
        }
        if let Some(f) = figs.get_mut(vi) {
            f.self_time = Some((e - s) - union_len(&mut iv));
        }
    }
    // Failure origins.
    for vi in 0..n {
        let failed_child = children
            .get(vi)
            .into_iter()
            .flatten()
            .any(|&c| visits.get(c).is_some_and(|cv| cv.failed));
        if let Some(f) = figs.get_mut(vi) {
            f.origin = f.failed && !failed_child;
        }
    }
    // The root, completeness, critical path and chain.
    let root = roots.first().copied();
    let incomplete = completeness(recs, u, visits, calls, &roots);
    let (latency, root_failed, root_start) = match root.and_then(|r| visits.get(r)) {
        Some(r) => (r.end - r.start, r.failed, r.start),
        None => (0, false, first_start),
    };
    let mut walk = Walk {
        starts: &cstart,
        ends: &cend,
        items: &items,
        critical: vec![0; n],
        critical_prop: vec![0; n],
        unclaimed: vec![0; unclaimed.len()],
    };
    if let Some(r) = root {
        walk.walk(r, get(&cstart, r), get(&cend, r), 0);
    }
    for (vi, f) in figs.iter_mut().enumerate() {
        f.critical = walk.critical.get(vi).copied().unwrap_or(0);
        f.critical_propagation = walk.critical_prop.get(vi).copied().unwrap_or(0);
    }
    for (ui, d) in walk.unclaimed.into_iter().enumerate() {
        if let Some(x) = unclaimed.get_mut(ui) {
            x.critical = d;
        }
    }
    let mut chain_children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (vi, v) in visits.iter().enumerate() {
        if v.virtual_ {
            continue;
        }
        if let Some(c) = v.parent.and_then(|p| chain_children.get_mut(p)) {
            c.push(vi);
        }
    }
    let name = |vi: usize| visits.get(vi).map_or("", |v| u.name(v.service));
    let mut chain = String::new();
    if let Some(r) = root {
        chain_of(r, &chain_children, &cstart, &name, 0, &mut chain);
    }
    // Visits in corrected-start order; parents re-indexed.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| {
        (
            get(&cstart, i),
            depth.get(i).copied().unwrap_or(0),
            figs.get(i).map(|f| f.first_record),
            i,
        )
    });
    let mut new_index = vec![0usize; n];
    for (new, &old) in order.iter().enumerate() {
        if let Some(x) = new_index.get_mut(old) {
            *x = new;
        }
    }
    let mut sorted: Vec<VisitFigures> = Vec::with_capacity(n);
    for &old in &order {
        if let Some(mut f) = figs.get(old).cloned() {
            f.parent = f.parent.and_then(|p| new_index.get(p).copied());
            sorted.push(f);
        }
    }
    for uc in &mut unclaimed {
        uc.caller = new_index.get(uc.caller).copied().unwrap_or(uc.caller);
    }
    Assembled {
        id: id.to_string(),
        start: root_start,
        latency,
        failed: visits.iter().any(|v| v.failed),
        root_failed,
        incomplete,
        chain,
        visits: sorted,
        unclaimed,
        skew_samples,
    }
}

fn get_b(xs: &[bool], i: usize) -> bool {
    xs.get(i).copied().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What a visit list says, for comparing two ways of building it.
    fn shape(vs: &[Visit]) -> Vec<(Option<usize>, Option<usize>, Vec<usize>)> {
        let mut out: Vec<_> = vs
            .iter()
            .map(|v| {
                let mut r = v.recs.clone();
                r.sort_unstable();
                (v.sr, v.ss, r)
            })
            .collect();
        out.sort();
        out
    }

    proptest! {
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
                shape(&plain_visits(0, &idxs, &recs)),
                shape(&paired_visits(0, &idxs, &recs))
            );
        }
    }
}
