//! One store test suite, run against every backend: SQLite on a temporary file and PostgreSQL
//! in a fresh database (dropped afterwards) on the server `CLOUDSENTINEL_TEST_POSTGRES` names,
//! `postgres://postgres@127.0.0.1:5432/postgres` by default. A test here is written once, as a
//! function of `&dyn Store`; `suite!` makes it a test per backend.

use crate::codec::time;
use crate::*;
use chrono::Utc;
use cloudsentinel_core::Level;

/// Commits events, then the given alerts, whatever is new.
fn put(s: &dyn Store, events: Vec<NewEvent>, alerts: Vec<AlertRecord>) -> CommitOutcome {
    let mut alerts = Some(alerts);
    s.commit(&events, &mut |_| Derived {
        alerts: alerts.take().unwrap_or_default(),
        ..Derived::default()
    })
    .unwrap()
}

pub(crate) fn event(id: &str, t: i64, principal: &str) -> NewEvent {
    NewEvent {
        fields: EventFields {
            id: id.into(),
            time: time(t),
            provider: "aws".into(),
            kind: "cloudtrail".into(),
            account: Some("111122223333".into()),
            region: Some("us-east-1".into()),
            principal: principal.into(),
            actor_name: None,
            access_key: None,
            source_ip: Some("198.51.100.7".into()),
            user_agent: None,
            service: "iam".into(),
            operation: "ListUsers".into(),
            read_only: Some(true),
            success: true,
            error_code: None,
        },
        raw: format!("{{\"eventID\":\"{id}\",\"n\":{t}}}"),
        asn: None,
        country: None,
        words: String::new(),
    }
}

fn alert(id: i64, rule: &str, entity: &str, t: i64) -> AlertRecord {
    AlertRecord {
        id,
        kind: "rule".into(),
        rule_id: rule.into(),
        title: format!("title of {rule}"),
        level: Level::High,
        techniques: vec!["T1078.004".into()],
        tactics: vec!["initial-access".into()],
        entity: entity.into(),
        account: None,
        access_key: None,
        source_ip: Some("198.51.100.7".into()),
        first_seen: time(t),
        last_seen: time(t),
        created: time(t),
        updated: time(t),
        count: 1,
        event_ids: vec!["e1".into()],
        explanation: "because".into(),
        status: AlertStatus::Open,
        assignee: None,
        incident_id: None,
        verdict: None,
        tp_score: None,
    }
}

fn events_round_trip_with_their_raw_record_and_duplicates_are_ignored(s: &dyn Store) {
    let out = put(
        s,
        vec![event("e1", 1000, "alice"), event("e2", 2000, "bob")],
        vec![],
    );
    assert_eq!(
        out,
        CommitOutcome {
            inserted: 2,
            duplicates: 0
        }
    );
    let again = put(
        s,
        vec![event("e2", 2000, "bob"), event("e3", 3000, "bob")],
        vec![],
    );
    assert_eq!(
        again,
        CommitOutcome {
            inserted: 1,
            duplicates: 1
        }
    );
    let got = s
        .events_by_id(&["e3".into(), "e1".into()], (time(0), time(5000)), true)
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].raw.as_ref().unwrap()["n"], 3000);
    assert_eq!(got[1].raw.as_ref().unwrap()["eventID"], "e1");
    let page = s
        .events(&EventQuery {
            principal: Some("bob".into()),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.items[0].id, "e3", "newest first");
    // Outside the time window, an id is not found.
    assert!(
        s.events_by_id(&["e1".into()], (time(1001), time(5000)), false)
            .unwrap()
            .is_empty()
    );
    // The commit tells which events were new.
    let mut seen = Vec::new();
    s.commit(
        &[event("e1", 1000, "alice"), event("e9", 9000, "bob")],
        &mut |f| {
            seen = f.to_vec();
            Derived::default()
        },
    )
    .unwrap();
    assert_eq!(seen, vec![false, true]);
}

fn an_object_id_is_named_by_its_latest_event_and_incidents_keep_their_analysts_work(s: &dyn Store) {
    let oid = "33361d06-a301-4ece-a45e-d689386f7c4b";
    let mut old = event("e1", 1000, oid);
    old.actor_name = Some("old.name@corp.example".into());
    let mut new = event("e2", 2000, oid);
    new.actor_name = Some("svc-automation@corp.example".into());
    let mut unnamed = event("e3", 3000, oid);
    unnamed.actor_name = None;
    put(
        s,
        vec![old, new, unnamed, event("e4", 1000, "alice")],
        vec![],
    );
    let names = s
        .actor_names(&[oid.to_string(), "alice".to_string(), "nobody".to_string()])
        .unwrap();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(names[oid], "svc-automation@corp.example");

    // Incidents: the analyst's fields and notes, which a pipeline update leaves alone.
    let inc = IncidentRecord {
        id: 1,
        key: oid.into(),
        entity: oid.into(),
        account: None,
        title: "t".into(),
        level: Level::High,
        status: AlertStatus::Open,
        first_seen: time(1000),
        last_seen: time(2000),
        created: time(1000),
        updated: time(1000),
        alert_count: 1,
        tactics: vec![],
        techniques: vec![],
        assignee: None,
        severity: None,
        close_reason: None,
        join_keys: vec!["ip:185.156.73.54".into()],
    };
    let batch = |i: &IncidentRecord| {
        s.commit(&[], &mut |_| Derived {
            incidents: vec![i.clone()],
            ..Derived::default()
        })
        .unwrap()
    };
    batch(&inc);
    let worked = s
        .update_incident(
            1,
            &IncidentUpdate {
                status: Some(AlertStatus::Resolved),
                assignee: Some(Some("kim".into())),
                severity: Some(Some(Level::Critical)),
                close_reason: Some(Some("contained".into())),
                deliveries: vec![delivery("pager", 1, "resolved")],
            },
        )
        .unwrap()
        .unwrap();
    assert_eq!(worked.assignee.as_deref(), Some("kim"));
    assert_eq!(
        s.pending_deliveries("pager", 10).unwrap().len(),
        1,
        "the status message is queued with the status"
    );
    let mut later = inc.clone();
    later.alert_count = 3;
    batch(&later);
    let after = s.incident(1).unwrap().unwrap();
    assert_eq!(after.alert_count, 3);
    assert_eq!(after.status, AlertStatus::Resolved);
    assert_eq!(after.assignee.as_deref(), Some("kim"));
    assert_eq!(after.severity, Some(Level::Critical));
    assert_eq!(after.close_reason.as_deref(), Some("contained"));
    assert_eq!(after.join_keys, vec!["ip:185.156.73.54"]);
    assert!(s.add_incident_comment(1, "kim", "done").unwrap().is_some());
    assert!(
        s.add_incident_comment(99, "kim", "no such")
            .unwrap()
            .is_none()
    );
    assert_eq!(s.incident_comments(1).unwrap()[0].text, "done");
    assert!(
        s.update_incident(99, &IncidentUpdate::default())
            .unwrap()
            .is_none()
    );
}

fn pipeline_updates_keep_analyst_fields(s: &dyn Store) {
    put(s, vec![], vec![alert(1, "r1", "alice", 1000)]);
    s.update_alert(
        1,
        Some(AlertStatus::Investigating),
        Some(Some("carol".into())),
        &[],
    )
    .unwrap();
    let mut later = alert(1, "r1", "alice", 1000);
    later.count = 5;
    later.last_seen = time(9000);
    put(s, vec![], vec![later]);
    let a = s.alert(1).unwrap().unwrap();
    assert_eq!(a.count, 5);
    assert_eq!(a.status, AlertStatus::Investigating);
    assert_eq!(a.assignee.as_deref(), Some("carol"));
}

fn delivery(sink: &str, alert_id: i64, change: &str) -> NewDelivery {
    NewDelivery {
        sink: sink.into(),
        alert_id: Some(alert_id),
        change: change.into(),
        payload: format!("{{\"alert\":{alert_id}}}"),
    }
}

fn the_outbox_is_written_with_its_alert_and_kept_in_order_per_sink(s: &dyn Store) {
    s.commit(&[], &mut |_| Derived {
        alerts: vec![alert(1, "r1", "alice", 1000)],
        deliveries: vec![
            delivery("hook", 1, "created"),
            delivery("mail", 1, "created"),
        ],
        ..Derived::default()
    })
    .unwrap();
    // A status change queues its messages in the same transaction; the same status again
    // queues nothing.
    s.update_alert(
        1,
        Some(AlertStatus::Resolved),
        None,
        &[delivery("hook", 1, "resolved")],
    )
    .unwrap();
    s.update_alert(
        1,
        Some(AlertStatus::Resolved),
        None,
        &[delivery("hook", 1, "resolved")],
    )
    .unwrap();
    let hook = s.pending_deliveries("hook", 10).unwrap();
    assert_eq!(
        hook.iter().map(|d| d.change.as_str()).collect::<Vec<_>>(),
        ["created", "resolved"]
    );
    assert_eq!(hook[0].payload, "{\"alert\":1}");
    let t = Utc::now();
    s.record_delivery(
        hook[0].id,
        t,
        &DeliveryResult::Retry {
            error: "HTTP 503".into(),
            next_attempt: t + chrono::Duration::seconds(2),
        },
    )
    .unwrap();
    s.record_delivery(hook[0].id, t, &DeliveryResult::Sent)
        .unwrap();
    s.record_delivery(
        hook[1].id,
        t,
        &DeliveryResult::Dead {
            error: "HTTP 400".into(),
        },
    )
    .unwrap();
    assert!(s.pending_deliveries("hook", 10).unwrap().is_empty());
    let d = s.delivery(hook[0].id).unwrap().unwrap();
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Sent, 2));
    assert!(d.latency_ms.is_some());
    let summary = s.delivery_summary().unwrap();
    let h = summary.iter().find(|x| x.sink == "hook").unwrap();
    assert_eq!((h.pending, h.sent, h.dead, h.retried), (0, 1, 1, 1));
    assert_eq!(h.last_error.as_deref(), Some("HTTP 400"));
    let m = summary.iter().find(|x| x.sink == "mail").unwrap();
    assert_eq!((m.pending, m.last_failure), (1, None));
    let page = s
        .deliveries(&DeliveryQuery {
            alert_id: Some(1),
            status: Some(DeliveryStatus::Dead),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((page.total, page.items[0].change.as_str()), (1, "resolved"));
}

fn alert_filters_and_technique_parent_match(s: &dyn Store) {
    let mut a2 = alert(2, "r2", "bob", 5000);
    a2.level = Level::Low;
    a2.techniques = vec!["T1098".into()];
    put(s, vec![], vec![alert(1, "r1", "alice", 1000), a2]);
    let q = |f: &dyn Fn(&mut AlertQuery)| {
        let mut q = AlertQuery {
            limit: 50,
            ..Default::default()
        };
        f(&mut q);
        s.alerts(&q)
            .unwrap()
            .items
            .iter()
            .map(|a| a.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(q(&|q| q.technique = Some("T1078".into())), vec![1]);
    assert_eq!(q(&|q| q.min_level = Some(Level::Medium)), vec![1]);
    assert_eq!(q(&|q| q.text = Some("BOB".into())), vec![2]);
    assert_eq!(q(&|q| q.text = Some("%".into())), Vec::<i64>::new());
    assert_eq!(
        q(&|q| {
            q.sort = AlertSort::LastSeen;
            q.descending = true
        }),
        vec![2, 1]
    );
}

/// The queue's default order: critical first, then the alert that arrived last, whatever its
/// events' time (a backfilled high alert about last month comes before yesterday's high one).
fn the_attention_order_is_level_then_newest_arrival(s: &dyn Store) {
    let mut old_high = alert(1, "r1", "alice", 1000);
    old_high.created = time(9_000);
    let mut backfilled_high = alert(2, "r1", "bob", 500);
    backfilled_high.created = time(9_500);
    let mut critical = alert(3, "r2", "carol", 800);
    critical.level = Level::Critical;
    critical.created = time(2_000);
    let mut low = alert(4, "r3", "dave", 9_000);
    low.level = Level::Low;
    low.created = time(9_900);
    let mut tie = alert(5, "r1", "erin", 1000);
    tie.created = time(9_000);
    put(
        s,
        vec![],
        vec![old_high, backfilled_high, critical, low, tie],
    );
    let ids = |descending: bool, offset: u64| {
        s.alerts(&AlertQuery {
            sort: AlertSort::Attention,
            descending,
            limit: 3,
            offset,
            ..Default::default()
        })
        .unwrap()
        .items
        .iter()
        .map(|a| a.id)
        .collect::<Vec<_>>()
    };
    assert_eq!(ids(true, 0), vec![3, 2, 5]);
    assert_eq!(ids(true, 3), vec![1, 4], "pages go on in the same order");
    assert_eq!(ids(false, 0), vec![4, 1, 5]);
}

fn suppression_of_a_confirmed_attack_is_refused(s: &dyn Store) {
    put(s, vec![], vec![alert(1, "r1", "alice", 1000)]);
    let later = Utc::now() + chrono::Duration::days(1);
    s.add_suppression("r1", "alice", "noisy", "ann", later)
        .unwrap();
    s.add_feedback(1, Verdict::TruePositive, "real", "ann")
        .unwrap();
    let err = s
        .add_suppression("r1", "alice", "noisy", "ann", later)
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(s.suppressions(Utc::now()).unwrap().len(), 1);
}

fn models_are_versioned_and_one_per_name_is_active(s: &dyn Store) {
    let new = |name: &str| NewModel {
        name: name.into(),
        schema: 1,
        trained_by: "alice".into(),
        window_from: None,
        window_to: None,
        params: serde_json::json!({"trees": 100}),
    };
    let a1 = s.create_model(&new("anomaly")).unwrap();
    let a2 = s.create_model(&new("anomaly")).unwrap();
    let f1 = s.create_model(&new("feedback")).unwrap();
    assert_eq!((a1.version, a2.version, f1.version), (1, 2, 1));
    assert_eq!(a1.status, "training");
    // Not ready yet: refused.
    assert!(matches!(
        s.activate_model(a1.id),
        Err(StoreError::Conflict(_))
    ));
    s.model_progress(a1.id, 0.5, "halfway").unwrap();
    assert_eq!(s.model(a1.id, false).unwrap().unwrap().message, "halfway");
    for (id, bytes) in [(a1.id, b"one".to_vec()), (a2.id, b"two".to_vec())] {
        s.finish_model(
            id,
            &ModelResult {
                status: "ready",
                message: "done".into(),
                samples: 10,
                metrics: serde_json::json!({"threshold": 0.6}),
                artefact: Some(bytes),
            },
        )
        .unwrap();
    }
    assert!(s.active_model("anomaly").unwrap().is_none());
    s.activate_model(a1.id).unwrap().unwrap();
    let on = s.activate_model(a2.id).unwrap().unwrap();
    assert_eq!(on.artefact.as_deref(), Some(&b"two"[..]));
    let active = s.active_model("anomaly").unwrap().unwrap();
    assert_eq!(active.id, a2.id);
    let all = s.models(Some("anomaly")).unwrap();
    assert_eq!(all.iter().filter(|m| m.active).count(), 1);
    assert!(
        all.iter().all(|m| m.artefact.is_none()),
        "lists carry no artefacts"
    );
    assert_eq!(all[0].metrics["threshold"], 0.6);
    assert_eq!(s.models(None).unwrap().len(), 3);
    s.deactivate_models("anomaly").unwrap();
    assert!(s.active_model("anomaly").unwrap().is_none());
    assert!(s.activate_model(9999).unwrap().is_none());
}

fn state_and_alert_features_round_trip(s: &dyn Store) {
    assert!(s.get_state("baselines").unwrap().is_none());
    s.put_state("baselines", b"abc").unwrap();
    s.put_state("baselines", b"abcd").unwrap();
    assert_eq!(s.get_state("baselines").unwrap().unwrap(), b"abcd");
    let mut a = Some(vec![alert(1, "r", "e", 1_000)]);
    s.commit(&[], &mut |_| Derived {
        alerts: a.take().unwrap(),
        features: vec![AlertFeatures {
            alert_id: 1,
            schema: 1,
            values: vec![1.0, 0.5],
            anomaly_score: Some(0.7),
        }],
        ..Derived::default()
    })
    .unwrap();
    let f = s.alert_features(&[1, 2]).unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].values, vec![1.0, 0.5]);
    assert_eq!(f[0].anomaly_score, Some(0.7));
    s.set_tp_scores(&[(1, 0.25)]).unwrap();
    assert_eq!(s.alert(1).unwrap().unwrap().tp_score, Some(0.25));
    // A pipeline update without a score keeps the one it has.
    put(s, vec![], vec![alert(1, "r", "e", 2_000)]);
    assert_eq!(s.alert(1).unwrap().unwrap().tp_score, Some(0.25));
}

fn scan_visits_events_in_time_order_across_pages(s: &dyn Store) {
    let events: Vec<NewEvent> = (0..12_000)
        .map(|i| event(&format!("e{i}"), 1_000_000 - (i % 7_000) * 10, "p"))
        .collect();
    put(s, events, vec![]);
    let mut last = i64::MIN;
    let mut seen = std::collections::HashSet::new();
    let n = s
        .scan_events(None, None, &mut |e| {
            assert!(e.time.timestamp_millis() >= last);
            last = e.time.timestamp_millis();
            seen.insert(e.fields.id);
            true
        })
        .unwrap();
    assert_eq!((n, seen.len()), (12_000, 12_000));
    let mut k = 0;
    s.scan_events(None, None, &mut |_| {
        k += 1;
        k < 10
    })
    .unwrap();
    assert_eq!(k, 10, "stops when asked");
}

fn retention_drops_old_events_and_their_blocks(s: &dyn Store) {
    put(s, vec![event("old", 1000, "a")], vec![]);
    put(s, vec![event("new", 50_000, "a")], vec![]);
    assert_eq!(s.purge_events(time(10_000)).unwrap(), 1);
    let left = s
        .events(&EventQuery {
            limit: 10,
            with_raw: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(left.items.len(), 1);
    assert!(left.items[0].raw.is_some());
}

fn an_unfinished_commit_stores_nothing_and_frees_the_writer(s: &dyn Store) {
    {
        let tx = s
            .begin_commit(&[event("e1", 1000, "alice"), event("e2", 2000, "bob")])
            .unwrap();
        assert_eq!(tx.fresh(), [true, true]);
        // Dropped: the derive step failed, say.
    }
    assert_eq!(s.stats().unwrap().events_total, 0);
    let tx = s.begin_commit(&[event("e1", 1000, "alice")]).unwrap();
    assert_eq!(tx.fresh(), [true], "the rolled-back event is new again");
    let out = tx
        .finish(Derived {
            alerts: vec![alert(1, "r1", "alice", 1000)],
            ..Derived::default()
        })
        .unwrap();
    assert_eq!(out.inserted, 1);
    assert_eq!(s.stats().unwrap().events_total, 1);
    assert!(s.alert(1).unwrap().is_some());
}

fn a_response_takes_each_step_once(s: &dyn Store) {
    let r = s
        .propose_response(&NewResponse {
            alert_id: 7,
            playbook: Some("p".into()),
            action: serde_json::json!({"action": "aws.deny-all", "kind": "User", "name": "m"}),
            account: Some("111122223333".into()),
            proposed_by: "ann".into(),
        })
        .unwrap();
    assert_eq!(r.status, "proposed");
    let now = Utc::now();
    let approve = ResponseStep::Approved { by: "bob".into() };
    let a = s
        .step_response(r.id, &["proposed"], &approve, now)
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.status.as_str(), a.approved_by.as_deref()),
        ("approved", Some("bob"))
    );
    assert!(
        s.step_response(r.id, &["proposed"], &approve, now)
            .unwrap()
            .is_none(),
        "approved once"
    );
    let ran = ResponseStep::Ran {
        by: "bob".into(),
        before: Some(serde_json::json!({"kind": "inline_policy", "document": null})),
        changed: true,
        verified: Some(true),
        result: None,
    };
    let done = s
        .step_response(r.id, &["approved"], &ran, now)
        .unwrap()
        .unwrap();
    assert_eq!(done.status, "done");
    assert_eq!(done.before.unwrap()["kind"], "inline_policy");
    assert!(
        s.step_response(r.id, &["approved"], &ran, now)
            .unwrap()
            .is_none(),
        "run once"
    );
    assert_eq!(
        s.responses_run_since(Some("111122223333"), now - chrono::Duration::hours(1))
            .unwrap(),
        1
    );
    assert_eq!(s.responses(Some(7), 10).unwrap().len(), 1);
}

fn the_latest_events_of_a_search_come_newest_first_up_to_the_cap(s: &dyn Store) {
    let mut events: Vec<NewEvent> = (0..6)
        .map(|i| event(&format!("e{i}"), 1000 + i, "alice (AKIA1)"))
        .collect();
    events.push(event("other", 5000, "bob"));
    put(s, events, vec![]);
    let q = EventQuery {
        principal: Some("alice (AKIA1)".into()),
        limit: 1,
        offset: 3,
        ..EventQuery::default()
    };
    let ids = |cap: u32| {
        s.latest_events(&q, cap)
            .unwrap()
            .iter()
            .map(|e| e.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(3),
        vec!["e5", "e4", "e3"],
        "limit and offset are ignored"
    );
    assert_eq!(ids(100).len(), 6);
    assert!(
        s.latest_events(&q, 3)
            .unwrap()
            .iter()
            .all(|e| e.raw.is_none())
    );
}

fn an_entitys_alerts_and_incidents_are_found_by_address_and_key(s: &dyn Store) {
    let mut a1 = alert(1, "r1", "bob (AKIA1)", 1000);
    a1.source_ip = Some("203.0.113.50".into());
    let mut a2 = alert(2, "r2", "carol", 2000);
    a2.source_ip = Some("203.0.113.51".into());
    let a3 = alert(3, "r3", "dave", 3000);
    put(s, vec![], vec![a1, a2, a3]);
    let ids = |v: Vec<AlertRecord>| v.iter().map(|a| a.id).collect::<Vec<_>>();
    let from = |ips: &[&str]| {
        let ips: Vec<String> = ips.iter().map(|i| i.to_string()).collect();
        ids(s.alerts_from_addresses(&ips, 10).unwrap())
    };
    assert_eq!(from(&["203.0.113.50"]), vec![1]);
    assert_eq!(
        from(&["203.0.113.50", "203.0.113.51"]),
        vec![2, 1],
        "newest first"
    );
    assert_eq!(
        from(&["203.0.113.5"]),
        Vec::<i64>::new(),
        "whole addresses only"
    );
    assert_eq!(from(&[]), Vec::<i64>::new());

    let incident = |id: i64, entity: &str, t: i64, join_keys: &[&str]| IncidentRecord {
        id,
        key: entity.into(),
        entity: entity.into(),
        account: None,
        title: format!("incident {id}"),
        level: Level::High,
        status: AlertStatus::Open,
        first_seen: time(t),
        last_seen: time(t),
        created: time(t),
        updated: time(t),
        alert_count: 1,
        tactics: vec![],
        techniques: vec![],
        assignee: None,
        severity: None,
        close_reason: None,
        join_keys: join_keys.iter().map(|k| k.to_string()).collect(),
    };
    s.commit(&[], &mut |_| Derived {
        incidents: vec![
            incident(
                1,
                "bob",
                1000,
                &["AKIA1", "bob", "ip:203.0.113.50", "created:eve"],
            ),
            incident(2, "carol", 2000, &["carol", "ip:203.0.113.500"]),
            incident(3, "dave \"the\" admin", 3000, &["person:dave@example.com"]),
        ],
        ..Derived::default()
    })
    .unwrap();
    let with = |keys: &[&str]| {
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        s.incidents_with_keys(&keys, 10)
            .unwrap()
            .iter()
            .map(|i| i.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(with(&["ip:203.0.113.50"]), vec![1], "a join key, whole");
    assert_eq!(with(&["AKIA1"]), vec![1]);
    assert_eq!(with(&["created:eve"]), vec![1]);
    assert_eq!(
        with(&["carol", "bob"]),
        vec![2, 1],
        "by entity, newest first"
    );
    assert_eq!(with(&["dave \"the\" admin"]), vec![3], "quotes in a name");
    assert_eq!(with(&["person:dave@example.com"]), vec![3]);
    assert_eq!(with(&["eve", "ip:203.0.113"]), Vec::<i64>::new());
    assert_eq!(with(&[]), Vec::<i64>::new());
}

/// Makes each named test a `#[test]` per backend.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[test]
                fn $name() {
                    let (_dir, s) = crate::suite::sqlite();
                    super::$name(&s);
                }
            )*
        }
        mod postgres_backend {
            $(
                #[test]
                fn $name() {
                    let db = crate::suite::TestDb::create();
                    super::$name(db.store());
                }
            )*
        }
    };
}

fn overview_and_rule_counts_follow_their_range(s: &dyn Store) {
    let mut a3 = alert(3, "r1", "carol", 9_000_000);
    a3.level = Level::Critical;
    a3.created = time(9_000_500);
    let mut a4 = alert(4, "r2", "dave", 9_500_000);
    a4.level = Level::Low;
    put(
        s,
        vec![],
        vec![
            alert(1, "r1", "alice", 1000),
            alert(2, "r1", "bob", 5_000_000),
            a3,
            a4,
        ],
    );
    // Counts per level and status over a range, and all of them.
    let all = s.alert_counts(None).unwrap();
    assert_eq!(
        all.alerts,
        vec![
            (Level::Critical, AlertStatus::Open, 1),
            (Level::High, AlertStatus::Open, 2),
            (Level::Low, AlertStatus::Open, 1)
        ]
    );
    let recent = s.alert_counts(Some(time(5_000_000))).unwrap();
    assert_eq!(recent.alerts.iter().map(|c| c.2).sum::<u64>(), 3);
    assert!(recent.incidents.is_empty());
    // Open high and critical alerts nobody owns, newest arrival first, until someone takes one.
    let un = s.unassigned_alerts(Level::High, 10).unwrap();
    assert_eq!(un.total, 3);
    assert_eq!(
        un.items.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![3, 2, 1]
    );
    s.update_alert(3, None, Some(Some("ann".into())), &[])
        .unwrap();
    s.update_alert(2, Some(AlertStatus::Acknowledged), None, &[])
        .unwrap();
    let un = s.unassigned_alerts(Level::High, 1).unwrap();
    assert_eq!((un.total, un.items.len(), un.items[0].id), (1, 1, 1));
    // One rule's alerts per bucket of first sighting.
    let trend = s
        .rule_trend("r1", time(0), time(10_000_000), 3_000)
        .unwrap();
    assert_eq!(trend.len(), 4);
    assert_eq!(
        trend.iter().map(|p| p.1).collect::<Vec<_>>(),
        vec![1, 1, 0, 1]
    );
    assert_eq!(trend[1].0, time(3_000_000));
    // Verdicts per rule: the latest per alert counts.
    s.add_feedback(1, Verdict::TruePositive, "real", "ann")
        .unwrap();
    s.add_feedback(2, Verdict::TruePositive, "real", "ann")
        .unwrap();
    s.add_feedback(2, Verdict::FalsePositive, "no, a test", "ann")
        .unwrap();
    s.add_feedback(4, Verdict::Benign, "expected", "ann")
        .unwrap();
    let v = s.rule_verdicts(None, None).unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(
        (
            &v[0].rule_id[..],
            v[0].alerts,
            v[0].true_positive,
            v[0].false_positive,
            v[0].benign
        ),
        ("r1", 3, 1, 1, 0)
    );
    assert_eq!(v[0].false_positive_rate(), Some(0.5));
    assert_eq!(v[0].last_seen, Some(time(9_000_000)));
    assert_eq!((v[1].benign, v[1].false_positive_rate()), (1, Some(0.0)));
    let one = s.rule_verdicts(Some(time(5_000_000)), Some("r1")).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(
        (one[0].alerts, one[0].true_positive, one[0].false_positive),
        (2, 0, 1)
    );
    assert!(s.rule_verdicts(None, Some("nope")).unwrap().is_empty());
}

/// Events over time are counted per minute as they are stored: the overview's chart reads the
/// counts, and they agree with the events, duplicates left out, after retention too.
fn event_counts_over_time_agree_with_the_events(s: &dyn Store) {
    const MIN: i64 = 60_000;
    let base = 1_767_225_600_000; // a whole day (2026-01-01T00:00Z)
    // 3 in the first minute, 1 in the third, 2 half-way through the last (partial) minute.
    let times = [
        5_000,
        20_000,
        59_999,
        2 * MIN + 1,
        10 * MIN + 30_000,
        10 * MIN + 40_000,
    ];
    let events: Vec<NewEvent> = times
        .iter()
        .enumerate()
        .map(|(i, t)| event(&format!("m{i}"), base + t, "a"))
        .collect();
    put(s, events.clone(), vec![]);
    assert_eq!(
        put(s, events, vec![]).duplicates,
        6,
        "a retried batch counts nothing"
    );
    let buckets = |from: i64, to: i64, bucket_secs: i64| -> Vec<u64> {
        s.trends(time(from), time(to), bucket_secs)
            .unwrap()
            .iter()
            .map(|p| p.events)
            .collect()
    };
    // Minute buckets from a whole minute, to part-way through the eleventh minute.
    let got = buckets(base, base + 10 * MIN + 35_000, 60);
    assert_eq!(got, vec![3, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
    // Five-minute buckets, and counting one by one from a part minute, agree.
    assert_eq!(buckets(base, base + 11 * MIN, 300), vec![4, 0, 2]);
    assert_eq!(buckets(base + 10_000, base + 11 * MIN, 300), vec![3, 0, 2]);
    // Retention in the middle of the first minute: what is left is counted again.
    s.purge_events(time(base + 30_000)).unwrap();
    assert_eq!(buckets(base, base + 11 * MIN, 300), vec![2, 0, 2]);
}

suite!(
    event_counts_over_time_agree_with_the_events,
    events_round_trip_with_their_raw_record_and_duplicates_are_ignored,
    an_object_id_is_named_by_its_latest_event_and_incidents_keep_their_analysts_work,
    pipeline_updates_keep_analyst_fields,
    the_outbox_is_written_with_its_alert_and_kept_in_order_per_sink,
    alert_filters_and_technique_parent_match,
    suppression_of_a_confirmed_attack_is_refused,
    models_are_versioned_and_one_per_name_is_active,
    state_and_alert_features_round_trip,
    scan_visits_events_in_time_order_across_pages,
    retention_drops_old_events_and_their_blocks,
    an_unfinished_commit_stores_nothing_and_frees_the_writer,
    a_response_takes_each_step_once,
    an_entitys_alerts_and_incidents_are_found_by_address_and_key,
    the_latest_events_of_a_search_come_newest_first_up_to_the_cap,
    overview_and_rule_counts_follow_their_range,
    the_attention_order_is_level_then_newest_arrival,
    the_search_language_finds_the_same_on_both_backends,
    retention_forgets_the_words_of_purged_events,
);

/// An event indexed as the pipeline indexes one (`cloudsentinel_core::row`): a principal with
/// an access key, a record, the source address's AS and country.
fn indexed(
    id: &str,
    t: i64,
    (arn, key, name): (&str, &str, &str),
    ip: &str,
    net: Option<(u32, &str)>,
    (service, op, ok): (&str, &str, bool),
    record: serde_json::Value,
) -> NewEvent {
    use cloudsentinel_core::row::{IndexKey, index_record};
    let mut e = event(id, t, &format!("{arn} ({key})"));
    e.fields.access_key = Some(key.into());
    e.fields.actor_name = Some(name.into());
    e.fields.source_ip = Some(ip.into());
    e.fields.service = service.into();
    e.fields.operation = op.into();
    e.fields.success = ok;
    let keys = vec![
        (IndexKey::Principal, e.principal.clone()),
        (IndexKey::Principal, arn.to_string()),
        (IndexKey::Principal, key.to_string()),
        (IndexKey::Principal, name.to_string()),
    ];
    if let Some((asn, country)) = net {
        e.asn = Some(asn);
        e.country = Some(country.into());
    }
    let mut record = record;
    record["eventID"] = serde_json::json!(id);
    e.words = index_record(&keys, &record);
    e.raw = record.to_string();
    e
}

pub(crate) fn the_search_language_finds_the_same_on_both_backends(s: &dyn Store) {
    use serde_json::json;
    let alice = ("arn:aws:iam::111122223333:user/alice", "AKIAALICE", "alice");
    let bob = ("arn:aws:iam::111122223333:user/bob", "AKIABOB", "bob");
    put(
        s,
        vec![
            indexed(
                "create-mallory",
                1000,
                alice,
                "203.0.113.9",
                Some((64500, "RO")),
                ("iam", "CreateUser", true),
                json!({"requestParameters": {"userName": "mallory"},
                       "responseElements": {"user": {"arn": "arn:aws:iam::111122223333:user/mallory"}}}),
            ),
            indexed(
                "denied",
                2000,
                alice,
                "203.0.113.9",
                Some((64500, "RO")),
                ("s3", "GetObject", false),
                json!({"requestParameters": {"bucketName": "Payroll-Exports", "key": "2026/q3.csv"},
                       "errorMessage": "Access Denied"}),
            ),
            indexed(
                "bob-lists",
                3000,
                bob,
                "198.51.100.7",
                Some((64501, "DE")),
                ("iam", "ListUsers", true),
                json!({"userAgent": "terraform/1.9"}),
            ),
            // Stored before the index existed: no tokens, no network context.
            event("old", 500, "arn:aws:iam::111122223333:user/carol"),
        ],
        vec![],
    );
    let term = |field: EventField, value: &str, negate: bool| EventTerm {
        field,
        value: value.into(),
        negate,
    };
    let ids = |terms: Vec<EventTerm>| -> Vec<String> {
        let page = s
            .events(&EventQuery {
                terms,
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(page.total as usize, page.items.len());
        page.items.into_iter().map(|e| e.fields.id).collect()
    };
    use EventField::*;
    // A principal by its bare ARN, its access key, its name, or its display string.
    for who in [
        "arn:aws:iam::111122223333:user/alice",
        "AKIAALICE",
        "alice",
        "arn:aws:iam::111122223333:user/alice (AKIAALICE)",
    ] {
        assert_eq!(
            ids(vec![term(Principal, who, false)]),
            ["denied", "create-mallory"],
            "{who}"
        );
    }
    // Old events are still found by their display string.
    assert_eq!(
        ids(vec![term(
            Principal,
            "arn:aws:iam::111122223333:user/carol",
            false
        )]),
        ["old"]
    );
    // A user name finds the call that created the user, as text and as a resource.
    assert_eq!(ids(vec![term(Text, "Mallory", false)]), ["create-mallory"]);
    assert_eq!(
        ids(vec![term(Resource, "mallory", false)]),
        ["create-mallory"]
    );
    assert_eq!(
        ids(vec![term(
            Resource,
            "arn:aws:iam::111122223333:user/mallory",
            false
        )]),
        ["create-mallory"]
    );
    assert_eq!(
        ids(vec![term(Resource, "payroll-exports", false)]),
        ["denied"]
    );
    // Words in order, in one value.
    assert_eq!(ids(vec![term(Text, "access denied", false)]), ["denied"]);
    assert!(ids(vec![term(Text, "denied access", false)]).is_empty());
    assert!(ids(vec![term(Text, "exports/payroll", false)]).is_empty());
    assert_eq!(ids(vec![term(Text, "payroll-exports", false)]), ["denied"]);
    assert_eq!(ids(vec![term(Text, "terraform", false)]), ["bob-lists"]);
    // Network context, addresses, actions, outcomes.
    assert_eq!(ids(vec![term(As, "64501", false)]), ["bob-lists"]);
    assert_eq!(
        ids(vec![term(Country, "ro", false)]),
        ["denied", "create-mallory"]
    );
    assert_eq!(
        ids(vec![term(Ip, "198.51.100.7", false)]),
        ["bob-lists", "old"]
    );
    assert_eq!(
        ids(vec![term(Action, "createuser", false)]),
        ["create-mallory"]
    );
    assert_eq!(
        ids(vec![term(Action, "IAM:ListUsers", false)]),
        ["bob-lists", "old"]
    );
    assert_eq!(ids(vec![term(Outcome, "failure", false)]), ["denied"]);
    assert_eq!(ids(vec![term(Account, "111122223333", false)]).len(), 4);
    // Terms AND together; a negated term excludes, and missing values do not match it.
    assert_eq!(
        ids(vec![
            term(Country, "RO", false),
            term(Outcome, "success", false)
        ]),
        ["create-mallory"]
    );
    assert_eq!(ids(vec![term(Country, "RO", true)]), ["bob-lists", "old"]);
    assert_eq!(
        ids(vec![
            term(Text, "mallory", true),
            term(Principal, "alice", false)
        ]),
        ["denied"]
    );
    // The fields the entity pages filter on.
    let page = s
        .events(&EventQuery {
            resource: Some("Payroll-Exports".into()),
            asn: Some(64500),
            country: Some("RO".into()),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].asn, Some(64500));
    assert_eq!(page.items[0].country.as_deref(), Some("RO"));

    // The digest counts the matches per bucket and per value.
    let d = s
        .event_digest(
            &EventQuery::default(),
            1000,
            Some(Histogram {
                from: Some(time(0)),
                to: Some(time(4000)),
                buckets: 4,
            }),
            5,
        )
        .unwrap();
    assert_eq!(d.counted, 4);
    assert!(!d.capped);
    assert_eq!(d.histogram, vec![1, 1, 1, 1]);
    assert_eq!(d.span, Some((time(500), time(3000))));
    let facet = |f: EventField| {
        d.facets
            .iter()
            .find(|x| x.field == f)
            .unwrap()
            .values
            .iter()
            .map(|k| (k.key.clone(), k.count))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        facet(Ip), // ties in the order of their values
        [
            ("198.51.100.7".to_string(), 2),
            ("203.0.113.9".to_string(), 2)
        ]
    );
    assert_eq!(
        facet(As),
        [("64500".to_string(), 2), ("64501".to_string(), 1)]
    );
    assert_eq!(
        facet(Outcome),
        [("success".to_string(), 3), ("failure".to_string(), 1)]
    );
    assert_eq!(facet(Action)[0], ("iam:ListUsers".to_string(), 2));
    // Past the cap: the newest are counted and the digest says there are more.
    let d = s.event_digest(&EventQuery::default(), 2, None, 5).unwrap();
    assert_eq!((d.counted, d.capped), (2, true));
    assert_eq!(d.span, Some((time(2000), time(3000))));
    // An open range is the span of the counted matches.
    let d = s
        .event_digest(
            &EventQuery::default(),
            1000,
            Some(Histogram {
                from: None,
                to: None,
                buckets: 4,
            }),
            5,
        )
        .unwrap();
    assert_eq!(d.histogram_range, Some((time(500), time(3001))));
    assert_eq!(d.histogram, vec![2, 0, 1, 1]);
}

fn retention_forgets_the_words_of_purged_events(s: &dyn Store) {
    use serde_json::json;
    let who = ("arn:aws:iam::1:user/a", "AKIAA", "a");
    let rec = json!({"requestParameters": {"bucketName": "gone"}});
    put(
        s,
        vec![
            indexed(
                "a",
                1000,
                who,
                "10.0.0.1",
                None,
                ("s3", "GetObject", true),
                rec.clone(),
            ),
            indexed(
                "b",
                9000,
                who,
                "10.0.0.1",
                None,
                ("s3", "GetObject", true),
                rec,
            ),
        ],
        vec![],
    );
    assert_eq!(s.purge_events(time(5000)).unwrap(), 1);
    let page = s
        .events(&EventQuery {
            resource: Some("gone".into()),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].id, "b");
}

pub(crate) fn sqlite() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("t.db"), &SqliteOptions::default()).unwrap();
    (dir, s)
}

/// The PostgreSQL server the tests use.
pub(crate) fn postgres_url() -> String {
    std::env::var("CLOUDSENTINEL_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database on the test server, with the store open on it; dropped with it.
pub(crate) struct TestDb {
    store: Option<PostgresStore>,
    name: String,
    admin: String,
}

impl TestDb {
    pub(crate) fn create() -> TestDb {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let admin = postgres_url();
        let name = format!(
            "cs_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {admin} ({e}). The store tests run every test \
                 against PostgreSQL too: start it (bash .ci/run does) or point \
                 CLOUDSENTINEL_TEST_POSTGRES at one."
            )
        });
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let url = with_database(&admin, &name);
        let store = PostgresStore::open(&PostgresOptions::new(&url)).unwrap();
        TestDb {
            store: Some(store),
            name,
            admin,
        }
    }

    pub(crate) fn store(&self) -> &PostgresStore {
        self.store.as_ref().expect("open until drop")
    }

    pub(crate) fn url(&self) -> String {
        with_database(&self.admin, &self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        drop(self.store.take());
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// The same server URL with another database.
fn with_database(url: &str, db: &str) -> String {
    if !url.contains("://") {
        return format!("{url} dbname={db}");
    }
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let at = base
        .rfind('/')
        .filter(|i| *i > base.find("//").map(|j| j + 1).unwrap_or(0));
    match at {
        Some(i) => format!("{}/{db}{query}", &base[..i]),
        None => format!("{base}/{db}{query}"),
    }
}
