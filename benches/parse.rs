//! Micro-benchmarks of the parse stage (`cargo bench --bench parse`).
//!
//! Input comes from the `gen_logs` example's library, generated once into a
//! temporary directory: `--rich` logs (one JSON schema, ~265-byte lines) and
//! the default mode's six dialects (pino, ECS and fraud JSON; gateway,
//! access-log and Python-style logfmt). Every benchmark reports bytes per
//! second of parsed input. The number that matters is `parse_chunk/rich_json_4MiB`:
//! the whole per-line path (scan, timestamp, IDs, interning, failure flag)
//! over a 4 MiB buffer of rich JSON lines, as one parse task sees it.

#[path = "../examples/gen_logs/gen.rs"]
#[allow(dead_code)]
mod gen_logs;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hopscope::parse::detect::LineFormat;
use hopscope::parse::fields::Schema;
use hopscope::parse::time::{DurationUnit, TzSpec, parse_duration, parse_timestamp};
use hopscope::parse::{FileContext, FileReader, LineRules, json, logfmt, parse_chunk};

/// Requests generated per mode (rich: ~9.6 MB, default: ~6 MB).
const REQUESTS: u64 = 2_000;
/// Lines sampled per dialect for the per-line benchmarks.
const SAMPLE: usize = 1_000;
/// Size of the `parse_chunk` buffer.
const CHUNK: usize = 4 << 20;

/// The generated logs, read into memory.
struct Corpus {
    /// Every rich line, files in sorted order, `\n`-terminated.
    rich: Vec<u8>,
    /// Default-mode plain files by `service/file` name.
    plain: BTreeMap<String, Vec<u8>>,
}

fn generate(rich: bool) -> (tempfile::TempDir, gen_logs::Summary) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let opts = gen_logs::Options {
        out: dir.path().to_path_buf(),
        requests: REQUESTS,
        seed: 1,
        rich,
    };
    let summary = gen_logs::generate(&opts).unwrap_or_else(|e| panic!("gen_logs: {e}"));
    (dir, summary)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn corpus() -> Corpus {
    let (dir, summary) = generate(true);
    let mut rich = Vec::new();
    for f in &summary.files {
        rich.extend_from_slice(&read(&dir.path().join("logs").join(f)));
    }
    let (dir, summary) = generate(false);
    let mut plain = BTreeMap::new();
    for f in &summary.files {
        let name = f.to_string_lossy().replace('\\', "/");
        if name.ends_with(".log") {
            plain.insert(name, read(&dir.path().join("logs").join(f)));
        }
    }
    Corpus { rich, plain }
}

/// Every `len / SAMPLE`-th line of `data` (up to [`SAMPLE`] lines).
fn sample(data: &[u8]) -> Vec<&[u8]> {
    let lines: Vec<&[u8]> = data
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let step = (lines.len() / SAMPLE).max(1);
    lines.into_iter().step_by(step).take(SAMPLE).collect()
}

fn plain<'c>(c: &'c Corpus, name: &str) -> &'c [u8] {
    c.plain
        .get(name)
        .unwrap_or_else(|| panic!("gen_logs wrote no {name}"))
}

fn rules() -> LineRules {
    LineRules::default()
}

/// One group timing `parse` over each named set of inputs (lines or
/// values), in bytes of input per second.
fn bench_lines<T: AsRef<[u8]>>(
    c: &mut Criterion,
    group: &str,
    sets: &[(&str, Vec<T>)],
    parse: impl Fn(&T),
) {
    let mut g = c.benchmark_group(group);
    for (name, inputs) in sets {
        let bytes = inputs.iter().map(|v| v.as_ref().len() as u64).sum();
        g.throughput(Throughput::Bytes(bytes));
        g.bench_function(*name, |b| {
            b.iter(|| {
                for v in inputs {
                    parse(black_box(v));
                }
            });
        });
    }
    g.finish();
}

fn bench_json(c: &mut Criterion, corpus: &Corpus) {
    let schema = Schema::default();
    let sets = [
        ("rich", sample(&corpus.rich)),
        ("pino", sample(plain(corpus, "orders/orders.log"))),
        ("ecs", sample(plain(corpus, "payments/payments.log"))),
        ("fraud", sample(plain(corpus, "fraud/fraud.log"))),
    ];
    bench_lines(c, "parse_json", &sets, |line| {
        let _ = black_box(json::parse_json(line, &schema));
    });
}

fn bench_logfmt(c: &mut Criterion, corpus: &Corpus) {
    let schema = Schema::default();
    let sets = [
        ("gateway", sample(plain(corpus, "gateway/gateway.log"))),
        ("access", sample(plain(corpus, "inventory/access.log"))),
        ("python", sample(plain(corpus, "mailer/mailer.log"))),
    ];
    bench_lines(c, "parse_logfmt", &sets, |line| {
        let _ = black_box(logfmt::parse_logfmt(line, &schema));
    });
}

/// 64 variations of one form (the seconds vary), so the branch predictor
/// cannot learn a single value.
fn variants(make: impl Fn(usize) -> String) -> Vec<String> {
    (0..64).map(make).collect()
}

fn bench_timestamp(c: &mut Criterion) {
    let tz = TzSpec::Utc;
    let sets: [(&str, Vec<String>); 8] = [
        (
            "rfc3339_z_6",
            variants(|i| format!("2024-05-01T10:00:{:02}.{:06}Z", i % 60, i * 7919)),
        ),
        (
            "rfc3339_z_9",
            variants(|i| format!("2024-05-01T10:00:{:02}.{:09}Z", i % 60, i * 7_919_111)),
        ),
        (
            "rfc3339_offset_6",
            variants(|i| format!("2024-05-01T12:00:{:02}.{:06}+02:00", i % 60, i * 7919)),
        ),
        (
            "rfc3339_offset_9",
            variants(|i| format!("2024-05-01T12:00:{:02}.{:09}+02:00", i % 60, i * 7_919_111)),
        ),
        (
            "space_comma_no_offset",
            variants(|i| format!("2024-05-01 10:00:{:02},{:06}", i % 60, i * 7919)),
        ),
        ("epoch_s", variants(|i| format!("{}", 1_714_557_600 + i))),
        (
            "epoch_ms_frac",
            variants(|i| format!("{}.{:03}", 1_714_557_601_010u64 + i as u64, i * 13)),
        ),
        (
            "epoch_ns",
            variants(|i| format!("{}", 1_714_557_600_000_000_000u64 + i as u64 * 7919)),
        ),
    ];
    bench_lines(c, "parse_timestamp", &sets, |v| {
        let _ = black_box(parse_timestamp(v, &tz, None));
    });
}

fn bench_duration(c: &mut Criterion) {
    let sets: [(&str, Vec<String>); 5] = [
        ("integer", variants(|i| format!("{}", 3 + i * 17))),
        (
            "decimal",
            variants(|i| format!("{}.{:03}", i % 40, i * 13 % 1000)),
        ),
        ("ms_suffix", variants(|i| format!("{}.5ms", 1 + i))),
        ("micro_sign", variants(|i| format!("{}µs", 100 + i))),
        ("go_compound", variants(|i| format!("1m{}.5s", i % 60))),
    ];
    bench_lines(c, "parse_duration", &sets, |v| {
        let _ = black_box(parse_duration(v, DurationUnit::Ms));
    });
}

/// The first `CHUNK` bytes of `data`, cut after a newline.
fn chunk(data: &[u8]) -> &[u8] {
    if data.len() <= CHUNK {
        return data;
    }
    let head = &data[..CHUNK];
    let end = head
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(CHUNK, |i| i + 1);
    &data[..end]
}

fn bench_chunk(c: &mut Criterion, corpus: &Corpus) {
    let rules = rules();
    let mut g = c.benchmark_group("parse_chunk");
    g.sample_size(30);
    let mut logfmt_all = Vec::new();
    for name in [
        "gateway/gateway.log",
        "inventory/access.log",
        "mailer/mailer.log",
    ] {
        logfmt_all.extend_from_slice(plain(corpus, name));
    }
    let sets: [(&str, &[u8], LineFormat); 2] = [
        ("rich_json_4MiB", chunk(&corpus.rich), LineFormat::Json),
        ("logfmt_dialects", chunk(&logfmt_all), LineFormat::Logfmt),
    ];
    for (name, data, format) in sets {
        let reader = FileReader {
            envelope: None,
            format: Some(format.into()),
        };
        let ctx = FileContext {
            file: 0,
            path_service: "bench",
            reader: &reader,
        };
        // The buffer must parse: a broken benchmark would look fast.
        let out = parse_chunk(data, 0, &ctx, &rules);
        assert!(
            out.stats.records * 10 >= out.stats.lines * 9,
            "{name}: only {} of {} lines became records",
            out.stats.records,
            out.stats.lines
        );
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| black_box(parse_chunk(black_box(data), 0, &ctx, &rules)));
        });
    }
    g.finish();
}

fn all(c: &mut Criterion) {
    let corpus = corpus();
    bench_chunk(c, &corpus);
    bench_json(c, &corpus);
    bench_logfmt(c, &corpus);
    bench_timestamp(c);
    bench_duration(c);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .without_plots()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(3));
    targets = all
}
criterion_main!(benches);
