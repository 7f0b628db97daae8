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
  {"op": "iam-setup", "endpoint": URL, "user": U, "role": R}
      a user with an access key, a console password and an inline policy "ReadOnly", and a
      role; answers {"access_key_id"}
  {"op": "iam-state", "endpoint": URL, "user": U, "role": R}
      answers what containment changes: the user's keys and their status, its and the role's
      inline policies (name -> document), whether it has a console password
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


def iam_client(endpoint):
    return boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


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
    elif op == "iam-setup":
        iam = iam_client(cmd["endpoint"])
        iam.create_user(UserName=cmd["user"])
        key = iam.create_access_key(UserName=cmd["user"])["AccessKey"]["AccessKeyId"]
        iam.create_login_profile(UserName=cmd["user"], Password="Old-Passw0rd!x", PasswordResetRequired=False)
        iam.put_user_policy(UserName=cmd["user"], PolicyName="ReadOnly", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}))
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        iam.create_role(RoleName=cmd["role"], AssumeRolePolicyDocument=json.dumps(trust))
        print(json.dumps({"access_key_id": key}))
    elif op == "iam-state":
        iam = iam_client(cmd["endpoint"])
        u, r = cmd["user"], cmd["role"]
        keys = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=u)["AccessKeyMetadata"]}
        user_policies = {n: iam.get_user_policy(UserName=u, PolicyName=n)["PolicyDocument"]
                         for n in iam.list_user_policies(UserName=u)["PolicyNames"]}
        role_policies = {n: iam.get_role_policy(RoleName=r, PolicyName=n)["PolicyDocument"]
                         for n in iam.list_role_policies(RoleName=r)["PolicyNames"]}
        try:
            lp = iam.get_login_profile(UserName=u)["LoginProfile"]
            login = {"reset_required": lp.get("PasswordResetRequired", False)}
        except iam.exceptions.NoSuchEntityException:
            login = None
        print(json.dumps({"keys": keys, "user_policies": user_policies, "role_policies": role_policies,
                          "login_profile": login}, sort_keys=True))
    else:
        sys.exit(f"unknown op {op}")


if __name__ == "__main__":
    main()
