//! Parse stage, container envelopes (SPEC §1 "Formats"): the Docker
//! json-file and CRI line wrappers that sit around an application's own log
//! line, unwrapped before that inner line is parsed in its own format.
//!
//! Owns: [`Envelope`] and its detection ([`detect_envelope`]), one envelope
//! line → its inner line ([`unwrap_line`]), the joining of split lines
//! ([`PartialJoiner`]: CRI `P` pieces, Docker pieces without a trailing
//! `\n`), and the service named by a Kubernetes log path
//! ([`kubernetes_service`], [`strip_pod_hash`]). It does not parse the inner
//! line, nor the envelope's time (the caller uses that time only when the
//! inner line has none).
//!
//! Choices where SPEC §1 is silent:
//! * A Docker line is a JSON object with a string `log` and a string
//!   `stream` (Docker always writes both, and `time`); other keys (`attrs`)
//!   are ignored; anything else, a duplicated key included, is not an
//!   envelope line. JSON escapes in `log` are decoded once, so an
//!   application's JSON line comes out as its own JSON text.
//! * A CRI line is `<time> <stdout|stderr> <tag> <content>` with a time that
//!   starts `YYYY-`, and a tag whose first `:`-separated part is `F` (full)
//!   or `P` (partial); the content may be empty.
//! * Pieces are joined per stream (stdout and stderr lines interleave in one
//!   file); a joined line keeps its first piece's time and file offset. A
//!   joined line longer than the limit is dropped whole and reported once as
//!   [`Joined::TooLong`]. Pieces still open at the end of the file are a
//!   line of their own, as a last line without a newline is.
//! * Pod names lose the suffixes Kubernetes generates: the 5-character pod
//!   suffix (drawn from `bcdfghjklmnpqrstvwxz2456789`, so it has no vowels)
//!   and, before it, a ReplicaSet pod-template-hash (6–10 characters of
//!   `bcdf456789`, or decimal digits as older clusters and CronJob-made Jobs
//!   write them): `orders-7d9f8b6c5-x2x4z` → `orders`, `fluentd-x7k2p` →
//!   `fluentd`. A StatefulSet ordinal goes too (`db-0` → `db`): the replicas
//!   of one StatefulSet are one service. Anything else is kept
//!   (`fluentd-abcde` is not a generated name: it has vowels).

use std::borrow::Cow;
use std::path::Path;

use super::fields::{strip_line, unescape};

/// A container log envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Envelope {
    /// Docker's json-file driver: `{"log":"…\n","stream":"stdout","time":"…"}`.
    Docker,
    /// The CRI format of containerd/CRI-O: `<rfc3339> stdout F <line>`.
    Cri,
}

impl Envelope {
    /// The lower-case name for `hopscope files` and messages: `docker`, `cri`.
    pub fn name(self) -> &'static str {
        match self {
            Envelope::Docker => "docker",
            Envelope::Cri => "cri",
        }
    }
}

/// The stream an envelope line came from; pieces of a split line are joined
/// within one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// Any other stream name (Docker allows them in principle).
    Other,
}

impl Stream {
    fn from_name(name: &[u8]) -> Stream {
        match name {
            b"stdout" => Stream::Stdout,
            b"stderr" => Stream::Stderr,
            _ => Stream::Other,
        }
    }

    /// Slot of the joiner's pending buffer (stdout and other streams share).
    fn slot(self) -> usize {
        usize::from(self == Stream::Stderr)
    }
}

/// One envelope line, unwrapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unwrapped<'a> {
    /// The inner line: Docker's decoded `log` value without its trailing
    /// `\n`/`\r\n`, or CRI's content. Borrowed unless escapes were decoded.
    pub inner: Cow<'a, [u8]>,
    /// The envelope's time text (RFC 3339), which stands in when the inner
    /// line has no timestamp.
    pub time: Option<Cow<'a, str>>,
    /// A piece of a longer line: CRI tag `P`, or a Docker `log` not ending
    /// in `\n`.
    pub partial: bool,
    /// The stream the line was written to.
    pub stream: Stream,
}

/// The envelope most of the sample lines have (at least 80 % of the
/// non-blank ones), if any.
pub fn detect_envelope<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Option<Envelope> {
    let (mut total, mut docker, mut cri) = (0usize, 0usize, 0usize);
    for line in lines {
        if line.trim_ascii().is_empty() {
            continue;
        }
        total += 1;
        if unwrap_line(line, Envelope::Docker).is_some() {
            docker += 1;
        } else if unwrap_line(line, Envelope::Cri).is_some() {
            cri += 1;
        }
    }
    let enough = |n: usize| total > 0 && n * 5 >= total * 4;
    if enough(docker) {
        Some(Envelope::Docker)
    } else if enough(cri) {
        Some(Envelope::Cri)
    } else {
        None
    }
}

/// One envelope line → its inner line (Docker: the JSON-unescaped `log`
/// value without its trailing `\n`/`\r\n`; CRI: the rest after `<time>
/// <stream> <F|P> `). `None` when the line is not of that envelope, which
/// the caller counts as a `parse_error`. Never panics, whatever the bytes.
pub fn unwrap_line(line: &[u8], env: Envelope) -> Option<Unwrapped<'_>> {
    let line = strip_line(line);
    match env {
        Envelope::Docker => unwrap_docker(line),
        Envelope::Cri => unwrap_cri(line),
    }
}

/// A cursor over one line for the Docker scanner. Every read is checked, so
/// no input can make it panic.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    /// A string at the cursor: its raw content (escapes undecoded) and
    /// whether it has any escape.
    fn string(&mut self) -> Option<(&'a [u8], bool)> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            let rest = self.b.get(self.i..)?;
            let at = memchr::memchr2(b'"', b'\\', rest)?;
            self.i += at;
            if self.b.get(self.i) == Some(&b'"') {
                let raw = self.b.get(start..self.i)?;
                self.i += 1;
                return Some((raw, escaped));
            }
            escaped = true;
            self.i += 2;
        }
    }

    /// Skips a value that is not a string: a scalar, or an object or array
    /// (brackets counted, strings inside skipped). Lenient about scalars.
    fn skip_value(&mut self) -> Option<()> {
        match self.b.get(self.i)? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                // Open brackets as a bit stack (1 = object), 128 deep at most.
                let (mut stack, mut depth) = (0u128, 0u32);
                loop {
                    match *self.b.get(self.i)? {
                        b'"' => {
                            self.string()?;
                        }
                        c @ (b'{' | b'[') => {
                            if depth == 128 {
                                return None;
                            }
                            stack = (stack << 1) | u128::from(c == b'{');
                            depth += 1;
                            self.i += 1;
                        }
                        c @ (b'}' | b']') => {
                            if depth == 0 || (stack & 1 == 1) != (c == b'}') {
                                return None;
                            }
                            stack >>= 1;
                            depth -= 1;
                            self.i += 1;
                            if depth == 0 {
                                return Some(());
                            }
                        }
                        _ => self.i += 1,
                    }
                }
            }
            _ => {
                let start = self.i;
                while let Some(c) = self.b.get(self.i) {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                        break;
                    }
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
        }
    }
}

/// A string value out of the scanner: raw content and whether it has escapes.
type RawStr<'a> = (&'a [u8], bool);

fn unwrap_docker(line: &[u8]) -> Option<Unwrapped<'_>> {
    let mut s = Scan { b: line, i: 0 };
    s.ws();
    s.eat(b'{')?;
    let (mut log, mut stream, mut time): (
        Option<RawStr<'_>>,
        Option<RawStr<'_>>,
        Option<RawStr<'_>>,
    ) = (None, None, None);
    s.ws();
    if s.eat(b'}').is_none() {
        loop {
            s.ws();
            let (key, _) = s.string()?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            let slot = match key {
                b"log" => Some(&mut log),
                b"stream" => Some(&mut stream),
                b"time" => Some(&mut time),
                _ => None,
            };
            match slot {
                // The first occurrence of a key counts.
                Some(slot) if slot.is_none() => *slot = Some(s.string()?),
                _ => s.skip_value()?,
            }
            s.ws();
            if s.eat(b',').is_none() {
                s.eat(b'}')?;
                break;
            }
        }
    }
    s.ws();
    if s.i != line.len() {
        return None;
    }
    let (log, log_escaped) = log?;
    let (stream, _) = stream?;
    let (inner, partial) = docker_inner(log, log_escaped);
    let time = time.map(|(raw, escaped)| {
        if escaped {
            Cow::Owned(decode(raw))
        } else {
            String::from_utf8_lossy(raw)
        }
    });
    Some(Unwrapped {
        inner,
        time,
        partial,
        stream: Stream::from_name(stream),
    })
}

/// The inner line of a raw `log` value: borrowed when its only escape is
/// the trailing `\n` (or `\r\n`), decoded otherwise.
fn docker_inner(raw: &[u8], escaped: bool) -> (Cow<'_, [u8]>, bool) {
    if !escaped {
        return (Cow::Borrowed(raw), true);
    }
    if let Some(body) = raw.strip_suffix(b"\\n") {
        let body = body.strip_suffix(b"\\r").unwrap_or(body);
        if memchr::memchr(b'\\', body).is_none() {
            return (Cow::Borrowed(body), false);
        }
    }
    let mut v = unescape_bytes(raw);
    let (t, partial) = strip_newline(&v);
    let keep = t.len();
    v.truncate(keep);
    (Cow::Owned(v), partial)
}

/// JSON escapes decoded byte by byte: other bytes are kept as they are, so a
/// `log` value that is not valid UTF-8 stays so, and the inner line's parser
/// reports `invalid_utf8` only where a needed field holds such bytes, as for
/// plain files. A lone surrogate escape becomes U+FFFD.
fn unescape_bytes(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    let hex4 = |at: usize| -> Option<u32> {
        let h = raw.get(at..at + 4)?;
        u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
    };
    while let Some(&b) = raw.get(i) {
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let Some(&e) = raw.get(i + 1) else {
            out.push(b);
            break;
        };
        i += 2;
        let simple = match e {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            continue;
        }
        if e != b'u' {
            out.extend_from_slice(&[b'\\', e]);
            continue;
        }
        let Some(hi) = hex4(i) else {
            out.extend_from_slice(b"\\u");
            continue;
        };
        i += 4;
        let code = if (0xD800..0xDC00).contains(&hi)
            && raw.get(i) == Some(&b'\\')
            && raw.get(i + 1) == Some(&b'u')
        {
            match hex4(i + 2) {
                Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                    i += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                }
                _ => hi,
            }
        } else {
            hi
        };
        let ch = char::from_u32(code).unwrap_or('\u{fffd}');
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    }
    out
}

/// JSON escapes decoded; bytes that are not UTF-8 become U+FFFD (Docker
/// itself writes only UTF-8).
fn decode(raw: &[u8]) -> String {
    unescape(raw)
        .or_else(|| unescape(String::from_utf8_lossy(raw).as_bytes()))
        .unwrap_or_default()
}

/// Without one trailing `\n` (and a `\r` before it); partial when there was
/// no `\n`.
fn strip_newline(b: &[u8]) -> (&[u8], bool) {
    match b.strip_suffix(b"\n") {
        Some(t) => (t.strip_suffix(b"\r").unwrap_or(t), false),
        None => (b, true),
    }
}

fn unwrap_cri(line: &[u8]) -> Option<Unwrapped<'_>> {
    let mut parts = line.splitn(4, |&b| b == b' ');
    let time = parts.next()?;
    let stream = parts.next()?;
    let tag = parts.next()?;
    let content = parts.next().unwrap_or_default();
    let year_ok = time.len() >= 10
        && time.iter().take(4).all(u8::is_ascii_digit)
        && time.get(4) == Some(&b'-');
    if !year_ok || !matches!(stream, b"stdout" | b"stderr") {
        return None;
    }
    let partial = match tag.split(|&b| b == b':').next() {
        Some(b"F") => false,
        Some(b"P") => true,
        _ => return None,
    };
    let time = std::str::from_utf8(time).ok()?;
    Some(Unwrapped {
        inner: Cow::Borrowed(content),
        time: Some(Cow::Borrowed(time)),
        partial,
        stream: Stream::from_name(stream),
    })
}

/// A complete inner line out of the [`PartialJoiner`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Complete<'a> {
    /// The inner line (pieces concatenated; a trailing `\r` dropped).
    pub inner: Cow<'a, [u8]>,
    /// The first piece's envelope time.
    pub time: Option<Cow<'a, str>>,
    /// The caller's offset of the first piece (where the line starts).
    pub offset: u64,
}

/// What one pushed piece produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Joined<'a> {
    /// A partial piece was kept; nothing complete yet.
    Pending,
    /// A complete inner line.
    Line(Complete<'a>),
    /// The pieces of one line added up to more than the limit; they were
    /// dropped (one `too_long` line, starting at `offset`).
    TooLong {
        /// The caller's offset of the first piece.
        offset: u64,
    },
}

#[derive(Debug)]
struct Pending {
    buf: Vec<u8>,
    time: Option<String>,
    offset: u64,
    too_long: bool,
}

/// Joins the pieces of split lines: feed every unwrapped line of one file in
/// order with its offset; a complete line comes out when a non-partial
/// piece ends it (CRI `F` after `P`s, a Docker `log` ending in `\n`), or at
/// once for a line that was never split (borrowed, no copy). Pieces are
/// joined per stream. A joined line longer than `max_len` bytes becomes
/// [`Joined::TooLong`].
#[derive(Debug)]
pub struct PartialJoiner {
    max_len: usize,
    pending: [Option<Pending>; 2],
}

impl PartialJoiner {
    /// A joiner with nothing pending; `max_len` is `--max-line`.
    pub fn new(max_len: usize) -> Self {
        PartialJoiner {
            max_len,
            pending: [None, None],
        }
    }

    /// Feeds one unwrapped line found at `offset`.
    pub fn push<'a>(&mut self, u: Unwrapped<'a>, offset: u64) -> Joined<'a> {
        let max_len = self.max_len;
        let Some(slot) = self.pending.get_mut(u.stream.slot()) else {
            return Joined::Pending;
        };
        let Some(p) = slot else {
            if !u.partial {
                return Joined::Line(Complete {
                    inner: u.inner,
                    time: u.time,
                    offset,
                });
            }
            let too_long = u.inner.len() > max_len;
            *slot = Some(Pending {
                buf: if too_long {
                    Vec::new()
                } else {
                    u.inner.into_owned()
                },
                time: u.time.map(Cow::into_owned),
                offset,
                too_long,
            });
            return Joined::Pending;
        };
        if !p.too_long {
            if p.buf.len().saturating_add(u.inner.len()) > max_len {
                p.too_long = true;
                p.buf = Vec::new();
            } else {
                p.buf.extend_from_slice(&u.inner);
            }
        }
        if u.partial {
            return Joined::Pending;
        }
        match slot.take() {
            Some(p) => Self::complete(p),
            None => Joined::Pending,
        }
    }

    fn complete(p: Pending) -> Joined<'static> {
        if p.too_long {
            return Joined::TooLong { offset: p.offset };
        }
        let mut buf = p.buf;
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Joined::Line(Complete {
            inner: Cow::Owned(buf),
            time: p.time.map(Cow::Owned),
            offset: p.offset,
        })
    }

    /// Ends the file: the lines still being joined, each a line of its own
    /// (or [`Joined::TooLong`]), in the order their first pieces came.
    pub fn finish(self) -> Vec<Joined<'static>> {
        let mut open: Vec<Pending> = self.pending.into_iter().flatten().collect();
        open.sort_by_key(|p| p.offset);
        open.into_iter().map(Self::complete).collect()
    }
}

/// Service from a Kubernetes log path: `…/<pod>_<ns>_<container>-<64 hex
/// id>.log` (`/var/log/containers`) or `…/<ns>_<pod>_<uid>/<container>/<N>.log`
/// (`/var/log/pods`, rotated `N.log.<date>` too) → the pod name without its
/// generated suffixes ([`strip_pod_hash`]). The directory the file sits in
/// is not checked, so copied log trees work. `None` for other paths.
pub fn kubernetes_service(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if let Some(stem) = name.strip_suffix(".log") {
        let parts: Vec<&str> = stem.split('_').collect();
        if let [pod, ns, rest] = parts.as_slice()
            && !pod.is_empty()
            && !ns.is_empty()
            && let Some((container, id)) = rest.rsplit_once('-')
            && !container.is_empty()
            && id.len() == 64
            && id.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Some(strip_pod_hash(pod));
        }
    }
    let (n, ext) = name.split_once('.')?;
    let rotated_ok = ext == "log" || ext.starts_with("log.");
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || !rotated_ok {
        return None;
    }
    let container_dir = path.parent()?;
    if container_dir.file_name()?.is_empty() {
        return None;
    }
    let pod_dir = container_dir.parent()?.file_name()?.to_str()?;
    let parts: Vec<&str> = pod_dir.split('_').collect();
    match parts.as_slice() {
        [ns, pod, uid]
            if !ns.is_empty()
                && !pod.is_empty()
                && (32..=36).contains(&uid.len())
                && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') =>
        {
            Some(strip_pod_hash(pod))
        }
        _ => None,
    }
}

/// The characters of Kubernetes' generated name suffixes.
const POD_SUFFIX_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
/// The characters of a pod-template-hash (the suffix alphabet applied to
/// decimal digits).
const TEMPLATE_HASH_CHARS: &[u8] = b"bcdf456789";

/// The pod name without its generated suffixes: a Deployment's
/// `-<template hash>-<5 chars>` (`orders-7d9f8b6c5-x2x4z` → `orders`), a
/// DaemonSet's or ReplicaSet's `-<5 chars>` (`fluentd-x7k2p` → `fluentd`), a
/// CronJob's `-<schedule>-<5 chars>`, and a StatefulSet's ordinal (`db-0` →
/// `db`). Other names are returned unchanged. Shared by
/// [`kubernetes_service`] and by callers with a pod-name column (Nezha's
/// `PodName`).
pub fn strip_pod_hash(pod: &str) -> String {
    let mut name = pod;
    if let Some((head, tail)) = name.rsplit_once('-')
        && !head.is_empty()
    {
        if tail.len() == 5 && tail.bytes().all(|b| POD_SUFFIX_CHARS.contains(&b)) {
            name = head;
            if let Some((head, hash)) = name.rsplit_once('-')
                && !head.is_empty()
                && (6..=10).contains(&hash.len())
                && (hash.bytes().all(|b| TEMPLATE_HASH_CHARS.contains(&b))
                    || hash.bytes().all(|b| b.is_ascii_digit()))
            {
                name = head;
            }
        } else if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
            name = head;
        }
    }
    name.to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::super::fields::{Role, Schema};
    use super::super::json::parse_json;
    use super::*;
    use proptest::prelude::*;

    // Exact Docker records from Nezha's log CSVs (the `Log` column, CSV
    // quoting removed).
    const TT_FOOD: &str = r#"{"log":"16:42:22.418 ERROR f.s.FoodServiceImpl#302 TraceID: ffc8ca7e4c8f06c75142c880d5595d96 SpanID: 37b1a1514d403000 [getAllFood][Get the Get Food Request Failed!][foodStoresListResult is null][date: 2021-07-14, tripId: D1345]\n","stream":"stdout","time":"2023-01-29T08:42:22.419098261Z"}"#;
    const OB_CART: &str = r#"{"log":"TraceID: 04c87ec97bae041b1b15b3c7676a43cc SpanID: 827e3035bae2ba43 GetCartAsync called with userId=af550e4a-e4ca-4331-a7fc-155f1cbc8c47\n","stream":"stdout","time":"2022-08-22T05:18:40.58990843Z"}"#;
    const OB_CHECKOUT: &str = r#"{"log":"{\"message\":\"TraceID: 54de0079cdcd169c7af8fb78ec5bc3dc SpanID: c23d802f686d1db0 PlaceOrder user_id=\\\"0f829508-8afa-4eb9-93aa-254b7b8213e0\\\" user_currency=\\\"USD\\\" successfully\",\"severity\":\"info\",\"timestamp\":\"2022-08-22T05:18:24.340228058Z\"}\n","stream":"stdout","time":"2022-08-22T05:18:24.340366384Z"}"#;
    // The frontend row of Nezha's 05_19_log.csv as the CSV holds it.
    const OB_FRONTEND_CSV: &str = r#"2022-08-22T05:18:42.996857478Z,1661145522996857478,33.33.33.167,frontend-579b9bff58-t2dbm,server,04c87ec97bae041b1b15b3c7676a43cc,989036326b156480,"{""log"":""{\""http.req.id\"":\""16fbfb2d-676c-4d6a-a870-1f1f6d347d5a\"",\""http.req.method\"":\""GET\"",\""http.req.path\"":\""/product/0PUK6V6EV0\"",\""http.resp.bytes\"":8289,\""http.resp.status\"":200,\""http.resp.took_ms\"":5408,\""message\"":\""TraceID: 04c87ec97bae041b1b15b3c7676a43cc SpanID: 989036326b156480 Request complete\"",\""session\"":\""af550e4a-e4ca-4331-a7fc-155f1cbc8c47\"",\""severity\"":\""info\"",\""timestamp\"":\""2022-08-22T05:18:42.996857478Z\""}\n"",""stream"":""stdout"",""time"":""2022-08-22T05:18:42.996946509Z""}""#;

    fn docker(line: &str) -> Unwrapped<'_> {
        unwrap_line(line.as_bytes(), Envelope::Docker).unwrap()
    }

    fn text<'a>(u: &'a Unwrapped<'_>) -> &'a str {
        std::str::from_utf8(&u.inner).unwrap()
    }

    fn line_of(j: Joined<'_>) -> (String, Option<String>, u64) {
        match j {
            Joined::Line(c) => (
                String::from_utf8(c.inner.into_owned()).unwrap(),
                c.time.map(Cow::into_owned),
                c.offset,
            ),
            other => panic!("expected a line, got {other:?}"),
        }
    }

    #[test]
    fn docker_plain_inner_line_is_borrowed() {
        let u = docker(TT_FOOD);
        assert_eq!(
            text(&u),
            "16:42:22.418 ERROR f.s.FoodServiceImpl#302 TraceID: ffc8ca7e4c8f06c75142c880d5595d96 \
             SpanID: 37b1a1514d403000 [getAllFood][Get the Get Food Request Failed!]\
             [foodStoresListResult is null][date: 2021-07-14, tripId: D1345]"
        );
        assert!(matches!(u.inner, Cow::Borrowed(_)));
        assert_eq!(u.time.as_deref(), Some("2023-01-29T08:42:22.419098261Z"));
        assert!(!u.partial);
        assert_eq!(u.stream, Stream::Stdout);
        let u = docker(OB_CART);
        assert!(text(&u).ends_with("userId=af550e4a-e4ca-4331-a7fc-155f1cbc8c47"));
        assert_eq!(u.time.as_deref(), Some("2022-08-22T05:18:40.58990843Z"));
    }

    #[test]
    fn nezha_csv_field_unescapes_twice_into_inner_json() {
        // CSV quoting (the test's job), then the Docker envelope (ours).
        let field = OB_FRONTEND_CSV.split_once(",\"").unwrap().1;
        let record = field.strip_suffix('"').unwrap().replace("\"\"", "\"");
        let u = docker(&record);
        let want = r#"{"http.req.id":"16fbfb2d-676c-4d6a-a870-1f1f6d347d5a","http.req.method":"GET","http.req.path":"/product/0PUK6V6EV0","http.resp.bytes":8289,"http.resp.status":200,"http.resp.took_ms":5408,"message":"TraceID: 04c87ec97bae041b1b15b3c7676a43cc SpanID: 989036326b156480 Request complete","session":"af550e4a-e4ca-4331-a7fc-155f1cbc8c47","severity":"info","timestamp":"2022-08-22T05:18:42.996857478Z"}"#;
        assert_eq!(text(&u), want);
        assert!(!u.partial);
        assert_eq!(u.time.as_deref(), Some("2022-08-22T05:18:42.996946509Z"));
        // The inner line is JSON again, in its own format.
        let schema = Schema::default();
        let f = parse_json(&u.inner, &schema).unwrap();
        assert_eq!(
            f.get(Role::Ts).map(|v| v.text.as_ref()),
            Some("2022-08-22T05:18:42.996857478Z")
        );
        assert_eq!(f.get(Role::Level).map(|v| v.text.as_ref()), Some("info"));
    }

    #[test]
    fn json_escaped_inside_log_comes_out_as_json_text() {
        let u = docker(OB_CHECKOUT);
        assert!(matches!(u.inner, Cow::Owned(_)));
        let inner = text(&u);
        assert!(inner.starts_with(r#"{"message":"TraceID: 54de0079cdcd169c7af8fb78ec5bc3dc"#));
        assert!(inner.contains(r#"PlaceOrder user_id=\"0f829508-8afa-4eb9-93aa-254b7b8213e0\" user_currency=\"USD\" successfully","severity":"info""#));
        let v: serde_json::Value = serde_json::from_str(inner).unwrap();
        assert_eq!(
            v["message"].as_str().unwrap(),
            "TraceID: 54de0079cdcd169c7af8fb78ec5bc3dc SpanID: c23d802f686d1db0 PlaceOrder \
             user_id=\"0f829508-8afa-4eb9-93aa-254b7b8213e0\" user_currency=\"USD\" successfully"
        );
    }

    #[test]
    fn docker_variants() {
        // CRLF, other key order, extra keys, stderr, a duplicated key.
        let u = docker(
            r#" {"time":"t1","attrs":{"a":"x}","b":[1,{"c":null}]},"stream":"stderr","n":-1.5e3,"ok":true,"log":"a\tb\r\n","log":"second"} "#,
        );
        assert_eq!(text(&u), "a\tb");
        assert_eq!(u.time.as_deref(), Some("t1"));
        assert_eq!(u.stream, Stream::Stderr);
        assert!(!u.partial);
        // A backslash before `n` is not a newline.
        let u = docker(r#"{"log":"ends in \\n","stream":"stdout"}"#);
        assert_eq!(text(&u), r"ends in \n");
        assert!(u.partial);
        assert_eq!(u.time, None);
        let u = docker(r#"{"log":"caf\u00e9 \"q\"\n","stream":"x"}"#);
        assert_eq!(text(&u), "café \"q\"");
        assert_eq!(u.stream, Stream::Other);
        let u = docker(r#"{"log":"\n","stream":"stdout"}"#);
        assert_eq!(text(&u), "");
        assert!(!u.partial);
    }

    #[test]
    fn not_docker_lines() {
        for line in [
            "",
            "plain text",
            "{}",
            r#"{"log":"x\n"}"#,
            r#"{"stream":"stdout"}"#,
            r#"{"log":1,"stream":"stdout"}"#,
            r#"{"log":"x","stream":null}"#,
            r#"{"log":"x","stream":"stdout"} trailing"#,
            r#"{"log":"x","stream":"stdout""#,
            r#"{"log":"x\"#,
            r#"{"log" "x","stream":"stdout"}"#,
            r#"{"a":[1,2},"log":"x","stream":"stdout"}"#,
            "2024-05-01T10:00:00Z stdout F hello",
        ] {
            assert_eq!(
                unwrap_line(line.as_bytes(), Envelope::Docker),
                None,
                "{line}"
            );
        }
    }

    #[test]
    fn docker_partial_pair_is_joined() {
        let mut j = PartialJoiner::new(1 << 20);
        let a = r#"{"log":"{\"request_id\":\"r1\",","stream":"stdout","time":"2024-05-01T10:00:00.1Z"}"#;
        let b = r#"{"log":"\"ts\":\"2024-05-01T10:00:00Z\"}\n","stream":"stdout","time":"2024-05-01T10:00:00.2Z"}"#;
        let ua = docker(a);
        assert!(ua.partial);
        assert_eq!(j.push(ua, 100), Joined::Pending);
        let (line, time, offset) = line_of(j.push(docker(b), 190));
        assert_eq!(line, r#"{"request_id":"r1","ts":"2024-05-01T10:00:00Z"}"#);
        assert_eq!(time.as_deref(), Some("2024-05-01T10:00:00.1Z"));
        assert_eq!(offset, 100);
        assert!(j.finish().is_empty());
    }

    #[test]
    fn cri_full_and_partial_lines() {
        let u = unwrap_line(
            b"2024-05-01T10:00:00.123456789Z stdout F hello  world",
            Envelope::Cri,
        )
        .unwrap();
        assert_eq!(text(&u), "hello  world");
        assert_eq!(u.time.as_deref(), Some("2024-05-01T10:00:00.123456789Z"));
        assert!(!u.partial);
        assert_eq!(u.stream, Stream::Stdout);

        let lines = [
            "2024-05-01T10:00:00.1+02:00 stdout P abc",
            "2024-05-01T10:00:00.2+02:00 stderr F other stream",
            "2024-05-01T10:00:00.3+02:00 stdout P def ",
            "2024-05-01T10:00:00.4+02:00 stdout F ghi",
            "2024-05-01T10:00:00.5+02:00 stdout F next",
        ];
        let mut j = PartialJoiner::new(1 << 20);
        let mut out = Vec::new();
        for (n, l) in lines.iter().enumerate() {
            let u = unwrap_line(l.as_bytes(), Envelope::Cri).unwrap();
            match j.push(u, n as u64 * 50) {
                Joined::Pending => {}
                other => out.push(line_of(other)),
            }
        }
        assert_eq!(
            out,
            vec![
                (
                    "other stream".to_string(),
                    Some("2024-05-01T10:00:00.2+02:00".to_string()),
                    50
                ),
                (
                    "abcdef ghi".to_string(),
                    Some("2024-05-01T10:00:00.1+02:00".to_string()),
                    0
                ),
                (
                    "next".to_string(),
                    Some("2024-05-01T10:00:00.5+02:00".to_string()),
                    200
                ),
            ]
        );
    }

    #[test]
    fn cri_inner_json_line() {
        let u = unwrap_line(
            br#"2024-05-01T10:00:00.5Z stderr F {"ts":"2024-05-01T10:00:00.25Z","request_id":"r-7","level":"error"}"#,
            Envelope::Cri,
        )
        .unwrap();
        assert_eq!(u.stream, Stream::Stderr);
        let schema = Schema::default();
        let f = parse_json(&u.inner, &schema).unwrap();
        assert_eq!(f.get(Role::RequestId).map(|v| v.text.as_ref()), Some("r-7"));
        assert_eq!(
            f.get(Role::Ts).map(|v| v.text.as_ref()),
            Some("2024-05-01T10:00:00.25Z")
        );
    }

    #[test]
    fn cri_edge_cases() {
        for (line, inner) in [
            ("2024-05-01T10:00:00Z stdout F ", ""),
            ("2024-05-01T10:00:00Z stdout F", ""),
            ("2024-05-01T10:00:00Z stdout F:x a b", "a b"),
            ("2024-05-01T10:00:00Z stdout F  two spaces", " two spaces"),
        ] {
            let u = unwrap_line(line.as_bytes(), Envelope::Cri).unwrap();
            assert_eq!(text(&u), inner, "{line}");
        }
        for line in [
            "",
            "garbage",
            "2024-05-01T10:00:00Z stdout X hello",
            "2024-05-01T10:00:00Z stdin F hello",
            "10:00:00 stdout F hello",
            "2024-05-01T10:00:00Z stdout",
            r#"{"log":"x\n","stream":"stdout"}"#,
        ] {
            assert_eq!(unwrap_line(line.as_bytes(), Envelope::Cri), None, "{line}");
        }
    }

    #[test]
    fn joined_lines_over_the_limit_are_dropped_once() {
        let piece = |s: &'static str, partial: bool| Unwrapped {
            inner: Cow::Borrowed(s.as_bytes()),
            time: None,
            partial,
            stream: Stream::Stdout,
        };
        let mut j = PartialJoiner::new(5);
        assert_eq!(j.push(piece("abcd", true), 0), Joined::Pending);
        assert_eq!(j.push(piece("ef", true), 10), Joined::Pending);
        assert_eq!(j.push(piece("g", false), 20), Joined::TooLong { offset: 0 });
        // Exactly the limit is fine; a line that was never split passes.
        assert_eq!(j.push(piece("abc", true), 30), Joined::Pending);
        assert_eq!(line_of(j.push(piece("de", false), 40)).0, "abcde");
        assert_eq!(
            line_of(j.push(piece("longer line", false), 50)).0,
            "longer line"
        );
        // A first piece over the limit, and pieces open at the end.
        assert_eq!(j.push(piece("123456", true), 60), Joined::Pending);
        let mut err = piece("zz", true);
        err.stream = Stream::Stderr;
        assert_eq!(j.push(err, 55), Joined::Pending);
        let rest = j.finish();
        assert_eq!(rest.len(), 2);
        assert_eq!(line_of(rest[0].clone()), ("zz".to_string(), None, 55));
        assert_eq!(rest[1], Joined::TooLong { offset: 60 });
    }

    #[test]
    fn envelope_detection() {
        let docker_lines = [TT_FOOD, OB_CART, OB_CHECKOUT, TT_FOOD];
        let as_bytes = |v: &[&'static str]| v.iter().map(|s| s.as_bytes()).collect::<Vec<_>>();
        assert_eq!(
            detect_envelope(as_bytes(&docker_lines).into_iter()),
            Some(Envelope::Docker)
        );
        let cri = [
            "2024-05-01T10:00:00.1Z stdout F {\"a\":1}",
            "",
            "2024-05-01T10:00:00.2Z stdout P part",
            "2024-05-01T10:00:00.3Z stdout F rest",
        ];
        assert_eq!(
            detect_envelope(as_bytes(&cri).into_iter()),
            Some(Envelope::Cri)
        );
        let json = [r#"{"ts":1,"request_id":"a"}"#, r#"{"log":"x"}"#];
        assert_eq!(detect_envelope(as_bytes(&json).into_iter()), None);
        // 4 of 5 is enough, 3 of 5 is not.
        let four = [TT_FOOD, TT_FOOD, TT_FOOD, TT_FOOD, "x"];
        assert_eq!(
            detect_envelope(as_bytes(&four).into_iter()),
            Some(Envelope::Docker)
        );
        let three = [TT_FOOD, TT_FOOD, TT_FOOD, "x", "y"];
        assert_eq!(detect_envelope(as_bytes(&three).into_iter()), None);
        assert_eq!(detect_envelope(as_bytes(&["", "  "]).into_iter()), None);
    }

    const ID: &str = "3f1c0d2e9a8b4c3d2e1f0a9b8c7d6e5f3f1c0d2e9a8b4c3d2e1f0a9b8c7d6e5f";

    #[test]
    fn kubernetes_paths() {
        let svc = |p: &str| kubernetes_service(Path::new(p));
        let c = |pod: &str, container: &str| {
            format!("/var/log/containers/{pod}_shop_{container}-{ID}.log")
        };
        assert_eq!(
            svc(&c("orders-7d9f8b6c5-x2x4z", "orders")).as_deref(),
            Some("orders")
        );
        assert_eq!(svc(&c("db-0", "postgres")).as_deref(), Some("db"));
        assert_eq!(
            svc(&c("fluentd-x7k2p", "fluentd")).as_deref(),
            Some("fluentd")
        );
        assert_eq!(
            svc(&c("productpage-v1-6b746f74dc-9stvs", "istio-proxy")).as_deref(),
            Some("productpage-v1")
        );
        assert_eq!(
            svc(&format!("logs/a-b_c_d-e-{ID}.log")).as_deref(),
            Some("a-b")
        );
        let uid = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";
        assert_eq!(
            svc(&format!(
                "/var/log/pods/shop_orders-7d9f8b6c5-x2x4z_{uid}/orders/0.log"
            ))
            .as_deref(),
            Some("orders")
        );
        assert_eq!(
            svc(&format!(
                "/var/log/pods/shop_kafka-2_{uid}/kafka/3.log.20240501-101010.gz"
            ))
            .as_deref(),
            Some("kafka")
        );
        assert_eq!(
            svc("/var/log/pods/kube-system_etcd-node1_6d1b2c3e4f5a6b7c8d9e0f1a2b3c4d5e/etcd/0.log")
                .as_deref(),
            Some("etcd-node1")
        );
        for other in [
            "/var/log/syslog",
            "/tmp/app.log",
            "/var/log/containers/orders_shop_orders-abc.log",
            &format!("/var/log/containers/orders_shop_{ID}.log"),
            &format!("/var/log/containers/orders_shop_x_orders-{ID}.log"),
            "/var/log/pods/shop_orders_notauid/orders/0.log",
            &format!("/var/log/pods/shop_orders_{uid}/orders/app.log"),
            "0.log",
            "",
        ] {
            assert_eq!(svc(other), None, "{other}");
        }
    }

    #[test]
    fn pod_hash_suffixes() {
        for (pod, want) in [
            ("ts-travel-service-64469b5b48-25zj6", "ts-travel-service"),
            (
                "ts-station-food-service-dc4d75dd-fw6ft",
                "ts-station-food-service",
            ),
            ("frontend-579b9bff58-t2dbm", "frontend"),
            ("currencyservice-cf787dd48-vpjrd", "currencyservice"),
            (
                "recommendationservice-6cfdd55578-gfj6q",
                "recommendationservice",
            ),
            ("orders-7d9f8b6c5-x2x4z", "orders"),
            ("nginx-2035384211-x7k2p", "nginx"),
            ("backup-28470480-x7k2p", "backup"),
            ("fluentd-x7k2p", "fluentd"),
            ("orders-db-x2x4z", "orders-db"),
            ("db-0", "db"),
            ("kafka-proxy-12", "kafka-proxy"),
            ("fluentd-abcde", "fluentd-abcde"),
            ("nginx-proxy", "nginx-proxy"),
            ("redis", "redis"),
            ("-0", "-0"),
            ("x2x4z", "x2x4z"),
            ("", ""),
        ] {
            assert_eq!(strip_pod_hash(pod), want, "{pod}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn unwrap_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = unwrap_line(&bytes, Envelope::Docker);
            let _ = unwrap_line(&bytes, Envelope::Cri);
            let mut j = PartialJoiner::new(64);
            for env in [Envelope::Docker, Envelope::Cri] {
                if let Some(u) = unwrap_line(&bytes, env) {
                    let _ = j.push(u, 0);
                }
            }
            let _ = j.finish();
        }

        #[test]
        fn docker_shaped_noise_never_panics(
            cut in 0usize..400,
            noise in proptest::collection::vec(any::<u8>(), 0..8),
            at in 0usize..400,
        ) {
            let mut b = OB_CHECKOUT.as_bytes().to_vec();
            b.truncate(cut.max(1));
            let at = at.min(b.len());
            b.splice(at..at, noise);
            let _ = unwrap_line(&b, Envelope::Docker);
        }

        /// What serde_json writes, the scanner reads back: the `log` value
        /// without its trailing newline, partial exactly when it had none.
        #[test]
        fn docker_round_trip(
            log in "(?s).{0,40}",
            newline in 0u8..3,
            stderr in any::<bool>(),
            time in "[0-9TZ:.-]{0,12}",
            extra in any::<bool>(),
        ) {
            let full = match newline { 0 => log.clone(), 1 => format!("{log}\n"), _ => format!("{log}\r\n") };
            let stream = if stderr { "stderr" } else { "stdout" };
            let mut line = format!(
                "{{\"log\":{},\"stream\":\"{stream}\",\"time\":{}",
                serde_json::to_string(&full).unwrap(),
                serde_json::to_string(&time).unwrap()
            );
            if extra {
                line.push_str(&format!(",\"attrs\":{{\"k\":{}}}", serde_json::to_string(&log).unwrap()));
            }
            line.push('}');
            let u = unwrap_line(line.as_bytes(), Envelope::Docker).unwrap();
            let (want, partial) = match full.strip_suffix('\n') {
                Some(t) => (t.strip_suffix('\r').unwrap_or(t), false),
                None => (full.as_str(), true),
            };
            prop_assert_eq!(&u.inner[..], want.as_bytes());
            prop_assert_eq!(u.partial, partial);
            if newline == 2 || (newline == 1 && !log.ends_with('\r')) {
                prop_assert_eq!(want, log.as_str());
            }
            prop_assert_eq!(u.time.as_deref(), Some(time.as_str()));
            prop_assert_eq!(u.stream, if stderr { Stream::Stderr } else { Stream::Stdout });
        }

        /// A line cut into CRI `P` pieces and a final `F` comes back whole.
        #[test]
        fn cri_pieces_rejoin(line in "[ -~]{0,60}", cuts in proptest::collection::vec(0usize..60, 0..5)) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(line.len())).collect();
            cuts.sort_unstable();
            cuts.dedup();
            let mut pieces = Vec::new();
            let mut from = 0;
            for c in cuts {
                pieces.push(&line[from..c]);
                from = c;
            }
            pieces.push(&line[from..]);
            let last = pieces.len() - 1;
            let mut j = PartialJoiner::new(1 << 10);
            let mut got = None;
            for (n, p) in pieces.iter().enumerate() {
                let tag = if n == last { "F" } else { "P" };
                let raw = format!("2024-05-01T10:00:0{n}Z stdout {tag} {p}");
                let u = unwrap_line(raw.as_bytes(), Envelope::Cri).unwrap();
                if let Joined::Line(c) = j.push(u, n as u64) {
                    got = Some(line_of(Joined::Line(c)));
                }
            }
            let (text, time, offset) = got.unwrap();
            prop_assert_eq!(text, line);
            prop_assert_eq!(time.as_deref(), Some("2024-05-01T10:00:00Z"));
            prop_assert_eq!(offset, 0);
        }
    }
}
