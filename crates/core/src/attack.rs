//! MITRE ATT&CK® names for the techniques and tactics CloudSentinel's rules and detectors
//! report, for people and for formats that carry names (OCSF). Techniques outside this table
//! are reported by id alone. A test checks the names against the ATT&CK cloud catalogue in
//! `../shared/corpus/attack` when it is there.
//!
//! ATT&CK® is © The MITRE Corporation, used under its license (attack.mitre.org/resources/legal-and-branding/terms-of-use).

/// (id, name): techniques and sub-techniques (a sub-technique's own name, as ATT&CK gives it).
const TECHNIQUES: &[(&str, &str)] = &[
    ("T1020", "Automated Exfiltration"),
    ("T1020.001", "Traffic Duplication"),
    ("T1021", "Remote Services"),
    ("T1021.004", "SSH"),
    ("T1021.007", "Cloud Services"),
    ("T1021.008", "Direct Cloud VM Connections"),
    ("T1040", "Network Sniffing"),
    ("T1046", "Network Service Discovery"),
    ("T1048", "Exfiltration Over Alternative Protocol"),
    ("T1053", "Scheduled Task/Job"),
    ("T1059", "Command and Scripting Interpreter"),
    ("T1059.009", "Cloud API"),
    ("T1069", "Permission Groups Discovery"),
    ("T1069.003", "Cloud Groups"),
    ("T1070", "Indicator Removal"),
    ("T1072", "Software Deployment Tools"),
    ("T1078", "Valid Accounts"),
    ("T1078.004", "Cloud Accounts"),
    ("T1087", "Account Discovery"),
    ("T1087.004", "Cloud Account"),
    ("T1098", "Account Manipulation"),
    ("T1098.001", "Additional Cloud Credentials"),
    ("T1098.003", "Additional Cloud Roles"),
    ("T1098.004", "SSH Authorized Keys"),
    ("T1098.005", "Device Registration"),
    ("T1098.006", "Additional Container Cluster Roles"),
    ("T1110", "Brute Force"),
    ("T1110.001", "Password Guessing"),
    ("T1110.003", "Password Spraying"),
    ("T1133", "External Remote Services"),
    ("T1136", "Create Account"),
    ("T1136.003", "Cloud Account"),
    ("T1190", "Exploit Public-Facing Application"),
    ("T1199", "Trusted Relationship"),
    ("T1213", "Data from Information Repositories"),
    ("T1213.003", "Code Repositories"),
    ("T1484", "Domain or Tenant Policy Modification"),
    ("T1484.002", "Trust Modification"),
    ("T1485", "Data Destruction"),
    ("T1485.001", "Lifecycle-Triggered Deletion"),
    ("T1486", "Data Encrypted for Impact"),
    ("T1489", "Service Stop"),
    ("T1490", "Inhibit System Recovery"),
    ("T1496", "Resource Hijacking"),
    ("T1496.001", "Compute Hijacking"),
    ("T1496.004", "Cloud Service Hijacking"),
    ("T1525", "Implant Internal Image"),
    ("T1526", "Cloud Service Discovery"),
    ("T1528", "Steal Application Access Token"),
    ("T1530", "Data from Cloud Storage"),
    ("T1531", "Account Access Removal"),
    ("T1535", "Unused/Unsupported Cloud Regions"),
    ("T1537", "Transfer Data to Cloud Account"),
    ("T1546", "Event Triggered Execution"),
    ("T1548", "Abuse Elevation Control Mechanism"),
    ("T1548.005", "Temporary Elevated Cloud Access"),
    ("T1550", "Use Alternate Authentication Material"),
    ("T1550.001", "Application Access Token"),
    ("T1550.004", "Web Session Cookie"),
    ("T1552", "Unsecured Credentials"),
    ("T1552.001", "Credentials In Files"),
    ("T1552.005", "Cloud Instance Metadata API"),
    ("T1555", "Credentials from Password Stores"),
    ("T1555.006", "Cloud Secrets Management Stores"),
    ("T1556", "Modify Authentication Process"),
    ("T1556.006", "Multi-Factor Authentication"),
    ("T1556.007", "Hybrid Identity"),
    ("T1556.009", "Conditional Access Policies"),
    ("T1562", "Impair Defenses"),
    ("T1562.001", "Disable or Modify Tools"),
    ("T1562.007", "Disable or Modify Cloud Firewall"),
    ("T1562.008", "Disable or Modify Cloud Logs"),
    ("T1565", "Data Manipulation"),
    ("T1567", "Exfiltration Over Web Service"),
    ("T1567.002", "Exfiltration to Cloud Storage"),
    ("T1578", "Modify Cloud Compute Infrastructure"),
    ("T1578.002", "Create Cloud Instance"),
    ("T1578.005", "Modify Cloud Compute Configurations"),
    ("T1580", "Cloud Infrastructure Discovery"),
    ("T1609", "Container Administration Command"),
    ("T1610", "Deploy Container"),
    ("T1611", "Escape to Host"),
    ("T1619", "Cloud Storage Object Discovery"),
    ("T1621", "Multi-Factor Authentication Request Generation"),
    ("T1648", "Serverless Execution"),
    ("T1651", "Cloud Administration Command"),
    ("T1666", "Modify Cloud Resource Hierarchy"),
];

/// (our tactic name, ATT&CK id, ATT&CK name), in kill-chain order.
const TACTICS: &[(&str, &str, &str)] = &[
    ("reconnaissance", "TA0043", "Reconnaissance"),
    ("resource-development", "TA0042", "Resource Development"),
    ("initial-access", "TA0001", "Initial Access"),
    ("execution", "TA0002", "Execution"),
    ("persistence", "TA0003", "Persistence"),
    ("privilege-escalation", "TA0004", "Privilege Escalation"),
    ("defense-evasion", "TA0005", "Defense Evasion"),
    ("credential-access", "TA0006", "Credential Access"),
    ("discovery", "TA0007", "Discovery"),
    ("lateral-movement", "TA0008", "Lateral Movement"),
    ("collection", "TA0009", "Collection"),
    ("command-and-control", "TA0011", "Command and Control"),
    ("exfiltration", "TA0010", "Exfiltration"),
    ("impact", "TA0040", "Impact"),
];

/// The name of a technique or sub-technique (`T1078.004` → `Cloud Accounts`), when known.
pub fn technique_name(id: &str) -> Option<&'static str> {
    TECHNIQUES
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(id))
        .map(|(_, n)| *n)
}

/// A tactic's ATT&CK id and name from its short name (`defense-evasion` → `TA0005`,
/// `Defense Evasion`).
pub fn tactic(short: &str) -> Option<(&'static str, &'static str)> {
    TACTICS
        .iter()
        .find(|(s, _, _)| s.eq_ignore_ascii_case(short))
        .map(|(_, id, name)| (*id, *name))
}

/// The ATT&CK page of a technique (`T1078.004` → `https://attack.mitre.org/techniques/T1078/004/`).
pub fn technique_url(id: &str) -> String {
    format!(
        "https://attack.mitre.org/techniques/{}/",
        id.replace('.', "/")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_agree_with_the_attack_catalogue() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/corpus/attack/attack_cloud_techniques.json"
        );
        let Ok(text) = std::fs::read_to_string(path) else {
            eprintln!("SKIPPED: {path} is missing; the ATT&CK names were not checked");
            return;
        };
        let catalogue: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        let mut checked = 0;
        for entry in &catalogue {
            let id = entry["id"].as_str().unwrap();
            if let Some(ours) = technique_name(id) {
                assert_eq!(ours, entry["name"].as_str().unwrap(), "{id}");
                checked += 1;
            }
            for (t, tid) in entry["tactics"]
                .as_array()
                .unwrap()
                .iter()
                .zip(entry["tactic_ids"].as_array().unwrap())
            {
                let name = t.as_str().unwrap();
                let short = name.to_ascii_lowercase().replace(' ', "-");
                assert_eq!(
                    tactic(&short),
                    Some((tid.as_str().unwrap(), name)),
                    "{name}"
                );
            }
        }
        assert!(checked > 60, "only {checked} names checked");
    }
}
