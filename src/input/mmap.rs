//! Input stage, mmap mechanism: the crate's only `unsafe` code, one function
//! that memory-maps a plain file (STYLE habit 6). The *policy* (when to map,
//! [`MmapChoice`](super::MmapChoice), the fallback to reading) lives in
//! [`open`](super::open).

use memmap2::Mmap;
use std::fs::File;
use std::io;

/// Maps `file` read-only, or returns `Ok(None)` when it should be read
/// instead: empty files (mapping zero bytes fails on Linux) and anything that
/// is not a regular file (fifos, character devices, sockets).
///
/// An `Err` is a mapping failure; the caller falls back to reading.
pub(crate) fn map(file: &File) -> io::Result<Option<Mmap>> {
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() == 0 {
        return Ok(None);
    }
    // SAFETY: `Mmap::map` is unsafe because the mapped bytes are shared with
    // the file: if another process changes the file while the map is alive,
    // the `&[u8]` we hand out can change under us (Rust assumes it cannot),
    // and if the file is *truncated* (logrotate `copytruncate`, an editor
    // saving in place), touching a page past the new end raises SIGBUS and
    // kills the process. We map read-only (`PROT_READ`, `MAP_SHARED`), never
    // write through the map, and only ever read bytes; a concurrent append
    // past the mapped length is invisible and harmless. What remains is the
    // documented risk of truncation under us, which the `--mmap` help states
    // and `--no-mmap` avoids (a SIGBUS handler is left to a later task). The
    // map never outlives the `Source` that owns it, and `file` is open for
    // the duration of this call, so the descriptor is valid.
    #[allow(unsafe_code)]
    let map = unsafe { Mmap::map(file)? };
    Ok(Some(map))
}

/// Tells the kernel that the pages of `range` are no longer needed, so they
/// stop counting in the process's resident memory once parsed (STYLE habit
/// 5). Errors are ignored: releasing is only an optimisation.
pub(crate) fn release(map: &Mmap, range: std::ops::Range<usize>) {
    let len = range.end.saturating_sub(range.start);
    if len == 0 || range.end > map.len() {
        return;
    }
    // SAFETY: `MADV_DONTNEED` on a read-only *file-backed* shared mapping only
    // drops the resident pages; a later access faults them in again from the
    // page cache or the file with the same contents (it would zero-fill only
    // for anonymous or privately modified pages, which this map never has).
    // So no byte anyone reads can change because of this call, even if a
    // reference into the range is still alive. memmap2 aligns the start down
    // to a page boundary, which may drop a page shared with the previous
    // chunk: that page is simply faulted in again if still read.
    #[allow(unsafe_code)]
    let _ =
        unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, range.start, len) };
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn maps_a_regular_file() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"hello\nworld\n").unwrap();
        let file = File::open(f.path()).unwrap();
        let map = map(&file).unwrap().unwrap();
        assert_eq!(&map[..], b"hello\nworld\n");
    }

    #[test]
    fn released_pages_read_back_the_same() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let body: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
        f.write_all(&body).unwrap();
        let file = File::open(f.path()).unwrap();
        let map = map(&file).unwrap().unwrap();
        release(&map, 5000..300_000);
        release(&map, 0..usize::MAX); // out of range: ignored
        assert_eq!(&map[..], &body[..]);
    }

    #[test]
    fn empty_file_is_not_mapped() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let file = File::open(f.path()).unwrap();
        assert!(map(&file).unwrap().is_none());
    }

    #[test]
    fn non_regular_file_is_not_mapped() {
        let file = File::open("/dev/null").unwrap();
        assert!(map(&file).unwrap().is_none());
    }
}
