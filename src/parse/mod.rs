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

use std::collections::BTreeMap;

use memchr::memchr_iter;

use crate::model::{IdKey, Interner, Kind, Record, SpanPair};
use detect::LineFormat;
use fields::{Collector, FieldValue, Fields, LineError, Role, Schema, ValueKind};
use time::{DurationUnit, TsError, TzSpec, trim};

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

impl Default for LineRules {
    /// The rules with every option at its default: default field names, UTC,
    /// `--fail-status 500`, `--max-line 1MiB`.
    fn default() -> LineRules {
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
    // One searcher over the whole chunk rather than a search per line.
    let mut ends = memchr_iter(b'\n', data);
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        if pos >= data.len() {
            return None;
        }
        let start = pos;
        let end = match ends.next() {
            Some(i) => i,
            None => data.len(),
        };
        pos = end + 1;
        let line = data.get(start..end).unwrap_or_default();
        Some((start, line.strip_suffix(b"\r").unwrap_or(line)))
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
    parse_chunk_into(data, base, ctx, rules, Vec::new())
}

/// [`parse_chunk`] into `records` (cleared first): a worker that hands its
/// records on and parses chunk after chunk reuses one buffer, instead of
/// faulting in fresh pages for every chunk.
pub fn parse_chunk_into(
    data: &[u8],
    base: u64,
    ctx: &FileContext<'_>,
    rules: &LineRules,
    mut records: Vec<Record>,
) -> ChunkRecords {
    records.clear();
    records.reserve(data.len() / 200 + 1);
    let mut out = ChunkRecords {
        records,
        ..ChunkRecords::default()
    };
    let path_service = out.services.intern(ctx.path_service);
    // One collector for every plain line of the chunk: its storage is
    // reused and the winners are read in place.
    let mut scratch = Collector::new(&rules.schema);
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
            let line = Line {
                bytes: line,
                envelope_time: None,
                offset,
            };
            parse_line(line, ctx, rules, path_service, &mut out, &mut scratch);
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
            container::Joined::Line(c) => parse_joined(&c, ctx, rules, path_service, &mut out),
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
                    parse_joined(&c, ctx, rules, path_service, &mut out);
                }
            }
        }
    }
    out
}

/// Parses the inner line of a container envelope. Its bytes are the
/// joiner's, not the chunk's, so it gets a collector of its own.
fn parse_joined(
    c: &container::Complete<'_>,
    ctx: &FileContext<'_>,
    rules: &LineRules,
    path_service: u32,
    out: &mut ChunkRecords,
) {
    let line = Line {
        bytes: &c.inner,
        envelope_time: c.time.as_deref(),
        offset: c.offset,
    };
    let mut scratch = Collector::new(&rules.schema);
    parse_line(line, ctx, rules, path_service, out, &mut scratch);
}

/// One (inner) line to parse: its bytes, the envelope's time (which stands
/// in when the line has no timestamp of its own) and its offset.
struct Line<'a, 't> {
    bytes: &'a [u8],
    envelope_time: Option<&'t str>,
    offset: u64,
}

/// One (inner) line → a record or a counted skip. The line's fields are
/// collected in `scratch`, reused across lines.
fn parse_line<'a>(
    line: Line<'a, '_>,
    ctx: &FileContext<'_>,
    rules: &LineRules,
    path_service: u32,
    out: &mut ChunkRecords,
    scratch: &mut Collector<'_, 'a>,
) {
    let Line {
        bytes: line,
        envelope_time,
        offset,
    } = line;
    if detect::is_blank(line) {
        out.stats.blank += 1;
        return;
    }
    let parsed = match &ctx.reader.format {
        None => {
            out.stats.skip(ctx.file, offset, SkipReason::UnknownFormat);
            return;
        }
        Some(FileFormat::Json) => json::parse_json_into(line, scratch),
        Some(FileFormat::Logfmt) => logfmt::parse_logfmt_into(line, scratch),
        Some(FileFormat::Regex(p)) => {
            regex::parse_regex(line, p).map(|fields| scratch.set_fields(fields))
        }
    };
    let fields = match parsed.and_then(|()| scratch.result()) {
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
    match build_record(fields, envelope_time, ctx, rules, path_service, out) {
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
                // `values` is indexed by role, like `names_used`.
                for (counts, v) in out.stats.names_used.iter_mut().zip(&fields.values) {
                    if let Some(v) = v
                        && let Some(n) = counts.get_mut(v.name_index.min(NAME_SLOTS - 1))
                    {
                        *n += 1;
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
    // The words are at most 9 bytes long; the zero forms start with `0`.
    if id.len() > 9 && !id.starts_with('0') {
        return false;
    }
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

/// The text of `role`, trimmed; None when absent or blank.
fn text<'f>(fields: &'f Fields<'_>, role: Role) -> Option<&'f str> {
    fields
        .get(role)
        .map(|v| trim(&v.text))
        .filter(|t| !t.is_empty())
}

fn id_key(text: &str, ids: &mut Interner) -> IdKey {
    compact_id(text).unwrap_or_else(|| IdKey::interned(ids.intern(text)))
}

/// Exactly [`IdKey::compact`] (lowercase hex of 1 to 32 digits, or a
/// canonical lowercase UUID), eight digits at a time.
fn compact_id(text: &str) -> Option<IdKey> {
    let b = text.as_bytes();
    let word = |i: usize| fields::word_at(b, i);
    let half = |i: usize| {
        b.get(i..i + 4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map(|w| u64::from(u32::from_le_bytes(w)))
    };
    let (tag, value) = match b.len() {
        36 => {
            if [8, 13, 18, 23].iter().any(|&i| b.get(i) != Some(&b'-')) {
                return None;
            }
            let hi = hex16(word(0)?, half(9)? | half(14)? << 32)?;
            let lo = hex16(half(19)? | half(24)? << 32, word(28)?)?;
            (
                crate::model::TAG_UUID,
                u128::from(hi) << 64 | u128::from(lo),
            )
        }
        len @ 1..=32 => {
            // A short first group, padded with leading zeros, then whole
            // groups of eight.
            let head = len % 8;
            let mut v: u128 = 0;
            let mut i = 0;
            if head > 0 {
                let mut pad = [b'0'; 8];
                pad.get_mut(8 - head..)?.copy_from_slice(b.get(..head)?);
                v = u128::from(hex8(u64::from_le_bytes(pad))?);
                i = head;
            }
            while i < len {
                v = v << 32 | u128::from(hex8(word(i)?)?);
                i += 8;
            }
            (u8::try_from(len).ok()?, v)
        }
        _ => return None,
    };
    Some(IdKey::from_value(tag, value))
}

/// The value of eight lowercase hex digits (the first in the low byte of
/// `w`, as loaded from text), or None when any byte is not one.
#[inline]
fn hex8(w: u64) -> Option<u32> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES * 0x80;
    // Per byte (all below 0x80): the high bit of (byte | 0x80) - n is set
    // exactly when byte >= n; no borrow crosses bytes.
    let at_least = |n: u8| (w | HIGH).wrapping_sub(ONES * u64::from(n)) & HIGH;
    let digit = at_least(b'0') & !at_least(b'9' + 1);
    let letter = at_least(b'a') & !at_least(b'f' + 1);
    if w & HIGH != 0 || digit | letter != HIGH {
        return None;
    }
    // Nibbles: the low four bits, plus 9 for letters (bit 0x40 set).
    let n = (w & (ONES * 0x0F)) + ((w >> 6) & ONES) * 9;
    // The first digit is the most significant: reverse, then pack.
    let n = n.swap_bytes();
    let n = ((n >> 4) | n) & 0x00FF_00FF_00FF_00FF;
    let n = ((n >> 8) | n) & 0x0000_FFFF_0000_FFFF;
    let n = ((n >> 16) | n) & 0x0000_0000_FFFF_FFFF;
    Some(n as u32)
}

/// The value of sixteen lowercase hex digits, eight in `first` and eight
/// in `second` (each as loaded from text, first digit in the low byte), or
/// None when any byte is not one: SSE2 on x86-64 (through `safe_arch`),
/// [`hex8`] twice elsewhere.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
fn hex16(first: u64, second: u64) -> Option<u64> {
    use safe_arch::{
        add_i8_m128i, bitand_m128i, bitor_m128i, cmp_gt_mask_i8_m128i, cmp_lt_mask_i8_m128i, m128i,
        move_mask_i8_m128i, pack_i16_to_u8_m128i, set_splat_i8_m128i, set_splat_i16_m128i,
        shl_imm_u16_m128i, shr_imm_u16_m128i,
    };
    let splat = |c: u8| set_splat_i8_m128i(i8::from_ne_bytes([c]));
    let v = m128i::from([first, second]);
    // Bytes of 0x80 and above are negative here, so never in a range.
    let within = |lo: u8, hi: u8| {
        bitand_m128i(
            cmp_gt_mask_i8_m128i(v, splat(lo - 1)),
            cmp_lt_mask_i8_m128i(v, splat(hi + 1)),
        )
    };
    let letter = within(b'a', b'f');
    if move_mask_i8_m128i(bitor_m128i(within(b'0', b'9'), letter)) != 0xFFFF {
        return None;
    }
    // Nibbles: the low four bits, plus 9 for letters.
    let nibbles = add_i8_m128i(bitand_m128i(v, splat(0x0F)), bitand_m128i(letter, splat(9)));
    // Each 16-bit lane holds a digit pair, the first (high) digit in its
    // low byte: high << 4 | low, then the lanes packed to bytes.
    let high = shl_imm_u16_m128i::<4>(bitand_m128i(nibbles, set_splat_i16_m128i(0x00FF)));
    let pairs = bitor_m128i(high, shr_imm_u16_m128i::<8>(nibbles));
    let [bytes, _] = <[u64; 2]>::from(pack_i16_to_u8_m128i(pairs, pairs));
    // The first pair is the most significant byte.
    Some(bytes.swap_bytes())
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
fn hex16(first: u64, second: u64) -> Option<u64> {
    Some(u64::from(hex8(first)?) << 32 | u64::from(hex8(second)?))
}

/// [`Kind::from_value`] of a trimmed value, the four canonical spellings
/// first.
#[inline]
fn kind_of(t: &str) -> Option<Kind> {
    match t {
        "server_recv" => Some(Kind::ServerRecv),
        "server_send" => Some(Kind::ServerSend),
        "client_send" => Some(Kind::ClientSend),
        "client_recv" => Some(Kind::ClientRecv),
        _ => Kind::from_value(t),
    }
}

fn build_record(
    fields: &Fields<'_>,
    envelope_time: Option<&str>,
    ctx: &FileContext<'_>,
    rules: &LineRules,
    path_service: u32,
    out: &mut ChunkRecords,
) -> Result<Record, SkipReason> {
    let Some(req) = text(fields, Role::RequestId) else {
        return Err(SkipReason::NoRequestId);
    };
    if is_placeholder_id(req) {
        return Err(SkipReason::NoRequestId);
    }
    let (service, service_name): (u32, &str) = match text(fields, Role::Service) {
        Some(name) if !rules.service_from_path => {
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
    let kind = text(fields, Role::Event).and_then(kind_of);
    let peer_id = text(fields, Role::Peer).map_or(Record::NO_PEER, |p| out.peers.intern(p));
    let duration_ns = fields
        .get(Role::Duration)
        .and_then(|v| parse_duration_value(v, pattern, rules))
        .unwrap_or(Record::NO_DURATION);
    let req = id_key(req, &mut out.ids);
    let span = text(fields, Role::Span).map(|t| id_key(t, &mut out.ids));
    let parent = text(fields, Role::Parent).map(|t| id_key(t, &mut out.ids));
    let spans = if span.is_some() || parent.is_some() {
        out.spans.push(SpanPair { span, parent });
        u32::try_from(out.spans.len() - 1).unwrap_or(Record::NO_SPANS)
    } else {
        Record::NO_SPANS
    };
    Ok(Record::new(
        req,
        ts,
        0,
        duration_ns,
        service,
        peer_id,
        spans,
        kind,
        anchored_start,
        is_failure(fields, rules.fail_status),
    ))
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
    time::parse_duration(trim(&v.text), unit).filter(|&d| d <= DURATION_MAX)
}

/// SPEC §1: a record fails when any failure field says so.
pub fn is_failure(fields: &Fields<'_>, fail_status: u32) -> bool {
    if let Some(level) = fields.get(Role::Level) {
        let t = trim(&level.text);
        match small_uint(t) {
            Some(n) if n >= 50 => return true,
            Some(_) => {}
            None if is_quiet_level(t) => {}
            None => {
                if level_fails(t) {
                    return true;
                }
            }
        }
    }
    if let Some(status) = fields.get(Role::Status) {
        let t = trim(&status.text);
        match small_uint(t) {
            Some(n) if n >= u64::from(fail_status) => return true,
            Some(_) => {}
            None => {
                if status_fails(t, fail_status) {
                    return true;
                }
            }
        }
    }
    if let Some(err) = fields.get(Role::Error) {
        if err.kind == ValueKind::Object {
            return true;
        }
        let t = trim(&err.text);
        const FALSY: [&str; 8] = ["false", "null", "nil", "<nil>", "none", "0", "{}", "[]"];
        if !t.is_empty() && !FALSY.iter().any(|f| t.eq_ignore_ascii_case(f)) {
            return true;
        }
    }
    false
}

/// A number of 1 to 9 ASCII digits (exactly what `f64` parsing gives for
/// it), the common form of numeric levels and statuses.
#[inline]
fn small_uint(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    if b.is_empty() || b.len() > 9 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// Levels that never fail, as most logs spell them.
#[inline]
fn is_quiet_level(t: &str) -> bool {
    matches!(
        t,
        "info"
            | "INFO"
            | "Info"
            | "debug"
            | "DEBUG"
            | "Debug"
            | "warn"
            | "WARN"
            | "Warn"
            | "warning"
            | "WARNING"
            | "Warning"
            | "trace"
            | "TRACE"
            | "Trace"
            | "notice"
            | "NOTICE"
    )
}

/// Level names that mean a failure (SPEC §1), compared ignoring case.
const FAILING_LEVELS: [&str; 10] = [
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

/// The level rule of [`is_failure`] for a trimmed level.
fn level_fails(t: &str) -> bool {
    FAILING_LEVELS.iter().any(|b| t.eq_ignore_ascii_case(b))
        || t.parse::<f64>().is_ok_and(|n| n >= 50.0)
}

/// The status rule of [`is_failure`] for a trimmed status.
fn status_fails(t: &str, fail_status: u32) -> bool {
    if let Ok(n) = t.parse::<f64>() {
        n >= f64::from(fail_status)
    } else {
        const BAD: [&str; 5] = ["error", "fail", "failed", "failure", "fatal"];
        BAD.iter().any(|b| t.eq_ignore_ascii_case(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> LineRules {
        LineRules::default()
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
        assert_eq!(r.req(), IdKey::interned(0));
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

    #[test]
    fn lines_edges() {
        let all = |d: &'static [u8]| lines(d).collect::<Vec<_>>();
        assert!(all(b"").is_empty());
        assert_eq!(all(b"a\n"), vec![(0, &b"a"[..])]);
        assert_eq!(all(b"\n"), vec![(0, &b""[..])]);
        assert_eq!(all(b"\r\n\r"), vec![(0, &b""[..]), (2, &b""[..])]);
        assert_eq!(all(b"ab"), vec![(0, &b"ab"[..])]);
    }

    /// The failure rule as first written (SPEC §1), for the fast paths.
    fn is_failure_reference(fields: &Fields<'_>, fail_status: u32) -> bool {
        if let Some(level) = fields.get(Role::Level) {
            let t = level.text.trim();
            if FAILING_LEVELS.iter().any(|b| t.eq_ignore_ascii_case(b)) {
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

    fn arb_level() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            prop::sample::select(vec![
                "info",
                "INFO",
                "Info",
                "debug",
                "warn",
                "WARNING",
                "notice",
                "trace",
                "error",
                "ERR",
                "fatal",
                "Critical",
                "crit",
                "panic",
                "alert",
                "emerg",
                "severe",
                "emergency",
                "inf",
                "INF",
                "infinity",
                "nan",
                "NaN",
                "-inf",
                "30",
                "50",
                "49",
                "050",
                "50.0",
                "49.9",
                "1e2",
                "+60",
                "-70",
                " 60 ",
                "\t30",
                "000000000060",
                "999999999",
                "1000000000",
                "200",
                "499",
                "500",
                "501",
                "503",
                "5e2",
                "fail",
                "Failed",
                "failure",
                "FATAL",
                "ok",
                "0",
                "false",
                "null",
                "<nil>",
                "none",
                "{}",
                "[]",
                "nil",
                "x",
                "",
            ])
            .prop_map(String::from),
            "[0-9]{1,12}",
            "[ a-zA-Z0-9.+-]{0,8}",
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// [`compact_id`] is [`IdKey::compact`], word by word.
        #[test]
        fn compact_id_is_idkey_compact(
            text in proptest::prop_oneof![
                "[0-9a-f]{1,40}",
                "[0-9a-fA-FxX-]{1,40}",
                "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                "[0-9a-g]{8}[-_][0-9a-f]{4}-[0-9A-f]{4}-[0-9a-f]{4}[-x][0-9a-f]{12}",
                // Canonical shape, digits next to the hex ranges' edges.
                "[0-9a-f/:@`g\u{80}\u{e9}]{8}-[0-9a-f/:`g]{4}-[0-9a-f:@]{4}-[0-9a-f`g]{4}-[0-9a-f/:@`g]{12}",
                "[/:@`{0-9a-f\u{e9}G-]{30,37}",
                ".{0,40}",
            ],
        ) {
            proptest::prop_assert_eq!(compact_id(&text), IdKey::compact(&text), "{:?}", text);
        }

        /// The fast paths of [`is_failure`] agree with the rule as written.
        #[test]
        fn is_failure_matches_reference(
            level in proptest::option::of(arb_level()),
            status in proptest::option::of(arb_level()),
            error in proptest::option::of(arb_level()),
            fail_status in proptest::prop_oneof![proptest::strategy::Just(500u32), 0u32..1000],
        ) {
            let mut fields = Fields::default();
            for (role, v) in [(Role::Level, &level), (Role::Status, &status), (Role::Error, &error)] {
                if let Some(v) = v {
                    fields.values[role.index()] = Some(FieldValue {
                        text: std::borrow::Cow::Owned(v.clone()),
                        kind: ValueKind::String,
                        name_index: 0,
                    });
                }
            }
            proptest::prop_assert_eq!(
                is_failure(&fields, fail_status),
                is_failure_reference(&fields, fail_status)
            );
        }
    }

    #[test]
    fn one_collector_for_many_lines() {
        // A line's fields do not leak into the next one's record.
        let (recs, stats, services) = parse(
            "{\"ts\":1,\"request_id\":\"a\",\"service\":\"s\",\"peer\":\"db\",\"level\":\"error\",\"event\":\"cs\"}\n\
             {\"ts\":2,\"request_id\":\"b\"}\n\
             {\"ts\":3,\"req_id\":\"\\u0063\",\"span_id\":\"00f067aa0ba902b7\"}",
            LineFormat::Json,
        );
        assert_eq!(stats.records, 3);
        assert_eq!(services.name(recs[0].service), "s");
        assert!(recs[0].failed && recs[0].peer().is_some());
        assert_eq!(recs[0].kind, Some(Kind::ClientSend));
        assert_eq!(services.name(recs[1].service), "pathsvc");
        assert!(!recs[1].failed && recs[1].peer().is_none() && recs[1].kind.is_none());
        assert_eq!(recs[1].spans, Record::NO_SPANS);
        assert_eq!(recs[2].req(), IdKey::compact("c").unwrap());
        assert_ne!(recs[2].spans, Record::NO_SPANS);
    }
}
