//! Every read strategy gives byte-identical JSON: thread counts, chunk sizes
//! that cut every line, mmap or read, and the order of the arguments.

use std::path::Path;

use crate::util::{repo_dir, run, shared_dir};

fn json_with(paths: &[&Path], extra: &[&str]) -> Vec<u8> {
    let mut args: Vec<String> = vec!["report".into()];
    args.extend(paths.iter().map(|p| p.display().to_string()));
    args.extend(["-o", "json"].iter().map(|s| s.to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&refs);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn assert_all_strategies_agree(paths: &[&Path]) {
    let base = json_with(paths, &["--threads", "1"]);
    assert!(!base.is_empty());
    let variants: [&[&str]; 6] = [
        &["--threads", "4"],
        &["--threads", "2", "--chunk-size", "1"],
        &["--threads", "3", "--chunk-size", "64"],
        &["--threads", "1", "--no-mmap"],
        &["--threads", "4", "--no-mmap", "--chunk-size", "7"],
        &["--threads", "2", "--mmap", "--chunk-size", "4096"],
    ];
    for v in variants {
        let got = json_with(paths, v);
        assert!(
            got == base,
            "output differs with {v:?} for {paths:?}:\n{}\nvs\n{}",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&base)
        );
    }
    if paths.len() > 1 {
        let reversed: Vec<&Path> = paths.iter().rev().copied().collect();
        assert!(
            json_with(&reversed, &[]) == base,
            "argument order changed the output"
        );
    }
}

#[test]
fn testdata_is_identical_under_every_strategy() {
    let dir = repo_dir().join("testdata/logs");
    let services: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    let mut sorted = services.clone();
    sorted.sort();
    let refs: Vec<&Path> = sorted.iter().map(|p| p.as_path()).collect();
    assert!(refs.len() >= 5, "testdata should hold at least 5 services");
    assert_all_strategies_agree(&refs);
    assert_all_strategies_agree(&[dir.as_path()]);
}

#[test]
fn examples_are_identical_under_every_strategy() {
    let examples = shared_dir().join("examples");
    if !examples.exists() {
        eprintln!("skipped: ../shared not found");
        return;
    }
    for entry in std::fs::read_dir(&examples).unwrap() {
        let logs = entry.unwrap().path().join("logs");
        if logs.is_dir() {
            assert_all_strategies_agree(&[logs.as_path()]);
        }
    }
}

/// Compressed files are decompressed piece by piece while they are parsed
/// (`--chunk-size` sets the piece size too). Every `testdata` file
/// compressed, alternately `.gz` and `.zst`: the same report as the plain
/// files, but for `input.bytes` (the compressed sizes), under every
/// strategy, with pieces as small as one line.
#[test]
fn compressed_testdata_is_identical_to_plain() {
    use std::io::Write;
    let src = repo_dir().join("testdata/logs");
    let d = tempfile::tempdir().unwrap();
    let mut compressed_bytes = 0u64;
    let mut services: Vec<std::path::PathBuf> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    services.sort();
    for (k, service) in services.iter().enumerate() {
        for file in std::fs::read_dir(service).unwrap() {
            let file = file.unwrap().path();
            let data = std::fs::read(&file).unwrap();
            let name = file.file_name().unwrap().to_str().unwrap();
            let dir = d.path().join(service.file_name().unwrap());
            std::fs::create_dir_all(&dir).unwrap();
            let (path, raw) = if k % 2 == 0 {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(&data).unwrap();
                (dir.join(format!("{name}.gz")), e.finish().unwrap())
            } else {
                let raw = zstd::encode_all(&data[..], 3).unwrap();
                (dir.join(format!("{name}.zst")), raw)
            };
            compressed_bytes += raw.len() as u64;
            std::fs::write(path, raw).unwrap();
        }
    }
    let without_bytes = |json: &[u8]| {
        let mut v: serde_json::Value = serde_json::from_slice(json).unwrap();
        let bytes = v["input"]["bytes"].take();
        (v, bytes)
    };
    let (plain, _) = without_bytes(&json_with(&[src.as_path()], &[]));
    let (packed, bytes) = without_bytes(&json_with(&[d.path()], &[]));
    assert_eq!(bytes, compressed_bytes);
    assert!(plain == packed, "compressed input changed the report");
    assert_all_strategies_agree(&[d.path()]);
}
