#!/usr/bin/env python3
"""A second organisation simulator, for the noise benchmark (issue 14).

It is written apart from `crates/sim` on purpose, with a different structure: the organisation
(accounts, regions, people, their home networks, workloads) is drawn from the seed instead of
being fixed data, and every benign record is labelled with the routine that produced it. Addresses
are drawn from the address table that ships with CloudSentinel (crates/context/data/netdb.bin.gz),
by autonomous system, so that a home ISP, a NAT gateway, a GitHub runner or a hosting provider is
what the table says it is.

    python3 benches/noise/simorg.py --seed 101 --days 21 --out /tmp/org

writes an S3-layout CloudTrail tree under OUT/AWSLogs and OUT/labels.json:
    {"benign": {eventID: noise source}, "stories": [{name, summary, principal, event_ids}]}

Attack stories are behaviour-only where possible: no rule should be needed to see them, only what
the principal usually does.
"""

import argparse
import datetime as dt
import gzip
import json
import os
import random
import struct
import sys
import uuid
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
NETDB = os.path.join(HERE, "..", "..", "crates", "context", "data", "netdb.bin.gz")


# --- the address table ---------------------------------------------------------------------

class NetDb:
    """Reads the shipped CSNETDB1 table: IPv4 ranges with AS number and country."""

    def __init__(self, path):
        b = gzip.open(path).read()
        assert b[:8] == b"CSNETDB1", "not a CSNETDB1 table"
        at = [8]

        def u32():
            v = struct.unpack_from("<I", b, at[0])[0]
            at[0] += 4
            return v

        def varint():
            v, shift = 0, 0
            while True:
                c = b[at[0]]
                at[0] += 1
                v |= (c & 0x7F) << shift
                if c < 0x80:
                    return v
                shift += 7

        self.names = {}
        for _ in range(u32()):
            asn = varint()
            n = varint()
            self.names[asn] = b[at[0]:at[0] + n].decode()
            at[0] += n
        starts, asns, countries = [], [], []
        prev = 0
        for _ in range(u32()):
            prev += varint()
            starts.append(prev)
            asns.append(varint())
            countries.append(b[at[0]:at[0] + 2].decode("latin1"))
            at[0] += 2
        # (start, end, country) ranges per AS
        self.by_as = {}
        for i, s in enumerate(starts):
            end = starts[i + 1] - 1 if i + 1 < len(starts) else 0xFFFFFFFF
            if asns[i]:
                self.by_as.setdefault(asns[i], []).append((s, end, countries[i]))

    def pick(self, rng, asn, country=None):
        """A random usable address of `asn` (in `country` when given and the AS has one there)."""
        ranges = [r for r in self.by_as.get(asn, []) if r[1] - r[0] >= 255]
        if country is not None and any(r[2] == country for r in ranges):
            ranges = [r for r in ranges if r[2] == country]
        if not ranges:
            raise SystemExit(f"the address table has no /24 of AS{asn} in {country}")
        weights = [min(r[1] - r[0], 1 << 20) for r in ranges]
        s, e, _ = rng.choices(ranges, weights)[0]
        ip = rng.randint(s + 1, e - 1)
        if ip & 0xFF in (0, 255):
            ip = (ip & ~0xFF) | rng.randint(1, 254)
        return ".".join(str((ip >> k) & 0xFF) for k in (24, 16, 8, 0))


# Networks by kind: (AS number, country). Home ISPs per country.
ISPS = {
    "DE": [(3320, "DE"), (3209, "DE"), (6805, "DE")],
    "GB": [(2856, "GB"), (5089, "GB"), (5607, "GB")],
    "FR": [(3215, "FR"), (12322, "FR"), (5410, "FR")],
    "US": [(7922, "US"), (7018, "US"), (701, "US"), (20115, "US")],
    "NL": [(1136, "NL"), (33915, "NL")],
    "ES": [(3352, "ES"), (12479, "ES")],
    "JP": [(4713, "JP"), (2516, "JP")],
    "SG": [(9506, "SG"), (4773, "SG")],
    "BR": [(28573, "BR"), (18881, "BR")],
    "IN": [(55836, "IN"), (24560, "IN")],
    "CA": [(812, "CA"), (577, "CA")],
    "PL": [(5617, "PL"), (12912, "PL")],
}
AWS_AS = 16509
AWS_US_EAST_AS = 14618
AZURE_AS = 8075  # GitHub-hosted runners run in Azure
HOSTING = [(14061, None), (16276, None), (24940, None), (63949, None), (20473, None)]
VPN_PROVIDERS = [(13335, None), (62044, None), (9009, None)]  # Cloudflare WARP, Zscaler, M247

REGION_COUNTRY = {
    "eu-west-1": "IE", "eu-central-1": "DE", "us-east-1": "US", "us-west-2": "US",
    "eu-west-2": "GB", "ap-southeast-2": "AU", "ap-northeast-1": "JP", "eu-north-1": "SE",
    "ap-south-1": "IN", "sa-east-1": "BR",
}
TZ = {"DE": 1, "GB": 0, "FR": 1, "US": -5, "NL": 1, "ES": 1, "JP": 9, "SG": 8, "BR": -3,
      "IN": 5.5, "CA": -5, "PL": 1}

FIRST = ["Ana", "Ben", "Chloe", "Dev", "Emil", "Farah", "Goran", "Hana", "Ivo", "Jana", "Kofi",
         "Lena", "Malik", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma",
         "Viktor", "Wen", "Ximena", "Yusuf", "Zoe", "Arjun", "Bea", "Carl", "Dana"]
LAST = ["Novak", "Berg", "Silva", "Okafor", "Larsen", "Haddad", "Kowalski", "Moreau", "Tanaka",
        "Ibrahim", "Costa", "Fischer", "Nakamura", "Walsh", "Rossi", "Mehta", "Dubois", "Lindqvist"]

# What engineers call, by how much of a role they play: (service, API, read-only).
DEV_READS = [
    ("ec2", "DescribeInstances"), ("ec2", "DescribeSecurityGroups"), ("ec2", "DescribeVpcs"),
    ("ec2", "DescribeSubnets"), ("s3", "ListBuckets"), ("s3", "GetBucketLocation"),
    ("s3", "ListObjects"), ("s3", "GetObject"), ("lambda", "ListFunctions20150331"),
    ("lambda", "GetFunction20150331v2"), ("logs", "DescribeLogGroups"), ("logs", "FilterLogEvents"),
    ("logs", "GetLogEvents"), ("cloudwatch", "GetMetricData"), ("cloudwatch", "DescribeAlarms"),
    ("ecs", "DescribeServices"), ("ecs", "ListTasks"), ("ecs", "DescribeTasks"),
    ("dynamodb", "DescribeTable"), ("dynamodb", "ListTables"), ("rds", "DescribeDBInstances"),
    ("sqs", "GetQueueAttributes"), ("sqs", "ListQueues"), ("iam", "GetRole"), ("iam", "ListRoles"),
    ("sts", "GetCallerIdentity"), ("cloudformation", "DescribeStacks"),
    ("cloudformation", "DescribeStackEvents"), ("ssm", "GetParameter"), ("ecr", "DescribeImages"),
]
DEV_WRITES = [
    ("lambda", "UpdateFunctionConfiguration20150331v2"), ("ecs", "UpdateService"),
    ("s3", "PutObject"), ("logs", "PutRetentionPolicy"), ("ec2", "CreateTags"),
    ("ssm", "PutParameter"), ("cloudwatch", "PutMetricAlarm"), ("sqs", "PurgeQueue"),
    ("ec2", "StartInstances"), ("ec2", "StopInstances"), ("dynamodb", "UpdateTable"),
]
SCANNER_CALLS = [
    ("ec2", n) for n in ["DescribeInstances", "DescribeSecurityGroups", "DescribeVpcs",
                         "DescribeSubnets", "DescribeNetworkAcls", "DescribeRouteTables",
                         "DescribeFlowLogs", "DescribeVolumes", "DescribeSnapshots",
                         "DescribeImages", "DescribeRegions", "DescribeAddresses",
                         "DescribeVpcEndpoints", "DescribeInstanceAttribute",
                         "GetEbsEncryptionByDefault", "DescribeKeyPairs", "DescribeLaunchTemplates"]
] + [
    ("iam", n) for n in ["ListUsers", "ListRoles", "ListPolicies", "GetAccountPasswordPolicy",
                         "GetAccountSummary", "ListAccessKeys", "GetAccessKeyLastUsed",
                         "ListMFADevices", "ListAttachedUserPolicies", "ListAttachedRolePolicies",
                         "ListUserPolicies", "GetPolicyVersion", "GenerateCredentialReport",
                         "GetCredentialReport", "ListServerCertificates", "ListGroups",
                         "ListVirtualMFADevices", "ListSAMLProviders", "ListOpenIDConnectProviders"]
] + [
    ("s3", n) for n in ["ListBuckets", "GetBucketPolicy", "GetBucketAcl", "GetBucketLogging",
                        "GetBucketVersioning", "GetBucketEncryption", "GetBucketPublicAccessBlock",
                        "GetBucketLocation", "GetBucketPolicyStatus", "GetBucketOwnershipControls"]
] + [
    ("cloudtrail", "DescribeTrails"), ("cloudtrail", "GetTrailStatus"),
    ("cloudtrail", "GetEventSelectors"), ("config", "DescribeConfigurationRecorders"),
    ("config", "DescribeConfigurationRecorderStatus"), ("guardduty", "ListDetectors"),
    ("guardduty", "GetDetector"), ("kms", "ListKeys"), ("kms", "DescribeKey"),
    ("kms", "GetKeyRotationStatus"), ("kms", "GetKeyPolicy"), ("rds", "DescribeDBInstances"),
    ("rds", "DescribeDBSnapshots"), ("rds", "DescribeDBClusters"), ("lambda", "ListFunctions20150331"),
    ("lambda", "GetPolicy20150331v2"), ("sns", "ListTopics"), ("sns", "GetTopicAttributes"),
    ("sqs", "ListQueues"), ("sqs", "GetQueueAttributes"), ("secretsmanager", "ListSecrets"),
    ("secretsmanager", "DescribeSecret"), ("securityhub", "DescribeHub"),
    ("access-analyzer", "ListAnalyzers"), ("logs", "DescribeLogGroups"),
    ("logs", "DescribeMetricFilters"), ("cloudwatch", "DescribeAlarms"),
    ("elasticloadbalancing", "DescribeLoadBalancers"), ("ecr", "DescribeRepositories"),
    ("ecr", "GetRepositoryPolicy"), ("eks", "ListClusters"), ("efs", "DescribeFileSystems"),
    ("organizations", "DescribeOrganization"), ("acm", "ListCertificates"),
    ("route53", "ListHostedZones"), ("dynamodb", "ListTables"), ("dynamodb", "DescribeTable"),
    ("ssm", "DescribeParameters"), ("ssm", "DescribeInstanceInformation"),
    ("apigateway", "GetRestApis"), ("cloudfront", "ListDistributions2020_05_31"),
    ("wafv2", "ListWebACLs"), ("backup", "ListBackupVaults"), ("sagemaker", "ListNotebookInstances"),
]
TF_READS = [
    ("ec2", "DescribeVpcs"), ("ec2", "DescribeSubnets"), ("ec2", "DescribeSecurityGroups"),
    ("ec2", "DescribeSecurityGroupRules"), ("ec2", "DescribeRouteTables"),
    ("ec2", "DescribeInternetGateways"), ("ec2", "DescribeNatGateways"),
    ("ec2", "DescribeVpcAttribute"), ("ec2", "DescribeNetworkAcls"), ("ec2", "DescribeAddresses"),
    ("ec2", "DescribeLaunchTemplates"), ("ec2", "DescribeLaunchTemplateVersions"),
    ("iam", "GetRole"), ("iam", "ListRolePolicies"), ("iam", "ListAttachedRolePolicies"),
    ("iam", "GetRolePolicy"), ("iam", "GetPolicy"), ("iam", "GetPolicyVersion"),
    ("iam", "ListInstanceProfilesForRole"), ("iam", "GetOpenIDConnectProvider"),
    ("s3", "GetBucketPolicy"), ("s3", "GetBucketAcl"), ("s3", "GetBucketVersioning"),
    ("s3", "GetBucketEncryption"), ("s3", "GetBucketPublicAccessBlock"), ("s3", "GetBucketTagging"),
    ("s3", "GetBucketLogging"), ("s3", "GetBucketCors"), ("s3", "GetBucketWebsite"),
    ("s3", "GetBucketLifecycle"), ("s3", "GetBucketReplication"), ("s3", "GetAccelerateConfiguration"),
    ("s3", "GetBucketRequestPayment"), ("s3", "GetBucketObjectLockConfiguration"),
    ("lambda", "GetFunction20150331v2"), ("lambda", "GetPolicy20150331v2"),
    ("lambda", "ListVersionsByFunction20150331"), ("lambda", "GetFunctionCodeSigningConfig"),
    ("logs", "DescribeLogGroups"), ("logs", "ListTagsForResource"),
    ("kms", "DescribeKey"), ("kms", "GetKeyPolicy"), ("kms", "GetKeyRotationStatus"),
    ("kms", "ListResourceTags"), ("dynamodb", "DescribeTable"),
    ("dynamodb", "DescribeContinuousBackups"), ("dynamodb", "DescribeTimeToLive"),
    ("dynamodb", "ListTagsOfResource"), ("sqs", "GetQueueAttributes"), ("sqs", "ListQueueTags"),
    ("sns", "GetTopicAttributes"), ("sns", "ListTagsForResource"), ("ecs", "DescribeClusters"),
    ("ecs", "DescribeServices"), ("ecs", "DescribeTaskDefinition"),
    ("elasticloadbalancing", "DescribeLoadBalancers"), ("elasticloadbalancing", "DescribeTargetGroups"),
    ("elasticloadbalancing", "DescribeListeners"), ("elasticloadbalancing", "DescribeLoadBalancerAttributes"),
    ("rds", "DescribeDBInstances"), ("rds", "DescribeDBSubnetGroups"), ("rds", "DescribeDBParameterGroups"),
    ("route53", "GetHostedZone"), ("route53", "ListResourceRecordSets"), ("acm", "DescribeCertificate"),
    ("secretsmanager", "DescribeSecret"), ("secretsmanager", "GetResourcePolicy"),
    ("ssm", "GetParameter"), ("cloudwatch", "DescribeAlarms"), ("sts", "GetCallerIdentity"),
]
CONFIG_CALLS = [
    ("ec2", "DescribeInstances"), ("ec2", "DescribeSecurityGroups"), ("ec2", "DescribeVolumes"),
    ("ec2", "DescribeNetworkInterfaces"), ("ec2", "DescribeVpcs"), ("ec2", "DescribeSubnets"),
    ("iam", "GetRole"), ("iam", "GetUser"), ("iam", "GetPolicy"), ("iam", "ListAttachedRolePolicies"),
    ("s3", "GetBucketPolicy"), ("s3", "GetBucketAcl"), ("s3", "GetBucketVersioning"),
    ("lambda", "GetFunction20150331v2"), ("rds", "DescribeDBInstances"), ("kms", "DescribeKey"),
    ("kms", "GetKeyRotationStatus"), ("dynamodb", "DescribeTable"), ("sqs", "GetQueueAttributes"),
    ("sns", "GetTopicAttributes"), ("cloudtrail", "DescribeTrails"),
]
ANALYZER_CALLS = [
    ("iam", "ListRoles"), ("iam", "GetRole"), ("s3", "GetBucketPolicy"), ("s3", "GetBucketAcl"),
    ("s3", "GetBucketPolicyStatus"), ("s3", "GetBucketPublicAccessBlock"), ("kms", "ListKeys"),
    ("kms", "GetKeyPolicy"), ("kms", "ListGrants"), ("lambda", "GetPolicy20150331v2"),
    ("sqs", "GetQueueAttributes"), ("secretsmanager", "GetResourcePolicy"), ("s3", "ListBuckets"),
]

SDK_UAS = [
    "aws-cli/2.15.{v} md/awscrt#0.19.19 ua/2.0 os/{os} md/arch#x86_64 lang/python#3.11.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off md/command#{cmd}",
    "Boto3/1.34.{v} md/Botocore#1.34.{v} ua/2.0 os/{os} md/arch#arm64 lang/python#3.12.1 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.{v}",
]
CONSOLE_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
TERRAFORM_UA = "APN/1.0 HashiCorp/1.0 Terraform/1.7.{v} (+https://www.terraform.io) terraform-provider-aws/5.{p}.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.24.1 ua/2.0 os/linux lang/go#1.21.6 md/GOOS#linux md/GOARCH#amd64 api/{svc}#1.0"
SSM_AGENT_UA = "aws-sdk-go/1.44.{v} (go1.21.5; linux; amd64) amazon-ssm-agent/3.3.{a}.0"
APP_UA = "aws-sdk-java/2.21.{v} Linux/5.10.205-195.807.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.9+8-LTS Java/17.0.9 vendor/Amazon.com_Inc. md/internal exec-env/AWS_ECS_EC2 io/sync http/Apache cfg/retry-mode/legacy"
LAMBDA_UA = "Boto3/1.34.{v} md/Botocore#1.34.{v} ua/2.0 os/linux#5.10.205-214.797.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.1 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.34.{v}"
GLUE_UA = "aws-sdk-java/1.12.{v} Linux/4.14.336-253.554.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/25.392-b08 java/1.8.0_392 scala/2.12.15 vendor/Red_Hat,_Inc. cfg/retry-mode/standard AWSGlueETL"
SCANNER_UA = "Boto3/1.34.{v} md/Botocore#1.34.{v} ua/2.0 os/linux#5.10.0 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#standard Botocore/1.34.{v} secaudit-inventory/2.{a}"


def svc_host(svc):
    return {"elasticloadbalancing": "elasticloadbalancing", "access-analyzer": "access-analyzer"}.get(svc, svc) + ".amazonaws.com"


class Sim:
    def __init__(self, seed, days, end, netdb):
        self.rng = random.Random(seed)
        self.seed = seed
        self.db = netdb
        self.days = days
        self.end = end
        self.start = end - dt.timedelta(days=days)
        self.records = []  # (time, account, region, record)
        self.labels = {}
        self.stories = []
        self.build_org()

    # --- identifiers -------------------------------------------------------------------------

    def hexid(self, n):
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def upper_id(self, prefix, n=16):
        return prefix + "".join(self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(n))

    def event_id(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    # --- the organisation --------------------------------------------------------------------

    def build_org(self):
        r = self.rng
        self.org = "o-" + self.hexid(10)
        names = ["prod", "staging", "data", "security", "sandbox", "shared"]
        n_accounts = r.randint(3, 5)
        self.accounts = {}
        for name in ["prod", "staging", "security"] + r.sample(["data", "sandbox", "shared"], n_accounts - 3):
            self.accounts[name] = str(r.randint(10**11, 10**12 - 1))
        self.home_region = r.choice(["eu-west-1", "eu-central-1", "us-east-1", "us-west-2"])
        self.second_region = r.choice([x for x in ["us-east-1", "eu-west-1", "eu-north-1", "us-west-2"] if x != self.home_region])
        self.new_region = r.choice(["ap-southeast-2", "ap-northeast-1", "eu-west-2"])
        self.new_region_day = r.randint(self.days // 2, self.days - 5)
        office_country = r.choice(["DE", "GB", "FR", "NL", "US", "PL"])
        self.office_country = office_country
        isp = r.choice(ISPS[office_country])
        self.office_ips = [self.db.pick(r, *isp) for _ in range(2)]
        vpn_old, vpn_new = r.sample(VPN_PROVIDERS, 2)
        # Corporate VPN egress: near the office when the provider has addresses there.
        first_old = self.db.pick(r, vpn_old[0], office_country)
        first_new = self.db.pick(r, vpn_new[0], office_country)
        self.vpn_ips_old = [first_old] + [self.db.pick(r, vpn_old[0], office_country) for _ in range(2)]
        self.vpn_ips_new = [first_new] + [self.db.pick(r, vpn_new[0], office_country) for _ in range(2)]
        self.vpn_change_day = r.randint(5, self.days - 7)
        # NAT gateways (Elastic IPs) per account and region.
        self.nat = {}
        for acct in self.accounts.values():
            for reg in [self.home_region, self.second_region, self.new_region]:
                asn = AWS_US_EAST_AS if reg == "us-east-1" else AWS_AS
                country = REGION_COUNTRY[reg]
                try:
                    self.nat[(acct, reg)] = [self.db.pick(r, asn, country) for _ in range(2)]
                except SystemExit:
                    self.nat[(acct, reg)] = [self.db.pick(r, AWS_AS) for _ in range(2)]
        # People.
        n_people = r.randint(14, 24)
        remote_countries = [c for c in ISPS if c != office_country]
        self.people = []
        used = set()
        for i in range(n_people):
            while True:
                first, last = r.choice(FIRST), r.choice(LAST)
                if (first, last) not in used:
                    used.add((first, last))
                    break
            country = office_country if r.random() < 0.7 else r.choice(remote_countries)
            email = f"{first.lower()}.{last.lower()}@corp.example"
            p = {
                "name": f"{first} {last}", "email": email, "country": country,
                "home_ip": self.db.pick(r, *r.choice(ISPS[country])),
                "tz": TZ[country], "start_h": r.uniform(7.5, 10.5), "len_h": r.uniform(7, 9.5),
                "sessions": r.uniform(1, 4), "office_days": r.sample(range(5), r.randint(0, 4)),
                "uses_vpn": r.random() < 0.4, "iam_user": None, "reads_objects": r.randint(0, 6),
                "permission": r.choice(["AdministratorAccess", "PowerUserAccess", "PowerUserAccess", "ReadOnlyAccess"]),
                "accounts": r.sample(list(self.accounts.values()), r.randint(1, len(self.accounts))),
                "ops": r.sample(DEV_READS, r.randint(8, 16)), "writes": r.sample(DEV_WRITES, r.randint(1, 4)),
                "console_share": r.uniform(0.1, 0.7), "joined": 0, "os": r.choice(["macos", "linux", "windows"]),
            }
            self.people.append(p)
        # Legacy IAM users with long-lived keys.
        for p in r.sample(self.people, r.randint(2, 4)):
            p["iam_user"] = p["email"].split("@")[0].replace(".", "-")
            p["iam_key"] = self.upper_id("AKIA")
            p["iam_account"] = r.choice(list(self.accounts.values()))
            p["iam_id"] = self.upper_id("AIDA", 17)
        # A new hire who starts part-way through.
        hire = self.people[-1]
        hire["joined"] = r.randint(5, self.days - 6)
        self.new_hire = hire
        # The traveller: a week in another country.
        self.traveller = r.choice(self.people[:-1])
        tc = r.choice([c for c in ISPS if c != self.traveller["country"]])
        self.travel = (r.randint(2, self.days - 9), tc, self.db.pick(r, *r.choice(ISPS[tc])))
        self.oncall = self.people[:]
        r.shuffle(self.oncall)
        # Workloads.
        self.instances = []
        for name, acct in self.accounts.items():
            if name in ("security",):
                continue
            for _ in range(r.randint(2, 5)):
                reg = self.home_region if r.random() < 0.8 else self.second_region
                self.instances.append({"id": "i-0" + self.hexid(16), "account": acct, "region": reg,
                                       "role": r.choice(["app-server", "worker-node", "batch-runner"]) + "-role",
                                       "public": r.random() < 0.25})
        for inst in self.instances:
            if inst["public"]:
                asn = AWS_US_EAST_AS if inst["region"] == "us-east-1" else AWS_AS
                inst["ip"] = self.db.pick(r, asn)
        self.functions = []
        for name, acct in self.accounts.items():
            if name in ("security", "sandbox"):
                continue
            for fn in r.sample(["orders-api", "thumbnailer", "report-builder", "webhook-relay",
                                "token-refresher", "invoice-sync", "audit-forwarder"], r.randint(2, 4)):
                self.functions.append({"name": f"{name}-{fn}", "account": acct, "region": self.home_region,
                                       "vpc": r.random() < 0.5, "params": r.randint(1, 4),
                                       "rate": r.uniform(0.5, 4)})
        self.buckets = {acct: [f"{name}-{b}-{self.hexid(6)}" for b in r.sample(
            ["assets", "uploads", "exports", "artifacts", "logs", "backups", "raw", "curated"], 4)]
            for name, acct in self.accounts.items()}
        self.repo = f"corp-{self.hexid(4)}/platform"

    # --- records -----------------------------------------------------------------------------

    def emit(self, t, account, region, who, svc, name, source, read_only=True, ip=None, ua=None,
             req=None, resp=None, error=None, category="Management", event_type="AwsApiCall",
             extra=None):
        eid = self.event_id()
        rec = {
            "eventVersion": "1.09",
            "userIdentity": who,
            "eventTime": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": svc_host(svc),
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": ip,
            "userAgent": ua,
            "requestParameters": req,
            "responseElements": resp,
            "requestID": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "eventID": eid,
            "readOnly": read_only,
            "eventType": event_type,
            "managementEvent": category == "Management",
            "recipientAccountId": account,
            "eventCategory": category,
        }
        if error:
            rec["errorCode"], rec["errorMessage"] = error
        if extra:
            rec.update(extra)
        self.records.append((t, account, region, rec))
        if source is not None:
            self.labels[eid] = source
        return eid

    def role_who(self, account, role, session, key=None, mfa=False, created=None, extra=None):
        rid = "AROA" + (zlib.crc32(f"{account}/{role}".encode()) * 7919 % 10**12).__str__().rjust(17, "X")
        who = {
            "type": "AssumedRole",
            "principalId": f"{rid}:{session}",
            "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
            "accountId": account,
            "accessKeyId": key or self.upper_id("ASIA"),
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": rid,
                                  "arn": f"arn:aws:iam::{account}:role/{role}" if not role.startswith("AWSReservedSSO") else f"arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/{role}",
                                  "accountId": account, "userName": role},
                "attributes": {"creationDate": (created or self.start).strftime("%Y-%m-%dT%H:%M:%SZ"),
                               "mfaAuthenticated": "true" if mfa else "false"},
            },
        }
        if extra:
            who.update(extra)
        return who

    def user_who(self, p, key=None):
        acct = p["iam_account"]
        return {"type": "IAMUser", "principalId": p["iam_id"],
                "arn": f"arn:aws:iam::{acct}:user/{p['iam_user']}", "accountId": acct,
                "accessKeyId": key or p["iam_key"], "userName": p["iam_user"]}

    def sdk_ua(self, p, cmd="ec2.describe-instances"):
        return self.rng.choice(SDK_UAS).format(v=self.rng.randint(1, 40), os=p["os"], cmd=cmd)

    def params_for(self, svc, name, account):
        r = self.rng
        if svc == "s3" and name in ("GetObject", "PutObject", "ListObjects", "GetBucketLocation",
                                    "HeadObject") or (svc == "s3" and name.startswith("GetBucket")):
            b = r.choice(self.buckets[account])
            req = {"bucketName": b, "Host": f"{b}.s3.amazonaws.com"}
            if name in ("GetObject", "PutObject", "HeadObject"):
                req["key"] = f"{r.choice(['2024', '2025', 'tmp', 'exports', 'reports'])}/{self.hexid(8)}.{r.choice(['json', 'csv', 'parquet', 'png'])}"
            return req
        if svc == "ssm" and name == "GetParameter":
            return {"name": f"/{r.choice(['app', 'svc', 'shared'])}/{r.choice(['db-host', 'feature-flags', 'api-url'])}", "withDecryption": False}
        if svc == "lambda" and "Function" in name and name != "ListFunctions20150331":
            return {"functionName": r.choice([f["name"] for f in self.functions] or ["fn"])}
        return None

    def data_event(self, svc, name):
        return svc == "s3" and name in ("GetObject", "PutObject", "HeadObject", "DeleteObject")

    # --- engineers ---------------------------------------------------------------------------

    def person_ip(self, p, day, hour_local):
        if p is self.traveller and self.travel[0] <= day < self.travel[0] + 6:
            return self.travel[2], "travel"
        if p["uses_vpn"]:
            ips = self.vpn_ips_old if day < self.vpn_change_day else self.vpn_ips_new
            return self.rng.choice(ips), "vpn-egress-change" if day >= self.vpn_change_day else "engineer"
        weekday = (self.start + dt.timedelta(days=day)).weekday()
        if weekday in p["office_days"] and 8 <= hour_local <= 18 and p["country"] == self.office_country:
            return self.rng.choice(self.office_ips), "engineer"
        return p["home_ip"], "engineer"

    def engineers(self):
        r = self.rng
        for day in range(self.days):
            date = self.start + dt.timedelta(days=day)
            for p in self.people:
                if day < p["joined"]:
                    continue
                weekend = date.weekday() >= 5
                n = r.random() < 0.08 if weekend else int(r.gauss(p["sessions"], 0.8) + 0.5)
                for _ in range(max(0, int(n))):
                    local_h = p["start_h"] + r.random() * p["len_h"]
                    t = date + dt.timedelta(hours=local_h - p["tz"])
                    self.session(p, day, t, local_h, "new-hire" if p is self.new_hire else None)
            # On call: one person a week, paged a few nights.
            person = self.oncall[(day // 7) % len(self.oncall)]
            if day >= person["joined"] and r.random() < 0.35:
                local_h = r.uniform(0.5, 5)
                t = date + dt.timedelta(hours=local_h - person["tz"])
                self.session(person, day, t, local_h, "on-call-night", pages=True)

    def session(self, p, day, t, local_h, label, pages=False):
        r = self.rng
        ip, net_label = self.person_ip(p, day, local_h)
        label = label or net_label
        account = r.choice(p["accounts"])
        region = self.home_region if r.random() < 0.85 else self.second_region
        if day >= self.new_region_day and p["permission"] != "ReadOnlyAccess" and r.random() < 0.3:
            region, label = self.new_region, label if label != "engineer" else "new-region-rollout"
        console = r.random() < p["console_share"]
        iam = p["iam_user"] is not None and not console and r.random() < 0.6
        if iam:
            who = self.user_who(p)
            account = p["iam_account"]
            ua = self.sdk_ua(p)
        else:
            role = f"AWSReservedSSO_{p['permission']}_{zlib.crc32(p['permission'].encode()):08x}"
            who = self.role_who(account, role, p["email"], created=t)
            # Identity Center: the portal hands out role credentials.
            self.emit(t, account, "us-east-1", {"type": "Unknown", "principalId": self.upper_id("", 10) + "-" + self.hexid(8),
                                               "accountId": account, "userName": p["email"]},
                      "sso", "GetRoleCredentials", label, ip=ip,
                      ua=CONSOLE_UA if console else self.sdk_ua(p, "sso.login"),
                      req={"accountId": account, "roleName": role}, event_type="AwsServiceEvent" if False else "AwsApiCall",
                      extra={"serviceEventDetails": None} if False else None)
            t += dt.timedelta(seconds=r.randint(2, 20))
            if console:
                self.emit(t, account, "us-east-1", who, "signin", "ConsoleLogin", label, read_only=False, ip=ip,
                          ua=CONSOLE_UA, resp={"ConsoleLogin": "Success"}, event_type="AwsConsoleSignIn",
                          extra={"additionalEventData": {"MobileVersion": "No", "MFAUsed": "No"}})
                who = dict(who)
                who["sessionContext"] = dict(who["sessionContext"])
            ua = CONSOLE_UA if console else self.sdk_ua(p)
        n = max(1, int(r.expovariate(1 / (25 if not pages else 15))))
        for _ in range(n):
            t += dt.timedelta(seconds=r.expovariate(1 / 20))
            if r.random() < 0.07 and p["permission"] != "ReadOnlyAccess":
                svc, name = r.choice(p["writes"])
                ro = False
            else:
                svc, name = r.choice(p["ops"])
                ro = True
            if svc == "s3" and name == "GetObject" and r.random() > p["reads_objects"] / 6:
                svc, name = "s3", "ListObjects"
            err = ("AccessDenied", "User is not authorized to perform this operation") if r.random() < 0.02 else None
            extra = {"sessionCredentialFromConsole": "true"} if console else None
            self.emit(t, account, region, who, svc, name, label, read_only=ro, ip=ip,
                      ua=ua, req=self.params_for(svc, name, account), error=err,
                      category="Data" if self.data_event(svc, name) else "Management", extra=extra)

    # --- workloads ---------------------------------------------------------------------------

    def instance_traffic(self):
        r = self.rng
        for inst in self.instances:
            acct, reg = inst["account"], inst["region"]
            t = self.start + dt.timedelta(minutes=r.uniform(0, 30))
            key, key_t = None, None
            while t < self.end:
                if key is None or (t - key_t).total_seconds() > 6 * 3600:
                    key, key_t = self.upper_id("ASIA"), t
                who = self.role_who(acct, inst["role"], inst["id"], key=key, created=key_t,
                                    extra={"sessionContext": None})
                who["sessionContext"] = {"sessionIssuer": {"type": "Role", "principalId": "AROA" + self.hexid(8).upper(),
                                                           "arn": f"arn:aws:iam::{acct}:role/{inst['role']}",
                                                           "accountId": acct, "userName": inst["role"]},
                                         "attributes": {"creationDate": key_t.strftime("%Y-%m-%dT%H:%M:%SZ"), "mfaAuthenticated": "false"},
                                         "ec2RoleDelivery": "2.0"}
                ip = inst.get("ip") or r.choice(self.nat[(acct, reg)])
                label = "instance-public-ip" if inst.get("ip") else "nat-egress"
                ua = SSM_AGENT_UA.format(v=r.randint(40, 50), a=r.randint(1, 9))
                self.emit(t, acct, reg, who, "ssm", "UpdateInstanceInformation", label, read_only=False, ip=ip, ua=ua,
                          req={"instanceId": inst["id"], "agentVersion": "3.3.40.0", "agentStatus": "Active",
                               "platformType": "Linux", "platformName": "Amazon Linux"})
                if r.random() < 0.5:
                    self.emit(t + dt.timedelta(seconds=2), acct, reg, who, "ssm", "ListInstanceAssociations", label, ip=ip, ua=ua,
                              req={"instanceId": inst["id"], "maxResults": 50})
                if inst["role"].startswith("app") and r.random() < 0.5:
                    for _ in range(r.randint(1, 3)):
                        b = r.choice(self.buckets[acct])
                        nm = r.choice(["GetObject", "PutObject"])
                        self.emit(t + dt.timedelta(seconds=r.randint(3, 600)), acct, reg, who, "s3", nm, label,
                                  read_only=nm == "GetObject", ip=ip, ua=APP_UA.replace("{v}", str(r.randint(1, 30))),
                                  req={"bucketName": b, "key": f"u/{self.hexid(12)}"}, category="Data")
                if r.random() < 0.15:
                    self.emit(t + dt.timedelta(seconds=5), acct, reg, who, "secretsmanager", "GetSecretValue", label, ip=ip,
                              ua=APP_UA.replace("{v}", "5"), req={"secretId": f"{inst['role']}/db"})
                t += dt.timedelta(minutes=r.uniform(25, 35))

    def lambdas(self):
        r = self.rng
        for fn in self.functions:
            acct, reg = fn["account"], fn["region"]
            role = fn["name"] + "-exec"
            day0 = self.start
            t = day0
            while t < self.end:
                hour = t.hour
                rate = fn["rate"] * (1.5 if 7 <= hour <= 19 else 0.4)  # cold starts per hour
                t += dt.timedelta(hours=r.expovariate(rate))
                if t >= self.end:
                    break
                ip = r.choice(self.nat[(acct, reg)]) if fn["vpc"] else self.db.pick(r, AWS_US_EAST_AS if reg == "us-east-1" else AWS_AS, REGION_COUNTRY.get(reg))
                self.emit(t, acct, reg, {"type": "AWSService", "invokedBy": "lambda.amazonaws.com"}, "sts", "AssumeRole",
                          "lambda-cold-start", ip="lambda.amazonaws.com", ua="lambda.amazonaws.com",
                          req={"roleArn": f"arn:aws:iam::{acct}:role/{role}", "roleSessionName": fn["name"]},
                          resp={"credentials": {"accessKeyId": self.upper_id("ASIA"), "expiration": "x"}})
                who = self.role_who(acct, role, fn["name"], created=t)
                ua = LAMBDA_UA.format(v=r.randint(20, 40))
                for i in range(fn["params"]):
                    pname = f"/{fn['name']}/{['db-password', 'api-key', 'signing-secret', 'webhook-token'][i]}"
                    self.emit(t + dt.timedelta(milliseconds=300 + 50 * i), acct, reg, who, "ssm", "GetParameter",
                              "lambda-cold-start", ip=ip, ua=ua, req={"name": pname, "withDecryption": True})
                    self.emit(t + dt.timedelta(milliseconds=320 + 50 * i), acct, reg,
                              {"type": "AWSService", "invokedBy": "ssm.amazonaws.com"} if False else who,
                              "kms", "Decrypt", "lambda-cold-start", ip="ssm.amazonaws.com" if False else ip, ua=ua,
                              req={"encryptionContext": {"PARAMETER_ARN": f"arn:aws:ssm:{reg}:{acct}:parameter{pname}"},
                                   "encryptionAlgorithm": "SYMMETRIC_DEFAULT"})

    def scanner(self):
        """The security team's nightly audit: a SecurityAudit role in every account."""
        r = self.rng
        sec = self.accounts["security"]
        scanner_ip = self.db.pick(r, AWS_US_EAST_AS if self.home_region == "us-east-1" else AWS_AS)
        hour = r.uniform(1, 4)
        for day in range(self.days):
            date = self.start + dt.timedelta(days=day)
            t = date + dt.timedelta(hours=hour + r.uniform(-0.2, 0.2))
            for acct in self.accounts.values():
                session = f"secaudit-{date:%Y%m%d}"
                self.emit(t, acct, "us-east-1", self.role_who(sec, "secaudit-runner", "runner", created=t),
                          "sts", "AssumeRole", "nightly-scanner", ip=scanner_ip, ua=SCANNER_UA.format(v=22, a=4),
                          req={"roleArn": f"arn:aws:iam::{acct}:role/SecurityAudit", "roleSessionName": session})
                who = self.role_who(acct, "SecurityAudit", session, created=t)
                calls = r.sample(SCANNER_CALLS, int(len(SCANNER_CALLS) * r.uniform(0.85, 1.0)))
                for reg in [self.home_region, self.second_region] + (["us-east-1"] if "us-east-1" not in (self.home_region, self.second_region) else []):
                    for svc, name in calls:
                        if svc in ("iam", "s3", "organizations", "route53", "cloudfront") and reg != "us-east-1" and reg != self.home_region:
                            continue
                        t += dt.timedelta(milliseconds=r.randint(50, 900))
                        err = None
                        if name in ("GetBucketPolicy", "GetBucketEncryption", "GetKeyPolicy", "GetRepositoryPolicy", "GetPolicy20150331v2") and r.random() < 0.4:
                            err = ("NoSuchBucketPolicy" if svc == "s3" else "ResourceNotFoundException", "The resource does not exist")
                        if r.random() < 0.03:
                            err = ("AccessDenied", "User is not authorized to perform this operation")
                        self.emit(t, acct, reg, who, svc, name, "nightly-scanner", ip=scanner_ip,
                                  ua=SCANNER_UA.format(v=22, a=4), req=self.params_for(svc, name, acct), error=err)
                t += dt.timedelta(seconds=r.randint(30, 120))

    def ci(self):
        """GitHub Actions: terraform plan on pull requests, deploys on merge."""
        r = self.rng
        oidc_acct = self.accounts["prod"]
        for day in range(self.days):
            date = self.start + dt.timedelta(days=day)
            if date.weekday() >= 5 and r.random() < 0.7:
                continue
            for _ in range(r.randint(3, 12)):
                local_h = r.uniform(9, 19)
                t = date + dt.timedelta(hours=local_h - TZ[self.office_country])
                kind = "terraform-plan" if r.random() < 0.65 else "ci-deploy"
                acct = r.choice([a for n, a in self.accounts.items() if n != "security"])
                role = "gha-terraform-plan" if kind == "terraform-plan" else "gha-deploy"
                run = r.randint(7 * 10**9, 9 * 10**9)
                session = f"GitHubActions-{run}"
                runner_ip = self.db.pick(r, AZURE_AS, "US")
                sub = f"repo:{self.repo}:pull_request" if kind == "terraform-plan" else f"repo:{self.repo}:ref:refs/heads/main"
                self.emit(t, acct, "us-east-1", {"type": "WebIdentityUser", "principalId": f"arn:aws:iam::{acct}:oidc-provider/token.actions.githubusercontent.com:sts.amazonaws.com:{sub}",
                                                 "userName": sub, "identityProvider": f"arn:aws:iam::{acct}:oidc-provider/token.actions.githubusercontent.com"},
                          "sts", "AssumeRoleWithWebIdentity", kind, read_only=True, ip=runner_ip,
                          ua="aws-sdk-js/2.1543.0 promise",
                          req={"roleArn": f"arn:aws:iam::{acct}:role/{role}", "roleSessionName": session, "durationSeconds": 3600},
                          resp={"credentials": {"accessKeyId": self.upper_id("ASIA")}, "subjectFromWebIdentityToken": sub})
                who = self.role_who(acct, role, session, created=t)
                ua_v = r.randint(0, 4)
                calls = r.sample(TF_READS, r.randint(40, len(TF_READS)))
                for rep in range(r.randint(1, 3)):
                    for svc, name in calls:
                        t += dt.timedelta(milliseconds=r.randint(20, 400))
                        err = None
                        if name in ("GetBucketWebsite", "GetBucketCors", "GetBucketReplication", "GetBucketLifecycle", "GetBucketTagging", "GetBucketObjectLockConfiguration") and r.random() < 0.7:
                            err = ("NoSuchWebsiteConfiguration" if "Website" in name else "NoSuchConfiguration", "The configuration does not exist")
                        self.emit(t, acct, self.home_region, who, svc, name, kind, ip=runner_ip,
                                  ua=TERRAFORM_UA.format(v=ua_v, p=31 + ua_v, svc=svc),
                                  req=self.params_for(svc, name, acct), error=err)
                if kind == "ci-deploy":
                    for fn in [f for f in self.functions if f["account"] == acct][:r.randint(1, 3)]:
                        for name in ("UpdateFunctionCode20150331v2", "PublishVersion20150331", "UpdateAlias20150331"):
                            t += dt.timedelta(seconds=r.randint(1, 8))
                            self.emit(t, acct, self.home_region, who, "lambda", name, kind, read_only=False, ip=runner_ip,
                                      ua=TERRAFORM_UA.format(v=ua_v, p=31 + ua_v, svc="lambda"),
                                      req={"functionName": fn["name"], "publish": True},
                                      resp={"functionName": fn["name"], "version": str(r.randint(10, 300))})
                    for name in ("RegisterTaskDefinition", "UpdateService", "DescribeServices"):
                        t += dt.timedelta(seconds=r.randint(1, 8))
                        self.emit(t, acct, self.home_region, who, "ecs", name, kind, read_only=name.startswith("Describe"),
                                  ip=runner_ip, ua=TERRAFORM_UA.format(v=ua_v, p=31 + ua_v, svc="ecs"),
                                  req={"cluster": "main", "service": "api"})
                    if r.random() < 0.3:
                        for name in ("CreateChangeSet", "DescribeChangeSet", "ExecuteChangeSet", "DescribeStacks"):
                            t += dt.timedelta(seconds=r.randint(2, 20))
                            self.emit(t, acct, self.home_region, who, "cloudformation", name, kind,
                                      read_only=name.startswith("Describe"), ip=runner_ip,
                                      ua="aws-cdk/2.124.0 aws-sdk-js/3.x", req={"stackName": "AppStack"})

    def pipelines(self):
        """Nightly ETL: a Glue job reads the raw bucket and writes the curated one."""
        r = self.rng
        acct = self.accounts.get("data") or self.accounts["prod"]
        hour = r.uniform(0, 5)
        for day in range(self.days):
            date = self.start + dt.timedelta(days=day)
            t = date + dt.timedelta(hours=hour + r.uniform(0, 0.3))
            self.emit(t, acct, self.home_region, {"type": "AWSService", "invokedBy": "glue.amazonaws.com"}, "sts", "AssumeRole",
                      "data-pipeline", ip="glue.amazonaws.com", ua="glue.amazonaws.com",
                      req={"roleArn": f"arn:aws:iam::{acct}:role/etl-glue-role", "roleSessionName": "GlueJobRunnerSession"})
            who = self.role_who(acct, "etl-glue-role", "GlueJobRunnerSession", created=t)
            ip = r.choice(self.nat[(acct, self.home_region)])
            src, dst = self.buckets[acct][0], self.buckets[acct][1]
            for _ in range(r.randint(300, 700)):
                t += dt.timedelta(milliseconds=r.randint(50, 1500))
                self.emit(t, acct, self.home_region, who, "s3", "GetObject", "data-pipeline", ip=ip,
                          ua=GLUE_UA.format(v=r.randint(500, 600)), category="Data",
                          req={"bucketName": src, "key": f"raw/{date:%Y/%m/%d}/{self.hexid(10)}.json.gz"})
            for _ in range(r.randint(20, 60)):
                t += dt.timedelta(milliseconds=r.randint(50, 1500))
                self.emit(t, acct, self.home_region, who, "s3", "PutObject", "data-pipeline", read_only=False, ip=ip,
                          ua=GLUE_UA.format(v=r.randint(500, 600)), category="Data",
                          req={"bucketName": dst, "key": f"curated/{date:%Y/%m/%d}/part-{self.hexid(5)}.parquet"})
            # Analysts query the curated data with Athena during the day.
            for p in r.sample(self.people, 2):
                if day < p["joined"] or date.weekday() >= 5:
                    continue
                t2 = date + dt.timedelta(hours=r.uniform(9, 17) - p["tz"])
                who2 = self.role_who(acct, "analyst-athena", p["email"].split("@")[0], created=t2)
                ip2, _ = self.person_ip(p, day, 12)
                for name in ("StartQueryExecution", "GetQueryExecution", "GetQueryExecution", "GetQueryResults"):
                    t2 += dt.timedelta(seconds=r.randint(1, 30))
                    self.emit(t2, acct, self.home_region, who2, "athena", name, "data-pipeline",
                              read_only=name != "StartQueryExecution", ip=ip2, ua=CONSOLE_UA,
                              req={"workGroup": "primary"}, extra={"sessionCredentialFromConsole": "true"})

    def backups(self):
        r = self.rng
        for name, acct in self.accounts.items():
            if name not in ("prod", "data"):
                continue
            for day in range(self.days):
                date = self.start + dt.timedelta(days=day)
                t = date + dt.timedelta(hours=r.uniform(3, 4))
                who = self.role_who(acct, "AWSBackupDefaultServiceRole", "AWSBackup-AWSBackupDefaultServiceRole", created=t,
                                    extra={"invokedBy": "backup.amazonaws.com"})
                for _ in range(r.randint(2, 5)):
                    vol = "vol-0" + self.hexid(16)
                    snap = "snap-0" + self.hexid(16)
                    t += dt.timedelta(seconds=r.randint(5, 60))
                    self.emit(t, acct, self.home_region, who, "ec2", "CreateSnapshot", "backups", read_only=False,
                              ip="backup.amazonaws.com", ua="backup.amazonaws.com",
                              req={"volumeId": vol, "description": "This snapshot is created by the AWS Backup service."},
                              resp={"snapshotId": snap, "volumeId": vol})
                    t += dt.timedelta(seconds=r.randint(60, 600))
                    self.emit(t, acct, self.home_region, who, "ec2", "CopySnapshot", "backups", read_only=False,
                              ip="backup.amazonaws.com", ua="backup.amazonaws.com",
                              req={"sourceSnapshotId": snap, "sourceRegion": self.home_region, "destinationRegion": self.second_region})
                    t += dt.timedelta(seconds=r.randint(5, 60))
                    self.emit(t, acct, self.home_region, who, "ec2", "DeleteSnapshot", "backups", read_only=False,
                              ip="backup.amazonaws.com", ua="backup.amazonaws.com",
                              req={"snapshotId": "snap-0" + self.hexid(16)})
                t += dt.timedelta(seconds=30)
                self.emit(t, acct, self.home_region, who, "rds", "CreateDBSnapshot", "backups", read_only=False,
                          ip="backup.amazonaws.com", ua="backup.amazonaws.com",
                          req={"dBSnapshotIdentifier": f"awsbackup:job-{self.hexid(8)}", "dBInstanceIdentifier": "main-db"})
                self.emit(t + dt.timedelta(minutes=5), acct, self.home_region, who, "rds", "DeleteDBSnapshot", "backups", read_only=False,
                          ip="backup.amazonaws.com", ua="backup.amazonaws.com",
                          req={"dBSnapshotIdentifier": f"awsbackup:job-{self.hexid(8)}"})

    def config_and_analyzer(self):
        r = self.rng
        for acct in self.accounts.values():
            for day in range(self.days):
                date = self.start + dt.timedelta(days=day)
                for _ in range(r.randint(6, 14)):  # configuration changes recorded through the day
                    t = date + dt.timedelta(hours=r.uniform(0, 24))
                    who = self.role_who(acct, "AWSServiceRoleForConfig", "AWSConfig-Describe", created=t,
                                        extra={"invokedBy": "config.amazonaws.com"})
                    for svc, name in r.sample(CONFIG_CALLS, r.randint(3, 10)):
                        t += dt.timedelta(milliseconds=r.randint(10, 500))
                        self.emit(t, acct, self.home_region, who, svc, name, "aws-config", ip="config.amazonaws.com",
                                  ua="config.amazonaws.com", req=self.params_for(svc, name, acct))
                t = date + dt.timedelta(hours=r.uniform(0, 24))
                who = self.role_who(acct, "AWSServiceRoleForAccessAnalyzer", "access-analyzer", created=t,
                                    extra={"invokedBy": "access-analyzer.amazonaws.com"})
                for svc, name in ANALYZER_CALLS * r.randint(1, 3):
                    t += dt.timedelta(milliseconds=r.randint(10, 300))
                    self.emit(t, acct, self.home_region, who, svc, name, "access-analyzer",
                              ip="access-analyzer.amazonaws.com", ua="access-analyzer.amazonaws.com",
                              req=self.params_for(svc, name, acct))

    def iam_console_logins(self):
        """IAM users who sign in to the console (with MFA), now and then mistyping first."""
        r = self.rng
        for p in self.people:
            if not p["iam_user"]:
                continue
            for day in range(self.days):
                date = self.start + dt.timedelta(days=day)
                if date.weekday() >= 5 or r.random() < 0.5:
                    continue
                local_h = p["start_h"] + r.random() * 2
                t = date + dt.timedelta(hours=local_h - p["tz"])
                ip, label = self.person_ip(p, day, local_h)
                label = "console-sign-in" if label == "engineer" else label
                who = {"type": "IAMUser", "principalId": p["iam_id"], "arn": f"arn:aws:iam::{p['iam_account']}:user/{p['iam_user']}",
                       "accountId": p["iam_account"], "userName": p["iam_user"]}
                if r.random() < 0.08:
                    self.emit(t, p["iam_account"], "us-east-1", who, "signin", "ConsoleLogin", label, read_only=False, ip=ip,
                              ua=CONSOLE_UA, resp={"ConsoleLogin": "Failure"}, error=(None, "Failed authentication"),
                              event_type="AwsConsoleSignIn", extra={"additionalEventData": {"MFAUsed": "No", "MobileVersion": "No"}})
                    self.records[-1][3].pop("errorCode", None)
                    t += dt.timedelta(seconds=r.randint(5, 30))
                self.emit(t, p["iam_account"], "us-east-1", who, "signin", "ConsoleLogin", label, read_only=False, ip=ip,
                          ua=CONSOLE_UA, resp={"ConsoleLogin": "Success"}, event_type="AwsConsoleSignIn",
                          extra={"additionalEventData": {"MFAUsed": "Yes", "MobileVersion": "No", "LoginTo": "https://console.aws.amazon.com/console/home"}})

    # --- attack stories ----------------------------------------------------------------------

    def story(self, name, summary, principal, ids):
        self.stories.append({"name": name, "summary": summary, "principal": principal, "event_ids": ids})

    def attack_window(self):
        """A random time in the last week."""
        return self.end - dt.timedelta(days=self.rng.uniform(1, 6))

    def stories_all(self):
        r = self.rng
        iam_people = [p for p in self.people if p["iam_user"]]
        # 1. Data theft by volume with a developer's key, from its usual address.
        p = r.choice(iam_people)
        t = self.attack_window().replace(hour=13)
        acct = p["iam_account"]
        ids = []
        for b in r.sample(self.buckets[acct], 3):
            t += dt.timedelta(seconds=r.randint(10, 60))
            ids.append(self.emit(t, acct, self.home_region, self.user_who(p), "s3", "ListObjects", None, ip=p["home_ip"],
                                 ua=self.sdk_ua(p, "s3.sync"), req={"bucketName": b}, category="Data"))
            for _ in range(r.randint(90, 160)):
                t += dt.timedelta(seconds=r.uniform(2, 12))
                ids.append(self.emit(t, acct, self.home_region, self.user_who(p), "s3", "GetObject", None, ip=p["home_ip"],
                                     ua=self.sdk_ua(p, "s3.sync"), category="Data",
                                     req={"bucketName": b, "key": f"customers/{self.hexid(8)}.csv"}))
        self.story("exfil-by-volume", f"{p['iam_user']}'s key reads hundreds of objects from three buckets in an hour; its usual day is a handful",
                   p["iam_user"], ids)

        # 2. The CI deploy role's credentials used at night from a hosting provider.
        acct = self.accounts["prod"]
        t = self.attack_window().replace(hour=2, minute=r.randint(0, 59))
        ip = self.db.pick(r, *r.choice(HOSTING))
        session = f"GitHubActions-{r.randint(7 * 10**9, 9 * 10**9)}"
        who = self.role_who(acct, "gha-deploy", session, created=t - dt.timedelta(minutes=20))
        ids = []
        for svc, name in [("sts", "GetCallerIdentity"), ("s3", "ListBuckets"), ("secretsmanager", "ListSecrets"),
                          ("secretsmanager", "GetSecretValue"), ("secretsmanager", "GetSecretValue"),
                          ("s3", "ListObjects"), ("s3", "GetObject"), ("s3", "GetObject"), ("iam", "ListRoles")]:
            t += dt.timedelta(seconds=r.randint(5, 90))
            req = self.params_for(svc, name, acct) or ({"secretId": f"prod/{r.choice(['db', 'stripe', 'sendgrid'])}"} if svc == "secretsmanager" and name == "GetSecretValue" else None)
            ids.append(self.emit(t, acct, self.home_region, who, svc, name, None, ip=ip, ua="python-requests/2.31.0 Boto3/1.34.0",
                                 req=req, category="Data" if self.data_event(svc, name) else "Management"))
        self.story("ci-role-off-hours", "the CI deploy role's session used at 02:00 UTC from a hosting provider, reading secrets and objects",
                   "gha-deploy", ids)

        # 3. Slow reconnaissance with a stolen key from a new AS.
        p = r.choice(iam_people)
        t = self.attack_window().replace(hour=r.randint(0, 23))
        ip = self.db.pick(r, *r.choice(HOSTING))
        ids = []
        for svc, name in r.sample(SCANNER_CALLS, 45):
            t += dt.timedelta(minutes=r.uniform(4, 14))
            ids.append(self.emit(t, p["iam_account"], self.home_region, self.user_who(p), svc, name, None, ip=ip,
                                 ua=self.sdk_ua(p), req=self.params_for(svc, name, p["iam_account"]),
                                 error=("AccessDenied", "not authorized") if r.random() < 0.15 else None))
        self.story("slow-recon-new-as", f"{p['iam_user']}'s key enumerates the account slowly (one call every few minutes) from a hosting provider",
                   p["iam_user"], ids)

        # 4. Impossible travel: an SSO user signs in from home, then from another continent.
        p = r.choice([q for q in self.people if not q["iam_user"] and q is not self.traveller and q is not self.new_hire])
        acct = p["accounts"][0]
        t = self.attack_window().replace(hour=int(10 - p["tz"]) % 24, minute=5)
        far = r.choice([c for c in ("BR", "IN", "SG", "JP") if c != p["country"]])
        ip = self.db.pick(r, *r.choice(ISPS[far]))
        role = f"AWSReservedSSO_{p['permission']}_{zlib.crc32(p['permission'].encode()):08x}"
        who = self.role_who(acct, role, p["email"], created=t)
        self.emit(t - dt.timedelta(minutes=35), acct, self.home_region, who, "ec2", "DescribeInstances", "engineer",
                  ip=p["home_ip"], ua=self.sdk_ua(p))
        ids = [self.emit(t, acct, "us-east-1", who, "signin", "ConsoleLogin", None, read_only=False, ip=ip, ua=CONSOLE_UA,
                         resp={"ConsoleLogin": "Success"}, event_type="AwsConsoleSignIn",
                         extra={"additionalEventData": {"MobileVersion": "No", "MFAUsed": "No"}})]
        for svc, name in [("iam", "ListUsers"), ("iam", "ListRoles"), ("s3", "ListBuckets"), ("secretsmanager", "ListSecrets")]:
            t += dt.timedelta(seconds=r.randint(10, 60))
            ids.append(self.emit(t, acct, self.home_region, who, svc, name, None, ip=ip, ua=CONSOLE_UA,
                                 extra={"sessionCredentialFromConsole": "true"}))
        self.story("impossible-travel", f"{p['email']} works from {p['country']}, then signs in from {far} 35 minutes later",
                   p["email"], ids)

        # 5. A dormant IAM user comes back: a new access key, then used from a new network.
        acct = self.accounts["prod"]
        user = "svc-legacy-reports"
        uid = self.upper_id("AIDA", 17)
        old_key = self.upper_id("AKIA")
        old_ip = r.choice(self.nat[(acct, self.home_region)])
        for d in range(2):
            t0 = self.start + dt.timedelta(days=d, hours=6)
            for _ in range(r.randint(5, 15)):
                t0 += dt.timedelta(seconds=r.randint(5, 120))
                self.emit(t0, acct, self.home_region, {"type": "IAMUser", "principalId": uid, "arn": f"arn:aws:iam::{acct}:user/{user}",
                                                       "accountId": acct, "accessKeyId": old_key, "userName": user},
                          "s3", "PutObject", "legacy-reports-job", read_only=False, ip=old_ip, ua=APP_UA.replace("{v}", "3"),
                          req={"bucketName": self.buckets[acct][2], "key": f"reports/{self.hexid(6)}.pdf"}, category="Data")
        t = self.attack_window()
        ip = self.db.pick(r, *r.choice(VPN_PROVIDERS[2:] + HOSTING[:2]))
        new_key = self.upper_id("AKIA")
        who = {"type": "IAMUser", "principalId": uid, "arn": f"arn:aws:iam::{acct}:user/{user}", "accountId": acct,
               "accessKeyId": old_key, "userName": user}
        ids = [self.emit(t, acct, "us-east-1", who, "iam", "CreateAccessKey", None, read_only=False, ip=ip, ua="aws-cli/2.13.0",
                         req={"userName": user}, resp={"accessKey": {"accessKeyId": new_key, "status": "Active", "userName": user}})]
        who = dict(who, accessKeyId=new_key)
        for svc, name in [("sts", "GetCallerIdentity"), ("iam", "ListAttachedUserPolicies"), ("s3", "ListBuckets"),
                          ("ec2", "DescribeInstances"), ("rds", "DescribeDBInstances")]:
            t += dt.timedelta(minutes=r.uniform(1, 20))
            ids.append(self.emit(t, acct, self.home_region, who, svc, name, None, ip=ip, ua="aws-cli/2.13.0"))
        self.story("dormant-identity-new-key", f"{user}, silent for weeks, creates itself a new access key and uses it from a new network",
                   user, ids)

        # 6. A developer's SSO session launches instances in a region nobody uses.
        p = r.choice([q for q in self.people if q["permission"] != "ReadOnlyAccess" and not q["iam_user"]])
        acct = p["accounts"][-1]
        region = r.choice([x for x in ("sa-east-1", "ap-south-1", "eu-north-1") if x not in (self.home_region, self.second_region, self.new_region)])
        t = self.attack_window().replace(hour=int(14 - p["tz"]) % 24)
        role = f"AWSReservedSSO_{p['permission']}_{zlib.crc32(p['permission'].encode()):08x}"
        who = self.role_who(acct, role, p["email"], created=t)
        ids = []
        for svc, name, ro in [("ec2", "DescribeImages", True), ("ec2", "DescribeInstanceTypeOfferings", True),
                              ("ec2", "CreateKeyPair", False), ("ec2", "CreateSecurityGroup", False),
                              ("ec2", "RunInstances", False), ("ec2", "RunInstances", False), ("ec2", "DescribeInstances", True)]:
            t += dt.timedelta(seconds=r.randint(20, 120))
            req = {"instanceType": "c5.xlarge", "minCount": 4, "maxCount": 4} if name == "RunInstances" else None
            ids.append(self.emit(t, acct, region, who, svc, name, None, read_only=ro, ip=p["home_ip"], ua=self.sdk_ua(p), req=req))
        self.story("new-region-compute", f"{p['email']}'s session starts instances in {region}, a region the organisation does not use",
                   p["email"], ids)

    # --- output ------------------------------------------------------------------------------

    def run(self):
        self.engineers()
        self.instance_traffic()
        self.lambdas()
        self.scanner()
        self.ci()
        self.pipelines()
        self.backups()
        self.config_and_analyzer()
        self.iam_console_logins()
        self.stories_all()

    def write(self, out):
        files = {}
        for t, acct, region, rec in self.records:
            if t >= self.end:
                continue
            slot = t.replace(minute=(t.minute // 15) * 15, second=0, microsecond=0)
            files.setdefault((acct, region, slot), []).append((t, rec))
        n = 0
        for (acct, region, slot), recs in sorted(files.items()):
            recs.sort(key=lambda x: x[0])
            d = os.path.join(out, "AWSLogs", self.org, acct, "CloudTrail", region, f"{slot:%Y}", f"{slot:%m}", f"{slot:%d}")
            os.makedirs(d, exist_ok=True)
            stamp = (slot + dt.timedelta(minutes=15)).strftime("%Y%m%dT%H%MZ")
            name = f"{acct}_CloudTrail_{region}_{stamp}_{self.hexid(16)}.json.gz"
            with gzip.open(os.path.join(d, name), "wt", compresslevel=3) as f:
                json.dump({"Records": [r for _, r in recs]}, f, separators=(",", ":"))
            n += len(recs)
        kept = {rec["eventID"] for t, _, _, rec in self.records if t < self.end}
        labels = {"seed": self.seed, "days": self.days, "end": self.end.isoformat(),
                  "benign": {k: v for k, v in self.labels.items() if k in kept},
                  "stories": [dict(s, event_ids=[i for i in s["event_ids"] if i in kept]) for s in self.stories]}
        with open(os.path.join(out, "labels.json"), "w") as f:
            json.dump(labels, f)
        return n, len(files)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--days", type=int, default=21)
    ap.add_argument("--end", default="2026-11-26T00:00:00Z")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.days < 14:
        sys.exit("--days: at least 14 (stories fall in the last week, baselines need the weeks before)")
    end = dt.datetime.strptime(a.end, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    sim = Sim(a.seed, a.days, end, NetDb(NETDB))
    sim.run()
    n, files = sim.write(a.out)
    print(f"{n} records in {files} files, {len(sim.labels)} benign, {len(sim.stories)} stories, "
          f"{len(sim.accounts)} accounts, {len(sim.people)} people", file=sys.stderr)


if __name__ == "__main__":
    main()
