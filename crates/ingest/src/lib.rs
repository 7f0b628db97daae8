//! Decoders: bytes from files, HTTP bodies and queues in, normalized [`Event`]s out.
//!
//! - [`cloudtrail`]: recognises the shapes a CloudTrail record arrives in (S3 delivery files,
//!   JSON Lines, arrays, EventBridge envelopes, Lake/Athena export rows, digest files, Insight
//!   events) and normalizes a record to an [`Event`].
//! - [`reader`]: reads files (plain or gzip, any size) and buffers, streaming records one by one,
//!   and reports every broken record or file with where and why.
//!
//! ```
//! use cloudsentinel_core::Origin;
//! use cloudsentinel_ingest::reader::{decode_bytes, Item};
//! let body = br#"{"Records":[{"eventVersion":"1.08","eventTime":"2024-07-30T21:31:21Z",
//!   "eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging","eventID":"e1"}]}"#;
//! let mut events = Vec::new();
//! decode_bytes(body, Origin::default(), &mut |item| {
//!     if let Item::Event(ev) = item { events.push(ev) }
//! });
//! assert_eq!(events[0].action.operation, "StopLogging");
//! ```
//!
//! [`Event`]: cloudsentinel_core::Event

pub mod azure;
pub mod cloudtrail;
pub mod formats;
pub mod gcp;
pub mod reader;

pub use reader::{
    DEFAULT_MAX_RECORD_BYTES, DecodeError, DecodeStats, Item, ReadOptions, Unit, decode_bytes,
    decode_file, decode_reader, decode_unit, discover, order_by_time, plan_units, span_in_name,
    time_in_name,
};
