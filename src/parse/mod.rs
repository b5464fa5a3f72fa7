//! Parse stage: one chunk of a file's bytes → compact [`Record`]s and
//! per-reason skip counts. The format of a file is decided once (detect);
//! each line's field roles come from the format's scanner (json, logfmt) and
//! are turned into a record here: IDs, timestamps, durations, failure flag.

pub mod container;
pub mod detect;
pub mod fields;
pub mod json;
pub mod logfmt;
pub mod regex;
pub mod time;

use std::borrow::Cow;
use std::collections::BTreeMap;

use memchr::memchr;

use crate::model::{IdKey, Interner, Kind, Record, SpanPair};
use detect::LineFormat;
use fields::{FieldValue, Fields, LineError, Role, Schema, ValueKind};
use time::{DurationUnit, TsError, TzSpec};

/// Why a line was not used (SPEC §1), in the order of the JSON map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    /// The line fails its file's format.
    ParseError,
    /// A needed field is not valid UTF-8.
    InvalidUtf8,
    /// No request ID, or a placeholder one.
    NoRequestId,
    /// No timestamp, or one without a date.
    NoTimestamp,
    /// A timestamp that cannot be read.
    BadTimestamp,
    /// Longer than `--max-line`.
    TooLong,
    /// The file fits no format.
    UnknownFormat,
}

impl SkipReason {
    /// Every reason, in output order.
    pub const ALL: [SkipReason; 7] = [
        SkipReason::ParseError,
        SkipReason::InvalidUtf8,
        SkipReason::NoRequestId,
        SkipReason::NoTimestamp,
        SkipReason::BadTimestamp,
        SkipReason::TooLong,
        SkipReason::UnknownFormat,
    ];

    /// The key used in JSON and messages.
    pub fn name(self) -> &'static str {
        match self {
            SkipReason::ParseError => "parse_error",
            SkipReason::InvalidUtf8 => "invalid_utf8",
            SkipReason::NoRequestId => "no_request_id",
            SkipReason::NoTimestamp => "no_timestamp",
            SkipReason::BadTimestamp => "bad_timestamp",
            SkipReason::TooLong => "too_long",
            SkipReason::UnknownFormat => "unknown_format",
        }
    }
}

/// The latest usable timestamp, 2100-01-01T00:00:00Z in ns. Earlier than
/// 1970 or later than this is `bad_timestamp`: every time and difference the
/// assembly computes then stays far inside i64 nanoseconds.
pub const TS_MAX: i64 = 4_102_444_800_000_000_000;

/// The longest usable duration (one year); a longer one is ignored as
/// nonsense (a wrong unit), like an unreadable one.
pub const DURATION_MAX: i64 = 365 * 24 * 3_600_000_000_000;

/// Name slots counted per role in [`ParseStats::names_used`].
pub const NAME_SLOTS: usize = 16;

/// Line counters of a parse, mergeable across chunks and files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// Every line seen.
    pub lines: u64,
    /// Empty or whitespace-only lines.
    pub blank: u64,
    /// Lines that became records.
    pub records: u64,
    /// Skipped lines by reason (index = position in [`SkipReason::ALL`]).
    pub skipped: [u64; 7],
    /// The first skipped line, by (file, offset), for `--strict`.
    pub first_skip: Option<(u32, u64, SkipReason)>,
    /// Per role, how often each of its names (by index, the last slot
    /// counting any later ones) was the one used, for `hopscope files`.
    pub names_used: [[u64; NAME_SLOTS]; fields::ROLE_COUNT],
    /// Records whose service came from a service field.
    pub service_from_field: u64,
    /// Earliest record timestamp (ns).
    pub first_ts: Option<i64>,
    /// Latest record timestamp (ns).
    pub last_ts: Option<i64>,
}

impl ParseStats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &ParseStats) {
        self.lines += other.lines;
        self.blank += other.blank;
        self.records += other.records;
        for (a, b) in self.skipped.iter_mut().zip(other.skipped) {
            *a += b;
        }
        self.first_skip = match (self.first_skip, other.first_skip) {
            (Some(a), Some(b)) => Some(if (b.0, b.1) < (a.0, a.1) { b } else { a }),
            (a, b) => a.or(b),
        };
        self.first_ts = min_opt(self.first_ts, other.first_ts);
        for (a, b) in self.names_used.iter_mut().zip(&other.names_used) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self.service_from_field += other.service_from_field;
        self.last_ts = match (self.last_ts, other.last_ts) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// Skipped lines in all.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.iter().sum()
    }

    /// The skip counts as a map for JSON, every reason listed.
    pub fn skipped_map(&self) -> BTreeMap<&'static str, u64> {
        SkipReason::ALL
            .iter()
            .zip(self.skipped)
            .map(|(r, n)| (r.name(), n))
            .collect()
    }

    fn skip(&mut self, file: u32, offset: u64, reason: SkipReason) {
        self.skipped[reason as usize] += 1;
        let better = match self.first_skip {
            None => true,
            Some((f, o, _)) => (file, offset) < (f, o),
        };
        if better {
            self.first_skip = Some((file, offset, reason));
        }
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// How lines become records: the compiled field schema and every option
/// that interprets values. Built once per run.
#[derive(Clone, Debug)]
pub struct LineRules {
    /// Field names per role.
    pub schema: Schema,
    /// Zone for timestamps without an offset.
    pub tz: TzSpec,
    /// Zones per service name.
    pub tz_by_service: BTreeMap<String, TzSpec>,
    /// `--time-format`.
    pub time_format: Option<String>,
    /// The service field is ignored (`--service-from`).
    pub service_from_path: bool,
    /// `--duration-unit`.
    pub duration_unit: Option<DurationUnit>,
    /// `--duration-anchor start`.
    pub anchor_start: bool,
    /// `--fail-status`.
    pub fail_status: u32,
    /// `--max-line`.
    pub max_line: usize,
}

/// The format of a file's (inner) lines.
#[derive(Clone, Debug)]
pub enum FileFormat {
    /// One JSON object per line.
    Json,
    /// `key=value` pairs.
    Logfmt,
    /// A `--pattern` or a preset.
    Regex(std::sync::Arc<regex::Pattern>),
}

impl FileFormat {
    /// The name shown by `hopscope files` and in messages.
    pub fn name(&self) -> String {
        match self {
            FileFormat::Json => "json".to_string(),
            FileFormat::Logfmt => "logfmt".to_string(),
            FileFormat::Regex(p) => format!("regex ({})", p.name()),
        }
    }

    /// The regex pattern, for the regex format.
    pub fn pattern(&self) -> Option<&regex::Pattern> {
        match self {
            FileFormat::Regex(p) => Some(p),
            _ => None,
        }
    }
}

impl From<LineFormat> for FileFormat {
    fn from(f: LineFormat) -> FileFormat {
        match f {
            LineFormat::Json => FileFormat::Json,
            LineFormat::Logfmt => FileFormat::Logfmt,
        }
    }
}

/// How the lines of one file are read: an optional container envelope
/// around lines of one format. Decided once per file.
#[derive(Clone, Debug, Default)]
pub struct FileReader {
    /// Docker json-file or CRI, unwrapped first.
    pub envelope: Option<container::Envelope>,
    /// The (inner) format; None when no format fits (`unknown_format`).
    pub format: Option<FileFormat>,
}

/// What one file contributes to one chunk's parse.
pub struct FileContext<'r> {
    /// The file's index.
    pub file: u32,
    /// The service from the path (or file-name) rule.
    pub path_service: &'r str,
    /// How its lines are read.
    pub reader: &'r FileReader,
}

/// The records of one chunk with their own tables; service, peer, text ID
/// and span indices are local to the chunk until the caller makes them
/// global.
#[derive(Default)]
pub struct ChunkRecords {
    /// The records, in line order.
    pub records: Vec<Record>,
    /// Local service names.
    pub services: Interner,
    /// Local raw peer texts.
    pub peers: Interner,
    /// Local texts of IDs that have no compact form.
    pub ids: Interner,
    /// Local span pairs (`Record::spans` indexes this).
    pub spans: Vec<SpanPair>,
    /// Counters.
    pub stats: ParseStats,
}

/// Iterates the lines of `data` as (offset of line start, line without its
/// `\n` or `\r\n`).
pub fn lines(data: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let rest = data.get(pos..)?;
        if rest.is_empty() {
            return None;
        }
        let start = pos;
        let (line, next) = match memchr(b'\n', rest) {
            Some(i) => (rest.get(..i).unwrap_or_default(), pos + i + 1),
            None => (rest, data.len()),
        };
        pos = next;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        Some((start, line))
    })
}

/// Parses the bytes of one chunk, `base` being the chunk's offset in its
/// file.
pub fn parse_chunk(
    data: &[u8],
    base: u64,
    ctx: &FileContext<'_>,
    rules: &LineRules,
) -> ChunkRecords {
    let mut out = ChunkRecords {
        records: Vec::with_capacity(data.len() / 200 + 1),
        ..ChunkRecords::default()
    };
    let path_service = out.services.intern(ctx.path_service);
    let mut joiner = ctx
        .reader
        .envelope
        .map(|_| container::PartialJoiner::new(rules.max_line));
    for (off, line) in lines(data) {
        let offset = base + off as u64;
        out.stats.lines += 1;
        if line.len() > rules.max_line {
            out.stats.skip(ctx.file, offset, SkipReason::TooLong);
            continue;
        }
        if detect::is_blank(line) {
            out.stats.blank += 1;
            continue;
        }
        let (Some(env), Some(joiner)) = (ctx.reader.envelope, joiner.as_mut()) else {
            parse_line(line, None, offset, ctx, rules, path_service, &mut out);
            continue;
        };
        let Some(unwrapped) = container::unwrap_line(line, env) else {
            out.stats.skip(ctx.file, offset, SkipReason::ParseError);
            continue;
        };
        match joiner.push(unwrapped, offset) {
            container::Joined::Pending => {
                // A piece of a longer line: counted with the line it ends.
                out.stats.lines -= 1;
            }
            container::Joined::TooLong { offset } => {
                out.stats.skip(ctx.file, offset, SkipReason::TooLong);
            }
            container::Joined::Line(c) => {
                let time = c.time.as_deref();
                parse_line(&c.inner, time, c.offset, ctx, rules, path_service, &mut out);
            }
        }
    }
    if let Some(joiner) = joiner {
        for j in joiner.finish() {
            match j {
                container::Joined::Pending => {}
                container::Joined::TooLong { offset } => {
                    out.stats.lines += 1;
                    out.stats.skip(ctx.file, offset, SkipReason::TooLong);
                }
                container::Joined::Line(c) => {
                    out.stats.lines += 1;
                    let time = c.time.as_deref();
                    parse_line(&c.inner, time, c.offset, ctx, rules, path_service, &mut out);
                }
            }
        }
    }
    out
}

/// One (inner) line → a record or a counted skip. `envelope_time` stands in
/// when the line has no timestamp of its own.
fn parse_line(
    line: &[u8],
    envelope_time: Option<&str>,
    offset: u64,
    ctx: &FileContext<'_>,
    rules: &LineRules,
    path_service: u32,
    out: &mut ChunkRecords,
) {
    if detect::is_blank(line) {
        out.stats.blank += 1;
        return;
    }
    let parsed = match &ctx.reader.format {
        None => {
            out.stats.skip(ctx.file, offset, SkipReason::UnknownFormat);
            return;
        }
        Some(FileFormat::Json) => json::parse_json(line, &rules.schema),
        Some(FileFormat::Logfmt) => logfmt::parse_logfmt(line, &rules.schema),
        Some(FileFormat::Regex(p)) => regex::parse_regex(line, p),
    };
    let fields = match parsed {
        Ok(f) => f,
        Err(LineError::Parse) => {
            out.stats.skip(ctx.file, offset, SkipReason::ParseError);
            return;
        }
        Err(LineError::InvalidUtf8) => {
            out.stats.skip(ctx.file, offset, SkipReason::InvalidUtf8);
            return;
        }
    };
    match build_record(&fields, envelope_time, ctx, rules, path_service, out) {
        Ok(mut rec) => {
            rec.loc = Record::pack_loc(ctx.file, offset);
            out.stats.records += 1;
            out.stats.first_ts = min_opt(out.stats.first_ts, Some(rec.ts));
            out.stats.last_ts = Some(out.stats.last_ts.map_or(rec.ts, |t| t.max(rec.ts)));
            if ctx
                .reader
                .format
                .as_ref()
                .is_some_and(|f| f.pattern().is_none())
            {
                for role in fields::Role::ALL {
                    if let Some(v) = fields.get(role) {
                        let slot = v.name_index.min(NAME_SLOTS - 1);
                        if let Some(n) = out
                            .stats
                            .names_used
                            .get_mut(role.index())
                            .and_then(|r| r.get_mut(slot))
                        {
                            *n += 1;
                        }
                    }
                }
            }
            out.records.push(rec);
        }
        Err(reason) => out.stats.skip(ctx.file, offset, reason),
    }
}

/// True for request IDs that mean "no ID" (SPEC §1).
pub fn is_placeholder_id(id: &str) -> bool {
    const WORDS: [&str; 8] = [
        "-",
        "null",
        "none",
        "nil",
        "n/a",
        "unknown",
        "undefined",
        "0",
    ];
    WORDS.iter().any(|w| id.eq_ignore_ascii_case(w))
        || (!id.is_empty() && id.bytes().all(|b| b == b'0'))
        || (id.len() > 2
            && (id.starts_with("0x") || id.starts_with("0X"))
            && id.bytes().skip(2).all(|b| b == b'0'))
}

fn text<'a, 'f>(fields: &'f Fields<'a>, role: Role) -> Option<&'f Cow<'a, str>> {
    fields
        .get(role)
        .map(|v| &v.text)
        .filter(|t| !t.trim().is_empty())
}

fn id_key(text: &str, ids: &mut Interner) -> IdKey {
    IdKey::compact(text).unwrap_or_else(|| IdKey::interned(ids.intern(text)))
}

fn build_record(
    fields: &Fields<'_>,
    envelope_time: Option<&str>,
    ctx: &FileContext<'_>,
    rules: &LineRules,
    path_service: u32,
    out: &mut ChunkRecords,
) -> Result<Record, SkipReason> {
    let req = match text(fields, Role::RequestId) {
        Some(t) => t.trim(),
        None => return Err(SkipReason::NoRequestId),
    };
    if is_placeholder_id(req) {
        return Err(SkipReason::NoRequestId);
    }
    let (service, service_name): (u32, &str) = match text(fields, Role::Service) {
        Some(s) if !rules.service_from_path => {
            let name = s.trim();
            out.stats.service_from_field += 1;
            (out.services.intern(name), name)
        }
        _ => (path_service, ctx.path_service),
    };
    let tz = if rules.tz_by_service.is_empty() {
        &rules.tz
    } else {
        rules.tz_by_service.get(service_name).unwrap_or(&rules.tz)
    };
    let pattern = ctx.reader.format.as_ref().and_then(FileFormat::pattern);
    let time_format = rules
        .time_format
        .as_deref()
        .or_else(|| pattern.and_then(|p| p.time_format()));
    let ts_value = fields.get(Role::Ts);
    let own_ts = match ts_value {
        Some(v) => time::parse_timestamp(&v.text, tz, time_format),
        None => Err(TsError::Absent),
    };
    // The envelope's time stands in for a line without a (dated) time.
    let ts = match (own_ts, envelope_time) {
        (Err(TsError::Absent), Some(t)) => time::parse_timestamp(t, &TzSpec::Utc, None),
        (r, _) => r,
    }
    .map_err(|e| match e {
        TsError::Absent => SkipReason::NoTimestamp,
        TsError::Bad => SkipReason::BadTimestamp,
    })?;
    if !(0..=TS_MAX).contains(&ts) {
        return Err(SkipReason::BadTimestamp);
    }
    let ts_name = match (pattern, ts_value) {
        (None, Some(v)) => rules
            .schema
            .names(Role::Ts)
            .get(v.name_index)
            .map(String::as_str)
            .unwrap_or(""),
        _ => "",
    };
    let anchored_start = rules.anchor_start
        || pattern.is_some_and(|p| p.anchored_start())
        || ts_name.eq_ignore_ascii_case("start_time")
        || ts_name == "startTime";
    let kind = text(fields, Role::Event).and_then(|t| Kind::from_value(t));
    let peer_id = text(fields, Role::Peer).map_or(Record::NO_PEER, |p| out.peers.intern(p.trim()));
    let duration_ns = fields
        .get(Role::Duration)
        .and_then(|v| parse_duration_value(v, pattern, rules))
        .unwrap_or(Record::NO_DURATION);
    let req = id_key(req, &mut out.ids);
    let span = text(fields, Role::Span).map(|t| id_key(t.trim(), &mut out.ids));
    let parent = text(fields, Role::Parent).map(|t| id_key(t.trim(), &mut out.ids));
    let spans = if span.is_some() || parent.is_some() {
        out.spans.push(SpanPair { span, parent });
        u32::try_from(out.spans.len() - 1).unwrap_or(Record::NO_SPANS)
    } else {
        Record::NO_SPANS
    };
    Ok(Record {
        req,
        ts,
        loc: 0,
        duration_ns,
        service,
        peer_id,
        spans,
        kind,
        anchored_start,
        failed: is_failure(fields, rules.fail_status),
    })
}

fn parse_duration_value(
    v: &FieldValue<'_>,
    pattern: Option<&regex::Pattern>,
    rules: &LineRules,
) -> Option<i64> {
    // The unit: the value's own, else --duration-unit, else the field's (or
    // the regex group's) name suffix, else ms.
    let from_name = match pattern {
        Some(p) => p.duration_unit(),
        None => None,
    };
    let unit = rules
        .duration_unit
        .or(from_name)
        .or_else(|| {
            rules
                .schema
                .names(Role::Duration)
                .get(v.name_index)
                .and_then(|n| time::unit_from_name(n))
        })
        .unwrap_or(DurationUnit::Ms);
    time::parse_duration(v.text.trim(), unit).filter(|&d| d <= DURATION_MAX)
}

/// SPEC §1: a record fails when any failure field says so.
pub fn is_failure(fields: &Fields<'_>, fail_status: u32) -> bool {
    if let Some(level) = fields.get(Role::Level) {
        let t = level.text.trim();
        const BAD: [&str; 10] = [
            "error",
            "err",
            "fatal",
            "critical",
            "crit",
            "panic",
            "alert",
            "emerg",
            "severe",
            "emergency",
        ];
        if BAD.iter().any(|b| t.eq_ignore_ascii_case(b)) {
            return true;
        }
        if let Ok(n) = t.parse::<f64>()
            && n >= 50.0
        {
            return true;
        }
    }
    if let Some(status) = fields.get(Role::Status) {
        let t = status.text.trim();
        if let Ok(n) = t.parse::<f64>() {
            if n >= f64::from(fail_status) {
                return true;
            }
        } else {
            const BAD: [&str; 5] = ["error", "fail", "failed", "failure", "fatal"];
            if BAD.iter().any(|b| t.eq_ignore_ascii_case(b)) {
                return true;
            }
        }
    }
    if let Some(err) = fields.get(Role::Error) {
        if err.kind == ValueKind::Object {
            return true;
        }
        let t = err.text.trim();
        const FALSY: [&str; 8] = ["false", "null", "nil", "<nil>", "none", "0", "{}", "[]"];
        if !t.is_empty() && !FALSY.iter().any(|f| t.eq_ignore_ascii_case(f)) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> LineRules {
        LineRules {
            schema: Schema::default(),
            tz: TzSpec::Utc,
            tz_by_service: BTreeMap::new(),
            time_format: None,
            service_from_path: false,
            duration_unit: None,
            anchor_start: false,
            fail_status: 500,
            max_line: 1 << 20,
        }
    }

    fn parse(data: &str, format: LineFormat) -> (Vec<Record>, ParseStats, Interner) {
        let reader = FileReader {
            envelope: None,
            format: Some(format.into()),
        };
        let ctx = FileContext {
            file: 0,
            path_service: "pathsvc",
            reader: &reader,
        };

        let r = rules();
        let out = parse_chunk(data.as_bytes(), 0, &ctx, &r);
        (out.records, out.stats, out.services)
    }

    #[test]
    fn placeholders() {
        for p in [
            "-",
            "NULL",
            "None",
            "nil",
            "N/A",
            "unknown",
            "undefined",
            "0",
            "0000",
            "0x00",
        ] {
            assert!(is_placeholder_id(p), "{p}");
        }
        for p in ["r1", "42", "0a", "x"] {
            assert!(!is_placeholder_id(p), "{p}");
        }
    }

    #[test]
    fn logfmt_record_fields() {
        let (recs, stats, services) = parse(
            "ts=2024-05-01T10:00:00.050Z req_id=r1 svc=orders peer=postgres duration=40 status=503\n\
             \n\
             ts=2024-05-01T10:00:00.051Z req_id=- svc=orders\r\n\
             ts=nope req_id=r2\n\
             req_id=r3 msg=x",
            LineFormat::Logfmt,
        );
        assert_eq!(stats.lines, 5);
        assert_eq!(stats.blank, 1);
        assert_eq!(stats.records, 1);
        assert_eq!(stats.skipped[SkipReason::NoRequestId as usize], 1);
        assert_eq!(stats.skipped[SkipReason::BadTimestamp as usize], 1);
        assert_eq!(stats.skipped[SkipReason::NoTimestamp as usize], 1);
        let r = &recs[0];
        assert_eq!(r.req, IdKey::interned(0));
        assert_eq!(r.ts, 1_714_557_600_050_000_000);
        assert_eq!(services.name(r.service), "orders");
        assert_eq!(r.duration(), Some(40_000_000));
        assert!(r.failed);
        assert!(r.peer().is_some());
        assert_eq!(r.kind, None);
        assert_eq!(stats.first_skip.map(|s| s.2), Some(SkipReason::NoRequestId));
    }

    #[test]
    fn service_falls_back_to_path() {
        let (recs, _, services) = parse(
            r#"{"ts":1714557600,"trace_id":"abc","event":"sr"}"#,
            LineFormat::Json,
        );
        assert_eq!(services.name(recs[0].service), "pathsvc");
        assert_eq!(recs[0].kind, Some(Kind::ServerRecv));
        assert_eq!(recs[0].ts, 1_714_557_600_000_000_000);
    }

    #[test]
    fn failure_rules() {
        let cases = [
            (r#"{"level":"ERROR"}"#, true),
            (r#"{"level":"warn"}"#, false),
            (r#"{"level":50}"#, true),
            (r#"{"level":40}"#, false),
            (r#"{"status":503}"#, true),
            (r#"{"status":"499"}"#, false),
            (r#"{"status":"failed"}"#, true),
            (r#"{"error":"timeout"}"#, true),
            (r#"{"error":"<nil>"}"#, false),
            (r#"{"error":false}"#, false),
            (r#"{"err":{"code":1}}"#, true),
            (r#"{"exception":{}}"#, false),
        ];
        let schema = Schema::default();
        for (line, want) in cases {
            let f = json::parse_json(line.as_bytes(), &schema).unwrap();
            assert_eq!(is_failure(&f, 500), want, "{line}");
        }
    }

    #[test]
    fn lines_split() {
        let got: Vec<(usize, &[u8])> = lines(b"a\r\nbb\n\nc").collect();
        assert_eq!(
            got,
            vec![
                (0, &b"a"[..]),
                (3, &b"bb"[..]),
                (6, &b""[..]),
                (7, &b"c"[..])
            ]
        );
    }
}
