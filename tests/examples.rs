//! Golden tests from the worked examples in `../shared/examples/`: one test
//! per case folder, running `hopscope report <case>/logs <args> -o json` and
//! asserting every figure the case's `expected.md` lists.
//!
//! Figures a case left out because of an open point (its `expected.md` points
//! at OPEN.md) are asserted too: OPEN.md says every point is now decided in
//! SPEC.md, so each such figure is derived from the SPEC text, with the
//! arithmetic and the sentence in a comment marked "SPEC-derived".
//!
//! Conventions (examples/README.md): times in comments are ms after
//! 2024-05-01T10:00:00.000Z; `{a, b}` lists a block's values in request
//! order; quantiles are nearest-rank (rank ⌈q·n⌉) and `assert_block` compares
//! them within the SPEC's tolerance, count, mean and max exactly. "Unless a
//! case says otherwise: no failures, every request complete, `requests.split`
//! 0, every `incomplete_reasons` and `skipped` key 0."
//!
//! The examples live outside this repository; when `../shared/examples` is
//! absent every test returns early and says so on stderr.

use std::fs;
use std::path::PathBuf;

use serde_json::Value;

use crate::util::*;

/// Every example folder, with the extra arguments its `args` file holds.
/// `every_example_has_a_test` checks this list against the folders.
const CASES: [(&str, &[&str]); 20] = [
    ("01-sync-call-exact", &[]),
    ("02-async-handoff", &[]),
    ("03-retry-same-peer", &[]),
    ("04-span-ids-inner-spans", &[]),
    ("05-skew-ahead", &[]),
    ("06-skew-behind", &[]),
    ("07-virtual-db-call", &[]),
    ("08-unclaimed-call-outage", &[]),
    (
        "09-peer-normalisation",
        &["--peer-alias", "billing=payments"],
    ),
    ("10-estimated-no-events", &[]),
    ("11-access-log-duration", &[]),
    ("12-failure-swallowed", &[]),
    ("13-placeholder-ids", &[]),
    ("14-field-precedence", &[]),
    ("15-incomplete-reasons", &[]),
    (
        "16-duration-units",
        &["--duration-field", "duration,durationUs"],
    ),
    ("17-self-time-with-calls", &[]),
    ("18-chain-grammar", &[]),
    ("19-critical-path", &[]),
    ("20-pairing-two-pods", &[]),
];

/// Skip reasons of SPEC §1 ("A line that cannot be used is skipped and
/// counted by reason"); §4: "Maps list every defined key, 0 where nothing was
/// counted."
const SKIP_REASONS: [&str; 7] = [
    "parse_error",
    "invalid_utf8",
    "no_request_id",
    "no_timestamp",
    "bad_timestamp",
    "too_long",
    "unknown_format",
];

/// Incomplete-request reasons of SPEC §2, in the SPEC's order.
const INCOMPLETE_REASONS: [&str; 5] = [
    "no_root",
    "multiple_roots",
    "unpaired_call",
    "open_visit",
    "too_large",
];

// ---------------------------------------------------------------------------
// Running a case

fn examples_dir() -> PathBuf {
    shared_dir().join("examples")
}

/// True, after saying so on stderr, when the shared examples are absent.
fn missing() -> bool {
    if examples_dir().exists() {
        return false;
    }
    eprintln!("skipped: ../shared not found");
    true
}

/// The extra arguments of a case: the non-empty lines of its `args` file.
fn case_args(name: &str) -> Vec<String> {
    let path = examples_dir().join(name).join("args");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// `hopscope report <case>/logs <args> -o json`, parsed.
fn case(name: &str) -> Value {
    let logs = examples_dir().join(name).join("logs");
    let logs = logs.to_str().expect("a UTF-8 path").to_owned();
    let args = case_args(name);
    let mut full = vec![logs.as_str()];
    full.extend(args.iter().map(String::as_str));
    report_json(&full)
}

// ---------------------------------------------------------------------------
// Assertions

fn assert_u64(obj: &Value, key: &str, want: u64) {
    assert_eq!(obj[key].as_u64(), Some(want), "{key} in {obj}");
}

fn assert_f64(obj: &Value, key: &str, want: f64) {
    assert_eq!(obj[key].as_f64(), Some(want), "{key} in {obj}");
}

fn assert_str(obj: &Value, key: &str, want: &str) {
    assert_eq!(obj[key].as_str(), Some(want), "{key} in {obj}");
}

fn assert_bool(obj: &Value, key: &str, want: bool) {
    assert_eq!(obj[key].as_bool(), Some(want), "{key} in {obj}");
}

/// The field is present and `null`.
fn assert_null(obj: &Value, key: &str) {
    assert!(
        matches!(obj.get(key), Some(Value::Null)),
        "{key} should be present and null in {obj}"
    );
}

fn assert_len(array: &Value, want: usize) {
    let got = array
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {array}"))
        .len();
    assert_eq!(got, want, "length of {array}");
}

/// The `key` field of every entry of `array`, in array order.
fn names<'a>(array: &'a Value, key: &str) -> Vec<&'a str> {
    array
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {array}"))
        .iter()
        .map(|e| {
            e[key]
                .as_str()
                .unwrap_or_else(|| panic!("no string {key} in {e}"))
        })
        .collect()
}

/// `from>to` of every hop, in array order.
fn hop_names(report: &Value) -> Vec<String> {
    let from = names(&report["hops"], "from");
    let to = names(&report["hops"], "to");
    from.iter()
        .zip(to)
        .map(|(f, t)| format!("{f}>{t}"))
        .collect()
}

/// The chain entry whose chain string is `text`.
fn chain<'a>(report: &'a Value, text: &str) -> &'a Value {
    find(&report["chains"], "chain", text)
}

/// `input.skipped`: the listed counts, every other reason 0.
fn assert_skipped(report: &Value, nonzero: &[(&str, u64)]) {
    let skipped = &report["input"]["skipped"];
    for reason in SKIP_REASONS {
        let want = nonzero
            .iter()
            .find(|(k, _)| *k == reason)
            .map_or(0, |&(_, n)| n);
        assert_u64(skipped, reason, want);
    }
}

/// `requests.incomplete_reasons`: the listed counts, every other reason 0.
fn assert_incomplete_reasons(report: &Value, nonzero: &[(&str, u64)]) {
    let reasons = &report["requests"]["incomplete_reasons"];
    for reason in INCOMPLETE_REASONS {
        let want = nonzero
            .iter()
            .find(|(k, _)| *k == reason)
            .map_or(0, |&(_, n)| n);
        assert_u64(reasons, reason, want);
    }
}

/// README: "Unless a case says otherwise: … every request complete,
/// `requests.split` 0, every `incomplete_reasons` and `skipped` key 0."
fn assert_defaults(report: &Value) {
    let q = &report["requests"];
    assert_u64(q, "incomplete", 0);
    assert_u64(q, "split", 0);
    assert_incomplete_reasons(report, &[]);
    assert_skipped(report, &[]);
}

/// README: "Unless a case says otherwise: no failures" (failure_rate =
/// failed / total = 0 / n).
fn assert_no_failures(report: &Value) {
    let q = &report["requests"];
    assert_u64(q, "failed", 0);
    assert_u64(q, "root_failed", 0);
    assert_f64(q, "failure_rate", 0.0);
}

/// `skew.pairs`, in array order: (from, to, hops, offset_ms, applied).
fn assert_pairs(report: &Value, want: &[(&str, &str, u64, f64, bool)]) {
    let pairs = &report["skew"]["pairs"];
    assert_len(pairs, want.len());
    for (i, &(from, to, hops, offset, applied)) in want.iter().enumerate() {
        let p = &pairs[i];
        assert_str(p, "from", from);
        assert_str(p, "to", to);
        assert_u64(p, "hops", hops);
        assert_f64(p, "offset_ms", offset);
        assert_bool(p, "applied", applied);
    }
}

fn assert_skew_counts(report: &Value, adjusted_hops: u64, negative_legs: u64) {
    let skew = &report["skew"];
    assert_u64(skew, "adjusted_hops", adjusted_hops);
    assert_u64(skew, "negative_legs", negative_legs);
}

// ---------------------------------------------------------------------------
// The cases

/// 01 · sync-call-exact: call time, processing, legs, propagation and
/// exactness of a synchronous call; a linear critical path.
#[test]
fn case_01_sync_call_exact() {
    if missing() {
        return;
    }
    let r = case("01-sync-call-exact");
    assert_defaults(&r);

    // hops: byte-wise order, `(` sorts before letters.
    assert_eq!(
        hop_names(&r),
        ["(client)>gateway", "gateway>orders", "orders>payments"]
    );

    let h = hop(&r, "(client)", "gateway");
    assert_u64(h, "calls", 1);
    assert_u64(h, "failed", 0);
    assert_f64(h, "exact_fraction", 1.0);
    assert_const_block(&h["processing_ms"], 1, 15.0); // 15 − 0
    // "the `(client)` hop has only processing"
    for key in [
        "call_ms",
        "request_leg_ms",
        "response_leg_ms",
        "propagation_ms",
        "critical_ms",
    ] {
        assert_null(h, key);
    }

    let h = hop(&r, "gateway", "orders");
    assert_u64(h, "calls", 1);
    assert_u64(h, "failed", 0);
    assert_f64(h, "failure_rate", 0.0);
    assert_f64(h, "exact_fraction", 1.0);
    assert_const_block(&h["call_ms"], 1, 13.0); // 14 − 1
    assert_const_block(&h["processing_ms"], 1, 11.0); // 13 − 2
    assert_const_block(&h["request_leg_ms"], 1, 1.0); // 2 − 1
    assert_const_block(&h["response_leg_ms"], 1, 1.0); // 14 − 13
    assert_const_block(&h["propagation_ms"], 1, 2.0); // 1 + 1
    assert_const_block(&h["critical_ms"], 1, 2.0); // legs [1, 2] + [13, 14]

    let h = hop(&r, "orders", "payments");
    assert_u64(h, "calls", 1);
    assert_u64(h, "failed", 0);
    assert_f64(h, "failure_rate", 0.0);
    assert_f64(h, "exact_fraction", 1.0);
    assert_const_block(&h["call_ms"], 1, 9.0); // 12 − 3
    assert_const_block(&h["processing_ms"], 1, 6.0); // 11 − 5
    assert_const_block(&h["request_leg_ms"], 1, 2.0); // 5 − 3
    assert_const_block(&h["response_leg_ms"], 1, 1.0); // 12 − 11
    assert_const_block(&h["propagation_ms"], 1, 3.0); // 2 + 1
    assert_const_block(&h["critical_ms"], 1, 3.0); // legs [3, 5] + [11, 12]

    assert_eq!(
        names(&r["services"], "service"),
        ["gateway", "orders", "payments"]
    );
    for name in ["gateway", "orders", "payments"] {
        let s = service(&r, name);
        assert_u64(s, "visits", 1);
        assert_u64(s, "failed", 0);
        assert_bool(s, "virtual", false);
        assert_f64(s, "exact_fraction", 1.0);
    }
    let s = service(&r, "gateway");
    assert_const_block(&s["processing_ms"], 1, 15.0);
    assert_const_block(&s["self_ms"], 1, 2.0); // 15 − |[1, 14]|
    assert_const_block(&s["critical_ms"], 1, 2.0); // [0, 1] + [14, 15]
    let s = service(&r, "orders");
    assert_const_block(&s["processing_ms"], 1, 11.0);
    assert_const_block(&s["self_ms"], 1, 2.0); // 11 − |[3, 12]|
    assert_const_block(&s["critical_ms"], 1, 2.0); // [2, 3] + [12, 13]
    let s = service(&r, "payments");
    assert_const_block(&s["processing_ms"], 1, 6.0);
    assert_const_block(&s["self_ms"], 1, 6.0); // no outgoing calls
    assert_const_block(&s["critical_ms"], 1, 6.0); // [5, 11]
    // Critical sum: 2 + 2 + 6 + 2 + 3 = 15 = latency.

    let q = &r["requests"];
    assert_u64(q, "total", 1);
    assert_u64(q, "complete", 1);
    assert_no_failures(&r);
    assert_const_block(&q["latency_ms"], 1, 15.0); // root gateway: 15 − 0

    assert_len(&r["chains"], 1);
    let c = chain(&r, "gateway>orders>payments");
    assert_u64(c, "requests", 1);
    assert_u64(c, "failed", 0);
    assert_f64(c, "failure_rate", 0.0);
    assert_const_block(&c["latency_ms"], 1, 15.0);
    assert_str(c, "slowest_request", "r1");
    assert_null(c, "failed_request");

    // θ gateway>orders ((2 − 1) − (14 − 13)) / 2 = 0; orders>payments
    // ((5 − 3) − (12 − 11)) / 2 = 0.5; both below 1 ms, so not applied.
    assert_pairs(
        &r,
        &[
            ("gateway", "orders", 1, 0.0, false),
            ("orders", "payments", 1, 0.5, false),
        ],
    );
    assert_skew_counts(&r, 0, 0);
}

/// 02 · async-handoff: a cs without cr (r1) and a rule-3 parent (r2); no
/// response leg; hand-off children do not reduce self time.
#[test]
fn case_02_async_handoff() {
    if missing() {
        return;
    }
    let r = case("02-async-handoff");
    assert_defaults(&r);

    let h = hop(&r, "orders", "mailer");
    assert_u64(h, "calls", 2);
    assert_u64(h, "failed", 0);
    assert_f64(h, "failure_rate", 0.0);
    assert_f64(h, "exact_fraction", 0.0); // no hop has both legs from cs and cr
    assert_null(h, "call_ms"); // no hop has both cs and cr
    // {10, 6}: r1 30 − 20, r2 126 − 120.
    assert_block(&h["processing_ms"], 2, 8.0, [6.0, 10.0, 10.0, 10.0], 10.0);
    // {18, 15}: r1 20 − 2 (V.start − cs), r2 120 − 105 (V.start − P.end).
    assert_block(
        &h["request_leg_ms"],
        2,
        16.5,
        [15.0, 18.0, 18.0, 18.0],
        18.0,
    );
    assert_null(h, "response_leg_ms"); // "no response leg"
    assert_block(
        &h["propagation_ms"],
        2,
        16.5,
        [15.0, 18.0, 18.0, 18.0],
        18.0,
    );
    // The mailer visits end after the root ends: never on the path.
    assert_const_block(&h["critical_ms"], 2, 0.0);

    let h = hop(&r, "(client)", "orders");
    assert_u64(h, "calls", 2);
    assert_f64(h, "exact_fraction", 1.0);
    assert_const_block(&h["processing_ms"], 2, 5.0);

    let s = service(&r, "orders");
    assert_u64(s, "visits", 2);
    assert_u64(s, "failed", 0);
    assert_f64(s, "exact_fraction", 1.0);
    assert_const_block(&s["processing_ms"], 2, 5.0);
    assert_const_block(&s["self_ms"], 2, 5.0); // the hand-off reduces nothing
    assert_const_block(&s["critical_ms"], 2, 5.0);
    let s = service(&r, "mailer");
    assert_u64(s, "visits", 2);
    assert_u64(s, "failed", 0);
    assert_f64(s, "exact_fraction", 1.0);
    assert_block(&s["processing_ms"], 2, 8.0, [6.0, 10.0, 10.0, 10.0], 10.0);
    assert_block(&s["self_ms"], 2, 8.0, [6.0, 10.0, 10.0, 10.0], 10.0);
    assert_const_block(&s["critical_ms"], 2, 0.0);

    let q = &r["requests"];
    assert_u64(q, "total", 2);
    assert_u64(q, "complete", 2);
    assert_u64(q, "incomplete", 0);
    assert_no_failures(&r);
    // SPEC-derived (left out for OPEN.md): §2 Requests "A request's latency
    // = root end − root start (hand-off work that outlives the root does not
    // extend it; it shows in its own hops)": r1 5 − 0 = 5, r2 105 − 100 = 5.
    assert_const_block(&q["latency_ms"], 2, 5.0);

    assert_len(&r["chains"], 1);
    let c = chain(&r, "orders>mailer");
    assert_u64(c, "requests", 2);
    assert_u64(c, "failed", 0);
    // Latencies 5 and 5 tie: "ties go to the smaller ID".
    assert_str(c, "slowest_request", "r1");
    // SPEC-derived, as requests.latency_ms above: {5, 5}.
    assert_const_block(&c["latency_ms"], 2, 5.0);

    // No hop has both cs and cr, so no pair is measured.
    assert_pairs(&r, &[]);
    assert_skew_counts(&r, 0, 0);
}

/// 03 · retry-same-peer: per-peer cs/cr pairing, one callee visit per call,
/// `{payments,payments}`, a failed attempt and its retry.
#[test]
fn case_03_retry_same_peer() {
    if missing() {
        return;
    }
    let r = case("03-retry-same-peer");
    assert_defaults(&r);

    let h = hop(&r, "gateway", "payments");
    assert_u64(h, "calls", 2);
    assert_u64(h, "failed", 1); // call 1: A failed and its cr says 503
    assert_f64(h, "failure_rate", 0.5);
    assert_f64(h, "exact_fraction", 1.0);
    assert_str(h, "failed_request", "r1");
    assert_str(h, "slowest_request", "r1");
    // {5, 8}: 6 − 1, 15 − 7.
    assert_block(&h["call_ms"], 2, 6.5, [5.0, 8.0, 8.0, 8.0], 8.0);
    // {3, 5}: 5 − 2, 14 − 9.
    assert_block(&h["processing_ms"], 2, 4.0, [3.0, 5.0, 5.0, 5.0], 5.0);
    // {1, 2}: 2 − 1, 9 − 7.
    assert_block(&h["request_leg_ms"], 2, 1.5, [1.0, 2.0, 2.0, 2.0], 2.0);
    // {1, 1}: 6 − 5, 15 − 14.
    assert_const_block(&h["response_leg_ms"], 2, 1.0);
    assert_block(&h["propagation_ms"], 2, 2.5, [2.0, 3.0, 3.0, 3.0], 3.0);
    assert_block(&h["critical_ms"], 2, 2.5, [2.0, 3.0, 3.0, 3.0], 3.0);

    let h = hop(&r, "(client)", "gateway");
    assert_u64(h, "calls", 1);
    assert_u64(h, "failed", 0); // gateway's own records do not fail
    assert_const_block(&h["processing_ms"], 1, 16.0);

    let s = service(&r, "gateway");
    assert_u64(s, "visits", 1);
    assert_u64(s, "failed", 0); // the 503 on its cr fails the hop only
    assert_f64(s, "failure_rate", 0.0);
    assert_u64(s, "origin_failures", 0);
    assert_const_block(&s["processing_ms"], 1, 16.0);
    assert_const_block(&s["self_ms"], 1, 3.0); // 16 − (|[1, 6]| + |[7, 15]|)
    assert_const_block(&s["critical_ms"], 1, 3.0); // [0, 1] + [6, 7] + [15, 16]
    let s = service(&r, "payments");
    assert_u64(s, "visits", 2);
    assert_u64(s, "failed", 1);
    assert_f64(s, "failure_rate", 0.5);
    assert_u64(s, "origin_failures", 1); // A failed and has no child visits
    assert_f64(s, "exact_fraction", 1.0);
    assert_block(&s["processing_ms"], 2, 4.0, [3.0, 5.0, 5.0, 5.0], 5.0);
    assert_block(&s["self_ms"], 2, 4.0, [3.0, 5.0, 5.0, 5.0], 5.0);
    assert_block(&s["critical_ms"], 2, 4.0, [3.0, 5.0, 5.0, 5.0], 5.0);
    // Critical sum: 3 + (3 + 5) + (2 + 3) = 16 = latency.

    let q = &r["requests"];
    assert_u64(q, "total", 1);
    assert_u64(q, "complete", 1);
    assert_u64(q, "failed", 1); // "A request fails when any visit fails"
    assert_u64(q, "root_failed", 0); // gateway answered 200
    assert_f64(q, "failure_rate", 1.0);
    assert_const_block(&q["latency_ms"], 1, 16.0);

    assert_len(&r["chains"], 1);
    let c = chain(&r, "gateway>{payments,payments}");
    assert_u64(c, "requests", 1);
    assert_u64(c, "failed", 1);
    assert_f64(c, "failure_rate", 1.0);
    assert_const_block(&c["latency_ms"], 1, 16.0);
    assert_str(c, "slowest_request", "r1");
    assert_str(c, "failed_request", "r1");

    // θ: call 1 ((2 − 1) − (6 − 5)) / 2 = 0, call 2 ((9 − 7) − (15 − 14)) / 2
    // = 0.5; mean of the two middle values = 0.25 < 1 ms.
    assert_pairs(&r, &[("gateway", "payments", 2, 0.25, false)]);
    assert_skew_counts(&r, 0, 0);
}

/// 04 · span-ids-inner-spans: inner and client spans and a span-less line
/// join the server span's visit.
#[test]
fn case_04_span_ids_inner_spans() {
    if missing() {
        return;
    }
    let r = case("04-span-ids-inner-spans");
    assert_defaults(&r);

    let s = service(&r, "orders");
    assert_u64(s, "visits", 1);
    assert_f64(s, "exact_fraction", 1.0);
    assert_const_block(&s["processing_ms"], 1, 18.0); // 18 − 0
    assert_const_block(&s["self_ms"], 1, 9.0); // 18 − |[4, 13]|
    let s = service(&r, "payments");
    assert_u64(s, "visits", 1);
    assert_f64(s, "exact_fraction", 1.0);
    assert_const_block(&s["processing_ms"], 1, 5.0); // 11 − 6
    assert_const_block(&s["self_ms"], 1, 5.0);

    // Exactly two hops; no orders>orders.
    assert_eq!(hop_names(&r), ["(client)>orders", "orders>payments"]);
    let h = hop(&r, "(client)", "orders");
    assert_u64(h, "calls", 1);
    assert_f64(h, "exact_fraction", 1.0);
    assert_const_block(&h["processing_ms"], 1, 18.0);
    let h = hop(&r, "orders", "payments");
    assert_u64(h, "calls", 1);
    assert_u64(h, "failed", 0);
    assert_f64(h, "exact_fraction", 1.0);
    assert_const_block(&h["call_ms"], 1, 9.0); // 13 − 4
    assert_const_block(&h["processing_ms"], 1, 5.0);
    assert_const_block(&h["request_leg_ms"], 1, 2.0); // 6 − 4
    assert_const_block(&h["response_leg_ms"], 1, 2.0); // 13 − 11
    assert_const_block(&h["propagation_ms"], 1, 4.0);

    let q = &r["requests"];
    assert_u64(q, "total", 1);
    assert_u64(q, "complete", 1);
    assert_no_failures(&r);
    assert_const_block(&q["latency_ms"], 1, 18.0);

    assert_len(&r["chains"], 1);
    assert_u64(chain(&r, "orders>payments"), "requests", 1);

    // θ = ((6 − 4) − (13 − 11)) / 2 = 0.
    assert_pairs(&r, &[("orders", "payments", 1, 0.0, false)]);
}

/// 05 · skew-ahead: callee clock ahead; median θ over 3 hops, applied to
/// the legs and the callee's times.
#[test]
fn case_05_skew_ahead() {
    if missing() {
        return;
    }
    let r = case("05-skew-ahead");
    assert_defaults(&r);

    // θ = median {50, 50.5, 49.5} = 50 ≥ 1 ms → applied.
    assert_pairs(&r, &[("orders", "payments", 3, 50.0, true)]);
    // SPEC-derived (left out for OPEN.md): §4 "`skew.adjusted_hops` counts
    // calls whose legs were corrected or whose callee was moved;
    // `skew.negative_legs` counts calls with a negative leg after
    // correction." θ is applied "to … every hop of the pair": all 3 calls are
    // corrected; corrected legs are request {2, 3, 1}, response {2, 2, 2},
    // none negative.
    assert_skew_counts(&r, 3, 0);

    let h = hop(&r, "orders", "payments");
    assert_u64(h, "calls", 3);
    assert_u64(h, "failed", 0);
    assert_f64(h, "exact_fraction", 1.0);
    // {12, 10, 14}
    assert_block(&h["call_ms"], 3, 12.0, [12.0, 14.0, 14.0, 14.0], 14.0);
    // {8, 5, 11}
    assert_block(&h["processing_ms"], 3, 8.0, [8.0, 11.0, 11.0, 11.0], 11.0);
    // {2, 3, 1} = raw {52, 53, 51} − 50
    assert_block(&h["request_leg_ms"], 3, 2.0, [2.0, 3.0, 3.0, 3.0], 3.0);
    // {2, 2, 2} = raw −48 + 50
    assert_const_block(&h["response_leg_ms"], 3, 2.0);
    // {4, 5, 3}
    assert_block(&h["propagation_ms"], 3, 4.0, [4.0, 5.0, 5.0, 5.0], 5.0);
    assert_block(&h["critical_ms"], 3, 4.0, [4.0, 5.0, 5.0, 5.0], 5.0);

    let h = hop(&r, "(client)", "orders");
    assert_u64(h, "calls", 3);
    // {14, 12, 16}
    assert_block(&h["processing_ms"], 3, 14.0, [14.0, 16.0, 16.0, 16.0], 16.0);

    let s = service(&r, "orders");
    assert_u64(s, "visits", 3);
    assert_block(&s["processing_ms"], 3, 14.0, [14.0, 16.0, 16.0, 16.0], 16.0);
    assert_const_block(&s["self_ms"], 3, 2.0); // 14 − 12, 12 − 10, 16 − 14
    assert_const_block(&s["critical_ms"], 3, 2.0);
    let s = service(&r, "payments");
    assert_u64(s, "visits", 3);
    assert_f64(s, "exact_fraction", 1.0);
    assert_block(&s["processing_ms"], 3, 8.0, [8.0, 11.0, 11.0, 11.0], 11.0);
    assert_block(&s["critical_ms"], 3, 8.0, [8.0, 11.0, 11.0, 11.0], 11.0);
    // Critical sums: 2 + 8 + 4 = 14, 2 + 5 + 5 = 12, 2 + 11 + 3 = 16.

    let q = &r["requests"];
    assert_u64(q, "total", 3);
    assert_u64(q, "complete", 3);
    assert_no_failures(&r);
    assert_block(&q["latency_ms"], 3, 14.0, [14.0, 16.0, 16.0, 16.0], 16.0);

    assert_len(&r["chains"], 1);
    let c = chain(&r, "orders>payments");
    assert_u64(c, "requests", 3);
    assert_str(c, "slowest_request", "r3"); // latency 16
}

/// 06 · skew-behind: callee clock behind, an even number of hops (mean of
/// the two middle values), negative raw legs corrected.
#[test]
fn case_06_skew_behind() {
    if missing() {
        return;
    }
    let r = case("06-skew-behind");
    assert_defaults(&r);

    // Sorted θ −12, −11, −9, −8 → (−11 + −9) / 2 = −10; |−10| ≥ 1 → applied.
    assert_pairs(&r, &[("web", "inventory", 4, -10.0, true)]);
    // SPEC-derived (left out for OPEN.md): §4 "`skew.adjusted_hops` counts
    // calls whose legs were corrected or whose callee was moved;
    // `skew.negative_legs` counts calls with a negative leg after
    // correction." All 4 calls of the pair are corrected; corrected legs are
    // request {5, 3, 1, 1}, response {1, 1, 3, 5}, none negative (the raw
    // request legs −5, −7, −9, −9 do not count: "after correction").
    assert_skew_counts(&r, 4, 0);

    let h = hop(&r, "web", "inventory");
    assert_u64(h, "calls", 4);
    assert_u64(h, "failed", 0);
    assert_f64(h, "exact_fraction", 1.0);
    // {16, 14, 14, 16}
    assert_block(&h["call_ms"], 4, 15.0, [14.0, 16.0, 16.0, 16.0], 16.0);
    assert_const_block(&h["processing_ms"], 4, 10.0);
    // {5, 3, 1, 1} = raw {−5, −7, −9, −9} + 10
    assert_block(&h["request_leg_ms"], 4, 2.5, [1.0, 5.0, 5.0, 5.0], 5.0);
    // {1, 1, 3, 5} = raw {11, 11, 13, 15} − 10
    assert_block(&h["response_leg_ms"], 4, 2.5, [1.0, 5.0, 5.0, 5.0], 5.0);
    // {6, 4, 4, 6}
    assert_block(&h["propagation_ms"], 4, 5.0, [4.0, 6.0, 6.0, 6.0], 6.0);
    assert_block(&h["critical_ms"], 4, 5.0, [4.0, 6.0, 6.0, 6.0], 6.0);

    let h = hop(&r, "(client)", "web");
    assert_u64(h, "calls", 4);
    // {27, 25, 25, 27}
    assert_block(&h["processing_ms"], 4, 26.0, [25.0, 27.0, 27.0, 27.0], 27.0);

    let s = service(&r, "web");
    assert_u64(s, "visits", 4);
    assert_block(&s["processing_ms"], 4, 26.0, [25.0, 27.0, 27.0, 27.0], 27.0);
    assert_const_block(&s["self_ms"], 4, 11.0); // 27 − 16, 25 − 14, …
    assert_const_block(&s["critical_ms"], 4, 11.0);
    let s = service(&r, "inventory");
    assert_u64(s, "visits", 4);
    assert_f64(s, "exact_fraction", 1.0);
    assert_const_block(&s["processing_ms"], 4, 10.0);
    assert_const_block(&s["critical_ms"], 4, 10.0);
    // Critical r1: 11 + 5 + 10 + 1 = 27.

    let q = &r["requests"];
    assert_u64(q, "total", 4);
    assert_u64(q, "complete", 4);
    assert_no_failures(&r);
    assert_block(&q["latency_ms"], 4, 26.0, [25.0, 27.0, 27.0, 27.0], 27.0);

    assert_len(&r["chains"], 1);
    let c = chain(&r, "web>inventory");
    assert_u64(c, "requests", 4);
    assert_str(c, "slowest_request", "r1"); // 27, tied with r4: smaller ID
}

/// 07 · virtual-db-call: a one-line call with peer and duration; virtual
/// services; the critical path charged to them.
#[test]
fn case_07_virtual_db_call() {
    if missing() {
        return;
    }
    let r = case("07-virtual-db-call");
    assert_defaults(&r);

    assert_eq!(
        names(&r["services"], "service"),
        ["orders", "postgres", "redis"]
    );
    let s = service(&r, "orders");
    assert_bool(s, "virtual", false);
    assert_u64(s, "visits", 1);
    assert_f64(s, "exact_fraction", 1.0);
    assert_const_block(&s["processing_ms"], 1, 60.0);
    assert_const_block(&s["self_ms"], 1, 17.0); // 60 − (|[10, 50]| + |[52, 55]|)
    assert_const_block(&s["critical_ms"], 1, 17.0); // 5 + 2 + 10
    let s = service(&r, "postgres");
    assert_bool(s, "virtual", true);
    assert_u64(s, "visits", 1);
    assert_u64(s, "failed", 0);
    assert_const_block(&s["critical_ms"], 1, 40.0); // [10, 50]
    let s = service(&r, "redis");
    assert_bool(s, "virtual", true);
    assert_u64(s, "visits", 1);
    assert_u64(s, "failed", 0);
    assert_const_block(&s["critical_ms"], 1, 3.0); // [52, 55]
    // Critical sum: 17 + 40 + 3 = 60 = latency.
    // SPEC-derived (left out for OPEN.md): §2 "A virtual service … has one
    // visit per call: its processing, self time, legs and propagation are
    // `null`".
    for name in ["postgres", "redis"] {
        assert_null(service(&r, name), "processing_ms");
        assert_null(service(&r, name), "self_ms");
    }

    let h = hop(&r, "(client)", "orders");
    assert_u64(h, "calls", 1);
    assert_const_block(&h["processing_ms"], 1, 60.0);
    assert_f64(h, "exact_fraction", 1.0);
    let h = hop(&r, "orders", "postgres");
    assert_bool(h, "virtual", true);
    assert_u64(h, "calls", 1);
    assert_u64(h, "failed", 0);
    assert_const_block(&h["call_ms"], 1, 40.0); // cs = 50 − 40 = 10, cr = 50
    assert_null(h, "processing_ms");
    let h = hop(&r, "orders", "redis");
    assert_bool(h, "virtual", true);
    assert_u64(h, "calls", 1);
    assert_u64(h, "failed", 0);
    assert_const_block(&h["call_ms"], 1, 3.0); // 55 − 52
    assert_null(h, "processing_ms");
    // SPEC-derived (left out for OPEN.md), for both virtual hops:
    // - legs and propagation: §2 "its processing, self time, legs and
    //   propagation are `null`";
    // - critical_ms: §2 "A virtual call on the path is charged to the virtual
    //   service (its `services[].critical_ms`; the hop's is 0)" and
    //   "`hops[].critical_ms` one per call" → {0.0}, count 1;
    // - exact_fraction: §2 "a virtual or unclaimed call is exact when it has
    //   both cs and cr" → 1/1. redis logs cs 52 and cr 55; postgres has cr 50
    //   and cs = cr − duration = 10 ("A duration … on a record with a peer,
    //   is that call's time: cs = cr − duration"), the same cs and cr that
    //   give its call_ms {40.0} ("cr − cs, wherever both exist").
    for to in ["postgres", "redis"] {
        let h = hop(&r, "orders", to);
        assert_null(h, "request_leg_ms");
        assert_null(h, "response_leg_ms");
        assert_null(h, "propagation_ms");
        assert_const_block(&h["critical_ms"], 1, 0.0);
        assert_f64(h, "exact_fraction", 1.0);
    }

    let q = &r["requests"];
    assert_u64(q, "total", 1);
    assert_u64(q, "complete", 1);
    assert_no_failures(&r);
    assert_const_block(&q["latency_ms"], 1, 60.0);

    // Both callees are virtual and left out of the chain.
    assert_len(&r["chains"], 1);
    let c = chain(&r, "orders");
    assert_u64(c, "requests", 1);
    assert_const_block(&c["latency_ms"], 1, 60.0);

    assert_pairs(&r, &[]); // no hop has an exact, logged callee
}

/// 08 · unclaimed-call-outage: a call to a logged service that no visit
/// claims still counts on its hop; it has its cr, so it is not
/// `unpaired_call`.
#[test]
fn case_08_unclaimed_call_outage() {
    if missing() {
        return;
    }
    let r = case("08-unclaimed-call-outage");
    assert_defaults(&r); // incomplete_reasons all 0: r2's call has its cr

    let h = hop(&r, "gateway", "payments");
    assert_bool(h, "virtual", false);
    assert_u64(h, "calls", 2);
    assert_u64(h, "failed", 1);
    assert_f64(h, "failure_rate", 0.5);
    assert_str(h, "failed_request", "r2");
    // SPEC §4: a hop's slowest request is by its processing, else its call
    // time. The hop has processing (r1's claimed call: 4 ms), so r1, although
    // r2's unclaimed call took 30 ms — whatever order requests are folded in.
    assert_str(h, "slowest_request", "r1");
    // {8, 30}: 9 − 1, 131 − 101.
    assert_block(&h["call_ms"], 2, 19.0, [8.0, 30.0, 30.0, 30.0], 30.0);
    // r1 only (r2 has no callee visit, so no processing or legs).
    assert_const_block(&h["processing_ms"], 1, 4.0); // 7 − 3
    assert_const_block(&h["request_leg_ms"], 1, 2.0); // 3 − 1
    assert_const_block(&h["response_leg_ms"], 1, 2.0); // 9 − 7
    assert_const_block(&h["propagation_ms"], 1, 4.0);
    // SPEC-derived (left out for OPEN.md): §2 "A hop is exact when V is exact
    // and both legs come from cs and cr; … a virtual or unclaimed call is
    // exact when it has both cs and cr. `exact_fraction` is over all calls."
    // r1: payments [3, 7] exact (sr, ss), legs from cs 1 and cr 9 → exact;
    // r2: unclaimed, has cs 101 and cr 131 → exact. 2 / 2 = 1.0.
    assert_f64(h, "exact_fraction", 1.0);
    // SPEC-derived (left out for OPEN.md): §2 Critical path "an unclaimed
    // call on the path [is charged] to its hop; a leg on the path … to its
    // hop"; "`hops[].critical_ms` one per call". r1: legs [1, 3] + [7, 9] =
    // 4; r2: from 132 back, gateway [131, 132], the unclaimed call
    // [101, 131] = 30 to the hop, gateway [100, 101]. Values {4, 30}.
    assert_block(&h["critical_ms"], 2, 17.0, [4.0, 30.0, 30.0, 30.0], 30.0);

    let h = hop(&r, "(client)", "gateway");
    assert_u64(h, "calls", 2);
    assert_u64(h, "failed", 1); // r2's root failed
    assert_f64(h, "failure_rate", 0.5);
    assert_block(&h["processing_ms"], 2, 21.0, [10.0, 32.0, 32.0, 32.0], 32.0);

    let s = service(&r, "gateway");
    assert_u64(s, "visits", 2);
    assert_u64(s, "failed", 1); // its ss says 503
    assert_f64(s, "failure_rate", 0.5);
    assert_u64(s, "origin_failures", 1);
    assert_block(&s["processing_ms"], 2, 21.0, [10.0, 32.0, 32.0, 32.0], 32.0);
    assert_const_block(&s["self_ms"], 2, 2.0); // 10 − 8, 32 − 30
    // SPEC-derived (critical path of r2 left out for OPEN.md), same walk as
    // above: r1 gateway [0, 1] + [9, 10] = 2 (payments [3, 7] = 4, legs 4;
    // 2 + 4 + 4 = 10); r2 gateway [100, 101] + [131, 132] = 2 (2 + 30 = 32).
    assert_const_block(&s["critical_ms"], 2, 2.0);
    let s = service(&r, "payments");
    assert_bool(s, "virtual", false);
    assert_u64(s, "visits", 1);
    assert_u64(s, "failed", 0);
    assert_const_block(&s["processing_ms"], 1, 4.0);
    assert_const_block(&s["critical_ms"], 1, 4.0); // SPEC-derived: [3, 7]
    // No virtual service appears.
    assert_eq!(names(&r["services"], "service"), ["gateway", "payments"]);

    let q = &r["requests"];
    assert_u64(q, "total", 2);
    assert_u64(q, "complete", 2);
    assert_u64(q, "incomplete", 0);
    assert_u64(q, "failed", 1);
    assert_u64(q, "root_failed", 1);
    assert_f64(q, "failure_rate", 0.5);
    assert_block(&q["latency_ms"], 2, 21.0, [10.0, 32.0, 32.0, 32.0], 32.0);

    // θ = ((3 − 1) − (9 − 7)) / 2 = 0, r1 only (r2 has no callee).
    assert_pairs(&r, &[("gateway", "payments", 1, 0.0, false)]);

    // SPEC-derived (left out for OPEN.md): §2 Chains "virtual callees and
    // unclaimed calls left out (they show in `hops`)": r1 is
    // `gateway>payments`, r2 `gateway`. §4: chains sort "by `requests`
    // descending, then `chain`": both 1, and `gateway` < `gateway>payments`
    // (a prefix sorts first). r2 failed (gateway's ss 503), r1 did not.
    assert_eq!(
        names(&r["chains"], "chain"),
        ["gateway", "gateway>payments"]
    );
    let c = chain(&r, "gateway");
    assert_u64(c, "requests", 1);
    assert_u64(c, "failed", 1);
    assert_f64(c, "failure_rate", 1.0);
    assert_const_block(&c["latency_ms"], 1, 32.0); // 132 − 100
    assert_str(c, "slowest_request", "r2");
    assert_str(c, "failed_request", "r2");
    let c = chain(&r, "gateway>payments");
    assert_u64(c, "requests", 1);
    assert_u64(c, "failed", 0);
    assert_f64(c, "failure_rate", 0.0);
    assert_const_block(&c["latency_ms"], 1, 10.0); // 10 − 0
    assert_str(c, "slowest_request", "r1");
    assert_null(c, "failed_request");
}

/// 09 · peer-normalisation: URL/host:port peers and `--peer-alias` name the
/// logged service.
#[test]
fn case_09_peer_normalisation() {
    if missing() {
        return;
    }
    let r = case("09-peer-normalisation");
    assert_defaults(&r);

    // Exactly two services; no virtual `payments:8080`, `billing`, ….
    assert_eq!(names(&r["services"], "service"), ["orders", "payments"]);
    assert_u64(service(&r, "orders"), "visits", 3);
    let s = service(&r, "payments");
    assert_bool(s, "virtual", false);
    assert_u64(s, "visits", 3);
    assert_const_block(&s["processing_ms"], 3, 4.0);

    assert_eq!(hop_names(&r), ["(client)>orders", "orders>payments"]);
    let h = hop(&r, "(client)", "orders");
    assert_u64(h, "calls", 3);
    assert_const_block(&h["processing_ms"], 3, 10.0);
    let h = hop(&r, "orders", "payments");
    assert_bool(h, "virtual", false);
    assert_u64(h, "calls", 3);
    assert_u64(h, "failed", 0);
    assert_f64(h, "exact_fraction", 1.0);
    assert_const_block(&h["call_ms"], 3, 8.0); // 9 − 1
    assert_const_block(&h["processing_ms"], 3, 4.0); // 7 − 3
    assert_const_block(&h["request_leg_ms"], 3, 2.0); // 3 − 1
    assert_const_block(&h["response_leg_ms"], 3, 2.0); // 9 − 7
    assert_const_block(&h["propagation_ms"], 3, 4.0);

    let q = &r["requests"];
    assert_u64(q, "total", 3);
    assert_u64(q, "complete", 3);
    assert_no_failures(&r);
    assert_const_block(&q["latency_ms"], 3, 10.0);

    assert_len(&r["chains"], 1);
    assert_u64(chain(&r, "orders>payments"), "requests", 3);

    // Each θ = ((3 − 1) − (9 − 7)) / 2 = 0.
    assert_pairs(&r, &[("orders", "payments", 3, 0.0, false)]);
}

/// 10 · estimated-no-events: plain lines make estimated visits; a rule-2
/// parent; legs from the parent's nearest records.
#[test]
fn case_10_estimated_no_events() {
    if missing() {
        return;
    }
    let r = case("10-estimated-no-events");
    assert_defaults(&r);

    let h = hop(&r, "(client)", "gateway");
    assert_u64(h, "calls", 1);
    assert_const_block(&h["processing_ms"], 1, 20.0);
    assert_f64(h, "exact_fraction", 0.0); // the root is estimated
    let h = hop(&r, "gateway", "orders");
    assert_u64(h, "calls", 1);
    assert_u64(h, "failed", 0);
    assert_f64(h, "exact_fraction", 0.0);
    assert_null(h, "call_ms"); // no cs/cr
    assert_const_block(&h["processing_ms"], 1, 8.0); // 12 − 4
    assert_const_block(&h["request_leg_ms"], 1, 2.0); // 4 − 2
    assert_const_block(&h["response_leg_ms"], 1, 3.0); // 15 − 12
    assert_const_block(&h["propagation_ms"], 1, 5.0); // 2 + 3
    // SPEC-derived (left out for OPEN.md): §2 Critical path "a leg on the
    // path, exact or estimated, [is charged] to its hop". Walk back from 20:
    // gateway [15, 20] = 5, response leg [12, 15] = 3 (hop), orders
    // [4, 12] = 8, request leg [2, 4] = 2 (hop), gateway [0, 2] = 2.
    // Hop 3 + 2 = 5; gateway 5 + 2 = 7; orders 8; 7 + 8 + 5 = 20 = latency.
    assert_const_block(&h["critical_ms"], 1, 5.0);

    let s = service(&r, "gateway");
    assert_u64(s, "visits", 1);
    assert_f64(s, "exact_fraction", 0.0);
    assert_const_block(&s["processing_ms"], 1, 20.0);
    assert_const_block(&s["self_ms"], 1, 12.0); // 20 − |[4, 12]|
    assert_const_block(&s["critical_ms"], 1, 7.0); // SPEC-derived, above
    let s = service(&r, "orders");
    assert_u64(s, "visits", 1);
    assert_f64(s, "exact_fraction", 0.0);
    assert_const_block(&s["processing_ms"], 1, 8.0);
    assert_const_block(&s["self_ms"], 1, 8.0);
    assert_const_block(&s["critical_ms"], 1, 8.0); // SPEC-derived, above

    let q = &r["requests"];
    assert_u64(q, "total", 1);
    assert_u64(q, "complete", 1); // not no_root: the root logged no events
    assert_u64(q, "incomplete", 0);
    assert_no_failures(&r);
    assert_const_block(&q["latency_ms"], 1, 20.0);

    assert_len(&r["chains"], 1);
    assert_u64(chain(&r, "gateway>orders"), "requests", 1);

    assert_pairs(&r, &[]); // no cs/cr
}

/// 11 · access-log-duration: an access line with a duration is a
/// server_send stamped at the end; the visit owns its window; exact.
#[test]
fn case_11_access_log_duration() {
    if missing() {
        return;
    }
    let r = case("11-access-log-duration");
    assert_defaults(&r);

    let h = hop(&r, "(client)", "gateway");
    assert_u64(h, "calls", 1);
    assert_const_block(&h["processing_ms"], 1, 50.0);
    assert_f64(h, "exact_fraction", 1.0);
    let h = hop(&r, "gateway", "orders");
    assert_u64(h, "calls", 1);
    assert_u64(h, "failed", 0);
    assert_f64(h, "exact_fraction", 0.0); // legs not from cs/cr
    assert_null(h, "call_ms");
    assert_const_block(&h["processing_ms"], 1, 30.0); // 40 − 10
    assert_const_block(&h["request_leg_ms"], 1, 5.0); // 10 − 5
    assert_const_block(&h["response_leg_ms"], 1, 10.0); // 50 − 40
    assert_const_block(&h["propagation_ms"], 1, 15.0);

    let s = service(&r, "gateway");
    assert_u64(s, "visits", 1);
    assert_f64(s, "exact_fraction", 1.0);
    assert_const_block(&s["processing_ms"], 1, 50.0);
    assert_const_block(&s["self_ms"], 1, 20.0); // 50 − |[10, 40]|
    let s = service(&r, "orders");
    assert_u64(s, "visits", 1);
    assert_f64(s, "exact_fraction", 1.0);
    assert_const_block(&s["processing_ms"], 1, 30.0);
    assert_const_block(&s["self_ms"], 1, 30.0);

    let q = &r["requests"];
    assert_u64(q, "total", 1);
    assert_u64(q, "complete", 1); // the root's start is exact (duration)
    assert_no_failures(&r);
    assert_const_block(&q["latency_ms"], 1, 50.0);

    assert_len(&r["chains"], 1);
    assert_u64(chain(&r, "gateway>orders"), "requests", 1);

    assert_pairs(&r, &[]); // no cs/cr
}

/// 12 · failure-swallowed: a failure on a client event fails the hop, not
/// the caller; failed vs root_failed; origins.
#[test]
fn case_12_failure_swallowed() {
    if missing() {
        return;
    }
    let r = case("12-failure-swallowed");
    assert_defaults(&r);

    let s = service(&r, "gateway");
    assert_u64(s, "visits", 2);
    assert_u64(s, "failed", 0);
    assert_f64(s, "failure_rate", 0.0);
    assert_u64(s, "origin_failures", 0);
    let s = service(&r, "recommend");
    assert_u64(s, "visits", 2);
    assert_u64(s, "failed", 1);
    assert_f64(s, "failure_rate", 0.5);
    assert_u64(s, "origin_failures", 1);

    let h = hop(&r, "gateway", "recommend");
    assert_u64(h, "calls", 2);
    assert_u64(h, "failed", 2); // r1: V failed and cr 503; r2: cr failed
    assert_f64(h, "failure_rate", 1.0);
    // SPEC-derived (left out for OPEN.md): §4 "`failed_request` [names] the
    // earliest-starting failed one; ties go to the smaller ID". Both calls
    // failed; r1 starts at 0, r2 at 100 → r1 (r1 is also the only failed
    // request, so either reading of "failed one" gives r1).
    assert_str(h, "failed_request", "r1");
    let h = hop(&r, "(client)", "gateway");
    assert_u64(h, "calls", 2);
    assert_u64(h, "failed", 0);
    assert_f64(h, "failure_rate", 0.0);
    assert_null(h, "failed_request"); // gateway's visits never fail

    let q = &r["requests"];
    assert_u64(q, "total", 2);
    assert_u64(q, "complete", 2);
    assert_u64(q, "failed", 1); // r1: a visit failed; r2: none did
    assert_u64(q, "root_failed", 0);
    assert_f64(q, "failure_rate", 0.5); // 1 / 2

    assert_len(&r["chains"], 1);
    let c = chain(&r, "gateway>recommend");
    assert_u64(c, "requests", 2);
    assert_u64(c, "failed", 1);
    assert_f64(c, "failure_rate", 0.5);
    assert_str(c, "failed_request", "r1");

    // θ r1 ((2 − 1) − (6 − 5)) / 2 = 0, r2 ((102 − 101) − (131 − 130)) / 2 = 0.
    assert_pairs(&r, &[("gateway", "recommend", 2, 0.0, false)]);
}

/// 13 · placeholder-ids: placeholders are `no_request_id`; exact-string IDs,
/// trimming, JSON numbers by their text; line accounting.
#[test]
fn case_13_placeholder_ids() {
    if missing() {
        return;
    }
    let r = case("13-placeholder-ids");

    // 6 records + 1 blank + 6 skipped = 13 lines.
    let input = &r["input"];
    assert_u64(input, "files", 1);
    assert_u64(input, "lines", 13);
    assert_u64(input, "blank", 1);
    assert_u64(input, "records", 6);
    assert_skipped(&r, &[("no_request_id", 6)]);

    let q = &r["requests"];
    assert_u64(q, "total", 3); // AB12CD, ab12cd, 42
    assert_u64(q, "complete", 3);
    assert_u64(q, "incomplete", 0);
    assert_u64(q, "split", 0);
    assert_incomplete_reasons(&r, &[]);
    assert_no_failures(&r);
    // {2, 4, 6}: 12 − 10, 24 − 20, 36 − 30.
    assert_block(&q["latency_ms"], 3, 4.0, [4.0, 6.0, 6.0, 6.0], 6.0);

    let s = service(&r, "gateway");
    assert_u64(s, "visits", 3);
    assert_block(&s["processing_ms"], 3, 4.0, [4.0, 6.0, 6.0, 6.0], 6.0);

    assert_len(&r["chains"], 1);
    let c = chain(&r, "gateway");
    assert_u64(c, "requests", 3);
    // The string "42" (latency 6), not the number 42.
    assert_str(c, "slowest_request", "42");
}

/// 14 · field-precedence: list order over key order, exact case, first
/// duplicate, `""` falls through.
#[test]
fn case_14_field_precedence() {
    if missing() {
        return;
    }
    let r = case("14-field-precedence");
    assert_defaults(&r); // every skipped reason 0

    assert_u64(&r["input"], "records", 6);

    let q = &r["requests"];
    assert_u64(q, "total", 1); // only r1: no T-77, x-9, r2
    assert_u64(q, "complete", 1);
    assert_no_failures(&r);
    assert_const_block(&q["latency_ms"], 1, 10.0);

    // Exactly gateway and orders; no spring-boot.
    assert_eq!(names(&r["services"], "service"), ["gateway", "orders"]);
    assert_u64(service(&r, "gateway"), "visits", 1);
    let s = service(&r, "orders");
    assert_u64(s, "visits", 1);
    assert_const_block(&s["processing_ms"], 1, 4.0); // 7 − 3, not 497

    let h = hop(&r, "gateway", "orders");
    assert_u64(h, "calls", 1);
    assert_f64(h, "exact_fraction", 1.0);
    assert_const_block(&h["call_ms"], 1, 8.0); // 9 − 1
    assert_const_block(&h["processing_ms"], 1, 4.0);
    assert_const_block(&h["request_leg_ms"], 1, 2.0); // 3 − 1
    assert_const_block(&h["response_leg_ms"], 1, 2.0); // 9 − 7
    assert_const_block(&h["propagation_ms"], 1, 4.0);

    assert_len(&r["chains"], 1);
    assert_u64(chain(&r, "gateway>orders"), "requests", 1);
}

/// 15 · incomplete-reasons: one reason per request, the first that applies;
/// incomplete requests count in `requests` only.
#[test]
fn case_15_incomplete_reasons() {
    if missing() {
        return;
    }
    let r = case("15-incomplete-reasons");
    assert_skipped(&r, &[]);

    let q = &r["requests"];
    assert_u64(q, "total", 5);
    assert_u64(q, "complete", 1); // r2
    assert_u64(q, "incomplete", 4);
    assert_u64(q, "split", 0);
    // r1 no_root; r3 unpaired_call; r4 open_visit; r5 unpaired_call (first
    // of unpaired_call and open_visit). 1 + 2 + 1 = 4 = incomplete.
    assert_incomplete_reasons(
        &r,
        &[("no_root", 1), ("unpaired_call", 2), ("open_visit", 1)],
    );
    assert_u64(q, "failed", 1); // r4's payments visit fails on level=error
    assert_f64(q, "failure_rate", 0.2); // 1 / 5
    assert_u64(q, "root_failed", 0); // no root visit fails
    assert_const_block(&q["latency_ms"], 1, 10.0); // r2 only: 110 − 100

    let s = service(&r, "orders");
    assert_u64(s, "visits", 1);
    assert_const_block(&s["processing_ms"], 1, 10.0);
    assert_f64(s, "exact_fraction", 1.0);
    let h = hop(&r, "(client)", "orders");
    assert_u64(h, "calls", 1);
    assert_const_block(&h["processing_ms"], 1, 10.0);
    let c = chain(&r, "orders");
    assert_u64(c, "requests", 1);
    assert_const_block(&c["latency_ms"], 1, 10.0);

    // SPEC-derived (left out for OPEN.md): §2 "their visits stay out of
    // `services`, `hops` and `chains` (a name seen only there has no row)".
    // gateway, payments, inventory and postgres are seen only in the
    // incomplete r1, r3, r4, r5, so they have no row; orders has one (r2).
    assert_eq!(names(&r["services"], "service"), ["orders"]);
    assert_eq!(hop_names(&r), ["(client)>orders"]);
    assert_eq!(names(&r["chains"], "chain"), ["orders"]);
}

/// 16 · duration-units: unit from the value, the field-name suffix or the
/// default; µs rounding half-up.
#[test]
fn case_16_duration_units() {
    if missing() {
        return;
    }
    let r = case("16-duration-units");
    assert_defaults(&r);

    // (service, processing in ms as JSON writes it), in byte-wise order.
    let want = [
        ("camel-suffix", 2.5),    // durationUs=2500 → 2 500 µs
        ("go-form", 62500.0),     // 1m2.5s
        ("micro-in-value", 0.35), // 350µs
        ("ms-in-value", 12.5),    // 12.5ms
        ("plain-number", 7.0),    // 7, default ms
        ("rounding", 1.235),      // 1.2345ms = 1 234 500 ns → 1 235 µs half-up
        ("s-in-value", 1200.0),   // 1.2s
    ];
    let want_names = want.map(|(name, _)| name);
    assert_eq!(names(&r["services"], "service"), want_names);
    for (name, ms) in want {
        let s = service(&r, name);
        assert_u64(s, "visits", 1);
        assert_f64(s, "exact_fraction", 1.0);
        assert_u64(s, "failed", 0);
        assert_const_block(&s["processing_ms"], 1, ms);

        let h = hop(&r, "(client)", name);
        assert_u64(h, "calls", 1);
        assert_f64(h, "exact_fraction", 1.0);
        assert_const_block(&h["processing_ms"], 1, ms);
    }

    let q = &r["requests"];
    assert_u64(q, "total", 7);
    assert_u64(q, "complete", 7);
    assert_no_failures(&r);
    // Sorted 0.35, 1.2345, 2.5, 7, 12.5, 1200, 62500; p50 rank ⌈3.5⌉ = 4;
    // p90/p95/p99 rank 7; mean 63 723 584 500 ns / 7 → 9 103 369 µs.
    assert_block(
        &q["latency_ms"],
        7,
        9103.369,
        [7.0, 62500.0, 62500.0, 62500.0],
        62500.0,
    );

    // Seven one-request chains: requests all 1, then by chain text.
    assert_eq!(names(&r["chains"], "chain"), want_names);
    for name in want_names {
        assert_u64(chain(&r, name), "requests", 1);
    }
}

/// 17 · self-time-with-calls: self time = processing − union of calls
/// (virtual included) and call-less children; hand-offs excluded.
#[test]
fn case_17_self_time_with_calls() {
    if missing() {
        return;
    }
    let r = case("17-self-time-with-calls");
    assert_defaults(&r);

    let s = service(&r, "orders");
    assert_const_block(&s["processing_ms"], 1, 60.0);
    // 60 − |[2, 6] ∪ [10, 40] ∪ [30, 45]| = 60 − (4 + 35)
    assert_const_block(&s["self_ms"], 1, 21.0);
    let s = service(&r, "payments");
    assert_const_block(&s["processing_ms"], 1, 20.0);
    assert_const_block(&s["self_ms"], 1, 20.0);
    let s = service(&r, "mailer");
    assert_const_block(&s["processing_ms"], 1, 11.0);
    assert_const_block(&s["self_ms"], 1, 11.0);
    let s = service(&r, "audit");
    assert_const_block(&s["processing_ms"], 1, 4.0);
    assert_const_block(&s["self_ms"], 1, 4.0);
    assert_f64(s, "exact_fraction", 0.0);

    let h = hop(&r, "orders", "payments");
    assert_u64(h, "calls", 1);
    assert_const_block(&h["call_ms"], 1, 30.0); // 40 − 10
    assert_const_block(&h["processing_ms"], 1, 20.0);
    assert_const_block(&h["request_leg_ms"], 1, 5.0); // 15 − 10
    assert_const_block(&h["response_leg_ms"], 1, 5.0); // 40 − 35
    assert_const_block(&h["propagation_ms"], 1, 10.0);
    let h = hop(&r, "orders", "postgres");
    assert_bool(h, "virtual", true);
    assert_u64(h, "calls", 1);
    assert_const_block(&h["call_ms"], 1, 15.0); // 45 − 30
    assert_null(h, "processing_ms");
    let h = hop(&r, "orders", "mailer");
    assert_u64(h, "calls", 1);
    assert_null(h, "call_ms");
    assert_const_block(&h["request_leg_ms"], 1, 1.0); // 47 − 46
    assert_null(h, "response_leg_ms");
    assert_const_block(&h["propagation_ms"], 1, 1.0);
    assert_const_block(&h["processing_ms"], 1, 11.0);

    let q = &r["requests"];
    assert_u64(q, "total", 1);
    assert_u64(q, "complete", 1);
    assert_no_failures(&r);
    assert_const_block(&q["latency_ms"], 1, 60.0);

    // Children by start: audit 2, payments 15, mailer 47; postgres virtual.
    assert_len(&r["chains"], 1);
    assert_u64(chain(&r, "orders>{audit,payments,mailer}"), "requests", 1);

    // θ = ((15 − 10) − (40 − 35)) / 2 = 0; no other hop has cs, cr and an
    // exact callee.
    assert_pairs(&r, &[("orders", "payments", 1, 0.0, false)]);
}

/// 18 · chain-grammar: braces, nesting, repeats, ties by chain text,
/// virtual callees omitted, escaping.
#[test]
fn case_18_chain_grammar() {
    if missing() {
        return;
    }
    let r = case("18-chain-grammar");
    assert_defaults(&r);

    // p2 `pay` and p1 `pay>fraud` both start at 2: tie by chain text, a
    // prefix first; `legacy billing` (12) last, its space escaped.
    assert_eq!(
        names(&r["chains"], "chain"),
        ["gw>{pay,pay>fraud,legacy\\ billing}"]
    );
    let c = chain(&r, "gw>{pay,pay>fraud,legacy\\ billing}");
    assert_u64(c, "requests", 1);
    assert_u64(c, "failed", 0);
    assert_const_block(&c["latency_ms"], 1, 20.0);
    assert_str(c, "slowest_request", "r1");

    // Names are not escaped outside chain strings.
    assert_u64(hop(&r, "gw", "pay"), "calls", 2);
    assert_u64(hop(&r, "gw", "legacy billing"), "calls", 1);
    assert_u64(hop(&r, "pay", "fraud"), "calls", 1);
    let h = hop(&r, "pay", "redis");
    assert_bool(h, "virtual", true);
    assert_u64(h, "calls", 1);
    assert_const_block(&h["call_ms"], 1, 2.0); // [3, 5]

    let q = &r["requests"];
    assert_u64(q, "total", 1);
    assert_u64(q, "complete", 1);
    assert_no_failures(&r);
    assert_const_block(&q["latency_ms"], 1, 20.0);
}

/// 19 · critical-path: with parallel calls only the last-finishing child is
/// on the path; 0 for the other; charges sum to the latency.
#[test]
fn case_19_critical_path() {
    if missing() {
        return;
    }
    let r = case("19-critical-path");
    assert_defaults(&r);

    // r1: gateway 5, payments 16, hop gateway>payments 4 (= 25);
    // r2: gateway 3, inventory 13, hop gateway>inventory 4 (= 20).
    let s = service(&r, "gateway");
    assert_block(&s["critical_ms"], 2, 4.0, [3.0, 5.0, 5.0, 5.0], 5.0); // {5, 3}
    // r1 25 − |[1, 8] ∪ [2, 22]| = 4; r2 20 − |[101, 118] ∪ [102, 110]| = 3.
    assert_block(&s["self_ms"], 2, 3.5, [3.0, 4.0, 4.0, 4.0], 4.0); // {4, 3}
    let s = service(&r, "inventory");
    assert_block(&s["critical_ms"], 2, 6.5, [0.0, 13.0, 13.0, 13.0], 13.0); // {0, 13}
    let s = service(&r, "payments");
    assert_block(&s["critical_ms"], 2, 8.0, [0.0, 16.0, 16.0, 16.0], 16.0); // {16, 0}

    let h = hop(&r, "gateway", "inventory");
    assert_block(&h["critical_ms"], 2, 2.0, [0.0, 4.0, 4.0, 4.0], 4.0); // {0, 4}
    assert_block(&h["call_ms"], 2, 12.0, [7.0, 17.0, 17.0, 17.0], 17.0); // {7, 17}
    assert_block(&h["processing_ms"], 2, 9.0, [5.0, 13.0, 13.0, 13.0], 13.0); // {5, 13}
    assert_block(&h["propagation_ms"], 2, 3.0, [2.0, 4.0, 4.0, 4.0], 4.0); // {2, 4}
    let h = hop(&r, "gateway", "payments");
    assert_block(&h["critical_ms"], 2, 2.0, [0.0, 4.0, 4.0, 4.0], 4.0); // {4, 0}
    assert_block(&h["call_ms"], 2, 14.0, [8.0, 20.0, 20.0, 20.0], 20.0); // {20, 8}
    assert_block(&h["processing_ms"], 2, 10.0, [4.0, 16.0, 16.0, 16.0], 16.0); // {16, 4}
    assert_const_block(&h["propagation_ms"], 2, 4.0); // {4, 4}
    assert_null(hop(&r, "(client)", "gateway"), "critical_ms");

    let q = &r["requests"];
    assert_u64(q, "total", 2);
    assert_u64(q, "complete", 2);
    assert_no_failures(&r);
    assert_block(&q["latency_ms"], 2, 22.5, [20.0, 25.0, 25.0, 25.0], 25.0); // {25, 20}

    // inventory starts first in both requests.
    assert_len(&r["chains"], 1);
    let c = chain(&r, "gateway>{inventory,payments}");
    assert_u64(c, "requests", 2);
    assert_str(c, "slowest_request", "r1");

    // Every θ is 0 (legs 1 and 1 or 2 and 2).
    assert_pairs(
        &r,
        &[
            ("gateway", "inventory", 2, 0.0, false),
            ("gateway", "payments", 2, 0.0, false),
        ],
    );
}

/// 20 · pairing-two-pods: sr/ss pairing without span IDs, per file first,
/// each ss closing the latest unmatched sr (a stack).
#[test]
fn case_20_pairing_two_pods() {
    if missing() {
        return;
    }
    let r = case("20-pairing-two-pods");
    assert_defaults(&r);

    let s = service(&r, "inventory");
    assert_u64(s, "visits", 3);
    assert_f64(s, "exact_fraction", 1.0);
    // {19, 4, 16}: X 21 − 2, Y 9 − 5, Z 30 − 14.
    assert_block(&s["processing_ms"], 3, 13.0, [16.0, 19.0, 19.0, 19.0], 19.0);
    let s = service(&r, "orders");
    assert_u64(s, "visits", 1);
    assert_const_block(&s["processing_ms"], 1, 8.0); // 11 − 3
    assert_const_block(&s["self_ms"], 1, 2.0); // 8 − |[4, 10]|
    let s = service(&r, "gw");
    assert_u64(s, "visits", 1);
    assert_const_block(&s["processing_ms"], 1, 32.0);
    // 32 − |[1, 22] ∪ [2, 12] ∪ [13, 31]| = 32 − 30
    assert_const_block(&s["self_ms"], 1, 2.0);

    let h = hop(&r, "gw", "inventory");
    assert_u64(h, "calls", 2);
    assert_f64(h, "exact_fraction", 1.0);
    // {21, 18}: 22 − 1, 31 − 13.
    assert_block(&h["call_ms"], 2, 19.5, [18.0, 21.0, 21.0, 21.0], 21.0);
    // {19, 16}
    assert_block(&h["processing_ms"], 2, 17.5, [16.0, 19.0, 19.0, 19.0], 19.0);
    assert_const_block(&h["request_leg_ms"], 2, 1.0); // 2 − 1, 14 − 13
    assert_const_block(&h["response_leg_ms"], 2, 1.0); // 22 − 21, 31 − 30
    assert_const_block(&h["propagation_ms"], 2, 2.0);
    let h = hop(&r, "gw", "orders");
    assert_u64(h, "calls", 1);
    assert_const_block(&h["call_ms"], 1, 10.0); // 12 − 2
    assert_const_block(&h["processing_ms"], 1, 8.0);
    assert_const_block(&h["request_leg_ms"], 1, 1.0); // 3 − 2
    assert_const_block(&h["response_leg_ms"], 1, 1.0); // 12 − 11
    assert_const_block(&h["propagation_ms"], 1, 2.0);
    let h = hop(&r, "orders", "inventory");
    assert_u64(h, "calls", 1);
    assert_const_block(&h["call_ms"], 1, 6.0); // 10 − 4
    assert_const_block(&h["processing_ms"], 1, 4.0);
    assert_const_block(&h["request_leg_ms"], 1, 1.0); // 5 − 4
    assert_const_block(&h["response_leg_ms"], 1, 1.0); // 10 − 9
    assert_const_block(&h["propagation_ms"], 1, 2.0);

    let q = &r["requests"];
    assert_u64(q, "total", 1);
    assert_u64(q, "complete", 1);
    assert_no_failures(&r);
    assert_const_block(&q["latency_ms"], 1, 32.0);

    // Children of gw by start: X 2, orders 3, Z 14.
    assert_len(&r["chains"], 1);
    assert_u64(
        chain(&r, "gw>{inventory,orders>inventory,inventory}"),
        "requests",
        1,
    );

    // Every θ is 0 (all legs 1 and 1).
    assert_pairs(
        &r,
        &[
            ("gw", "inventory", 2, 0.0, false),
            ("gw", "orders", 1, 0.0, false),
            ("orders", "inventory", 1, 0.0, false),
        ],
    );
}

/// Every example folder has its test above, and runs with the arguments
/// this file expects: a new, renamed or changed case fails here.
#[test]
fn every_example_has_a_test() {
    if missing() {
        return;
    }
    let mut dirs: Vec<String> = fs::read_dir(examples_dir())
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().into_string().unwrap())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 20, "example folders: {dirs:?}");
    let listed: Vec<&str> = CASES.iter().map(|&(name, _)| name).collect();
    assert_eq!(dirs, listed, "example folders vs CASES");

    let source = include_str!("examples.rs");
    for (name, args) in CASES {
        let dir = examples_dir().join(name);
        assert!(dir.join("logs").is_dir(), "{name}: no logs/");
        assert!(dir.join("expected.md").is_file(), "{name}: no expected.md");
        assert_eq!(case_args(name), args, "{name}/args changed");
        let test = format!("fn case_{}() {{", name.replace('-', "_"));
        assert!(source.contains(&test), "{name}: no `{test}` in examples.rs");
        let call = format!("case(\"{name}\")");
        assert!(source.contains(&call), "{name}: no `{call}` in examples.rs");
    }
}
