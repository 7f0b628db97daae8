#!/usr/bin/env python3
"""Containment benchmark (issue 19), on moto's AWS emulator:

  python3 benches/respond.py [--bin target/release/cloudsentinel] [--alerts 20]

For each of N alerts (a user's console password set by another IAM user, which the built-in
playbook aws-console-takeover answers): the time from ingesting the event to the proposal being
available on the alert (GET /api/v1/alerts/{id}/responses answers it), and, after a responder
proposes and another approves, the time of the run (execute, record, verify) until it answers
"done, verified". Prints p50/p95/max of both.

Needs `python3 -m pip install 'moto[server]'`; moto runs on the same cores.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import boto3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url):
    for _ in range(300):
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.1)
    sys.exit(f"{url} did not answer")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/cloudsentinel")
    ap.add_argument("--alerts", type=int, default=20)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="cs-respond-")
    moto_port, port = free_port(), free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{moto_port}"
    wait_http(endpoint + "/moto-api/")
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    for i in range(args.alerts):
        iam.create_user(UserName=f"target{i}")
        iam.create_login_profile(UserName=f"target{i}", Password="Old-Passw0rd!x")
    config = os.path.join(work, "cs.toml")
    with open(config, "w") as f:
        f.write(f'[respond]\nendpoint_url = "{endpoint}"\nmax_per_hour = 1000\n')
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_EC2_METADATA_DISABLED="true", CLOUDSENTINEL_ADMIN_USER="bench",
               CLOUDSENTINEL_ADMIN_PASSWORD="bench-password-123", CLOUDSENTINEL_LOG="error")
    svc = subprocess.Popen([args.bin, "serve", "--data-dir", os.path.join(work, "data"), "--listen",
                            f"127.0.0.1:{port}", "--config", config], env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health")

    def req(method, path, body=None, token=None, key=None):
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        if key:
            headers["x-api-key"] = key
        r = urllib.request.Request(base + path, method=method, headers=headers,
                                   data=json.dumps(body).encode() if body is not None else None)
        try:
            return json.load(urllib.request.urlopen(r, timeout=60))
        except urllib.error.HTTPError as e:
            sys.exit(f"{method} {path}: {e.code} {e.read().decode()}")

    try:
        admin = req("POST", "/api/v1/auth/login", {"username": "bench", "password": "bench-password-123"})["access_token"]
        key = req("POST", "/api/v1/api-keys", {"name": "bench"}, admin)["key"]
        for name in ("ann", "bob"):
            req("POST", "/api/v1/auth/register", {"username": name, "password": "password-for-bench-1", "role": "responder"}, admin)
        ann = req("POST", "/api/v1/auth/login", {"username": "ann", "password": "password-for-bench-1"})["access_token"]
        bob = req("POST", "/api/v1/auth/login", {"username": "bob", "password": "password-for-bench-1"})["access_token"]
        to_proposal, to_contained = [], []
        for i in range(args.alerts):
            record = {"eventVersion": "1.09", "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      "eventSource": "iam.amazonaws.com", "eventName": "CreateLoginProfile", "awsRegion": "us-east-1",
                      "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.30", "eventID": f"bench-{i}",
                      "readOnly": False, "eventType": "AwsApiCall", "managementEvent": True,
                      "recipientAccountId": "123456789012",
                      "userIdentity": {"type": "IAMUser", "principalId": f"AIDA{i}", "accountId": "123456789012",
                                       "arn": f"arn:aws:iam::123456789012:user/actor{i}", "userName": f"actor{i}",
                                       "accessKeyId": f"AKIABENCH{i:011d}"},
                      "requestParameters": {"userName": f"target{i}"}}
            started = time.time()
            req("POST", "/api/v1/ingest", record, key=key)
            while True:
                alerts = req("GET", "/api/v1/alerts?rule=2cd0df6e-527e-4a3e-9eb6-396414627484&limit=500", token=admin)
                mine = [a for a in alerts["items"] if f"bench-{i}" in a["event_ids"]]
                if mine:
                    alert = mine[0]["id"]
                    proposals = req("GET", f"/api/v1/alerts/{alert}/responses", token=ann)["proposals"]
                    if proposals and proposals[0]["action"]:
                        break
                time.sleep(0.005)
            to_proposal.append(time.time() - started)
            rid = req("POST", f"/api/v1/alerts/{alert}/responses",
                      {"action": proposals[0]["action"], "playbook": proposals[0]["playbook"]}, ann)["id"]
            approved = time.time()
            req("POST", f"/api/v1/responses/{rid}/approve", token=bob)
            ran = req("POST", f"/api/v1/responses/{rid}/run", token=bob)
            if ran["status"] != "done" or not ran["verified"]:
                sys.exit(f"not contained: {ran}")
            to_contained.append(time.time() - approved)

        def summary(xs):
            xs = sorted(xs)
            return {"n": len(xs), "p50_ms": round(statistics.median(xs) * 1000, 1),
                    "p95_ms": round(xs[int(0.95 * (len(xs) - 1))] * 1000, 1), "max_ms": round(xs[-1] * 1000, 1)}

        print(json.dumps({"machine": f"{os.cpu_count()} cores",
                          "event_to_proposal": summary(to_proposal),
                          "approval_to_verified_containment": summary(to_contained)}))
    finally:
        svc.terminate()
        svc.wait()
        moto.terminate()
        moto.wait()


if __name__ == "__main__":
    main()
