#!/usr/bin/env python3
"""A local SMTP server (aiosmtpd, from PyPI) standing in for a mail relay: STARTTLS required,
AUTH LOGIN/PLAIN required over TLS, messages appended as JSON lines to --out.

Makes its own test CA and server certificate (openssl) in --tls-dir; the CA is ca.pem there.
Prints "listening on PORT" once ready."""
import argparse
import json
import socket
import ssl
import subprocess
import time
from email import message_from_bytes
from email.policy import default
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def make_certs(d: Path):
    d.mkdir(parents=True, exist_ok=True)
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "ca.key"),
        "-out", str(d / "ca.pem"), "-days", "2", "-subj", "/CN=CloudSentinel test CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "server.key"),
        "-out", str(d / "server.csr"), "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"),
        "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-out", str(d / "server.pem"),
        "-days", "2", "-extfile", str(d / "ext.cnf"))


class Handler:
    def __init__(self, out):
        self.out = out

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.content, policy=default)
        parts = [p.get_content_type() for p in msg.walk() if not p.is_multipart()]
        bodies = {p.get_content_type(): p.get_content() for p in msg.walk() if not p.is_multipart()}
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "subject": str(msg["subject"]),
            "content_type": msg.get_content_type(),
            "parts": parts,
            "text": bodies.get("text/plain", ""),
            "html": bodies.get("text/html", ""),
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated),
        }
        with open(self.out, "a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 Message accepted"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tls-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    a = ap.parse_args()
    d = Path(a.tls_dir)
    make_certs(d)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(d / "server.pem", d / "server.key")

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == a.user
              and auth_data.password.decode() == a.password)
        return AuthResult(success=ok, handled=False)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Handler(a.out), hostname="127.0.0.1", port=port, tls_context=ctx,
                            require_starttls=True, authenticator=authenticator,
                            auth_require_tls=True, auth_required=True)
    controller.start()
    print(f"listening on {port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
