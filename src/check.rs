//! `hopscope check`: the CI gate (SPEC §3, §6).
//!
//! Works purely on report JSON values (`hopscope.report/v1`, SPEC §4): the
//! current run and, optionally, a baseline saved earlier. Two kinds of checks:
//!
//! * **budgets** — `SUBJECT.[BLOCK.]METRIC OP VALUE`, parsed by
//!   [`parse_budget`], e.g. `orders.p99<250ms`,
//!   `gateway>orders.propagation.p95<20ms`, `failure_rate<1%`,
//!   `chain:gateway>orders.p99<300ms`. A budget whose subject has no data is
//!   a `missing` check that fails as `no data` unless
//!   [`CheckOptions::allow_missing`] (then it is `skipped`).
//! * **regressions** — with a baseline, for every service, hop and chain
//!   present in both runs and for the requests block: each metric of
//!   [`CheckOptions::metrics`] of the main latency block (and of a hop's
//!   propagation) may grow by at most [`CheckOptions::max_increase`], and
//!   the failure rate by at most [`CheckOptions::max_failure_increase_pp`]
//!   percentage points. Groups with fewer than [`CheckOptions::min_count`]
//!   samples in either run are skipped and listed.
//!
//! Services and hops that appeared (`new`) or vanished (`gone`) since the
//! baseline, and a baseline whose `options` differ from the current run's,
//! are reported but never fail the gate.
//!
//! The result renders as a table, as JSON (`hopscope.check/v1`) or as JUnit
//! XML; [`CheckResult::exit_code`] gives 1 when any check failed or had no
//! data, else 0. Budget syntax errors are usage errors (exit 2), rendered
//! with a caret under the fault by [`BudgetError::render`].

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, Write};
use std::path::Path;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, Table};
use serde::Serialize;
use serde_json::Value;

/// The schema a baseline must carry.
pub const REPORT_SCHEMA: &str = "hopscope.report/v1";

/// The schema of `hopscope check -o json`.
pub const CHECK_SCHEMA: &str = "hopscope.check/v1";

/// The percentiles every latency block of the report carries (SPEC §4).
pub const PERCENTILES: &[&str] = &["p50", "p90", "p95", "p99"];

/// Extra help for `hopscope check --help` (after the options).
pub const CHECK_AFTER_HELP: &str = "\
Budgets: SUBJECT.[BLOCK.]METRIC OP VALUE
  SUBJECT  a service (orders, svc.v2), a hop (gateway>orders, (client)>gateway),
           a chain (chain:gateway>orders>{inventory,payments}), or nothing for
           the requests block (p99<300ms, failure_rate<1%)
  BLOCK    services: processing self critical; hops: processing call propagation
           request_leg response_leg critical; chains and requests: latency.
           Without a block: processing (a virtual hop: call; chains and
           requests: latency)
  METRIC   p50 p90 p95 p99 mean max count failure_rate
  OP VALUE < <= > >= and a time (500us, 250ms, 1.5s), a rate (0.5%) or a count
Regressions (with --baseline): for every service, hop and chain in both runs
and for all requests, each --metrics figure of the main block (and of a hop's
propagation) may grow by at most --max-increase, the failure rate by at most
--max-failure-increase percentage points. Groups with fewer than --min-count
samples in either run are skipped and listed. Services and hops that are new
or gone since the baseline are listed for information and never fail the
check; neither does a baseline made with different options (a warning).
Exit status: 0 all checks passed, 1 a budget or regression failed or a budget
had no data (unless --allow-missing), 2 usage error.";

// ---------------------------------------------------------------------------
// Budget model
// ---------------------------------------------------------------------------

/// What a budget or a check is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// The report's `requests` block (a budget without a subject).
    Requests,
    /// A row of `services`.
    Service(String),
    /// A row of `hops`; the root hop comes from `(client)`.
    Hop {
        /// The caller (`from`).
        from: String,
        /// The callee (`to`).
        to: String,
    },
    /// A row of `chains`, by its exact chain text.
    Chain(String),
}

impl Subject {
    /// The kind of subject.
    pub fn kind(&self) -> SubjectKind {
        match self {
            Subject::Requests => SubjectKind::Requests,
            Subject::Service(_) => SubjectKind::Service,
            Subject::Hop { .. } => SubjectKind::Hop,
            Subject::Chain(_) => SubjectKind::Chain,
        }
    }

    /// The subject as written in a budget (`""` for the requests block).
    pub fn label(&self) -> String {
        match self {
            Subject::Requests => String::new(),
            Subject::Service(s) => s.clone(),
            Subject::Hop { from, to } => format!("{from}>{to}"),
            Subject::Chain(c) => format!("chain:{c}"),
        }
    }

    /// The subject's name as a JSON field: the service, `from>to`, the chain
    /// text, or `requests`.
    pub fn name(&self) -> String {
        match self {
            Subject::Requests => "requests".to_string(),
            Subject::Service(s) => s.clone(),
            Subject::Hop { from, to } => format!("{from}>{to}"),
            Subject::Chain(c) => c.clone(),
        }
    }

    /// The prefix of a check label: the label and a `.`, or nothing.
    fn prefix(&self) -> String {
        match self {
            Subject::Requests => String::new(),
            s => format!("{}.", s.label()),
        }
    }
}

/// The kind of a [`Subject`], as written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// The requests block.
    Requests,
    /// A service.
    Service,
    /// A hop.
    Hop,
    /// A chain.
    Chain,
}

impl SubjectKind {
    fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Requests => "requests",
            SubjectKind::Service => "service",
            SubjectKind::Hop => "hop",
            SubjectKind::Chain => "chain",
        }
    }
}

/// A latency block of a report row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// `processing_ms` (services, hops).
    Processing,
    /// `self_ms` (services).
    SelfTime,
    /// `critical_ms` (services, hops).
    Critical,
    /// `propagation_ms` (hops).
    Propagation,
    /// `call_ms` (hops).
    Call,
    /// `request_leg_ms` (hops).
    RequestLeg,
    /// `response_leg_ms` (hops).
    ResponseLeg,
    /// `latency_ms` (chains, requests).
    Latency,
}

impl Block {
    const ALL: [Block; 8] = [
        Block::Processing,
        Block::SelfTime,
        Block::Critical,
        Block::Propagation,
        Block::Call,
        Block::RequestLeg,
        Block::ResponseLeg,
        Block::Latency,
    ];

    /// The name used in budgets (`processing`).
    pub fn name(self) -> &'static str {
        match self {
            Block::Processing => "processing",
            Block::SelfTime => "self",
            Block::Critical => "critical",
            Block::Propagation => "propagation",
            Block::Call => "call",
            Block::RequestLeg => "request_leg",
            Block::ResponseLeg => "response_leg",
            Block::Latency => "latency",
        }
    }

    /// The key in the report JSON (`processing_ms`).
    pub fn json_key(self) -> &'static str {
        match self {
            Block::Processing => "processing_ms",
            Block::SelfTime => "self_ms",
            Block::Critical => "critical_ms",
            Block::Propagation => "propagation_ms",
            Block::Call => "call_ms",
            Block::RequestLeg => "request_leg_ms",
            Block::ResponseLeg => "response_leg_ms",
            Block::Latency => "latency_ms",
        }
    }

    /// The block named `name` in a budget.
    pub fn from_name(name: &str) -> Option<Block> {
        Block::ALL.into_iter().find(|b| b.name() == name)
    }

    fn allowed_for(kind: SubjectKind) -> &'static [Block] {
        match kind {
            SubjectKind::Service => &[Block::Processing, Block::SelfTime, Block::Critical],
            SubjectKind::Hop => &[
                Block::Processing,
                Block::Call,
                Block::Propagation,
                Block::RequestLeg,
                Block::ResponseLeg,
                Block::Critical,
            ],
            SubjectKind::Chain | SubjectKind::Requests => &[Block::Latency],
        }
    }
}

/// A figure of a block, or a row's failure rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metric {
    /// A percentile key such as `p99` (one of [`PERCENTILES`]).
    Percentile(String),
    /// The block's `mean`.
    Mean,
    /// The block's `max`.
    Max,
    /// The block's `count`.
    Count,
    /// The row's `failure_rate` (no block).
    FailureRate,
}

impl Metric {
    /// The JSON key of the figure (`p99`, `mean`, `failure_rate`).
    pub fn key(&self) -> &str {
        match self {
            Metric::Percentile(p) => p,
            Metric::Mean => "mean",
            Metric::Max => "max",
            Metric::Count => "count",
            Metric::FailureRate => "failure_rate",
        }
    }

    /// The unit its values are in.
    pub fn unit(&self) -> Unit {
        match self {
            Metric::Percentile(_) | Metric::Mean | Metric::Max => Unit::Ms,
            Metric::Count => Unit::Count,
            Metric::FailureRate => Unit::Fraction,
        }
    }

    fn from_word(word: &str) -> Option<Metric> {
        match word {
            "mean" => Some(Metric::Mean),
            "max" => Some(Metric::Max),
            "count" => Some(Metric::Count),
            "failure_rate" => Some(Metric::FailureRate),
            _ if is_percentile_word(word) => Some(Metric::Percentile(word.to_string())),
            _ => None,
        }
    }
}

/// The unit of a check's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Milliseconds.
    Ms,
    /// A rate as a fraction (0.01 = 1 %).
    Fraction,
    /// A plain count.
    Count,
}

/// A comparison operator of a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    /// Whether `observed OP limit` holds.
    pub fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            Op::Lt => observed < limit,
            Op::Le => observed <= limit,
            Op::Gt => observed > limit,
            Op::Ge => observed >= limit,
        }
    }
}

/// A parsed budget expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// The expression as given, trimmed.
    pub expr: String,
    /// What it is about.
    pub subject: Subject,
    /// The block as written; `None` means the subject's main block (or no
    /// block, for `failure_rate`).
    pub block: Option<Block>,
    /// The figure compared.
    pub metric: Metric,
    /// The comparison.
    pub op: Op,
    /// The limit in the metric's unit: ms, a fraction, or a count.
    pub value: f64,
}

/// A budget expression that does not parse: a usage error (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetError {
    /// The expression as given.
    pub expr: String,
    /// The 0-based character column of the fault.
    pub column: usize,
    /// What was wrong there.
    pub message: String,
}

impl BudgetError {
    fn at(expr: &str, byte: usize, message: impl Into<String>) -> BudgetError {
        let byte = byte.min(expr.len());
        let column = expr.get(..byte).map_or(0, |s| s.chars().count());
        BudgetError {
            expr: expr.to_string(),
            column,
            message: message.into(),
        }
    }

    /// The two-line message: the expression, then a caret under the fault
    /// followed by what was expected there.
    pub fn render(&self) -> String {
        const LEAD: &str = "invalid budget: ";
        // One character per character, so the caret stays aligned.
        let shown: String = self
            .expr
            .chars()
            .map(|c| if c.is_control() { '\u{fffd}' } else { c })
            .collect();
        format!(
            "{LEAD}{shown}\n{}^ {}",
            " ".repeat(LEAD.len() + self.column),
            self.message
        )
    }
}

impl fmt::Display for BudgetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for BudgetError {}

// ---------------------------------------------------------------------------
// Budget parser
// ---------------------------------------------------------------------------

const METRIC_HINT: &str = "pNN (p50 p90 p95 p99), mean, max, count or failure_rate";

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'
}

fn is_percentile_word(word: &str) -> bool {
    let Some(rest) = word.strip_prefix('p') else {
        return false;
    };
    let mut parts = rest.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next();
    !whole.is_empty()
        && whole.bytes().all(|c| c.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|c| c.is_ascii_digit()))
}

fn ident_end(b: &[u8], pos: usize) -> usize {
    let mut e = pos;
    while e < b.len() && is_ident_byte(b[e]) {
        e += 1;
    }
    e
}

/// A metric word at `pos` (`p99.9` included) and where it ends.
fn metric_at(expr: &str, pos: usize) -> Option<(Metric, usize)> {
    let b = expr.as_bytes();
    let mut e = ident_end(b, pos);
    let word = expr.get(pos..e)?;
    if is_percentile_word(word)
        && b.get(e) == Some(&b'.')
        && b.get(e + 1).is_some_and(u8::is_ascii_digit)
    {
        e += 1;
        while e < b.len() && b[e].is_ascii_digit() {
            e += 1;
        }
    }
    Metric::from_word(expr.get(pos..e)?).map(|m| (m, e))
}

/// A metric at `pos` that ends where a metric can end (not inside a longer
/// name); the block before it is found by the caller.
struct Tail {
    block: Option<(Block, usize)>,
    metric: Metric,
    metric_pos: usize,
    end: usize,
}

fn match_tail(expr: &str, pos: usize) -> Option<Tail> {
    let b = expr.as_bytes();
    let (metric, end) = metric_at(expr, pos)?;
    match b.get(end) {
        Some(&c) if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' => None,
        _ => Some(Tail {
            block: None,
            metric,
            metric_pos: pos,
            end,
        }),
    }
}

fn skip_ws(b: &[u8], mut pos: usize) -> usize {
    while pos < b.len() && b[pos].is_ascii_whitespace() {
        pos += 1;
    }
    pos
}

/// Parses a budget expression (SPEC §3): `SUBJECT.[BLOCK.]METRIC OP VALUE`.
///
/// The subject ends at the last `.` before a metric (optionally after a
/// block name), so dotted service names work (`svc.v2.p99<10ms`). A subject
/// containing `>` is a hop (`(client)>gateway` for the root hop), one
/// starting with `chain:` a chain, none the requests block (`p99<300ms`,
/// also `latency.p99<300ms`); anything else is a service. Times take a unit
/// (`us`, `µs`, `ms`, `s`) and are stored in ms, rates take `%` and are
/// stored as fractions, counts are bare numbers.
pub fn parse_budget(expr: &str) -> Result<Budget, BudgetError> {
    let err = |pos: usize, msg: &str| BudgetError::at(expr, pos, msg);
    let b = expr.as_bytes();
    let start = skip_ws(b, 0);
    if start == b.len() {
        return Err(err(
            start,
            "expected a budget such as orders.p99<250ms or failure_rate<1%",
        ));
    }
    // `<`, `=` and `!` never occur in a subject; `>` does (hops, chains).
    let hard_stop = b[start..]
        .iter()
        .position(|&c| matches!(c, b'<' | b'=' | b'!'))
        .map_or(b.len(), |i| start + i);

    // The last `.` (or the very start) followed by `[BLOCK.]METRIC`.
    let mut chosen: Option<(Option<usize>, Tail)> = match_tail(expr, start).map(|t| (None, t));
    for (i, &c) in b.iter().enumerate().take(hard_stop).skip(start) {
        if c == b'.'
            && let Some(t) = match_tail(expr, i + 1)
        {
            chosen = Some((Some(i), t));
        }
    }
    let Some((dot, mut tail)) = chosen else {
        return Err(no_metric_error(expr, start, hard_stop));
    };

    // A block name right before the metric belongs to the metric.
    let subject = match dot {
        None => Subject::Requests,
        Some(d) => {
            let seg_start = expr[start..d].rfind('.').map_or(start, |i| start + i + 1);
            match Block::from_name(&expr[seg_start..d]) {
                Some(blk) if seg_start > start => {
                    tail.block = Some((blk, seg_start));
                    parse_subject(expr, start, seg_start - 1)?
                }
                Some(Block::Latency) => {
                    // `latency.p99<300ms`: the requests block, not a service.
                    tail.block = Some((Block::Latency, start));
                    Subject::Requests
                }
                _ => parse_subject(expr, start, d)?,
            }
        }
    };

    // Percentiles the report has.
    if let Metric::Percentile(p) = &tail.metric
        && !PERCENTILES.contains(&p.as_str())
    {
        return Err(err(
            tail.metric_pos,
            &format!(
                "the report has no percentile {p}; available: {}",
                PERCENTILES.join(", ")
            ),
        ));
    }

    // Block against metric and subject.
    if let Some((block, pos)) = tail.block {
        if tail.metric == Metric::FailureRate {
            return Err(err(
                pos,
                &format!(
                    "failure_rate takes no block: write {}failure_rate",
                    subject.prefix()
                ),
            ));
        }
        let allowed = Block::allowed_for(subject.kind());
        if !allowed.contains(&block) {
            let names: Vec<&str> = allowed.iter().map(|b| b.name()).collect();
            let what = match subject.kind() {
                SubjectKind::Service => "a service",
                SubjectKind::Hop => "a hop",
                SubjectKind::Chain => "a chain",
                SubjectKind::Requests => "the requests block",
            };
            return Err(err(
                pos,
                &format!(
                    "{what} has no {} block; its blocks: {}",
                    block.name(),
                    names.join(", ")
                ),
            ));
        }
    }

    // Operator.
    let pos = skip_ws(b, tail.end);
    let (op, pos) = match (b.get(pos), b.get(pos + 1)) {
        (Some(b'<'), Some(b'=')) => (Op::Le, pos + 2),
        (Some(b'>'), Some(b'=')) => (Op::Ge, pos + 2),
        (Some(b'<'), _) => (Op::Lt, pos + 1),
        (Some(b'>'), _) => (Op::Gt, pos + 1),
        _ => return Err(err(pos, "expected an operator: < <= > >=")),
    };

    // Number.
    let num_start = skip_ws(b, pos);
    let mut p = num_start;
    if matches!(b.get(p), Some(b'-' | b'+')) {
        p += 1;
    }
    let digits_start = p;
    while p < b.len() && b[p].is_ascii_digit() {
        p += 1;
    }
    let int_digits = p - digits_start;
    let mut frac_digits = 0;
    if b.get(p) == Some(&b'.') && b.get(p + 1).is_some_and(u8::is_ascii_digit) {
        p += 1;
        while p < b.len() && b[p].is_ascii_digit() {
            p += 1;
            frac_digits += 1;
        }
    }
    if int_digits + frac_digits == 0 {
        return Err(err(digits_start, "expected a number"));
    }
    let number: f64 = match expr[num_start..p].parse::<f64>() {
        Ok(n) if n.is_finite() => n,
        _ => return Err(err(num_start, "number out of range")),
    };
    let unit = tail.metric.unit();
    if number < 0.0 && unit != Unit::Ms {
        return Err(err(num_start, "expected a number that is not negative"));
    }

    // Unit.
    let unit_start = p;
    let unit_end = expr[unit_start..]
        .char_indices()
        .find(|&(_, c)| !(c.is_alphabetic() || c == '%'))
        .map_or(expr.len(), |(i, _)| unit_start + i);
    let unit_text = &expr[unit_start..unit_end];
    let value = match unit {
        Unit::Ms => match unit_text {
            "us" | "µs" | "μs" => number / 1000.0,
            "ms" => number,
            "s" => number * 1000.0,
            "" => {
                return Err(err(
                    unit_start,
                    "expected a time unit: us, ms or s (e.g. 250ms)",
                ));
            }
            other => {
                return Err(err(
                    unit_start,
                    &format!("expected a time unit: us, ms or s, not `{other}`"),
                ));
            }
        },
        Unit::Fraction => match unit_text {
            "%" => number / 100.0,
            "" => {
                return Err(err(
                    unit_start,
                    "expected % after a rate (failure_rate<1% means 1 %)",
                ));
            }
            other => {
                return Err(err(
                    unit_start,
                    &format!("expected % after a rate, not `{other}`"),
                ));
            }
        },
        Unit::Count => {
            if !unit_text.is_empty() {
                return Err(err(unit_start, "a count takes a bare number"));
            }
            number
        }
    };

    let rest = skip_ws(b, unit_end);
    if rest < b.len() {
        return Err(err(rest, "unexpected text after the value"));
    }

    Ok(Budget {
        expr: expr.trim().to_string(),
        subject,
        block: tail.block.map(|(blk, _)| blk),
        metric: tail.metric,
        op,
        value,
    })
}

/// The error for an expression in which no `[BLOCK.]METRIC` was found.
fn no_metric_error(expr: &str, start: usize, hard_stop: usize) -> BudgetError {
    let b = expr.as_bytes();
    let last_dot = b[start..hard_stop]
        .iter()
        .rposition(|&c| c == b'.')
        .map(|i| start + i);
    match last_dot {
        Some(d) => {
            // Step back over `BLOCK.` to report the metric after it.
            let seg = d + 1;
            let before = &expr[start..d];
            let block_before = before
                .rsplit('.')
                .next()
                .and_then(Block::from_name)
                .filter(|_| before.contains('.'));
            let e = ident_end(b, seg);
            if let Some(blk) = Block::from_name(&expr[seg..e]) {
                BudgetError::at(
                    expr,
                    e,
                    format!(
                        "expected `.` and a metric after {}: {METRIC_HINT}",
                        blk.name()
                    ),
                )
            } else if let Some(blk) = block_before {
                BudgetError::at(
                    expr,
                    seg,
                    format!("expected a metric after {}.: {METRIC_HINT}", blk.name()),
                )
            } else {
                BudgetError::at(expr, seg, format!("expected a metric: {METRIC_HINT}"))
            }
        }
        None => BudgetError::at(
            expr,
            hard_stop,
            format!("expected `.` and a metric ({METRIC_HINT}), e.g. orders.p99<250ms"),
        ),
    }
}

/// The subject in `expr[start..end]` (non-empty range before the metric's dot).
fn parse_subject(expr: &str, start: usize, end: usize) -> Result<Subject, BudgetError> {
    let text = &expr[start..end];
    if text.is_empty() {
        return Err(BudgetError::at(
            expr,
            start,
            "expected a subject before `.` (or no `.` for the requests block)",
        ));
    }
    if let Some(chain) = text.strip_prefix("chain:") {
        if chain.is_empty() {
            return Err(BudgetError::at(
                expr,
                start + "chain:".len(),
                "expected a chain after chain:, e.g. chain:gateway>orders",
            ));
        }
        return Ok(Subject::Chain(chain.to_string()));
    }
    let Some(gt) = text.find('>') else {
        return Ok(Subject::Service(text.to_string()));
    };
    let (from, to) = (&text[..gt], &text[gt + 1..]);
    if from.is_empty() {
        return Err(BudgetError::at(
            expr,
            start,
            "expected the calling service before > (the root hop is (client)>SERVICE)",
        ));
    }
    if to.is_empty() {
        return Err(BudgetError::at(
            expr,
            start + gt + 1,
            "expected the called service after >",
        ));
    }
    if let Some(second) = to.find('>') {
        return Err(BudgetError::at(
            expr,
            start + gt + 1 + second,
            "a hop is FROM>TO; for a longer path write chain:...",
        ));
    }
    Ok(Subject::Hop {
        from: from.to_string(),
        to: to.to_string(),
    })
}

// ---------------------------------------------------------------------------
// Option values
// ---------------------------------------------------------------------------

fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        return None;
    }
    t.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// Parses `--max-increase`: `10%` or `10` both mean 0.10.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let num = t.strip_suffix('%').unwrap_or(t);
    parse_number(num)
        .map(|x| x / 100.0)
        .ok_or_else(|| format!("expected a percentage such as 10%, not `{s}`"))
}

/// Parses `--max-failure-increase` in percentage points: `1`, `1pp` and
/// `1%` all mean one point.
pub fn parse_percentage_points(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let num = t
        .strip_suffix("pp")
        .or_else(|| t.strip_suffix('%'))
        .unwrap_or(t);
    parse_number(num).ok_or_else(|| format!("expected percentage points such as 1, not `{s}`"))
}

/// Parses `--metrics`: a comma-separated list of `p50 p90 p95 p99 mean max`.
pub fn parse_metrics(s: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for m in s.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        if !(PERCENTILES.contains(&m) || m == "mean" || m == "max") {
            return Err(format!(
                "unknown metric `{m}` in --metrics; available: {}, mean, max",
                PERCENTILES.join(", ")
            ));
        }
        if !out.iter().any(|o| o == m) {
            out.push(m.to_string());
        }
    }
    if out.is_empty() {
        return Err("--metrics needs at least one metric, e.g. p50,p90,p99".to_string());
    }
    Ok(out)
}

/// A report file that cannot serve as a baseline: a usage error (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFileError {
    /// The file, as given.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ReportFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ReportFileError {}

/// Checks that `v` looks like a `hopscope.report/v1` report.
pub fn validate_report(v: &Value) -> Result<(), String> {
    let Some(obj) = v.as_object() else {
        return Err(format!("not a {REPORT_SCHEMA} report (not a JSON object)"));
    };
    match obj.get("schema").and_then(Value::as_str) {
        Some(REPORT_SCHEMA) => {}
        Some(other) => {
            return Err(format!(
                "not a {REPORT_SCHEMA} report (schema is \"{other}\")"
            ));
        }
        None => return Err(format!("not a {REPORT_SCHEMA} report (no schema field)")),
    }
    if !obj.get("requests").is_some_and(Value::is_object) {
        return Err(format!(
            "malformed {REPORT_SCHEMA} report: no requests object"
        ));
    }
    for key in ["services", "hops", "chains"] {
        if !obj.get(key).is_some_and(Value::is_array) {
            return Err(format!("malformed {REPORT_SCHEMA} report: no {key} array"));
        }
    }
    Ok(())
}

/// Reads and validates a baseline report file; every error names the file.
pub fn load_report(path: &Path) -> Result<Value, ReportFileError> {
    let fail = |message: String| ReportFileError {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read(path).map_err(|e| fail(format!("cannot read baseline: {e}")))?;
    let v: Value = serde_json::from_slice(&text)
        .map_err(|e| fail(format!("not a {REPORT_SCHEMA} report (not JSON: {e})")))?;
    validate_report(&v).map_err(fail)?;
    Ok(v)
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/// What the gate checks.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOptions {
    /// `--budget` expressions, in order.
    pub budgets: Vec<Budget>,
    /// `--max-increase` as a fraction (0.10 = 10 %).
    pub max_increase: f64,
    /// `--max-failure-increase` in percentage points (1.0 = 1 pp).
    pub max_failure_increase_pp: f64,
    /// `--min-count`: groups with fewer samples in either run are skipped.
    pub min_count: u64,
    /// `--metrics`: the figures compared with the baseline (`p50`, `p99`…).
    pub metrics: Vec<String>,
    /// `--allow-missing`: a budget without data is skipped, not failed.
    pub allow_missing: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            budgets: Vec::new(),
            max_increase: 0.10,
            max_failure_increase_pp: 1.0,
            min_count: 30,
            metrics: vec!["p50".into(), "p90".into(), "p99".into()],
            allow_missing: false,
        }
    }
}

/// Where a check comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// A `--budget` with data.
    Budget,
    /// A comparison with the baseline.
    Regression,
    /// A `--budget` whose subject has no data.
    Missing,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// Within the limit.
    #[serde(rename = "pass")]
    Pass,
    /// Over the limit.
    #[serde(rename = "fail")]
    Fail,
    /// Not evaluated (`--allow-missing`).
    #[serde(rename = "skipped")]
    Skipped,
    /// The subject has no data; fails the gate.
    #[serde(rename = "no data")]
    NoData,
}

impl Verdict {
    /// The verdict as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Skipped => "skipped",
            Verdict::NoData => "no data",
        }
    }

    /// Whether this verdict fails the gate.
    pub fn fails(self) -> bool {
        matches!(self, Verdict::Fail | Verdict::NoData)
    }
}

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// A label in budget syntax: the budget as given, or e.g.
    /// `gateway>orders.propagation.p99` for a regression.
    pub check: String,
    /// Budget, regression or missing (a budget without data).
    pub kind: CheckKind,
    /// The kind of subject.
    pub subject_kind: SubjectKind,
    /// The service, `from>to`, chain text, or `requests`.
    pub subject: String,
    /// The JSON key of the block (`processing_ms`), `null` for failure_rate.
    pub block: Option<String>,
    /// The figure (`p99`, `mean`, `count`, `failure_rate`).
    pub metric: String,
    /// The unit of baseline, observed and limit.
    pub unit: Unit,
    /// The same figure in the baseline, when there is one.
    pub baseline: Option<f64>,
    /// The figure in this run.
    pub observed: Option<f64>,
    /// How `observed` must compare to `limit` to pass.
    pub op: &'static str,
    /// The limit.
    pub limit: Option<f64>,
    /// The outcome.
    pub verdict: Verdict,
    /// Why a check failed, had no data or was skipped.
    pub message: Option<String>,
}

/// A group skipped by `--min-count`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LowCount {
    /// The kind of group.
    pub subject_kind: SubjectKind,
    /// Its name.
    pub subject: String,
    /// Samples in this run (visits, calls, requests, complete requests).
    pub count: u64,
    /// Samples in the baseline.
    pub baseline_count: u64,
}

/// A service or hop that appeared or vanished since the baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Service or hop.
    pub subject_kind: SubjectKind,
    /// Its name (`from>to` for a hop).
    pub subject: String,
}

/// Something to look at that does not fail the gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// A stable code, e.g. `baseline_options_differ`.
    pub code: String,
    /// One line for people.
    pub message: String,
}

/// Everything `hopscope check` found.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// Budgets in the order given, then regressions (requests, services,
    /// hops, chains, in report order).
    pub checks: Vec<Check>,
    /// Groups not compared for lack of samples.
    pub skipped_low_count: Vec<LowCount>,
    /// Services and hops only in this run.
    pub new: Vec<Change>,
    /// Services and hops only in the baseline.
    pub gone: Vec<Change>,
    /// Warnings, sorted by code.
    pub warnings: Vec<Warning>,
    /// The `--min-count` in force.
    pub min_count: u64,
}

/// A service, hop or chain row, or the requests block, of one report.
struct Group<'a> {
    subject: Subject,
    row: &'a Value,
}

impl Group<'_> {
    fn is_virtual(&self) -> bool {
        self.row.get("virtual").and_then(Value::as_bool) == Some(true)
    }

    /// Samples behind the group's figures.
    fn count(&self) -> u64 {
        let key = match self.subject {
            Subject::Requests => "complete",
            Subject::Service(_) => "visits",
            Subject::Hop { .. } => "calls",
            Subject::Chain(_) => "requests",
        };
        self.row.get(key).and_then(Value::as_u64).unwrap_or(0)
    }

    /// The block a bare metric means.
    fn main_block(&self) -> Block {
        match self.subject {
            Subject::Requests | Subject::Chain(_) => Block::Latency,
            Subject::Service(_) => Block::Processing,
            Subject::Hop { .. } if self.is_virtual() => Block::Call,
            Subject::Hop { .. } => Block::Processing,
        }
    }

    fn value(&self, block: Option<Block>, metric: &str) -> Option<f64> {
        match block {
            None => self.row.get(metric).and_then(Value::as_f64),
            Some(b) => self
                .row
                .get(b.json_key())
                .and_then(|blk| blk.get(metric))
                .and_then(Value::as_f64),
        }
    }
}

fn str_field<'a>(row: &'a Value, key: &str) -> Option<&'a str> {
    row.get(key).and_then(Value::as_str)
}

fn rows<'a>(report: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    report
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
}

/// Every group of a report: requests, services, hops, chains, in report order.
fn groups(report: &Value) -> Vec<Group<'_>> {
    let mut out = Vec::new();
    if let Some(req) = report.get("requests").filter(|r| r.is_object()) {
        out.push(Group {
            subject: Subject::Requests,
            row: req,
        });
    }
    for row in rows(report, "services") {
        if let Some(s) = str_field(row, "service") {
            out.push(Group {
                subject: Subject::Service(s.to_string()),
                row,
            });
        }
    }
    for row in rows(report, "hops") {
        if let (Some(from), Some(to)) = (str_field(row, "from"), str_field(row, "to")) {
            out.push(Group {
                subject: Subject::Hop {
                    from: from.to_string(),
                    to: to.to_string(),
                },
                row,
            });
        }
    }
    for row in rows(report, "chains") {
        if let Some(c) = str_field(row, "chain") {
            out.push(Group {
                subject: Subject::Chain(c.to_string()),
                row,
            });
        }
    }
    out
}

fn find_group<'a>(groups: &'a [Group<'a>], subject: &Subject) -> Option<&'a Group<'a>> {
    groups.iter().find(|g| &g.subject == subject)
}

/// Runs every check: the budgets against `current`, and with a `baseline`
/// the regression checks, new and gone services and hops, and the options
/// comparison. `baseline` should have passed [`validate_report`].
pub fn check(current: &Value, baseline: Option<&Value>, opts: &CheckOptions) -> CheckResult {
    let cur_groups = groups(current);
    let base_groups = baseline.map(groups).unwrap_or_default();
    let mut result = CheckResult {
        checks: Vec::new(),
        skipped_low_count: Vec::new(),
        new: Vec::new(),
        gone: Vec::new(),
        warnings: Vec::new(),
        min_count: opts.min_count,
    };

    for budget in &opts.budgets {
        result.checks.push(eval_budget(
            budget,
            &cur_groups,
            baseline.map(|_| base_groups.as_slice()),
            opts.allow_missing,
        ));
    }

    if let Some(base) = baseline {
        regressions(&cur_groups, &base_groups, opts, &mut result);
        changes(&cur_groups, &base_groups, &mut result);
        if let Some(w) = options_warning(current, base) {
            result.warnings.push(w);
        }
    }
    if result.checks.is_empty() {
        let message = if baseline.is_some() {
            format!(
                "nothing was checked: every group has fewer than --min-count {} samples \
                 (lower --min-count, or give --budget)",
                opts.min_count
            )
        } else {
            "nothing was checked: give --budget or --baseline".to_string()
        };
        result.warnings.push(Warning {
            code: "nothing_checked".to_string(),
            message,
        });
    }

    result.warnings.sort_by(|a, b| a.code.cmp(&b.code));
    result
}

/// Why a budget's subject has no data.
fn missing_reason(budget: &Budget, groups: &[Group<'_>]) -> String {
    let s = &budget.subject;
    match s {
        Subject::Requests => "no requests".to_string(),
        Subject::Service(name) => {
            let mut msg = format!("no service `{name}` in this run");
            if let Some((head, tail)) = name.rsplit_once('.')
                && find_group(groups, &Subject::Service(head.to_string())).is_some()
            {
                msg.push_str(&format!(
                    " (service `{head}` exists; `{tail}` is not a block name)"
                ));
            }
            msg
        }
        Subject::Hop { from, to } => format!("no hop {from}>{to} in this run"),
        Subject::Chain(c) => format!("no chain `{c}` in this run"),
    }
}

fn eval_budget(
    budget: &Budget,
    cur: &[Group<'_>],
    base: Option<&[Group<'_>]>,
    allow_missing: bool,
) -> Check {
    let group = find_group(cur, &budget.subject);
    let base_group = base.and_then(|b| find_group(b, &budget.subject));
    let block = if budget.metric == Metric::FailureRate {
        None
    } else {
        Some(
            budget
                .block
                .or_else(|| group.or(base_group).map(Group::main_block))
                .unwrap_or(match budget.subject {
                    Subject::Requests | Subject::Chain(_) => Block::Latency,
                    _ => Block::Processing,
                }),
        )
    };
    let key = budget.metric.key();
    let observed = group.and_then(|g| g.value(block, key));
    let baseline = base_group.and_then(|g| g.value(block, key));
    let mut check = Check {
        check: budget.expr.clone(),
        kind: CheckKind::Budget,
        subject_kind: budget.subject.kind(),
        subject: budget.subject.name(),
        block: block.map(|b| b.json_key().to_string()),
        metric: key.to_string(),
        unit: budget.metric.unit(),
        baseline,
        observed,
        op: budget.op.symbol(),
        limit: Some(budget.value),
        verdict: Verdict::Pass,
        message: None,
    };
    match observed {
        Some(v) => {
            if !budget.op.holds(v, budget.value) {
                check.verdict = Verdict::Fail;
                check.message = Some(format!(
                    "observed {}, limit {} {}",
                    fmt_value(v, check.unit),
                    check.op,
                    fmt_value(budget.value, check.unit)
                ));
            }
        }
        None => {
            check.kind = CheckKind::Missing;
            check.verdict = if allow_missing {
                Verdict::Skipped
            } else {
                Verdict::NoData
            };
            let reason = match (group, block) {
                (None, _) => missing_reason(budget, cur),
                (Some(g), Some(b)) if g.row.get(b.json_key()).is_none_or(Value::is_null) => {
                    let mut m = format!("{} is null", b.json_key());
                    if g.is_virtual() && b == Block::Processing {
                        match &g.subject {
                            Subject::Service(name) => {
                                let hop = cur.iter().find_map(|h| match &h.subject {
                                    Subject::Hop { from, to } if to == name => {
                                        Some(format!("{from}>{to}"))
                                    }
                                    _ => None,
                                });
                                m.push_str(&format!(
                                    " (a virtual service has no processing time; budget the call to it, e.g. {}.p99)",
                                    hop.unwrap_or_else(|| format!("CALLER>{name}"))
                                ));
                            }
                            _ => m.push_str(" (a virtual hop: use its call block)"),
                        }
                    }
                    m
                }
                (Some(_), _) => format!("{key} is null"),
            };
            check.message = Some(format!("no data: {reason}"));
        }
    }
    check
}

/// `x` rounded to `1/scale`, unchanged when that would overflow.
fn round_to(x: f64, scale: f64) -> f64 {
    let r = (x * scale).round() / scale;
    if r.is_finite() { r } else { x }
}

/// Slack for float noise in "grows by more than" comparisons.
const EPSILON: f64 = 1e-9;

fn regressions(
    cur: &[Group<'_>],
    base: &[Group<'_>],
    opts: &CheckOptions,
    result: &mut CheckResult,
) {
    for g in cur {
        let Some(b) = find_group(base, &g.subject) else {
            continue;
        };
        let (n, bn) = (g.count(), b.count());
        if n < opts.min_count || bn < opts.min_count {
            result.skipped_low_count.push(LowCount {
                subject_kind: g.subject.kind(),
                subject: g.subject.name(),
                count: n,
                baseline_count: bn,
            });
            continue;
        }
        let main = g.main_block();
        // A bare metric means the main block (call time for a virtual hop).
        let mut blocks = vec![(main, "")];
        if matches!(g.subject, Subject::Hop { .. }) && main != Block::Call {
            blocks.push((Block::Propagation, "propagation."));
        }
        for (block, label) in blocks {
            for m in &opts.metrics {
                let (Some(o), Some(bv)) = (g.value(Some(block), m), b.value(Some(block), m)) else {
                    continue;
                };
                // Rounded to whole ns so JSON shows 34.1, not 34.100000000000001.
                let limit = round_to(bv + bv.abs() * opts.max_increase, 1e6);
                let failed = o > limit + EPSILON;
                result.checks.push(Check {
                    check: format!("{}{label}{m}", g.subject.prefix()),
                    kind: CheckKind::Regression,
                    subject_kind: g.subject.kind(),
                    subject: g.subject.name(),
                    block: Some(block.json_key().to_string()),
                    metric: m.clone(),
                    unit: Unit::Ms,
                    baseline: Some(bv),
                    observed: Some(o),
                    op: "<=",
                    limit: Some(limit),
                    verdict: if failed { Verdict::Fail } else { Verdict::Pass },
                    message: failed.then(|| {
                        format!(
                            "{} grew from {} to {} (more than +{})",
                            m,
                            fmt_value(bv, Unit::Ms),
                            fmt_value(o, Unit::Ms),
                            fmt_pct(opts.max_increase)
                        )
                    }),
                });
            }
        }
        if let (Some(o), Some(bv)) = (g.value(None, "failure_rate"), b.value(None, "failure_rate"))
        {
            let limit = round_to(bv + opts.max_failure_increase_pp / 100.0, 1e12);
            let failed = o > limit + EPSILON;
            result.checks.push(Check {
                check: format!("{}failure_rate", g.subject.prefix()),
                kind: CheckKind::Regression,
                subject_kind: g.subject.kind(),
                subject: g.subject.name(),
                block: None,
                metric: "failure_rate".to_string(),
                unit: Unit::Fraction,
                baseline: Some(bv),
                observed: Some(o),
                op: "<=",
                limit: Some(limit),
                verdict: if failed { Verdict::Fail } else { Verdict::Pass },
                message: failed.then(|| {
                    format!(
                        "failure rate grew from {} to {} (more than +{} pp)",
                        fmt_value(bv, Unit::Fraction),
                        fmt_value(o, Unit::Fraction),
                        trim_num(opts.max_failure_increase_pp)
                    )
                }),
            });
        }
    }
}

fn changes(cur: &[Group<'_>], base: &[Group<'_>], result: &mut CheckResult) {
    let tracked = |g: &&Group<'_>| matches!(g.subject, Subject::Service(_) | Subject::Hop { .. });
    for g in cur.iter().filter(tracked) {
        if find_group(base, &g.subject).is_none() {
            result.new.push(Change {
                subject_kind: g.subject.kind(),
                subject: g.subject.name(),
            });
        }
    }
    for g in base.iter().filter(tracked) {
        if find_group(cur, &g.subject).is_none() {
            result.gone.push(Change {
                subject_kind: g.subject.kind(),
                subject: g.subject.name(),
            });
        }
    }
}

fn options_warning(current: &Value, baseline: &Value) -> Option<Warning> {
    let null = Value::Null;
    let cur = current.get("options").unwrap_or(&null);
    let base = baseline.get("options").unwrap_or(&null);
    if cur == base {
        return None;
    }
    let (Some(c), Some(b)) = (cur.as_object(), base.as_object()) else {
        return Some(Warning {
            code: "baseline_options_differ".to_string(),
            message: "the baseline's options differ from this run's".to_string(),
        });
    };
    let keys: BTreeSet<&String> = c.keys().chain(b.keys()).collect();
    let diffs: Vec<String> = keys
        .into_iter()
        .filter_map(|k| {
            let (cv, bv) = (c.get(k).unwrap_or(&null), b.get(k).unwrap_or(&null));
            (cv != bv).then(|| format!("{k} {bv} -> {cv}"))
        })
        .collect();
    Some(Warning {
        code: "baseline_options_differ".to_string(),
        message: format!(
            "the baseline was made with other options, so figures may differ for that reason: {}",
            diffs.join(", ")
        ),
    })
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

/// Formats a number with at most 3 decimals, trailing zeros dropped.
fn trim_num(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

fn fmt_pct(fraction: f64) -> String {
    format!("{}%", trim_num(fraction * 100.0))
}

fn fmt_value(x: f64, unit: Unit) -> String {
    match unit {
        Unit::Ms => format!("{}ms", trim_num(x)),
        Unit::Fraction => fmt_pct(x),
        Unit::Count => trim_num(x),
    }
}

fn fmt_opt(x: Option<f64>, unit: Unit) -> String {
    x.map_or_else(|| "-".to_string(), |v| fmt_value(v, unit))
}

use crate::report::table::sanitize;

/// Escapes text for XML 1.0 (attribute-safe); characters XML cannot carry
/// become U+FFFD.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[derive(Serialize)]
struct Summary {
    checks: usize,
    passed: usize,
    failed: usize,
    no_data: usize,
    skipped: usize,
}

#[derive(Serialize)]
struct JsonOut<'a> {
    schema: &'static str,
    passed: bool,
    summary: Summary,
    min_count: u64,
    checks: &'a [Check],
    skipped_low_count: &'a [LowCount],
    new: &'a [Change],
    gone: &'a [Change],
    warnings: &'a [Warning],
}

impl CheckResult {
    /// True when no check failed and no budget lacked data.
    pub fn passed(&self) -> bool {
        !self.checks.iter().any(|c| c.verdict.fails())
    }

    /// The exit code of `hopscope check` (SPEC §6): 0 passed, 1 failed.
    pub fn exit_code(&self) -> u8 {
        if self.passed() { 0 } else { 1 }
    }

    fn summary(&self) -> Summary {
        let n = |v: Verdict| self.checks.iter().filter(|c| c.verdict == v).count();
        Summary {
            checks: self.checks.len(),
            passed: n(Verdict::Pass),
            failed: n(Verdict::Fail),
            no_data: n(Verdict::NoData),
            skipped: n(Verdict::Skipped),
        }
    }

    fn limit_text(c: &Check) -> String {
        let base = format!("{} {}", c.op, fmt_opt(c.limit, c.unit));
        if c.kind != CheckKind::Regression {
            return base;
        }
        match (c.unit, c.baseline, c.limit) {
            (Unit::Fraction, Some(b), Some(l)) => {
                format!("{base} (+{}pp)", trim_num((l - b) * 100.0))
            }
            (Unit::Ms, Some(b), Some(l)) if b != 0.0 => {
                format!("{base} (+{})", fmt_pct((l - b) / b.abs()))
            }
            _ => base,
        }
    }

    /// Writes the human-readable result: one row per check, then notes on
    /// failures, skipped groups, new and gone services and hops, warnings
    /// and a closing verdict line.
    pub fn write_table(&self, out: &mut dyn Write) -> io::Result<()> {
        if !self.checks.is_empty() {
            let mut t = Table::new();
            t.load_style(UTF8_FULL_CONDENSED)
                .set_header(["check", "baseline", "observed", "limit", "verdict"].map(Cell::new));
            for c in &self.checks {
                let verdict = match c.verdict {
                    Verdict::Fail => "FAIL",
                    v => v.as_str(),
                };
                t.add_row([
                    Cell::new(sanitize(&c.check)),
                    Cell::new(fmt_opt(c.baseline, c.unit)),
                    Cell::new(fmt_opt(c.observed, c.unit)),
                    Cell::new(Self::limit_text(c)),
                    Cell::new(verdict),
                ]);
            }
            for i in 1..4 {
                if let Some(col) = t.column_mut(i) {
                    col.set_cell_alignment(CellAlignment::Right);
                }
            }
            writeln!(out, "{t}")?;
        }
        for c in self.checks.iter().filter(|c| c.verdict != Verdict::Pass) {
            if let Some(m) = &c.message {
                writeln!(out, "{}: {}", sanitize(&c.check), sanitize(m))?;
            }
        }
        if !self.skipped_low_count.is_empty() {
            writeln!(
                out,
                "not compared, fewer than {} samples in a run ({}):",
                self.min_count,
                self.skipped_low_count.len()
            )?;
            for s in &self.skipped_low_count {
                writeln!(
                    out,
                    "  {} {} ({} now, {} in baseline)",
                    s.subject_kind.as_str(),
                    sanitize(&s.subject),
                    s.count,
                    s.baseline_count
                )?;
            }
        }
        for (title, list) in [
            ("new since baseline", &self.new),
            ("gone since baseline", &self.gone),
        ] {
            if !list.is_empty() {
                writeln!(out, "{title} (informational):")?;
                for c in list {
                    writeln!(
                        out,
                        "  {} {}",
                        c.subject_kind.as_str(),
                        sanitize(&c.subject)
                    )?;
                }
            }
        }
        for w in &self.warnings {
            writeln!(out, "warning: {}", sanitize(&w.message))?;
        }
        let s = self.summary();
        if self.passed() {
            writeln!(
                out,
                "check passed: {} checks, {} passed, {} skipped",
                s.checks, s.passed, s.skipped
            )
        } else {
            writeln!(
                out,
                "check FAILED: {} of {} checks failed, {} with no data",
                s.failed + s.no_data,
                s.checks,
                s.no_data
            )
        }
    }

    /// Writes the `hopscope.check/v1` JSON object (pretty, newline-ended).
    pub fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
        let doc = JsonOut {
            schema: CHECK_SCHEMA,
            passed: self.passed(),
            summary: self.summary(),
            min_count: self.min_count,
            checks: &self.checks,
            skipped_low_count: &self.skipped_low_count,
            new: &self.new,
            gone: &self.gone,
            warnings: &self.warnings,
        };
        serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::other)?;
        writeln!(out)
    }

    /// Writes JUnit XML: one testsuite `hopscope`, one testcase per check,
    /// `<failure>` for failures and missing data, `<skipped/>` for skipped
    /// checks; skipped groups, new, gone and warnings go to `<system-out>`.
    pub fn write_junit(&self, out: &mut dyn Write) -> io::Result<()> {
        let s = self.summary();
        let failures = s.failed + s.no_data;
        writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
        writeln!(
            out,
            r#"<testsuites name="hopscope" tests="{}" failures="{failures}" errors="0" skipped="{}">"#,
            s.checks, s.skipped
        )?;
        writeln!(
            out,
            r#"  <testsuite name="hopscope" tests="{}" failures="{failures}" errors="0" skipped="{}">"#,
            s.checks, s.skipped
        )?;
        for c in &self.checks {
            let kind = match c.kind {
                CheckKind::Budget => "budget",
                CheckKind::Regression => "regression",
                CheckKind::Missing => "missing",
            };
            let open = format!(
                r#"    <testcase classname="hopscope.{kind}" name="{}""#,
                xml_escape(&c.check)
            );
            let detail = format!(
                "baseline {}, observed {}, limit {}",
                fmt_opt(c.baseline, c.unit),
                fmt_opt(c.observed, c.unit),
                Self::limit_text(c)
            );
            let message = c.message.clone().unwrap_or_default();
            match c.verdict {
                Verdict::Pass => writeln!(out, "{open}/>")?,
                Verdict::Skipped => {
                    writeln!(out, "{open}>")?;
                    writeln!(
                        out,
                        r#"      <skipped message="{}"/>"#,
                        xml_escape(&message)
                    )?;
                    writeln!(out, "    </testcase>")?;
                }
                Verdict::Fail | Verdict::NoData => {
                    writeln!(out, "{open}>")?;
                    writeln!(
                        out,
                        r#"      <failure message="{}" type="{}">{}</failure>"#,
                        xml_escape(&message),
                        if c.verdict == Verdict::NoData {
                            "no data"
                        } else {
                            kind
                        },
                        xml_escape(&detail)
                    )?;
                    writeln!(out, "    </testcase>")?;
                }
            }
        }
        let mut notes = Vec::new();
        for l in &self.skipped_low_count {
            notes.push(format!(
                "not compared, fewer than {} samples: {} {} ({} now, {} in baseline)",
                self.min_count,
                l.subject_kind.as_str(),
                l.subject,
                l.count,
                l.baseline_count
            ));
        }
        for c in &self.new {
            notes.push(format!("new: {} {}", c.subject_kind.as_str(), c.subject));
        }
        for c in &self.gone {
            notes.push(format!("gone: {} {}", c.subject_kind.as_str(), c.subject));
        }
        for w in &self.warnings {
            notes.push(format!("warning: {}", w.message));
        }
        if !notes.is_empty() {
            // Escaped line by line so newlines stay real newlines.
            let body: Vec<String> = notes.iter().map(|n| xml_escape(n)).collect();
            writeln!(out, "    <system-out>{}</system-out>", body.join("\n"))?;
        }
        writeln!(out, "  </testsuite>")?;
        writeln!(out, "</testsuites>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // ----- fixtures ------------------------------------------------------

    fn blk(count: u64, mean: f64, p50: f64, p90: f64, p95: f64, p99: f64, max: f64) -> Value {
        json!({"count": count, "mean": mean, "p50": p50, "p90": p90, "p95": p95, "p99": p99, "max": max})
    }

    fn service(name: &str, visits: u64, failed: u64, processing: Value) -> Value {
        let virt = processing.is_null();
        json!({
            "service": name, "virtual": virt, "visits": visits, "failed": failed,
            "failure_rate": failed as f64 / visits as f64, "origin_failures": failed,
            "exact_fraction": 1.0, "processing_ms": processing.clone(),
            "self_ms": processing.clone(), "critical_ms": processing,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn hop(
        from: &str,
        to: &str,
        virt: bool,
        calls: u64,
        failed: u64,
        call: Value,
        processing: Value,
        propagation: Value,
    ) -> Value {
        json!({
            "from": from, "to": to, "virtual": virt, "calls": calls, "failed": failed,
            "failure_rate": failed as f64 / calls as f64, "exact_fraction": 1.0,
            "call_ms": call, "processing_ms": processing, "propagation_ms": propagation.clone(),
            "request_leg_ms": propagation.clone(), "response_leg_ms": Value::Null,
            "critical_ms": propagation, "slowest_request": "req-1", "failed_request": Value::Null,
        })
    }

    fn chain(text: &str, requests: u64, failed: u64, latency: Value) -> Value {
        json!({
            "chain": text, "requests": requests, "failed": failed,
            "failure_rate": failed as f64 / requests as f64, "latency_ms": latency,
            "slowest_request": "req-1", "failed_request": Value::Null,
        })
    }

    /// A small but realistic report: gateway → orders → payments, orders →
    /// postgres (virtual), gateway → svc.v2 (only 12 calls).
    fn report() -> Value {
        let gateway = blk(118, 42.5, 38.0, 61.0, 70.0, 95.0, 120.0);
        let orders = blk(118, 35.2, 31.0, 52.0, 60.0, 88.0, 110.0);
        let payments = blk(40, 12.4, 10.0, 18.0, 22.0, 30.0, 31.0);
        let svc_v2 = blk(12, 4.0, 3.5, 6.0, 6.0, 7.0, 7.0);
        json!({
            "schema": "hopscope.report/v1",
            "version": "0.1.0",
            "options": {"skew": "on", "skew_threshold_ms": 1.0, "fail_status": 500,
                        "include_incomplete": false, "tz": [], "since": null, "until": null},
            "input": {"files": 4, "records": 1200},
            "requests": {
                "total": 120, "complete": 118, "incomplete": 2, "failed": 3, "root_failed": 2,
                "failure_rate": 0.025, "split": 0, "incomplete_reasons": {},
                "latency_ms": gateway.clone(),
            },
            "services": [
                service("gateway", 118, 2, gateway.clone()),
                service("orders", 118, 1, orders.clone()),
                service("payments", 40, 2, payments.clone()),
                service("postgres", 236, 0, Value::Null),
                service("svc.v2", 12, 0, svc_v2.clone()),
            ],
            "hops": [
                hop("(client)", "gateway", false, 118, 2, Value::Null, gateway.clone(), Value::Null),
                hop("gateway", "orders", false, 118, 1,
                    blk(118, 37.0, 33.0, 55.0, 63.0, 91.0, 113.0), orders,
                    blk(118, 1.8, 1.5, 2.9, 3.4, 6.2, 9.0)),
                hop("gateway", "svc.v2", false, 12, 0,
                    blk(12, 5.0, 4.5, 7.0, 7.0, 8.0, 8.0), svc_v2,
                    blk(12, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)),
                hop("orders", "payments", false, 40, 2,
                    blk(40, 13.5, 11.0, 19.5, 24.0, 32.0, 33.0), payments,
                    blk(40, 1.1, 0.9, 1.6, 2.0, 2.4, 2.5)),
                hop("orders", "postgres", true, 236, 0,
                    blk(236, 2.9, 3.0, 4.0, 4.0, 4.2, 5.0), Value::Null, Value::Null),
            ],
            "chains": [
                chain("gateway>orders", 66, 1, blk(66, 30.1, 28.0, 40.0, 44.0, 50.0, 55.0)),
                chain("gateway>orders>payments", 40, 2, blk(40, 52.0, 50.0, 61.0, 66.0, 70.0, 72.0)),
                chain("gateway>{orders,svc.v2}", 12, 0, blk(12, 60.0, 58.0, 90.0, 95.0, 120.0, 120.0)),
            ],
            "skew": {"adjusted_hops": 0, "negative_legs": 0, "pairs": []},
            "warnings": [],
        })
    }

    fn find_row<'a>(r: &'a mut Value, key: &str, pred: impl Fn(&Value) -> bool) -> &'a mut Value {
        r[key]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|v| pred(v))
            .unwrap()
    }

    fn opts(budgets: &[&str]) -> CheckOptions {
        CheckOptions {
            budgets: budgets.iter().map(|b| parse_budget(b).unwrap()).collect(),
            ..CheckOptions::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn err(expr: &str) -> BudgetError {
        match parse_budget(expr) {
            Ok(b) => panic!("{expr} parsed as {b:?}"),
            Err(e) => e,
        }
    }

    // ----- budget parsing --------------------------------------------------

    #[test]
    fn parses_the_spec_examples() {
        let b = parse_budget("orders.p99<250ms").unwrap();
        assert_eq!(b.subject, Subject::Service("orders".into()));
        assert_eq!(
            (b.block, b.metric.clone(), b.op),
            (None, Metric::Percentile("p99".into()), Op::Lt)
        );
        assert!(close(b.value, 250.0));
        assert_eq!(b.expr, "orders.p99<250ms");

        let b = parse_budget("gateway>orders.propagation.p95<20ms").unwrap();
        assert_eq!(
            b.subject,
            Subject::Hop {
                from: "gateway".into(),
                to: "orders".into()
            }
        );
        assert_eq!(b.block, Some(Block::Propagation));
        assert_eq!(b.metric, Metric::Percentile("p95".into()));
        assert!(close(b.value, 20.0));

        let b = parse_budget("failure_rate<1%").unwrap();
        assert_eq!(
            (b.subject.clone(), b.metric.clone()),
            (Subject::Requests, Metric::FailureRate)
        );
        assert!(close(b.value, 0.01));

        let b = parse_budget("orders.failure_rate<0.5%").unwrap();
        assert_eq!(b.subject, Subject::Service("orders".into()));
        assert!(close(b.value, 0.005));

        let b = parse_budget("chain:gateway>orders.p99<300ms").unwrap();
        assert_eq!(b.subject, Subject::Chain("gateway>orders".into()));
        assert!(close(b.value, 300.0));

        let b = parse_budget("chain:gateway>orders>{inventory,payments}.latency.max<1s").unwrap();
        assert_eq!(
            b.subject,
            Subject::Chain("gateway>orders>{inventory,payments}".into())
        );
        assert_eq!((b.block, b.metric), (Some(Block::Latency), Metric::Max));
    }

    #[test]
    fn dotted_service_names_end_at_the_last_dot_before_a_metric() {
        let b = parse_budget("svc.v2.p99<10ms").unwrap();
        assert_eq!(b.subject, Subject::Service("svc.v2".into()));
        let b = parse_budget("svc.v2.self.max<3ms").unwrap();
        assert_eq!(b.subject, Subject::Service("svc.v2".into()));
        assert_eq!((b.block, b.metric), (Some(Block::SelfTime), Metric::Max));
        // A service whose name itself ends like a metric.
        let b = parse_budget("svc.p99.p99<10ms").unwrap();
        assert_eq!(b.subject, Subject::Service("svc.p99".into()));
        let b = parse_budget("gateway>svc.v2.mean<5ms").unwrap();
        assert_eq!(
            b.subject,
            Subject::Hop {
                from: "gateway".into(),
                to: "svc.v2".into()
            }
        );
        assert_eq!(b.metric, Metric::Mean);
        let b = parse_budget("chain:gw>api.v1.p50<5ms").unwrap();
        assert_eq!(b.subject, Subject::Chain("gw>api.v1".into()));
    }

    #[test]
    fn root_hop_requests_block_and_counts() {
        let b = parse_budget("(client)>gateway.p99<100ms").unwrap();
        assert_eq!(
            b.subject,
            Subject::Hop {
                from: "(client)".into(),
                to: "gateway".into()
            }
        );
        let b = parse_budget("p99<300ms").unwrap();
        assert_eq!((b.subject, b.block), (Subject::Requests, None));
        let b = parse_budget("latency.p99<300ms").unwrap();
        assert_eq!(
            (b.subject, b.block),
            (Subject::Requests, Some(Block::Latency))
        );
        let b = parse_budget("mean<1s").unwrap();
        assert_eq!((b.subject, b.metric), (Subject::Requests, Metric::Mean));
        let b = parse_budget("gateway>orders.count>=30").unwrap();
        assert_eq!((b.metric, b.op), (Metric::Count, Op::Ge));
        assert!(close(b.value, 30.0));
        let b = parse_budget("orders.count>30").unwrap();
        assert_eq!(
            (b.subject, b.op),
            (Subject::Service("orders".into()), Op::Gt)
        );
        // Legs are signed.
        let b = parse_budget("gateway>orders.request_leg.p50>-5ms").unwrap();
        assert_eq!(b.block, Some(Block::RequestLeg));
        assert!(close(b.value, -5.0));
    }

    #[test]
    fn units_and_operators() {
        let v = |e: &str| parse_budget(e).unwrap().value;
        assert!(close(v("orders.p99<1s"), 1000.0));
        assert!(close(v("orders.p99<1.5s"), 1500.0));
        assert!(close(v("orders.p99<500us"), 0.5));
        assert!(close(v("orders.p99<500µs"), 0.5));
        assert!(close(v("orders.p99<250ms"), 250.0));
        assert!(close(v("orders.p99<.5ms"), 0.5));
        assert!(close(v("failure_rate<12.5%"), 0.125));
        let op = |e: &str| parse_budget(e).unwrap().op;
        assert_eq!(op("orders.p99<1ms"), Op::Lt);
        assert_eq!(op("orders.p99<=1ms"), Op::Le);
        assert_eq!(op("orders.p99>1ms"), Op::Gt);
        assert_eq!(op("orders.p99>=1ms"), Op::Ge);
        let b = parse_budget("  orders.p99 <= 250 ms ").map(|b| b.op);
        // A space between number and unit is not a unit.
        assert!(b.is_err());
        let b = parse_budget("  orders.p99 <= 250ms ").unwrap();
        assert_eq!((b.op, b.expr.as_str()), (Op::Le, "orders.p99 <= 250ms"));
        assert!(Op::Le.holds(95.0, 95.0) && !Op::Lt.holds(95.0, 95.0));
        assert!(Op::Ge.holds(30.0, 30.0) && !Op::Gt.holds(30.0, 30.0));
    }

    #[test]
    fn the_caret_sits_under_the_fault() {
        let e = err("orders.p99<<250ms");
        assert_eq!((e.column, e.message.as_str()), (11, "expected a number"));
        assert_eq!(
            e.render(),
            "invalid budget: orders.p99<<250ms\n                           ^ expected a number"
        );
        assert_eq!(e.to_string(), e.render());

        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "expected a budget"),
            ("   ", 3, "expected a budget"),
            ("orders<250ms", 6, "expected `.` and a metric"),
            ("orders", 6, "expected `.` and a metric"),
            ("gateway>orders<5ms", 14, "expected `.` and a metric"),
            ("orders.p75<250ms", 7, "available: p50, p90, p95, p99"),
            ("orders.p99.9<250ms", 7, "no percentile p99.9"),
            ("p75<1s", 0, "no percentile p75"),
            ("orders.p99x<1ms", 7, "expected a metric"),
            (
                "orders.processing<1ms",
                17,
                "expected `.` and a metric after processing",
            ),
            (
                "orders.processing.p9x<1ms",
                18,
                "expected a metric after processing.",
            ),
            ("orders.p99", 10, "expected an operator"),
            ("orders.p99=250ms", 10, "expected an operator"),
            ("orders.p99 250ms", 11, "expected an operator"),
            ("orders.p99<", 11, "expected a number"),
            ("orders.p99<ms", 11, "expected a number"),
            ("orders.p99<250", 14, "expected a time unit"),
            ("orders.p99<250kb", 14, "not `kb`"),
            ("orders.p99<250%", 14, "expected a time unit"),
            ("failure_rate<1", 14, "expected %"),
            ("failure_rate<1ms", 14, "expected % after a rate, not `ms`"),
            ("orders.count>30ms", 15, "a count takes a bare number"),
            ("orders.count>-3", 13, "not negative"),
            ("orders.p99<250ms x", 17, "unexpected text"),
            ("orders.p99<250ms<1s", 16, "unexpected text"),
            (
                "orders.processing.failure_rate<1%",
                7,
                "failure_rate takes no block",
            ),
            ("orders.call.p99<1ms", 7, "a service has no call block"),
            ("gateway>orders.self.p99<1ms", 15, "a hop has no self block"),
            (
                "chain:a>b.propagation.p99<1ms",
                10,
                "a chain has no propagation block",
            ),
            ("a>b>c.p99<1ms", 3, "a hop is FROM>TO"),
            (">orders.p99<1ms", 0, "expected the calling service"),
            ("orders>.p99<1ms", 7, "expected the called service"),
            ("chain:.p99<1ms", 6, "expected a chain"),
            (".p99<1ms", 0, "expected a subject"),
        ];
        for &(expr, col, msg) in cases {
            let e = err(expr);
            assert_eq!(e.column, col, "{expr}: {}", e.render());
            assert!(e.message.contains(msg), "{expr}: {}", e.render());
            let caret_line = e.render().lines().nth(1).unwrap().to_string();
            assert_eq!(
                caret_line.find('^'),
                Some("invalid budget: ".len() + col),
                "{expr}"
            );
        }
    }

    #[test]
    fn the_caret_counts_characters_not_bytes() {
        let e = err("örders.p75<1ms");
        assert_eq!(e.column, 7);
        let e = err("orders.p99<5µ");
        assert_eq!(e.column, 12);
        // Control characters are shown as one replacement character each.
        let e = err("a\tb.p75<1ms");
        assert_eq!(e.column, 4);
        assert!(e.render().starts_with("invalid budget: a\u{fffd}b.p75"));
    }

    #[test]
    fn option_values() {
        assert!(close(parse_percent("10%").unwrap(), 0.10));
        assert!(close(parse_percent("10").unwrap(), 0.10));
        assert!(close(parse_percent(" 2.5% ").unwrap(), 0.025));
        assert!(close(parse_percent("0").unwrap(), 0.0));
        for bad in ["", "%", "-5%", "ten", "1e3", "10%%"] {
            assert!(parse_percent(bad).is_err(), "{bad}");
        }
        assert!(close(parse_percentage_points("1").unwrap(), 1.0));
        assert!(close(parse_percentage_points("0.5pp").unwrap(), 0.5));
        assert!(close(parse_percentage_points("2%").unwrap(), 2.0));
        assert!(parse_percentage_points("x").is_err());
        assert_eq!(
            parse_metrics("p50, p99,p50,max").unwrap(),
            ["p50", "p99", "max"]
        );
        assert!(
            parse_metrics("p75")
                .unwrap_err()
                .contains("p50, p90, p95, p99")
        );
        assert!(parse_metrics(" , ").is_err());
    }

    // ----- budgets against a report ------------------------------------------

    fn verdicts(r: &CheckResult) -> Vec<(&str, Verdict)> {
        r.checks
            .iter()
            .map(|c| (c.check.as_str(), c.verdict))
            .collect()
    }

    #[test]
    fn budgets_pass_and_fail_on_hand_checked_values() {
        let cur = report();
        let o = opts(&[
            "orders.p99<250ms",                    // 88 → pass
            "orders.p99<80ms",                     // 88 → fail
            "gateway>orders.propagation.p95<20ms", // 3.4 → pass
            "failure_rate<1%",                     // 0.025 → fail
            "failure_rate<3%",                     // 0.025 → pass
            "orders.failure_rate<0.5%",            // 1/118 = 0.847 % → fail
            "chain:gateway>orders.p99<300ms",      // 50 → pass
            "svc.v2.p99<10ms",                     // 7 → pass
            "(client)>gateway.p99<100ms",          // 95 → pass
            "orders>postgres.p99<5ms",             // virtual hop: call p99 4.2 → pass
            "gateway>orders.count>=100",           // 118 → pass
            "p99<=95ms",                           // 95 → pass (boundary)
            "p99<95ms",                            // 95 → fail
            "latency.max<2s",                      // 120 → pass
            "gateway>orders.call.p50>=33ms",       // 33 → pass
        ]);
        let r = check(&cur, None, &o);
        use Verdict::*;
        assert_eq!(
            verdicts(&r),
            [
                ("orders.p99<250ms", Pass),
                ("orders.p99<80ms", Fail),
                ("gateway>orders.propagation.p95<20ms", Pass),
                ("failure_rate<1%", Fail),
                ("failure_rate<3%", Pass),
                ("orders.failure_rate<0.5%", Fail),
                ("chain:gateway>orders.p99<300ms", Pass),
                ("svc.v2.p99<10ms", Pass),
                ("(client)>gateway.p99<100ms", Pass),
                ("orders>postgres.p99<5ms", Pass),
                ("gateway>orders.count>=100", Pass),
                ("p99<=95ms", Pass),
                ("p99<95ms", Fail),
                ("latency.max<2s", Pass),
                ("gateway>orders.call.p50>=33ms", Pass),
            ]
        );
        assert!(!r.passed());
        assert_eq!(r.exit_code(), 1);
        let c = &r.checks[1];
        assert_eq!(
            (c.kind, c.subject_kind, c.subject.as_str()),
            (CheckKind::Budget, SubjectKind::Service, "orders")
        );
        assert_eq!(
            (c.block.as_deref(), c.metric.as_str(), c.unit),
            (Some("processing_ms"), "p99", Unit::Ms)
        );
        assert_eq!(
            (c.observed, c.limit, c.baseline, c.op),
            (Some(88.0), Some(80.0), None, "<")
        );
        assert_eq!(c.message.as_deref(), Some("observed 88ms, limit < 80ms"));
        let c = &r.checks[5];
        assert_eq!((c.block.as_deref(), c.unit), (None, Unit::Fraction));
        assert!(close(c.observed.unwrap(), 1.0 / 118.0));
        assert_eq!(r.checks[9].block.as_deref(), Some("call_ms"));
        assert_eq!(r.checks[10].observed, Some(118.0));
        assert_eq!(r.checks[13].block.as_deref(), Some("latency_ms"));

        let all_pass = check(&cur, None, &opts(&["orders.p99<250ms", "p99<=95ms"]));
        assert!(all_pass.passed());
        assert_eq!(all_pass.exit_code(), 0);
        assert!(all_pass.warnings.is_empty());
    }

    #[test]
    fn subjects_without_data_fail_unless_allowed() {
        let cur = report();
        let exprs = [
            "billing.p99<10ms",                // no such service
            "postgres.p99<5ms",                // virtual: processing null
            "(client)>gateway.call.p99<1ms",   // the root hop has no call time
            "chain:gateway>nope.p99<1s",       // no such chain
            "gateway>billing.failure_rate<1%", // no such hop
            "orders.procesing.p99<1ms",        // a misspelled block
        ];
        let r = check(&cur, None, &opts(&exprs));
        assert!(
            r.checks
                .iter()
                .all(|c| c.kind == CheckKind::Missing && c.verdict == Verdict::NoData)
        );
        assert!(r.checks.iter().all(|c| c.observed.is_none()));
        assert!(!r.passed());
        let msg = |i: usize| r.checks[i].message.clone().unwrap();
        assert_eq!(msg(0), "no data: no service `billing` in this run");
        assert_eq!(
            msg(1),
            "no data: processing_ms is null (a virtual service has no processing time; budget the call to it, e.g. orders>postgres.p99)"
        );
        assert_eq!(msg(2), "no data: call_ms is null");
        assert_eq!(msg(3), "no data: no chain `gateway>nope` in this run");
        assert_eq!(msg(4), "no data: no hop gateway>billing in this run");
        assert!(msg(5).contains("service `orders` exists; `procesing` is not a block name"));

        let mut o = opts(&exprs);
        o.budgets.push(parse_budget("orders.p99<250ms").unwrap());
        o.allow_missing = true;
        let r = check(&cur, None, &o);
        assert!(
            r.checks[..6]
                .iter()
                .all(|c| c.kind == CheckKind::Missing && c.verdict == Verdict::Skipped)
        );
        assert_eq!(r.checks[6].verdict, Verdict::Pass);
        assert!(r.passed());
        assert_eq!(r.exit_code(), 0);

        // A failure still fails with --allow-missing.
        o.budgets.push(parse_budget("orders.p99<1ms").unwrap());
        assert!(!check(&cur, None, &o).passed());
    }

    #[test]
    fn nothing_to_check_is_a_warning_not_a_failure() {
        let r = check(&report(), None, &CheckOptions::default());
        assert!(r.passed());
        assert_eq!(r.warnings[0].code, "nothing_checked");
    }

    // ----- baseline comparison -------------------------------------------------

    /// The baseline: the same run, except gateway>orders processing p99 was
    /// 79 ms (now 88: +11.4 %) and payments failed 3.5 % (now 5 %: +1.5 pp),
    /// and svc.v2 (12 samples) was much faster.
    fn regressed_baseline() -> Value {
        let mut base = report();
        find_row(&mut base, "hops", |h| {
            h["from"] == "gateway" && h["to"] == "orders"
        })["processing_ms"]["p99"] = json!(79.0);
        find_row(&mut base, "services", |s| s["service"] == "payments")["failure_rate"] =
            json!(0.035);
        find_row(&mut base, "services", |s| s["service"] == "svc.v2")["processing_ms"]["p99"] =
            json!(1.0);
        find_row(&mut base, "hops", |h| h["to"] == "svc.v2")["failure_rate"] = json!(0.0);
        base["hops"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .for_each(|h| {
                if h["to"] == "svc.v2" {
                    h["processing_ms"]["p50"] = json!(0.1);
                }
            });
        base
    }

    #[test]
    fn regressions_name_exactly_the_hop_p99_and_the_service_failure_rate() {
        let cur = report();
        let base = regressed_baseline();
        let r = check(&cur, Some(&base), &CheckOptions::default());
        let failed: Vec<&Check> = r.checks.iter().filter(|c| c.verdict.fails()).collect();
        assert_eq!(failed.len(), 2, "{:#?}", failed);

        // Report order: services before hops.
        let hop = failed[1];
        assert_eq!(hop.check, "gateway>orders.p99");
        assert_eq!(
            (hop.kind, hop.subject_kind, hop.subject.as_str()),
            (CheckKind::Regression, SubjectKind::Hop, "gateway>orders")
        );
        assert_eq!(
            (hop.block.as_deref(), hop.metric.as_str()),
            (Some("processing_ms"), "p99")
        );
        assert_eq!((hop.baseline, hop.observed), (Some(79.0), Some(88.0)));
        assert!(close(hop.limit.unwrap(), 86.9));
        assert_eq!(hop.op, "<=");

        let svc = failed[0];
        assert_eq!(svc.check, "payments.failure_rate");
        assert_eq!(
            (svc.subject_kind, svc.unit, svc.block.clone()),
            (SubjectKind::Service, Unit::Fraction, None)
        );
        assert_eq!((svc.baseline, svc.observed), (Some(0.035), Some(0.05)));
        assert!(close(svc.limit.unwrap(), 0.045));
        assert!(svc.message.as_deref().unwrap().contains("3.5% to 5%"));

        // Every group with enough samples in both runs is compared:
        // requests 3+1, gateway/orders/payments 4 each, postgres (virtual,
        // failure rate only) 1, (client)>gateway 3+1 (no propagation),
        // gateway>orders and orders>payments 3+3+1 each, orders>postgres
        // (call) 3+1, two chains 4 each.
        assert_eq!(r.checks.len(), 4 + 12 + 1 + 4 + 7 + 7 + 4 + 8);
        assert!(r.checks.iter().all(|c| c.kind == CheckKind::Regression));
        let labels: Vec<&str> = r.checks.iter().map(|c| c.check.as_str()).collect();
        assert_eq!(&labels[..4], ["p50", "p90", "p99", "failure_rate"]);
        assert!(labels.contains(&"gateway>orders.propagation.p99"));
        assert!(labels.contains(&"orders>postgres.p99"));
        assert!(labels.contains(&"chain:gateway>orders>payments.p90"));
        assert!(labels.contains(&"postgres.failure_rate"));
        assert!(!labels.contains(&"postgres.p99"));
        assert!(!labels.contains(&"(client)>gateway.propagation.p50"));
        let pg = r
            .checks
            .iter()
            .find(|c| c.check == "orders>postgres.p99")
            .unwrap();
        assert_eq!(pg.block.as_deref(), Some("call_ms"));

        // svc.v2 regressed badly but has 12 samples: skipped and listed.
        assert_eq!(
            r.skipped_low_count,
            [
                LowCount {
                    subject_kind: SubjectKind::Service,
                    subject: "svc.v2".into(),
                    count: 12,
                    baseline_count: 12
                },
                LowCount {
                    subject_kind: SubjectKind::Hop,
                    subject: "gateway>svc.v2".into(),
                    count: 12,
                    baseline_count: 12
                },
                LowCount {
                    subject_kind: SubjectKind::Chain,
                    subject: "gateway>{orders,svc.v2}".into(),
                    count: 12,
                    baseline_count: 12
                },
            ]
        );
        assert!(!labels.iter().any(|l| l.contains("svc.v2")));
        assert!(r.new.is_empty() && r.gone.is_empty() && r.warnings.is_empty());
        assert!(!r.passed());

        // Budgets show the baseline's figure too.
        let r = check(&cur, Some(&base), &opts(&["gateway>orders.p99<100ms"]));
        assert_eq!(
            (r.checks[0].baseline, r.checks[0].observed),
            (Some(79.0), Some(88.0))
        );
        assert_eq!(r.checks[0].verdict, Verdict::Pass);
    }

    #[test]
    fn thresholds_are_inclusive_and_configurable() {
        let cur = report();
        let mut base = report();
        // orders p99 88 now; baseline 80 → exactly +10 %: not more than 10 %.
        find_row(&mut base, "services", |s| s["service"] == "orders")["processing_ms"]["p99"] =
            json!(80.0);
        // gateway failure rate 2/118 ≈ 1.695 % now; baseline 0.695 % → +1 pp.
        let gw = find_row(&mut base, "services", |s| s["service"] == "gateway");
        gw["failure_rate"] = json!(2.0 / 118.0 - 0.01);
        let r = check(&cur, Some(&base), &CheckOptions::default());
        assert!(
            r.passed(),
            "{:#?}",
            r.checks
                .iter()
                .filter(|c| c.verdict.fails())
                .collect::<Vec<_>>()
        );

        let strict = CheckOptions {
            max_increase: 0.05,
            max_failure_increase_pp: 0.5,
            ..CheckOptions::default()
        };
        let r = check(&cur, Some(&base), &strict);
        let failed: Vec<&str> = r
            .checks
            .iter()
            .filter(|c| c.verdict.fails())
            .map(|c| c.check.as_str())
            .collect();
        assert_eq!(failed, ["gateway.failure_rate", "orders.p99"]);

        // --metrics limits what is compared; mean is allowed.
        let only_mean = CheckOptions {
            metrics: vec!["mean".into()],
            ..CheckOptions::default()
        };
        let r = check(&cur, Some(&base), &only_mean);
        assert!(
            r.checks
                .iter()
                .all(|c| c.metric == "mean" || c.metric == "failure_rate")
        );
        assert!(r.passed());
    }

    #[test]
    fn min_count_skips_small_groups_in_either_run() {
        let cur = report();
        let base = regressed_baseline();
        // With 12 samples allowed, svc.v2's regression is found.
        let o = CheckOptions {
            min_count: 12,
            ..CheckOptions::default()
        };
        let r = check(&cur, Some(&base), &o);
        assert!(r.skipped_low_count.is_empty());
        let failed: Vec<&str> = r
            .checks
            .iter()
            .filter(|c| c.verdict.fails())
            .map(|c| c.check.as_str())
            .collect();
        assert_eq!(
            failed,
            [
                "payments.failure_rate",
                "svc.v2.p99",
                "gateway>orders.p99",
                "gateway>svc.v2.p50"
            ]
        );

        // A group small in the baseline only is skipped too.
        let mut small_base = report();
        find_row(&mut small_base, "hops", |h| h["to"] == "payments")["calls"] = json!(29);
        let r = check(&cur, Some(&small_base), &CheckOptions::default());
        assert!(r.skipped_low_count.contains(&LowCount {
            subject_kind: SubjectKind::Hop,
            subject: "orders>payments".into(),
            count: 40,
            baseline_count: 29
        }));
        assert!(!r.checks.iter().any(|c| c.subject == "orders>payments"));
        // min-count 200: only postgres (236 visits) and orders>postgres compared.
        let o = CheckOptions {
            min_count: 200,
            ..CheckOptions::default()
        };
        let r = check(&cur, Some(&report()), &o);
        let subjects: BTreeSet<&str> = r.checks.iter().map(|c| c.subject.as_str()).collect();
        assert_eq!(
            subjects.into_iter().collect::<Vec<_>>(),
            ["orders>postgres", "postgres"]
        );
        assert_eq!(r.skipped_low_count.len(), 1 + 4 + 4 + 3);
    }

    #[test]
    fn new_and_gone_are_listed_but_do_not_fail() {
        let cur = report();
        let mut base = report();
        base["services"]
            .as_array_mut()
            .unwrap()
            .retain(|s| s["service"] != "svc.v2");
        base["hops"]
            .as_array_mut()
            .unwrap()
            .retain(|h| h["to"] != "svc.v2");
        base["services"].as_array_mut().unwrap().insert(
            0,
            service("cache", 50, 0, blk(50, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)),
        );
        base["hops"].as_array_mut().unwrap().push(hop(
            "orders",
            "cache",
            false,
            50,
            0,
            Value::Null,
            blk(50, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
            Value::Null,
        ));
        let r = check(&cur, Some(&base), &CheckOptions::default());
        let names = |v: &[Change]| {
            v.iter()
                .map(|c| (c.subject_kind, c.subject.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&r.new),
            [
                (SubjectKind::Service, "svc.v2".to_string()),
                (SubjectKind::Hop, "gateway>svc.v2".to_string())
            ]
        );
        assert_eq!(
            names(&r.gone),
            [
                (SubjectKind::Service, "cache".to_string()),
                (SubjectKind::Hop, "orders>cache".to_string())
            ]
        );
        assert!(r.passed());
    }

    #[test]
    fn a_baseline_with_other_options_is_a_warning() {
        let cur = report();
        let mut base = report();
        base["options"]["skew"] = json!("off");
        base["options"]["fail_status"] = json!(400);
        let r = check(&cur, Some(&base), &CheckOptions::default());
        assert!(r.passed());
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(r.warnings[0].code, "baseline_options_differ");
        assert!(
            r.warnings[0]
                .message
                .ends_with("fail_status 400 -> 500, skew \"off\" -> \"on\""),
            "{}",
            r.warnings[0].message
        );
        // Key order does not matter.
        let mut reordered = report();
        let opts_obj = reordered["options"].as_object().unwrap().clone();
        let rev: serde_json::Map<String, Value> = opts_obj.into_iter().rev().collect();
        reordered["options"] = Value::Object(rev);
        assert!(
            check(&cur, Some(&reordered), &CheckOptions::default())
                .warnings
                .is_empty()
        );
    }

    #[test]
    fn baselines_are_validated_and_named() {
        assert!(validate_report(&report()).is_ok());
        assert!(
            validate_report(&json!([1]))
                .unwrap_err()
                .contains("not a JSON object")
        );
        assert!(
            validate_report(&json!({"schema": "hopscope.trace/v1"}))
                .unwrap_err()
                .contains("\"hopscope.trace/v1\"")
        );
        assert!(
            validate_report(&json!({"requests": {}}))
                .unwrap_err()
                .contains("no schema")
        );
        let mut no_hops = report();
        no_hops.as_object_mut().unwrap().remove("hops");
        assert!(
            validate_report(&no_hops)
                .unwrap_err()
                .contains("no hops array")
        );

        let dir = std::env::temp_dir().join(format!("hopscope-check-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("base.json");
        std::fs::write(&bad, "{not json").unwrap();
        let e = load_report(&bad).unwrap_err();
        assert!(e.to_string().starts_with(&format!(
            "{}: not a hopscope.report/v1 report (not JSON",
            bad.display()
        )));
        std::fs::write(&bad, r#"{"schema": "other"}"#).unwrap();
        assert!(
            load_report(&bad)
                .unwrap_err()
                .to_string()
                .contains("schema is \"other\"")
        );
        std::fs::write(&bad, serde_json::to_string(&report()).unwrap()).unwrap();
        assert_eq!(load_report(&bad).unwrap(), report());
        let missing = dir.join("missing.json");
        assert!(
            load_report(&missing)
                .unwrap_err()
                .to_string()
                .contains("missing.json: cannot read baseline")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // ----- output ----------------------------------------------------------------

    fn mixed_result() -> CheckResult {
        let cur = report();
        let mut base = regressed_baseline();
        base["options"]["skew"] = json!("off");
        base["hops"]
            .as_array_mut()
            .unwrap()
            .retain(|h| h["to"] != "postgres");
        let o = opts(&["orders.p99<80ms", "orders.p99<250ms", "o&\"q'.p99<1ms"]);
        check(&cur, Some(&base), &o)
    }

    #[test]
    fn table_output() {
        let r = mixed_result();
        let mut out = Vec::new();
        r.write_table(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for want in [
            "check",
            "baseline",
            "observed",
            "limit",
            "verdict",
            "orders.p99<80ms",
            "88ms",
            "< 80ms",
            "FAIL",
            "gateway>orders.p99",
            "79ms",
            "<= 86.9ms (+10%)",
            "payments.failure_rate",
            "3.5%",
            "<= 4.5% (+1pp)",
            "o&\"q'.p99<1ms",
            "no data",
            "not compared, fewer than 30 samples in a run (3):",
            "service svc.v2 (12 now, 12 in baseline)",
            "new since baseline (informational):",
            "hop orders>postgres",
            "warning: the baseline was made with other options",
            "check FAILED: 4 of ",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }

    #[test]
    fn json_output() {
        let r = mixed_result();
        let mut out = Vec::new();
        r.write_json(&mut out).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["schema"], "hopscope.check/v1");
        assert_eq!(v["passed"], false);
        assert_eq!(v["checks"].as_array().unwrap().len(), r.checks.len());
        let c0 = &v["checks"][0];
        assert_eq!(c0["check"], "orders.p99<80ms");
        assert_eq!(c0["kind"], "budget");
        assert_eq!(c0["subject"], "orders");
        assert_eq!(c0["metric"], "p99");
        assert_eq!(c0["baseline"], 88.0);
        assert_eq!(c0["observed"], 88.0);
        assert_eq!(c0["limit"], 80.0);
        assert_eq!(c0["verdict"], "fail");
        let c2 = &v["checks"][2];
        assert_eq!(
            (c2["kind"].as_str(), c2["verdict"].as_str()),
            (Some("missing"), Some("no data"))
        );
        assert_eq!(c2["observed"], Value::Null);
        assert_eq!(v["skipped_low_count"][0]["subject"], "svc.v2");
        assert_eq!(
            v["new"][0],
            json!({"subject_kind": "hop", "subject": "orders>postgres"})
        );
        assert_eq!(v["gone"], json!([]));
        assert_eq!(v["warnings"][0]["code"], "baseline_options_differ");
        assert_eq!(v["summary"]["failed"], 3);
        assert_eq!(v["summary"]["no_data"], 1);
        assert!(out.ends_with(b"}\n"));
    }

    #[test]
    fn junit_output_is_valid_xml_with_one_testcase_per_check() {
        use quick_xml::events::Event;
        let mut r = mixed_result();
        // A skipped check and names XML cannot carry raw.
        r.checks.push(Check {
            check: "ctl\u{1}\u{7}.p99<1ms".into(),
            verdict: Verdict::Skipped,
            message: Some("no data: a]]>b & \"c\"".into()),
            ..r.checks[2].clone()
        });
        let mut out = Vec::new();
        r.write_junit(&mut out).unwrap();
        let xml = String::from_utf8(out).unwrap();

        let mut reader = quick_xml::Reader::from_str(&xml);
        let (mut cases, mut failures, mut skipped, mut suites) = (0, 0, 0, 0);
        let mut names = Vec::new();
        let mut failure_messages = Vec::new();
        loop {
            match reader.read_event() {
                Ok(Event::Eof) => break,
                Ok(Event::Start(e) | Event::Empty(e)) => match e.name().as_ref() {
                    "testsuite" => {
                        suites += 1;
                        let name = e.try_get_attribute("name").unwrap().unwrap();
                        assert_eq!(
                            name.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                                .unwrap(),
                            "hopscope"
                        );
                    }
                    "testcase" => {
                        cases += 1;
                        let name = e.try_get_attribute("name").unwrap().unwrap();
                        names.push(
                            name.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                                .unwrap()
                                .into_owned(),
                        );
                    }
                    "failure" => {
                        failures += 1;
                        let m = e.try_get_attribute("message").unwrap().unwrap();
                        failure_messages.push(
                            m.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                                .unwrap()
                                .into_owned(),
                        );
                    }
                    "skipped" => skipped += 1,
                    _ => {}
                },
                Ok(_) => {}
                Err(e) => panic!("invalid XML at {}: {e}\n{xml}", reader.buffer_position()),
            }
        }
        assert_eq!(suites, 1);
        assert_eq!(cases, r.checks.len());
        assert_eq!(failures, 4);
        assert_eq!(skipped, 1);
        assert_eq!(names[0], "orders.p99<80ms");
        assert_eq!(names[2], "o&\"q'.p99<1ms");
        assert_eq!(names.last().unwrap(), "ctl\u{fffd}\u{fffd}.p99<1ms");
        assert!(failure_messages.contains(&"no data: no service `o&\"q'` in this run".to_string()));
        // 3 budgets + 47 regression checks - 4 for orders>postgres (new) + 1 pushed.
        assert!(
            xml.contains(r#"tests="47" failures="4" errors="0" skipped="1""#),
            "{xml}"
        );
        assert!(xml.contains("<system-out>"));
        assert!(!xml.contains('\u{1}'));
    }
}
