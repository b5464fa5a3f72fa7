//! Trace JSON (`hopscope traces`, schema `hopscope.trace/v1`, SPEC §5): one
//! object per request, one per line, built from an assembled request.

use serde::Serialize;

use crate::assemble::{Assembled, Universe};
use crate::measure::histogram::ns_to_ms;
use crate::parse::time::format_rfc3339_ns;

/// One request as written by `traces`.
#[derive(Clone, Debug, Serialize)]
pub struct Trace {
    /// The request ID as logged (trimmed); with `--max-gap` several traces may share
    /// it.
    pub request_id: String,
    /// The root's start on its own clock, UTC RFC 3339 with 9 fraction digits and
    /// `Z`.
    pub start: String,
    /// Root end − root start in ms (hand-off work that outlives the root does not
    /// extend it).
    pub latency_ms: f64,
    /// True when any visit failed, virtual ones included.
    pub failed: bool,
    /// True when the root visit failed: the client saw the failure.
    pub root_failed: bool,
    /// False when the request counts as incomplete (see `reasons`).
    pub complete: bool,
    /// Why the request is incomplete: exactly one of `no_root`, `multiple_roots`,
    /// `unpaired_call`, `open_visit`, `too_large`; empty when `complete`.
    pub reasons: Vec<&'static str>,
    /// The call-tree shape (SPEC §2 grammar), as in the report's `chains`.
    pub chain: String,
    /// Services of the visits where a failure started (failed, no failed child),
    /// sorted and deduplicated; empty when nothing failed.
    pub origins: Vec<String>,
    /// Every visit, in corrected-start order; a visit's `id` is its index here.
    pub visits: Vec<TraceVisit>,
}

/// One visit of a trace.
#[derive(Clone, Debug, Serialize)]
pub struct TraceVisit {
    /// 0-based index of this visit in the trace's `visits`.
    pub id: usize,
    /// The `id` of the parent visit; `None` for the root.
    pub parent: Option<usize>,
    /// The service name (for a virtual visit, the normalised peer name).
    pub service: String,
    /// The visit's span ID as logged; `None` when its records carry none.
    pub span: Option<String>,
    /// Visit start − the first visit's start in ms, on skew-corrected times.
    pub start_offset_ms: f64,
    /// `client_recv − client_send` of the call that led here, in ms; `None` for
    /// the root and when the call lacks either event.
    pub call_ms: Option<f64>,
    /// Visit end − start in ms; `None` for a virtual visit.
    pub processing_ms: Option<f64>,
    /// Processing minus outgoing calls and children, in ms; `None` for a virtual
    /// visit.
    pub self_ms: Option<f64>,
    /// Request leg + response leg in ms (the request leg of a hand-off); `None` for
    /// the root and virtual visits.
    pub propagation_ms: Option<f64>,
    /// Visit start − `client_send` (else the caller's last record before it) in
    /// ms, skew-corrected, signed; `None` for the root and virtual visits.
    pub request_leg_ms: Option<f64>,
    /// `client_recv` (else the caller's next record) − visit end in ms,
    /// skew-corrected, signed; `None` for the root, hand-offs and virtual visits.
    pub response_leg_ms: Option<f64>,
    /// This visit's own work on the critical path in ms (a virtual visit: its call
    /// time on the path); 0 when off the path.
    pub critical_ms: f64,
    /// This visit's hop (its legs) on the critical path in ms; 0 for the root and
    /// when off the path.
    pub critical_propagation_ms: f64,
    /// True when one of its own records failed (a virtual visit: its call failed).
    pub failed: bool,
    /// True when it failed and none of its children did: where a failure started.
    pub origin: bool,
    /// True when timed by events or a duration on both ends; else start and end are
    /// estimated (a lower bound of the work).
    pub exact: bool,
    /// True for a service that never logs, known from a call to it.
    #[serde(rename = "virtual")]
    pub virtual_: bool,
    /// Offset of this visit's clock from the root's in ms, as subtracted from its
    /// times (applied skew and moves); 0.0 when none was applied.
    pub skew_ms: f64,
}

fn ms(v: Option<i64>) -> Option<f64> {
    v.map(ns_to_ms)
}

/// Builds the trace of one assembled request.
pub fn trace_of(a: &Assembled, u: &Universe) -> Trace {
    let root_start = a.visits.first().map_or(a.start, |v| v.start);
    let mut origins: Vec<String> = a
        .visits
        .iter()
        .filter(|v| v.origin)
        .map(|v| u.name(v.service).to_string())
        .collect();
    origins.sort();
    origins.dedup();
    Trace {
        request_id: a.id.clone(),
        start: format_rfc3339_ns(a.start),
        latency_ms: ns_to_ms(a.latency),
        failed: a.failed,
        root_failed: a.root_failed,
        complete: a.incomplete.is_none(),
        reasons: a.incomplete.iter().map(|r| r.name()).collect(),
        chain: a.chain.clone(),
        origins,
        visits: a
            .visits
            .iter()
            .enumerate()
            .map(|(i, v)| TraceVisit {
                id: i,
                parent: v.parent,
                service: u.name(v.service).to_string(),
                span: v.span.map(|k| u.id_text(k)),
                start_offset_ms: ns_to_ms(v.start - root_start),
                call_ms: ms(v.call),
                processing_ms: ms(v.processing),
                self_ms: ms(v.self_time),
                propagation_ms: ms(v.propagation),
                request_leg_ms: ms(v.request_leg),
                response_leg_ms: ms(v.response_leg),
                critical_ms: ns_to_ms(v.critical),
                critical_propagation_ms: ns_to_ms(v.critical_propagation),
                failed: v.failed,
                origin: v.origin,
                exact: v.exact,
                virtual_: v.virtual_,
                skew_ms: ns_to_ms(v.skew),
            })
            .collect(),
    }
}

/// A shell-style pattern over chain strings: `*` any run, `?` one character,
/// `\` makes the next character literal; everything else (braces, commas,
/// `>`) is literal, because chain strings use them.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with one backtrack point for the last `*`.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some('?') => {
                pi += 1;
                ti += 1;
                continue;
            }
            Some('\\') if p.get(pi + 1) == t.get(ti) && pi + 1 < p.len() => {
                pi += 2;
                ti += 1;
                continue;
            }
            Some(c) if *c != '\\' && Some(c) == t.get(ti) => {
                pi += 1;
                ti += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("gateway>*", "gateway>orders>payments"));
        assert!(glob_match("*payments*", "gateway>{orders,payments}"));
        assert!(glob_match(
            "gateway>{orders,payments}",
            "gateway>{orders,payments}"
        ));
        assert!(!glob_match("gateway>orders", "gateway>orders>payments"));
        assert!(glob_match("g?teway", "gateway"));
        assert!(glob_match("legacy\\\\ billing", "legacy\\ billing"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a*b", "acbd"));
        assert!(glob_match("a*b*", "acbd"));
    }
}
