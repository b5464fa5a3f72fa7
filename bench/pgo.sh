#!/usr/bin/env bash
# Builds hopscope with profile-guided optimisation (PGO) into
# target/pgo/hopscope: an instrumented build is run on training logs, and
# the counts it records steer the optimised build (which branches are
# likely, what to inline, how to lay out the hot code). See bench/README.md.
#
# The training logs are not the benchmark's: they are generated with other
# seeds, and besides the rich JSON logs they hold the generator's mixed
# dialects (JSON with other field names, logfmt, an access log, rotated
# and .gz files), plus testdata/. The optimised binary's reports are
# checked byte for byte against the standard build's on that data.
#
# usage: bench/pgo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "pgo: $*" >&2; }
HOST=$(rustc -vV | sed -n 's/^host: //p')
PROFDATA="$(rustc --print sysroot)/lib/rustlib/$HOST/bin/llvm-profdata"
if [ ! -x "$PROFDATA" ]; then
  say "installing the llvm-tools component (for llvm-profdata)"
  if ! rustup component add llvm-tools >/dev/null || [ ! -x "$PROFDATA" ]; then
    say "no llvm-profdata for this rustc (it comes with rustup's llvm-tools component)"
    exit 1
  fi
fi

OUT=target/pgo
# The build is skipped when nothing it depends on changed since the last
# one: the sources, the manifest and lock file, the generator, the
# training logs of testdata/, this script and the compiler.
KEY=$( { rustc -vV; find src examples testdata Cargo.toml Cargo.lock bench/pgo.sh -type f | sort | xargs sha256sum; } | sha256sum | cut -d' ' -f1)
if [ -x "$OUT/hopscope" ] && [ "$(cat "$OUT/key" 2>/dev/null)" = "$KEY" ]; then
  say "$OUT/hopscope is up to date"
  exit 0
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
rm -rf "$OUT"
mkdir -p "$OUT"

say "generating training logs"
cargo build --release --quiet --bin hopscope --example gen_logs
GEN=target/release/examples/gen_logs
"$GEN" --out "$TMP/rich" --size 150MB --seed 7 --rich >/dev/null
"$GEN" --out "$TMP/mixed" --size 60MB --seed 8 >/dev/null
# Files changed in the last 30 s are streamed instead of mapped;
# aged by a minute, the training takes the mapped path the benchmark takes.
find "$TMP/rich" "$TMP/mixed" -type f -exec touch -d "@$(($(date +%s) - 60))" {} +
TRAIN=("$TMP/rich/logs" "$TMP/mixed/logs" testdata/logs)

# With --target, RUSTFLAGS reach hopscope's own code only, not the build
# scripts and procedural macros that run while it is built. The `dist`
# profile is the release profile with fat LTO and one codegen unit.
build() {
  RUSTFLAGS="$1" cargo build --profile dist --quiet --bin hopscope --target "$HOST" --target-dir "target/pgo-build/$2"
}
say "building an instrumented hopscope"
build "-Cprofile-generate=$TMP/profiles" generate
INSTR="target/pgo-build/generate/$HOST/dist/hopscope"
say "training on ${TRAIN[*]}"
for d in "${TRAIN[@]}"; do
  "$INSTR" report "$d" -o json >/dev/null
  "$INSTR" report "$d" --threads 1 >/dev/null
  "$INSTR" traces "$d" --slowest 100 >/dev/null
done
"$PROFDATA" merge -o "$OUT/hopscope.profdata" "$TMP/profiles"

say "building the optimised hopscope"
build "-Cprofile-use=$PWD/$OUT/hopscope.profdata" use
cp "target/pgo-build/use/$HOST/dist/hopscope" "$OUT/hopscope"

# The optimised build must say exactly what the standard one says.
for d in "${TRAIN[@]}"; do
  for args in "report -o json" "traces --slowest 20"; do
    # shellcheck disable=SC2086
    if ! cmp -s <("$OUT/hopscope" $args "$d") <(target/release/hopscope $args "$d"); then
      say "the optimised build's '$args' on $d differs from the standard build's"
      exit 1
    fi
  done
done
echo "$KEY" >"$OUT/key"
say "built $OUT/hopscope (its output equals the standard build's on the training logs)"
