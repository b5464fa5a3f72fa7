//! The bundled sample logs (`testdata/logs`): five services in three
//! dialects, ten interleaved requests, a retry, a hand-off, a virtual
//! database, a clock 40 ms fast and a few broken lines. Every figure below
//! is worked by hand in `testdata/EXPECTED.md`.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;

use crate::util::*;

/// The log files of the sample, relative to `testdata/logs`.
const LOG_FILES: [&str; 5] = [
    "gateway/gateway.log",
    "inventory/access.log",
    "mailer/mailer.log",
    "orders/orders.log",
    "payments/payments.log",
];

fn logs_dir() -> PathBuf {
    repo_dir().join("testdata/logs")
}

/// `hopscope report testdata/logs -o json`, run once for all tests.
fn report() -> &'static Value {
    static REPORT: OnceLock<Value> = OnceLock::new();
    REPORT.get_or_init(|| report_json(&[logs_dir().to_str().unwrap()]))
}

/// Asserts `obj[key]` is a number equal to `want` (rates and offsets).
fn assert_num(obj: &Value, key: &str, want: f64) {
    let got = obj[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {obj}"));
    assert!(
        (got - want).abs() <= 1e-12,
        "{key}: got {got}, want {want} in {obj}"
    );
}

/// Asserts `obj[key]` is a count equal to `want`.
fn assert_count(obj: &Value, key: &str, want: u64) {
    assert_eq!(obj[key].as_u64(), Some(want), "{key} in {obj}");
}

/// Asserts `obj` has the field `key` and that it is `null`.
fn assert_null(obj: &Value, key: &str) {
    assert!(
        obj.get(key).is_some_and(Value::is_null),
        "{key} should be present and null in {obj}"
    );
}

/// Asserts a map lists `want` with those values, and 0 for any other key.
fn assert_map(map: &Value, want: &[(&str, u64)]) {
    let obj = map
        .as_object()
        .unwrap_or_else(|| panic!("not a map: {map}"));
    for (key, n) in want {
        assert_eq!(
            obj.get(*key).and_then(Value::as_u64),
            Some(*n),
            "{key} in {map}"
        );
    }
    for (key, n) in obj {
        if !want.iter().any(|(k, _)| k == key) {
            assert_eq!(n.as_u64(), Some(0), "{key} in {map}");
        }
    }
}

/// Asserts `obj[key]` is an RFC 3339 time naming the instant `want`.
fn assert_instant(obj: &Value, key: &str, want: &str) {
    let got = obj[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {obj}"));
    let got = chrono::DateTime::parse_from_rfc3339(got)
        .unwrap_or_else(|e| panic!("{key} = {got:?} is not RFC 3339: {e}"));
    let want = chrono::DateTime::parse_from_rfc3339(want).unwrap();
    assert_eq!(got, want, "{key} in {obj}");
}

/// The values of `key` in each element of `array`, in order.
fn column<'a>(array: &'a Value, key: &str) -> Vec<&'a str> {
    array
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {array}"))
        .iter()
        .map(|e| e[key].as_str().unwrap_or("<not a string>"))
        .collect()
}

#[test]
fn testdata_input() {
    let input = &report()["input"];
    assert_count(input, "files", 5);
    assert_count(input, "binary_files", 0);
    let bytes: u64 = LOG_FILES
        .iter()
        .map(|f| std::fs::metadata(logs_dir().join(f)).unwrap().len())
        .sum();
    assert_count(input, "bytes", bytes);
    // 40 + 62 + 15 + 7 + 16 lines = 134 records + 2 blank + 4 skipped.
    assert_count(input, "lines", 140);
    assert_count(input, "blank", 2);
    assert_count(input, "records", 134);
    assert_map(
        &input["skipped"],
        &[
            ("parse_error", 1),
            ("invalid_utf8", 0),
            ("no_request_id", 2),
            ("no_timestamp", 0),
            ("bad_timestamp", 1),
            ("too_long", 0),
            ("unknown_format", 0),
        ],
    );
    assert_instant(input, "first_ts", "2024-05-01T10:00:00Z");
    // mailer's `12:00:00.130+02:00`.
    assert_instant(input, "last_ts", "2024-05-01T10:00:00.130Z");
}

#[test]
fn testdata_requests() {
    let req = &report()["requests"];
    assert_count(req, "total", 10);
    assert_count(req, "complete", 9);
    assert_count(req, "incomplete", 1);
    // req-03 (payments' first attempt), req-05 (payments, orders, gateway),
    // req-07 (inventory); only req-05's root failed.
    assert_count(req, "failed", 3);
    assert_count(req, "root_failed", 1);
    assert_num(req, "failure_rate", 0.3);
    assert_count(req, "split", 0);
    // req-10: orders' server_recv at 128 ms is its last record.
    assert_map(
        &req["incomplete_reasons"],
        &[
            ("no_root", 0),
            ("multiple_roots", 0),
            ("unpaired_call", 0),
            ("open_visit", 1),
            ("too_large", 0),
        ],
    );
    // {31, 10, 41, 37, 50, 8, 53, 31, 9}: sum 270.
    assert_block(&req["latency_ms"], 9, 30.0, [31.0, 53.0, 53.0, 53.0], 53.0);
}

#[test]
fn testdata_services() {
    let r = report();
    assert_eq!(
        column(&r["services"], "service"),
        [
            "gateway",
            "inventory",
            "mailer",
            "orders",
            "payments",
            "postgres"
        ]
    );

    let s = service(r, "gateway");
    assert_eq!(s["virtual"], false);
    assert_count(s, "visits", 9);
    assert_count(s, "failed", 1);
    assert_num(s, "failure_rate", 1.0 / 9.0);
    assert_count(s, "origin_failures", 0);
    assert_num(s, "exact_fraction", 1.0);
    assert_block(&s["processing_ms"], 9, 30.0, [31.0, 53.0, 53.0, 53.0], 53.0);
    assert_const_block(&s["self_ms"], 9, 2.0);

    let s = service(r, "inventory");
    assert_eq!(s["virtual"], false);
    assert_count(s, "visits", 6);
    assert_count(s, "failed", 1);
    assert_num(s, "failure_rate", 1.0 / 6.0);
    assert_count(s, "origin_failures", 1);
    assert_num(s, "exact_fraction", 1.0);
    // {3, 3.5, 4, 3, 25, 2.5}: sum 41.
    assert_block(&s["processing_ms"], 6, 6.833, [3.0, 25.0, 25.0, 25.0], 25.0);
    assert_block(&s["self_ms"], 6, 6.833, [3.0, 25.0, 25.0, 25.0], 25.0);

    let s = service(r, "mailer");
    assert_eq!(s["virtual"], false);
    assert_count(s, "visits", 5);
    assert_count(s, "failed", 0);
    assert_num(s, "failure_rate", 0.0);
    assert_count(s, "origin_failures", 0);
    assert_num(s, "exact_fraction", 1.0);
    // {12, 13, 14, 16, 12}: the hand-off work reduces nobody's self time.
    assert_block(&s["processing_ms"], 5, 13.4, [13.0, 16.0, 16.0, 16.0], 16.0);
    assert_block(&s["self_ms"], 5, 13.4, [13.0, 16.0, 16.0, 16.0], 16.0);

    let s = service(r, "orders");
    assert_eq!(s["virtual"], false);
    assert_count(s, "visits", 9);
    assert_count(s, "failed", 1);
    assert_num(s, "failure_rate", 1.0 / 9.0);
    assert_count(s, "origin_failures", 0);
    assert_num(s, "exact_fraction", 1.0);
    // {27, 5, 37, 32, 45, 4, 49, 27, 4}: sum 230.
    assert_block(
        &s["processing_ms"],
        9,
        25.556,
        [27.0, 49.0, 49.0, 49.0],
        49.0,
    );
    // processing minus its [cs, cr] calls, postgres included, mailer not:
    // {5, 2, 10, 5, 4, 2, 5, 5, 2}: sum 40.
    assert_block(&s["self_ms"], 9, 4.444, [5.0, 10.0, 10.0, 10.0], 10.0);

    let s = service(r, "payments");
    assert_eq!(s["virtual"], false);
    assert_count(s, "visits", 7);
    assert_count(s, "failed", 2);
    assert_num(s, "failure_rate", 2.0 / 7.0);
    assert_count(s, "origin_failures", 2);
    assert_num(s, "exact_fraction", 1.0);
    // {12, 4, 10, 13, 30, 10, 9}: sum 88.
    assert_block(
        &s["processing_ms"],
        7,
        12.571,
        [10.0, 30.0, 30.0, 30.0],
        30.0,
    );
    assert_block(&s["self_ms"], 7, 12.571, [10.0, 30.0, 30.0, 30.0], 30.0);

    let s = service(r, "postgres");
    assert_eq!(s["virtual"], true);
    assert_count(s, "visits", 9);
    assert_count(s, "failed", 0);
    assert_num(s, "failure_rate", 0.0);
    assert_count(s, "origin_failures", 0);
    assert_null(s, "processing_ms");
    assert_null(s, "self_ms");
}

#[test]
fn testdata_hops() {
    let r = report();
    let pairs: Vec<(&str, &str)> = column(&r["hops"], "from")
        .into_iter()
        .zip(column(&r["hops"], "to"))
        .collect();
    assert_eq!(
        pairs,
        [
            ("(client)", "gateway"),
            ("gateway", "orders"),
            ("orders", "inventory"),
            ("orders", "mailer"),
            ("orders", "payments"),
            ("orders", "postgres"),
        ]
    );

    let h = hop(r, "(client)", "gateway");
    assert_eq!(h["virtual"], false);
    assert_count(h, "calls", 9);
    assert_count(h, "failed", 1);
    assert_num(h, "failure_rate", 1.0 / 9.0);
    assert_num(h, "exact_fraction", 1.0);
    assert_block(&h["processing_ms"], 9, 30.0, [31.0, 53.0, 53.0, 53.0], 53.0);
    for key in [
        "call_ms",
        "request_leg_ms",
        "response_leg_ms",
        "propagation_ms",
    ] {
        assert_null(h, key);
    }
    assert_eq!(h["slowest_request"], "req-07");
    assert_eq!(h["failed_request"], "req-05");

    let h = hop(r, "gateway", "orders");
    assert_eq!(h["virtual"], false);
    assert_count(h, "calls", 9);
    assert_count(h, "failed", 1);
    assert_num(h, "failure_rate", 1.0 / 9.0);
    assert_num(h, "exact_fraction", 1.0);
    assert_block(&h["call_ms"], 9, 28.0, [29.0, 51.0, 51.0, 51.0], 51.0);
    assert_block(
        &h["processing_ms"],
        9,
        25.556,
        [27.0, 49.0, 49.0, 49.0],
        49.0,
    );
    assert_block(&h["request_leg_ms"], 9, 1.111, [1.0, 2.0, 2.0, 2.0], 2.0);
    assert_block(&h["response_leg_ms"], 9, 1.333, [1.0, 2.0, 2.0, 2.0], 2.0);
    assert_block(&h["propagation_ms"], 9, 2.444, [2.0, 3.0, 3.0, 3.0], 3.0);
    assert_eq!(h["slowest_request"], "req-07");
    assert_eq!(h["failed_request"], "req-05");

    // inventory's clock is 40 ms fast: raw legs would be 41-42 and -38/-39.
    let h = hop(r, "orders", "inventory");
    assert_eq!(h["virtual"], false);
    assert_count(h, "calls", 6);
    assert_count(h, "failed", 1);
    assert_num(h, "failure_rate", 1.0 / 6.0);
    assert_num(h, "exact_fraction", 1.0);
    assert_block(&h["call_ms"], 6, 9.833, [6.0, 28.0, 28.0, 28.0], 28.0);
    assert_block(&h["processing_ms"], 6, 6.833, [3.0, 25.0, 25.0, 25.0], 25.0);
    assert_block(&h["request_leg_ms"], 6, 1.5, [1.5, 2.0, 2.0, 2.0], 2.0);
    assert_block(&h["response_leg_ms"], 6, 1.5, [1.0, 2.0, 2.0, 2.0], 2.0);
    assert_block(&h["propagation_ms"], 6, 3.0, [3.0, 4.0, 4.0, 4.0], 4.0);
    assert_eq!(h["slowest_request"], "req-07");
    assert_eq!(h["failed_request"], "req-07");

    // The hand-off: a client_send with no client_recv.
    let h = hop(r, "orders", "mailer");
    assert_eq!(h["virtual"], false);
    assert_count(h, "calls", 5);
    assert_count(h, "failed", 0);
    assert_num(h, "failure_rate", 0.0);
    assert_num(h, "exact_fraction", 0.0);
    assert_null(h, "call_ms");
    assert_block(&h["processing_ms"], 5, 13.4, [13.0, 16.0, 16.0, 16.0], 16.0);
    assert_block(&h["request_leg_ms"], 5, 9.8, [11.0, 12.0, 12.0, 12.0], 12.0);
    assert_null(h, "response_leg_ms");
    assert_block(&h["propagation_ms"], 5, 9.8, [11.0, 12.0, 12.0, 12.0], 12.0);
    assert_eq!(h["slowest_request"], "req-07");
    assert_null(h, "failed_request");

    // The retried hop: req-03 calls payments twice.
    let h = hop(r, "orders", "payments");
    assert_eq!(h["virtual"], false);
    assert_count(h, "calls", 7);
    assert_count(h, "failed", 2);
    assert_num(h, "failure_rate", 2.0 / 7.0);
    assert_num(h, "exact_fraction", 1.0);
    assert_block(&h["call_ms"], 7, 15.0, [13.0, 32.0, 32.0, 32.0], 32.0);
    assert_block(
        &h["processing_ms"],
        7,
        12.571,
        [10.0, 30.0, 30.0, 30.0],
        30.0,
    );
    assert_block(&h["request_leg_ms"], 7, 1.286, [1.0, 2.0, 2.0, 2.0], 2.0);
    assert_block(&h["response_leg_ms"], 7, 1.143, [1.0, 2.0, 2.0, 2.0], 2.0);
    assert_block(&h["propagation_ms"], 7, 2.429, [2.0, 3.0, 3.0, 3.0], 3.0);
    assert_eq!(h["slowest_request"], "req-05");
    assert_eq!(h["failed_request"], "req-03");

    // The database never logs: one-line calls with a duration.
    let h = hop(r, "orders", "postgres");
    assert_eq!(h["virtual"], true);
    assert_count(h, "calls", 9);
    assert_count(h, "failed", 0);
    assert_num(h, "failure_rate", 0.0);
    assert_num(h, "exact_fraction", 1.0);
    assert_block(&h["call_ms"], 9, 2.889, [3.0, 4.0, 4.0, 4.0], 4.0);
    for key in [
        "processing_ms",
        "request_leg_ms",
        "response_leg_ms",
        "propagation_ms",
    ] {
        assert_null(h, key);
    }
    // Call time 4 in req-04 and req-08: the tie goes to the smaller ID.
    assert_eq!(h["slowest_request"], "req-04");
    assert_null(h, "failed_request");
}

#[test]
fn testdata_chains() {
    let chains = &report()["chains"];
    // Children in skew-corrected start order; raw times would put inventory
    // after payments (and after the mailer in req-01, -04, -08).
    assert_eq!(
        column(chains, "chain"),
        [
            "gateway>orders>{inventory,payments,mailer}",
            "gateway>orders",
            "gateway>orders>{inventory,payments,payments,mailer}",
            "gateway>orders>{inventory,payments}",
        ]
    );

    let c = find(
        chains,
        "chain",
        "gateway>orders>{inventory,payments,mailer}",
    );
    assert_count(c, "requests", 4);
    assert_count(c, "failed", 1);
    assert_num(c, "failure_rate", 0.25);
    assert_block(&c["latency_ms"], 4, 38.0, [31.0, 53.0, 53.0, 53.0], 53.0);
    assert_eq!(c["slowest_request"], "req-07");
    assert_eq!(c["failed_request"], "req-07");

    let c = find(chains, "chain", "gateway>orders");
    assert_count(c, "requests", 3);
    assert_count(c, "failed", 0);
    assert_num(c, "failure_rate", 0.0);
    assert_block(&c["latency_ms"], 3, 9.0, [9.0, 10.0, 10.0, 10.0], 10.0);
    assert_eq!(c["slowest_request"], "req-02");
    assert_null(c, "failed_request");

    let c = find(
        chains,
        "chain",
        "gateway>orders>{inventory,payments,payments,mailer}",
    );
    assert_count(c, "requests", 1);
    assert_count(c, "failed", 1);
    assert_num(c, "failure_rate", 1.0);
    assert_const_block(&c["latency_ms"], 1, 41.0);
    assert_eq!(c["slowest_request"], "req-03");
    assert_eq!(c["failed_request"], "req-03");

    let c = find(chains, "chain", "gateway>orders>{inventory,payments}");
    assert_count(c, "requests", 1);
    assert_count(c, "failed", 1);
    assert_num(c, "failure_rate", 1.0);
    assert_const_block(&c["latency_ms"], 1, 50.0);
    assert_eq!(c["slowest_request"], "req-05");
    assert_eq!(c["failed_request"], "req-05");
}

#[test]
fn testdata_skew() {
    let skew = &report()["skew"];
    let pairs = skew["pairs"]
        .as_array()
        .unwrap_or_else(|| panic!("no skew pairs in {skew}"));
    let want = [
        ("gateway", "orders", 9, 0.0, false),
        ("orders", "inventory", 6, 40.0, true),
        ("orders", "payments", 7, 0.0, false),
    ];
    assert_eq!(pairs.len(), want.len(), "skew pairs: {}", skew["pairs"]);
    for (pair, (from, to, hops, offset, applied)) in pairs.iter().zip(want) {
        assert_eq!(pair["from"], from, "{pair}");
        assert_eq!(pair["to"], to, "{pair}");
        assert_count(pair, "hops", hops);
        assert_num(pair, "offset_ms", offset);
        assert_eq!(pair["applied"], applied, "{pair}");
    }
    assert_count(skew, "adjusted_hops", 6);
    assert_count(skew, "negative_legs", 0);
}
