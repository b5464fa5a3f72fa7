//! Parse stage, the `regex` line format (SPEC §1 "Formats"): a user pattern
//! with named groups (`--pattern`) or a named preset (`--preset`), turned
//! into the same [`Fields`] the JSON and logfmt scanners produce.
//!
//! Owns: [`Pattern`] (one compiled pattern and what it implies about its
//! values: duration unit, time format, start anchor, service from the file
//! name), the preset table [`PRESETS`] (data, not code paths: `hopscope
//! formats` prints it), [`parse_regex`] (one line → [`Fields`]),
//! [`detect_preset`] (auto-detection on a file's first lines) and
//! [`file_prefix_service`] (loghub's `nova-api.log.1.2017-…` → `nova-api`).
//!
//! A group maps to its role directly: the group name is not looked up in the
//! [`super::fields::Schema`], so `--<role>-field` overrides do not apply to
//! regex lines, and every value carries `name_index` 0. The caller must
//! therefore take the duration unit from [`Pattern::duration_unit`], the
//! start anchor from [`Pattern::anchored_start`] and the time format from
//! [`Pattern::time_format`] (when no `--time-format` is given) instead of
//! from the schema's names.
//!
//! Choices where SPEC §1 is silent:
//! * Group names: `request_id ts service span parent event peer duration
//!   level status error msg`; `duration` may carry a unit suffix
//!   (`duration_s`, `duration_ms`, `duration_us`, `duration_ns`, or any
//!   other form [`super::time::unit_from_name`] reads, e.g. `durationMs`);
//!   `start_time`/`startTime` may stand for `ts` and anchor the line's time
//!   at its start, as a field of that name does. Unnamed groups are ignored;
//!   `msg` is accepted and ignored (no role reads it). Two groups filling one
//!   role, an unknown name, or a pattern without `request_id` or without
//!   `ts` are errors.
//! * Bytes that are not UTF-8 matter only inside a captured role value
//!   (`invalid_utf8`, as SPEC's "only in a needed field" asks): a line that
//!   is not UTF-8 and does not match is matched again with those bytes
//!   replaced by U+FFFD, and a role value holding one is `invalid_utf8`. A
//!   `--pattern` has the regex crate's usual (Unicode-aware) syntax; presets
//!   are compiled with Unicode classes off (byte-wise `\S`, `[^"]`, ASCII
//!   `\d`), which is about 20 % faster on their ASCII layouts.
//! * A group that does not take part in the match, or captures only
//!   whitespace, leaves its role empty; the line still parses (the caller
//!   then counts `no_request_id` / `no_timestamp` as for any format).
//! * Presets:
//!   - `openstack`: the request ID is the whole `req-<uuid>` token as
//!     written (the `req-` prefix is kept, so it can be pasted into `grep` or
//!     `hopscope show`); with oslo.log's `[<global> <local> user …]` context
//!     the first `req-` token wins, which is the global ID that crosses
//!     services; `[-]`/`[None …]` without a `req-` token means no request.
//!   - `skywalking`: the span is the segment ID (the 4th `SW_CTX` field):
//!     a segment is one service's work on one thread, which is what a
//!     visit is, whereas the 5th field (the span index inside the segment,
//!     mostly `0`) is not unique.
//!   - `envoy`: one line per request as the proxy saw it. The time is
//!     `%START_TIME%`, so the line is anchored at its start; `%DURATION%` is
//!     milliseconds. A sidecar's `outbound|port|subset|<host>` upstream
//!     cluster (Istio's default format) names the peer, so an outbound line
//!     is this service's call to `<host>`; an inbound line, or Envoy's plain
//!     default format, has no peer and is an access-log line of the service.
//!   - `nezha`: the text `TraceID: <hex> SpanID: <hex>` anywhere in the
//!     line; the `HH:MM:SS.mmm` time of TrainTicket lines has no date, so it
//!     counts as absent and the container envelope's time stands in.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::bytes::{Regex, RegexBuilder};

use super::fields::{FieldValue, Fields, LineError, Role, ValueKind, strip_line};
use super::time::{DurationUnit, unit_from_name};

/// One preset of the `regex` format: a pattern with what it implies about
/// its values, plus an example line for `hopscope formats`. Static data.
#[derive(Clone, Copy, Debug)]
pub struct PresetInfo {
    /// The `--preset` name.
    pub name: &'static str,
    /// One paragraph for `hopscope formats`: which logs, which roles.
    pub description: &'static str,
    /// A real (or format-exact) line the preset parses.
    pub example: &'static str,
    /// The regex, with the group names of [`Pattern::new`].
    pub pattern: &'static str,
    /// A chrono format for the `ts` group, used when no `--time-format` is
    /// given; `None` when the built-in timestamp forms suffice.
    pub time_format: Option<&'static str>,
    /// Whether the service, when the line does not name it, comes from the
    /// loghub-style file-name prefix ([`file_prefix_service`]).
    pub service_from_file_prefix: bool,
    /// Whether the line's time is the request's start (Envoy's
    /// `%START_TIME%`), as `--duration-anchor start` would say.
    pub ts_is_start: bool,
    /// A hint on the zone of timestamps without an offset, for the
    /// documentation and `hopscope files`; `None` when they carry one or UTC
    /// is the usual case.
    pub tz_hint: Option<&'static str>,
}

/// The presets, in the order `hopscope formats` lists them.
pub static PRESETS: [PresetInfo; 5] = [
    PresetInfo {
        name: "openstack",
        description: "OpenStack (oslo.log) service logs, e.g. nova-api, nova-compute: \
            `<date> <time> <pid> <LEVEL> <logger> [req-<uuid> <user> <tenant> ...] <message>`, \
            optionally after loghub's source-file-name column. Request ID: the first `req-...` \
            token, kept whole (`[-]` means no request). Service: the loghub file-name column, \
            else the file name's prefix before `.log`. wsgi lines give `status:` and `time:` \
            (seconds) as status and duration.",
        example: "nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO \
            nova.osapi_compute.wsgi.server [req-38101a0b-2096-447d-96ea-a692162415ae \
            113d3a99c3da401fbd62cc2caa5b96d2 54fadb412c4e40cdbaed9335e4c35a9e - - -] 10.11.10.1 \
            \"GET /v2/54fadb412c4e40cdbaed9335e4c35a9e/servers/detail HTTP/1.1\" status: 200 \
            len: 1893 time: 0.2477829",
        pattern: r#"^(?:(?P<service>[A-Za-z][A-Za-z0-9_-]*)\.log\S* +)?(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:[.,]\d+)?) +\d+ +(?P<level>[A-Z]+) +\S+ +\[(?:None +)?(?:(?P<request_id>req-[0-9A-Za-z-]+)[^\]]*|[^\]]*)\](?:.*" +status: +(?P<status>\d+) +len: +\d+(?: +microversion: +\S+)? +time: +(?P<duration_s>\d+(?:\.\d+)?))?"#,
        time_format: None,
        service_from_file_prefix: true,
        ts_is_start: false,
        tz_hint: Some("oslo.log writes the host's local time without an offset: pass --tz"),
    },
    PresetInfo {
        name: "skywalking",
        description: "Java logs with Apache SkyWalking's log context (`%sw_ctx` in logback/log4j): \
            `<date> <time> [SW_CTX:[<service>,<instance>,<trace>,<segment>,<span>]] [<thread>] \
            <LEVEL> ...`. Request ID: the trace ID (`N/A` means none); service: the 1st field; \
            span: the segment ID (one service's part of the trace).",
        example: "2021-07-30 10:47:48.922 [SW_CTX:[ts-station-service,\
            083e065c99d64c61b782bd5c9a5c3833@10.244.3.60,\
            dd48330667fb4392a656933b48eb4659.64.16276132688750061,\
            b72b1a7c4ab04472a4159fb8b9fd31e3.63.16276132689200066,0]] [http-nio-12345-exec-6] \
            INFO  f.m.controller.StationController -Query stations for name batch,\
            StationIdNumbers: 6 ",
        pattern: r"^(?P<ts>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d(?::?\d\d)?)?) .*?\[SW_CTX:\[(?P<service>[^,\]]*),[^,\]]*,(?P<request_id>[^,\]]*),(?P<span>[^,\]]*),[^,\]]*\]\](?: +\[[^\]]*\] +(?P<level>[A-Za-z]+)\b)?",
        time_format: None,
        service_from_file_prefix: false,
        ts_is_start: false,
        tz_hint: Some(
            "timestamps carry no offset; DeepTraLog's TrainTicket logs are UTC+8: pass --tz +08:00",
        ),
    },
    PresetInfo {
        name: "nginx",
        description: "nginx access logs in the combined format extended with the request ID and \
            the request time: `log_format hopscope '$remote_addr - $remote_user [$time_local] \
            \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" \
            $request_id $request_time';` ($request_id may be quoted; more fields may follow). \
            The time is when the response was sent; $request_time is seconds.",
        example: "10.0.0.7 - - [01/May/2024:10:00:00 +0000] \"GET /api/orders/42 HTTP/1.1\" 200 512 \
            \"-\" \"curl/8.5.0\" 6f1c0d2e9a8b4c3d2e1f0a9b8c7d6e5f 0.034",
        pattern: r#"^\S+ +\S+ +\S+ +\[(?P<ts>[^\]]+)\] +"[^"]*" +(?P<status>\d{3}) +\S+ +"[^"]*" +"[^"]*" +"?(?P<request_id>[^"\s]+)"? +(?P<duration_s>\d+(?:\.\d+)?|-)(?:\s.*)?$"#,
        time_format: Some("%d/%b/%Y:%H:%M:%S %z"),
        service_from_file_prefix: false,
        ts_is_start: false,
        tz_hint: None,
    },
    PresetInfo {
        name: "envoy",
        description: "Envoy's default text access log, and Istio's (which adds response details, \
            upstream cluster, addresses and SNI): `[%START_TIME%] \"%REQ(:METHOD)% \
            %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% \
            %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \
            \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \
            \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"`. Request ID: x-request-id; the time is the \
            request's start; duration in ms. An Istio `outbound|port|subset|<host>` cluster makes \
            the line a call to peer <host>; otherwise it is an access-log line of the service.",
        example: "[2022-08-22T13:08:23.169Z] \"GET /productpage HTTP/1.1\" 200 - via_upstream - \"-\" \
            0 5294 35 34 \"10.128.0.161\" \"curl/7.79.1\" \"00bcf1d7-12c4-93b9-b36a-bc0faac8e428\" \
            \"35.222.123.213\" \"10.124.2.6:9080\" inbound|9080|| 127.0.0.6:47203 10.124.2.6:9080 \
            10.128.0.161:0 outbound_.9080_._.productpage.default.svc.cluster.local default",
        pattern: r#"^\[(?P<ts>[^\]]+)\] +"[^"]*" +(?P<status>\d+|-) +\S+ +(?:\S+ +\S+ +"[^"]*" +)?(?:\d+|-) +(?:\d+|-) +(?P<duration_ms>\d+|-) +\S+ +"[^"]*" +"[^"]*" +"(?P<request_id>[^"]*)" +"[^"]*" +"[^"]*"(?: +(?:outbound\|[^|\s]*\|[^|\s]*\|(?P<peer>[^|\s]+)|\S+))?"#,
        time_format: None,
        service_from_file_prefix: false,
        ts_is_start: true,
        tz_hint: None,
    },
    PresetInfo {
        name: "nezha",
        description: "Application lines that carry `TraceID: <hex> SpanID: <hex>` in their text, \
            as in the Nezha dataset's TrainTicket and OnlineBoutique pods (plain text or JSON, \
            inside Docker envelopes). A leading `HH:MM:SS.mmm LEVEL logger` gives the level; that \
            time has no date, so the container envelope's time stands in. OnlineBoutique's \
            frontend `http.resp.status` and `http.resp.took_ms` give status and duration.",
        example: "16:42:22.418 ERROR f.s.FoodServiceImpl#302 TraceID: \
            ffc8ca7e4c8f06c75142c880d5595d96 SpanID: 37b1a1514d403000 [getAllFood][Get the Get \
            Food Request Failed!][foodStoresListResult is null][date: 2021-07-14, tripId: D1345]",
        pattern: r#"^(?:(?P<ts>\d\d:\d\d:\d\d(?:[.,]\d+)?) +(?P<level>[A-Za-z]+) +\S+ +)?(?:.*?"http\.resp\.status": ?(?P<status>\d+), ?"http\.resp\.took_ms": ?(?P<duration_ms>\d+),)?.*?TraceID: (?P<request_id>[0-9A-Fa-f]+) SpanID: (?P<span>[0-9A-Fa-f]+)"#,
        time_format: None,
        service_from_file_prefix: false,
        ts_is_start: false,
        tz_hint: None,
    },
];

/// The presets with their examples, for `hopscope formats`.
pub fn presets() -> &'static [PresetInfo] {
    &PRESETS
}

/// The group names a pattern may use (for error messages and help).
pub const GROUP_NAMES: &str = "request_id ts service span parent event peer duration \
    (or duration_s, duration_ms, duration_us, duration_ns) level status error msg \
    (start_time/startTime may stand for ts, anchoring the line at its start)";

/// What a named group stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Group {
    /// Fills a role.
    Role(Role),
    /// `ts` anchored at the start (`start_time`).
    StartTime,
    /// `duration` with an optional unit from its suffix.
    Duration(Option<DurationUnit>),
    /// Accepted, ignored.
    Msg,
}

fn group_of(name: &str) -> Option<Group> {
    let role = match name {
        "request_id" => Role::RequestId,
        "ts" => Role::Ts,
        "service" => Role::Service,
        "span" => Role::Span,
        "parent" => Role::Parent,
        "event" => Role::Event,
        "peer" => Role::Peer,
        "level" => Role::Level,
        "status" => Role::Status,
        "error" => Role::Error,
        "msg" => return Some(Group::Msg),
        "start_time" | "startTime" => return Some(Group::StartTime),
        "duration" => return Some(Group::Duration(None)),
        _ => {
            return name
                .strip_prefix("duration")
                .filter(|rest| !rest.is_empty())
                .and_then(|_| unit_from_name(name))
                .map(|u| Group::Duration(Some(u)));
        }
    };
    Some(Group::Role(role))
}

/// A compiled `regex`-format pattern (`--pattern` or `--preset`), with what
/// it implies about its values. Compiled once per run; shareable across
/// threads.
#[derive(Clone, Debug)]
pub struct Pattern {
    regex: Regex,
    name: String,
    /// (capture group index, role) for every group that fills a role.
    slots: Vec<(usize, Role)>,
    duration_unit: Option<DurationUnit>,
    time_format: Option<String>,
    service_from_file_prefix: bool,
    anchored_start: bool,
    tz_hint: Option<&'static str>,
}

impl Pattern {
    /// Compiles a `--pattern`. Errors name the problem: an invalid regex
    /// (the regex crate's message), an unknown group name (listing the
    /// allowed ones), two groups for one role, or no `request_id` or no `ts`
    /// group (every record needs both).
    pub fn new(pattern: &str) -> Result<Pattern, String> {
        Self::compile(pattern, "custom", true).map_err(|e| format!("invalid --pattern: {e}"))
    }

    /// The compiled preset `name` (case-insensitive); an unknown name is an
    /// error listing the presets.
    pub fn preset(name: &str) -> Result<Pattern, String> {
        let info = PRESETS
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
                format!(
                    "unknown preset {name:?}: expected one of {}",
                    names.join(", ")
                )
            })?;
        Self::from_info(info)
    }

    fn from_info(info: &PresetInfo) -> Result<Pattern, String> {
        let mut p = Self::compile(info.pattern, info.name, false)
            .map_err(|e| format!("preset {}: {e}", info.name))?;
        p.time_format = info.time_format.map(str::to_string);
        p.service_from_file_prefix = info.service_from_file_prefix;
        p.anchored_start |= info.ts_is_start;
        p.tz_hint = info.tz_hint;
        Ok(p)
    }

    fn compile(pattern: &str, name: &str, unicode: bool) -> Result<Pattern, String> {
        let regex = RegexBuilder::new(pattern)
            .unicode(unicode)
            .build()
            .map_err(|e| e.to_string())?;
        let mut slots: Vec<(usize, Role)> = Vec::new();
        let mut seen: Vec<(Role, &str)> = Vec::new();
        let mut duration_unit = None;
        let mut anchored_start = false;
        for (index, group) in regex.capture_names().enumerate() {
            let Some(group) = group else { continue };
            let role = match group_of(group) {
                None => {
                    return Err(format!(
                        "unknown group name {group:?}; allowed: {GROUP_NAMES}"
                    ));
                }
                Some(Group::Msg) => continue,
                Some(Group::Role(r)) => r,
                Some(Group::StartTime) => {
                    anchored_start = true;
                    Role::Ts
                }
                Some(Group::Duration(unit)) => {
                    duration_unit = unit;
                    Role::Duration
                }
            };
            if let Some((_, other)) = seen.iter().find(|(r, _)| *r == role) {
                return Err(format!(
                    "groups {other:?} and {group:?} both give the {} field",
                    role.cli_name()
                ));
            }
            seen.push((role, group));
            slots.push((index, role));
        }
        for (role, example) in [
            (Role::RequestId, "(?P<request_id>...)"),
            (Role::Ts, "(?P<ts>...)"),
        ] {
            if !slots.iter().any(|(_, r)| *r == role) {
                return Err(format!(
                    "no {example} group: every record needs a {}",
                    if role == Role::Ts {
                        "timestamp"
                    } else {
                        "request ID"
                    }
                ));
            }
        }
        Ok(Pattern {
            regex,
            name: name.to_string(),
            slots,
            duration_unit,
            time_format: None,
            service_from_file_prefix: false,
            anchored_start,
            tz_hint: None,
        })
    }

    /// The unit of the `duration` group from its suffix (`duration_s` →
    /// seconds); `None` for a plain `duration` group or none at all (then a
    /// unit in the value, `--duration-unit`, else milliseconds apply).
    pub fn duration_unit(&self) -> Option<DurationUnit> {
        self.duration_unit
    }

    /// Whether the service, when no `service` group captured one, comes
    /// from the loghub-style file-name prefix ([`file_prefix_service`])
    /// rather than the SPEC's path rule. True for `openstack`.
    pub fn service_from_file_prefix(&self) -> bool {
        self.service_from_file_prefix
    }

    /// The preset's name, or `custom` for a `--pattern`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A chrono format for the `ts` group (nginx's `$time_local`), to use
    /// when no `--time-format` is given.
    pub fn time_format(&self) -> Option<&str> {
        self.time_format.as_deref()
    }

    /// Whether the line's time is its start (a `start_time` group, or a
    /// preset such as `envoy` whose time is `%START_TIME%`), as with
    /// `--duration-anchor start`.
    pub fn anchored_start(&self) -> bool {
        self.anchored_start
    }

    /// The preset's hint about the zone of offset-less timestamps, if any.
    pub fn tz_hint(&self) -> Option<&'static str> {
        self.tz_hint
    }

    /// The regex source.
    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }

    /// Whether the pattern matches the line at all (detection).
    pub fn is_match(&self, line: &[u8]) -> bool {
        self.regex.is_match(strip_line(line))
    }
}

/// One line → its fields by `pattern`. A line the pattern does not match is
/// [`LineError::Parse`]; a captured role value that is not UTF-8 is
/// [`LineError::InvalidUtf8`] (a line that is not UTF-8 and does not match
/// as it is gets a second try with those bytes replaced by U+FFFD). Values
/// borrow from the line; `name_index` is 0 for every role. A leading byte
/// order mark and a trailing `\r` are ignored.
pub fn parse_regex<'a>(line: &'a [u8], pattern: &Pattern) -> Result<Fields<'a>, LineError> {
    let line = strip_line(line);
    let Some(caps) = pattern.regex.captures(line) else {
        return parse_lossy(line, pattern);
    };
    let mut fields = Fields::default();
    for &(index, role) in &pattern.slots {
        let Some(m) = caps.get(index) else { continue };
        let text = std::str::from_utf8(m.as_bytes()).map_err(|_| LineError::InvalidUtf8)?;
        set(&mut fields, role, Cow::Borrowed(text));
    }
    Ok(fields)
}

/// The second try of [`parse_regex`] for a line that is not UTF-8.
fn parse_lossy<'a>(line: &[u8], pattern: &Pattern) -> Result<Fields<'a>, LineError> {
    if std::str::from_utf8(line).is_ok() {
        return Err(LineError::Parse);
    }
    let text = String::from_utf8_lossy(line);
    let caps = pattern
        .regex
        .captures(text.as_bytes())
        .ok_or(LineError::Parse)?;
    let mut fields = Fields::default();
    for &(index, role) in &pattern.slots {
        let Some(m) = caps.get(index) else { continue };
        let value = String::from_utf8_lossy(m.as_bytes());
        if value.contains('\u{FFFD}') {
            return Err(LineError::InvalidUtf8);
        }
        set(&mut fields, role, Cow::Owned(value.into_owned()));
    }
    Ok(fields)
}

/// Fills `role` unless the value is blank.
fn set<'a>(fields: &mut Fields<'a>, role: Role, text: Cow<'a, str>) {
    if text.trim().is_empty() {
        return;
    }
    if let Some(slot) = fields.values.get_mut(role.index()) {
        *slot = Some(FieldValue {
            text,
            kind: ValueKind::String,
            name_index: 0,
        });
    }
}

/// Every preset compiled once, for detection.
static COMPILED: LazyLock<Vec<(&'static str, Pattern)>> = LazyLock::new(|| {
    PRESETS
        .iter()
        .filter_map(|p| Some((p.name, Pattern::from_info(p).ok()?)))
        .collect()
});

/// Auto-detection: the preset that matches most of the given sample lines
/// (blank ones aside), when it is unambiguous: it matches at least 80 % of
/// them and no other preset matches as many. `None` otherwise, and for no
/// non-blank line.
pub fn detect_preset<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Option<&'static str> {
    let mut counts = vec![0usize; COMPILED.len()];
    let mut total = 0usize;
    for line in lines {
        if line.trim_ascii().is_empty() {
            continue;
        }
        total += 1;
        for (n, (_, p)) in counts.iter_mut().zip(COMPILED.iter()) {
            if p.is_match(line) {
                *n += 1;
            }
        }
    }
    let best = *counts.iter().max()?;
    if total == 0 || best * 5 < total * 4 || counts.iter().filter(|&&n| n == best).count() > 1 {
        return None;
    }
    let at = counts.iter().position(|&n| n == best)?;
    COMPILED.get(at).map(|(name, _)| *name)
}

/// loghub-style service from a file name: the part before the first `.log`
/// that ends the name or is followed by `.` (`nova-api.log.1.2017-05-16_13:53:08`
/// → `nova-api`, `nova-compute.log` → `nova-compute`). Directories in front
/// are ignored. `None` when there is no such `.log` or nothing before it.
pub fn file_prefix_service(file_name: &str) -> Option<String> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let mut from = 0;
    while let Some(pos) = base.get(from..).and_then(|r| r.find(".log")) {
        let at = from + pos;
        let after = base.get(at + 4..).unwrap_or("");
        if after.is_empty() || after.starts_with('.') {
            let prefix = base.get(..at).unwrap_or("");
            return (!prefix.is_empty()).then(|| prefix.to_string());
        }
        from = at + 4;
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::super::time::{TzSpec, parse_timestamp};
    use super::*;
    use proptest::prelude::*;

    fn get<'f>(f: &'f Fields<'_>, role: Role) -> Option<&'f str> {
        f.get(role).map(|v| v.text.as_ref())
    }

    fn parse<'a>(line: &'a str, p: &Pattern) -> Fields<'a> {
        parse_regex(line.as_bytes(), p).unwrap()
    }

    /// (request_id, ts, service, span, peer, duration, level, status)
    type Want<'a> = [Option<&'a str>; 8];

    fn roles<'f>(f: &'f Fields<'_>) -> Want<'f> {
        [
            Role::RequestId,
            Role::Ts,
            Role::Service,
            Role::Span,
            Role::Peer,
            Role::Duration,
            Role::Level,
            Role::Status,
        ]
        .map(|r| get(f, r))
    }

    // Exact lines from /work/shared/realdata (loghub OpenStack_2k.log).
    const OS_API: &str = "nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:30.788 25746 INFO nova.osapi_compute.wsgi.server [req-6a763803-4838-49c7-814e-eaefbaddee9d 113d3a99c3da401fbd62cc2caa5b96d2 54fadb412c4e40cdbaed9335e4c35a9e - - -] 10.11.10.1 \"POST /v2/54fadb412c4e40cdbaed9335e4c35a9e/servers HTTP/1.1\" status: 202 len: 733 time: 0.6686139";
    const OS_COMPUTE: &str = "nova-compute.log.1.2017-05-16_13:55:31 2017-05-16 00:00:31.092 2931 INFO nova.compute.claims [req-6a763803-4838-49c7-814e-eaefbaddee9d 113d3a99c3da401fbd62cc2caa5b96d2 54fadb412c4e40cdbaed9335e4c35a9e - - -] [instance: 96abccce-8d1f-4e07-b6d1-4b2ab87e23b4] Attempting claim: memory 2048 MB, disk 20 GB, vcpus 1 CPU";
    const OS_NO_REQ: &str = "nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:17.531 25793 INFO nova.metadata.wsgi.server [-] 10.11.21.122,10.11.10.1 \"GET /openstack/2013-10-17/user_data HTTP/1.1\" status: 404 len: 176 time: 0.0010660";
    const OS_SCHED: &str = "nova-scheduler.log.1.2017-05-16_13:53:08 2017-05-16 00:00:57.129 25998 INFO nova.scheduler.host_manager [req-d724a3bd-e314-4f81-a41c-460aa91f24ae - - - - -] Successfully synced instances from host 'cp-1.slowvm1.tcloud-pg0.utah.cloudlab.us'.";
    // DeepTraLog raw logs (trailing space included).
    const SW_INFO: &str = "2021-08-07 19:10:41.655 [SW_CTX:[ts-station-service,6a8b12d82cb54a82863b58dfa251f49c@10.244.1.59,121f3fe08fca4050ada25791f255b1cc.46.16283306033640027,a61c50513c3242f2bea9ac7236c62f00.37.16283345966530244,0]] [http-nio-12345-exec-1] INFO  f.m.controller.StationController -Query for station id,StationName: Shang Hai ";
    const SW_ERROR: &str = "2021-07-30 10:47:48.851 [SW_CTX:[ts-inside-payment-service,5a89c8d3c60042a0812722154351ec95@10.244.3.71,ac847f0c99d5414d92511fcb3c6960a2.67.16276132687430035,ac847f0c99d5414d92511fcb3c6960a2.67.16276132687430034,0]] [http-nio-18673-exec-9] ERROR i.controller.InsidePaymentController -request for paying denied: org.springframework.web.client.HttpClientErrorException: 403 null ";
    const SW_WARN: &str = "2021-08-07 21:59:38.705 [SW_CTX:[ts-price-service,175af0ef295e4b9bb5c32d976b6fa641@10.244.1.62,bf9f57e740f4403488806bbd958a04dc.39.16283426341440015,db07b0ba04164ccda3a7c6b7ba4b53dc.37.16283447487010146,0]] [http-nio-16579-exec-1] WARN  price.service.PriceServiceImpl -Find all price config warn,No Content ";
    const SW_NA: &str = "2021-07-30 14:12:03.117 [SW_CTX:[ts-admin-basic-info-service,978527484a30421297321d4818482e13@10.244.3.67,N/A,N/A,-1]] [main] INFO  adminbasic.AdminBasicInfoApplication -No active profile set, falling back to default profiles: default ";
    // Istio bookinfo sidecar lines (elastic/integrations test fixture).
    const ENVOY_IN: &str = "[2022-08-22T13:08:23.169Z] \"GET /productpage HTTP/1.1\" 200 - via_upstream - \"-\" 0 5294 35 34 \"10.128.0.161\" \"curl/7.79.1\" \"00bcf1d7-12c4-93b9-b36a-bc0faac8e428\" \"35.222.123.213\" \"10.124.2.6:9080\" inbound|9080|| 127.0.0.6:47203 10.124.2.6:9080 10.128.0.161:0 outbound_.9080_._.productpage.default.svc.cluster.local default";
    const ENVOY_OUT: &str = "[2022-08-22T13:08:23.188Z] \"GET /reviews/0 HTTP/1.1\" 200 - via_upstream - \"-\" 0 442 12 12 \"-\" \"curl/7.79.1\" \"00bcf1d7-12c4-93b9-b36a-bc0faac8e428\" \"reviews:9080\" \"10.124.1.5:9080\" outbound|9080||reviews.default.svc.cluster.local 10.124.2.6:50960 10.0.18.132:9080 10.124.2.6:52930 - default";
    const ENVOY_V6: &str = "[2022-08-22T13:20:22.460Z] \"GET /ratings/0 HTTP/1.1\" 200 - via_upstream - \"-\" 0 48 1 0 \"-\" \"curl/7.79.1\" \"72f12c1b-8a44-9a62-b28e-2296da5b1118\" \"ratings:9080\" \"[2a02:cf40::7]:3000\" inbound|9080|| 127.0.0.6:38951 10.124.0.11:9080 [2a02:cf40::4e36]:5000 outbound_.9080_._.ratings.default.svc.cluster.local default";
    // Envoy's documented default-format example.
    const ENVOY_PLAIN: &str = "[2016-04-15T20:17:00.310Z] \"POST /api/v1/locations HTTP/2\" 204 - 154 0 226 100 \"10.0.35.28\" \"nsq2http\" \"cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2\" \"locations\" \"tcp://10.0.2.1:80\"";
    // Nezha inner lines (after the Docker envelope).
    const NZ_TT: &str = "16:42:22.359 INFO  t.c.TravelController#53 TraceID: ffc8ca7e4c8f06c75142c880d5595d96 SpanID: 439bc949a9eeb0cc [getRouteByTripId][Get Route By Trip ID][TripId: D1345]";
    const NZ_AD: &str = "05:18:42.995 INFO  - TraceID: 04c87ec97bae041b1b15b3c7676a43cc SpanID: 274f6c05ca78812f Get Ads by Category finish";
    const NZ_FRONTEND: &str = r#"{"http.req.id":"16fbfb2d-676c-4d6a-a870-1f1f6d347d5a","http.req.method":"GET","http.req.path":"/product/0PUK6V6EV0","http.resp.bytes":8289,"http.resp.status":200,"http.resp.took_ms":5408,"message":"TraceID: 04c87ec97bae041b1b15b3c7676a43cc SpanID: 989036326b156480 Request complete","session":"af550e4a-e4ca-4331-a7fc-155f1cbc8c47","severity":"info","timestamp":"2022-08-22T05:18:42.996857478Z"}"#;
    const NZ_RECO: &str = r#"{"timestamp": "2022-08-22T05:18:42.908318Z", "severity": "INFO", "name": "recommendationservice-server", "message": "TraceID: 04c87ec97bae041b1b15b3c7676a43cc SpanID: e4006dce6700e903 List Recommendations product_ids=['9SIQT8TOJO', 'L9ECAV7KIM', '6E92ZMYYFZ', 'OLJCESPC7Z', '1YMWWN1N4O']"}"#;
    const NZ_CART: &str = "TraceID: 04c87ec97bae041b1b15b3c7676a43cc SpanID: 827e3035bae2ba43 GetCartAsync called with userId=af550e4a-e4ca-4331-a7fc-155f1cbc8c47";

    #[test]
    fn every_preset_parses_its_example() {
        assert_eq!(
            presets().iter().map(|p| p.name).collect::<Vec<_>>(),
            ["openstack", "skywalking", "nginx", "envoy", "nezha"]
        );
        for info in presets() {
            let p = Pattern::preset(info.name).unwrap();
            assert_eq!(p.name(), info.name);
            assert_eq!(p.as_str(), info.pattern);
            let f = parse_regex(info.example.as_bytes(), &p).unwrap();
            assert!(get(&f, Role::RequestId).is_some(), "{}", info.name);
            assert!(get(&f, Role::Ts).is_some(), "{}", info.name);
            assert_eq!(
                detect_preset([info.example.as_bytes()].into_iter()),
                Some(info.name)
            );
        }
        assert_eq!(Pattern::preset(" OpenStack ").unwrap().name(), "openstack");
    }

    #[test]
    fn openstack_preset() {
        let p = Pattern::preset("openstack").unwrap();
        assert_eq!(p.duration_unit(), Some(DurationUnit::S));
        assert!(p.service_from_file_prefix());
        assert!(!p.anchored_start());
        assert_eq!(p.time_format(), None);
        assert!(p.tz_hint().is_some());
        let example = PRESETS[0].example;
        assert_eq!(
            roles(&parse(example, &p)),
            [
                Some("req-38101a0b-2096-447d-96ea-a692162415ae"),
                Some("2017-05-16 00:00:00.008"),
                Some("nova-api"),
                None,
                None,
                Some("0.2477829"),
                Some("INFO"),
                Some("200"),
            ]
        );
        assert_eq!(
            roles(&parse(OS_API, &p)),
            [
                Some("req-6a763803-4838-49c7-814e-eaefbaddee9d"),
                Some("2017-05-16 00:00:30.788"),
                Some("nova-api"),
                None,
                None,
                Some("0.6686139"),
                Some("INFO"),
                Some("202"),
            ]
        );
        assert_eq!(
            roles(&parse(OS_COMPUTE, &p)),
            [
                Some("req-6a763803-4838-49c7-814e-eaefbaddee9d"),
                Some("2017-05-16 00:00:31.092"),
                Some("nova-compute"),
                None,
                None,
                None,
                Some("INFO"),
                None,
            ]
        );
        // `[-]`: the line parses, without a request ID.
        assert_eq!(
            roles(&parse(OS_NO_REQ, &p)),
            [
                None,
                Some("2017-05-16 00:00:17.531"),
                Some("nova-api"),
                None,
                None,
                Some("0.0010660"),
                Some("INFO"),
                Some("404"),
            ]
        );
        assert_eq!(
            get(&parse(OS_SCHED, &p), Role::Service),
            Some("nova-scheduler")
        );
        // Without loghub's file-name column (a real nova-compute.log line).
        let plain = "2017-05-16 00:00:20.345 2931 WARNING nova.virt.libvirt.imagecache [req-addc1839-2ed5-4778-b57e-5854eb7b8b09 - - - - -] Unknown base file: /var/lib/nova/instances/_base/a489c868f0c37da93b76227c91bb03908ac0e742";
        assert_eq!(
            roles(&parse(plain, &p)),
            [
                Some("req-addc1839-2ed5-4778-b57e-5854eb7b8b09"),
                Some("2017-05-16 00:00:20.345"),
                None,
                None,
                None,
                None,
                Some("WARNING"),
                None,
            ]
        );
        // oslo.log's newer context: `[<global> <local> user project ...]`
        // (the global ID wins) or `[None <local> ...]`; requestlog's
        // `microversion:` field.
        let global = "2024-05-01 10:00:00.123 1234 INFO nova.api.openstack.requestlog [req-11111111-2222-4333-8444-555555555555 req-66666666-7777-4888-9999-000000000000 admin demo - default default] 10.0.0.1 \"GET /compute/v2.1/servers\" status: 500 len: 15 microversion: 2.1 time: 0.051";
        let f = parse(global, &p);
        assert_eq!(
            get(&f, Role::RequestId),
            Some("req-11111111-2222-4333-8444-555555555555")
        );
        assert_eq!(get(&f, Role::Status), Some("500"));
        assert_eq!(get(&f, Role::Duration), Some("0.051"));
        let none = "2024-05-01 10:00:00.123 1234 ERROR neutron.agent [None req-66666666-7777-4888-9999-000000000000 admin demo] boom";
        let f = parse(none, &p);
        assert_eq!(
            get(&f, Role::RequestId),
            Some("req-66666666-7777-4888-9999-000000000000")
        );
        assert_eq!(get(&f, Role::Level), Some("ERROR"));
        assert_eq!(
            parse_regex(b"2017-05-16 00:00:20.345 hello", &p),
            Err(LineError::Parse)
        );
    }

    #[test]
    fn skywalking_preset() {
        let p = Pattern::preset("skywalking").unwrap();
        assert!(p.tz_hint().unwrap().contains("+08:00"));
        assert_eq!(p.duration_unit(), None);
        assert_eq!(
            roles(&parse(SW_INFO, &p)),
            [
                Some("121f3fe08fca4050ada25791f255b1cc.46.16283306033640027"),
                Some("2021-08-07 19:10:41.655"),
                Some("ts-station-service"),
                Some("a61c50513c3242f2bea9ac7236c62f00.37.16283345966530244"),
                None,
                None,
                Some("INFO"),
                None,
            ]
        );
        assert_eq!(
            roles(&parse(SW_ERROR, &p)),
            [
                Some("ac847f0c99d5414d92511fcb3c6960a2.67.16276132687430035"),
                Some("2021-07-30 10:47:48.851"),
                Some("ts-inside-payment-service"),
                Some("ac847f0c99d5414d92511fcb3c6960a2.67.16276132687430034"),
                None,
                None,
                Some("ERROR"),
                None,
            ]
        );
        assert_eq!(get(&parse(SW_WARN, &p), Role::Level), Some("WARN"));
        // `N/A` is the placeholder the caller treats as "no ID".
        let f = parse(SW_NA, &p);
        assert_eq!(get(&f, Role::RequestId), Some("N/A"));
        assert_eq!(get(&f, Role::Service), Some("ts-admin-basic-info-service"));
        // Another logback layout: thread first, ISO time with an offset.
        let other = "2024-05-01T10:00:00.5+08:00 [main] [SW_CTX:[orders,i@1,t1.2.3,s1,0]] x";
        let f = parse(other, &p);
        assert_eq!(get(&f, Role::Ts), Some("2024-05-01T10:00:00.5+08:00"));
        assert_eq!(get(&f, Role::RequestId), Some("t1.2.3"));
        assert_eq!(get(&f, Role::Level), None);
        // The line's zone: UTC+8 without an offset.
        let f = parse(SW_INFO, &p);
        let ts = get(&f, Role::Ts).unwrap();
        let tz = TzSpec::parse("+08:00").unwrap();
        assert_eq!(
            parse_timestamp(ts, &tz, p.time_format()),
            Ok(1_628_334_641_655_000_000)
        );
    }

    #[test]
    fn nginx_preset() {
        let p = Pattern::preset("nginx").unwrap();
        assert_eq!(p.duration_unit(), Some(DurationUnit::S));
        assert_eq!(p.time_format(), Some("%d/%b/%Y:%H:%M:%S %z"));
        let f = parse(PRESETS[2].example, &p);
        assert_eq!(
            roles(&f),
            [
                Some("6f1c0d2e9a8b4c3d2e1f0a9b8c7d6e5f"),
                Some("01/May/2024:10:00:00 +0000"),
                None,
                None,
                None,
                Some("0.034"),
                None,
                Some("200"),
            ]
        );
        assert_eq!(
            parse_timestamp(get(&f, Role::Ts).unwrap(), &TzSpec::Utc, p.time_format()),
            Ok(1_714_557_600_000_000_000)
        );
        // A quoted ID, `-` times and more fields after them.
        let line = r#"2001:db8::1 - alice [01/May/2024:12:00:01 +0200] "POST /pay HTTP/2.0" 502 0 "https://shop/" "Mozilla/5.0 (X11; Linux)" "req-42" - 0.003 "x""#;
        let f = parse(line, &p);
        assert_eq!(get(&f, Role::RequestId), Some("req-42"));
        assert_eq!(get(&f, Role::Status), Some("502"));
        assert_eq!(get(&f, Role::Duration), Some("-"));
        assert_eq!(
            parse_timestamp(get(&f, Role::Ts).unwrap(), &TzSpec::Utc, p.time_format()),
            Ok(1_714_557_601_000_000_000)
        );
        // The plain combined format (no request ID) is not this preset.
        let combined = r#"10.0.0.7 - - [01/May/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 512 "-" "curl/8.5.0""#;
        assert_eq!(parse_regex(combined.as_bytes(), &p), Err(LineError::Parse));
    }

    #[test]
    fn envoy_preset() {
        let p = Pattern::preset("envoy").unwrap();
        assert_eq!(p.duration_unit(), Some(DurationUnit::Ms));
        assert!(p.anchored_start());
        let inbound = [
            Some("00bcf1d7-12c4-93b9-b36a-bc0faac8e428"),
            Some("2022-08-22T13:08:23.169Z"),
            None,
            None,
            None,
            Some("35"),
            None,
            Some("200"),
        ];
        assert_eq!(roles(&parse(ENVOY_IN, &p)), inbound);
        assert_eq!(roles(&parse(PRESETS[3].example, &p)), inbound);
        // A sidecar's outbound line is this service's call to the peer.
        assert_eq!(
            roles(&parse(ENVOY_OUT, &p)),
            [
                Some("00bcf1d7-12c4-93b9-b36a-bc0faac8e428"),
                Some("2022-08-22T13:08:23.188Z"),
                None,
                None,
                Some("reviews.default.svc.cluster.local"),
                Some("12"),
                None,
                Some("200"),
            ]
        );
        let f = parse(ENVOY_V6, &p);
        assert_eq!(
            get(&f, Role::RequestId),
            Some("72f12c1b-8a44-9a62-b28e-2296da5b1118")
        );
        assert_eq!(get(&f, Role::Duration), Some("1"));
        assert_eq!(get(&f, Role::Peer), None);
        assert_eq!(
            roles(&parse(ENVOY_PLAIN, &p)),
            [
                Some("cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2"),
                Some("2016-04-15T20:17:00.310Z"),
                None,
                None,
                None,
                Some("226"),
                None,
                Some("204"),
            ]
        );
        let failed = r#"[2024-05-01T10:00:00.000Z] "GET /x HTTP/1.1" 503 UH 0 19 0 - "-" "curl/8" "-" "svc" "-""#;
        let f = parse(failed, &p);
        assert_eq!(get(&f, Role::Status), Some("503"));
        assert_eq!(get(&f, Role::RequestId), Some("-"));
        assert_eq!(get(&f, Role::Duration), Some("0"));
    }

    #[test]
    fn nezha_preset() {
        let p = Pattern::preset("nezha").unwrap();
        assert_eq!(
            roles(&parse(PRESETS[4].example, &p)),
            [
                Some("ffc8ca7e4c8f06c75142c880d5595d96"),
                Some("16:42:22.418"),
                None,
                Some("37b1a1514d403000"),
                None,
                None,
                Some("ERROR"),
                None,
            ]
        );
        let f = parse(NZ_TT, &p);
        assert_eq!(get(&f, Role::Span), Some("439bc949a9eeb0cc"));
        assert_eq!(get(&f, Role::Level), Some("INFO"));
        // The time of day alone counts as absent: the envelope's stands in.
        assert!(parse_timestamp(get(&f, Role::Ts).unwrap(), &TzSpec::Utc, None).is_err());
        let f = parse(NZ_AD, &p);
        assert_eq!(
            get(&f, Role::RequestId),
            Some("04c87ec97bae041b1b15b3c7676a43cc")
        );
        assert_eq!(get(&f, Role::Span), Some("274f6c05ca78812f"));
        assert_eq!(
            roles(&parse(NZ_FRONTEND, &p)),
            [
                Some("04c87ec97bae041b1b15b3c7676a43cc"),
                None,
                None,
                Some("989036326b156480"),
                None,
                Some("5408"),
                None,
                Some("200"),
            ]
        );
        assert_eq!(p.duration_unit(), Some(DurationUnit::Ms));
        let f = parse(NZ_RECO, &p);
        assert_eq!(get(&f, Role::Span), Some("e4006dce6700e903"));
        assert_eq!(get(&f, Role::Ts), None);
        let f = parse(NZ_CART, &p);
        assert_eq!(get(&f, Role::Span), Some("827e3035bae2ba43"));
    }

    #[test]
    fn custom_pattern_with_duration_s() {
        let p = Pattern::new(
            r"^(?P<ts>\S+) \[(?P<request_id>[^\]]*)\] (?P<service>\w+)(?: -> (?P<peer>\w+))? (?P<event>\w+) took (?P<duration_s>[\d.]+)s status=(?P<status>\d+)(?: (?P<msg>.*))?$",
        )
        .unwrap();
        assert_eq!(p.name(), "custom");
        assert_eq!(p.duration_unit(), Some(DurationUnit::S));
        assert!(!p.service_from_file_prefix());
        assert!(!p.anchored_start());
        let f = parse(
            "2024-05-01T10:00:00.5Z [r-1] orders -> payments cr took 0.25s status=503 caf\u{e9}",
            &p,
        );
        assert_eq!(
            roles(&f),
            [
                Some("r-1"),
                Some("2024-05-01T10:00:00.5Z"),
                Some("orders"),
                None,
                Some("payments"),
                Some("0.25"),
                None,
                Some("503"),
            ]
        );
        assert_eq!(get(&f, Role::Event), Some("cr"));
        assert!(
            f.values
                .iter()
                .flatten()
                .all(|v| v.name_index == 0 && v.kind == ValueKind::String)
        );
        // An empty or whitespace-only capture leaves its role empty; bytes
        // that are not UTF-8 outside a role do not matter.
        let f = parse_regex(
            b"2024-05-01T10:00:00Z [ ] orders ss took 1s status=200 \xff\xfe",
            &p,
        )
        .unwrap();
        assert_eq!(get(&f, Role::RequestId), None);
        assert_eq!(get(&f, Role::Event), Some("ss"));
        // Inside a role they do; `.` and `\S` see them as U+FFFD.
        let p = Pattern::new(r"^(?P<ts>\S+) (?P<request_id>\w+) (?P<msg>.+)$").unwrap();
        assert_eq!(parse_regex(b"t1 r\xff x", &p), Err(LineError::Parse));
        let f = parse_regex(b"t\xc3\xa9 r1 \xff\xfe!", &p).unwrap();
        assert_eq!(
            (get(&f, Role::Ts), get(&f, Role::RequestId)),
            (Some("t\u{e9}"), Some("r1"))
        );
        assert!(matches!(f.get(Role::Ts).unwrap().text, Cow::Owned(_)));
        let p = Pattern::new(r"^(?P<ts>\S+) (?P<request_id>.+)$").unwrap();
        assert_eq!(parse_regex(b"t1 r\xff", &p), Err(LineError::InvalidUtf8));
        assert_eq!(parse_regex(b"nospace", &p), Err(LineError::Parse));
        assert_eq!(parse_regex(b"nospace\xff", &p), Err(LineError::Parse));
        // Presets are byte-wise: a role value with such bytes is caught.
        let sw = Pattern::preset("skywalking").unwrap();
        let mut bytes = SW_INFO.as_bytes().to_vec();
        bytes[SW_INFO.find("station-service").unwrap() + 2] = 0xff;
        assert_eq!(parse_regex(&bytes, &sw), Err(LineError::InvalidUtf8));
        let mut bytes = SW_INFO.as_bytes().to_vec();
        bytes.extend_from_slice(b"\xff tail");
        assert_eq!(
            get(&parse_regex(&bytes, &sw).unwrap(), Role::Level),
            Some("INFO")
        );
        // A byte order mark and a CR are not part of the line.
        let f = parse_regex(b"\xEF\xBB\xBFt1 r9\r", &p).unwrap();
        assert_eq!(
            (get(&f, Role::Ts), get(&f, Role::RequestId)),
            (Some("t1"), Some("r9"))
        );
    }

    #[test]
    fn duration_units_and_start_anchor_from_group_names() {
        let unit = |g: &str| {
            Pattern::new(&format!(r"(?P<ts>\S+) (?P<request_id>\S+) (?P<{g}>\S+)"))
                .unwrap()
                .duration_unit()
        };
        assert_eq!(unit("duration"), None);
        assert_eq!(unit("duration_s"), Some(DurationUnit::S));
        assert_eq!(unit("duration_ms"), Some(DurationUnit::Ms));
        assert_eq!(unit("duration_us"), Some(DurationUnit::Us));
        assert_eq!(unit("duration_ns"), Some(DurationUnit::Ns));
        assert_eq!(unit("durationMs"), Some(DurationUnit::Ms));
        let p = Pattern::new(r"(?P<start_time>\S+) (?P<request_id>\S+)").unwrap();
        assert!(p.anchored_start());
        assert_eq!(get(&parse("t0 r1", &p), Role::Ts), Some("t0"));
        // A --pattern has Unicode classes and case folding.
        let p = Pattern::new(r"(?i)(?P<ts>\S+) (?P<request_id>\p{Greek}+) É \w+$").unwrap();
        assert_eq!(
            get(&parse("t0 αβγ é ünï", &p), Role::RequestId),
            Some("αβγ")
        );
    }

    #[test]
    fn bad_patterns_are_errors_that_say_why() {
        let err = |p: &str| Pattern::new(p).unwrap_err();
        let e = err(r"(?P<ts>\S+) (?P<id>\S+)");
        assert!(e.contains(r#"unknown group name "id""#), "{e}");
        assert!(
            e.contains("request_id ts service span parent event peer duration"),
            "{e}"
        );
        let e = err(r"(?P<ts>\S+) \S+");
        assert!(e.contains("request_id") && e.contains("request ID"), "{e}");
        let e = err(r"(?P<request_id>\S+)");
        assert!(e.contains("(?P<ts>...)") && e.contains("timestamp"), "{e}");
        let e = err(r"(?P<ts>\S+) (?P<request_id>\S+");
        assert!(
            e.starts_with("invalid --pattern: ") && e.contains("unclosed group"),
            "{e}"
        );
        let e = err(r"(?P<ts>\S+) (?P<request_id>\S+) (?P<duration>\d+) (?P<duration_ms>\d+)");
        assert!(
            e.contains(r#""duration" and "duration_ms" both give the duration field"#),
            "{e}"
        );
        let e = err(r"(?P<ts>\S+) (?P<start_time>\S+) (?P<request_id>\S+)");
        assert!(e.contains("both give the ts field"), "{e}");
        assert!(
            err(r"(?P<ts>\S+) (?P<request_id>\S+) (?P<duration_xs>\S+)").contains("duration_xs")
        );
        assert!(err(r"(?P<ts>\S+) (?P<request_id>\S+) (?P<durations>\S+)").contains("durations"));
        let e = Pattern::preset("apache").unwrap_err();
        assert_eq!(
            e,
            r#"unknown preset "apache": expected one of openstack, skywalking, nginx, envoy, nezha"#
        );
    }

    fn detect(lines: &[&str]) -> Option<&'static str> {
        detect_preset(lines.iter().map(|l| l.as_bytes()))
    }

    #[test]
    fn detection_on_real_samples() {
        assert_eq!(
            detect(&[OS_API, OS_COMPUTE, OS_NO_REQ, OS_SCHED]),
            Some("openstack")
        );
        assert_eq!(
            detect(&[SW_INFO, SW_ERROR, "", SW_WARN, SW_NA]),
            Some("skywalking")
        );
        assert_eq!(
            detect(&[ENVOY_IN, ENVOY_OUT, ENVOY_V6, ENVOY_PLAIN]),
            Some("envoy")
        );
        assert_eq!(
            detect(&[NZ_TT, NZ_AD, NZ_FRONTEND, NZ_RECO, NZ_CART]),
            Some("nezha")
        );
        // loghub's HDFS and Hadoop lines, JSON and logfmt lines: no preset.
        assert_eq!(
            detect(&[
                "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating",
                "2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Created MRAppMaster for application appattempt_1445144423722_0020_000001",
            ]),
            None
        );
        assert_eq!(
            detect(&[
                r#"{"authority":"reviews:9080","duration":15,"request_id":"9fcc7101-13bd-9753-98d6-820806088d9d","start_time":"2022-09-08T12:51:05.656Z"}"#,
                r#"{"ts":"2024-05-01T10:00:00Z","request_id":"r1","service":"orders"}"#,
            ]),
            None
        );
        assert_eq!(
            detect(&[
                "ts=2024-05-01T10:00:00Z request_id=r1 svc=orders duration=12ms",
                "ts=2024-05-01T10:00:01Z request_id=r2 svc=orders status=500",
            ]),
            None
        );
        // 4 of 5 is enough; 3 of 5 is not; nothing is nothing.
        assert_eq!(
            detect(&[OS_API, OS_API, OS_API, OS_API, "x"]),
            Some("openstack")
        );
        assert_eq!(detect(&[OS_API, OS_API, OS_API, "x", "y"]), None);
        assert_eq!(detect(&[]), None);
        assert_eq!(detect(&["", "   "]), None);
    }

    #[test]
    fn file_prefixes() {
        assert_eq!(
            file_prefix_service("nova-api.log.1.2017-05-16_13:53:08").as_deref(),
            Some("nova-api")
        );
        assert_eq!(
            file_prefix_service("nova-compute.log").as_deref(),
            Some("nova-compute")
        );
        assert_eq!(
            file_prefix_service("/var/log/nova/nova-scheduler.log.2.gz").as_deref(),
            Some("nova-scheduler")
        );
        assert_eq!(
            file_prefix_service("my.logger.log").as_deref(),
            Some("my.logger")
        );
        assert_eq!(file_prefix_service("catalog.txt"), None);
        assert_eq!(file_prefix_service(".log"), None);
        assert_eq!(file_prefix_service("nova.logs"), None);
        assert_eq!(file_prefix_service("dir.log/app"), None);
        assert_eq!(file_prefix_service(""), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            assert_eq!(COMPILED.len(), PRESETS.len());
            for (_, p) in COMPILED.iter() {
                let _ = parse_regex(&bytes, p);
            }
            let _ = detect_preset([bytes.as_slice()].into_iter());
        }

        /// Examples cut and salted with random bytes: no panic, and every
        /// value is a piece of the line.
        #[test]
        fn damaged_examples(
            which in 0usize..5,
            cut in 0usize..600,
            noise in proptest::collection::vec(any::<u8>(), 0..6),
            at in 0usize..600,
        ) {
            let info = &presets()[which];
            let p = &COMPILED[which].1;
            let mut b = info.example.as_bytes().to_vec();
            b.truncate(cut);
            let at = at.min(b.len());
            b.splice(at..at, noise);
            if let Ok(f) = parse_regex(&b, p) {
                for v in f.values.iter().flatten() {
                    let range = b.as_ptr_range();
                    prop_assert!(range.contains(&v.text.as_ptr()));
                    prop_assert!(!v.text.trim().is_empty());
                }
            }
        }
    }
}
