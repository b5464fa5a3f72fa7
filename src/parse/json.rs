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

use std::borrow::Cow;

use super::fields::{Collector, Fields, LineError, NO_ID, Offered, Schema, ValueKind};
use super::fields::{has_byte, has_less, strip_line, unescape, word_at};

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

/// Whether `line` is one JSON object (structure only, whatever its fields).
pub fn is_json_object(line: &[u8]) -> bool {
    let mut c = Collector::new(&EMPTY_SCHEMA);
    scan(strip_line(line), &mut c).is_ok()
}

/// A schema with no names: structure checks that look up nothing.
pub(crate) static EMPTY_SCHEMA: std::sync::LazyLock<Schema> = std::sync::LazyLock::new(|| {
    let none: Vec<_> = super::fields::Role::ALL
        .into_iter()
        .map(|r| (r, Vec::new()))
        .collect();
    Schema::new(&none)
});

#[inline]
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

/// Whether one of the 8 bytes of `w` would stop the string loop.
#[inline(always)]
fn word_has_stop(w: u64) -> bool {
    has_less(w, 0x20) || has_byte(w, b'"') || has_byte(w, b'\\')
}

/// Scans the string whose opening quote is at `i`; returns the span of its
/// contents (the closing quote is at `span.end`).
#[inline]
fn scan_string(b: &[u8], i: usize) -> Result<KeySpan, LineError> {
    let start = i + 1;
    let mut j = start;
    let mut escaped = false;
    loop {
        while let Some(w) = word_at(b, j) {
            if word_has_stop(w) {
                break;
            }
            j += 8;
        }
        while let Some(&ch) = b.get(j) {
            if string_stop(ch) {
                break;
            }
            j += 1;
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
#[inline]
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

/// Offers a value found at `node` under `key`, inside the tracked objects
/// `frames[2..=depth]` (the key path), to the collector.
fn offer_at<'a>(
    c: &mut Collector<'_, 'a>,
    b: &'a [u8],
    frames: &[Frame],
    node: u32,
    key: KeySpan,
    value: Offered<'a>,
) {
    let schema = c.schema();
    let Some(node) = schema.node(node) else {
        return;
    };
    let Some(last) = key_bytes(b, key) else {
        return;
    };
    let path = frames.get(2..).unwrap_or(&[]);
    c.offer_node(node, |name| path_is(b, path, &last, name), value);
}

/// Decodes the string value with contents `span`.
fn string_value(b: &[u8], span: KeySpan) -> Offered<'_> {
    let Some(raw) = b.get(span.start..span.end) else {
        return Offered::InvalidUtf8;
    };
    if span.escaped {
        match unescape(raw) {
            Some(s) => Offered::Text(Cow::Owned(s), ValueKind::String),
            None => Offered::InvalidUtf8,
        }
    } else {
        Offered::from_bytes(raw, ValueKind::String)
    }
}

/// The scanner proper: validates `b` as one JSON object and feeds the
/// collector. Iterative; the container kinds live in a 128-bit set.
fn scan<'a>(b: &'a [u8], c: &mut Collector<'_, 'a>) -> Result<(), LineError> {
    let schema = c.schema();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return Err(LineError::Parse);
    }
    // Bit d-1 set: the container at depth d is an array.
    let mut arrays: u128 = 0;
    let mut depth: usize = 0;
    // frames[1..=tracked] are the tracked levels (always a prefix of the
    // open containers); frames[0] is unused.
    let mut frames = [EMPTY_FRAME; MAX_TRACKED + 1];
    let mut tracked: usize = 0;
    // The node matched by the key just read, for the value that follows.
    let mut pending: Option<(u32, KeySpan)> = None;
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
                        if depth == 1 {
                            if let Some(f) = frames.get_mut(1) {
                                *f = Frame {
                                    prefix: 0,
                                    ..EMPTY_FRAME
                                };
                                tracked = 1;
                            }
                        } else if let Some((id, key)) = p
                            && let (Some(node), Some(f)) = (schema.node(id), frames.get_mut(depth))
                        {
                            let prefix = if is_arr { NO_ID } else { node.child };
                            let capture = if node.has_error && c.wants(node) {
                                id
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
                        if let Some((id, key)) = p
                            && schema.node(id).is_some_and(|n| c.wants(n))
                        {
                            let frames = frames.get(..=depth).unwrap_or(&[]);
                            offer_at(c, b, frames, id, key, string_value(b, span));
                        }
                        state = State::After;
                    }
                    b'-' | b'0'..=b'9' => {
                        let end = scan_number(b, i)?;
                        if let Some((id, key)) = p
                            && let Some(text) = b.get(i..end)
                        {
                            let frames = frames.get(..=depth).unwrap_or(&[]);
                            let value = Offered::from_bytes(text, ValueKind::Number);
                            offer_at(c, b, frames, id, key, value);
                        }
                        i = end;
                        state = State::After;
                    }
                    b't' | b'f' | b'n' => {
                        let lit: &'static str = match ch {
                            b't' => "true",
                            b'f' => "false",
                            _ => "null",
                        };
                        if !b.get(i..).is_some_and(|r| r.starts_with(lit.as_bytes())) {
                            return Err(LineError::Parse);
                        }
                        i += lit.len();
                        if let Some((id, key)) = p
                            && ch != b'n'
                        {
                            let frames = frames.get(..=depth).unwrap_or(&[]);
                            let value = Offered::Text(Cow::Borrowed(lit), ValueKind::Bool);
                            offer_at(c, b, frames, id, key, value);
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
                        key_bytes(b, key).and_then(|k| {
                            schema
                                .lookup(f.prefix, &k)
                                .map(|(id, n)| (id, n.child, c.wants(n)))
                        })
                    } else {
                        b.get(key.start..key.end).and_then(|k| {
                            schema
                                .lookup(f.prefix, k)
                                .map(|(id, n)| (id, n.child, c.wants(n)))
                        })
                    };
                    if let Some((id, child, wanted)) = found
                        && (wanted || child != NO_ID)
                    {
                        pending = Some((id, key));
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
                i = skip_ws(b, i);
                if depth == 0 {
                    return if i == b.len() {
                        Ok(())
                    } else {
                        Err(LineError::Parse)
                    };
                }
                let is_arr = (arrays >> (depth - 1)) & 1 == 1;
                match b.get(i) {
                    Some(b',') => {
                        i += 1;
                        state = if is_arr { State::Value } else { State::Key };
                    }
                    Some(b'}') if !is_arr => {
                        i += 1;
                        close(c, b, &frames, &mut tracked, depth, i);
                        depth -= 1;
                    }
                    Some(b']') if is_arr => {
                        i += 1;
                        close(c, b, &frames, &mut tracked, depth, i);
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
    b: &'a [u8],
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
    if let Some(raw) = b.get(f.start..end) {
        let parents = frames.get(..depth).unwrap_or(&[]);
        let value = Offered::from_bytes(raw, ValueKind::Object);
        offer_at(c, b, parents, f.capture, f.key, value);
    }
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

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
    }
}
