#!/usr/bin/env python3
"""Generate crates/detect/data/aws_event_catalog.txt: every AWS CloudTrail
eventSource with the eventNames that can occur for it.

The names come from botocore's service models (one per AWS API, the same data
the AWS CLI and boto3 use), plus a short hand-written list of CloudTrail events
that are not API operations (console sign-in, access-portal and agent events).
`cloudsentinel rules check` uses the catalog to warn about rules that select an
eventName that can never occur, e.g. `PassRole` (an IAM permission, never an
API call) or `ListAllMyBuckets` (the permission; the API is `ListBuckets`).

Requirements: python3 and botocore (the only third-party import):

    pip install botocore

Usage (from the repository root):

    python3 scripts/gen_aws_event_catalog.py            # writes the catalog
    python3 scripts/gen_aws_event_catalog.py --check    # also checks the real
                                                        # CloudTrail corpora
    python3 scripts/gen_aws_event_catalog.py -o /tmp/x.txt

Output format: comment lines starting with '#', then one line per eventSource,
sorted: `<eventSource> <Name1> <Name2> ...` with the names sorted.
Lambda's CloudTrail names carry API-version suffixes
(`UpdateFunctionCode20150331v2`, `ListFunctions20150331`); only the bare
operation names are listed, consumers accept `<Operation><8 digits>(v<N>)?`.
"""

import argparse
import datetime
import gzip
import json
import os
import re
import sys

try:
    import botocore
except ImportError:  # pragma: no cover - message for humans
    sys.exit("botocore is required: pip install botocore")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "crates", "detect", "data", "aws_event_catalog.txt")
CORPUS_DIR = os.path.join(os.path.dirname(REPO_ROOT), "shared", "corpus")

# ---------------------------------------------------------------------------
# botocore service name -> CloudTrail eventSource(s), where it is NOT simply
# `<metadata.endpointPrefix>.amazonaws.com` (the default). Services whose
# endpointPrefix already equals the CloudTrail eventSource (monitoring = CloudWatch,
# elasticloadbalancing = elb + elbv2, es = es + opensearch, rds = rds + docdb +
# neptune, lambda, ssm, identitystore, ec2-instance-connect, states,
# elasticfilesystem, elasticmapreduce, tagging, ...) need no entry; services
# sharing an eventSource are merged automatically.
# Sources: each service's "Logging ... API calls using AWS CloudTrail" page and
# the EventBridge event reference (docs.aws.amazon.com/eventbridge/latest/ref/
# events-ref-<service>.html), which names the CloudTrail eventSource per service.
# ---------------------------------------------------------------------------
EVENT_SOURCE_OVERRIDES = {
    # IAM Identity Center user guide, "Logging IAM Identity Center API calls
    # with AWS CloudTrail": sso-admin APIs log as sso.amazonaws.com (the
    # endpointPrefix is also "sso"); the access-portal API (botocore "sso",
    # endpoint portal.sso) logs GetRoleCredentials/ListAccounts/... as
    # sso.amazonaws.com; newer records may carry portal.sso, so list both.
    "sso": ["sso.amazonaws.com", "portal.sso.amazonaws.com"],
    # IAM Identity Center OIDC (CreateToken, RegisterClient,
    # StartDeviceAuthorization): EventBridge ref "events-ref-sso-oauth".
    "sso-oidc": ["sso-oauth.amazonaws.com"],
    # Amazon Bedrock user guide, "Monitor Amazon Bedrock API calls using
    # CloudTrail": runtime (InvokeModel, Converse...), agents, agent runtime
    # and data automation all log as bedrock.amazonaws.com.
    "bedrock-runtime": ["bedrock.amazonaws.com"],
    "bedrock-agent": ["bedrock.amazonaws.com"],
    "bedrock-agent-runtime": ["bedrock.amazonaws.com"],
    "bedrock-data-automation": ["bedrock.amazonaws.com"],
    "bedrock-data-automation-runtime": ["bedrock.amazonaws.com"],
    # S3 user guide, "Logging Amazon S3 API calls using AWS CloudTrail": S3
    # Control API calls (access points, Batch Operations, account public
    # access block...) are logged with eventSource s3.amazonaws.com.
    "s3control": ["s3.amazonaws.com"],
    # API Gateway developer guide: management API (v1 and v2) logs as
    # apigateway.amazonaws.com; the @connections API as execute-api.
    "apigatewaymanagementapi": ["execute-api.amazonaws.com"],
    # SES developer guide, "Logging Amazon SES API calls with CloudTrail":
    # v1 (ses), v2 (sesv2) and the Pinpoint Email API all log as ses.
    "ses": ["ses.amazonaws.com"],
    "sesv2": ["ses.amazonaws.com"],
    "pinpoint-email": ["ses.amazonaws.com"],
    # DynamoDB developer guide, "Logging DynamoDB operations by using AWS
    # CloudTrail": DynamoDB Streams (GetRecords, GetShardIterator...) data
    # events are logged with eventSource dynamodb.amazonaws.com.
    "dynamodbstreams": ["dynamodb.amazonaws.com"],
    # ECR user guide, CloudTrail examples: eventSource ecr.amazonaws.com
    # (endpoint api.ecr); ECR Public likewise ecr-public.amazonaws.com.
    "ecr": ["ecr.amazonaws.com"],
    "ecr-public": ["ecr-public.amazonaws.com"],
    # SageMaker developer guide, "Log Amazon SageMaker AI API calls using AWS
    # CloudTrail": eventSource sagemaker.amazonaws.com (endpoint api.sagemaker);
    # runtime InvokeEndpoint and the other sagemaker-* APIs sign as sagemaker.
    "sagemaker": ["sagemaker.amazonaws.com"],
    "sagemaker-runtime": ["sagemaker.amazonaws.com"],
    "sagemaker-a2i-runtime": ["sagemaker.amazonaws.com"],
    "sagemaker-edge": ["sagemaker.amazonaws.com"],
    "sagemaker-featurestore-runtime": ["sagemaker.amazonaws.com"],
    "sagemaker-metrics": ["sagemaker.amazonaws.com"],
    # Amazon Detective: eventSource detective.amazonaws.com (endpoint api.detective).
    "detective": ["detective.amazonaws.com"],
    # AWS CloudHSM user guide: CloudHSM (v2 API) logs as cloudhsm.amazonaws.com.
    "cloudhsmv2": ["cloudhsm.amazonaws.com"],
    # Lex developer guides: V1 and V2 build/runtime APIs log as lex.amazonaws.com.
    "lex-models": ["lex.amazonaws.com"],
    "lex-runtime": ["lex.amazonaws.com"],
    "lexv2-models": ["lex.amazonaws.com"],
    "lexv2-runtime": ["lex.amazonaws.com"],
    # Timestream: query and write endpoints log as timestream.amazonaws.com.
    "timestream-query": ["timestream.amazonaws.com"],
    "timestream-write": ["timestream.amazonaws.com"],
    # Payment Cryptography user guide: control and data plane both log as
    # payment-cryptography.amazonaws.com.
    "payment-cryptography": ["payment-cryptography.amazonaws.com"],
    "payment-cryptography-data": ["payment-cryptography.amazonaws.com"],
}

# Strip these endpoint prefixes' leading labels: `api.X` endpoints log as X
# (api.ecr -> ecr, api.sagemaker -> sagemaker, api.detective -> detective,
# api.pricing -> pricing, api.mediatailor -> mediatailor, api.iotwireless ...).
API_PREFIX = "api."

# ---------------------------------------------------------------------------
# Real CloudTrail events that are not botocore operations.
# ---------------------------------------------------------------------------
EXTRA_EVENTS = {
    # AWS CloudTrail user guide, "AWS Management Console sign-in events", and
    # IAM user guide, "Logging IAM and AWS STS API calls with AWS CloudTrail"
    # (sections "Logging user sign-in events", "Example sign-in events"):
    # ConsoleLogin, CheckMfa, SwitchRole, ExitRole, RenewRole, GetSigninToken,
    # PasswordUpdated, PasswordRecoveryRequested, PasswordRecoveryCompleted.
    # IAM Identity Center user guide, "Sign-in events" (eventSource
    # signin.amazonaws.com): CredentialChallenge, CredentialVerification,
    # UserAuthentication, ExternalIdPDirectoryLogin (sign-in through an
    # external IdP), ConsoleLogin.
    "signin.amazonaws.com": [
        "CheckMfa", "ConsoleLogin", "CredentialChallenge", "CredentialVerification",
        "ExitRole", "ExternalIdPDirectoryLogin", "GetSigninToken",
        "PasswordRecoveryCompleted", "PasswordRecoveryRequested", "PasswordUpdated",
        "RenewRole", "SwitchRole", "UserAuthentication",
    ],
    # IAM Identity Center user guide, "IAM Identity Center information in
    # CloudTrail" -> access-portal events (no public API for most of them):
    # Authenticate, Federate, Logout, ListApplications,
    # ListProfilesForApplication; GetRoleCredentials, ListAccounts,
    # ListAccountRoles come from the portal API in botocore.
    "sso.amazonaws.com": [
        "Authenticate", "Federate", "ListApplications", "ListProfilesForApplication",
        "Logout",
    ],
    # IAM Identity Center console events with eventSource sso.amazonaws.com
    # that predate (and are not part of) the public sso-admin API: the
    # console-only "sso:" actions of the Service Authorization Reference
    # ("AWS IAM Identity Center (successor to AWS Single Sign-On)"), which the
    # Identity Center user guide ("IAM Identity Center information in
    # CloudTrail") lists as CloudTrail events; e.g. DescribePermissionsPolicies
    # in its example record, AssociateDirectory / DisassociateDirectory in
    # SigmaHQ's aws_sso_idp_change.yml.
    "sso.amazonaws.com#console": [
        "AssociateDirectory", "AssociateProfile", "CreateApplicationInstance",
        "CreateApplicationInstanceCertificate", "CreateManagedApplicationInstance",
        "CreateProfile", "CreateTrust", "DeleteApplicationInstance",
        "DeleteApplicationInstanceCertificate", "DeleteManagedApplicationInstance",
        "DeletePermissionsPolicy", "DeleteProfile", "DescribePermissionsPolicies",
        "DisassociateDirectory", "DisassociateProfile", "GetApplicationInstance",
        "GetApplicationTemplate", "GetManagedApplicationInstance",
        "GetMfaDeviceManagementForDirectory", "GetPermissionSet", "GetProfile",
        "GetSSOStatus", "GetSharedSsoConfiguration", "GetSsoConfiguration", "GetTrust",
        "ImportApplicationInstanceServiceProviderMetadata",
        "ListApplicationInstanceCertificates", "ListApplicationInstances",
        "ListApplicationTemplates", "ListDirectoryAssociations", "ListPermissionSets",
        "ListProfileAssociations", "ListProfiles", "PutMfaDeviceManagementForDirectory",
        "PutPermissionsPolicy", "StartSSO", "UpdateApplicationInstanceActiveCertificate",
        "UpdateApplicationInstanceDisplayData",
        "UpdateApplicationInstanceResponseConfiguration",
        "UpdateApplicationInstanceResponseSchemaConfiguration",
        "UpdateApplicationInstanceSecurityConfiguration",
        "UpdateApplicationInstanceServiceProviderConfiguration",
        "UpdateApplicationInstanceStatus", "UpdateDirectoryAssociation",
        "UpdateManagedApplicationInstanceStatus", "UpdateProfile",
        "UpdateSSOConfiguration", "UpdateTrust",
    ],
    # IAM Identity Center directory (the built-in identity source), eventSource
    # sso-directory.amazonaws.com: the "sso-directory:" actions of the Service
    # Authorization Reference, listed as CloudTrail events in the Identity
    # Center user guide ("IAM Identity Center information in CloudTrail").
    "sso-directory.amazonaws.com": [
        "AddMemberToGroup", "CompleteVirtualMfaDeviceRegistration",
        "CompleteWebAuthnDeviceRegistration", "CreateAlias", "CreateBearerToken",
        "CreateExternalIdPConfigurationForDirectory", "CreateGroup",
        "CreateProvisioningTenant", "CreateUser", "DeleteBearerToken",
        "DeleteExternalIdPConfigurationForDirectory", "DeleteGroup",
        "DeleteMfaDeviceForUser", "DeleteProvisioningTenant", "DeleteUser",
        "DescribeDirectory", "DescribeGroup", "DescribeGroups",
        "DescribeProvisioningTenant", "DescribeUser", "DescribeUserByUniqueAttribute",
        "DescribeUsers", "DisableExternalIdPConfigurationForDirectory", "DisableUser",
        "EnableExternalIdPConfigurationForDirectory", "EnableUser",
        "GetAWSSPConfigurationForDirectory", "GetUserPoolInfo",
        "ImportExternalIdPCertificate", "IsMemberInGroup", "ListBearerTokens",
        "ListExternalIdPCertificates", "ListExternalIdPConfigurationsForDirectory",
        "ListGroupsForMember", "ListGroupsForUser", "ListMembersInGroup",
        "ListMfaDevicesForUser", "ListProvisioningTenants", "RemoveMemberFromGroup",
        "SearchGroups", "SearchUsers", "StartVirtualMfaDeviceRegistration",
        "StartWebAuthnDeviceRegistration", "UpdateExternalIdPConfigurationForDirectory",
        "UpdateGroup", "UpdateGroupDisplayName", "UpdateMfaDeviceForUser",
        "UpdatePassword", "UpdateUser", "UpdateUserName", "VerifyEmail",
    ],
    "portal.sso.amazonaws.com": [
        "Authenticate", "Federate", "ListApplications", "ListProfilesForApplication",
        "Logout",
    ],
    # Systems Manager user guide, "Logging AWS Systems Manager API calls with
    # AWS CloudTrail": SSM Agent calls to the ec2messages / ssmmessages
    # endpoints (no public API) are logged, e.g. SendHeartbeat, GetMessages,
    # AcknowledgeMessage, SendReply, DeleteMessage, FailMessage (ec2messages)
    # and CreateControlChannel, CreateDataChannel, OpenControlChannel,
    # OpenDataChannel (ssmmessages). SSM Agent's GetManifest and
    # UpdateInstanceAssociationStatus/PutInventory are public APIs already.
    "ec2messages.amazonaws.com": [
        "AcknowledgeMessage", "DeleteMessage", "FailMessage", "GetEndpoint",
        "GetMessages", "SendHeartbeat", "SendReply",
    ],
    "ssmmessages.amazonaws.com": [
        "CreateControlChannel", "CreateDataChannel", "OpenControlChannel",
        "OpenDataChannel",
    ],
    # SSM Agent calls to ssm.amazonaws.com that are not public API operations
    # (they are the agent-only actions of the AmazonSSMManagedInstanceCore
    # managed policy: ssm:UpdateInstanceInformation, ssm:ListInstanceAssociations,
    # ssm:GetManifest). UpdateInstanceInformation is seen in the Panther corpus
    # with userAgent amazon-ssm-agent.
    # RegisterManagedInstance: the agent's registration call, made with the
    # instance identity role session (assumed-role/aws:ec2-instance) under
    # Default Host Management Configuration or with a hybrid activation; see
    # packetmischief.ca/2023/07/31/amazon-ec2-credential-exfiltration-how-it-
    # happens-and-how-to-mitigate-it (cited by SigmaHQ's
    # aws_cloudtrail_imds_malicious_usage.yml, which filters it as benign; so
    # does Panther's AWS.CloudTrail.IMDSCredentialExfiltration).
    "ssm.amazonaws.com": [
        "GetManifest", "ListInstanceAssociations", "RegisterManagedInstance",
        "UpdateInstanceInformation",
    ],
    # S3 user guide, "Amazon S3 CloudTrail events" (event names that differ
    # from API names): Object Lock bucket configuration is recorded as
    # Get/PutBucketObjectLockConfiguration. (Block Public Access: see RENAMED.)
    "s3.amazonaws.com": [
        "GetBucketObjectLockConfiguration", "PutBucketObjectLockConfiguration",
    ],
    # Amazon Bedrock model access (console "Manage model access"; the IAM
    # action bedrock:PutFoundationModelEntitlement): recorded in the real
    # Stratus Red Team detonation log of aws.impact.bedrock-invoke-model.
    "bedrock.amazonaws.com": ["PutFoundationModelEntitlement"],
    # AWS Billing user guide, "Logging Billing and Cost Management API calls
    # with AWS CloudTrail" -> "AWS Billing CloudTrail events": console events
    # with eventSource billingconsole.amazonaws.com (no public API). The list
    # below is that table's billingconsole part, plus the account
    # contact reads the Billing console records (seen in the Panther corpus,
    # eventType AwsConsoleAction). The names were taken from that page's table
    # without a full copy of it at hand: the list may be incomplete; check it
    # against the page when regenerating.
    "billingconsole.amazonaws.com": [
        "AcceptFxPaymentCurrencyTermsAndConditions", "CloseAccount",
        "CreateOrigamiReportPreference", "DeleteOrigamiReportPreferences",
        "DownloadCommercialInvoice", "DownloadECSVForBillingPeriod",
        "DownloadRegistrationDocument", "EnableBillingAlerts",
        "FindECSVForBillingPeriod", "GetAccountEDPStatus", "GetAllAccounts",
        "GetAlternateContact", "GetBillsForBillingPeriod", "GetBillsForLinkedAccount",
        "GetCommercialInvoicesForBillingPeriod", "GetConsolidatedBillingFamilyCreditDetails",
        "GetContactInformation", "GetCreditsForBillingPeriod", "GetLinkedAccountNames",
        "GetMarketplaceBillsForBillingPeriod", "GetTotal", "GetTotalAmountForForecast",
        "GetTransactionsForBillingPeriod", "RedeemCredits", "SetAccountContractMetadata",
        "SetAccountPreferences", "SetAdditionalContacts", "SetContactAddress",
        "SetCreatedByOnOrigamiReport", "SetCreditSharing", "SetFreetierBudgetsPreference",
        "SetFxPaymentCurrency", "SetIAMAccessPreference", "SetPANInformation",
        "SetPayInformation", "SetRISharing", "SetSecurityQuestions", "SetTaxRegistration",
        "UpdateOrigamiReport", "ValidateAddress",
    ],
    # Same Billing page, note on event sources other than billingconsole.
    "taxconsole.amazonaws.com": [
        "BatchGetTaxExemptions", "CreateCustomerCase", "GetTaxExemptionTypes",
    ],
    "customer-verification.amazonaws.com": [
        "CreateCustomerVerificationDetails", "GetCustomerVerificationDetails",
        "GetCustomerVerificationEligibility", "UpdateCustomerVerificationDetails",
    ],
    "purchase-orders.amazonaws.com": [
        "AddPurchaseOrder", "DeletePurchaseOrder", "GetPurchaseOrder",
        "ListPurchaseOrderInvoices", "ListPurchaseOrders", "ListTagsForResource",
        "TagResource", "UntagResource", "UpdatePurchaseOrder", "UpdatePurchaseOrderStatus",
    ],
}

# ---------------------------------------------------------------------------
# API operations that CloudTrail records under a different eventName.
# (eventSource, API operation) -> the eventNames CloudTrail records instead.
# The API name is removed (a rule selecting it can never fire) and the
# recorded names are added.
# ---------------------------------------------------------------------------
RENAMED = {
    # S3 user guide, "Amazon S3 CloudTrail events": "in some cases, the
    # CloudTrail event name differs from the API action name"; Block Public
    # Access is logged as Put/Get/DeleteBucketPublicAccessBlock for a bucket
    # (s3 API) and Put/Get/DeleteAccountPublicAccessBlock for the account
    # (s3control API). Cf. GuardDuty findings
    # Policy:S3/BucketBlockPublicAccessDisabled and
    # Policy:S3/AccountBlockPublicAccessDisabled.
    ("s3.amazonaws.com", "DeletePublicAccessBlock"):
        ["DeleteBucketPublicAccessBlock", "DeleteAccountPublicAccessBlock"],
    ("s3.amazonaws.com", "GetPublicAccessBlock"):
        ["GetBucketPublicAccessBlock", "GetAccountPublicAccessBlock"],
    ("s3.amazonaws.com", "PutPublicAccessBlock"):
        ["PutBucketPublicAccessBlock", "PutAccountPublicAccessBlock"],
}

# (eventSource, eventName) pairs of the Panther corpus that are known not to be
# real CloudTrail events: hand-made values in Panther's unit tests (mostly
# "should not fire" cases). `--check` lists them separately.
NOT_REAL_IN_CORPUS = {
    ("cloudtrail.amazonaws.com", "DeleteRule"): "test filler; CloudTrail has no DeleteRule",
    ("cloudtrail.amazonaws.com", "DescribeTrail"): "the API is DescribeTrails",
    ("cloudtrail.amazonaws.com", "EnableRegion"): "EnableRegion is logged by account.amazonaws.com",
    ("ec2.amazonaws.com", "DeleteBucketEncryption"): "S3 name under the wrong source (negative test)",
    ("ec2.amazonaws.com", "DeleteBucketPublicAccessBlock"): "S3 name under the wrong source (negative test)",
    ("ec2.amazonaws.com", "DeleteBucketReplication"): "S3 name under the wrong source (negative test)",
    ("ec2.amazonaws.com", "PutBucketLogging"): "S3 name under the wrong source (negative test)",
    ("ec2.amazonaws.com", "PutBucketVersioning"): "S3 name under the wrong source (negative test)",
    ("ec2.amazonaws.com", "RegisterManagedInstance"): "an ssm.amazonaws.com event under the wrong source (negative test)",
    ("iam.amazonaws.com", "DescribePolicy"): "no such IAM API (GetPolicy); negative test",
    ("iam.amazonaws.com", "DetachUserGroup"): "no such IAM API (RemoveUserFromGroup); negative test",
    ("iam.amazonaws.com", "NotCreateUser"): "deliberately fake name (negative test)",
    ("iam.amazonaws.com", "PutPolicy"): "no such IAM API; negative test",
    ("macie.amazonaws.com", "UpdateMacieSession"): "UpdateMacieSession is Macie v2 (macie2.amazonaws.com); Macie Classic is retired",
    ("s3.amazonaws.com", "CreateServiceLinkedRole"): "IAM API under the wrong source (negative test)",
    ("s3.amazonaws.com", "ListAllMyBuckets"): "IAM permission; the API/event is ListBuckets",
    ("s3.amazonaws.com", "ListBucket"): "IAM permission; the events are ListObjects/ListObjectsV2",
    ("s3.amazonaws.com", "SetQueueAttributes"): "SQS API under the wrong source (negative test)",
    ("signin.amazonaws.com", "AssumeRole"): "AssumeRole is sts.amazonaws.com (negative test)",
    ("sso.amazonaws.com", "CreateToken"): "OIDC CreateToken is logged by sso-oauth.amazonaws.com",
}

LAMBDA_SUFFIX = re.compile(r"^(.*?)(\d{8})(v\d+)?$")


def data_dir():
    return os.path.join(os.path.dirname(botocore.__file__), "data")


def load_model(path):
    if os.path.exists(path):
        with open(path, "rb") as f:
            return json.load(f)
    if os.path.exists(path + ".gz"):
        with gzip.open(path + ".gz", "rb") as f:
            return json.load(f)
    return None


def latest_models():
    """Yield (service, api_version, model) for each service's latest api-version."""
    root = data_dir()
    for svc in sorted(os.listdir(root)):
        sdir = os.path.join(root, svc)
        if not os.path.isdir(sdir):
            continue
        versions = sorted(
            v for v in os.listdir(sdir)
            if os.path.isdir(os.path.join(sdir, v))
            and (os.path.exists(os.path.join(sdir, v, "service-2.json"))
                 or os.path.exists(os.path.join(sdir, v, "service-2.json.gz")))
        )
        if not versions:
            continue
        version = versions[-1]  # api-versions are ISO dates: lexical == chronological
        model = load_model(os.path.join(sdir, version, "service-2.json"))
        if model is not None:
            yield svc, version, model


def event_sources(svc, model):
    if svc in EVENT_SOURCE_OVERRIDES:
        return EVENT_SOURCE_OVERRIDES[svc]
    prefix = model["metadata"].get("endpointPrefix") or svc
    if prefix.startswith(API_PREFIX):
        prefix = prefix[len(API_PREFIX):]
    return [prefix + ".amazonaws.com"]


def build_catalog():
    catalog = {}
    for svc, _version, model in latest_models():
        names = set(model.get("operations", {}))
        for source in event_sources(svc, model):
            catalog.setdefault(source, set()).update(names)
    for (source, api_name), recorded in RENAMED.items():
        names = catalog.setdefault(source, set())
        names.discard(api_name)
        names.update(recorded)
    for key, names in EXTRA_EVENTS.items():
        source = key.split("#", 1)[0]  # "#tag" only keeps two lists for one source apart
        catalog.setdefault(source, set()).update(names)
    return catalog


def strip_lambda_suffix(source, name):
    if source == "lambda.amazonaws.com":
        m = LAMBDA_SUFFIX.match(name)
        if m and m.group(1):
            return m.group(1)
    return name


def write_catalog(catalog, out_path, argv):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    lines = [
        "# AWS CloudTrail eventSource -> eventNames that can occur for it.",
        "# Generated by scripts/gen_aws_event_catalog.py; do not edit by hand.",
        "# botocore %s, generated %s (UTC)." % (botocore.__version__, now),
        "# Command: python3 scripts/gen_aws_event_catalog.py%s"
        % ("".join(" " + a for a in argv) if argv else ""),
        "# Names: operations of each botocore service model (latest api-version),",
        "# merged per eventSource, plus hand-listed non-API events (sign-in, portal, agent).",
        "# Lambda names appear without their API-version suffix (Operation20150331v2).",
        "# Format: <eventSource> <Name> <Name> ...",
    ]
    for source in sorted(catalog):
        lines.append(" ".join([source] + sorted(catalog[source])))
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")


def corpus_pairs():
    """(eventSource, eventName) -> corpora, from the real CloudTrail corpora."""
    files = [
        (os.path.join(CORPUS_DIR, "stratus", "stratus_detonations.jsonl"), None),
        (os.path.join(CORPUS_DIR, "panther", "panther_rule_tests.jsonl"), "AWS.CloudTrail"),
    ]
    pairs = {}
    for path, log_type in files:
        if not os.path.exists(path):
            print("corpus not found, skipped: %s" % path, file=sys.stderr)
            continue
        with open(path, encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                if log_type and rec.get("log_type") != log_type:
                    continue
                ev = rec.get("event") or {}
                src, name = ev.get("eventSource"), ev.get("eventName")
                if src and name:
                    pairs.setdefault((src, name), set()).add(os.path.basename(path))
    return pairs


def check(catalog):
    missing = []
    for (src, name), where in sorted(corpus_pairs().items()):
        if strip_lambda_suffix(src, name) not in catalog.get(src, ()):
            missing.append((src, name, sorted(where)))
    for src, name, where in missing:
        if (src, name) in NOT_REAL_IN_CORPUS:
            print("not real, ignored: %s %s [%s]: %s" % (
                src, name, ", ".join(where), NOT_REAL_IN_CORPUS[(src, name)]))
            continue
        known_elsewhere = sorted(s for s, n in catalog.items() if name in n and s != src)
        hint = (" (name exists under: %s)" % ", ".join(known_elsewhere[:4])) if known_elsewhere else ""
        print("NOT IN CATALOG: %s %s [%s]%s" % (src, name, ", ".join(where), hint))
    real = [m for m in missing if (m[0], m[1]) not in NOT_REAL_IN_CORPUS]
    print("%d corpus pair(s) not in the catalog, %d unexplained"
          % (len(missing), len(real)))
    return real


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true",
                    help="report (eventSource, eventName) pairs of the real corpora "
                         "under ../shared/corpus that are not in the catalog")
    args = ap.parse_args()
    catalog = build_catalog()
    argv = []
    if args.output != DEFAULT_OUT:
        argv += ["-o", args.output]
    write_catalog(catalog, args.output, argv)
    total = sum(len(v) for v in catalog.values())
    print("botocore %s: %d eventSources, %d names -> %s (%d bytes)" % (
        botocore.__version__, len(catalog), total, args.output, os.path.getsize(args.output)))
    if args.check and check(catalog):
        sys.exit(1)


if __name__ == "__main__":
    main()
