//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The directory that holds the product contract and its worked examples.
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

/// This repository's root.
pub fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// A command running the built binary.
pub fn hopscope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hopscope"))
}

/// Runs the binary with `args`, returning its whole output.
pub fn run(args: &[&str]) -> Output {
    hopscope().args(args).output().unwrap()
}

/// Runs `hopscope report <args> -o json`, asserts exit 0, and parses stdout.
pub fn report_json(args: &[&str]) -> Value {
    let mut full = vec!["report"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-o", "json"]);
    let out = run(&full);
    assert!(
        out.status.success(),
        "hopscope {:?} exited {:?}\nstderr:\n{}",
        full,
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The entry of `array` whose `key` field equals `value`.
pub fn find<'a>(array: &'a Value, key: &str, value: &str) -> &'a Value {
    array
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e[key] == value)
        .unwrap_or_else(|| panic!("no entry with {key} = {value} in {array}"))
}

/// The hop `from` → `to` of a report.
pub fn hop<'a>(report: &'a Value, from: &str, to: &str) -> &'a Value {
    report["hops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["from"] == from && h["to"] == to)
        .unwrap_or_else(|| panic!("no hop {from}>{to} in {}", report["hops"]))
}

/// The report's service names, in its order.
pub fn service_names(report: &Value) -> Vec<&str> {
    report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect()
}

/// Skipped lines of a report's `input` block, all reasons together.
pub fn skipped_total(input: &Value) -> u64 {
    input["skipped"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum()
}

/// The service row named `name`.
pub fn service<'a>(report: &'a Value, name: &str) -> &'a Value {
    find(&report["services"], "service", name)
}

/// Asserts a latency block: exact count, mean and max; quantiles within the
/// SPEC's tolerance (1 % relative or 1 µs). `q` = [p50, p90, p95, p99].
pub fn assert_block(block: &Value, count: u64, mean: f64, q: [f64; 4], max: f64) {
    assert!(block.is_object(), "expected a block, got {block}");
    assert_eq!(block["count"].as_u64(), Some(count), "count in {block}");
    assert_close(block["mean"].as_f64().unwrap(), mean, 0.0, "mean", block);
    assert_close(block["max"].as_f64().unwrap(), max, 0.0, "max", block);
    for (name, want) in ["p50", "p90", "p95", "p99"].iter().zip(q) {
        let got = block[*name].as_f64().unwrap();
        let tol = (want.abs() * 0.01).max(0.001);
        assert_close(got, want, tol, name, block);
    }
}

/// Asserts a block whose values are all `v` (count `count`).
pub fn assert_const_block(block: &Value, count: u64, v: f64) {
    assert_block(block, count, v, [v, v, v, v], v);
}

fn assert_close(got: f64, want: f64, tol: f64, what: &str, block: &Value) {
    assert!(
        (got - want).abs() <= tol + 1e-9,
        "{what}: got {got}, want {want} (±{tol}) in {block}"
    );
}
