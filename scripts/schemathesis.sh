#!/usr/bin/env bash
# Property-based API testing: Schemathesis (from PyPI) generates requests from the service's own
# OpenAPI document (/api/openapi.json) and checks every answer: no 500, answers that match the
# documented status codes. Runs against a fresh `cloudsentinel serve` on 127.0.0.1 with a
# temporary data directory, signed in as admin.
#
#   scripts/schemathesis.sh [MAX_EXAMPLES_PER_OPERATION]    (default 50)
#
# Uses target/debug/cloudsentinel (built if missing) and a virtualenv in target/st-venv.
# Sign-out and password change are left out: they would end the admin's session mid-run.
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-50}"
venv=target/st-venv
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==4.32.5"
fi
[ -x target/debug/cloudsentinel ] || cargo build --locked
data=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
export CLOUDSENTINEL_ADMIN_USER=admin CLOUDSENTINEL_ADMIN_PASSWORD=schemathesis-admin-pw-1
CLOUDSENTINEL_LOG=error target/debug/cloudsentinel serve --listen 127.0.0.1:0 --data-dir "$data" \
  > "$data/out.log" 2> "$data/err.log" &
pid=$!
for _ in $(seq 100); do grep -q listening "$data/out.log" 2>/dev/null && break; sleep 0.1; done
base=$(sed -n 's/^CloudSentinel listening on //p' "$data/out.log" | head -1)
token=$(curl -s "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$CLOUDSENTINEL_ADMIN_PASSWORD\"}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
set +e
"$venv/bin/st" run "$base/api/openapi.json" \
  --header "Authorization: Bearer $token" \
  --exclude-path /api/v1/auth/logout --exclude-path /api/v1/auth/password \
  --checks not_a_server_error,status_code_conformance,content_type_conformance \
  --max-examples "$examples" --seed 1 --no-color 2>&1 | tee target/schemathesis.log
code=${PIPESTATUS[0]}
set -e
if grep -qi "panicked\|internal error" "$data/err.log"; then
  echo "== server errors during the run:"; grep -i "panicked\|internal error" "$data/err.log" | head -20
fi
exit "$code"
