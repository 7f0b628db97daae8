#!/usr/bin/env python3
"""Local stand-ins for the receivers CloudSentinel delivers to, speaking their protocols as the
real services document them, strict about what they accept, recording what they got.

  POST /webhook            a receiver that verifies X-CloudSentinel-Signature (v1=HMAC-SHA256 of
                           timestamp + "." + body under --secret) and refuses replays older than
                           five minutes (the README's example receiver does the same)
  POST /slack/...          a Slack incoming webhook: Block Kit limits checked, answers "ok"
  POST /v2/enqueue         PagerDuty Events API v2: routing key, actions, dedup keys, payload
  /api/now/table/incident  ServiceNow Table API: basic auth, GET by sysparm_query, POST, PATCH;
                           resolving needs close_code and close_notes (the default data policy)
  POST /ocsf               a collector of OCSF JSON Lines
  GET  /_received          everything accepted and refused so far, as JSON
  POST /_down, /_up        answer 503 to everything (but these) while down

Prints "listening on PORT" once ready. Usage: standins.py --secret S --user U --password P
"""
import argparse
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ARGS = None
LOCK = threading.Lock()
STATE = {
    "down": False,
    "webhook": [],
    "slack": [],
    "pagerduty": [],
    "pagerduty_incidents": {},
    "servicenow": {},
    "servicenow_calls": [],
    "ocsf": [],
    "refused": [],
}


def refuse(kind, why):
    STATE["refused"].append({"kind": kind, "why": why})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, code, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else (
            json.dumps(body).encode() if content_type == "application/json" else body.encode())
        self.send_response(code)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("content-length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/_received":
            with LOCK:
                return self.answer(200, STATE)
        with LOCK:
            if STATE["down"]:
                return self.answer(503, {"error": "down"})
            if url.path == "/api/now/table/incident":
                if not self.snow_auth():
                    return
                q = parse_qs(url.query).get("sysparm_query", [""])[0]
                STATE["servicenow_calls"].append({"method": "GET", "query": q})
                want = q.split("correlation_id=", 1)[1] if "correlation_id=" in q else None
                found = [i for i in STATE["servicenow"].values() if want and i["correlation_id"] == want]
                return self.answer(200, {"result": [{"sys_id": i["sys_id"], "state": i["state"]} for i in found][:1]})
        self.answer(404, {"error": "not found"})

    def snow_auth(self):
        expected = "Basic " + base64.b64encode(f"{ARGS.user}:{ARGS.password}".encode()).decode()
        if self.headers.get("authorization") != expected:
            refuse("servicenow", "bad credentials")
            self.answer(401, {"error": {"message": "User Not Authenticated"}, "status": "failure"})
            return False
        return True

    def do_PATCH(self):
        self.do_POST()

    def do_POST(self):
        url = urlparse(self.path)
        raw = self.body()
        with LOCK:
            if url.path == "/_down":
                STATE["down"] = True
                return self.answer(200, {"down": True})
            if url.path == "/_up":
                STATE["down"] = False
                return self.answer(200, {"down": False})
            if STATE["down"]:
                return self.answer(503, {"error": "down"})
            if url.path == "/webhook":
                return self.webhook(raw)
            if url.path.startswith("/slack/"):
                return self.slack(raw)
            if url.path == "/v2/enqueue":
                return self.pagerduty(raw)
            if url.path.startswith("/api/now/table/incident"):
                return self.servicenow(url.path, raw)
            if url.path == "/ocsf":
                if self.headers.get("authorization") != f"Bearer {ARGS.secret}":
                    refuse("ocsf", "bad token")
                    return self.answer(401, {"error": "token"})
                for line in raw.decode().splitlines():
                    if line.strip():
                        STATE["ocsf"].append(json.loads(line))
                return self.answer(200, {"ok": True})
        self.answer(404, {"error": "not found"})

    def webhook(self, raw):
        ts = self.headers.get("x-cloudsentinel-timestamp", "")
        sig = self.headers.get("x-cloudsentinel-signature", "")
        want = "v1=" + hmac.new(ARGS.secret.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
        if not ts.isdigit() or abs(time.time() - int(ts)) > 300:
            refuse("webhook", "stale or missing timestamp")
            return self.answer(401, {"error": "stale"})
        if not hmac.compare_digest(sig, want):
            refuse("webhook", "bad signature")
            return self.answer(401, {"error": "signature"})
        STATE["webhook"].append({
            "delivery": self.headers.get("x-cloudsentinel-delivery"),
            "event": self.headers.get("x-cloudsentinel-event"),
            "body": json.loads(raw),
        })
        self.answer(204, b"", "text/plain")

    def slack(self, raw):
        try:
            m = json.loads(raw)
        except ValueError:
            refuse("slack", "not JSON")
            return self.answer(400, "invalid_payload", "text/plain")
        problems = []
        if not isinstance(m.get("text"), str) or not m["text"]:
            problems.append("text")
        blocks = m.get("blocks")
        if not isinstance(blocks, list) or not blocks or len(blocks) > 50:
            problems.append("blocks")
        for b in blocks or []:
            t = b.get("type")
            if t == "header":
                if b["text"]["type"] != "plain_text" or len(b["text"]["text"]) > 150:
                    problems.append("header")
            elif t == "section":
                if "fields" in b and (len(b["fields"]) > 10 or any(len(f["text"]) > 2000 for f in b["fields"])):
                    problems.append("fields")
                if "text" in b and len(b["text"]["text"]) > 3000:
                    problems.append("section text")
            elif t == "context":
                if len(b["elements"]) > 10:
                    problems.append("context")
            else:
                problems.append(f"block type {t}")
        if problems:
            refuse("slack", problems)
            return self.answer(400, "invalid_blocks", "text/plain")
        STATE["slack"].append(m)
        self.answer(200, "ok", "text/plain")

    def pagerduty(self, raw):
        e = json.loads(raw)
        errors = []
        if len(e.get("routing_key", "")) != 32:
            errors.append("routing_key")
        action = e.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("event_action")
        key = e.get("dedup_key")
        if action != "trigger" and not key:
            errors.append("dedup_key")
        if key and len(key) > 255:
            errors.append("dedup_key length")
        if action == "trigger":
            p = e.get("payload") or {}
            if not p.get("summary") or len(p["summary"]) > 1024:
                errors.append("payload.summary")
            if not p.get("source"):
                errors.append("payload.source")
            if p.get("severity") not in ("critical", "error", "warning", "info"):
                errors.append("payload.severity")
        if errors:
            refuse("pagerduty", errors)
            return self.answer(400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors})
        key = key or uuid.uuid4().hex
        STATE["pagerduty"].append(e)
        inc = STATE["pagerduty_incidents"].setdefault(key, {"status": "none", "triggers": 0})
        if action == "trigger":
            inc["triggers"] += 1
            if inc["status"] != "acknowledged":
                inc["status"] = "triggered"
        elif action == "acknowledge" and inc["status"] == "triggered":
            inc["status"] = "acknowledged"
        elif action == "resolve":
            inc["status"] = "resolved"
        self.answer(202, {"status": "success", "message": "Event processed", "dedup_key": key})

    def servicenow(self, path, raw):
        if not self.snow_auth():
            return
        body = json.loads(raw)
        parts = path.rstrip("/").split("/")
        if self.command == "POST" and parts[-1] == "incident":
            sys_id = uuid.uuid4().hex
            inc = {"sys_id": sys_id, "number": f"INC{len(STATE['servicenow']) + 1:07d}", "state": "1", "work_notes": []}
            inc.update(body)
            STATE["servicenow"][sys_id] = inc
            STATE["servicenow_calls"].append({"method": "POST", "body": body})
            return self.answer(201, {"result": inc})
        if self.command == "PATCH":
            inc = STATE["servicenow"].get(parts[-1])
            if inc is None:
                return self.answer(404, {"error": {"message": "No Record found"}, "status": "failure"})
            if body.get("state") == "6" and not (body.get("close_code") and body.get("close_notes")):
                refuse("servicenow", "resolve without close_code/close_notes")
                return self.answer(403, {"error": {"message": "Data Policy Exception: close code and notes are mandatory"}, "status": "failure"})
            notes = body.pop("work_notes", None)
            if notes:
                inc["work_notes"].append(notes)
            inc.update(body)
            STATE["servicenow_calls"].append({"method": "PATCH", "body": body})
            return self.answer(200, {"result": inc})
        self.answer(405, {"error": "method"})


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--secret", required=True)
    ap.add_argument("--user", default="cs")
    ap.add_argument("--password", default="pw")
    ap.add_argument("--port", type=int, default=0)
    ARGS = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
