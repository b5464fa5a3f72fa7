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
    /// Always [`SCHEMA`] (`hopscope.report/v1`): it changes only if a field is renamed
    /// or dropped, never when one is added.
    pub schema: &'static str,
    /// The hopscope version that wrote the report (`CARGO_PKG_VERSION`); informative,
    /// not part of the schema.
    pub version: &'static str,
    /// Every option that changes numbers (skew, thresholds, field overrides,
    /// `--since`/`--until`...), each key always present, `null` when unset; `check`
    /// warns when a baseline's differ from the current run's.
    pub options: serde_json::Value,
    /// What was read: files, bytes, lines, and unusable lines by reason.
    pub input: InputSummary,
    /// Request counters (incomplete requests included) and request latency.
    pub requests: RequestSummary,
    /// One row per service, virtual ones included, sorted by name (byte order).
    /// Only visits of complete requests count unless `--include-incomplete`.
    pub services: Vec<ServiceRow>,
    /// One row per caller → callee pair (the root's from [`CLIENT_NAME`]), sorted by
    /// `from` then `to` (byte order).
    pub hops: Vec<HopRow>,
    /// One row per chain shape, sorted by `requests` descending, then `chain`.
    pub chains: Vec<ChainRow>,
    /// Measured clock offsets between services and the calls they corrected.
    pub skew: SkewSummary,
    /// What a user should look at, sorted by code; empty when nothing stood out.
    pub warnings: Vec<Warning>,
    /// Elapsed time and throughput: `None` (and no key in the JSON) unless
    /// `--run-stats`, because it differs from run to run and the rest is byte-stable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunStats>,
}

/// What was read.
#[derive(Clone, Debug, Serialize)]
pub struct InputSummary {
    /// Files opened, binary ones included; unreadable files are not counted (they
    /// are named on stderr and give exit 3).
    pub files: u64,
    /// Files skipped because their first 8 KiB hold a NUL byte.
    pub binary_files: u64,
    /// Bytes read from disk: the compressed size for `.gz`/`.zst` files.
    pub bytes: u64,
    /// Every line seen; always `records + blank + sum(skipped)`.
    pub lines: u64,
    /// Empty or whitespace-only lines, counted apart from skipped lines.
    pub blank: u64,
    /// Lines that became a usable record (a request ID and a timestamp at least).
    pub records: u64,
    /// Unusable lines per reason (`parse_error`, `invalid_utf8`, `no_request_id`,
    /// `no_timestamp`, `bad_timestamp`, `too_long`, `unknown_format`); every reason
    /// is present, 0 when none.
    pub skipped: BTreeMap<&'static str, u64>,
    /// Earliest record timestamp, UTC RFC 3339 with 9 fraction digits and `Z`;
    /// `None` when no line was usable. Covers every record read, before
    /// `--since`/`--until` select requests.
    pub first_ts: Option<String>,
    /// Latest record timestamp, same form as `first_ts`; `None` when no line was
    /// usable.
    pub last_ts: Option<String>,
}

/// Request counters.
#[derive(Clone, Debug, Serialize)]
pub struct RequestSummary {
    /// Requests seen (pieces after `--max-gap` splits, within `--since`/`--until`),
    /// complete or not: `complete + incomplete`.
    pub total: u64,
    /// Requests with no incomplete reason (SPEC §2).
    pub complete: u64,
    /// Requests counted under one incomplete reason each; equals the sum of
    /// `incomplete_reasons`.
    pub incomplete: u64,
    /// Requests with at least one failed visit (virtual ones included), incomplete
    /// requests included.
    pub failed: u64,
    /// Requests whose root visit failed: the failures the client saw.
    pub root_failed: u64,
    /// `failed / total` as a fraction; `None` when `total` is 0.
    pub failure_rate: Option<f64>,
    /// Extra requests made by `--max-gap` splitting a request ID at silences; 0
    /// without `--max-gap`.
    pub split: u64,
    /// Incomplete requests per reason (`no_root`, `multiple_roots`,
    /// `unpaired_call`, `open_visit`, `too_large`); every reason present, 0 when
    /// none.
    pub incomplete_reasons: BTreeMap<&'static str, u64>,
    /// Root end − root start in ms, over complete requests (all with
    /// `--include-incomplete`); `None` when there are none.
    pub latency_ms: Option<Block>,
}

/// One service.
#[derive(Clone, Debug, Serialize)]
pub struct ServiceRow {
    /// The service name as logged or derived from the path; for a virtual service,
    /// the normalised peer name.
    pub service: String,
    /// True for a service that never logs and is known only from calls to it (a
    /// database, a cache): its `processing_ms` and `self_ms` are `None`.
    #[serde(rename = "virtual")]
    pub virtual_: bool,
    /// Visits counted; a virtual service has one per call.
    pub visits: u64,
    /// Visits that failed by their own records (a virtual service: its calls'
    /// failures).
    pub failed: u64,
    /// `failed / visits` as a fraction; `None` when `visits` is 0.
    pub failure_rate: Option<f64>,
    /// Failed visits none of whose child visits failed: where failures started.
    pub origin_failures: u64,
    /// Share of visits timed exactly (events or a duration on both ends); the rest
    /// are lower bounds. `None` when `visits` is 0.
    pub exact_fraction: Option<f64>,
    /// Visit end − start in ms (how long the service worked); `None` for a virtual
    /// service.
    pub processing_ms: Option<Block>,
    /// Processing minus the time spent in outgoing calls and children, in ms;
    /// `None` for a virtual service.
    pub self_ms: Option<Block>,
    /// Time of this service's own work on the critical path, in ms, one value per
    /// visit (0 when off the path); a virtual service gets its calls' on-path time.
    pub critical_ms: Option<Block>,
}

/// One hop.
#[derive(Clone, Debug, Serialize)]
pub struct HopRow {
    /// The caller service; [`CLIENT_NAME`] for the root's hop.
    pub from: String,
    /// The callee service (virtual when it never logs).
    pub to: String,
    /// True when the callee is a virtual service: only calls, failures and
    /// `call_ms` are measured.
    #[serde(rename = "virtual")]
    pub virtual_: bool,
    /// Calls on this hop, including calls that no callee visit claimed.
    pub calls: u64,
    /// Calls that failed: the callee visit failed or the `client_recv` did.
    pub failed: u64,
    /// `failed / calls` as a fraction; `None` when `calls` is 0.
    pub failure_rate: Option<f64>,
    /// Share of calls that are exact (exact callee, both legs from
    /// `client_send`/`client_recv`); `None` when `calls` is 0.
    pub exact_fraction: Option<f64>,
    /// `client_recv − client_send` in ms as the caller saw it; `None` when no call
    /// had both (always for the `(client)` hop).
    pub call_ms: Option<Block>,
    /// The callee visit's processing time in ms; `None` for a virtual hop or one with
    /// only unclaimed calls.
    pub processing_ms: Option<Block>,
    /// Request leg + response leg in ms (only the request leg for a hand-off);
    /// skew-invariant. `None` for the `(client)` hop and virtual hops.
    pub propagation_ms: Option<Block>,
    /// Callee start − `client_send` in ms, skew-corrected and signed (negative means
    /// clock trouble); `None` for the `(client)` hop and virtual hops.
    pub request_leg_ms: Option<Block>,
    /// `client_recv` − callee end in ms, skew-corrected and signed; `None` when no
    /// call had a response leg (hand-offs, `(client)`, virtual hops).
    pub response_leg_ms: Option<Block>,
    /// This hop's propagation on the critical path in ms, one value per call (0 when
    /// off the path); `None` for the `(client)` hop.
    pub critical_ms: Option<Block>,
    /// The request with the largest processing (else call) time on this hop, ties
    /// to the smaller ID, for `hopscope show`; `None` when no call had either.
    pub slowest_request: Option<String>,
    /// The earliest-starting request with a failed call on this hop, ties to the
    /// smaller ID; `None` when no call failed.
    pub failed_request: Option<String>,
}

/// One chain shape.
#[derive(Clone, Debug, Serialize)]
pub struct ChainRow {
    /// The call-tree shape (SPEC §2 grammar), e.g. `gateway>orders>{inventory,payments}`.
    pub chain: String,
    /// Requests with this shape (never 0).
    pub requests: u64,
    /// Of those, requests with a failed visit.
    pub failed: u64,
    /// `failed / requests` as a fraction; `None` when `requests` is 0.
    pub failure_rate: Option<f64>,
    /// Request latency (root end − root start) in ms over these requests.
    pub latency_ms: Option<Block>,
    /// The request with the largest latency, ties to the smaller ID.
    pub slowest_request: Option<String>,
    /// The earliest-starting failed request, ties to the smaller ID; `None` when
    /// none failed.
    pub failed_request: Option<String>,
}

/// Clock-skew findings.
#[derive(Clone, Debug, Serialize)]
pub struct SkewSummary {
    /// Calls whose legs were corrected by an applied offset or whose callee was
    /// moved into its parent.
    pub adjusted_hops: u64,
    /// Calls with a negative leg after correction; above 0 it raises the
    /// `negative_legs` warning.
    pub negative_legs: u64,
    /// Every measured (caller, callee) pair, applied or not, sorted by `from` then
    /// `to` (byte order); still measured and listed with `--skew off`.
    pub pairs: Vec<SkewRow>,
}

/// One measured service pair.
#[derive(Clone, Debug, Serialize)]
pub struct SkewRow {
    /// The caller service of the pair.
    pub from: String,
    /// The callee service of the pair.
    pub to: String,
    /// Calls the offset was measured on: complete requests' calls with
    /// `client_send`, `client_recv` and an exact callee.
    pub hops: u64,
    /// θ = callee clock − caller clock in ms: the median of
    /// `((V.start − cs) − (cr − V.end)) / 2` over `hops`.
    pub offset_ms: f64,
    /// True when `|offset_ms|` ≥ `--skew-threshold` (default 1 ms) and skew
    /// correction is on, so the offset was applied to this pair's legs and the
    /// callee's subtree; always false with `--skew off`.
    pub applied: bool,
}

/// Something a user should look at.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Warning {
    /// A stable snake_case code to match on (`single_service_requests`,
    /// `estimated_hops`, `negative_legs`, `long_requests`,
    /// `service_names_look_like_dates`, `duration_unit`, `no_records`,
    /// `span_export`).
    pub code: &'static str,
    /// One line for people, with a hint; its wording may change, the code does not.
    pub message: String,
}

/// Run statistics, only with `--run-stats`.
#[derive(Clone, Debug, Serialize)]
pub struct RunStats {
    /// Wall-clock time of the whole run in ms, rounded to the µs.
    pub elapsed_ms: f64,
    /// Worker threads used (`--threads`, else one per core).
    pub threads: usize,
    /// Input bytes read per second, in MB (10^6 bytes), to one decimal; 0 when no
    /// time elapsed.
    pub mb_per_s: f64,
}

/// Everything about the input the report needs besides the statistics.
#[derive(Clone, Debug, Default)]
pub struct InputFacts {
    /// Files opened, binary ones included (see [`InputSummary::files`]).
    pub files: u64,
    /// Files skipped as binary (a NUL byte in the first 8 KiB).
    pub binary_files: u64,
    /// Bytes read from disk (compressed size for compressed files).
    pub bytes: u64,
    /// Line and record counters of every file, merged.
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
            slowest_request: h.slowest_request().map(str::to_string),
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
