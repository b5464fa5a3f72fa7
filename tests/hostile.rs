//! Hostile input (SPEC §1 "A line that cannot be used is skipped and
//! counted", §6 "never a panic or a backtrace for bad input"): bad bytes,
//! absurd sizes and depths, wrong types, impossible times, odd file-system
//! entries, files that change while read, and terminal escapes. Every test
//! checks that the run ends normally (exit code, no signal, no "panicked")
//! and that the good lines around the bad ones still count as records.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::util::*;

fn write(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, body).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A usable JSON line: request `r<i>`, service `svc`.
fn good(i: usize) -> String {
    format!(
        "{{\"ts\":\"2024-05-01T10:00:{:02}.{:03}Z\",\"request_id\":\"r{i}\",\"service\":\"svc\"}}\n",
        i % 60,
        i % 1000
    )
}

/// Asserts the run ended by itself with `code`: no signal, no panic.
fn assert_clean(out: &Output, code: i32) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        None,
        "killed by a signal; stderr:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "panic:\n{stderr}");
    assert_eq!(out.status.code(), Some(code), "stderr:\n{stderr}");
}

/// `hopscope report <args> -o json`, asserting a clean exit with `code`.
fn report_code(args: &[&str], code: i32) -> (Value, String) {
    let mut full = vec!["report"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-o", "json"]);
    let out = run(&full);
    assert_clean(&out, code);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout[..out.stdout.len().min(2000)])
        )
    });
    (v, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn report(args: &[&str]) -> Value {
    report_code(args, 0).0
}

/// `input.lines` = records + blank + skipped (SPEC §4), and those figures.
fn assert_input(r: &Value, lines: u64, records: u64, skips: &[(&str, u64)]) {
    let i = &r["input"];
    assert_eq!(i["lines"], lines, "{i}");
    assert_eq!(i["records"], records, "{i}");
    let skipped = i["skipped"].as_object().unwrap();
    for (k, n) in skipped {
        let want = skips.iter().find(|(r, _)| r == k).map_or(0, |x| x.1);
        assert_eq!(n.as_u64(), Some(want), "{k} in {i}");
    }
    let total: u64 = skipped.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(
        i["lines"].as_u64().unwrap(),
        i["records"].as_u64().unwrap() + i["blank"].as_u64().unwrap() + total,
        "{i}"
    );
}

/// The request IDs of `hopscope traces <args>`, in output order.
fn trace_ids(args: &[&str]) -> Vec<String> {
    let mut full = vec!["traces"];
    full.extend_from_slice(args);
    let out = run(&full);
    assert_clean(&out, 0);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["request_id"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Runs the binary with stdout and stderr in files, killing it if it has
/// not finished after `limit` (a hang is a failure, not a stuck suite).
fn run_with_deadline(args: &[&str], limit: Duration) -> Output {
    let tmp = tempfile::tempdir().unwrap();
    let out_path = tmp.path().join("stdout");
    let err_path = tmp.path().join("stderr");
    let mut child = hopscope()
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("hopscope {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}

// ---------------------------------------------------------------------------
// Bytes

/// Not UTF-8 in a needed field (request ID, service) is `invalid_utf8`;
/// elsewhere (a message) it does not matter. JSON and logfmt alike.
#[test]
fn invalid_utf8_only_matters_in_needed_fields() {
    let d = tempfile::tempdir().unwrap();
    let mut json = Vec::new();
    json.extend_from_slice(good(1).as_bytes());
    json.extend_from_slice(b"{\"ts\":\"2024-05-01T10:00:01Z\",\"request_id\":\"r\xff2\"}\n");
    json.extend_from_slice(
        b"{\"ts\":\"2024-05-01T10:00:01Z\",\"request_id\":\"r3\",\"service\":\"s\xc3\"}\n",
    );
    json.extend_from_slice(
        b"{\"ts\":\"2024-05-01T10:00:02Z\",\"request_id\":\"r4\",\"msg\":\"bad \xfe\xff here\"}\n",
    );
    json.extend_from_slice(b"{\"ts\":\"2024-05-01T10:00:02Z\",\"\xff\":1,\"request_id\":\"r5\"}\n");
    json.extend_from_slice(good(6).as_bytes());
    let p = write(d.path(), "j.log", &json);
    let r = report(&[s(&p)]);
    assert_input(&r, 6, 4, &[("invalid_utf8", 2)]);
    assert_eq!(trace_ids(&[s(&p)]), ["r1", "r4", "r5", "r6"]);

    let logfmt = b"ts=2024-05-01T10:00:00Z req_id=a1 svc=x\n\
                   ts=2024-05-01T10:00:00Z req_id=a\xff2 svc=x\n\
                   ts=2024-05-01T10:00:00Z req_id=a3 svc=x msg=\xff\xfe\n\
                   ts=2024-05-01T10:00:00Z req_id=a4 svc=x \xff=\xff\n\
                   ts=2024-05-01T10:00:01Z req_id=a5 svc=x\n";
    let p = write(d.path(), "l.log", logfmt);
    let r = report(&[s(&p)]);
    assert_input(&r, 5, 4, &[("invalid_utf8", 1)]);
}

/// Regex lines: a bad byte outside the captured roles is harmless (a
/// preset's message, a `--pattern`'s `msg`); inside a captured role it is
/// `invalid_utf8`.
#[test]
fn invalid_utf8_in_regex_lines() {
    let d = tempfile::tempdir().unwrap();
    let nova = |msg: &[u8]| {
        let mut v = b"nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO \
                      nova.osapi_compute.wsgi.server [req-38101a0b-2096-447d-96ea-a692162415ae \
                      113d3a99 54fadb41 - - -] "
            .to_vec();
        v.extend_from_slice(msg);
        v.extend_from_slice(
            b" \"GET /v2/servers HTTP/1.1\" status: 200 len: 1893 time: 0.2477829\n",
        );
        v
    };
    let mut body = nova(b"10.11.10.1");
    body.extend(nova(b"10.11.\xfe\xff.1"));
    let p = write(d.path(), "nova-api.log", &body);
    let r = report(&[s(&p), "--preset", "openstack"]);
    assert_input(&r, 2, 2, &[]);

    let body = b"2024-05-01T10:00:00Z id-1 fine\n\
                 2024-05-01T10:00:00Z id-\xff2 fine\n\
                 2024-05-01T10:00:01Z id-3 not \xff\xfe fine\n\
                 2024-05-01T10:00:0\xff2Z id-4 fine\n\
                 2024-05-01T10:00:02Z id-5 fine\n";
    let p = write(d.path(), "custom.log", body);
    let pattern = r"^(?P<ts>\S+) (?P<request_id>\S+) (?P<msg>.*)$";
    let r = report(&[s(&p), "--pattern", pattern]);
    assert_input(&r, 5, 3, &[("invalid_utf8", 2)]);
}

/// NUL bytes after the first 8 KiB do not make the file binary: the lines
/// holding them fail JSON (a raw control character in a string), the rest
/// count.
#[test]
fn nul_bytes_after_the_first_8_kib() {
    let d = tempfile::tempdir().unwrap();
    let mut body = String::new();
    for i in 0..200 {
        body.push_str(&good(i));
    }
    assert!(body.len() > 8 << 10);
    body.push_str("{\"ts\":\"2024-05-01T10:00:00Z\",\"request_id\":\"n\0ul\"}\n");
    body.push_str("\0\0\0\n");
    body.push_str("{\"ts\":\"2024-05-01T10:00:00Z\",\"request_id\":\"x1\",\"msg\":\"a\0b\"}\n");
    for i in 200..210 {
        body.push_str(&good(i));
    }
    let p = write(d.path(), "nul.log", body.as_bytes());
    let r = report(&[s(&p)]);
    assert_eq!(r["input"]["binary_files"], 0);
    assert_input(&r, 213, 210, &[("parse_error", 3)]);
    assert_eq!(r["requests"]["total"], 210);
}

/// A NUL in the first 8 KiB: the file is skipped as binary and counted once;
/// its neighbour's lines still count.
#[test]
fn binary_file_is_skipped_and_counted() {
    let d = tempfile::tempdir().unwrap();
    let mut bin = b"\x7fELF\x02\x01\x01\x00".to_vec();
    bin.extend((0..=255u8).cycle().take(20_000));
    bin.extend_from_slice(good(99).as_bytes());
    write(d.path(), "a.bin", &bin);
    write(
        d.path(),
        "b.log",
        format!("{}{}", good(1), good(2)).as_bytes(),
    );
    let r = report(&[s(d.path())]);
    assert_eq!(r["input"]["binary_files"], 1);
    assert_input(&r, 2, 2, &[]);
}

/// A 100 MB line is one `too_long` line under the default 1 MiB limit;
/// the lines around it count. Written in 1 MiB pieces, so the test itself
/// stays small.
#[test]
fn hundred_megabyte_line_is_too_long() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("huge.log");
    {
        let mut f = BufWriter::new(File::create(&p).unwrap());
        f.write_all(good(1).as_bytes()).unwrap();
        f.write_all(b"{\"ts\":\"2024-05-01T10:00:00Z\",\"request_id\":\"huge\",\"msg\":\"")
            .unwrap();
        let piece = vec![b'x'; 1 << 20];
        for _ in 0..100 {
            f.write_all(&piece).unwrap();
        }
        f.write_all(b"\"}\n").unwrap();
        f.write_all(good(2).as_bytes()).unwrap();
    }
    assert!(std::fs::metadata(&p).unwrap().len() > 100 << 20);
    let r = report(&[s(&p)]);
    assert_input(&r, 3, 2, &[("too_long", 1)]);
    assert_eq!(trace_ids(&[s(&p)]), ["r1", "r2"]);
}

/// JSON nested 100,000 deep (arrays, objects, before and after the wanted
/// keys) is a `parse_error`, not a stack overflow.
#[test]
fn json_nested_100000_deep() {
    let d = tempfile::tempdir().unwrap();
    let n = 100_000;
    let head = "{\"ts\":\"2024-05-01T10:00:00Z\",\"request_id\":\"d1\",\"x\":";
    let mut body = good(1);
    body.push_str(&format!("{head}{}{}}}\n", "[".repeat(n), "]".repeat(n)));
    body.push_str(&format!(
        "{head}{}1{}}}\n",
        "{\"a\":".repeat(n),
        "}".repeat(n)
    ));
    body.push_str(&format!(
        "{{\"x\":{}1{},\"ts\":\"2024-05-01T10:00:00Z\",\"request_id\":\"d3\"}}\n",
        "{\"a\":".repeat(n),
        "}".repeat(n)
    ));
    // Unclosed: 100,000 opening brackets and nothing else.
    body.push_str(&format!("{}\n", "[".repeat(n)));
    body.push_str(&good(2));
    let p = write(d.path(), "deep.log", body.as_bytes());
    let r = report(&[s(&p)]);
    assert_input(&r, 6, 2, &[("parse_error", 4)]);
}

/// One request of 2,000 visits nested by time alone (sr/ss, no spans or
/// calls), and one of 2,000 visits one after the other: each visit's parent
/// is the one before it (rule 2: the innermost container; rule 3: the one
/// that ended last). Linking tested every containing visit for being a
/// descendant, cubic in the depth: this case took minutes.
#[test]
fn deep_nest_and_long_handoff_chain() {
    let d = tempfile::tempdir().unwrap();
    let n = 2_000_usize;
    let ts = |ms: usize| {
        format!(
            "2024-05-01T10:{:02}:{:02}.{:03}Z",
            ms / 60_000,
            ms / 1000 % 60,
            ms % 1000
        )
    };
    let mut body = String::new();
    for i in 0..n {
        // Nest: visit i is [i, 2n − i] ms, inside visit i − 1.
        let svc = format!("s{}", i % 7);
        for (t, ev) in [(i, "sr"), (2 * n - i, "ss")] {
            body.push_str(&format!(
                "{{\"ts\":\"{}\",\"request_id\":\"nest\",\"service\":\"{svc}\",\"event\":\"{ev}\"}}\n",
                ts(t)
            ));
        }
        // Chain: visit i is [2i, 2i + 1] ms, after visit i − 1.
        for (t, ev) in [(2 * i, "sr"), (2 * i + 1, "ss")] {
            body.push_str(&format!(
                "{{\"ts\":\"{}\",\"request_id\":\"chain\",\"service\":\"{svc}\",\"event\":\"{ev}\"}}\n",
                ts(t)
            ));
        }
    }
    let p = write(d.path(), "deep.log", body.as_bytes());
    let out = run(&["traces", s(&p)]);
    assert_clean(&out, 0);
    let traces: Vec<Value> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(traces.len(), 2);
    for t in &traces {
        let nest = t["request_id"] == "nest";
        assert_eq!(t["complete"], true);
        let visits = t["visits"].as_array().unwrap();
        assert_eq!(visits.len(), n);
        for (i, v) in visits.iter().enumerate() {
            assert_eq!(v["id"], i);
            assert_eq!(v["service"], format!("s{}", i % 7));
            let parent = if i == 0 { Value::Null } else { (i - 1).into() };
            assert_eq!(v["parent"], parent, "visit {i}");
            let (start, processing) = if nest { (i, 2 * (n - i)) } else { (2 * i, 1) };
            assert_eq!(v["start_offset_ms"], start as f64, "visit {i}");
            assert_eq!(v["processing_ms"], processing as f64, "visit {i}");
        }
        // Latency is the root's own span (SPEC §2 "Requests"): the nest's
        // root is [0, 2n] ms; the chain's is [0, 1] ms, its hand-offs
        // outlive it.
        let latency = if nest { 2 * n } else { 1 };
        assert_eq!(t["latency_ms"], latency as f64);
        // Hand-offs wait 1 ms each: the gap after the visit before.
        if !nest {
            assert!(visits[1..].iter().all(|v| v["propagation_ms"] == 1.0));
        }
    }
}

/// 2,000 inner spans of one service, each the parent of the next, below
/// the span with its server events: all join that span's visit (SPEC §2
/// "Visits"), one visit of [0, 2,000] ms. Each span used to be walked to
/// the top on its own, quadratic in the depth (9,000 spans took 7 s).
#[test]
fn deep_inner_spans_join_one_visit() {
    let d = tempfile::tempdir().unwrap();
    let n = 2_000;
    let line = |ms: usize, span: usize, rest: &str| {
        format!(
            "{{\"ts\":\"2024-05-01T10:00:{:02}.{:03}Z\",\"request_id\":\"in\",\"service\":\"api\",\"span_id\":\"s{span}\"{rest}}}\n",
            ms / 1000,
            ms % 1000
        )
    };
    let mut body = line(0, 0, ",\"event\":\"sr\"");
    for i in 1..n {
        body.push_str(&line(i, i, &format!(",\"parent_id\":\"s{}\"", i - 1)));
    }
    body.push_str(&line(n, 0, ",\"event\":\"ss\""));
    let p = write(d.path(), "inner.log", body.as_bytes());
    let out = run(&["traces", s(&p)]);
    assert_clean(&out, 0);
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(t["complete"], true);
    assert_eq!(t["visits"].as_array().unwrap().len(), 1, "{}", t["chain"]);
    assert_eq!(t["visits"][0]["span"], "s0");
    assert_eq!(t["visits"][0]["processing_ms"], n as f64);
}

/// A duplicated key counts by its first occurrence (SPEC §1).
#[test]
fn duplicate_keys_first_occurrence_wins() {
    let d = tempfile::tempdir().unwrap();
    let body =
        "{\"ts\":\"2024-05-01T10:00:00Z\",\"request_id\":\"first\",\"request_id\":\"second\",\
                \"service\":\"a\",\"service\":\"b\",\"ts\":\"2030-01-01T00:00:00Z\"}\n"
            .to_string()
            + &good(3);
    let p = write(d.path(), "dup.log", body.as_bytes());
    let r = report(&[s(&p)]);
    assert_input(&r, 2, 2, &[]);
    assert_eq!(r["input"]["last_ts"], "2024-05-01T10:00:03.003000000Z");
    assert_eq!(trace_ids(&[s(&p)]), ["first", "r3"]);
    assert_eq!(service_names(&r), ["a", "svc"]);
}

/// Numbers where strings belong: a numeric request ID is its literal text
/// (SPEC §1), however large; a boolean or unrepresentable timestamp is
/// `bad_timestamp`; an absurd duration is ignored, not a crash.
#[test]
fn numbers_and_booleans_where_strings_belong() {
    let d = tempfile::tempdir().unwrap();
    let body = [
        r#"{"ts":"2024-05-01T10:00:00Z","request_id":1e400,"service":"a"}"#,
        r#"{"ts":true,"request_id":"r7","service":"a"}"#,
        r#"{"ts":"2024-05-01T10:00:00Z","request_id":12345678901234567890123456789,"service":"a"}"#,
        r#"{"ts":"2024-05-01T10:00:00Z","request_id":-0.0,"service":"a"}"#,
        r#"{"ts":1e400,"request_id":"r8"}"#,
        r#"{"ts":"2024-05-01T10:00:00Z","request_id":"r9","duration":1e400}"#,
        r#"{"ts":"2024-05-01T10:00:00Z","request_id":"r10","duration":-5e300,"status":1e999}"#,
        r#"{"ts":"2024-05-01T10:00:00Z","request_id":true}"#,
        r#"{"ts":"2024-05-01T10:00:00Z","request_id":["r11"]}"#,
    ]
    .join("\n")
        + "\n"
        + &good(4);
    let p = write(d.path(), "nums.log", body.as_bytes());
    let r = report(&[s(&p)]);
    // `true` is a scalar: an ID like any other text; an array is absent.
    assert_input(&r, 10, 7, &[("bad_timestamp", 2), ("no_request_id", 1)]);
    let mut ids = trace_ids(&[s(&p)]);
    ids.sort();
    assert_eq!(
        ids,
        [
            "-0.0",
            "12345678901234567890123456789",
            "1e400",
            "r10",
            "r4",
            "r9",
            "true"
        ]
    );
}

/// Times hopscope cannot hold (it counts in i64 nanoseconds: 1677-09-21 to
/// 2262-04-11) or that do not exist are `bad_timestamp`; the limits
/// themselves are usable.
#[test]
fn timestamps_out_of_range() {
    let d = tempfile::tempdir().unwrap();
    let body = [
        r#"{"ts":"9999-12-31T23:59:59Z","request_id":"y1"}"#,
        r#"{"ts":1e30,"request_id":"y2"}"#,
        r#"{"ts":"0000-01-01T00:00:00Z","request_id":"y3"}"#,
        r#"{"ts":-1e30,"request_id":"y4"}"#,
        r#"{"ts":"2262-04-11T23:47:16.854775808Z","request_id":"y5"}"#,
        r#"{"ts":"1677-09-21T00:12:43.145224191Z","request_id":"y6"}"#,
        r#"{"ts":99999999999999999999,"request_id":"y7"}"#,
        r#"{"ts":"2024-13-45T99:99:99Z","request_id":"y8"}"#,
        r#"{"ts":"2024-02-30T10:00:00Z","request_id":"y9"}"#,
        r#"{"ts":"NaN","request_id":"y10"}"#,
        r#"{"ts":"2262-04-11T23:47:16.854775807Z","request_id":"max"}"#,
        r#"{"ts":"1677-09-21T00:12:43.145224192Z","request_id":"min"}"#,
        r#"{"ts":"2262-04-11T23:47:16.854775807Z","request_id":"maxd","duration":"1000h"}"#,
        r#"{"ts":"1677-09-21T00:12:43.145224192Z","request_id":"mind","duration":"1000h"}"#,
    ]
    .join("\n")
        + "\n"
        + &good(5);
    let p = write(d.path(), "range.log", body.as_bytes());
    let r = report(&[s(&p)]);
    // Only 1970..2100 is usable: the 1677 and 2262 extremes that i64 ns can
    // hold are out of range too, so only the good line is a record.
    assert_input(&r, 15, 1, &[("bad_timestamp", 14)]);
    assert_eq!(r["input"]["first_ts"], "2024-05-01T10:00:05.005000000Z");
    assert_eq!(r["input"]["last_ts"], "2024-05-01T10:00:05.005000000Z");
    let out = run(&["traces", s(&p)]);
    assert_clean(&out, 0);
}

/// Two valid timestamps more than 292 years apart in one request overflow
/// the i64 nanosecond differences in assembly (a panic in debug builds,
/// wrapped garbage in release).
#[test]
fn timestamps_centuries_apart_in_one_request() {
    let d = tempfile::tempdir().unwrap();
    // Usable timestamps lie in 1970..2100 (SPEC §1 leaves the range to the
    // tool: outside it a time is `bad_timestamp`), so every difference the
    // assembly takes fits in i64 ns. Each case: its lines, and how many of
    // them fall outside that window.
    let cases: [(&[&str], u64); 6] = [
        // One service.
        (
            &[
                r#"{"ts":"1800-01-01T00:00:00Z","request_id":"x","service":"a"}"#,
                r#"{"ts":"2200-01-01T00:00:00Z","request_id":"x","service":"a"}"#,
            ],
            2,
        ),
        // A hand-off to a later service.
        (
            &[
                r#"{"ts":"2200-01-01T00:00:00Z","request_id":"x","service":"a"}"#,
                r#"{"ts":"1800-01-01T00:00:00Z","request_id":"x","service":"b"}"#,
            ],
            2,
        ),
        // Parent and child spans.
        (
            &[
                r#"{"ts":"1800-01-01T00:00:00Z","request_id":"x","service":"a","span_id":"s1"}"#,
                r#"{"ts":"2200-01-01T00:00:00Z","request_id":"x","service":"b","span_id":"s2","parent_span_id":"s1"}"#,
            ],
            2,
        ),
        // A call whose cs and cr are centuries apart.
        (
            &[
                r#"{"ts":"1800-01-01T00:00:00Z","request_id":"x","service":"a","peer":"b","event":"cs"}"#,
                r#"{"ts":"2200-01-01T00:00:00Z","request_id":"x","service":"a","peer":"b","event":"cr"}"#,
            ],
            2,
        ),
        // 147 years: 2117 is past the window.
        (
            &[
                r#"{"ts":"1970-01-01T00:00:00Z","request_id":"x","service":"a","peer":"b","event":"cs"}"#,
                r#"{"ts":"2117-01-01T00:00:00Z","request_id":"x","service":"b","event":"sr"}"#,
                r#"{"ts":"2117-01-01T00:00:00.001Z","request_id":"x","service":"b","event":"ss"}"#,
                r#"{"ts":"1970-01-01T00:00:00.002Z","request_id":"x","service":"a","peer":"b","event":"cr"}"#,
            ],
            2,
        ),
        // 129 years inside the window: legs of ±129 y and their skew sample
        // must not overflow.
        (
            &[
                r#"{"ts":"1970-01-01T00:00:00Z","request_id":"x","service":"a","peer":"b","event":"cs"}"#,
                r#"{"ts":"2099-01-01T00:00:00Z","request_id":"x","service":"b","event":"sr"}"#,
                r#"{"ts":"2099-01-01T00:00:00.001Z","request_id":"x","service":"b","event":"ss","duration":"8000h"}"#,
                r#"{"ts":"1970-01-01T00:00:00.002Z","request_id":"x","service":"a","peer":"b","event":"cr"}"#,
            ],
            0,
        ),
    ];
    for (i, (lines, bad)) in cases.iter().enumerate() {
        let body = lines.join("\n") + "\n" + &good(1);
        let p = write(d.path(), &format!("c{i}.log"), body.as_bytes());
        let r = report(&[s(&p)]);
        let n = lines.len() as u64 + 1;
        assert_input(&r, n, n - bad, &[("bad_timestamp", *bad)]);
        assert_clean(&run(&["traces", s(&p)]), 0);
        // `x` is shown when any of its lines is usable; else it is unknown.
        let code = if *bad < lines.len() as u64 { 0 } else { 2 };
        assert_clean(&run(&["show", "x", s(&p)]), code);
    }
}

// ---------------------------------------------------------------------------
// Container envelopes

/// Broken envelope lines (cut JSON, a CRI piece sequence over --max-line)
/// are counted; the good lines around them still count.
#[test]
fn broken_container_envelopes() {
    let d = tempfile::tempdir().unwrap();
    let id = "a".repeat(64);
    let docker_line = |i: usize| {
        format!(
            "{{\"log\":\"{{\\\"ts\\\":\\\"2024-05-01T10:00:00Z\\\",\\\"request_id\\\":\\\"g{i}\\\"}}\\n\",\
             \"stream\":\"stdout\",\"time\":\"2024-05-01T10:00:00Z\"}}\n"
        )
    };
    let mut docker = String::new();
    for i in 0..10 {
        docker.push_str(&docker_line(i));
    }
    docker.push_str("{\"log\":\"{\\\"ts\\\":\\\"2024-05-01T10:00:01Z\\\",\\\"request_id\\\"\n");
    // A duplicated key counts by its first occurrence.
    docker.push_str(&docker_line(11).replacen("}\n", ",\"log\":\"x\"}\n", 1));
    docker.push_str(&docker_line(10));
    write(
        d.path(),
        &format!("var/log/containers/orders-7d9f8b6c5-x2x4z_default_app-{id}.log"),
        docker.as_bytes(),
    );

    let mut cri = String::new();
    let t = "2024-05-01T10:00:00.000Z stdout";
    cri.push_str(&format!(
        "{t} F {{\"ts\":\"2024-05-01T10:00:00Z\",\"request_id\":\"c1\"}}\n"
    ));
    for _ in 0..50 {
        cri.push_str(&format!("{t} P {}\n", "y".repeat(30)));
    }
    cri.push_str(&format!("{t} F end\n"));
    cri.push_str(&format!(
        "{t} F {{\"ts\":\"2024-05-01T10:00:00.5Z\",\"request_id\":\"c2\"}}\n"
    ));
    cri.push_str("not a cri line at all\n");
    cri.push_str(&format!("{t} P {{\"ts\":\"2024-05-01T10:00:00.7Z\","));
    write(
        d.path(),
        &format!("var/log/containers/pay-7d9f8b6c5-x2x4z_default_app-{id}.log"),
        cri.as_bytes(),
    );
    let r = report(&[s(d.path()), "--max-line", "1000"]);
    // Docker: 13 lines, 12 records, 1 parse_error. CRI: the 51 pieces of
    // the long line are 1 line (too_long), the stray line a parse_error,
    // the open piece at the end a line that fails JSON.
    assert_input(&r, 13 + 5, 12 + 2, &[("parse_error", 3), ("too_long", 1)]);
    assert_eq!(service_names(&r), ["orders", "pay"]);
}

/// SPEC §1: not UTF-8 in a needed field is `invalid_utf8`. Inside a CRI
/// envelope it is; inside a Docker json-file `log` string the bytes are
/// turned into U+FFFD first, so the line becomes a record with the ID
/// `r\u{FFFD}3` (and IDs differing only in bad bytes merge).
#[test]
fn invalid_utf8_inside_a_docker_envelope() {
    let d = tempfile::tempdir().unwrap();
    let id = "a".repeat(64);
    let mut body = Vec::new();
    for i in 0..10 {
        body.extend_from_slice(
            format!(
                "{{\"log\":\"{{\\\"ts\\\":\\\"2024-05-01T10:00:00Z\\\",\\\"request_id\\\":\\\"g{i}\\\"}}\\n\",\
                 \"stream\":\"stdout\",\"time\":\"2024-05-01T10:00:00Z\"}}\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        b"{\"log\":\"{\\\"ts\\\":\\\"2024-05-01T10:00:01Z\\\",\\\"request_id\\\":\\\"r\xff3\\\"}\\n\",\
          \"stream\":\"stdout\",\"time\":\"2024-05-01T10:00:00Z\"}\n",
    );
    let p = write(
        d.path(),
        &format!("var/log/containers/orders-7d9f8b6c5-x2x4z_default_app-{id}.log"),
        &body,
    );
    let r = report(&[s(&p)]);
    assert_input(&r, 11, 10, &[("invalid_utf8", 1)]);
}

// ---------------------------------------------------------------------------
// File-system entries

#[test]
fn empty_directory_exits_2() {
    let d = tempfile::tempdir().unwrap();
    let out = run(&["report", s(d.path())]);
    assert_clean(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no input files"), "{err}");
}

/// 10,000 one-line files in 100 directories: every file opened once, every
/// line a record (and no file descriptor exhaustion).
#[test]
fn ten_thousand_tiny_files() {
    let d = tempfile::tempdir().unwrap();
    for i in 0..10_000 {
        let dir = d.path().join(format!("d{:02}", i % 100));
        if i < 100 {
            std::fs::create_dir(&dir).unwrap();
        }
        std::fs::write(
            dir.join(format!("f{i:05}.log")),
            format!(
                "{{\"ts\":\"2024-05-01T10:00:00Z\",\"request_id\":\"r{}\",\"service\":\"s{}\"}}\n",
                i % 5000,
                i % 7
            ),
        )
        .unwrap();
    }
    let r = report(&[s(d.path())]);
    assert_eq!(r["input"]["files"], 10_000);
    assert_input(&r, 10_000, 10_000, &[]);
    assert_eq!(r["requests"]["total"], 5000);
}

/// Files that cannot be read are named on stderr and skipped, with exit 3
/// (SPEC §6): a dangling symlink inside a directory, a file that fails
/// with EIO on read (`/proc/self/mem` at offset 0), and a chmod-000 file
/// when not running as root (root reads it anyway).
#[test]
fn unreadable_files_are_named_and_skipped() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "good.log", good(1).as_bytes());
    std::os::unix::fs::symlink("/nonexistent/hopscope/x.log", d.path().join("dangling.log"))
        .unwrap();
    let locked = write(d.path(), "locked.log", good(2).as_bytes());
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    let root_reads_anyway = File::open(&locked).is_ok();

    let (r, err) = report_code(&[s(d.path()), "/proc/self/mem"], 3);
    assert!(err.contains("dangling.log"), "{err}");
    assert!(err.contains("/proc/self/mem"), "{err}");
    if root_reads_anyway {
        println!("running as root: the chmod 000 file is readable, not asserting on it");
        assert_eq!(r["input"]["records"], 2);
    } else {
        assert!(err.contains("locked.log"), "{err}");
        assert_eq!(r["input"]["records"], 1);
    }
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
}

/// A fifo inside a directory is not opened (no writer would ever come), so
/// the run does not hang.
#[test]
fn fifo_inside_a_directory_does_not_hang() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "good.log", good(1).as_bytes());
    let fifo = d.path().join("pipe.log");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let out = run_with_deadline(
        &["report", s(d.path()), "-o", "json"],
        Duration::from_secs(30),
    );
    assert_clean(&out, 0);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_input(&r, 1, 1, &[]);
}

/// Symlink loops with `--follow` are detected: the run ends, the real file
/// is read once, each loop is named on stderr.
#[test]
fn symlink_loops_with_follow() {
    let d = tempfile::tempdir().unwrap();
    let b = d.path().join("a/b");
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(b.join("x.log"), good(1)).unwrap();
    std::os::unix::fs::symlink("..", b.join("up")).unwrap();
    std::os::unix::fs::symlink("../a", d.path().join("a/self")).unwrap();
    std::os::unix::fs::symlink("loopy", d.path().join("loopy")).unwrap();
    for follow in [false, true] {
        let mut args = vec!["report", s(d.path()), "-o", "json"];
        if follow {
            args.push("--follow");
        }
        let out = run_with_deadline(&args, Duration::from_secs(30));
        assert_eq!(out.status.signal(), None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        // The self-referencing link cannot be resolved: an unreadable entry.
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert!(err.contains("loopy"), "{err}");
        if follow {
            assert!(err.contains("loop"), "{err}");
        }
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["input"]["files"], 1, "{err}");
        assert_input(&r, 1, 1, &[]);
    }
}

// ---------------------------------------------------------------------------
// Files that change while read

/// `--mmap` and `--no-mmap` give byte-identical reports and traces
/// (ripgrep's "every read strategy gives identical output").
#[test]
fn mmap_and_no_mmap_agree() {
    let d = tempfile::tempdir().unwrap();
    let mut body = String::new();
    for i in 0..5000 {
        body.push_str(&good(i % 1500));
        if i % 97 == 0 {
            body.push_str("not json\n\n");
        }
    }
    body.push_str("{\"ts\":\"2024-05-01T10:00:00Z\",\"request_id\":\"last-no-newline\"}");
    write(d.path(), "gen/a.log", body.as_bytes());
    let mut inputs = vec![d.path().join("gen"), repo_dir().join("testdata/logs")];
    let os = shared_dir().join("realdata/loghub/OpenStack/OpenStack_2k.log");
    if os.exists() {
        inputs.push(os);
    }
    for input in &inputs {
        for cmd in ["report", "traces"] {
            let mut outs = Vec::new();
            for mode in ["--mmap", "--no-mmap"] {
                let mut args = vec![cmd, s(input), mode];
                if cmd == "report" {
                    args.extend_from_slice(&["-o", "json"]);
                }
                let out = run(&args);
                assert_clean(&out, 0);
                outs.push(out.stdout);
            }
            assert!(
                outs[0] == outs[1],
                "{cmd} {input:?}: --mmap and --no-mmap differ"
            );
        }
    }
}

/// A file of about 78 MB of JSON lines without request IDs: slow enough to
/// parse (≈ 2 s in a debug build) that a truncation 0.5 s in lands in the
/// middle of the parse.
fn big_quiet_file(dir: &Path) -> PathBuf {
    let p = dir.join("big.log");
    {
        let mut f = BufWriter::new(File::create(&p).unwrap());
        let line = b"{\"ts\":\"2024-05-01T10:00:00.000Z\",\"msg\":\"no id here, just some text to parse\"}\n";
        for _ in 0..1_000_000 {
            f.write_all(line).unwrap();
        }
    }
    // Quiet for two hours: the default (auto) policy maps it.
    let f = File::options().write(true).open(&p).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(7200))
        .unwrap();
    p
}

/// Runs `args` and truncates `path` to 0 bytes after `delay`.
fn run_and_truncate(args: &[&str], path: &Path, delay: Duration) -> Output {
    let path = path.to_path_buf();
    let truncator = std::thread::spawn(move || {
        std::thread::sleep(delay);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
    });
    let out = run_with_deadline(args, Duration::from_secs(60));
    truncator.join().unwrap();
    out
}

/// `--no-mmap` (logrotate's copytruncate case): truncating the file while
/// hopscope runs cannot hurt it; it sees the bytes it read.
#[test]
fn truncated_while_read_with_no_mmap() {
    let d = tempfile::tempdir().unwrap();
    let p = big_quiet_file(d.path());
    let out = run_and_truncate(
        &["report", s(&p), "--no-mmap", "-o", "json"],
        &p,
        Duration::from_millis(300),
    );
    assert_clean(&out, 0);
    // It read what was there when it read: all, none, or a prefix.
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let i = &r["input"];
    let lines = i["lines"].as_u64().unwrap();
    assert!(lines <= 1_000_000, "{i}");
    assert_eq!(
        lines,
        skipped_total(i) + i["blank"].as_u64().unwrap(),
        "{i}"
    );
}

/// The default policy maps files quiet for 30 s; truncating such a file
/// while it is parsed (copytruncate of a log that was idle for a minute)
/// used to kill hopscope with SIGBUS (exit by signal 7, no message). Now
/// the run ends: exit 3 naming the file when the truncation hit the parse,
/// with the lines read before it counted; exit 0 with all of them when the
/// parse was done first.
#[test]
fn quiet_file_truncated_while_mapped_does_not_crash() {
    let d = tempfile::tempdir().unwrap();
    let p = big_quiet_file(d.path());
    let out = run_and_truncate(
        &["report", s(&p), "-o", "json", "--threads", "2"],
        &p,
        Duration::from_millis(500),
    );
    assert_eq!(out.status.signal(), None, "killed by a signal");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let i = &r["input"];
    let lines = i["lines"].as_u64().unwrap();
    match out.status.code() {
        Some(0) => {
            assert_eq!(lines, 1_000_000, "{i}");
            assert!(stderr.is_empty(), "{stderr}");
        }
        Some(3) => {
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(
                stderr.contains("big.log: truncated while it was read")
                    && stderr.contains("the rest of the file is lost"),
                "{stderr}"
            );
            // Lines read before the truncation are counted (as skips: they
            // have no request ID), and so are the lines that the zeros
            // which replaced the lost pages spoil: at most two in each of
            // the two chunks under way.
            assert!(lines < 1_000_000, "{i}");
            let skipped = &i["skipped"];
            let no_id = skipped["no_request_id"].as_u64().unwrap();
            let spoiled = skipped_total(i) - no_id;
            assert_eq!(
                spoiled,
                skipped["parse_error"].as_u64().unwrap() + skipped["too_long"].as_u64().unwrap(),
                "{i}"
            );
            assert!(spoiled <= 4, "{i}");
            assert_eq!(lines, no_id + spoiled + i["blank"].as_u64().unwrap(), "{i}");
        }
        other => panic!("exit {other:?}: {stderr}"),
    }
}

/// A file that grows while read (another writer appending whole lines):
/// the run ends normally and counts at least what was there at the start,
/// every line accounted for. Both read policies.
#[test]
fn file_growing_while_read() {
    for mode in ["--no-mmap", "--mmap"] {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("grow.log");
        let initial = 100_000;
        {
            let mut f = BufWriter::new(File::create(&p).unwrap());
            for i in 0..initial {
                f.write_all(good(i % 2000).as_bytes()).unwrap();
            }
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let appender = {
            let p = p.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut f = File::options().append(true).open(&p).unwrap();
                let mut i = initial;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < initial + 1_000_000 {
                    f.write_all(good(i % 2000).as_bytes()).unwrap();
                    i += 1;
                }
            })
        };
        let out = run_with_deadline(
            &["report", s(&p), mode, "-o", "json"],
            Duration::from_secs(120),
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        appender.join().unwrap();
        assert_clean(&out, 0);
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        let i = &r["input"];
        let records = i["records"].as_u64().unwrap();
        assert!(records >= initial as u64, "{mode}: {i}");
        assert_eq!(
            i["lines"].as_u64().unwrap(),
            records + i["blank"].as_u64().unwrap() + skipped_total(i),
            "{mode}: {i}"
        );
    }
}

// ---------------------------------------------------------------------------
// Terminal safety

/// Bytes a terminal would act on: C0 controls but `\n`, DEL, and the C1
/// controls (U+0080–U+009F, e.g. U+009B, the 8-bit CSI) as UTF-8.
fn raw_controls(out: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(out);
    text.chars()
        .filter(|&c| (c.is_control() && c != '\n') || ('\u{80}'..='\u{9f}').contains(&c))
        .map(|c| format!("{:?}", c))
        .collect()
}

/// Escape sequences and control characters in request IDs, service and
/// peer names (JSON escapes and raw bytes in logfmt) never reach the
/// terminal raw: not in the report tables, not in `show`.
#[test]
fn control_characters_never_reach_the_terminal() {
    let d = tempfile::tempdir().unwrap();
    let id = r"r\u001b[31mRED\u001b[0m\u0007\u0008\r\u009b2J\u007f";
    let svc = r"svc\u001b]0;pwned\u0007x\r\nfake line";
    let peer = r"db\u001b[2J\u0000";
    let json = format!(
        "{{\"ts\":\"2024-05-01T10:00:00Z\",\"request_id\":\"{id}\",\"service\":\"{svc}\",\"event\":\"sr\"}}\n\
         {{\"ts\":\"2024-05-01T10:00:00.5Z\",\"request_id\":\"{id}\",\"service\":\"{svc}\",\"event\":\"cs\",\"peer\":\"{peer}\"}}\n\
         {{\"ts\":\"2024-05-01T10:00:00.6Z\",\"request_id\":\"{id}\",\"service\":\"{svc}\",\"event\":\"cr\",\"peer\":\"{peer}\",\"status\":503}}\n\
         {{\"ts\":\"2024-05-01T10:00:01Z\",\"request_id\":\"{id}\",\"service\":\"{svc}\",\"event\":\"ss\"}}\n"
    );
    write(d.path(), "a.log", json.as_bytes());
    write(
        d.path(),
        "b.log",
        b"ts=2024-05-01T10:00:00Z req_id=\x1b[1mBOLD svc=raw\x1b[32mgreen\x07\x08\x7f\xc2\x9b event=sr\n\
          ts=2024-05-01T10:00:02Z req_id=\x1b[1mBOLD svc=raw\x1b[32mgreen\x07\x08\x7f\xc2\x9b event=ss\n",
    );
    let dir = s(d.path());
    for args in [
        vec!["report", dir],
        vec!["report", dir, "--no-color"],
        vec!["report", dir, "--sort", "failures", "--top", "50"],
        vec!["show", "r", dir],
        vec!["show", "\x1b[1mBOLD", dir],
    ] {
        let out = run(&args);
        assert_clean(&out, 0);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("svc") || stdout.contains("raw"),
            "{args:?}: {stdout}"
        );
        let bad = raw_controls(&out.stdout);
        assert!(bad.is_empty(), "{args:?}: raw {bad:?} in\n{stdout}");
        let bad = raw_controls(&out.stderr);
        assert!(bad.is_empty(), "{args:?}: raw {bad:?} on stderr");
    }
    // JSON escapes C0 controls (DEL and C1 are legal JSON text).
    let out = run(&["traces", dir]);
    assert_clean(&out, 0);
    assert!(!out.stdout.iter().any(|&b| b < 0x20 && b != b'\n'));
}

/// File names are printed on stderr when a file cannot be read or breaks
/// `--strict`; a name holding an escape sequence reaches the terminal raw
/// there, while the same name is escaped as a service and in warnings.
#[test]
fn control_characters_in_file_names_on_stderr() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "svc\x1b[31mred.log", good(1).as_bytes());
    let bad = write(d.path(), "bad\x1b]0;title\x07.log", b"garbage\n");
    std::os::unix::fs::symlink("/nonexistent", d.path().join("dang\x1b[2J.log")).unwrap();
    let out = run(&["report", s(d.path())]);
    assert_clean(&out, 3);
    assert!(raw_controls(&out.stdout).is_empty());
    let controls = raw_controls(&out.stderr);
    assert!(controls.is_empty(), "raw {controls:?} on stderr");
    let out = run(&["report", s(&bad), "--strict"]);
    assert_clean(&out, 2);
    let controls = raw_controls(&out.stderr);
    assert!(controls.is_empty(), "raw {controls:?} on stderr");
}

// ---------------------------------------------------------------------------
// --strict

/// `--strict` makes the first unusable line an error naming file, line and
/// reason (exit 2), for every skip reason; without it the same file is a
/// normal run.
#[test]
fn strict_names_file_line_and_reason() {
    let d = tempfile::tempdir().unwrap();
    let g = good(1);
    let cases: [(&str, &[u8], &[&str]); 7] = [
        (
            "parse_error",
            b"{\"ts\":\"2024-05-01T10:00:00Z\",\"request_id\":\"r1\"",
            &[],
        ),
        (
            "invalid_utf8",
            b"{\"ts\":\"2024-05-01T10:00:00Z\",\"request_id\":\"r\xff\"}",
            &[],
        ),
        ("no_request_id", b"{\"ts\":\"2024-05-01T10:00:00Z\"}", &[]),
        ("no_timestamp", b"{\"request_id\":\"r1\"}", &[]),
        (
            "bad_timestamp",
            b"{\"ts\":\"yesterday\",\"request_id\":\"r1\"}",
            &[],
        ),
        (
            "too_long",
            b"{\"ts\":\"2024-05-01T10:00:00Z\",\"request_id\":\"r1\",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
            &["--max-line", "120"],
        ),
        ("unknown_format", b"", &[]),
    ];
    for (reason, bad, extra) in cases {
        let p = if reason == "unknown_format" {
            write(
                d.path(),
                "unknown.log",
                b"\x01\x02 garbage\nmore garbage\n\x03 and more\n",
            )
        } else {
            let mut body = Vec::new();
            body.extend_from_slice(g.as_bytes());
            body.extend_from_slice(bad);
            body.extend_from_slice(b"\n");
            body.extend_from_slice(g.as_bytes());
            write(d.path(), &format!("{reason}.log"), &body)
        };
        let line = if reason == "unknown_format" { 1 } else { 2 };
        let mut args = vec!["report", s(&p), "--strict"];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert_clean(&out, 2);
        let err = String::from_utf8_lossy(&out.stderr);
        let want = format!("{}:{line}: {reason}", p.display());
        assert!(err.contains(&want), "want {want:?} in {err:?}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
        // Without --strict: counted, exit 0, the good lines kept.
        let mut args = vec!["report", s(&p), "-o", "json"];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert_clean(&out, 0);
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            r["input"]["skipped"][reason].as_u64().unwrap() > 0,
            "{reason}"
        );
        if reason != "unknown_format" {
            assert_eq!(r["input"]["records"], 2, "{reason}");
        }
    }
}

/// The first bad line in (path, line) order wins, whatever the file sizes
/// or thread scheduling.
#[test]
fn strict_reports_the_first_bad_line_in_path_order() {
    let d = tempfile::tempdir().unwrap();
    let mut a = String::new();
    for i in 0..20_000 {
        a.push_str(&good(i));
    }
    a.push_str("{broken\n");
    write(d.path(), "a.log", a.as_bytes());
    write(
        d.path(),
        "b.log",
        format!("{}{{\"ts\":\"2024-05-01T10:00:00Z\"}}\n", good(1)).as_bytes(),
    );
    for threads in ["1", "4"] {
        let out = run(&["report", s(d.path()), "--strict", "--threads", threads]);
        assert_clean(&out, 2);
        let err = String::from_utf8_lossy(&out.stderr);
        let want = format!("{}:20001: parse_error", d.path().join("a.log").display());
        assert!(err.contains(&want), "want {want:?} in {err:?}");
    }
}
