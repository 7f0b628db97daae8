//! The per-record stage every path runs, offline and online: decode and normalize (the
//! decoders of `cloudsentinel-ingest`), enrich with network context, evaluate the rules.
//!
//! `hunt`, `eval`, the service's HTTP ingest and its directory sources all go through a
//! [`Stage`], so an event is enriched and judged the same way whichever way it came in. What
//! follows (correlation in time order, folding into alerts) is the alerting crate's, and is
//! shared too.
//!
//! ```
//! use cloudsentinel_context::{CloudRanges, NetContext};
//! use cloudsentinel_detect::{RuleSetBuilder, stage::Stage};
//! use cloudsentinel_core::Origin;
//! use cloudsentinel_ingest::{Item, ReadOptions};
//!
//! let rules = RuleSetBuilder::new().build();
//! let net = NetContext::new(Default::default(), CloudRanges::default());
//! let stage = Stage::new(&rules, &net);
//! let line = br#"{"eventVersion":"1.08","eventTime":"2026-11-01T10:00:00Z","eventSource":"iam.amazonaws.com","eventName":"ListUsers","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333"},"eventID":"e1","recipientAccountId":"111122223333"}"#;
//! let mut events = 0;
//! stage.decode_bytes(line, Origin::default(), ReadOptions::default(), &mut |item| {
//!     if let Item::Event(e) = item {
//!         assert!(stage.detect(&e).matches.is_empty());
//!         events += 1;
//!     }
//! });
//! assert_eq!(events, 1);
//! ```

use std::path::Path;

use cloudsentinel_context::NetContext;
use cloudsentinel_core::{Event, Origin};
use cloudsentinel_ingest::reader::{decode_bytes_with, decode_file_with};
use cloudsentinel_ingest::{Item, ReadOptions, Unit};

use crate::{Detections, RuleSet};

/// Decoding, enrichment and the detection rules, borrowed for a run or a batch.
#[derive(Clone, Copy)]
pub struct Stage<'a> {
    rules: &'a RuleSet,
    net: &'a NetContext,
}

impl<'a> Stage<'a> {
    pub fn new(rules: &'a RuleSet, net: &'a NetContext) -> Stage<'a> {
        Stage { rules, net }
    }

    pub fn rules(&self) -> &'a RuleSet {
        self.rules
    }

    /// Adds what the event's record does not say: the network (AS, country, cloud provider) of
    /// its source address.
    pub fn enrich(&self, event: &mut Event) {
        self.net.enrich(event);
    }

    /// The rules on one enriched event: what fires on its own, and what correlations need.
    pub fn detect(&self, event: &Event) -> Detections {
        self.rules.detect(event)
    }

    /// Decodes a buffer (an HTTP body, an object read from a bucket); every event reaches
    /// `sink` enriched.
    pub fn decode_bytes(
        &self,
        bytes: &[u8],
        origin: Origin,
        read: ReadOptions,
        sink: &mut dyn FnMut(Item),
    ) {
        decode_bytes_with(bytes, origin, read, &mut self.enriching(sink));
    }

    /// Decodes one file, every event enriched.
    pub fn decode_file(&self, path: &Path, read: ReadOptions, sink: &mut dyn FnMut(Item)) {
        decode_file_with(path, read, &mut self.enriching(sink));
    }

    /// Decodes one unit of work (a file or a piece of a big JSON Lines file), every event
    /// enriched.
    pub fn decode_unit(&self, unit: &Unit, read: ReadOptions, sink: &mut dyn FnMut(Item)) {
        cloudsentinel_ingest::decode_unit(unit, read, &mut self.enriching(sink));
    }

    fn enriching<'s>(&'s self, sink: &'s mut dyn FnMut(Item)) -> impl FnMut(Item) + 's {
        move |mut item| {
            if let Item::Event(e) = &mut item {
                self.enrich(e);
            }
            sink(item)
        }
    }
}
