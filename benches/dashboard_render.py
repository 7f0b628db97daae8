#!/usr/bin/env python3
"""How fast the dashboard's pages are with 10,000 alerts stored (issue 6: p95 render < 100 ms).

Starts a real `cloudsentinel serve` (release build) on a fresh SQLite directory, ingests ALERTS
distinct CloudTrail StopLogging calls (one alert each: one rule, ALERTS principals) among
BENIGN ordinary calls, signs in through /ui/login like a browser, then measures:

  server:  wall time of GET <page> over loopback (request sent -> whole page received), ROUNDS
           times per page, for the alert queue (first page, sorted, searched, filtered, last
           page), one alert, the overview, incidents, events and the ATT&CK matrix;
  browser: with Debian's headless Chromium over WebDriver (if /usr/bin/chromedriver is there),
           navigation start -> load event end of the alert queue and the overview, BROWSER_ROUNDS
           times each: request, HTML parse, style, layout and the script, as a user waits for it.

    python3 benches/dashboard_render.py              # about 2 minutes
    EVENTS=1000000 ROUNDS=30 python3 benches/dashboard_render.py   # a million events stored
    ALERTS=10000 BENIGN=40000 ROUNDS=200 python3 benches/dashboard_render.py
Standard library only.
"""

import http.cookiejar
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ALERTS = int(os.environ.get("ALERTS", "10000"))
BENIGN = int(os.environ.get("BENIGN", "40000"))
if "EVENTS" in os.environ:  # EVENTS=1000000: that many events in all, ALERTS of them attacks
    BENIGN = int(os.environ["EVENTS"]) - ALERTS
ROUNDS = int(os.environ.get("ROUNDS", "200"))
BROWSER_ROUNDS = int(os.environ.get("BROWSER_ROUNDS", "40"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "cloudsentinel")
USER, PASSWORD = "bench", "bench-password-123"


def record(i, attack, t):
    user = f"user-{i:05d}"
    return {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": f"AIDA{i:016d}",
                         "arn": f"arn:aws:iam::111122223333:user/{user}", "accountId": "111122223333",
                         "accessKeyId": f"AKIA{i:016d}", "userName": user},
        "eventTime": t,
        "eventSource": "cloudtrail.amazonaws.com" if attack else "ec2.amazonaws.com",
        "eventName": "StopLogging" if attack else "DescribeInstances",
        "awsRegion": "us-east-1",
        "sourceIPAddress": f"203.0.{(i // 250) % 250}.{i % 250}",
        "userAgent": "aws-cli/2.15.30",
        "requestParameters": {"name": "main-trail"} if attack else None,
        "responseElements": None,
        "eventID": f"bench-{'a' if attack else 'b'}-{i}",
        "readOnly": not attack,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "111122223333",
        "eventCategory": "Management",
    }


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    data = tempfile.mkdtemp(prefix="cs-dash-bench-")
    env = dict(os.environ, CLOUDSENTINEL_ADMIN_USER=USER, CLOUDSENTINEL_ADMIN_PASSWORD=PASSWORD,
               CLOUDSENTINEL_LOG="warn")
    proc = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", data],
                            env=env, stdout=subprocess.PIPE, text=True)
    base = proc.stdout.readline().strip().removeprefix("CloudSentinel listening on ")
    try:
        run(base)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(data, ignore_errors=True)


def api(base, method, path, token=None, body=None, headers=None):
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    h.update(headers or {})
    data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method, headers=h)
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.loads(r.read() or b"null")


def run(base):
    token = api(base, "POST", "/api/v1/auth/login", body={"username": USER, "password": PASSWORD})["access_token"]
    key = api(base, "POST", "/api/v1/api-keys", token, {"name": "bench"})["key"]
    now = time.time()
    start = time.time()
    batch = []
    n = ALERTS + BENIGN
    for i in range(n):
        attack = i < ALERTS
        t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 86400 * 7 * (n - i) / n))
        batch.append(json.dumps(record(i if attack else i % 500, attack, t)))
        if len(batch) == 2000 or i == n - 1:
            api(base, "POST", "/api/v1/ingest", body="\n".join(batch).encode(), headers={"X-API-Key": key})
            batch = []
    while True:
        stats = api(base, "GET", "/api/v1/dashboard/stats", token)
        if stats["alerts_total"] >= ALERTS and stats["events_total"] >= n:
            break
        time.sleep(0.5)
    print(f"loaded {stats['events_total']} events, {stats['alerts_total']} alerts in {time.time() - start:.1f} s")

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = urllib.parse.urlencode({"username": USER, "password": PASSWORD, "next": "/ui"}).encode()
    opener.open(urllib.request.Request(base + "/ui/login", data=form, method="POST"), timeout=60).read()
    mid = api(base, "GET", "/api/v1/alerts?limit=1&offset=5000&sort=id", token)["items"][0]["id"]
    pages = [
        ("alert queue, first page", "/ui/alerts"),
        ("alert queue, sorted by level", "/ui/alerts?sort=level&order=desc"),
        ("alert queue, search", "/ui/alerts?q=user-0777&status=all"),
        ("alert queue, filtered", "/ui/alerts?min_level=high&account=111122223333&technique=T1562"),
        ("alert queue, last page", f"/ui/alerts?status=all&offset={ALERTS - 50}"),
        ("one alert", f"/ui/alerts/{mid}"),
        ("overview, 24 hours", "/ui"),
        ("overview, 7 days", "/ui?range=7d"),
        ("incidents", "/ui/incidents"),
        ("events", "/ui/events"),
        ("ATT&CK coverage", "/ui/coverage?by=hits"),
        ("events, search ip:", "/ui/events?q=" + urllib.parse.quote("ip:203.0.1.7")),
        ("events, search principal:", "/ui/events?q=" + urllib.parse.quote(
            "principal:arn:aws:iam::111122223333:user/user-00007")),
        ("events, free text", "/ui/events?q=main-trail"),
        ("events, action: + outcome:", "/ui/events?q=" + urllib.parse.quote("action:StopLogging outcome:success")),
        ("entity: principal", "/ui/entity/principal?v=" + urllib.parse.quote(
            "arn:aws:iam::111122223333:user/user-00007", safe="")),
        ("entity: IP address", "/ui/entity/ip?v=203.0.1.7"),
        ("entity: account", "/ui/entity/account?v=111122223333"),
        ("rules", "/ui/rules"),
        ("one rule", "/ui/rules/" + urllib.parse.quote(
            api(base, "GET", f"/api/v1/alerts/{mid}", token)["alert"]["rule_id"], safe="")),
        ("overview, 30 days", "/ui?range=30d"),
        ("settings", "/ui/settings"),
    ]
    print(f"\nserver: GET over loopback, {ROUNDS} rounds each (ms)")
    print(f"{'page':34} {'p50':>7} {'p95':>7} {'max':>7} {'KiB':>6}")
    results = {}
    for name, path in pages:
        times = []
        size = 0
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            with opener.open(base + path, timeout=60) as r:
                body = r.read()
                assert r.status == 200 and b"<main" in body, (path, r.status)
            times.append((time.perf_counter() - t0) * 1000)
            size = len(body)
        results[name] = times
        print(f"{name:34} {statistics.median(times):7.1f} {pct(times, 95):7.1f} {max(times):7.1f} {size / 1024:6.0f}")

    if not shutil.which("chromedriver") and not os.path.exists("/usr/bin/chromedriver"):
        print("\nbrowser: SKIPPED (no chromedriver: apt-get install chromium chromium-driver)")
        return
    browser(base)


def browser(base):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    drv = subprocess.Popen(["/usr/bin/chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    wd = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if api(wd, "GET", "/status")["value"]["ready"]:
                    break
            except OSError:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1366,900"]}}}}
        sid = api(wd, "POST", "/session", body=caps)["value"]["sessionId"]
        sess = f"/session/{sid}"

        def js(script):
            return api(wd, "POST", sess + "/execute/sync", body={"script": script, "args": []})["value"]

        def find(css):
            return api(wd, "POST", sess + "/element", body={"using": "css selector", "value": css})["value"]

        api(wd, "POST", sess + "/url", body={"url": base + "/ui/login"})
        for css, text in (("#username", USER), ("#password", PASSWORD)):
            el = list(find(css).values())[0]
            api(wd, "POST", f"{sess}/element/{el}/value", body={"text": text})
        el = list(find("#sign-in").values())[0]
        api(wd, "POST", f"{sess}/element/{el}/click", body={})
        print(f"\nbrowser: headless Chromium, navigation start -> load event end, {BROWSER_ROUNDS} rounds (ms)")
        print(f"{'page':34} {'p50':>7} {'p95':>7} {'max':>7}")
        for name, path in (("alert queue, first page", "/ui/alerts"),
                           ("alert queue, sorted by level", "/ui/alerts?sort=level&order=desc"),
                           ("overview, 24 hours", "/ui"),
                           ("events, search ip:", "/ui/events?q=ip%3A203.0.1.7"),
                           ("entity: principal", "/ui/entity/principal?v=" + urllib.parse.quote(
                               "arn:aws:iam::111122223333:user/user-00007", safe=""))):
            times = []
            for _ in range(BROWSER_ROUNDS):
                api(wd, "POST", sess + "/url", body={"url": base + path})
                t = js("const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime")
                times.append(float(t))
            print(f"{name:34} {statistics.median(times):7.1f} {pct(times, 95):7.1f} {max(times):7.1f}")
        api(wd, "DELETE", sess)
    finally:
        drv.terminate()
        drv.wait()


if __name__ == "__main__":
    sys.exit(main())
