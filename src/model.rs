//! The compact values that flow between the stages: records (one per usable
//! line), the interner that gives services and peers small integer ids, and
//! the event kinds of SPEC §2.

use std::borrow::Cow;
use std::collections::HashMap;

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

/// One usable log line, kept small: borrowed IDs, interned names, integer
/// nanoseconds, and `(file, offset)` instead of a copy of the line.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<'a> {
    /// The request ID, trimmed (a JSON number by its literal text).
    pub req: Cow<'a, str>,
    /// Nanoseconds since the Unix epoch, UTC, as logged (before skew).
    pub ts: i64,
    /// Index of the input file.
    pub file: u32,
    /// Byte offset of the line's start in the (decompressed) file.
    pub offset: u64,
    /// The service that wrote the line.
    pub service: SymId,
    /// The span ID, when the line carries one.
    pub span: Option<Cow<'a, str>>,
    /// The parent span ID, when the line carries one.
    pub parent: Option<Cow<'a, str>>,
    /// The event kind, when the line carries a known one.
    pub kind: Option<Kind>,
    /// The raw peer text (interned in the peer table), for client events.
    pub peer: Option<SymId>,
    /// A duration in ns (a visit's or a call's, per SPEC §2).
    pub duration: Option<i64>,
    /// The line's timestamp is its start (`start_time` or
    /// `--duration-anchor start`), so a duration runs forward from it.
    pub anchored_start: bool,
    /// Some failure field says this line failed.
    pub failed: bool,
}

/// Gives strings small, stable-within-a-run integer ids.
#[derive(Clone, Debug, Default)]
pub struct Interner {
    names: Vec<String>,
    ids: HashMap<String, SymId>,
}

impl Interner {
    /// The id of `name`, adding it when new.
    pub fn intern(&mut self, name: &str) -> SymId {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as SymId;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
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
