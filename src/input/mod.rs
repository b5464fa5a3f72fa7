//! Input stage: which files to read ([`discover()`]), their bytes ([`open`]:
//! a memory map or a heap buffer, decompressing `.gz`/`.zst` as a stream),
//! and newline-aligned chunks of those bytes ([`chunk_ranges`]) — SPEC §1
//! "Files".
//!
//! This module owns the mmap *policy* ([`MmapChoice`], the fallback to read);
//! the mechanism, the crate's only `unsafe`, is in `mmap.rs`. Errors are
//! returned, never printed: the caller names the path and counts the file as
//! unreadable without stopping the run (STYLE habit 1).

pub mod chunk;
pub mod discover;
mod mmap;

pub use chunk::{DEFAULT_CHUNK, chunk_ranges};
pub use discover::{
    Compression, Discovery, FileError, InputFile, STDIN_DISPLAY, ServiceFrom, discover, stem,
};

use std::fs::File;
use std::io::{self, Read};
use std::ops::Deref;

/// How many leading bytes (of decompressed data) are checked for a NUL byte
/// to call a file binary (SPEC §1: "first 8 KiB").
pub const BINARY_SNIFF_LEN: usize = 8 << 10;

/// Bytes of one input: a memory map or a heap buffer.
///
/// Keep every `Source` alive until the report is built: parsed records borrow
/// from it.
#[derive(Debug)]
pub enum Source {
    /// A read-only map of a plain file (see `mmap.rs` for the truncation risk).
    Mmap(memmap2::Mmap),
    /// Bytes read into memory: stdin, fifos, decompressed data, empty files,
    /// `--no-mmap`, or a failed mapping.
    Heap(Vec<u8>),
}

impl Deref for Source {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Source::Mmap(m) => m,
            Source::Heap(v) => v,
        }
    }
}

impl Source {
    /// Releases the resident pages of a parsed byte range of a mapped file,
    /// so memory follows the records kept rather than the input's size. A
    /// heap buffer is left as it is.
    pub fn release(&self, range: std::ops::Range<usize>) {
        if let Source::Mmap(m) = self {
            mmap::release(m, range);
        }
    }
}

/// How long a file must have gone unmodified before `Auto` maps it.
pub const QUIET_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// True when the file changed within [`QUIET_FOR`] (or its time is unknown
/// or in the future): it may still be written or truncated.
fn recently_modified(f: &File) -> bool {
    let Ok(modified) = f.metadata().and_then(|m| m.modified()) else {
        return true;
    };
    match std::time::SystemTime::now().duration_since(modified) {
        Ok(age) => age < QUIET_FOR,
        Err(_) => true,
    }
}

/// When to memory-map plain files (`--mmap` / `--no-mmap`).
///
/// A mapped file that another process truncates (logrotate's
/// `copytruncate`, an editor saving in place) kills the reader with SIGBUS
/// when it touches the lost pages. So the default, `Auto`, maps only files
/// that have been quiet for [`QUIET_FOR`] — a file still being written,
/// which is the one logrotate truncates, is read into memory instead.
/// `Always` maps every regular non-empty uncompressed file (faster on a live
/// log, with that risk); `Never` reads every file. Stdin, fifos, empty and
/// compressed files are always read, and a failed mapping falls back to
/// reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MmapChoice {
    /// Map where possible (the default).
    #[default]
    Auto,
    /// Map where possible, as asked by `--mmap`.
    Always,
    /// Never map; read every file into memory (`--no-mmap`).
    Never,
}

/// One opened input, ready to be chunked and parsed.
#[derive(Debug)]
pub struct Opened {
    /// The file's (decompressed) bytes.
    pub source: Source,
    /// Bytes taken from disk or the pipe: the compressed size for compressed
    /// files, for the `input.bytes` counters.
    pub bytes_read: u64,
    /// The first 8 KiB (of decompressed data) hold a NUL byte; SPEC §1 skips
    /// such files and counts them in `input.binary_files`.
    pub binary: bool,
}

/// Opens one file and returns its bytes.
///
/// Standard input (`"-"`) is read fully. `.gz` and `.zst` files are
/// decompressed as a stream (concatenated gzip members and zstd frames are
/// all read) into a `Vec`. Plain regular non-empty files are memory-mapped
/// unless `mmap` is [`MmapChoice::Never`], falling back to reading on any
/// mapping failure; empty files give an empty heap buffer; fifos and other
/// non-regular files are read to their end.
///
/// Errors are plain [`io::Error`]s: the caller names the path (see
/// [`io_message`] for the text).
pub fn open(file: &InputFile, mmap: MmapChoice) -> io::Result<Opened> {
    let (source, bytes_read) = if file.is_stdin() {
        let stdin = io::stdin();
        let mut lock = stdin.lock();
        read_source(&mut lock, file.compression, 0)?
    } else {
        let mut f = File::open(&file.path)?;
        match (file.compression, mmap) {
            (Compression::None, MmapChoice::Auto) if recently_modified(&f) => {
                let hint = size_hint(&f);
                read_source(&mut f, Compression::None, hint)?
            }
            (Compression::None, MmapChoice::Auto | MmapChoice::Always) => {
                // Any mapping failure (including a failed fstat) falls back to
                // reading, which reports the real error if there is one.
                match mmap::map(&f) {
                    Ok(Some(m)) => {
                        let len = m.len() as u64;
                        (Source::Mmap(m), len)
                    }
                    Ok(None) | Err(_) => {
                        let hint = size_hint(&f);
                        read_source(&mut f, Compression::None, hint)?
                    }
                }
            }
            (compression, _) => {
                let hint = size_hint(&f);
                read_source(&mut f, compression, hint)?
            }
        }
    };
    let head = source.get(..BINARY_SNIFF_LEN).unwrap_or(&source);
    let binary = memchr::memchr(0, head).is_some();
    Ok(Opened {
        source,
        bytes_read,
        binary,
    })
}

/// The text of an I/O error as shown to users, without Rust's
/// ` (os error N)` suffix: `"No such file or directory"`.
pub fn io_message(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => text.get(..i).unwrap_or(&text).to_owned(),
        _ => text,
    }
}

/// The file's length, used only to size the read buffer (0 when unknown).
fn size_hint(f: &File) -> usize {
    f.metadata()
        .ok()
        .filter(|m| m.is_file())
        .and_then(|m| usize::try_from(m.len()).ok())
        .unwrap_or(0)
}

/// Upper bound on the buffer reserved up front for decompressed data (the
/// compressed size × 4 is only a guess; a wrong guess must not allocate GBs).
const MAX_RESERVE: usize = 256 << 20;

/// Reads `reader` to its end, decompressing as asked; returns the bytes and
/// how many raw bytes were taken from `reader`.
fn read_source(
    reader: &mut dyn Read,
    compression: Compression,
    hint: usize,
) -> io::Result<(Source, u64)> {
    let mut counting = Counting {
        inner: reader,
        count: 0,
    };
    let mut out = Vec::new();
    match compression {
        Compression::None => {
            out.reserve(hint);
            counting.read_to_end(&mut out)?;
        }
        Compression::Gzip => {
            out.reserve(hint.saturating_mul(4).min(MAX_RESERVE));
            flate2::read::MultiGzDecoder::new(&mut counting).read_to_end(&mut out)?;
        }
        Compression::Zstd => {
            out.reserve(hint.saturating_mul(4).min(MAX_RESERVE));
            zstd::stream::read::Decoder::new(&mut counting)?.read_to_end(&mut out)?;
        }
    }
    Ok((Source::Heap(out), counting.count))
}

/// A reader that counts the bytes passed through it.
struct Counting<'a> {
    inner: &'a mut dyn Read,
    count: u64,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::{Path, PathBuf};

    fn input(path: &Path) -> InputFile {
        let compression = Compression::from_path(path);
        InputFile {
            id: 0,
            path: path.to_path_buf(),
            display: path.display().to_string(),
            service: "t".into(),
            compression,
        }
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    const ALL: [MmapChoice; 3] = [MmapChoice::Auto, MmapChoice::Always, MmapChoice::Never];

    #[test]
    fn plain_file_is_mapped_unless_never() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        std::fs::write(&p, b"one\ntwo\n").unwrap();
        // Just written: Auto reads it, as it may still be written or truncated.
        let o = open(&input(&p), MmapChoice::Auto).unwrap();
        assert!(matches!(o.source, Source::Heap(_)));
        // Quiet for an hour: Auto maps it too.
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        for choice in ALL {
            let o = open(&input(&p), choice).unwrap();
            assert_eq!(&*o.source, b"one\ntwo\n");
            assert_eq!(o.bytes_read, 8);
            assert!(!o.binary);
            let mapped = matches!(o.source, Source::Mmap(_));
            assert_eq!(mapped, choice != MmapChoice::Never, "{choice:?}");
        }
    }

    #[test]
    fn empty_file_is_an_empty_heap_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty.log");
        std::fs::write(&p, b"").unwrap();
        for choice in ALL {
            let o = open(&input(&p), choice).unwrap();
            assert!(matches!(&o.source, Source::Heap(v) if v.is_empty()));
            assert_eq!(o.bytes_read, 0);
            assert!(!o.binary);
        }
    }

    #[test]
    fn gzip_multi_member_is_decompressed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log.gz");
        let mut raw = gz(b"first\n");
        raw.extend(gz(b"second\n"));
        std::fs::write(&p, &raw).unwrap();
        for choice in ALL {
            let o = open(&input(&p), choice).unwrap();
            assert_eq!(&*o.source, b"first\nsecond\n");
            assert_eq!(o.bytes_read, raw.len() as u64);
            assert!(matches!(o.source, Source::Heap(_)));
        }
    }

    #[test]
    fn zstd_multi_frame_is_decompressed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log.zst");
        let mut raw = zstd::encode_all(&b"alpha\n"[..], 3).unwrap();
        raw.extend(zstd::encode_all(&b"beta\n"[..], 3).unwrap());
        std::fs::write(&p, &raw).unwrap();
        let o = open(&input(&p), MmapChoice::Auto).unwrap();
        assert_eq!(&*o.source, b"alpha\nbeta\n");
        assert_eq!(o.bytes_read, raw.len() as u64);
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.gz");
        std::fs::write(&p, b"not gzip at all").unwrap();
        assert!(open(&input(&p), MmapChoice::Auto).is_err());
    }

    #[test]
    fn binary_detection_looks_at_first_8_kib_only() {
        let dir = tempfile::tempdir().unwrap();
        let early = dir.path().join("early.log");
        let mut data = vec![b'a'; BINARY_SNIFF_LEN - 1];
        data.push(0);
        std::fs::write(&early, &data).unwrap();
        assert!(open(&input(&early), MmapChoice::Auto).unwrap().binary);
        assert!(open(&input(&early), MmapChoice::Never).unwrap().binary);

        let late = dir.path().join("late.log");
        let mut data = vec![b'a'; BINARY_SNIFF_LEN];
        data.push(0);
        std::fs::write(&late, &data).unwrap();
        assert!(!open(&input(&late), MmapChoice::Auto).unwrap().binary);

        // decompressed bytes are what is checked
        let zipped = dir.path().join("bin.gz");
        std::fs::write(&zipped, gz(b"x\0y\n")).unwrap();
        assert!(open(&input(&zipped), MmapChoice::Auto).unwrap().binary);
    }

    #[test]
    fn missing_file_is_an_io_error_with_a_clean_message() {
        let p = PathBuf::from("/nonexistent/hopscope/x.log");
        let err = open(&input(&p), MmapChoice::Auto).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(io_message(&err), "No such file or directory");
    }

    #[test]
    fn fifo_like_non_regular_file_is_read() {
        // /dev/null is a character device: not mapped, read to its (empty) end.
        let o = open(&input(Path::new("/dev/null")), MmapChoice::Always).unwrap();
        assert!(matches!(&o.source, Source::Heap(v) if v.is_empty()));
    }

    #[test]
    fn io_message_keeps_custom_text() {
        let e = io::Error::new(io::ErrorKind::InvalidData, "corrupt deflate stream");
        assert_eq!(io_message(&e), "corrupt deflate stream");
    }
}
