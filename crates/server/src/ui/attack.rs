//! The cloud part of the MITRE ATT&CK® Enterprise matrix (IaaS, SaaS, Identity Provider and
//! Office Suite platforms): tactics in matrix order and the techniques the dashboard names and
//! draws. Technique ids and names are MITRE's: © The MITRE Corporation; reproduced under the
//! ATT&CK terms of use (https://attack.mitre.org/resources/legal-and-branding/terms-of-use/).
//! Techniques outside the cloud matrix that our rules name have their names in
//! [`OTHER_TECHNIQUES`]; any other shows by id wherever a rule or alert names it.

/// Cloud tactics in the order of the matrix: (id as our rules tag it, name).
pub const TACTICS: &[(&str, &str)] = &[
    ("initial-access", "Initial Access"),
    ("execution", "Execution"),
    ("persistence", "Persistence"),
    ("privilege-escalation", "Privilege Escalation"),
    ("defense-evasion", "Defense Evasion"),
    ("credential-access", "Credential Access"),
    ("discovery", "Discovery"),
    ("lateral-movement", "Lateral Movement"),
    ("collection", "Collection"),
    ("exfiltration", "Exfiltration"),
    ("impact", "Impact"),
];

/// (technique id, name, tactics).
pub const TECHNIQUES: &[(&str, &str, &[&str])] = &[
    (
        "T1078",
        "Valid Accounts",
        &[
            "initial-access",
            "persistence",
            "privilege-escalation",
            "defense-evasion",
        ],
    ),
    (
        "T1078.001",
        "Default Accounts",
        &[
            "initial-access",
            "persistence",
            "privilege-escalation",
            "defense-evasion",
        ],
    ),
    (
        "T1078.004",
        "Cloud Accounts",
        &[
            "initial-access",
            "persistence",
            "privilege-escalation",
            "defense-evasion",
        ],
    ),
    (
        "T1190",
        "Exploit Public-Facing Application",
        &["initial-access"],
    ),
    ("T1199", "Trusted Relationship", &["initial-access"]),
    ("T1566", "Phishing", &["initial-access"]),
    ("T1566.002", "Spearphishing Link", &["initial-access"]),
    ("T1648", "Serverless Execution", &["execution"]),
    ("T1651", "Cloud Administration Command", &["execution"]),
    ("T1059.009", "Cloud API", &["execution"]),
    ("T1204", "User Execution", &["execution"]),
    (
        "T1098",
        "Account Manipulation",
        &["persistence", "privilege-escalation"],
    ),
    (
        "T1098.001",
        "Additional Cloud Credentials",
        &["persistence", "privilege-escalation"],
    ),
    (
        "T1098.003",
        "Additional Cloud Roles",
        &["persistence", "privilege-escalation"],
    ),
    (
        "T1098.004",
        "SSH Authorized Keys",
        &["persistence", "privilege-escalation"],
    ),
    (
        "T1098.005",
        "Device Registration",
        &["persistence", "privilege-escalation"],
    ),
    ("T1136", "Create Account", &["persistence"]),
    ("T1136.003", "Cloud Account", &["persistence"]),
    ("T1525", "Implant Internal Image", &["persistence"]),
    (
        "T1556",
        "Modify Authentication Process",
        &["persistence", "credential-access", "defense-evasion"],
    ),
    (
        "T1556.006",
        "Multi-Factor Authentication",
        &["persistence", "credential-access", "defense-evasion"],
    ),
    (
        "T1556.007",
        "Hybrid Identity",
        &["persistence", "credential-access", "defense-evasion"],
    ),
    (
        "T1548.005",
        "Temporary Elevated Cloud Access",
        &["privilege-escalation", "defense-evasion"],
    ),
    (
        "T1484.002",
        "Trust Modification",
        &["privilege-escalation", "defense-evasion"],
    ),
    ("T1562", "Impair Defenses", &["defense-evasion"]),
    ("T1562.001", "Disable or Modify Tools", &["defense-evasion"]),
    (
        "T1562.007",
        "Disable or Modify Cloud Firewall",
        &["defense-evasion"],
    ),
    (
        "T1562.008",
        "Disable or Modify Cloud Logs",
        &["defense-evasion"],
    ),
    (
        "T1578",
        "Modify Cloud Compute Infrastructure",
        &["defense-evasion"],
    ),
    ("T1578.001", "Create Snapshot", &["defense-evasion"]),
    ("T1578.002", "Create Cloud Instance", &["defense-evasion"]),
    ("T1578.003", "Delete Cloud Instance", &["defense-evasion"]),
    (
        "T1578.005",
        "Modify Cloud Compute Configurations",
        &["defense-evasion"],
    ),
    (
        "T1535",
        "Unused/Unsupported Cloud Regions",
        &["defense-evasion"],
    ),
    (
        "T1550",
        "Use Alternate Authentication Material",
        &["defense-evasion", "lateral-movement"],
    ),
    (
        "T1550.001",
        "Application Access Token",
        &["defense-evasion", "lateral-movement"],
    ),
    ("T1070", "Indicator Removal", &["defense-evasion"]),
    (
        "T1666",
        "Modify Cloud Resource Hierarchy",
        &["defense-evasion"],
    ),
    ("T1564.008", "Email Hiding Rules", &["defense-evasion"]),
    ("T1110", "Brute Force", &["credential-access"]),
    ("T1110.001", "Password Guessing", &["credential-access"]),
    ("T1110.003", "Password Spraying", &["credential-access"]),
    ("T1110.004", "Credential Stuffing", &["credential-access"]),
    (
        "T1528",
        "Steal Application Access Token",
        &["credential-access"],
    ),
    ("T1539", "Steal Web Session Cookie", &["credential-access"]),
    ("T1552", "Unsecured Credentials", &["credential-access"]),
    ("T1552.001", "Credentials In Files", &["credential-access"]),
    (
        "T1552.005",
        "Cloud Instance Metadata API",
        &["credential-access"],
    ),
    (
        "T1555.006",
        "Cloud Secrets Management Stores",
        &["credential-access"],
    ),
    ("T1606", "Forge Web Credentials", &["credential-access"]),
    ("T1606.002", "SAML Tokens", &["credential-access"]),
    (
        "T1621",
        "Multi-Factor Authentication Request Generation",
        &["credential-access"],
    ),
    ("T1087", "Account Discovery", &["discovery"]),
    ("T1087.004", "Cloud Account", &["discovery"]),
    ("T1069.003", "Cloud Groups", &["discovery"]),
    ("T1580", "Cloud Infrastructure Discovery", &["discovery"]),
    ("T1538", "Cloud Service Dashboard", &["discovery"]),
    ("T1526", "Cloud Service Discovery", &["discovery"]),
    ("T1619", "Cloud Storage Object Discovery", &["discovery"]),
    ("T1201", "Password Policy Discovery", &["discovery"]),
    ("T1046", "Network Service Discovery", &["discovery"]),
    ("T1654", "Log Enumeration", &["discovery"]),
    ("T1518.001", "Security Software Discovery", &["discovery"]),
    ("T1021.007", "Cloud Services", &["lateral-movement"]),
    (
        "T1021.008",
        "Direct Cloud VM Connections",
        &["lateral-movement"],
    ),
    ("T1534", "Internal Spearphishing", &["lateral-movement"]),
    ("T1080", "Taint Shared Content", &["lateral-movement"]),
    ("T1530", "Data from Cloud Storage", &["collection"]),
    (
        "T1213",
        "Data from Information Repositories",
        &["collection"],
    ),
    ("T1114.002", "Remote Email Collection", &["collection"]),
    ("T1114.003", "Email Forwarding Rule", &["collection"]),
    ("T1119", "Automated Collection", &["collection"]),
    ("T1074.002", "Remote Data Staging", &["collection"]),
    ("T1537", "Transfer Data to Cloud Account", &["exfiltration"]),
    ("T1567", "Exfiltration Over Web Service", &["exfiltration"]),
    (
        "T1048",
        "Exfiltration Over Alternative Protocol",
        &["exfiltration"],
    ),
    ("T1020.001", "Traffic Duplication", &["exfiltration"]),
    ("T1485", "Data Destruction", &["impact"]),
    ("T1485.001", "Lifecycle-Triggered Deletion", &["impact"]),
    ("T1486", "Data Encrypted for Impact", &["impact"]),
    ("T1490", "Inhibit System Recovery", &["impact"]),
    ("T1496", "Resource Hijacking", &["impact"]),
    ("T1496.001", "Compute Hijacking", &["impact"]),
    ("T1496.004", "Cloud Service Hijacking", &["impact"]),
    ("T1531", "Account Access Removal", &["impact"]),
    ("T1657", "Financial Theft", &["impact"]),
    ("T1499", "Endpoint Denial of Service", &["impact"]),
    ("T1491.002", "External Defacement", &["impact"]),
];

/// Techniques our rules name that the cloud matrix above does not draw (they belong to other
/// platforms' matrices, containers or Linux hosts): (technique id, name).
pub const OTHER_TECHNIQUES: &[(&str, &str)] = &[
    ("T1021", "Remote Services"),
    ("T1021.004", "SSH"),
    ("T1040", "Network Sniffing"),
    ("T1053", "Scheduled Task/Job"),
    ("T1059", "Command and Scripting Interpreter"),
    ("T1072", "Software Deployment Tools"),
    ("T1098.006", "Additional Container Cluster Roles"),
    ("T1133", "External Remote Services"),
    ("T1213.003", "Code Repositories"),
    ("T1484", "Domain or Tenant Policy Modification"),
    ("T1489", "Service Stop"),
    ("T1546", "Event Triggered Execution"),
    ("T1548", "Abuse Elevation Control Mechanism"),
    ("T1550.004", "Web Session Cookie"),
    ("T1556.009", "Conditional Access Policies"),
    ("T1565", "Data Manipulation"),
    ("T1567.002", "Exfiltration to Cloud Storage"),
    ("T1609", "Container Administration Command"),
    ("T1610", "Deploy Container"),
    ("T1611", "Escape to Host"),
];

/// A technique's name, from the cloud matrix or the others our rules name.
pub fn name(id: &str) -> Option<&'static str> {
    TECHNIQUES
        .iter()
        .find(|t| t.0 == id)
        .map(|t| t.1)
        .or_else(|| OTHER_TECHNIQUES.iter().find(|t| t.0 == id).map(|t| t.1))
}

/// A technique's name as ATT&CK writes it in full: a sub-technique after its parent's
/// (`Valid Accounts: Cloud Accounts`).
pub fn full_name(id: &str) -> Option<String> {
    let own = name(id)?;
    match id.split_once('.').and_then(|(parent, _)| name(parent)) {
        Some(parent) => Some(format!("{parent}: {own}")),
        None => Some(own.to_string()),
    }
}

pub fn tactic_name(id: &str) -> Option<&'static str> {
    TACTICS.iter().find(|t| t.0 == id).map(|t| t.1)
}

/// The technique's page at MITRE: `T1078.004` → `.../techniques/T1078/004`.
pub fn url(id: &str) -> String {
    format!(
        "https://attack.mitre.org/techniques/{}",
        id.replace('.', "/")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_technique_sits_under_known_tactics_once() {
        let mut seen = std::collections::BTreeSet::new();
        for (id, name, tactics) in TECHNIQUES {
            assert!(seen.insert(*id), "{id} twice");
            assert!(!name.is_empty() && !tactics.is_empty(), "{id}");
            for t in *tactics {
                assert!(tactic_name(t).is_some(), "{id}: unknown tactic {t}");
            }
        }
        assert_eq!(name("T1078.004"), Some("Cloud Accounts"));
        assert_eq!(
            full_name("T1078.004").as_deref(),
            Some("Valid Accounts: Cloud Accounts")
        );
        assert_eq!(
            full_name("T1021.004").as_deref(),
            Some("Remote Services: SSH")
        );
        for (id, _) in OTHER_TECHNIQUES {
            assert!(
                TECHNIQUES.iter().all(|t| t.0 != *id),
                "{id} is in the cloud matrix already"
            );
        }
        assert_eq!(
            url("T1078.004"),
            "https://attack.mitre.org/techniques/T1078/004"
        );
    }

    #[test]
    fn every_technique_the_built_in_rules_name_has_a_name() {
        let mut unnamed = std::collections::BTreeSet::new();
        for (path, yaml) in cloudsentinel_detect::builtin_rules() {
            for word in yaml.split(|c: char| c.is_whitespace() || c == '[' || c == ',') {
                let Some(t) = word.trim().strip_prefix("attack.t") else {
                    continue;
                };
                let id = format!("T{}", t.to_ascii_uppercase());
                if name(&id).is_none() {
                    unnamed.insert(format!("{id} ({path})"));
                }
            }
        }
        assert!(unnamed.is_empty(), "techniques without a name: {unnamed:?}");
    }
}
