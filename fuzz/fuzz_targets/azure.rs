//! The azure decoder: any bytes read with format detection restricted to this provider,
//! so that every input reaches its normalizer. Must never panic.
#![no_main]

use cloudsentinel_core::{Origin, Provider};
use cloudsentinel_ingest::{Item, reader::decode_bytes_with};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    decode_bytes_with(data, Origin::default(), Some(Provider::Azure), &mut |item| {
        if let Item::Event(e) = item {
            // Everything derived from the record must be usable.
            let _ = (e.entity(), e.principal(), e.time.timestamp());
        }
    });
});
