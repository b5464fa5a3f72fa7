//! Command line: the raw clap `Args` and the validated [`Config`] the rest of
//! the program runs on (ripgrep's split of low-level and high-level args).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::Error;
use crate::input::{MmapChoice, ServiceFrom};
use crate::parse::fields::Role;
use crate::parse::time::{self, DurationUnit, TzSpec};

/// The subcommand names; a first argument equal to one of them is that
/// subcommand, anything else runs `report` (SPEC §3).
pub const SUBCOMMANDS: &[&str] = &[
    "report", "traces", "show", "check", "files", "formats", "help",
];

/// hopscope: per-hop latency, propagation and failures from the logs of
/// distributed systems.
#[derive(Debug, Parser)]
#[command(name = "hopscope", version, about, long_about = None)]
pub struct Cli {
    /// The subcommand; [`normalize_args`] inserts `report` when the first argument
    /// names none, so it is always present after parsing.
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The summary per service, hop and chain (the default command).
    Report(ReportArgs),
    /// One JSON object per request (NDJSON), in (start, request ID) order.
    Traces(TracesArgs),
    /// One request as a tree and a waterfall.
    Show(ShowArgs),
    /// A CI gate: budgets and a saved baseline; exit 1 on a regression.
    #[command(after_help = crate::check::CHECK_AFTER_HELP)]
    Check(CheckArgs),
    /// Per file: format, service and why, the field used for each role,
    /// records, skips and time range. Run it when a report looks wrong.
    Files(FilesArgs),
    /// The formats and presets hopscope reads, with example lines.
    Formats,
}

/// Options of `files`.
#[derive(Debug, clap::Args)]
pub struct FilesArgs {
    /// The inputs and the options that change how lines are read.
    #[command(flatten)]
    pub input: InputArgs,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = FilesOutput::Table)]
    pub output: FilesOutput,
}

/// Output of `files`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FilesOutput {
    /// One block per file.
    Table,
    /// A JSON array, one object per file.
    Json,
}

/// Options of `traces`.
#[derive(Debug, clap::Args)]
pub struct TracesArgs {
    /// The inputs and the options that change how lines are read.
    #[command(flatten)]
    pub input: InputArgs,
    /// Only failed requests.
    #[arg(long)]
    pub failed: bool,
    /// Only the N slowest requests (still written in start order).
    #[arg(long, value_name = "N")]
    pub slowest: Option<usize>,
    /// Only requests that visit this service (repeatable).
    #[arg(long, value_name = "SERVICE")]
    pub service: Vec<String>,
    /// Only requests at least this slow, e.g. 250ms.
    #[arg(long, value_name = "DURATION")]
    pub min_latency: Option<String>,
    /// Only requests whose chain matches this glob (`*`, `?`; braces are literal).
    #[arg(long, value_name = "GLOB")]
    pub chain: Option<String>,
    /// Only incomplete requests (each with its reason).
    #[arg(long)]
    pub incomplete: bool,
}

/// Options of `show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The request ID, or a unique prefix of it.
    pub request_id: String,
    /// The inputs and the options that change how lines are read.
    #[command(flatten)]
    pub input: InputArgs,
    /// Columns to fill (default: the terminal's width).
    #[arg(long, value_name = "N")]
    pub width: Option<usize>,
}

/// Output of `check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CheckOutput {
    /// A table of checks with verdicts.
    Table,
    /// The `hopscope.check/v1` JSON document.
    Json,
    /// JUnit XML, one test case per check.
    Junit,
}

/// Options of `check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The inputs of the current run and the options that change how lines are
    /// read.
    #[command(flatten)]
    pub input: InputArgs,
    /// A report saved earlier with `report -o json`, to compare against.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// A budget such as `orders.p99<250ms` or `failure_rate<1%` (repeatable).
    #[arg(long, value_name = "EXPR")]
    pub budget: Vec<String>,
    /// Largest allowed growth of a quantile over the baseline.
    #[arg(long, default_value = "10%", value_name = "PERCENT")]
    pub max_increase: String,
    /// Largest allowed growth of a failure rate, in percentage points.
    #[arg(long, default_value = "1", value_name = "POINTS")]
    pub max_failure_increase: String,
    /// Quantiles compared with the baseline.
    #[arg(long, default_value = "p50,p90,p99", value_name = "LIST")]
    pub metrics: String,
    /// Groups with fewer samples are not compared (and are listed).
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub min_count: u64,
    /// A budget whose subject has no data is skipped instead of failing.
    #[arg(long)]
    pub allow_missing: bool,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = CheckOutput::Table)]
    pub output: CheckOutput,
}

impl CheckArgs {
    /// Validates the check options (usage errors, exit 2).
    pub fn check_options(&self) -> Result<crate::check::CheckOptions, Error> {
        let mut budgets = Vec::new();
        for b in &self.budget {
            budgets.push(crate::check::parse_budget(b).map_err(|e| Error::Usage(e.render()))?);
        }
        Ok(crate::check::CheckOptions {
            budgets,
            max_increase: crate::check::parse_percent(&self.max_increase)
                .map_err(|e| Error::Usage(format!("--max-increase: {e}")))?,
            max_failure_increase_pp: crate::check::parse_percentage_points(
                &self.max_failure_increase,
            )
            .map_err(|e| Error::Usage(format!("--max-failure-increase: {e}")))?,
            min_count: self.min_count,
            metrics: crate::check::parse_metrics(&self.metrics)
                .map_err(|e| Error::Usage(format!("--metrics: {e}")))?,
            allow_missing: self.allow_missing,
        })
    }
}

impl TracesArgs {
    /// The request filter.
    pub fn filter(&self) -> Result<crate::app::TraceFilter, Error> {
        let min_latency = self
            .min_latency
            .as_deref()
            .map(|s| {
                time::parse_cli_duration(s).map_err(|e| Error::Usage(format!("--min-latency: {e}")))
            })
            .transpose()?;
        Ok(crate::app::TraceFilter {
            failed: self.failed,
            slowest: self.slowest,
            services: self.service.clone(),
            min_latency,
            chain: self.chain.clone(),
            incomplete: self.incomplete,
        })
    }
}

/// Output of `report`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Terminal tables.
    Table,
    /// The `hopscope.report/v1` JSON document.
    Json,
    /// One RFC 4180 table chosen by `--table`.
    Csv,
}

/// Which table `-o csv` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CsvTable {
    /// One row per service.
    Services,
    /// One row per caller → callee hop.
    Hops,
    /// One row per chain shape.
    Chains,
}

/// Row order of the terminal tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    /// Total time spent (count × mean), largest first.
    Time,
    /// Most calls or visits first.
    Calls,
    /// Slowest p99 first.
    P99,
    /// Most failures first.
    Failures,
}

/// A forced input format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Detect per file from its first 32 non-blank lines.
    Auto,
    /// One JSON object per line; nested keys are dotted paths.
    Json,
    /// `key=value` pairs, values optionally quoted.
    Logfmt,
    /// Text lines read by `--pattern` or `--preset`.
    Regex,
}

/// Whether clock-skew correction runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SkewArg {
    /// Apply the measured clock offsets at or above `--skew-threshold`.
    On,
    /// Measure and list clock offsets, but apply none.
    Off,
}

/// Where a line's timestamp sits in the work a duration measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AnchorArg {
    /// The line is written when the work ends (access logs).
    End,
    /// The line is written when the work starts.
    Start,
}

/// Options shared by every command that reads logs.
#[derive(Debug, clap::Args)]
pub struct InputArgs {
    /// Log files and directories (searched recursively); `-` reads stdin.
    pub paths: Vec<PathBuf>,

    /// Input format; detected per file by default.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    pub format: FormatArg,
    /// A regex with named groups (request_id, ts, service, span, parent,
    /// event, peer, duration[_s|_ms|_us|_ns], level, status, error, msg)
    /// for text logs; implies `--format regex`.
    #[arg(long, value_name = "REGEX", conflicts_with = "preset")]
    pub pattern: Option<String>,
    /// A named regex format (`hopscope formats` lists them); implies
    /// `--format regex`.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,

    /// Request ID field names (comma-separated dotted paths), replacing the defaults.
    #[arg(long, value_name = "NAMES")]
    pub id_field: Option<String>,
    /// Timestamp field names, replacing the defaults.
    #[arg(long, value_name = "NAMES")]
    pub ts_field: Option<String>,
    /// Service field names, replacing the defaults.
    #[arg(long, value_name = "NAMES")]
    pub service_field: Option<String>,
    /// Span ID field names, replacing the defaults.
    #[arg(long, value_name = "NAMES")]
    pub span_field: Option<String>,
    /// Parent span ID field names, replacing the defaults.
    #[arg(long, value_name = "NAMES")]
    pub parent_field: Option<String>,
    /// Event kind field names, replacing the defaults.
    #[arg(long, value_name = "NAMES")]
    pub event_field: Option<String>,
    /// Peer (callee) field names, replacing the defaults.
    #[arg(long, value_name = "NAMES")]
    pub peer_field: Option<String>,
    /// Duration field names, replacing the defaults.
    #[arg(long, value_name = "NAMES")]
    pub duration_field: Option<String>,
    /// Level field names, replacing the defaults.
    #[arg(long, value_name = "NAMES")]
    pub level_field: Option<String>,
    /// Status field names, replacing the defaults.
    #[arg(long, value_name = "NAMES")]
    pub status_field: Option<String>,
    /// Error field names, replacing the defaults.
    #[arg(long, value_name = "NAMES")]
    pub error_field: Option<String>,

    /// Zone for timestamps without an offset: UTC, local, ±HH:MM or an IANA
    /// name; `SERVICE=ZONE` sets one service's zone. Repeatable.
    #[arg(long, value_name = "[SERVICE=]ZONE")]
    pub tz: Vec<String>,
    /// A chrono format for timestamps (e.g. `%d/%b/%Y:%H:%M:%S %z`).
    #[arg(long, value_name = "FORMAT")]
    pub time_format: Option<String>,
    /// Where the service name comes from: the path rule (auto), the file
    /// stem (stem), or the directory N levels up (dir:N). Overrides fields.
    #[arg(long, value_name = "auto|stem|dir:N")]
    pub service_from: Option<String>,
    /// Unit of durations written without one (default: from the field
    /// name's suffix, else ms).
    #[arg(long, value_name = "s|ms|us|ns")]
    pub duration_unit: Option<String>,
    /// Whether a line with a duration is stamped at the end of the work
    /// (access logs, the default) or at its start.
    #[arg(long, value_enum, default_value_t = AnchorArg::End)]
    pub duration_anchor: AnchorArg,
    /// Numeric status at or above which a line fails.
    #[arg(long, default_value_t = 500, value_name = "CODE")]
    pub fail_status: u32,
    /// Maps a peer name to a service (`FROM=TO`). Repeatable.
    #[arg(long, value_name = "FROM=TO")]
    pub peer_alias: Vec<String>,
    /// Clock-skew correction (SPEC §2).
    #[arg(long, value_enum, default_value_t = SkewArg::On)]
    pub skew: SkewArg,
    /// Smallest measured offset that is applied.
    #[arg(long, default_value = "1ms", value_name = "DURATION")]
    pub skew_threshold: String,
    /// Count the visits of incomplete requests in services, hops and chains.
    #[arg(long)]
    pub include_incomplete: bool,
    /// Requests with more visits are incomplete (`too_large`).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_visits: usize,
    /// Split a request ID at silences longer than this (e.g. `30s`).
    #[arg(long, value_name = "DURATION")]
    pub max_gap: Option<String>,
    /// Longer lines are skipped as `too_long` (bytes; K/M/G suffixes ok).
    #[arg(long, default_value = "1MiB", value_name = "SIZE")]
    pub max_line: String,
    /// Make the first unusable line an error (exit 2).
    #[arg(long)]
    pub strict: bool,
    /// Only requests whose root starts at or after this time (RFC 3339, or
    /// relative to the newest record like `1h`).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only requests whose root starts before this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Follow symlinked directories (loops are detected).
    #[arg(long)]
    pub follow: bool,
    /// Memory-map every plain file, even one written in the last 30 s. By
    /// default only quiet files are mapped: a mapped file truncated under
    /// the reader (logrotate copytruncate) loses what was not yet read.
    #[arg(long, overrides_with = "no_mmap")]
    pub mmap: bool,
    /// Read files as streams instead of mapping them.
    #[arg(long, overrides_with = "mmap")]
    pub no_mmap: bool,
    /// Parse chunk size in bytes (for tests of the chunked reader).
    #[arg(long, hide = true, value_name = "BYTES")]
    pub chunk_size: Option<usize>,
    /// No progress bar and no run statistics on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Never colour the output (also NO_COLOR).
    #[arg(long)]
    pub no_color: bool,
}

/// Options of `report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The inputs and the options that change how lines are read.
    #[command(flatten)]
    pub input: InputArgs,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// The table `-o csv` writes.
    #[arg(long, value_enum, default_value_t = CsvTable::Hops)]
    pub table: CsvTable,
    /// Rows per terminal table (the JSON stays complete).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub top: usize,
    /// Row order of the terminal tables.
    #[arg(long, value_enum, default_value_t = SortKey::Time)]
    pub sort: SortKey,
    /// Add a `run` object (elapsed time, throughput) to the JSON.
    #[arg(long)]
    pub run_stats: bool,
}

/// Where a `--since`/`--until` bound sits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeBound {
    /// An absolute instant, ns since the epoch.
    At(i64),
    /// This long before the newest record.
    BeforeNewest(i64),
}

/// Every setting that changes how lines are read and figures computed.
#[derive(Clone, Debug)]
pub struct Config {
    /// Inputs as given; empty means stdin.
    pub paths: Vec<PathBuf>,
    /// Forced format, or None to detect.
    pub format: Option<crate::parse::detect::LineFormat>,
    /// `--pattern`/`--preset`, compiled: every file is read with it.
    pub pattern: Option<std::sync::Arc<crate::parse::regex::Pattern>>,
    /// Field overrides per role (only those given).
    pub field_overrides: Vec<(Role, Vec<String>)>,
    /// Zone for timestamps without offset.
    pub tz: TzSpec,
    /// Per-service zones.
    pub tz_by_service: BTreeMap<String, TzSpec>,
    /// The raw `--tz` values, for the options echo.
    pub tz_args: Vec<String>,
    /// `--time-format`.
    pub time_format: Option<String>,
    /// `--service-from`, None for the default (fields, then path).
    pub service_from: Option<ServiceFrom>,
    /// `--duration-unit`.
    pub duration_unit: Option<DurationUnit>,
    /// `--duration-anchor start`.
    pub anchor_start: bool,
    /// `--fail-status`.
    pub fail_status: u32,
    /// `--peer-alias`, lower-cased FROM → TO.
    pub peer_aliases: BTreeMap<String, String>,
    /// False with `--skew off`.
    pub skew: bool,
    /// `--skew-threshold` in ns.
    pub skew_threshold: i64,
    /// `--include-incomplete`.
    pub include_incomplete: bool,
    /// `--max-visits`.
    pub max_visits: usize,
    /// `--max-gap` in ns.
    pub max_gap: Option<i64>,
    /// `--max-line` in bytes.
    pub max_line: usize,
    /// `--strict`.
    pub strict: bool,
    /// `--since`.
    pub since: Option<TimeBound>,
    /// `--until`.
    pub until: Option<TimeBound>,
    /// The raw `--since`/`--until`, for the options echo.
    pub since_arg: Option<String>,
    /// The raw `--until`.
    pub until_arg: Option<String>,
    /// `--threads`, None for one per core.
    pub threads: Option<usize>,
    /// `--follow`.
    pub follow: bool,
    /// The mmap policy.
    pub mmap: MmapChoice,
    /// Parse chunk size in bytes.
    pub chunk_size: usize,
    /// `--quiet`.
    pub quiet: bool,
    /// Colour allowed (not `--no-color`, no `NO_COLOR`).
    pub color: bool,
}

/// Options of the report renderers.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// `-o`: table (the default), JSON or CSV.
    pub output: OutputFormat,
    /// `--table`: which table `-o csv` writes; hops by default.
    pub table: CsvTable,
    /// `--top`: rows per terminal table, 20 by default; JSON and CSV stay complete.
    pub top: usize,
    /// `--sort`: row order of the terminal tables, total time by default.
    pub sort: SortKey,
    /// `--run-stats`: add the `run` object to the JSON; off by default, because it
    /// varies from run to run.
    pub run_stats: bool,
}

/// Puts `report` in front of arguments that do not start with a subcommand
/// name, so `hopscope PATH...` is `hopscope report PATH...`.
pub fn normalize_args(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let first = args.get(1).and_then(|a| a.to_str()).map(str::to_string);
    let keep = match first.as_deref() {
        None => false,
        Some(a) => SUBCOMMANDS.contains(&a) || matches!(a, "-h" | "--help" | "-V" | "--version"),
    };
    if !keep {
        args.insert(1.min(args.len()), "report".into());
    }
    args
}

impl InputArgs {
    /// Validates and resolves the options; errors are usage errors (exit 2).
    pub fn to_config(&self) -> Result<Config, Error> {
        let usage = |m: String| Error::Usage(m);
        let format = match self.format {
            FormatArg::Auto | FormatArg::Regex => None,
            FormatArg::Json => Some(crate::parse::detect::LineFormat::Json),
            FormatArg::Logfmt => Some(crate::parse::detect::LineFormat::Logfmt),
        };
        let pattern = match (&self.pattern, &self.preset) {
            (Some(p), _) => Some(
                crate::parse::regex::Pattern::new(p)
                    .map_err(|e| usage(format!("--pattern: {e}")))?,
            ),
            (None, Some(name)) => Some(
                crate::parse::regex::Pattern::preset(name)
                    .map_err(|e| usage(format!("--preset: {e}")))?,
            ),
            (None, None) => None,
        };
        if self.format == FormatArg::Regex && pattern.is_none() {
            return Err(usage(
                "--format regex needs --pattern or --preset (hopscope formats lists the presets)"
                    .into(),
            ));
        }
        if pattern.is_some() && matches!(self.format, FormatArg::Json | FormatArg::Logfmt) {
            return Err(usage(
                "--pattern/--preset read text lines; they cannot be combined with --format json or logfmt"
                    .into(),
            ));
        }
        let mut field_overrides = Vec::new();
        let given = [
            (Role::RequestId, &self.id_field),
            (Role::Ts, &self.ts_field),
            (Role::Service, &self.service_field),
            (Role::Span, &self.span_field),
            (Role::Parent, &self.parent_field),
            (Role::Event, &self.event_field),
            (Role::Peer, &self.peer_field),
            (Role::Duration, &self.duration_field),
            (Role::Level, &self.level_field),
            (Role::Status, &self.status_field),
            (Role::Error, &self.error_field),
        ];
        for (role, value) in given {
            if let Some(v) = value {
                let names: Vec<String> = v
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                if names.is_empty() {
                    return Err(usage(format!(
                        "--{}-field needs at least one field name",
                        role.cli_name()
                    )));
                }
                field_overrides.push((role, names));
            }
        }
        let mut tz = TzSpec::Utc;
        let mut tz_by_service = BTreeMap::new();
        for t in &self.tz {
            match t.split_once('=') {
                Some((svc, zone)) => {
                    let z = TzSpec::parse(zone).map_err(|e| usage(format!("--tz {t}: {e}")))?;
                    tz_by_service.insert(svc.to_string(), z);
                }
                None => tz = TzSpec::parse(t).map_err(|e| usage(format!("--tz {t}: {e}")))?,
            }
        }
        let service_from = match &self.service_from {
            None => None,
            Some(s) => Some(
                s.parse::<ServiceFrom>()
                    .map_err(|e| usage(format!("--service-from: {e}")))?,
            ),
        };
        let duration_unit = match &self.duration_unit {
            None => None,
            Some(s) => Some(DurationUnit::parse(s).ok_or_else(|| {
                usage(format!(
                    "--duration-unit: invalid unit '{s}' (expected s, ms, us or ns)"
                ))
            })?),
        };
        let mut peer_aliases = BTreeMap::new();
        for a in &self.peer_alias {
            let (from, to) = a
                .split_once('=')
                .filter(|(f, t)| !f.is_empty() && !t.is_empty())
                .ok_or_else(|| usage(format!("--peer-alias {a}: expected FROM=TO")))?;
            peer_aliases.insert(from.trim().to_lowercase(), to.trim().to_string());
        }
        let skew_threshold = time::parse_cli_duration(&self.skew_threshold)
            .map_err(|e| usage(format!("--skew-threshold: {e}")))?;
        let max_gap = match &self.max_gap {
            None => None,
            Some(s) => {
                Some(time::parse_cli_duration(s).map_err(|e| usage(format!("--max-gap: {e}")))?)
            }
        };
        let max_line = parse_size(&self.max_line)
            .ok_or_else(|| usage(format!("--max-line: invalid size '{}'", self.max_line)))?;
        let since = self
            .since
            .as_deref()
            .map(|s| parse_time_bound(s).map_err(|e| usage(format!("--since: {e}"))))
            .transpose()?;
        let until = self
            .until
            .as_deref()
            .map(|s| parse_time_bound(s).map_err(|e| usage(format!("--until: {e}"))))
            .transpose()?;
        if self.threads == Some(0) {
            return Err(usage("--threads must be at least 1".into()));
        }
        if self.max_visits == 0 {
            return Err(usage("--max-visits must be at least 1".into()));
        }
        let mmap = if self.no_mmap {
            MmapChoice::Never
        } else if self.mmap {
            MmapChoice::Always
        } else {
            MmapChoice::Auto
        };
        let color = !self.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Ok(Config {
            paths: self.paths.clone(),
            format,
            pattern: pattern.map(std::sync::Arc::new),
            field_overrides,
            tz,
            tz_by_service,
            tz_args: self.tz.clone(),
            time_format: self.time_format.clone(),
            service_from,
            duration_unit,
            anchor_start: self.duration_anchor == AnchorArg::Start,
            fail_status: self.fail_status,
            peer_aliases,
            skew: self.skew == SkewArg::On,
            skew_threshold,
            include_incomplete: self.include_incomplete,
            max_visits: self.max_visits,
            max_gap,
            max_line,
            strict: self.strict,
            since,
            until,
            since_arg: self.since.clone(),
            until_arg: self.until.clone(),
            threads: self.threads,
            follow: self.follow,
            mmap,
            chunk_size: self
                .chunk_size
                .unwrap_or(crate::input::DEFAULT_CHUNK)
                .max(1),
            quiet: self.quiet,
            color,
        })
    }
}

impl ReportArgs {
    /// The renderer options.
    pub fn report_options(&self) -> ReportOptions {
        ReportOptions {
            output: self.output,
            table: self.table,
            top: self.top,
            sort: self.sort,
            run_stats: self.run_stats,
        }
    }
}

/// Parses `1048576`, `64K`, `1MiB`, `2MB`, `1G`.
fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().ok()?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult).filter(|&v| v > 0)
}

/// Parses a `--since`/`--until` value: RFC 3339, or a duration before the
/// newest record.
fn parse_time_bound(s: &str) -> Result<TimeBound, String> {
    if let Ok(ns) = time::parse_timestamp(s, &TzSpec::Utc, None)
        && (s.contains('-') || s.contains(':'))
    {
        return Ok(TimeBound::At(ns));
    }
    time::parse_cli_duration(s)
        .map(TimeBound::BeforeNewest)
        .map_err(|_| format!("invalid time '{s}' (expected RFC 3339 or a duration like 1h)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize_args(args.iter().map(|s| (*s).into()).collect())
            .into_iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn default_command_is_report() {
        assert_eq!(norm(&["h", "logs"]), ["h", "report", "logs"]);
        assert_eq!(norm(&["h", "report", "logs"]), ["h", "report", "logs"]);
        assert_eq!(norm(&["h", "./report"]), ["h", "report", "./report"]);
        assert_eq!(norm(&["h", "--help"]), ["h", "--help"]);
        assert_eq!(norm(&["h"]), ["h", "report"]);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("0"), None);
    }
}
