#!/usr/bin/env python3
"""Notification delivery, measured: the release binary serving on 127.0.0.1 with a webhook sink
pointed at the signature-checking stand-in (tests/support/standins.py), SQLite at full
durability.

1. Latency: ALERTS distinct alerts arrive over about a minute (batches of 25 events, each event an
   alert of its own: StopLogging by a different user); for each, the time from the commit that
   queued its message to the receiver's answer (the delivery's latency_ms), p50/p95/max.
2. Outage: the receiver answers 503 for DOWN_SECS while another ALERTS alerts arrive; then it comes
   back. Every alert's message must arrive exactly once; reports how long the backlog took to
   drain after the receiver returned.

Usage: cargo build --release && python3 benches/notify.py [--alerts 1000] [--down-secs 60]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "cloudsentinel")
SECRET = "bench-secret-0123456789"
PASSWORD = "Bench-Password-2026"


def http(method, url, body=None, headers=None):
    data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, method=method, data=data, headers={"content-type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=60) as r:
        text = r.read()
        return json.loads(text) if text else None


def event(run, i):
    return json.dumps({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": f"AIDA{i:012d}", "arn": f"arn:aws:iam::111122223333:user/{run}-u{i}",
                         "accountId": "111122223333", "accessKeyId": f"AKIA{i:016d}", "userName": f"{run}-u{i}"},
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging", "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.9", "userAgent": "aws-cli/2.15.30",
        "requestParameters": {"name": "main-trail"}, "responseElements": None,
        "eventID": f"{run}-{i}", "readOnly": False, "eventType": "AwsApiCall", "managementEvent": True,
        "recipientAccountId": "111122223333", "eventCategory": "Management"})


def send_alerts(base, key, run, n, seconds):
    batch = 25
    gap = seconds / max(1, n / batch)
    for start in range(0, n, batch):
        body = "\n".join(event(run, i) for i in range(start, min(n, start + batch))).encode()
        http("POST", base + "/api/v1/threats/ingest/aws", body, {"x-api-key": key})
        time.sleep(gap)


def deliveries(base, token, status=None):
    items, offset = [], 0
    while True:
        q = f"/api/v1/notifications/deliveries?sink=soc&limit=500&offset={offset}" + (f"&status={status}" if status else "")
        page = http("GET", base + q, headers={"authorization": f"Bearer {token}"})
        items += page["items"]
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return items


def wait_drained(base, token, expect_sent, limit_secs):
    start = time.time()
    while time.time() - start < limit_secs:
        s = http("GET", base + "/api/v1/notifications", headers={"authorization": f"Bearer {token}"})["sinks"][0]
        if s["pending"] == 0 and s["sent"] >= expect_sent:
            return time.time() - start, s
        time.sleep(0.25)
    raise SystemExit(f"not drained after {limit_secs}s: {s}")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=1000)
    ap.add_argument("--down-secs", type=int, default=60)
    ap.add_argument("--latency-secs", type=int, default=60)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="cs-notify-bench-")
    standin = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests/support/standins.py"), "--secret", SECRET],
                               stdout=subprocess.PIPE, text=True)
    port = int(standin.stdout.readline().split()[-1])
    hook = f"http://127.0.0.1:{port}"
    cfg = os.path.join(tmp, "cfg.toml")
    with open(cfg, "w") as f:
        f.write(f'[[notify]]\nname = "soc"\nkind = "webhook"\nurl = "{hook}/webhook"\nsecret_env = "BENCH_HOOK"\nmin_level = "low"\n')
    env = dict(os.environ, BENCH_HOOK=SECRET, CLOUDSENTINEL_ADMIN_USER="admin", CLOUDSENTINEL_ADMIN_PASSWORD=PASSWORD,
               CLOUDSENTINEL_LOG="error", CLOUDSENTINEL_DETECTION__ANOMALY="false")
    serve = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", os.path.join(tmp, "data"), "--config", cfg],
                             stdout=subprocess.PIPE, text=True, env=env)
    base = serve.stdout.readline().strip().split()[-1]
    try:
        token = http("POST", base + "/api/v1/auth/login", {"username": "admin", "password": PASSWORD})["access_token"]
        key = http("POST", base + "/api/v1/api-keys", {"name": "bench"}, {"authorization": f"Bearer {token}"})["key"]
        print(f"machine: {os.cpu_count()} cores; webhook sink to a local receiver; SQLite synchronous=full")

        send_alerts(base, key, "lat", a.alerts, a.latency_secs)
        wait_drained(base, token, a.alerts, 120)
        lat = [d["latency_ms"] for d in deliveries(base, token, "sent")]
        print(f"1. latency, commit -> receiver's answer, {len(lat)} alerts over {a.latency_secs}s: "
              f"p50 {statistics.median(lat):.0f} ms, p95 {pct(lat, 95):.0f} ms, max {max(lat):.0f} ms")

        http("POST", hook + "/_down", b"")
        t0 = time.time()
        send_alerts(base, key, "out", a.alerts, min(a.down_secs * 0.8, 45))
        time.sleep(max(0.0, a.down_secs - (time.time() - t0)))
        failed = http("GET", base + "/health")["notifications"]["failing"]
        http("POST", hook + "/_up", b"")
        drain, s = wait_drained(base, token, 2 * a.alerts, 900)
        got = http("GET", hook + "/_received")
        created = [h["body"]["alert"]["entity"] for h in got["webhook"] if h["event"] == "alert.created"]
        ids = [h["delivery"] for h in got["webhook"]]
        out = [e for e in created if "/out-u" in e]
        print(f"2. outage: receiver down {a.down_secs}s while {a.alerts} alerts arrived (health said failing: {failed}); "
              f"after it returned, all drained in {drain:.1f}s; {len(set(out))} distinct alerts received of {a.alerts}, "
              f"{len(out) - len(set(out))} twice; deliveries {len(ids)}, repeated ids {len(ids) - len(set(ids))}; "
              f"refused by the receiver {len(got['refused'])}; sink sent {s['sent']}, retried {s['retried']}, dead {s['dead']}")
        ok = len(set(out)) == a.alerts and len(out) == a.alerts and len(ids) == len(set(ids)) and not got["refused"]
        print("result:", "every alert once" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        serve.terminate()
        serve.wait()
        standin.terminate()


if __name__ == "__main__":
    sys.exit(main())
