#!/usr/bin/env bash
# Throughput and peak memory of `cloudsentinel hunt` on a generated CloudTrail corpus, side by side
# with the rsigma CLI on the same events and rules, and with plain JSON parsing as the floor.
#
#   bash benches/hunt_throughput.sh            # 500,000 events
#   EVENTS=2000000 bash benches/hunt_throughput.sh
#
# Needs ../shared/corpus/sigma (SigmaHQ's AWS rules). Installs the rsigma CLI 0.23 from crates.io
# into target/rsigma the first time (a few minutes). Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-500000}
DATA=${DATA:-target/bench-data/$EVENTS}
SIGMA=${SIGMA:-../shared/corpus/sigma/rules/cloud/aws}
[ -d "$SIGMA" ] || { echo "SigmaHQ rules not found at $SIGMA (set SIGMA=...)" >&2; exit 1; }

cargo build --release --locked --quiet
BIN=target/release/cloudsentinel
if [ ! -f "$DATA/events.jsonl" ]; then
  $BIN generate --out "$DATA" --events "$EVENTS" --layout both
fi
if [ ! -x target/rsigma/bin/rsigma ]; then
  cargo install rsigma --version 0.23.0 --locked --root target/rsigma --quiet
fi
RSIGMA=target/rsigma/bin/rsigma

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "corpus: $EVENTS events, $(du -sh "$DATA/events.jsonl" | cut -f1) JSONL, $(find "$DATA/AWSLogs" -type f | wc -l) S3 delivery files"
echo "rules: built-in pack + $(find "$SIGMA" -name '*.yml' | wc -l) SigmaHQ AWS rules"
echo

# measure NAME CMD...: wall seconds, events/s, peak RSS
measure() {
  local name=$1; shift
  # the exit status is not the measure (a failing command shows as an implausible time)
  /usr/bin/time -o /tmp/cs_bench_time -f '%e %M' "$@" > /tmp/cs_bench_out 2>/tmp/cs_bench_err || true
  local out secs kb
  out=$(tail -1 /tmp/cs_bench_time)
  secs=${out% *}
  kb=${out#* }
  printf '%-58s %8.2fs %10.0f events/s %8.0f MiB peak\n' "$name" "$secs" "$(echo "$EVENTS / $secs" | bc -l)" "$(echo "$kb / 1024" | bc -l)"
}

measure "cloudsentinel hunt, S3 files (.json), 2 threads" $BIN hunt "$DATA/AWSLogs" --rules "$SIGMA" --format jsonl --quiet --threads 2
measure "cloudsentinel hunt, S3 files (.json), 1 thread" $BIN hunt "$DATA/AWSLogs" --rules "$SIGMA" --format jsonl --quiet --threads 1
measure "cloudsentinel hunt, one JSONL file" $BIN hunt "$DATA/events.jsonl" --rules "$SIGMA" --format jsonl --quiet
measure "cloudsentinel hunt, S3 files, 2 threads, SigmaHQ AWS rules only" $BIN hunt "$DATA/AWSLogs" --no-builtin --rules "$SIGMA" --format jsonl --quiet
measure "rsigma 0.23 eval, one JSONL file, SigmaHQ AWS rules only" $RSIGMA engine eval -r "$SIGMA" -e "@$DATA/events.jsonl"
measure "cloudsentinel hunt, one JSONL file, SigmaHQ AWS rules only" $BIN hunt "$DATA/events.jsonl" --no-builtin --rules "$SIGMA" --format jsonl --quiet

# Azure (Activity Log + Entra ID sign-in/audit, diagnostic-settings shape) and GCP Cloud Audit Logs.
SIGMA_CLOUD=$(dirname "$SIGMA")
for provider in azure gcp; do
  PDATA=target/bench-data/$provider-$EVENTS
  if [ ! -f "$PDATA/events.jsonl" ]; then
    $BIN generate --provider $provider --out "$PDATA" --events "$EVENTS" --layout jsonl
  fi
  echo "corpus: $EVENTS $provider records, $(du -sh "$PDATA/events.jsonl" | cut -f1) JSONL"
  measure "cloudsentinel hunt, $provider JSONL, built-in pack + SigmaHQ cloud rules" $BIN hunt "$PDATA/events.jsonl" --rules "$SIGMA_CLOUD" --format jsonl --quiet
  measure "cloudsentinel hunt, $provider JSONL, SigmaHQ $provider rules only" $BIN hunt "$PDATA/events.jsonl" --no-builtin --rules "$SIGMA_CLOUD/$provider" --format jsonl --quiet
  measure "rsigma 0.23 eval, $provider JSONL, SigmaHQ $provider rules only" $RSIGMA engine eval -r "$SIGMA_CLOUD/$provider" -e "@$PDATA/events.jsonl"
done

echo
cargo bench --bench parse_floor --quiet -- "$DATA/events.jsonl" 2>/dev/null | grep -v '^$'
