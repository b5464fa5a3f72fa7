//! Parse stage: field roles and the name lookup shared by every line format.
//!
//! This module owns the rules of SPEC §1 *Fields* that do not depend on the
//! format: which names fill which role (the defaults and the `--<role>-field`
//! overrides, compiled once into a [`Schema`]), and which of several
//! candidate keys wins (the [`Collector`]). It does not interpret values:
//! timestamps, durations, placeholder IDs and the failure rule belong to the
//! caller. The format scanners (`super::json`, `super::logfmt`, and any
//! future one) feed keys and values into a [`Collector`] in line order.

use std::borrow::Cow;
use std::collections::HashMap;

/// Number of field roles; the length of [`Fields::values`].
pub const ROLE_COUNT: usize = 11;

/// A field role: what a value means to hopscope, whatever its key is called.
///
/// The failure row of the SPEC table is split into three roles (`Level`,
/// `Status`, `Error`) because each is judged by its own rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The request ID (required for a record).
    RequestId,
    /// The timestamp (required for a record).
    Ts,
    /// The service name; when absent the caller derives it from the path.
    Service,
    /// The span ID.
    Span,
    /// The parent span ID.
    Parent,
    /// The event kind (`server_recv`, `cs`, ...), interpreted by the caller.
    Event,
    /// The callee of a client event.
    Peer,
    /// A duration, unit decided by the caller (value, flag or name suffix).
    Duration,
    /// A log level (`error`, `50`, ...).
    Level,
    /// A status (`503`, `failed`, ...).
    Status,
    /// An error value; the only role for which a non-empty object or array
    /// counts as present.
    Error,
}

impl Role {
    /// Every role, in [`Role::index`] order.
    pub const ALL: [Role; ROLE_COUNT] = [
        Role::RequestId,
        Role::Ts,
        Role::Service,
        Role::Span,
        Role::Parent,
        Role::Event,
        Role::Peer,
        Role::Duration,
        Role::Level,
        Role::Status,
        Role::Error,
    ];

    /// The role's position in [`Role::ALL`] and in [`Fields::values`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name used in the `--<name>-field` flag, e.g. `id` for
    /// `--id-field`.
    pub fn cli_name(self) -> &'static str {
        match self {
            Role::RequestId => "id",
            Role::Ts => "ts",
            Role::Service => "service",
            Role::Span => "span",
            Role::Parent => "parent",
            Role::Event => "event",
            Role::Peer => "peer",
            Role::Duration => "duration",
            Role::Level => "level",
            Role::Status => "status",
            Role::Error => "error",
        }
    }

    /// The role whose [`Role::cli_name`] is `name` (exact match), if any.
    pub fn from_cli_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.cli_name() == name)
    }

    /// The default names of the role, earliest first (SPEC §1 table); used
    /// unless a `--<role>-field` override replaces them.
    pub fn default_names(self) -> &'static [&'static str] {
        match self {
            Role::RequestId => &[
                "request_id",
                "requestId",
                "req_id",
                "reqId",
                "x_request_id",
                "x-request-id",
                "trace_id",
                "traceId",
                "trace.id",
                "traceid",
                "correlation_id",
                "correlationId",
            ],
            Role::Ts => &[
                "ts",
                "time",
                "timestamp",
                "@timestamp",
                "datetime",
                "date",
                "asctime",
            ],
            Role::Service => &[
                "service",
                "service.name",
                "service_name",
                "serviceName",
                "svc",
                "app",
                "application",
                "component",
            ],
            Role::Span => &["span_id", "spanId", "span.id"],
            Role::Parent => &["parent_span_id", "parentSpanId", "parent_id", "parent.id"],
            Role::Event => &["event", "kind", "phase"],
            Role::Peer => &[
                "peer",
                "peer.service",
                "callee",
                "target",
                "upstream",
                "downstream",
            ],
            Role::Duration => &[
                "duration",
                "duration_ms",
                "elapsed",
                "elapsed_ms",
                "latency",
                "latency_ms",
                "took",
                "response_time",
            ],
            Role::Level => &["level", "severity", "lvl", "log.level", "levelname"],
            Role::Status => &["status", "status_code", "http.status_code"],
            Role::Error => &["error", "err", "exception"],
        }
    }
}

/// What kind of value a field held; lets the caller tell a JSON number
/// `42` from a string `"42"` when it matters, and an error object from text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// A string (every logfmt value is one).
    String,
    /// A JSON number; the text is its literal text (`1.7e9`).
    Number,
    /// A JSON boolean; the text is `true` or `false`.
    Bool,
    /// A non-empty JSON object or array (only ever for [`Role::Error`]); the
    /// text is its raw JSON.
    Object,
}

/// The value that filled one role.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldValue<'a> {
    /// The value as text: borrowed from the line unless escapes had to be
    /// decoded. Never empty or whitespace-only.
    pub text: Cow<'a, str>,
    /// What the value was in the line.
    pub kind: ValueKind,
    /// Index into [`Schema::names`] of the role's name that matched (for
    /// `hopscope files`, and for a unit suffix on a duration's name).
    pub name_index: usize,
}

/// The values of every role found in one line; `None` where the line
/// carries no usable value for the role.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fields<'a> {
    /// Indexed by [`Role::index`].
    pub values: [Option<FieldValue<'a>>; ROLE_COUNT],
}

impl<'a> Fields<'a> {
    /// The value of `role`, if the line had a usable one.
    pub fn get(&self, role: Role) -> Option<&FieldValue<'a>> {
        self.values.get(role.index()).and_then(Option::as_ref)
    }
}

/// Why a line could not be turned into [`Fields`] (SPEC §1 skip reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineError {
    /// The line is not in the format (`parse_error`).
    Parse,
    /// A value that won a role is not valid UTF-8 (`invalid_utf8`); invalid
    /// UTF-8 anywhere else in the line is ignored.
    InvalidUtf8,
}

/// Sentinel for "no node / no prefix" in the compiled tables.
pub(crate) const NO_ID: u32 = u32::MAX;

/// One role name that a lookup entry stands for.
#[derive(Clone, Debug)]
pub(crate) struct NameRef {
    /// The role the name belongs to.
    pub(crate) role: Role,
    /// Position of the name in the role's list (lower wins).
    pub(crate) index: u32,
    /// The name exactly as configured, for the exact-case tie-break.
    pub(crate) name: Box<[u8]>,
}

/// A lookup entry: a lower-cased key as seen inside an object reached by a
/// given dotted prefix.
///
/// E.g. `service.name` yields the entries (root, `service.name`) and
/// (`service`, `name`), plus (root, `service`) with a child link to the
/// prefix `service`, so `{"service.name":..}`, `{"service":{"name":..}}` and
/// `{"service":{"NAME":..}}` all reach it with one probe per key.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    prefix: u32,
    lower: Box<[u8]>,
    hash: u64,
    /// Names that match a value found at this key.
    pub(crate) names: Vec<NameRef>,
    /// The prefix id to use inside an object found at this key, or [`NO_ID`].
    pub(crate) child: u32,
    /// Whether any of `names` is an [`Role::Error`] name (objects matter).
    pub(crate) has_error: bool,
}

/// The field names of every role, compiled once per run into a lookup table
/// so that matching a key costs one hash probe, with no allocation.
///
/// Names are matched case-insensitively (ASCII case folding). A name with
/// dots (`trace.id`) matches a flat key spelled with dots and the same path
/// through nested JSON objects (up to 16 levels deep).
#[derive(Clone, Debug)]
pub struct Schema {
    names: [Vec<String>; ROLE_COUNT],
    nodes: Vec<Node>,
    /// Open-addressing table of `nodes` indices plus one (0 = empty).
    table: Vec<u32>,
    mask: usize,
    /// Bit `n` set when some entry has a key of length `n` (63 = 63 or more).
    len_mask: u64,
    max_key_len: usize,
}

impl Default for Schema {
    /// The SPEC defaults, no overrides.
    fn default() -> Self {
        Schema::new(&[])
    }
}

impl Schema {
    /// Compiles the role names: the defaults of SPEC §1, except that each
    /// `(role, names)` override replaces that role's list (the last override
    /// of a role wins). Override names are trimmed; empty ones are dropped,
    /// so an empty list disables the role.
    pub fn new(overrides: &[(Role, Vec<String>)]) -> Schema {
        let mut names: [Vec<String>; ROLE_COUNT] = Default::default();
        for role in Role::ALL {
            let list = match overrides.iter().rev().find(|(r, _)| *r == role) {
                Some((_, list)) => list
                    .iter()
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .collect(),
                None => role
                    .default_names()
                    .iter()
                    .map(|n| (*n).to_string())
                    .collect(),
            };
            if let Some(slot) = names.get_mut(role.index()) {
                *slot = list;
            }
        }
        Self::compile(names)
    }

    fn compile(names: [Vec<String>; ROLE_COUNT]) -> Schema {
        // Every dotted prefix of every name gets an id; the root is 0.
        let mut prefixes: HashMap<Vec<u8>, u32> = HashMap::new();
        prefixes.insert(Vec::new(), 0);
        let mut nodes: Vec<Node> = Vec::new();
        let mut index: HashMap<(u32, Vec<u8>), usize> = HashMap::new();
        let mut node_at = |nodes: &mut Vec<Node>, prefix: u32, lower: &[u8]| -> usize {
            *index.entry((prefix, lower.to_vec())).or_insert_with(|| {
                nodes.push(Node {
                    prefix,
                    lower: lower.into(),
                    hash: ci_hash(prefix, lower),
                    names: Vec::new(),
                    child: NO_ID,
                    has_error: false,
                });
                nodes.len() - 1
            })
        };
        for role in Role::ALL {
            let Some(list) = names.get(role.index()) else {
                continue;
            };
            for (i, name) in list.iter().enumerate() {
                let lower = name.as_bytes().to_ascii_lowercase();
                let dots: Vec<usize> = lower
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'.')
                    .map(|(p, _)| p)
                    .collect();
                // Register the prefixes `a`, `a.b`, ... of this name.
                let mut ids = vec![(0u32, 0usize)]; // (prefix id, remainder start)
                for &d in &dots {
                    let next = u32::try_from(prefixes.len()).unwrap_or(NO_ID);
                    let id = *prefixes
                        .entry(lower.get(..d).unwrap_or_default().to_vec())
                        .or_insert(next);
                    ids.push((id, d + 1));
                }
                // The name itself, as seen from each prefix.
                for &(pid, start) in &ids {
                    let n = node_at(&mut nodes, pid, lower.get(start..).unwrap_or_default());
                    if let Some(node) = nodes.get_mut(n) {
                        node.names.push(NameRef {
                            role,
                            index: u32::try_from(i).unwrap_or(u32::MAX),
                            name: name.as_bytes().into(),
                        });
                        node.has_error |= role == Role::Error;
                    }
                }
                // Child links: from each prefix to each longer prefix.
                for (a, &(pid, start)) in ids.iter().enumerate() {
                    for &(cid, cstart) in ids.iter().skip(a + 1) {
                        // The longer prefix ends just before `cstart - 1`.
                        let Some(seg) = lower.get(start..cstart.saturating_sub(1)) else {
                            continue;
                        };
                        let n = node_at(&mut nodes, pid, seg);
                        if let Some(node) = nodes.get_mut(n) {
                            node.child = cid;
                        }
                    }
                }
            }
        }
        let cap = (nodes.len() * 2).max(16).next_power_of_two();
        let mask = cap - 1;
        let mut table = vec![0u32; cap];
        let mut len_mask = 0u64;
        let mut max_key_len = 0;
        for (n, node) in nodes.iter().enumerate() {
            let len = node.lower.len();
            len_mask |= 1u64 << len.min(63);
            max_key_len = max_key_len.max(len);
            let mut pos = fold_hash(node.hash) & mask;
            while let Some(slot) = table.get_mut(pos) {
                if *slot == 0 {
                    *slot = u32::try_from(n + 1).unwrap_or(0);
                    break;
                }
                pos = (pos + 1) & mask;
            }
        }
        Schema {
            names,
            nodes,
            table,
            mask,
            len_mask,
            max_key_len,
        }
    }

    /// The names of `role` in priority order; [`FieldValue::name_index`]
    /// indexes this list.
    pub fn names(&self, role: Role) -> &[String] {
        self.names.get(role.index()).map_or(&[], Vec::as_slice)
    }

    /// The entry for `key` (any case) inside an object reached by the
    /// dotted prefix `prefix` (0 = the top level), with its id.
    #[inline]
    pub(crate) fn lookup(&self, prefix: u32, key: &[u8]) -> Option<(u32, &Node)> {
        let len = key.len();
        if len > self.max_key_len || self.len_mask & (1u64 << len.min(63)) == 0 {
            return None;
        }
        let hash = ci_hash(prefix, key);
        let mut pos = fold_hash(hash) & self.mask;
        loop {
            let slot = *self.table.get(pos)?;
            let id = slot.checked_sub(1)?;
            let node = self.nodes.get(id as usize)?;
            if node.hash == hash && node.prefix == prefix && node.lower.eq_ignore_ascii_case(key) {
                return Some((id, node));
            }
            pos = (pos + 1) & self.mask;
        }
    }

    /// The entry with id `id`, as returned by [`Schema::lookup`].
    #[inline]
    pub(crate) fn node(&self, id: u32) -> Option<&Node> {
        self.nodes.get(id as usize)
    }
}

/// A case-insensitive hash of `key` seeded by the prefix id, 8 bytes at a
/// time: every byte is OR-ed with 0x20, which maps `A` and `a` alike (other
/// collisions are settled by the comparison after the probe).
#[inline]
fn ci_hash(prefix: u32, key: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    const LOWER: u64 = 0x2020_2020_2020_2020;
    let mut h = (u64::from(prefix) << 32 | key.len() as u64).wrapping_mul(K);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        h = (h ^ (w | LOWER)).wrapping_mul(K).rotate_left(31);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = 0u64;
        for (n, &b) in rest.iter().enumerate() {
            w |= u64::from(b) << (8 * n);
        }
        h = (h ^ (w | LOWER)).wrapping_mul(K).rotate_left(31);
    }
    h ^ (h >> 32)
}

/// The 8 bytes of `b` at `i` as a little-endian word, if there are 8.
#[inline(always)]
pub(crate) fn word_at(b: &[u8], i: usize) -> Option<u64> {
    let w: [u8; 8] = b.get(i..i.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(w))
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether some byte of `w` equals `c` (SWAR, exact).
#[inline(always)]
pub(crate) fn has_byte(w: u64, c: u8) -> bool {
    let x = w ^ (ONES * u64::from(c));
    x.wrapping_sub(ONES) & !x & HIGHS != 0
}

/// Whether some byte of `w` is below `n` (SWAR, exact for `n <= 128`).
#[inline(always)]
pub(crate) fn has_less(w: u64, n: u8) -> bool {
    w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS != 0
}

/// Whether a value's text counts as absent: empty or whitespace only.
#[inline]
fn is_blank_text(s: &str) -> bool {
    match s.as_bytes().first() {
        None => true,
        Some(&b) if b > b' ' && b < 0x80 => false,
        Some(_) => s.trim().is_empty(),
    }
}

#[inline]
fn fold_hash(h: u64) -> usize {
    (h ^ (h >> 29)) as usize
}

/// A value offered to a [`Collector`] by a format scanner.
pub(crate) enum Offered<'a> {
    /// A decoded value.
    Text(Cow<'a, str>, ValueKind),
    /// A value whose bytes are not valid UTF-8: fails the line if it wins.
    InvalidUtf8,
}

impl<'a> Offered<'a> {
    /// Wraps raw bytes that need no decoding.
    pub(crate) fn from_bytes(bytes: &'a [u8], kind: ValueKind) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(s) => Offered::Text(Cow::Borrowed(s), kind),
            Err(_) => Offered::InvalidUtf8,
        }
    }
}

#[derive(Clone, Debug)]
struct Candidate<'a> {
    index: u32,
    exact: bool,
    /// `None`: the winning value was not valid UTF-8.
    text: Option<Cow<'a, str>>,
    kind: ValueKind,
}

/// Picks, for each role, the best of the (key, value) pairs of one line.
///
/// Feed it pairs in line order. The best candidate of a role has the lowest
/// name index; then an exact-case key beats a case-insensitive one; then the
/// first occurrence wins. Unusable values (empty or whitespace-only text;
/// objects and arrays except a non-empty one for [`Role::Error`]) are
/// ignored, so the lookup falls through to the next name. A duplicated key
/// thus counts by its first *usable* occurrence.
pub struct Collector<'s, 'a> {
    schema: &'s Schema,
    best: [Option<Candidate<'a>>; ROLE_COUNT],
}

impl<'s, 'a> Collector<'s, 'a> {
    /// An empty collector for one line.
    pub fn new(schema: &'s Schema) -> Self {
        Collector {
            schema,
            best: Default::default(),
        }
    }

    /// The schema this collector matches against.
    pub(crate) fn schema(&self) -> &'s Schema {
        self.schema
    }

    /// Offers a top-level `key` (flat; dots in it are part of the name) with
    /// its value. `value.name_index` is ignored and filled in by the
    /// collector.
    pub fn offer(&mut self, key: &str, value: FieldValue<'a>) {
        if let Some((_, node)) = self.schema.lookup(0, key.as_bytes()) {
            let key = key.as_bytes();
            self.offer_node(
                node,
                |name| name == key,
                Offered::Text(value.text, value.kind),
            );
        }
    }

    /// Like [`Collector::offer`] for raw bytes: a value that is not valid
    /// UTF-8 makes [`Collector::try_finish`] fail if it wins its role.
    pub fn offer_bytes(&mut self, key: &[u8], value: &'a [u8], kind: ValueKind) {
        if let Some((_, node)) = self.schema.lookup(0, key)
            && self.wants(node)
        {
            self.offer_node(node, |name| name == key, Offered::from_bytes(value, kind));
        }
    }

    /// Whether a value at `node` could still improve some role, so scanners
    /// can skip decoding values that would lose anyway.
    #[inline]
    pub(crate) fn wants(&self, node: &Node) -> bool {
        node.names
            .iter()
            .any(|n| match self.best.get(n.role.index()) {
                Some(Some(c)) => n.index < c.index || (n.index == c.index && !c.exact),
                _ => true,
            })
    }

    /// Offers a value found at `node`; `is_exact(name)` tells whether the
    /// key path as written equals the configured name exactly.
    pub(crate) fn offer_node(
        &mut self,
        node: &Node,
        is_exact: impl Fn(&[u8]) -> bool,
        value: Offered<'a>,
    ) {
        let (text, kind) = match value {
            Offered::Text(text, kind) => {
                if kind == ValueKind::Object {
                    if is_empty_container(&text) {
                        return;
                    }
                } else if is_blank_text(&text) {
                    return;
                }
                (Some(text), kind)
            }
            Offered::InvalidUtf8 => (None, ValueKind::String),
        };
        for name in &node.names {
            if kind == ValueKind::Object && name.role != Role::Error {
                continue;
            }
            let Some(slot) = self.best.get_mut(name.role.index()) else {
                continue;
            };
            let better = match slot {
                None => true,
                Some(c) => {
                    name.index < c.index
                        || (name.index == c.index && !c.exact && is_exact(&name.name))
                }
            };
            if better {
                *slot = Some(Candidate {
                    index: name.index,
                    exact: is_exact(&name.name),
                    text: text.clone(),
                    kind,
                });
            }
        }
    }

    /// The winners; a role whose winner was not valid UTF-8 is left `None`
    /// (use [`Collector::try_finish`] to see that).
    pub fn finish(self) -> Fields<'a> {
        Fields {
            values: self.best.map(|c| {
                c.and_then(|c| {
                    c.text.map(|text| FieldValue {
                        text,
                        kind: c.kind,
                        name_index: c.index as usize,
                    })
                })
            }),
        }
    }

    /// The winners, or [`LineError::InvalidUtf8`] when some role's winner
    /// was not valid UTF-8.
    pub fn try_finish(self) -> Result<Fields<'a>, LineError> {
        if self.best.iter().flatten().any(|c| c.text.is_none()) {
            return Err(LineError::InvalidUtf8);
        }
        Ok(self.finish())
    }
}

/// `{}`, `[ ]` and the like: an object or array with nothing inside.
fn is_empty_container(text: &str) -> bool {
    let t = text.trim();
    let inner = t
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .or_else(|| t.strip_prefix('[').and_then(|r| r.strip_suffix(']')));
    match inner {
        Some(inner) => inner.trim().is_empty(),
        None => t.is_empty(),
    }
}

/// The part of a raw line the scanners look at: without a leading UTF-8 byte
/// order mark and without one trailing `\r` (CRLF files).
pub(crate) fn strip_line(line: &[u8]) -> &[u8] {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Decodes backslash escapes (JSON's, which logfmt quoted values share):
/// `\" \\ \/ \b \f \n \r \t \uXXXX` with surrogate pairs; a lone surrogate
/// becomes U+FFFD, and an unknown escape is kept as written. `None` when the
/// bytes are not valid UTF-8.
pub(crate) fn unescape(raw: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(raw).ok()?;
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('\\') {
        out.push_str(rest.get(..pos)?);
        let after = rest.get(pos + 1..)?;
        let mut chars = after.chars();
        let Some(c) = chars.next() else {
            out.push('\\');
            rest = "";
            break;
        };
        rest = chars.as_str();
        match c {
            '"' | '\\' | '/' => out.push(c),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => match hex4(rest) {
                Some(hi) => {
                    rest = rest.get(4..)?;
                    if (0xD800..0xDC00).contains(&hi) {
                        let lo = rest.strip_prefix("\\u").and_then(hex4);
                        match lo {
                            Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                                let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                                out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                                rest = rest.get(6..)?;
                            }
                            _ => out.push('\u{FFFD}'),
                        }
                    } else {
                        out.push(char::from_u32(hi).unwrap_or('\u{FFFD}'));
                    }
                }
                None => out.push_str("\\u"),
            },
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    out.push_str(rest);
    Some(out)
}

fn hex4(s: &str) -> Option<u32> {
    let h = s.get(..4)?;
    if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(h, 16).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn text<'a>(s: &'a str) -> FieldValue<'a> {
        FieldValue {
            text: Cow::Borrowed(s),
            kind: ValueKind::String,
            name_index: 0,
        }
    }

    fn got<'a>(f: &'a Fields<'_>, role: Role) -> Option<(&'a str, usize)> {
        f.get(role).map(|v| (v.text.as_ref(), v.name_index))
    }

    #[test]
    fn roles_are_indexed_in_order() {
        for (i, r) in Role::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert_eq!(Role::from_cli_name(r.cli_name()), Some(*r));
        }
        assert_eq!(Role::RequestId.cli_name(), "id");
        assert_eq!(Role::Error.default_names(), &["error", "err", "exception"]);
        assert_eq!(Role::RequestId.default_names().len(), 12);
    }

    #[test]
    fn list_order_beats_key_order() {
        let s = Schema::default();
        let mut c = Collector::new(&s);
        c.offer("trace_id", text("T-77"));
        c.offer("request_id", text("r1"));
        c.offer("timestamp", text("late"));
        c.offer("ts", text("early"));
        let f = c.finish();
        assert_eq!(got(&f, Role::RequestId), Some(("r1", 0)));
        assert_eq!(got(&f, Role::Ts), Some(("early", 0)));
    }

    #[test]
    fn exact_case_beats_case_insensitive_then_first_wins() {
        let s = Schema::default();
        let mut c = Collector::new(&s);
        c.offer("RequestId", text("x-9"));
        c.offer("requestId", text("r1"));
        c.offer("REQUESTID", text("x-10"));
        assert_eq!(got(&c.finish(), Role::RequestId), Some(("r1", 1)));

        let mut c = Collector::new(&s);
        c.offer("RequestId", text("x-9"));
        c.offer("REQUESTID", text("x-10"));
        assert_eq!(got(&c.finish(), Role::RequestId), Some(("x-9", 1)));

        let mut c = Collector::new(&s);
        c.offer("request_id", text("r1"));
        c.offer("request_id", text("r2"));
        assert_eq!(got(&c.finish(), Role::RequestId), Some(("r1", 0)));
    }

    #[test]
    fn traceid_spellings_share_a_lower_case_name() {
        // `traceId` (7) and `traceid` (9) are the same name case-insensitively:
        // the key `traceid` matches `traceId` first, at index 7.
        let s = Schema::default();
        let mut c = Collector::new(&s);
        c.offer("traceid", text("a"));
        assert_eq!(got(&c.finish(), Role::RequestId), Some(("a", 7)));
        let mut c = Collector::new(&s);
        c.offer("traceid", text("a"));
        c.offer("traceId", text("b"));
        assert_eq!(got(&c.finish(), Role::RequestId), Some(("b", 7)));
    }

    #[test]
    fn unusable_values_fall_through() {
        let s = Schema::default();
        let mut c = Collector::new(&s);
        c.offer("request_id", text(""));
        c.offer("requestId", text("  \t"));
        c.offer("trace_id", text("r1"));
        c.offer(
            "service",
            FieldValue {
                text: Cow::Borrowed("{\"a\":1}"),
                kind: ValueKind::Object,
                name_index: 0,
            },
        );
        c.offer("app", text("orders"));
        c.offer(
            "error",
            FieldValue {
                text: Cow::Borrowed("{ }"),
                kind: ValueKind::Object,
                name_index: 0,
            },
        );
        c.offer(
            "err",
            FieldValue {
                text: Cow::Borrowed("{\"code\":5}"),
                kind: ValueKind::Object,
                name_index: 0,
            },
        );
        let f = c.finish();
        assert_eq!(got(&f, Role::RequestId), Some(("r1", 6)));
        assert_eq!(got(&f, Role::Service), Some(("orders", 5)));
        assert_eq!(got(&f, Role::Error), Some(("{\"code\":5}", 1)));
        assert_eq!(f.get(Role::Error).map(|v| v.kind), Some(ValueKind::Object));
        assert_eq!(f.get(Role::Peer), None);
    }

    #[test]
    fn overrides_replace_defaults() {
        let s = Schema::new(&[
            (
                Role::RequestId,
                vec!["correlation".into(), " ctx.req ".into()],
            ),
            (Role::Peer, vec![]),
        ]);
        assert_eq!(s.names(Role::RequestId), &["correlation", "ctx.req"]);
        assert!(s.names(Role::Peer).is_empty());
        assert_eq!(s.names(Role::Ts)[0], "ts");
        let mut c = Collector::new(&s);
        c.offer("request_id", text("r1"));
        c.offer("peer", text("db"));
        c.offer("CTX.REQ", text("c2"));
        let f = c.finish();
        assert_eq!(got(&f, Role::RequestId), Some(("c2", 1)));
        assert_eq!(f.get(Role::Peer), None);
    }

    #[test]
    fn one_name_in_two_roles_fills_both() {
        let s = Schema::new(&[
            (Role::Span, vec!["id".into()]),
            (Role::RequestId, vec!["id".into()]),
        ]);
        let mut c = Collector::new(&s);
        c.offer("Id", text("x"));
        let f = c.finish();
        assert_eq!(got(&f, Role::Span), Some(("x", 0)));
        assert_eq!(got(&f, Role::RequestId), Some(("x", 0)));
    }

    #[test]
    fn invalid_utf8_fails_only_when_it_wins() {
        let s = Schema::default();
        let mut c = Collector::new(&s);
        c.offer_bytes(b"trace_id", b"\xff\xfe", ValueKind::String);
        c.offer_bytes(b"request_id", b"ok", ValueKind::String);
        c.offer_bytes(b"msg", b"\xff", ValueKind::String);
        assert_eq!(
            c.try_finish()
                .map(|f| f.get(Role::RequestId).map(|v| v.text.to_string())),
            Ok(Some("ok".to_string()))
        );
        let mut c = Collector::new(&s);
        c.offer_bytes(b"request_id", b"\xff", ValueKind::String);
        c.offer_bytes(b"trace_id", b"ok", ValueKind::String);
        assert_eq!(c.try_finish(), Err(LineError::InvalidUtf8));
    }

    #[test]
    fn unescape_decodes_json_escapes() {
        assert_eq!(unescape(br#"a\"b\u00e9"#).as_deref(), Some("a\"bé"));
        assert_eq!(
            unescape(br#"\ud83d\ude00\n\t\\\/"#).as_deref(),
            Some("😀\n\t\\/")
        );
        assert_eq!(unescape(br#"\ud83dx"#).as_deref(), Some("\u{FFFD}x"));
        assert_eq!(unescape(br#"\q\"#).as_deref(), Some("\\q\\"));
        assert_eq!(unescape(b"\xff"), None);
    }

    #[test]
    fn swar_helpers() {
        let w = u64::from_le_bytes(*b"abc\"defg");
        assert!(has_byte(w, b'"'));
        assert!(!has_byte(w, b'\\'));
        assert!(!has_less(w, 0x20));
        assert!(has_less(u64::from_le_bytes(*b"abcdefg\t"), 0x20));
        assert!(!has_less(u64::from_le_bytes(*b"\xff\xfe\x80abcde"), 0x20));
        assert!(has_byte(
            u64::from_le_bytes(*b"\x00\x01\x02\x03\x04\x05\x06\x22"),
            b'"'
        ));
        assert!(!has_byte(
            u64::from_le_bytes(*b"\x00\x01\x02\x03\x04\x05\x06\x21"),
            b'"'
        ));
        assert_eq!(word_at(b"0123456", 0), None);
        assert_eq!(
            word_at(b"01234567", 0),
            Some(u64::from_le_bytes(*b"01234567"))
        );
        assert_eq!(word_at(b"01234567", usize::MAX), None);
        assert_eq!(ci_hash(3, b"Request_ID"), ci_hash(3, b"request_id"));
        assert_ne!(ci_hash(3, b"request_id"), ci_hash(0, b"request_id"));
        assert!(is_blank_text(" \u{a0}\t"));
        assert!(!is_blank_text("\u{e9}"));
    }

    #[test]
    fn strip_line_drops_cr_and_bom() {
        assert_eq!(strip_line(b"\xEF\xBB\xBFa=b\r"), b"a=b");
        assert_eq!(strip_line(b"a\r\r"), b"a\r");
    }

    #[test]
    fn lookup_is_case_insensitive_and_prefix_aware() {
        let s = Schema::default();
        let (_, n) = s.lookup(0, b"SERVICE").unwrap();
        assert!(n.child != NO_ID);
        assert_eq!(n.names.len(), 1);
        let (_, inner) = s.lookup(n.child, b"Name").unwrap();
        assert_eq!(inner.names[0].role, Role::Service);
        assert_eq!(inner.names[0].index, 1);
        assert!(s.lookup(0, b"name").is_none());
        assert!(s.lookup(0, b"msg").is_none());
        assert!(s.lookup(0, b"service.name").is_some());
    }
}
