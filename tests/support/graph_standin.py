#!/usr/bin/env python3
"""A stand-in for Microsoft Graph (v1.0) and the Entra ID token endpoint, for the containment
tests: graph_standin.py PORT

- POST /<tenant>/oauth2/v2.0/token: client credentials (client_id "cs-app", secret
  "cs-secret", scope https://graph.microsoft.com/.default) -> a bearer token; Graph calls need
  one.
- GET /v1.0/users/<id>, PATCH /v1.0/users/<id> {"accountEnabled"},
  POST /v1.0/users/<id>/revokeSignInSessions
- GET /v1.0/applications/<id>, POST .../removePassword {"keyId"}, POST .../addPassword
  {"passwordCredential": {...}} -> {"keyId", "secretText"}
- A user named denied@... answers 403 Authorization_RequestDenied.
- GET /test/state: users, applications (without secrets), revocations.
Users mallory@contoso.com and denied@contoso.com exist (enabled); application app-1 has one
password (key k-1).
"""
import json
import secrets
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
TOKENS = set()
USERS = {"mallory@contoso.com": {"accountEnabled": True}, "denied@contoso.com": {"accountEnabled": True}}
APPS = {"app-1": [{"keyId": "k-1", "displayName": "ci deploy", "endDateTime": "2027-06-01T00:00:00Z"}]}
REVOKED = []


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def answer(self, code, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, code, err, message):
        self.answer(code, {"error": {"code": err, "message": message}})

    def route(self, method):
        path = urllib.parse.urlparse(self.path).path
        n = int(self.headers.get("content-length", 0))
        body = self.rfile.read(n) if n else b""
        if method == "GET" and path == "/test/state":
            with LOCK:
                return self.answer(200, {"users": USERS, "revoked": REVOKED,
                                         "apps": {a: [c["keyId"] for c in cs] for a, cs in APPS.items()}})
        if method == "POST" and path.endswith("/oauth2/v2.0/token"):
            form = dict(urllib.parse.parse_qsl(body.decode()))
            if form.get("client_id") != "cs-app" or form.get("client_secret") != "cs-secret" \
                    or form.get("scope") != "https://graph.microsoft.com/.default":
                return self.answer(401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})
            t = secrets.token_hex(16)
            TOKENS.add(t)
            return self.answer(200, {"access_token": t, "expires_in": 3600, "token_type": "Bearer"})
        if self.headers.get("authorization", "").removeprefix("Bearer ") not in TOKENS:
            return self.error(401, "InvalidAuthenticationToken", "Access token is empty.")
        parts = [urllib.parse.unquote(p) for p in path.removeprefix("/v1.0/").split("/")]
        req = json.loads(body or b"{}")
        with LOCK:
            if parts[0] == "users" and len(parts) >= 2:
                user = USERS.get(parts[1])
                if user is None:
                    return self.error(404, "Request_ResourceNotFound", f"Resource '{parts[1]}' does not exist.")
                if parts[1].startswith("denied@"):
                    return self.error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
                if len(parts) == 2 and method == "GET":
                    return self.answer(200, {"id": parts[1], "accountEnabled": user["accountEnabled"]})
                if len(parts) == 2 and method == "PATCH":
                    user["accountEnabled"] = bool(req["accountEnabled"])
                    return self.answer(204)
                if parts[2:] == ["revokeSignInSessions"] and method == "POST":
                    REVOKED.append(parts[1])
                    return self.answer(200, {"value": True})
            if parts[0] == "applications" and len(parts) >= 2 and parts[1] in APPS:
                creds = APPS[parts[1]]
                if len(parts) == 2 and method == "GET":
                    return self.answer(200, {"id": parts[1], "passwordCredentials": creds})
                if parts[2:] == ["removePassword"]:
                    if not any(c["keyId"] == req["keyId"] for c in creds):
                        return self.error(404, "Request_ResourceNotFound", "No password credential with that key.")
                    APPS[parts[1]] = [c for c in creds if c["keyId"] != req["keyId"]]
                    return self.answer(204)
                if parts[2:] == ["addPassword"]:
                    c = dict(req["passwordCredential"], keyId=secrets.token_hex(4))
                    creds.append(c)
                    return self.answer(200, dict(c, secretText=secrets.token_urlsafe(30)))
        self.error(404, "Request_ResourceNotFound", self.path)

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PATCH(self):
        self.route("PATCH")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
