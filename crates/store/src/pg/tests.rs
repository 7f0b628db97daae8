//! Tests of what only the PostgreSQL backend has: versioned migrations, day partitions and
//! retention by dropping them, reconnecting after the server closed a connection. The behaviour
//! both backends share is tested once, in `crate::suite`.

use super::*;
use crate::suite::TestDb;

/// An event of alice's.
fn event(id: &str, t: i64) -> NewEvent {
    crate::suite::event(id, t, "alice")
}

fn put(s: &PostgresStore, events: &[NewEvent]) -> CommitOutcome {
    s.commit(events, &mut |_| Derived::default()).unwrap()
}

fn partitions(s: &PostgresStore) -> Vec<i64> {
    list_days(&mut *s.conn().unwrap()).unwrap()
}

#[test]
fn migrations_apply_once_when_processes_start_together() {
    let db = TestDb::create();
    let url = db.url();
    let opened: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PostgresStore::open(&PostgresOptions::new(&url)).is_ok())
        })
        .collect();
    for t in opened {
        assert!(t.join().unwrap());
    }
    let rows = db
        .store()
        .conn()
        .unwrap()
        .query(
            "SELECT version, name FROM schema_migrations ORDER BY version",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), MIGRATIONS.len());
    assert_eq!(rows[0].get::<_, String>(1), "schema");
}

#[test]
fn events_go_to_day_partitions_and_retention_drops_whole_days() {
    let db = TestDb::create();
    let s = db.store();
    let today = day_of(ms(Utc::now()));
    let day = |n: i64| today - n * DAY_MS;
    // Three days, the middle one twice; one event far in the past (the default partition).
    let out = put(
        s,
        &[
            event("a", day(3) + 5),
            event("b", day(2) + 10),
            event("c", day(2) + 20),
            event("d", day(1) + 30),
            event("ancient", 1_000),
        ],
    );
    assert_eq!(out.inserted, 5);
    assert_eq!(partitions(s), vec![day(3), day(2), day(1)]);
    // Every event reads back with its raw record, whichever partition holds it.
    let all = s
        .events(&EventQuery {
            limit: 10,
            with_raw: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.total, 5);
    for e in &all.items {
        assert_eq!(e.raw.as_ref().unwrap()["eventID"], e.id.as_str());
    }
    // Retention up to the middle of day 2: day 3's partition goes whole, day 2 keeps its later
    // event, the ancient one is deleted from the default partition.
    let purged = s.purge_events(time(day(2) + 15)).unwrap();
    assert_eq!(purged, 3);
    assert_eq!(partitions(s), vec![day(2), day(1)]);
    let left: Vec<String> = s
        .events(&EventQuery {
            limit: 10,
            with_raw: true,
            ..Default::default()
        })
        .unwrap()
        .items
        .into_iter()
        .map(|e| {
            assert!(e.raw.is_some(), "{} lost its raw record", e.id);
            e.fields.id
        })
        .collect();
    assert_eq!(left, vec!["d", "c"]);
    // A day that was dropped comes back when its events arrive again.
    assert_eq!(put(s, &[event("a", day(3) + 5)]).inserted, 1);
    assert_eq!(partitions(s), vec![day(3), day(2), day(1)]);
}

#[test]
fn a_day_that_was_in_the_default_partition_moves_into_its_own() {
    let db = TestDb::create();
    let s = db.store();
    let today = day_of(ms(Utc::now()));
    // Stored while the day was outside the window, as a store configured long ago would have.
    let day = today - DAY_MS;
    {
        let mut c = s.conn().unwrap();
        let n = c
            .execute(
                "INSERT INTO raw_blocks (day, id, max_time, codec, data) \
                 VALUES ($1, nextval('raw_blocks_id'), $1, 'lz4', $2)",
                &[&day, &pack_block(&["{\"eventID\":\"old\"}"])],
            )
            .unwrap();
        assert_eq!(n, 1);
        c.execute(
            "INSERT INTO events (id, id_hash, time, ingested, provider, kind, principal, \
             principal_hash, service, operation, success, block, block_idx) \
             VALUES ('old', $1, $2, $2, 'aws', 'cloudtrail', 'alice', 0, 'iam', 'ListUsers', \
             TRUE, currval('raw_blocks_id'), 0)",
            &[&key_hash("old"), &(day + 1)],
        )
        .unwrap();
    }
    assert!(partitions(s).is_empty());
    put(s, &[event("new", day + 2)]);
    assert_eq!(partitions(s), vec![day]);
    let mut c = s.conn().unwrap();
    let in_default: i64 = c
        .query_one("SELECT COUNT(*) FROM events_other", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        in_default, 0,
        "the day's rows moved out of the default partition"
    );
    drop(c);
    let got = s
        .events_by_id(&["old".into()], (time(day), time(day + DAY_MS)), true)
        .unwrap();
    assert_eq!(got[0].raw.as_ref().unwrap()["eventID"], "old");
}

#[test]
fn a_closed_connection_is_replaced_and_an_unreachable_server_is_unavailable() {
    let db = TestDb::create();
    let s = db.store();
    put(s, &[event("a", 1_000)]);
    // The server ends every connection of this database (as a restart would).
    {
        let mut admin = postgres::Client::connect(&crate::suite::postgres_url(), NoTls).unwrap();
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                &[&db.store().config.get_dbname().unwrap_or_default()],
            )
            .unwrap();
    }
    // The pooled connections die as the server gets to them: a call on one fails as
    // unavailable, never as a crash, and drops the idle ones; the store connects again.
    let mut failed = 0;
    let total = loop {
        match s.stats() {
            Ok(st) => break st.events_total,
            Err(e) => {
                assert!(matches!(e, StoreError::Unavailable(_)), "{e}");
                failed += 1;
                assert!(failed <= 3, "still failing after {failed} calls: {e}");
            }
        }
    };
    assert_eq!(total, 1);
    // Once the server has ended them all, the next call reconnects at once.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = s.stats();
    assert_eq!(s.stats().unwrap().events_total, 1);

    let nowhere = PostgresStore::open(&PostgresOptions::new(
        "postgres://postgres@127.0.0.1:1/none?connect_timeout=2",
    ));
    assert!(
        matches!(nowhere, Err(StoreError::Unavailable(_))),
        "{:?}",
        nowhere.err()
    );
}

#[test]
fn one_process_holds_a_lease_until_it_lets_go_or_its_session_ends() {
    let db = TestDb::create();
    let other = PostgresStore::open(&PostgresOptions::new(&db.url())).unwrap();
    let mut first = db.store().try_lease("detect").unwrap().expect("free");
    assert!(first.held());
    assert!(other.try_lease("detect").unwrap().is_none(), "taken");
    assert!(
        other.try_lease("another").unwrap().is_some(),
        "names are apart"
    );
    drop(first);
    let mut second = other.try_lease("detect").unwrap().expect("let go");
    // The server ends the holder's session (a crash, a restart): the lease is gone with it.
    let mut admin = postgres::Client::connect(&crate::suite::postgres_url(), NoTls).unwrap();
    let name = db
        .store()
        .config
        .get_dbname()
        .unwrap_or_default()
        .to_string();
    admin
        .execute(
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_database d              ON d.oid = l.database WHERE l.locktype = 'advisory' AND d.datname = $1",
            &[&name],
        )
        .unwrap();
    assert!(!second.held());
    assert!(db.store().try_lease("detect").unwrap().is_some());
}

#[test]
fn a_store_that_lost_its_lease_commits_nothing() {
    let db = TestDb::create();
    let s = db.store();
    assert_eq!(
        put(s, &[event("free", 1_000)]).inserted,
        1,
        "no lease, no fence"
    );
    let mut lease = s.try_lease("detect").unwrap().expect("free");
    assert_eq!(put(s, &[event("held", 2_000)]).inserted, 1);
    // The holder's session ends (a network partition, say): another process may take over.
    let name = s.config.get_dbname().unwrap_or_default().to_string();
    let mut admin = postgres::Client::connect(&crate::suite::postgres_url(), NoTls).unwrap();
    admin
        .execute(
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_database d \
             ON d.oid = l.database WHERE l.locktype = 'advisory' AND d.datname = $1",
            &[&name],
        )
        .unwrap();
    assert!(!lease.held());
    let other = PostgresStore::open(&PostgresOptions::new(&db.url())).unwrap();
    let _taken = other.try_lease("detect").unwrap().expect("free again");
    let err = s
        .commit(&[event("late", 3_000)], &mut |_| Derived::default())
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(
        s.stats().unwrap().events_total,
        2,
        "nothing of the late batch"
    );
    // Let go, the store commits again (a process of another role, or a later lease).
    drop(lease);
    assert_eq!(put(s, &[event("after", 4_000)]).inserted, 1);
}
