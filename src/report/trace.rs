//! Trace JSON (`hopscope traces`, schema `hopscope.trace/v1`, SPEC §5): one
//! object per request, one per line, built from an assembled request.

use serde::Serialize;

use crate::assemble::{Assembled, Universe};
use crate::measure::histogram::ns_to_ms;
use crate::parse::time::format_rfc3339_ns;

/// One request as written by `traces`.
#[derive(Clone, Debug, Serialize)]
pub struct Trace {
    pub request_id: String,
    pub start: String,
    pub latency_ms: f64,
    pub failed: bool,
    pub root_failed: bool,
    pub complete: bool,
    pub reasons: Vec<&'static str>,
    pub chain: String,
    pub origins: Vec<String>,
    pub visits: Vec<TraceVisit>,
}

/// One visit of a trace.
#[derive(Clone, Debug, Serialize)]
pub struct TraceVisit {
    pub id: usize,
    pub parent: Option<usize>,
    pub service: String,
    pub span: Option<String>,
    pub start_offset_ms: f64,
    pub call_ms: Option<f64>,
    pub processing_ms: Option<f64>,
    pub self_ms: Option<f64>,
    pub propagation_ms: Option<f64>,
    pub request_leg_ms: Option<f64>,
    pub response_leg_ms: Option<f64>,
    pub critical_ms: f64,
    pub critical_propagation_ms: f64,
    pub failed: bool,
    pub origin: bool,
    pub exact: bool,
    #[serde(rename = "virtual")]
    pub virtual_: bool,
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
