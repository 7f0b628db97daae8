//! Azure: Entra ID sign-in and audit logs and the Activity Log, in the diagnostic-settings shape
//! (what a diagnostic setting writes to a storage account or an Event Hub).

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::org::{self, Os, Person, SUB_DEV, SUB_PROD, TENANT};
use crate::rng::{Rng, stable_uuid};
use crate::text::Obj;
use crate::{Ctx, Sink, local_days, secs, trunc_micros};

/// Azure's time format: seven fractional digits.
pub fn az_time(t: DateTime<Utc>) -> String {
    let mut s = String::with_capacity(28);
    crate::iso_seconds(t, &mut s);
    crate::fraction(trunc_micros(t), 7, &mut s);
    s.push('Z');
    s
}

/// Well-known first-party application ids.
pub mod apps {
    pub const PORTAL: (&str, &str) = ("c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "Azure Portal");
    pub const TEAMS: (&str, &str) = ("1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Microsoft Teams");
    pub const OFFICE: (&str, &str) = ("d3590ed6-52b3-4102-aeff-aad2292ab01c", "Microsoft Office");
    pub const OUTLOOK_WEB: (&str, &str) =
        ("9199bf20-a13f-4107-85dc-02114787ef48", "One Outlook Web");
    pub const ONEDRIVE: (&str, &str) = (
        "ab9b8c07-8f02-4f72-87fa-80105867a763",
        "OneDrive SyncEngine",
    );
    pub const SHELL: (&str, &str) = (
        "89bee1f7-5e6e-4d8a-9f3d-ecd601259da7",
        "Office365 Shell WCSS-Client",
    );
    pub const OUTLOOK_MOBILE: (&str, &str) =
        ("27922004-5251-4030-b22d-91ecd9a37ea4", "Outlook Mobile");
    pub const AZ_CLI: (&str, &str) = (
        "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "Microsoft Azure CLI",
    );
    pub const AAD_POWERSHELL: (&str, &str) = (
        "1b730954-1685-4b74-9bfd-dac224a7b894",
        "Azure Active Directory PowerShell",
    );
    pub const EXCHANGE: (&str, &str) = (
        "00000002-0000-0ff1-ce00-000000000000",
        "Office 365 Exchange Online",
    );
    pub const GRAPH: (&str, &str) = ("00000003-0000-0000-c000-000000000000", "Microsoft Graph");
    pub const ARM: (&str, &str) = (
        "797f4846-ba00-4fd7-ba43-dac1f8f63013",
        "Windows Azure Service Management API",
    );
    pub const SHAREPOINT: (&str, &str) = (
        "00000003-0000-0ff1-ce00-000000000000",
        "Office 365 SharePoint Online",
    );
    pub const SKYPE: (&str, &str) = (
        "00000004-0000-0ff1-ce00-000000000000",
        "Skype for Business Online",
    );
}

/// A user of the tenant.
#[derive(Clone, Debug)]
pub struct User {
    pub upn: String,
    pub display: String,
    pub id: String,
}

impl User {
    pub fn of(p: &Person) -> User {
        let upn = p.email();
        User {
            id: stable_uuid(&format!("entra/{upn}")),
            display: p.display_name(),
            upn,
        }
    }
    pub fn named(upn: &str, display: &str) -> User {
        User {
            upn: upn.to_string(),
            display: display.to_string(),
            id: stable_uuid(&format!("entra/{upn}")),
        }
    }
}

pub fn automation_user() -> User {
    User::named(&format!("svc-automation@{}", org::DOMAIN), "svc-automation")
}

/// Where a sign-in comes from.
#[derive(Clone, Debug)]
pub struct Origin {
    pub ip: String,
    pub city: &'static str,
    pub state: &'static str,
    pub country: &'static str,
    pub lat: f64,
    pub lon: f64,
    pub named_location: Option<&'static str>,
}

pub fn origin_of(p: &Person, ip: &str) -> Origin {
    let (state, lat, lon) = match p.city {
        "San Francisco" => ("California", 37.7749, -122.4194),
        "Berlin" => ("Berlin", 52.52, 13.405),
        "London" => ("England", 51.5072, -0.1276),
        "New York" => ("New York", 40.7128, -74.006),
        "Tokyo" => ("Tokyo", 35.6762, 139.6503),
        "Madrid" => ("Madrid", 40.4168, -3.7038),
        "Stockholm" => ("Stockholms Lan", 59.3293, 18.0686),
        "Paris" => ("Ile-de-France", 48.8566, 2.3522),
        _ => ("", 0.0, 0.0),
    };
    let named_location = match ip {
        org::BERLIN_OFFICE => Some("Berlin office"),
        org::LONDON_OFFICE => Some("London office"),
        org::SF_OFFICE => Some("San Francisco office"),
        _ => None,
    };
    Origin {
        ip: ip.to_string(),
        city: p.city,
        state,
        country: p.country,
        lat,
        lon,
        named_location,
    }
}

/// One Entra ID sign-in.
#[derive(Clone, Debug)]
pub struct SignIn {
    pub t: DateTime<Utc>,
    pub user: User,
    pub app: (&'static str, &'static str),
    pub resource: (&'static str, &'static str),
    pub origin: Origin,
    pub ua: String,
    pub client_app: &'static str,
    pub interactive: bool,
    pub mfa: bool,
    /// 0 for success, or an AADSTS error code with its reason.
    pub code: u32,
    pub reason: &'static str,
    pub session: String,
    pub device: Value,
    /// (riskLevelDuringSignIn, riskState, risk event types)
    pub risk: Option<(&'static str, &'static str, Vec<&'static str>)>,
    pub protocol: &'static str,
    pub correlation: String,
}

pub fn device(p: &Person, os: Os, managed: bool) -> Value {
    let (system, browser) = match os {
        Os::Mac => ("MacOs", "Chrome 124.0.0"),
        Os::Linux => ("Linux", "Firefox 125.0"),
        Os::Windows => ("Windows10", "Edge 124.0.0"),
    };
    if managed {
        json!({
            "deviceId": stable_uuid(&format!("device/{}", p.email())),
            "displayName": format!("{}-{}", p.first.to_ascii_uppercase(), if os == Os::Mac { "MBP" } else { "LT" }),
            "operatingSystem": system, "browser": browser, "isCompliant": true, "isManaged": true,
            "trustType": if os == Os::Windows { "Azure AD joined" } else { "Azure AD registered" }
        })
    } else {
        json!({"deviceId": "", "operatingSystem": system, "browser": browser, "isCompliant": false, "isManaged": false})
    }
}

/// Writes an Entra ID sign-in record; returns its id (`properties.id`).
pub fn sign_in(sink: &mut Sink, rng: &mut Rng, s: SignIn) -> String {
    let id = sink.fresh_id(rng, Rng::uuid);
    let time = az_time(s.t);
    let category = if s.interactive {
        "SignInLogs"
    } else {
        "NonInteractiveUserSignInLogs"
    };
    let (risk_level, risk_state, risk_types) =
        s.risk.clone().unwrap_or(("none", "none", Vec::new()));
    let code = s.code.to_string();
    let mut o = Obj::new();
    o.str("time", &time)
        .key("resourceId")
        .raw("\"/tenants/")
        .raw(TENANT)
        .raw("/providers/Microsoft.aadiam\"")
        .str("operationName", "Sign-in activity")
        .str("operationVersion", "1.0")
        .str("category", category)
        .str("tenantId", TENANT)
        .str("resultType", &code)
        .str("resultSignature", "None");
    if s.code != 0 {
        o.str("resultDescription", s.reason);
    }
    o.num("durationMs", 0)
        .str("callerIpAddress", &s.origin.ip)
        .str("correlationId", &s.correlation)
        .str("identity", &s.user.display)
        .num("Level", 4)
        .str("location", s.origin.country);
    o.obj("properties", |o| {
        o.str("id", &id)
            .str("createdDateTime", &time)
            .str("userDisplayName", &s.user.display)
            .str("userPrincipalName", &s.user.upn)
            .str("userId", &s.user.id)
            .str("appId", s.app.0)
            .str("appDisplayName", s.app.1)
            .str("ipAddress", &s.origin.ip)
            .obj("status", |o| {
                o.num("errorCode", s.code);
                if s.code != 0 {
                    o.str("failureReason", s.reason);
                }
            })
            .str("clientAppUsed", s.client_app)
            .str("userAgent", &s.ua)
            .str("correlationId", &s.correlation)
            .str(
                "conditionalAccessStatus",
                if s.code == 0 || s.code == 50074 {
                    "success"
                } else {
                    "notApplied"
                },
            )
            .str("originalRequestId", &rng.uuid())
            .bool("isInteractive", s.interactive)
            .str("tokenIssuerType", "AzureAD")
            .str(
                "authenticationRequirement",
                if s.mfa {
                    "multiFactorAuthentication"
                } else {
                    "singleFactorAuthentication"
                },
            )
            .str("authenticationProtocol", s.protocol)
            .str("riskDetail", "none")
            .str("riskLevelAggregated", risk_level)
            .str("riskLevelDuringSignIn", risk_level)
            .str("riskState", risk_state)
            .strs("riskEventTypes_v2", &risk_types)
            .str("resourceDisplayName", s.resource.1)
            .str("resourceId", s.resource.0)
            .value("deviceDetail", &s.device)
            .obj("location", |o| {
                o.str("city", s.origin.city)
                    .str("state", s.origin.state)
                    .str("countryOrRegion", s.origin.country)
                    .obj("geoCoordinates", |o| {
                        o.num("latitude", s.origin.lat)
                            .num("longitude", s.origin.lon);
                    });
            })
            .str("sessionId", &s.session)
            .str("userType", "Member")
            .str("homeTenantId", TENANT)
            .str("resourceTenantId", TENANT)
            .num("processingTimeInMilliseconds", 80 + rng.below(400));
        match s.origin.named_location {
            Some(name) => o
                .key("networkLocationDetails")
                .raw("[{\"networkType\":\"namedNetwork\",\"networkNames\":[")
                .raw(&json!(name).to_string())
                .raw("]}]"),
            None => o.key("networkLocationDetails").raw("[]"),
        };
        if s.interactive && s.mfa && s.code == 0 {
            o.key("mfaDetail")
                .raw("{\"authMethod\":\"Mobile app notification\"}");
        }
    });
    sink.push_text(trunc_micros(s.t), o.finish());
    id
}

/// A service principal's sign-in (client credentials) from a GitHub runner.
pub fn sp_sign_in(
    sink: &mut Sink,
    rng: &mut Rng,
    t: DateTime<Utc>,
    name: &str,
    app_id: &str,
    ip: &str,
) -> String {
    sp_sign_in_from(
        sink,
        rng,
        t,
        name,
        app_id,
        ip,
        "federatedIdentityCredential",
        ("San Antonio", "Texas", "US"),
    )
}

/// A service principal's sign-in with a given credential type and location.
#[allow(clippy::too_many_arguments)]
pub fn sp_sign_in_from(
    sink: &mut Sink,
    rng: &mut Rng,
    t: DateTime<Utc>,
    name: &str,
    app_id: &str,
    ip: &str,
    credential: &str,
    (city, state, country): (&str, &str, &str),
) -> String {
    let id = sink.fresh_id(rng, Rng::uuid);
    let time = az_time(t);
    let correlation = rng.uuid();
    let record = json!({
        "time": time,
        "resourceId": format!("/tenants/{TENANT}/providers/Microsoft.aadiam"),
        "operationName": "Sign-in activity",
        "operationVersion": "1.0",
        "category": "ServicePrincipalSignInLogs",
        "tenantId": TENANT,
        "resultType": "0",
        "resultSignature": "None",
        "durationMs": 0,
        "callerIpAddress": ip,
        "correlationId": correlation,
        "Level": 4,
        "location": country,
        "properties": {
            "id": id, "createdDateTime": time, "appId": app_id, "appDisplayName": name,
            "servicePrincipalId": stable_uuid(&format!("sp/{app_id}")), "servicePrincipalName": name,
            "ipAddress": ip, "correlationId": correlation, "status": {"errorCode": 0},
            "resourceDisplayName": apps::ARM.1, "resourceId": apps::ARM.0,
            "clientCredentialType": credential,
            "location": {"city": city, "state": state, "countryOrRegion": country},
            "conditionalAccessStatus": "notApplied"
        }
    });
    sink.push(trunc_micros(t), &record);
    id
}

/// Who calls Azure Resource Manager.
#[derive(Clone, Debug)]
pub enum Caller {
    User {
        user: User,
        ip: String,
        app: &'static str,
        role: &'static str,
    },
    App {
        app_id: String,
        ip: String,
        role: &'static str,
    },
}

impl Caller {
    fn ip(&self) -> &str {
        match self {
            Caller::User { ip, .. } | Caller::App { ip, .. } => ip,
        }
    }
    fn claims(&self, t: DateTime<Utc>) -> Value {
        let iat = (t - Duration::minutes(20)).timestamp().to_string();
        let exp = (t + Duration::minutes(55)).timestamp().to_string();
        match self {
            Caller::User { user, ip, app, .. } => json!({
                "aud": "https://management.core.windows.net/",
                "iss": format!("https://sts.windows.net/{TENANT}/"),
                "iat": iat, "nbf": iat, "exp": exp,
                "http://schemas.microsoft.com/claims/authnmethodsreferences": "pwd,mfa",
                "appid": app, "appidacr": "0",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": user.upn,
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name": user.upn,
                "name": user.display,
                "http://schemas.microsoft.com/identity/claims/objectidentifier": user.id,
                "http://schemas.microsoft.com/identity/claims/tenantid": TENANT,
                "ipaddr": ip,
                "ver": "1.0"
            }),
            Caller::App { app_id, .. } => json!({
                "aud": "https://management.core.windows.net/",
                "iss": format!("https://sts.windows.net/{TENANT}/"),
                "iat": iat, "nbf": iat, "exp": exp,
                "appid": app_id, "appidacr": "2", "idtyp": "app",
                "http://schemas.microsoft.com/identity/claims/objectidentifier": stable_uuid(&format!("sp/{app_id}")),
                "http://schemas.microsoft.com/identity/claims/tenantid": TENANT,
                "ver": "1.0"
            }),
        }
    }
    fn principal(&self) -> (String, &'static str, &'static str) {
        match self {
            Caller::User { user, role, .. } => (user.id.clone(), "User", role),
            Caller::App { app_id, role, .. } => (
                stable_uuid(&format!("sp/{app_id}")),
                "ServicePrincipal",
                role,
            ),
        }
    }
}

/// One Activity Log operation: its `Start` record and its outcome record. Returns both ids.
#[allow(clippy::too_many_arguments)]
pub fn operation(
    sink: &mut Sink,
    rng: &mut Rng,
    t: DateTime<Utc>,
    caller: &Caller,
    subscription: &str,
    group: &str,
    provider_path: &str,
    operation: &str,
    outcome: &'static str,
    extra: Option<Value>,
) -> Vec<(String, DateTime<Utc>)> {
    let correlation = rng.uuid();
    let scope = if group.is_empty() {
        format!("/subscriptions/{subscription}/providers/{provider_path}")
    } else {
        format!("/subscriptions/{subscription}/resourceGroups/{group}/providers/{provider_path}")
    };
    let mut ids = Vec::new();
    let duration = 200 + rng.below(4000);
    for (k, note) in ["Started.", ""].into_iter().enumerate() {
        let id = sink.fresh_id(rng, Rng::uuid);
        let at = t + Duration::milliseconds(if k == 0 { 0 } else { duration as i64 });
        let (principal, kind, role) = caller.principal();
        let signature = match note {
            "Started." => "Started.".to_string(),
            _ => match outcome {
                "Success" => "Succeeded.OK".to_string(),
                "Accept" => "Accepted.Created".to_string(),
                _ => "Failed.Forbidden".to_string(),
            },
        };
        let mut props = json!({
            "eventDataId": id,
            "eventCategory": "Administrative",
            "entity": scope,
            "message": operation,
            "hierarchy": format!("{TENANT}/mg-ridgeline/{subscription}"),
            "serviceRequestId": rng.uuid(),
        });
        if k > 0 {
            props["statusCode"] = json!(match outcome {
                "Success" => "OK",
                "Accept" => "Created",
                _ => "Forbidden",
            });
        }
        if let Some(Value::Object(more)) = &extra {
            for (key, v) in more {
                props[key] = v.clone();
            }
        }
        let record = json!({
            "time": az_time(at),
            "resourceId": scope.to_ascii_uppercase(),
            "operationName": operation.to_ascii_uppercase(),
            "category": "Administrative",
            "resultType": if k == 0 { "Start" } else { outcome },
            "resultSignature": signature,
            "durationMs": if k == 0 { 0 } else { duration },
            "callerIpAddress": caller.ip(),
            "correlationId": correlation,
            "identity": {
                "authorization": {
                    "scope": scope,
                    "action": operation,
                    "evidence": {"role": role, "roleAssignmentScope": format!("/subscriptions/{subscription}"),
                        "roleAssignmentId": crate::rng::stable_hex(&format!("ra/{principal}/{subscription}"), 32),
                        "roleDefinitionId": role_definition(role), "principalId": principal, "principalType": kind}
                },
                "claims": caller.claims(at)
            },
            "level": "Information",
            "location": "westeurope",
            "properties": props,
        });
        sink.push(trunc_micros(at), &record);
        ids.push((id, trunc_micros(at)));
    }
    ids
}

pub fn role_definition(role: &str) -> &'static str {
    match role {
        "Owner" => "8e3af657a8ff443ca75c2fe8c4bcb635",
        "User Access Administrator" => "18d7d88dd35e4fb5a5c37773c20a72d9",
        "Reader" => "acdd72a7338548efbd42f606fffbc5f7",
        _ => "b24988ac618042a0ab8820f7382dd24c",
    }
}

/// One Entra ID directory audit record; returns its id.
#[allow(clippy::too_many_arguments)]
pub fn audit(
    sink: &mut Sink,
    rng: &mut Rng,
    t: DateTime<Utc>,
    initiator: &User,
    ip: &str,
    activity: &str,
    category: &str,
    operation_type: &str,
    targets: Value,
    ua: &str,
) -> String {
    let correlation = rng.uuid();
    let id = sink.fresh_id(rng, |r: &mut Rng| {
        format!(
            "Directory_{}_{}",
            r.hex(8).to_ascii_uppercase(),
            r.hex(5).to_ascii_uppercase()
        )
    });
    let time = az_time(t);
    let record = json!({
        "time": time,
        "resourceId": format!("/tenants/{TENANT}/providers/Microsoft.aadiam"),
        "operationName": activity,
        "operationVersion": "1.0",
        "category": "AuditLogs",
        "tenantId": TENANT,
        "resultSignature": "None",
        "durationMs": 0,
        "callerIpAddress": ip,
        "correlationId": correlation,
        "identity": initiator.display,
        "Level": 4,
        "properties": {
            "id": id, "category": category, "correlationId": correlation, "result": "success", "resultReason": "",
            "activityDisplayName": activity, "activityDateTime": time.replace('Z', "+00:00"),
            "loggedByService": "Core Directory", "operationType": operation_type,
            "initiatedBy": {"user": {"id": initiator.id, "displayName": null, "userPrincipalName": initiator.upn, "ipAddress": ip, "roles": []}},
            "targetResources": targets,
            "additionalDetails": [{"key": "User-Agent", "value": ua}]
        }
    });
    sink.push(trunc_micros(t), &record);
    id
}

const OFFICE_APPS: &[(&str, &str)] =
    &[apps::TEAMS, apps::OUTLOOK_WEB, apps::ONEDRIVE, apps::OFFICE];

fn resource_of(app: (&'static str, &'static str)) -> (&'static str, &'static str) {
    match app.1 {
        "Microsoft Teams" => apps::SKYPE,
        "One Outlook Web" | "Outlook Mobile" => apps::EXCHANGE,
        "OneDrive SyncEngine" => apps::SHAREPOINT,
        "Azure Portal" | "Microsoft Azure CLI" => apps::ARM,
        _ => apps::GRAPH,
    }
}

fn client_ua(p: &Person, app: &str) -> String {
    match app {
        "Microsoft Teams" => format!("{} Teams/24124.2315.2911.3357", org::browser_ua(p.os)),
        "OneDrive SyncEngine" => {
            "Microsoft SkyDriveSync 24.086.0428.0003 ship; Windows NT 10.0 (22631)".to_string()
        }
        "Outlook Mobile" => "Outlook-Android/2.0".to_string(),
        _ => org::browser_ua(p.os).to_string(),
    }
}

pub(crate) fn benign(sink: &mut Sink, ctx: &Ctx) {
    for p in org::PEOPLE {
        person_sign_ins(sink, ctx, p);
    }
    arm_work(sink, ctx);
    deployments(sink, ctx);
    automation(sink, ctx);
    directory_admin(sink, ctx);
}

/// A person's day in Entra ID: the morning sign-in (with MFA), token refreshes of the Office apps
/// all day long, and now and then a mistyped password or a "stay signed in?" interrupt.
fn person_sign_ins(sink: &mut Sink, ctx: &Ctx, p: &Person) {
    let mut rng = Rng::derive(ctx.seed, &format!("entra/{}", p.handle()));
    let user = User::of(p);
    let has_phone = p.aws.is_none() && crate::rng::fnv(&p.email()).is_multiple_of(2);
    let phone_ip = format!(
        "{}.{}.{}",
        match p.country {
            "DE" => "176.2",
            "GB" => "82.132",
            "US" => "172.58",
            "ES" => "88.28",
            "SE" => "83.185",
            "FR" => "92.184",
            _ => "126.33",
        },
        10 + crate::rng::fnv(&p.handle()) % 200,
        1 + crate::rng::fnv(p.last) % 250
    );
    for day in local_days(ctx.start, ctx.end, p.tz_min) {
        let place = crate::aws::day_place(ctx.seed, p, day.date, day.weekend);
        let working = !day.weekend || rng.chance(p.weekend_p * 1.5);
        if working {
            let start = if day.weekend {
                11.0 + 4.0 * rng.unit()
            } else {
                p.start_h - 0.2 + rng.normal(0.0, 0.25)
            };
            let end = if day.weekend {
                start + 1.5
            } else {
                p.end_h + rng.normal(0.0, 0.4)
            };
            let session = rng.uuid();
            let dev = device(p, p.os, true);
            let sign = |rng: &mut Rng,
                        t: DateTime<Utc>,
                        hour: f64,
                        app: (&'static str, &'static str),
                        interactive: bool,
                        code: u32,
                        reason: &'static str| SignIn {
                t,
                user: user.clone(),
                app,
                resource: resource_of(app),
                origin: origin_of(p, place.ip(p, hour)),
                ua: client_ua(p, app.1),
                client_app: if app.1 == "One Outlook Web"
                    || app.1 == "Azure Portal"
                    || app.1 == "Office365 Shell WCSS-Client"
                {
                    "Browser"
                } else {
                    "Mobile Apps and Desktop clients"
                },
                interactive,
                mfa: true,
                code,
                reason,
                session: session.clone(),
                device: dev.clone(),
                risk: None,
                protocol: "none",
                correlation: rng.uuid(),
            };
            let t0 = day.at(start);
            if t0 >= ctx.start && t0 < ctx.end {
                if rng.chance(0.04) {
                    let s = sign(
                        &mut rng,
                        t0 - secs(40.0),
                        start,
                        apps::SHELL,
                        true,
                        50126,
                        "Invalid username or password or Invalid on-premise username or password.",
                    );
                    sign_in(sink, &mut rng, s);
                }
                if rng.chance(0.15) {
                    let s = sign(
                        &mut rng,
                        t0 - secs(8.0),
                        start,
                        apps::SHELL,
                        true,
                        50140,
                        "This error occurred due to 'Keep me signed in' interrupt when the user was signing in.",
                    );
                    sign_in(sink, &mut rng, s);
                }
                let s = sign(&mut rng, t0, start, apps::SHELL, true, 0, "");
                sign_in(sink, &mut rng, s);
            }
            // Engineers who work in Azure open the portal once or twice.
            if p.azure_arm && !day.weekend {
                for _ in 0..(1 + rng.below(2)) {
                    let h = start + (end - start) * rng.unit();
                    let t = day.at(h);
                    if t >= ctx.start && t < ctx.end {
                        let s = sign(&mut rng, t, h, apps::PORTAL, true, 0, "");
                        sign_in(sink, &mut rng, s);
                    }
                }
            }
            // Token refreshes of the desktop apps all day.
            for app in OFFICE_APPS {
                let mut h = start + rng.unit() * 0.3;
                let mean = 0.6 / ctx.scale.clamp(0.05, 20.0);
                while h < end + 0.5 {
                    let t = day.at(h);
                    if t >= ctx.start && t < ctx.end {
                        let s = sign(&mut rng, t, h, *app, false, 0, "");
                        sign_in(sink, &mut rng, s);
                    }
                    h += 0.15 + rng.exp(mean);
                }
            }
        }
        // Phones refresh mail through the evening too.
        if has_phone {
            let session = rng.uuid();
            let mut h = 7.0 + rng.unit();
            while h < 22.0 {
                let t = day.at(h);
                if t >= ctx.start && t < ctx.end {
                    let s = SignIn {
                        t,
                        user: user.clone(),
                        app: apps::OUTLOOK_MOBILE,
                        resource: apps::EXCHANGE,
                        origin: origin_of(p, &phone_ip),
                        ua: "Outlook-Android/2.0".into(),
                        client_app: "Mobile Apps and Desktop clients",
                        interactive: false,
                        mfa: true,
                        code: 0,
                        reason: "",
                        session: session.clone(),
                        device: json!({"deviceId": stable_uuid(&format!("phone/{}", p.email())), "operatingSystem": "Android", "isCompliant": true, "isManaged": true, "trustType": "Azure AD registered"}),
                        risk: None,
                        protocol: "none",
                        correlation: rng.uuid(),
                    };
                    sign_in(sink, &mut rng, s);
                }
                h += 0.5 + rng.exp(1.5 / ctx.scale.clamp(0.05, 20.0));
            }
        }
    }
}

const ARM_WORK: &[(&str, &str, &str, &str)] = &[
    (
        "rg-web-prod",
        "Microsoft.Web/sites/app-ridgeline-portal",
        "Microsoft.Web/sites/restart/action",
        "Success",
    ),
    (
        "rg-web-prod",
        "Microsoft.Web/sites/app-ridgeline-portal/config/appsettings",
        "Microsoft.Web/sites/config/write",
        "Success",
    ),
    (
        "rg-build",
        "Microsoft.Compute/virtualMachines/vm-build-01",
        "Microsoft.Compute/virtualMachines/start/action",
        "Accept",
    ),
    (
        "rg-build",
        "Microsoft.Compute/virtualMachines/vm-build-01",
        "Microsoft.Compute/virtualMachines/deallocate/action",
        "Accept",
    ),
    (
        "rg-web-prod",
        "Microsoft.Insights/metricAlerts/portal-5xx",
        "Microsoft.Insights/metricAlerts/write",
        "Success",
    ),
    (
        "rg-web-prod",
        "Microsoft.Insights/actionGroups/ag-oncall",
        "Microsoft.Insights/actionGroups/write",
        "Success",
    ),
    (
        "rg-data",
        "Microsoft.Storage/storageAccounts/stridgelineprod/blobServices/default/containers/exports",
        "Microsoft.Storage/storageAccounts/blobServices/containers/write",
        "Success",
    ),
    (
        "rg-web-prod",
        "Microsoft.Resources/tags/default",
        "Microsoft.Resources/tags/write",
        "Success",
    ),
    (
        "rg-web-dev",
        "Microsoft.Web/sites/app-ridgeline-portal-dev",
        "Microsoft.Web/sites/restart/action",
        "Success",
    ),
    (
        "rg-web-dev",
        "Microsoft.Web/sites/app-ridgeline-portal-dev/config/appsettings",
        "Microsoft.Web/sites/config/write",
        "Success",
    ),
];

/// Engineers' portal work: a few writes a day each (the Activity Log records no reads).
fn arm_work(sink: &mut Sink, ctx: &Ctx) {
    for p in org::PEOPLE.iter().filter(|p| p.azure_arm) {
        let mut rng = Rng::derive(ctx.seed, &format!("arm/{}", p.handle()));
        let user = User::of(p);
        let role = if p.first == "Grace" {
            "Reader"
        } else {
            "Contributor"
        };
        for day in local_days(ctx.start, ctx.end, p.tz_min) {
            if day.weekend {
                continue;
            }
            let place = crate::aws::day_place(ctx.seed, p, day.date, day.weekend);
            let n = rng.poisson(3.0 * ctx.scale);
            for _ in 0..n {
                let h = p.start_h + 0.5 + (p.end_h - p.start_h - 1.0) * rng.unit();
                let t = day.at(h);
                if t < ctx.start || t >= ctx.end {
                    continue;
                }
                let (group, path, op, outcome) = *rng.pick(ARM_WORK);
                let sub = if group.ends_with("dev") {
                    SUB_DEV
                } else {
                    SUB_PROD
                };
                let caller = Caller::User {
                    user: user.clone(),
                    ip: place.ip(p, h).to_string(),
                    app: apps::PORTAL.0,
                    role,
                };
                let outcome = if role == "Reader" { "Failure" } else { outcome };
                operation(
                    sink, &mut rng, t, &caller, sub, group, path, op, outcome, None,
                );
            }
        }
    }
}

pub const DEPLOY_APP: &str = "6f3e1a9c-2b4d-4e8f-a1c3-5d7e9f0b2a46";

/// GitHub Actions deploys the web app with a federated-credential service principal.
fn deployments(sink: &mut Sink, ctx: &Ctx) {
    let mut rng = Rng::derive(ctx.seed, "azure/deploy");
    for day in local_days(ctx.start, ctx.end, 60) {
        let n = if day.weekend {
            0
        } else {
            rng.poisson(3.0 * ctx.scale)
        };
        for _ in 0..n {
            let t = day.at(9.0 + 9.0 * rng.unit());
            if t < ctx.start || t >= ctx.end {
                continue;
            }
            let ip = format!(
                "{}.{}.{}",
                rng.pick(org::RUNNER_PREFIXES),
                rng.below(256),
                1 + rng.below(254)
            );
            sp_sign_in(
                sink,
                &mut rng,
                t,
                "gh-deploy-ridgeline-portal",
                DEPLOY_APP,
                &ip,
            );
            let caller = Caller::App {
                app_id: DEPLOY_APP.to_string(),
                ip,
                role: "Contributor",
            };
            let name = format!("portal-release-{}", rng.hex(7));
            operation(
                sink,
                &mut rng,
                t + secs(4.0),
                &caller,
                SUB_PROD,
                "rg-web-prod",
                &format!("Microsoft.Resources/deployments/{name}"),
                "Microsoft.Resources/deployments/write",
                "Accept",
                None,
            );
            operation(
                sink,
                &mut rng,
                t + secs(35.0),
                &caller,
                SUB_PROD,
                "rg-web-prod",
                "Microsoft.Web/sites/app-ridgeline-portal/slots/staging",
                "Microsoft.Web/sites/slots/write",
                "Success",
                None,
            );
            let swap_at = t + secs(95.0 + 30.0 * rng.unit());
            operation(
                sink,
                &mut rng,
                swap_at,
                &caller,
                SUB_PROD,
                "rg-web-prod",
                "Microsoft.Web/sites/app-ridgeline-portal/slots/staging",
                "Microsoft.Web/sites/slots/slotsswap/action",
                "Success",
                None,
            );
        }
    }
}

pub const BUILD_SERVER_IP: &str = "20.73.115.42";

/// svc-automation: a user account for an old maintenance script on the build server, excluded
/// from MFA; every night it signs in with the Azure CLI and recycles the app.
fn automation(sink: &mut Sink, ctx: &Ctx) {
    let mut rng = Rng::derive(ctx.seed, "azure/automation");
    let user = automation_user();
    for day in local_days(ctx.start, ctx.end, 0) {
        let t = day.at(1.0) + secs(rng.unit() * 90.0);
        if t < ctx.start || t >= ctx.end {
            continue;
        }
        let s = SignIn {
            t,
            user: user.clone(),
            app: apps::AZ_CLI,
            resource: apps::ARM,
            origin: Origin { ip: BUILD_SERVER_IP.into(), city: "Amsterdam", state: "Noord-Holland", country: "NL", lat: 52.3676, lon: 4.9041, named_location: Some("Azure build server") },
            ua: "python/3.10.12 (Linux-6.5.0-1022-azure-x86_64-with-glibc2.35) msal/1.28.0 azure-cli/2.60.0".into(),
            client_app: "Mobile Apps and Desktop clients",
            interactive: false,
            mfa: false,
            code: 0,
            reason: "",
            session: rng.uuid(),
            device: json!({"deviceId": "", "operatingSystem": "Linux", "isCompliant": false, "isManaged": false}),
            risk: None,
            protocol: "none",
            correlation: rng.uuid(),
        };
        sign_in(sink, &mut rng, s);
        let caller = Caller::User {
            user: user.clone(),
            ip: BUILD_SERVER_IP.into(),
            app: apps::AZ_CLI.0,
            role: "Contributor",
        };
        operation(
            sink,
            &mut rng,
            t + secs(12.0),
            &caller,
            SUB_PROD,
            "rg-web-prod",
            "Microsoft.Web/sites/app-ridgeline-portal",
            "Microsoft.Web/sites/restart/action",
            "Success",
            None,
        );
        operation(
            sink,
            &mut rng,
            t + secs(75.0),
            &caller,
            SUB_DEV,
            "rg-web-dev",
            "Microsoft.Web/sites/app-ridgeline-portal-dev",
            "Microsoft.Web/sites/restart/action",
            "Success",
            None,
        );
    }
}

/// The People team keeps directory data up to date; group memberships change now and then.
fn directory_admin(sink: &mut Sink, ctx: &Ctx) {
    let mut rng = Rng::derive(ctx.seed, "entra/admin");
    let olivia = org::person("Olivia");
    let admin = User::of(olivia);
    for day in local_days(ctx.start, ctx.end, olivia.tz_min) {
        if day.weekend {
            continue;
        }
        let place = crate::aws::day_place(ctx.seed, olivia, day.date, false);
        for _ in 0..rng.poisson(4.0 * ctx.scale) {
            let h = 9.5 + 7.0 * rng.unit();
            let t = day.at(h);
            if t < ctx.start || t >= ctx.end {
                continue;
            }
            let target = rng.pick(org::PEOPLE);
            let target_user = User::of(target);
            let ip = place.ip(olivia, h);
            let ua = org::browser_ua(olivia.os);
            if rng.chance(0.7) {
                let department = format!("[\"{}\"]", target.department);
                let (prop, old, new) = match rng.below(4) {
                    0 => (
                        "JobTitle",
                        "[]".to_string(),
                        format!("[\"{} Lead\"]", target.department),
                    ),
                    1 => ("Department", "[]".to_string(), department),
                    2 => (
                        "MobilePhone",
                        "[]".to_string(),
                        "[\"+44 7700 900123\"]".to_string(),
                    ),
                    _ => (
                        "OfficeLocation",
                        "[]".to_string(),
                        format!("[\"{}\"]", target.city),
                    ),
                };
                audit(
                    sink,
                    &mut rng,
                    t,
                    &admin,
                    ip,
                    "Update user",
                    "UserManagement",
                    "Update",
                    json!([{"id": target_user.id, "displayName": null, "type": "User", "userPrincipalName": target_user.upn,
                        "modifiedProperties": [{"displayName": prop, "oldValue": old, "newValue": new},
                            {"displayName": "Included Updated Properties", "oldValue": null, "newValue": format!("\"{prop}\"")}]}]),
                    ua,
                );
            } else {
                let group = rng.pick(&[
                    "Engineering",
                    "All Berlin",
                    "All London",
                    "Project Atlas",
                    "Sales EMEA",
                ]);
                audit(
                    sink,
                    &mut rng,
                    t,
                    &admin,
                    ip,
                    "Add member to group",
                    "GroupManagement",
                    "Assign",
                    json!([{"id": target_user.id, "displayName": null, "type": "User", "userPrincipalName": target_user.upn,
                        "modifiedProperties": [{"displayName": "Group.DisplayName", "oldValue": null, "newValue": format!("\"{group}\"")}]},
                        {"id": stable_uuid(&format!("group/{group}")), "displayName": group, "type": "Group", "modifiedProperties": []}]),
                    ua,
                );
            }
        }
    }
}
