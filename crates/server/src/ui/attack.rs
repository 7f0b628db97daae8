//! The cloud part of the MITRE ATT&CK® Enterprise matrix (IaaS, SaaS, Identity Provider and
//! Office Suite platforms): tactics in matrix order and the techniques the dashboard names and
//! draws. Technique ids and names are MITRE's: © The MITRE Corporation; reproduced under the
//! ATT&CK terms of use (https://attack.mitre.org/resources/legal-and-branding/terms-of-use/).
//! Techniques outside this list still show, by id, wherever a rule or alert names them.

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

pub fn name(id: &str) -> Option<&'static str> {
    TECHNIQUES.iter().find(|t| t.0 == id).map(|t| t.1)
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
            url("T1078.004"),
            "https://attack.mitre.org/techniques/T1078/004"
        );
    }
}
