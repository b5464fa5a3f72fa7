//! Wires the stages: discover → open → chunk → parse (parallel) → intern →
//! sort by request → assemble (twice: skew, then figures) → measure →
//! report. Owns every [`Source`] until the report is built, since records
//! borrow from them.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;

use crate::assemble::skew::SkewSamples;
use crate::assemble::{self, AssembleOptions, Assembled, Offsets, SkewPair, Universe};
use crate::cli::{Config, OutputFormat, ReportOptions, TimeBound};
use crate::error::Error;
use crate::input::{self, InputFile, ServiceFrom, Source};
use crate::measure::Stats;
use crate::model::{Interner, Record};
use crate::parse::detect::{self, LineFormat};
use crate::parse::fields::Schema;
use crate::parse::{self, FileContext, LineRules};
use crate::report::{self, InputFacts, Report};

/// The stack each worker thread gets: request trees are walked recursively.
const WORKER_STACK: usize = 64 << 20;

/// Non-fatal problems met while reading; they set exit code 3.
#[derive(Debug, Default)]
pub struct Diagnostics {
    /// One line per unreadable file, `path: reason`.
    pub unreadable: Vec<String>,
}

impl Diagnostics {
    /// The exit code when nothing fatal happened (SPEC §6).
    pub fn exit_code(&self) -> u8 {
        if self.unreadable.is_empty() { 0 } else { 3 }
    }
}

/// The records of a run and everything needed to interpret them.
pub struct Loaded {
    /// Every record, sorted by (request, ts, file, offset).
    pub records: Vec<Record>,
    /// Services and virtual services.
    pub universe: Universe,
    /// Input counters for the report.
    pub facts: InputFacts,
}

/// Opened inputs, kept alive while records borrow from them.
pub struct Inputs {
    /// The files in path order.
    pub files: Vec<InputFile>,
    /// Each file's bytes; None when it could not be read or is binary.
    pub sources: Vec<Option<Source>>,
    /// Counters of what was opened.
    pub facts: InputFacts,
}

fn thread_pool(cfg: &Config) -> Result<rayon::ThreadPool, Error> {
    let mut b = rayon::ThreadPoolBuilder::new().stack_size(WORKER_STACK);
    if let Some(n) = cfg.threads {
        b = b.num_threads(n);
    }
    b.build()
        .map_err(|e| Error::Usage(format!("cannot start worker threads: {e}")))
}

/// Finds and opens the inputs; unreadable files go to `diag`.
pub fn open_inputs(cfg: &Config, diag: &mut Diagnostics) -> Result<Inputs, Error> {
    let mut paths = cfg.paths.clone();
    if paths.is_empty() {
        if std::io::stdin().is_terminal() {
            return Err(Error::Usage(
                "no input: give log files or directories, or pipe logs into standard input \
                 (hopscope --help)"
                    .into(),
            ));
        }
        paths.push(PathBuf::from("-"));
    }
    let service_from = cfg.service_from.unwrap_or(ServiceFrom::Auto);
    let found = input::discover(&paths, cfg.follow, service_from);
    for e in &found.errors {
        diag.unreadable.push(e.to_string());
    }
    if found.files.is_empty() {
        let why = if found.errors.is_empty() {
            String::from(" (the paths hold no log files)")
        } else {
            String::new()
        };
        return Err(Error::NoInput(why));
    }
    let opened: Vec<std::io::Result<input::Opened>> = found
        .files
        .par_iter()
        .map(|f| input::open(f, cfg.mmap))
        .collect();
    let mut facts = InputFacts::default();
    let mut sources = Vec::with_capacity(opened.len());
    for (f, o) in found.files.iter().zip(opened) {
        match o {
            Err(e) => {
                diag.unreadable
                    .push(format!("{}: {}", f.display, input::io_message(&e)));
                sources.push(None);
            }
            Ok(o) => {
                facts.files += 1;
                facts.bytes += o.bytes_read;
                if o.binary {
                    facts.binary_files += 1;
                    sources.push(None);
                } else {
                    sources.push(Some(o.source));
                }
            }
        }
    }
    Ok(Inputs {
        files: found.files,
        sources,
        facts,
    })
}

fn line_rules(cfg: &Config) -> LineRules {
    LineRules {
        schema: Schema::new(&cfg.field_overrides),
        tz: cfg.tz.clone(),
        tz_by_service: cfg.tz_by_service.clone(),
        time_format: cfg.time_format.clone(),
        service_from_path: cfg.service_from.is_some(),
        duration_unit: cfg.duration_unit,
        anchor_start: cfg.anchor_start,
        fail_status: cfg.fail_status,
        max_line: cfg.max_line,
    }
}

/// The 1-based line number of byte `offset` in `data`.
fn line_number(data: &[u8], offset: u64) -> u64 {
    let end = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(data.len());
    memchr::memchr_iter(b'\n', data.get(..end).unwrap_or_default()).count() as u64 + 1
}

/// Lower-cases a peer and strips scheme, user-info, path, port and a
/// Kubernetes `.<ns>.svc[.cluster.local]` suffix (SPEC §2 Calls).
pub fn normalize_peer(peer: &str) -> String {
    let mut p = peer.trim().to_lowercase();
    if let Some(i) = p.find("://") {
        p = p.get(i + 3..).unwrap_or_default().to_string();
    }
    if let Some(i) = p.find('/') {
        p.truncate(i);
    }
    if let Some(i) = p.rfind('@') {
        p = p.get(i + 1..).unwrap_or_default().to_string();
    }
    if let Some(i) = p.rfind(':')
        && p.get(i + 1..)
            .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
    {
        p.truncate(i);
    }
    for suffix in [".svc.cluster.local", ".svc"] {
        if let Some(stripped) = p.strip_suffix(suffix) {
            p = match stripped.rfind('.') {
                Some(i) => stripped.get(..i).unwrap_or_default().to_string(),
                None => stripped.to_string(),
            };
            break;
        }
    }
    p
}

/// Parses every file in parallel and interns services and peers.
pub fn load(cfg: &Config, inputs: &Inputs) -> Result<Loaded, Error> {
    let rules = line_rules(cfg);
    // Format per file, decided once from its first non-blank lines.
    let formats: Vec<Option<LineFormat>> = inputs
        .sources
        .iter()
        .map(|s| match (s, cfg.format) {
            (None, _) => None,
            (Some(_), Some(f)) => Some(f),
            (Some(src), None) => detect::detect(
                parse::lines(src)
                    .map(|(_, l)| l)
                    .filter(|l| l.len() <= cfg.max_line),
                &rules.schema,
            ),
        })
        .collect();
    let mut jobs: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
    for (i, s) in inputs.sources.iter().enumerate() {
        if let Some(src) = s {
            for r in input::chunk_ranges(src, cfg.chunk_size) {
                jobs.push((i, r));
            }
        }
    }
    let chunks: Vec<(usize, parse::ChunkRecords)> = jobs
        .par_iter()
        .map(|(i, range)| {
            let source = inputs.sources.get(*i).and_then(Option::as_ref);
            let src: &[u8] = source.map(|s| &s[..]).unwrap_or_default();
            let file = inputs.files.get(*i);
            let ctx = FileContext {
                file: file.map_or(0, |f| f.id),
                path_service: file.map_or("", |f| f.service.as_str()),
                format: formats.get(*i).copied().flatten(),
            };
            let data = src.get(range.clone()).unwrap_or_default();
            (
                *i,
                parse::parse_chunk(data, range.start as u64, &ctx, &rules),
            )
        })
        .collect();
    let mut facts = inputs.facts.clone();
    let mut services = Interner::default();
    let mut peers = Interner::default();
    let mut ids = Interner::default();
    let mut spans: Vec<crate::model::SpanPair> = Vec::new();
    let mut per_file_records = vec![0u64; inputs.files.len()];
    let mut per_file_lines = vec![0u64; inputs.files.len()];
    let mut remaps = Vec::with_capacity(chunks.len());
    for (i, c) in &chunks {
        facts.parse.merge(&c.stats);
        if let Some(n) = per_file_records.get_mut(*i) {
            *n += c.stats.records;
        }
        if let Some(n) = per_file_lines.get_mut(*i) {
            *n += c.stats.lines - c.stats.blank;
        }
        let svc: Vec<u32> = c
            .services
            .names()
            .iter()
            .map(|n| services.intern(n))
            .collect();
        let peer: Vec<u32> = c.peers.names().iter().map(|n| peers.intern(n)).collect();
        let id: Vec<u32> = c.ids.names().iter().map(|n| ids.intern(n)).collect();
        let span_base = u32::try_from(spans.len()).unwrap_or(u32::MAX);
        let remap_id =
            |k: crate::model::IdKey| k.remap(|x| id.get(x as usize).copied().unwrap_or(x));
        for p in &c.spans {
            spans.push(crate::model::SpanPair {
                span: p.span.map(remap_id),
                parent: p.parent.map(remap_id),
            });
        }
        remaps.push((svc, peer, id, span_base));
    }
    if cfg.strict
        && let Some((file, offset, reason)) = facts.parse.first_skip
    {
        let f = inputs.files.iter().find(|f| f.id == file);
        let data = inputs
            .sources
            .get(file as usize)
            .and_then(|s| s.as_deref())
            .unwrap_or_default();
        return Err(Error::Strict {
            path: f.map_or(String::new(), |f| f.display.clone()),
            line: line_number(data, offset),
            reason: reason.name().to_string(),
        });
    }
    for (i, f) in inputs.files.iter().enumerate() {
        let lines = per_file_lines.get(i).copied().unwrap_or(0);
        let recs = per_file_records.get(i).copied().unwrap_or(0);
        if inputs.sources.get(i).is_some_and(Option::is_some) && recs == 0 && lines > 0 {
            facts.files_without_records.push(f.display.clone());
        }
    }
    let mut records: Vec<Record> =
        Vec::with_capacity(usize::try_from(facts.parse.records).unwrap_or(0));
    for ((_, c), (svc, peer, id, span_base)) in chunks.into_iter().zip(&remaps) {
        for mut r in c.records {
            r.service = svc.get(r.service as usize).copied().unwrap_or(0);
            if let Some(p) = r.peer() {
                r.peer_id = peer.get(p as usize).copied().unwrap_or(Record::NO_PEER);
            }
            r.req = r.req.remap(|x| id.get(x as usize).copied().unwrap_or(x));
            if r.spans != Record::NO_SPANS {
                r.spans = r.spans.saturating_add(*span_base);
            }
            records.push(r);
        }
    }
    let mut universe = resolve_universe(&cfg.peer_aliases, services, &peers);
    universe.ids = ids;
    universe.spans = spans;
    records.par_sort_unstable_by_key(|r| (r.req, r.ts, r.loc));
    Ok(Loaded {
        records,
        universe,
        facts,
    })
}

/// Decides what each peer names: a logged service (after normalisation and
/// aliases, keyed by lower-cased FROM) or a virtual one.
pub fn resolve_universe(
    aliases: &std::collections::BTreeMap<String, String>,
    services: Interner,
    peers: &Interner,
) -> Universe {
    let mut names: Vec<String> = services.names().to_vec();
    let mut virtual_ = vec![false; names.len()];
    let mut by_lower: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    for (i, n) in names.iter().enumerate() {
        by_lower.entry(n.to_lowercase()).or_insert(i as u32);
    }
    let mut virtual_ids: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    let mut peer_target = Vec::with_capacity(peers.len());
    for raw in peers.names() {
        let lower = raw.trim().to_lowercase();
        let norm = normalize_peer(raw);
        let aliased = aliases
            .get(&lower)
            .or_else(|| aliases.get(&norm))
            .map(|t| t.to_lowercase())
            .unwrap_or_else(|| norm.clone());
        let target = match by_lower.get(&aliased) {
            Some(&id) => id,
            None => *virtual_ids.entry(aliased.clone()).or_insert_with(|| {
                names.push(aliased.clone());
                virtual_.push(true);
                (names.len() - 1) as u32
            }),
        };
        peer_target.push(target);
    }
    Universe {
        services: names,
        virtual_,
        peer_target,
        ids: Interner::default(),
        spans: Vec::new(),
    }
}

/// One request (a piece of a request ID after `--max-gap`).
struct Piece {
    range: std::ops::Range<usize>,
}

fn resolve_bound(b: &Option<TimeBound>, newest: Option<i64>) -> Option<i64> {
    match b {
        None => None,
        Some(TimeBound::At(t)) => Some(*t),
        Some(TimeBound::BeforeNewest(d)) => newest.map(|n| n - d),
    }
}

/// The measured statistics of a run.
pub struct Analysis {
    pub stats: Stats,
    pub skew_pairs: Vec<SkewPair>,
    pub offsets: Offsets,
}

/// Assembles every request twice (skew, then figures) and folds the
/// statistics.
pub fn analyze(cfg: &Config, loaded: &Loaded) -> Analysis {
    let recs = &loaded.records;
    let opts = AssembleOptions {
        skew: cfg.skew,
        max_visits: cfg.max_visits,
    };
    let mut split = 0u64;
    let mut pieces = Vec::new();
    for range in assemble::request_ranges(recs) {
        let slice = recs.get(range.clone()).unwrap_or_default();
        let parts = assemble::split_at_gaps(slice, cfg.max_gap);
        split += parts.len().saturating_sub(1) as u64;
        for p in parts {
            pieces.push(Piece {
                range: range.start + p.start..range.start + p.end,
            });
        }
    }
    let newest = loaded.facts.parse.last_ts;
    let since = resolve_bound(&cfg.since, newest);
    let until = resolve_bound(&cfg.until, newest);
    let u = &loaded.universe;
    let assemble_piece = |p: &Piece, offsets: Option<&Offsets>| -> Assembled {
        let slice = recs.get(p.range.clone()).unwrap_or_default();
        assemble::assemble(slice, u, offsets, &opts)
    };
    // Pass 1: raw times, for the skew samples and the time selection.
    let first: Vec<(bool, SkewSamples)> = pieces
        .par_iter()
        .map(|p| {
            let a = assemble_piece(p, None);
            let keep = since.is_none_or(|s| a.start >= s) && until.is_none_or(|t| a.start < t);
            let mut samples = SkewSamples::default();
            if keep && a.incomplete.is_none() {
                for &(from, to, v) in &a.skew_samples {
                    samples.add(from, to, v);
                }
            }
            (keep, samples)
        })
        .collect();
    let mut samples = SkewSamples::default();
    let mut keep = Vec::with_capacity(first.len());
    for (k, s) in first {
        keep.push(k);
        samples.merge(s);
    }
    let (skew_pairs, offsets) = samples.resolve(cfg.skew, cfg.skew_threshold);
    // Pass 2: with offsets, every figure.
    let mut stats = pieces
        .par_iter()
        .zip(keep.par_iter())
        .filter(|(_, k)| **k)
        .fold(Stats::default, |mut st, (p, _)| {
            let a = assemble_piece(p, Some(&offsets));
            st.add(&a, cfg.include_incomplete);
            st
        })
        .reduce(Stats::default, |mut a, b| {
            a.merge(b);
            a
        });
    stats.requests.split = split;
    Analysis {
        stats,
        skew_pairs,
        offsets,
    }
}

/// The options that change numbers, echoed in the report (SPEC §4).
fn options_json(cfg: &Config) -> serde_json::Value {
    let fields: serde_json::Map<String, serde_json::Value> = cfg
        .field_overrides
        .iter()
        .map(|(role, names)| (role.cli_name().to_string(), serde_json::json!(names)))
        .collect();
    serde_json::json!({
        "skew": if cfg.skew { "on" } else { "off" },
        "skew_threshold_ms": crate::measure::histogram::ns_to_ms(cfg.skew_threshold),
        "include_incomplete": cfg.include_incomplete,
        "fail_status": cfg.fail_status,
        "tz": cfg.tz_args,
        "fields": fields,
        "since": cfg.since_arg,
        "until": cfg.until_arg,
        "max_gap_ms": cfg.max_gap.map(crate::measure::histogram::ns_to_ms),
        "max_visits": cfg.max_visits,
        "duration_unit": cfg.duration_unit.map(|u| format!("{u:?}").to_lowercase()),
        "duration_anchor": if cfg.anchor_start { "start" } else { "end" },
        "peer_aliases": cfg.peer_aliases,
        "service_from": cfg.service_from.map(|s| s.to_string()),
        "time_format": cfg.time_format,
        "format": match cfg.format {
            None => "auto",
            Some(LineFormat::Json) => "json",
            Some(LineFormat::Logfmt) => "logfmt",
        },
    })
}

/// Builds the report of a run.
pub fn build_report(cfg: &Config, diag: &mut Diagnostics) -> Result<(Report, u64), Error> {
    let inputs = open_inputs(cfg, diag)?;
    let loaded = load(cfg, &inputs)?;
    let analysis = analyze(cfg, &loaded);
    let report = report::build(
        &analysis.stats,
        &loaded.universe,
        &loaded.facts,
        &analysis.skew_pairs,
        options_json(cfg),
    );
    Ok((report, loaded.facts.bytes))
}

/// `hopscope report`: builds and writes the report; returns the exit code.
pub fn run_report(
    cfg: &Config,
    ropts: &ReportOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, Error> {
    let started = Instant::now();
    let pool = thread_pool(cfg)?;
    let mut diag = Diagnostics::default();
    let threads = pool.current_num_threads();
    let result = pool.install(|| build_report(cfg, &mut diag));
    for line in &diag.unreadable {
        // Errors about unreadable files go to stderr whatever happens next.
        let _ = writeln!(err, "hopscope: {line}");
    }
    let (mut report, bytes) = result?;
    let elapsed = started.elapsed().as_secs_f64();
    if ropts.run_stats {
        report.run = Some(report::RunStats {
            elapsed_ms: (elapsed * 1e6).round() / 1e3,
            threads,
            mb_per_s: if elapsed > 0.0 {
                (bytes as f64 / 1e6 / elapsed * 10.0).round() / 10.0
            } else {
                0.0
            },
        });
    }
    match ropts.output {
        OutputFormat::Json => report::write_json(&report, out)?,
        OutputFormat::Table => report::table::write_table(&report, ropts.top, ropts.sort, out)?,
        OutputFormat::Csv => report::csv::write_csv(&report, ropts.table, out)?,
    }
    out.flush()?;
    Ok(diag.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_normalise() {
        assert_eq!(
            normalize_peer("http://svc-user@Payments.shop.svc.cluster.local:8080/v1/charge"),
            "payments"
        );
        assert_eq!(normalize_peer("payments:8080"), "payments");
        assert_eq!(normalize_peer("orders.prod.svc"), "orders");
        assert_eq!(normalize_peer("Postgres"), "postgres");
        assert_eq!(normalize_peer("api.stripe.com"), "api.stripe.com");
    }

    #[test]
    fn line_numbers() {
        assert_eq!(line_number(b"a\nb\nc", 0), 1);
        assert_eq!(line_number(b"a\nb\nc", 2), 2);
        assert_eq!(line_number(b"a\nb\nc", 4), 3);
    }
}
