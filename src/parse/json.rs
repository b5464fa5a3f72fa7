//! Parse stage: the `json` line format (one JSON object per line).
//!
//! A hand-rolled single pass over the bytes of a line. It validates the JSON
//! structure (strict RFC 8259 grammar: garbage, trailing bytes, a top-level
//! value that is not an object, or nesting deeper than [`MAX_DEPTH`] are a
//! [`LineError::Parse`]), but only looks up keys where a role name could
//! match, and only decodes the values that are offered to the
//! [`Collector`]. Nested objects are followed only along dotted prefixes of
//! the schema's names (`{"trace":{"id":..}}` for `trace.id`); everything else
//! is skipped with no allocation. The nesting stack is a bit set, so no input
//! can overflow the call stack.
//!
//! Flat lines (one object of scalar values, the usual log line) take a
//! shorter path: their members are found with a SIMD index of the quotes,
//! and the winner of each role follows from a plan made once per key
//! sequence (`Shapes`) instead of a lookup and a comparison per key.

use std::borrow::Cow;

use super::fields::{Collector, Fields, LineError, NO_ID, Offered, Schema, ValueKind};
use super::fields::{
    FieldValue, Hit, LineText, Role, empty_schema, eq_mask, is_blank_text, less_mask, strip_line,
    unescape, word_at,
};

/// Deepest nesting of objects and arrays accepted; deeper lines are a
/// [`LineError::Parse`] (no real log line comes close).
pub const MAX_DEPTH: usize = 128;

/// Deepest object level at which dotted names are still followed.
const MAX_TRACKED: usize = 16;

/// Where a key's string sits in the line (between its quotes).
#[derive(Clone, Copy, Debug, Default)]
struct KeySpan {
    start: usize,
    end: usize,
    escaped: bool,
}

/// A container level whose keys are looked up (it lies on a dotted prefix of
/// some name) or whose raw text is offered when it closes (an error object).
#[derive(Clone, Copy, Debug)]
struct Frame {
    /// Prefix id for keys inside, or `NO_ID` when keys are not looked up.
    prefix: u32,
    /// The key whose value this container is (unused at the top level).
    key: KeySpan,
    /// Node id to offer the raw container to when it closes, or `NO_ID`.
    capture: u32,
    /// Where the container starts in the line (its `{` or `[`).
    start: usize,
}

const EMPTY_FRAME: Frame = Frame {
    prefix: NO_ID,
    key: KeySpan {
        start: 0,
        end: 0,
        escaped: false,
    },
    capture: NO_ID,
    start: 0,
};

#[derive(Clone, Copy)]
enum State {
    Value,
    Key,
    After,
}

/// Parses one line as a JSON object and returns the value of every role.
///
/// The line may end in `\r` and start with a UTF-8 BOM. Errors:
/// [`LineError::Parse`] when the line is not exactly one JSON object
/// (surrounding whitespace allowed); [`LineError::InvalidUtf8`] when a value
/// that wins a role is not valid UTF-8 (invalid UTF-8 elsewhere is ignored).
pub fn parse_json<'a>(line: &'a [u8], schema: &Schema) -> Result<Fields<'a>, LineError> {
    let b = strip_line(line);
    let mut c = Collector::new(schema);
    scan(b, &mut c)?;
    c.try_finish()
}

/// [`parse_json`] into a reused collector (emptied first); the winners are
/// then read with [`Collector::result`].
#[inline]
pub(crate) fn parse_json_into<'a>(
    line: &'a [u8],
    c: &mut Collector<'_, 'a>,
) -> Result<(), LineError> {
    c.reset();
    scan(strip_line(line), c)
}

/// Whether `line` is one JSON object (structure only, whatever its fields).
pub fn is_json_object(line: &[u8]) -> bool {
    let mut c = Collector::new(empty_schema());
    scan(strip_line(line), &mut c).is_ok()
}

#[inline(always)]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(&ch) = b.get(i) {
        if !matches!(ch, b' ' | b'\t' | b'\n' | b'\r') {
            break;
        }
        i += 1;
    }
    i
}

/// Bytes that stop the fast loop inside a string: `"`, `\\` and controls.
#[inline(always)]
fn string_stop(ch: u8) -> bool {
    ch < 0x20 || ch == b'"' || ch == b'\\'
}

/// The bytes of `w` that would stop the string loop (see [`eq_mask`]).
#[inline(always)]
fn stop_mask(w: u64) -> u64 {
    less_mask(w, 0x20) | eq_mask(w, b'"') | eq_mask(w, b'\\')
}

/// Whether a line has no backslash and no control character (no byte below
/// 0x20, so no whitespace but spaces): then every `"` in it delimits a
/// string, and [`scan_object::<true>`] looks for nothing else. One pass that
/// the compiler vectorizes (no early exit).
#[inline]
fn is_plain(b: &[u8]) -> bool {
    let mut special = false;
    for &ch in b {
        special |= (ch < 0x20) | (ch == b'\\');
    }
    !special
}

/// How [`scan_object`] reads the strings and whitespace of a line: by the
/// general grammar ([`AnyLine`]), or by shortcuts that hold only in a line
/// known to be plain ([`PlainLine`], [`IndexedLine`]).
trait LineShape {
    /// The string whose opening quote is at `i` (see [`scan_string`]).
    fn string(&self, b: &[u8], i: usize) -> Result<KeySpan, LineError>;
    /// The first index at or after `i` that is not whitespace.
    fn skip_ws(&self, b: &[u8], i: usize) -> usize;
}

/// Any line: escapes, control characters and all JSON whitespace.
struct AnyLine;

impl LineShape for AnyLine {
    #[inline(always)]
    fn string(&self, b: &[u8], i: usize) -> Result<KeySpan, LineError> {
        scan_string(b, i)
    }

    #[inline(always)]
    fn skip_ws(&self, b: &[u8], i: usize) -> usize {
        skip_ws(b, i)
    }
}

/// A line that [`is_plain`]: a string ends at the next `"`, found eight
/// bytes at a time, and spaces are the only whitespace.
struct PlainLine;

impl LineShape for PlainLine {
    #[inline(always)]
    fn string(&self, b: &[u8], i: usize) -> Result<KeySpan, LineError> {
        let start = i + 1;
        let mut j = start;
        while let Some(w) = word_at(b, j) {
            let m = eq_mask(w, b'"');
            if m != 0 {
                return Ok(KeySpan {
                    start,
                    end: j + (m.trailing_zeros() / 8) as usize,
                    escaped: false,
                });
            }
            j += 8;
        }
        while let Some(&ch) = b.get(j) {
            if ch == b'"' {
                return Ok(KeySpan {
                    start,
                    end: j,
                    escaped: false,
                });
            }
            j += 1;
        }
        Err(LineError::Parse)
    }

    #[inline(always)]
    fn skip_ws(&self, b: &[u8], i: usize) -> usize {
        skip_spaces(b, i)
    }
}

/// Spaces from `i` on (the only whitespace a plain line can hold).
#[inline(always)]
fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    i
}

/// Longest line whose quotes [`IndexedLine`] indexes, in 64-byte words.
const INDEX_WORDS: usize = 16;

/// A plain line of at most `INDEX_WORDS * 64` bytes with the position of
/// every `"` in a bit set, found 16 bytes at a time with SIMD: the end of a
/// string is then one bit search instead of a scan of its bytes.
struct IndexedLine {
    /// Bit `i % 64` of word `i / 64` is set when `b[i] == b'"'`.
    quotes: [u64; INDEX_WORDS],
}

impl IndexedLine {
    /// Indexes `b`, or `None` when it is too long or not plain (it holds a
    /// backslash or a control character).
    #[inline]
    fn new(b: &[u8]) -> Option<IndexedLine> {
        if b.len() > INDEX_WORDS * 64 {
            return None;
        }
        let mut quotes = [0u64; INDEX_WORDS];
        let mut special = 0u64;
        let mut words = b.chunks_exact(64);
        for (word, bytes) in quotes.iter_mut().zip(&mut words) {
            let (q, s) = word_masks(bytes.try_into().ok()?);
            *word = q;
            special |= s;
        }
        // The last partial word: 16-byte blocks, then what is left.
        let rest = words.remainder();
        let at = b.len() - rest.len();
        let mut blocks = rest.chunks_exact(16);
        let mut q = 0u64;
        let mut shift = 0;
        for block in &mut blocks {
            let (bq, bs) = block_masks(block.try_into().ok()?);
            q |= u64::from(bq) << shift;
            special |= u64::from(bs);
            shift += 16;
        }
        let tail = blocks.remainder();
        if !tail.is_empty() {
            let (bq, bs) = match b.len().checked_sub(16).and_then(|at| b.get(at..)) {
                // The line's last 16 bytes, overlapping what is already
                // indexed: the masks are shifted to keep the tail's bytes
                // only (no copy, which was a `memcpy` call per line).
                Some(last) => {
                    let (bq, bs) = block_masks(last.try_into().ok()?);
                    let drop = 16 - tail.len();
                    (bq >> drop, bs >> drop)
                }
                // A line under 16 bytes: padded with spaces (neither
                // quotes nor special).
                None => {
                    let mut last = [b' '; 16];
                    last.get_mut(..tail.len())?.copy_from_slice(tail);
                    block_masks(&last)
                }
            };
            q |= u64::from(bq) << shift;
            special |= u64::from(bs);
        }
        if let Some(word) = quotes.get_mut(at / 64) {
            *word = q;
        }
        (special == 0).then_some(IndexedLine { quotes })
    }
}

/// [`block_masks`] of 64 bytes, as one word each.
#[inline(always)]
fn word_masks(bytes: &[u8; 64]) -> (u64, u64) {
    let (mut quote, mut special) = (0u64, 0u64);
    for (k, block) in bytes.chunks_exact(16).enumerate() {
        if let Ok(block) = block.try_into() {
            let (q, s) = block_masks(block);
            quote |= u64::from(q) << (16 * k);
            special |= u64::from(s);
        }
    }
    (quote, special)
}

impl LineShape for IndexedLine {
    #[inline(always)]
    fn string(&self, _b: &[u8], i: usize) -> Result<KeySpan, LineError> {
        let start = i + 1;
        let mut w = start / 64;
        let mut m = self.quotes.get(w).copied().unwrap_or(0) & (u64::MAX << (start % 64));
        while m == 0 {
            w += 1;
            m = *self.quotes.get(w).ok_or(LineError::Parse)?;
        }
        Ok(KeySpan {
            start,
            end: w * 64 + m.trailing_zeros() as usize,
            escaped: false,
        })
    }

    #[inline(always)]
    fn skip_ws(&self, b: &[u8], i: usize) -> usize {
        skip_spaces(b, i)
    }
}

/// For 16 bytes: a bit per `"`, and a bit per byte that makes a line not
/// plain (`\` or below 0x20). SSE2 on x86-64 (through `safe_arch`, so the
/// crate keeps its single `unsafe` block in `input::mmap`).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn block_masks(block: &[u8; 16]) -> (u16, u16) {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, min_u8_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    let splat = |c: u8| set_splat_i8_m128i(i8::from_ne_bytes([c]));
    let v = load_unaligned_m128i(block);
    let quote = cmp_eq_mask_i8_m128i(v, splat(b'"'));
    let backslash = cmp_eq_mask_i8_m128i(v, splat(b'\\'));
    // min(v, 0x1F) == v exactly when v <= 0x1F (unsigned).
    let control = cmp_eq_mask_i8_m128i(min_u8_m128i(v, splat(0x1F)), v);
    // The mask has 16 bits, so the conversion never fails.
    let mask = |m| u16::try_from(move_mask_i8_m128i(m) & 0xFFFF).unwrap_or(0);
    (mask(quote), mask(bitor_m128i(backslash, control)))
}

/// [`block_masks`] byte by byte (other targets, and the tests' reference).
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
fn block_masks_portable(block: &[u8; 16]) -> (u16, u16) {
    let (mut quote, mut special) = (0u16, 0u16);
    for (k, &ch) in block.iter().enumerate() {
        quote |= u16::from(ch == b'"') << k;
        special |= u16::from(ch < 0x20 || ch == b'\\') << k;
    }
    (quote, special)
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn block_masks(block: &[u8; 16]) -> (u16, u16) {
    block_masks_portable(block)
}

/// Scans the string whose opening quote is at `i`; returns the span of its
/// contents (the closing quote is at `span.end`).
#[inline(always)]
fn scan_string(b: &[u8], i: usize) -> Result<KeySpan, LineError> {
    let start = i + 1;
    let mut j = start;
    let mut escaped = false;
    loop {
        // 8 bytes at a time while they last, then byte by byte.
        loop {
            match word_at(b, j) {
                Some(w) => {
                    let m = stop_mask(w);
                    if m != 0 {
                        j += (m.trailing_zeros() / 8) as usize;
                        break;
                    }
                    j += 8;
                }
                None => {
                    while b.get(j).is_some_and(|&ch| !string_stop(ch)) {
                        j += 1;
                    }
                    break;
                }
            }
        }
        match b.get(j) {
            Some(b'"') => {
                return Ok(KeySpan {
                    start,
                    end: j,
                    escaped,
                });
            }
            Some(b'\\') => {
                escaped = true;
                match b.get(j + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => j += 2,
                    Some(b'u') => {
                        let hex = b.get(j + 2..j + 6).ok_or(LineError::Parse)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return Err(LineError::Parse);
                        }
                        j += 6;
                    }
                    _ => return Err(LineError::Parse),
                }
            }
            // A raw control character, or the line ended inside the string.
            _ => return Err(LineError::Parse),
        }
    }
}

/// Scans the number starting at `i` (RFC 8259 grammar); returns its end.
#[inline(always)]
fn scan_number(b: &[u8], i: usize) -> Result<usize, LineError> {
    let digits = |mut j: usize| {
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        j
    };
    let mut j = i;
    if b.get(j) == Some(&b'-') {
        j += 1;
    }
    match b.get(j) {
        Some(b'0') => j += 1,
        Some(b'1'..=b'9') => j = digits(j + 1),
        _ => return Err(LineError::Parse),
    }
    if b.get(j) == Some(&b'.') {
        let k = digits(j + 1);
        if k == j + 1 {
            return Err(LineError::Parse);
        }
        j = k;
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        j += 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let k = digits(j);
        if k == j {
            return Err(LineError::Parse);
        }
        j = k;
    }
    Ok(j)
}

/// The bytes of a key (decoded when it has escapes; `None` when the
/// decoded key is not valid UTF-8, so it cannot match).
fn key_bytes(b: &[u8], k: KeySpan) -> Option<Cow<'_, [u8]>> {
    let raw = b.get(k.start..k.end)?;
    if k.escaped {
        unescape(raw).map(|s| Cow::Owned(s.into_bytes()))
    } else {
        Some(Cow::Borrowed(raw))
    }
}

/// Whether the path `keys[0].keys[1]...last` is spelled exactly `name`.
fn path_is(b: &[u8], keys: &[Frame], last: &[u8], name: &[u8]) -> bool {
    let mut rest = name;
    for f in keys {
        let Some(k) = key_bytes(b, f.key) else {
            return false;
        };
        match rest
            .strip_prefix(k.as_ref())
            .and_then(|r| r.strip_prefix(b"."))
        {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest == last
}

/// Offers a value found under `key` (matched as `hit`), inside the tracked
/// objects `frames[2..]` (the rest of the key path), to the collector.
#[inline]
fn offer_at<'a>(
    c: &mut Collector<'_, 'a>,
    b: &'a [u8],
    frames: &[Frame],
    hit: Hit<'_>,
    key: KeySpan,
    value: Offered<'a>,
) {
    let path = frames.get(2..).unwrap_or(&[]);
    if path.is_empty() && !key.escaped {
        let (start, end) = (key.start, key.end);
        c.offer_node(hit.node, |name| hit.spells(name, b, start, end), value);
    } else if let Some(last) = key_bytes(b, key) {
        c.offer_node(hit.node, |name| path_is(b, path, &last, &name.name), value);
    }
}

/// The string value with contents `span`, decoded if it has escapes.
#[inline]
fn string_value<'a>(line: &LineText<'a>, span: KeySpan) -> Offered<'a> {
    if span.escaped {
        line.unescaped(span.start, span.end)
    } else {
        line.value(span.start, span.end, ValueKind::String)
    }
}

/// The scanner proper: validates `b` as one JSON object and feeds the
/// collector. Lines without backslashes and control characters (almost all)
/// take a simpler string scan.
fn scan<'s, 'a>(b: &'a [u8], c: &mut Collector<'s, 'a>) -> Result<(), LineError> {
    if b.len() <= INDEX_WORDS * 64 {
        match IndexedLine::new(b) {
            Some(indexed) => {
                // Plans pay off only for a collector that reads many lines
                // (a chunk's) and mostly flat ones: one made for a single
                // line, or whose lines keep falling back (nested objects in
                // every line), reads them the general way.
                if c.shapes.worth_trying() {
                    if scan_flat(b, c, &indexed) {
                        c.shapes.misses = 0;
                        return Ok(());
                    }
                    c.shapes.misses += 1;
                    c.reset();
                }
                c.shapes.warm = true;
                scan_object(b, c, &indexed)
            }
            None => scan_object(b, c, &AnyLine),
        }
    } else if is_plain(b) {
        scan_object(b, c, &PlainLine)
    } else {
        scan_object(b, c, &AnyLine)
    }
}

/// [`scan`] of a line of the given shape. The top level (flat objects are
/// the common case) is a plain loop; nested values go to [`scan_nested`].
#[inline(always)]
fn scan_object<'s, 'a>(
    b: &'a [u8],
    c: &mut Collector<'s, 'a>,
    shape: &impl LineShape,
) -> Result<(), LineError> {
    let schema = c.schema();
    let line = LineText::new(b);
    let mut i = shape.skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return Err(LineError::Parse);
    }
    i = shape.skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return end_of_line(b, i + 1);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return Err(LineError::Parse);
        }
        let key = shape.string(b, i)?;
        i = shape.skip_ws(b, key.end + 1);
        if b.get(i) != Some(&b':') {
            return Err(LineError::Parse);
        }
        i = shape.skip_ws(b, i + 1);
        let hit = match if key.escaped {
            key_bytes(b, key).and_then(|k| schema.lookup(0, &k))
        } else {
            schema.lookup_in(0, b, key.start, key.end)
        } {
            Some(hit) if hit.child() != NO_ID || c.wants_hit(&hit) => Some(hit),
            _ => None,
        };
        let Some(&ch) = b.get(i) else {
            return Err(LineError::Parse);
        };
        match ch {
            b'"' => {
                let span = shape.string(b, i)?;
                i = span.end + 1;
                if let Some(hit) = hit {
                    match line.str_at(span.start, span.end) {
                        Some(text) if !key.escaped && !span.escaped => {
                            let key = (key.start, key.end);
                            c.offer_text(hit, b, key, text, ValueKind::String);
                        }
                        _ => offer_at(c, b, &[], hit, key, string_value(&line, span)),
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let end = scan_number(b, i)?;
                if let Some(hit) = hit {
                    match line.str_at(i, end) {
                        Some(text) if !key.escaped => {
                            let key = (key.start, key.end);
                            c.offer_text(hit, b, key, text, ValueKind::Number);
                        }
                        _ => {
                            let value = line.value(i, end, ValueKind::Number);
                            offer_at(c, b, &[], hit, key, value);
                        }
                    }
                }
                i = end;
            }
            b't' | b'f' | b'n' => {
                let lit = literal(b, i, ch)?;
                i += lit.len();
                if let Some(hit) = hit
                    && ch != b'n'
                {
                    let value = Offered::Text(Cow::Borrowed(lit), ValueKind::Bool);
                    offer_at(c, b, &[], hit, key, value);
                }
            }
            b'{' | b'[' => {
                i = scan_nested(b, &line, c, i, hit.map(|hit| (hit, key)))?;
            }
            _ => return Err(LineError::Parse),
        }
        i = shape.skip_ws(b, i);
        match b.get(i) {
            Some(b',') => i = shape.skip_ws(b, i + 1),
            Some(b'}') => return end_of_line(b, i + 1),
            _ => return Err(LineError::Parse),
        }
    }
}

/// Most members a line may have for [`scan_flat`].
const FLAT_MEMBERS: usize = 64;

/// Lines in a row that may fall back from the plans before a collector
/// stops trying them.
const GIVE_UP: u32 = 64;

/// Most plans a collector keeps (a log file has a handful of line shapes).
const SHAPES: usize = 16;

/// What a flat member's value is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scalar {
    Str,
    Num,
    Bool,
    Null,
}

/// One member of a flat line: its key's span and words (see [`key_words`]),
/// and its value's span (a string's contents) and kind.
#[derive(Clone, Copy, Debug)]
struct Member {
    key: (u32, u32),
    words: (u64, u64),
    value: (u32, u32),
    scalar: Scalar,
}

/// A key's first eight bytes and its last eight (zero-padded, and the
/// second 0 for keys of up to eight bytes): with the length, the whole key
/// for keys of up to 16 bytes.
#[inline(always)]
fn key_words(b: &[u8], start: usize, end: usize) -> (u64, u64) {
    let len = end - start;
    let first = match word_at(b, start) {
        Some(w) => w,
        None => short_tail_word(b.get(start..end).unwrap_or_default()),
    };
    if len >= 8 {
        (first, word_at(b, end - 8).unwrap_or(0))
    } else {
        (first & ((1u64 << (8 * len)) - 1), 0)
    }
}

/// The first eight bytes of `key` (zero-padded), for a key too near the
/// end of its line to load a whole word. Built by shifts, kept out of line:
/// a byte copy here became a `memcpy` call, and the flat scan then saved
/// registers around every key.
#[cold]
#[inline(never)]
fn short_tail_word(key: &[u8]) -> u64 {
    key.iter()
        .take(8)
        .rev()
        .fold(0u64, |w, &c| (w << 8) | u64::from(c))
}

/// The plans of the line shapes seen so far, and a reused member list.
///
/// A log's lines mostly repeat a few key sequences. For a flat line (one
/// object of scalar values), which key wins each role depends only on its
/// keys and on which values are usable (SPEC §1: the lowest name index,
/// then exact case, then the first occurrence, among usable values). A
/// plan lists, per role, the keys that could give it a value in that
/// order; a line with the same keys then needs no lookup and no
/// candidate-by-candidate bookkeeping: each role takes its first usable
/// value.
#[derive(Debug, Default)]
pub(crate) struct Shapes {
    /// Set once the collector has read a line: from its second line on, it
    /// reads by plans.
    warm: bool,
    /// Lines in a row that were tried and were not flat.
    misses: u32,
    plans: Vec<Plan>,
    /// Where the next plan goes once `plans` is full.
    next: usize,
    members: Vec<Member>,
}

/// The plan of one key sequence.
#[derive(Debug)]
struct Plan {
    hash: u64,
    /// Per key: its length and words.
    keys: Vec<(u32, (u64, u64))>,
    /// The keys longer than 16 bytes, whole, by position.
    long_keys: Vec<(usize, Box<[u8]>)>,
    /// Per role that some key names: (role, first candidate, end) into
    /// `candidates`.
    roles: Vec<(Role, usize, usize)>,
    /// (member index, name index), each role's in priority order.
    candidates: Vec<(usize, usize)>,
}

impl Plan {
    /// Whether the keys of `members` are exactly this plan's.
    #[inline]
    fn matches(&self, b: &[u8], members: &[Member]) -> bool {
        members.len() == self.keys.len()
            && members
                .iter()
                .zip(&self.keys)
                .all(|(m, &(len, words))| m.key.1 - m.key.0 == len && m.words == words)
            && self.long_keys.iter().all(|(k, text)| {
                members
                    .get(*k)
                    .is_some_and(|m| b.get(m.key.0 as usize..m.key.1 as usize) == Some(&**text))
            })
    }

    /// The plan of `members`' keys under `schema`.
    fn new(hash: u64, b: &[u8], members: &[Member], schema: &Schema) -> Plan {
        let mut keys = Vec::with_capacity(members.len());
        let mut long_keys = Vec::new();
        // (role index, name index, inexact, member)
        let mut found: Vec<(usize, u32, bool, usize)> = Vec::new();
        for (k, m) in members.iter().enumerate() {
            let (start, end) = (m.key.0 as usize, m.key.1 as usize);
            keys.push((m.key.1 - m.key.0, m.words));
            if end - start > 16 {
                long_keys.push((k, b.get(start..end).unwrap_or_default().into()));
            }
            if let Some(hit) = schema.lookup_in(0, b, start, end) {
                for name in &hit.node.names {
                    let exact = hit.spells(name, b, start, end);
                    found.push((name.role.index(), name.index, !exact, k));
                }
            }
        }
        found.sort_unstable();
        let mut roles = Vec::new();
        let mut candidates = Vec::with_capacity(found.len());
        for group in found.chunk_by(|a, b| a.0 == b.0) {
            let Some(role) = group.first().and_then(|g| Role::ALL.get(g.0)) else {
                continue;
            };
            let first = candidates.len();
            candidates.extend(group.iter().map(|g| (g.3, g.1 as usize)));
            roles.push((*role, first, candidates.len()));
        }
        Plan {
            hash,
            keys,
            long_keys,
            roles,
            candidates,
        }
    }
}

/// [`scan`] of a flat line by the plan of its keys (see [`Shapes`]);
/// false, with the collector untouched, for any other line (nested values,
/// text that is not UTF-8, anything unusual), which the general scan then
/// reads.
fn scan_flat<'a>(b: &'a [u8], c: &mut Collector<'_, 'a>, index: &IndexedLine) -> bool {
    // The plans are the collector's, taken out while they serve it.
    let mut shapes = std::mem::take(&mut c.shapes);
    let mut done = false;
    if let Some(hash) = flat_members(b, index, &mut shapes.members) {
        let line = LineText::new(b);
        if line.is_utf8() {
            let at = shapes.plan_for(hash, b, c.schema());
            if let Some(plan) = shapes.plans.get(at) {
                follow(plan, &line, &shapes.members, c);
                done = true;
            }
        }
    }
    c.shapes = shapes;
    done
}

impl Shapes {
    /// Whether the next line should try a plan: from the second line on,
    /// until [`GIVE_UP`] lines in a row were not flat (then the rest of
    /// the chunk is read the general way).
    #[inline]
    fn worth_trying(&self) -> bool {
        self.warm && self.misses < GIVE_UP
    }

    /// Where in `plans` the plan of the keys of `self.members` (a line's,
    /// hashed to `hash`) is, made if needed.
    fn plan_for(&mut self, hash: u64, b: &[u8], schema: &Schema) -> usize {
        let members = &self.members;
        match self
            .plans
            .iter()
            .position(|p| p.hash == hash && p.matches(b, members))
        {
            Some(at) => at,
            None => {
                let plan = Plan::new(hash, b, members, schema);
                if self.plans.len() < SHAPES {
                    self.plans.push(plan);
                    self.plans.len() - 1
                } else {
                    let at = self.next % SHAPES;
                    self.next = self.next.wrapping_add(1);
                    if let Some(slot) = self.plans.get_mut(at) {
                        *slot = plan;
                    }
                    at
                }
            }
        }
    }
}

/// Gives each role of `plan` its first usable value.
#[inline]
fn follow<'a>(plan: &Plan, line: &LineText<'a>, members: &[Member], c: &mut Collector<'_, 'a>) {
    for &(role, first, end) in &plan.roles {
        for &(k, name_index) in plan.candidates.get(first..end).unwrap_or_default() {
            let Some(m) = members.get(k) else { continue };
            let kind = match m.scalar {
                Scalar::Null => continue,
                Scalar::Str => ValueKind::String,
                Scalar::Num => ValueKind::Number,
                Scalar::Bool => ValueKind::Bool,
            };
            let Some(text) = line.str_at(m.value.0 as usize, m.value.1 as usize) else {
                continue;
            };
            if is_blank_text(text) {
                continue;
            }
            c.set(
                role,
                FieldValue {
                    text: Cow::Borrowed(text),
                    kind,
                    name_index,
                },
            );
            break;
        }
    }
}

/// The members of `b` when it is one flat JSON object (scalar values
/// only) of at most [`FLAT_MEMBERS`] members, in order, and a hash of their
/// keys; `None` otherwise, including for any syntax error (the general scan
/// reports those).
fn flat_members(b: &[u8], index: &IndexedLine, members: &mut Vec<Member>) -> Option<u64> {
    members.clear();
    let mut hash = 0u64;
    let mut i = skip_spaces(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_spaces(b, i + 1);
    loop {
        if b.get(i) != Some(&b'"') || members.len() == FLAT_MEMBERS {
            return None;
        }
        let key = index.string(b, i).ok()?;
        i = key.end + 1;
        if b.get(i) != Some(&b':') {
            i = skip_spaces(b, i);
            if b.get(i) != Some(&b':') {
                return None;
            }
        }
        i += 1;
        if b.get(i) == Some(&b' ') {
            i = skip_spaces(b, i);
        }
        let (value, scalar) = match *b.get(i)? {
            b'"' => {
                let span = index.string(b, i).ok()?;
                i = span.end + 1;
                ((span.start, span.end), Scalar::Str)
            }
            b'-' | b'0'..=b'9' => {
                let end = scan_number(b, i).ok()?;
                let value = (i, end);
                i = end;
                (value, Scalar::Num)
            }
            ch @ (b't' | b'f' | b'n') => {
                let lit = literal(b, i, ch).ok()?;
                let value = (i, i + lit.len());
                i += lit.len();
                (
                    value,
                    if ch == b'n' {
                        Scalar::Null
                    } else {
                        Scalar::Bool
                    },
                )
            }
            _ => return None,
        };
        let words = key_words(b, key.start, key.end);
        hash = (hash.rotate_left(5) ^ words.0 ^ words.1 ^ (key.end - key.start) as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // Indexed lines are at most 1 KiB, so the casts are lossless.
        let pos = |x: usize| x as u32;
        members.push(Member {
            key: (pos(key.start), pos(key.end)),
            words,
            value: (pos(value.0), pos(value.1)),
            scalar,
        });
        if b.get(i) == Some(&b' ') {
            i = skip_spaces(b, i);
        }
        match b.get(i) {
            Some(b',') => {
                i += 1;
                if b.get(i) == Some(&b' ') {
                    i = skip_spaces(b, i);
                }
            }
            Some(b'}') => return end_of_line(b, i + 1).ok().map(|()| hash),
            _ => return None,
        }
    }
}

/// After the top-level object: only whitespace may follow.
#[inline]
fn end_of_line(b: &[u8], i: usize) -> Result<(), LineError> {
    if skip_ws(b, i) == b.len() {
        Ok(())
    } else {
        Err(LineError::Parse)
    }
}

/// The literal `true`, `false` or `null` that starts (with `ch`) at `b[i]`.
#[inline(always)]
fn literal(b: &[u8], i: usize, ch: u8) -> Result<&'static str, LineError> {
    // Each spelling compared at its constant length: inline compares, not
    // a call (which made the flat scan save registers around every value).
    match ch {
        b't' if b.get(i..i + 4) == Some(&b"true"[..]) => Ok("true"),
        b'f' if b.get(i..i + 5) == Some(&b"false"[..]) => Ok("false"),
        b'n' if b.get(i..i + 4) == Some(&b"null"[..]) => Ok("null"),
        _ => Err(LineError::Parse),
    }
}

/// Scans the object or array value that starts at `b[i]`, a member of the
/// top-level object whose key matched `pending` (if any); returns the index
/// just after it. Iterative: the container kinds live in a 128-bit set and
/// the levels whose keys are looked up in `frames`.
fn scan_nested<'s, 'a>(
    b: &'a [u8],
    line: &LineText<'a>,
    c: &mut Collector<'s, 'a>,
    mut i: usize,
    mut pending: Option<(Hit<'s>, KeySpan)>,
) -> Result<usize, LineError> {
    let schema = c.schema();
    // Bit d-1 set: the container at depth d is an array (depth 1 is the
    // top-level object).
    let mut arrays: u128 = 0;
    let mut depth: usize = 1;
    // frames[1..=tracked] are the tracked levels (always a prefix of the
    // open containers); frames[0] is unused, frames[1] the top level.
    let mut frames = [EMPTY_FRAME; MAX_TRACKED + 1];
    if let Some(f) = frames.get_mut(1) {
        f.prefix = 0;
    }
    let mut tracked: usize = 1;
    let mut state = State::Value;
    loop {
        match state {
            State::Value => {
                let p = pending.take();
                i = skip_ws(b, i);
                let Some(&ch) = b.get(i) else {
                    return Err(LineError::Parse);
                };
                match ch {
                    b'{' | b'[' => {
                        if depth >= MAX_DEPTH {
                            return Err(LineError::Parse);
                        }
                        let is_arr = ch == b'[';
                        let start = i;
                        i += 1;
                        depth += 1;
                        let bit = 1u128 << (depth - 1);
                        if is_arr {
                            arrays |= bit;
                        } else {
                            arrays &= !bit;
                        }
                        if let Some((hit, key)) = p
                            && let Some(f) = frames.get_mut(depth)
                        {
                            let node = hit.node;
                            let prefix = if is_arr { NO_ID } else { node.child };
                            let capture = if node.has_error && c.wants(node) {
                                hit.id()
                            } else {
                                NO_ID
                            };
                            if prefix != NO_ID || capture != NO_ID {
                                *f = Frame {
                                    prefix,
                                    key,
                                    capture,
                                    start,
                                };
                                tracked = depth;
                            }
                        }
                        i = skip_ws(b, i);
                        let closer = if is_arr { b']' } else { b'}' };
                        if b.get(i) == Some(&closer) {
                            // Empty: nothing to capture.
                            i += 1;
                            if depth == tracked {
                                tracked -= 1;
                            }
                            depth -= 1;
                            state = State::After;
                        } else {
                            state = if is_arr { State::Value } else { State::Key };
                        }
                    }
                    b'"' => {
                        let span = scan_string(b, i)?;
                        i = span.end + 1;
                        if let Some((hit, key)) = p {
                            let frames = frames.get(..=depth).unwrap_or(&[]);
                            offer_at(c, b, frames, hit, key, string_value(line, span));
                        }
                        state = State::After;
                    }
                    b'-' | b'0'..=b'9' => {
                        let end = scan_number(b, i)?;
                        if let Some((hit, key)) = p {
                            let frames = frames.get(..=depth).unwrap_or(&[]);
                            let value = line.value(i, end, ValueKind::Number);
                            offer_at(c, b, frames, hit, key, value);
                        }
                        i = end;
                        state = State::After;
                    }
                    b't' | b'f' | b'n' => {
                        let lit = literal(b, i, ch)?;
                        i += lit.len();
                        if let Some((hit, key)) = p
                            && ch != b'n'
                        {
                            let frames = frames.get(..=depth).unwrap_or(&[]);
                            let value = Offered::Text(Cow::Borrowed(lit), ValueKind::Bool);
                            offer_at(c, b, frames, hit, key, value);
                        }
                        state = State::After;
                    }
                    _ => return Err(LineError::Parse),
                }
            }
            State::Key => {
                i = skip_ws(b, i);
                if b.get(i) != Some(&b'"') {
                    return Err(LineError::Parse);
                }
                let key = scan_string(b, i)?;
                i = key.end + 1;
                if depth == tracked
                    && let Some(f) = frames.get(depth)
                    && f.prefix != NO_ID
                {
                    let found = if key.escaped {
                        key_bytes(b, key).and_then(|k| schema.lookup(f.prefix, &k))
                    } else {
                        schema.lookup_in(f.prefix, b, key.start, key.end)
                    };
                    if let Some(hit) = found
                        && (hit.child() != NO_ID || c.wants_hit(&hit))
                    {
                        pending = Some((hit, key));
                    }
                }
                i = skip_ws(b, i);
                if b.get(i) != Some(&b':') {
                    return Err(LineError::Parse);
                }
                i += 1;
                state = State::Value;
            }
            State::After => {
                if depth == 1 {
                    return Ok(i);
                }
                i = skip_ws(b, i);
                let is_arr = (arrays >> (depth - 1)) & 1 == 1;
                match b.get(i) {
                    Some(b',') => {
                        i += 1;
                        state = if is_arr { State::Value } else { State::Key };
                    }
                    Some(b'}') if !is_arr => {
                        i += 1;
                        close(c, line, &frames, &mut tracked, depth, i);
                        depth -= 1;
                    }
                    Some(b']') if is_arr => {
                        i += 1;
                        close(c, line, &frames, &mut tracked, depth, i);
                        depth -= 1;
                    }
                    _ => return Err(LineError::Parse),
                }
            }
        }
    }
}

/// Closes the non-empty container at `depth` that ends just before `end`:
/// offers its raw text if it was captured, and untracks it.
fn close<'a>(
    c: &mut Collector<'_, 'a>,
    line: &LineText<'a>,
    frames: &[Frame],
    tracked: &mut usize,
    depth: usize,
    end: usize,
) {
    if depth != *tracked {
        return;
    }
    *tracked -= 1;
    let Some(f) = frames.get(depth) else {
        return;
    };
    if f.capture == NO_ID {
        return;
    }
    let Some(node) = c.schema().node(f.capture) else {
        return;
    };
    let Some(last) = key_bytes(line.bytes, f.key) else {
        return;
    };
    // The key path: the tracked keys above this container, then its own.
    let path = frames.get(2..depth).unwrap_or(&[]);
    let value = line.value(f.start, end, ValueKind::Object);
    c.offer_node(
        node,
        |name| path_is(line.bytes, path, &last, &name.name),
        value,
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::super::fields::Role;
    use super::*;
    use proptest::prelude::*;

    fn get(line: &str, role: Role) -> Option<String> {
        let s = Schema::default();
        parse_json(line.as_bytes(), &s)
            .unwrap()
            .get(role)
            .map(|v| v.text.to_string())
    }

    fn id(line: &str) -> Option<String> {
        get(line, Role::RequestId)
    }

    #[test]
    fn example_14_field_precedence() {
        let s = Schema::default();
        let l1 = br#"{"trace_id":"T-77","ts":"2024-05-01T10:00:00.000Z","request_id":"r1","service":"gateway","event":"server_recv"}"#;
        let f = parse_json(l1, &s).unwrap();
        assert_eq!(f.get(Role::RequestId).unwrap().text, "r1");
        assert_eq!(f.get(Role::RequestId).unwrap().name_index, 0);
        assert_eq!(f.get(Role::Ts).unwrap().text, "2024-05-01T10:00:00.000Z");
        assert_eq!(f.get(Role::Service).unwrap().text, "gateway");
        assert_eq!(f.get(Role::Event).unwrap().text, "server_recv");
        assert_eq!(f.get(Role::Peer), None);

        let l2 = r#"{"ts":"2024-05-01T10:00:00.001Z","RequestId":"x-9","requestId":"r1","service":"gateway","event":"client_send","peer":"orders"}"#;
        assert_eq!(id(l2).as_deref(), Some("r1"));
        assert_eq!(get(l2, Role::Peer).as_deref(), Some("orders"));
        let l3 = r#"{"ts":"2024-05-01T10:00:00.009Z","request_id":"r1","service":"gateway","event":"client_recv","peer":"orders","request_id":"r2"}"#;
        assert_eq!(id(l3).as_deref(), Some("r1"));
        let l4 = r#"{"ts":"2024-05-01T10:00:00.010Z","request_id":"","trace_id":"r1","service":"gateway","event":"server_send"}"#;
        assert_eq!(id(l4).as_deref(), Some("r1"));
        let o1 = r#"{"ts":"2024-05-01T10:00:00.003Z","app":"spring-boot","service":"orders","request_id":"r1","event":"server_recv"}"#;
        assert_eq!(get(o1, Role::Service).as_deref(), Some("orders"));
        let o2 = r#"{"timestamp":"2024-05-01T10:00:00.500Z","ts":"2024-05-01T10:00:00.007Z","Request_ID":"r1","service":"orders","event":"server_send"}"#;
        assert_eq!(
            get(o2, Role::Ts).as_deref(),
            Some("2024-05-01T10:00:00.007Z")
        );
        assert_eq!(id(o2).as_deref(), Some("r1"));
    }

    #[test]
    fn example_13_placeholder_ids_raw_values() {
        // Interpretation is the caller's: here only what each line carries.
        let s = Schema::default();
        let f = parse_json(br#"{"ts":"t","request_id":null,"service":"g"}"#, &s).unwrap();
        assert_eq!(f.get(Role::RequestId), None);
        let f = parse_json(br#"{"ts":"t","request_id":0,"service":"g"}"#, &s).unwrap();
        let v = f.get(Role::RequestId).unwrap();
        assert_eq!((v.text.as_ref(), v.kind), ("0", ValueKind::Number));
        let f = parse_json(br#"{"request_id":42}"#, &s).unwrap();
        assert_eq!(f.get(Role::RequestId).unwrap().text, "42");
        let f = parse_json(br#"{"request_id":" ab12cd "}"#, &s).unwrap();
        let v = f.get(Role::RequestId).unwrap();
        assert_eq!((v.text.as_ref(), v.kind), (" ab12cd ", ValueKind::String));
        assert_eq!(id(r#"{"request_id":"N/A"}"#).as_deref(), Some("N/A"));
    }

    #[test]
    fn dotted_paths_nested_and_flat() {
        assert_eq!(id(r#"{"trace":{"id":"abc"}}"#).as_deref(), Some("abc"));
        assert_eq!(id(r#"{"trace.id":"abc"}"#).as_deref(), Some("abc"));
        assert_eq!(id(r#"{"Trace":{"ID":"abc"}}"#).as_deref(), Some("abc"));
        assert_eq!(
            id(r#"{"trace":{"x":{"id":"no"}},"trace":{"id":"abc"}}"#).as_deref(),
            Some("abc")
        );
        assert_eq!(id(r#"{"x":{"trace":{"id":"no"}}}"#), None);
        let line = r#"{"service":{"name":"orders","version":"1"},"app":"spring"}"#;
        assert_eq!(get(line, Role::Service).as_deref(), Some("orders"));
        let s = Schema::default();
        let f = parse_json(line.as_bytes(), &s).unwrap();
        assert_eq!(f.get(Role::Service).unwrap().name_index, 1);
        // `service` as a plain string beats `service.name`.
        let line = r#"{"service":{"name":"inner"},"service":"outer"}"#;
        assert_eq!(get(line, Role::Service).as_deref(), Some("outer"));
        let line = r#"{"http":{"method":"GET","status_code":503},"log":{"level":"error"}}"#;
        assert_eq!(get(line, Role::Status).as_deref(), Some("503"));
        assert_eq!(get(line, Role::Level).as_deref(), Some("error"));
        // Exact case beats case-insensitive across nested and flat spellings.
        let line = r#"{"TRACE":{"id":"a"},"trace":{"id":"b"}}"#;
        assert_eq!(id(line).as_deref(), Some("b"));
        let line = r#"{"Trace.Id":"a","trace":{"id":"b"}}"#;
        assert_eq!(id(line).as_deref(), Some("b"));
    }

    #[test]
    fn whitespace_between_tokens() {
        let line = " \t{ \"request_id\" : \"r1\" , \"http\" : { \"status_code\" : 503 } , \"ok\" : [ 1 , { } ] }\r";
        assert_eq!(id(line).as_deref(), Some("r1"));
        assert_eq!(get(line, Role::Status).as_deref(), Some("503"));
    }

    #[test]
    fn empty_segments_are_not_the_top_level() {
        // Found by proptest: the empty prefix of `._` is not the root.
        let s = Schema::new(&[(Role::RequestId, vec!["._".into()])]);
        assert_eq!(
            parse_json(br#"{"_":"no"}"#, &s)
                .unwrap()
                .get(Role::RequestId),
            None
        );
        let f = parse_json(br#"{"":{"_":"nested"}}"#, &s).unwrap();
        assert_eq!(f.get(Role::RequestId).unwrap().text, "nested");
        let f = parse_json(br#"{"._":"flat"}"#, &s).unwrap();
        assert_eq!(f.get(Role::RequestId).unwrap().text, "flat");
    }

    #[test]
    fn very_deep_dotted_names_match_flat_only() {
        let name: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
        let name = name.join(".");
        let s = Schema::new(&[(Role::RequestId, vec![name.clone()])]);
        let flat = format!("{{\"{name}\":\"flat\"}}");
        let f = parse_json(flat.as_bytes(), &s).unwrap();
        assert_eq!(f.get(Role::RequestId).unwrap().text, "flat");
        // Nested beyond 16 levels is not followed (documented), still valid.
        let nested = format!(
            "{}\"v\"{}",
            (0..20).map(|i| format!("{{\"k{i}\":")).collect::<String>(),
            "}".repeat(20)
        );
        assert_eq!(
            parse_json(nested.as_bytes(), &s)
                .unwrap()
                .get(Role::RequestId),
            None
        );
        // 15 levels are followed.
        let name15: Vec<String> = (0..15).map(|i| format!("k{i}")).collect();
        let s = Schema::new(&[(Role::RequestId, vec![name15.join(".")])]);
        let nested = format!(
            "{}\"v\"{}",
            (0..15).map(|i| format!("{{\"k{i}\":")).collect::<String>(),
            "}".repeat(15)
        );
        assert_eq!(
            parse_json(nested.as_bytes(), &s)
                .unwrap()
                .get(Role::RequestId)
                .unwrap()
                .text,
            "v"
        );
    }

    #[test]
    fn overrides_with_dotted_names() {
        let s = Schema::new(&[(Role::RequestId, vec!["correlation".into()])]);
        let f = parse_json(br#"{"request_id":"r1","correlation":"c1"}"#, &s).unwrap();
        assert_eq!(f.get(Role::RequestId).unwrap().text, "c1");
        let f = parse_json(br#"{"request_id":"r1"}"#, &s).unwrap();
        assert_eq!(f.get(Role::RequestId), None);

        let s = Schema::new(&[(Role::RequestId, vec!["ctx.req".into()])]);
        let f = parse_json(br#"{"ctx":{"other":[1,{"req":"no"}],"req":"c2"}}"#, &s).unwrap();
        assert_eq!(f.get(Role::RequestId).unwrap().text, "c2");
        let f = parse_json(br#"{"ctx.req":"c3"}"#, &s).unwrap();
        assert_eq!(f.get(Role::RequestId).unwrap().text, "c3");

        let s = Schema::new(&[(Role::RequestId, vec!["a.b.c".into()])]);
        for line in [
            r#"{"a":{"b":{"c":"v"}}}"#,
            r#"{"a.b":{"c":"v"}}"#,
            r#"{"a":{"b.c":"v"}}"#,
            r#"{"a.b.c":"v"}"#,
        ] {
            let f = parse_json(line.as_bytes(), &s).unwrap();
            assert_eq!(f.get(Role::RequestId).unwrap().text, "v", "{line}");
        }
    }

    #[test]
    fn scalar_kinds_and_escapes() {
        let s = Schema::default();
        let f = parse_json(
            br#"{"ts":1.7e9,"request_id":"a\"b\u00e9","error":true}"#,
            &s,
        )
        .unwrap();
        let ts = f.get(Role::Ts).unwrap();
        assert_eq!((ts.text.as_ref(), ts.kind), ("1.7e9", ValueKind::Number));
        let rid = f.get(Role::RequestId).unwrap();
        assert_eq!(rid.text, "a\"bé");
        assert!(matches!(rid.text, Cow::Owned(_)));
        let err = f.get(Role::Error).unwrap();
        assert_eq!((err.text.as_ref(), err.kind), ("true", ValueKind::Bool));
        let f = parse_json(br#"{"request_id":"plain"}"#, &s).unwrap();
        assert!(matches!(
            f.get(Role::RequestId).unwrap().text,
            Cow::Borrowed(_)
        ));
        // An escaped key still matches.
        assert_eq!(id(r#"{"request\u005fid":"k"}"#).as_deref(), Some("k"));
    }

    #[test]
    fn null_object_array_fall_through() {
        let line = r#"{"request_id":null,"requestId":{"a":1},"req_id":[1],"reqId":"  ","x_request_id":"ok"}"#;
        assert_eq!(id(line).as_deref(), Some("ok"));
        assert_eq!(
            get(r#"{"service":{},"svc":"s"}"#, Role::Service).as_deref(),
            Some("s")
        );
    }

    #[test]
    fn error_object_is_present() {
        let s = Schema::default();
        let f = parse_json(br#"{"error":{ "code" : 5, "msg":["x"] },"err":"late"}"#, &s).unwrap();
        let e = f.get(Role::Error).unwrap();
        assert_eq!(e.text, r#"{ "code" : 5, "msg":["x"] }"#);
        assert_eq!((e.kind, e.name_index), (ValueKind::Object, 0));
        let f = parse_json(br#"{"error":[1,2]}"#, &s).unwrap();
        assert_eq!(f.get(Role::Error).unwrap().text, "[1,2]");
        let f = parse_json(br#"{"error":{},"exception":[ ],"err":"boom"}"#, &s).unwrap();
        assert_eq!(f.get(Role::Error).unwrap().text, "boom");
        let f = parse_json(br#"{"error":{ }}"#, &s).unwrap();
        assert_eq!(f.get(Role::Error), None);
        let f = parse_json(br#"{"error":null}"#, &s).unwrap();
        assert_eq!(f.get(Role::Error), None);
    }

    #[test]
    fn invalid_utf8_only_in_needed_fields() {
        let s = Schema::default();
        assert_eq!(
            parse_json(b"{\"request_id\":\"a\xffb\",\"ts\":1}", &s),
            Err(LineError::InvalidUtf8)
        );
        let f = parse_json(b"{\"msg\":\"a\xffb\",\"request_id\":\"r\",\"x\xff\":1}", &s).unwrap();
        assert_eq!(f.get(Role::RequestId).unwrap().text, "r");
        // A losing candidate does not matter.
        let f = parse_json(b"{\"trace_id\":\"\xff\",\"request_id\":\"r\"}", &s).unwrap();
        assert_eq!(f.get(Role::RequestId).unwrap().text, "r");
        assert_eq!(
            parse_json(b"{\"error\":{\"m\":\"\xff\"}}", &s),
            Err(LineError::InvalidUtf8)
        );
    }

    #[test]
    fn garbage_is_a_parse_error() {
        let s = Schema::default();
        for bad in [
            "",
            "   ",
            "{",
            r#"{"a":"#,
            r#"{"a":1}x"#,
            "[1,2]",
            r#""str""#,
            "42",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":-}"#,
            r#"{"a":1e}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12"}"#,
            "{\"a\":\"\t\"}",
            r#"{"a":[1,]}"#,
            r#"{"a":[1 2]}"#,
            r#"{"a":{"b":1]}"#,
            r#"{"a":1}{"b":2}"#,
            r#"{"a":truex}"#,
            r#"{"a":"b"#,
        ] {
            assert_eq!(
                parse_json(bad.as_bytes(), &s),
                Err(LineError::Parse),
                "{bad:?}"
            );
        }
        for good in [
            "{}",
            " { } \r",
            r#"{"a":[]}"#,
            r#"{"a":[{},[],"x",-0.5e+3,true,false,null]}"#,
            "\u{feff}{\"a\":1}",
            r#"{"a":"\/\b\f\n\r\t\\\"\uABCD"}"#,
        ] {
            assert!(parse_json(good.as_bytes(), &s).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn deep_nesting_is_a_parse_error_without_crash() {
        let s = Schema::default();
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse_json(deep.as_bytes(), &s), Err(LineError::Parse));
        let deep = format!("{}{}", "{\"trace\":".repeat(100_000), "}".repeat(100_000));
        assert_eq!(parse_json(deep.as_bytes(), &s), Err(LineError::Parse));
        // 128 levels are fine.
        let ok = format!("{{\"a\":{}1{}}}", "[".repeat(127), "]".repeat(127));
        assert!(parse_json(ok.as_bytes(), &s).is_ok());
        let too = format!("{{\"a\":{}1{}}}", "[".repeat(128), "]".repeat(128));
        assert_eq!(parse_json(too.as_bytes(), &s), Err(LineError::Parse));
    }

    /// The quote index of every line length up to its limit marks exactly
    /// the line's quotes, and a backslash or control byte anywhere, the
    /// tail included, makes the line not plain.
    #[test]
    fn quote_index_of_every_length() {
        let pattern = b"{\"ab\":\"c d\",x1}";
        let text: Vec<u8> = (0..INDEX_WORDS * 64)
            .map(|i| pattern[(i * 7 + i / 13) % pattern.len()])
            .collect();
        for n in 0..=text.len() {
            let line = &text[..n];
            let index = IndexedLine::new(line).unwrap();
            for (i, &c) in line.iter().enumerate() {
                let bit = index.quotes[i / 64] >> (i % 64) & 1;
                assert_eq!(bit == 1, c == b'"', "length {n}, byte {i}");
            }
            let beyond = (n..INDEX_WORDS * 64).any(|i| index.quotes[i / 64] >> (i % 64) & 1 == 1);
            assert!(!beyond, "length {n}");
            // Spoiled anywhere in its last 17 bytes (the tail and the block
            // before it), the line is not plain.
            for at in n.saturating_sub(17)..n {
                for bad in [b'\\', b'\n', 0x01] {
                    let mut spoiled = line.to_vec();
                    spoiled[at] = bad;
                    assert!(
                        IndexedLine::new(&spoiled).is_none(),
                        "length {n}, {at}, {bad}"
                    );
                }
            }
        }
    }

    /// A key too near its line's end for a whole-word load gets the word a
    /// load would give, zero-padded; and such keys are told apart.
    #[test]
    fn keys_at_the_end_of_a_line() {
        let le = |k: &[u8]| {
            let mut w = [0u8; 8];
            w[..k.len().min(8)].copy_from_slice(&k[..k.len().min(8)]);
            u64::from_le_bytes(w)
        };
        for key in [
            &b""[..],
            b"a",
            b"svc",
            b"service",
            b"services",
            b"request_id",
        ] {
            assert_eq!(short_tail_word(key), le(key), "{key:?}");
        }
        assert_eq!(key_words(b"{\"ab\":1}", 2, 4), (le(b"ab"), 0));
        assert_eq!(
            get(r#"{"x":1,"lvl":"a","svc":"b"}"#, Role::Service),
            Some("b".into())
        );
        assert_eq!(
            get(r#"{"x":1,"svc":"b","lvl":"a"}"#, Role::Level),
            Some("a".into())
        );
    }

    /// Keys longer than 16 bytes that share their length, first eight and
    /// last eight bytes are still told apart by the flat-line plans.
    #[test]
    fn flat_plans_tell_long_keys_apart() {
        let s = Schema::new(&[(Role::RequestId, vec!["request_id_AAAA_trace_id".into()])]);
        let lines = [
            r#"{"ts":1,"request_id_AAAA_trace_id":"yes"}"#,
            r#"{"ts":1,"request_id_BBBB_trace_id":"no"}"#,
            r#"{"ts":1,"request_id_AAAA_trace_id":"again"}"#,
            r#"{"ts":1,"request_id_BBBB_trace_id":"no"}"#,
        ];
        let mut c = Collector::new(&s);
        let got: Vec<Option<String>> = lines
            .iter()
            .map(|l| {
                parse_json_into(l.as_bytes(), &mut c).unwrap();
                let f = c.result().unwrap();
                f.get(Role::RequestId).map(|v| v.text.to_string())
            })
            .collect();
        assert_eq!(got, [Some("yes".into()), None, Some("again".into()), None]);
        // Both shapes were planned, neither confused with the other.
        assert_eq!(c.shapes.plans.len(), 2);
    }

    /// A collector whose lines keep being nested stops trying plans, and
    /// reads every line, before and after, as the general scan does.
    #[test]
    fn nested_lines_turn_plans_off() {
        let s = Schema::default();
        let nested = r#"{"ts":"2024-05-01T10:00:00Z","log":{"level":"error"},"request_id":"r1"}"#;
        let flat = r#"{"ts":"2024-05-01T10:00:00Z","level":"info","request_id":"r2"}"#;
        let lines: Vec<&str> = std::iter::repeat_n(nested, GIVE_UP as usize + 1)
            .chain([flat, nested, flat])
            .collect();
        let mut c = Collector::new(&s);
        for (k, line) in lines.iter().enumerate() {
            parse_json_into(line.as_bytes(), &mut c).unwrap();
            let got = c.result().cloned();
            assert_eq!(got, parse_json(line.as_bytes(), &s), "line {k}");
            let level = got.unwrap().get(Role::Level).map(|v| v.text.to_string());
            let want = if line == &nested { "error" } else { "info" };
            assert_eq!(level.as_deref(), Some(want));
        }
        assert!(!c.shapes.worth_trying());
        assert!(c.shapes.plans.is_empty());
    }

    #[test]
    fn is_json_object_checks_structure_only() {
        assert!(is_json_object(br#"{"a":"b=c"}"#));
        assert!(!is_json_object(b"a=b"));
        assert!(!is_json_object(b"[]"));
    }

    /// The reference rule of SPEC §1 applied to a flat key list.
    fn reference(
        pairs: &[(String, serde_json::Value)],
        names: &[&str],
        error: bool,
    ) -> Option<String> {
        use serde_json::Value;
        let usable = |v: &Value| match v {
            Value::String(s) => !s.trim().is_empty(),
            Value::Number(_) | Value::Bool(_) => true,
            Value::Object(m) => error && !m.is_empty(),
            Value::Array(a) => error && !a.is_empty(),
            Value::Null => false,
        };
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for name in names {
            let exact = pairs.iter().find(|(k, v)| k == name && usable(v));
            let any = pairs
                .iter()
                .find(|(k, v)| k.eq_ignore_ascii_case(name) && usable(v));
            if let Some((_, v)) = exact.or(any) {
                return Some(text(v));
            }
        }
        None
    }

    fn arb_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::{Value, json};
        prop_oneof![
            "[ a-zA-Z0-9\"\\\\é\t\n\u{1F600}]{0,8}".prop_map(Value::String),
            any::<i64>().prop_map(|n| json!(n)),
            (-1e12f64..1e12).prop_map(|f| json!(f)),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
            Just(json!({})),
            Just(json!([])),
            Just(json!({"k": "v", "n": [1, 2]})),
            Just(json!([null])),
        ]
    }

    fn arb_key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "request_id",
                "Request_Id",
                "REQUEST_ID",
                "requestId",
                "requestid",
                "trace_id",
                "traceId",
                "traceid",
                "trace.id",
                "ts",
                "time",
                "TS",
                "service",
                "app",
                "Service",
                "error",
                "err",
                "exception",
                "ERR",
                "msg",
                "level",
                "status",
                "duration",
            ])
            .prop_map(String::from),
            "[a-z_.]{1,6}",
        ]
    }

    /// A JSON value with keys in a chosen order (duplicates allowed).
    #[derive(Clone, Debug)]
    enum J {
        Obj(Vec<(String, J)>),
        Arr(Vec<J>),
        Str(String),
        Num(i64),
        Bool(bool),
        Null,
    }

    impl J {
        fn write(&self, out: &mut String) {
            match self {
                J::Obj(members) => {
                    out.push('{');
                    for (n, (k, v)) in members.iter().enumerate() {
                        if n > 0 {
                            out.push(',');
                        }
                        out.push_str(&serde_json::to_string(k).unwrap());
                        out.push(':');
                        v.write(out);
                    }
                    out.push('}');
                }
                J::Arr(items) => {
                    out.push('[');
                    for (n, v) in items.iter().enumerate() {
                        if n > 0 {
                            out.push(',');
                        }
                        v.write(out);
                    }
                    out.push(']');
                }
                J::Str(s) => out.push_str(&serde_json::to_string(s).unwrap()),
                J::Num(n) => out.push_str(&n.to_string()),
                J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                J::Null => out.push_str("null"),
            }
        }

        fn text(&self) -> String {
            match self {
                J::Str(s) => s.clone(),
                other => {
                    let mut out = String::new();
                    other.write(&mut out);
                    out
                }
            }
        }

        /// Every member reachable through objects, as (dotted path, value),
        /// in the order the scanner offers them (a container after its
        /// contents).
        fn flatten<'j>(&'j self, prefix: &str, out: &mut Vec<(String, &'j J)>) {
            if let J::Obj(members) = self {
                for (k, v) in members {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    v.flatten(&path, out);
                    out.push((path, v));
                }
            }
        }
    }

    fn arb_j() -> impl Strategy<Value = J> {
        let key = prop::sample::select(vec![
            "trace",
            "Trace",
            "id",
            "ID",
            "service",
            "name",
            "http",
            "status_code",
            "error",
            "err",
            "request_id",
            "ts",
            "x",
            "trace.id",
            "service.name",
        ])
        .prop_map(String::from);
        let leaf = prop_oneof![
            "[a-z \"é]{0,4}".prop_map(J::Str),
            any::<i16>().prop_map(|n| J::Num(i64::from(n))),
            any::<bool>().prop_map(J::Bool),
            Just(J::Null),
        ];
        leaf.prop_recursive(4, 32, 4, move |inner| {
            prop_oneof![
                prop::collection::vec((key.clone(), inner.clone()), 0..4).prop_map(J::Obj),
                prop::collection::vec(inner, 0..3).prop_map(J::Arr),
            ]
        })
    }

    /// The SPEC rule over every reachable member (paths joined with dots).
    fn reference_nested(root: &J, names: &[&str], error: bool) -> Option<String> {
        let mut members = Vec::new();
        root.flatten("", &mut members);
        let usable = |v: &J| match v {
            J::Str(s) => !s.trim().is_empty(),
            J::Num(_) | J::Bool(_) => true,
            J::Obj(m) => error && !m.is_empty(),
            J::Arr(a) => error && !a.is_empty(),
            J::Null => false,
        };
        for name in names {
            let exact = members.iter().find(|(p, v)| p == name && usable(v));
            let any = members
                .iter()
                .find(|(p, v)| p.eq_ignore_ascii_case(name) && usable(v));
            if let Some((_, v)) = exact.or(any) {
                return Some(v.text());
            }
        }
        None
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn json_nested_agrees_with_reference(members in prop::collection::vec((
            prop::sample::select(vec!["trace", "service", "http", "error", "request_id", "x"]).prop_map(String::from),
            arb_j(),
        ), 0..5)) {
            let root = J::Obj(members);
            let mut line = String::new();
            root.write(&mut line);
            prop_assert!(serde_json::from_str::<serde_json::Value>(&line).is_ok());
            let s = Schema::default();
            let f = parse_json(line.as_bytes(), &s).unwrap();
            for role in Role::ALL {
                let want = reference_nested(&root, role.default_names(), role == Role::Error);
                let got = f.get(role).map(|v| v.text.to_string());
                prop_assert_eq!(got, want, "role {:?} line {}", role, line);
            }
        }

        #[test]
        fn json_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let s = Schema::default();
            let _ = parse_json(&bytes, &s);
        }

        #[test]
        fn json_like_never_panics(text in "[{}\\[\\]\":,0-9a-z.\\\\ eE+-]{0,80}") {
            let s = Schema::new(&[(Role::RequestId, vec!["a.b".into(), "a".into()])]);
            let _ = parse_json(text.as_bytes(), &s);
            let t = format!("{{\"a\":{text}");
            let _ = parse_json(t.as_bytes(), &s);
        }

        #[test]
        fn json_agrees_with_reference(pairs in prop::collection::vec((arb_key(), arb_value()), 0..10)) {
            let body: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), serde_json::to_string(v).unwrap()))
                .collect();
            let line = format!("{{{}}}", body.join(","));
            // serde_json agrees the line is valid.
            prop_assert!(serde_json::from_str::<serde_json::Value>(&line).is_ok());
            let s = Schema::default();
            let f = parse_json(line.as_bytes(), &s).unwrap();
            for role in Role::ALL {
                let want = reference(&pairs, role.default_names(), role == Role::Error);
                let got = f.get(role).map(|v| v.text.to_string());
                prop_assert_eq!(got, want, "role {:?} line {}", role, line);
            }
        }

        /// The SIMD block masks are the byte-by-byte ones, and the index
        /// marks exactly the quotes of a plain line of any length.
        #[test]
        fn quote_index_is_exact(bytes in prop::collection::vec(
            prop::sample::select(vec![b'"', b'\\', b' ', b'a', 0x1F, 0x20, 0x7F, 0x80, 0xFF, 0x00]),
            0..1100,
        )) {
            for block in bytes.chunks_exact(16) {
                let block: &[u8; 16] = block.try_into().unwrap();
                prop_assert_eq!(block_masks(block), block_masks_portable(block));
            }
            match IndexedLine::new(&bytes) {
                Some(index) => {
                    prop_assert!(is_plain(&bytes) && bytes.len() <= INDEX_WORDS * 64);
                    for i in 0..INDEX_WORDS * 64 {
                        let bit = index.quotes[i / 64] >> (i % 64) & 1 == 1;
                        prop_assert_eq!(bit, bytes.get(i) == Some(&b'"'), "at {}", i);
                    }
                }
                None => prop_assert!(!is_plain(&bytes) || bytes.len() > INDEX_WORDS * 64),
            }
        }

        /// Lines read one after another by one collector — flat lines by
        /// the plans of their key sequences, reused across lines and evicted
        /// when there are many shapes — give what the general scan gives
        /// for each line alone: blank, null and non-blank values in any
        /// place, repeated keys, spaces between tokens.
        #[test]
        fn flat_plans_agree_with_the_general_scan(
            shapes in prop::collection::vec(prop::collection::vec(arb_key(), 1..8), 1..24),
            lines in prop::collection::vec(
                (0usize..24, prop::collection::vec(
                    prop_oneof![
                        "[ a-zA-Z0-9é]{0,6}".prop_map(|t| format!("\"{t}\"")),
                        Just("\"\"".to_string()),
                        Just("\"  \"".to_string()),
                        any::<i32>().prop_map(|n| n.to_string()),
                        Just("-0.5e3".to_string()),
                        Just("true".to_string()),
                        Just("false".to_string()),
                        Just("null".to_string()),
                    ],
                    8,
                ), any::<bool>()),
                1..60,
            ),
        ) {
            let texts: Vec<String> = lines
                .iter()
                .map(|(shape, values, spaced)| {
                    let keys = &shapes[shape % shapes.len()];
                    let sep = if *spaced { " " } else { "" };
                    let body: Vec<String> = keys
                        .iter()
                        .zip(values)
                        .map(|(k, v)| format!("{sep}\"{k}\"{sep}:{sep}{v}{sep}"))
                        .collect();
                    format!("{{{}}}", body.join(","))
                })
                .collect();
            let s = Schema::default();
            let mut reused = Collector::new(&s);
            for line in &texts {
                let mut general = Collector::new(&s);
                let want = scan_object(line.as_bytes(), &mut general, &AnyLine)
                    .and_then(|()| general.try_finish());
                let got = parse_json_into(line.as_bytes(), &mut reused)
                    .and_then(|()| reused.result().cloned());
                prop_assert_eq!(got, want, "{}", line);
            }
        }

        /// The plain-line scans (word at a time and indexed) give what the
        /// general one gives, and a reused collector what a fresh one gives.
        #[test]
        fn plain_scan_and_reuse_agree(
            first in prop::collection::vec((arb_key(), arb_value()), 0..8),
            second in prop::collection::vec((arb_key(), arb_value()), 0..8),
            cut in 0usize..200,
        ) {
            let line = |pairs: &[(String, serde_json::Value)]| {
                let body: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), serde_json::to_string(v).unwrap()))
                    .collect();
                format!("{{{}}}", body.join(","))
            };
            let (a, b) = (line(&first), line(&second));
            let s = Schema::default();
            // Whole lines and truncated (mostly broken) ones.
            let b_cut = &b.as_bytes()[..cut.min(b.len())];
            for text in [a.as_bytes(), b.as_bytes(), b_cut] {
                let mut general = Collector::new(&s);
                let g = scan_object(text, &mut general, &AnyLine).map(|()| general.try_finish());
                if is_plain(text) {
                    let mut plain = Collector::new(&s);
                    let p = scan_object(text, &mut plain, &PlainLine).map(|()| plain.try_finish());
                    prop_assert_eq!(&p, &g, "{:?}", String::from_utf8_lossy(text));
                    let indexed = IndexedLine::new(text).unwrap();
                    let mut plain = Collector::new(&s);
                    let p = scan_object(text, &mut plain, &indexed).map(|()| plain.try_finish());
                    prop_assert_eq!(&p, &g, "{:?}", String::from_utf8_lossy(text));
                } else {
                    prop_assert!(IndexedLine::new(text).is_none());
                }
                let fresh = parse_json(text, &s);
                prop_assert_eq!(g.and_then(|r| r), fresh.clone());
                let mut reused = Collector::new(&s);
                let _ = parse_json_into(a.as_bytes(), &mut reused);
                let again = parse_json_into(text, &mut reused).and_then(|()| reused.result().cloned());
                prop_assert_eq!(again, fresh);
            }
        }
    }
}
