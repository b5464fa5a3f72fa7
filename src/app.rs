//! Wires the stages: discover → open → chunk → parse and partition by
//! request (parallel) → intern → remap and sort each partition → assemble
//! and measure (skew, with the figures of the requests no skew moves; then
//! the rest with the offsets) → report. Owns every [`Source`] until the
//! report is built, since records borrow from them.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;

use crate::assemble::skew::SkewSamples;
use crate::assemble::{self, AssembleOptions, Assembled, Offsets, SkewPair, Universe};
use crate::cli::{Config, OutputFormat, ReportOptions, TimeBound};
use crate::error::Error;
use crate::group::{self, Grouped};
use crate::input::{self, InputFile, ServiceFrom, Source};
use crate::measure::{LazyId, Stats};
use crate::model::{Interner, Record, SymId};
use crate::parse::detect::{self, LineFormat};
use crate::parse::fields::Schema;
use crate::parse::{self, FileContext, FileFormat, FileReader, LineRules, ParseStats};
use crate::report::{self, InputFacts, Report};

/// The stack each worker thread gets: request trees are walked recursively.
const WORKER_STACK: usize = 64 << 20;

/// Prints how long a stage took when `HOPSCOPE_TIMING` is set (for
/// profiling; never part of normal output).
pub fn stage_timing(stage: &str, since: Instant) {
    if std::env::var_os("HOPSCOPE_TIMING").is_some() {
        // Resident memory now, from /proc (Linux only; 0 elsewhere).
        let rss_mb = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |pages| (pages * 4096) >> 20);
        // Minor faults and user/system CPU so far, from /proc (Linux only).
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        // After the name: state is field 3, minflt 10, utime 14, stime 15.
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        let ticks = |n: usize| field(n).map_or(0.0, |t| t as f64 / 100.0);
        eprintln!(
            "timing: {stage}: {:.3} s (rss {rss_mb} MB; so far {} minor faults, {:.2} s user, {:.2} s system)",
            since.elapsed().as_secs_f64(),
            field(10).unwrap_or(0),
            ticks(14),
            ticks(15),
        );
    }
}

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
    /// Every record, grouped by request and sorted by (request, ts, file,
    /// offset).
    pub records: Grouped,
    /// Services and virtual services.
    pub universe: Universe,
    /// Input counters for the report.
    pub facts: InputFacts,
    /// What each file turned out to be (`hopscope files`).
    pub files: Vec<FileSummary>,
}

/// How one file was read, for `hopscope files`.
#[derive(Clone, Debug)]
pub struct FileSummary {
    /// The path as shown.
    pub path: String,
    /// False for binary or unreadable files.
    pub readable: bool,
    /// Envelope and format.
    pub reader: FileReader,
    /// The service its lines get when they name none.
    pub service: String,
    /// The rule that chose that service.
    pub service_rule: &'static str,
    /// Its lines, records and skips.
    pub stats: ParseStats,
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

/// Sizes the worker pool once per process (`--threads`, else one per
/// core). Later calls in the same process (tests) keep the first size.
fn init_pool(cfg: &Config) {
    let mut b = rayon::ThreadPoolBuilder::new().stack_size(WORKER_STACK);
    if let Some(n) = cfg.threads {
        b = b.num_threads(n);
    }
    // An error means the pool already exists; it is used as it is.
    let _ = b.build_global();
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

/// Inputs at least this large get a progress bar (on a terminal).
const PROGRESS_MIN_BYTES: u64 = 100 << 20;

/// Whether a run shows a progress bar: only for a person watching a
/// terminal, and only when the wait is long enough to matter (a bar in a CI
/// log or a pipe is noise).
fn wants_progress(quiet: bool, total_bytes: u64, stderr_is_terminal: bool) -> bool {
    !quiet && total_bytes >= PROGRESS_MIN_BYTES && stderr_is_terminal
}

/// A progress bar over the bytes to parse, on stderr (see
/// [`wants_progress`]).
fn progress_bar(cfg: &Config, total: u64) -> Option<indicatif::ProgressBar> {
    if !wants_progress(cfg.quiet, total, std::io::stderr().is_terminal()) {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} reading {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left) {wide_bar}",
    )
    .ok()?;
    bar.set_style(style);
    Some(bar)
}

/// True for a Zipkin v2, Jaeger or OTLP JSON span export (SPEC §7: read
/// later; until then such files are named with a hint).
fn looks_like_span_export(data: &[u8]) -> bool {
    let head = data.get(..4096).unwrap_or(data);
    let text = String::from_utf8_lossy(head);
    let t = text.trim_start();
    (t.starts_with('[') || t.starts_with('{'))
        && ((t.contains("\"traceId\"")
            && (t.contains("\"localEndpoint\"") || t.contains("\"parentId\"")))
            || t.contains("\"resourceSpans\"")
            || (t.contains("\"traceID\"") && t.contains("\"operationName\"")))
}

/// How many non-blank lines decide a file's format (SPEC §1).
const SNIFF_LINES: usize = 32;

/// Decides how a file's lines are read: an envelope if most sampled lines
/// have one, then the inner format — forced, or the one most lines parse as
/// (ties to json); a preset is taken by itself only when no line of the
/// sample carries a request ID by field name and one preset fits most lines.
pub fn choose_reader(data: &[u8], cfg: &Config, schema: &Schema) -> FileReader {
    // Span exports (SPEC §7) are not read yet, even one span per line: no
    // format fits them, and the report names them with a hint.
    if cfg.format.is_none() && cfg.pattern.is_none() && looks_like_span_export(data) {
        return FileReader::default();
    }
    let sample: Vec<&[u8]> = parse::lines(data)
        .map(|(_, l)| l)
        .filter(|l| l.len() <= cfg.max_line && !detect::is_blank(l))
        .take(SNIFF_LINES)
        .collect();
    let envelope = parse::container::detect_envelope(sample.iter().copied());
    let unwrapped: Vec<std::borrow::Cow<'_, [u8]>> = match envelope {
        None => sample
            .iter()
            .map(|l| std::borrow::Cow::Borrowed(*l))
            .collect(),
        Some(env) => sample
            .iter()
            .filter_map(|l| parse::container::unwrap_line(l, env).map(|u| u.inner))
            .collect(),
    };
    let inner: Vec<&[u8]> = unwrapped.iter().map(|c| c.as_ref()).collect();
    if let Some(p) = &cfg.pattern {
        return FileReader {
            envelope,
            format: Some(FileFormat::Regex(p.clone())),
        };
    }
    if let Some(f) = cfg.format {
        return FileReader {
            envelope,
            format: Some(f.into()),
        };
    }
    let detected = detect::detect(inner.iter().copied(), schema);
    let has_ids = |f: LineFormat| {
        inner.iter().any(|l| {
            let fields = match f {
                LineFormat::Json => parse::json::parse_json(l, schema),
                LineFormat::Logfmt => parse::logfmt::parse_logfmt(l, schema),
            };
            fields.is_ok_and(|f| f.get(parse::fields::Role::RequestId).is_some())
        })
    };
    if detected.is_some_and(has_ids) {
        return FileReader {
            envelope,
            format: detected.map(FileFormat::from),
        };
    }
    if let Some(name) = parse::regex::detect_preset(inner.iter().copied())
        && let Ok(p) = parse::regex::Pattern::preset(name)
    {
        return FileReader {
            envelope,
            format: Some(FileFormat::Regex(std::sync::Arc::new(p))),
        };
    }
    FileReader {
        envelope,
        format: detected.map(FileFormat::from),
    }
}

/// The service a file's lines get when they name none, and the rule that
/// chose it (for `hopscope files`).
pub fn file_service(f: &InputFile, reader: &FileReader, cfg: &Config) -> (String, &'static str) {
    if cfg.service_from.is_some() {
        return (f.service.clone(), "--service-from");
    }
    if let Some(s) = parse::container::kubernetes_service(&f.path) {
        return (s, "kubernetes file name");
    }
    let prefix = reader
        .format
        .as_ref()
        .and_then(FileFormat::pattern)
        .is_some_and(|p| p.service_from_file_prefix());
    if prefix {
        let name = f.path.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some(s) = name.as_deref().and_then(parse::regex::file_prefix_service) {
            return (s, "file-name prefix");
        }
    }
    if f.is_stdin() {
        (f.service.clone(), "standard input")
    } else {
        (f.service.clone(), "path")
    }
}

/// The 1-based line number, in its file, of the skipped line at `offset` of
/// file `file` (for `--strict`): the lines of the file's chunks before the
/// one that holds it, plus its line in that chunk. `chunks` are in file and
/// offset order.
fn strict_line(chunks: &[ParsedChunk], inputs: &Inputs, file: u32, offset: u64) -> u64 {
    let mut before = 0;
    let of_file = chunks
        .iter()
        .filter(|c| inputs.files.get(c.file).is_some_and(|f| f.id == file));
    for c in of_file {
        if c.records
            .stats
            .first_skip
            .is_some_and(|(_, at, _)| at == offset)
        {
            return before + c.skip_line.unwrap_or(1);
        }
        before += c.records.stats.lines;
    }
    before + 1
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

thread_local! {
    /// Each worker's buffer for the records of the chunk it is parsing.
    static RECORD_BUFFER: std::cell::Cell<Vec<Record>> = const { std::cell::Cell::new(Vec::new()) };
}

/// One parsed chunk: a byte range of a mapped or read file, or a piece of a
/// decompressed stream.
struct ParsedChunk {
    /// Index of the file in [`Inputs::files`].
    file: usize,
    /// Where the chunk starts in the file's (decompressed) bytes.
    offset: u64,
    /// The chunk's number for the partitioner (unique in the run).
    chunk: usize,
    records: parse::ChunkRecords,
    /// With `--strict`: the line, counted from 1 within the chunk, of its
    /// first skipped line (the file's line number needs the lines of the
    /// chunks before it, and a stream's bytes are gone by then).
    skip_line: Option<u64>,
}

/// How a chunk's local ids become the run's: global service, peer and
/// text-ID indexes by local index, and where its span pairs start.
type ChunkRemap = (Vec<u32>, Vec<u32>, Vec<u32>, u32);

/// What the parse stage does with one file or part of one.
enum ParseJob {
    /// A byte range of a mapped or read file, and its chunk number.
    Range(usize, std::ops::Range<usize>, usize),
    /// A whole streamed input (compressed, live, `--no-mmap`, stdin),
    /// read and parsed piece by piece.
    Stream(usize),
}

/// How a streamed file went: the reader its first lines chose, the
/// compressed bytes read, and the error that cut it short (if any) with
/// the decompressed bytes read before it.
struct StreamOutcome {
    file: usize,
    reader: FileReader,
    raw_bytes: u64,
    error: Option<(u64, std::io::Error)>,
}

/// Everything a chunk's parse needs besides its bytes, shared by the
/// workers.
struct ChunkParser<'a> {
    cfg: &'a Config,
    rules: &'a LineRules,
    partitioner: &'a group::Partitioner,
    progress: Option<&'a indicatif::ProgressBar>,
}

impl ChunkParser<'_> {
    /// Parses one chunk and hands its records to their partitions while they
    /// are hot in this core's cache.
    fn parse(
        &self,
        file: usize,
        offset: u64,
        data: &[u8],
        chunk: usize,
        ctx: &FileContext<'_>,
    ) -> ParsedChunk {
        let buffer = RECORD_BUFFER.with(|b| b.take());
        let mut parsed = parse::parse_chunk_into(data, offset, ctx, self.rules, buffer);
        self.partitioner.add(chunk, &parsed.records, &parsed.ids);
        // The buffer stays with this worker for its next chunk.
        RECORD_BUFFER.with(|b| b.replace(std::mem::take(&mut parsed.records)));
        let skip_line = match parsed.stats.first_skip {
            Some((_, at, _)) if self.cfg.strict => {
                Some(line_number(data, at.saturating_sub(offset)))
            }
            _ => None,
        };
        ParsedChunk {
            file,
            offset,
            chunk,
            records: parsed,
            skip_line,
        }
    }

    fn advance(&self, bytes: u64) {
        if let Some(p) = self.progress {
            p.inc(bytes);
        }
    }
}

/// Pieces of a stream parsed at once by other workers, per worker thread:
/// beyond it the reading worker parses its pieces itself, so a stream
/// that is read faster than the others parse never piles up in memory.
const PIECES_IN_FLIGHT: usize = 1;

/// Reads (and decompresses) one streamed input and parses it piece by
/// piece; the pieces are handed to idle workers while the reading goes on.
/// The input's reader is chosen here, from its first lines.
fn parse_stream(
    i: usize,
    file: &InputFile,
    stream: &input::Stream,
    parser: &ChunkParser<'_>,
    next_chunk: &std::sync::atomic::AtomicUsize,
) -> (Vec<ParsedChunk>, StreamOutcome) {
    use std::sync::atomic::Ordering;
    let cfg = parser.cfg;
    let mut outcome = StreamOutcome {
        file: i,
        reader: FileReader::default(),
        raw_bytes: 0,
        error: None,
    };
    let mut pieces = match stream.pieces(cfg.chunk_size) {
        Ok(p) => p,
        Err(e) => {
            outcome.error = Some((0, e));
            return (Vec::new(), outcome);
        }
    };
    let spare = pieces.recycler();
    let mut counted = 0u64;
    let mut next = |outcome: &mut StreamOutcome| match pieces.next_piece() {
        Ok(piece) => {
            let raw = pieces.raw_bytes();
            parser.advance(raw.saturating_sub(counted));
            counted = raw;
            outcome.raw_bytes = raw;
            piece
        }
        Err(e) => {
            outcome.raw_bytes = pieces.raw_bytes();
            outcome.error = Some((pieces.decompressed_bytes(), e));
            None
        }
    };
    // The reader is chosen from the same first lines as for a file in
    // hand: pieces are held until they hold enough of them.
    let mut pending: Vec<(u64, Vec<u8>)> = Vec::new();
    let (mut sampled, mut held) = (0usize, 0usize);
    while sampled < SNIFF_LINES || held < SPAN_EXPORT_SNIFF {
        let Some(piece) = next(&mut outcome) else {
            break;
        };
        sampled += sample_lines(&piece.1, cfg.max_line);
        held += piece.1.len();
        pending.push(piece);
    }
    // Nearly always one piece, read in place; a few small ones are joined.
    let sniff: std::borrow::Cow<'_, [u8]> = match pending.as_slice() {
        [(_, one)] => std::borrow::Cow::Borrowed(one),
        many => std::borrow::Cow::Owned(
            many.iter()
                .map(|(_, p)| p.as_slice())
                .collect::<Vec<_>>()
                .concat(),
        ),
    };
    outcome.reader = choose_reader(&sniff, cfg, &parser.rules.schema);
    drop(sniff);
    if outcome.reader.envelope.is_some() {
        // Container files are parsed in one piece: partial lines join
        // across what would be piece boundaries.
        let mut whole: Vec<u8> = Vec::new();
        for (_, p) in pending.drain(..) {
            if whole.is_empty() {
                whole = p;
            } else {
                whole.extend_from_slice(&p);
            }
        }
        while let Some((_, p)) = next(&mut outcome) {
            whole.extend_from_slice(&p);
        }
        if !whole.is_empty() {
            pending.push((0, whole));
        }
    }
    let reader = outcome.reader.clone();
    let service = file_service(file, &reader, cfg).0;
    let ctx = FileContext {
        file: file.id,
        path_service: &service,
        reader: &reader,
    };
    let parsed = std::sync::Mutex::new(Vec::new());
    let in_flight = std::sync::atomic::AtomicUsize::new(0);
    let limit = PIECES_IN_FLIGHT * rayon::current_num_threads();
    // Parses one piece and gives its buffer back for the next.
    let parse_piece = |offset: u64, piece: Vec<u8>, chunk: usize| {
        let done = parser.parse(i, offset, &piece, chunk, &ctx);
        spare.give(piece);
        lock(&parsed).push(done);
    };
    rayon::scope(|scope| {
        let mut pending = pending.into_iter();
        while let Some((offset, piece)) = pending.next().or_else(|| next(&mut outcome)) {
            let chunk = next_chunk.fetch_add(1, Ordering::Relaxed);
            if in_flight.load(Ordering::Acquire) < limit {
                in_flight.fetch_add(1, Ordering::AcqRel);
                let (parse_piece, in_flight) = (&parse_piece, &in_flight);
                scope.spawn(move |_| {
                    parse_piece(offset, piece, chunk);
                    in_flight.fetch_sub(1, Ordering::AcqRel);
                });
            } else {
                parse_piece(offset, piece, chunk);
            }
        }
    });
    let parsed = parsed
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    (parsed, outcome)
}

/// Locks a mutex whose data stays valid even if a holder panicked.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Bytes of a file's start that [`looks_like_span_export`] reads.
const SPAN_EXPORT_SNIFF: usize = 4096;

/// How many of `data`'s lines [`choose_reader`] would sample.
fn sample_lines(data: &[u8], max_line: usize) -> usize {
    parse::lines(data)
        .filter(|(_, l)| l.len() <= max_line && !detect::is_blank(l))
        .count()
}

/// Parses every file in parallel and interns services and peers. A
/// compressed file that fails part-way keeps the records of the lines
/// before the failure and is named in `diag`.
pub fn load(cfg: &Config, inputs: &Inputs, diag: &mut Diagnostics) -> Result<Loaded, Error> {
    let rules = line_rules(cfg);
    // How each file is read, decided once from its first non-blank lines
    // (a stream's while it is read).
    let mut readers: Vec<FileReader> = inputs
        .sources
        .iter()
        .map(|s| match s.as_ref().and_then(Source::bytes) {
            None => FileReader::default(),
            Some(src) => choose_reader(src, cfg, &rules.schema),
        })
        .collect();
    let services: Vec<String> = inputs
        .files
        .iter()
        .zip(&readers)
        .map(|(f, r)| file_service(f, r, cfg).0)
        .collect();
    let mut jobs: Vec<ParseJob> = Vec::new();
    let mut total: u64 = 0;
    let mut ranges = 0;
    for (i, s) in inputs.sources.iter().enumerate() {
        match s {
            Some(Source::Stream(_)) => {
                jobs.push(ParseJob::Stream(i));
                total += inputs
                    .files
                    .get(i)
                    .and_then(|f| std::fs::metadata(&f.path).ok())
                    .map_or(0, |m| m.len());
            }
            Some(src) => {
                let data = src.bytes().unwrap_or_default();
                // Container files are read in one piece: partial lines join
                // across what would be chunk boundaries.
                let target = match readers.get(i).and_then(|r| r.envelope) {
                    Some(_) => usize::MAX,
                    None => cfg.chunk_size,
                };
                for r in input::chunk_ranges(data, target) {
                    total += r.len() as u64;
                    jobs.push(ParseJob::Range(i, r, ranges));
                    ranges += 1;
                }
            }
            None => {}
        }
    }
    // The big streams first: one alone can outlast every other job.
    jobs.sort_by_key(|j| !matches!(j, ParseJob::Stream(_)));
    let t = Instant::now();
    let progress = progress_bar(cfg, total);
    let partitioner = group::Partitioner::default();
    let parser = ChunkParser {
        cfg,
        rules: &rules,
        partitioner: &partitioner,
        progress: progress.as_ref(),
    };
    let next_chunk = std::sync::atomic::AtomicUsize::new(ranges);
    let done: Vec<(Vec<ParsedChunk>, Option<StreamOutcome>)> = jobs
        .par_iter()
        .map(|job| match job {
            ParseJob::Range(i, range, chunk) => {
                let source = inputs.sources.get(*i).and_then(Option::as_ref);
                let src = source.and_then(Source::bytes).unwrap_or_default();
                let default_reader = FileReader::default();
                let ctx = FileContext {
                    file: inputs.files.get(*i).map_or(0, |f| f.id),
                    path_service: services.get(*i).map_or("", String::as_str),
                    reader: readers.get(*i).unwrap_or(&default_reader),
                };
                // Once a mapped file is found truncated, the rest of its map
                // reads as zeros: chunks not yet started are left out (one
                // under way ends with a line or two the zeros spoil, counted
                // as skipped).
                let data = match source {
                    Some(Source::Mmap(map)) if map.truncated() => &[],
                    _ => src.get(range.clone()).unwrap_or_default(),
                };
                let parsed = parser.parse(*i, range.start as u64, data, *chunk, &ctx);
                // Records own their values: the parsed pages can go.
                if let Some(s) = source {
                    s.release(range.clone());
                }
                parser.advance(range.len() as u64);
                (vec![parsed], None)
            }
            ParseJob::Stream(i) => {
                let (Some(file), Some(Some(Source::Stream(stream)))) =
                    (inputs.files.get(*i), inputs.sources.get(*i))
                else {
                    return (Vec::new(), None);
                };
                let (parsed, outcome) = parse_stream(*i, file, stream, &parser, &next_chunk);
                (parsed, Some(outcome))
            }
        })
        .collect();
    if let Some(p) = &progress {
        p.finish_and_clear();
    }
    stage_timing("parse", t);
    let t = Instant::now();
    let mut facts = inputs.facts.clone();
    let mut chunks: Vec<ParsedChunk> = Vec::new();
    for (parsed, outcome) in done {
        chunks.extend(parsed);
        let Some(o) = outcome else { continue };
        facts.bytes += o.raw_bytes;
        if let Some((read, e)) = &o.error {
            let path = inputs.files.get(o.file).map_or("", |f| f.display.as_str());
            let why = input::io_message(e);
            diag.unreadable.push(match read {
                0 => format!("{path}: {why}"),
                n => format!(
                    "{path}: {why} after {n} bytes of decompressed logs \
                     (the lines before it are counted)"
                ),
            });
        }
        if let Some(r) = readers.get_mut(o.file) {
            *r = o.reader;
        }
    }
    for (f, source) in inputs.files.iter().zip(&inputs.sources) {
        if let Some(Source::Mmap(map)) = source
            && map.truncated()
        {
            diag.unreadable.push(format!(
                "{}: truncated while it was read (logrotate's copytruncate?): \
                 the lines read before are counted, the rest of the file is lost",
                f.display
            ));
        }
    }
    // File and offset order: the interners' order, hence the output, does
    // not depend on which worker parsed what.
    chunks.sort_unstable_by_key(|c| (c.file, c.offset));
    let mut services = Interner::default();
    let mut peers = Interner::default();
    let mut ids = Interner::default();
    let mut spans: Vec<crate::model::SpanPair> = Vec::new();
    let mut per_file = vec![ParseStats::default(); inputs.files.len()];
    let mut remaps: Vec<Option<ChunkRemap>> = (0..next_chunk.into_inner()).map(|_| None).collect();
    for ParsedChunk {
        file: i,
        chunk,
        records: c,
        ..
    } in &chunks
    {
        facts.parse.merge(&c.stats);
        if let Some(f) = per_file.get_mut(*i) {
            f.merge(&c.stats);
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
        if let Some(slot) = remaps.get_mut(*chunk) {
            *slot = Some((svc, peer, id, span_base));
        }
    }
    if cfg.strict
        && let Some((file, offset, reason)) = facts.parse.first_skip
    {
        let f = inputs.files.iter().find(|f| f.id == file);
        return Err(Error::Strict {
            path: f.map_or(String::new(), |f| report::table::sanitize(&f.display)),
            line: strict_line(&chunks, inputs, file, offset),
            reason: reason.name().to_string(),
        });
    }
    for (i, f) in inputs.files.iter().enumerate() {
        let Some(st) = per_file.get(i) else { continue };
        let source = inputs.sources.get(i).and_then(Option::as_ref);
        if source.is_some() && st.records == 0 && st.lines > st.blank {
            facts.files_without_records.push(f.display.clone());
            if source.is_some_and(|s| looks_like_span_export(s.head())) {
                facts.span_exports.push(f.display.clone());
            }
        }
    }
    drop(chunks);
    let mut universe = resolve_universe(&cfg.peer_aliases, services, &peers);
    universe.ids = ids;
    universe.spans = spans;
    stage_timing("merge", t);
    let t = Instant::now();
    // Chunk-local ids become global ones.
    let records = partitioner.finish(|chunk, mut r| {
        let Some((svc, peer, id, span_base)) = remaps.get(chunk).and_then(Option::as_ref) else {
            return r;
        };
        r.service = svc.get(r.service as usize).copied().unwrap_or(0);
        if let Some(p) = r.peer() {
            r.peer_id = peer.get(p as usize).copied().unwrap_or(Record::NO_PEER);
        }
        r.set_req(r.req().remap(|x| id.get(x as usize).copied().unwrap_or(x)));
        if r.spans != Record::NO_SPANS {
            r.spans = r.spans.saturating_add(*span_base);
        }
        r
    });
    stage_timing("group", t);
    let files = inputs
        .files
        .iter()
        .zip(readers)
        .zip(per_file)
        .enumerate()
        .map(|(i, ((f, reader), stats))| {
            let (service, service_rule) = file_service(f, &reader, cfg);
            FileSummary {
                path: f.display.clone(),
                readable: inputs.sources.get(i).is_some_and(Option::is_some),
                reader,
                service,
                service_rule,
                stats,
            }
        })
        .collect();
    Ok(Loaded {
        records,
        universe,
        facts,
        files,
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
#[derive(Clone, Debug)]
pub struct Piece {
    /// The partition of [`Loaded::records`] holding it.
    pub part: usize,
    /// Its records in that partition.
    pub range: std::ops::Range<usize>,
    /// Its root start (raw), from the first pass.
    pub start: i64,
    /// Inside `--since`/`--until`.
    pub selected: bool,
    /// Its figures were taken in the first pass, on raw times (it holds no
    /// service pair forecast to be skewed; see [`prepare_measured`]).
    pub measured: bool,
}

fn resolve_bound(b: &Option<TimeBound>, newest: Option<i64>) -> Option<i64> {
    match b {
        None => None,
        Some(TimeBound::At(t)) => Some(*t),
        Some(TimeBound::BeforeNewest(d)) => newest.map(|n| n.saturating_sub(*d)),
    }
}

/// A run's records cut into requests, with clock skew measured: what every
/// command (report, traces, show, check) starts from.
pub struct Prepared {
    /// The records and tables.
    pub loaded: Loaded,
    /// The requests, partition by partition, in request-ID order within
    /// each (the pieces of a split request ID stay together, in time order).
    pub pieces: Vec<Piece>,
    /// Per partition, its pieces' indexes in `pieces`.
    pub part_pieces: Vec<std::ops::Range<usize>>,
    /// Extra pieces made by `--max-gap`.
    pub split: u64,
    /// Every measured service pair.
    pub skew_pairs: Vec<SkewPair>,
    /// The applied offsets.
    pub offsets: Offsets,
    /// Assembly settings.
    pub opts: AssembleOptions,
}

impl Prepared {
    /// Assembles one request with the measured offsets.
    pub fn assemble(&self, p: &Piece) -> Assembled {
        let slice = self.loaded.records.slice(p.part, p.range.clone());
        assemble::assemble(
            &slice,
            &self.loaded.universe,
            Some(&self.offsets),
            &self.opts,
        )
    }

    /// The request ID of a piece.
    pub fn id_of(&self, p: &Piece) -> String {
        let slice = self.loaded.records.slice(p.part, p.range.clone());
        id_of_records(&slice, &self.loaded.universe)
    }

    /// Folds every selected request into the report statistics, partition
    /// by partition (each copied once into a worker's buffer).
    pub fn stats(&self, include_incomplete: bool) -> Stats {
        let mut stats = self.measure(include_incomplete, |_| true);
        stats.requests.split = self.split;
        stats
    }

    /// The statistics of the selected pieces that `wanted` keeps, assembled
    /// with the measured offsets.
    fn measure(&self, include_incomplete: bool, wanted: impl Fn(&Piece) -> bool + Sync) -> Stats {
        let records = &self.loaded.records;
        let opts = AssembleOptions {
            visit_order: false,
            ..self.opts.clone()
        };
        self.part_pieces
            .par_iter()
            .enumerate()
            // Few accumulators: each one's histograms are merged at the
            // end, and a merge costs like thousands of records.
            .with_min_len(16)
            // Each accumulator keeps one `Assembled` to assemble into.
            .fold(
                || (Stats::default(), Assembled::default()),
                |(mut st, mut a), (part, pieces)| {
                    for p in self.pieces.get(pieces.clone()).unwrap_or_default() {
                        if !p.selected || !wanted(p) {
                            continue;
                        }
                        let slice = records.slice(part, p.range.clone());
                        let u = &self.loaded.universe;
                        let offsets = Some(&self.offsets);
                        assemble::assemble_unnamed_into(&slice, u, offsets, &opts, &mut a);
                        let text = || id_of_records(&slice, u);
                        st.add(&a, &LazyId::new(&text), include_incomplete);
                    }
                    (st, a)
                },
            )
            .map(|(st, _)| st)
            .reduce(Stats::default, merged)
    }
}

/// The request ID of a request's records (they share it).
fn id_of_records(records: &[Record], u: &Universe) -> String {
    records
        .first()
        .map_or(String::new(), |r| u.id_text(r.req()))
}

/// `a` with `b` merged in (statistics merge exactly, in any order).
fn merged(mut a: Stats, b: Stats) -> Stats {
    a.merge(b);
    a
}

/// Requests per partition that [`forecast_skew`] assembles: about 2,000 in
/// all, 1 % of a 1 GB run's.
const FORECAST_PER_PARTITION: usize = 8;

/// Cuts the records into requests and measures clock skew on a first pass
/// over raw times; every figure is left to the second pass
/// ([`Prepared::stats`], or one request at a time for traces).
pub fn prepare(cfg: &Config, loaded: Loaded) -> Prepared {
    first_pass(cfg, loaded, None).0
}

/// [`prepare`] and [`Prepared::stats`] in fewer passes. Skew moves only
/// the requests that hold both services of a pair whose offset is applied;
/// the others come out of the second pass exactly as they are on raw times.
/// So a forecast on a sample of requests names the pairs likely to be
/// applied, and the first pass measures every request that holds none of
/// them. Only those that do are assembled again, with the offsets. When
/// the measured offsets apply a pair that a request measured in the first
/// pass holds (the forecast missed it there), the first pass's figures are
/// dropped and every request is measured again: the result is the same
/// either way, only the time differs. Without skew in the logs
/// (or with `--skew off`) this is a single pass.
pub fn prepare_measured(cfg: &Config, loaded: Loaded) -> (Prepared, Stats) {
    let t = Instant::now();
    let forecast = forecast_skew(cfg, &loaded, FORECAST_PER_PARTITION);
    stage_timing("forecast", t);
    let measured = prepare_with_forecast(cfg, loaded, &forecast);
    stage_timing("assemble + measure (forecast and both passes)", t);
    measured
}

/// [`prepare_measured`] with the forecast given.
fn prepare_with_forecast(
    cfg: &Config,
    loaded: Loaded,
    forecast: &[(SymId, SymId)],
) -> (Prepared, Stats) {
    let t = Instant::now();
    let (prepared, first) = first_pass(cfg, loaded, Some(forecast));
    stage_timing("assemble (first pass)", t);
    if std::env::var_os("HOPSCOPE_TIMING").is_some() {
        let measured = prepared.pieces.iter().filter(|p| p.measured).count();
        eprintln!(
            "timing: {} pair(s) forecast skewed; {measured} of {} requests measured in the first pass",
            forecast.len(),
            prepared.pieces.len()
        );
    }
    let t = Instant::now();
    // The first pass's figures hold unless an applied pair is one that a
    // request it measured holds (the forecast missed it there).
    let mut stats = match first {
        Some((first, pairs))
            if !prepared
                .skew_pairs
                .iter()
                .any(|p| p.applied && pairs.contains(p.from, p.to)) =>
        {
            merged(
                first,
                prepared.measure(cfg.include_incomplete, |p| !p.measured),
            )
        }
        _ => prepared.measure(cfg.include_incomplete, |_| true),
    };
    stats.requests.split = prepared.split;
    stage_timing("assemble + measure (second pass)", t);
    (prepared, stats)
}

/// The service pairs whose skew offset a sample of requests (the first
/// `per_partition` of every partition) puts at half the threshold or more:
/// the pairs likely to be applied once every request is measured. Empty
/// with `--skew off`, which applies none.
fn forecast_skew(cfg: &Config, loaded: &Loaded, per_partition: usize) -> Vec<(SymId, SymId)> {
    if !cfg.skew || per_partition == 0 {
        return Vec::new();
    }
    let opts = AssembleOptions {
        skew_pass: true,
        visit_order: false,
        ..assemble_options(cfg)
    };
    let records = &loaded.records;
    let u = &loaded.universe;
    let samples = (0..records.partitions())
        .into_par_iter()
        .map(|part| {
            let mut samples = SkewSamples::default();
            let mut a = Assembled::default();
            for range in records.requests(part).take(per_partition) {
                let request = records.slice(part, range);
                assemble::assemble_unnamed_into(&request, u, None, &opts, &mut a);
                if a.incomplete.is_none() {
                    samples.add_all(&a.skew_samples);
                }
            }
            samples
        })
        .reduce(SkewSamples::default, |mut a, b| {
            a.merge(b);
            a
        });
    let (pairs, _) = samples.resolve(true, cfg.skew_threshold / 2);
    pairs
        .into_iter()
        .filter(|p| p.applied)
        .map(|p| (p.from, p.to))
        .collect()
}

/// How the run's options assemble a request with every figure, visits in
/// order (what traces and `show` print; the passes adjust it).
fn assemble_options(cfg: &Config) -> AssembleOptions {
    AssembleOptions {
        skew: cfg.skew,
        max_visits: cfg.max_visits,
        skew_pass: false,
        visit_order: true,
    }
}

/// Whether `records` hold both services of one of `pairs` (conservatively
/// true for service ids past 63, which the bit set does not cover).
fn holds_a_pair(records: &[Record], pairs: &[(SymId, SymId)]) -> bool {
    if pairs.is_empty() {
        return false;
    }
    let mut seen = 0u64;
    for r in records {
        match 1u64.checked_shl(r.service) {
            Some(bit) => seen |= bit,
            None => return true,
        }
    }
    let has = |s: SymId| 1u64.checked_shl(s).is_some_and(|bit| seen & bit != 0);
    pairs.iter().any(|&(a, b)| has(a) && has(b))
}

/// What one worker of the first pass gathers: per partition its pieces,
/// and over its partitions the skew samples, the splits, the statistics of
/// the requests it measured, and a reused assembly buffer.
#[derive(Default)]
struct FirstPassPart {
    pieces: Vec<(usize, Vec<Piece>)>,
    samples: SkewSamples,
    split: u64,
    stats: Stats,
    /// The service pairs of the requests it measured.
    pairs: PairSet,
    a: Assembled,
}

/// A set of (caller, callee) service pairs: a bit per pair of ids below
/// 64, and a flag for any other (then every pair counts as held).
#[derive(Clone, Debug)]
struct PairSet {
    bits: [u64; 64],
    overflow: bool,
}

impl Default for PairSet {
    fn default() -> Self {
        PairSet {
            bits: [0; 64],
            overflow: false,
        }
    }
}

impl PairSet {
    fn insert(&mut self, from: SymId, to: SymId) {
        match (self.bits.get_mut(from as usize), 1u64.checked_shl(to)) {
            (Some(word), Some(bit)) => *word |= bit,
            _ => self.overflow = true,
        }
    }

    fn contains(&self, from: SymId, to: SymId) -> bool {
        self.overflow
            || self
                .bits
                .get(from as usize)
                .zip(1u64.checked_shl(to))
                .is_some_and(|(word, bit)| word & bit != 0)
    }

    fn union(&mut self, other: &PairSet) {
        for (a, b) in self.bits.iter_mut().zip(&other.bits) {
            *a |= b;
        }
        self.overflow |= other.overflow;
    }

    /// Adds the pairs whose offset could change `a` once applied: its
    /// logged visits' (parent, child) services and its unclaimed calls'
    /// (caller, target). Calls are matched to visits only along these
    /// pairs, and figures move only along parent links.
    fn insert_request(&mut self, a: &Assembled) {
        for v in a.visits.iter().filter(|v| !v.virtual_) {
            if let Some(p) = v.parent.and_then(|p| a.visits.get(p)) {
                self.insert(p.service, v.service);
            }
        }
        for c in &a.unclaimed {
            if let Some(caller) = a.visits.get(c.caller) {
                self.insert(caller.service, c.target);
            }
        }
    }
}

/// The first pass over raw times: cuts the requests, takes the skew
/// samples and, when `measure_unless` is given, measures every selected
/// request that holds none of its pairs (their figures come back too,
/// with the service pairs those requests hold).
fn first_pass(
    cfg: &Config,
    loaded: Loaded,
    measure_unless: Option<&[(SymId, SymId)]>,
) -> (Prepared, Option<(Stats, PairSet)>) {
    let opts = assemble_options(cfg);
    // Traces and `show` print visits in order; statistics need none.
    let for_stats = AssembleOptions {
        visit_order: false,
        ..opts.clone()
    };
    // Samples come out of both: the full assembly takes them too.
    let skew_only = AssembleOptions {
        skew_pass: true,
        ..for_stats.clone()
    };
    let newest = loaded.facts.parse.last_ts;
    let since = resolve_bound(&cfg.since, newest);
    let until = resolve_bound(&cfg.until, newest);
    let u = &loaded.universe;
    let records = &loaded.records;
    // Partitions are independent: each is cut into requests and passed over
    // on raw times by one worker. The samples merge by concatenation (their
    // median does not depend on order) and the statistics merge exactly;
    // the pieces are put back in partition order.
    let gathered = (0..records.partitions())
        .into_par_iter()
        .with_min_len(16)
        .fold(FirstPassPart::default, |mut w, part| {
            let mut pieces = Vec::with_capacity(records.requests(part).len());
            for range in records.requests(part) {
                let request = records.slice(part, range.clone());
                let parts = assemble::split_at_gaps(&request, cfg.max_gap);
                w.split += parts.len().saturating_sub(1) as u64;
                for p in parts {
                    let slice = request.get(p.clone()).unwrap_or_default();
                    let range = range.start + p.start..range.start + p.end;
                    let measured = measure_unless.is_some_and(|pairs| !holds_a_pair(slice, pairs));
                    let opts = if measured { &for_stats } else { &skew_only };
                    // The ID is named only if the statistics need it.
                    assemble::assemble_unnamed_into(slice, u, None, opts, &mut w.a);
                    let a = &w.a;
                    let selected =
                        since.is_none_or(|s| a.start >= s) && until.is_none_or(|t| a.start < t);
                    if selected && a.incomplete.is_none() {
                        w.samples.add_all(&a.skew_samples);
                    }
                    if measured && selected {
                        let text = || id_of_records(slice, u);
                        w.stats.add(a, &LazyId::new(&text), cfg.include_incomplete);
                        w.pairs.insert_request(a);
                    }
                    pieces.push(Piece {
                        part,
                        range,
                        start: a.start,
                        selected,
                        measured,
                    });
                }
            }
            w.pieces.push((part, pieces));
            w
        })
        .reduce(FirstPassPart::default, |mut a, b| {
            a.pieces.extend(b.pieces);
            a.samples.merge(b.samples);
            a.split += b.split;
            a.stats = merged(a.stats, b.stats);
            a.pairs.union(&b.pairs);
            a
        });
    let mut per_part = gathered.pieces;
    per_part.sort_unstable_by_key(|(part, _)| *part);
    // Sized once: grown by doubling, its 40-byte pieces (one per request)
    // were copied over and over on one thread (about 1 % of a 1 GB run).
    let mut pieces = Vec::with_capacity(per_part.iter().map(|(_, p)| p.len()).sum());
    let mut part_pieces = Vec::with_capacity(per_part.len());
    for (_, p) in per_part {
        part_pieces.push(pieces.len()..pieces.len() + p.len());
        pieces.extend(p);
    }
    let (skew_pairs, offsets) = gathered.samples.resolve(cfg.skew, cfg.skew_threshold);
    let prepared = Prepared {
        loaded,
        pieces,
        part_pieces,
        split: gathered.split,
        skew_pairs,
        offsets,
        opts,
    };
    (
        prepared,
        measure_unless.map(|_| (gathered.stats, gathered.pairs)),
    )
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
        "format": match (cfg.format, &cfg.pattern) {
            (_, Some(_)) => "regex",
            (None, None) => "auto",
            (Some(LineFormat::Json), None) => "json",
            (Some(LineFormat::Logfmt), None) => "logfmt",
        },
        "pattern": cfg.pattern.as_ref().map(|p| p.as_str().to_string()),

    })
}

/// Opens, parses and groups the input of a run.
fn load_input(cfg: &Config, diag: &mut Diagnostics) -> Result<Loaded, Error> {
    let t = Instant::now();
    let inputs = open_inputs(cfg, diag)?;
    stage_timing("open", t);
    load(cfg, &inputs, diag)
}

/// Reads and prepares the input of a run whose requests are assembled one
/// at a time later (traces, show).
pub fn prepare_input(cfg: &Config, diag: &mut Diagnostics) -> Result<Prepared, Error> {
    let loaded = load_input(cfg, diag)?;
    let t = Instant::now();
    let prepared = prepare(cfg, loaded);
    stage_timing("assemble (skew pass)", t);
    Ok(prepared)
}

/// Reads, prepares and measures the input of a run (report, check).
pub fn measure_input(cfg: &Config, diag: &mut Diagnostics) -> Result<(Prepared, Stats), Error> {
    let loaded = load_input(cfg, diag)?;
    Ok(prepare_measured(cfg, loaded))
}

/// Builds the report of a measured run.
pub fn build_report(cfg: &Config, prepared: &Prepared, stats: &Stats) -> Report {
    report::build(
        stats,
        &prepared.loaded.universe,
        &prepared.loaded.facts,
        &prepared.skew_pairs,
        options_json(cfg),
    )
}

/// Runs `body` with the worker pool sized by `--threads`, printing unreadable
/// files on stderr whatever happens; returns the body's result and the exit
/// code the diagnostics call for.
fn with_pool<T>(
    cfg: &Config,
    err: &mut dyn Write,
    body: impl FnOnce(&mut Diagnostics) -> Result<T, Error>,
) -> Result<(T, u8), Error> {
    init_pool(cfg);
    let mut diag = Diagnostics::default();
    let result = body(&mut diag);
    for line in &diag.unreadable {
        // Errors about unreadable files go to stderr whatever happens next;
        // a path's control characters are escaped, never sent raw.
        let _ = writeln!(err, "hopscope: {}", report::table::sanitize(line));
    }
    result.map(|t| (t, diag.exit_code()))
}

/// `hopscope report`: builds and writes the report; returns the exit code.
pub fn run_report(
    cfg: &Config,
    ropts: &ReportOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, Error> {
    let started = Instant::now();
    let ((mut report, bytes), code) = with_pool(cfg, err, |diag| {
        let (prepared, stats) = measure_input(cfg, diag)?;
        let t = Instant::now();
        let built = (
            build_report(cfg, &prepared, &stats),
            prepared.loaded.facts.bytes,
        );
        stage_timing("report", t);
        Ok(built)
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    if ropts.run_stats {
        report.run = Some(report::RunStats {
            elapsed_ms: (elapsed * 1e6).round() / 1e3,
            threads: rayon::current_num_threads(),
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
    stage_timing("report written (whole run)", started);
    Ok(code)
}

/// Which requests `hopscope traces` writes.
#[derive(Clone, Debug, Default)]
pub struct TraceFilter {
    /// Only failed requests.
    pub failed: bool,
    /// Only the N slowest (by latency; ties to the smaller ID).
    pub slowest: Option<usize>,
    /// Only requests with a visit of one of these services.
    pub services: Vec<String>,
    /// Only requests at least this slow (ns).
    pub min_latency: Option<i64>,
    /// Only requests whose chain matches this glob.
    pub chain: Option<String>,
    /// Only incomplete requests.
    pub incomplete: bool,
}

impl TraceFilter {
    fn accepts(&self, a: &Assembled, u: &Universe) -> bool {
        if self.failed && !a.failed {
            return false;
        }
        if self.incomplete && a.incomplete.is_none() {
            return false;
        }
        if self.min_latency.is_some_and(|m| a.latency < m) {
            return false;
        }
        if !self.services.is_empty()
            && !a
                .visits
                .iter()
                .any(|v| self.services.iter().any(|s| s == u.name(v.service)))
        {
            return false;
        }
        if let Some(g) = &self.chain
            && !report::trace::glob_match(g, &a.chain)
        {
            return false;
        }
        true
    }
}

/// How many requests are assembled and written at a time by `traces`.
const TRACE_BATCH: usize = 4096;

/// `hopscope traces`: one JSON object per request, in (start, request ID)
/// order, written batch by batch.
pub fn run_traces(
    cfg: &Config,
    filter: &TraceFilter,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, Error> {
    let ((), code) = with_pool(cfg, err, |diag| {
        let prepared = prepare_input(cfg, diag)?;
        let u = &prepared.loaded.universe;
        // Which requests pass the filters, with what they sort by.
        let mut chosen: Vec<(i64, String, usize, i64)> = prepared
            .pieces
            .par_iter()
            .enumerate()
            .filter(|(_, p)| p.selected)
            .filter_map(|(i, p)| {
                let a = prepared.assemble(p);
                filter
                    .accepts(&a, u)
                    .then(|| (a.start, a.id.clone(), i, a.latency))
            })
            .collect();
        if let Some(n) = filter.slowest {
            chosen.sort_by(|a, b| b.3.cmp(&a.3).then_with(|| a.1.cmp(&b.1)));
            chosen.truncate(n);
        }
        chosen.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
        for batch in chosen.chunks(TRACE_BATCH) {
            let lines: Vec<Vec<u8>> = batch
                .par_iter()
                .map(|(_, _, i, _)| {
                    let a = prepared.pieces.get(*i).map(|p| prepared.assemble(p));
                    let mut line = a
                        .map(|a| serde_json::to_vec(&report::trace::trace_of(&a, u)))
                        .transpose()
                        .unwrap_or_default()
                        .unwrap_or_default();
                    line.push(b'\n');
                    line
                })
                .collect();
            for l in lines {
                out.write_all(&l)?;
            }
        }
        out.flush()?;
        Ok(())
    })?;
    Ok(code)
}

/// `hopscope show`: one request as a tree and waterfall. A unique prefix of
/// the ID is enough; an ambiguous one lists the candidates (exit 2).
pub fn run_show(
    cfg: &Config,
    request: &str,
    width: Option<usize>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, Error> {
    let ((), code) = with_pool(cfg, err, |diag| {
        let prepared = prepare_input(cfg, diag)?;
        let u = &prepared.loaded.universe;
        let ids: Vec<(String, &Piece)> = prepared
            .pieces
            .iter()
            .map(|p| (prepared.id_of(p), p))
            .collect();
        let exact: Vec<&(String, &Piece)> = ids.iter().filter(|(id, _)| id == request).collect();
        let matches: Vec<&(String, &Piece)> = if exact.is_empty() {
            ids.iter()
                .filter(|(id, _)| id.starts_with(request))
                .collect()
        } else {
            exact
        };
        let mut names: Vec<&str> = matches.iter().map(|(id, _)| id.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        match names.len() {
            0 => {
                return Err(Error::Usage(format!(
                    "no request ID starts with '{request}' (hopscope traces lists them)"
                )));
            }
            1 => {}
            n => {
                let shown: Vec<&str> = names.iter().take(10).copied().collect();
                return Err(Error::Usage(format!(
                    "'{request}' matches {n} request IDs: {}{}",
                    shown.join(", "),
                    if n > 10 { ", …" } else { "" }
                )));
            }
        }
        let style = report::show::Style {
            color: cfg.color && std::io::stdout().is_terminal(),
            width: width.unwrap_or_else(report::show::terminal_width),
        };
        for (_, p) in matches {
            let a = prepared.assemble(p);
            report::show::write_show(&a, u, &style, out)?;
        }
        out.flush()?;
        Ok(())
    })?;
    Ok(code)
}

/// `hopscope files`: per file its format, service and the rule that chose
/// it, the field name that matched each role, records, skips by reason and
/// time range — the first thing to run when a report looks wrong.
pub fn run_files(
    cfg: &Config,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, Error> {
    let (rows, code) = with_pool(cfg, err, |diag| {
        let inputs = open_inputs(cfg, diag)?;
        let loaded = load(cfg, &inputs, diag)?;
        let schema = Schema::new(&cfg.field_overrides);
        Ok(report::files::rows(&loaded.files, &schema))
    })?;
    if json {
        report::files::write_json(&rows, out)?;
    } else {
        report::files::write_table(&rows, out)?;
    }
    out.flush()?;
    Ok(code)
}

/// `hopscope check`: the report of PATH checked against budgets and a
/// baseline; exit 1 when a check fails.
pub fn run_check(
    cfg: &Config,
    check_opts: &crate::check::CheckOptions,
    baseline: Option<&serde_json::Value>,
    output: crate::cli::CheckOutput,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, Error> {
    let (report, code) = with_pool(cfg, err, |diag| {
        let (prepared, stats) = measure_input(cfg, diag)?;
        Ok(build_report(cfg, &prepared, &stats))
    })?;
    let current = serde_json::to_value(&report)
        .map_err(|e| Error::Usage(format!("cannot serialise the report: {e}")))?;
    let result = crate::check::check(&current, baseline, check_opts);
    match output {
        crate::cli::CheckOutput::Table => result.write_table(out)?,
        crate::cli::CheckOutput::Json => result.write_json(out)?,
        crate::cli::CheckOutput::Junit => result.write_junit(out)?,
    }
    out.flush()?;
    // SPEC §6: 1 (a failed check) comes before 3 (unreadable files).
    Ok(if result.passed() { code } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a request costs beyond its records (README "Memory"): a 40-byte
    /// piece, plus its start (a `u32`) in its partition's boundary list.
    #[test]
    fn a_request_costs_44_bytes_besides_its_records() {
        assert_eq!(std::mem::size_of::<Piece>(), 40);
    }

    /// The bar is for a person at a terminal waiting on 100 MB or more:
    /// never in a pipe or CI log, never with `--quiet`, never for a small
    /// input (100 MiB = 104,857,600 bytes is the boundary).
    #[test]
    fn progress_bar_only_on_a_terminal_for_large_inputs() {
        let big = 104_857_600;
        assert!(wants_progress(false, big, true));
        assert!(wants_progress(false, 5 << 30, true));
        assert!(!wants_progress(false, big - 1, true));
        assert!(!wants_progress(false, big, false));
        assert!(!wants_progress(true, big, true));
        assert!(!wants_progress(false, 0, true));
    }

    /// A config as the command line `hopscope report ARGS...` gives it.
    fn report_config(args: &[&str]) -> Config {
        use clap::Parser;
        let argv = ["hopscope", "report"].iter().chain(args).copied();
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Report(r) => r.input.to_config().unwrap(),
            _ => unreachable!(),
        }
    }

    fn loaded(cfg: &Config) -> Loaded {
        init_pool(cfg);
        load_input(cfg, &mut Diagnostics::default()).unwrap()
    }

    /// The forecast path gives the statistics of two plain passes, whatever
    /// the forecast: `testdata` has orders→inventory 40 ms off (applied).
    /// A forecast from no request names nothing, so every request is
    /// measured in the first pass and the figures of those holding the
    /// pair are dropped (the fallback); one from every request (1 per
    /// partition) holds; a threshold of 50 ms forecasts the pair (θ ≥ 25 ms)
    /// without applying it; and a forecast of another pair that still
    /// defers every request holding the applied one leaves the first pass's
    /// figures valid although the forecast missed.
    #[test]
    fn forecast_changes_no_figure() {
        for args in [
            &["testdata/logs"][..],
            &["testdata/logs", "--skew-threshold", "50ms"],
            &["testdata/logs", "--skew", "off"],
            &["testdata/logs", "--max-gap", "1s"],
        ] {
            let cfg = report_config(args);
            let plain = prepare(&cfg, loaded(&cfg));
            let want = plain.stats(cfg.include_incomplete);
            assert_eq!(want.requests.total, 10 + plain.split, "{args:?}");
            let services = &plain.loaded.universe.services;
            let name = |s: &str| services.iter().position(|n| n == s).unwrap() as SymId;
            // Deferring every request that holds gateway and inventory
            // defers all that hold orders→inventory, without naming it.
            let wrong = vec![(name("gateway"), name("inventory"))];
            let mut forecasts: Vec<Vec<(SymId, SymId)>> = [0, 1, FORECAST_PER_PARTITION]
                .iter()
                .map(|&n| {
                    let l = loaded(&cfg);
                    forecast_skew(&cfg, &l, n)
                })
                .collect();
            forecasts.push(wrong);
            for forecast in forecasts {
                let (prepared, got) = prepare_with_forecast(&cfg, loaded(&cfg), &forecast);
                assert_eq!(got, want, "{args:?}, forecast {forecast:?}");
                assert_eq!(prepared.skew_pairs, plain.skew_pairs);
                assert_eq!(prepared.offsets, plain.offsets);
                let measured = prepared.pieces.iter().filter(|p| p.measured).count();
                let all = prepared.pieces.len();
                if forecast.is_empty() {
                    assert_eq!(measured, all, "{args:?}");
                } else {
                    // Requests that hold the pair wait for the second
                    // pass; the rest do not.
                    assert!(0 < measured && measured < all, "{args:?}, {forecast:?}");
                }
            }
        }
    }

    /// The report takes visits as built, traces in corrected-start order:
    /// the statistics are the same either way, and the orders do differ.
    #[test]
    fn visit_order_changes_no_statistic() {
        for args in [
            &["testdata/logs"][..],
            &["testdata/logs", "--include-incomplete"],
        ] {
            let cfg = report_config(args);
            let p = prepare(&cfg, loaded(&cfg));
            let u = &p.loaded.universe;
            let (mut ordered, mut as_built) = (Stats::default(), Stats::default());
            let mut reordered = 0;
            for piece in &p.pieces {
                let slice = p.loaded.records.slice(piece.part, piece.range.clone());
                let with = |visit_order| {
                    let opts = AssembleOptions {
                        visit_order,
                        ..p.opts.clone()
                    };
                    assemble::assemble(&slice, u, Some(&p.offsets), &opts)
                };
                let (a, b) = (with(true), with(false));
                reordered += usize::from(a.visits != b.visits);
                let id = || a.id.clone();
                ordered.add(&a, &LazyId::new(&id), cfg.include_incomplete);
                as_built.add(&b, &LazyId::new(&id), cfg.include_incomplete);
            }
            assert!(reordered > 0, "{args:?}");
            assert_eq!(ordered, as_built, "{args:?}");
        }
    }

    #[test]
    fn pair_sets() {
        let mut s = PairSet::default();
        s.insert(1, 2);
        s.insert(63, 0);
        assert!(s.contains(1, 2) && s.contains(63, 0));
        assert!(!s.contains(2, 1) && !s.contains(0, 63));
        let mut t = PairSet::default();
        t.insert(2, 1);
        t.union(&s);
        assert!(t.contains(2, 1) && t.contains(1, 2));
        // Ids past 63 make every pair count as held.
        t.insert(64, 1);
        assert!(t.contains(5, 5));
    }

    #[test]
    fn pairs_are_held_by_both_services() {
        let rec = |service| {
            let mut r = Record::bare(crate::model::IdKey::interned(0), 0, 0);
            r.service = service;
            r
        };
        let recs = [rec(1), rec(3), rec(1)];
        assert!(holds_a_pair(&recs, &[(3, 1)]));
        assert!(holds_a_pair(&recs, &[(0, 2), (1, 3)]));
        assert!(!holds_a_pair(&recs, &[(1, 2)]));
        assert!(!holds_a_pair(&recs, &[]));
        // Ids past the bit set count as holding every pair.
        assert!(holds_a_pair(&[rec(64)], &[(0, 1)]));
    }

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
