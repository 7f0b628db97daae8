//! The row shape of an event: the indexed columns the store writes ([`NewEvent`]) and reads
//! back ([`EventRow`]), which the behaviour stage learns from too. Here rather than in the store,
//! so that what learns from events does not depend on where they are kept.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Event;

/// One event as written: the indexed columns plus the original record's text.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: String,
    pub time: DateTime<Utc>,
    pub provider: String,
    pub kind: String,
    pub account: Option<String>,
    pub region: Option<String>,
    /// The entity the event is about ([`Event::entity`]), what alerts and baselines key on.
    pub principal: String,
    pub actor_name: Option<String>,
    pub access_key: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub service: String,
    pub operation: String,
    pub read_only: Option<bool>,
    pub success: bool,
    pub error_code: Option<String>,
    pub raw: String,
}

impl NewEvent {
    /// Takes the event apart instead of copying it (the raw text moves when nothing else holds
    /// the record).
    pub fn from_owned(e: Event) -> NewEvent {
        let principal = e.entity();
        let raw = match std::sync::Arc::try_unwrap(e.raw) {
            Ok(r) => r.into_text().into_string(),
            Err(shared) => shared.text().to_string(),
        };
        NewEvent {
            id: e.id,
            time: e.time,
            provider: e.provider.as_str().to_string(),
            kind: e.kind.as_str().to_string(),
            account: e.account,
            region: e.region,
            principal,
            actor_name: e.actor.name,
            access_key: e.actor.access_key_id,
            source_ip: e.source_ip,
            user_agent: e.user_agent,
            service: e.action.service,
            operation: e.action.operation,
            read_only: e.action.read_only,
            success: e.outcome.success,
            error_code: e.outcome.error_code,
            raw,
        }
    }
}

/// One stored event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventRow {
    pub id: String,
    pub time: DateTime<Utc>,
    pub ingested: DateTime<Utc>,
    pub provider: String,
    pub kind: String,
    pub account: Option<String>,
    pub region: Option<String>,
    pub principal: String,
    pub actor_name: Option<String>,
    pub access_key: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub service: String,
    pub operation: String,
    pub read_only: Option<bool>,
    pub success: bool,
    pub error_code: Option<String>,
    /// The provider's original record, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<serde_json::Value>,
}

impl EventRow {
    /// Cuts every text field longer than `max` characters (see
    /// [`crate::text::clip`]) and answers the names of the fields it cut. The
    /// original record (`raw`) is left whole: that is where the full values are.
    pub fn clip_fields(&mut self, max: usize) -> Vec<&'static str> {
        use crate::text::clip;
        let mut cut = Vec::new();
        let mut one = |name: &'static str, v: &mut String| {
            if let std::borrow::Cow::Owned(c) = clip(v, max) {
                *v = c;
                cut.push(name);
            }
        };
        one("id", &mut self.id);
        one("principal", &mut self.principal);
        one("service", &mut self.service);
        one("operation", &mut self.operation);
        for (name, v) in [
            ("account", &mut self.account),
            ("region", &mut self.region),
            ("actor_name", &mut self.actor_name),
            ("access_key", &mut self.access_key),
            ("source_ip", &mut self.source_ip),
            ("user_agent", &mut self.user_agent),
            ("error_code", &mut self.error_code),
        ] {
            if let Some(v) = v {
                one(name, v);
            }
        }
        cut
    }

    /// A copy without the original record.
    pub fn without_raw(&self) -> EventRow {
        EventRow {
            id: self.id.clone(),
            time: self.time,
            ingested: self.ingested,
            provider: self.provider.clone(),
            kind: self.kind.clone(),
            account: self.account.clone(),
            region: self.region.clone(),
            principal: self.principal.clone(),
            actor_name: self.actor_name.clone(),
            access_key: self.access_key.clone(),
            source_ip: self.source_ip.clone(),
            user_agent: self.user_agent.clone(),
            service: self.service.clone(),
            operation: self.operation.clone(),
            read_only: self.read_only,
            success: self.success,
            error_code: self.error_code.clone(),
            raw: None,
        }
    }

    /// The row of an event that is read but not stored (offline hunting): no original record,
    /// and `ingested` is when it was read.
    pub fn unstored(e: &Event) -> EventRow {
        EventRow {
            id: e.id.clone(),
            time: e.time,
            ingested: Utc::now(),
            provider: e.provider.as_str().to_string(),
            kind: e.kind.as_str().to_string(),
            account: e.account.clone(),
            region: e.region.clone(),
            principal: e.entity(),
            actor_name: e.actor.name.clone(),
            access_key: e.actor.access_key_id.clone(),
            source_ip: e.source_ip.clone(),
            user_agent: e.user_agent.clone(),
            service: e.action.service.clone(),
            operation: e.action.operation.clone(),
            read_only: e.action.read_only,
            success: e.outcome.success,
            error_code: e.outcome.error_code.clone(),
            raw: None,
        }
    }
}
