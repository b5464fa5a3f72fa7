//! Report stage: one serialisable [`Report`] (schema `hopscope.report/v1`,
//! SPEC §4) built from the statistics; the renderers (table, JSON, CSV) only
//! format it.

pub mod csv;
pub mod files;
pub mod show;
pub mod table;
pub mod trace;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::assemble::{Incomplete, SkewPair, Universe};
use crate::measure::histogram::{Block, Histogram, ns_to_ms};
use crate::measure::{CLIENT, Stats};
use crate::parse::ParseStats;
use crate::parse::time::format_rfc3339_ns;

/// The JSON schema name.
pub const SCHEMA: &str = "hopscope.report/v1";

/// The name written for the root's caller.
pub const CLIENT_NAME: &str = "(client)";

/// The whole report, in JSON order.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub version: &'static str,
    pub options: serde_json::Value,
    pub input: InputSummary,
    pub requests: RequestSummary,
    pub services: Vec<ServiceRow>,
    pub hops: Vec<HopRow>,
    pub chains: Vec<ChainRow>,
    pub skew: SkewSummary,
    pub warnings: Vec<Warning>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunStats>,
}

/// What was read.
#[derive(Clone, Debug, Serialize)]
pub struct InputSummary {
    pub files: u64,
    pub binary_files: u64,
    pub bytes: u64,
    pub lines: u64,
    pub blank: u64,
    pub records: u64,
    pub skipped: BTreeMap<&'static str, u64>,
    pub first_ts: Option<String>,
    pub last_ts: Option<String>,
}

/// Request counters.
#[derive(Clone, Debug, Serialize)]
pub struct RequestSummary {
    pub total: u64,
    pub complete: u64,
    pub incomplete: u64,
    pub failed: u64,
    pub root_failed: u64,
    pub failure_rate: Option<f64>,
    pub split: u64,
    pub incomplete_reasons: BTreeMap<&'static str, u64>,
    pub latency_ms: Option<Block>,
}

/// One service.
#[derive(Clone, Debug, Serialize)]
pub struct ServiceRow {
    pub service: String,
    #[serde(rename = "virtual")]
    pub virtual_: bool,
    pub visits: u64,
    pub failed: u64,
    pub failure_rate: Option<f64>,
    pub origin_failures: u64,
    pub exact_fraction: Option<f64>,
    pub processing_ms: Option<Block>,
    pub self_ms: Option<Block>,
    pub critical_ms: Option<Block>,
}

/// One hop.
#[derive(Clone, Debug, Serialize)]
pub struct HopRow {
    pub from: String,
    pub to: String,
    #[serde(rename = "virtual")]
    pub virtual_: bool,
    pub calls: u64,
    pub failed: u64,
    pub failure_rate: Option<f64>,
    pub exact_fraction: Option<f64>,
    pub call_ms: Option<Block>,
    pub processing_ms: Option<Block>,
    pub propagation_ms: Option<Block>,
    pub request_leg_ms: Option<Block>,
    pub response_leg_ms: Option<Block>,
    pub critical_ms: Option<Block>,
    pub slowest_request: Option<String>,
    pub failed_request: Option<String>,
}

/// One chain shape.
#[derive(Clone, Debug, Serialize)]
pub struct ChainRow {
    pub chain: String,
    pub requests: u64,
    pub failed: u64,
    pub failure_rate: Option<f64>,
    pub latency_ms: Option<Block>,
    pub slowest_request: Option<String>,
    pub failed_request: Option<String>,
}

/// Clock-skew findings.
#[derive(Clone, Debug, Serialize)]
pub struct SkewSummary {
    pub adjusted_hops: u64,
    pub negative_legs: u64,
    pub pairs: Vec<SkewRow>,
}

/// One measured service pair.
#[derive(Clone, Debug, Serialize)]
pub struct SkewRow {
    pub from: String,
    pub to: String,
    pub hops: u64,
    pub offset_ms: f64,
    pub applied: bool,
}

/// Something a user should look at.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Warning {
    pub code: &'static str,
    pub message: String,
}

/// Run statistics, only with `--run-stats`.
#[derive(Clone, Debug, Serialize)]
pub struct RunStats {
    pub elapsed_ms: f64,
    pub threads: usize,
    pub mb_per_s: f64,
}

/// Everything about the input the report needs besides the statistics.
#[derive(Clone, Debug, Default)]
pub struct InputFacts {
    pub files: u64,
    pub binary_files: u64,
    pub bytes: u64,
    pub parse: ParseStats,
    /// Files with lines but no usable record.
    pub files_without_records: Vec<String>,
    /// Of those, files that look like span exports (Zipkin, Jaeger, OTLP).
    pub span_exports: Vec<String>,
}

fn rate(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

fn block(h: &Histogram) -> Option<Block> {
    h.block()
}

/// Builds the report.
pub fn build(
    stats: &Stats,
    universe: &Universe,
    input: &InputFacts,
    skew_pairs: &[SkewPair],
    options: serde_json::Value,
) -> Report {
    let name = |id| {
        if id == CLIENT {
            CLIENT_NAME.to_string()
        } else {
            universe.name(id).to_string()
        }
    };
    let mut services: Vec<ServiceRow> = stats
        .services
        .iter()
        .map(|(&id, s)| ServiceRow {
            service: name(id),
            virtual_: universe.is_virtual(id),
            visits: s.visits,
            failed: s.failed,
            failure_rate: rate(s.failed, s.visits),
            origin_failures: s.origin_failures,
            exact_fraction: rate(s.exact, s.visits),
            processing_ms: block(&s.processing),
            self_ms: block(&s.self_time),
            critical_ms: block(&s.critical),
        })
        .collect();
    services.sort_by(|a, b| a.service.as_bytes().cmp(b.service.as_bytes()));
    let mut hops: Vec<HopRow> = stats
        .hops
        .iter()
        .map(|(&(from, to), h)| HopRow {
            from: name(from),
            to: name(to),
            virtual_: universe.is_virtual(to),
            calls: h.calls,
            failed: h.failed,
            failure_rate: rate(h.failed, h.calls),
            exact_fraction: rate(h.exact, h.calls),
            call_ms: block(&h.call),
            processing_ms: block(&h.processing),
            propagation_ms: block(&h.propagation),
            request_leg_ms: block(&h.request_leg),
            response_leg_ms: block(&h.response_leg),
            critical_ms: block(&h.critical),
            slowest_request: h.slowest.id().map(str::to_string),
            failed_request: h.failed_request.id().map(str::to_string),
        })
        .collect();
    hops.sort_by(|a, b| {
        (a.from.as_bytes(), a.to.as_bytes()).cmp(&(b.from.as_bytes(), b.to.as_bytes()))
    });
    let mut chains: Vec<ChainRow> = stats
        .chains
        .iter()
        .map(|(chain, c)| ChainRow {
            chain: chain.clone(),
            requests: c.requests,
            failed: c.failed,
            failure_rate: rate(c.failed, c.requests),
            latency_ms: block(&c.latency),
            slowest_request: c.slowest.id().map(str::to_string),
            failed_request: c.failed_request.id().map(str::to_string),
        })
        .collect();
    chains.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| a.chain.as_bytes().cmp(b.chain.as_bytes()))
    });
    let mut pairs: Vec<SkewRow> = skew_pairs
        .iter()
        .map(|p| SkewRow {
            from: name(p.from),
            to: name(p.to),
            hops: p.hops,
            offset_ms: ns_to_ms(p.offset),
            applied: p.applied,
        })
        .collect();
    pairs.sort_by(|a, b| {
        (a.from.as_bytes(), a.to.as_bytes()).cmp(&(b.from.as_bytes(), b.to.as_bytes()))
    });
    let r = &stats.requests;
    let requests = RequestSummary {
        total: r.total,
        complete: r.complete,
        incomplete: r.incomplete,
        failed: r.failed,
        root_failed: r.root_failed,
        failure_rate: rate(r.failed, r.total),
        split: r.split,
        incomplete_reasons: Incomplete::ALL
            .iter()
            .zip(r.reasons)
            .map(|(k, n)| (k.name(), n))
            .collect(),
        latency_ms: block(&r.latency),
    };
    let p = &input.parse;
    let input_summary = InputSummary {
        files: input.files,
        binary_files: input.binary_files,
        bytes: input.bytes,
        lines: p.lines,
        blank: p.blank,
        records: p.records,
        skipped: p.skipped_map(),
        first_ts: p.first_ts.map(format_rfc3339_ns),
        last_ts: p.last_ts.map(format_rfc3339_ns),
    };
    let warnings = warnings(stats, input, &services, &hops);
    Report {
        schema: SCHEMA,
        version: env!("CARGO_PKG_VERSION"),
        options,
        input: input_summary,
        requests,
        services,
        hops,
        chains,
        skew: SkewSummary {
            adjusted_hops: stats.adjusted_hops,
            negative_legs: stats.negative_legs,
            pairs,
        },
        warnings,
        run: None,
    }
}

/// True for names like `2024-05-01`, `20240501` or `app-2024.05.01`.
fn looks_like_date(name: &str) -> bool {
    let digits: String = name.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.len() < 8 {
        return false;
    }
    let b = name.as_bytes();
    (0..b.len()).any(|i| {
        let w = |n: usize| b.get(i..i + n);
        let is_year = |s: &[u8]| s.len() == 4 && (s.starts_with(b"19") || s.starts_with(b"20"));
        match (w(4), b.get(i + 4)) {
            (Some(y), Some(sep)) if is_year(y) && matches!(sep, b'-' | b'.' | b'_') => true,
            (Some(y), _) if is_year(y) => b
                .get(i..i + 8)
                .is_some_and(|s| s.iter().all(u8::is_ascii_digit)),
            _ => false,
        }
    })
}

fn warnings(
    stats: &Stats,
    input: &InputFacts,
    services: &[ServiceRow],
    hops: &[HopRow],
) -> Vec<Warning> {
    let mut out = Vec::new();
    let r = &stats.requests;
    let logged: Vec<&ServiceRow> = services.iter().filter(|s| !s.virtual_).collect();
    let counted = r.latency.count();
    if logged.len() >= 2 && counted >= 10 && r.single_service * 2 > counted {
        out.push(Warning {
            code: "single_service_requests",
            message: format!(
                "{} of {} requests touch only one service: is the request ID field right? (--id-field)",
                r.single_service, counted
            ),
        });
    }
    let calls: u64 = hops.iter().map(|h| h.calls).sum();
    if calls >= 10 && stats.estimated_hops * 2 > calls {
        out.push(Warning {
            code: "estimated_hops",
            message: format!(
                "{} of {} calls are estimated (no client_send/client_recv or span IDs): their legs are bounds, not measurements",
                stats.estimated_hops, calls
            ),
        });
    }
    if stats.negative_legs > 0 {
        out.push(Warning {
            code: "negative_legs",
            message: format!(
                "{} calls have a negative leg after skew correction: clocks drift or the callee was matched to the wrong call",
                stats.negative_legs
            ),
        });
    }
    if r.over_an_hour > 0 {
        out.push(Warning {
            code: "long_requests",
            message: format!(
                "{} requests span over an hour: request IDs may be reused (try --max-gap)",
                r.over_an_hour
            ),
        });
    }
    let dated: Vec<&str> = services
        .iter()
        .map(|s| s.service.as_str())
        .filter(|s| looks_like_date(s))
        .collect();

    if !dated.is_empty() {
        out.push(Warning {
            code: "service_names_look_like_dates",
            message: format!(
                "service names look like dates ({}): use --service-from or a service field",
                dated.iter().take(3).copied().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    let hour_ms = 3_600_000.0;
    let slow: Vec<&str> = services
        .iter()
        .filter(|s| s.processing_ms.as_ref().is_some_and(|b| b.p50 > hour_ms))
        .map(|s| s.service.as_str())
        .collect();
    if !slow.is_empty() {
        out.push(Warning {
            code: "duration_unit",
            message: format!(
                "typical processing over an hour in {}: durations may be in another unit (--duration-unit)",
                slow.join(", ")
            ),
        });
    }
    if !input.files_without_records.is_empty() {
        let n = input.files_without_records.len();
        out.push(Warning {
            code: "no_records",
            message: format!(
                "{n} file(s) hold no usable record: {}",
                input
                    .files_without_records
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    if !input.span_exports.is_empty() {
        out.push(Warning {
            code: "span_export",
            message: format!(
                "{} file(s) look like span exports (Zipkin, Jaeger or OTLP JSON), which hopscope does \
                 not read yet; give it the services' logs instead: {}",
                input.span_exports.len(),
                input
                    .span_exports
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    out.sort();
    out
}

/// Writes the report as pretty JSON with a final newline.
pub fn write_json(report: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_like_names() {
        assert!(looks_like_date("2024-05-01"));
        assert!(looks_like_date("app-20240501"));
        assert!(!looks_like_date("orders"));
        assert!(!looks_like_date("pod-12345678x"));
    }
}
