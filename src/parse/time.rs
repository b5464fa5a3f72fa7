//! Parse stage, field values: timestamps, time zones and durations (SPEC §1
//! "Fields", the Timestamps and Durations bullets), and the two fixed output
//! forms of time (SPEC §4 milliseconds, §5 RFC 3339 with 9 fraction digits).
//!
//! Owns: [`TzSpec`] (`--tz`), [`parse_timestamp`] (one field value → i64
//! nanoseconds since the Unix epoch, UTC), [`DurationUnit`],
//! [`unit_from_name`], [`parse_duration`], [`parse_cli_duration`],
//! [`format_rfc3339_ns`] and [`ns_to_ms`].
//!
//! [`parse_timestamp`] and [`parse_duration`] run once per log line, so their
//! common forms are parsed by hand on bytes without allocating: RFC 3339 /
//! `YYYY-MM-DD HH:MM:SS[.frac]` by civil-date arithmetic (Howard Hinnant's
//! `days_from_civil`), epoch numbers and durations as exact decimals (never
//! through `f64`). chrono is used only for IANA and local zones,
//! `--time-format`, and two rare fallback forms (RFC 2822, the nginx/Apache
//! `$time_local` form).
//!
//! Choices where SPEC §1 is silent:
//! * A leap second (`:60`) is read as the first instant of the next minute
//!   (`23:59:60.5Z` = `00:00:00.5Z` of the next day), which is what chrono's
//!   own timestamp arithmetic gives.
//! * A fraction of more than 9 digits is truncated to nanoseconds; an epoch
//!   number's digits below its unit's nanosecond are truncated too.
//! * A date without a time (`2024-05-01`), like a time without a date, counts
//!   as absent; so do the placeholder words `- null none nil <nil> n/a
//!   unknown undefined` (any case). Negative epochs are bad.
//! * `--time-format` is tried first, and a value it does not match falls
//!   back to the built-in forms, so one run can mix an nginx log that needs
//!   the format with JSON logs in RFC 3339.
//! * Also accepted: `/` as the date separator (Go's `log` package writes
//!   `2024/05/01 10:00:00`), a space before the offset, `UTC`/`GMT` as an
//!   offset, a zone abbreviation after a numeric offset (Go's
//!   `+0000 UTC`), and an RFC 9557 `[Zone/Name]` suffix (ignored: the offset
//!   decides).

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};

use super::fields::word_at;

const NS_PER_SEC: i64 = 1_000_000_000;

/// [`str::trim`], with no scan when both ends are visible ASCII (the usual
/// case: a byte above space and below 0x80 is never whitespace).
#[inline]
pub(crate) fn trim(s: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|&b| b > b' ' && b < 0x80);
    if visible(s.as_bytes().first()) && visible(s.as_bytes().last()) {
        s
    } else {
        s.trim()
    }
}

/// A zone applied to timestamps that carry no offset (`--tz`, default UTC).
/// Timestamps with an offset in their text ignore it.
#[derive(Clone, Debug, PartialEq)]
pub enum TzSpec {
    /// Coordinated Universal Time: `UTC`, `Z` (any case). The default.
    Utc,
    /// The machine's local zone, as chrono's `Local` sees it (`TZ`, else
    /// `/etc/localtime`).
    Local,
    /// A fixed offset: `±HH:MM`, `±HHMM` or `±HH`.
    Fixed(FixedOffset),
    /// An IANA zone such as `Europe/Paris` (case-insensitive), with its DST
    /// rules.
    Named(chrono_tz::Tz),
}

impl TzSpec {
    /// Parses a `--tz` value: `UTC`/`utc`/`Z`, `local`, `+08:00`, `-0530`,
    /// `+08`, or an IANA name (`Europe/Paris`, matched case-insensitively).
    /// The error names the bad value and the accepted forms.
    pub fn parse(s: &str) -> Result<TzSpec, String> {
        let t = s.trim();
        let err = || {
            format!(
                "invalid time zone {s:?}: expected UTC, local, an offset such as +08:00, \
                 -0530 or +08, or an IANA name such as Europe/Paris"
            )
        };
        if t.eq_ignore_ascii_case("utc") || t.eq_ignore_ascii_case("z") {
            return Ok(TzSpec::Utc);
        }
        if t.eq_ignore_ascii_case("local") {
            return Ok(TzSpec::Local);
        }
        let b = t.as_bytes();
        if matches!(b.first(), Some(b'+' | b'-')) {
            return match parse_offset(b, 0) {
                Some((secs, used)) if used == b.len() => FixedOffset::east_opt(secs)
                    .map(TzSpec::Fixed)
                    .ok_or_else(err),
                _ => Err(err()),
            };
        }
        if let Ok(tz) = t.parse::<chrono_tz::Tz>() {
            return Ok(TzSpec::Named(tz));
        }
        chrono_tz::TZ_VARIANTS
            .iter()
            .find(|z| z.name().eq_ignore_ascii_case(t))
            .map(|z| TzSpec::Named(*z))
            .ok_or_else(err)
    }
}

impl FromStr for TzSpec {
    type Err = String;

    /// Same as [`TzSpec::parse`].
    fn from_str(s: &str) -> Result<TzSpec, String> {
        TzSpec::parse(s)
    }
}

impl fmt::Display for TzSpec {
    /// The canonical spelling, as echoed in the report's `options.tz`:
    /// `UTC`, `local`, `+HH:MM`, or the IANA name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TzSpec::Utc => f.write_str("UTC"),
            TzSpec::Local => f.write_str("local"),
            TzSpec::Fixed(o) => {
                let secs = o.local_minus_utc();
                let sign = if secs < 0 { '-' } else { '+' };
                let a = secs.unsigned_abs();
                write!(f, "{sign}{:02}:{:02}", a / 3600, a / 60 % 60)
            }
            TzSpec::Named(z) => f.write_str(z.name()),
        }
    }
}

/// Why a timestamp field gave no time; each maps to a skip reason of SPEC §1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsError {
    /// No usable time: empty, a time without a date, a date without a time,
    /// or a placeholder word (`-`, `null`, `none`, …). Skipped as
    /// `no_timestamp`; a field lookup may fall through to the next name.
    Absent,
    /// A value that is meant as a time but cannot be one: unparseable, out of
    /// the i64-nanosecond range (before 1677 or after 2262), an invalid date,
    /// a negative epoch, or a local time in a DST gap. Skipped as
    /// `bad_timestamp`.
    Bad,
}

impl TsError {
    /// The skip reason's name in the report (`no_timestamp`, `bad_timestamp`).
    pub fn reason(self) -> &'static str {
        match self {
            TsError::Absent => "no_timestamp",
            TsError::Bad => "bad_timestamp",
        }
    }
}

impl fmt::Display for TsError {
    /// Writes [`TsError::reason`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// Checks a `--time-format` string up front, so a typo is one usage error
/// rather than every line becoming `bad_timestamp`. The error names the
/// format.
pub fn validate_time_format(fmt: &str) -> Result<(), String> {
    if fmt.is_empty() || StrftimeItems::new(fmt).any(|i| matches!(i, Item::Error)) {
        Err(format!(
            "invalid --time-format {fmt:?}: not a chrono strftime format"
        ))
    } else {
        Ok(())
    }
}

/// Parses one timestamp field into nanoseconds since the Unix epoch, UTC.
///
/// `text` is the field's text (for a JSON number, its literal text; a
/// numeric string is treated the same). Accepted without `time_format`:
/// RFC 3339 / ISO 8601 with `T` or a space, seconds optional, `.` or `,`
/// before a fraction of any length (truncated to ns), offsets `Z ±HH:MM
/// ±HHMM ±HH` or none (then `tz` applies; an ambiguous local time takes the
/// earlier instant, a nonexistent one is [`TsError::Bad`]); epoch numbers
/// whose integer part picks the unit (below 1e11 seconds, 1e14 ms, 1e17 µs,
/// else ns), fraction and exponent allowed, computed exactly from the
/// decimal text. `time_format` (`--time-format`, a chrono strftime format;
/// without an offset `tz` applies) is tried first; a value it does not match
/// falls back to the built-in forms.
pub fn parse_timestamp(text: &str, tz: &TzSpec, time_format: Option<&str>) -> Result<i64, TsError> {
    let t = trim(text);
    let b = t.as_bytes();
    if b.is_empty() {
        return Err(TsError::Absent);
    }
    if let Some(fmt) = time_format
        && let Some(r) = parse_with_format(t, fmt, tz)
    {
        return r;
    }
    if b.len() >= 10
        && b.first().is_some_and(u8::is_ascii_digit)
        && matches!(b.get(4), Some(b'-' | b'/'))
    {
        if let Some(ns) = same_minute(b, tz) {
            return ns.ok_or(TsError::Bad);
        }
        return match scan_datetime(b) {
            Scan::Ok(c, Some(off)) => civil_to_ns(&c, off).ok_or(TsError::Bad),
            Scan::Ok(c, None) => apply_zone(&c, tz),
            Scan::DateOnly => Err(TsError::Absent),
            Scan::Bad => Err(TsError::Bad),
        };
    }
    if let Some(r) = parse_epoch(b) {
        return r;
    }
    if looks_like_time_only(b) || is_placeholder(t) {
        return Err(TsError::Absent);
    }
    parse_fallback(t).ok_or(TsError::Bad)
}

/// A calendar date and wall-clock time as read from the text, ranges checked.
#[derive(Clone, Copy, Debug)]
struct Civil {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    nanos: u32,
}

/// What the date-time fast path made of a value that starts like a date.
enum Scan {
    /// A date-time, with its offset in seconds east of UTC when it has one.
    Ok(Civil, Option<i32>),
    /// A valid date and nothing else: [`TsError::Absent`].
    DateOnly,
    /// Anything else: [`TsError::Bad`].
    Bad,
}

fn digit(b: &[u8], i: usize) -> Option<u32> {
    match b.get(i) {
        Some(c) if c.is_ascii_digit() => Some(u32::from(c - b'0')),
        _ => None,
    }
}

fn two_digits(b: &[u8], i: usize) -> Option<u32> {
    Some(digit(b, i)? * 10 + digit(b, i + 1)?)
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard
/// Hinnant, "chrono-Compatible Low-Level Date Algorithms").
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    // yoe is in [0, 399], so its cast is lossless; unsigned arithmetic (and
    // for the usual non-negative years, an unsigned division) is cheaper.
    let (era, yoe) = match u64::try_from(y) {
        Ok(u) => ((u / 400) as i64, (u % 400) as u32),
        Err(_) => (y.div_euclid(400), y.rem_euclid(400) as u32),
    };
    let mp = (m + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + d - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + i64::from(doe) - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    // The casts are lossless: d is in [1, 31] and m in [1, 12].
    (y, m as u32, d as u32)
}

/// Reads `±HH`, `±HHMM` or `±HH:MM` at `i`: (seconds east, bytes used).
fn parse_offset(b: &[u8], i: usize) -> Option<(i32, usize)> {
    let sign = match b.get(i) {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return None,
    };
    let hh = two_digits(b, i + 1)?;
    let (mm, used) = if b.get(i + 3) == Some(&b':') {
        (two_digits(b, i + 4)?, 6)
    } else if let Some(mm) = two_digits(b, i + 3) {
        (mm, 5)
    } else {
        (0, 3)
    };
    if hh > 23 || mm > 59 {
        return None;
    }
    // hh <= 23 and mm <= 59, so this fits an i32.
    Some((sign * (hh * 3600 + mm * 60) as i32, used))
}

/// The hand-written fast path for `YYYY-MM-DD[T ]HH:MM[:SS][.frac][offset]`
/// (also `/` between the date's parts). Called only when byte 4 is `-`/`/`.
fn scan_datetime(b: &[u8]) -> Scan {
    scan_datetime_fixed(b)
        .or_else(|| scan_datetime_opt(b))
        .unwrap_or(Scan::Bad)
}

/// Powers of ten, to scale a fraction of fewer than nine digits to ns.
const POW10: [u32; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// The fraction of a second whose digits start at `start` (after `.` or
/// `,`): nanoseconds (digits past the ninth truncated) and the index after
/// the last digit; `None` without a digit. Up to eight digits are read at
/// once, from the eight bytes at `start` or, near the end of `b`, from its
/// last eight shifted.
fn fraction(b: &[u8], start: usize) -> Option<(u32, usize)> {
    let word = match word_at(b, start) {
        Some(w) => Some(w),
        None => {
            let k = b.len().saturating_sub(8);
            word_at(b, k)
                .zip(u32::try_from(start.saturating_sub(k)).ok())
                .map(|(w, shift)| w.checked_shr(8 * shift).unwrap_or(0))
        }
    };
    let (mut i, mut nanos) = match word {
        Some(w) => {
            let (n, v) = leading_digits(w);
            (start + n, v)
        }
        // Fewer than eight bytes in all: digit by digit.
        None => (start, 0),
    };
    // A ninth digit counts; more are truncated.
    while let Some(d) = digit(b, i) {
        if i - start < 9 {
            nanos = nanos * 10 + d;
        }
        i += 1;
    }
    let n = i - start;
    if n == 0 {
        return None;
    }
    Some((
        nanos * POW10.get(9usize.saturating_sub(n)).copied().unwrap_or(1),
        i,
    ))
}

/// The number of ASCII digits at the start of `w` (its low bytes first; 0
/// to 8) and their value, eight at a time (no loop, no branch).
#[inline(always)]
fn leading_digits(w: u64) -> (usize, u32) {
    const LOW: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    // A digit has high nibble 3 and a low nibble below 10 (adding 6 does not
    // carry out of it); no sum crosses a byte. Non-digits are non-zero here.
    let other = ((w & HIGH) ^ 0x3030_3030_3030_3030) | (((w & LOW) + 0x0606_0606_0606_0606) & HIGH);
    // The high bit of each non-zero byte, exactly (no borrow across bytes).
    let nonzero = (((other & LOW7) + LOW7) | other) & !LOW7;
    let n = (nonzero.trailing_zeros() / 8) as usize;
    if n == 0 {
        return (0, 0);
    }
    // The n digits moved to the top, zeros (leading zero digits) below,
    // then summed pairwise: 1-digit lanes to 2, 4, 8 digits.
    let d = (w & LOW) << (8 * (8 - n));
    let d = (d * 10 + (d >> 8)) & 0x00FF_00FF_00FF_00FF;
    let d = (d * 100 + (d >> 16)) & 0x0000_FFFF_0000_FFFF;
    let d = (d * 10_000 + (d >> 32)) & 0xFFFF_FFFF;
    // Eight digits are below 10^8: the cast is lossless.
    (n, d as u32)
}

/// The bytes of `w` selected by `digits` (0xFF per byte) read as decimal
/// digits, each byte then holding ten times itself plus the next byte (so a
/// two-digit field's value sits at its first byte); None exactly when a
/// selected byte is not an ASCII digit.
#[inline(always)]
fn pair_values(w: u64, digits: u64) -> Option<u64> {
    let x = (w ^ 0x3030_3030_3030_3030) & digits;
    // A byte below 0x80 reaches 0x80 when 0x76 is added iff it is 10 or
    // more; only a byte of 0x8A or more (itself caught) carries.
    if ((x.wrapping_add(0x7676_7676_7676_7676) | x) & digits & 0x8080_8080_8080_8080) != 0 {
        return None;
    }
    // Each byte is at most 9: times ten is at most 90, plus the next at
    // most 99, so no byte carries into the next.
    Some(x * 10 + (x >> 8))
}

/// The shape most logs write, `YYYY-MM-DD[Tt ]HH:MM:SS[.,frac]` then
/// nothing, `Z` or `±HH:MM`, read at fixed positions. None for anything else,
/// including out-of-range fields: [`scan_datetime_opt`] then decides, so the
/// result is always the same as its.
#[inline]
fn scan_datetime_fixed(b: &[u8]) -> Option<Scan> {
    // Two words cover the fields: `YYYY-MM-` (bytes 0..8) and `HH:MM:SS`
    // (11..19); the day is bytes 8 and 9. Checked and converted a word at a
    // time instead of a byte at a time.
    let (date, time) = (word_at(b, 0)?, word_at(b, 11)?);
    // Separators: `-` at 4 and 7; `:` at 13 and 16 (2 and 5 of `time`).
    if date & 0xFF00_00FF_0000_0000 != 0x2D00_002D_0000_0000
        || time & 0x0000_FF00_00FF_0000 != 0x0000_3A00_003A_0000
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
    {
        return None;
    }
    let date = pair_values(date, 0x00FF_FF00_FFFF_FFFF)?;
    let time = pair_values(time, 0xFFFF_00FF_FF00_FFFF)?;
    let (d1, d2) = (b.get(8)?.wrapping_sub(b'0'), b.get(9)?.wrapping_sub(b'0'));
    if d1 > 9 || d2 > 9 {
        return None;
    }
    let byte = |w: u64, k: u32| (w >> (8 * k)) as u8 as u32;
    // At most 9999: the cast is lossless.
    let year = (byte(date, 0) * 100 + byte(date, 2)) as i32;
    let (month, day) = (byte(date, 5), u32::from(d1) * 10 + u32::from(d2));
    let (hour, min, sec) = (byte(time, 0), byte(time, 3), byte(time, 6));
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return None;
    }
    let (nanos, offset) = fixed_tail(b)?;
    let civil = Civil {
        year,
        month,
        day,
        hour,
        min,
        sec,
        nanos,
    };
    remember_minute(b, &civil);
    Some(Scan::Ok(civil, offset))
}

/// What follows the seconds of the fixed form (from byte 19): an optional
/// fraction, then nothing, `Z` or `±HH:MM`. (nanoseconds, offset in seconds
/// east when there is one); `None` for anything else.
#[inline]
fn fixed_tail(b: &[u8]) -> Option<(u32, Option<i32>)> {
    let mut i = 19;
    let mut nanos = 0;
    if matches!(b.get(i), Some(b'.' | b',')) {
        (nanos, i) = fraction(b, i + 1)?;
    }
    let offset = match b.get(i..)? {
        [] => None,
        [b'Z' | b'z'] => Some(0),
        &[sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| {
                let (a, b) = (a.wrapping_sub(b'0'), b.wrapping_sub(b'0'));
                (a <= 9 && b <= 9).then(|| u32::from(a) * 10 + u32::from(b))
            };
            let (hh, mm) = (two(h1, h2)?, two(m1, m2)?);
            if hh > 23 || mm > 59 {
                return None;
            }
            // hh <= 23 and mm <= 59, so this fits an i32.
            let secs = (hh * 3600 + mm * 60) as i32;
            Some(if sign == b'-' { -secs } else { secs })
        }
        _ => return None,
    };
    Some((nanos, offset))
}

thread_local! {
    /// The minute of the last fixed-form timestamp read on this thread: its
    /// first 16 bytes (`YYYY-MM-DDTHH:MM`) and that minute's start in
    /// seconds since the epoch, as written (before any offset). Lines of a
    /// log mostly share their minute with the line before.
    static LAST_MINUTE: Cell<Option<([u8; 16], i64)>> = const { Cell::new(None) };
}

/// Remembers the minute of a timestamp that the fixed form read as `c`.
#[inline]
fn remember_minute(b: &[u8], c: &Civil) {
    if let Some(prefix) = b.get(..16).and_then(|p| <[u8; 16]>::try_from(p).ok()) {
        let days = days_from_civil(i64::from(c.year), c.month, c.day);
        let secs = days * 86_400 + i64::from(c.hour * 3600 + c.min * 60);
        LAST_MINUTE.with(|m| m.set(Some((prefix, secs))));
    }
}

/// A fixed-form timestamp in the same minute as the last one read on this
/// thread: only its seconds, fraction and zone are read, which gives what
/// [`scan_datetime_fixed`] then [`civil_to_ns`] give. `None` when it is not
/// such a timestamp (or its zone comes from a named or local `tz`); then the
/// full path decides. `Some(None)` when it overflows.
#[inline]
fn same_minute(b: &[u8], tz: &TzSpec) -> Option<Option<i64>> {
    let prefix = <[u8; 16]>::try_from(b.get(..16)?).ok()?;
    let (last, minute) = LAST_MINUTE.with(Cell::get)?;
    if prefix != last || b.get(16) != Some(&b':') {
        return None;
    }
    let sec = digit(b, 17)? * 10 + digit(b, 18)?;
    if sec > 60 {
        return None;
    }
    let (nanos, offset) = fixed_tail(b)?;
    let offset = match (offset, tz) {
        (Some(o), _) => o,
        (None, TzSpec::Utc) => 0,
        (None, TzSpec::Fixed(o)) => o.local_minus_utc(),
        (None, TzSpec::Local | TzSpec::Named(_)) => return None,
    };
    let secs = minute + i64::from(sec) - i64::from(offset);
    // As in civil_to_ns: exact in i64 unless near its ends, then in i128.
    let ns = i128::from(secs) * i128::from(NS_PER_SEC) + i128::from(nanos);
    Some(i64::try_from(ns).ok())
}

fn scan_datetime_opt(b: &[u8]) -> Option<Scan> {
    let year = (two_digits(b, 0)? * 100 + two_digits(b, 2)?) as i32;
    let dsep = *b.get(4)?;
    let month = two_digits(b, 5)?;
    let day = two_digits(b, 8)?;
    if b.get(7) != Some(&dsep) || !(1..=12).contains(&month) || day == 0 {
        return None;
    }
    if day > days_in_month(year, month) {
        return None;
    }
    if b.len() == 10 {
        return Some(Scan::DateOnly);
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = two_digits(b, 11)?;
    if b.get(13) != Some(&b':') {
        return None;
    }
    let min = two_digits(b, 14)?;
    let mut i = 16;
    let mut sec = 0;
    if b.get(i) == Some(&b':') {
        sec = two_digits(b, i + 1)?;
        i += 3;
    }
    let mut nanos = 0;
    if matches!(b.get(i), Some(b'.' | b',')) {
        (nanos, i) = fraction(b, i + 1)?;
    }
    if hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let civil = Civil {
        year,
        month,
        day,
        hour,
        min,
        sec,
        nanos,
    };
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    let offset = match b.get(i) {
        None => return Some(Scan::Ok(civil, None)),
        Some(b'Z' | b'z') => {
            i += 1;
            0
        }
        Some(b'+' | b'-') => {
            let (off, used) = parse_offset(b, i)?;
            i += used;
            // A zone abbreviation after a numeric offset, as Go writes it.
            if b.get(i) == Some(&b' ') {
                let n = b
                    .get(i + 1..)?
                    .iter()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .count();
                if n > 0 {
                    i += 1 + n;
                }
            }
            off
        }
        Some(_) => {
            let word = b.get(i..i + 3)?;
            if word.eq_ignore_ascii_case(b"UTC") || word.eq_ignore_ascii_case(b"GMT") {
                i += 3;
                0
            } else {
                return None;
            }
        }
    };
    // An RFC 9557 zone suffix such as `[Europe/Paris]`: the offset decides.
    if b.get(i) == Some(&b'[') && b.last() == Some(&b']') {
        i = b.len();
    }
    (i == b.len()).then_some(Scan::Ok(civil, Some(offset)))
}

/// The instant of `c` read at a fixed offset, or None outside i64 ns.
fn civil_to_ns(c: &Civil, offset_secs: i32) -> Option<i64> {
    let days = days_from_civil(i64::from(c.year), c.month, c.day);
    let secs =
        days * 86_400 + i64::from(c.hour * 3600 + c.min * 60 + c.sec) - i64::from(offset_secs);
    // Exact in i64 unless near its ends; then exact in i128.
    if let Some(ns) = secs
        .checked_mul(NS_PER_SEC)
        .and_then(|ns| ns.checked_add(i64::from(c.nanos)))
    {
        return Some(ns);
    }
    let ns = i128::from(secs) * i128::from(NS_PER_SEC) + i128::from(c.nanos);
    i64::try_from(ns).ok()
}

/// Reads an offset-less `c` in `tz`.
fn apply_zone(c: &Civil, tz: &TzSpec) -> Result<i64, TsError> {
    match tz {
        TzSpec::Utc => civil_to_ns(c, 0).ok_or(TsError::Bad),
        TzSpec::Fixed(o) => civil_to_ns(c, o.local_minus_utc()).ok_or(TsError::Bad),
        TzSpec::Local | TzSpec::Named(_) => {
            // The wall time as if it were UTC, seconds and nanos kept apart so
            // that a wall time just outside the i64 range still converts.
            let days = days_from_civil(i64::from(c.year), c.month, c.day);
            let secs = days * 86_400 + i64::from(c.hour * 3600 + c.min * 60 + c.sec);
            let naive = DateTime::<Utc>::from_timestamp(secs, c.nanos)
                .ok_or(TsError::Bad)?
                .naive_utc();
            naive_in_zone(&naive, tz)
        }
    }
}

/// Reads a wall-clock time in `tz`: the earlier instant when ambiguous,
/// [`TsError::Bad`] in a gap or outside i64 ns.
fn naive_in_zone(naive: &NaiveDateTime, tz: &TzSpec) -> Result<i64, TsError> {
    let ns = match tz {
        TzSpec::Utc => naive.and_utc().timestamp_nanos_opt(),
        TzSpec::Fixed(o) => o
            .from_local_datetime(naive)
            .earliest()
            .and_then(|d| d.timestamp_nanos_opt()),
        TzSpec::Local => chrono::Local
            .from_local_datetime(naive)
            .earliest()
            .and_then(|d| d.timestamp_nanos_opt()),
        TzSpec::Named(z) => z
            .from_local_datetime(naive)
            .earliest()
            .and_then(|d| d.timestamp_nanos_opt()),
    };
    ns.ok_or(TsError::Bad)
}

/// `--time-format`: None when the text does not match the format.
fn parse_with_format(t: &str, fmt: &str, tz: &TzSpec) -> Option<Result<i64, TsError>> {
    let mut p = Parsed::new();
    chrono::format::parse(&mut p, t, StrftimeItems::new(fmt)).ok()?;
    if p.timestamp().is_some() {
        let r = p
            .to_datetime_with_timezone(&Utc)
            .ok()
            .and_then(|d| d.timestamp_nanos_opt());
        return Some(r.ok_or(TsError::Bad));
    }
    let has_date = p.year().is_some()
        || p.year_mod_100().is_some()
        || p.isoyear().is_some()
        || p.isoyear_mod_100().is_some()
        || p.month().is_some()
        || p.day().is_some()
        || p.ordinal().is_some()
        || p.isoweek().is_some()
        || p.week_from_mon().is_some()
        || p.week_from_sun().is_some();
    if !has_date {
        return Some(Err(TsError::Absent));
    }
    if p.offset().is_some() {
        let r = p.to_datetime().ok().and_then(|d| d.timestamp_nanos_opt());
        return Some(r.ok_or(TsError::Bad));
    }
    Some(match p.to_naive_datetime_with_offset(0) {
        Ok(naive) => naive_in_zone(&naive, tz),
        Err(_) => Err(TsError::Bad),
    })
}

/// Digit `i` of a mantissa written as `int` then `frac` (0 outside it).
fn mantissa_digit(int: &[u8], frac: &[u8], i: i64) -> u64 {
    let Ok(i) = usize::try_from(i) else {
        return 0;
    };
    let c = if i < int.len() {
        int.get(i)
    } else {
        frac.get(i - int.len())
    };
    c.map_or(0, |c| u64::from(c.wrapping_sub(b'0')))
}

/// An epoch number (`-?D*[.D*][eE[+-]D+]`, at least one digit): None when the
/// text is not one.
fn parse_epoch(b: &[u8]) -> Option<Result<i64, TsError>> {
    let negative = b.first() == Some(&b'-');
    let rest = if negative { b.get(1..)? } else { b };
    let int_len = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    let int = rest.get(..int_len)?;
    let mut i = int_len;
    let mut frac: &[u8] = &[];
    if rest.get(i) == Some(&b'.') {
        let n = rest
            .get(i + 1..)?
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        frac = rest.get(i + 1..i + 1 + n)?;
        i += 1 + n;
    }
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut exp: i64 = 0;
    if matches!(rest.get(i), Some(b'e' | b'E')) {
        i += 1;
        let exp_negative = match rest.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while let Some(d) = digit(rest, i) {
            exp = (exp * 10 + i64::from(d)).min(1_000_000);
            i += 1;
        }
        if i == start {
            return None;
        }
        if exp_negative {
            exp = -exp;
        }
    }
    if i != rest.len() {
        return None;
    }
    if negative {
        return Some(Err(TsError::Bad));
    }
    if exp == 0 {
        // The common case, read straight from the text.
        let first = int.iter().position(|&c| c != b'0').unwrap_or(int.len());
        let sig = int.get(first..)?;
        if sig.len() > 19 {
            return Some(Err(TsError::Bad));
        }
        let whole = sig
            .iter()
            .fold(0u64, |acc, &c| acc * 10 + u64::from(c - b'0'));
        let frac_digit = |k: usize| frac.get(k).map_or(0, |&c| u64::from(c - b'0'));
        return Some(epoch_ns(whole, frac_digit));
    }
    // value = 0.d0 d1 d2 … × 10^point, with leading zeros skipped.
    let n = (int.len() + frac.len()) as i64;
    let zeros = (0..n)
        .take_while(|&k| mantissa_digit(int, frac, k) == 0)
        .count() as i64;
    if zeros == n {
        return Some(Ok(0));
    }
    let point = int.len() as i64 + exp - zeros;
    let digit_at = |k: i64| mantissa_digit(int, frac, k + zeros);
    if point > 19 {
        return Some(Err(TsError::Bad));
    }
    let mut whole: u64 = 0;
    for k in 0..point.max(0) {
        whole = whole * 10 + digit_at(k);
    }
    Some(epoch_ns(whole, |k| digit_at(point + k as i64)))
}

/// Epoch nanoseconds from the integer part (at most 19 digits), whose
/// magnitude picks the unit, and the fraction's digits (`frac_digit(0)` is
/// the first after the point); digits below 1 ns are truncated.
fn epoch_ns(whole: u64, frac_digit: impl Fn(usize) -> u64) -> Result<i64, TsError> {
    let scale: u32 = match whole {
        0..100_000_000_000 => 9,
        100_000_000_000..100_000_000_000_000 => 6,
        100_000_000_000_000..100_000_000_000_000_000 => 3,
        _ => 0,
    };
    let sub = (0..scale as usize).fold(0u64, |acc, k| acc * 10 + frac_digit(k));
    let ns = u128::from(whole) * 10u128.pow(scale) + u128::from(sub);
    i64::try_from(ns).map_err(|_| TsError::Bad)
}

/// `H:MM…` or `HH:MM…`: a time without a date.
fn looks_like_time_only(b: &[u8]) -> bool {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    (n == 1 || n == 2) && b.get(n) == Some(&b':') && digit(b, n + 1).is_some()
}

fn is_placeholder(t: &str) -> bool {
    [
        "-",
        "null",
        "none",
        "nil",
        "<nil>",
        "n/a",
        "unknown",
        "undefined",
    ]
    .iter()
    .any(|p| t.eq_ignore_ascii_case(p))
}

/// Rare forms left to chrono: RFC 2822 and the nginx/Apache `$time_local`
/// form `01/May/2024:10:00:00 +0000`.
fn parse_fallback(t: &str) -> Option<i64> {
    DateTime::parse_from_rfc2822(t)
        .or_else(|_| DateTime::parse_from_str(t, "%d/%b/%Y:%H:%M:%S%.f %z"))
        .ok()?
        .timestamp_nanos_opt()
}

/// A duration unit (`--duration-unit`, a field-name suffix). SPEC §1's
/// default, when nothing names a unit, is [`DurationUnit::Ms`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurationUnit {
    /// Seconds.
    S,
    /// Milliseconds (the default).
    Ms,
    /// Microseconds.
    Us,
    /// Nanoseconds.
    Ns,
}

impl DurationUnit {
    /// Parses a unit name, ASCII case-insensitively: `s`, `ms`, `us`, `µs`
    /// (micro sign or Greek mu), `ns`, and the long forms `sec(s)`,
    /// `seconds`, `msec`, `millis`, `milliseconds`, `usec`, `micros`,
    /// `microseconds`, `nsec`, `nanos`, `nanoseconds`.
    pub fn parse(s: &str) -> Option<DurationUnit> {
        let s = s.trim();
        let is = |names: &[&str]| names.iter().any(|n| s.eq_ignore_ascii_case(n));
        if is(&["s", "sec", "secs", "seconds"]) {
            Some(DurationUnit::S)
        } else if is(&["ms", "msec", "millis", "milliseconds"]) {
            Some(DurationUnit::Ms)
        } else if is(&["us", "µs", "μs", "usec", "micros", "microseconds"]) {
            Some(DurationUnit::Us)
        } else if is(&["ns", "nsec", "nanos", "nanoseconds"]) {
            Some(DurationUnit::Ns)
        } else {
            None
        }
    }

    /// Nanoseconds in one of this unit.
    pub fn ns(self) -> i64 {
        match self {
            DurationUnit::S => NS_PER_SEC,
            DurationUnit::Ms => 1_000_000,
            DurationUnit::Us => 1_000,
            DurationUnit::Ns => 1,
        }
    }
}

impl FromStr for DurationUnit {
    type Err = String;

    /// [`DurationUnit::parse`], with an error naming the bad value.
    fn from_str(s: &str) -> Result<DurationUnit, String> {
        DurationUnit::parse(s)
            .ok_or_else(|| format!("invalid duration unit {s:?}: expected s, ms, us or ns"))
    }
}

impl fmt::Display for DurationUnit {
    /// The short name: `s`, `ms`, `us`, `ns`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DurationUnit::S => "s",
            DurationUnit::Ms => "ms",
            DurationUnit::Us => "us",
            DurationUnit::Ns => "ns",
        })
    }
}

/// The unit implied by a field or regex group name's suffix (SPEC §1): after
/// `_`, case-insensitively, `s ms us ns` (and `sec secs seconds msec millis
/// milliseconds usec micros microseconds nsec nanos nanoseconds`); or
/// camelCase after a lower-case letter or digit, `Sec Ms Us Ns` (and `MS US
/// NS Secs Seconds Msec Millis Usec Micros Nsec Nanos`). A dotted path looks
/// at its last part. `elapsed_ms`, `durationUs`, `took_ns`, `latencySec`
/// have units; `duration`, `response_time` and `status` do not.
pub fn unit_from_name(name: &str) -> Option<DurationUnit> {
    let name = name.rsplit('.').next().unwrap_or(name);
    if let Some((prefix, suffix)) = name.rsplit_once('_')
        && !prefix.is_empty()
        && let Some(unit) = DurationUnit::parse(suffix)
        && suffix == suffix.trim()
    {
        return Some(unit);
    }
    const CAMEL: [(&str, DurationUnit); 15] = [
        ("Sec", DurationUnit::S),
        ("Secs", DurationUnit::S),
        ("Seconds", DurationUnit::S),
        ("Ms", DurationUnit::Ms),
        ("MS", DurationUnit::Ms),
        ("Msec", DurationUnit::Ms),
        ("Millis", DurationUnit::Ms),
        ("Us", DurationUnit::Us),
        ("US", DurationUnit::Us),
        ("Usec", DurationUnit::Us),
        ("Micros", DurationUnit::Us),
        ("Ns", DurationUnit::Ns),
        ("NS", DurationUnit::Ns),
        ("Nsec", DurationUnit::Ns),
        ("Nanos", DurationUnit::Ns),
    ];
    CAMEL.iter().find_map(|&(suffix, unit)| {
        let prefix = name.strip_suffix(suffix)?;
        let last = prefix.bytes().last()?;
        (last.is_ascii_lowercase() || last.is_ascii_digit()).then_some(unit)
    })
}

/// A non-negative decimal `mant × 10^exp`, read exactly.
#[derive(Clone, Copy, Debug)]
struct Decimal {
    mant: u128,
    exp: i32,
}

/// Significant digits kept; the rest only shift the exponent. 24 digits
/// times the largest unit (a day in ns, < 1e14) stays below u128::MAX.
const MAX_SIG_DIGITS: u32 = 24;

/// Reads `D*[.D*][eE[+-]D+]` (at least one digit) at `i`: the value and the
/// index after it.
fn scan_decimal(b: &[u8], mut i: usize) -> Option<(Decimal, usize)> {
    let mut mant: u128 = 0;
    let mut exp: i32 = 0;
    let mut sig: u32 = 0;
    let mut digits = 0;
    while let Some(d) = digit(b, i) {
        if sig < MAX_SIG_DIGITS {
            mant = mant * 10 + u128::from(d);
            sig += u32::from(mant > 0);
        } else {
            exp = exp.saturating_add(1);
        }
        digits += 1;
        i += 1;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while let Some(d) = digit(b, i) {
            if sig < MAX_SIG_DIGITS {
                mant = mant * 10 + u128::from(d);
                sig += u32::from(mant > 0);
                exp -= 1;
            }
            digits += 1;
            i += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        let negative = match b.get(j) {
            Some(b'-') => {
                j += 1;
                true
            }
            Some(b'+') => {
                j += 1;
                false
            }
            _ => false,
        };
        let start = j;
        let mut e: i32 = 0;
        while let Some(d) = digit(b, j) {
            e = (e * 10 + d as i32).min(100_000);
            j += 1;
        }
        if j > start {
            exp = exp.saturating_add(if negative { -e } else { e });
            i = j;
        }
    }
    Some((Decimal { mant, exp }, i))
}

/// `d × unit_ns` rounded to the nearest ns (half up), None beyond i64.
fn scale_round(d: Decimal, unit_ns: u128) -> Option<i64> {
    let num = d.mant.checked_mul(unit_ns)?;
    let q = if d.exp >= 0 {
        num.checked_mul(10u128.checked_pow(d.exp.unsigned_abs())?)?
    } else {
        let e = d.exp.unsigned_abs();
        if e > 38 {
            0 // num < 10^38, so the value is below 0.1 ns
        } else {
            let div = 10u128.pow(e);
            let (q, r) = (num / div, num % div);
            if r * 2 >= div { q + 1 } else { q }
        }
    };
    i64::try_from(q).ok()
}

/// Nanoseconds per unit token (Go's units plus a few spellings).
fn unit_token(b: &[u8], i: usize) -> Option<(u128, usize)> {
    const UNITS: [(&[u8], u128); 17] = [
        (b"ns", 1),
        (b"nsec", 1),
        (b"us", 1_000),
        ("µs".as_bytes(), 1_000),
        ("μs".as_bytes(), 1_000),
        (b"usec", 1_000),
        (b"ms", 1_000_000),
        (b"msec", 1_000_000),
        (b"s", 1_000_000_000),
        (b"sec", 1_000_000_000),
        (b"secs", 1_000_000_000),
        (b"m", 60_000_000_000),
        (b"min", 60_000_000_000),
        (b"mins", 60_000_000_000),
        (b"h", 3_600_000_000_000),
        (b"hr", 3_600_000_000_000),
        (b"d", 86_400_000_000_000),
    ];
    let rest = b.get(i..)?;
    UNITS.iter().find_map(|&(tok, ns)| {
        let after = rest.strip_prefix(tok)?;
        let ends = after
            .first()
            .is_none_or(|c| !c.is_ascii_alphabetic() && c.is_ascii());
        ends.then_some((ns, i + tok.len()))
    })
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    i
}

/// Parses a duration value into nanoseconds, rounded to the nearest (half
/// away from zero). The unit comes from the value itself — `12.5ms`,
/// `1.2s`, `350µs`, `350us`, `10ns`, Go forms such as `1m2.5s`, `1h2m`,
/// `2m` (also `d`, a space before a unit, `H:MM:SS[.frac]` clocks and ISO
/// 8601 `PT1.5S`) — else it is a bare number (fraction and exponent
/// allowed) in `default`, which the caller resolves from `--duration-unit`,
/// the name suffix, else ms. Negative, NaN, empty, garbage, or beyond i64
/// ns → None.
pub fn parse_duration(text: &str, default: DurationUnit) -> Option<i64> {
    let t = trim(text);
    let b = t.strip_prefix('+').unwrap_or(t).as_bytes();
    match b.first()? {
        b'P' | b'p' => return parse_iso_duration(b),
        _ if b.contains(&b':') => return parse_clock_duration(b),
        _ => {}
    }
    let mut i = 0;
    let mut total: i64 = 0;
    let mut parts = 0;
    loop {
        let (d, j) = scan_decimal(b, i)?;
        let j = skip_spaces(b, j);
        match unit_token(b, j) {
            Some((unit_ns, k)) => {
                total = total.checked_add(scale_round(d, unit_ns)?)?;
                parts += 1;
                i = skip_spaces(b, k);
                if i == b.len() {
                    return Some(total);
                }
            }
            None if parts == 0 && j == b.len() => {
                return scale_round(d, default.ns().unsigned_abs().into());
            }
            None => return None,
        }
    }
}

/// `H+:MM:SS[.frac]`, as .NET and PostgreSQL write intervals.
fn parse_clock_duration(b: &[u8]) -> Option<i64> {
    let h_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if h_len == 0 || h_len > 6 || b.get(h_len) != Some(&b':') {
        return None;
    }
    let mut hours: i64 = 0;
    for k in 0..h_len {
        hours = hours * 10 + i64::from(digit(b, k)?);
    }
    let min = two_digits(b, h_len + 1)?;
    if b.get(h_len + 3) != Some(&b':') || min > 59 {
        return None;
    }
    let sec = two_digits(b, h_len + 4)?;
    if sec > 59 {
        return None;
    }
    // Seconds with an optional `.`/`,` fraction, read exactly.
    let mut d = Decimal {
        mant: u128::from(sec),
        exp: 0,
    };
    let mut i = h_len + 6;
    if matches!(b.get(i), Some(b'.' | b',')) {
        i += 1;
        let start = i;
        while let Some(x) = digit(b, i) {
            if i - start < 12 {
                d.mant = d.mant * 10 + u128::from(x);
                d.exp -= 1;
            }
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    let whole = (hours * 3600 + i64::from(min) * 60).checked_mul(NS_PER_SEC)?;
    whole.checked_add(scale_round(d, 1_000_000_000)?)
}

/// ISO 8601 `P[nD][T[nH][nM][nS]]`, as Java's `Duration` prints itself.
fn parse_iso_duration(b: &[u8]) -> Option<i64> {
    let mut i = 1;
    let mut total: i64 = 0;
    let mut parts = 0;
    let mut in_time = false;
    while i < b.len() {
        if !in_time && matches!(b.get(i), Some(b'T' | b't')) {
            in_time = true;
            i += 1;
            continue;
        }
        let (d, j) = scan_decimal(b, i)?;
        let unit_ns: u128 = match (in_time, b.get(j)?.to_ascii_uppercase()) {
            (false, b'D') => 86_400_000_000_000,
            (true, b'H') => 3_600_000_000_000,
            (true, b'M') => 60_000_000_000,
            (true, b'S') => 1_000_000_000,
            _ => return None,
        };
        total = total.checked_add(scale_round(d, unit_ns)?)?;
        parts += 1;
        i = j + 1;
    }
    (parts > 0).then_some(total)
}

/// Parses a user-given duration for options such as `--max-gap 30s`,
/// `--skew-threshold 1ms`, `--min-latency 250ms`: a number with a unit
/// (`ns us µs ms s m h d`, Go forms such as `1m30s` allowed), a bare number
/// meaning milliseconds. The error names the bad value.
pub fn parse_cli_duration(s: &str) -> Result<i64, String> {
    parse_duration(s, DurationUnit::Ms).ok_or_else(|| {
        format!(
            "invalid duration {s:?}: expected a non-negative number with a unit \
             (us, ms, s, m, h), e.g. 250ms, 1.5s or 1m30s; a bare number means ms"
        )
    })
}

/// Formats ns since the epoch as UTC RFC 3339 with exactly 9 fraction
/// digits and `Z` (SPEC §5 `start`): `2024-05-01T10:00:00.015000000Z`.
/// Works for the whole i64 range (1677-09-21 … 2262-04-11).
pub fn format_rfc3339_ns(ns: i64) -> String {
    let secs = ns.div_euclid(NS_PER_SEC);
    let sub = ns.rem_euclid(NS_PER_SEC);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = String::with_capacity(30);
    push_digits(&mut out, y.unsigned_abs(), 4);
    out.push('-');
    push_digits(&mut out, u64::from(m), 2);
    out.push('-');
    push_digits(&mut out, u64::from(d), 2);
    out.push('T');
    push_digits(&mut out, sod.unsigned_abs() / 3600, 2);
    out.push(':');
    push_digits(&mut out, sod.unsigned_abs() / 60 % 60, 2);
    out.push(':');
    push_digits(&mut out, sod.unsigned_abs() % 60, 2);
    out.push('.');
    push_digits(&mut out, sub.unsigned_abs(), 9);
    out.push('Z');
    out
}

/// Appends the last `width` decimal digits of `value`, zero-padded.
fn push_digits(out: &mut String, value: u64, width: u32) {
    for k in (0..width).rev() {
        let digit = value / 10u64.pow(k) % 10;
        // digit < 10, so the cast is lossless.
        out.push(char::from(b'0' + digit as u8));
    }
}

/// Nanoseconds as JSON milliseconds (SPEC §4): rounded half-up to whole
/// microseconds (`floor((ns + 500) / 1000)`, so `-1500` ns → −1 µs), then
/// µs / 1000 as an f64, which serde_json writes in its shortest form:
/// 1 234 500 ns → 1.235, 350 000 → 0.35, −1 500 → −0.001.
pub fn ns_to_ms(ns: i64) -> f64 {
    let us = (i128::from(ns) + 500).div_euclid(1000);
    // |us| < 2^63 / 1000 < 2^53, so the cast to f64 is exact.
    us as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;
    use proptest::prelude::*;

    /// 2024-05-01T10:00:00Z (`date -u -d 2024-05-01T10:00:00Z +%s` = 1714557600).
    const T0: i64 = 1_714_557_600_000_000_000;
    const SEC: i64 = 1_000_000_000;
    const MS: i64 = 1_000_000;
    const HOUR: i64 = 3600 * SEC;

    fn utc(s: &str) -> Result<i64, TsError> {
        parse_timestamp(s, &TzSpec::Utc, None)
    }

    fn named(name: &str) -> TzSpec {
        TzSpec::Named(name.parse().unwrap())
    }

    #[test]
    fn offset_forms() {
        assert_eq!(utc("2024-05-01T10:00:00Z"), Ok(T0));
        assert_eq!(utc("2024-05-01T10:00:00z"), Ok(T0));
        assert_eq!(utc("2024-05-01T10:00:00+00:00"), Ok(T0));
        assert_eq!(utc("2024-05-01T10:00:00-00:00"), Ok(T0));
        assert_eq!(utc("2024-05-01T12:00:00+02:00"), Ok(T0));
        assert_eq!(utc("2024-05-01T12:00:00+0200"), Ok(T0));
        assert_eq!(utc("2024-05-01T18:00:00+08"), Ok(T0));
        assert_eq!(utc("2024-05-01T04:30:00-0530"), Ok(T0));
        assert_eq!(utc("2024-05-01T04:30:00-05:30"), Ok(T0));
        assert_eq!(utc("2024-05-01T02:00:00-08"), Ok(T0));
        // Extras: a space before the offset, Go's "+0000 UTC", UTC/GMT words,
        // an RFC 9557 zone suffix.
        assert_eq!(utc("2024-05-01 12:00:00 +0200"), Ok(T0));
        assert_eq!(utc("2024-05-01 10:00:00.5 +0000 UTC"), Ok(T0 + 500 * MS));
        assert_eq!(utc("2024-05-01 10:00:00 UTC"), Ok(T0));
        assert_eq!(utc("2024-05-01T10:00:00GMT"), Ok(T0));
        assert_eq!(utc("2024-05-01T12:00:00+02:00[Europe/Paris]"), Ok(T0));
        // The offset in the text wins over --tz.
        let paris = named("Europe/Paris");
        assert_eq!(
            parse_timestamp("2024-05-01T10:00:00Z", &paris, None),
            Ok(T0)
        );
        // Bad offsets.
        for s in [
            "2024-05-01T10:00:00+24:00",
            "2024-05-01T10:00:00+02:60",
            "2024-05-01T10:00:00+2",
            "2024-05-01T10:00:00+02:0",
            "2024-05-01T10:00:00+02:00:00",
            "2024-05-01T10:00:00Zjunk",
            "2024-05-01T10:00:00 PST8",
        ] {
            assert_eq!(utc(s), Err(TsError::Bad), "{s}");
        }
    }

    #[test]
    fn separators_and_seconds() {
        assert_eq!(utc("2024-05-01T10:00:00"), Ok(T0));
        assert_eq!(utc("2024-05-01t10:00:00"), Ok(T0));
        assert_eq!(utc("2024-05-01 10:00:00"), Ok(T0));
        assert_eq!(utc("  2024-05-01 10:00:00\r\n"), Ok(T0));
        assert_eq!(utc("2024/05/01 10:00:01"), Ok(T0 + SEC));
        assert_eq!(utc("2024-05-01T10:00Z"), Ok(T0));
        assert_eq!(utc("2024-05-01 10:01"), Ok(T0 + 60 * SEC));
        assert_eq!(utc("2024-05-01X10:00:00"), Err(TsError::Bad));
        assert_eq!(utc("2024-05/01 10:00:00"), Err(TsError::Bad));
        assert_eq!(utc("2024-05-01T10"), Err(TsError::Bad));
        assert_eq!(utc("2024-05-01T10:0"), Err(TsError::Bad));
        assert_eq!(utc("2024-05-01T10:00:0"), Err(TsError::Bad));
    }

    #[test]
    fn fractions() {
        assert_eq!(utc("2024-05-01 10:00:00,123"), Ok(T0 + 123 * MS));
        assert_eq!(utc("2024-05-01T10:00:00,5Z"), Ok(T0 + 500 * MS));
        let digits = "123456789";
        for n in 1..=9 {
            let s = format!("2024-05-01T10:00:00.{}Z", &digits[..n]);
            let frac: i64 = digits[..n].parse().unwrap();
            let expect = T0 + frac * 10i64.pow(9 - n as u32);
            assert_eq!(utc(&s), Ok(expect), "{s}");
        }
        assert_eq!(utc("2024-05-01T10:00:00.000000001Z"), Ok(T0 + 1));
        // More than 9 digits: truncated, not rounded.
        assert_eq!(
            utc("2024-05-01T10:00:00.1234567899999Z"),
            Ok(T0 + 123_456_789)
        );
        assert_eq!(utc("2024-05-01T10:00:00.Z"), Err(TsError::Bad));
        assert_eq!(utc("2024-05-01T10:00:00,"), Err(TsError::Bad));
    }

    #[test]
    fn calendar_ranges() {
        assert_eq!(utc("2024-02-29T00:00:00Z"), Ok(1_709_164_800 * SEC));
        assert_eq!(utc("2000-01-01T00:00:00Z"), Ok(946_684_800 * SEC));
        assert_eq!(utc("1900-01-01T00:00:00Z"), Ok(-2_208_988_800 * SEC));
        assert_eq!(utc("1969-12-31T23:59:59Z"), Ok(-SEC));
        assert!(utc("2000-02-29 00:00:00").is_ok());
        for s in [
            "2023-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-00-01T00:00:00Z",
            "2024-05-00T00:00:00Z",
            "2024-05-32T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T10:60:00Z",
            "2024-05-01T10:00:61Z",
            // Outside the i64 nanosecond range.
            "1677-01-01T00:00:00Z",
            "2263-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "0000-01-01T00:00:00Z",
        ] {
            assert_eq!(utc(s), Err(TsError::Bad), "{s}");
        }
        // The i64 edges themselves.
        assert_eq!(utc("2262-04-11T23:47:16.854775807Z"), Ok(i64::MAX));
        assert_eq!(utc("2262-04-11T23:47:16.854775808Z"), Err(TsError::Bad));
        assert_eq!(utc("1677-09-21T00:12:43.145224192Z"), Ok(i64::MIN));
        // A leap second is the first instant of the next minute.
        assert_eq!(utc("2016-12-31T23:59:60Z"), Ok(1_483_228_800 * SEC));
        assert_eq!(
            utc("2016-12-31T23:59:60.5Z"),
            Ok(1_483_228_800 * SEC + 500 * MS)
        );
    }

    #[test]
    fn epochs_by_magnitude() {
        assert_eq!(utc("1714557600"), Ok(T0));
        assert_eq!(utc("1714557600.123456789"), Ok(T0 + 123_456_789));
        assert_eq!(utc("1714557600.5"), Ok(T0 + 500 * MS));
        assert_eq!(utc("1714557600123"), Ok(T0 + 123 * MS));
        assert_eq!(utc("1714557600123.5"), Ok(T0 + 123 * MS + 500_000));
        assert_eq!(utc("1714557600123456"), Ok(T0 + 123_456_000));
        assert_eq!(utc("1714557600123456789"), Ok(T0 + 123_456_789));
        assert_eq!(utc("0"), Ok(0));
        // A bare year is a number, hence epoch seconds, as SPEC §1 says.
        assert_eq!(utc("2024"), Ok(2024 * SEC));
        assert_eq!(utc("0.5"), Ok(500 * MS));
        assert_eq!(utc(".25"), Ok(250 * MS));
        assert_eq!(utc("1e-5"), Ok(10_000));
        // The 1e11 boundary: just below is seconds (year 5138, out of range),
        // at 1e11 it is milliseconds (1973-03-03T09:46:40Z).
        assert_eq!(utc("99999999999"), Err(TsError::Bad));
        assert_eq!(utc("100000000000"), Ok(100_000_000 * SEC));
        assert_eq!(utc("9000000000"), Ok(9_000_000_000 * SEC));
        // Milliseconds run out of i64 ns at 2262 (9 223 372 036 854 ms).
        assert_eq!(utc("9223372036854"), Ok(9_223_372_036_854 * MS));
        assert_eq!(utc("9223372036855"), Err(TsError::Bad));
        assert_eq!(utc("99999999999999"), Err(TsError::Bad));
        assert_eq!(utc("100000000000000"), Ok(100_000_000_000_000_000));
        assert_eq!(utc("9223372036854775"), Ok(9_223_372_036_854_775_000));
        assert_eq!(utc("99999999999999999"), Err(TsError::Bad));
        assert_eq!(utc("100000000000000000"), Ok(100_000_000_000_000_000));
        assert_eq!(utc("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(utc("9223372036854775808"), Err(TsError::Bad));
        assert_eq!(utc("12345678901234567890123"), Err(TsError::Bad));
        // Exponent forms, as serde_json writes large floats.
        assert_eq!(utc("1.7145576E9"), Ok(T0));
        assert_eq!(utc("1.7145576e+9"), Ok(T0));
        assert_eq!(utc("1.714557600123e12"), Ok(T0 + 123 * MS));
        assert_eq!(utc("17145576000000e-4"), Ok(T0));
        assert_eq!(utc("1e400"), Err(TsError::Bad));
        assert_eq!(utc("1e-400"), Ok(0));
        // Leading zeros do not change the magnitude.
        assert_eq!(utc("0001714557600"), Ok(T0));
        // Negative epochs are bad; malformed numbers are not numbers.
        assert_eq!(utc("-5"), Err(TsError::Bad));
        assert_eq!(utc("-1714557600.5"), Err(TsError::Bad));
        assert_eq!(utc("1e"), Err(TsError::Bad));
        assert_eq!(utc("1.2.3"), Err(TsError::Bad));
        assert_eq!(utc("."), Err(TsError::Bad));
        assert_eq!(utc("+5"), Err(TsError::Bad));
        // --tz never applies to epochs.
        assert_eq!(
            parse_timestamp("1714557600", &named("Asia/Tokyo"), None),
            Ok(T0)
        );
    }

    #[test]
    fn absent_values() {
        for s in [
            "",
            "   ",
            "10:00:00.123",
            "10:00:00",
            "9:30",
            "10:00:00Z",
            "10:00:00 PM",
            "2024-05-01",
            "-",
            "null",
            "NULL",
            "none",
            "nil",
            "<nil>",
            "N/A",
            "unknown",
            "undefined",
        ] {
            assert_eq!(utc(s), Err(TsError::Absent), "{s:?}");
        }
    }

    #[test]
    fn garbage_is_bad() {
        for s in [
            "yesterday",
            "abc",
            "2024-05",
            "2024-5-1 10:00:00",
            "100:00:00",
            "1:",
            "01/May/2024",
            "2024-05-01T10:00:00\u{e9}",
            "\u{1F600}",
        ] {
            assert_eq!(utc(s), Err(TsError::Bad), "{s:?}");
        }
        assert_eq!(TsError::Absent.reason(), "no_timestamp");
        assert_eq!(TsError::Bad.to_string(), "bad_timestamp");
    }

    #[test]
    fn zones_for_offsetless_times() {
        let plus8 = TzSpec::Fixed(FixedOffset::east_opt(8 * 3600).unwrap());
        assert_eq!(parse_timestamp("2024-05-01 18:00:00", &plus8, None), Ok(T0));
        let minus0530 = TzSpec::parse("-05:30").unwrap();
        assert_eq!(
            parse_timestamp("2024-05-01 04:30:00", &minus0530, None),
            Ok(T0)
        );

        let paris = named("Europe/Paris");
        // Summer time: +02:00.
        assert_eq!(parse_timestamp("2024-05-01 12:00:00", &paris, None), Ok(T0));
        // Winter time: +01:00. 2024-01-15T10:00:00Z = 1705312800.
        assert_eq!(
            parse_timestamp("2024-01-15T11:00:00.25", &paris, None),
            Ok(1_705_312_800 * SEC + 250 * MS)
        );
        // DST gap: 02:00-03:00 on 2024-03-31 does not exist in Paris.
        assert_eq!(
            parse_timestamp("2024-03-31 02:30:00", &paris, None),
            Err(TsError::Bad)
        );
        // DST overlap: 02:30 on 2024-10-27 happens twice; the earlier is
        // +02:00, i.e. 00:30Z = 1729989000.
        assert_eq!(
            parse_timestamp("2024-10-27 02:30:00", &paris, None),
            Ok(1_729_989_000 * SEC)
        );
        // Whatever the machine's zone, Local agrees with chrono's Local.
        let naive =
            NaiveDateTime::parse_from_str("2024-05-01 10:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        let expect = chrono::Local
            .from_local_datetime(&naive)
            .earliest()
            .and_then(|d| d.timestamp_nanos_opt())
            .ok_or(TsError::Bad);
        assert_eq!(
            parse_timestamp("2024-05-01 10:00:00", &TzSpec::Local, None),
            expect
        );
        // A wall time just past the i64 range stays bad, not a panic.
        let tokyo = named("Asia/Tokyo");
        assert_eq!(
            parse_timestamp("2262-04-12 08:47:16", &tokyo, None),
            Ok(i64::MAX - 854_775_807)
        );
        assert_eq!(
            parse_timestamp("2262-04-12 23:00:00", &tokyo, None),
            Err(TsError::Bad)
        );
    }

    #[test]
    fn tz_spec_parse() {
        assert_eq!(TzSpec::parse("UTC"), Ok(TzSpec::Utc));
        assert_eq!(TzSpec::parse("utc"), Ok(TzSpec::Utc));
        assert_eq!(TzSpec::parse("Z"), Ok(TzSpec::Utc));
        assert_eq!(TzSpec::parse(" local "), Ok(TzSpec::Local));
        assert_eq!("LOCAL".parse::<TzSpec>(), Ok(TzSpec::Local));
        let fixed = |s| TzSpec::Fixed(FixedOffset::east_opt(s).unwrap());
        assert_eq!(TzSpec::parse("+08:00"), Ok(fixed(8 * 3600)));
        assert_eq!(TzSpec::parse("+08"), Ok(fixed(8 * 3600)));
        assert_eq!(TzSpec::parse("-0530"), Ok(fixed(-(5 * 3600 + 30 * 60))));
        assert_eq!(TzSpec::parse("Europe/Paris"), Ok(named("Europe/Paris")));
        assert_eq!(TzSpec::parse("europe/paris"), Ok(named("Europe/Paris")));
        assert_eq!(
            TzSpec::parse("America/New_York"),
            Ok(named("America/New_York"))
        );
        for bad in [
            "Mars/Olympus",
            "+25:00",
            "+08:60",
            "+8",
            "08:00",
            "",
            "+08:00x",
        ] {
            let err = TzSpec::parse(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        assert_eq!(TzSpec::Utc.to_string(), "UTC");
        assert_eq!(TzSpec::Local.to_string(), "local");
        assert_eq!(TzSpec::parse("-0530").unwrap().to_string(), "-05:30");
        assert_eq!(TzSpec::parse("+08").unwrap().to_string(), "+08:00");
        assert_eq!(named("Europe/Paris").to_string(), "Europe/Paris");
    }

    #[test]
    fn time_format_option() {
        let nginx = Some("%d/%b/%Y:%H:%M:%S %z");
        assert_eq!(
            parse_timestamp("01/May/2024:12:00:00 +0200", &TzSpec::Utc, nginx),
            Ok(T0)
        );
        // A format without an offset reads the wall time in --tz.
        let dotted = Some("%d.%m.%Y %H:%M:%S%.f");
        assert_eq!(
            parse_timestamp("01.05.2024 10:00:00", &TzSpec::Utc, dotted),
            Ok(T0)
        );
        assert_eq!(
            parse_timestamp("01.05.2024 12:00:00.015", &named("Europe/Paris"), dotted),
            Ok(T0 + 15 * MS)
        );
        assert_eq!(
            parse_timestamp("31.03.2024 02:30:00", &named("Europe/Paris"), dotted),
            Err(TsError::Bad)
        );
        // Matches the pattern but is no date.
        assert_eq!(
            parse_timestamp("31.04.2024 10:00:00", &TzSpec::Utc, dotted),
            Err(TsError::Bad)
        );
        // A time-only format gives no timestamp; a year-less one is bad.
        assert_eq!(
            parse_timestamp("10:00:00", &TzSpec::Utc, Some("%H:%M:%S")),
            Err(TsError::Absent)
        );
        assert_eq!(
            parse_timestamp("May 01 10:00:00", &TzSpec::Utc, Some("%b %d %H:%M:%S")),
            Err(TsError::Bad)
        );
        // Epoch seconds through a format are UTC.
        assert_eq!(
            parse_timestamp("1714557600", &named("Asia/Tokyo"), Some("%s")),
            Ok(T0)
        );
        // Values the format does not match fall back to the built-in forms.
        assert_eq!(
            parse_timestamp("2024-05-01T10:00:00Z", &TzSpec::Utc, nginx),
            Ok(T0)
        );
        assert_eq!(parse_timestamp("1714557600", &TzSpec::Utc, nginx), Ok(T0));
        assert_eq!(
            parse_timestamp("garbage", &TzSpec::Utc, nginx),
            Err(TsError::Bad)
        );
        assert_eq!(validate_time_format("%d/%b/%Y:%H:%M:%S %z"), Ok(()));
        assert!(
            validate_time_format("%Y-%Q")
                .unwrap_err()
                .contains("\"%Y-%Q\"")
        );
        assert!(validate_time_format("").is_err());
    }

    #[test]
    fn chrono_fallback_forms() {
        assert_eq!(utc("01/May/2024:12:00:00 +0200"), Ok(T0));
        assert_eq!(utc("Wed, 01 May 2024 10:00:00 +0000"), Ok(T0));
        assert_eq!(utc("Wed, 01 May 2024 12:00:00 +0200"), Ok(T0));
    }

    #[test]
    fn rfc3339_output() {
        assert_eq!(format_rfc3339_ns(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_rfc3339_ns(T0 + 15 * MS),
            "2024-05-01T10:00:00.015000000Z"
        );
        assert_eq!(
            format_rfc3339_ns(1_709_164_800 * SEC + 1),
            "2024-02-29T00:00:00.000000001Z"
        );
        assert_eq!(format_rfc3339_ns(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(
            format_rfc3339_ns(-2_208_988_800 * SEC),
            "1900-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            format_rfc3339_ns(i64::MIN),
            "1677-09-21T00:12:43.145224192Z"
        );
        assert_eq!(
            format_rfc3339_ns(i64::MAX),
            "2262-04-11T23:47:16.854775807Z"
        );
    }

    #[test]
    fn ms_rounding() {
        assert_eq!(ns_to_ms(1_234_500), 1.235);
        assert_eq!(ns_to_ms(1_234_499), 1.234);
        assert_eq!(ns_to_ms(350_000), 0.35);
        assert_eq!(ns_to_ms(12_500_000), 12.5);
        assert_eq!(ns_to_ms(62_500_000_000), 62500.0);
        assert_eq!(ns_to_ms(0), 0.0);
        assert_eq!(ns_to_ms(499), 0.0);
        assert_eq!(ns_to_ms(500), 0.001);
        assert_eq!(ns_to_ms(-1_500), -0.001);
        assert_eq!(ns_to_ms(-1_501), -0.002);
        assert_eq!(ns_to_ms(-500), 0.0);
        assert_eq!(ns_to_ms(-501), -0.001);
        assert_eq!(ns_to_ms(i64::MAX), 9_223_372_036_854.776);
        assert_eq!(ns_to_ms(i64::MIN), -9_223_372_036_854.775);
        // Example 16's mean: 63 723 584 500 ns / 7 = 9 103 369 214 ns.
        assert_eq!(ns_to_ms(9_103_369_214), 9103.369);
    }

    #[test]
    fn durations_from_example_16() {
        use DurationUnit::*;
        assert_eq!(parse_duration("12.5ms", Ms), Some(12_500_000));
        assert_eq!(parse_duration("1.2s", Ms), Some(1_200_000_000));
        assert_eq!(parse_duration("350µs", Ms), Some(350_000));
        assert_eq!(parse_duration("350μs", Ms), Some(350_000)); // Greek mu
        assert_eq!(parse_duration("350us", Ms), Some(350_000));
        assert_eq!(parse_duration("1m2.5s", Ms), Some(62_500_000_000));
        assert_eq!(parse_duration("7", Ms), Some(7_000_000));
        assert_eq!(parse_duration("2500", Us), Some(2_500_000));
        assert_eq!(parse_duration("1.2345ms", Ms), Some(1_234_500));
        assert_eq!(ns_to_ms(parse_duration("1.2345ms", Ms).unwrap()), 1.235);
    }

    #[test]
    fn duration_forms() {
        use DurationUnit::*;
        assert_eq!(parse_duration("10ns", Ms), Some(10));
        assert_eq!(parse_duration("1h2m", Ms), Some(3_720 * SEC));
        assert_eq!(parse_duration("2m", Ms), Some(120 * SEC));
        assert_eq!(parse_duration("1h0m0.001s", Ms), Some(HOUR + MS));
        assert_eq!(parse_duration("1.5h", Ms), Some(5_400 * SEC));
        assert_eq!(parse_duration("1d", Ms), Some(24 * HOUR));
        assert_eq!(parse_duration(".5s", Ms), Some(500 * MS));
        assert_eq!(parse_duration("5.s", Ms), Some(5 * SEC));
        assert_eq!(parse_duration("+5ms", Ms), Some(5 * MS));
        assert_eq!(parse_duration(" 12.5 ms ", Ms), Some(12_500_000));
        assert_eq!(parse_duration("1m 30s", Ms), Some(90 * SEC));
        assert_eq!(parse_duration("0", Ms), Some(0));
        assert_eq!(parse_duration("0.002", S), Some(2 * MS));
        assert_eq!(parse_duration("42", Ns), Some(42));
        assert_eq!(parse_duration("1.5e-3", S), Some(1_500_000));
        assert_eq!(parse_duration("1E3", Us), Some(MS));
        assert_eq!(parse_duration("2sec", Ms), Some(2 * SEC));
        assert_eq!(parse_duration("3msec", Ms), Some(3 * MS));
        // Rounding to the nearest ns, half up.
        assert_eq!(parse_duration("1.5ns", Ms), Some(2));
        assert_eq!(parse_duration("1.4999ns", Ms), Some(1));
        assert_eq!(parse_duration("0.0000005", Ms), Some(1));
        assert_eq!(parse_duration("0.0000004999", Ms), Some(0));
        assert_eq!(parse_duration("1.0000000004s", Ms), Some(SEC));
        // Exact decimals, no f64 drift.
        assert_eq!(parse_duration("0.1s", Ms), Some(100 * MS));
        assert_eq!(parse_duration("9223372036.854775807s", Ms), Some(i64::MAX));
        assert_eq!(parse_duration("9223372036.854775808s", Ms), None);
        // Clocks and ISO 8601.
        assert_eq!(parse_duration("00:00:01.5", Ms), Some(1_500 * MS));
        assert_eq!(parse_duration("1:02:03", Ms), Some(3_723 * SEC));
        assert_eq!(parse_duration("00:00:00,000123", Ms), Some(123_000));
        assert_eq!(parse_duration("PT0.012S", Ms), Some(12 * MS));
        assert_eq!(parse_duration("PT1H2M3S", Ms), Some(3_723 * SEC));
        assert_eq!(parse_duration("P1DT1S", Ms), Some(24 * HOUR + SEC));
        // Not durations.
        for bad in [
            "",
            "  ",
            "-5ms",
            "-1",
            "NaN",
            "nan",
            "inf",
            "abc",
            "12 apples",
            "ms",
            "1x",
            "1.2.3s",
            "1m30",
            "1 2",
            "5mss",
            "1e",
            "s5",
            "1h-2m",
            "00:60:00",
            "00:00:60",
            "1:2:3",
            "00:00:01.",
            "PT",
            "P1H",
            "PTS",
            "PT1X",
            "1e400s",
            "99999999999h",
            "12.5 ms extra",
        ] {
            assert_eq!(parse_duration(bad, Ms), None, "{bad:?}");
        }
    }

    #[test]
    fn duration_units() {
        use DurationUnit::*;
        assert_eq!(DurationUnit::parse("s"), Some(S));
        assert_eq!(DurationUnit::parse("ms"), Some(Ms));
        assert_eq!(DurationUnit::parse("us"), Some(Us));
        assert_eq!(DurationUnit::parse("µs"), Some(Us));
        assert_eq!(DurationUnit::parse("ns"), Some(Ns));
        assert_eq!(DurationUnit::parse("MS"), Some(Ms));
        assert_eq!(DurationUnit::parse("seconds"), Some(S));
        assert_eq!(DurationUnit::parse("m"), None);
        assert_eq!(DurationUnit::parse("h"), None);
        assert_eq!(DurationUnit::parse(""), None);
        assert!(
            "minutes"
                .parse::<DurationUnit>()
                .unwrap_err()
                .contains("\"minutes\"")
        );
        assert_eq!([S, Ms, Us, Ns].map(DurationUnit::ns), [SEC, MS, 1_000, 1]);
        assert_eq!(Us.to_string(), "us");
    }

    #[test]
    fn units_from_names() {
        use DurationUnit::*;
        for (name, unit) in [
            ("elapsed_ms", Some(Ms)),
            ("duration_s", Some(S)),
            ("took_ns", Some(Ns)),
            ("latency_us", Some(Us)),
            ("latency_µs", Some(Us)),
            ("DURATION_MS", Some(Ms)),
            ("request_duration_seconds", Some(S)),
            ("durationUs", Some(Us)),
            ("latencySec", Some(S)),
            ("durationMs", Some(Ms)),
            ("tookNs", Some(Ns)),
            ("durationMS", Some(Ms)),
            ("elapsedMillis", Some(Ms)),
            ("http.duration_ms", Some(Ms)),
            ("duration", None),
            ("response_time", None),
            ("status", None),
            ("latency", None),
            ("ms", None),
            ("_ms", None),
            ("Ms", None),
            ("Us", None),
            ("USMs", None),
            ("items", None),
            ("duration_m", None),
            ("duration_ms ", None),
            ("", None),
        ] {
            assert_eq!(unit_from_name(name), unit, "{name:?}");
        }
    }

    #[test]
    fn cli_durations() {
        assert_eq!(parse_cli_duration("30s"), Ok(30 * SEC));
        assert_eq!(parse_cli_duration("1ms"), Ok(MS));
        assert_eq!(parse_cli_duration("250ms"), Ok(250 * MS));
        assert_eq!(parse_cli_duration("250"), Ok(250 * MS));
        assert_eq!(parse_cli_duration("1.5"), Ok(1_500_000));
        assert_eq!(parse_cli_duration("500us"), Ok(500_000));
        assert_eq!(parse_cli_duration("500µs"), Ok(500_000));
        assert_eq!(parse_cli_duration("2m"), Ok(120 * SEC));
        assert_eq!(parse_cli_duration("1h"), Ok(HOUR));
        assert_eq!(parse_cli_duration("1m30s"), Ok(90 * SEC));
        for bad in ["", "fast", "-1s", "10 parsecs"] {
            let err = parse_cli_duration(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    /// Seconds east for an offset in minutes, written as `±HH:MM`.
    fn offset_text(min: i32, style: u8) -> String {
        let sign = if min < 0 { '-' } else { '+' };
        let a = min.unsigned_abs();
        match (min, style) {
            (0, 0) => "Z".to_string(),
            (_, 1) => format!("{sign}{:02}{:02}", a / 60, a % 60),
            (_, 2) if a.is_multiple_of(60) => format!("{sign}{:02}", a / 60),
            _ => format!("{sign}{:02}:{:02}", a / 60, a % 60),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// A timestamp read right after another of the same minute (the
        /// cached minute's shortcut) gives what it gives on its own.
        #[test]
        fn same_minute_shortcut_changes_nothing(
            prev_sec in 0u32..62,
            sec in 0u32..62,
            frac in prop::sample::select(vec!["", ".5", ".123456789", ",25", ".1234567891", ".", ".x"]),
            zone in prop::sample::select(vec!["", "Z", "z", "+02:00", "-05:30", "+24:00", "+0200", " UTC", "Zz"]),
            sep in prop::sample::select(vec!["T", "t", " "]),
            tz in prop::sample::select(vec!["UTC", "+03:00", "Europe/Paris"]),
            date in prop::sample::select(vec!["2024-05-01", "2024-02-29", "2023-02-29", "9999-12-31", "1970-01-01"]),
        ) {
            let tz: TzSpec = tz.parse().unwrap();
            let prev = format!("{date}{sep}23:59:{prev_sec:02}Z");
            let text = format!("{date}{sep}23:59:{sec:02}{frac}{zone}");
            LAST_MINUTE.with(|m| m.set(None));
            let alone = parse_timestamp(&text, &tz, None);
            let _ = parse_timestamp(&prev, &tz, None);
            let after = parse_timestamp(&text, &tz, None);
            prop_assert_eq!(after, alone, "{} after {}", text, prev);
        }

        /// The fast path agrees with chrono's RFC 3339 parser on valid input,
        /// and the other spellings (space, comma, ±HHMM, ±HH) agree with it.
        #[test]
        fn rfc3339_matches_chrono(
            y in 1678i32..=2261, m in 1u32..=12, d in 1u32..=31,
            h in 0u32..24, mi in 0u32..60, s in 0u32..=60,
            nanos in 0u32..1_000_000_000, digits in 0usize..=9,
            off in -(23 * 60 + 59)..=(23 * 60 + 59i32), style in 0u8..3,
        ) {
            let d = d.min(days_in_month(y, m));
            let frac = if digits == 0 {
                String::new()
            } else {
                format!(".{}", &format!("{nanos:09}")[..digits])
            };
            let base = format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}");
            let rfc = format!("{base}{}", offset_text(off, 0));
            let expect = DateTime::parse_from_rfc3339(&rfc)
                .unwrap()
                .timestamp_nanos_opt()
                .ok_or(TsError::Bad);
            prop_assert_eq!(utc(&rfc), expect);
            let other = format!("{}{}", base.replacen('T', " ", 1).replacen('.', ",", 1), offset_text(off, style));
            prop_assert_eq!(utc(&other), expect, "{}", other);
            // Without an offset, a fixed --tz gives the same instant.
            let tz = TzSpec::Fixed(FixedOffset::east_opt(off * 60).unwrap());
            prop_assert_eq!(parse_timestamp(&base, &tz, None), expect);
        }

        /// Formatting then parsing gives back every i64 instant, and the
        /// text is what chrono writes.
        #[test]
        fn format_round_trips(ns in any::<i64>()) {
            let text = format_rfc3339_ns(ns);
            prop_assert_eq!(utc(&text), Ok(ns));
            let chrono_text = DateTime::from_timestamp_nanos(ns)
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            prop_assert_eq!(text, chrono_text);
        }

        /// Epoch seconds with a 9-digit fraction are read exactly.
        #[test]
        fn epoch_seconds_exact(secs in 0i64..9_000_000_000, sub in 0i64..SEC) {
            prop_assert_eq!(utc(&format!("{secs}.{sub:09}")), Ok(secs * SEC + sub));
            prop_assert_eq!(utc(&secs.to_string()), Ok(secs * SEC));
        }

        /// Millisecond values with three decimals read exactly.
        #[test]
        fn duration_ms_exact(whole in 0i64..10_000_000, thousandths in 0i64..1000) {
            let text = format!("{whole}.{thousandths:03}ms");
            prop_assert_eq!(parse_duration(&text, DurationUnit::S), Some(whole * MS + thousandths * 1000));
        }

        #[test]
        fn leading_digits_match_a_loop(bytes in proptest::array::uniform8(prop_oneof![
            b'0'..=b'9', Just(b'/'), Just(b':'), Just(0u8), Just(0x30 + 0x80), any::<u8>(),
        ])) {
            let n = bytes.iter().take_while(|c| c.is_ascii_digit()).count();
            let v = bytes[..n].iter().fold(0u32, |v, c| v * 10 + u32::from(c - b'0'));
            prop_assert_eq!(leading_digits(u64::from_le_bytes(bytes)), (n, v));
        }

        /// The fixed-position scan agrees with the general one wherever it
        /// answers.
        #[test]
        fn fixed_datetime_scan_agrees(
            y in 0u32..10_000, m in 0u32..14, d in 0u32..33,
            h in 0u32..26, mi in 0u32..62, sec in 0u32..62,
            t in "[Tt _]",
            frac in "([.,][0-9]{0,12})?",
            tail in "(Z|z|[+-][0-2][0-9]:?[0-6][0-9]| UTC|x|)",
        ) {
            let s = format!("{y:04}-{m:02}-{d:02}{t}{h:02}:{mi:02}:{sec:02}{frac}{tail}");
            let key = |r: Option<Scan>| match r {
                Some(Scan::Ok(c, off)) => {
                    Some((c.year, c.month, c.day, c.hour, c.min, c.sec, c.nanos, off))
                }
                _ => None,
            };
            let b = s.as_bytes();
            let valid = (1..=12).contains(&m)
                && (1..=days_in_month(y as i32, m)).contains(&d)
                && h < 24 && mi < 60 && sec <= 60
                && t != "_" && frac != "." && frac != ","
                && (matches!(tail.as_str(), "" | "Z" | "z")
                    || tail.len() == 6 && tail[1..3] < *"24" && tail[4..] < *"60");
            prop_assert_eq!(scan_datetime_fixed(b).is_some(), valid, "{}", s);
            if let Some(fixed) = scan_datetime_fixed(b) {
                let fixed = key(Some(fixed));
                prop_assert!(fixed.is_some());
                prop_assert_eq!(fixed, key(scan_datetime_opt(b)), "{}", s);
            }
        }

        #[test]
        fn never_panics_on_any_string(s in any::<String>()) {
            let _ = parse_timestamp(&s, &TzSpec::Utc, None);
            let _ = parse_timestamp(&s, &named("Europe/Paris"), Some("%d/%b/%Y:%H:%M:%S %z"));
            let _ = parse_duration(&s, DurationUnit::Ms);
            let _ = unit_from_name(&s);
            let _ = TzSpec::parse(&s);
        }

        #[test]
        fn never_panics_on_near_misses(
            s in "[0-9]{4}[-/][0-9]{2}[-/][0-9]{2}[Tt _][0-9:.,]{0,16}[Zz+ 0-9:UTCG\\[\\]-]{0,10}",
            n in "[-+0-9.eE]{0,30}",
            d in "[-+0-9.:,PTDHMSµsmunhd ]{0,24}",
        ) {
            for tz in [TzSpec::Utc, TzSpec::Local, named("America/New_York")] {
                let _ = parse_timestamp(&s, &tz, None);
                let _ = parse_timestamp(&n, &tz, None);
            }
            let _ = parse_duration(&d, DurationUnit::Us);
            let _ = parse_duration(&n, DurationUnit::S);
        }
    }
}
