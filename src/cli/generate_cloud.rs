//! Azure and GCP records for `cloudsentinel generate --provider azure|gcp`: realistic shapes of a
//! small organisation's activity, for throughput benchmarks.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use cloudsentinel_core::rng::Rng;

const USERS: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];
const SUBSCRIPTIONS: [&str; 2] = [
    "6b1f1c1e-3b0a-4d6e-9a55-0c2f1a7d9e01",
    "0f3c9a77-21d4-4b8e-8f0e-5a6c7d8e9f02",
];
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const AZURE_OPS: [(&str, &str); 10] = [
    (
        "MICROSOFT.COMPUTE/VIRTUALMACHINES/READ",
        "Microsoft.Compute/virtualMachines/vm-web-01",
    ),
    (
        "MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE",
        "Microsoft.Compute/virtualMachines/vm-web-01",
    ),
    (
        "MICROSOFT.STORAGE/STORAGEACCOUNTS/READ",
        "Microsoft.Storage/storageAccounts/stdata01",
    ),
    (
        "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION",
        "Microsoft.Storage/storageAccounts/stdata01",
    ),
    (
        "MICROSOFT.KEYVAULT/VAULTS/READ",
        "Microsoft.KeyVault/vaults/kv-prod",
    ),
    (
        "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/SECURITYRULES/WRITE",
        "Microsoft.Network/networkSecurityGroups/nsg-web/securityRules/allow-https",
    ),
    (
        "MICROSOFT.RESOURCES/DEPLOYMENTS/WRITE",
        "Microsoft.Resources/deployments/release-42",
    ),
    (
        "MICROSOFT.WEB/SITES/RESTART/ACTION",
        "Microsoft.Web/sites/app-orders",
    ),
    (
        "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/READ",
        "Microsoft.Authorization/roleAssignments/ra-1",
    ),
    (
        "MICROSOFT.INSIGHTS/DIAGNOSTICSETTINGS/WRITE",
        "Microsoft.Insights/diagnosticSettings/to-sentinel",
    ),
];

/// A stable, uuid-shaped id for a name (the same user keeps the same object id).
fn stable_id(name: &str) -> String {
    let h = cloudsentinel_core::hash::fnv1a(name.as_bytes());
    let x = format!("{h:016x}{:016x}", h.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

fn ip(rng: &mut Rng, firsts: &[usize]) -> String {
    format!(
        "{}.{}.{}.{}",
        rng.pick(firsts),
        rng.below(256),
        rng.below(256),
        1 + rng.below(254)
    )
}

/// One Azure record in the diagnostic-settings shape: Activity Log (60%), Entra sign-in (35%) or
/// Entra audit (5%).
pub fn azure_record(rng: &mut Rng, t: DateTime<Utc>) -> Value {
    let user = format!("{}@contoso.com", rng.pick(&USERS));
    let time = t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let addr = ip(rng, &[20, 40, 52, 104, 203]);
    let x = rng.below(100);
    if x < 60 {
        let sub = *rng.pick(&SUBSCRIPTIONS);
        let (op, res) = *rng.pick(&AZURE_OPS);
        let failed = rng.chance(0.02);
        json!({
            "time": time, "resourceId": format!("/SUBSCRIPTIONS/{sub}/RESOURCEGROUPS/RG-PROD/PROVIDERS/{}", res.to_uppercase()),
            "operationName": op, "category": "Administrative", "resultType": if failed { "Failure" } else { "Success" },
            "resultSignature": if failed { "Forbidden.AuthorizationFailed" } else { "Succeeded.OK" }, "durationMs": rng.below(900),
            "callerIpAddress": addr, "correlationId": rng.uuid(), "level": "Information", "location": "westeurope",
            "identity": {"authorization": {"scope": format!("/subscriptions/{sub}/resourceGroups/rg-prod/providers/{res}"), "action": op.to_lowercase(),
                "evidence": {"role": "Contributor", "roleAssignmentScope": format!("/subscriptions/{sub}"), "principalType": "User"}},
                "claims": {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": user, "http://schemas.microsoft.com/identity/claims/objectidentifier": stable_id(&user), "ipaddr": addr}},
            "properties": {"eventCategory": "Administrative", "entity": format!("/subscriptions/{sub}/resourceGroups/rg-prod/providers/{res}"), "message": op, "hierarchy": "contoso-root"}
        })
    } else if x < 95 {
        let failed = rng.chance(0.05);
        let mfa = rng.chance(0.8);
        json!({
            "time": time, "resourceId": format!("/tenants/{TENANT}/providers/Microsoft.aadiam"), "operationName": "Sign-in activity",
            "operationVersion": "1.0", "category": if rng.chance(0.6) { "NonInteractiveUserSignInLogs" } else { "SignInLogs" },
            "tenantId": TENANT, "resultType": if failed { "50126" } else { "0" },
            "resultDescription": if failed { "Invalid username or password or Invalid on-premise username or password." } else { "" },
            "durationMs": 0, "callerIpAddress": addr, "correlationId": rng.uuid(), "identity": user, "Level": 4, "location": "NL",
            "properties": {"id": rng.uuid(), "createdDateTime": time, "userDisplayName": user, "userPrincipalName": user, "userId": stable_id(&user),
                "appId": "c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "appDisplayName": "Azure Portal", "ipAddress": addr, "clientAppUsed": "Browser",
                "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
                "conditionalAccessStatus": "success", "authenticationRequirement": if mfa { "multiFactorAuthentication" } else { "singleFactorAuthentication" },
                "riskLevelDuringSignIn": "none", "riskState": "none", "isInteractive": true,
                "status": {"errorCode": if failed { 50126 } else { 0 }}, "location": {"city": "Amsterdam", "countryOrRegion": "NL"},
                "deviceDetail": {"operatingSystem": "Windows10", "browser": "Chrome 124.0.0", "isCompliant": true, "trustType": "Azure AD joined"}}
        })
    } else {
        let target = format!("{}@contoso.com", rng.pick(&USERS));
        json!({
            "time": time, "resourceId": format!("/tenants/{TENANT}/providers/Microsoft.aadiam"), "operationName": "Update user",
            "operationVersion": "1.0", "category": "AuditLogs", "tenantId": TENANT, "resultSignature": "None",
            "durationMs": 0, "callerIpAddress": addr, "correlationId": rng.uuid(), "Level": 4,
            "properties": {"id": format!("Directory_{}", rng.uuid()), "category": "UserManagement", "result": "success", "activityDisplayName": "Update user",
                "activityDateTime": time, "loggedByService": "Core Directory", "operationType": "Update",
                "initiatedBy": {"user": {"id": stable_id(&user), "userPrincipalName": user, "ipAddress": addr}},
                "targetResources": [{"id": rng.uuid(), "type": "User", "userPrincipalName": target,
                    "modifiedProperties": [{"displayName": "Department", "oldValue": "[\"Sales\"]", "newValue": "[\"Marketing\"]"}]}]}
        })
    }
}

const GCP_METHODS: [(&str, &str, &str); 10] = [
    (
        "compute.googleapis.com",
        "v1.compute.instances.list",
        "data_access",
    ),
    (
        "compute.googleapis.com",
        "v1.compute.instances.insert",
        "activity",
    ),
    (
        "storage.googleapis.com",
        "storage.objects.get",
        "data_access",
    ),
    (
        "storage.googleapis.com",
        "storage.buckets.list",
        "data_access",
    ),
    (
        "iam.googleapis.com",
        "google.iam.admin.v1.ListServiceAccounts",
        "data_access",
    ),
    (
        "cloudresourcemanager.googleapis.com",
        "GetIamPolicy",
        "data_access",
    ),
    (
        "container.googleapis.com",
        "google.container.v1.ClusterManager.GetCluster",
        "data_access",
    ),
    (
        "secretmanager.googleapis.com",
        "google.cloud.secretmanager.v1.SecretManagerService.AccessSecretVersion",
        "data_access",
    ),
    (
        "logging.googleapis.com",
        "google.logging.v2.LoggingServiceV2.ListLogEntries",
        "data_access",
    ),
    (
        "compute.googleapis.com",
        "v1.compute.firewalls.patch",
        "activity",
    ),
];

/// One GCP Cloud Audit Logs entry.
pub fn gcp_record(rng: &mut Rng, t: DateTime<Utc>) -> Value {
    let project = *rng.pick(&["shop-prod-4821", "shop-staging-1177", "data-lake-9044"]);
    let (service, method, log) = *rng.pick(&GCP_METHODS);
    let principal = if rng.chance(0.5) {
        format!("{}@example.com", rng.pick(&USERS))
    } else {
        format!(
            "{}@{project}.iam.gserviceaccount.com",
            rng.pick(&["deployer", "gke-nodes", "etl-runner"])
        )
    };
    let denied = rng.chance(0.02);
    let mut payload = json!({
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "status": if denied { json!({"code": 7, "message": "PERMISSION_DENIED"}) } else { json!({}) },
        "authenticationInfo": {"principalEmail": principal},
        "requestMetadata": {"callerIp": ip(rng, &[34, 35, 104, 198]),
            "callerSuppliedUserAgent": *rng.pick(&["google-cloud-sdk gcloud/470.0.0 command/gcloud.compute.instances.list", "Terraform/1.7.5 terraform-provider-google/5.20.0", "google-api-go-client/0.5 GoogleAgent"]),
            "requestAttributes": {"time": t.to_rfc3339(), "auth": {}}, "destinationAttributes": {}},
        "serviceName": service, "methodName": method,
        "authorizationInfo": [{"resource": format!("projects/{project}"), "permission": format!("{}.get", service.split('.').next().unwrap_or("x")), "granted": !denied, "resourceAttributes": {}}],
        "resourceName": format!("projects/{project}/zones/europe-west4-a/instances/web-{}", rng.below(20)),
        "request": {"@type": "type.googleapis.com/compute.instances.list", "project": project}
    });
    if log == "activity" {
        payload["response"] = json!({"@type": "type.googleapis.com/operation", "status": "RUNNING", "id": rng.below(1_000_000_000).to_string()});
    }
    json!({
        "protoPayload": payload,
        "insertId": rng.hex(12),
        "resource": {"type": "gce_instance", "labels": {"project_id": project, "zone": "europe-west4-a", "instance_id": rng.below(1_000_000_000).to_string()}},
        "timestamp": t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "severity": if denied { "ERROR" } else { "INFO" },
        "logName": format!("projects/{project}/logs/cloudaudit.googleapis.com%2F{log}"),
        "receiveTimestamp": (t + Duration::milliseconds(350)).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    })
}

/// A file of records as Azure diagnostic settings and GCP log sinks write them: JSON Lines, in a
/// dated folder.
pub fn write_lines_file(
    out: &Path,
    azure: bool,
    batch: &[Value],
    t: DateTime<Utc>,
    n: usize,
) -> anyhow::Result<()> {
    let dir = if azure {
        out.join(format!(
            "insights-logs/y={}/m={}/d={}",
            t.format("%Y"),
            t.format("%m"),
            t.format("%d")
        ))
    } else {
        out.join(format!(
            "cloudaudit.googleapis.com/{}",
            t.format("%Y/%m/%d")
        ))
    };
    std::fs::create_dir_all(&dir)?;
    let mut w = std::io::BufWriter::new(std::fs::File::create(
        dir.join(format!("part-{n:06}.json")),
    )?);
    for r in batch {
        serde_json::to_writer(&mut w, r)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(())
}
