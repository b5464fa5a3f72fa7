//! Input stage: which files to read ([`discover()`]), their bytes ([`open`]:
//! a memory map, or a stream read and decompressed piece by piece while it
//! is parsed), and newline-aligned chunks of those bytes ([`chunk_ranges`],
//! [`Pieces`]) — SPEC §1 "Files".
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
pub use mmap::Mapped;

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// How many leading bytes (of decompressed data) are checked for a NUL byte
/// to call a file binary (SPEC §1: "first 8 KiB").
pub const BINARY_SNIFF_LEN: usize = 8 << 10;

/// Bytes of one input: a memory map, or a stream still to be read.
#[derive(Debug)]
pub enum Source {
    /// A read-only map of a plain file; one truncated while it is read
    /// reads zeros past its new end ([`Mapped::truncated`] says so).
    Mmap(Mapped),
    /// Everything that is not mapped — compressed files, files changed in
    /// the last 30 s, `--no-mmap`, stdin, fifos, a failed mapping — read
    /// (and decompressed) by [`Stream::pieces`] while it is parsed: memory
    /// holds a few pieces of it, never the whole input.
    Stream(Stream),
}

impl Source {
    /// All the bytes of a mapped file; `None` for a stream, which is read
    /// by [`Stream::pieces`].
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Source::Mmap(m) => Some(m.bytes()),
            Source::Stream(_) => None,
        }
    }

    /// The first bytes: all of a mapped file's, or a stream's first
    /// [`BINARY_SNIFF_LEN`] (enough to recognise a span export).
    pub fn head(&self) -> &[u8] {
        match self {
            Source::Mmap(m) => m.bytes(),
            Source::Stream(s) => &s.head,
        }
    }

    /// Releases the resident pages of a parsed byte range of a mapped file,
    /// so memory follows the records kept rather than the input's size.
    pub fn release(&self, range: std::ops::Range<usize>) {
        if let Source::Mmap(m) = self {
            mmap::release(m, range);
        }
    }
}

/// An input read (and decompressed) while it is parsed. Reading a whole
/// file into memory first made peak memory the size of the input (1.35 GB
/// for 1 GB of logs in 85 MB of `.gz`).
pub struct Stream {
    origin: Origin,
    /// The first (decompressed) bytes, at most [`BINARY_SNIFF_LEN`]: read
    /// when the input is opened, to tell binary files.
    head: Vec<u8>,
}

/// Where a [`Stream`]'s bytes come from.
enum Origin {
    /// A regular file reopened and read from its start, so that no
    /// descriptor is held for it between opening and parsing: a compressed
    /// archive, any file under `--no-mmap`, or a live file past the budget
    /// of [`MAX_HELD_FILES`].
    Path(PathBuf, Compression),
    /// A reader positioned just after the head, held from the moment the
    /// input was opened (a live file that may be rotated away, stdin, a
    /// fifo), and the count of raw bytes taken through it.
    Reader(
        std::sync::Mutex<Option<Box<dyn Read + Send>>>,
        Arc<AtomicU64>,
    ),
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let origin = match &self.origin {
            Origin::Path(p, c) => format!("{} ({c:?})", p.display()),
            Origin::Reader(..) => "an open reader".to_owned(),
        };
        f.debug_struct("Stream")
            .field("origin", &origin)
            .field("head_len", &self.head.len())
            .finish()
    }
}

impl Stream {
    /// Reads the input from its start, in pieces of about `target` bytes
    /// cut after a newline (as [`chunk_ranges`] cuts). An input held open
    /// can be read once.
    pub fn pieces(&self, target: usize) -> io::Result<Pieces> {
        let (decoder, raw): (Box<dyn Read + Send>, _) = match &self.origin {
            Origin::Path(path, compression) => {
                let raw = Arc::new(AtomicU64::new(0));
                let file = SharedCounting {
                    inner: File::open(path)?,
                    count: Arc::clone(&raw),
                };
                (decoder(io::BufReader::new(file), *compression)?, raw)
            }
            Origin::Reader(reader, raw) => {
                let rest = reader
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take()
                    .ok_or_else(|| io::Error::other("the input was already read"))?;
                let head = io::Cursor::new(self.head.clone());
                (Box::new(head.chain(rest)), Arc::clone(raw))
            }
        };
        Ok(Pieces {
            decoder,
            raw,
            target: target.max(1),
            carry: Vec::new(),
            spare: Recycler::default(),
            offset: 0,
            done: false,
            failed: None,
        })
    }

    /// Opens `raw` as a stream of `compression`'s format: reads its head
    /// and keeps the reader for [`Stream::pieces`].
    fn held<R: Read + Send + 'static>(raw: R, compression: Compression) -> io::Result<Stream> {
        let count = Arc::new(AtomicU64::new(0));
        let counted = SharedCounting {
            inner: raw,
            count: Arc::clone(&count),
        };
        let mut reader = decoder(io::BufReader::new(counted), compression)?;
        let head = read_head(&mut reader)?;
        Ok(Stream {
            origin: Origin::Reader(std::sync::Mutex::new(Some(reader)), count),
            head,
        })
    }

    /// A stream over the regular file `f` at `path`, reopened when it is
    /// read.
    fn reopened(f: File, path: &std::path::Path, compression: Compression) -> io::Result<Stream> {
        let head = read_head(&mut decoder(io::BufReader::new(f), compression)?)?;
        Ok(Stream {
            origin: Origin::Path(path.to_path_buf(), compression),
            head,
        })
    }
}

/// Regular files held open at once from opening to parsing, at most.
const MAX_HELD_FILES: usize = 256;

/// Regular files held open now (see [`HeldFile`]).
static HELD_FILES: AtomicUsize = AtomicUsize::new(0);

/// A regular file held open between opening and parsing, counted in
/// [`HELD_FILES`] until it is closed.
struct HeldFile(File);

impl HeldFile {
    /// Counts one more held file, if the budget allows.
    fn reserve() -> bool {
        HELD_FILES
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_HELD_FILES).then_some(n + 1)
            })
            .is_ok()
    }
}

impl Drop for HeldFile {
    fn drop(&mut self) {
        HELD_FILES.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Read for HeldFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

/// The first [`BINARY_SNIFF_LEN`] bytes of `reader` (fewer at its end).
fn read_head(reader: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    reader
        .take(BINARY_SNIFF_LEN as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// A reader of `compression`'s format over `raw`.
fn decoder<R: io::BufRead + Send + 'static>(
    raw: R,
    compression: Compression,
) -> io::Result<Box<dyn Read + Send>> {
    Ok(match compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(raw)?),
    })
}

/// The decompressed bytes of a [`Stream`], piece by piece.
pub struct Pieces {
    decoder: Box<dyn Read + Send>,
    /// Compressed bytes taken from the file so far.
    raw: Arc<AtomicU64>,
    target: usize,
    /// Bytes read past the end of the last piece (the start of the next).
    carry: Vec<u8>,
    /// Buffers of parsed pieces, given back to be filled again.
    spare: Recycler,
    /// Offset of the next piece in the decompressed data.
    offset: u64,
    done: bool,
    /// The error that ended the data, given after its last piece.
    failed: Option<io::Error>,
}

impl Pieces {
    /// The next piece and its offset in the decompressed data: it ends just
    /// after a `\n` or at the end of the data, is longer than the target
    /// only when one line is, and is never empty. `None` at the end.
    pub fn next_piece(&mut self) -> io::Result<Option<(u64, Vec<u8>)>> {
        if self.done {
            return match self.failed.take() {
                Some(e) => Err(e),
                None => Ok(None),
            };
        }
        let target = self.target;
        let mut buf = self.spare.take();
        buf.reserve(target.max(self.carry.len()) + (64 << 10));
        buf.extend_from_slice(&self.carry);
        self.carry.clear();
        // Cut as `chunk_ranges` cuts, searching only new bytes while one
        // line longer than the target is read.
        let mut searched = 0;
        let cut = loop {
            if buf.len() >= target {
                if let Some(end) = chunk::cut_after_newline(&buf, target, searched) {
                    break Some(end);
                }
                searched = buf.len();
            }
            let want = target.saturating_sub(buf.len()).max(64 << 10) as u64;
            match (&mut self.decoder).take(want).read_to_end(&mut buf) {
                Ok(0) => {
                    self.done = true;
                    break None;
                }
                Ok(_) => {}
                // The bytes decoded before the damage are still good: they
                // are the last piece, and the error comes after them.
                Err(e) if !buf.is_empty() => {
                    self.done = true;
                    self.failed = Some(e);
                    break None;
                }
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        };
        if let Some(end) = cut {
            self.carry
                .extend_from_slice(buf.get(end..).unwrap_or_default());
            buf.truncate(end);
        }
        if buf.is_empty() {
            return Ok(None);
        }
        let at = self.offset;
        self.offset += buf.len() as u64;
        Ok(Some((at, buf)))
    }

    /// A handle that takes back the buffers of parsed pieces, so that the
    /// next pieces reuse their pages instead of faulting in fresh ones.
    pub fn recycler(&self) -> Recycler {
        self.spare.clone()
    }

    /// Decompressed bytes given out in pieces so far.
    pub fn decompressed_bytes(&self) -> u64 {
        self.offset
    }

    /// Compressed bytes taken from the file so far.
    pub fn raw_bytes(&self) -> u64 {
        self.raw.load(Ordering::Relaxed)
    }
}

/// Buffers of parsed pieces kept for the next pieces of the same stream
/// (a few: as many as can be in flight).
#[derive(Clone, Default)]
pub struct Recycler(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

/// Buffers a [`Recycler`] keeps at most.
const SPARE_BUFFERS: usize = 4;

impl Recycler {
    /// Keeps `buf` for a later piece (or frees it when enough are kept).
    pub fn give(&self, mut buf: Vec<u8>) {
        let mut spare = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if spare.len() < SPARE_BUFFERS {
            buf.clear();
            spare.push(buf);
        }
    }

    fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }
}

/// A reader that counts the bytes passed through it where another owner
/// can see the count (the decoder owns the reader).
struct SharedCounting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for SharedCounting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
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
/// `copytruncate`, an editor saving in place) loses the pages not yet read
/// (they read as zeros, see `mmap.rs`), where a stream keeps what it read.
/// So the default, `Auto`, maps only files that have been quiet for
/// [`QUIET_FOR`] — a file still being written, which is the one logrotate
/// truncates, is streamed instead. `Always` maps every regular non-empty
/// uncompressed file (faster on a live log, with that risk); `Never` reads
/// every file. Stdin, fifos, empty and compressed files are always read,
/// and a failed mapping falls back to reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MmapChoice {
    /// Map where possible (the default).
    #[default]
    Auto,
    /// Map where possible, as asked by `--mmap`.
    Always,
    /// Never map; stream every file (`--no-mmap`).
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

/// Opens one file and returns its bytes, or the stream to read them from.
///
/// Plain regular non-empty files are memory-mapped (under
/// [`MmapChoice::Auto`], only once quiet for [`QUIET_FOR`]). Everything
/// else is a [`Source::Stream`] whose first [`BINARY_SNIFF_LEN`]
/// (decompressed) bytes are read now — a corrupt compressed header is an
/// error now — and the rest while it is parsed: `.gz` and `.zst` files
/// (concatenated gzip members and zstd frames are all read), files under
/// `--no-mmap`, recently changed files, empty files (and `/proc` files,
/// which claim to be empty), a failed mapping, stdin (`"-"`) and fifos.
/// Files that are reopened when read (compressed and `--no-mmap` regular
/// files, live files past the budget of 256 held open) hold no descriptor
/// until then; the others keep theirs.
///
/// Errors are plain [`io::Error`]s: the caller names the path (see
/// [`io_message`] for the text).
pub fn open(file: &InputFile, mmap: MmapChoice) -> io::Result<Opened> {
    let source = if file.is_stdin() {
        Source::Stream(Stream::held(io::stdin(), file.compression)?)
    } else {
        let f = File::open(&file.path)?;
        let meta = f.metadata().ok();
        let regular = meta.as_ref().is_some_and(std::fs::Metadata::is_file);
        let plain = file.compression == Compression::None;
        let map = plain
            && match mmap {
                MmapChoice::Always => true,
                MmapChoice::Auto => !recently_modified(&f),
                MmapChoice::Never => false,
            };
        // Any mapping failure (including a failed fstat) falls back to
        // reading, which reports the real error if there is one.
        let mapped = if map {
            mmap::map(&f).ok().flatten()
        } else {
            None
        };
        match mapped {
            Some(m) => Source::Mmap(m),
            None if regular && (!plain || mmap == MmapChoice::Never) => {
                Source::Stream(Stream::reopened(f, &file.path, file.compression)?)
            }
            // A live file is held open (a rotation must not swap it),
            // but only so many: past that, it is reopened like the others,
            // so that a freshly copied tree of thousands of files does not
            // run out of descriptors.
            None if regular && !HeldFile::reserve() => {
                Source::Stream(Stream::reopened(f, &file.path, file.compression)?)
            }
            None if regular => Source::Stream(Stream::held(HeldFile(f), file.compression)?),
            None => Source::Stream(Stream::held(f, file.compression)?),
        }
    };
    let bytes_read = match &source {
        Source::Mmap(m) => m.bytes().len() as u64,
        // A stream's bytes are counted as it is read.
        Source::Stream(_) => 0,
    };
    let head = source.head();
    let binary = memchr::memchr(0, head.get(..BINARY_SNIFF_LEN).unwrap_or(head)).is_some();
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

    /// A stream's pieces, with their offsets, and the raw bytes read.
    fn all_pieces(source: &Source, target: usize) -> (Vec<(u64, Vec<u8>)>, u64) {
        let Source::Stream(stream) = source else {
            panic!("not a stream: {source:?}");
        };
        let mut pieces = stream.pieces(target).unwrap();
        let mut out = Vec::new();
        while let Some(p) = pieces.next_piece().unwrap() {
            out.push(p);
        }
        (out, pieces.raw_bytes())
    }

    /// The whole data of a source, however it is read.
    fn all_bytes(source: &Source) -> Vec<u8> {
        match source.bytes() {
            Some(b) => b.to_vec(),
            None => all_pieces(source, 1 << 20)
                .0
                .into_iter()
                .flat_map(|(_, p)| p)
                .collect(),
        }
    }

    /// Held by the tests that hold live files open: the budget of held
    /// files is global, and one test filling it would make another's live
    /// file reopened rather than held.
    static HELD_BUDGET: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn held_budget() -> std::sync::MutexGuard<'static, ()> {
        HELD_BUDGET
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[test]
    fn plain_file_is_mapped_unless_never() {
        let _budget = held_budget();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        std::fs::write(&p, b"one\ntwo\n").unwrap();
        // Just written: Auto streams it (held open), as it may still be
        // written, truncated or rotated.
        let o = open(&input(&p), MmapChoice::Auto).unwrap();
        assert!(matches!(&o.source, Source::Stream(s) if matches!(s.origin, Origin::Reader(..))));
        assert_eq!(
            all_pieces(&o.source, 1 << 20),
            (vec![(0, b"one\ntwo\n".to_vec())], 8)
        );
        // Read once: the held reader is gone.
        let Source::Stream(s) = &o.source else {
            unreachable!()
        };
        assert!(s.pieces(1).is_err());
        // Quiet for an hour: Auto maps it too; Never streams it, reopened.
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        for choice in ALL {
            let o = open(&input(&p), choice).unwrap();
            assert_eq!(all_bytes(&o.source), b"one\ntwo\n");
            assert!(!o.binary);
            let mapped = matches!(o.source, Source::Mmap(_));
            assert_eq!(mapped, choice != MmapChoice::Never, "{choice:?}");
            assert_eq!(o.bytes_read, if mapped { 8 } else { 0 }, "{choice:?}");
        }
        let o = open(&input(&p), MmapChoice::Never).unwrap();
        assert!(matches!(&o.source, Source::Stream(s) if matches!(s.origin, Origin::Path(..))));
        // A reopened file can be read again.
        assert_eq!(all_bytes(&o.source), all_bytes(&o.source));
    }

    /// Thousands of freshly written files (a copied log tree) do not hold
    /// thousands of descriptors: past [`MAX_HELD_FILES`] they are reopened
    /// when read, and every one reads back whole.
    #[test]
    fn live_files_held_open_only_up_to_a_budget() {
        let _budget = held_budget();
        let dir = tempfile::tempdir().unwrap();
        let n = MAX_HELD_FILES + 40;
        let opened: Vec<Opened> = (0..n)
            .map(|i| {
                let p = dir.path().join(format!("{i}.log"));
                std::fs::write(&p, format!("line {i}\n")).unwrap();
                open(&input(&p), MmapChoice::Auto).unwrap()
            })
            .collect();
        let held = opened
            .iter()
            .filter(|o| matches!(&o.source, Source::Stream(s) if matches!(s.origin, Origin::Reader(..))))
            .count();
        assert!(held <= MAX_HELD_FILES, "{held} files held open");
        assert!(held >= 1);
        for (i, o) in opened.iter().enumerate() {
            assert_eq!(all_bytes(&o.source), format!("line {i}\n").into_bytes());
        }
    }

    #[test]
    fn empty_file_is_an_empty_stream() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty.log");
        std::fs::write(&p, b"").unwrap();
        for choice in ALL {
            let o = open(&input(&p), choice).unwrap();
            assert!(o.source.head().is_empty());
            assert_eq!(all_pieces(&o.source, 1 << 20), (vec![], 0));
            assert_eq!(o.bytes_read, 0);
            assert!(!o.binary);
        }
    }

    #[test]
    fn gzip_multi_member_is_streamed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log.gz");
        let mut raw = gz(b"first\n");
        raw.extend(gz(b"second\n"));
        std::fs::write(&p, &raw).unwrap();
        for choice in ALL {
            let o = open(&input(&p), choice).unwrap();
            // Only the head is decompressed when the file is opened.
            assert_eq!(o.source.head(), b"first\nsecond\n");
            assert_eq!(o.bytes_read, 0);
            let (pieces, read) = all_pieces(&o.source, 1 << 20);
            assert_eq!(pieces, vec![(0, b"first\nsecond\n".to_vec())]);
            assert_eq!(read, raw.len() as u64);
        }
    }

    #[test]
    fn zstd_multi_frame_is_streamed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log.zst");
        let mut raw = zstd::encode_all(&b"alpha\n"[..], 3).unwrap();
        raw.extend(zstd::encode_all(&b"beta\n"[..], 3).unwrap());
        std::fs::write(&p, &raw).unwrap();
        let o = open(&input(&p), MmapChoice::Auto).unwrap();
        let (pieces, read) = all_pieces(&o.source, 1 << 20);
        assert_eq!(pieces, vec![(0, b"alpha\nbeta\n".to_vec())]);
        assert_eq!(read, raw.len() as u64);
    }

    /// Pieces are cut as `chunk_ranges` cuts: after the window's last
    /// newline, or after the first newline past a longer line; together
    /// they are the data, each at its offset.
    #[test]
    fn stream_pieces_end_after_a_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log.gz");
        let data = b"aa\nbbbbbbbbbb\ncc\r\nd\n\nlast";
        std::fs::write(&p, gz(data)).unwrap();
        let o = open(&input(&p), MmapChoice::Auto).unwrap();
        let (pieces, _) = all_pieces(&o.source, 4);
        let texts: Vec<&[u8]> = pieces.iter().map(|(_, t)| &t[..]).collect();
        assert_eq!(
            texts,
            vec![&b"aa\n"[..], b"bbbbbbbbbb\n", b"cc\r\n", b"d\n\n", b"last"]
        );
        let offsets: Vec<u64> = pieces.iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, vec![0, 3, 14, 18, 21]);
        // Buffers given back are reused, with nothing of their old bytes.
        let Source::Stream(stream) = &o.source else {
            unreachable!()
        };
        let mut again = stream.pieces(4).unwrap();
        let recycler = again.recycler();
        let mut reused = Vec::new();
        while let Some((at, t)) = again.next_piece().unwrap() {
            reused.push((at, t.clone()));
            recycler.give(t);
        }
        assert_eq!(reused, pieces);
        // Big pieces: one.
        assert_eq!(all_pieces(&o.source, 1 << 20).0, vec![(0, data.to_vec())]);
        // Every target: the pieces put back together are the data, and each
        // but the last ends in a newline.
        for target in 1..=data.len() + 1 {
            let (pieces, _) = all_pieces(&o.source, target);
            let joined: Vec<u8> = pieces.iter().flat_map(|(_, t)| t.clone()).collect();
            assert_eq!(joined, data, "target {target}");
            for (_, t) in &pieces[..pieces.len() - 1] {
                assert_eq!(t.last(), Some(&b'\n'), "target {target}");
            }
        }
    }

    /// A stream cut short by a corrupt tail gives its good pieces, then the
    /// error.
    #[test]
    fn corrupt_gzip_tail_is_an_error_after_the_good_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log.gz");
        let good: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let mut raw = gz(&good);
        raw.extend(b"\x1f\x8b\x08\x00garbage that is not deflate");
        std::fs::write(&p, &raw).unwrap();
        let o = open(&input(&p), MmapChoice::Auto).unwrap();
        let Source::Stream(stream) = &o.source else {
            panic!("not a stream")
        };
        let mut pieces = stream.pieces(16 << 10).unwrap();
        let mut joined = Vec::new();
        let err = loop {
            match pieces.next_piece() {
                Ok(Some((at, t))) => {
                    assert_eq!(at, joined.len() as u64);
                    joined.extend(t);
                }
                Ok(None) => panic!("the corrupt tail went unnoticed"),
                Err(e) => break e,
            }
        };
        assert!(good.starts_with(&joined) && joined.len() >= good.len() - (32 << 10));
        assert!(!io_message(&err).is_empty());
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
        // /dev/null is a character device: not mapped, streamed to its
        // (empty) end.
        let o = open(&input(Path::new("/dev/null")), MmapChoice::Always).unwrap();
        assert!(o.source.head().is_empty());
        assert_eq!(all_pieces(&o.source, 1 << 20), (vec![], 0));
    }

    #[test]
    fn io_message_keeps_custom_text() {
        let e = io::Error::new(io::ErrorKind::InvalidData, "corrupt deflate stream");
        assert_eq!(io_message(&e), "corrupt deflate stream");
    }
}
