#!/usr/bin/env python3
"""Signs requests with botocore's own SigV4 signer, to check ours against it.

Reads JSON on stdin: [{"method", "url", "headers": {...}, "body", "service", "region",
"time" (YYYYMMDDTHHMMSSZ), "access_key", "secret_key", "token"?}], prints the Authorization
header botocore computes for each, one JSON list."""
import datetime
import json
import sys
from unittest import mock

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def main():
    out = []
    for r in json.load(sys.stdin):
        creds = Credentials(r["access_key"], r["secret_key"], r.get("token"))
        req = AWSRequest(method=r["method"], url=r["url"], data=r["body"].encode(), headers=r["headers"])
        signer = (S3SigV4Auth if r["service"] == "s3" else SigV4Auth)(creds, r["service"], r["region"])
        when = datetime.datetime.strptime(r["time"], "%Y%m%dT%H%M%SZ")
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            signer.add_auth(req)
        out.append(req.headers["Authorization"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
