#!/usr/bin/env bash
# The default `hunt` side by side with the reference Sigma engine (rsigma), as issue 17 measures
# it: wall time and peak memory, the median of ROUNDS alternating rounds (each round runs every
# command once, in the same order), and the memory of the default hunt at EVENTS and 2x EVENTS.
#
#   bash benches/hunt_vs_rsigma.sh              # 500,000 and 1,000,000 events, 3 rounds
#   ROUNDS=5 EVENTS=200000 bash benches/hunt_vs_rsigma.sh
#   BIN=/path/to/an/older/cloudsentinel bash benches/hunt_vs_rsigma.sh   # another build, as is
#
# Needs ../shared/corpus/sigma (SigmaHQ's AWS rules). Installs the rsigma CLI 0.23 from crates.io
# into target/rsigma the first time (a few minutes). Run it on a quiet machine: the numbers are
# only comparable within one run.
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-500000}
ROUNDS=${ROUNDS:-3}
SIGMA=${SIGMA:-../shared/corpus/sigma/rules/cloud/aws}
[ -d "$SIGMA" ] || { echo "SigmaHQ rules not found at $SIGMA (set SIGMA=...)" >&2; exit 1; }
DATA=target/bench-data/$EVENTS
DOUBLE=$((EVENTS * 2))
DATA2=target/bench-data/$DOUBLE

if [ -z "${BIN:-}" ]; then
  cargo build --release --locked --quiet
  BIN=target/release/cloudsentinel
fi
[ -f "$DATA/events.jsonl" ] || $BIN generate --out "$DATA" --events "$EVENTS" --layout both
[ -d "$DATA2/AWSLogs" ] || $BIN generate --out "$DATA2" --events "$DOUBLE" --layout s3
if [ ! -x target/rsigma/bin/rsigma ]; then
  cargo install rsigma --version 0.23.0 --locked --root target/rsigma --quiet
fi
RSIGMA=target/rsigma/bin/rsigma

NAMES=(
  "rsigma 0.23 engine eval, JSONL, SigmaHQ AWS rules"
  "hunt, S3 files, SigmaHQ AWS rules only (--no-builtin --no-anomaly)"
  "hunt, S3 files, default (built-in packs + SigmaHQ + behaviour)"
  "hunt, S3 files, default, 2x the events"
)
run_case() {
  case $1 in
    0) $RSIGMA engine eval -r "$SIGMA" -e "@$DATA/events.jsonl" ;;
    1) $BIN hunt "$DATA/AWSLogs" --no-builtin --rules "$SIGMA" --no-anomaly --format jsonl --quiet ;;
    2) $BIN hunt "$DATA/AWSLogs" --rules "$SIGMA" --format jsonl --quiet ;;
    3) $BIN hunt "$DATA2/AWSLogs" --rules "$SIGMA" --format jsonl --quiet ;;
  esac
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "corpus: $EVENTS events ($(find "$DATA/AWSLogs" -type f | wc -l) S3 files; $(du -sh "$DATA/events.jsonl" | cut -f1) JSONL for rsigma) and $DOUBLE events"
echo "rules: $(find "$SIGMA" -name '*.yml' | wc -l) SigmaHQ AWS rules (+ the built-in packs where said)"
echo "commands:"
echo "  $RSIGMA engine eval -r $SIGMA -e @$DATA/events.jsonl"
echo "  $BIN hunt $DATA/AWSLogs --no-builtin --rules $SIGMA --no-anomaly --format jsonl --quiet"
echo "  $BIN hunt $DATA/AWSLogs --rules $SIGMA --format jsonl --quiet"
echo "  $BIN hunt $DATA2/AWSLogs --rules $SIGMA --format jsonl --quiet"
echo

RESULTS=$(mktemp)
for round in $(seq 1 "$ROUNDS"); do
  for i in 0 1 2 3; do
    /usr/bin/time -o /tmp/cs_vs_time -f '%e %M' bash -c "$(declare -f run_case); BIN=$BIN RSIGMA=$RSIGMA SIGMA=$SIGMA DATA=$DATA DATA2=$DATA2 run_case $i" > /dev/null 2>/tmp/cs_vs_err \
      || { echo "case $i failed: $(tail -3 /tmp/cs_vs_err)" >&2; exit 1; }
    echo "$i $(tail -1 /tmp/cs_vs_time)" >> "$RESULTS"
    printf 'round %d: %-66s %7.2f s %6.0f MiB\n' "$round" "${NAMES[$i]}" "$(tail -1 /tmp/cs_vs_time | cut -d' ' -f1)" "$(echo "$(tail -1 /tmp/cs_vs_time | cut -d' ' -f2) / 1024" | bc -l)"
  done
done
echo
python3 - "$RESULTS" "$EVENTS" "${NAMES[@]}" <<'EOF'
import statistics, sys
path, events, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
runs = {}
for line in open(path):
    i, secs, kib = line.split()
    runs.setdefault(int(i), []).append((float(secs), int(kib)))
med = {i: (statistics.median(s for s, _ in r), statistics.median(k for _, k in r) / 1024) for i, r in runs.items()}
ref = med[0][0]
print(f"| run | wall (median of {len(runs[0])}) | vs rsigma | events/s | peak RSS (median) |")
print("| --- | --- | --- | --- | --- |")
for i, name in enumerate(names):
    secs, mib = med[i]
    n = events * (2 if i == 3 else 1)
    print(f"| {name} | {secs:.2f} s | {ref / secs:.2f}x | {n / secs:,.0f} | {mib:.0f} MiB |")
print()
print(f"memory of the default hunt, 2x the events vs 1x: {med[3][1] / med[2][1] - 1:+.1%}")
EOF
rm -f "$RESULTS"
