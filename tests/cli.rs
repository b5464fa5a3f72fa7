//! The binary as a user meets it: exit codes, error lines, stdin, compressed
//! files, output formats (SPEC §3, §6).

use std::io::Write;
use std::process::Stdio;

use crate::util::{hopscope, run};

const R1: &str = "ts=2024-05-01T10:00:00.000Z req_id=r1 svc=api event=sr\n\
                  ts=2024-05-01T10:00:00.004Z req_id=r1 svc=api event=ss\n";

/// A CRI container log: one request of 4 ms whose second line the runtime
/// split in two (`P`, then `F`).
const CRI_LINES: &str = "2024-05-01T10:00:00.000000001Z stdout F ts=2024-05-01T10:00:00.000Z req_id=r1 event=sr\n\
                         2024-05-01T10:00:00.004000000Z stdout P ts=2024-05-01T10:00:00.004Z \n\
                         2024-05-01T10:00:00.004000001Z stdout F req_id=r1 event=ss\n";

/// `data` gzip-compressed.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn write(dir: &std::path::Path, name: &str, body: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, body).unwrap();
    p
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn default_command_is_report() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "api.log", R1.as_bytes());
    let p = d.path().to_str().unwrap();
    let a = run(&[p, "-o", "json"]);
    let b = run(&["report", p, "-o", "json"]);
    assert_eq!(a.status.code(), Some(0));
    assert_eq!(a.stdout, b.stdout);
    let v = json(&a);
    assert_eq!(v["schema"], "hopscope.report/v1");
    assert_eq!(v["requests"]["total"], 1);
    assert_eq!(v["services"][0]["service"], "api");
    assert_eq!(v["services"][0]["processing_ms"]["max"], 4.0);
}

#[test]
fn missing_path_is_no_input_exit_2() {
    let out = run(&["/nonexistent/hopscope-test-dir"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/hopscope-test-dir"), "{err}");
    assert!(err.contains("no input files"), "{err}");
}

#[test]
fn empty_directory_is_no_input_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let out = run(&[d.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no input files"));
}

#[test]
fn unreadable_file_is_named_and_exits_3() {
    let d = tempfile::tempdir().unwrap();
    let good = write(d.path(), "api.log", R1.as_bytes());
    let missing = d.path().join("gone.log");
    let out = run(&[
        good.to_str().unwrap(),
        missing.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gone.log"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line per file: {err}");
    assert_eq!(json(&out)["requests"]["total"], 1);
}

#[test]
fn usage_errors_exit_2_without_backtrace() {
    for args in [
        &["--no-such-flag"][..],
        &["x", "--threads", "0"],
        &["x", "--tz", "Mars/Olympus"],
        &["x", "--skew-threshold", "fast"],
        &["x", "-o", "yaml"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{err}"
        );
    }
}

#[test]
fn strict_names_file_line_and_reason() {
    let d = tempfile::tempdir().unwrap();
    let body = format!("{R1}ts=2024-05-01T10:00:01Z svc=api event=sr\n");
    write(d.path(), "api.log", body.as_bytes());
    let lax = run(&[d.path().to_str().unwrap(), "-o", "json"]);
    assert_eq!(lax.status.code(), Some(0));
    assert_eq!(json(&lax)["input"]["skipped"]["no_request_id"], 1);
    let out = run(&[d.path().to_str().unwrap(), "--strict"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("api.log:3: no_request_id"), "{err}");
}

#[test]
fn reads_stdin_when_piped() {
    let mut child = hopscope()
        .args(["-o", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(R1.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["requests"]["total"], 1);
    assert_eq!(v["input"]["lines"], 2);
}

#[test]
fn stdin_without_service_field_is_named_stdin() {
    let mut child = hopscope()
        .args(["-", "-o", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"ts\":\"2024-05-01T10:00:00Z\",\"trace_id\":\"t1\",\"duration\":3}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let v = json(&out);
    assert_eq!(v["services"][0]["service"], "stdin");
    assert_eq!(v["services"][0]["processing_ms"]["p50"], 3.0);
}

#[test]
fn gzip_and_zstd_files_are_read() {
    let d = tempfile::tempdir().unwrap();
    let gz_bytes = gzip(R1.as_bytes());
    write(d.path(), "api/api.log.1.gz", &gz_bytes);
    let r2 = R1
        .replace("r1", "r2")
        .replace("10:00:00.004", "10:00:00.009");
    let zst = zstd::encode_all(r2.as_bytes(), 3).unwrap();
    write(d.path(), "api/api.log.2.zst", &zst);
    let out = run(&[d.path().to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["input"]["files"], 2);
    assert_eq!(v["input"]["bytes"], (gz_bytes.len() + zst.len()) as u64);
    assert_eq!(v["requests"]["total"], 2);
    assert_eq!(v["services"][0]["service"], "api");
    assert_eq!(v["services"][0]["processing_ms"]["max"], 9.0);
}

#[test]
fn binary_files_are_counted_and_skipped() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "api.log", R1.as_bytes());
    write(d.path(), "core.bin", b"\x7fELF\0\0\0binary");
    let v = json(&run(&[d.path().to_str().unwrap(), "-o", "json"]));
    assert_eq!(v["input"]["binary_files"], 1);
    assert_eq!(v["input"]["lines"], 2);
}

#[test]
fn file_without_records_warns_and_exits_0() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "api.log", R1.as_bytes());
    write(d.path(), "notes.log", b"just some text\nwith no ids\n");
    let out = run(&[d.path().to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["input"]["skipped"]["unknown_format"], 2);
    let codes: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"no_records"), "{codes:?}");
}

#[test]
fn csv_tables() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "api.log", R1.as_bytes());
    let p = d.path().to_str().unwrap();
    let out = run(&[p, "-o", "csv"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(
        header
            .starts_with("from,to,virtual,calls,failed,failure_rate,exact_fraction,call_ms.count,")
    );
    assert!(header.contains("processing_ms.p50"));
    let row = lines.next().unwrap();
    // (client) → api: no call block (7 empty cells), processing 4.0.
    assert!(
        row.starts_with("(client),api,false,1,0,0.0,1.0,,,,,,,,1,4.0,4.0,"),
        "{row}"
    );
    let out = run(&[p, "-o", "csv", "--table", "services"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("api,false,1,0,0.0,0,1.0,1,4.0")
    );
}

#[test]
fn table_output_has_every_section() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "api.log", R1.as_bytes());
    let out = run(&[d.path().to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("1 requests: 1 complete, 0 incomplete"),
        "{text}"
    );
    for section in [
        "Services",
        "Hops",
        "Chains",
        "Input: 1 files, 2 lines, 2 records",
    ] {
        assert!(text.contains(section), "{section} missing in:\n{text}");
    }
    assert!(text.contains("(client) → api"));
}

#[test]
fn since_and_until_select_requests_by_root_start() {
    let d = tempfile::tempdir().unwrap();
    let body = format!(
        "{R1}ts=2024-05-01T11:00:00.000Z req_id=r2 svc=api event=sr\n\
         ts=2024-05-01T11:00:00.010Z req_id=r2 svc=api event=ss\n"
    );
    write(d.path(), "api.log", body.as_bytes());
    let p = d.path().to_str().unwrap();
    let v = json(&run(&[p, "-o", "json", "--since", "2024-05-01T10:30:00Z"]));
    assert_eq!(v["requests"]["total"], 1);
    assert_eq!(v["requests"]["latency_ms"]["max"], 10.0);
    let v = json(&run(&[p, "-o", "json", "--until", "2024-05-01T10:30:00Z"]));
    assert_eq!(v["requests"]["latency_ms"]["max"], 4.0);
    // Relative to the newest record (11:00:00.010): the last 30 minutes.
    let v = json(&run(&[p, "-o", "json", "--since", "30m"]));
    assert_eq!(v["requests"]["total"], 1);
    assert_eq!(v["options"]["since"], "30m");
}

#[test]
fn max_gap_splits_a_reused_id() {
    let d = tempfile::tempdir().unwrap();
    let body = format!(
        "{R1}ts=2024-05-01T12:00:00.000Z req_id=r1 svc=api event=sr\n\
         ts=2024-05-01T12:00:00.010Z req_id=r1 svc=api event=ss\n"
    );
    write(d.path(), "api.log", body.as_bytes());
    let p = d.path().to_str().unwrap();
    let whole = json(&run(&[p, "-o", "json"]));
    assert_eq!(whole["requests"]["total"], 1);
    assert_eq!(whole["requests"]["split"], 0);
    let v = json(&run(&[p, "-o", "json", "--max-gap", "1m"]));
    assert_eq!(v["requests"]["total"], 2);
    assert_eq!(v["requests"]["split"], 1);
    assert_eq!(v["services"][0]["visits"], 2);
}

#[test]
fn broken_pipe_exits_0() {
    let d = tempfile::tempdir().unwrap();
    let mut body = String::new();
    for i in 0..3000 {
        body.push_str(&format!(
            "ts=2024-05-01T10:00:00.000Z req_id=r{i} svc=api{} duration=1\n",
            i % 500
        ));
    }
    write(d.path(), "api.log", body.as_bytes());
    let mut child = hopscope()
        .args([d.path().to_str().unwrap(), "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn files_explains_how_each_file_was_read() {
    let out = run(&["files", "testdata/logs", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = v.as_array().unwrap();
    assert_eq!(files.len(), 5);
    // payments: JSON, service from its flat `service.name` field, IDs from
    // `trace_id`, epoch-ms `@timestamp` (testdata/EXPECTED.md).
    let payments = files
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("payments.log"))
        .unwrap();
    assert_eq!(payments["format"], "json");
    assert_eq!(payments["fields"]["id"], "trace_id");
    assert_eq!(payments["fields"]["ts"], "@timestamp");
    assert_eq!(payments["fields"]["service"], "service.name");
    assert_eq!(payments["service_from_field"], payments["records"]);
    // gateway: logfmt, 40 lines = 38 records + 1 blank + 1 without an ID.
    let gateway = &files[0];
    assert_eq!(gateway["format"], "logfmt");
    assert_eq!(gateway["service"], "gateway");
    assert_eq!(gateway["service_rule"], "path");
    assert_eq!(gateway["lines"], 40);
    assert_eq!(gateway["records"], 38);
    assert_eq!(gateway["skipped"]["no_request_id"], 1);
    let table = String::from_utf8(run(&["files", "testdata/logs"]).stdout).unwrap();
    assert!(
        table.contains("  service  gateway (from the path)"),
        "{table}"
    );
}

#[test]
fn formats_lists_every_preset_with_an_example() {
    let out = run(&["formats"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for name in [
        "json",
        "logfmt",
        "openstack",
        "skywalking",
        "nginx",
        "envoy",
        "docker",
        "cri",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
    assert_eq!(text.matches("example:").count(), 5);
}

#[test]
fn a_preset_reads_text_lines_and_a_bad_pattern_is_a_usage_error() {
    let d = tempfile::tempdir().unwrap();
    let line = "10.0.0.1 - - [01/May/2024:10:00:00 +0000] \"GET /api HTTP/1.1\" 200 512 \"-\" \"curl/8\" 4f2a9c 0.012\n";
    write(d.path(), "nginx.log", line.as_bytes());
    let p = d.path().to_str().unwrap();
    let v = json(&run(&[p, "--preset", "nginx", "-o", "json"]));
    assert_eq!(v["requests"]["total"], 1);
    assert_eq!(v["services"][0]["service"], "nginx");
    assert_eq!(v["services"][0]["processing_ms"]["max"], 12.0);
    let out = run(&[p, "--pattern", "(?P<ts>\\S+)"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("request_id"));
    let out = run(&[p, "--preset", "nope"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn cri_container_logs_are_unwrapped_and_named_by_pod() {
    let d = tempfile::tempdir().unwrap();
    let body = CRI_LINES;
    write(
        d.path(),
        "var/log/containers/orders-7d9f8b6c5d-x2x4z_shop_orders-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.log",
        body.as_bytes(),
    );
    let v = json(&run(&[d.path().to_str().unwrap(), "-o", "json"]));
    assert_eq!(v["services"][0]["service"], "orders");
    assert_eq!(v["services"][0]["processing_ms"]["max"], 4.0);
    // Two pieces of one line count as one line.
    assert_eq!(v["input"]["lines"], 2);
    assert_eq!(v["input"]["records"], 2);
}

#[test]
fn span_exports_are_named_with_a_hint() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "api.log", R1.as_bytes());
    write(
        d.path(),
        "trace.json",
        b"[\n  {\n    \"traceId\": \"978883983d506fa5\",\n    \"id\": \"978883983d506fa5\",\n    \"localEndpoint\": {\"serviceName\": \"envoy\"}\n  }\n]\n",
    );
    let out = run(&[d.path().to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    let warning = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "span_export")
        .expect("span_export warning");
    assert!(warning["message"].as_str().unwrap().contains("trace.json"));
    assert_eq!(v["requests"]["total"], 1);
}

/// `n` requests `prefix1..` that api serves alone, as logfmt lines.
fn lone_requests(prefix: &str, n: usize) -> String {
    (1..=n)
        .map(|i| {
            format!(
                "ts=2024-05-01T10:00:{i:02}.000Z req_id={prefix}{i} svc=api event=sr\n\
                 ts=2024-05-01T10:00:{i:02}.004Z req_id={prefix}{i} svc=api event=ss\n"
            )
        })
        .collect()
}

/// `n` requests `c1..` in which api calls db.
fn two_service_requests(n: usize) -> String {
    (1..=n)
        .map(|i| {
            format!(
                "ts=2024-05-01T10:01:{i:02}.000Z req_id=c{i} svc=api event=sr\n\
                 ts=2024-05-01T10:01:{i:02}.001Z req_id=c{i} svc=api event=cs peer=db\n\
                 ts=2024-05-01T10:01:{i:02}.002Z req_id=c{i} svc=db event=sr\n\
                 ts=2024-05-01T10:01:{i:02}.003Z req_id=c{i} svc=db event=ss\n\
                 ts=2024-05-01T10:01:{i:02}.004Z req_id=c{i} svc=api event=cr\n\
                 ts=2024-05-01T10:01:{i:02}.005Z req_id=c{i} svc=api event=ss\n"
            )
        })
        .collect()
}

/// The `single_service_requests` warning's message, if the report has it.
fn single_service_warning(body: &str) -> Option<String> {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "all.log", body.as_bytes());
    let v = json(&run(&[d.path().to_str().unwrap(), "-o", "json"]));
    v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "single_service_requests")
        .map(|w| w["message"].as_str().unwrap().to_string())
}

#[test]
fn most_requests_on_one_service_warn_about_the_id_field() {
    // 11 of 21 requests see only api: more than half, so a warning.
    let body = two_service_requests(10) + &lone_requests("a", 11);
    let message = single_service_warning(&body).expect("warning");
    assert!(
        message.starts_with("11 of 21 requests touch only one service"),
        "{message}"
    );
    // Exactly half (10 of 20) is not more than half: no warning.
    let body = two_service_requests(10) + &lone_requests("a", 10);
    assert_eq!(single_service_warning(&body), None);
    // IDs that never match across services: every request is alone.
    let db: String = lone_requests("d", 12).replace("svc=api", "svc=db");
    let message = single_service_warning(&(lone_requests("a", 12) + &db)).expect("warning");
    assert!(
        message.starts_with("24 of 24 requests touch only one service"),
        "{message}"
    );
}

/// Issue-level contract of the progress bar: on stderr, only when stderr is
/// a terminal and the input is at least 100 MB, and never with `--quiet`.
/// One 106 MB file (one 5 ms request, then 101 lines of 1 MiB that are not
/// JSON) serves all three runs; the terminal is a pseudo-terminal from
/// util-linux `script`.
#[test]
fn progress_bar_only_on_a_terminal_and_never_quiet() {
    let d = tempfile::tempdir().unwrap();
    let mut body = Vec::with_capacity(106 << 20);
    body.extend_from_slice(
        b"{\"ts\":\"2024-05-01T10:00:00.000Z\",\"service\":\"gateway\",\"request_id\":\"r1\",\"event\":\"server_recv\"}\n\
          {\"ts\":\"2024-05-01T10:00:00.005Z\",\"service\":\"gateway\",\"request_id\":\"r1\",\"event\":\"server_send\"}\n",
    );
    for _ in 0..101 {
        body.extend(std::iter::repeat_n(b'x', 1 << 20));
        body.push(b'\n');
    }
    let file = write(d.path(), "big.log", &body);
    let path = file.to_str().unwrap();

    // Piped stderr (a CI log): the report, and nothing on stderr.
    let out = run(&[path, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["input"]["bytes"], 2 * 94 + 101 * ((1 << 20) + 1));
    assert_eq!(v["input"]["records"], 2);
    assert_eq!(v["input"]["skipped"]["parse_error"], 101);
    assert_eq!(v["requests"]["latency_ms"]["max"], 5.0);

    // On a terminal: the bar, over the input's 101.0 MiB.
    let on_tty = |extra: &str| {
        let cmd = format!(
            "'{}' '{path}' -o json {extra} > /dev/null",
            env!("CARGO_BIN_EXE_hopscope")
        );
        let out = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .output()
            .expect("util-linux `script` (a pseudo-terminal) is needed for this test");
        assert_eq!(out.status.code(), Some(0), "{cmd}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = on_tty("");
    assert!(
        shown.contains("reading") && shown.contains("/101.00 MiB"),
        "no progress bar on a terminal: {shown:?}"
    );
    let quiet = on_tty("--quiet");
    assert!(
        !quiet.contains("reading"),
        "a bar despite --quiet: {quiet:?}"
    );
}

/// A compressed container log (kubelet's rotated `/var/log/pods` file) is
/// parsed in one piece however small the pieces: a line split by the
/// runtime (`P`) joins across what would be a piece boundary.
#[test]
fn compressed_cri_log_joins_partial_lines_across_pieces() {
    let d = tempfile::tempdir().unwrap();
    let body = CRI_LINES;
    write(
        d.path(),
        "var/log/pods/shop_orders-7d9f8b6c5d-x2x4z_0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/orders/0.log.20240501-101010.gz",
        &gzip(body.as_bytes()),
    );
    for chunk in ["1", "8388608"] {
        let out = run(&[
            d.path().to_str().unwrap(),
            "-o",
            "json",
            "--chunk-size",
            chunk,
        ]);
        let v = json(&out);
        assert_eq!(v["services"][0]["service"], "orders", "chunk {chunk}");
        assert_eq!(
            v["services"][0]["processing_ms"]["max"], 4.0,
            "chunk {chunk}"
        );
        assert_eq!(v["input"]["lines"], 2, "chunk {chunk}");
        assert_eq!(v["input"]["records"], 2, "chunk {chunk}");
    }
}

/// A `.gz` file whose tail is corrupt: the requests in the lines before the
/// damage are counted, the file is named with the reason on stderr, and the
/// run exits 3 (some input could not be read). 3,000 requests of 4 ms in
/// 6,000 lines, then garbage; pieces of 4 KiB so that the damage is found
/// well after the first pieces were parsed.
#[test]
fn corrupt_gzip_tail_keeps_the_lines_before_it_and_exits_3() {
    let d = tempfile::tempdir().unwrap();
    let mut body = String::new();
    for i in 0..3000 {
        body.push_str(&format!(
            "ts=2024-05-01T10:00:{:02}.000Z req_id=r{i} svc=api event=sr\n\
             ts=2024-05-01T10:00:{:02}.004Z req_id=r{i} svc=api event=ss\n",
            i % 60,
            i % 60
        ));
    }
    let mut raw = gzip(body.as_bytes());
    raw.extend_from_slice(b"\x1f\x8b\x08\x00not a deflate stream at all");
    let p = write(d.path(), "api.log.gz", &raw);
    let out = run(&[p.to_str().unwrap(), "-o", "json", "--chunk-size", "4096"]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("api.log.gz") && stderr.contains("the lines before it are counted"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let v = json(&out);
    assert_eq!(v["requests"]["total"], 3000);
    assert_eq!(v["input"]["records"], 6000);
    assert_eq!(v["services"][0]["processing_ms"]["max"], 4.0);
    assert_eq!(v["input"]["bytes"], raw.len() as u64);
}

/// `--strict` names the right line of a streamed file whose first bad line
/// lies pieces after its start: 500 good lines (250 requests), a blank
/// line, then a line without a request ID at line 502, then more good
/// lines; pieces of 256 bytes (about four lines each) in a `.gz`, and the
/// same file plain under `--no-mmap` and mapped.
#[test]
fn strict_line_number_of_a_streamed_file_counts_earlier_pieces() {
    let d = tempfile::tempdir().unwrap();
    let mut body = String::new();
    for i in 0..250 {
        body.push_str(&R1.replace("r1", &format!("r{i}")));
    }
    body.push('\n');
    body.push_str("ts=2024-05-01T10:00:01Z svc=api event=sr\n");
    body.push_str(&R1.replace("r1", "late"));
    let packed = write(d.path(), "gz/api.log.gz", &gzip(body.as_bytes()));
    let plain = write(d.path(), "plain/api.log", body.as_bytes());
    for (path, extra) in [
        (&packed, None),
        (&plain, Some("--no-mmap")),
        (&plain, Some("--mmap")),
    ] {
        let mut args = vec![path.to_str().unwrap(), "--strict", "--chunk-size", "256"];
        args.extend(extra);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("api.log.gz:502: no_request_id")
                || err.contains("api.log:502: no_request_id"),
            "{args:?}: {err}"
        );
    }
}

/// Standard input is streamed too, in pieces as small as one line, with
/// the same report whatever the piece size: 400 requests of 4 ms (one in
/// four failed by a status 503 on its server_send), written by a thread
/// while hopscope reads, and the bytes counted.
#[test]
fn stdin_is_streamed_with_the_same_report_for_any_piece_size() {
    let mut body = String::new();
    for i in 0..400 {
        let status = if i % 4 == 0 { 503 } else { 200 };
        body.push_str(&format!(
            "ts=2024-05-01T10:00:00.000Z req_id=q{i} svc=api event=sr\n\
             ts=2024-05-01T10:00:00.004Z req_id=q{i} svc=api event=ss status={status}\n"
        ));
    }
    let mut reports = Vec::new();
    for chunk in ["1", "100", "8388608"] {
        let mut child = hopscope()
            .args(["-o", "json", "--chunk-size", chunk])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let text = body.clone();
        let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()).unwrap());
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert_eq!(out.status.code(), Some(0), "chunk {chunk}");
        let v = json(&out);
        assert_eq!(v["requests"]["total"], 400, "chunk {chunk}");
        assert_eq!(v["requests"]["failed"], 100, "chunk {chunk}");
        assert_eq!(
            v["services"][0]["processing_ms"]["max"], 4.0,
            "chunk {chunk}"
        );
        assert_eq!(v["input"]["bytes"], body.len() as u64, "chunk {chunk}");
        reports.push(out.stdout);
    }
    assert!(reports.windows(2).all(|w| w[0] == w[1]));
}
