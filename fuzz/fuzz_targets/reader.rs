//! The record reader on any bytes (plain or gzip, any shape), with a small record limit so
//! that the long-record paths are reached: it must never panic, and every event it yields
//! must carry an original record that reads back as JSON.
#![no_main]

use cloudsentinel_core::Origin;
use cloudsentinel_ingest::{Item, ReadOptions, reader::decode_bytes_with};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = ReadOptions {
        max_record_bytes: 4096,
        ..ReadOptions::default()
    };
    decode_bytes_with(data, Origin::default(), options, &mut |item| {
        if let Item::Event(e) = item {
            let text = e.raw.text();
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_ok(),
                "an accepted record does not read back: {text:.200}"
            );
        }
    });
});
