//! The `hopscope` binary: parses the command line, runs the library, and
//! turns the outcome into an exit code (SPEC §6). A broken pipe exits 0.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use hopscope::cli::{Cli, Command, normalize_args};

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
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    let result = match cli.command {
        Command::Report(args) => args.input.to_config().and_then(|cfg| {
            hopscope::app::run_report(&cfg, &args.report_options(), &mut out, &mut err)
        }),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = e.exit_code();
            if code != 0 {
                let _ = writeln!(err, "hopscope: {e}");
            }
            ExitCode::from(code)
        }
    }
}
