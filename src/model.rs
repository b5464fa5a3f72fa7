//! The compact values that flow between the stages: records (one per usable
//! line), the interner that gives services and peers small integer ids, and
//! the event kinds of SPEC §2.

use rustc_hash::FxHashMap;

/// Index of a service (or a raw peer text) in an [`Interner`].
pub type SymId = u32;

/// What a line says happened, per SPEC §2's table of event kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The request arrived at this service.
    ServerRecv,
    /// This service answered.
    ServerSend,
    /// This service called `peer`.
    ClientSend,
    /// The answer from `peer` came back.
    ClientRecv,
}

impl Kind {
    /// Classifies an event value case-insensitively; other values mean no kind.
    pub fn from_value(value: &str) -> Option<Kind> {
        let v = value.trim();
        // Fast path for the exact lower-case spellings most logs use.
        match v {
            "sr" | "server_recv" => return Some(Kind::ServerRecv),
            "ss" | "server_send" => return Some(Kind::ServerSend),
            "cs" | "client_send" => return Some(Kind::ClientSend),
            "cr" | "client_recv" => return Some(Kind::ClientRecv),
            _ => {}
        }
        if v.len() > 17 {
            return None;
        }

        let eq = |names: &[&str]| names.iter().any(|n| v.eq_ignore_ascii_case(n));
        if eq(&[
            "sr",
            "server_recv",
            "request_received",
            "recv",
            "received",
            "start",
            "begin",
            "request_start",
        ]) {
            Some(Kind::ServerRecv)
        } else if eq(&[
            "ss",
            "server_send",
            "response_sent",
            "send",
            "sent",
            "end",
            "finish",
            "finished",
            "done",
            "complete",
            "completed",
            "request_end",
        ]) {
            Some(Kind::ServerSend)
        } else if eq(&[
            "cs",
            "client_send",
            "call",
            "calling",
            "request_sent",
            "outgoing",
        ]) {
            Some(Kind::ClientSend)
        } else if eq(&[
            "cr",
            "client_recv",
            "response_received",
            "reply",
            "returned",
        ]) {
            Some(Kind::ClientRecv)
        } else {
            None
        }
    }

    /// True for the two client events, which belong to calls, not visits.
    pub fn is_client(self) -> bool {
        matches!(self, Kind::ClientSend | Kind::ClientRecv)
    }
}

/// An identifier (request ID, span ID) in a compact, exact form: lowercase
/// hex of up to 32 digits and canonical lowercase UUIDs are kept as their
/// 128-bit value (with the length, so the text round-trips); any other text
/// is interned and kept as its index. Two keys are equal exactly when the
/// texts are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdKey {
    /// 0: interned text (`lo` = index); 1..=32: hex of that many digits;
    /// 33: UUID.
    pub tag: u8,
    /// High 64 bits of the value.
    pub hi: u64,
    /// Low 64 bits of the value, or the interned index.
    pub lo: u64,
}

/// The tag of an interned text key.
const TAG_TEXT: u8 = 0;
/// The tag of a canonical UUID key.
pub(crate) const TAG_UUID: u8 = 33;

impl IdKey {
    /// The compact key of `text` when it has one (lowercase hex of 1 to 32
    /// digits, or a canonical lowercase UUID). This is the rule, written
    /// plainly; the parser uses an equal version that reads eight digits at
    /// a time (a property test keeps the two equal).
    pub fn compact(text: &str) -> Option<IdKey> {
        let b = text.as_bytes();
        let hex = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        if (1..=32).contains(&b.len()) {
            let mut v: u128 = 0;
            for &c in b {
                v = (v << 4) | u128::from(hex(c)?);
            }
            return Some(IdKey::from_value(b.len() as u8, v));
        }
        if b.len() == 36 {
            let mut v: u128 = 0;
            for (i, &c) in b.iter().enumerate() {
                if matches!(i, 8 | 13 | 18 | 23) {
                    if c != b'-' {
                        return None;
                    }
                } else {
                    v = (v << 4) | u128::from(hex(c)?);
                }
            }
            return Some(IdKey::from_value(TAG_UUID, v));
        }
        None
    }

    /// The key of a compact value with its tag (digit count or UUID).
    pub(crate) fn from_value(tag: u8, v: u128) -> IdKey {
        IdKey {
            tag,
            hi: (v >> 64) as u64,
            lo: v as u64,
        }
    }

    fn value(self) -> u128 {
        (u128::from(self.hi) << 64) | u128::from(self.lo)
    }

    /// The key of an interned text.
    pub fn interned(index: u32) -> IdKey {
        IdKey {
            tag: TAG_TEXT,
            hi: 0,
            lo: u64::from(index),
        }
    }

    /// The interned index, for text keys.
    pub fn text_index(self) -> Option<u32> {
        (self.tag == TAG_TEXT).then(|| u32::try_from(self.lo).unwrap_or(u32::MAX))
    }

    /// The key with an interned index replaced by `f(index)`.
    pub fn remap(self, f: impl Fn(u32) -> u32) -> IdKey {
        match self.text_index() {
            Some(i) => IdKey::interned(f(i)),
            None => self,
        }
    }

    /// The text of the key; interned texts come from `texts`.
    pub fn text(self, texts: &Interner) -> String {
        match self.tag {
            TAG_TEXT => texts
                .name(u32::try_from(self.lo).unwrap_or(u32::MAX))
                .to_string(),
            TAG_UUID => {
                let h = format!("{:032x}", self.value());
                let part = |a: usize, b: usize| h.get(a..b).unwrap_or("");
                format!(
                    "{}-{}-{}-{}-{}",
                    part(0, 8),
                    part(8, 12),
                    part(12, 16),
                    part(16, 20),
                    part(20, 32)
                )
            }
            n => format!("{:0width$x}", self.value(), width = usize::from(n)),
        }
    }
}

/// The span and parent span of one record, kept apart from the record
/// because most logs carry none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpanPair {
    /// The span ID.
    pub span: Option<IdKey>,
    /// The parent span ID.
    pub parent: Option<IdKey>,
}

/// `Record::loc` bits for the byte offset; the file index takes the rest.
const OFFSET_BITS: u32 = 40;

/// One usable log line in 56 bytes: no text, no borrow of the input, so the
/// input's pages can be released once a chunk is parsed. The line itself is
/// found again from `(file, offset)` when something must be shown.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Record {
    /// The request ID's value ([`IdKey::hi`]); see [`Record::req`].
    req_hi: u64,
    /// The request ID's value ([`IdKey::lo`]).
    req_lo: u64,
    /// Nanoseconds since the Unix epoch, UTC, as logged (before skew).
    pub ts: i64,
    /// File index (high 24 bits) and byte offset of the line (low 40 bits).
    pub loc: u64,
    /// Duration in ns, or [`Record::NO_DURATION`].
    pub duration_ns: i64,
    /// The service that wrote the line.
    pub service: SymId,
    /// The raw peer text's id in the peer table, or [`Record::NO_PEER`].
    pub peer_id: SymId,
    /// Index in the span table, or [`Record::NO_SPANS`].
    pub spans: u32,
    /// The event kind, when the line carries a known one.
    pub kind: Option<Kind>,
    /// The line's timestamp is its start (`start_time` or
    /// `--duration-anchor start`), so a duration runs forward from it.
    pub anchored_start: bool,
    /// Some failure field says this line failed.
    pub failed: bool,
    /// The request ID's [`IdKey::tag`], kept apart from its value so the
    /// record packs into 56 bytes instead of 64 (an `IdKey` alone pads to
    /// 24).
    req_tag: u8,
}

impl Record {
    /// A record of request `req`; the other fields are the caller's.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        req: IdKey,
        ts: i64,
        loc: u64,
        duration_ns: i64,
        service: SymId,
        peer_id: SymId,
        spans: u32,
        kind: Option<Kind>,
        anchored_start: bool,
        failed: bool,
    ) -> Record {
        Record {
            req_hi: req.hi,
            req_lo: req.lo,
            ts,
            loc,
            duration_ns,
            service,
            peer_id,
            spans,
            kind,
            anchored_start,
            failed,
            req_tag: req.tag,
        }
    }

    /// The request ID.
    #[inline]
    pub fn req(&self) -> IdKey {
        IdKey {
            tag: self.req_tag,
            hi: self.req_hi,
            lo: self.req_lo,
        }
    }

    /// Replaces the request ID (chunk-local text ids become global ones).
    #[inline]
    pub fn set_req(&mut self, req: IdKey) {
        self.req_tag = req.tag;
        self.req_hi = req.hi;
        self.req_lo = req.lo;
    }

    /// `duration_ns` when the line has no duration.
    pub const NO_DURATION: i64 = i64::MIN;
    /// `peer_id` when the line has no peer.
    pub const NO_PEER: SymId = SymId::MAX;
    /// `spans` when the line has no span and no parent span.
    pub const NO_SPANS: u32 = u32::MAX;

    /// Packs a file index and a byte offset into `loc`.
    pub fn pack_loc(file: u32, offset: u64) -> u64 {
        (u64::from(file) << OFFSET_BITS) | (offset & ((1 << OFFSET_BITS) - 1))
    }

    /// The file index.
    pub fn file(&self) -> u32 {
        (self.loc >> OFFSET_BITS) as u32
    }

    /// The byte offset of the line's start.
    pub fn offset(&self) -> u64 {
        self.loc & ((1 << OFFSET_BITS) - 1)
    }

    /// The duration, if the line has one.
    pub fn duration(&self) -> Option<i64> {
        (self.duration_ns != Self::NO_DURATION).then_some(self.duration_ns)
    }

    /// The raw peer id, if the line has a peer.
    pub fn peer(&self) -> Option<SymId> {
        (self.peer_id != Self::NO_PEER).then_some(self.peer_id)
    }
}

#[cfg(test)]
impl Record {
    /// A record with only a request, a time and a place: no kind, peer,
    /// duration, span or failure (tests build on it).
    pub(crate) fn bare(req: IdKey, ts: i64, loc: u64) -> Record {
        Record::new(
            req,
            ts,
            loc,
            Record::NO_DURATION,
            0,
            Record::NO_PEER,
            Record::NO_SPANS,
            None,
            false,
            false,
        )
    }
}

/// Gives strings small, stable-within-a-run integer ids.
#[derive(Clone, Debug, Default)]
pub struct Interner {
    names: Vec<String>,
    ids: FxHashMap<String, SymId>,
    /// The last id handed out: lines of one file mostly repeat one name.
    last: Option<SymId>,
}

impl Interner {
    /// The id of `name`, adding it when new.
    pub fn intern(&mut self, name: &str) -> SymId {
        if let Some(last) = self.last
            && self.names.get(last as usize).is_some_and(|n| n == name)
        {
            return last;
        }
        let id = match self.ids.get(name) {
            Some(&id) => id,
            None => {
                let id = self.names.len() as SymId;
                self.names.push(name.to_string());
                self.ids.insert(name.to_string(), id);
                id
            }
        };
        self.last = Some(id);
        id
    }

    /// The id of `name` when it is known.
    pub fn get(&self, name: &str) -> Option<SymId> {
        self.ids.get(name).copied()
    }

    /// The name of `id` (empty for an unknown id, which cannot happen for
    /// ids this interner handed out).
    pub fn name(&self, id: SymId) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }

    /// How many names are interned.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when nothing is interned.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// All names in id order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_keys_round_trip() {
        let texts = Interner::default();
        for t in [
            "0af7651916cd43dd8448eb211c80319c",
            "00f067aa0ba902b7",
            "7",
            "550e8400-e29b-41d4-a716-446655440000",
        ] {
            let k = IdKey::compact(t).unwrap();
            assert_eq!(k.text(&texts), t);
        }
        // Same digits, different texts: different keys.
        assert_ne!(IdKey::compact("0a"), IdKey::compact("a"));
        assert_ne!(
            IdKey::compact("550e8400e29b41d4a716446655440000"),
            IdKey::compact("550e8400-e29b-41d4-a716-446655440000")
        );
        for t in ["AB12", "req-1", "", "0af7651916cd43dd8448eb211c80319c0"] {
            assert_eq!(IdKey::compact(t), None, "{t}");
        }
    }

    #[test]
    fn records_are_small_and_locs_pack() {
        assert_eq!(std::mem::size_of::<Record>(), 56);
        let loc = Record::pack_loc(7, 123_456_789_012);
        let r = Record::bare(IdKey::default(), 0, loc);
        assert_eq!((r.file(), r.offset()), (7, 123_456_789_012));
        assert_eq!(r.duration(), None);
        assert_eq!(r.peer(), None);
    }
}
