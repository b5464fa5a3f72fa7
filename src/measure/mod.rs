//! Measure stage: assembled requests folded into mergeable statistics per
//! service, hop and chain. Every statistic has `merge`, so the parallel fold
//! and a sequential run share one path and give the same result.

pub mod histogram;

use std::collections::BTreeMap;

use crate::assemble::{Assembled, Incomplete, Link};
use crate::model::SymId;
use histogram::Histogram;

/// The `from` of the root's hop: the outside caller.
pub const CLIENT: SymId = SymId::MAX;

/// A request's ID whose text is made on first use: most requests never
/// win a "slowest" or "earliest" slot, so most never need it.
pub struct LazyId<'a> {
    known: Option<&'a str>,
    made: std::cell::OnceCell<String>,
    make: &'a dyn Fn() -> String,
}

impl<'a> LazyId<'a> {
    /// An ID whose text `make` produces.
    pub fn new(make: &'a dyn Fn() -> String) -> LazyId<'a> {
        LazyId {
            known: None,
            made: std::cell::OnceCell::new(),
            make,
        }
    }

    /// An ID whose text is already known.
    pub fn known(text: &'a str) -> LazyId<'a> {
        LazyId {
            known: Some(text),
            made: std::cell::OnceCell::new(),
            make: &String::new,
        }
    }

    /// The text, made now if needed.
    pub fn text(&self) -> &str {
        match self.known {
            Some(t) => t,
            None => self.made.get_or_init(|| (self.make)()),
        }
    }
}

/// The request with the largest value; ties go to the smaller ID.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Slowest(pub Option<(i64, String)>);

impl Slowest {
    /// Offers one request's value.
    pub fn offer(&mut self, value: i64, id: &str) {
        self.offer_lazy(value, &LazyId::known(id));
    }

    /// Offers one request's value; the ID's text is made only when needed.
    pub fn offer_lazy(&mut self, value: i64, id: &LazyId<'_>) {
        let better = match &self.0 {
            None => true,
            Some((v, _)) if value != *v => value > *v,
            Some((_, i)) => id.text() < i.as_str(),
        };
        if better {
            self.0 = Some((value, id.text().to_string()));
        }
    }

    /// Keeps the better of the two.
    pub fn merge(&mut self, other: &Slowest) {
        if let Some((v, i)) = &other.0 {
            self.offer(*v, i);
        }
    }

    /// The winning request ID.
    pub fn id(&self) -> Option<&str> {
        self.0.as_ref().map(|(_, i)| i.as_str())
    }
}

/// The earliest-starting request; ties go to the smaller ID.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Earliest(pub Option<(i64, String)>);

impl Earliest {
    /// Offers one request's start.
    pub fn offer(&mut self, start: i64, id: &str) {
        self.offer_lazy(start, &LazyId::known(id));
    }

    /// Offers one request's start; the ID's text is made only when needed.
    pub fn offer_lazy(&mut self, start: i64, id: &LazyId<'_>) {
        let better = match &self.0 {
            None => true,
            Some((s, _)) if start != *s => start < *s,
            Some((_, i)) => id.text() < i.as_str(),
        };
        if better {
            self.0 = Some((start, id.text().to_string()));
        }
    }

    /// Keeps the better of the two.
    pub fn merge(&mut self, other: &Earliest) {
        if let Some((s, i)) = &other.0 {
            self.offer(*s, i);
        }
    }

    /// The winning request ID.
    pub fn id(&self) -> Option<&str> {
        self.0.as_ref().map(|(_, i)| i.as_str())
    }
}

/// Figures of one service over all its visits.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceStats {
    /// Visits of this service folded in (a virtual service: one per call).
    pub visits: u64,
    /// Visits that failed by their own records.
    pub failed: u64,
    /// Failed visits none of whose child visits failed.
    pub origin_failures: u64,
    /// Visits timed exactly; `exact / visits` is the report's `exact_fraction`.
    pub exact: u64,
    /// Visit end − start in ns; empty for a virtual service.
    pub processing: Histogram,
    /// Processing minus outgoing calls and children, in ns; empty for a virtual
    /// service.
    pub self_time: Histogram,
    /// Own work on the critical path in ns, one value per visit (0 off the path).
    pub critical: Histogram,
}

impl ServiceStats {
    fn merge(&mut self, o: &ServiceStats) {
        self.visits += o.visits;
        self.failed += o.failed;
        self.origin_failures += o.origin_failures;
        self.exact += o.exact;
        self.processing.merge(&o.processing);
        self.self_time.merge(&o.self_time);
        self.critical.merge(&o.critical);
    }
}

/// Figures of one hop (caller → callee) over all its calls.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HopStats {
    /// Calls folded in, unclaimed calls included.
    pub calls: u64,
    /// Calls whose callee visit or `client_recv` failed.
    pub failed: u64,
    /// Exact calls; `exact / calls` is the report's `exact_fraction`.
    pub exact: u64,
    /// `client_recv − client_send` in ns, for calls that have both.
    pub call: Histogram,
    /// The callee visit's processing time in ns; empty for virtual hops.
    pub processing: Histogram,
    /// Request leg + response leg in ns (the request leg alone for hand-offs).
    pub propagation: Histogram,
    /// Callee start − `client_send` in ns, skew-corrected, signed.
    pub request_leg: Histogram,
    /// `client_recv` − callee end in ns, skew-corrected, signed; none for
    /// hand-offs.
    pub response_leg: Histogram,
    /// Propagation on the critical path in ns, one value per call (0 off the
    /// path); nothing is recorded for the root's `(client)` hop.
    pub critical: Histogram,
    /// The request with the largest processing time on this hop.
    pub slowest: Slowest,
    /// The request with the largest call time, used when the hop has no
    /// processing (virtual callees, only unclaimed calls). Kept apart so the
    /// choice never depends on the order requests were folded in.
    pub slowest_call: Slowest,
    /// The earliest-starting request with a failed call on this hop.
    pub failed_request: Earliest,
}

impl HopStats {
    fn merge(&mut self, o: &HopStats) {
        self.calls += o.calls;
        self.failed += o.failed;
        self.exact += o.exact;
        self.call.merge(&o.call);
        self.processing.merge(&o.processing);
        self.propagation.merge(&o.propagation);
        self.request_leg.merge(&o.request_leg);
        self.response_leg.merge(&o.response_leg);
        self.critical.merge(&o.critical);
        self.slowest.merge(&o.slowest);
        self.slowest_call.merge(&o.slowest_call);
        self.failed_request.merge(&o.failed_request);
    }

    /// The slowest request by the hop's main figure: processing, else call.
    pub fn slowest_request(&self) -> Option<&str> {
        if self.processing.count() > 0 {
            self.slowest.id()
        } else {
            self.slowest_call.id()
        }
    }
}

/// Figures of one chain shape over its requests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChainStats {
    /// Requests with this chain shape.
    pub requests: u64,
    /// Of those, requests with a failed visit.
    pub failed: u64,
    /// Request latency (root end − root start) in ns.
    pub latency: Histogram,
    /// The request with the largest latency.
    pub slowest: Slowest,
    /// The earliest-starting failed request.
    pub failed_request: Earliest,
}

impl ChainStats {
    fn merge(&mut self, o: &ChainStats) {
        self.requests += o.requests;
        self.failed += o.failed;
        self.latency.merge(&o.latency);
        self.slowest.merge(&o.slowest);
        self.failed_request.merge(&o.failed_request);
    }
}

/// Request counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestStats {
    /// Every request folded in, complete or not: `complete + incomplete`.
    pub total: u64,
    /// Requests with no incomplete reason.
    pub complete: u64,
    /// Requests with an incomplete reason; the sum of `reasons`.
    pub incomplete: u64,
    /// Requests with a failed visit (virtual ones included), incomplete ones too.
    pub failed: u64,
    /// Requests whose root visit failed.
    pub root_failed: u64,
    /// Extra pieces made by `--max-gap`.
    pub split: u64,
    /// Per reason, in [`Incomplete::ALL`] order.
    pub reasons: [u64; 5],
    /// Root end − root start in ns, only over requests counted in services, hops
    /// and chains (complete ones unless `include_incomplete`).
    pub latency: Histogram,
    /// Requests whose root lasted over an hour.
    pub over_an_hour: u64,
    /// Requests that touched only one logged service.
    pub single_service: u64,
}

/// Everything the report needs from the requests, mergeable.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Request counters; the only figures that count incomplete requests by
    /// default.
    pub requests: RequestStats,
    /// Per service (interned ID; virtual ones included).
    pub services: BTreeMap<SymId, ServiceStats>,
    /// Per (caller, callee); the root's caller is [`CLIENT`].
    pub hops: BTreeMap<(SymId, SymId), HopStats>,
    /// Per chain string (SPEC §2 grammar).
    pub chains: BTreeMap<String, ChainStats>,
    /// Calls whose legs were corrected or whose callee was moved.
    pub adjusted_hops: u64,
    /// Calls with a negative leg after correction.
    pub negative_legs: u64,
    /// Calls whose hop is estimated.
    pub estimated_hops: u64,
}

const HOUR_NS: i64 = 3_600_000_000_000;

impl Stats {
    /// Folds one request in. Incomplete requests count only in `requests`
    /// unless `include_incomplete`. `id` is the request's ID (`a.id` may be
    /// empty, see [`crate::assemble::assemble_unnamed_into`]).
    pub fn add(&mut self, a: &Assembled, id: &LazyId<'_>, include_incomplete: bool) {
        let r = &mut self.requests;
        r.total += 1;
        r.failed += u64::from(a.failed);
        r.root_failed += u64::from(a.root_failed);
        match a.incomplete {
            None => r.complete += 1,
            Some(reason) => {
                r.incomplete += 1;
                if let Some(x) = Incomplete::ALL
                    .iter()
                    .position(|&k| k == reason)
                    .and_then(|i| r.reasons.get_mut(i))
                {
                    *x += 1;
                }
            }
        }
        if a.incomplete.is_some() && !include_incomplete {
            return;
        }
        if a.visits.is_empty() {
            return;
        }
        r.latency.record(a.latency);
        if a.latency > HOUR_NS {
            r.over_an_hour += 1;
        }
        let mut logged = a.visits.iter().filter(|v| !v.virtual_).map(|v| v.service);
        if let Some(first) = logged.next()
            && logged.all(|s| s == first)
        {
            r.single_service += 1;
        }
        // One search when the chain is known (nearly always); the key is
        // copied only for a new chain.
        let chain = match self.chains.get_mut(&a.chain) {
            Some(chain) => chain,
            None => self.chains.entry(a.chain.clone()).or_default(),
        };

        chain.requests += 1;
        chain.latency.record(a.latency);
        chain.slowest.offer_lazy(a.latency, id);
        if a.failed {
            chain.failed += 1;
            chain.failed_request.offer_lazy(a.start, id);
        }
        for v in &a.visits {
            let s = self.services.entry(v.service).or_default();
            s.visits += 1;
            s.failed += u64::from(v.failed);
            s.origin_failures += u64::from(v.origin);
            s.exact += u64::from(v.exact);
            if let Some(p) = v.processing {
                s.processing.record(p);
            }
            if let Some(t) = v.self_time {
                s.self_time.record(t);
            }
            s.critical.record(v.critical);

            let from = v
                .parent
                .and_then(|p| a.visits.get(p))
                .map_or(CLIENT, |p| p.service);
            let h = self.hops.entry((from, v.service)).or_default();
            h.calls += 1;
            h.failed += u64::from(v.hop_failed);
            h.exact += u64::from(v.hop_exact);
            if !v.hop_exact {
                self.estimated_hops += 1;
            }
            if let Some(p) = v.processing {
                h.processing.record(p);
            }
            if let Some(c) = v.call {
                h.call.record(c);
            }
            if let Some(x) = v.request_leg {
                h.request_leg.record(x);
            }
            if let Some(x) = v.response_leg {
                h.response_leg.record(x);
            }
            if let Some(x) = v.propagation {
                h.propagation.record(x);
            }
            if v.link != Link::Root {
                h.critical.record(v.critical_propagation);
            }
            if let Some(p) = v.processing {
                h.slowest.offer_lazy(p, id);
            }
            if let Some(c) = v.call {
                h.slowest_call.offer_lazy(c, id);
            }
            if v.hop_failed {
                h.failed_request.offer_lazy(a.start, id);
            }
            if v.adjusted {
                self.adjusted_hops += 1;
            }
            if v.request_leg.is_some_and(|x| x < 0) || v.response_leg.is_some_and(|x| x < 0) {
                self.negative_legs += 1;
            }
        }
        for u in &a.unclaimed {
            let from = a.visits.get(u.caller).map_or(CLIENT, |p| p.service);
            let h = self.hops.entry((from, u.target)).or_default();
            h.calls += 1;
            h.failed += u64::from(u.failed);
            h.exact += u64::from(u.exact);
            if !u.exact {
                self.estimated_hops += 1;
            }
            if let Some(c) = u.call {
                h.call.record(c);
                h.slowest_call.offer_lazy(c, id);
            }
            h.critical.record(u.critical);
            if u.failed {
                h.failed_request.offer_lazy(a.start, id);
            }
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: Stats) {
        let r = &mut self.requests;
        let o = &other.requests;
        r.total += o.total;
        r.complete += o.complete;
        r.incomplete += o.incomplete;
        r.failed += o.failed;
        r.root_failed += o.root_failed;
        r.split += o.split;
        for (a, b) in r.reasons.iter_mut().zip(o.reasons) {
            *a += b;
        }
        r.latency.merge(&o.latency);
        r.over_an_hour += o.over_an_hour;
        r.single_service += o.single_service;
        for (k, v) in &other.services {
            self.services.entry(*k).or_default().merge(v);
        }
        for (k, v) in &other.hops {
            self.hops.entry(*k).or_default().merge(v);
        }
        for (k, v) in other.chains {
            match self.chains.get_mut(&k) {
                Some(c) => c.merge(&v),
                None => {
                    self.chains.insert(k, v);
                }
            }
        }
        self.adjusted_hops += other.adjusted_hops;
        self.negative_legs += other.negative_legs;
        self.estimated_hops += other.estimated_hops;
    }
}
