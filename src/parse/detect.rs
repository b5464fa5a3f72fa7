//! Parse stage: per-file format detection (SPEC §1 *Formats*).
//!
//! Decided once per file from its first [`SNIFF_LINES`] non-blank lines:
//! the format most of them parse as wins, ties going to `json`. A line that
//! is a JSON object never counts as logfmt, even when a string in it looks
//! like `key=value`.

use super::fields::{LineError, Schema};
use super::json::parse_json;
use super::logfmt::parse_logfmt;

/// How many non-blank lines at the start of a file decide its format.
pub const SNIFF_LINES: usize = 32;

/// A line format that can be detected (the `regex` format is only ever
/// chosen by `--pattern`/`--preset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineFormat {
    /// One JSON object per line.
    Json,
    /// `key=value` pairs.
    Logfmt,
}

/// Detects a file's format from its lines (in file order, without line
/// ends): the format that most of the first [`SNIFF_LINES`] non-blank lines
/// parse as, ties going to JSON. A line with an invalid UTF-8 value still
/// parses (the format fits; the line is skipped later as `invalid_utf8`).
/// `None` when none of those lines parses as either format, or there are no
/// non-blank lines: every line of the file is then `unknown_format`.
pub fn detect<'a>(lines: impl Iterator<Item = &'a [u8]>, schema: &Schema) -> Option<LineFormat> {
    let (mut json, mut logfmt) = (0usize, 0usize);
    for line in lines.filter(|l| !is_blank(l)).take(SNIFF_LINES) {
        if fits(&parse_json(line, schema)) {
            json += 1;
        } else if fits(&parse_logfmt(line, schema)) {
            logfmt += 1;
        }
    }
    match (json, logfmt) {
        (0, 0) => None,
        (j, l) if j >= l => Some(LineFormat::Json),
        _ => Some(LineFormat::Logfmt),
    }
}

fn fits<T>(r: &Result<T, LineError>) -> bool {
    !matches!(r, Err(LineError::Parse))
}

/// Whether a line is blank (empty or ASCII whitespace only, `\r`
/// included): blank lines are counted apart and never parsed.
pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn run(text: &str) -> Option<LineFormat> {
        detect(text.split('\n').map(str::as_bytes), &Schema::default())
    }

    #[test]
    fn majority_wins() {
        assert_eq!(run("a=1\nb=2\n{\"a\":1}"), Some(LineFormat::Logfmt));
        assert_eq!(
            run("{\"a\":1}\n{\"a\":2}\nb=2\nnot anything"),
            Some(LineFormat::Json)
        );
        assert_eq!(
            run("{\"a\":\"b=c\"}\n{\"a\":\"d=e\"}\nx=1"),
            Some(LineFormat::Json)
        );
        // A broken JSON line that looks like logfmt is not counted as logfmt.
        assert_eq!(
            run("{\"a\":\"b=c\"\n{\"a\":\"b=c\"\n{}"),
            Some(LineFormat::Json)
        );
    }

    #[test]
    fn ties_go_to_json() {
        assert_eq!(run("a=1\n{\"a\":1}"), Some(LineFormat::Json));
        assert_eq!(
            run("\n\n{\"a\":1}\n  \r\na=1\nplain"),
            Some(LineFormat::Json)
        );
    }

    #[test]
    fn unknown_when_nothing_fits() {
        assert_eq!(run("hello world\nanother line\n[1,2]"), None);
        assert_eq!(run(""), None);
        assert_eq!(run("\n \n\t\r\n"), None);
    }

    #[test]
    fn only_the_first_32_non_blank_lines_count() {
        let mut text = String::new();
        for _ in 0..20 {
            text.push('\n');
        }
        for _ in 0..32 {
            text.push_str("k=v\n");
        }
        for _ in 0..100 {
            text.push_str("{\"a\":1}\n");
        }
        assert_eq!(run(&text), Some(LineFormat::Logfmt));
        let text = format!("{}{}", "junk\n".repeat(32), "k=v\n");
        assert_eq!(run(&text), None);
    }

    #[test]
    fn invalid_utf8_values_still_fit() {
        let lines: [&[u8]; 2] = [b"{\"request_id\":\"\xff\"}", b"a=b"];
        assert_eq!(
            detect(lines.into_iter(), &Schema::default()),
            Some(LineFormat::Json)
        );
    }

    #[test]
    fn blank_lines() {
        assert!(is_blank(b""));
        assert!(is_blank(b" \t\r"));
        assert!(!is_blank(b" x "));
        assert!(!is_blank("\u{a0}".as_bytes()));
    }
}
