//! Assemble stage: the records of one request → visits, calls, parent links,
//! clock-skew offsets and every per-visit figure of SPEC §2 (legs, self
//! time, critical path, chain). The result, an [`Assembled`] request, is all
//! that the measure stage and the trace output need.
//!
//! A request is assembled twice: once on raw times to measure clock skew
//! ([`skew`]), then again with the offsets known.

pub mod skew;
mod tree;

use crate::model::{IdKey, Interner, Record, SpanPair, SymId};

pub use skew::{Offsets, SkewPair};

/// Why a request is incomplete (SPEC §2), in the order they are tested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Incomplete {
    /// The root's start is estimated although it logged events, or it
    /// received an answer it never asked for.
    NoRoot,
    /// More than one visit without a parent.
    MultipleRoots,
    /// A call to a logged service that no visit claims and lacks its cr.
    UnpairedCall,
    /// A server_recv with no later record of its service.
    OpenVisit,
    /// More than `--max-visits` visits.
    TooLarge,
}

impl Incomplete {
    /// Every reason, in output order.
    pub const ALL: [Incomplete; 5] = [
        Incomplete::NoRoot,
        Incomplete::MultipleRoots,
        Incomplete::UnpairedCall,
        Incomplete::OpenVisit,
        Incomplete::TooLarge,
    ];

    /// The key used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Incomplete::NoRoot => "no_root",
            Incomplete::MultipleRoots => "multiple_roots",
            Incomplete::UnpairedCall => "unpaired_call",
            Incomplete::OpenVisit => "open_visit",
            Incomplete::TooLarge => "too_large",
        }
    }
}

/// How peers and services resolve, fixed for the whole run.
#[derive(Clone, Debug)]
pub struct Universe {
    /// Service names by id (logged services first, then virtual ones).
    pub services: Vec<String>,
    /// Per service id: true for a virtual service (a peer that never logs).
    pub virtual_: Vec<bool>,
    /// Per raw peer id: the service it names.
    pub peer_target: Vec<SymId>,
    /// Texts of IDs without a compact form.
    pub ids: Interner,
    /// The span table records point into.
    pub spans: Vec<SpanPair>,
}

impl Universe {
    /// The name of a service id.
    pub fn name(&self, id: SymId) -> &str {
        self.services.get(id as usize).map_or("", String::as_str)
    }

    /// The text of an ID key.
    pub fn id_text(&self, key: IdKey) -> String {
        key.text(&self.ids)
    }

    /// The span pair of a record.
    pub fn spans_of(&self, r: &Record) -> SpanPair {
        self.spans
            .get(r.spans as usize)
            .copied()
            .unwrap_or_default()
    }

    /// True when `id` is a virtual service.
    pub fn is_virtual(&self, id: SymId) -> bool {
        self.virtual_.get(id as usize).copied().unwrap_or(false)
    }
}

/// Settings of assembly.
#[derive(Clone, Debug)]
pub struct AssembleOptions {
    /// Clock-skew correction on.
    pub skew: bool,
    /// `--max-visits`.
    pub max_visits: usize,
    /// The first pass: only completeness, the root's start and skew
    /// samples are computed (the figures come in the second pass).
    pub skew_pass: bool,
    /// Visits put in corrected-start order, for traces and `show`. The
    /// statistics do not depend on the order, so the report leaves the
    /// visits as built and saves the sort.
    pub visit_order: bool,
}

/// How a visit got its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// No parent: a root.
    Root,
    /// Its parent span is carried by the parent.
    Span,
    /// It claimed this call (index into the request's calls).
    Call(usize),
    /// Rule 2: the parent's interval contains its start.
    Contains,
    /// Rule 3: the parent ended last before it started (a hand-off).
    Handoff,
    /// A virtual service's visit: one per call.
    Virtual(usize),
}

/// One visit with every figure SPEC §2 defines for it and its hop. Times are
/// corrected (in the root's clock); durations are ns.
#[derive(Clone, Debug, PartialEq)]
pub struct VisitFigures {
    /// The service.
    pub service: SymId,
    /// A virtual service's visit (one per call).
    pub virtual_: bool,
    /// Index of the parent visit.
    pub parent: Option<usize>,
    /// How the parent was found.
    pub link: Link,
    /// The visit's span ID, if any.
    pub span: Option<IdKey>,
    /// Corrected start.
    pub start: i64,
    /// Corrected end.
    pub end: i64,
    /// End − start; None for virtual visits.
    pub processing: Option<i64>,
    /// Processing minus the union of outgoing calls and call-less children.
    pub self_time: Option<i64>,
    /// cr − cs of the claimed call.
    pub call: Option<i64>,
    /// Request leg.
    pub request_leg: Option<i64>,
    /// Response leg.
    pub response_leg: Option<i64>,
    /// Request leg + response leg (or the request leg of a hand-off).
    pub propagation: Option<i64>,
    /// Time of the critical path charged to this visit's own work.
    pub critical: i64,
    /// Time of the critical path charged to this visit's hop (its legs).
    pub critical_propagation: i64,
    /// One of its own records failed (for a virtual visit: its call failed).
    pub failed: bool,
    /// The hop into this visit failed (the visit or the call's cr).
    pub hop_failed: bool,
    /// A failed visit none of whose children failed.
    pub origin: bool,
    /// Timed by events or durations on both ends.
    pub exact: bool,
    /// Its hop is exact (exact visit, both legs from cs and cr).
    pub hop_exact: bool,
    /// Offset of this visit's clock from the root's (ns), skew and moves.
    pub skew: i64,
    /// Legs corrected by a skew offset or the visit moved (Jaeger).
    pub adjusted: bool,
    /// First record (file, offset), for tie-breaks.
    pub first_record: (u32, u64),
}

/// A call that no visit claimed: it counts on its hop only.
#[derive(Clone, Debug, PartialEq)]
pub struct UnclaimedCall {
    /// The calling visit.
    pub caller: usize,
    /// The service called.
    pub target: SymId,
    /// cr − cs when both exist.
    pub call: Option<i64>,
    /// One of its client events failed.
    pub failed: bool,
    /// It has both cs and cr.
    pub exact: bool,
    /// Time of the critical path charged to it.
    pub critical: i64,
}

/// One request, assembled. The default is an empty request, to assemble
/// into ([`assemble_unnamed_into`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Assembled {
    /// The request ID.
    pub id: String,
    /// The root's start (ns), raw.
    pub start: i64,
    /// Root end − root start.
    pub latency: i64,
    /// Some visit failed, virtual ones included.
    pub failed: bool,
    /// The root visit failed.
    pub root_failed: bool,
    /// None when complete.
    pub incomplete: Option<Incomplete>,
    /// The chain string (SPEC §2 Chains).
    pub chain: String,
    /// Visits in corrected-start order (ties by first record; the root first
    /// among equals) with [`AssembleOptions::visit_order`], else as built;
    /// `parent` and the unclaimed calls' `caller` index this list either way.
    pub visits: Vec<VisitFigures>,
    /// Calls no visit claimed.
    pub unclaimed: Vec<UnclaimedCall>,
    /// Skew samples `(caller, callee, 2θ)` of exact cs/cr hops.
    pub skew_samples: Vec<(SymId, SymId, i64)>,
}

/// Assembles one request from its records, sorted by (ts, file, offset).
pub fn assemble(
    records: &[Record],
    universe: &Universe,
    offsets: Option<&Offsets>,
    opts: &AssembleOptions,
) -> Assembled {
    // The first pass never shows the ID; formatting it costs per request.
    let id = match records.first() {
        Some(r) if !opts.skew_pass => universe.id_text(r.req()),
        _ => String::new(),
    };
    let mut out = Assembled::default();
    tree::build_into(&id, records, universe, offsets, opts, &mut out);
    out
}

/// [`assemble`] into `out` without the ID's text (`id` stays empty),
/// reusing `out`'s vectors and strings: a loop over many requests keeps one
/// [`Assembled`] instead of allocating a new one per request. The
/// statistics need the text only for the few requests that win a "slowest"
/// or "earliest" slot ([`crate::measure::LazyId`]), and formatting it for
/// every request cost ~3 % of a run.
pub fn assemble_unnamed_into(
    records: &[Record],
    universe: &Universe,
    offsets: Option<&Offsets>,
    opts: &AssembleOptions,
    out: &mut Assembled,
) {
    tree::build_into("", records, universe, offsets, opts, out);
}

/// Splits the records of one request ID at silences longer than `max_gap`;
/// returns the piece boundaries as ranges.
pub fn split_at_gaps(records: &[Record], max_gap: Option<i64>) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    if let Some(gap) = max_gap {
        for i in 1..records.len() {
            let (Some(a), Some(b)) = (records.get(i - 1), records.get(i)) else {
                continue;
            };
            if b.ts.saturating_sub(a.ts) > gap {
                out.push(start..i);
                start = i;
            }
        }
    }
    if start < records.len() {
        out.push(start..records.len());
    }
    out
}

#[cfg(test)]
mod tests;
