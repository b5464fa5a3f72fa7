//! Real third-party logs (`../shared/realdata`, see its README): loghub
//! OpenStack, DeepTraLog (SkyWalking `SW_CTX`), Nezha (TrainTicket and
//! OnlineBoutique pod logs, rebuilt here into the container-log files they
//! came from), Istio/Envoy access logs and Zipkin span exports.
//!
//! Every figure asserted below was derived independently of hopscope, by the
//! Python scripts in `/work/scratch/realdata-check/` (openstack.py,
//! deeptralog.py, dtl_rules.py, dtl_times.py, nezha_check.py, envoy.py),
//! which read the raw files and the span/trace CSVs with their own parsers
//! and re-derive SPEC §2's visit and parent rules. Where a figure can be
//! checked against ground truth at test time (the span CSVs), the test reads
//! that CSV itself.
//!
//! Each test prints "skipped: ../shared not found" and passes when the data
//! is not there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::*;

/// `../shared/realdata`, or None (after saying so) when it is absent.
fn realdata() -> Option<PathBuf> {
    let dir = shared_dir().join("realdata");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipped: ../shared not found");
        None
    }
}

macro_rules! realdata_or_skip {
    () => {
        match realdata() {
            Some(dir) => dir,
            None => return,
        }
    };
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Asserts a run ended normally (no signal, no panic) with `code`.
fn assert_exit(out: &std::process::Output, code: i32) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic:\n{stderr}");
    assert_eq!(out.status.code(), Some(code), "stderr:\n{stderr}");
}

/// `hopscope traces <args>`, asserting exit 0; one value per request.
fn traces(args: &[&str]) -> Vec<Value> {
    let mut full = vec!["traces"];
    full.extend_from_slice(args);
    let out = run(&full);
    assert_exit(&out, 0);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The trace of `id` among `all`.
fn trace<'a>(all: &'a [Value], id: &str) -> &'a Value {
    all.iter()
        .find(|t| t["request_id"] == id)
        .unwrap_or_else(|| panic!("no trace {id}"))
}

/// The services of a trace's logged (non-virtual) visits.
fn trace_services(t: &Value) -> BTreeSet<String> {
    t["visits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["virtual"] == false)
        .map(|v| v["service"].as_str().unwrap().to_string())
        .collect()
}

/// How many traces touch N logged services, by N.
fn service_count_histogram(all: &[Value]) -> BTreeMap<usize, usize> {
    let mut h = BTreeMap::new();
    for t in all {
        *h.entry(trace_services(t).len()).or_default() += 1;
    }
    h
}

/// The non-zero skip counts of a report.
fn skipped(report: &Value) -> BTreeMap<String, u64> {
    report["input"]["skipped"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, n)| n.as_u64() != Some(0))
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .collect()
}

/// (service, visits, failed) of every service row.
fn service_rows(report: &Value) -> Vec<(String, u64, u64)> {
    report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["service"].as_str().unwrap().to_string(),
                r["visits"].as_u64().unwrap(),
                r["failed"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// (chain, requests) of every chain row, in report order.
fn chain_rows(report: &Value) -> Vec<(String, u64)> {
    report["chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["chain"].as_str().unwrap().to_string(),
                c["requests"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn owned(rows: &[(&str, u64, u64)]) -> Vec<(String, u64, u64)> {
    rows.iter()
        .map(|(a, b, c)| (a.to_string(), *b, *c))
        .collect()
}

fn owned2(rows: &[(&str, u64)]) -> Vec<(String, u64)> {
    rows.iter().map(|(a, b)| (a.to_string(), *b)).collect()
}

fn warning_codes(report: &Value) -> Vec<String> {
    report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap().to_string())
        .collect()
}

fn assert_ms(v: &Value, want: f64, what: &str) {
    let got = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!((got - want).abs() < 1e-9, "{what}: got {got}, want {want}");
}

// ---------------------------------------------------------------------------
// loghub OpenStack

fn openstack_log(rd: &Path) -> PathBuf {
    rd.join("loghub/OpenStack/OpenStack_2k.log")
}

/// 2000 lines, 155 with `[-]` (no request), 938 request IDs of which 43
/// cross nova-api → nova-compute (the 21 creates and 22 deletes); the
/// openstack preset is detected without being asked for.
#[test]
fn openstack_counts_services_and_chains() {
    let rd = realdata_or_skip!();
    let r = report_json(&[s(&openstack_log(&rd))]);
    assert_eq!(r["input"]["lines"], 2000);
    assert_eq!(r["input"]["records"], 1845);
    assert_eq!(
        skipped(&r),
        BTreeMap::from([("no_request_id".to_string(), 155)])
    );
    // Sorted, zone-less times read as UTC.
    assert_eq!(r["input"]["first_ts"], "2017-05-16T00:00:00.008000000Z");
    assert_eq!(r["input"]["last_ts"], "2017-05-16T00:14:47.687000000Z");
    let q = &r["requests"];
    assert_eq!(q["total"], 938);
    assert_eq!(q["complete"], 938);
    // Levels are INFO/WARNING only, wsgi statuses 200/202/204/404.
    assert_eq!(q["failed"], 0);
    assert_eq!(q["root_failed"], 0);
    // Visits per service = request IDs the service logs under (one wsgi
    // line per API request, no events): 928 / 46 / 7.
    assert_eq!(
        service_rows(&r),
        owned(&[
            ("nova-api", 928, 0),
            ("nova-compute", 46, 0),
            ("nova-scheduler", 7, 0),
        ])
    );
    assert_eq!(hop(&r, "nova-api", "nova-compute")["calls"], 43);
    assert_eq!(
        chain_rows(&r),
        owned2(&[
            ("nova-api", 885),
            ("nova-api>nova-compute", 43),
            ("nova-scheduler", 7),
            ("nova-compute", 3),
        ])
    );
    let all = traces(&[s(&openstack_log(&rd))]);
    assert_eq!(all.len(), 938);
    assert_eq!(
        service_count_histogram(&all),
        BTreeMap::from([(1, 895), (2, 43)])
    );
}

/// `--preset openstack` reads the file exactly as auto-detection does.
#[test]
fn openstack_explicit_preset_matches_detection() {
    let rd = realdata_or_skip!();
    let path = openstack_log(&rd);
    let auto = report_json(&[s(&path)]);
    let forced = report_json(&[s(&path), "--preset", "openstack"]);
    for key in ["input", "requests", "services", "hops", "chains"] {
        assert_eq!(auto[key], forced[key], "{key}");
    }
}

/// A create request: the nova-api wsgi line (`status: 202 ... time:
/// 0.6686139`) is the root, timed by its duration (start = line time −
/// 668.6139 ms); nova-compute keeps working ~20 s after the 202, a hand-off
/// (rule 3) whose request leg is compute's first line − the API's end.
#[test]
fn openstack_async_create_and_delete_chains() {
    let rd = realdata_or_skip!();
    let all = traces(&[s(&openstack_log(&rd))]);
    // (id, latency, compute start offset, compute processing, leg)
    let cases = [
        (
            "req-6a763803-4838-49c7-814e-eaefbaddee9d",
            668.614,
            972.614,
            20702.0,
            304.0,
        ),
        (
            "req-c53a921a-16c7-422e-8c9d-c922a720d047",
            253.438,
            290.438,
            1509.0,
            37.0,
        ),
    ];
    for (id, latency, offset, processing, leg) in cases {
        let t = trace(&all, id);
        assert_eq!(t["chain"], "nova-api>nova-compute", "{id}");
        assert_eq!(t["complete"], true);
        assert_eq!(t["failed"], false);
        assert_ms(&t["latency_ms"], latency, "latency");
        let v = t["visits"].as_array().unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0]["service"], "nova-api");
        assert_eq!(v[0]["exact"], true);
        assert_eq!(v[1]["service"], "nova-compute");
        assert_eq!(v[1]["parent"], 0);
        assert_ms(&v[1]["start_offset_ms"], offset, "compute start offset");
        assert_ms(&v[1]["processing_ms"], processing, "compute processing");
        assert_ms(&v[1]["request_leg_ms"], leg, "hand-off leg");
        assert!(v[1]["response_leg_ms"].is_null(), "{}", v[1]);
    }
}

#[test]
fn openstack_show_takes_a_unique_prefix() {
    let rd = realdata_or_skip!();
    let out = run(&["show", "req-6a763803", s(&openstack_log(&rd))]);
    assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("req-6a763803-4838-49c7-814e-eaefbaddee9d"),
        "{text}"
    );
    assert!(text.contains("nova-compute"), "{text}");
}

// ---------------------------------------------------------------------------
// DeepTraLog (SkyWalking SW_CTX, local time UTC+8)

struct DeepTraLogCase {
    dir: &'static str,
    lines: u64,
    records: u64,
    no_request_id: u64,
    traces: u64,
    /// Traces by number of services.
    histogram: &'static [(usize, usize)],
    failed: u64,
    services: &'static [(&'static str, u64, u64)],
    chains: &'static [(&'static str, u64)],
    first_ts: &'static str,
    last_ts: &'static str,
    /// Failed traces whose span CSV has an `IsError` span; failed traces
    /// missing from the span CSV.
    failed_with_is_error: usize,
    failed_not_in_csv: usize,
}

const DTL: &str = "deeptralog/TraceLogData";

const DEEPTRALOG: [DeepTraLogCase; 4] = [
    DeepTraLogCase {
        dir: "F05.zip/F05-01",
        lines: 2036,
        records: 2036,
        no_request_id: 0,
        traces: 333,
        histogram: &[(4, 333)],
        failed: 333,
        services: &[
            ("ts-basic-service", 333, 0),
            ("ts-station-service", 333, 0),
            ("ts-ticketinfo-service", 333, 0),
            ("ts-travel-service", 333, 333),
        ],
        // By SPEC §2 rules 2/3 on the logged times (dtl_rules.py): the
        // callees log one line each, and in 112 traces their lines are
        // not nested in time (station logs ~50 min later), so they hang
        // off the travel visit.
        chains: &[
            (
                "ts-travel-service>ts-ticketinfo-service>ts-basic-service>ts-station-service",
                221,
            ),
            (
                "ts-travel-service>{ts-ticketinfo-service,ts-basic-service,ts-station-service}",
                112,
            ),
        ],
        first_ts: "2021-08-07T09:46:41.138000000Z",
        last_ts: "2021-08-07T12:05:08.644000000Z",
        failed_with_is_error: 333,
        failed_not_in_csv: 0,
    },
    DeepTraLogCase {
        dir: "F05.zip/F05-05",
        lines: 859,
        records: 859,
        no_request_id: 0,
        traces: 315,
        histogram: &[(1, 200), (2, 115)],
        failed: 315,
        services: &[
            ("ts-admin-basic-info-service", 315, 315),
            ("ts-price-service", 115, 0),
        ],
        chains: &[
            ("ts-admin-basic-info-service", 200),
            ("ts-admin-basic-info-service>ts-price-service", 115),
        ],
        first_ts: "2021-08-07T13:23:08.063000000Z",
        last_ts: "2021-08-07T14:20:08.952000000Z",
        failed_with_is_error: 315,
        failed_not_in_csv: 0,
    },
    DeepTraLogCase {
        dir: "F08.zip/F08-04",
        lines: 533,
        records: 402,
        // Startup lines with trace `N/A`.
        no_request_id: 131,
        traces: 200,
        histogram: &[(1, 200)],
        failed: 200,
        services: &[("ts-admin-basic-info-service", 200, 200)],
        chains: &[("ts-admin-basic-info-service", 200)],
        first_ts: "2021-07-30T06:11:07.231000000Z",
        last_ts: "2021-07-30T06:16:31.922000000Z",
        failed_with_is_error: 199,
        failed_not_in_csv: 1,
    },
    DeepTraLogCase {
        dir: "F08.zip/F08-05",
        lines: 3250,
        records: 3250,
        no_request_id: 0,
        traces: 750,
        histogram: &[(2, 750)],
        failed: 250,
        services: &[
            ("ts-inside-payment-service", 250, 250),
            ("ts-order-other-service", 250, 0),
            ("ts-order-service", 500, 0),
            ("ts-station-service", 500, 0),
        ],
        chains: &[
            ("ts-inside-payment-service>ts-order-service", 250),
            ("ts-order-other-service>ts-station-service", 250),
            ("ts-order-service>ts-station-service", 250),
        ],
        first_ts: "2021-07-30T02:47:44.365000000Z",
        last_ts: "2021-07-30T02:54:30.714000000Z",
        failed_with_is_error: 250,
        failed_not_in_csv: 0,
    },
];

/// The raw log file of a DeepTraLog case (its one `*.log`).
fn dtl_log(rd: &Path, case: &str) -> PathBuf {
    let dir = rd.join(DTL).join(case);
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    assert_eq!(logs.len(), 1, "{dir:?}");
    logs.pop().unwrap()
}

/// One row of a DeepTraLog span CSV.
#[derive(Clone, Debug)]
struct SwSpan {
    start: i64,
    end: i64,
    entry: bool,
    service: String,
    span_id: String,
    trace_id: String,
    parent: String,
    is_error: bool,
}

impl SwSpan {
    /// `<segment>.<index>` → segment.
    fn segment(&self) -> &str {
        self.span_id.rsplit_once('.').unwrap().0
    }
}

/// Every span of every span CSV of a case, by trace ID, each span once.
fn dtl_spans(rd: &Path, case: &str) -> BTreeMap<String, Vec<SwSpan>> {
    let dir = rd.join(DTL).join(case);
    let mut out: BTreeMap<String, Vec<SwSpan>> = BTreeMap::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    for f in files {
        let mut rdr = csv::Reader::from_path(&f).unwrap();
        let h = rdr.headers().unwrap().clone();
        let col = |name: &str| h.iter().position(|c| c == name).unwrap();
        let (st, en, ty, sv, sp, tr, pa, er) = (
            col("StartTime"),
            col("EndTime"),
            col("SpanType"),
            col("Service"),
            col("SpanId"),
            col("TraceId"),
            col("ParentSpan"),
            col("IsError"),
        );
        for rec in rdr.records() {
            let rec = rec.unwrap();
            let span = SwSpan {
                start: rec[st].parse().unwrap(),
                end: rec[en].parse().unwrap(),
                entry: &rec[ty] == "Entry",
                service: rec[sv].to_string(),
                span_id: rec[sp].to_string(),
                trace_id: rec[tr].to_string(),
                parent: rec[pa].to_string(),
                is_error: &rec[er] == "True",
            };
            // F08-05's ERROR and SUCCESS CSVs repeat some spans.
            let spans = out.entry(span.trace_id.clone()).or_default();
            if !spans.iter().any(|x| x.span_id == span.span_id) {
                spans.push(span);
            }
        }
    }
    out
}

/// Per case: lines, records, trace IDs, traces per service count, failed
/// traces (an ERROR level), visits per service (one per (trace, segment)),
/// chains and the time range once `--tz +08:00` is applied.
#[test]
fn deeptralog_counts_per_case() {
    let rd = realdata_or_skip!();
    for c in &DEEPTRALOG {
        let log = dtl_log(&rd, c.dir);
        let r = report_json(&[s(&log), "--tz", "+08:00"]);
        let what = c.dir;
        assert_eq!(r["input"]["lines"], c.lines, "{what}");
        assert_eq!(r["input"]["records"], c.records, "{what}");
        let mut want_skips = BTreeMap::new();
        if c.no_request_id > 0 {
            want_skips.insert("no_request_id".to_string(), c.no_request_id);
        }
        assert_eq!(skipped(&r), want_skips, "{what}");
        assert_eq!(r["requests"]["total"], c.traces, "{what}");
        assert_eq!(r["requests"]["complete"], c.traces, "{what}");
        assert_eq!(r["requests"]["failed"], c.failed, "{what}");
        assert_eq!(r["requests"]["root_failed"], c.failed, "{what}");
        assert_eq!(service_rows(&r), owned(c.services), "{what}");
        assert_eq!(chain_rows(&r), owned2(c.chains), "{what}");
        assert_eq!(r["input"]["first_ts"], c.first_ts, "{what}");
        assert_eq!(r["input"]["last_ts"], c.last_ts, "{what}");
        // The file name's date is not a service: every line names its own.
        assert!(
            !warning_codes(&r).contains(&"service_names_look_like_dates".to_string()),
            "{what}: {}",
            r["warnings"]
        );
        let all = traces(&[s(&log), "--tz", "+08:00"]);
        assert_eq!(all.len() as u64, c.traces, "{what}");
        let want: BTreeMap<usize, usize> = c.histogram.iter().copied().collect();
        assert_eq!(service_count_histogram(&all), want, "{what}");
    }
}

/// Without `--tz` the zone-less times are read as UTC: 8 h late.
#[test]
fn deeptralog_without_tz_is_eight_hours_off() {
    let rd = realdata_or_skip!();
    let r = report_json(&[s(&dtl_log(&rd, "F05.zip/F05-01"))]);
    assert_eq!(r["input"]["first_ts"], "2021-08-07T17:46:41.138000000Z");
}

/// Failed requests (an ERROR line) against the span CSVs' `IsError`: every
/// failed trace that the CSV holds has an error span, and no CSV error trace
/// is missed. F08-04 has one log trace the CSV lacks.
#[test]
fn deeptralog_failures_match_span_is_error() {
    let rd = realdata_or_skip!();
    for c in &DEEPTRALOG {
        let log = dtl_log(&rd, c.dir);
        let spans = dtl_spans(&rd, c.dir);
        let all = traces(&[s(&log), "--tz", "+08:00"]);
        let failed: BTreeSet<&str> = all
            .iter()
            .filter(|t| t["failed"] == true)
            .map(|t| t["request_id"].as_str().unwrap())
            .collect();
        let logged: BTreeSet<&str> = all
            .iter()
            .map(|t| t["request_id"].as_str().unwrap())
            .collect();
        let csv_errors: BTreeSet<&str> = spans
            .iter()
            .filter(|(id, sp)| logged.contains(id.as_str()) && sp.iter().any(|x| x.is_error))
            .map(|(id, _)| id.as_str())
            .collect();
        let with_error = failed.intersection(&csv_errors).count();
        let not_in_csv = failed.iter().filter(|id| !spans.contains_key(**id)).count();
        assert_eq!(with_error, c.failed_with_is_error, "{}", c.dir);
        assert_eq!(not_in_csv, c.failed_not_in_csv, "{}", c.dir);
        assert_eq!(with_error + not_in_csv, failed.len(), "{}", c.dir);
        assert!(csv_errors.is_subset(&failed), "{}", c.dir);
    }
}

/// With `--tz +08:00` every trace's start (its root visit's first line, the
/// segment being the visit's span) lies inside that segment's Entry span
/// in the CSV, which is in epoch ms UTC: the zone is applied right.
#[test]
fn deeptralog_root_visits_lie_inside_their_entry_spans() {
    let rd = realdata_or_skip!();
    for c in &DEEPTRALOG {
        let log = dtl_log(&rd, c.dir);
        let spans = dtl_spans(&rd, c.dir);
        let all = traces(&[s(&log), "--tz", "+08:00"]);
        let mut checked = 0;
        for t in &all {
            let id = t["request_id"].as_str().unwrap();
            let root = &t["visits"][0];
            assert!(root["parent"].is_null());
            let segment = root["span"].as_str().unwrap();
            let Some(entry) = spans
                .get(id)
                .and_then(|sp| sp.iter().find(|x| x.entry && x.segment() == segment))
            else {
                continue;
            };
            assert_eq!(root["service"], entry.service.as_str(), "{id}");
            let start = chrono::DateTime::parse_from_rfc3339(t["start"].as_str().unwrap())
                .unwrap()
                .timestamp_millis();
            assert!(
                entry.start <= start && start <= entry.end,
                "{id}: start {start} outside [{}, {}]",
                entry.start,
                entry.end
            );
            checked += 1;
        }
        assert!(
            checked >= 100,
            "{}: only {checked} roots found in the CSV",
            c.dir
        );
    }
}

/// The chain a span tree gives when the services that never log are
/// dropped (their children move up): siblings by start, ties by text.
fn span_chain(
    segments: &BTreeMap<String, (String, i64)>,
    children: &BTreeMap<String, Vec<String>>,
    node: &str,
    logs: &BTreeSet<String>,
) -> Vec<(i64, String)> {
    let kids: Vec<(i64, String)> = children
        .get(node)
        .map(|ks| {
            ks.iter()
                .flat_map(|k| span_chain(segments, children, k, logs))
                .collect()
        })
        .unwrap_or_default();
    let (service, start) = &segments[node];
    if !logs.contains(service) {
        return kids;
    }
    let mut kids = kids;
    kids.sort();
    let text = match kids.len() {
        0 => service.clone(),
        1 => format!("{service}>{}", kids[0].1),
        _ => format!(
            "{service}>{{{}}}",
            kids.iter()
                .map(|k| k.1.as_str())
                .collect::<Vec<_>>()
                .join(",")
        ),
    };
    vec![(*start, text)]
}

/// Per trace, the chain of its span tree (services that never log
/// dropped), when the CSV holds a single root.
fn span_chains(
    spans: &BTreeMap<String, Vec<SwSpan>>,
    logs: &BTreeSet<String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (id, sp) in spans {
        let mut segments: BTreeMap<String, (String, i64)> = BTreeMap::new();
        for x in sp {
            let e = segments
                .entry(x.segment().to_string())
                .or_insert((x.service.clone(), x.start));
            e.1 = e.1.min(x.start);
        }
        let mut children: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut roots = Vec::new();
        for x in sp.iter().filter(|x| x.entry) {
            let parent_segment = x.parent.rsplit_once('.').map(|p| p.0);
            match parent_segment {
                Some(p) if x.parent != "-1" && segments.contains_key(p) => children
                    .entry(p.to_string())
                    .or_default()
                    .push(x.segment().to_string()),
                _ => roots.push(x.segment().to_string()),
            }
        }
        if let [root] = roots.as_slice()
            && let [(_, chain)] = span_chain(&segments, &children, root, logs).as_slice()
        {
            out.insert(id.clone(), chain.clone());
        }
    }
    out
}

/// F08-05: the span CSVs (ERROR and SUCCESS) hold every trace whole, so
/// each trace's chain can be compared with its span tree; ts-payment-service
/// is in the tree but never logs, so it drops out.
#[test]
fn deeptralog_f08_05_chains_match_span_trees() {
    let rd = realdata_or_skip!();
    let case = "F08.zip/F08-05";
    let all = traces(&[s(&dtl_log(&rd, case)), "--tz", "+08:00"]);
    let logs: BTreeSet<String> = all.iter().flat_map(trace_services).collect();
    let truth = span_chains(&dtl_spans(&rd, case), &logs);
    let mut compared = 0;
    for t in &all {
        let id = t["request_id"].as_str().unwrap();
        let want = truth
            .get(id)
            .unwrap_or_else(|| panic!("{id} has no single-root span tree"));
        assert_eq!(t["chain"].as_str().unwrap(), want, "{id}");
        compared += 1;
    }
    assert_eq!(compared, 750);
}

/// F05-01: for the 69 traces whose ERROR span CSV holds all four
/// segments, the span tree is travel>ticketinfo>basic>station, but the
/// logs give one line per callee, so rule 2 cannot nest them: hopscope
/// (like the independent re-derivation) hangs all three off travel. Same
/// services, same root, same order; only the nesting is lost.
#[test]
fn deeptralog_f05_01_point_visits_flatten_the_span_tree() {
    let rd = realdata_or_skip!();
    let case = "F05.zip/F05-01";
    let all = traces(&[s(&dtl_log(&rd, case)), "--tz", "+08:00"]);
    let logs: BTreeSet<String> = all.iter().flat_map(trace_services).collect();
    let truth = span_chains(&dtl_spans(&rd, case), &logs);
    let full = "ts-travel-service>ts-ticketinfo-service>ts-basic-service>ts-station-service";
    let flat = "ts-travel-service>{ts-ticketinfo-service,ts-basic-service,ts-station-service}";
    let whole: Vec<&String> = truth
        .iter()
        .filter(|(_, c)| c.as_str() == full)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(whole.len(), 69);
    for id in whole {
        assert_eq!(trace(&all, id)["chain"], flat, "{id}");
    }
}

// ---------------------------------------------------------------------------
// Nezha (container logs rebuilt from the CSV exports)

/// A deterministic 64-hex container ID for a pod's container.
fn container_id(pod: &str, container: &str) -> String {
    use std::hash::{Hash, Hasher};
    (0..4u8)
        .map(|salt| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (salt, pod, container).hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect()
}

/// Rebuilds the `/var/log/containers` files a Nezha log CSV was exported
/// from, under `root`: one `<pod>_default_<container>-<64 hex>.log` per
/// (PodName, Container), one line per CSV row holding the `Log` column (a
/// Docker json-file record) verbatim, sorted by the record's own `time` as
/// the runtime wrote them (ties keep CSV order). Returns the directory and
/// the number of files.
fn rebuild_container_logs(csv_path: &Path, root: &Path) -> (PathBuf, usize) {
    let dir = root.join("var/log/containers");
    std::fs::create_dir_all(&dir).unwrap();
    let mut rdr = csv::Reader::from_path(csv_path).unwrap();
    let h = rdr.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let (pod, container, log) = (col("PodName"), col("Container"), col("Log"));
    // (pod, container) → (envelope time, CSV row, line).
    type Rows = Vec<(i64, usize, String)>;
    let mut files: BTreeMap<(String, String), Rows> = BTreeMap::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.unwrap();
        let line = rec[log].to_string();
        let v: Value = serde_json::from_str(&line).unwrap();
        let time = chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap())
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap();
        files
            .entry((rec[pod].to_string(), rec[container].to_string()))
            .or_default()
            .push((time, i, line));
    }
    let n = files.len();
    for ((pod, container), mut rows) in files {
        rows.sort();
        let id = container_id(&pod, &container);
        let mut body = String::new();
        for (_, _, line) in rows {
            body.push_str(&line);
            body.push('\n');
        }
        std::fs::write(
            dir.join(format!("{pod}_default_{container}-{id}.log")),
            body,
        )
        .unwrap();
    }
    (dir, n)
}

/// The service of a Nezha pod name: `-<rs hash>-<pod hash>` removed (the
/// README's rule, written here independently of hopscope's).
fn pod_service(pod: &str) -> String {
    let mut parts: Vec<&str> = pod.split('-').collect();
    parts.truncate(parts.len() - 2);
    parts.join("-")
}

/// Services per trace ID in a Nezha trace CSV (ground truth).
fn nezha_trace_services(path: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let h = rdr.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let (tr, pod) = (col("TraceID"), col("PodName"));
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        out.entry(rec[tr].to_string())
            .or_default()
            .insert(pod_service(&rec[pod]));
    }
    out
}

struct NezhaCase {
    log: &'static str,
    trace: &'static str,
    files: usize,
    rows: u64,
    traces: u64,
    multi: usize,
    histogram: &'static [(usize, usize)],
    failed: &'static [&'static str],
    /// (service, visits = distinct (TraceID, SpanID), failed visits).
    services: &'static [(&'static str, u64, u64)],
    first_ts: &'static str,
    last_ts: &'static str,
    /// Traces whose logged services equal the trace CSV's services that
    /// log anywhere in the minute.
    same_services: usize,
}

const TT_0843: NezhaCase = NezhaCase {
    log: "nezha/rca_data/2023-01-29/log/08_43_log.csv",
    trace: "nezha/rca_data/2023-01-29/trace/08_43_trace.csv",
    files: 26,
    rows: 2435,
    traces: 53,
    multi: 53,
    histogram: &[(2, 9), (3, 6), (5, 2), (9, 31), (14, 1), (15, 3), (16, 1)],
    failed: &[
        "d3c3b9529c479f2778b233d0e3c10910",
        "ffc8ca7e4c8f06c75142c880d5595d96",
    ],
    services: &[
        ("ts-assurance-service", 3, 0),
        ("ts-auth-service", 7, 0),
        ("ts-basic-service", 41, 0),
        ("ts-config-service", 120, 0),
        ("ts-contacts-service", 5, 0),
        ("ts-delivery-service", 1, 0),
        ("ts-execute-service", 3, 0),
        ("ts-food-service", 3, 2),
        ("ts-inside-payment-service", 5, 0),
        ("ts-order-other-service", 47, 0),
        ("ts-order-service", 110, 0),
        ("ts-payment-service", 5, 0),
        ("ts-preserve-other-service", 2, 0),
        ("ts-preserve-service", 3, 0),
        ("ts-price-service", 41, 0),
        ("ts-route-service", 43, 0),
        ("ts-seat-service", 125, 0),
        ("ts-security-service", 5, 0),
        ("ts-station-food-service", 2, 0),
        ("ts-station-service", 51, 0),
        ("ts-train-food-service", 2, 0),
        ("ts-train-service", 41, 0),
        ("ts-travel-service", 23, 0),
        ("ts-travel2-service", 15, 0),
        ("ts-user-service", 5, 0),
        ("ts-verification-code-service", 7, 0),
    ],
    // The TT lines' own `HH:MM:SS.mmm` has no date: the envelope's time.
    first_ts: "2023-01-29T08:42:09.487160534Z",
    last_ts: "2023-01-29T08:43:08.576287546Z",
    same_services: 53,
};

const TT_0850: NezhaCase = NezhaCase {
    log: "nezha/construct_data/2023-01-29/log/08_50_log.csv",
    trace: "nezha/construct_data/2023-01-29/trace/08_50_trace.csv",
    files: 22,
    rows: 2489,
    traces: 71,
    multi: 69,
    histogram: &[
        (1, 2),
        (2, 12),
        (3, 7),
        (4, 1),
        (5, 8),
        (6, 8),
        (9, 27),
        (13, 6),
    ],
    failed: &[
        "17f4aaaf1ecdad6d18bc99819cd4a5ca",
        "29c0e175d50fb7583f28e6ab9f0b217b",
        "346a035e97f62640e78d6fc0edadd36c",
        "3a0a9381698b727b2a02ebae4de36ba1",
        "3c2ac0d7e3e7750f934d3ce204fbe18b",
        "454856e525e3830b1cc32c5b2598c1c8",
        "49a51828322183eb20bfe4ace3060000",
        "59be0f4821f453085b7d5ff70d507b1d",
        "5b155a7927ad57401c2b45c08dec0406",
        "61a7cd08f7f140ddadd2df08c3178bb1",
        "6692b7a1fec6daa8f9845c1a96d48962",
        "71f4a5f780ea0bb76939848c043c6cca",
        "780c858bbd59acce771a979e5a60653a",
        "817251ad4a2727c057b9edb01354460c",
        "81e37af00eccb7465b3019baac6508da",
        "898fbabdd1894463575af052c4cd7982",
        "8c2a9ee95eb135c0de9d5e0d041be4bc",
        "950a9e7e1989eda57078d48616555bc3",
        "ac1b4270518348d5001a366c4c4a0fc2",
        "b4d9817b44406034b45c569aeed7bfea",
        "be48c074addf2752fc35fb62bd6aab07",
        "ca1c9ccbf2fae00f00a5fde1987700ac",
        "e09186a3e8231432162df5d8cc0bffa0",
        "ea73384530195ac394aeb23753da0727",
        "ebb5b803fa10eabb1b8d3e784d5f5d21",
        "f1c3dd7a644ef185a57e6a1023b6a91d",
        "fd5bdad43868ec1df52631c163e02408",
    ],
    services: &[
        ("ts-auth-service", 8, 0),
        ("ts-basic-service", 47, 0),
        ("ts-config-service", 110, 0),
        ("ts-contacts-service", 6, 0),
        ("ts-execute-service", 8, 4),
        ("ts-food-service", 8, 8),
        ("ts-inside-payment-service", 3, 0),
        ("ts-order-other-service", 27, 0),
        ("ts-order-service", 119, 0),
        ("ts-payment-service", 2, 0),
        ("ts-preserve-service", 14, 7),
        ("ts-price-service", 47, 0),
        ("ts-route-service", 55, 0),
        ("ts-seat-service", 110, 0),
        ("ts-security-service", 7, 0),
        ("ts-station-food-service", 8, 0),
        ("ts-station-service", 59, 0),
        ("ts-train-food-service", 8, 0),
        ("ts-train-service", 47, 0),
        ("ts-travel-service", 36, 0),
        ("ts-travel2-service", 23, 8),
        ("ts-verification-code-service", 8, 0),
    ],
    first_ts: "2023-01-29T08:48:16.546346267Z",
    last_ts: "2023-01-29T08:51:04.144125304Z",
    same_services: 69,
};

const OB_0519: NezhaCase = NezhaCase {
    log: "nezha/rca_data/2022-08-22/log/05_19_log.csv",
    trace: "nezha/rca_data/2022-08-22/trace/05_19_trace.csv",
    files: 10,
    rows: 7260,
    traces: 147,
    multi: 136,
    histogram: &[(1, 11), (3, 15), (5, 19), (6, 98), (9, 4)],
    failed: &[],
    services: &[
        ("adservice", 195, 0),
        ("cartservice", 140, 0),
        ("checkoutservice", 51, 0),
        ("currencyservice", 1546, 0),
        ("emailservice", 4, 0),
        ("frontend", 147, 0),
        ("paymentservice", 4, 0),
        ("productcatalogservice", 1021, 0),
        ("recommendationservice", 102, 0),
        ("shippingservice", 144, 0),
    ],
    // The envelope's time: the nezha preset reads no date from the JSON
    // lines' own `timestamp`, which the CSV's Timestamp column holds.
    first_ts: "2022-08-22T05:18:16.154772363Z",
    last_ts: "2022-08-22T05:19:46.539821999Z",
    same_services: 147,
};

/// Rebuilds a case's container logs and returns (tempdir guard, dir).
fn nezha_dir(rd: &Path, c: &NezhaCase) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, n) = rebuild_container_logs(&rd.join(c.log), tmp.path());
    assert_eq!(n, c.files, "{}", c.log);
    (tmp, dir)
}

fn nezha_case(c: &NezhaCase) {
    let rd = realdata_or_skip!();
    let (_tmp, dir) = nezha_dir(&rd, c);
    let what = c.log;
    let r = report_json(&[s(&dir)]);
    assert_eq!(r["input"]["files"], c.files, "{what}");
    assert_eq!(r["input"]["lines"], c.rows, "{what}");
    assert_eq!(r["input"]["records"], c.rows, "{what}");
    assert!(skipped(&r).is_empty(), "{what}: {}", r["input"]);
    assert_eq!(r["input"]["first_ts"], c.first_ts, "{what}");
    assert_eq!(r["input"]["last_ts"], c.last_ts, "{what}");
    assert_eq!(r["requests"]["total"], c.traces, "{what}");
    assert_eq!(r["requests"]["complete"], c.traces, "{what}");
    assert_eq!(r["requests"]["failed"], c.failed.len(), "{what}");
    // Services named by the pod name without its hash suffixes.
    assert_eq!(service_rows(&r), owned(c.services), "{what}");

    let all = traces(&[s(&dir)]);
    assert_eq!(all.len() as u64, c.traces, "{what}");
    let multi = all.iter().filter(|t| trace_services(t).len() > 1).count();
    assert_eq!(multi, c.multi, "{what}");
    let want: BTreeMap<usize, usize> = c.histogram.iter().copied().collect();
    assert_eq!(service_count_histogram(&all), want, "{what}");
    let failed: Vec<&str> = all
        .iter()
        .filter(|t| t["failed"] == true)
        .map(|t| t["request_id"].as_str().unwrap())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(failed, c.failed, "{what}");

    // Against the trace CSV: per trace, the services hopscope saw are the
    // trace's span services that log at all (ts-gateway-service never
    // does).
    let truth = nezha_trace_services(&rd.join(c.trace));
    let logging: BTreeSet<String> = c.services.iter().map(|s| s.0.to_string()).collect();
    let same = all
        .iter()
        .filter(|t| {
            let id = t["request_id"].as_str().unwrap();
            let want: BTreeSet<String> = truth[id].intersection(&logging).cloned().collect();
            trace_services(t) == want
        })
        .count();
    assert_eq!(same, c.same_services, "{what}");
}

/// TrainTicket, the minute of the `return` fault in ts-contacts-service:
/// 26 services, 53 trace IDs, all in ≥ 2 services; the two ERROR lines are
/// ts-food-service's.
#[test]
fn nezha_train_ticket_fault_minute() {
    nezha_case(&TT_0843);
}

/// TrainTicket fault-free baseline: 71 IDs, 69 multi-service.
#[test]
fn nezha_train_ticket_baseline() {
    nezha_case(&TT_0850);
}

/// OnlineBoutique, 1 min after cpu_contention in currencyservice: 147 IDs,
/// 136 multi-service, 98 of them in 6 services.
#[test]
fn nezha_online_boutique() {
    nezha_case(&OB_0519);
}

/// A few TrainTicket chains, as SPEC §2 rules 2/3 derive them from the
/// logged times (re-derived in nezha_check.py; all 53 agree).
#[test]
fn nezha_train_ticket_chains() {
    let rd = realdata_or_skip!();
    let (_tmp, dir) = nezha_dir(&rd, &TT_0843);
    let all = traces(&[s(&dir)]);
    let food = "ts-food-service>{ts-train-food-service,ts-travel-service>ts-route-service,\
                ts-station-food-service}";
    for id in TT_0843.failed {
        let t = trace(&all, id);
        assert_eq!(t["chain"], food, "{id}");
        assert_eq!(t["origins"], serde_json::json!(["ts-food-service"]), "{id}");
        assert_eq!(t["root_failed"], true, "{id}");
    }
    for id in [
        "c325154a43abc44f088edbccf77519fc",
        "dad811a6f14846847bf2f220daa5e573",
    ] {
        assert_eq!(
            trace(&all, id)["chain"],
            "ts-auth-service>ts-verification-code-service"
        );
    }
    let sixteen = trace(&all, "5d0bbaa5c74d96842aabc39c7b39d067");
    assert_eq!(trace_services(sixteen).len(), 16);
    assert_eq!(
        sixteen["chain"],
        "ts-preserve-other-service>{ts-security-service>{ts-order-service,ts-order-other-service},\
         ts-contacts-service,ts-travel2-service>{ts-basic-service>{ts-station-service,\
         ts-station-service,ts-train-service,ts-route-service,ts-price-service},\
         ts-seat-service>{ts-order-other-service,ts-config-service},\
         ts-seat-service>{ts-order-other-service,ts-config-service}},ts-basic-service>{\
         ts-station-service,ts-station-service,ts-train-service,ts-route-service,\
         ts-price-service},ts-seat-service>ts-order-other-service,ts-order-other-service,\
         ts-food-service,ts-delivery-service>ts-user-service}"
    );
}

/// Every OnlineBoutique trace's root span (trace CSV, `ParentID` `root`) is
/// frontend's. In 4 traces hopscope makes productcatalogservice the root:
/// frontend's visit is timed by its access line (`http.resp.took_ms`, an
/// integer that Go truncates: 7 for the 8.036 ms span) as [ss − 7 ms, ss],
/// which starts *after* the same visit's own first lines ("Request
/// started"); a productcatalogservice line logged in between then
/// contains frontend's start (rule 2), and frontend becomes its child.
#[test]
#[ignore = "bug: a span visit timed by server_send − duration starts after its own earlier \
            records (SPEC §2 'Start = ... its server_send minus a duration'), so with \
            integer took_ms 4 Nezha OB traces (70f788fd…, 44034891…, acd93afe…, \
            aebb94a2…) get productcatalogservice>frontend instead of frontend>…"]
fn nezha_online_boutique_root_is_frontend() {
    let rd = realdata_or_skip!();
    let (_tmp, dir) = nezha_dir(&rd, &OB_0519);
    let all = traces(&[s(&dir)]);
    let wrong: Vec<(&str, &str)> = all
        .iter()
        .filter(|t| t["visits"][0]["service"] != "frontend")
        .map(|t| {
            (
                t["request_id"].as_str().unwrap(),
                t["visits"][0]["service"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(wrong.is_empty(), "roots other than frontend: {wrong:?}");
}

// ---------------------------------------------------------------------------
// Istio / Envoy access logs

fn istio(rd: &Path, name: &str) -> PathBuf {
    rd.join("istio-envoy-access-logs").join(name)
}

/// The default Istio text format, detected as the envoy preset: one line
/// per request as the sidecar saw it, stamped at its start, `%DURATION%` in
/// ms; an `outbound|…||<host>` cluster makes the line a call to <host>.
#[test]
fn envoy_text_access_log() {
    let rd = realdata_or_skip!();
    let path = istio(&rd, "test-access-logs.log");
    let r = report_json(&[s(&path)]);
    assert_eq!(r["input"]["lines"], 8);
    assert_eq!(r["input"]["records"], 8);
    assert_eq!(r["requests"]["total"], 6);
    // Every status is 200.
    assert_eq!(r["requests"]["failed"], 0);
    assert_eq!(
        report_json(&[s(&path), "--preset", "envoy"])["requests"],
        r["requests"]
    );

    let all = traces(&[s(&path)]);
    assert_eq!(all.len(), 6);
    // Inbound lines: latency = DURATION; start = START_TIME.
    for (id, start, ms) in [
        (
            "785918d6-06b6-9312-bf77-6d9bd968dc21",
            "2022-07-20T09:52:24.955000000Z",
            2.0,
        ),
        (
            "96bf54e0-6dac-9c1f-8090-b4acd6f779ef",
            "2022-07-20T09:52:25.642000000Z",
            3.0,
        ),
        (
            "f5dd9a93-895b-9a0d-a830-44694ed10c4c",
            "2022-08-22T10:51:35.926000000Z",
            30.0,
        ),
    ] {
        let t = trace(&all, id);
        assert_eq!(t["start"], start, "{id}");
        assert_ms(&t["latency_ms"], ms, id);
        assert_eq!(t["visits"].as_array().unwrap().len(), 1, "{id}");
        assert_eq!(t["failed"], false);
    }
    // productpage inbound (35 ms from .169) calls reviews (12 ms from .188).
    let t = trace(&all, "00bcf1d7-12c4-93b9-b36a-bc0faac8e428");
    assert_eq!(t["start"], "2022-08-22T13:08:23.169000000Z");
    assert_ms(&t["latency_ms"], 35.0, "productpage latency");
    let v = t["visits"].as_array().unwrap();
    assert_eq!(v.len(), 2);
    assert_ms(&v[0]["self_ms"], 23.0, "productpage self");
    assert_eq!(v[1]["service"], "reviews");
    assert_eq!(v[1]["virtual"], true);
    assert_ms(&v[1]["start_offset_ms"], 19.0, "reviews offset");
    assert_ms(&v[1]["call_ms"], 12.0, "reviews call");
    // An outbound line alone: a 3 ms call to details.
    let t = trace(&all, "d3bbd98a-ab12-9e96-b539-a419c2c8091f");
    assert_eq!(t["visits"][1]["service"], "details");
    assert_ms(&t["visits"][1]["call_ms"], 3.0, "details call");
    // The edited IPv6 duplicate: two identical 1 ms lines, two visits.
    let t = trace(&all, "72f12c1b-8a44-9a62-b28e-2296da5b1118");
    assert_eq!(t["visits"].as_array().unwrap().len(), 2);
    assert_ms(&t["latency_ms"], 1.0, "ratings latency");
    assert_eq!(hop(&r, "test-access-logs", "reviews")["calls"], 1);
    assert_eq!(hop(&r, "test-access-logs", "details")["calls"], 1);
}

/// Istio's JSON format keeps the time in `start_time`, which is not a
/// default timestamp name: by default no line is usable (2 no_timestamp,
/// 1 with request_id `-`), which is a warning, not an error.
/// `--ts-field start_time` reads it, and the name anchors the line at its
/// start (SPEC §1), as Envoy means it.
#[test]
fn envoy_json_access_log_needs_ts_field() {
    let rd = realdata_or_skip!();
    let path = istio(&rd, "test-access-json-logs.log");
    let r = report_json(&[s(&path)]);
    assert_eq!(r["input"]["lines"], 3);
    assert_eq!(r["input"]["records"], 0);
    assert_eq!(
        skipped(&r),
        BTreeMap::from([
            ("no_request_id".to_string(), 1),
            ("no_timestamp".to_string(), 2)
        ])
    );
    assert!(warning_codes(&r).contains(&"no_records".to_string()));

    let r = report_json(&[s(&path), "--ts-field", "start_time"]);
    assert_eq!(r["input"]["records"], 2);
    assert_eq!(r["requests"]["total"], 1);
    let all = traces(&[s(&path), "--ts-field", "start_time"]);
    let t = trace(&all, "9fcc7101-13bd-9753-98d6-820806088d9d");
    assert_eq!(t["start"], "2022-09-08T12:51:05.656000000Z");
    assert_ms(&t["latency_ms"], 15.0, "latency");
    assert_eq!(t["failed"], false);
}

// ---------------------------------------------------------------------------
// Zipkin span exports (SPEC §7: planned; today they are not logs)

/// Pretty-printed Zipkin v2 JSON arrays are no line format: every non-blank
/// line is `unknown_format`, nothing crashes, and the run exits 0 with a
/// `no_records` warning and a `span_export` hint (SPEC §7: "detect them and
/// refuse with a hint"), both naming the file.
#[test]
fn zipkin_span_exports_are_skipped_not_crashed() {
    let rd = realdata_or_skip!();
    let dir = rd.join("zipkin-lens-testdata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 10);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text
            .strip_suffix('\n')
            .unwrap_or(&text)
            .split('\n')
            .collect();
        let blank = lines.iter().filter(|l| l.trim().is_empty()).count();
        let out = run(&["report", s(&f), "-o", "json"]);
        assert_exit(&out, 0);
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        let what = f.display();
        assert_eq!(r["input"]["lines"], lines.len(), "{what}");
        assert_eq!(r["input"]["blank"], blank, "{what}");
        assert_eq!(r["input"]["records"], 0, "{what}");
        assert_eq!(
            skipped(&r),
            BTreeMap::from([("unknown_format".to_string(), (lines.len() - blank) as u64)]),
            "{what}"
        );
        for code in ["no_records", "span_export"] {
            let w = r["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|w| w["code"] == code)
                .unwrap_or_else(|| panic!("{what}: no {code} warning in {}", r["warnings"]));
            assert!(
                w["message"].as_str().unwrap().contains(s(&f)),
                "{what}: {w}"
            );
        }
    }
}

/// The same spans one per line (NDJSON, as Zipkin's Kafka and storage dumps
/// write them; here skew.json's 4 spans): each line is a JSON object with
/// `traceId` and `timestamp`, so today they are read as 4 log records
/// (service from the file name, µs `duration`s taken as ms: 65 s visits)
/// with no hint, instead of the `span_export` refusal the array form gets.
#[test]
fn zipkin_spans_one_per_line_get_the_hint() {
    let rd = realdata_or_skip!();
    let spans: Vec<Value> =
        serde_json::from_slice(&std::fs::read(rd.join("zipkin-lens-testdata/skew.json")).unwrap())
            .unwrap();
    assert_eq!(spans.len(), 4);
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("spans.json");
    let body: String = spans.iter().map(|s| format!("{s}\n")).collect();
    std::fs::write(&p, body).unwrap();
    let r = report_json(&[s(&p)]);
    assert_eq!(r["input"]["records"], 0, "{}", r["input"]);
    assert!(
        warning_codes(&r).contains(&"span_export".to_string()),
        "{}",
        r["warnings"]
    );
}
