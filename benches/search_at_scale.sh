#!/usr/bin/env bash
# The events search at scale: fills a fresh service with EVENTS synthetic events spread over 60
# days, then times GET /api/v1/events?q=... for searches by AS, country, action, account, address,
# word and id (median of three), and optionally the ingest-to-alert latency at a fixed RATE.
#
#   bash benches/search_at_scale.sh                      # 1,000,000 events
#   EVENTS=200000 BIN=/path/to/cloudsentinel bash benches/search_at_scale.sh
#   RATE=6000 EVENTS=0 bash benches/search_at_scale.sh   # only latency at 6,000 events/s
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-1000000}
PORT=${PORT:-18951}
if [ -z "${BIN:-}" ]; then
  cargo build --release --locked --quiet
  BIN=target/release/cloudsentinel
fi
URL=http://127.0.0.1:$PORT
DATA=$(mktemp -d /tmp/cs-search.XXXXXX)
export CLOUDSENTINEL_ADMIN_USER=bench CLOUDSENTINEL_ADMIN_PASSWORD=bench-password-123 CLOUDSENTINEL_LOG=warn
"$BIN" serve --listen 127.0.0.1:$PORT --data-dir "$DATA" > "$DATA/serve.out" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do curl -sf $URL/health >/dev/null && break; sleep 0.1; done
json() { python3 -c "import sys, json; print(json.load(sys.stdin)$1)"; }
TOKEN=$(curl -sf $URL/api/v1/auth/login -H 'content-type: application/json' \
  -d '{"username":"bench","password":"bench-password-123"}' | json "['access_token']")
KEY=$(curl -sf $URL/api/v1/api-keys -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d '{"name":"bench"}' | json "['key']")
if [ -n "${RATE:-}" ]; then
  echo "== ingest-to-alert latency at $RATE events/s (batches of 1000, 4 connections, 20 s)"
  "$BIN" loadgen --url $URL --api-key "$KEY" --duration 20 --batch 1000 --connections 4 --rate "$RATE" --seed 2
fi
if [ "$EVENTS" -gt 0 ]; then
  echo "== filling $EVENTS events"
  "$BIN" loadgen --url $URL --api-key "$KEY" --duration 3600 --events "$EVENTS" --batch 1000 \
    --connections 4 --span-days 60 --seed 4 > /dev/null
  sleep 3
  for q in "as:16509" "as:14618" "country:US" "country:DE" "as:16509 action:GetObject" \
    "account:111122223333" "ip:3.128.108.111" "mallory" "e65635ff-3ef6-477b-aa3b-261168b9ead6"; do
    E=$(python3 -c "import urllib.parse, sys; print(urllib.parse.quote(sys.argv[1]))" "$q")
    T=$(for _ in 1 2 3; do
      curl -s -o "$DATA/out.json" -w "%{time_total}\n" "$URL/api/v1/events?q=$E&limit=50" \
        -H "authorization: Bearer $TOKEN"
    done | sort -n | sed -n 2p)
    echo "$q: median ${T} s, total $(json "['total']" < "$DATA/out.json")"
  done
fi
