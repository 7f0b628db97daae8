//! Guardrails checked before any call: principals no action may touch, and how many actions an
//! account may take per hour.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};

use crate::{Action, RespondError};

/// Principals always protected: the roles AWS Organizations and Control Tower administer member
/// accounts with, and the ones AWS services run as; Google's service agents (the accounts Google
/// services act as in a project: `service-<number>@...`, `<number>@cloudservices...`), which
/// no one should disable or unbind in a hurry.
const ALWAYS_PROTECTED: [&str; 7] = [
    "role/OrganizationAccountAccessRole",
    "role/AWSControlTowerExecution",
    "role/aws-service-role/*",
    "role/AWSReservedSSO_*",
    "serviceAccount/service-*@*.gserviceaccount.com",
    "serviceAccount/*@cloudservices.gserviceaccount.com",
    "serviceAccount/*@gcp-sa-*.gserviceaccount.com",
];

/// The guardrails of one deployment.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Patterns of principals no action touches (`user/break-glass`, `role/cloudsentinel-*`,
    /// `*/admin-*`): `*` matches any run of characters.
    pub protected: Vec<String>,
    /// At most this many actions per hour (0: no limit).
    pub max_per_hour: usize,
    taken: VecDeque<DateTime<Utc>>,
}

impl Guard {
    pub fn new(protected: Vec<String>, max_per_hour: usize) -> Guard {
        Guard {
            protected,
            max_per_hour,
            taken: VecDeque::new(),
        }
    }

    /// Whether the action may run now; counts it when it may.
    pub fn admit(&mut self, action: &Action, now: DateTime<Utc>) -> Result<(), RespondError> {
        for target in action.targets() {
            if let Some(p) = self
                .protected
                .iter()
                .map(String::as_str)
                .chain(ALWAYS_PROTECTED)
                .find(|p| matches(p, &target))
            {
                return Err(RespondError::Refused(format!(
                    "{target} is protected (matches {p:?}): no action touches it"
                )));
            }
        }
        while self
            .taken
            .front()
            .is_some_and(|t| *t <= now - Duration::hours(1))
        {
            self.taken.pop_front();
        }
        if self.max_per_hour > 0 && self.taken.len() >= self.max_per_hour {
            return Err(RespondError::Refused(format!(
                "{} actions in the last hour: the limit is {}; raise it or wait",
                self.taken.len(),
                self.max_per_hour
            )));
        }
        self.taken.push_back(now);
        Ok(())
    }
}

/// `*` matches any run of characters (case-sensitive, as IAM names are).
fn matches(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PrincipalKind;

    fn deny(kind: PrincipalKind, name: &str) -> Action {
        Action::AwsDenyAll {
            kind,
            name: name.into(),
        }
    }

    #[test]
    fn protected_principals_are_refused_with_the_pattern() {
        let mut g = Guard::new(
            vec!["user/break-glass".into(), "role/cloudsentinel-*".into()],
            0,
        );
        let now = Utc::now();
        let e = g
            .admit(&deny(PrincipalKind::User, "break-glass"), now)
            .unwrap_err();
        assert!(
            e.to_string().contains("user/break-glass is protected"),
            "{e}"
        );
        assert!(
            g.admit(&deny(PrincipalKind::Role, "cloudsentinel-reader"), now)
                .is_err()
        );
        assert!(
            g.admit(
                &deny(PrincipalKind::Role, "OrganizationAccountAccessRole"),
                now
            )
            .is_err()
        );
        assert!(g.admit(&deny(PrincipalKind::User, "mallory"), now).is_ok());
        let key = |sa: &str| Action::GcpDisableServiceAccountKey {
            project: "p".into(),
            service_account: sa.into(),
            key_id: "k".into(),
        };
        for agent in [
            "service-123456789012@compute-system.iam.gserviceaccount.com",
            "123456789012@cloudservices.gserviceaccount.com",
        ] {
            assert!(g.admit(&key(agent), now).is_err(), "{agent}");
        }
        assert!(
            g.admit(&key("deployer@p.iam.gserviceaccount.com"), now)
                .is_ok()
        );
        assert!(matches("*/admin-*", "role/admin-ops"));
        assert!(!matches("*/admin-*", "role/ops-admin"));
    }

    #[test]
    fn at_most_n_per_hour() {
        let mut g = Guard::new(Vec::new(), 2);
        let t = Utc::now();
        let a = deny(PrincipalKind::User, "mallory");
        assert!(g.admit(&a, t).is_ok());
        assert!(g.admit(&a, t + Duration::minutes(1)).is_ok());
        let e = g.admit(&a, t + Duration::minutes(2)).unwrap_err();
        assert!(e.to_string().contains("limit is 2"), "{e}");
        assert!(
            g.admit(&a, t + Duration::minutes(61)).is_ok(),
            "an hour later"
        );
    }
}
