//! The floor for `hunt`: how fast one core only parses the same JSON Lines, with no detection.
//!
//! `cargo bench --bench parse_floor -- FILE.jsonl` prints events/s for serde_json into a `Value`
//! (what the pipeline does) and into a borrowed typed struct (the cheapest full parse).

use std::borrow::Cow;
use std::time::Instant;

use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
#[allow(non_snake_case, dead_code)]
struct Identity<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    accessKeyId: Option<Cow<'a, str>>,
    #[serde(borrow)]
    sessionContext: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[allow(non_snake_case, dead_code)]
struct Record<'a> {
    #[serde(borrow)]
    eventTime: Cow<'a, str>,
    #[serde(borrow)]
    eventSource: Cow<'a, str>,
    #[serde(borrow)]
    eventName: Cow<'a, str>,
    #[serde(borrow)]
    awsRegion: Option<Cow<'a, str>>,
    #[serde(borrow)]
    sourceIPAddress: Option<Cow<'a, str>>,
    #[serde(borrow)]
    userAgent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    userIdentity: Option<Identity<'a>>,
    #[serde(borrow)]
    requestParameters: Option<&'a RawValue>,
    #[serde(borrow)]
    responseElements: Option<&'a RawValue>,
    #[serde(borrow)]
    eventID: Option<Cow<'a, str>>,
    #[serde(borrow)]
    errorCode: Option<Cow<'a, str>>,
    readOnly: Option<bool>,
    #[serde(borrow)]
    recipientAccountId: Option<Cow<'a, str>>,
}

fn main() {
    let path = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .expect("usage: parse_floor FILE.jsonl");
    let data = std::fs::read(&path).expect("readable file");
    let lines: Vec<&[u8]> = data
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let n = lines.len();
    let bytes = data.len();

    let t = Instant::now();
    let mut count = 0usize;
    for l in &lines {
        let v: serde_json::Value = serde_json::from_slice(l).expect("valid JSON");
        count += v.as_object().map_or(0, |m| m.len());
    }
    let value_secs = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut names = 0usize;
    for l in &lines {
        let r: Record = serde_json::from_slice(l).expect("valid record");
        names += r.eventName.len();
    }
    let typed_secs = t.elapsed().as_secs_f64();
    std::hint::black_box((count, names));

    println!("events: {n}, {:.0} bytes/event", bytes as f64 / n as f64);
    println!(
        "serde_json -> Value:          {:>9.0} events/s (one core)",
        n as f64 / value_secs
    );
    println!(
        "serde_json -> borrowed struct: {:>9.0} events/s (one core)",
        n as f64 / typed_secs
    );
}
