#!/usr/bin/env python3
"""Drives moto's AWS emulator (PyPI: moto[server]) for the collection tests, with boto3.

Reads one JSON command on stdin, prints one JSON answer:
  {"op": "setup", "endpoint": URL, "bucket": B, "queue": Q, "max_receives": N}
      a bucket whose object-created notifications under AWSLogs/ go to queue Q, Q with a
      dead-letter queue Q-dlq after N receives; answers {"queue_url", "dlq_url"}
  {"op": "put", "endpoint": URL, "bucket": B, "objects": [{"key", "text" | "gzip_text"}]}
  {"op": "send", "endpoint": URL, "queue_url": U, "bodies": [str]}
  {"op": "stats", "endpoint": URL, "queue_url": U}
      answers {"waiting", "in_flight"}
"""
import gzip
import json
import sys

import boto3

REGION = "eu-west-1"


def clients(endpoint):
    kw = dict(endpoint_url=endpoint, region_name=REGION,
              aws_access_key_id="testing", aws_secret_access_key="testing")
    return boto3.client("s3", **kw), boto3.client("sqs", **kw)


def main():
    cmd = json.load(sys.stdin)
    s3, sqs = clients(cmd["endpoint"])
    op = cmd["op"]
    if op == "setup":
        s3.create_bucket(Bucket=cmd["bucket"],
                         CreateBucketConfiguration={"LocationConstraint": REGION})
        dlq = sqs.create_queue(QueueName=cmd["queue"] + "-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(cmd["max_receives"])})
        q = sqs.create_queue(QueueName=cmd["queue"], Attributes={"RedrivePolicy": redrive})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s3.put_bucket_notification_configuration(
            Bucket=cmd["bucket"],
            NotificationConfiguration={"QueueConfigurations": [{
                "QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "AWSLogs/"}]}}}]})
        print(json.dumps({"queue_url": q, "dlq_url": dlq}))
    elif op == "put":
        for o in cmd["objects"]:
            body = gzip.compress(o["gzip_text"].encode()) if "gzip_text" in o else o["text"].encode()
            s3.put_object(Bucket=cmd["bucket"], Key=o["key"], Body=body)
        print(json.dumps({"put": len(cmd["objects"])}))
    elif op == "send":
        for b in cmd["bodies"]:
            sqs.send_message(QueueUrl=cmd["queue_url"], MessageBody=b)
        print(json.dumps({"sent": len(cmd["bodies"])}))
    elif op == "stats":
        a = sqs.get_queue_attributes(QueueUrl=cmd["queue_url"], AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        print(json.dumps({"waiting": int(a["ApproximateNumberOfMessages"]),
                          "in_flight": int(a["ApproximateNumberOfMessagesNotVisible"])}))
    else:
        sys.exit(f"unknown op {op}")


if __name__ == "__main__":
    main()
