//! `hopscope files` and `hopscope formats`: how each input file was read
//! (format, service and why, the field name used for each role, records,
//! skips, time range), and the formats and presets hopscope knows.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use super::table::sanitize;
use crate::app::FileSummary;
use crate::parse::fields::{Role, Schema};
use crate::parse::regex::presets;
use crate::parse::time::format_rfc3339_ns;
use crate::parse::{FileFormat, NAME_SLOTS};

/// One file as `hopscope files` describes it.
#[derive(Clone, Debug, Serialize)]
pub struct FileRow {
    /// The path as given or found (the first in sorted order when several reach one
    /// file); `<stdin>` for standard input.
    pub path: String,
    /// `json`, `logfmt` or `regex (NAME)` (a preset's name, `custom` for
    /// `--pattern`); `(binary or unreadable)` for a file that was skipped; `None`
    /// when no format fits (its lines count as `unknown_format`).
    pub format: Option<String>,
    /// `docker` or `cri` when the lines are container envelopes unwrapped first;
    /// `None` otherwise.
    pub envelope: Option<&'static str>,
    /// The service the file's records get when they name none.
    pub service: String,
    /// Which rule chose `service`: `path`, `--service-from`, `kubernetes file name`,
    /// `file-name prefix` or `standard input`.
    pub service_rule: &'static str,
    /// Records whose service came from a service field instead.
    pub service_from_field: u64,
    /// Per role, the field name used most (json and logfmt files).
    pub fields: BTreeMap<&'static str, String>,
    /// Every line of the file: `records + blank + sum(skipped)`.
    pub lines: u64,
    /// Empty or whitespace-only lines.
    pub blank: u64,
    /// Lines that became usable records.
    pub records: u64,
    /// Unusable lines per reason, only the reasons that occurred (unlike the
    /// report's `input.skipped`, which lists every reason).
    pub skipped: BTreeMap<&'static str, u64>,
    /// Earliest record timestamp, UTC RFC 3339 with 9 fraction digits and `Z`;
    /// `None` when the file has no record.
    pub first_ts: Option<String>,
    /// Latest record timestamp, same form; `None` when the file has no record.
    pub last_ts: Option<String>,
}

/// The rows of `hopscope files`, in path order.
pub fn rows(files: &[FileSummary], schema: &Schema) -> Vec<FileRow> {
    files
        .iter()
        .map(|f| {
            let mut fields = BTreeMap::new();
            let by_name = !matches!(f.reader.format, Some(FileFormat::Regex(_)));
            for role in Role::ALL {
                let counts = f.stats.names_used.get(role.index());
                let best = counts.and_then(|c| {
                    c.iter()
                        .enumerate()
                        .filter(|(_, n)| **n > 0)
                        .max_by_key(|(i, n)| (**n, std::cmp::Reverse(*i)))
                        .map(|(i, _)| i)
                });
                let Some(i) = best else { continue };
                let name = if !by_name {
                    format!("({} group)", role.cli_name())
                } else if i == NAME_SLOTS - 1 {
                    format!("a name after the {}th", NAME_SLOTS - 1)
                } else {
                    schema.names(role).get(i).cloned().unwrap_or_default()
                };
                fields.insert(role.cli_name(), name);
            }
            FileRow {
                path: f.path.clone(),
                format: if f.readable {
                    f.reader.format.as_ref().map(FileFormat::name)
                } else {
                    Some("(binary or unreadable)".to_string())
                },
                envelope: f.reader.envelope.map(|e| e.name()),
                service: f.service.clone(),
                service_rule: f.service_rule,
                service_from_field: f.stats.service_from_field,
                fields,
                lines: f.stats.lines,
                blank: f.stats.blank,
                records: f.stats.records,
                skipped: f
                    .stats
                    .skipped_map()
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .collect(),
                first_ts: f.stats.first_ts.map(format_rfc3339_ns),
                last_ts: f.stats.last_ts.map(format_rfc3339_ns),
            }
        })
        .collect()
}

/// Writes the rows as one JSON array.
pub fn write_json(rows: &[FileRow], out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, rows)?;
    writeln!(out)
}

/// Writes one block per file.
pub fn write_table(rows: &[FileRow], out: &mut dyn Write) -> std::io::Result<()> {
    for r in rows {
        writeln!(out, "{}", sanitize(&r.path))?;
        let format = r.format.clone().unwrap_or_else(|| "none fits".to_string());
        match r.envelope {
            Some(e) => writeln!(out, "  format   {format} inside {e} envelopes")?,
            None => writeln!(out, "  format   {format}")?,
        }
        let service = if r.service_from_field > 0 {
            format!(
                "from a service field in {} of {} records, else {} ({})",
                r.service_from_field,
                r.records,
                sanitize(&r.service),
                r.service_rule
            )
        } else {
            format!("{} (from the {})", sanitize(&r.service), r.service_rule)
        };
        writeln!(out, "  service  {service}")?;
        if !r.fields.is_empty() {
            let f: Vec<String> = r
                .fields
                .iter()
                .map(|(role, name)| format!("{role}={}", sanitize(name)))
                .collect();
            writeln!(out, "  fields   {}", f.join(" "))?;
        }
        let skipped: Vec<String> = r.skipped.iter().map(|(k, n)| format!("{k} {n}")).collect();
        writeln!(
            out,
            "  lines    {} ({} records, {} blank{}{})",
            r.lines,
            r.records,
            r.blank,
            if skipped.is_empty() {
                ""
            } else {
                ", skipped: "
            },
            skipped.join(", ")
        )?;
        if let (Some(a), Some(b)) = (&r.first_ts, &r.last_ts) {
            writeln!(out, "  time     {a} … {b}")?;
        }
    }
    Ok(())
}

/// `hopscope formats`: every format and preset with an example line.
pub fn write_formats(out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "Formats (detected per file from its first 32 non-blank lines, or --format):\n"
    )?;
    writeln!(
        out,
        "json     one JSON object per line; nested objects are dotted paths (trace.id)"
    )?;
    writeln!(
        out,
        "         {{\"ts\":\"2024-05-01T10:00:00.015Z\",\"request_id\":\"r1\",\"service\":\"orders\",\"event\":\"server_send\",\"status\":201}}"
    )?;
    writeln!(
        out,
        "logfmt   key=value pairs, values may be \"quoted\"; bare words are ignored"
    )?;
    writeln!(
        out,
        "         ts=2024-05-01T10:00:00.015Z req_id=r1 svc=orders event=ss status=201 msg=\"order created\""
    )?;
    writeln!(
        out,
        "regex    --pattern with named groups: request_id ts service span parent event peer\n         duration (or duration_s/_ms/_us/_ns) level status error msg, or --preset NAME:"
    )?;
    for p in presets() {
        writeln!(out, "\n  --preset {}", p.name)?;
        writeln!(out, "    {}", p.description)?;
        writeln!(out, "    example: {}", p.example)?;
        if let Some(tz) = p.tz_hint {
            writeln!(out, "    time zone: {tz}")?;
        }
    }
    writeln!(
        out,
        "\nContainer envelopes (unwrapped first; the inner line is read in its own format):\n"
    )?;
    writeln!(
        out,
        "docker   {{\"log\":\"ts=2024-05-01T10:00:00Z req_id=r1 event=sr\\n\",\"stream\":\"stdout\",\"time\":\"2024-05-01T10:00:00.000000001Z\"}}"
    )?;
    writeln!(
        out,
        "cri      2024-05-01T10:00:00.000000001Z stdout F ts=2024-05-01T10:00:00Z req_id=r1 event=sr"
    )?;
    writeln!(
        out,
        "         (P parts are joined; the service comes from /var/log/containers/<pod>_<ns>_<container>-<id>.log\n          or /var/log/pods/<ns>_<pod>_<uid>/<container>/N.log, pod hash suffixes dropped)"
    )
}
