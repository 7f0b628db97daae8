#!/usr/bin/env python3
"""Looks at every dashboard page of a running CloudSentinel the way the browser test does, to
fix what it finds: headless Chromium (Debian's chromium + chromium-driver) at 390 px and at
1440 px wide, sideways scrolling, axe-core's serious and critical violations (axe-core from the
npm registry: `npm install --prefix target/npm axe-core@4.14.1`), and a full-page screenshot of
each page at each width in target/ui-audit/.

    BASE=http://127.0.0.1:8000 USER=admin PASSWORD=... python3 benches/ui_audit.py [PATH ...]

With no paths it visits the main pages, the first alert, the first incident and the entity
pages of the first alert's principal and address.
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AXE = os.path.join(ROOT, "target/npm/node_modules/axe-core/axe.min.js")
SHOTS = os.path.join(ROOT, "target/ui-audit")
BASE = os.environ.get("BASE", "http://127.0.0.1:8000")
USER = os.environ.get("USER_NAME", os.environ.get("USER", "admin"))
PASSWORD = os.environ.get("PASSWORD", "")

PAGES = ["/ui", "/ui/alerts", "/ui/incidents", "/ui/events", "/ui/rules", "/ui/coverage",
         "/ui/models", "/ui/sources", "/ui/notifications", "/ui/audit", "/ui/users",
         "/ui/settings", "/ui/nowhere"]


def call(base, method, path, body=None, token=None):
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return json.loads(e.read() or b"null")


def default_pages():
    token = call(BASE, "POST", "/api/v1/auth/login", {"username": USER, "password": PASSWORD})["access_token"]
    pages = list(PAGES)
    alerts = call(BASE, "GET", "/api/v1/alerts?limit=1&sort=level&order=desc", token=token).get("items", [])
    if alerts:
        a = alerts[0]
        pages.append(f"/ui/alerts/{a['id']}")
        if a.get("rule_id"):
            pages.append("/ui/rules/" + urllib.parse.quote(a["rule_id"], safe=""))
        pages.append("/ui/entity/principal?v=" + urllib.parse.quote(a["entity"], safe=""))
    incidents = call(BASE, "GET", "/api/v1/incidents?limit=1", token=token).get("items", [])
    if incidents:
        pages.append(f"/ui/incidents/{incidents[0]['id']}")
    events = call(BASE, "GET", "/api/v1/events?limit=1", token=token).get("items", [])
    if events and events[0].get("source_ip"):
        pages.append("/ui/entity/ip?v=" + urllib.parse.quote(events[0]["source_ip"], safe=""))
    return pages


def main():
    pages = sys.argv[1:] or default_pages()
    axe = open(AXE).read()
    os.makedirs(SHOTS, exist_ok=True)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    drv = subprocess.Popen(["/usr/bin/chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    wd = f"http://127.0.0.1:{port}"
    problems = 0
    try:
        for _ in range(100):
            try:
                if call(wd, "GET", "/status")["value"]["ready"]:
                    break
            except OSError:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1440,900"]}}}}
        sess = "/session/" + call(wd, "POST", "/session", caps)["value"]["sessionId"]

        def js(script, asynchronous=False):
            path = "/execute/async" if asynchronous else "/execute/sync"
            return call(wd, "POST", sess + path, {"script": script, "args": []})["value"]

        def find(css):
            return list(call(wd, "POST", sess + "/element", {"using": "css selector", "value": css})["value"].values())[0]

        call(wd, "POST", sess + "/url", {"url": BASE + "/ui/login"})
        for css, text in (("#username", USER), ("#password", PASSWORD)):
            call(wd, "POST", f"{sess}/element/{find(css)}/value", {"text": text})
        call(wd, "POST", f"{sess}/element/{find('#sign-in')}/click", {})
        time.sleep(0.5)
        call(wd, "POST", sess + "/timeouts", {"script": 60000})
        for width in (390, 1440):
            call(wd, "POST", sess + "/window/rect", {"width": width, "height": 900})
            for path in pages:
                call(wd, "POST", sess + "/url", {"url": BASE + path})
                sw, cw = js("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
                wide = js("""return [...document.querySelectorAll('body *')].filter(e => {
                    const r = e.getBoundingClientRect(); return r.right > document.documentElement.clientWidth + 1
                      && getComputedStyle(e).position !== 'fixed' && !e.closest('.scroll-x');
                  }).slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
                      (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : ''))""")
                js(axe + "; return true")
                res = js("""const done = arguments[arguments.length - 1];
                    axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations
                      .filter(v => v.impact === 'serious' || v.impact === 'critical')
                      .map(v => ({id: v.id, impact: v.impact, n: v.nodes.length,
                                  nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || '').split('\\n').slice(0, 2).join(' '))}))))
                      .catch(e => done([{id: 'axe-error', impact: 'critical', n: 1, nodes: [String(e)]}]));""", True)
                h = js("return Math.min(document.documentElement.scrollHeight, 6000)")
                call(wd, "POST", sess + "/window/rect", {"width": width, "height": max(900, h)})
                name = path.strip("/").replace("/", "_").replace("?", "_").replace("=", "_")[:80] or "ui"
                shot = call(wd, "GET", sess + "/screenshot")["value"]
                import base64
                with open(os.path.join(SHOTS, f"{width}-{name}.png"), "wb") as f:
                    f.write(base64.b64decode(shot))
                call(wd, "POST", sess + "/window/rect", {"width": width, "height": 900})
                status = "ok" if sw <= cw and not res else "PROBLEM"
                problems += status != "ok"
                print(f"{width:5} {path:60} {status}" + (f"  scrolls sideways {sw}>{cw} {wide}" if sw > cw else ""))
                for v in res:
                    print(f"        axe {v['impact']} {v['id']} x{v['n']}")
                    for n in v["nodes"]:
                        print(f"            {n[:220]}")
        call(wd, "DELETE", sess)
    finally:
        drv.terminate()
        drv.wait()
    print(f"{problems} page views with problems; screenshots in {SHOTS}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
