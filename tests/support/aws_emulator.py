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
  Any command may carry "credentials": {"access_key_id", "secret_access_key"} to sign with
  (a moto enforcing IAM); without, testing/testing.
  {"op": "iam-admin", "endpoint": URL, "user": U}
      a user allowed everything, with an access key: three requests, the ones a moto enforcing
      IAM lets through unchecked; then checks a key moto does not know is refused; answers
      {"access_key_id", "secret_access_key", "unknown_key": the refusal's code}
  {"op": "iam-limited-user", "endpoint": URL, "user": U, "actions": [A]}
      a user whose only policy (inline, "Limited") allows those IAM actions on everything, with
      an access key; answers {"access_key_id", "secret_access_key"}
  {"op": "iam-setup", "endpoint": URL, "user": U, "role": R}
      a user with an access key, a console password and an inline policy "ReadOnly", and a
      role; answers {"access_key_id"}
  {"op": "iam-state", "endpoint": URL, "user": U, "role": R}
      answers what containment changes: the user's keys and their status, its and the role's
      inline policies (name -> document), whether it has a console password
  {"op": "bucket-setup", "endpoint": URL, "bucket": B, "public_access_block": {...} | null}
      a bucket, with that public access block (boto3's names) if one is given
  {"op": "bucket-state", "endpoint": URL, "bucket": B}
      answers {"public_access_block": {...} | null}
  {"op": "snapshot-setup", "endpoint": URL, "accounts": [id], "public": bool}
      a volume and a snapshot of it shared with those accounts (and the public); answers
      {"snapshot_id"}
  {"op": "snapshot-state", "endpoint": URL, "snapshot_id": S}
      answers {"accounts": [sorted], "public": bool}
  {"op": "ec2-setup", "endpoint": URL, "interfaces": N}
      a VPC, two security groups ("web", "ssh", which allows SSH in) and an instance with two
      EBS volumes in both; with N > 1, N network interfaces given at launch, the first in both
      groups, the others in "ssh" (moto then keeps each interface's groups apart); with
      "isolation", a group "forensics" without rules; with "leftover", a group of the name a
      quarantine of the instance creates; answers {"instance_id", "vpc_id", "groups": {name: id}}
  {"op": "ec2-state", "endpoint": URL, "instance_id": I}
      answers the instance's groups, each interface's groups (sorted), and the security groups
      of its VPC with their rules
  {"op": "ec2-snapshots", "endpoint": URL, "instance_id": I}
      answers the snapshots of the instance's volumes: {id: {"volume", "description"}}
  {"op": "trail-setup", "endpoint": URL, "bucket": B, "trail": T, "logging": bool}
  {"op": "trail-state", "endpoint": URL, "trail": T}
      answers {"is_logging"}
  {"op": "guardduty-setup", "endpoint": URL, "enabled": bool}
      answers {"detector_id"}
  {"op": "guardduty-state", "endpoint": URL, "detector_id": D}
      answers {"status"}
"""
import gzip
import json
import sys

import boto3

REGION = "eu-west-1"
# What requests are signed with: the command's "credentials", else testing/testing.
KEY = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def clients(endpoint):
    return client("s3", endpoint), client("sqs", endpoint)


def iam_client(endpoint):
    return boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", **KEY)


def client(name, endpoint):
    return boto3.client(name, endpoint_url=endpoint, region_name=REGION, **KEY)


def allow(actions):
    return json.dumps({"Version": "2012-10-17",
                       "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]})


def iam_user_op(op, cmd):
    """The users of a moto enforcing IAM: an administrator, and users allowed a few actions."""
    if op not in ("iam-admin", "iam-limited-user"):
        return None
    iam = iam_client(cmd["endpoint"])
    user = cmd["user"]
    iam.create_user(UserName=user)
    if op == "iam-admin":
        iam.put_user_policy(UserName=user, PolicyName="Admin", PolicyDocument=allow("*"))
    else:
        iam.put_user_policy(UserName=user, PolicyName="Limited", PolicyDocument=allow(cmd["actions"]))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    answer = {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}
    if op == "iam-admin":
        try:
            iam.list_users()
            answer["unknown_key"] = None
        except iam.exceptions.ClientError as e:
            answer["unknown_key"] = e.response["Error"]["Code"]
    return answer


def rules(perms):
    """Security group rules, comparable: sorted, without moto's empty lists."""
    out = []
    for p in perms:
        out.append({k: (sorted(json.dumps(x, sort_keys=True) for x in v) if isinstance(v, list) else v)
                    for k, v in p.items() if v not in ([], None)})
    return sorted(out, key=lambda r: json.dumps(r, sort_keys=True))


def ec2_op(op, cmd):
    ec2 = client("ec2", cmd["endpoint"])
    if op == "snapshot-setup":
        vol = ec2.create_volume(AvailabilityZone=REGION + "a", Size=8)["VolumeId"]
        snap = ec2.create_snapshot(VolumeId=vol, Description="backup")["SnapshotId"]
        groups = ["all"] if cmd.get("public") else []
        ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                      OperationType="add", UserIds=cmd.get("accounts", []),
                                      GroupNames=groups)
        return {"snapshot_id": snap}
    if op == "snapshot-state":
        perms = ec2.describe_snapshot_attribute(SnapshotId=cmd["snapshot_id"],
                                                Attribute="createVolumePermission")["CreateVolumePermissions"]
        return {"accounts": sorted(p["UserId"] for p in perms if "UserId" in p),
                "public": any(p.get("Group") == "all" for p in perms)}
    if op == "ec2-setup":
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24",
                                   AvailabilityZone=REGION + "a")["Subnet"]["SubnetId"]
        groups = {n: ec2.create_security_group(GroupName=n, Description=n, VpcId=vpc)["GroupId"]
                  for n in ("web", "ssh")}
        ec2.authorize_security_group_ingress(GroupId=groups["ssh"], IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
        both = [groups["web"], groups["ssh"]]
        n = cmd.get("interfaces", 1)
        if n > 1:
            where = {"NetworkInterfaces": [{"DeviceIndex": i, "SubnetId": subnet,
                                            "Groups": both if i == 0 else [groups["ssh"]]}
                                           for i in range(n)]}
        else:
            where = {"SubnetId": subnet, "SecurityGroupIds": both}
        instance = ec2.run_instances(
            ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
            BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 8}},
                                 {"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 4}}],
            **where)["Instances"][0]["InstanceId"]
        if cmd.get("isolation"):
            iso = ec2.create_security_group(GroupName="forensics", Description="no traffic", VpcId=vpc)["GroupId"]
            ec2.revoke_security_group_egress(GroupId=iso, IpPermissions=[
                {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
            groups["forensics"] = iso
        if cmd.get("leftover"):
            groups["leftover"] = ec2.create_security_group(
                GroupName="cloudsentinel-quarantine-" + instance, Description="leftover", VpcId=vpc)["GroupId"]
        return {"instance_id": instance, "vpc_id": vpc, "groups": groups}
    if op == "ec2-state":
        inst = ec2.describe_instances(InstanceIds=[cmd["instance_id"]])["Reservations"][0]["Instances"][0]
        vpc = inst["VpcId"]
        sgs = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
        return {
            "instance_groups": sorted(g["GroupId"] for g in inst["SecurityGroups"]),
            "interfaces": {e["NetworkInterfaceId"]: sorted(g["GroupId"] for g in e["Groups"])
                           for e in inst["NetworkInterfaces"]},
            "security_groups": {g["GroupId"]: {"name": g["GroupName"], "ingress": rules(g["IpPermissions"]),
                                               "egress": rules(g["IpPermissionsEgress"])} for g in sgs},
        }
    if op == "ec2-snapshots":
        inst = ec2.describe_instances(InstanceIds=[cmd["instance_id"]])["Reservations"][0]["Instances"][0]
        volumes = [m["Ebs"]["VolumeId"] for m in inst["BlockDeviceMappings"] if "Ebs" in m]
        snaps = ec2.describe_snapshots(Filters=[{"Name": "volume-id", "Values": volumes}])["Snapshots"]
        return {s["SnapshotId"]: {"volume": s["VolumeId"], "description": s.get("Description", "")}
                for s in snaps}
    return None


def main():
    cmd = json.load(sys.stdin)
    if "credentials" in cmd:
        KEY.update(aws_access_key_id=cmd["credentials"]["access_key_id"],
                   aws_secret_access_key=cmd["credentials"]["secret_access_key"])
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
    elif op == "bucket-setup":
        s3.create_bucket(Bucket=cmd["bucket"],
                         CreateBucketConfiguration={"LocationConstraint": REGION})
        if cmd.get("public_access_block"):
            s3.put_public_access_block(Bucket=cmd["bucket"],
                                       PublicAccessBlockConfiguration=cmd["public_access_block"])
        print(json.dumps({}))
    elif op == "bucket-state":
        try:
            pab = s3.get_public_access_block(Bucket=cmd["bucket"])["PublicAccessBlockConfiguration"]
        except s3.exceptions.ClientError as e:
            if e.response["Error"]["Code"] != "NoSuchPublicAccessBlockConfiguration":
                raise
            pab = None
        print(json.dumps({"public_access_block": pab}, sort_keys=True))
    elif op == "trail-setup":
        s3.create_bucket(Bucket=cmd["bucket"],
                         CreateBucketConfiguration={"LocationConstraint": REGION})
        ct = client("cloudtrail", cmd["endpoint"])
        ct.create_trail(Name=cmd["trail"], S3BucketName=cmd["bucket"])
        if cmd.get("logging"):
            ct.start_logging(Name=cmd["trail"])
        print(json.dumps({}))
    elif op == "trail-state":
        st = client("cloudtrail", cmd["endpoint"]).get_trail_status(Name=cmd["trail"])
        print(json.dumps({"is_logging": st["IsLogging"]}))
    elif op == "guardduty-setup":
        d = client("guardduty", cmd["endpoint"]).create_detector(Enable=cmd.get("enabled", False))
        print(json.dumps({"detector_id": d["DetectorId"]}))
    elif op == "guardduty-state":
        d = client("guardduty", cmd["endpoint"]).get_detector(DetectorId=cmd["detector_id"])
        print(json.dumps({"status": d["Status"]}))
    elif (answer := iam_user_op(op, cmd) or ec2_op(op, cmd)) is not None:
        print(json.dumps(answer, sort_keys=True))
    else:
        sys.exit(f"unknown op {op}")


if __name__ == "__main__":
    main()
