//! Input stage, mmap mechanism: the crate's only `unsafe` code — mapping a
//! plain file, and surviving its truncation while it is mapped (STYLE habit
//! 6). The *policy* (when to map, [`MmapChoice`](super::MmapChoice), the
//! fallback to reading) lives in [`open`](super::open).
//!
//! A mapped file that another process truncates (logrotate's
//! `copytruncate`, an editor saving in place) raises SIGBUS on the next
//! touch of a page past its new end, which would kill the process with no
//! message. So every map is registered in a fixed table, and a SIGBUS
//! handler that finds the faulting address in one of them maps zero pages
//! over the rest of that map and notes it. The parse goes on — zeros hold
//! no newline, so they spoil at most two lines of each chunk under way,
//! the one being parsed and the one running into the zeros — and the
//! caller names the file ([`Mapped::truncated`]). Faults elsewhere go to
//! the handler that was there before (Rust's stack-overflow report, or the
//! default action).

use memmap2::Mmap;
use std::ffi::c_void;
use std::fs::File;
use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

/// A read-only map of a plain file, registered with the SIGBUS handler for
/// as long as it lives.
#[derive(Debug)]
pub struct Mapped {
    map: Mmap,
    slot: usize,
}

impl Mapped {
    /// The file's bytes as mapped. Once [`Mapped::truncated`], every page
    /// touched past the file's new end reads as zeros.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The file was found truncated while it was read: a read of the map
    /// touched a page past its new end (which the kernel takes away from
    /// every map of the file, pages read before included).
    pub fn truncated(&self) -> bool {
        REGISTRY
            .get(self.slot)
            .is_some_and(|slot| slot.truncated.load(Ordering::Acquire))
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // Unregistered before `map` is unmapped (fields drop after this), so
        // the handler never matches an address that may be mapped anew.
        if let Some(slot) = REGISTRY.get(self.slot) {
            slot.state.store(FREE, Ordering::Release);
        }
    }
}

/// Maps `file` read-only, or returns `Ok(None)` when it should be read
/// instead: empty files (mapping zero bytes fails on Linux), anything that
/// is not a regular file (fifos, character devices, sockets), and maps past
/// what the SIGBUS handler can cover (no handler, or a full table).
///
/// An `Err` is a mapping failure; the caller falls back to reading.
pub(crate) fn map(file: &File) -> io::Result<Option<Mapped>> {
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() == 0 || !handler_installed() {
        return Ok(None);
    }
    // SAFETY: `Mmap::map` is unsafe because the mapped bytes are shared with
    // the file: if another process changes the file while the map is alive,
    // the `&[u8]` we hand out can change under us (Rust assumes it cannot).
    // We map read-only (`PROT_READ`, `MAP_SHARED`), never write through the
    // map, and only ever read bytes, so a change is at worst other bytes in
    // a log line; a concurrent append past the mapped length is invisible.
    // A truncation makes the pages past the new end fault with SIGBUS: the
    // handler below replaces them with zeros, which is only sound because
    // the map is registered (`register`) before any byte of it is read. The
    // map never outlives the `Mapped` that owns it, and `file` is open for
    // the duration of this call, so the descriptor is valid.
    #[allow(unsafe_code)]
    let map = unsafe { Mmap::map(file)? };
    match register(map.as_ptr() as usize, map.len()) {
        Some(slot) => Ok(Some(Mapped { map, slot })),
        None => Ok(None),
    }
}

/// Tells the kernel that the pages of `range` are no longer needed, so they
/// stop counting in the process's resident memory once parsed (STYLE habit
/// 5). Errors are ignored: releasing is only an optimisation.
pub(crate) fn release(mapped: &Mapped, range: std::ops::Range<usize>) {
    let map = &mapped.map;
    let len = range.end.saturating_sub(range.start);
    if len == 0 || range.end > map.len() {
        return;
    }
    // SAFETY: `MADV_DONTNEED` on a read-only *file-backed* shared mapping only
    // drops the resident pages; a later access faults them in again from the
    // page cache or the file with the same contents (it would zero-fill only
    // for anonymous or privately modified pages, which this map never has).
    // So no byte anyone reads can change because of this call, even if a
    // reference into the range is still alive (zero pages put in by the
    // SIGBUS handler are anonymous: they come back as zeros, as they were).
    // memmap2 aligns the start down to a page boundary, which may drop a
    // page shared with the previous chunk: that page is simply faulted in
    // again if still read.
    #[allow(unsafe_code)]
    let _ =
        unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, range.start, len) };
}

const FREE: u8 = 0;
const CLAIMED: u8 = 1;
const LIVE: u8 = 2;

/// One registered map, and whether the handler had to repair it.
struct Slot {
    state: AtomicU8,
    start: AtomicUsize,
    len: AtomicUsize,
    truncated: AtomicBool,
}

/// As many maps as Linux lets a process hold by default
/// (`vm.max_map_count` is 65,530); a file past that is read instead.
const SLOTS: usize = 1 << 16;

/// The maps the SIGBUS handler may repair. A fixed table of atomics: the
/// handler can read it without locks or allocation (2 MiB of zero pages
/// that cost nothing until used).
static REGISTRY: [Slot; SLOTS] = [const {
    Slot {
        state: AtomicU8::new(FREE),
        start: AtomicUsize::new(0),
        len: AtomicUsize::new(0),
        truncated: AtomicBool::new(false),
    }
}; SLOTS];

/// One past the highest slot ever used: how far the handler looks.
static SLOTS_USED: AtomicUsize = AtomicUsize::new(0);

/// Where the next registration starts looking for a free slot.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

/// Takes a free slot for the map at `start`, or `None` when all are taken.
fn register(start: usize, len: usize) -> Option<usize> {
    let first = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
    (0..SLOTS).map(|k| (first + k) % SLOTS).find(|&i| {
        let Some(slot) = REGISTRY.get(i) else {
            return false;
        };
        if slot
            .state
            .compare_exchange(FREE, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        slot.start.store(start, Ordering::Relaxed);
        slot.len.store(len, Ordering::Relaxed);
        slot.truncated.store(false, Ordering::Relaxed);
        SLOTS_USED.fetch_max(i + 1, Ordering::Release);
        slot.state.store(LIVE, Ordering::Release);
        true
    })
}

/// The page size, read once before the handler can run.
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);

/// The SIGBUS action found at installation, to hand other faults to.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Installs the SIGBUS handler once; false if that failed (files are then
/// read, never mapped).
fn handler_installed() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        // SAFETY: `sysconf` and `sigaction` are called with valid arguments
        // (a zeroed `sigaction` is a valid empty one; `sa_mask` is emptied
        // by `sigemptyset`); the new action points at `on_sigbus`, an
        // `extern "C"` function of the `SA_SIGINFO` signature that lives
        // for the whole program. `PREVIOUS` is set before the handler is
        // installed, so the handler always finds it.
        #[allow(unsafe_code)]
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE);
            if let Ok(page @ 1..) = usize::try_from(page) {
                PAGE_SIZE.store(page, Ordering::Relaxed);
            }
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) != 0 {
                return false;
            }
            let _ = PREVIOUS.set(previous);
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) == 0
        }
    })
}

/// The SIGBUS handler. It only reads atomics and calls `mmap`, a plain
/// system call: SIGBUS from a mapped page is synchronous, raised by our own
/// read of the map, so no lock the handler could need is held.
#[allow(unsafe_code)]
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: the kernel passes a valid `siginfo_t` to an `SA_SIGINFO`
    // handler; for SIGBUS `si_addr` is the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    let used = SLOTS_USED.load(Ordering::Acquire).min(SLOTS);
    for slot in REGISTRY.iter().take(used) {
        if slot.state.load(Ordering::Acquire) != LIVE {
            continue;
        }
        let start = slot.start.load(Ordering::Relaxed);
        let len = slot.len.load(Ordering::Relaxed);
        if addr < start || addr - start >= len {
            continue;
        }
        let page = PAGE_SIZE.load(Ordering::Relaxed);
        // Maps start on a page boundary, so `from` stays inside this one.
        let from = addr & !(page - 1);
        let end = (start + len).div_ceil(page) * page;
        // SAFETY: [from, end) lies inside a live map of ours (registered,
        // not yet unmapped: `Mapped::drop` unregisters first), which only
        // hands out `&[u8]` views; replacing its pages with private zero
        // pages changes what those views read (as a write to the file
        // would) but keeps the memory mapped and readable, and memmap2's
        // `munmap` of the whole map later removes these pages too.
        let zeroed = unsafe {
            libc::mmap(
                from as *mut c_void,
                end - from,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if zeroed != libc::MAP_FAILED {
            slot.truncated.store(true, Ordering::Release);
            return;
        }
        break;
    }
    // Not one of our maps (or no way to repair it): what was there before.
    match PREVIOUS.get() {
        Some(previous)
            if previous.sa_sigaction != libc::SIG_DFL && previous.sa_sigaction != libc::SIG_IGN =>
        {
            // SAFETY: the previous action was installed by this process
            // for SIGBUS, with the signature its `SA_SIGINFO` flag names.
            unsafe {
                if previous.sa_flags & libc::SA_SIGINFO != 0 {
                    let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) =
                        std::mem::transmute(previous.sa_sigaction);
                    handler(sig, info, context);
                } else {
                    let handler: extern "C" fn(libc::c_int) =
                        std::mem::transmute(previous.sa_sigaction);
                    handler(sig);
                }
            }
        }
        _ => {
            // SAFETY: restoring the default action with a zeroed (empty)
            // `sigaction`; returning re-runs the faulting access, which then
            // ends the process as it would have without this handler.
            unsafe {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
            }
        }
    }
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
        assert_eq!(map.bytes(), b"hello\nworld\n");
        assert!(!map.truncated());
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
        assert_eq!(map.bytes(), &body[..]);
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

    /// logrotate's `copytruncate` under a live map: reading the pages past
    /// the new end gives zeros instead of killing the process, the bytes
    /// before it stay the file's, and the map says it was truncated.
    #[test]
    fn truncated_file_reads_zeros_past_its_new_end() {
        let page = PAGE_SIZE.load(Ordering::Relaxed);
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let body: Vec<u8> = (0..4 * page).map(|i| b'a' + (i % 26) as u8).collect();
        f.write_all(&body).unwrap();
        let file = File::open(f.path()).unwrap();
        let map = map(&file).unwrap().unwrap();
        assert_eq!(map.bytes()[3 * page], body[3 * page], "read before");
        assert!(!map.truncated());
        // Keep 1.5 pages: the rest of page 1 still reads as the file
        // (zero-filled by the kernel), pages 2 and 3 are gone.
        f.as_file().set_len((page + page / 2) as u64).unwrap();
        // A fresh view: the compiler must not reuse what it read above.
        let bytes = std::hint::black_box(map.bytes());
        assert_eq!(bytes[3 * page + 1], 0);
        assert!(map.truncated());
        assert_eq!(bytes[2 * page + 7], 0);
        assert_eq!(&bytes[..page + page / 2], &body[..page + page / 2]);
        assert!(bytes[page + page / 2..].iter().all(|&b| b == 0));
        assert_eq!(bytes.len(), 4 * page);
    }

    /// A slot is reused once its map is dropped, with no loss carried over.
    #[test]
    fn dropped_maps_free_their_slot() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"x\n").unwrap();
        let file = File::open(f.path()).unwrap();
        let before = (0..SLOTS)
            .filter(|&i| REGISTRY[i].state.load(Ordering::Acquire) != FREE)
            .count();
        let maps: Vec<Mapped> = (0..100).map(|_| map(&file).unwrap().unwrap()).collect();
        assert!(maps.iter().all(|m| !m.truncated()));
        drop(maps);
        let after = (0..SLOTS)
            .filter(|&i| REGISTRY[i].state.load(Ordering::Acquire) != FREE)
            .count();
        // Other tests map files concurrently: allow for theirs.
        assert!(after <= before + 8, "{before} {after}");
    }
}
