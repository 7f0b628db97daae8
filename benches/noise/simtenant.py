#!/usr/bin/env python3
"""An Azure and GCP organisation simulator, for the noise benchmark (issue 23).

Like simorg.py (AWS), the organisation is drawn from the seed: an Entra tenant of 30 to 50 people
with service principals and managed identities, two subscriptions with Key Vaults, storage
accounts, VMs and web apps, and three GCP projects; every benign record is labelled with the
routine that made it, and addresses are drawn by AS from the table CloudSentinel ships. The
records are in the shapes a diagnostic setting writes to a storage account (one JSON record per
line: Entra sign-in and audit logs, the Activity Log, Key Vault AuditEvent, Blob StorageRead) and
the shape of a Cloud Logging export (LogEntry per line: admin activity and data access).

    python3 benches/noise/simtenant.py --seed 11 --days 21 --out /tmp/tenant

writes OUT/azure/... and OUT/gcp/... and OUT/labels.json:
    {"benign": {id: "azure/<routine>" | "gcp/<routine>"}, "late": [ids after the first week],
     "benign_log": {id: "azure/signin" | ... | "gcp/data_access"},
     "stories": [{name, provider, summary, principal, event_ids}]}

Record ids are the ids CloudSentinel gives the records: the Entra `properties.id`, the GCP
`insertId`, and for the Activity Log, Key Vault and storage records (which carry no id of their
own) the FNV-1a hash of the record's line, as the decoder computes it.

Noise sources are the ones a real tenant has (issue 23): a nightly inventory job reading every
secret of a vault and listing storage keys, Terraform plan refreshes listing storage keys from
GitHub runners, Azure Backup pruning restore points, daily PIM activations of admin roles,
Azure DevOps slot deploys fetching publishing credentials, developers deleting sandbox resource
groups, secret rotation adding app secrets, managed identities reading their secrets, a data
pipeline reading blobs and GCS objects, the GKE autoscaler creating instances in several zones,
a security scanner reading IAM policies, people's sign-ins (MFA prompts answered late or declined
once by mistake), travel and a new hire.
"""

import argparse
import datetime as dt
import json
import os
import random
import sys
import uuid
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from simorg import FIRST, HOSTING, ISPS, LAST, NETDB, TZ, VPN_PROVIDERS, NetDb  # noqa: E402

AZURE_AS = 8075
GOOGLE_AS = 15169
GOOGLE_CLOUD_AS = 396982
UPN_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
NAME_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
OID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
MS_PIM = ("MS-PIM", "01fc33a7-78ba-4d2f-a4b7-768e336e890e")
PORTAL = ("c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "Azure Portal")
AZ_CLI = ("04b07795-8ddb-461a-bbee-02f9e1bf7b46", "Microsoft Azure CLI")
TEAMS = ("1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Microsoft Teams")
OUTLOOK = ("d3590ed6-52b3-4102-aeff-aad2292ab01c", "Microsoft Office")
BROWSER_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0"
MAC_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"
GCLOUD_UA = "google-cloud-sdk gcloud/471.0.0 command/gcloud.{cmd} invocation-id/{inv} environment/None environment-version/None client-os/{os} client-os-ver/23.4.0 client-pltf-arch/arm interactive/True from-script/False python/3.11.8 term/xterm-256color (Macintosh; Intel Mac OS X 23.4.0)"
TF_GCP_UA = "Terraform/1.7.5 (+https://www.terraform.io) Terraform-Plugin-SDK/2.10.1 terraform-provider-google/5.24.0 (+https://registry.terraform.io/providers/hashicorp/google) google-api-go-client/0.5"
TF_AZ_UA = "HashiCorp Terraform/1.7.5 (+https://www.terraform.io) Terraform Plugin SDK/2.29.0 terraform-provider-azurerm/3.99.0 pid-222c6c49-1b0a-5959-a213-6608f9eb8820"
PY_GCS_UA = "gcloud-python/2.16.0 gl-python/3.11.8 grpc/1.62.1 gax/2.18.0 gccl/2.16.0"
KV_SDK = "azsdk-python-keyvault-secrets/4.8.0 Python/3.11.8 (Linux-5.15.0-1057-azure-x86_64-with-glibc2.35)"
KV_NET = "azsdk-net-Security.KeyVault.Secrets/4.6.0 (.NET 8.0.4; Microsoft Windows 10.0.20348)"
CURL = "python-requests/2.31.0"


def az_time(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}0Z"


def g_time(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}Z"


def fnv(text):
    h = 0xCBF29CE484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"synthetic-{h:016x}"


class Tenant:
    def __init__(self, seed, days, end, netdb):
        self.rng = random.Random(seed)
        self.seed = seed
        self.db = netdb
        self.days = days
        self.end = end
        self.start = end - dt.timedelta(days=days)
        self.lines = []  # (time, file key, line)
        self.labels = {}
        self.log_of = {}
        self.late = set()
        self.stories = []
        self.story_ids = None  # the story being written, when one is
        self.build()

    # --- identifiers -------------------------------------------------------------------------

    def uid(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hexid(self, n):
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def day(self, d, hour):
        """Time `hour` (fractional, UTC) of day `d` of the period."""
        return self.start + dt.timedelta(days=d, hours=hour)

    def jitter(self, t, minutes):
        return t + dt.timedelta(seconds=self.rng.uniform(0, minutes * 60))

    # --- the organisation --------------------------------------------------------------------

    def build(self):
        r = self.rng
        self.tenant = self.uid()
        self.domain = r.choice(["contoso", "fabrikam", "northwind", "tailspin", "woodgrove"]) + ".example"
        self.subs = {"prod": self.uid(), "dev": self.uid()}
        self.country = r.choice(["DE", "GB", "FR", "NL", "US", "PL", "ES"])
        isp = r.choice(ISPS[self.country])
        self.office_ips = [self.db.pick(r, *isp) for _ in range(2)]
        vpn = r.choice(VPN_PROVIDERS)
        self.vpn_ips = [self.db.pick(r, vpn[0], self.country) for _ in range(3)]
        self.azure_region = r.choice(["westeurope", "northeurope", "eastus", "germanywestcentral"])
        self.azure_ips = [self.db.pick(r, AZURE_AS) for _ in range(6)]
        self.gcp_ips = [self.db.pick(r, GOOGLE_CLOUD_AS) for _ in range(4)] + [self.db.pick(r, GOOGLE_AS)]
        n = r.randint(35, 55)
        used = set()
        self.people = []
        for i in range(n):
            while True:
                first, last = r.choice(FIRST), r.choice(LAST)
                if (first, last) not in used:
                    used.add((first, last))
                    break
            country = self.country if r.random() < 0.75 else r.choice([c for c in ISPS if c != self.country])
            p = {
                "name": f"{first} {last}", "upn": f"{first.lower()}.{last.lower()}@{self.domain}",
                "oid": self.uid(), "country": country, "home": self.db.pick(r, *r.choice(ISPS[country])),
                "tz": TZ[country], "start_h": r.uniform(7.5, 10), "len_h": r.uniform(7, 9.5),
                "office_days": r.sample(range(5), r.randint(0, 4)), "vpn": r.random() < 0.3,
                "azure": r.random() < 0.45, "gcp": r.random() < 0.35, "mac": r.random() < 0.5,
                "joined": 0, "kv_reader": r.random() < 0.15, "blob_reader": r.random() < 0.2,
            }
            self.people.append(p)
        engineers = [p for p in self.people if p["azure"]] or self.people[:3]
        self.admins = r.sample(engineers, min(len(engineers), r.randint(2, 4)))
        for a in self.admins:
            a["azure"] = True
            a["pim_role"] = r.choice(["Global Administrator", "Privileged Role Administrator", "User Administrator",
                                      "Application Administrator"])
            a["pim_hour"] = a["start_h"] - a["tz"] + r.uniform(0, 1.5)
        hire = self.people[-1]
        hire["joined"] = r.randint(6, self.days - 6)
        self.hire = hire
        self.traveller = r.choice(self.people[:-1])
        tc = r.choice([c for c in ISPS if c != self.traveller["country"]])
        self.travel = (r.randint(3, self.days - 9), tc, self.db.pick(r, *r.choice(ISPS[tc])))
        # Azure resources.
        self.rgs = {s: [f"rg-{s}-{x}" for x in r.sample(["app", "data", "net", "shared", "ops", "web"], 3)]
                    for s in self.subs}
        self.vaults = [(s, r.choice(self.rgs[s]), f"kv-{s}-{self.hexid(4)}") for s in self.subs for _ in range(r.randint(1, 2))]
        self.secrets = {v[2]: [f"{x}-{self.hexid(3)}" for x in r.sample(
            ["db-password", "api-key", "smtp-pass", "storage-conn", "jwt-signing", "redis-pass", "sb-conn",
             "graph-client-secret", "stripe-key", "sentry-dsn", "ldap-bind", "backup-key", "cert-pass",
             "webhook-secret", "search-key", "cosmos-key", "openai-key", "twilio-token"], r.randint(12, 18))]
            for v in self.vaults}
        self.storage = [(s, r.choice(self.rgs[s]), f"st{s}{self.hexid(8)}") for s in self.subs for _ in range(r.randint(2, 3))]
        self.vms = [(s, r.choice(self.rgs[s]), f"vm-{s}-{x}-{i}") for s in self.subs for i, x in enumerate(r.sample(["api", "worker", "jump", "batch"], 2))]
        self.webapps = [("prod", r.choice(self.rgs["prod"]), f"app-{x}-{self.hexid(3)}") for x in r.sample(["portal", "api", "admin", "hooks"], 2)]
        self.nsgs = [(s, r.choice(self.rgs[s]), f"nsg-{s}-{x}") for s in self.subs for x in ["app", "mgmt"]]
        # Service principals and managed identities.
        def sp(name):
            return {"name": name, "app": self.uid(), "oid": self.uid()}
        self.sp_terraform = sp("github-terraform")
        self.sp_inventory = sp("cloud-inventory")
        self.sp_devops = sp("ado-deploy-" + self.hexid(4))
        self.sp_rotation = sp("secret-rotation")
        self.sp_backup = {"name": "Backup Management Service", "app": "262044b1-e2ce-469f-a196-69ab7ada62d3", "oid": self.uid()}
        self.sp_billing = sp("billing-sync")
        self.rotated_apps = [sp(x) for x in r.sample(["crm-connector", "hr-feed", "sso-bridge", "reporting-api"], 2)]
        self.mis = [{"name": f"id-{w[2]}", "app": self.uid(), "oid": self.uid(), "vault": r.choice(self.vaults),
                     "ip": r.choice(self.azure_ips)} for w in self.webapps + self.vms[:2]]
        self.etl_mi = {"name": "id-etl-" + self.hexid(3), "app": self.uid(), "oid": self.uid(), "ip": r.choice(self.azure_ips)}
        # GCP.
        self.projects = [f"{x}-{self.hexid(4)}" for x in r.sample(["prod", "analytics", "platform", "ml", "web"], 3)]
        self.pnum = {p: str(r.randint(10**11, 10**12 - 1)) for p in self.projects}
        self.buckets = {p: [f"{p}-{x}" for x in r.sample(["raw", "curated", "exports", "models", "assets", "backups"], 3)] for p in self.projects}
        self.sa_pipeline = f"etl-pipeline@{self.projects[1]}.iam.gserviceaccount.com"
        self.sa_terraform = f"terraform@{self.projects[2]}.iam.gserviceaccount.com"
        self.sa_scanner = f"sec-scanner@{self.projects[2]}.iam.gserviceaccount.com"
        self.sa_app = f"api-backend@{self.projects[0]}.iam.gserviceaccount.com"
        self.sa_reporting = f"reporting@{self.projects[1]}.iam.gserviceaccount.com"
        self.zones = {p: [f"{reg}-{z}" for z in "abc"] for p, reg in zip(self.projects, r.sample(["europe-west1", "europe-west4", "us-central1", "us-east1"], 3))}
        self.gh_ips = [self.db.pick(r, AZURE_AS) for _ in range(40)]  # GitHub-hosted runners

    # --- writing -----------------------------------------------------------------------------

    def put(self, t, key, rec, source, rid=None):
        line = json.dumps(rec, separators=(",", ":"))
        rid = rid or fnv(line)
        self.lines.append((t, key, line))
        if self.story_ids is not None:
            self.story_ids.append(rid)
        elif source is not None:
            self.labels[rid] = source
            self.log_of[rid] = key.split("/")[0] + "/" + key.split("/")[-1]
            if t >= self.start + dt.timedelta(days=7):
                self.late.add(rid)
        return rid

    # --- Azure records -----------------------------------------------------------------------

    def sign_in(self, t, who, ip, app=PORTAL, source=None, interactive=True, code=0, reason=None, details=None,
                mfa=True, ua=BROWSER_UA, kind="user", country=None, resource=("797f4846-ba00-4fd7-ba43-dac1f8f63013", "Windows Azure Service Management API")):
        rid = self.uid()
        category = {"user": "SignInLogs" if interactive else "NonInteractiveUserSignInLogs",
                    "sp": "ServicePrincipalSignInLogs", "mi": "ManagedIdentitySignInLogs"}[kind]
        props = {"id": rid, "createdDateTime": az_time(t), "appId": app[0], "appDisplayName": app[1],
                 "ipAddress": ip, "correlationId": self.uid(), "resourceId": resource[0], "resourceDisplayName": resource[1],
                 "status": {"errorCode": code}, "location": {"countryOrRegion": country or "", "city": ""}}
        if kind == "user":
            props.update({"userPrincipalName": who["upn"], "userId": who["oid"], "userDisplayName": who["name"],
                          "isInteractive": interactive, "clientAppUsed": "Browser" if "Mozilla" in ua else "Mobile Apps and Desktop clients",
                          "userAgent": ua, "authenticationRequirement": "multiFactorAuthentication" if mfa else "singleFactorAuthentication",
                          "conditionalAccessStatus": "success" if code in (0, 50074) else "notApplied", "userType": "Member",
                          "riskLevelDuringSignIn": "none", "riskState": "none", "tokenIssuerType": "AzureAD"})
            if interactive and mfa and code == 0:
                props["mfaDetail"] = {"authMethod": "Mobile app notification"}
        else:
            props.update({"servicePrincipalName": who["name"], "servicePrincipalId": who["oid"],
                          "appId": who["app"], "appDisplayName": who["name"], "isInteractive": False})
        if code:
            props["status"]["failureReason"] = reason
            if details:
                props["status"]["additionalDetails"] = details
        rec = {"time": az_time(t), "resourceId": f"/tenants/{self.tenant}/providers/Microsoft.aadiam",
               "operationName": "Sign-in activity", "operationVersion": "1.0", "category": category,
               "tenantId": self.tenant, "resultType": str(code), "resultSignature": "None",
               **({"resultDescription": reason} if code else {}), "durationMs": 0, "callerIpAddress": ip,
               "correlationId": props["correlationId"], "identity": who["name"], "Level": 4,
               "location": country or "", "properties": props}
        return self.put(t, "azure/signin", rec, source, rid)

    def audit(self, t, activity, category, initiator, targets, source=None, service="Core Directory",
              details=None, op_type="Add"):
        rid = f"Directory_{self.uid()[:8]}_{self.hexid(5)}"
        props = {"id": rid, "category": category, "correlationId": self.uid(), "result": "success",
                 "resultReason": "", "activityDisplayName": activity, "activityDateTime": az_time(t),
                 "loggedByService": service, "operationType": op_type, "initiatedBy": initiator,
                 "targetResources": targets, "additionalDetails": details or []}
        ip = (initiator.get("user") or {}).get("ipAddress") or ""
        rec = {"time": az_time(t), "resourceId": f"/tenants/{self.tenant}/providers/Microsoft.aadiam",
               "operationName": activity, "operationVersion": "1.0", "category": "AuditLogs", "tenantId": self.tenant,
               "resultSignature": "None", "durationMs": 0, "callerIpAddress": ip,
               "correlationId": props["correlationId"], "Level": 4, "properties": props}
        return self.put(t, "azure/audit", rec, source, rid)

    def by_user(self, p, ip):
        return {"user": {"id": p["oid"], "userPrincipalName": p["upn"], "displayName": None, "ipAddress": ip}}

    def by_app(self, a):
        return {"app": {"appId": a["app"], "displayName": a["name"], "servicePrincipalId": a["oid"], "servicePrincipalName": a["name"]}}

    def claims(self, who):
        if "upn" in who:
            return {UPN_CLAIM: who["upn"], NAME_CLAIM: who["upn"], OID_CLAIM: who["oid"], "appid": AZ_CLI[0],
                    "name": who["name"], "idtyp": "user"}
        return {OID_CLAIM: who["oid"], "appid": who["app"], "idtyp": "app"}

    def activity(self, t, who, ip, sub, rg, provider_path, op, source=None, body=None, role="Contributor"):
        rid = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{provider_path}" if rg else f"/subscriptions/{sub}"
        corr = self.uid()
        statuses = [("Start", "Started."), ("Success", "Succeeded.")] if not op.endswith("/ACTION") else [("Success", "Succeeded.")]
        out = []
        for i, (result, sig) in enumerate(statuses):
            tt = t + dt.timedelta(milliseconds=400 * i)
            props = {"eventCategory": "Administrative", "entity": rid, "message": op.lower(), "hierarchy": f"{self.tenant}/{sub}"}
            if result == "Success":
                props["statusCode"] = "OK" if op.endswith("/ACTION") else "Created"
                props["serviceRequestId"] = self.uid()
            if body and result == "Start":
                props["requestbody"] = json.dumps(body)
            if body and result == "Success":
                props["responseBody"] = json.dumps({"id": rid, **body, "type": provider_path.split("/")[0] + "/" + provider_path.split("/")[1]})
            rec = {"time": az_time(tt), "resourceId": rid.upper(), "operationName": op, "category": "Administrative",
                   "resultType": result, "resultSignature": sig, "durationMs": "0" if i == 0 else str(self.rng.randint(80, 4000)),
                   "callerIpAddress": ip, "correlationId": corr,
                   "identity": {"authorization": {"scope": rid, "action": op.lower(), "evidence": {"role": role, "roleAssignmentScope": f"/subscriptions/{sub}", "principalType": "User" if "upn" in who else "ServicePrincipal"}},
                                "claims": self.claims(who)},
                   "level": "Information", "location": "global", "properties": props}
            out.append(self.put(tt, "azure/activity", rec, source))
        return out

    def kv(self, t, who, ip, vault, op, secret=None, source=None, ua=KV_SDK):
        sub, rg, name = vault
        # A secret's current version: the same on every read until it is rotated.
        version = f"{zlib.crc32(f'{name}/{secret}'.encode()):08x}" * 4
        uri = f"https://{name}.vault.azure.net/" + (f"secrets/{secret}/{version}" if secret else ("secrets" if op == "SecretList" else ""))
        rec = {"time": az_time(t),
               "resourceId": f"/SUBSCRIPTIONS/{self.subs[sub].upper()}/RESOURCEGROUPS/{rg.upper()}/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/{name.upper()}",
               "operationName": op, "operationVersion": "7.4", "category": "AuditEvent", "resultType": "Success",
               "resultSignature": "OK", "resultDescription": "", "durationMs": str(self.rng.randint(4, 60)),
               "callerIpAddress": ip, "correlationId": self.uid() if self.rng.random() < 0.5 else "",
               "identity": {"claim": self.claims(who)},
               "properties": {"id": uri, "clientInfo": ua, "httpStatusCode": 200,
                              "requestUri": uri + "?api-version=7.4", "isAccessPolicyMatch": True, "tlsVersion": "TLS1_2"},
               "location": self.azure_region}
        return self.put(t, "azure/keyvault", rec, source)

    def blob_read(self, t, who, ip, account, path, source=None, ua="azsdk-python-storage-blob/12.19.1 Python/3.11.8"):
        sub, rg, name = account
        requester = {"objectId": who["oid"], "appId": who.get("app", AZ_CLI[0]), "tenantId": self.tenant}
        if "upn" in who:
            requester["upn"] = who["upn"]
        rec = {"time": az_time(t),
               "resourceId": f"/subscriptions/{self.subs[sub]}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{name}/blobServices/default",
               "category": "StorageRead", "operationName": "GetBlob", "operationVersion": "2023-11-03", "schemaVersion": "1.0",
               "statusCode": 200, "statusText": "Success", "durationMs": self.rng.randint(3, 90),
               "callerIpAddress": f"{ip}:{self.rng.randint(1024, 65000)}", "correlationId": self.uid(),
               "identity": {"type": "OAuth", "tokenHash": "key1(" + self.hexid(64).upper() + ")", "requester": requester},
               "location": self.azure_region,
               "properties": {"accountName": name, "userAgentHeader": ua, "serviceType": "blob", "objectKey": f"/{name}/{path}",
                              "metricResponseType": "Success", "serverLatencyMs": self.rng.randint(2, 40), "requestHeaderSize": 1200,
                              "responseBodySize": self.rng.randint(1000, 900000), "tlsVersion": "TLS 1.2"},
               "uri": f"https://{name}.blob.core.windows.net:443/{path}"}
        return self.put(t, "azure/storage", rec, source)

    # --- GCP records -------------------------------------------------------------------------

    def gcp(self, t, principal, ip, project, service, method, resource, source=None, kind="activity", ua=None,
            request=None, response=None, rtype="gce_instance", labels=None, key_name=None, status=None, permission=None):
        iid = self.hexid(12)
        payload = {"@type": "type.googleapis.com/google.cloud.audit.AuditLog", "status": status or {},
                   "authenticationInfo": {"principalEmail": principal},
                   "requestMetadata": {"callerIp": ip, "callerSuppliedUserAgent": ua or "", "requestAttributes": {"time": g_time(t), "auth": {}},
                                       "destinationAttributes": {}},
                   "serviceName": service, "methodName": method,
                   "authorizationInfo": [{"resource": resource, "permission": permission or (service.split(".")[0] + "." + method.split(".")[-1]), "granted": True, "resourceAttributes": {}}],
                   "resourceName": resource}
        if key_name:
            payload["authenticationInfo"]["serviceAccountKeyName"] = key_name
        if request is not None:
            payload["request"] = request
        if response is not None:
            payload["response"] = response
        rec = {"protoPayload": payload, "insertId": iid,
               "resource": {"type": rtype, "labels": {"project_id": project, **(labels or {})}},
               "timestamp": g_time(t), "severity": "NOTICE" if kind == "activity" else "INFO",
               "logName": f"projects/{project}/logs/cloudaudit.googleapis.com%2F{kind}",
               "receiveTimestamp": g_time(t + dt.timedelta(milliseconds=self.rng.randint(100, 900)))}
        if kind == "activity":
            rec["operation"] = {"id": f"operation-{self.hexid(13)}", "producer": service, "first": True, "last": True}
        return self.put(t, f"gcp/{project}/{kind}", rec, source, iid)

    def gcs_get(self, t, principal, ip, project, bucket, obj, source=None, ua=PY_GCS_UA, key_name=None):
        return self.gcp(t, principal, ip, project, "storage.googleapis.com", "storage.objects.get",
                        f"projects/_/buckets/{bucket}/objects/{obj}", source, kind="data_access", ua=ua,
                        rtype="gcs_bucket", labels={"bucket_name": bucket, "location": "eu"}, key_name=key_name,
                        permission="storage.objects.get")

    # --- people ------------------------------------------------------------------------------

    def where(self, p, d):
        """A person's address on day d."""
        if self.traveller is p and self.travel[0] <= d < self.travel[0] + 6:
            return self.travel[2], self.travel[1]
        weekday = (self.start + dt.timedelta(days=d)).weekday()
        if weekday in p["office_days"] and p["country"] == self.country:
            return self.rng.choice(self.office_ips), self.country
        if p["vpn"]:
            return self.rng.choice(self.vpn_ips), self.country
        return p["home"], p["country"]

    def people_days(self):
        r = self.rng
        for d in range(self.days):
            date = self.start + dt.timedelta(days=d)
            weekend = date.weekday() >= 5
            for p in self.people:
                if d < p["joined"] or (weekend and r.random() > 0.08) or r.random() < 0.06:
                    continue
                ip, country = self.where(p, d)
                begin = self.day(d, p["start_h"] - p["tz"] + r.uniform(-0.5, 0.7))
                end = begin + dt.timedelta(hours=p["len_h"] * r.uniform(0.8, 1.1))
                ua = MAC_UA if p["mac"] else BROWSER_UA
                # The day's first interactive sign-in; now and then an MFA prompt answered late,
                # or declined once by mistake, before it.
                t = begin
                roll = r.random()
                if roll < 0.05:
                    self.sign_in(t, p, ip, PORTAL, "azure/signin-mfa-retry", code=500121, country=country,
                                 reason="Authentication failed during strong authentication request.",
                                 details="MFA denied; user did not respond to mobile app notification", ua=ua)
                    t = t + dt.timedelta(seconds=r.randint(40, 200))
                elif roll < 0.08:
                    self.sign_in(t, p, ip, PORTAL, "azure/signin-mfa-retry", code=500121, country=country,
                                 reason="Authentication failed during strong authentication request.",
                                 details="MFA denied; user declined the authentication", ua=ua)
                    t = t + dt.timedelta(seconds=r.randint(20, 90))
                elif roll < 0.2:
                    self.sign_in(t, p, ip, PORTAL, "azure/signin-interrupt", code=50074, country=country,
                                 reason="Strong Authentication is required.", mfa=False, ua=ua)
                    t = t + dt.timedelta(seconds=r.randint(10, 40))
                self.sign_in(t, p, ip, r.choice([PORTAL, OUTLOOK, TEAMS]), "azure/signin", country=country, ua=ua)
                # Token refreshes through the day.
                span = (end - begin).total_seconds()
                for _ in range(r.randint(6, 16)):
                    tt = begin + dt.timedelta(seconds=r.uniform(0, span))
                    self.sign_in(tt, p, ip, r.choice([OUTLOOK, TEAMS, PORTAL]), "azure/signin-refresh",
                                 interactive=False, country=country, ua=ua)
                if p["azure"] and not weekend and r.random() < 0.5:
                    self.engineer_changes(p, ip, begin, span)
                if p["kv_reader"] and not weekend and r.random() < 0.3:
                    vault = r.choice(self.vaults)
                    tt = begin + dt.timedelta(seconds=r.uniform(0, span))
                    self.kv(tt, p, ip, vault, "SecretList", source="azure/person-keyvault", ua=BROWSER_UA)
                    for s in r.sample(self.secrets[vault[2]], r.randint(1, 3)):
                        tt = tt + dt.timedelta(seconds=r.randint(3, 40))
                        self.kv(tt, p, ip, vault, "SecretGet", s, source="azure/person-keyvault", ua=BROWSER_UA)
                if p["blob_reader"] and not weekend and r.random() < 0.4:
                    acct = r.choice(self.storage)
                    tt = begin + dt.timedelta(seconds=r.uniform(0, span))
                    for _ in range(r.randint(1, 12)):
                        tt = tt + dt.timedelta(seconds=r.randint(2, 120))
                        self.blob_read(tt, p, ip, acct, f"reports/{date:%Y/%m}/{self.hexid(8)}.csv", "azure/person-blob",
                                       ua="Microsoft Azure Storage Explorer, 1.33.1, win32, azcopy-go/10.23.0")
                if p["gcp"] and not weekend:
                    self.gcp_person(p, ip, begin, span)

    def engineer_changes(self, p, ip, begin, span):
        r = self.rng
        sub = r.choice(list(self.subs))
        rg = r.choice(self.rgs[sub])
        t = begin + dt.timedelta(seconds=r.uniform(0, span))
        choice = r.random()
        if choice < 0.35:
            vm = r.choice(self.vms)
            op = r.choice(["START", "RESTART", "DEALLOCATE"])
            self.activity(t, p, ip, self.subs[vm[0]], vm[1], f"Microsoft.Compute/virtualMachines/{vm[2]}",
                          f"MICROSOFT.COMPUTE/VIRTUALMACHINES/{op}/ACTION", "azure/engineer-change")
        elif choice < 0.6:
            self.activity(t, p, ip, self.subs[sub], rg, f"Microsoft.Resources/deployments/manual-{self.hexid(6)}",
                          "MICROSOFT.RESOURCES/DEPLOYMENTS/WRITE", "azure/engineer-change")
        elif choice < 0.8:
            app = r.choice(self.webapps)
            self.activity(t, p, ip, self.subs[app[0]], app[1], f"Microsoft.Web/sites/{app[2]}",
                          r.choice(["MICROSOFT.WEB/SITES/RESTART/ACTION", "MICROSOFT.WEB/SITES/CONFIG/WRITE"]), "azure/engineer-change")
        elif sub == "dev":
            # Developers delete their sandbox resource groups.
            self.activity(t, p, ip, self.subs["dev"], None, f"resourceGroups/rg-sandbox-{p['upn'].split('.')[0]}-{self.hexid(3)}",
                          "MICROSOFT.RESOURCES/SUBSCRIPTIONS/RESOURCEGROUPS/DELETE", "azure/sandbox-cleanup")
        else:
            acct = r.choice(self.storage)
            self.activity(t, p, ip, self.subs[acct[0]], acct[1], f"Microsoft.Storage/storageAccounts/{acct[2]}",
                          "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION", "azure/engineer-listkeys")

    def gcp_person(self, p, ip, begin, span):
        r = self.rng
        project = r.choice(self.projects)
        ua = GCLOUD_UA.format(cmd=r.choice(["compute.instances.list", "storage.ls", "container.clusters.get-credentials"]),
                              inv=self.uid(), os="MACOSX" if p["mac"] else "LINUX")
        t = begin + dt.timedelta(seconds=r.uniform(0, span))
        for _ in range(r.randint(2, 10)):
            t = t + dt.timedelta(seconds=r.randint(5, 400))
            m = r.random()
            if m < 0.4:
                self.gcp(t, p["upn"], ip, project, "compute.googleapis.com", "v1.compute.instances.list",
                         f"projects/{project}/zones/{r.choice(self.zones[project])}/instances", "gcp/person", kind="data_access", ua=ua)
            elif m < 0.7:
                b = r.choice(self.buckets[project])
                self.gcp(t, p["upn"], ip, project, "storage.googleapis.com", "storage.objects.list",
                         f"projects/_/buckets/{b}", "gcp/person", kind="data_access", ua=ua, rtype="gcs_bucket", labels={"bucket_name": b})
            elif m < 0.85:
                b = r.choice(self.buckets[project])
                self.gcs_get(t, p["upn"], ip, project, b, f"tmp/{self.hexid(10)}.json", "gcp/person", ua=ua)
            elif m < 0.95:
                self.gcp(t, p["upn"], ip, project, "container.googleapis.com", "google.container.v1.ClusterManager.GetCluster",
                         f"projects/{project}/locations/{self.zones[project][0][:-2]}/clusters/main", "gcp/person", kind="data_access",
                         ua=ua, rtype="gke_cluster")
            else:
                self.gcp(t, p["upn"], ip, project, "run.googleapis.com", "google.cloud.run.v1.Services.ReplaceService",
                         f"namespaces/{project}/services/web-{self.hexid(3)}", "gcp/person", ua=ua, rtype="cloud_run_revision")

    # --- routines ------------------------------------------------------------------------------

    def routines(self):
        r = self.rng
        inv_hour = r.uniform(0.5, 3.5)
        tf_hours = [r.uniform(7, 17) for _ in range(3)]
        backup_hour = r.uniform(20, 23)
        etl_hour = r.uniform(1, 4)
        for d in range(self.days):
            date = self.start + dt.timedelta(days=d)
            weekend = date.weekday() >= 5
            # Nightly inventory: lists every storage account's keys and reads every secret.
            t = self.day(d, inv_hour + r.uniform(0, 0.3))
            ip = self.azure_ips[0]
            self.sign_in(t, self.sp_inventory, ip, source="azure/inventory-job", kind="sp")
            for acct in self.storage:
                t = t + dt.timedelta(seconds=r.randint(1, 6))
                self.activity(t, self.sp_inventory, ip, self.subs[acct[0]], acct[1], f"Microsoft.Storage/storageAccounts/{acct[2]}",
                              "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION", "azure/inventory-job", role="Reader and Data Access")
            for vault in self.vaults:
                t = t + dt.timedelta(seconds=r.randint(1, 6))
                self.kv(t, self.sp_inventory, ip, vault, "SecretList", source="azure/inventory-job")
                for s in self.secrets[vault[2]]:
                    t = t + dt.timedelta(milliseconds=r.randint(80, 900))
                    self.kv(t, self.sp_inventory, ip, vault, "SecretGet", s, source="azure/inventory-job")
            # Terraform plans from GitHub-hosted runners: refresh lists storage keys.
            if not weekend:
                for h in tf_hours[: r.randint(1, 3)]:
                    ip = r.choice(self.gh_ips)
                    t = self.day(d, h + r.uniform(-1, 1))
                    self.sign_in(t, self.sp_terraform, ip, source="azure/terraform-plan", kind="sp")
                    for acct in self.storage:
                        t = t + dt.timedelta(seconds=r.randint(1, 4))
                        self.activity(t, self.sp_terraform, ip, self.subs[acct[0]], acct[1], f"Microsoft.Storage/storageAccounts/{acct[2]}",
                                      "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION", "azure/terraform-plan")
                    if r.random() < 0.3:
                        sub = r.choice(list(self.subs))
                        self.activity(t + dt.timedelta(seconds=30), self.sp_terraform, ip, self.subs[sub], r.choice(self.rgs[sub]),
                                      f"Microsoft.Resources/deployments/tf-{self.hexid(6)}", "MICROSOFT.RESOURCES/DEPLOYMENTS/WRITE", "azure/terraform-plan")
            # Azure Backup prunes old restore points every evening.
            t = self.day(d, backup_hour + r.uniform(0, 0.4))
            for vm in self.vms:
                t = t + dt.timedelta(seconds=r.randint(5, 60))
                self.activity(t, self.sp_backup, self.azure_ips[1], self.subs[vm[0]], vm[1],
                              f"Microsoft.Compute/restorePointCollections/AzureBackup_{vm[2]}_{self.hexid(6)}/restorePoints/{self.hexid(8)}",
                              "MICROSOFT.COMPUTE/RESTOREPOINTCOLLECTIONS/RESTOREPOINTS/DELETE", "azure/backup-pruning", role="Backup Operator")
            # Azure DevOps slot deploys fetch publishing credentials.
            if not weekend and r.random() < 0.7:
                app = r.choice(self.webapps)
                ip = r.choice(self.azure_ips[2:])
                t = self.day(d, r.uniform(9, 16))
                self.sign_in(t, self.sp_devops, ip, source="azure/devops-deploy", kind="sp")
                self.activity(t + dt.timedelta(seconds=5), self.sp_devops, ip, self.subs[app[0]], app[1],
                              f"Microsoft.Web/sites/{app[2]}/slots/staging/config/publishingcredentials",
                              "MICROSOFT.WEB/SITES/SLOTS/CONFIG/LIST/ACTION", "azure/devops-deploy")
                self.activity(t + dt.timedelta(seconds=90), self.sp_devops, ip, self.subs[app[0]], app[1],
                              f"Microsoft.Web/sites/{app[2]}/slots/staging", "MICROSOFT.WEB/SITES/SLOTS/SLOTSSWAP/ACTION", "azure/devops-deploy")
            # Daily PIM activations of the admins' eligible roles, and their expiry.
            if not weekend:
                for a in self.admins:
                    if r.random() < 0.2:
                        continue
                    ip, _ = self.where(a, d)
                    t = self.day(d, a["pim_hour"] + r.uniform(-0.4, 0.6))
                    role_t = [{"displayName": a["pim_role"], "type": "Role", "id": self.uid()},
                              {"userPrincipalName": a["upn"], "type": "User", "id": a["oid"]}]
                    self.audit(t, "Add member to role completed (PIM activation)", "RoleManagement", self.by_user(a, ip),
                               role_t, "azure/pim-activation", service="PIM")
                    self.audit(t + dt.timedelta(seconds=2), "Add member to role", "RoleManagement",
                               {"app": {"appId": MS_PIM[1], "displayName": MS_PIM[0], "servicePrincipalId": self.uid()}},
                               [{"userPrincipalName": a["upn"], "type": "User", "id": a["oid"],
                                 "modifiedProperties": [{"displayName": "Role.DisplayName", "oldValue": None, "newValue": json.dumps(a["pim_role"])},
                                                        {"displayName": "Role.TemplateId", "oldValue": None, "newValue": json.dumps(self.uid())}]}],
                               "azure/pim-activation")
                    self.audit(t + dt.timedelta(hours=8), "Remove member from role (PIM activation expired)", "RoleManagement",
                               {"app": {"appId": MS_PIM[1], "displayName": MS_PIM[0], "servicePrincipalId": self.uid()}},
                               role_t, "azure/pim-activation", service="PIM", op_type="Delete")
            # Secret rotation: a new client secret on the rotated apps every week.
            if date.weekday() == 1:
                for app in self.rotated_apps:
                    t = self.day(d, 5 + r.uniform(0, 0.5))
                    self.audit(t, "Update application – Certificates and secrets management ", "ApplicationManagement",
                               self.by_app(self.sp_rotation), [{"displayName": app["name"], "type": "Application", "id": app["oid"],
                                                                "modifiedProperties": [{"displayName": "KeyDescription", "oldValue": "[]",
                                                                                        "newValue": f"[\"[KeyIdentifier={self.uid()},KeyType=Password,KeyUsage=Verify,DisplayName=rotated-{date:%Y%m%d}]\"]"}]}],
                               "azure/secret-rotation", service="Core Directory", op_type="Update")
            # Managed identities: token at start-up, their secrets every few hours.
            for mi in self.mis:
                for h in range(0, 24, r.choice([3, 4, 6])):
                    t = self.day(d, h + r.uniform(0, 0.5))
                    self.sign_in(t, mi, mi["ip"], source="azure/app-identity", kind="mi")
                    for s in self.secrets[mi["vault"][2]][:3]:
                        self.kv(t + dt.timedelta(seconds=1), mi, mi["ip"], mi["vault"], "SecretGet", s, source="azure/app-identity", ua=KV_NET)
            # The ETL identity reads yesterday's blobs at night.
            t = self.day(d, etl_hour)
            acct = self.storage[0]
            for i in range(r.randint(30, 90)):
                t = t + dt.timedelta(seconds=r.randint(1, 20))
                self.blob_read(t, self.etl_mi, self.etl_mi["ip"], acct, f"landing/{date:%Y/%m/%d}/part-{i:05d}.parquet", "azure/etl-blobs")
            self.gcp_routines(d, weekend)

    def gcp_routines(self, d, weekend):
        r = self.rng
        # The pipeline reads the day's objects.
        t = self.day(d, 2 + r.uniform(0, 1))
        p1 = self.projects[1]
        ip = r.choice(self.gcp_ips)
        for i in range(r.randint(100, 300)):
            t = t + dt.timedelta(seconds=r.randint(1, 8))
            self.gcs_get(t, self.sa_pipeline, ip, p1, self.buckets[p1][0], f"events/{self.start + dt.timedelta(days=d):%Y/%m/%d}/{i:05d}.avro", "gcp/pipeline")
        # The reporting job reads a few objects every hour.
        for h in range(6, 22, 2):
            t = self.day(d, h + r.uniform(0, 0.3))
            for _ in range(r.randint(1, 4)):
                self.gcs_get(t, self.sa_reporting, r.choice(self.gcp_ips), p1, self.buckets[p1][1], f"agg/{self.hexid(6)}.parquet", "gcp/reporting")
        # The app reads its secrets.
        for h in range(0, 24, 4):
            t = self.day(d, h + r.uniform(0, 0.2))
            p0 = self.projects[0]
            self.gcp(t, self.sa_app, r.choice(self.gcp_ips), p0, "secretmanager.googleapis.com",
                     "google.cloud.secretmanager.v1.SecretManagerService.AccessSecretVersion",
                     f"projects/{self.pnum[p0]}/secrets/db-password/versions/latest", "gcp/app-secrets", kind="data_access",
                     ua="grpc-java-netty/1.62.2", rtype="audited_resource")
        # The GKE autoscaler adds nodes in the cluster's zones during the day, removes them at night.
        for project in self.projects[:2]:
            if r.random() < 0.75:
                t = self.day(d, r.uniform(7, 11))
                for z in self.zones[project]:
                    for _ in range(r.randint(1, 2)):
                        t = t + dt.timedelta(seconds=r.randint(1, 30))
                        self.gcp(t, f"{self.pnum[project]}@cloudservices.gserviceaccount.com", "private", project,
                                 "compute.googleapis.com", "v1.compute.instances.insert",
                                 f"projects/{project}/zones/{z}/instances/gke-main-pool-{self.hexid(8)}-{self.hexid(4)}",
                                 "gcp/gke-autoscaler", ua="GCE Managed Instance Group for GKE",
                                 request={"machineType": f"zones/{z}/machineTypes/e2-standard-4", "@type": "type.googleapis.com/compute.instances.insert"},
                                 labels={"zone": z, "instance_id": str(r.randint(10**17, 10**18))})
        # The security scanner reads every project's IAM policy at night.
        t = self.day(d, 4 + r.uniform(0, 0.3))
        ip = self.gcp_ips[0]
        for project in self.projects:
            for svc, m, res in [("cloudresourcemanager.googleapis.com", "GetIamPolicy", f"projects/{project}"),
                                ("iam.googleapis.com", "google.iam.admin.v1.ListServiceAccounts", f"projects/{project}"),
                                ("iam.googleapis.com", "google.iam.admin.v1.ListServiceAccountKeys", f"projects/{project}/serviceAccounts/-"),
                                ("storage.googleapis.com", "storage.buckets.list", f"projects/_/buckets"),
                                ("compute.googleapis.com", "v1.compute.firewalls.list", f"projects/{project}/global/firewalls")]:
                t = t + dt.timedelta(seconds=r.randint(1, 5))
                self.gcp(t, self.sa_scanner, ip, project, svc, m, res, "gcp/scanner", kind="data_access",
                         ua="google-api-python-client/2.125.0 (gzip) sec-inventory/1.4", rtype="project")
        # Terraform applies from GitHub runners on weekdays.
        if not weekend and r.random() < 0.6:
            ip = r.choice(self.gh_ips)
            project = r.choice(self.projects)
            t = self.day(d, r.uniform(8, 17))
            for m in ["GetIamPolicy", "SetIamPolicy"]:
                t = t + dt.timedelta(seconds=r.randint(2, 20))
                self.gcp(t, self.sa_terraform, ip, project, "cloudresourcemanager.googleapis.com", m, f"projects/{project}",
                         "gcp/terraform", kind="activity" if m.startswith("Set") else "data_access", ua=TF_GCP_UA, rtype="project",
                         request={"policy": {"bindings": [{"role": "roles/storage.objectViewer", "members": [f"serviceAccount:{self.sa_reporting}"]}]}} if m.startswith("Set") else None)

    # --- the new hire ------------------------------------------------------------------------

    def onboarding(self):
        h = self.hire
        admin = self.admins[0]
        t = self.day(h["joined"] - 1, admin["start_h"] - admin["tz"] + 1)
        ip, _ = self.where(admin, h["joined"] - 1)
        self.audit(t, "Add user", "UserManagement", self.by_user(admin, ip),
                   [{"userPrincipalName": h["upn"], "type": "User", "id": h["oid"]}], "azure/onboarding")
        self.audit(t + dt.timedelta(minutes=2), "Add member to group", "GroupManagement", self.by_user(admin, ip),
                   [{"userPrincipalName": h["upn"], "type": "User", "id": h["oid"]}, {"displayName": "Engineering", "type": "Group"}],
                   "azure/onboarding")

    # --- attack stories ------------------------------------------------------------------------

    def story(self, name, provider, summary, principal, fn):
        self.story_ids = []
        fn()
        self.stories.append({"name": name, "provider": provider, "summary": summary, "principal": principal,
                             "event_ids": self.story_ids})
        self.story_ids = None

    def attacker(self, country=None):
        asn = self.rng.choice(HOSTING)[0]
        return self.db.pick(self.rng, asn, country)

    def stories_all(self):
        r = self.rng
        days = list(range(self.days - 7, self.days - 1))
        r.shuffle(days)
        people = [p for p in self.people if p is not self.hire and p is not self.traveller and p not in self.admins]
        r.shuffle(people)

        # 1. MFA fatigue: a burst of denied prompts, then an approval, from an address new to the user.
        v = people[0]
        ip = self.attacker()
        def mfa():
            t = self.day(days[0], r.uniform(0, 5) - v["tz"] + 24 if r.random() < 0.5 else r.uniform(18, 22))
            for i in range(r.randint(9, 16)):
                self.sign_in(t, v, ip, PORTAL, code=500121, reason="Authentication failed during strong authentication request.",
                             details=r.choice(["MFA denied; user declined the authentication", "MFA denied; user did not respond to mobile app notification"]),
                             country="NL", ua=BROWSER_UA)
                t = t + dt.timedelta(seconds=r.randint(40, 120))
            self.sign_in(t, v, ip, PORTAL, country="NL", ua=BROWSER_UA)
            for _ in range(4):
                t = t + dt.timedelta(seconds=r.randint(30, 300))
                self.sign_in(t, v, ip, r.choice([OUTLOOK, PORTAL]), interactive=False, country="NL", ua=BROWSER_UA)
        self.story("mfa-fatigue", "azure", "denied MFA prompts then an approval, from a hosting provider", v["upn"], mfa)

        # 2. A new client secret on a service principal, its sign-in from a new address, Key Vault reads.
        admin = r.choice(self.admins)
        ip2 = self.attacker()
        sp = self.sp_billing
        vault = self.vaults[0]
        def backdoor():
            t = self.day(days[1], r.uniform(1, 4))
            self.audit(t, "Add service principal credentials", "ApplicationManagement", self.by_user(admin, ip2),
                       [{"displayName": sp["name"], "type": "ServicePrincipal", "id": sp["oid"],
                         "modifiedProperties": [{"displayName": "KeyDescription", "oldValue": "[]", "newValue": f"[\"[KeyIdentifier={self.uid()},KeyType=Password,KeyUsage=Verify,DisplayName=]\"]"}]}],
                       op_type="Update")
            t = t + dt.timedelta(minutes=r.randint(3, 20))
            self.sign_in(t, sp, ip2, kind="sp")
            t = t + dt.timedelta(seconds=20)
            self.kv(t, sp, ip2, vault, "SecretList", ua=CURL)
            for s in self.secrets[vault[2]][: r.randint(6, 12)]:
                t = t + dt.timedelta(seconds=r.randint(1, 10))
                self.kv(t, sp, ip2, vault, "SecretGet", s, ua=CURL)
        self.story("sp-secret-backdoor", "azure", "secret added to a service principal, its sign-in from a new address, vault reads", sp["name"], backdoor)
        # billing-sync's own routine: every six hours it signs in from Azure and reads its secret.
        for d in range(self.days):
            for h in (0, 6, 12, 18):
                t = self.day(d, h + r.uniform(0, 0.5))
                self.sign_in(t, sp, self.azure_ips[3], source="azure/app-identity", kind="sp")
                self.kv(t + dt.timedelta(seconds=2), sp, self.azure_ips[3], vault, "SecretGet", self.secrets[vault[2]][0],
                        source="azure/app-identity", ua=KV_NET)

        # 3. Consent to a multi-tenant app, then its token used from a hosting provider.
        v3 = people[1]
        app = (self.uid(), r.choice(["PDF Converter Online", "Mail Archiver Pro", "DocuSign Viewer Plus"]))
        ip3 = self.attacker()
        def consent():
            home, country = self.where(v3, days[2])
            t = self.day(days[2], v3["start_h"] - v3["tz"] + 2)
            self.audit(t, "Consent to application", "ApplicationManagement", self.by_user(v3, home),
                       [{"displayName": app[1], "type": "ServicePrincipal", "id": self.uid(),
                         "modifiedProperties": [{"displayName": "ConsentContext.IsAdminConsent", "newValue": "\"False\""},
                                                {"displayName": "ConsentAction.Permissions", "newValue": "\"Scope: Mail.Read Files.Read.All offline_access User.Read\""},
                                                {"displayName": "TargetId.ServicePrincipalNames", "newValue": f"\"{app[0]}\""}]}],
                       details=[{"key": "AppId", "value": app[0]}], service="Core Directory")
            for _ in range(r.randint(5, 9)):
                t = t + dt.timedelta(minutes=r.randint(5, 90))
                self.sign_in(t, v3, ip3, app, interactive=False, country="US", ua=CURL,
                             resource=("00000003-0000-0000-c000-000000000000", "Microsoft Graph"))
        self.story("oauth-consent", "azure", "consent to a new multi-tenant app, its token used from a hosting provider", v3["upn"], consent)

        # 4. Run Command on a VM, then an NSG rule opened to any source.
        v4 = r.choice([p for p in people[2:] if p["azure"]] or people[2:])
        ip4 = self.attacker()
        vm = r.choice(self.vms)
        nsg = [n for n in self.nsgs if n[0] == vm[0]][0]
        def runcmd():
            t = self.day(days[3], r.uniform(0, 24))
            self.sign_in(t, v4, ip4, AZ_CLI, country="RO", ua="python/3.11.8 (Linux) AZURECLI/2.59.0")
            t = t + dt.timedelta(minutes=2)
            self.activity(t, v4, ip4, self.subs[vm[0]], vm[1], f"Microsoft.Compute/virtualMachines/{vm[2]}",
                          "MICROSOFT.COMPUTE/VIRTUALMACHINES/RUNCOMMAND/ACTION")
            t = t + dt.timedelta(minutes=r.randint(2, 15))
            self.activity(t, v4, ip4, self.subs[nsg[0]], nsg[1], f"Microsoft.Network/networkSecurityGroups/{nsg[2]}/securityRules/allow-mgmt",
                          "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/SECURITYRULES/WRITE",
                          body={"properties": {"protocol": "Tcp", "sourceAddressPrefix": "*", "destinationPortRange": "3389",
                                               "access": "Allow", "direction": "Inbound", "priority": 100}})
        self.story("runcommand-nsg-open", "azure", "Run Command on a VM then an NSG rule open to any source", v4["upn"], runcmd)

        # 5. Bulk blob reads by a person against her own history.
        v5 = people[3]
        def blobs():
            ip, _ = self.where(v5, days[4])
            acct = r.choice(self.storage)
            t = self.day(days[4], r.uniform(10, 20))
            for i in range(r.randint(250, 400)):
                t = t + dt.timedelta(seconds=r.uniform(0.5, 6))
                self.blob_read(t, v5, ip, acct, f"exports/customers/{i:05d}.csv", ua="AzCopy/10.23.0 Azure-Storage/0.15 (go1.21.6; linux)")
        self.story("blob-bulk-read", "azure", "hundreds of blobs read in minutes by a person who reads a few", v5["upn"], blobs)

        # 6. A GCP service-account key created, then used from outside Google to read 360 objects.
        v6 = r.choice([p for p in people[4:] if p["gcp"]] or people[4:])
        ip6 = self.attacker()
        key = f"projects/{self.projects[1]}/serviceAccounts/{self.sa_reporting}/keys/{self.hexid(40)}"
        def sakey():
            home, _ = self.where(v6, days[5])
            t = self.day(days[5], v6["start_h"] - v6["tz"] + 3)
            p1 = self.projects[1]
            self.gcp(t, v6["upn"], home, p1, "iam.googleapis.com", "google.iam.admin.v1.CreateServiceAccountKey",
                     f"projects/-/serviceAccounts/{self.sa_reporting}", ua=GCLOUD_UA.format(cmd="iam.service-accounts.keys.create", inv=self.uid(), os="LINUX"),
                     rtype="service_account", request={"@type": "type.googleapis.com/google.iam.admin.v1.CreateServiceAccountKeyRequest", "name": f"projects/-/serviceAccounts/{self.sa_reporting}", "private_key_type": 2},
                     response={"name": key, "key_algorithm": 2, "key_origin": 2, "key_type": 1})
            t = t + dt.timedelta(hours=r.uniform(1, 6))
            self.gcp(t, self.sa_reporting, ip6, p1, "storage.googleapis.com", "storage.buckets.list", "projects/_/buckets",
                     kind="data_access", ua=CURL, rtype="gcs_bucket", key_name=key)
            for b in self.buckets[p1]:
                for i in range(120):
                    t = t + dt.timedelta(seconds=r.uniform(0.2, 3))
                    self.gcs_get(t, self.sa_reporting, ip6, p1, b, f"data/{i:05d}.parquet", ua=CURL, key_name=key)
        self.story("gcp-sa-key-exfil", "gcp", "SA key created, then used from a hosting provider to read 360 objects", self.sa_reporting, sakey)

        # 7. Instances with GPUs in many zones from a stolen user session.
        v7 = r.choice([p for p in people[5:] if p["gcp"]] or people[5:])
        ip7 = self.attacker()
        def mining():
            project = self.projects[2]
            t = self.day(days[0], r.uniform(0, 24))
            for z in ["us-central1-a", "us-east1-b", "europe-west4-a", "asia-east1-a", "us-west1-b"]:
                t = t + dt.timedelta(seconds=r.randint(20, 90))
                self.gcp(t, v7["upn"], ip7, project, "compute.googleapis.com", "v1.compute.instances.insert",
                         f"projects/{project}/zones/{z}/instances/worker-{self.hexid(5)}", ua="google-api-go-client/0.5 gpu-runner",
                         request={"machineType": f"zones/{z}/machineTypes/a2-highgpu-1g", "guestAccelerators": [{"acceleratorType": f"zones/{z}/acceleratorTypes/nvidia-tesla-a100", "acceleratorCount": 1}],
                                  "@type": "type.googleapis.com/compute.instances.insert"},
                         labels={"zone": z, "instance_id": str(r.randint(10**17, 10**18))})
        self.story("gcp-gpu-many-zones", "gcp", "GPU instances in five zones from a user session on a hosting provider", v7["upn"], mining)

        # 8. A guest invited and made Global Administrator (a standing assignment, not PIM).
        admin8 = r.choice(self.admins)
        ip8 = self.attacker()
        def guest_admin():
            t = self.day(days[1], r.uniform(0, 5))
            guest = {"upn": f"it-support_{self.hexid(4)}#EXT#@{self.domain}", "oid": self.uid()}
            self.sign_in(t - dt.timedelta(minutes=5), admin8, ip8, PORTAL, country="US", ua=BROWSER_UA)
            self.audit(t, "Invite external user", "UserManagement", self.by_user(admin8, ip8),
                       [{"userPrincipalName": guest["upn"], "type": "User", "id": guest["oid"]}])
            self.audit(t + dt.timedelta(minutes=3), "Add member to role", "RoleManagement", self.by_user(admin8, ip8),
                       [{"userPrincipalName": guest["upn"], "type": "User", "id": guest["oid"],
                         "modifiedProperties": [{"displayName": "Role.DisplayName", "oldValue": None, "newValue": "\"Global Administrator\""}]}])
        self.story("guest-global-admin", "azure", "a guest invited and given a standing Global Administrator role", admin8["upn"], guest_admin)

    # --- all ----------------------------------------------------------------------------------

    def run(self):
        self.people_days()
        self.routines()
        self.onboarding()
        self.stories_all()

    def path_of(self, out, t, key):
        """Where the platform writes a record: a diagnostic setting's hourly append blob per
        container (Azure), a log sink's hourly file per log (GCP)."""
        provider, log = key.split("/", 1)
        if provider == "azure":
            container = {"signin": "insights-logs-signinlogs", "audit": "insights-logs-auditlogs",
                         "activity": "insights-activity-logs", "keyvault": "insights-logs-auditevent",
                         "storage": "insights-logs-storageread"}[log]
            scope = f"tenantId={self.tenant}" if log in ("signin", "audit") else f"resourceId=/SUBSCRIPTIONS/{self.subs['prod'].upper()}"
            return os.path.join(out, "azure", container, scope, t.strftime("y=%Y/m=%m/d=%d/h=%H/m=00"), "PT1H.json")
        project, kind = log.split("/")
        return os.path.join(out, "gcp", project, "cloudaudit.googleapis.com", kind, t.strftime("%Y/%m/%d"),
                            t.strftime("%H:00:00_%H:59:59_S0.json"))

    def write(self, out):
        os.makedirs(out, exist_ok=True)
        files = {}
        self.lines.sort(key=lambda x: x[0])
        for t, key, line in self.lines:
            files.setdefault(self.path_of(out, t, key), []).append(line)
        for path, lines in files.items():
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
        labels = {"seed": self.seed, "days": self.days, "end": self.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "benign": self.labels, "late": sorted(self.late), "stories": self.stories,
                  "benign_log": self.log_of,
                  "logs": ["azure", "gcp"]}
        with open(os.path.join(out, "labels.json"), "w") as f:
            json.dump(labels, f)
        return len(self.lines), len(files)


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
    sim = Tenant(a.seed, a.days, end, NetDb(NETDB))
    sim.run()
    n, files = sim.write(a.out)
    print(f"{n} records in {files} files, {len(sim.labels)} benign, {len(sim.stories)} stories, "
          f"{len(sim.people)} people, {len(sim.projects)} GCP projects", file=sys.stderr)


if __name__ == "__main__":
    main()
