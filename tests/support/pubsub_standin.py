#!/usr/bin/env python3
"""A stand-in for Google Cloud Pub/Sub's REST API (v1) and Google's OAuth token endpoint, for the
collection tests: pubsub_standin.py PORT [SERVICE_ACCOUNT_PUBLIC_KEY_PEM_FILE]

- POST /v1/projects/P/topics/T:publish {"messages": [{"data": base64}]} -> {"messageIds"}
  (every subscription of the topic gets the messages; subscriptions are created by
  POST /test/subscriptions {"topic", "subscription", "ack_deadline"})
- POST /v1/projects/P/subscriptions/S:pull {"maxMessages"} -> {"receivedMessages": [...]}
  A message not acknowledged within its ack deadline is delivered again (deliveryAttempt + 1).
- POST ...:acknowledge {"ackIds"}, POST ...:modifyAckDeadline {"ackIds", "ackDeadlineSeconds"}
- POST /token: the OAuth 2.0 JWT-bearer grant. With a public key given, the assertion's RS256
  signature, audience and expiry are checked (with `cryptography`), and only tokens issued here
  are accepted by the Pub/Sub calls.
- GET /test/stats -> {"subscription": {"waiting", "in_flight", "acked"}}
Errors use Google's shape: {"error": {"code", "message", "status"}}.
"""
import base64
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
SUBS = {}          # name -> {"topic", "deadline", "queue": [msg], "out": {ack_id: (msg, until)}, "acked": n}
TOKENS = set()
PUBLIC_KEY = None
COUNTER = [0]


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def check_assertion(assertion, aud):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    head, claims, sig = assertion.split(".")
    PUBLIC_KEY.verify(b64url(sig), f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
    c = json.loads(b64url(claims))
    if json.loads(b64url(head)).get("alg") != "RS256":
        raise ValueError("alg is not RS256")
    if c.get("aud") != aud:
        raise ValueError(f"aud {c.get('aud')} is not {aud}")
    if not c["iat"] - 60 <= time.time() <= c["exp"]:
        raise ValueError("expired or not yet valid")
    if "pubsub" not in c.get("scope", ""):
        raise ValueError("no pubsub scope")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, code, status, message):
        self.answer(code, {"error": {"code": code, "message": message, "status": status}})

    def do_GET(self):
        if self.path == "/test/stats":
            with LOCK:
                self.answer(200, {n: {"waiting": len(s["queue"]), "in_flight": len(s["out"]), "acked": s["acked"]}
                                  for n, s in SUBS.items()})
        else:
            self.error(404, "NOT_FOUND", self.path)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path == "/token":
            form = dict(p.split("=", 1) for p in body.decode().split("&"))
            try:
                if PUBLIC_KEY is not None:
                    check_assertion(form["assertion"], f"http://{self.headers['host']}/token")
            except Exception as e:
                return self.answer(400, {"error": "invalid_grant", "error_description": str(e)})
            token = secrets.token_hex(16)
            TOKENS.add(token)
            return self.answer(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})
        req = json.loads(body or b"{}")
        if self.path == "/test/subscriptions":
            with LOCK:
                SUBS[req["subscription"]] = {"topic": req["topic"], "deadline": req.get("ack_deadline", 10),
                                             "queue": [], "out": {}, "acked": 0}
            return self.answer(200, {})
        if PUBLIC_KEY is not None and not self.path.endswith(":publish"):
            auth = self.headers.get("authorization", "")
            if auth.removeprefix("Bearer ") not in TOKENS:
                return self.error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        name, _, op = self.path.removeprefix("/v1/").partition(":")
        with LOCK:
            self.expire()
            if op == "publish":
                ids = []
                for m in req["messages"]:
                    COUNTER[0] += 1
                    ids.append(str(COUNTER[0]))
                    for s in SUBS.values():
                        if s["topic"] == name:
                            s["queue"].append({"messageId": ids[-1], "data": m["data"], "attempt": 0,
                                               "publishTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
                return self.answer(200, {"messageIds": ids})
            sub = SUBS.get(name)
            if sub is None:
                return self.error(404, "NOT_FOUND", f"Resource not found (resource={name}).")
            if op == "pull":
                out = []
                while sub["queue"] and len(out) < req.get("maxMessages", 1):
                    m = sub["queue"].pop(0)
                    m["attempt"] += 1
                    ack = secrets.token_hex(8)
                    sub["out"][ack] = (m, time.time() + sub["deadline"])
                    out.append({"ackId": ack, "deliveryAttempt": m["attempt"],
                                "message": {"data": m["data"], "messageId": m["messageId"], "publishTime": m["publishTime"]}})
                return self.answer(200, {"receivedMessages": out} if out else {})
            if op == "acknowledge":
                for a in req["ackIds"]:
                    if sub["out"].pop(a, None):
                        sub["acked"] += 1
                return self.answer(200, {})
            if op == "modifyAckDeadline":
                for a in req["ackIds"]:
                    if a in sub["out"]:
                        sub["out"][a] = (sub["out"][a][0], time.time() + req["ackDeadlineSeconds"])
                return self.answer(200, {})
        self.error(404, "NOT_FOUND", self.path)

    @staticmethod
    def expire():
        now = time.time()
        for s in SUBS.values():
            for a, (m, until) in list(s["out"].items()):
                if until < now:
                    del s["out"][a]
                    s["queue"].append(m)


def main():
    global PUBLIC_KEY
    if len(sys.argv) > 2:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
        PUBLIC_KEY = load_pem_public_key(open(sys.argv[2], "rb").read())
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
