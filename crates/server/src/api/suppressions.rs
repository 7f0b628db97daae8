//! Suppressions of a rule for an entity.

use cloudsentinel_store::SuppressionRecord;

use super::*;

/// The suppressions in force.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SuppressionList {
    pub items: Vec<SuppressionRecord>,
}

/// What `DELETE /api/v1/suppressions/{id}` removed.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SuppressionDeleted {
    /// The suppression's id.
    pub deleted: i64,
}

pub async fn list_suppressions(State(state): State<AppState>) -> ApiResult<Json<SuppressionList>> {
    let items = blocking(&state, |s| s.suppressions(Utc::now())).await?;
    Ok(Json(SuppressionList { items }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewSuppression {
    rule_id: String,
    entity: String,
    reason: String,
    expires_at: Option<DateTime<Utc>>,
    duration_hours: Option<u32>,
}

/// Suppressions last at most this long.
pub(super) const MAX_SUPPRESSION_DAYS: i64 = 90;

pub(super) async fn refresh_suppressions(state: &AppState) -> ApiResult<()> {
    let list = blocking(state, |s| s.suppressions(Utc::now())).await?;
    state
        .suppressions
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .suppressions = list;
    Ok(())
}

pub async fn create_suppression(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<SuppressionRecord>)> {
    let b: NewSuppression = json_body(&body)?;
    if b.reason.trim().is_empty() || b.reason.len() > 2000 {
        return Err(bad("reason: say why (1 to 2000 characters)"));
    }
    if state.rules.rule(&b.rule_id).is_none() && b.rule_id != cloudsentinel_learn::anomaly::RULE_ID
    {
        return Err(bad(format!(
            "rule_id {}: no such rule is loaded",
            b.rule_id
        )));
    }
    if b.entity.is_empty() || b.entity.len() > 512 {
        return Err(bad("entity: 1 to 512 characters"));
    }
    let now = Utc::now();
    let expires = match (b.expires_at, b.duration_hours) {
        (Some(t), None) => t,
        (None, Some(h)) => now + Duration::hours(h as i64),
        _ => {
            return Err(bad(
                "give exactly one of expires_at (RFC 3339) or duration_hours",
            ));
        }
    };
    if expires <= now {
        return Err(bad("expires_at is in the past"));
    }
    if expires > now + Duration::days(MAX_SUPPRESSION_DAYS) {
        return Err(bad(format!(
            "a suppression lasts at most {MAX_SUPPRESSION_DAYS} days"
        )));
    }
    let (rule, entity, reason, author) = (
        b.rule_id.clone(),
        b.entity.clone(),
        b.reason.clone(),
        caller.name.clone(),
    );
    let rec = blocking(&state, move |s| {
        s.add_suppression(&rule, &entity, &reason, &author, expires)
    })
    .await?;
    refresh_suppressions(&state).await?;
    audit(&state, &caller.name, caller.source_ip.clone(), "suppression.created", format!("suppression:{}", rec.id),
          json!({"rule_id": rec.rule_id, "entity": rec.entity, "reason": rec.reason, "expires": rec.expires})).await?;
    Ok((StatusCode::CREATED, Json(rec)))
}

pub async fn delete_suppression(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<SuppressionDeleted>> {
    if !blocking(&state, move |s| s.delete_suppression(id)).await? {
        return Err(not_found(format!("suppression {id}")));
    }
    refresh_suppressions(&state).await?;
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "suppression.deleted",
        format!("suppression:{id}"),
        json!({}),
    )
    .await?;
    Ok(Json(SuppressionDeleted { deleted: id }))
}
