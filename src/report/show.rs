//! `hopscope show`: one request as a tree and a waterfall in the terminal —
//! a line per visit indented by depth, a bar scaled to the request's span,
//! processing / self / propagation figures, the critical path, failures and
//! their origin, estimated timings, skew shifts and virtual services.

use std::io::Write;

use crate::assemble::{Assembled, Universe, VisitFigures};
use crate::measure::histogram::ns_to_ms;
use crate::parse::time::format_rfc3339_ns;

use super::table::{fmt_ms, sanitize};

/// How to draw.
#[derive(Clone, Debug)]
pub struct Style {
    /// ANSI colours (red failures, bold critical path).
    pub color: bool,
    /// Columns available.
    pub width: usize,
}

/// The terminal's width, else `COLUMNS`, else 100.
pub fn terminal_width() -> usize {
    if let Some((terminal_size::Width(w), _)) = terminal_size::terminal_size() {
        return usize::from(w).max(40);
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|&w| w >= 40)
        .unwrap_or(100)
}

const RED: &str = "\x1b[31m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

fn opt_ms(v: Option<i64>) -> String {
    v.map_or("-".to_string(), |x| fmt_ms(ns_to_ms(x)))
}

/// Visits in depth-first order with their depth.
fn tree_order(a: &Assembled) -> Vec<(usize, usize)> {
    let n = a.visits.len();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut roots = Vec::new();
    for (i, v) in a.visits.iter().enumerate() {
        match v.parent.and_then(|p| children.get_mut(p)) {
            Some(c) => c.push(i),
            None => roots.push(i),
        }
    }
    let mut out = Vec::with_capacity(n);
    let mut stack: Vec<(usize, usize)> = roots.into_iter().rev().map(|r| (r, 0)).collect();
    while let Some((v, d)) = stack.pop() {
        out.push((v, d));
        for &c in children.get(v).into_iter().flatten().rev() {
            stack.push((c, d + 1));
        }
    }
    out
}

/// `s` cut to `w` characters, with `…` where it was cut.
fn clip(s: &str, w: usize) -> String {
    if char_width(s) <= w {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// `s` cut into lines of at most `w` characters.
fn hard_wrap(s: &str, w: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(w.max(1)).map(|c| c.iter().collect()).collect()
}

fn char_width(s: &str) -> usize {
    s.chars().count()
}

fn pad(s: &str, w: usize) -> String {
    let n = char_width(s);
    if n >= w {
        s.chars().take(w).collect()
    } else {
        format!("{s}{}", " ".repeat(w - n))
    }
}

fn lpad(s: &str, w: usize) -> String {
    let n = char_width(s);
    if n >= w {
        s.to_string()
    } else {
        format!("{}{s}", " ".repeat(w - n))
    }
}

/// The bar of one visit over `[t0, t0 + span]` in `cols` columns.
fn bar(v: &VisitFigures, t0: i64, span: i64, cols: usize) -> String {
    let span = span.max(1) as f64;
    let pos = |t: i64| -> usize {
        let x = ((t - t0) as f64 / span * cols as f64).round();
        (x.max(0.0) as usize).min(cols)
    };
    let (a, b) = (pos(v.start), pos(v.end));
    let b = b.max(a + 1).min(cols.max(1));
    let a = a.min(b.saturating_sub(1));
    let fill = if v.virtual_ {
        '▒'
    } else if v.critical > 0 {
        '█'
    } else {
        '░'
    };
    let mut s = String::with_capacity(cols * 3);
    for i in 0..cols {
        s.push(if i >= a && i < b { fill } else { ' ' });
    }
    s
}

/// Writes one request.
pub fn write_show(
    a: &Assembled,
    u: &Universe,
    style: &Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let paint = |code: &str, text: &str| {
        if style.color {
            format!("{code}{text}{RESET}")
        } else {
            text.to_string()
        }
    };
    let status = match a.incomplete {
        None => "complete".to_string(),
        Some(r) => format!("incomplete ({})", r.name()),
    };
    let failed = if a.root_failed {
        " · FAILED at the root"
    } else if a.failed {
        " · failed below the root"
    } else {
        ""
    };
    let title = clip(
        &format!("request {} · {status}{failed}", sanitize(&a.id)),
        style.width,
    );
    let title = if a.failed {
        paint(RED, &title)
    } else {
        paint(BOLD, &title)
    };
    writeln!(out, "{title}")?;
    writeln!(
        out,
        "{}",
        clip(
            &format!(
                "{} · latency {}",
                format_rfc3339_ns(a.start),
                fmt_ms(ns_to_ms(a.latency))
            ),
            style.width
        )
    )?;
    for line in hard_wrap(&format!("chain {}", sanitize(&a.chain)), style.width) {
        writeln!(out, "{line}")?;
    }
    let order = tree_order(a);
    let t0 = a.visits.first().map_or(a.start, |v| v.start);
    let t1 = a
        .visits
        .iter()
        .map(|v| v.end)
        .max()
        .unwrap_or(t0)
        .max(t0 + a.latency);
    let labels: Vec<String> = order
        .iter()
        .map(|&(i, d)| {
            let v = &a.visits[i];
            let mut name = format!("{}{}", "  ".repeat(d), sanitize(u.name(v.service)));
            if v.virtual_ {
                name.push_str(" (virtual)");
            }
            name
        })
        .collect();
    const NUM: usize = 8;
    const MARKS: usize = 6;
    const MIN_BAR: usize = 10;
    // Numbers, marks and the narrowest bar take this much; the names get
    // what is left (at least 8 columns), the bar the rest.
    let fixed = 4 * (NUM + 1) + 1 + MARKS + 1;
    let name_room = style.width.saturating_sub(fixed + MIN_BAR).max(8);
    let name_w = labels
        .iter()
        .map(|l| char_width(l))
        .max()
        .unwrap_or(8)
        .clamp(8, 36)
        .min(name_room);
    let cols = style.width.saturating_sub(fixed + name_w).max(MIN_BAR);
    let header = format!(
        "{} {} {} {} {} {} {}",
        pad("visit", name_w),
        lpad("start", NUM),
        lpad("proc", NUM),
        lpad("self", NUM),
        lpad("prop", NUM),
        pad("marks", MARKS),
        pad(&format!("0 … {}", fmt_ms(ns_to_ms(t1 - t0))), cols)
    );
    writeln!(out, "{}", header.trim_end())?;
    for (row, &(i, _)) in order.iter().enumerate() {
        let v = &a.visits[i];
        let mut marks = String::new();
        if v.critical > 0 || v.critical_propagation > 0 {
            marks.push('●');
        }
        if v.failed {
            marks.push('✗');
        }
        if v.origin {
            marks.push('◆');
        }
        if !v.exact {
            marks.push('~');
        }
        if v.skew != 0 {
            marks.push('⇄');
        }
        // A virtual visit has no processing of its own: its call time stands
        // in the column (the name says "(virtual)").
        let proc = if v.virtual_ {
            opt_ms(v.call)
        } else {
            opt_ms(v.processing)
        };
        let line = format!(
            "{} {} {} {} {} {} {}",
            pad(&clip(&labels[row], name_w), name_w),
            lpad(&format!("+{}", fmt_ms(ns_to_ms(v.start - t0))), NUM),
            lpad(&proc, NUM),
            lpad(&opt_ms(v.self_time), NUM),
            lpad(&opt_ms(v.propagation), NUM),
            pad(&marks, MARKS),
            bar(v, t0, t1 - t0, cols)
        );
        let line = if v.failed {
            paint(RED, &line)
        } else if v.critical == 0 && v.critical_propagation == 0 {
            paint(DIM, &line)
        } else {
            line
        };
        writeln!(out, "{}", line.trim_end())?;
        if v.skew != 0 {
            writeln!(
                out,
                "{}  shifted {} to the root's clock",
                " ".repeat(name_w),
                fmt_ms(-ns_to_ms(v.skew))
            )?;
        }
    }
    const LEGEND: [&str; 8] = [
        "● critical path",
        "✗ failed",
        "◆ failure origin",
        "~ estimated",
        "⇄ clock shifted",
        "█ on the path",
        "░ off it",
        "▒ virtual",
    ];
    let mut line = String::new();
    for item in LEGEND {
        if !line.is_empty() && char_width(&line) + 2 + char_width(item) > style.width {
            writeln!(out, "{line}")?;
            line.clear();
        }
        if !line.is_empty() {
            line.push_str("  ");
        }
        line.push_str(item);
    }
    writeln!(out, "{line}")?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_counts_characters() {
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(pad("abcdef", 3), "abc");
        assert_eq!(lpad("µs", 4), "  µs");
    }
}
