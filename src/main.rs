//! The `hopscope` binary: parses the command line, runs the library, and
//! turns the outcome into an exit code (SPEC §6). A broken pipe exits 0.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use hopscope::cli::{Cli, Command, normalize_args};
use hopscope::error::Error;

/// mimalloc: `traces` builds every request's output from many short-lived
/// allocations on every thread, and took ~25 % longer with the system
/// allocator. The report reuses its buffers and runs as fast with either
/// (the system allocator held ~10 % less memory).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn run(command: Command, out: &mut dyn Write, err: &mut dyn Write) -> Result<u8, Error> {
    match command {
        Command::Report(args) => {
            let cfg = args.input.to_config()?;
            hopscope::app::run_report(&cfg, &args.report_options(), out, err)
        }
        Command::Traces(args) => {
            let cfg = args.input.to_config()?;
            let filter = args.filter()?;
            hopscope::app::run_traces(&cfg, &filter, out, err)
        }
        Command::Show(args) => {
            let cfg = args.input.to_config()?;
            hopscope::app::run_show(&cfg, &args.request_id, args.width, out, err)
        }
        Command::Files(args) => {
            let cfg = args.input.to_config()?;
            let json = args.output == hopscope::cli::FilesOutput::Json;
            hopscope::app::run_files(&cfg, json, out, err)
        }
        Command::Formats => {
            hopscope::report::files::write_formats(out)?;
            out.flush()?;
            Ok(0)
        }
        Command::Check(args) => {
            let cfg = args.input.to_config()?;
            let opts = args.check_options()?;
            let baseline = match &args.baseline {
                None => None,
                Some(p) => {
                    Some(hopscope::check::load_report(p).map_err(|e| Error::Usage(e.to_string()))?)
                }
            };
            hopscope::app::run_check(&cfg, &opts, baseline.as_ref(), args.output, out, err)
        }
    }
}

fn main() -> ExitCode {
    let args = normalize_args(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 << 10, stdout.lock());
    // Not locked for the whole run: the progress bar writes to stderr too.
    let mut err = std::io::stderr();

    match run(cli.command, &mut out, &mut err) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = e.exit_code();
            if code != 0 {
                // Continuation lines (a caret under a budget's fault) are
                // indented past the prefix so they stay aligned.
                const PREFIX: &str = "hopscope: ";
                let text = e.to_string();
                for (i, line) in text.lines().enumerate() {
                    let lead = if i == 0 {
                        PREFIX.to_string()
                    } else {
                        " ".repeat(PREFIX.len())
                    };
                    let _ = writeln!(err, "{lead}{line}");
                }
            }

            ExitCode::from(code)
        }
    }
}
