#!/usr/bin/env python3
"""Collection benchmark (issue 18): CloudTrail pulled from S3 through SQS, on moto's emulator.

  python3 benches/collect.py [--bin target/release/cloudsentinel] [--events 200000] [--latency-objects 40]

1. Latency: with the service running on the default poll settings (20 s long poll, 300 s
   visibility), objects of 100 events are uploaded one at a time, every 0.5 s; for each, the
   time from the end of its upload to the moment its events are stored (a search by one of its
   event ids finds it). Prints p50/p95/max.
2. Throughput: a backlog of `--events` events in 5,000-event gzip files (from `cloudsentinel
   generate`) is uploaded with the service stopped; the service is started and the time until
   every event is stored is measured. Prints events/s.

Needs `python3 -m pip install 'moto[server]'`. moto is a Python server on the same two cores:
its own cost is part of what is measured (reading an object from real S3 costs the collector a
TLS read, not a Python process's CPU).
"""
import argparse
import gzip
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3

REGION = "eu-west-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, secs=30):
    deadline = time.time() + secs
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.1)
    sys.exit(f"{url} did not answer")


class Service:
    def __init__(self, bin_, data, config, port):
        env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_EC2_METADATA_DISABLED="true", CLOUDSENTINEL_ADMIN_USER="bench",
                   CLOUDSENTINEL_ADMIN_PASSWORD="bench-password-123", CLOUDSENTINEL_LOG="error")
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([bin_, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}",
                                      "--config", config], env=env, stdout=subprocess.DEVNULL)
        wait_http(self.base + "/health")
        req = urllib.request.Request(self.base + "/api/v1/auth/login", method="POST",
                                     data=json.dumps({"username": "bench", "password": "bench-password-123"}).encode(),
                                     headers={"content-type": "application/json"})
        self.token = json.load(urllib.request.urlopen(req))["access_token"]

    def get(self, path):
        req = urllib.request.Request(self.base + path, headers={"authorization": f"Bearer {self.token}"})
        return json.load(urllib.request.urlopen(req, timeout=30))

    def events(self):
        return self.get("/api/v1/dashboard/stats")["events_total"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def record(i, j, t):
    return {"eventVersion": "1.09", "eventTime": t, "eventSource": "ec2.amazonaws.com",
            "eventName": "DescribeInstances", "awsRegion": REGION, "sourceIPAddress": "203.0.113.9",
            "userAgent": "aws-cli/2.15.30", "eventID": f"lat-{i}-{j}", "readOnly": True,
            "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": "111122223333",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "accountId": "111122223333",
                             "arn": f"arn:aws:iam::111122223333:user/u{j % 5}", "userName": f"u{j % 5}"}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/cloudsentinel")
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--latency-objects", type=int, default=40)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="cs-collect-")
    moto_port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{moto_port}"
    wait_http(endpoint + "/moto-api/")
    kw = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    s3, sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)
    results = {"machine": f"{os.cpu_count()} cores", "moto": __import__("moto").__version__}
    try:
        for phase in ("latency", "throughput"):
            bucket = f"trail-{phase}"
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
            q = sqs.create_queue(QueueName=f"ct-{phase}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
                "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
            config = os.path.join(work, f"{phase}.toml")
            with open(config, "w") as f:
                # The default poll settings: only the queue and the emulator are given.
                f.write(f'[[sources]]\nkind = "aws-s3-sqs"\nname = "{phase}"\nqueue_url = "{q}"\n'
                        f'region = "{REGION}"\nendpoint_url = "{endpoint}"\n')
            data = os.path.join(work, f"{phase}-data")
            if phase == "latency":
                svc = Service(args.bin, data, config, free_port())
                lat = []
                for i in range(args.latency_objects):
                    t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                    body = gzip.compress(json.dumps({"Records": [record(i, j, t) for j in range(100)]}).encode())
                    key = f"AWSLogs/111122223333/CloudTrail/{REGION}/2026/11/20/111122223333_CloudTrail_{REGION}_20261120T1000Z_lat{i}.json.gz"
                    s3.put_object(Bucket=bucket, Key=key, Body=body)
                    uploaded = time.time()
                    while svc.get(f"/api/v1/events?q=lat-{i}-99&limit=1")["total"] == 0:
                        time.sleep(0.02)
                    lat.append(time.time() - uploaded)
                    time.sleep(0.5)
                svc.stop()
                lat.sort()
                results["latency_s"] = {"objects": len(lat), "p50": round(statistics.median(lat), 3),
                                        "p95": round(lat[int(0.95 * (len(lat) - 1))], 3), "max": round(lat[-1], 3)}
            else:
                corpus = os.path.join(work, "corpus")
                subprocess.run([args.bin, "generate", "--out", corpus, "--events", str(args.events),
                                "--layout", "s3", "--per-file", "5000", "--gzip"], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                files = []
                for root, _, names in os.walk(corpus):
                    files += [os.path.join(root, n) for n in names if n.endswith(".json.gz")]
                for path in sorted(files):
                    with open(path, "rb") as f:
                        s3.put_object(Bucket=bucket, Key=os.path.relpath(path, corpus), Body=f.read())
                started = time.time()
                svc = Service(args.bin, data, config, free_port())
                while svc.events() < args.events:
                    time.sleep(0.2)
                took = time.time() - started
                svc.stop()
                results["throughput"] = {"events": args.events, "objects": len(files),
                                         "seconds": round(took, 2), "events_per_s": round(args.events / took)}
            print(json.dumps({phase: results["latency_s" if phase == "latency" else "throughput"]}), flush=True)
    finally:
        moto.terminate()
        moto.wait()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
