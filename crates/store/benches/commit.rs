//! How fast the SQLite store commits events: `cargo bench -p cloudsentinel-store --bench commit`.
//! Commits of N events (realistic row and raw-record sizes, times in order) into a fresh file,
//! with synchronous FULL and NORMAL. Prints events/s.

use std::time::Instant;

use chrono::{Duration, Utc};
use cloudsentinel_core::row::IndexKey;
use cloudsentinel_store::{Derived, EventFields, EventStore, NewEvent, SqliteOptions, SqliteStore};

fn event(i: usize, shuffled: bool) -> NewEvent {
    // In order, or spread at random over the last five minutes (as several delivery files
    // arriving together are).
    let offset = if shuffled {
        (i as i64).wrapping_mul(2_654_435_761) % 300_000
    } else {
        i as i64 * 7
    };
    let time = Utc::now() - Duration::seconds(3600) + Duration::milliseconds(offset);
    let user = format!("user{}", i % 40);
    let raw = format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","principalId":"AIDA{i:016}","arn":"arn:aws:iam::111122223333:user/{user}","accountId":"111122223333","accessKeyId":"AKIA{:016}","userName":"{user}"}},"eventTime":"{}","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.{}","userAgent":"aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1016-aws exe/x86_64.ubuntu.22 prompt/off command/ec2.describe-instances","requestParameters":{{"instancesSet":{{}},"filterSet":{{}}}},"responseElements":null,"requestID":"{i:08x}-1111-2222-3333-444455556666","eventID":"{i:08x}-aaaa-bbbb-cccc-ddddeeeeffff","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management","tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"ec2.us-east-1.amazonaws.com"}}}}"#,
        i % 40,
        time.to_rfc3339(),
        i % 200
    );
    let principal = format!("arn:aws:iam::111122223333:user/{user} (AKIA{:016})", i % 40);
    NewEvent {
        fields: EventFields {
            id: format!("{i:08x}-aaaa-bbbb-cccc-ddddeeeeffff"),
            time,
            provider: "aws".into(),
            kind: "cloudtrail".into(),
            account: Some("111122223333".into()),
            region: Some("us-east-1".into()),
            principal: principal.clone(),
            actor_name: Some(user.clone()),
            access_key: Some(format!("AKIA{:016}", i % 40)),
            source_ip: Some(format!("198.51.100.{}", i % 200)),
            user_agent: Some("aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1016-aws exe/x86_64.ubuntu.22 prompt/off command/ec2.describe-instances".into()),
            service: "ec2".into(),
            operation: "DescribeInstances".into(),
            read_only: Some(true),
            success: true,
            error_code: None,
        },
        words: cloudsentinel_core::row::index_record(
            &[
                (IndexKey::Principal, principal.clone()),
                (IndexKey::Principal, format!("AKIA{:016}", i % 40)),
                (IndexKey::Principal, user.clone()),
            ],
            &serde_json::from_str(&raw).unwrap(),
        ),
        raw,
        asn: Some(64500),
        country: Some("DE".into()),
    }
}

fn main() {
    let total = 200_000;
    for shuffled in [false, true] {
        let events: Vec<NewEvent> = (0..total).map(|i| event(i, shuffled)).collect();
        for batch in [1000, 5000] {
            for full in [true, false] {
                let dir = tempfile::tempdir().unwrap();
                let store = SqliteStore::open(
                    &dir.path().join("b.db"),
                    &SqliteOptions {
                        synchronous_full: full,
                        readers: 1,
                    },
                )
                .unwrap();
                let start = Instant::now();
                for chunk in events.chunks(batch) {
                    store.commit(chunk, &mut |_| Derived::default()).unwrap();
                }
                let secs = start.elapsed().as_secs_f64();
                // What the background indexer does later (it may have done some already).
                let start = Instant::now();
                while store.index_pending_words(4096).unwrap() > 0 {}
                let index_secs = start.elapsed().as_secs_f64();
                println!(
                    "{}, batch {batch:>5}, synchronous {:<6}: {:>8.0} events/s ({:.1} µs/event), \
                     then the rest of the word index {:.1} µs/event",
                    if shuffled {
                        "times shuffled over 5 min"
                    } else {
                        "times in order          "
                    },
                    if full { "FULL" } else { "NORMAL" },
                    total as f64 / secs,
                    secs * 1e6 / total as f64,
                    index_secs * 1e6 / total as f64
                );
            }
        }
    }
}
