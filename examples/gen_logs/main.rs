//! `gen_logs`: writes seeded synthetic multi-service logs and their ground
//! truth (see `gen.rs` for the topology, dialects and failure scenarios).
//!
//! ```text
//! cargo run --release --example gen_logs -- --out DIR (--requests N | --size 1GB) [--seed S] [--rich]
//! ```
//!
//! Logs go to `DIR/logs/<service>/…`, the truth to `DIR/truth.json`; run
//! `hopscope report DIR/logs -o json` and compare. `--size` picks the number
//! of requests whose logs come to about that many bytes (it wins over
//! `--requests`).

mod r#gen;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: gen_logs --out DIR (--requests N | --size SIZE) [--seed S] [--rich]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_logs: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut out: Option<PathBuf> = None;
    let mut requests: Option<u64> = None;
    let mut size: Option<u64> = None;
    let mut seed: u64 = 1;
    let mut rich = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value\n{USAGE}"));
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--requests" => {
                let v = value("--requests")?;
                requests = Some(v.parse().map_err(|_| format!("bad --requests {v}"))?);
            }
            "--size" => {
                let v = value("--size")?;
                size = Some(r#gen::parse_size(&v).ok_or(format!("bad --size {v}"))?);
            }
            "--seed" => {
                let v = value("--seed")?;
                seed = v.parse().map_err(|_| format!("bad --seed {v}"))?;
            }
            "--rich" => rich = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let out = out.ok_or(format!("--out is required\n{USAGE}"))?;
    let requests = match (size, requests) {
        (Some(bytes), _) => r#gen::requests_for_size(bytes, seed, rich),
        (None, Some(n)) => n,
        (None, None) => return Err(format!("--requests or --size is required\n{USAGE}")),
    };
    let opts = r#gen::Options {
        out: out.clone(),
        requests,
        seed,
        rich,
    };
    let t = Instant::now();
    let s = r#gen::generate(&opts).map_err(|e| format!("{}: {e}", out.display()))?;
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "gen_logs: {} requests, {} lines, {:.1} MB in {} files under {} in {:.2} s ({:.0} MB/s)",
        s.requests,
        s.lines,
        s.bytes as f64 / 1e6,
        s.files.len(),
        out.join("logs").display(),
        secs,
        s.bytes as f64 / 1e6 / secs.max(1e-9),
    );
    Ok(())
}
