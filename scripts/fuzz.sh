#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets: the record reader, the CloudTrail, Azure and GCP
# decoders, the rule loader) for a bounded time each, seeded from testdata/ and the rule packs,
# and prints executions and crashes per target.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 120)
#
# Needs cargo-fuzz (installed from crates.io if missing) and libFuzzer's -Z flags, which the
# stable toolchain accepts with RUSTC_BOOTSTRAP=1. A crash leaves its input in
# fuzz/artifacts/<target>/; copy it to fuzz/regressions/<target>/ so that
# `cargo test -p cloudsentinel-ingest --test fuzz_regressions` replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-120}"
command -v cargo-fuzz > /dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
root="$PWD"
cd fuzz
mkdir -p logs
seed() { # target, files...
  local t="$1"; shift
  mkdir -p "corpus/$t"
  for f in "$@"; do cp -f "$f" "corpus/$t/seed-$(basename "$f")"; done
  if [ -d "regressions/$t" ]; then cp -f regressions/$t/* "corpus/$t/" 2>/dev/null || true; fi
}
seed reader "$root"/testdata/cloudtrail/* "$root"/testdata/mixed/*
seed cloudtrail "$root"/testdata/cloudtrail/* "$root"/testdata/mixed/cloudtrail.json
seed azure "$root"/testdata/mixed/azure-activity.jsonl "$root"/testdata/mixed/entra-signins.json
seed gcp "$root"/testdata/mixed/gcp-pubsub.json
seed rules "$root"/testdata/rules/* "$root"/testdata/rules_bad/* "$root"/testdata/rules_multi/* \
  $(ls "$root"/rules/aws/*.yml | head -40)
# The rule packs' fixture records (should-fire / should-not-fire) seed the decoders, one per file.
python3 - "$root" <<'PY'
import json, pathlib, sys, hashlib
root = pathlib.Path(sys.argv[1])
for target, pack in (("cloudtrail", "aws"), ("azure", "azure"), ("gcp", "gcp")):
    out = pathlib.Path("corpus") / target
    for f in sorted((root / "rules" / pack).glob("*.fixtures.json")):
        fixtures = json.loads(f.read_text())
        for record in fixtures.get("match", []) + fixtures.get("no_match", []):
            text = json.dumps(record).encode()
            (out / ("fixture-" + hashlib.sha1(text).hexdigest()[:12])).write_bytes(text)
PY
cargo fuzz build -O
printf '%-12s %14s %10s %8s\n' target executions exec/s crashes
for t in reader cloudtrail azure gcp rules; do
  log="logs/$t.log"
  set +e
  cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=65536 \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 > "$log" 2>&1
  set -e
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  crashes=$(ls "artifacts/$t" 2>/dev/null | wc -l)
  printf '%-12s %14s %10s %8s\n' "$t" "${runs:-0}" "${rate:-0}" "$crashes"
done
