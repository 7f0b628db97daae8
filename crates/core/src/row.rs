//! The row shape of an event: the indexed columns the store writes ([`NewEvent`]) and reads
//! back ([`EventRow`]), which the behaviour stage learns from too. Here rather than in the store,
//! so that what learns from events does not depend on where they are kept.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Event;

/// The indexed columns of an event: what the store writes ([`NewEvent`]) and reads back
/// ([`EventRow`]), the one list of them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct EventFields {
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
}

impl EventFields {
    /// An event's columns, copied.
    pub fn of(e: &Event) -> EventFields {
        EventFields {
            id: e.id.clone(),
            time: e.time,
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
        }
    }
}

/// One event as written: the indexed columns plus the original record's text.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub fields: EventFields,
    pub raw: String,
}

impl std::ops::Deref for NewEvent {
    type Target = EventFields;
    fn deref(&self) -> &EventFields {
        &self.fields
    }
}

impl std::ops::DerefMut for NewEvent {
    fn deref_mut(&mut self) -> &mut EventFields {
        &mut self.fields
    }
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
            fields: EventFields {
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
            },
            raw,
        }
    }
}

/// One stored event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct EventRow {
    #[serde(flatten)]
    pub fields: EventFields,
    pub ingested: DateTime<Utc>,
    /// The provider's original record, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<serde_json::Value>,
}

impl std::ops::Deref for EventRow {
    type Target = EventFields;
    fn deref(&self) -> &EventFields {
        &self.fields
    }
}

impl std::ops::DerefMut for EventRow {
    fn deref_mut(&mut self) -> &mut EventFields {
        &mut self.fields
    }
}

impl EventRow {
    /// Cuts every text field longer than `max` characters (see
    /// [`crate::text::clip`]) and answers the names of the fields it cut. The
    /// original record (`raw`) is left whole: that is where the full values are.
    pub fn clip_fields(&mut self, max: usize) -> Vec<&'static str> {
        use crate::text::clip;
        let f = &mut self.fields;
        let mut cut = Vec::new();
        let mut one = |name: &'static str, v: &mut String| {
            if let std::borrow::Cow::Owned(c) = clip(v, max) {
                *v = c;
                cut.push(name);
            }
        };
        one("id", &mut f.id);
        one("principal", &mut f.principal);
        one("service", &mut f.service);
        one("operation", &mut f.operation);
        for (name, v) in [
            ("account", &mut f.account),
            ("region", &mut f.region),
            ("actor_name", &mut f.actor_name),
            ("access_key", &mut f.access_key),
            ("source_ip", &mut f.source_ip),
            ("user_agent", &mut f.user_agent),
            ("error_code", &mut f.error_code),
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
            fields: self.fields.clone(),
            ingested: self.ingested,
            raw: None,
        }
    }

    /// The row of an event that is read but not stored (offline hunting): no original record,
    /// and `ingested` is when it was read.
    pub fn unstored(e: &Event) -> EventRow {
        EventRow {
            fields: EventFields::of(e),
            ingested: Utc::now(),
            raw: None,
        }
    }
}
