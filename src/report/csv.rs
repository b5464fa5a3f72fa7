//! `-o csv`: one RFC 4180 table (services, hops or chains), latency blocks
//! flattened as `processing_ms.p50`, null as an empty cell.

use std::io::Write;

use super::Report;
use crate::cli::CsvTable;
use crate::measure::histogram::Block;

const BLOCK_FIELDS: [&str; 7] = ["count", "mean", "p50", "p90", "p95", "p99", "max"];

fn block_headers(name: &str, out: &mut Vec<String>) {
    for f in BLOCK_FIELDS {
        out.push(format!("{name}.{f}"));
    }
}

fn block_cells(b: &Option<Block>, out: &mut Vec<String>) {
    match b {
        None => out.extend(std::iter::repeat_n(String::new(), BLOCK_FIELDS.len())),
        Some(b) => {
            out.push(b.count.to_string());
            for v in [b.mean, b.p50, b.p90, b.p95, b.p99, b.max] {
                out.push(num(v));
            }
        }
    }
}

/// Formats a number the way serde_json writes an f64.
fn num(v: f64) -> String {
    serde_json::Value::from(v).to_string()
}

fn opt_num(v: Option<f64>) -> String {
    v.map(num).unwrap_or_default()
}

/// Writes the chosen table.
pub fn write_csv(report: &Report, table: CsvTable, out: &mut dyn Write) -> std::io::Result<()> {
    let mut w = ::csv::Writer::from_writer(out);
    let mut header: Vec<String> = Vec::new();
    match table {
        CsvTable::Services => {
            for h in [
                "service",
                "virtual",
                "visits",
                "failed",
                "failure_rate",
                "origin_failures",
                "exact_fraction",
            ] {
                header.push(h.to_string());
            }
            for b in ["processing_ms", "self_ms", "critical_ms"] {
                block_headers(b, &mut header);
            }
            w.write_record(&header)?;
            for s in &report.services {
                let mut row = vec![
                    s.service.clone(),
                    s.virtual_.to_string(),
                    s.visits.to_string(),
                    s.failed.to_string(),
                    opt_num(s.failure_rate),
                    s.origin_failures.to_string(),
                    opt_num(s.exact_fraction),
                ];
                for b in [&s.processing_ms, &s.self_ms, &s.critical_ms] {
                    block_cells(b, &mut row);
                }
                w.write_record(&row)?;
            }
        }
        CsvTable::Hops => {
            for h in [
                "from",
                "to",
                "virtual",
                "calls",
                "failed",
                "failure_rate",
                "exact_fraction",
            ] {
                header.push(h.to_string());
            }
            for b in [
                "call_ms",
                "processing_ms",
                "propagation_ms",
                "request_leg_ms",
                "response_leg_ms",
                "critical_ms",
            ] {
                block_headers(b, &mut header);
            }
            header.push("slowest_request".into());
            header.push("failed_request".into());
            w.write_record(&header)?;
            for h in &report.hops {
                let mut row = vec![
                    h.from.clone(),
                    h.to.clone(),
                    h.virtual_.to_string(),
                    h.calls.to_string(),
                    h.failed.to_string(),
                    opt_num(h.failure_rate),
                    opt_num(h.exact_fraction),
                ];
                for b in [
                    &h.call_ms,
                    &h.processing_ms,
                    &h.propagation_ms,
                    &h.request_leg_ms,
                    &h.response_leg_ms,
                    &h.critical_ms,
                ] {
                    block_cells(b, &mut row);
                }
                row.push(h.slowest_request.clone().unwrap_or_default());
                row.push(h.failed_request.clone().unwrap_or_default());
                w.write_record(&row)?;
            }
        }
        CsvTable::Chains => {
            for h in ["chain", "requests", "failed", "failure_rate"] {
                header.push(h.to_string());
            }
            block_headers("latency_ms", &mut header);
            header.push("slowest_request".into());
            header.push("failed_request".into());
            w.write_record(&header)?;
            for c in &report.chains {
                let mut row = vec![
                    c.chain.clone(),
                    c.requests.to_string(),
                    c.failed.to_string(),
                    opt_num(c.failure_rate),
                ];
                block_cells(&c.latency_ms, &mut row);
                row.push(c.slowest_request.clone().unwrap_or_default());
                row.push(c.failed_request.clone().unwrap_or_default());
                w.write_record(&row)?;
            }
        }
    }
    w.flush()
}
