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
    /// The first 16 bytes of `name`, not lower-cased (see [`raw_words`]).
    raw: (u64, u64),
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
    /// The entry's id (its index; for [`Schema::node`]).
    pub(crate) id: u32,
    /// The only name as (role, index) when there is exactly one (the usual
    /// case), for [`Collector::wants_hit`].
    one: Option<(Role, u32)>,
    prefix: u32,
    lower: Box<[u8]>,
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
    /// The lookup keys of `nodes` (same indices), chained per bucket.
    slots: Vec<Slot>,
    /// Per bucket: the first slot index plus one (0 = empty).
    table: Box<[u32; TABLE_SIZE]>,
}

/// Buckets in [`Schema`]'s table: a fixed power of two, so that a masked
/// bucket index needs no bounds check (a schema has tens of names; a huge
/// one only makes chains longer).
const TABLE_SIZE: usize = 1024;

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
        // Every dotted prefix of every name gets an id from 1; the root is
        // 0 (and distinct from the empty prefix of a name like `.x`).
        let mut prefixes: HashMap<Vec<u8>, u32> = HashMap::new();
        let mut nodes: Vec<Node> = Vec::new();
        let mut index: HashMap<(u32, Vec<u8>), usize> = HashMap::new();
        let mut node_at = |nodes: &mut Vec<Node>, prefix: u32, lower: &[u8]| -> usize {
            *index.entry((prefix, lower.to_vec())).or_insert_with(|| {
                nodes.push(Node {
                    id: u32::try_from(nodes.len()).unwrap_or(NO_ID),
                    one: None,
                    prefix,
                    lower: lower.into(),
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
                    let next = u32::try_from(prefixes.len() + 1).unwrap_or(NO_ID);
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
                            raw: raw_words(name.as_bytes(), 0, name.len()),
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
        let mut table = Box::new([0u32; TABLE_SIZE]);
        let mut slots = Vec::with_capacity(nodes.len());
        for node in nodes.iter_mut() {
            node.one = match node.names.as_slice() {
                [name] => Some((name.role, name.index)),
                _ => None,
            };
            let len = node.lower.len();
            let (w0, w1) = raw_words(&node.lower, 0, len.min(16));
            let (mask0, mask1) = raw_words(&[0xFF; 16], 0, len.min(16));
            slots.push(Slot {
                w0,
                w1,
                letters0: letters(w0),
                letters1: letters(w1),
                mask0,
                mask1,
                meta: key_meta(node.prefix, len),
                next: 0,
            });
        }
        // Chains in node order (earlier names first), so linked from the end.
        for (n, slot) in slots.iter_mut().enumerate().rev() {
            let Some(node) = nodes.get(n) else {
                continue;
            };
            let (first, last) = ends(&node.lower, 0, node.lower.len());
            if let Some(head) = table.get_mut(bucket(first, last, slot.meta) % TABLE_SIZE) {
                slot.next = *head;
                *head = u32::try_from(n + 1).unwrap_or(0);
            }
        }
        Schema {
            names,
            nodes,
            slots,
            table,
        }
    }

    /// The names of `role` in priority order; [`FieldValue::name_index`]
    /// indexes this list.
    pub fn names(&self, role: Role) -> &[String] {
        self.names.get(role.index()).map_or(&[], Vec::as_slice)
    }

    /// The entry for `key` (any case) inside an object reached by the
    /// dotted prefix `prefix` (0 = the top level).
    #[inline]
    pub(crate) fn lookup(&self, prefix: u32, key: &[u8]) -> Option<Hit<'_>> {
        self.lookup_in(prefix, key, 0, key.len())
    }

    /// [`Schema::lookup`] of the key `line[start..end]`; reads the key
    /// straight from the line with word loads.
    #[inline(always)]
    pub(crate) fn lookup_in(
        &self,
        prefix: u32,
        line: &[u8],
        start: usize,
        end: usize,
    ) -> Option<Hit<'_>> {
        let len = end.checked_sub(start)?;
        let meta = key_meta(prefix, len);
        let (first, last) = ends(line, start, end);
        let mut next = *self.table.get(bucket(first, last, meta) % TABLE_SIZE)?;
        if next == 0 {
            return None;
        }
        // The 16 bytes at `start` as they are (each slot masks off what
        // follows its key), or the key zero-padded near the line's end.
        let loaded = load16(line, start).unwrap_or_else(|| raw_words(line, start, len.min(16)));
        while let Some(id) = next.checked_sub(1) {
            let slot = self.slots.get(id as usize)?;
            // Letters compare with their case bit set, everything else as is.
            if slot.meta == meta
                && ((loaded.0 | slot.letters0) & slot.mask0) == slot.w0
                && ((loaded.1 | slot.letters1) & slot.mask1) == slot.w1
            {
                let node = self.nodes.get(id as usize)?;
                if len <= 16 || line.get(start..end)?.eq_ignore_ascii_case(&node.lower) {
                    let raw = (loaded.0 & slot.mask0, loaded.1 & slot.mask1);
                    return Some(Hit { node, raw });
                }
            }
            next = slot.next;
        }
        None
    }

    /// The entry with id `id`, as returned by [`Schema::lookup`].
    #[inline]
    pub(crate) fn node(&self, id: u32) -> Option<&Node> {
        self.nodes.get(id as usize)
    }
}

/// A key found by [`Schema::lookup`]: its entry, and the key's first 16
/// bytes as read for the lookup, so that [`Hit::spells`] need not read
/// them again.
#[derive(Clone, Copy)]
pub(crate) struct Hit<'s> {
    /// The entry.
    pub(crate) node: &'s Node,
    /// [`raw_words`] of the key looked up (its first 16 bytes).
    raw: (u64, u64),
}

impl Hit<'_> {
    /// The entry's id (for [`Schema::node`]).
    #[inline(always)]
    pub(crate) fn id(&self) -> u32 {
        self.node.id
    }

    /// The entry's [`Node::child`] (the prefix id inside an object found at
    /// this key), or [`NO_ID`].
    #[inline(always)]
    pub(crate) fn child(&self) -> u32 {
        self.node.child
    }

    /// Whether the key `line[start..end]`, taken as the whole path, is
    /// spelled exactly `name`. It must be the key this hit was looked up
    /// with: up to 16 bytes, the words read by the lookup are compared.
    #[inline(always)]
    pub(crate) fn spells(&self, name: &NameRef, line: &[u8], start: usize, end: usize) -> bool {
        let len = end.saturating_sub(start);
        name.name.len() == len
            && if len <= 16 {
                name.raw == self.raw
            } else {
                line.get(start..end) == Some(&*name.name)
            }
    }
}

/// The bytes `line[start..start + len]` (`len <= 16`) as two little-endian
/// words, zero-padded; two word loads when the line has 16 bytes there.
#[inline(always)]
fn raw_words(line: &[u8], start: usize, len: usize) -> (u64, u64) {
    let sixteen = start
        .checked_add(16)
        .and_then(|end| line.get(start..end))
        .and_then(|s| <[u8; 16]>::try_from(s).ok());
    if let Some(sixteen) = sixteen {
        // The low `len` bytes, without a branch on the length.
        let bits = 8 * len.min(16) as u32;
        let x = u128::from_le_bytes(sixteen) & u128::MAX.checked_shr(128 - bits).unwrap_or(0);
        return (x as u64, (x >> 64) as u64);
    }
    let key = line
        .get(start..start.saturating_add(len.min(16)))
        .unwrap_or(&[]);
    let (a, b) = key.split_at(key.len().min(8));
    (load_word(a), load_word(b))
}

/// The 16 bytes of `line` at `start` as two little-endian words, if there
/// are 16.
#[inline(always)]
fn load16(line: &[u8], start: usize) -> Option<(u64, u64)> {
    let sixteen: [u8; 16] = line.get(start..start.checked_add(16)?)?.try_into().ok()?;
    let x = u128::from_le_bytes(sixteen);
    Some((x as u64, (x >> 64) as u64))
}

/// Up to 8 bytes as a little-endian word, zero-padded, without a byte loop.
#[inline(always)]
fn load_word(chunk: &[u8]) -> u64 {
    let n = chunk.len();
    if let Ok(w) = <[u8; 8]>::try_from(chunk) {
        return u64::from_le_bytes(w);
    }
    let u32_at = |i: usize| -> u64 {
        chunk
            .get(i..i + 4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map_or(0, |w| u64::from(u32::from_le_bytes(w)))
    };
    if n >= 4 {
        // Two overlapping loads; the overlap holds the same bytes twice.
        return u32_at(0) | u32_at(n - 4) << (8 * (n - 4));
    }
    let byte = |i: usize| chunk.get(i).map_or(0, |&b| u64::from(b));
    match n {
        0 => 0,
        _ => byte(0) | byte(n / 2) << (8 * (n / 2)) | byte(n - 1) << (8 * (n - 1)),
    }
}

/// The lookup key of a node: its lower-cased first 16 bytes and, in
/// `meta`, its length and prefix id.
#[derive(Clone, Debug)]
struct Slot {
    w0: u64,
    w1: u64,
    /// 0x20 in the bytes of `w0`, `w1` that are (lower-case) letters.
    letters0: u64,
    letters1: u64,
    /// 0xFF in the bytes of `w0`, `w1` that the key covers.
    mask0: u64,
    mask1: u64,
    meta: u64,
    /// The next slot in the same bucket, plus one (0 = none).
    next: u32,
}

#[inline(always)]
fn key_meta(prefix: u32, len: usize) -> u64 {
    u64::from(prefix) << 32 | len as u64
}

/// The first and last bytes of the key `line[start..end]` (0 when empty).
#[inline(always)]
fn ends(line: &[u8], start: usize, end: usize) -> (u8, u8) {
    if start >= end {
        return (0, 0);
    }
    let byte = |i: usize| line.get(i).copied().unwrap_or(0);
    (byte(start), byte(end - 1))
}

/// The bucket of a key (before masking to the table size) from its first
/// and last bytes and its meta (length and prefix). Cheap rather than
/// strong: no multiply on the path of every key, and the default names
/// spread well (at most four share a bucket). Any case: only the low five
/// bits of the bytes count, which `A` and `a` share.
#[inline(always)]
fn bucket(first: u8, last: u8, meta: u64) -> usize {
    let len = meta as u32 as usize;
    let prefix = (meta >> 32) as usize;
    (usize::from(first & 31) | usize::from(last & 31) << 5)
        ^ len.wrapping_mul(37)
        ^ prefix.wrapping_mul(0x9E5)
}

/// 0x20 in each byte of `w` that is an ASCII lower-case letter.
fn letters(w: u64) -> u64 {
    let mut out = 0u64;
    for (i, b) in w.to_le_bytes().into_iter().enumerate() {
        if b.is_ascii_lowercase() {
            out |= 0x20u64 << (8 * i);
        }
    }
    out
}

/// The 8 bytes of `b` at `i` as a little-endian word, if there are 8.
#[inline(always)]
pub(crate) fn word_at(b: &[u8], i: usize) -> Option<u64> {
    let w: [u8; 8] = b.get(i..i.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(w))
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bits set in the bytes of `w` that equal `c`: the lowest set bit is
/// exactly the first such byte (bits above it may be false positives).
#[inline(always)]
pub(crate) fn eq_mask(w: u64, c: u8) -> u64 {
    let x = w ^ (ONES * u64::from(c));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// High bits set in the bytes of `w` below `n` (`n <= 128`); as exact as
/// [`eq_mask`].
#[inline(always)]
pub(crate) fn less_mask(w: u64, n: u8) -> u64 {
    w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS
}

/// Whether a value's text counts as absent: empty or whitespace only.
#[inline]
pub(crate) fn is_blank_text(s: &str) -> bool {
    match s.as_bytes().first() {
        None => true,
        Some(&b) if b > b' ' && b < 0x80 => false,
        Some(_) => s.trim().is_empty(),
    }
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

/// A line's bytes and, when the whole line is valid UTF-8 (almost always),
/// its text: a value is then a sub-slice of the text, found without
/// validating each value on its own.
#[derive(Clone, Copy)]
pub(crate) struct LineText<'a> {
    pub(crate) bytes: &'a [u8],
    text: Option<&'a str>,
}

impl<'a> LineText<'a> {
    /// Validates `bytes` once (simdutf8's SIMD check gives std's verdict in
    /// about three quarters of its time on these lines).
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        LineText {
            bytes,
            text: simdutf8::basic::from_utf8(bytes).ok(),
        }
    }

    /// Whether the whole line is valid UTF-8.
    #[inline]
    pub(crate) fn is_utf8(&self) -> bool {
        self.text.is_some()
    }

    /// The value at `start..end`, borrowed from the line.
    #[inline]
    pub(crate) fn value(&self, start: usize, end: usize, kind: ValueKind) -> Offered<'a> {
        if let Some(s) = self.text.and_then(|t| t.get(start..end)) {
            return Offered::Text(Cow::Borrowed(s), kind);
        }
        match self.bytes.get(start..end) {
            Some(raw) => Offered::from_bytes(raw, kind),
            None => Offered::InvalidUtf8,
        }
    }

    /// The text at `start..end` when the line is valid UTF-8 (and the range
    /// on character boundaries).
    #[inline(always)]
    pub(crate) fn str_at(&self, start: usize, end: usize) -> Option<&'a str> {
        self.text.and_then(|t| t.get(start..end))
    }

    /// The value at `start..end` with its backslash escapes decoded.
    pub(crate) fn unescaped(&self, start: usize, end: usize) -> Offered<'a> {
        match self.bytes.get(start..end).and_then(unescape) {
            Some(s) => Offered::Text(Cow::Owned(s), ValueKind::String),
            None => Offered::InvalidUtf8,
        }
    }
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
    /// The best candidate so far of each role.
    fields: Fields<'a>,
    /// Bit per role: its candidate's key was spelled exactly as its name.
    exact: u16,
    /// Bit per role: its candidate is not valid UTF-8 (its text is empty).
    invalid: u16,
    /// Bit per role: it has a candidate (so [`Collector::reset`] clears only
    /// those).
    filled: u16,
    /// Per role with a candidate: the candidate's name index (a copy of
    /// [`FieldValue::name_index`] that [`Collector::beats`] reads without
    /// touching the values).
    best: [u32; ROLE_COUNT],
    /// Plans of flat JSON lines by their keys ([`super::json`]), kept here
    /// because they hold for this collector's schema only.
    pub(crate) shapes: super::json::Shapes,
}

impl<'s, 'a> Collector<'s, 'a> {
    /// An empty collector for one line.
    pub fn new(schema: &'s Schema) -> Self {
        Collector {
            schema,
            fields: Fields::default(),
            exact: 0,
            invalid: 0,
            filled: 0,
            best: [0; ROLE_COUNT],
            shapes: super::json::Shapes::default(),
        }
    }

    /// Empties the collector for the next line, keeping its storage: the
    /// per-line path reuses one collector and reads the winners in place
    /// with [`Collector::result`] instead of moving a [`Fields`] out.
    #[inline]
    pub(crate) fn reset(&mut self) {
        let mut filled = self.filled;
        while filled != 0 {
            let role = filled.trailing_zeros() as usize;
            filled &= filled - 1;
            if let Some(v) = self.fields.values.get_mut(role) {
                *v = None;
            }
        }
        self.filled = 0;
        self.exact = 0;
        self.invalid = 0;
    }

    /// Makes `value` the winner of `role` (a plan that already knows the
    /// winner, see [`super::json`]).
    #[inline]
    pub(crate) fn set(&mut self, role: Role, value: FieldValue<'a>) {
        let bit = 1 << role.index();
        if let Some(slot) = self.fields.values.get_mut(role.index()) {
            if let Some(best) = self.best.get_mut(role.index()) {
                *best = u32::try_from(value.name_index).unwrap_or(u32::MAX);
            }
            *slot = Some(value);
            self.filled |= bit;
        }
    }

    /// Replaces the candidates with `fields` (a format that has no
    /// [`Collector`] of its own, such as a regex, still reuses the storage).
    pub(crate) fn set_fields(&mut self, fields: Fields<'a>) {
        self.filled = 0;
        for (role, v) in fields.values.iter().enumerate() {
            if let (Some(v), Some(best)) = (v, self.best.get_mut(role)) {
                self.filled |= 1 << role;
                *best = u32::try_from(v.name_index).unwrap_or(u32::MAX);
            }
        }
        self.fields = fields;
        self.exact = 0;
        self.invalid = 0;
    }

    /// [`Collector::try_finish`] by reference.
    #[inline]
    pub(crate) fn result(&self) -> Result<&Fields<'a>, LineError> {
        if self.invalid != 0 {
            return Err(LineError::InvalidUtf8);
        }
        Ok(&self.fields)
    }

    /// The schema this collector matches against.
    pub(crate) fn schema(&self) -> &'s Schema {
        self.schema
    }

    /// Offers a top-level `key` (flat; dots in it are part of the name) with
    /// its value. `value.name_index` is ignored and filled in by the
    /// collector.
    pub fn offer(&mut self, key: &str, value: FieldValue<'a>) {
        let key = key.as_bytes();
        if let Some(hit) = self.schema.lookup(0, key) {
            let value = Offered::Text(value.text, value.kind);
            self.offer_node(hit.node, |name| hit.spells(name, key, 0, key.len()), value);
        }
    }

    /// Like [`Collector::offer`] for raw bytes: a value that is not valid
    /// UTF-8 makes [`Collector::try_finish`] fail if it wins its role.
    pub fn offer_bytes(&mut self, key: &[u8], value: &'a [u8], kind: ValueKind) {
        if let Some(hit) = self.schema.lookup(0, key)
            && self.wants(hit.node)
        {
            let value = Offered::from_bytes(value, kind);
            self.offer_node(hit.node, |name| hit.spells(name, key, 0, key.len()), value);
        }
    }

    /// Whether `name` would beat the current candidate of its role, given
    /// whether the key is spelled exactly like it (computed only if needed).
    #[inline(always)]
    fn beats(&self, name: &NameRef, exact: impl FnOnce() -> bool) -> bool {
        self.beats_at(name.role, name.index, exact)
    }

    /// [`Collector::beats`] for the name at `index` in `role`'s list.
    #[inline(always)]
    fn beats_at(&self, role: Role, index: u32, exact: impl FnOnce() -> bool) -> bool {
        let role = role.index();
        if self.filled & (1 << role) == 0 {
            return true;
        }
        let best = self.best.get(role).copied().unwrap_or(u32::MAX);
        index < best || (index == best && self.exact & (1 << role) == 0 && exact())
    }

    /// Whether a value at `node` could still improve some role, so scanners
    /// can skip decoding values that would lose anyway.
    #[inline(always)]
    pub(crate) fn wants(&self, node: &Node) -> bool {
        node.names.iter().any(|n| self.beats(n, || true))
    }

    /// [`Collector::wants`] of a lookup's entry, read from the hit itself
    /// when the entry has one name.
    #[inline(always)]
    pub(crate) fn wants_hit(&self, hit: &Hit<'_>) -> bool {
        match hit.node.one {
            Some((role, index)) => self.beats_at(role, index, || true),
            None => self.wants(hit.node),
        }
    }

    /// [`Collector::offer_node`] of a scalar value at a top-level key
    /// `line[key_start..key_end]` matched as `hit`: the common case, with
    /// the value's text at hand.
    #[inline(always)]
    pub(crate) fn offer_text(
        &mut self,
        hit: Hit<'_>,
        line: &[u8],
        key: (usize, usize),
        text: &'a str,
        kind: ValueKind,
    ) {
        // The closure only on the rare path: built up front, its captures
        // were spilled to the stack for every value.
        match hit.node.names.as_slice() {
            [name] if kind != ValueKind::Object => {
                if !is_blank_text(text) {
                    let exact = hit.spells(name, line, key.0, key.1);
                    self.place_exact(name, exact, Cow::Borrowed(text), kind, false);
                }
            }
            _ => self.offer_node(
                hit.node,
                |name: &NameRef| hit.spells(name, line, key.0, key.1),
                Offered::Text(Cow::Borrowed(text), kind),
            ),
        }
    }

    /// Offers a value found at `node`; `is_exact(name)` tells whether the
    /// key path as written equals the configured name exactly.
    #[inline]
    pub(crate) fn offer_node(
        &mut self,
        node: &Node,
        is_exact: impl Fn(&NameRef) -> bool,
        value: Offered<'a>,
    ) {
        let (text, kind, invalid) = match value {
            Offered::Text(text, kind) => {
                if kind == ValueKind::Object {
                    if is_empty_container(&text) {
                        return;
                    }
                } else if is_blank_text(&text) {
                    return;
                }
                (text, kind, false)
            }
            Offered::InvalidUtf8 => (Cow::Borrowed(""), ValueKind::String, true),
        };
        match node.names.as_slice() {
            // The common case: one name, the value moves into place.
            [name] => self.place(name, &is_exact, text, kind, invalid),
            names => {
                for name in names {
                    self.place(name, &is_exact, text.clone(), kind, invalid);
                }
            }
        }
    }

    #[inline(always)]
    fn place(
        &mut self,
        name: &NameRef,
        is_exact: &impl Fn(&NameRef) -> bool,
        text: Cow<'a, str>,
        kind: ValueKind,
        invalid: bool,
    ) {
        if kind == ValueKind::Object && name.role != Role::Error {
            return;
        }
        self.place_exact(name, is_exact(name), text, kind, invalid);
    }

    /// [`Collector::place`] with the key's exactness known.
    #[inline(always)]
    fn place_exact(
        &mut self,
        name: &NameRef,
        exact: bool,
        text: Cow<'a, str>,
        kind: ValueKind,
        invalid: bool,
    ) {
        if !self.beats(name, || exact) {
            return;
        }
        let role = name.role.index();
        let Some(slot) = self.fields.values.get_mut(role) else {
            return;
        };
        *slot = Some(FieldValue {
            text,
            kind,
            name_index: name.index as usize,
        });
        let bit = 1u16 << role;
        self.filled |= bit;
        if let Some(best) = self.best.get_mut(role) {
            *best = name.index;
        }
        if exact {
            self.exact |= bit;
        } else {
            self.exact &= !bit;
        }
        if invalid {
            self.invalid |= bit;
        } else {
            self.invalid &= !bit;
        }
    }

    /// The winners; a role whose winner was not valid UTF-8 is left `None`
    /// (use [`Collector::try_finish`] to see that).
    pub fn finish(self) -> Fields<'a> {
        let mut fields = self.fields;
        if self.invalid != 0 {
            for (i, v) in fields.values.iter_mut().enumerate() {
                if self.invalid & (1 << i) != 0 {
                    *v = None;
                }
            }
        }
        fields
    }

    /// The winners, or [`LineError::InvalidUtf8`] when some role's winner
    /// was not valid UTF-8.
    pub fn try_finish(self) -> Result<Fields<'a>, LineError> {
        if self.invalid != 0 {
            return Err(LineError::InvalidUtf8);
        }
        Ok(self.fields)
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

/// A schema with no names at all, for checks of a line's structure only
/// (nothing is looked up or decoded).
pub(crate) fn empty_schema() -> &'static Schema {
    static EMPTY: std::sync::LazyLock<Schema> = std::sync::LazyLock::new(|| {
        let none: Vec<_> = Role::ALL.into_iter().map(|r| (r, Vec::new())).collect();
        Schema::new(&none)
    });
    &EMPTY
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
        // `finish` leaves such a role empty and keeps the others.
        let mut c = Collector::new(&s);
        c.offer_bytes(b"request_id", b"\xff", ValueKind::String);
        c.offer_bytes(b"ts", b"1", ValueKind::Number);
        let f = c.finish();
        assert_eq!(f.get(Role::RequestId), None);
        assert_eq!(
            f.get(Role::Ts).map(|v| (v.text.as_ref(), v.kind)),
            Some(("1", ValueKind::Number))
        );
        // A better valid candidate replaces an invalid one.
        let mut c = Collector::new(&s);
        c.offer_bytes(b"trace_id", b"\xff", ValueKind::String);
        c.offer_bytes(b"request_id", b"ok", ValueKind::String);
        assert!(c.try_finish().is_ok());
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
        assert_eq!(eq_mask(w, b'"').trailing_zeros() / 8, 3);
        assert_eq!(eq_mask(w, b'\\'), 0);
        assert_eq!(less_mask(w, 0x20), 0);
        assert_eq!(
            less_mask(u64::from_le_bytes(*b"abcdefg\t"), 0x20).trailing_zeros() / 8,
            7
        );
        assert_eq!(
            less_mask(u64::from_le_bytes(*b"\xff\xfe\x80abcde"), 0x20),
            0
        );
        // The lowest flagged byte is exact even when later ones are not.
        let w = u64::from_le_bytes(*b"\"\x01\"\x00\x22abc");
        assert_eq!(eq_mask(w, b'"').trailing_zeros() / 8, 0);
        assert_eq!(less_mask(w, 0x20).trailing_zeros() / 8, 1);
        assert_eq!(
            eq_mask(
                u64::from_le_bytes(*b"\x21\x21\x21\x21\x21\x21\x21\x21"),
                b'"'
            ),
            0
        );
        assert_eq!(word_at(b"0123456", 0), None);
        assert_eq!(
            word_at(b"01234567", 0),
            Some(u64::from_le_bytes(*b"01234567"))
        );
        assert_eq!(word_at(b"01234567", usize::MAX), None);
        let (w0, w1) = raw_words(b"Request_ID", 0, 10);
        assert_eq!(
            (w0, w1),
            (
                u64::from_le_bytes(*b"Request_"),
                u64::from(u16::from_le_bytes(*b"ID"))
            )
        );
        let line = b"{\"Request_ID\":\"0123456789abcdef0123\"}";
        assert_eq!(raw_words(line, 2, 10), (w0, w1));
        assert_eq!(
            raw_words(line, 15, 16),
            (
                u64::from_le_bytes(*b"01234567"),
                u64::from_le_bytes(*b"89abcdef")
            )
        );
        assert_eq!(
            letters(u64::from_le_bytes(*b"ab_1Z.z\xe9")),
            0x0020_0000_0000_2020
        );
        assert!(is_blank_text(" \u{a0}\t"));
        assert!(!is_blank_text("\u{e9}"));
    }

    #[test]
    fn strip_line_drops_cr_and_bom() {
        assert_eq!(strip_line(b"\xEF\xBB\xBFa=b\r"), b"a=b");
        assert_eq!(strip_line(b"a\r\r"), b"a\r");
    }

    #[test]
    fn long_names_match_any_case_and_prefer_exact() {
        let long = "a_Very_Long_Request_Identifier_Field";
        let s = Schema::new(&[(Role::RequestId, vec![long.into(), long.to_lowercase()])]);
        let mut c = Collector::new(&s);
        c.offer("A_VERY_LONG_REQUEST_IDENTIFIER_FIELD", text("upper"));
        assert_eq!(got(&c.finish(), Role::RequestId), Some(("upper", 0)));
        let mut c = Collector::new(&s);
        c.offer("A_VERY_LONG_REQUEST_IDENTIFIER_FIELD", text("upper"));
        c.offer(long, text("exact"));
        c.offer("a_very_long_request_identifier_fielD", text("other"));
        assert_eq!(got(&c.finish(), Role::RequestId), Some(("exact", 0)));
        // Same first 16 bytes, different rest: no match.
        let mut c = Collector::new(&s);
        c.offer("a_very_long_request_identifier_fielx", text("no"));
        c.offer("a_very_long_requ", text("no"));
        assert_eq!(c.finish().get(Role::RequestId), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// The word-wise lookup agrees with `eq_ignore_ascii_case`, also for
        /// bytes that differ from letters only in the 0x20 bit.
        #[test]
        fn lookup_agrees_with_ascii_case_folding(
            names in proptest::collection::vec("[a-cA-C_@`\\[{\x7f.]{1,20}", 1..6),
            key in "[a-cA-C_@`\\[{\x7f.]{1,20}",
        ) {
            let s = Schema::new(&[(Role::Event, names.clone())]);
            let want = names.iter().position(|n| n.eq_ignore_ascii_case(&key));
            let mut c = Collector::new(&s);
            c.offer(&key, text("v"));
            let got = c.finish().get(Role::Event).map(|v| v.name_index);
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn lookup_is_case_insensitive_and_prefix_aware() {
        let s = Schema::default();
        let n = s.lookup(0, b"SERVICE").unwrap().node;
        assert!(n.child != NO_ID);
        assert_eq!(n.names.len(), 1);
        let inner = s.lookup(n.child, b"Name").unwrap().node;
        assert_eq!(inner.names[0].role, Role::Service);
        assert_eq!(inner.names[0].index, 1);
        assert!(s.lookup(0, b"name").is_none());
        assert!(s.lookup(0, b"msg").is_none());
        assert!(s.lookup(0, b"service.name").is_some());
    }
}
