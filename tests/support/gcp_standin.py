#!/usr/bin/env python3
"""A stand-in for the Google Cloud IAM API (service account keys) and the Resource Manager API
(project IAM policies), and Google's OAuth token endpoint, for the containment tests:
gcp_standin.py PORT [SERVICE_ACCOUNT_PUBLIC_KEY_PEM_FILE]

- POST /token: the OAuth 2.0 JWT-bearer grant. With a public key given, the assertion's RS256
  signature, audience, expiry and the cloud-platform scope are checked (with `cryptography`),
  and only tokens issued here are accepted by the API calls.
- GET /v1/projects/P/serviceAccounts/E/keys/K -> the key ("disabled": true only when it is)
- POST /v1/projects/P/serviceAccounts/E/keys/K:disable, ...:enable -> {}
- POST /v1/projects/P:getIamPolicy {"options": {"requestedPolicyVersion"}} -> the policy with
  its etag (a policy with conditions needs version 3 asked for)
- POST /v1/projects/P:setIamPolicy {"policy"}: the etag must be the current one (409 ABORTED
  otherwise; this stand-in also refuses a policy without etag, which Google would accept, to
  check that clients send the one they read), bindings need members, conditions need version 3.
- POST /test/deny {"permissions": [...]}: calls needing one of those IAM permissions answer 403
  PERMISSION_DENIED as Google does, naming the permission.
- POST /test/concurrent-change {"project", "binding"}: right after the next getIamPolicy of the
  project, the binding is added (as if someone else changed the policy meanwhile).
- GET /test/state: keys (name -> disabled), policies (project -> policy), calls ("METHOD path").
Errors use Google's shape: {"error": {"code", "message", "status"}}.

Project nw-prod-4821 holds the service accounts billing-exporter@ (key 5f2c0a8e..., enabled;
key 0d1e2f3a..., disabled) and cloudsentinel@ (key 7c7c7c7c...), and a policy in which
user:d.ferreira.contractor@gmail.com is owner (beside a group), owner under a condition, and
viewer.
"""
import base64
import copy
import json
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROJECT = "nw-prod-4821"
BILLING = f"billing-exporter@{PROJECT}.iam.gserviceaccount.com"
CLOUDSENTINEL = f"cloudsentinel@{PROJECT}.iam.gserviceaccount.com"
CONTRACTOR = "user:d.ferreira.contractor@gmail.com"

LOCK = threading.Lock()
TOKENS = set()
PUBLIC_KEY = None
DENIED = set()
CALLS = []
CONCURRENT = {}  # project -> binding to add right after its next getIamPolicy
KEYS = {
    f"projects/{PROJECT}/serviceAccounts/{BILLING}/keys/5f2c0a8e4b1d9c7f3e6a2b0d8c4f1e9a7b3c5d20": False,
    f"projects/{PROJECT}/serviceAccounts/{BILLING}/keys/0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e": True,
    f"projects/{PROJECT}/serviceAccounts/{CLOUDSENTINEL}/keys/7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c": False,
}
COUNTER = [0]


def etag():
    COUNTER[0] += 1
    return base64.b64encode(f"BwY{COUNTER[0]:05d}".encode()).decode()


POLICIES = {
    PROJECT: {
        "version": 3,
        "etag": etag(),
        "bindings": [
            {"role": "roles/owner", "members": ["group:gcp-admins@northwind-labs.com", CONTRACTOR]},
            {"role": "roles/owner", "members": [CONTRACTOR],
             "condition": {"title": "until 2027", "expression": "request.time < timestamp(\"2027-01-01T00:00:00Z\")"}},
            {"role": "roles/viewer", "members": [CONTRACTOR]},
            {"role": "roles/editor", "members": [f"serviceAccount:{CLOUDSENTINEL}"]},
        ],
        "auditConfigs": [{"service": "allServices", "auditLogConfigs": [{"logType": "ADMIN_READ"}]}],
    }
}


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
    if "https://www.googleapis.com/auth/cloud-platform" not in c.get("scope", "").split():
        raise ValueError("no cloud-platform scope")


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

    def denied(self, permission, resource):
        if permission in DENIED:
            self.error(403, "PERMISSION_DENIED",
                       f"Permission '{permission}' denied on resource '{resource}' (or it may not exist).")
            return True
        return False

    def route(self, method):
        path = urllib.parse.urlparse(self.path).path
        n = int(self.headers.get("content-length", 0))
        body = self.rfile.read(n) if n else b""
        if method == "GET" and path == "/test/state":
            with LOCK:
                return self.answer(200, {"keys": KEYS, "policies": POLICIES, "calls": CALLS})
        if method == "POST" and path == "/token":
            form = dict(urllib.parse.parse_qsl(body.decode()))
            try:
                if PUBLIC_KEY is not None:
                    check_assertion(form["assertion"], f"http://{self.headers['host']}/token")
            except Exception as e:
                return self.answer(400, {"error": "invalid_grant", "error_description": str(e)})
            token = secrets.token_hex(16)
            TOKENS.add(token)
            return self.answer(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})
        req = json.loads(body or b"{}")
        if method == "POST" and path == "/test/deny":
            with LOCK:
                DENIED.clear()
                DENIED.update(req.get("permissions", []))
            return self.answer(200, {})
        if method == "POST" and path == "/test/concurrent-change":
            with LOCK:
                CONCURRENT[req["project"]] = req["binding"]
            return self.answer(200, {})
        if PUBLIC_KEY is not None:
            if self.headers.get("authorization", "").removeprefix("Bearer ") not in TOKENS:
                return self.error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        with LOCK:
            CALLS.append(f"{method} {path}")
            name, _, verb = urllib.parse.unquote(path.removeprefix("/v1/")).partition(":")
            parts = name.split("/")
            if len(parts) == 6 and parts[0] == "projects" and parts[2] == "serviceAccounts" and parts[4] == "keys":
                return self.key(method, name, verb)
            if len(parts) == 2 and parts[0] == "projects" and method == "POST":
                return self.policy(parts[1], verb, req)
        self.error(404, "NOT_FOUND", f"{method} {self.path}")

    def key(self, method, name, verb):
        permission = {"": "iam.serviceAccountKeys.get", "disable": "iam.serviceAccountKeys.disable",
                      "enable": "iam.serviceAccountKeys.enable"}.get(verb)
        if permission is None or (method == "GET") != (verb == ""):
            return self.error(404, "NOT_FOUND", f"{method} {name}:{verb}")
        if self.denied(permission, name):
            return
        if name not in KEYS:
            return self.error(404, "NOT_FOUND", f"Service account key {name} does not exist.")
        if verb == "":
            key = {"name": name, "keyAlgorithm": "KEY_ALG_RSA_2048", "keyOrigin": "GOOGLE_PROVIDED",
                   "keyType": "USER_MANAGED", "validAfterTime": "2026-10-14T09:12:33Z",
                   "validBeforeTime": "9999-12-31T23:59:59Z"}
            if KEYS[name]:
                key["disabled"] = True
            return self.answer(200, key)
        KEYS[name] = verb == "disable"
        return self.answer(200, {})

    def policy(self, project, verb, req):
        resource = f"projects/{project}"
        if verb == "getIamPolicy":
            if self.denied("resourcemanager.projects.getIamPolicy", resource):
                return
            policy = POLICIES.get(project)
            if policy is None:
                return self.error(403, "PERMISSION_DENIED",
                                  f"The caller does not have permission on {resource} (or it may not exist).")
            conditional = any("condition" in b for b in policy["bindings"])
            if conditional and req.get("options", {}).get("requestedPolicyVersion", 1) < 3:
                return self.error(400, "INVALID_ARGUMENT",
                                  "The policy has conditional bindings: request policy version 3.")
            answer = copy.deepcopy(policy)
            change = CONCURRENT.pop(project, None)
            if change is not None:
                policy["bindings"].append(change)
                policy["etag"] = etag()
            return self.answer(200, answer)
        if verb == "setIamPolicy":
            if self.denied("resourcemanager.projects.setIamPolicy", resource):
                return
            current = POLICIES.get(project)
            new = req.get("policy")
            if current is None or not isinstance(new, dict):
                return self.error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
            if "etag" not in new:
                return self.error(400, "INVALID_ARGUMENT", "This stand-in wants the etag that was read.")
            if new["etag"] != current["etag"]:
                return self.error(409, "ABORTED",
                                  "There were concurrent policy changes. Please retry the whole "
                                  "read-modify-write with exponential backoff.")
            for b in new.get("bindings", []):
                if not b.get("role") or not b.get("members"):
                    return self.error(400, "INVALID_ARGUMENT", f"A binding needs a role and members: {b}")
                if "condition" in b and new.get("version") != 3:
                    return self.error(400, "INVALID_ARGUMENT",
                                      "A policy with conditional bindings must be version 3.")
            stored = copy.deepcopy(new)
            stored["etag"] = etag()
            stored.setdefault("version", 1)
            stored.setdefault("bindings", [])
            POLICIES[project] = stored
            return self.answer(200, stored)
        self.error(404, "NOT_FOUND", f"{resource}:{verb}")

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")


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
