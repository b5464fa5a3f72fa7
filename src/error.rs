//! Fatal errors and their exit codes (SPEC §6). Per-file and per-line
//! problems are not errors: they are counted and reported, and the run goes
//! on.

use thiserror::Error;

/// What stops a run.
#[derive(Debug, Error)]
pub enum Error {
    /// Bad flags or values (exit 2).
    #[error("{0}")]
    Usage(String),
    /// No input file was found (exit 2).
    #[error("no input files{0}")]
    NoInput(String),
    /// `--strict` met an unusable line (exit 2).
    #[error("{path}:{line}: {reason}")]
    Strict {
        /// The file.
        path: String,
        /// 1-based line number.
        line: u64,
        /// The skip reason (SPEC §1).
        reason: String,
    },
    /// Writing the output failed (exit 2, or 0 for a broken pipe).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
            _ => 2,
        }
    }
}
