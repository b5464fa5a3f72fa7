//! Terminal rendering of a [`Report`]: a summary line, the services, hops and
//! chains tables (comfy-table), and a footer with skips, skew and warnings.
//! Names from logs are sanitised so control characters never reach the
//! terminal raw.

use std::io::Write;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

use super::{HopRow, Report, ServiceRow};
use crate::cli::SortKey;
use crate::measure::histogram::Block;

/// Replaces control characters (ANSI escapes included) with visible escapes.
pub fn sanitize(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Formats milliseconds with a unit that keeps 3 significant digits.
pub fn fmt_ms(ms: f64) -> String {
    let a = ms.abs();
    if a == 0.0 {
        "0".to_string()
    } else if a < 1.0 {
        format!("{:.0}µs", ms * 1000.0)
    } else if a < 10.0 {
        format!("{ms:.2}ms")
    } else if a < 1000.0 {
        format!("{ms:.1}ms")
    } else if a < 60_000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else {
        format!("{:.1}m", ms / 60_000.0)
    }
}

fn q(b: &Option<Block>, f: fn(&Block) -> f64) -> String {
    b.as_ref().map_or("-".to_string(), |b| fmt_ms(f(b)))
}

fn pct(r: Option<f64>) -> String {
    match r {
        None => "-".to_string(),
        Some(x) if x <= 0.0 => "0%".to_string(),
        Some(x) if x * 100.0 < 0.1 => "<0.1%".to_string(),
        Some(x) => format!("{:.1}%", x * 100.0),
    }
}

fn total_time(b: &Option<Block>) -> f64 {
    b.as_ref().map_or(0.0, |b| b.mean * b.count as f64)
}

fn new_table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(headers.iter().map(Cell::new));
    t
}

fn right_align(t: &mut Table, from: usize) {
    let n = t.column_count();
    for i in from..n {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

fn sort_services(rows: &mut [&ServiceRow], key: SortKey) {
    rows.sort_by(|a, b| {
        let k = |r: &ServiceRow| -> f64 {
            match key {
                SortKey::Time => total_time(&r.processing_ms),
                SortKey::Calls => r.visits as f64,
                SortKey::P99 => r.processing_ms.as_ref().map_or(0.0, |b| b.p99),
                SortKey::Failures => r.failed as f64,
            }
        };
        k(b).total_cmp(&k(a))
            .then_with(|| a.service.cmp(&b.service))
    });
}

fn sort_hops(rows: &mut [&HopRow], key: SortKey) {
    rows.sort_by(|a, b| {
        let main = |r: &HopRow| r.processing_ms.clone().or_else(|| r.call_ms.clone());
        let k = |r: &HopRow| -> f64 {
            match key {
                SortKey::Time => total_time(&main(r)),
                SortKey::Calls => r.calls as f64,
                SortKey::P99 => main(r).map_or(0.0, |b| b.p99),
                SortKey::Failures => r.failed as f64,
            }
        };
        k(b).total_cmp(&k(a))
            .then_with(|| (&a.from, &a.to).cmp(&(&b.from, &b.to)))
    });
}

/// Writes the terminal report.
pub fn write_table(
    report: &Report,
    top: usize,
    sort: SortKey,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let r = &report.requests;
    let lat = &r.latency_ms;
    writeln!(
        out,
        "{} requests: {} complete, {} incomplete; {} failed ({}), {} failed at the root; latency p50 {} p99 {} max {}",
        r.total,
        r.complete,
        r.incomplete,
        r.failed,
        pct(r.failure_rate),
        r.root_failed,
        q(lat, |b| b.p50),
        q(lat, |b| b.p99),
        q(lat, |b| b.max),
    )?;

    writeln!(out, "\nServices")?;
    let mut t = new_table(&[
        "service", "visits", "failed", "proc p50", "proc p99", "self p50", "exact",
    ]);
    let mut rows: Vec<&ServiceRow> = report.services.iter().collect();
    sort_services(&mut rows, sort);
    for s in rows.iter().take(top) {
        let name = if s.virtual_ {
            format!("{} (virtual)", sanitize(&s.service))
        } else {
            sanitize(&s.service)
        };
        t.add_row(vec![
            name,
            s.visits.to_string(),
            pct(s.failure_rate),
            q(&s.processing_ms, |b| b.p50),
            q(&s.processing_ms, |b| b.p99),
            q(&s.self_ms, |b| b.p50),
            pct(s.exact_fraction),
        ]);
    }
    right_align(&mut t, 1);
    writeln!(out, "{t}")?;
    more(out, rows.len(), top)?;

    writeln!(out, "\nHops")?;
    let mut t = new_table(&[
        "hop", "calls", "failed", "proc p50", "proc p99", "prop p50", "prop p99", "exact",
    ]);
    let mut rows: Vec<&HopRow> = report.hops.iter().collect();
    sort_hops(&mut rows, sort);
    for h in rows.iter().take(top) {
        let (p50, p99) = if h.processing_ms.is_some() {
            (
                q(&h.processing_ms, |b| b.p50),
                q(&h.processing_ms, |b| b.p99),
            )
        } else {
            (
                q(&h.call_ms, |b| b.p50) + " call",
                q(&h.call_ms, |b| b.p99) + " call",
            )
        };
        t.add_row(vec![
            format!("{} → {}", sanitize(&h.from), sanitize(&h.to)),
            h.calls.to_string(),
            pct(h.failure_rate),
            p50,
            p99,
            q(&h.propagation_ms, |b| b.p50),
            q(&h.propagation_ms, |b| b.p99),
            pct(h.exact_fraction),
        ]);
    }
    right_align(&mut t, 1);
    writeln!(out, "{t}")?;
    more(out, rows.len(), top)?;

    writeln!(out, "\nChains")?;
    let mut t = new_table(&["chain", "requests", "failed", "p50", "p99"]);
    for c in report.chains.iter().take(top) {
        t.add_row(vec![
            sanitize(&c.chain),
            c.requests.to_string(),
            pct(c.failure_rate),
            q(&c.latency_ms, |b| b.p50),
            q(&c.latency_ms, |b| b.p99),
        ]);
    }
    right_align(&mut t, 1);
    writeln!(out, "{t}")?;
    more(out, report.chains.len(), top)?;

    write_time_shares(report, top, out)?;

    let i = &report.input;
    let skipped: Vec<String> = i
        .skipped
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    writeln!(
        out,
        "\nInput: {} files, {} lines, {} records, {} blank; skipped: {}",
        i.files,
        i.lines,
        i.records,
        i.blank,
        if skipped.is_empty() {
            "none".to_string()
        } else {
            skipped.join(", ")
        }
    )?;
    let applied: Vec<String> = report
        .skew
        .pairs
        .iter()
        .filter(|p| p.applied)
        .map(|p| {
            format!(
                "{} → {} {:+}ms over {} hops",
                sanitize(&p.from),
                sanitize(&p.to),
                p.offset_ms,
                p.hops
            )
        })
        .collect();
    if !applied.is_empty() {
        writeln!(out, "Clock skew corrected: {}", applied.join("; "))?;
    }
    for w in &report.warnings {
        writeln!(out, "warning[{}]: {}", w.code, sanitize(&w.message))?;
    }
    Ok(())
}

/// The critical-path table: the share of all requests' latency that each
/// service's own work and each hop's propagation is responsible for.
fn write_time_shares(report: &Report, top: usize, out: &mut dyn Write) -> std::io::Result<()> {
    let total = total_time(&report.requests.latency_ms);
    if total <= 0.0 {
        return Ok(());
    }
    let mut rows: Vec<(String, f64)> = Vec::new();
    for s in &report.services {
        let t = total_time(&s.critical_ms);
        if t > 0.0 {
            let kind = if s.virtual_ { "call" } else { "work" };
            rows.push((format!("{} ({kind})", sanitize(&s.service)), t));
        }
    }
    for h in &report.hops {
        let t = total_time(&h.critical_ms);
        if t > 0.0 {
            rows.push((
                format!("{} → {} (propagation)", sanitize(&h.from), sanitize(&h.to)),
                t,
            ));
        }
    }
    rows.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    writeln!(out, "\nWhere the time goes (critical path)")?;
    let mut t = new_table(&["on the path", "share", "per request"]);
    let requests = report
        .requests
        .latency_ms
        .as_ref()
        .map_or(1.0, |b| b.count.max(1) as f64);
    for (name, time) in rows.iter().take(top) {
        t.add_row(vec![
            name.clone(),
            format!("{:.1}%", time / total * 100.0),
            fmt_ms(time / requests),
        ]);
    }
    right_align(&mut t, 1);
    writeln!(out, "{t}")?;
    more(out, rows.len(), top)
}

fn more(out: &mut dyn Write, len: usize, top: usize) -> std::io::Result<()> {
    if len > top {
        writeln!(
            out,
            "… {} more rows (--top N shows more; -o json has all)",
            len - top
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(fmt_ms(0.35), "350µs");
        assert_eq!(fmt_ms(2.5), "2.50ms");
        assert_eq!(fmt_ms(12.5), "12.5ms");
        assert_eq!(fmt_ms(1200.0), "1.20s");
        assert_eq!(fmt_ms(62_500.0), "1.0m");
        assert_eq!(fmt_ms(-5.0), "-5.00ms");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(sanitize("ok"), "ok");
        assert_eq!(sanitize("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(sanitize("x\ny"), "x\\ny");
    }
}
