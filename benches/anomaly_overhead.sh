#!/usr/bin/env bash
# What behavioural anomaly detection adds to the service's per-event cost (issue 5). Drives a real
# `cloudsentinel serve` with `cloudsentinel loadgen`, three ways, on the same stream:
#
#   A. baselines learning and an anomaly model active (every mature principal's event scored)
#   B. baselines learning, no model active (after `models rollback`)
#   C. `detection.anomaly = false` (a fresh service, same history)
#
# Each phase: sustained ingest as fast as the service answers for DURATION seconds; reported are
# events/s and the process's CPU time per accepted event. A history of HISTORY events spread over
# the past 7 days goes in first so that principals are past their learning period.
#
#   bash benches/anomaly_overhead.sh             # about 4 minutes
#   DURATION=10 HISTORY=50000 bash benches/anomaly_overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-30}
HISTORY=${HISTORY:-200000}
PORT=${PORT:-18932}
cargo build --release --quiet
BIN=target/release/cloudsentinel
URL=http://127.0.0.1:$PORT
export CLOUDSENTINEL_ADMIN_USER=bench CLOUDSENTINEL_ADMIN_PASSWORD=bench-password-123 CLOUDSENTINEL_LOG=warn
export CLOUDSENTINEL_PASSWORD=bench-password-123 CLOUDSENTINEL_USER=bench CLOUDSENTINEL_URL=$URL
json() { python3 -c "import sys, json; print(json.load(sys.stdin)$1)"; }

PID=
DATA=
start() { # start DATA_DIR [ENV=VALUE...]
  DATA=$1; shift
  env "$@" "$BIN" serve --listen 127.0.0.1:$PORT --data-dir "$DATA" > "$DATA.out" &
  PID=$!
  for _ in $(seq 100); do curl -sf $URL/health >/dev/null && break; sleep 0.1; done
  TOKEN=$(curl -sf $URL/api/v1/auth/login -H 'content-type: application/json' \
    -d '{"username":"bench","password":"bench-password-123"}' | json "['access_token']")
  KEY=$(curl -sf $URL/api/v1/api-keys -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d '{"name":"bench"}' | json "['key']")
}
stop() { kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null || true; }
cpu_ticks() { awk '{print $14+$15}' /proc/$PID/stat; }
WORK=$(mktemp -d /tmp/cs-anomaly.XXXXXX)
trap 'stop; rm -rf "$WORK"' EXIT

phase() { # phase NAME SEED
  local t0 t1 n
  t0=$(cpu_ticks)
  "$BIN" loadgen --url $URL --api-key "$KEY" --duration "$DURATION" --batch 1000 --connections 4 --seed "$2" > "$WORK/$1.json"
  t1=$(cpu_ticks)
  n=$(json "['events_accepted']" < "$WORK/$1.json")
  python3 - "$1" "$n" "$((t1 - t0))" "$(getconf CLK_TCK)" "$WORK/$1.json" <<'EOF'
import json, sys
name, n, ticks, hz, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
r = json.load(open(path))
print(f"{name}: {n} events accepted, {r['events_per_sec']:.0f} events/s, service CPU {ticks / hz * 1e6 / max(n, 1):.1f} µs per event")
EOF
}

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(rustc --version)"
echo "== history: $HISTORY events over the past 7 days, then an anomaly model trained and activated"
mkdir -p "$WORK/on"
start "$WORK/on"
"$BIN" loadgen --url $URL --api-key "$KEY" --duration 3600 --events "$HISTORY" --batch 1000 --connections 4 --span-days 7 --seed 11 > /dev/null
"$BIN" models train anomaly --wait --activate
echo "== A. model active"
phase A 21
curl -sf $URL/metrics | grep -E '^cloudsentinel_(events_scored|anomalies)_total' || true
"$BIN" models rollback anomaly
echo "== B. baselines only (no model)"
phase B 22
stop
echo "== C. detection.anomaly = false (same history)"
mkdir -p "$WORK/off"
start "$WORK/off" CLOUDSENTINEL_DETECTION__ANOMALY=false
"$BIN" loadgen --url $URL --api-key "$KEY" --duration 3600 --events "$HISTORY" --batch 1000 --connections 4 --span-days 7 --seed 11 > /dev/null
phase C 23
