//! Input stage, discovery: turns the command-line paths into the sorted list
//! of files to read, each with its service name from the path (SPEC §1
//! "Files" and "Service from the path").
//!
//! Owns the walk (hidden entries and `.git` skipped inside directories,
//! explicit paths never filtered, symlinked directories only with `--follow`,
//! loops detected), the one-read-per-(device, inode) rule, the ids, and the
//! path → service rule. Problems with a path become [`FileError`]s; the run
//! goes on.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use super::io_message;

/// How a file's service name is chosen from its path (SPEC §1).
///
/// `Auto` (the default) is the path rule; `Dir(n)` takes the name of the
/// directory `n` levels up (`dir:1` = the parent directory's name); `Stem`
/// takes the file's stem (see [`stem`]). Standard input is always `stdin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ServiceFrom {
    /// The path rule: the first path component where the inputs differ.
    #[default]
    Auto,
    /// The directory this many levels up from the file (at least 1).
    Dir(usize),
    /// The file's stem.
    Stem,
}

impl FromStr for ServiceFrom {
    type Err = String;

    /// Parses `auto`, `stem` or `dir:N` (N ≥ 1), as given to `--service-from`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid value '{s}' (expected auto, stem or dir:N with N >= 1)");
        match s {
            "auto" => Ok(ServiceFrom::Auto),
            "stem" => Ok(ServiceFrom::Stem),
            _ => {
                let n = s.strip_prefix("dir:").ok_or_else(bad)?;
                match n.parse::<usize>() {
                    Ok(n) if n >= 1 => Ok(ServiceFrom::Dir(n)),
                    _ => Err(bad()),
                }
            }
        }
    }
}

impl fmt::Display for ServiceFrom {
    /// The `--service-from` spelling; round-trips through [`FromStr`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceFrom::Auto => f.write_str("auto"),
            ServiceFrom::Stem => f.write_str("stem"),
            ServiceFrom::Dir(n) => write!(f, "dir:{n}"),
        }
    }
}

/// How a file is compressed, from its extension (`.gz`, `.zst`, any case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    /// Plain bytes (the default, and always for stdin).
    #[default]
    None,
    /// gzip, possibly several concatenated members.
    Gzip,
    /// zstd, possibly several concatenated frames.
    Zstd,
}

impl Compression {
    /// The compression a path's extension names; `None` for anything else.
    pub fn from_path(path: &Path) -> Compression {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("gz") => Compression::Gzip,
            Some("zst") => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

/// One file to read.
#[derive(Clone, Debug)]
pub struct InputFile {
    /// Index in the sorted list; events refer to their file by it.
    pub id: u32,
    /// The path as reached (for a file reached by several paths, the first in
    /// sorted order); `"-"` for standard input.
    pub path: PathBuf,
    /// The path as shown to users (lossy UTF-8); `<stdin>` for standard input.
    pub display: String,
    /// Service from the path rule or the `--service-from` override; `stdin`
    /// for standard input.
    pub service: String,
    /// Compression by extension.
    pub compression: Compression,
}

impl InputFile {
    /// True for standard input (`-`).
    pub fn is_stdin(&self) -> bool {
        is_stdin_path(&self.path)
    }
}

/// A path that could not be used; the run goes on without it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    /// The path as shown to users.
    pub path: String,
    /// Why, e.g. "No such file or directory", "Permission denied",
    /// "symlink loop".
    pub message: String,
}

impl fmt::Display for FileError {
    /// `path: message`, the form printed after the tool name on stderr.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The result of [`discover`]: the files to read, sorted by path with ids in
/// that order, and the paths that could not be used.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Files to read, sorted byte-wise by path, one per (device, inode).
    pub files: Vec<InputFile>,
    /// Non-fatal problems, in the order met.
    pub errors: Vec<FileError>,
}

/// Finds the files to read.
///
/// `paths` are the command-line arguments; `"-"` means standard input (listed
/// once however often it is given). Directories are searched recursively,
/// skipping entries whose name starts with `.` (so `.git`) and non-regular
/// files inside them; explicit paths are never filtered, and an explicit
/// symlink to a directory is always entered. Symlinks to files are followed;
/// symlinked directories inside a walk only when `follow` is set, and a
/// directory already on the current ancestor chain gives a "symlink loop"
/// error. A file reached by several paths is listed once, under the first
/// path in byte-wise order. Services come from `service_from`.
pub fn discover(paths: &[PathBuf], follow: bool, service_from: ServiceFrom) -> Discovery {
    let mut walker = Walker {
        follow,
        found: Vec::new(),
        errors: Vec::new(),
        ancestors: Vec::new(),
    };
    let mut stdin = false;
    for path in paths {
        if is_stdin_path(path) {
            stdin = true;
        } else {
            walker.explicit(path);
        }
    }

    let mut found = walker.found;
    found.sort_by(|a, b| a.0.as_os_str().as_bytes().cmp(b.0.as_os_str().as_bytes()));
    let mut seen = HashSet::new();
    found.retain(|(_, key)| seen.insert(*key));

    let mut listed: Vec<PathBuf> = found.into_iter().map(|(p, _)| p).collect();
    if stdin {
        let at = listed.partition_point(|p| p.as_os_str().as_bytes() < b"-".as_slice());
        listed.insert(at, PathBuf::from("-"));
    }

    let file_paths: Vec<&Path> = listed
        .iter()
        .filter(|p| !is_stdin_path(p))
        .map(PathBuf::as_path)
        .collect();
    let mut services = services(&file_paths, service_from).into_iter();

    let files = listed
        .into_iter()
        .zip(0u32..)
        .map(|(path, id)| {
            let service = if is_stdin_path(&path) {
                "stdin".to_owned()
            } else {
                services.next().unwrap_or_default()
            };
            InputFile {
                id,
                display: if is_stdin_path(&path) {
                    STDIN_DISPLAY.to_owned()
                } else {
                    path.to_string_lossy().into_owned()
                },
                compression: if is_stdin_path(&path) {
                    Compression::None
                } else {
                    Compression::from_path(&path)
                },
                service,
                path,
            }
        })
        .collect();
    Discovery {
        files,
        errors: walker.errors,
    }
}

/// How standard input is named in messages (its `path` is `-`).
pub const STDIN_DISPLAY: &str = "<stdin>";

fn is_stdin_path(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// (device, inode): the identity of a file or directory.
type Key = (u64, u64);

fn key(meta: &Metadata) -> Key {
    (meta.dev(), meta.ino())
}

struct Walker {
    follow: bool,
    found: Vec<(PathBuf, Key)>,
    errors: Vec<FileError>,
    /// Directories being walked, outermost first, for loop detection.
    ancestors: Vec<Key>,
}

impl Walker {
    fn error(&mut self, path: &Path, message: String) {
        self.errors.push(FileError {
            path: path.to_string_lossy().into_owned(),
            message,
        });
    }

    /// A command-line path: followed whatever it is, never filtered.
    fn explicit(&mut self, path: &Path) {
        match fs::metadata(path) {
            Err(e) => self.error(path, io_message(&e)),
            Ok(meta) if meta.is_dir() => self.walk_dir(path, &meta),
            // Regular files, but also fifos and devices named explicitly.
            Ok(meta) => self.found.push((path.to_path_buf(), key(&meta))),
        }
    }

    fn walk_dir(&mut self, dir: &Path, meta: &Metadata) {
        let id = key(meta);
        if self.ancestors.contains(&id) {
            self.error(dir, "symlink loop".to_owned());
            return;
        }
        // Collect the entries first so at most one directory handle is open.
        let entries: Vec<_> = match fs::read_dir(dir) {
            Ok(rd) => rd.collect(),
            Err(e) => {
                self.error(dir, io_message(&e));
                return;
            }
        };
        self.ancestors.push(id);
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    self.error(dir, io_message(&e));
                    continue;
                }
            };
            if entry.file_name().as_bytes().first() == Some(&b'.') {
                continue;
            }
            let path = entry.path();
            let file_type = match entry.file_type() {
                Ok(t) => t,
                Err(e) => {
                    self.error(&path, io_message(&e));
                    continue;
                }
            };
            // Symlinks are resolved; anything else is taken as it is.
            let meta = if file_type.is_symlink() {
                fs::metadata(&path)
            } else {
                entry.metadata()
            };
            let meta = match meta {
                Ok(m) => m,
                Err(e) => {
                    self.error(&path, io_message(&e));
                    continue;
                }
            };
            if meta.is_dir() {
                if self.follow || !file_type.is_symlink() {
                    self.walk_dir(&path, &meta);
                }
            } else if meta.is_file() {
                self.found.push((path, key(&meta)));
            }
            // Fifos, sockets and devices inside directories are skipped.
        }
        self.ancestors.pop();
    }
}

/// The service of each path (none of them stdin), in the same order.
fn services(paths: &[&Path], rule: ServiceFrom) -> Vec<String> {
    match rule {
        ServiceFrom::Stem => paths.iter().map(|p| stem_of(p)).collect(),
        ServiceFrom::Dir(n) => paths.iter().map(|p| dir_up(p, n)).collect(),
        ServiceFrom::Auto => path_rule(paths),
    }
}

fn stem_of(path: &Path) -> String {
    match path.file_name() {
        Some(name) => stem(&name.to_string_lossy()),
        None => stem(&path.to_string_lossy()),
    }
}

/// `dir:N`: the name of the directory `n` levels up, on the path made
/// absolute (lexically, without resolving symlinks) so that `dir:1` of a bare
/// `app.log` is the current directory's name. Falls back to the stem when the
/// path has no such directory (e.g. `/app.log` with `dir:1`).
fn dir_up(path: &Path, n: usize) -> String {
    let comps = normalized(&absolute(path));
    comps
        .len()
        .checked_sub(n + 1)
        .and_then(|i| comps.get(i))
        .filter(|c| c.as_os_str() != "/" && c.as_os_str() != "..")
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_else(|| stem_of(path))
}

/// The path rule of SPEC §1: paths relative to the longest common directory
/// of all inputs; a file's service is its component at the shallowest depth
/// where the paths are not all equal, the stem when that component is the
/// file name; a single file gives its stem.
fn path_rule(paths: &[&Path]) -> Vec<String> {
    if paths.len() <= 1 {
        return paths.iter().map(|p| stem_of(p)).collect();
    }
    // Paths are compared as given (lexically normalized); mixed absolute and
    // relative paths, or relative paths that climb out with `..`, are
    // compared from the root instead.
    let given: Vec<Vec<OsString>> = paths.iter().map(|p| normalized(p)).collect();
    let any_abs = paths.iter().any(|p| p.is_absolute());
    let any_rel = paths.iter().any(|p| !p.is_absolute());
    let climbs = given
        .iter()
        .any(|c| c.first().is_some_and(|f| f.as_os_str() == ".."));
    let comps: Vec<Vec<OsString>> = if (any_abs && any_rel) || climbs {
        paths.iter().map(|p| normalized(&absolute(p))).collect()
    } else {
        given
    };

    // Longest common directory: the common prefix of the directory parts.
    let dirs = |c: &Vec<OsString>| c.len().saturating_sub(1);
    let mut common = comps.first().map(dirs).unwrap_or(0);
    if let Some((first, rest)) = comps.split_first() {
        for c in rest {
            let same = first
                .iter()
                .zip(c.iter())
                .take(dirs(c).min(common))
                .take_while(|(a, b)| a == b)
                .count();
            common = common.min(same);
        }
    }

    // Shallowest depth (below the common directory) where the paths differ.
    let rel: Vec<&[OsString]> = comps
        .iter()
        .map(|c| c.get(common..).unwrap_or(&[]))
        .collect();
    let mut depth = 0;
    loop {
        let first = rel.first().and_then(|r| r.get(depth));
        let all_equal = first.is_some() && rel.iter().all(|r| r.get(depth) == first);
        if !all_equal {
            break;
        }
        depth += 1;
    }

    paths
        .iter()
        .zip(&rel)
        .map(|(path, r)| {
            let is_file_name = depth + 1 >= r.len();
            match r.get(depth) {
                Some(c) if !is_file_name && c.as_os_str() != "/" && c.as_os_str() != ".." => {
                    c.to_string_lossy().into_owned()
                }
                _ => stem_of(path),
            }
        })
        .collect()
}

/// `path` joined to the current directory when relative (no symlink
/// resolution); unchanged when the current directory is unknown.
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// The path's components as names: `.` dropped (so a leading `./`), `..`
/// folded into the component before it where there is one, the root as `/`.
fn normalized(path: &Path) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                let last_is_name = out
                    .last()
                    .is_some_and(|l| l.as_os_str() != "/" && l.as_os_str() != "..");
                if last_is_name {
                    out.pop();
                } else if out.last().is_none_or(|l| l.as_os_str() != "/") {
                    out.push(OsString::from(".."));
                }
            }
            Component::RootDir => out.push(OsString::from("/")),
            Component::Prefix(p) => out.push(p.as_os_str().to_owned()),
            Component::Normal(n) => out.push(n.to_owned()),
        }
    }
    out
}

/// The stem rule (SPEC §1): drops directories, then repeatedly drops from the
/// end `.log`, compression suffixes (`.gz`, `.zst`), `.N` rotation numbers
/// and dates such as `-YYYYMMDD`, `-YYYY-MM-DD`, `.YYYY-MM-DD[_HH:MM:SS]`, in
/// any order: `orders.log.1`, `orders-20240501.log.gz`,
/// `orders.log.2024-05-01_10:00:00` and `orders.2024-05-01.log` all give
/// `orders`. Never returns an empty name: a suffix that is the whole name
/// stays (`.log` → `.log`, `2024-05-01.log` → `2024-05-01`).
pub fn stem(file_name: &str) -> String {
    let mut s = file_name.rsplit('/').next().unwrap_or(file_name);
    while let Some(shorter) = strip_one(s) {
        if shorter.is_empty() {
            break;
        }
        s = shorter;
    }
    s.to_owned()
}

/// Drops one known suffix from the end of `s`, if any.
fn strip_one(s: &str) -> Option<&str> {
    let (head, last) = s.rsplit_once('.').unwrap_or(("", s));
    let dotted = s.contains('.');
    if dotted {
        let ext = last.to_ascii_lowercase();
        if matches!(ext.as_str(), "log" | "gz" | "zst") {
            return Some(head);
        }
        // `.N` rotation number (also a compact `.YYYYMMDD`).
        if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
            return Some(head);
        }
    }
    strip_date(s)
}

/// Drops a trailing date `[-._]YYYYMMDD` or `[-._]YYYY-MM-DD`, the latter
/// optionally followed by `_HH:MM:SS`, `THH:MM:SS` or `_HH-MM-SS`.
fn strip_date(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let n = b.len();
    let sep_before = |start: usize| {
        start
            .checked_sub(1)
            .filter(|&i| matches!(b.get(i), Some(b'-' | b'.' | b'_')))
    };
    // Optional time part at the very end: 9 bytes such as `_HH:MM:SS`.
    let mut date_end = n;
    let time = n.checked_sub(9).and_then(|i| b.get(i..).map(|t| (i, t)));
    if let Some((at, [t0, h1, h2, c1, m1, m2, c2, s1, s2])) = time {
        let sep_ok = matches!(t0, b'_' | b'T' | b'-');
        let colons = (*c1 == b':' && *c2 == b':') || (*c1 == b'-' && *c2 == b'-');
        let digits = [h1, h2, m1, m2, s1, s2].iter().all(|d| d.is_ascii_digit());
        if sep_ok && colons && digits && dashed_date_ends_at(b, at) {
            date_end = at;
        }
    }
    // `YYYY-MM-DD`
    if dashed_date_ends_at(b, date_end) {
        return sep_before(date_end - 10).and_then(|cut| s.get(..cut));
    }
    // `YYYYMMDD` (without a time part)
    let compact = n.checked_sub(8).and_then(|i| b.get(i..).map(|d| (i, d)));
    if let Some((at, [y1, y2, y3, y4, m1, m2, d1, d2])) = compact {
        let digits = [y1, y2, y3, y4].iter().all(|c| c.is_ascii_digit());
        if digits && plausible(&[*m1, *m2], &[*d1, *d2]) {
            return sep_before(at).and_then(|cut| s.get(..cut));
        }
    }
    None
}

/// True when `b[end-10..end]` is `YYYY-MM-DD` with a plausible month and day.
fn dashed_date_ends_at(b: &[u8], end: usize) -> bool {
    let Some(d) = end.checked_sub(10).and_then(|start| b.get(start..end)) else {
        return false;
    };
    match d {
        [y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2] => {
            [y1, y2, y3, y4].iter().all(|c| c.is_ascii_digit())
                && plausible(&[*m1, *m2], &[*d1, *d2])
        }
        _ => false,
    }
}

/// Month 01–12 and day 01–31, as two ASCII digits each.
fn plausible(month: &[u8], day: &[u8]) -> bool {
    let num = |x: &[u8]| -> Option<u8> {
        match x {
            [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
                Some((a - b'0') * 10 + (b - b'0'))
            }
            _ => None,
        }
    };
    matches!(num(month), Some(1..=12)) && matches!(num(day), Some(1..=31))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::os::unix::fs::symlink;

    fn write(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, b"x\n").unwrap();
    }

    /// Relative display paths under `root`, in list order.
    fn rel(d: &Discovery, root: &Path) -> Vec<String> {
        d.files
            .iter()
            .map(|f| {
                f.path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }

    fn services_of(d: &Discovery) -> Vec<&str> {
        d.files.iter().map(|f| f.service.as_str()).collect()
    }

    fn rule(paths: &[&str]) -> Vec<String> {
        let p: Vec<&Path> = paths.iter().map(Path::new).collect();
        path_rule(&p)
    }

    #[test]
    fn walks_nested_dirs_skipping_hidden_entries() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("logs");
        write(&root.join("a.log"));
        write(&root.join("sub/b.log"));
        write(&root.join(".hidden.log"));
        write(&root.join(".git/config"));
        write(&root.join("sub/.cache/c.log"));
        let d = discover(std::slice::from_ref(&root), false, ServiceFrom::Auto);
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        assert_eq!(rel(&d, &root), ["a.log", "sub/b.log"]);
        assert_eq!(services_of(&d), ["a", "sub"]);
        assert_eq!(d.files.iter().map(|f| f.id).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(d.files[1].display, root.join("sub/b.log").to_string_lossy());
    }

    #[test]
    fn explicit_hidden_file_is_kept() {
        let t = tempfile::tempdir().unwrap();
        let hidden = t.path().join(".hidden.log");
        write(&hidden);
        let d = discover(std::slice::from_ref(&hidden), false, ServiceFrom::Auto);
        assert_eq!(d.files.len(), 1);
        assert_eq!(d.files[0].path, hidden);
        assert_eq!(d.files[0].service, ".hidden");
    }

    #[test]
    fn explicit_hidden_directory_is_walked() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join(".logs");
        write(&dir.join("svc.log"));
        let d = discover(std::slice::from_ref(&dir), false, ServiceFrom::Auto);
        assert_eq!(rel(&d, &dir), ["svc.log"]);
    }

    #[test]
    fn hard_link_and_symlink_read_once_under_first_sorted_path() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        write(&root.join("b.log"));
        fs::hard_link(root.join("b.log"), root.join("c.log")).unwrap();
        symlink(root.join("b.log"), root.join("a-link.log")).unwrap();
        write(&root.join("d.log"));
        let d = discover(&[root.to_path_buf()], false, ServiceFrom::Auto);
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        assert_eq!(rel(&d, root), ["a-link.log", "d.log"]);
        assert_eq!(services_of(&d), ["a-link", "d"]);

        // The same file given twice, and through a directory, is listed once.
        let d = discover(
            &[root.join("d.log"), root.to_path_buf(), root.join("d.log")],
            false,
            ServiceFrom::Auto,
        );
        assert_eq!(rel(&d, root), ["a-link.log", "d.log"]);
    }

    #[test]
    fn symlinked_dir_only_with_follow() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        write(&root.join("real/x.log"));
        write(&t.path().join("elsewhere/y.log"));
        symlink(t.path().join("elsewhere"), root.join("linked")).unwrap();

        let d = discover(std::slice::from_ref(&root), false, ServiceFrom::Auto);
        assert!(d.errors.is_empty());
        assert_eq!(rel(&d, &root), ["real/x.log"]);

        let d = discover(std::slice::from_ref(&root), true, ServiceFrom::Auto);
        assert!(d.errors.is_empty());
        assert_eq!(rel(&d, &root), ["linked/y.log", "real/x.log"]);
        assert_eq!(services_of(&d), ["linked", "real"]);
    }

    #[test]
    fn explicit_symlink_to_dir_is_entered_without_follow() {
        let t = tempfile::tempdir().unwrap();
        write(&t.path().join("real/x.log"));
        let link = t.path().join("link");
        symlink(t.path().join("real"), &link).unwrap();
        let d = discover(std::slice::from_ref(&link), false, ServiceFrom::Auto);
        assert_eq!(rel(&d, &link), ["x.log"]);
    }

    #[test]
    fn symlink_loop_is_reported_with_follow() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        write(&root.join("sub/a.log"));
        symlink(&root, root.join("sub/up")).unwrap();
        let d = discover(std::slice::from_ref(&root), true, ServiceFrom::Auto);
        assert_eq!(rel(&d, &root), ["sub/a.log"]);
        assert_eq!(
            d.errors,
            [FileError {
                path: root.join("sub/up").to_string_lossy().into_owned(),
                message: "symlink loop".into(),
            }]
        );
        // Without follow the link is simply not entered.
        let d = discover(std::slice::from_ref(&root), false, ServiceFrom::Auto);
        assert!(d.errors.is_empty());
        assert_eq!(rel(&d, &root), ["sub/a.log"]);
    }

    #[test]
    fn nonexistent_path_and_broken_symlink_are_errors() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        write(&root.join("ok.log"));
        symlink(t.path().join("gone"), root.join("broken.log")).unwrap();
        let missing = t.path().join("missing.log");
        let d = discover(&[missing.clone(), root.clone()], false, ServiceFrom::Auto);
        assert_eq!(rel(&d, &root), ["ok.log"]);
        assert_eq!(d.files[0].service, "ok");
        let errors: Vec<(String, String)> = d
            .errors
            .iter()
            .map(|e| (e.path.clone(), e.message.clone()))
            .collect();
        assert_eq!(
            errors,
            [
                (
                    missing.to_string_lossy().into_owned(),
                    "No such file or directory".to_owned()
                ),
                (
                    root.join("broken.log").to_string_lossy().into_owned(),
                    "No such file or directory".to_owned()
                ),
            ]
        );
        assert_eq!(
            d.errors[0].to_string(),
            format!("{}: No such file or directory", missing.display())
        );
    }

    #[test]
    fn sorted_bytewise_with_stdin_and_compression() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        write(&root.join("b.log"));
        write(&root.join("B.log.gz"));
        write(&root.join("a.log.zst"));
        let d = discover(
            &[root.to_path_buf(), PathBuf::from("-"), PathBuf::from("-")],
            false,
            ServiceFrom::Auto,
        );
        let paths: Vec<String> = d
            .files
            .iter()
            .map(|f| f.path.to_string_lossy().into())
            .collect();
        assert_eq!(d.files[0].display, "<stdin>");
        let r = root.to_string_lossy();
        // "-" sorts before "/" (both are below letters); absolute paths start with '/'.
        assert_eq!(
            paths,
            [
                "-".to_owned(),
                format!("{r}/B.log.gz"),
                format!("{r}/a.log.zst"),
                format!("{r}/b.log")
            ]
        );
        assert_eq!(services_of(&d), ["stdin", "B", "a", "b"]);
        assert!(d.files[0].is_stdin());
        assert_eq!(
            d.files.iter().map(|f| f.compression).collect::<Vec<_>>(),
            [
                Compression::None,
                Compression::Gzip,
                Compression::Zstd,
                Compression::None
            ]
        );
        assert_eq!(
            d.files.iter().map(|f| f.id).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
    }

    #[test]
    fn fifo_allowed_explicitly_but_skipped_inside_dirs() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        write(&root.join("a.log"));
        let fifo = root.join("pipe.log");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let d = discover(std::slice::from_ref(&root), false, ServiceFrom::Auto);
        assert_eq!(rel(&d, &root), ["a.log"]);
        let d = discover(std::slice::from_ref(&fifo), false, ServiceFrom::Auto);
        assert_eq!(d.files.len(), 1);
        assert_eq!(d.files[0].service, "pipe");

        // and open() reads it to its end
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::write(fifo, b"from fifo\n").unwrap())
        };
        let o = super::super::open(&d.files[0], super::super::MmapChoice::Always).unwrap();
        writer.join().unwrap();
        // Streamed: the fifo's head was read when it was opened, the rest
        // comes while it is parsed.
        assert_eq!(o.source.head(), b"from fifo\n");
        let super::super::Source::Stream(stream) = &o.source else {
            panic!("a fifo is streamed: {:?}", o.source)
        };
        let mut pieces = stream.pieces(1 << 20).unwrap();
        assert_eq!(
            pieces.next_piece().unwrap(),
            Some((0, b"from fifo\n".to_vec()))
        );
        assert_eq!(pieces.next_piece().unwrap(), None);
    }

    #[test]
    fn service_from_overrides() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("logs");
        write(&root.join("gw/app.log.1"));
        write(&root.join("orders/app.log"));
        let d = discover(std::slice::from_ref(&root), false, ServiceFrom::Stem);
        assert_eq!(services_of(&d), ["app", "app"]);
        let d = discover(std::slice::from_ref(&root), false, ServiceFrom::Dir(1));
        assert_eq!(services_of(&d), ["gw", "orders"]);
        let d = discover(std::slice::from_ref(&root), false, ServiceFrom::Dir(2));
        assert_eq!(services_of(&d), ["logs", "logs"]);
        let d = discover(&[root.clone(), "-".into()], false, ServiceFrom::Dir(1));
        assert_eq!(services_of(&d), ["stdin", "gw", "orders"]);
    }

    #[test]
    fn path_rule_examples_from_spec() {
        assert_eq!(
            rule(&["logs/gateway/gateway.log", "logs/orders/orders.log"]),
            ["gateway", "orders"]
        );
        assert_eq!(
            rule(&["logs/a.log", "logs/b.log.1", "logs/b.log"]),
            ["a", "b", "b"]
        );
        assert_eq!(
            rule(&["x/gateway/2024/app.log", "x/orders/2024/app.log"]),
            ["gateway", "orders"]
        );
        assert_eq!(
            rule(&["logs/gw/app.log", "logs/gw/app.log.1"]),
            ["app", "app"]
        );
        assert_eq!(rule(&["/var/log/orders-2024-05-01.log.gz"]), ["orders"]);
        assert_eq!(rule(&["d/a.log", "d/sub/b.log"]), ["a", "sub"]);
        assert_eq!(rule(&[]), Vec::<String>::new());
    }

    #[test]
    fn path_rule_normalizes_given_paths() {
        // A leading "./" and "." components do not count.
        assert_eq!(
            rule(&["./logs/gw/x.log", "logs/./orders/x.log"]),
            ["gw", "orders"]
        );
        // `..` is folded lexically.
        assert_eq!(
            rule(&["logs/tmp/../gw/x.log", "logs/orders/x.log"]),
            ["gw", "orders"]
        );
        // No common directory at all: the first components differ.
        assert_eq!(rule(&["gw/x.log", "orders/x.log"]), ["gw", "orders"]);
        assert_eq!(rule(&["a.log", "b.log"]), ["a", "b"]);
        // Paths climbing out with `..` are compared from the root.
        assert_eq!(rule(&["../q/gw/x.log", "../../q/orders/x.log"]).len(), 2);
        let cwd = std::env::current_dir().unwrap();
        let parent = cwd.parent().unwrap();
        let p = [parent.join("q/gw/x.log"), parent.join("../q/orders/x.log")];
        let p: Vec<&Path> = p.iter().map(PathBuf::as_path).collect();
        let via_abs = path_rule(&p);
        assert_eq!(rule(&["../q/gw/x.log", "../../q/orders/x.log"]), via_abs);
        assert!(via_abs.iter().all(|s| s != ".." && s != "/"), "{via_abs:?}");
        // Mixed absolute and relative paths are compared from the root.
        let cwd = std::env::current_dir().unwrap();
        let abs = cwd.join("q/gw/x.log");
        let p = [abs.as_path(), Path::new("q/orders/x.log")];
        assert_eq!(path_rule(&p), ["gw", "orders"]);
    }

    #[test]
    fn dir_up_counts_from_the_file() {
        assert_eq!(dir_up(Path::new("/var/log/gw/app.log"), 1), "gw");
        assert_eq!(dir_up(Path::new("/var/log/gw/app.log"), 3), "var");
        // Not enough directories: the stem.
        assert_eq!(dir_up(Path::new("/var/log/gw/app.log"), 4), "app");
        assert_eq!(dir_up(Path::new("/app.log.1"), 1), "app");
        // Relative paths are made absolute first.
        let cwd = std::env::current_dir().unwrap();
        let name = cwd.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(dir_up(Path::new("./app.log"), 1), name);
    }

    #[test]
    fn stem_cases() {
        let cases = [
            ("orders.log", "orders"),
            ("orders.log.1", "orders"),
            ("orders.log.12.gz", "orders"),
            ("orders-20240501.log.gz", "orders"),
            ("orders-2024-05-01.log", "orders"),
            ("orders.log.2024-05-01_10:00:00", "orders"),
            ("orders.2024-05-01.log", "orders"),
            ("orders.log.2024-05-01", "orders"),
            ("orders.log-20240501", "orders"),
            ("orders_2024-05-01T10-00-00.log.zst", "orders"),
            ("/var/log/gw/orders.log", "orders"),
            ("APP.LOG.GZ", "APP"),
            ("my.service.log", "my.service"),
            ("orders", "orders"),
            ("orders-99999999.log", "orders-99999999"),
            ("orders-2024-13-01.log", "orders-2024-13-01"),
            ("orders20240501.log", "orders20240501"),
            ("v2.log", "v2"),
            (".log", ".log"),
            (".hidden.log", ".hidden"),
            ("2024-05-01.log", "2024-05-01"),
            ("1.log", "1"),
            ("", ""),
        ];
        for (name, want) in cases {
            assert_eq!(stem(name), want, "stem({name:?})");
        }
    }

    #[test]
    fn service_from_parses_and_displays() {
        assert_eq!("auto".parse::<ServiceFrom>(), Ok(ServiceFrom::Auto));
        assert_eq!("stem".parse::<ServiceFrom>(), Ok(ServiceFrom::Stem));
        assert_eq!("dir:1".parse::<ServiceFrom>(), Ok(ServiceFrom::Dir(1)));
        assert_eq!("dir:12".parse::<ServiceFrom>(), Ok(ServiceFrom::Dir(12)));
        for bad in ["dir:0", "dir:", "dir:x", "dir", "Auto", "", "dir:-1"] {
            let err = bad.parse::<ServiceFrom>().unwrap_err();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
        for v in [ServiceFrom::Auto, ServiceFrom::Stem, ServiceFrom::Dir(3)] {
            assert_eq!(v.to_string().parse::<ServiceFrom>(), Ok(v));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn stem_is_a_nonempty_prefix(name in "[a-zA-Z0-9._:-]{1,30}") {
            let s = stem(&name);
            prop_assert!(!s.is_empty());
            prop_assert!(name.starts_with(&s));
        }

        #[test]
        fn stem_never_panics(name in "\\PC{0,40}") {
            let _ = stem(&name);
        }
    }
}
