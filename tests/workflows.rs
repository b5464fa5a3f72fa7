//! The workflows of "critical path, traces for jq, show one request, check
//! in CI": `check` against a saved baseline and against budgets, every
//! `traces` filter, `show` of one request (a snapshot), and the critical path
//! of traces. Figures come from `testdata/EXPECTED.md` (the sample shop) and
//! `testdata/regressed/CHANGES.md` (the same shop after a bad deploy: the
//! mailer 10 ms slower, inventory failing on 3 requests instead of 1).
//!
//! `check` skips groups with fewer than `--min-count` samples (default 30);
//! the sample has at most 9 per group, so the baseline tests pass
//! `--min-count 1`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Output;

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use serde_json::Value;

use crate::util::*;

fn logs() -> String {
    path_str(repo_dir().join("testdata/logs"))
}

fn regressed() -> String {
    path_str(repo_dir().join("testdata/regressed/logs"))
}

fn path_str(p: PathBuf) -> String {
    p.to_str().expect("UTF-8 path").to_string()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("killed by a signal")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs hopscope with `args` and asserts its exit code.
fn run_expect(args: &[&str], want: i32) -> Output {
    let out = run(args);
    assert_eq!(
        code(&out),
        want,
        "hopscope {args:?}\nstdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

// ---------------------------------------------------------------------------
// check
// ---------------------------------------------------------------------------

/// `hopscope report testdata/logs -o json`, saved to a temporary file (as CI
/// saves the main branch's report).
fn baseline() -> tempfile::NamedTempFile {
    let out = run_expect(&["report", &logs(), "-o", "json"], 0);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &out.stdout).unwrap();
    file
}

/// Runs `hopscope check <args> -o json`, asserts the exit code and parses
/// the `hopscope.check/v1` document.
fn check_json(args: &[&str], want_code: i32) -> Value {
    let mut full = vec!["check"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-o", "json"]);
    let out = run_expect(&full, want_code);
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("check -o json is not JSON ({e}):\n{}", stdout(&out)));
    assert_eq!(doc["schema"], "hopscope.check/v1");
    doc
}

/// The names of the checks whose verdict is not `pass`.
fn not_passed(doc: &Value) -> BTreeSet<String> {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] != "pass")
        .map(|c| c["check"].as_str().unwrap().to_string())
        .collect()
}

/// The check named `name`.
fn check<'a>(doc: &'a Value, name: &str) -> &'a Value {
    find(&doc["checks"], "check", name)
}

fn summary(doc: &Value) -> [u64; 5] {
    let s = &doc["summary"];
    ["checks", "passed", "failed", "no_data", "skipped"].map(|k| {
        s[k].as_u64()
            .unwrap_or_else(|| panic!("summary.{k} missing in {s}"))
    })
}

fn assert_near(got: &Value, want: f64, what: &str) {
    let got = got
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {got}"));
    assert!((got - want).abs() <= 1e-9, "{what}: got {got}, want {want}");
}

/// The ten checks that fail on testdata/regressed against testdata/logs,
/// worked out in testdata/regressed/CHANGES.md ("What `check` finds").
const REGRESSIONS: [&str; 10] = [
    "chain:gateway>orders>{inventory,payments,mailer}.failure_rate",
    "failure_rate",
    "inventory.failure_rate",
    "mailer.p50",
    "mailer.p90",
    "mailer.p99",
    "orders>inventory.failure_rate",
    "orders>mailer.p50",
    "orders>mailer.p90",
    "orders>mailer.p99",
];

#[test]
fn check_names_exactly_the_slowed_hop_and_the_failing_service() {
    let base = baseline();
    let base = base.path().to_str().unwrap();
    let doc = check_json(&[&regressed(), "--baseline", base, "--min-count", "1"], 1);
    assert_eq!(doc["passed"], false);
    let want: BTreeSet<String> = REGRESSIONS.iter().map(|s| s.to_string()).collect();
    assert_eq!(not_passed(&doc), want);
    // 4 request + 21 service + 36 hop + 16 chain checks (CHANGES.md).
    assert_eq!(summary(&doc), [77, 67, 10, 0, 0]);
    assert_eq!(doc["min_count"], 1);
    assert_eq!(doc["skipped_low_count"], serde_json::json!([]));
    for c in doc["checks"].as_array().unwrap() {
        if c["verdict"] != "pass" {
            assert_eq!(c["verdict"], "fail", "{c}");
            assert_eq!(c["kind"], "regression", "{c}");
        }
    }

    // The slowed hop: the mailer's processing 13 → 23 ms (p50), 16 → 26 ms
    // (p90, p99); the limit is baseline + 10 %.
    for name in ["mailer", "orders>mailer"] {
        for (q, base, seen) in [
            ("p50", 13.0, 23.0),
            ("p90", 16.0, 26.0),
            ("p99", 16.0, 26.0),
        ] {
            let c = check(&doc, &format!("{name}.{q}"));
            assert_eq!(c["block"], "processing_ms", "{c}");
            assert_near(&c["baseline"], base, &format!("{name}.{q} baseline"));
            assert_near(&c["observed"], seen, &format!("{name}.{q} observed"));
            let limit = c["limit"].as_f64().unwrap();
            assert!((limit - base * 1.1).abs() < 1e-6, "{c}");
        }
    }
    // Its propagation did not move (only the mailer's `sent` moved).
    for q in ["p50", "p90", "p99"] {
        let c = check(&doc, &format!("orders>mailer.propagation.{q}"));
        assert_eq!(c["verdict"], "pass", "{c}");
        assert_eq!(c["baseline"], c["observed"], "{c}");
    }
    // The failing service: 1/6 → 3/6; the limit is baseline + 1 point.
    for name in ["inventory", "orders>inventory"] {
        let c = check(&doc, &format!("{name}.failure_rate"));
        assert_near(&c["baseline"], 1.0 / 6.0, name);
        assert_near(&c["observed"], 0.5, name);
        assert!((c["limit"].as_f64().unwrap() - (1.0 / 6.0 + 0.01)).abs() < 1e-6);
    }
    // ... seen by the requests (3/10 → 5/10) and the checkout chain (1/4 → 3/4).
    assert_near(&check(&doc, "failure_rate")["observed"], 0.5, "requests");
    let chain = check(
        &doc,
        "chain:gateway>orders>{inventory,payments,mailer}.failure_rate",
    );
    assert_near(&chain["baseline"], 0.25, "chain baseline");
    assert_near(&chain["observed"], 0.75, "chain observed");
    // No latency of a request moved: the mail is a hand-off.
    for q in ["p50", "p90", "p99"] {
        let c = check(&doc, q);
        assert_eq!(c["baseline"], c["observed"], "{c}");
    }
}

#[test]
fn check_with_the_default_min_count_compares_nothing_on_the_sample() {
    // Why the tests pass --min-count 1: every group has fewer than 30 samples.
    let base = baseline();
    let base = base.path().to_str().unwrap();
    let doc = check_json(&[&regressed(), "--baseline", base], 0);
    assert_eq!(summary(&doc), [0, 0, 0, 0, 0]);
    assert_eq!(doc["skipped_low_count"].as_array().unwrap().len(), 17);
    let low = find(&doc["skipped_low_count"], "subject", "mailer");
    assert_eq!(
        (low["count"].as_u64(), low["baseline_count"].as_u64()),
        (Some(5), Some(5))
    );
}

#[test]
fn the_nothing_checked_warning_points_at_min_count() {
    let base = baseline();
    let base = base.path().to_str().unwrap();
    let doc = check_json(&[&regressed(), "--baseline", base], 0);
    let warning = find(&doc["warnings"], "code", "nothing_checked");
    let message = warning["message"].as_str().unwrap();
    assert!(message.contains("--min-count"), "{message}");
}

#[test]
fn check_of_the_sample_against_its_own_baseline_passes() {
    let base = baseline();
    let base = base.path().to_str().unwrap();
    let doc = check_json(&[&logs(), "--baseline", base, "--min-count", "1"], 0);
    assert_eq!(doc["passed"], true);
    assert_eq!(summary(&doc), [77, 77, 0, 0, 0]);
    assert!(not_passed(&doc).is_empty());
    for c in doc["checks"].as_array().unwrap() {
        assert_eq!(c["baseline"], c["observed"], "{c}");
    }
    // The table says so too.
    let out = run_expect(
        &["check", &logs(), "--baseline", base, "--min-count", "1"],
        0,
    );
    assert!(stdout(&out).contains("check passed"), "{}", stdout(&out));
}

/// Budgets on testdata/logs with the observed value worked out by hand from
/// EXPECTED.md (ms, a fraction or a count). Quantiles stay clear of their
/// limit (the SPEC allows them 1 %); max, mean, count and rates are exact,
/// so those are also tested on the boundary.
const PASSING_BUDGETS: [(&str, f64); 14] = [
    ("orders.p99<50ms", 49.0),                     // orders processing p99
    ("gateway>orders.propagation.p95<3.5ms", 3.0), // {2 ×5, 3 ×4}
    ("failure_rate<31%", 0.3),                     // 3 of 10 requests
    ("orders>inventory.call.max<=28ms", 28.0),     // req-07: 83 − 55
    ("chain:gateway>orders.p99<300ms", 10.0),      // {10, 8, 9}
    ("inventory.count>=6", 6.0),                   // six visits
    ("payments.self.p50<10.5ms", 10.0),            // sorted 4, 9, 10, 10, …
    ("mailer.mean<13.5ms", 13.4),                  // 67 / 5
    ("orders>postgres.p90<4.5ms", 4.0),            // virtual: the call time
    ("(client)>gateway.max<=53ms", 53.0),          // req-07
    ("p50<32ms", 31.0),                            // requests' latency
    ("orders.failure_rate<12%", 1.0 / 9.0),        // req-05
    ("orders>mailer.request_leg.max<=12ms", 12.0), // req-01, req-07
    ("mailer.critical.max<=0ms", 0.0),             // hand-offs off the path
];

const FAILING_BUDGETS: [(&str, f64); 10] = [
    ("orders.p99<48ms", 49.0),
    ("failure_rate<=25%", 0.3),
    ("orders>inventory.call.max<28ms", 28.0),
    ("inventory.failure_rate<10%", 1.0 / 6.0),
    ("orders>mailer.propagation.p50<10ms", 11.0),
    (
        "chain:gateway>orders>{inventory,payments,mailer}.p50<30ms",
        31.0,
    ),
    ("inventory.count>6", 6.0),
    ("p99<0.05s", 53.0),
    ("gateway.critical.max<2ms", 2.0),
    ("postgres.failure_rate>0%", 0.0),
];

fn budget_args(budgets: &[&str]) -> Vec<String> {
    budgets
        .iter()
        .flat_map(|b| ["--budget".to_string(), b.to_string()])
        .collect()
}

#[test]
fn budgets_computed_by_hand_pass_and_fail() {
    let logs = logs();
    let all: Vec<&str> = PASSING_BUDGETS
        .iter()
        .chain(FAILING_BUDGETS.iter())
        .map(|(b, _)| *b)
        .collect();
    let mut args = vec![logs.as_str()];
    let extra = budget_args(&all);
    args.extend(extra.iter().map(String::as_str));
    let doc = check_json(&args, 1);
    assert_eq!(summary(&doc), [24, 14, 10, 0, 0]);
    for (budget, observed) in PASSING_BUDGETS {
        let c = check(&doc, budget);
        assert_eq!(c["verdict"], "pass", "{c}");
        assert_eq!(c["kind"], "budget", "{c}");
        assert_near(&c["observed"], observed, budget);
    }
    for (budget, observed) in FAILING_BUDGETS {
        let c = check(&doc, budget);
        assert_eq!(c["verdict"], "fail", "{c}");
        assert_near(&c["observed"], observed, budget);
    }

    // The exit code: 0 when every budget holds, 1 as soon as one breaks.
    let passing: Vec<&str> = PASSING_BUDGETS.iter().map(|(b, _)| *b).collect();
    let extra = budget_args(&passing);
    let mut args = vec!["check", logs.as_str()];
    args.extend(extra.iter().map(String::as_str));
    run_expect(&args, 0);
    for (budget, _) in FAILING_BUDGETS {
        let out = run_expect(
            &[
                "check",
                &logs,
                "--budget",
                "orders.p99<50ms",
                "--budget",
                budget,
            ],
            1,
        );
        assert!(stdout(&out).contains(budget), "{}", stdout(&out));
    }
}

#[test]
fn budgets_catch_the_regressed_set() {
    // CHANGES.md: three budgets hold on testdata/logs and break on
    // testdata/regressed; two hold on both (no latency moved).
    let flips = [
        "mailer.p90<20ms",
        "inventory.failure_rate<20%",
        "failure_rate<40%",
    ];
    let steady = ["p99<=53ms", "orders.p99<50ms"];
    let extra = budget_args(&[flips.as_slice(), steady.as_slice()].concat());
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let (logs, regressed) = (logs(), regressed());

    let before = check_json(&[&[logs.as_str()], extra.as_slice()].concat(), 0);
    assert!(not_passed(&before).is_empty());
    let after = check_json(&[&[regressed.as_str()], extra.as_slice()].concat(), 1);
    let want: BTreeSet<String> = flips.iter().map(|s| s.to_string()).collect();
    assert_eq!(not_passed(&after), want);
    assert_near(
        &check(&after, "mailer.p90<20ms")["observed"],
        26.0,
        "mailer p90",
    );
    assert_near(
        &check(&after, "inventory.failure_rate<20%")["observed"],
        0.5,
        "inventory",
    );
    assert_near(
        &check(&after, "failure_rate<40%")["observed"],
        0.5,
        "requests",
    );
}

/// Budgets that do not parse, and what the caret line says.
const INVALID_BUDGETS: [(&str, usize, &str); 4] = [
    // (budget, byte offset of the fault, part of the message)
    ("orders.p99<<250ms", 11, "expected a number"),
    ("orders.p99<25xs", 13, "time unit"),
    ("orders.p77<1ms", 7, "p77"),
    ("orders.p99", 10, "operator"),
];

#[test]
fn an_invalid_budget_is_a_usage_error_with_a_caret_line() {
    for (budget, _, message) in INVALID_BUDGETS {
        let out = run_expect(&["check", &logs(), "--budget", budget], 2);
        assert!(out.stdout.is_empty(), "{budget}: {}", stdout(&out));
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{budget}: two lines expected:\n{err}");
        assert!(lines[0].contains(budget), "{budget}:\n{err}");
        let caret = lines[1]
            .find('^')
            .unwrap_or_else(|| panic!("no caret:\n{err}"));
        assert!(
            lines[1][..caret].chars().all(|c| c == ' '),
            "only spaces before the caret:\n{err}"
        );
        assert!(lines[1][caret..].contains(message), "{budget}:\n{err}");
    }
}

#[test]
fn the_caret_sits_under_the_fault() {
    for (budget, offset, _) in INVALID_BUDGETS {
        let out = run_expect(&["check", &logs(), "--budget", budget], 2);
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().collect();
        let expr_at = lines[0].find(budget).unwrap();
        let caret = lines[1].find('^').unwrap();
        assert_eq!(caret, expr_at + offset, "{budget}:\n{err}");
    }
}

#[test]
fn allow_missing_skips_a_budget_on_an_unknown_service() {
    let logs = logs();
    let budgets = [
        "--budget",
        "billing.p99<10ms",
        "--budget",
        "orders.p99<50ms",
    ];
    let args: Vec<&str> = [&[logs.as_str()], budgets.as_slice()].concat();

    // Without --allow-missing a subject with no data fails the check.
    let doc = check_json(&args, 1);
    assert_eq!(summary(&doc), [2, 1, 0, 1, 0]);
    let billing = check(&doc, "billing.p99<10ms");
    assert_eq!(billing["verdict"], "no data");
    assert!(billing["observed"].is_null());
    assert!(billing["message"].as_str().unwrap().contains("billing"));

    // With it the budget is skipped and the run passes ...
    let args: Vec<&str> = [args.as_slice(), &["--allow-missing"]].concat();
    let doc = check_json(&args, 0);
    assert_eq!(summary(&doc), [2, 1, 0, 0, 1]);
    assert_eq!(check(&doc, "billing.p99<10ms")["verdict"], "skipped");
    assert_eq!(check(&doc, "orders.p99<50ms")["verdict"], "pass");

    // ... but a broken budget still fails it.
    let args: Vec<&str> = [args.as_slice(), &["--budget", "orders.p99<48ms"]].concat();
    check_json(&args, 1);
}

/// What a JUnit consumer sees.
#[derive(Debug, Default)]
struct Junit {
    testcases: usize,
    failures: usize,
    skipped: usize,
    failing: BTreeSet<String>,
    suites_tests: Option<String>,
    suites_failures: Option<String>,
}

fn attr(e: &BytesStart, name: &str) -> Option<String> {
    e.try_get_attribute(name)
        .expect("well-formed attributes")
        .map(|a| {
            a.normalized_value(XmlVersion::Implicit1_0)
                .expect("attribute value")
                .into_owned()
        })
}

fn parse_junit(xml: &str) -> Junit {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut junit = Junit::default();
    let mut testcase: Option<String> = None;
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("not XML at {}: {e}\n{xml}", reader.buffer_position()));
        let (e, empty) = match &event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) if e.name().as_ref() == "testcase" => {
                testcase = None;
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        match e.name().as_ref() {
            "testsuites" => {
                junit.suites_tests = attr(e, "tests");
                junit.suites_failures = attr(e, "failures");
            }
            "testcase" => {
                junit.testcases += 1;
                let name = attr(e, "name").expect("testcase name");
                testcase = if empty { None } else { Some(name) };
            }
            "failure" => {
                junit.failures += 1;
                let name = testcase.clone().expect("failure outside a testcase");
                junit.failing.insert(name);
            }
            "skipped" => junit.skipped += 1,
            _ => {}
        }
    }
    junit
}

#[test]
fn junit_output_parses_as_xml_with_one_testcase_per_check() {
    let base = baseline();
    let base = base.path().to_str().unwrap();
    let out = run_expect(
        &[
            "check",
            &regressed(),
            "--baseline",
            base,
            "--min-count",
            "1",
            "-o",
            "junit",
        ],
        1,
    );
    let junit = parse_junit(&stdout(&out));
    assert_eq!(
        (junit.testcases, junit.failures, junit.skipped),
        (77, 10, 0)
    );
    let want: BTreeSet<String> = REGRESSIONS.iter().map(|s| s.to_string()).collect();
    assert_eq!(junit.failing, want);
    assert_eq!(junit.suites_tests.as_deref(), Some("77"));
    assert_eq!(junit.suites_failures.as_deref(), Some("10"));

    let out = run_expect(
        &[
            "check",
            &logs(),
            "--baseline",
            base,
            "--min-count",
            "1",
            "-o",
            "junit",
        ],
        0,
    );
    let junit = parse_junit(&stdout(&out));
    assert_eq!((junit.testcases, junit.failures), (77, 0));

    // Budget names with `<` and `>` survive escaping; a missing subject
    // under --allow-missing is a skipped test case.
    let out = run_expect(
        &[
            "check",
            &logs(),
            "--budget",
            "gateway>orders.p99<1ms",
            "--budget",
            "billing.p99<1ms",
            "--allow-missing",
            "-o",
            "junit",
        ],
        1,
    );
    let junit = parse_junit(&stdout(&out));
    assert_eq!((junit.testcases, junit.failures, junit.skipped), (2, 1, 1));
    assert_eq!(
        junit.failing,
        BTreeSet::from(["gateway>orders.p99<1ms".to_string()])
    );
}

// ---------------------------------------------------------------------------
// traces
// ---------------------------------------------------------------------------

/// Runs `hopscope traces testdata/logs <args>`, asserts exit 0 and parses
/// every line as JSON.
fn traces_of(dir: &str, args: &[&str]) -> Vec<Value> {
    let mut full = vec!["traces", dir];
    full.extend_from_slice(args);
    let out = run_expect(&full, 0);
    let text = stdout(&out);
    assert!(text.is_empty() || text.ends_with('\n'), "{text}");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn traces(args: &[&str]) -> Vec<Value> {
    traces_of(&logs(), args)
}

fn ids(traces: &[Value]) -> Vec<&str> {
    traces
        .iter()
        .map(|t| t["request_id"].as_str().unwrap())
        .collect()
}

fn trace<'a>(traces: &'a [Value], id: &str) -> &'a Value {
    traces
        .iter()
        .find(|t| t["request_id"] == id)
        .unwrap_or_else(|| panic!("no trace {id}"))
}

const ALL_IDS: [&str; 10] = [
    "req-01", "req-02", "req-03", "req-04", "req-05", "req-06", "req-07", "req-08", "req-09",
    "req-10",
];

/// (request, root start in ms after 10:00:00, latency, chain) from
/// EXPECTED.md's timelines; req-10 is incomplete.
const TIMELINE: [(&str, u32, f64, &str); 9] = [
    (
        "req-01",
        0,
        31.0,
        "gateway>orders>{inventory,payments,mailer}",
    ),
    ("req-02", 8, 10.0, "gateway>orders"),
    (
        "req-03",
        15,
        41.0,
        "gateway>orders>{inventory,payments,payments,mailer}",
    ),
    (
        "req-04",
        27,
        37.0,
        "gateway>orders>{inventory,payments,mailer}",
    ),
    ("req-05", 36, 50.0, "gateway>orders>{inventory,payments}"),
    ("req-06", 44, 8.0, "gateway>orders"),
    (
        "req-07",
        52,
        53.0,
        "gateway>orders>{inventory,payments,mailer}",
    ),
    (
        "req-08",
        63,
        31.0,
        "gateway>orders>{inventory,payments,mailer}",
    ),
    ("req-09", 70, 9.0, "gateway>orders"),
];

const TRACE_FIELDS: [&str; 10] = [
    "request_id",
    "start",
    "latency_ms",
    "failed",
    "root_failed",
    "complete",
    "reasons",
    "chain",
    "origins",
    "visits",
];

const VISIT_FIELDS: [&str; 18] = [
    "id",
    "parent",
    "service",
    "span",
    "start_offset_ms",
    "call_ms",
    "processing_ms",
    "self_ms",
    "propagation_ms",
    "request_leg_ms",
    "response_leg_ms",
    "critical_ms",
    "critical_propagation_ms",
    "failed",
    "origin",
    "exact",
    "virtual",
    "skew_ms",
];

/// Asserts one trace has every SPEC §5 field with the right type, and that
/// its visits form a tree listed in start order.
fn assert_trace_shape(t: &Value) {
    for f in TRACE_FIELDS {
        assert!(t.get(f).is_some(), "{f} missing in {t}");
    }
    assert!(t["request_id"].is_string() && t["chain"].is_string(), "{t}");
    for f in ["failed", "root_failed", "complete"] {
        assert!(t[f].is_boolean(), "{f} in {t}");
    }
    assert!(t["latency_ms"].is_number(), "{t}");
    assert!(
        t["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .all(Value::is_string)
    );
    assert!(
        t["origins"]
            .as_array()
            .unwrap()
            .iter()
            .all(Value::is_string)
    );
    // UTC RFC 3339, 9 fraction digits, Z.
    let start = t["start"].as_str().unwrap();
    let (date, frac) = start.split_once('.').expect("a fraction");
    assert_eq!(date.len(), "2024-05-01T10:00:00".len(), "{start}");
    assert!(frac.len() == 10 && frac.ends_with('Z'), "{start}");
    assert!(frac[..9].bytes().all(|b| b.is_ascii_digit()), "{start}");

    let visits = t["visits"].as_array().unwrap();
    assert!(!visits.is_empty(), "{t}");
    let mut last_offset = f64::NEG_INFINITY;
    for (i, v) in visits.iter().enumerate() {
        for f in VISIT_FIELDS {
            assert!(v.get(f).is_some(), "{f} missing in visit {v}");
        }
        assert_eq!(v["id"].as_u64(), Some(i as u64), "ids are indexes: {t}");
        match v["parent"].as_u64() {
            None => {
                assert!(
                    v["parent"].is_null() && i == 0,
                    "only visit 0 is a root: {t}"
                );
            }
            Some(p) => assert!((p as usize) < visits.len() && p as usize != i, "{t}"),
        }
        for f in ["failed", "origin", "exact", "virtual"] {
            assert!(v[f].is_boolean(), "{f} in {v}");
        }
        for f in [
            "start_offset_ms",
            "critical_ms",
            "critical_propagation_ms",
            "skew_ms",
        ] {
            assert!(v[f].is_number(), "{f} in {v}");
        }
        let offset = v["start_offset_ms"].as_f64().unwrap();
        assert!(offset >= last_offset, "visits in start order: {t}");
        last_offset = offset;
    }
    assert_eq!(visits[0]["start_offset_ms"].as_f64(), Some(0.0), "{t}");
}

#[test]
fn traces_without_a_filter_list_every_request_in_start_order() {
    let all = traces(&[]);
    assert_eq!(ids(&all), ALL_IDS);
    for t in &all {
        assert_trace_shape(t);
    }
    for (id, start_ms, latency, chain) in TIMELINE {
        let t = trace(&all, id);
        assert_eq!(
            t["start"],
            format!("2024-05-01T10:00:00.{start_ms:03}000000Z"),
            "{id}"
        );
        assert_near(&t["latency_ms"], latency, id);
        assert_eq!(t["chain"], chain, "{id}");
        assert_eq!(t["complete"], true, "{id}");
        assert_eq!(t["reasons"], serde_json::json!([]), "{id}");
    }
    let req10 = trace(&all, "req-10");
    assert_eq!(req10["start"], "2024-05-01T10:00:00.126000000Z");
    assert_eq!(req10["complete"], false);
    assert_eq!(req10["reasons"], serde_json::json!(["open_visit"]));

    let failed: Vec<&str> = all
        .iter()
        .filter(|t| t["failed"] == true)
        .map(|t| t["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["req-03", "req-05", "req-07"]);
    let root_failed: Vec<&str> = all
        .iter()
        .filter(|t| t["root_failed"] == true)
        .map(|t| t["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(root_failed, ["req-05"]);
    for (id, origins) in [
        ("req-03", vec!["payments"]),
        ("req-05", vec!["payments"]),
        ("req-07", vec!["inventory"]),
        ("req-01", vec![]),
    ] {
        assert_eq!(
            trace(&all, id)["origins"],
            serde_json::json!(origins),
            "{id}"
        );
    }
}

#[test]
fn traces_failed() {
    let t = traces(&["--failed"]);
    assert_eq!(ids(&t), ["req-03", "req-05", "req-07"]);
    assert!(t.iter().all(|t| t["failed"] == true));
}

#[test]
fn traces_slowest() {
    // The two largest latencies (53 and 50), still written in start order.
    let t = traces(&["--slowest", "2"]);
    assert_eq!(ids(&t), ["req-05", "req-07"]);
    let t = traces(&["--slowest", "3"]);
    assert_eq!(ids(&t), ["req-03", "req-05", "req-07"]);
}

#[test]
fn traces_service() {
    // The five checkouts that queued a mail (req-05 failed before it).
    let t = traces(&["--service", "mailer"]);
    assert_eq!(ids(&t), ["req-01", "req-03", "req-04", "req-07", "req-08"]);
    for t in &t {
        let visits = t["visits"].as_array().unwrap();
        assert!(visits.iter().any(|v| v["service"] == "mailer"), "{t}");
    }
    // Filters combine: failed and through the mailer.
    let t = traces(&["--failed", "--service", "mailer"]);
    assert_eq!(ids(&t), ["req-03", "req-07"]);
}

#[test]
fn traces_min_latency() {
    let t = traces(&["--min-latency", "40ms"]);
    assert_eq!(ids(&t), ["req-03", "req-05", "req-07"]);
    // "At least": req-03 takes exactly 41 ms.
    let t = traces(&["--min-latency", "41ms"]);
    assert_eq!(ids(&t), ["req-03", "req-05", "req-07"]);
    let t = traces(&["--min-latency", "42ms"]);
    assert_eq!(ids(&t), ["req-05", "req-07"]);
}

#[test]
fn traces_chain_glob() {
    let cases: [(&str, &[&str]); 4] = [
        // The retried payment.
        ("*payments,payments*", &["req-03"]),
        // Braces are literal: every checkout that fanned out.
        (
            "gateway>orders>{*}",
            &["req-01", "req-03", "req-04", "req-05", "req-07", "req-08"],
        ),
        // Without a glob character the whole chain must match (req-10's
        // partial chain included).
        ("gateway>orders", &["req-02", "req-06", "req-09", "req-10"]),
        (
            "gateway>orders>{inventory,payments?mailer}",
            &["req-01", "req-04", "req-07", "req-08"],
        ),
    ];
    for (glob, want) in cases {
        assert_eq!(ids(&traces(&["--chain", glob])), want, "--chain {glob}");
    }
}

#[test]
fn traces_incomplete() {
    let t = traces(&["--incomplete"]);
    assert_eq!(ids(&t), ["req-10"]);
    assert_eq!(t[0]["complete"], false);
    assert_eq!(t[0]["reasons"], serde_json::json!(["open_visit"]));
    // orders' server_recv at 128 with nothing after it.
    let orders = &t[0]["visits"][1];
    assert_eq!(orders["service"], "orders");
    assert_eq!(orders["exact"], false);
}

/// One visit's figures: (service, parent, start offset, call, processing,
/// self, propagation, request leg, response leg, failed, origin, virtual,
/// skew). `None` is JSON null.
type VisitRow = (
    &'static str,
    Option<u64>,
    f64,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    bool,
    bool,
    bool,
    f64,
);

fn assert_opt(v: &Value, key: &str, want: Option<f64>) {
    match want {
        None => assert!(v[key].is_null(), "{key} should be null in {v}"),
        Some(w) => assert_near(&v[key], w, &format!("{key} of {v}")),
    }
}

#[test]
fn req_03_visits_match_the_timeline() {
    // EXPECTED.md, req-03 (root at 15 ms): inventory on the shared clock
    // [19.5, 23] (skew 40 ms corrected), payments A [26, 30] 503, retry B
    // [37, 47], postgres [49, 52], mailer hand-off [64, 77] after cs 53.
    let all = traces(&[]);
    let t = trace(&all, "req-03");
    assert_eq!(t["failed"], true);
    assert_eq!(t["root_failed"], false);
    assert_eq!(t["origins"], serde_json::json!(["payments"]));
    #[rustfmt::skip]
    let want: [VisitRow; 7] = [
        ("gateway",   None,    0.0,  None,       Some(41.0), Some(2.0),  None,      None,      None,      false, false, false, 0.0),
        ("orders",    Some(0), 2.0,  Some(39.0), Some(37.0), Some(10.0), Some(2.0), Some(1.0), Some(1.0), false, false, false, 0.0),
        ("inventory", Some(1), 4.5,  Some(6.0),  Some(3.5),  Some(3.5),  Some(2.5), Some(1.5), Some(1.0), false, false, false, 40.0),
        ("payments",  Some(1), 11.0, Some(6.0),  Some(4.0),  Some(4.0),  Some(2.0), Some(1.0), Some(1.0), true,  true,  false, 0.0),
        ("payments",  Some(1), 22.0, Some(12.0), Some(10.0), Some(10.0), Some(2.0), Some(1.0), Some(1.0), false, false, false, 0.0),
        ("postgres",  Some(1), 34.0, Some(3.0),  None,       None,       None,      None,      None,      false, false, true,  0.0),
        ("mailer",    Some(1), 49.0, None,       Some(13.0), Some(13.0), Some(11.0), Some(11.0), None,    false, false, false, 0.0),
    ];
    let visits = t["visits"].as_array().unwrap();
    assert_eq!(visits.len(), want.len(), "{t}");
    for (v, w) in visits.iter().zip(want) {
        let (
            service,
            parent,
            offset,
            call,
            proc,
            self_,
            prop,
            req,
            resp,
            failed,
            origin,
            virt,
            skew,
        ) = w;
        assert_eq!(v["service"], service, "{v}");
        assert_eq!(v["parent"].as_u64(), parent, "{v}");
        assert_near(&v["start_offset_ms"], offset, &format!("offset of {v}"));
        assert_opt(v, "call_ms", call);
        assert_opt(v, "processing_ms", proc);
        assert_opt(v, "self_ms", self_);
        assert_opt(v, "propagation_ms", prop);
        assert_opt(v, "request_leg_ms", req);
        assert_opt(v, "response_leg_ms", resp);
        assert_eq!(v["failed"], failed, "{v}");
        assert_eq!(v["origin"], origin, "{v}");
        assert_eq!(v["virtual"], virt, "{v}");
        assert_eq!(v["exact"], true, "{v}");
        assert_near(&v["skew_ms"], skew, &format!("skew of {v}"));
        assert!(v["span"].is_null(), "no span IDs in the sample: {v}");
    }

    // req-05: the failure climbs to the root; the origin is payments alone.
    let t = trace(&all, "req-05");
    assert_eq!(t["root_failed"], true);
    let failed: Vec<(&str, bool)> = t["visits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["failed"] == true)
        .map(|v| (v["service"].as_str().unwrap(), v["origin"] == true))
        .collect();
    assert_eq!(
        failed,
        [("gateway", false), ("orders", false), ("payments", true)]
    );
}

// ---------------------------------------------------------------------------
// critical path
// ---------------------------------------------------------------------------

/// Σ (critical_ms + critical_propagation_ms) over a trace's visits.
fn critical_sum(t: &Value) -> f64 {
    t["visits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            v["critical_ms"].as_f64().unwrap() + v["critical_propagation_ms"].as_f64().unwrap()
        })
        .sum()
}

#[test]
fn critical_path_charges_add_up_to_the_latency() {
    for dir in [logs(), regressed()] {
        let all = traces_of(&dir, &[]);
        assert_eq!(all.len(), 10);
        for t in &all {
            let latency = t["latency_ms"].as_f64().unwrap();
            let sum = critical_sum(t);
            assert!(
                (sum - latency).abs() <= 0.001,
                "{}: charges sum to {sum}, latency {latency}",
                t["request_id"]
            );
        }
    }

    let all = traces(&[]);
    // Fan-out with a retry (req-03): every visit but the mail is on the path.
    let t = trace(&all, "req-03");
    let charged: Vec<(&str, f64, f64)> = t["visits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["service"].as_str().unwrap(),
                v["critical_ms"].as_f64().unwrap(),
                v["critical_propagation_ms"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        charged,
        [
            ("gateway", 2.0, 0.0),
            ("orders", 10.0, 2.0),
            ("inventory", 3.5, 2.5),
            ("payments", 4.0, 2.0),
            ("payments", 10.0, 2.0),
            ("postgres", 3.0, 0.0),
            ("mailer", 0.0, 0.0),
        ]
    );

    // The hand-off (req-07): root [52, 105]; inventory's 25 ms timeout is on
    // the path; the mailer works [114, 130], after the root answered.
    let t = trace(&all, "req-07");
    assert_near(&t["latency_ms"], 53.0, "req-07 latency");
    let visits = t["visits"].as_array().unwrap();
    let mailer = find(&t["visits"], "service", "mailer");
    let end =
        mailer["start_offset_ms"].as_f64().unwrap() + mailer["processing_ms"].as_f64().unwrap();
    assert_near(&serde_json::json!(end), 78.0, "mailer end offset");
    assert!(end > 53.0);
    assert_eq!(mailer["critical_ms"].as_f64(), Some(0.0), "{mailer}");
    assert_eq!(
        mailer["critical_propagation_ms"].as_f64(),
        Some(0.0),
        "{mailer}"
    );
    let inventory = find(&t["visits"], "service", "inventory");
    assert_near(&inventory["critical_ms"], 25.0, "inventory critical");
    assert_near(&inventory["critical_propagation_ms"], 3.0, "inventory legs");
    assert_eq!(visits.len(), 6);

    // Every hand-off mailer visit of the sample ends after its root, so none
    // is ever charged; the report agrees (one 0 per visit).
    for t in &all {
        for v in t["visits"].as_array().unwrap() {
            if v["service"] == "mailer" {
                let end =
                    v["start_offset_ms"].as_f64().unwrap() + v["processing_ms"].as_f64().unwrap();
                assert!(end > t["latency_ms"].as_f64().unwrap(), "{t}");
                assert_eq!(v["critical_ms"].as_f64(), Some(0.0), "{t}");
            }
        }
    }
    let report = report_json(&[&logs()]);
    assert_const_block(&service(&report, "mailer")["critical_ms"], 5, 0.0);
}

#[test]
fn the_slower_mail_does_not_slow_any_request() {
    // CHANGES.md: the mailer is a hand-off, so +10 ms on it leaves every
    // latency as it was.
    let before = traces(&[]);
    let after = traces_of(&regressed(), &[]);
    let latencies = |ts: &[Value]| -> Vec<(String, f64)> {
        ts.iter()
            .map(|t| {
                (
                    t["request_id"].as_str().unwrap().to_string(),
                    t["latency_ms"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(latencies(&before), latencies(&after));
    // The two new inventory failures are the origins of req-04 and req-08.
    let failed: Vec<(&str, &Value)> = after
        .iter()
        .filter(|t| t["failed"] == true)
        .map(|t| (t["request_id"].as_str().unwrap(), &t["origins"]))
        .collect();
    let inv = serde_json::json!(["inventory"]);
    let pay = serde_json::json!(["payments"]);
    assert_eq!(
        failed,
        [
            ("req-03", &pay),
            ("req-04", &inv),
            ("req-05", &pay),
            ("req-07", &inv),
            ("req-08", &inv),
        ]
    );
}

// ---------------------------------------------------------------------------
// show
// ---------------------------------------------------------------------------

fn show(args: &[&str]) -> Output {
    let mut cmd = hopscope();
    cmd.arg("show").args(args).env("NO_COLOR", "1");
    cmd.output().unwrap()
}

#[test]
fn show_req_03_snapshot() {
    // Fan-out, a failed first payment (the origin), a retry, the corrected
    // 40 ms skew of inventory and the off-path mail. Trailing blanks are
    // trimmed so that editors cannot break the snapshot.
    let out = show(&["req-03", &logs(), "--width", "120"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains('\x1b'), "NO_COLOR: no escape sequences");
    for line in text.lines() {
        assert!(line.chars().count() <= 120, "wider than 120: {line:?}");
    }
    let shown: String = text
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("show_req_03_width_120", shown);
}

#[test]
fn show_writes_no_colour_to_a_pipe() {
    let out = hopscope()
        .args(["show", "req-05", &logs(), "--width", "120"])
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!out.stdout.contains(&0x1b), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("request req-05 "));
}

#[test]
fn show_takes_a_unique_prefix() {
    // `req-0` could be nine requests: exit 2, naming them.
    let out = show(&["req-0", &logs()]);
    assert_eq!(code(&out), 2);
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
    let err = stderr(&out);
    for id in &ALL_IDS[..9] {
        assert!(err.contains(id), "{id} not listed:\n{err}");
    }
    assert!(!err.contains("req-10"), "{err}");

    // An exact ID, and a prefix that only one ID has.
    for (arg, id) in [("req-07", "req-07"), ("req-1", "req-10")] {
        let out = show(&[arg, &logs(), "--width", "100"]);
        assert_eq!(code(&out), 0, "{arg}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(
            text.starts_with(&format!("request {id} ")),
            "{arg}:\n{text}"
        );
    }
}

#[test]
fn show_prefers_an_exact_id_over_longer_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api.log");
    std::fs::write(
        &file,
        "ts=2024-05-01T10:00:00.000Z request_id=abc event=sr\n\
         ts=2024-05-01T10:00:00.005Z request_id=abc event=ss status=200\n\
         ts=2024-05-01T10:00:00.010Z request_id=abcd event=sr\n\
         ts=2024-05-01T10:00:00.030Z request_id=abcd event=ss status=200\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let out = show(&["abc", file, "--width", "100"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("request abc "), "{}", stdout(&out));
    let out = show(&["ab", file]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("abcd"), "{}", stderr(&out));
}

#[test]
fn show_of_an_unknown_id_is_a_usage_error() {
    let out = show(&["nope", &logs()]);
    assert_eq!(code(&out), 2);
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
}

#[test]
fn show_fits_the_width_of_an_80_column_terminal() {
    let out = show(&["req-03", &logs(), "--width", "80"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for line in stdout(&out).lines() {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line:?}",
            line.chars().count()
        );
    }
}
