//! Input stage, chunking: cuts one file's bytes into newline-aligned ranges so
//! that a large file is parsed in parallel (SPEC §1 "Files", STYLE habit 7).
//!
//! Owns only the cutting rule; the chunk size is a setting passed in, so tests
//! can force tiny chunks that put a boundary in every line.

use std::ops::Range;

/// Default chunk size: 8 MiB. Big enough that per-chunk overhead vanishes,
/// small enough that one large file keeps every core busy.
pub const DEFAULT_CHUNK: usize = 8 << 20;

/// Splits `data` into byte ranges of about `target` bytes each.
///
/// Every range ends just after a `'\n'` or at the end of `data`, so a line
/// (including a `"\r\n"` line, or a last line without a newline) is never cut.
/// A range is longer than `target` only when one line is. The ranges are
/// contiguous, cover all of `data` and none is empty; empty data gives no
/// ranges. A `target` of 0 is treated as 1 (one line per range).
pub fn chunk_ranges(data: &[u8], target: usize) -> Vec<Range<usize>> {
    let target = target.max(1);
    let len = data.len();
    let mut ranges = Vec::with_capacity(len / target + 1);
    let mut start = 0;
    while start < len {
        if start.saturating_add(target) >= len {
            ranges.push(start..len);
            break;
        }
        let rest = data.get(start..).unwrap_or_default();
        let end = cut_after_newline(rest, target, 0).map_or(len, |e| start + e);
        ranges.push(start..end);
        start = end;
    }
    ranges
}

/// Where a chunk of `data` (at least `target` bytes long) ends: just after
/// the last newline of its first `target` bytes, else just after the first
/// newline past them; `None` when no newline is found. Bytes before
/// `searched` were searched already without a cut (a stream that grows
/// while one long line is read searches only its new bytes).
pub(crate) fn cut_after_newline(data: &[u8], target: usize, searched: usize) -> Option<usize> {
    let from = searched.min(target);
    let window = data.get(from..target).unwrap_or_default();
    if let Some(i) = memchr::memrchr(b'\n', window) {
        return Some(from + i + 1);
    }
    let from = searched.max(target);
    let rest = data.get(from..).unwrap_or_default();
    memchr::memchr(b'\n', rest).map(|i| from + i + 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pieces(data: &[u8], target: usize) -> Vec<&[u8]> {
        chunk_ranges(data, target)
            .into_iter()
            .map(|r| &data[r])
            .collect()
    }

    #[test]
    fn empty_data_has_no_ranges() {
        assert!(chunk_ranges(b"", 10).is_empty());
        assert!(chunk_ranges(b"", 0).is_empty());
    }

    #[test]
    fn target_one_gives_one_line_per_range() {
        let data = b"ab\ncd\r\n\nlast";
        assert_eq!(
            pieces(data, 1),
            vec![&b"ab\n"[..], b"cd\r\n", b"\n", b"last"]
        );
        // target 0 behaves as 1
        assert_eq!(pieces(data, 0), pieces(data, 1));
    }

    #[test]
    fn cuts_at_last_newline_inside_window() {
        // window of 7 bytes "aa\nbb\nc" → cut after the second '\n' (6 bytes)
        let data = b"aa\nbb\ncc\ndd\n";
        assert_eq!(chunk_ranges(data, 7), vec![0..6, 6..12]);
    }

    #[test]
    fn long_line_extends_past_target() {
        let data = b"aaaaaaaaaa\nb\n";
        assert_eq!(chunk_ranges(data, 3), vec![0..11, 11..13]);
        let no_newline = b"aaaaaaaaaa";
        assert_eq!(chunk_ranges(no_newline, 3), vec![0..10]);
    }

    #[test]
    fn big_target_gives_one_range() {
        let data = b"a\nb\nc";
        assert_eq!(chunk_ranges(data, DEFAULT_CHUNK), vec![0..5]);
        assert_eq!(chunk_ranges(data, usize::MAX), vec![0..5]);
    }

    #[test]
    fn newline_exactly_at_window_end_is_used() {
        // window "ab\n" is exactly 3 bytes: cut right there.
        assert_eq!(chunk_ranges(b"ab\ncd\n", 3), vec![0..3, 3..6]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn ranges_cover_data_and_end_at_newlines(
            lines in proptest::collection::vec(
                ("[a-z{}=\" ]{0,12}", prop_oneof![Just("\n"), Just("\r\n")]),
                0..30,
            ),
            tail in "[a-z]{0,5}",
            target in 0usize..40,
        ) {
            let mut data = Vec::new();
            for (text, end) in &lines {
                data.extend_from_slice(text.as_bytes());
                data.extend_from_slice(end.as_bytes());
            }
            data.extend_from_slice(tail.as_bytes());
            let ranges = chunk_ranges(&data, target);
            let mut joined = Vec::new();
            let mut expected_start = 0;
            for (i, r) in ranges.iter().enumerate() {
                prop_assert_eq!(r.start, expected_start);
                prop_assert!(r.end > r.start);
                let piece = &data[r.clone()];
                if i + 1 < ranges.len() {
                    prop_assert_eq!(piece.last(), Some(&b'\n'));
                }
                // A range holds more than target bytes only when it is one line.
                if piece.len() > target.max(1) {
                    let body = &piece[..piece.len() - 1];
                    prop_assert!(!body.contains(&b'\n'));
                }
                joined.extend_from_slice(piece);
                expected_start = r.end;
            }
            prop_assert_eq!(joined, data);
        }

        #[test]
        fn never_panics_on_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..200), target in 0usize..64) {
            let ranges = chunk_ranges(&data, target);
            let total: usize = ranges.iter().map(|r| r.len()).sum();
            prop_assert_eq!(total, data.len());
        }
    }
}
