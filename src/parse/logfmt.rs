//! Parse stage: the `logfmt` line format (`key=value key2="quoted value"`).
//!
//! A byte-level scanner with no allocation on the happy path: keys are runs
//! of bytes other than whitespace, `=` and `"`; a value is either a
//! double-quoted string (JSON-style backslash escapes, decoded only when the
//! value is offered) or a run of non-whitespace bytes. Bare words (and bare
//! quoted strings) are ignored. Keys are flat: `trace.id=x` matches the name
//! `trace.id`.

use super::fields::{Collector, Fields, LineError, Schema, ValueKind};
use super::fields::{
    Hit, LineText, NameRef, empty_schema, eq_mask, less_mask, strip_line, word_at,
};

/// Parses one line as logfmt and returns the value of every role.
///
/// The line may end in `\r`. Errors: [`LineError::Parse`] when the line has
/// no `key=value` pair, starts with `{` (JSON is never logfmt), or has an
/// unterminated quoted value; [`LineError::InvalidUtf8`] when a value that
/// wins a role is not valid UTF-8. Every value has [`ValueKind::String`];
/// `key=` and `key=""` count as absent.
pub fn parse_logfmt<'a>(line: &'a [u8], schema: &Schema) -> Result<Fields<'a>, LineError> {
    let mut c = Collector::new(schema);
    scan(strip_line(line), &mut c)?;
    c.try_finish()
}

/// [`parse_logfmt`] into a reused collector (emptied first); the winners
/// are then read with [`Collector::result`].
#[inline]
pub(crate) fn parse_logfmt_into<'a>(
    line: &'a [u8],
    c: &mut Collector<'_, 'a>,
) -> Result<(), LineError> {
    c.reset();
    scan(strip_line(line), c)
}

/// The scanner proper: feeds the pairs of `b` to the collector.
fn scan<'a>(b: &'a [u8], c: &mut Collector<'_, 'a>) -> Result<(), LineError> {
    let schema = c.schema();
    let line = LineText::new(b);
    let mut i = skip_ws(b, 0);
    if b.get(i) == Some(&b'{') {
        return Err(LineError::Parse);
    }
    let mut pairs = 0usize;
    while let Some(&ch) = b.get(i) {
        if ch == b'"' {
            // A bare quoted word: skip it (unterminated: the rest).
            i = match scan_quoted(b, i) {
                Some((_, end, _)) => skip_word(b, end + 1),
                None => b.len(),
            };
            i = skip_ws(b, i);
            continue;
        }
        let key_start = i;
        i = key_end(b, i);
        if i == key_start || b.get(i) != Some(&b'=') {
            // A bare word (or `=x`, or `a"b`): ignored.
            i = skip_ws(b, skip_word(b, i));
            continue;
        }
        let key_end = i;
        i += 1;
        pairs += 1;
        let hit = schema
            .lookup_in(0, b, key_start, key_end)
            .filter(|hit| c.wants_hit(hit));
        if b.get(i) == Some(&b'"') {
            let (start, end, escaped) = scan_quoted(b, i).ok_or(LineError::Parse)?;
            if let Some(hit) = hit {
                offer(c, &line, hit, (key_start, key_end), (start, end), escaped);
            }
            // Anything glued to the closing quote is ignored.
            i = skip_word(b, end + 1);
        } else {
            let start = i;
            i = skip_word(b, i);
            if let Some(hit) = hit {
                offer(c, &line, hit, (key_start, key_end), (start, i), false);
            }
        }
        i = skip_ws(b, i);
    }
    if pairs == 0 {
        return Err(LineError::Parse);
    }
    Ok(())
}

/// Offers the value at `value` (start, end), `escaped` when it has
/// backslash escapes to decode, of the key at `key` matched as `hit`.
#[inline(always)]
fn offer<'a>(
    c: &mut Collector<'_, 'a>,
    line: &LineText<'a>,
    hit: Hit<'_>,
    key: (usize, usize),
    value: (usize, usize),
    escaped: bool,
) {
    match line.str_at(value.0, value.1) {
        Some(text) if !escaped => c.offer_text(hit, line.bytes, key, text, ValueKind::String),
        _ => {
            let offered = if escaped {
                line.unescaped(value.0, value.1)
            } else {
                line.value(value.0, value.1, ValueKind::String)
            };
            let spells = |name: &NameRef| hit.spells(name, line.bytes, key.0, key.1);
            c.offer_node(hit.node, spells, offered);
        }
    }
}

/// Whether `line` has at least one `key=value` pair and is not JSON-like
/// (structure only, whatever its fields).
pub fn is_logfmt(line: &[u8]) -> bool {
    !matches!(parse_logfmt(line, empty_schema()), Err(LineError::Parse))
}

#[inline]
fn is_ws(ch: u8) -> bool {
    ch.is_ascii_whitespace()
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|&ch| is_ws(ch)) {
        i += 1;
    }
    i
}

/// The index of the first byte at or after `i` that `stops` (or the end),
/// skipping eight bytes at a time while `candidates(word)` flags none of
/// them. `candidates` must flag every stopping byte, and its lowest flag
/// must be exact (see [`eq_mask`]); it may flag bytes that do not stop.
#[inline(always)]
fn find(
    b: &[u8],
    mut i: usize,
    candidates: impl Fn(u64) -> u64,
    stops: impl Fn(u8) -> bool,
) -> usize {
    loop {
        while let Some(w) = word_at(b, i) {
            let m = candidates(w);
            if m != 0 {
                i += (m.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        match b.get(i) {
            Some(&ch) if !stops(ch) => i += 1,
            _ => return i,
        }
    }
}

/// The end of the word at `i`: the next whitespace byte, or the end.
#[inline]
fn skip_word(b: &[u8], i: usize) -> usize {
    // Whitespace bytes are all below 0x21.
    find(b, i, |w| less_mask(w, 0x21), is_ws)
}

/// The end of the key at `i`: the next whitespace, `=` or `"`, or the end.
#[inline]
fn key_end(b: &[u8], i: usize) -> usize {
    find(
        b,
        i,
        |w| less_mask(w, 0x21) | eq_mask(w, b'=') | eq_mask(w, b'"'),
        |ch| is_ws(ch) || ch == b'=' || ch == b'"',
    )
}

/// Scans the quoted string opening at `i`: (contents start, closing quote
/// index, has escapes), or `None` when it is not terminated.
#[inline]
fn scan_quoted(b: &[u8], i: usize) -> Option<(usize, usize, bool)> {
    let start = i + 1;
    let mut j = start;
    let mut escaped = false;
    loop {
        j = find(
            b,
            j,
            |w| eq_mask(w, b'"') | eq_mask(w, b'\\'),
            |ch| ch == b'"' || ch == b'\\',
        );
        match b.get(j)? {
            b'"' => return Some((start, j, escaped)),
            _ => {
                escaped = true;
                j += 2;
            }
        }
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
        parse_logfmt(line.as_bytes(), &s)
            .unwrap()
            .get(role)
            .map(|v| v.text.to_string())
    }

    #[test]
    fn example_16_lines() {
        let s = Schema::new(&[(Role::Duration, vec!["duration".into(), "durationUs".into()])]);
        let f = parse_logfmt(
            b"ts=2024-05-01T10:00:04.000Z req_id=r5 svc=camel-suffix status=200 durationUs=2500",
            &s,
        )
        .unwrap();
        assert_eq!(f.get(Role::Ts).unwrap().text, "2024-05-01T10:00:04.000Z");
        assert_eq!(f.get(Role::RequestId).unwrap().text, "r5");
        assert_eq!(f.get(Role::RequestId).unwrap().name_index, 2);
        assert_eq!(f.get(Role::Service).unwrap().text, "camel-suffix");
        assert_eq!(f.get(Role::Status).unwrap().text, "200");
        let d = f.get(Role::Duration).unwrap();
        assert_eq!(
            (d.text.as_ref(), d.name_index, d.kind),
            ("2500", 1, ValueKind::String)
        );
        assert_eq!(s.names(Role::Duration)[d.name_index], "durationUs");
        let f = parse_logfmt(
            "ts=2024-05-01T10:00:03.000Z req_id=r3 svc=micro-in-value status=200 duration=350µs\r"
                .as_bytes(),
            &s,
        )
        .unwrap();
        assert_eq!(f.get(Role::Duration).unwrap().text, "350µs");
        assert_eq!(f.get(Role::Duration).unwrap().name_index, 0);
    }

    #[test]
    fn quoted_values_bare_words_and_empty_values() {
        let line = r#"INFO handled request_id= trace_id="" req_id="a \"q\" b\\c" msg="hello world" "bare quoted" svc=orders ts=1"#;
        assert_eq!(get(line, Role::RequestId).as_deref(), Some(r#"a "q" b\c"#));
        assert_eq!(get(line, Role::Service).as_deref(), Some("orders"));
        assert_eq!(get(line, Role::Ts).as_deref(), Some("1"));
        assert_eq!(get("svc=\"  \" app=x", Role::Service).as_deref(), Some("x"));
        assert_eq!(
            get("url=http://a/?b=c&d=e peer=db", Role::Peer).as_deref(),
            Some("db")
        );
        assert_eq!(get("peer=a=b", Role::Peer).as_deref(), Some("a=b"));
        assert_eq!(
            get("peer=\"x\"junk svc=s", Role::Peer).as_deref(),
            Some("x")
        );
        assert_eq!(get("\tpeer=p\r", Role::Peer).as_deref(), Some("p"));
        assert_eq!(get("trace.id=t", Role::RequestId).as_deref(), Some("t"));
        assert_eq!(
            get("Request_ID=r1 request_id=r2 REQUEST_ID=r3", Role::RequestId).as_deref(),
            Some("r2")
        );
        assert_eq!(
            get("reqid=a request_id=b", Role::RequestId).as_deref(),
            Some("b")
        );
        let s = Schema::default();
        let f = parse_logfmt(br#"request_id="plain" x=1"#, &s).unwrap();
        assert!(matches!(
            f.get(Role::RequestId).unwrap().text,
            std::borrow::Cow::Borrowed("plain")
        ));
    }

    #[test]
    fn what_is_not_logfmt() {
        let s = Schema::default();
        for bad in [
            "",
            "   ",
            "just some words",
            "=x",
            r#"{"a":"b=c"}"#,
            " {a=b}",
            "k=\"unterminated",
            "\"only quoted\"",
        ] {
            assert_eq!(
                parse_logfmt(bad.as_bytes(), &s),
                Err(LineError::Parse),
                "{bad:?}"
            );
        }
        assert!(parse_logfmt(b"words then k=", &s).is_ok());
        assert!(is_logfmt(b"a=b"));
        assert!(!is_logfmt(br#"{"a":"b=c"}"#));
    }

    #[test]
    fn invalid_utf8_only_in_needed_fields() {
        let s = Schema::default();
        assert_eq!(
            parse_logfmt(b"request_id=a\xff ts=1", &s),
            Err(LineError::InvalidUtf8)
        );
        assert_eq!(
            parse_logfmt(b"request_id=\"a\\\"\xff\" ts=1", &s),
            Err(LineError::InvalidUtf8)
        );
        let f = parse_logfmt(b"msg=\xff\xfe request_id=r k\xff=v \xff", &s).unwrap();
        assert_eq!(f.get(Role::RequestId).unwrap().text, "r");
    }

    fn quote(v: &str) -> String {
        if !v.is_empty()
            && !v
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b == b'"' || b == b'\\')
        {
            return v.to_string();
        }
        let mut out = String::from("\"");
        for ch in v.chars() {
            match ch {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The word-wise scans stop where byte loops stop.
        #[test]
        fn scans_match_byte_loops(
            bytes in prop::collection::vec(prop_oneof![
                Just(b' '), Just(b'\t'), Just(b'\x0b'), Just(b'\x01'), Just(b'='), Just(b'"'),
                Just(b'\\'), Just(0xa0u8), b'a'..=b'z', any::<u8>(),
            ], 0..40),
            at in 0usize..40,
        ) {
            let b = &bytes[..];
            let i = at.min(b.len());
            let word = (i..b.len()).find(|&j| is_ws(b[j])).unwrap_or(b.len());
            prop_assert_eq!(skip_word(b, i), word);
            let key = (i..b.len())
                .find(|&j| is_ws(b[j]) || b[j] == b'=' || b[j] == b'"')
                .unwrap_or(b.len());
            prop_assert_eq!(key_end(b, i), key);
            // The byte loop scan_quoted replaced.
            let quoted = || {
                let (start, mut j, mut escaped) = (i + 1, i + 1, false);
                loop {
                    match b.get(j)? {
                        b'"' => return Some((start, j, escaped)),
                        b'\\' => {
                            escaped = true;
                            j += 2;
                        }
                        _ => j += 1,
                    }
                }
            };
            prop_assert_eq!(scan_quoted(b, i), quoted());
        }

        #[test]
        fn logfmt_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let s = Schema::default();
            let _ = parse_logfmt(&bytes, &s);
        }

        #[test]
        fn logfmt_like_never_panics(text in "[a-z_= \"\\\\\t{]{0,60}") {
            let s = Schema::default();
            let _ = parse_logfmt(text.as_bytes(), &s);
        }

        #[test]
        fn logfmt_round_trips(
            values in prop::collection::vec("[ a-zA-Z0-9=\"\\\\\té\u{1F600}-]{0,10}", 11),
            noise in "[a-z ]{0,10}",
        ) {
            // One distinct key per role (its first default name), values as
            // generated, formatted the way logfmt writers quote them.
            let s = Schema::default();
            let mut line = noise.clone();
            for (role, v) in Role::ALL.iter().zip(&values) {
                line.push(' ');
                line.push_str(role.default_names()[0]);
                line.push('=');
                line.push_str(&quote(v));
            }
            let f = parse_logfmt(line.as_bytes(), &s).unwrap();
            for (role, v) in Role::ALL.iter().zip(&values) {
                let want = if v.trim().is_empty() { None } else { Some(v.clone()) };
                prop_assert_eq!(f.get(*role).map(|x| x.text.to_string()), want, "{}", line);
            }
        }
    }
}
