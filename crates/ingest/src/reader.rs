//! Reading files and byte buffers into events without holding a large input in memory.
//!
//! Two modes, chosen by looking at the input:
//! - **lines**: JSON Lines (one value per line). A broken line is reported and skipped; the
//!   rest goes through. A CloudTrail S3 delivery file written on one line also takes this path.
//! - **document**: one (possibly huge, possibly pretty-printed) JSON document or array, or several
//!   concatenated documents. `{"Records": [...]}` and top-level arrays are streamed record by
//!   record; a syntax error ends that file and is reported with its line and column.
//!
//! Memory stays bounded whatever the input ([`ReadOptions`]): gzip is undone once (a gzip
//! stream inside a gzip stream is not unpacked again), and one record (a line, an array
//! element, a whole document) longer than `max_record_bytes` is reported as a bad record
//! instead of being held in memory.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use cloudsentinel_core::{Event, LogKind, Origin, RawRecord};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::cloudtrail;
use crate::formats::{self, Hint, Shape};

/// Inputs up to this size (after decompression) are read whole and parsed from memory, which is
/// faster; larger ones are streamed.
const IN_MEMORY_LIMIT: usize = 64 * 1024 * 1024;

/// Records longer than this many bytes are refused by default (CloudTrail caps an event at
/// 256 KB, Cloud Logging an entry at 256 KB; Azure records are smaller still).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 4 * 1024 * 1024;

/// How an input is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Restrict format detection to one provider.
    pub hint: Hint,
    /// Longest record accepted, in bytes: a longer line, array element or document is
    /// reported as a bad record and never held in memory whole.
    pub max_record_bytes: usize,
    /// Undo gzip when the input starts with gzip's magic bytes. Off for input that was
    /// decompressed already (an HTTP body), so that gzip inside gzip is not unpacked again.
    pub decompress: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            hint: None,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            decompress: true,
        }
    }
}

impl From<Hint> for ReadOptions {
    fn from(hint: Hint) -> Self {
        ReadOptions {
            hint,
            ..ReadOptions::default()
        }
    }
}

/// One thing found in the input.
#[derive(Debug)]
pub enum Item {
    /// A normalized event.
    Event(Box<Event>),
    /// A CloudTrail digest file (integrity proof), recognised and skipped.
    Digest,
    /// A CloudTrail Insights event, recognised and skipped.
    Insight,
    /// A record or file that could not be read, with where and why.
    Error(DecodeError),
}

/// A record or file that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {reason}")]
pub struct DecodeError {
    pub origin: Origin,
    pub reason: String,
}

/// Counters for one decode run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DecodeStats {
    pub events: u64,
    pub digests: u64,
    pub insights: u64,
    pub errors: u64,
}

impl DecodeStats {
    pub fn add(&mut self, other: &DecodeStats) {
        self.events += other.events;
        self.digests += other.digests;
        self.insights += other.insights;
        self.errors += other.errors;
    }

    pub fn count(&mut self, item: &Item) {
        match item {
            Item::Event(_) => self.events += 1,
            Item::Digest => self.digests += 1,
            Item::Insight => self.insights += 1,
            Item::Error(_) => self.errors += 1,
        }
    }
}

/// Turns top-level values into items, keeping count of the record index for error messages.
struct Emitter<'a> {
    origin: Origin,
    hint: Hint,
    max_record: usize,
    /// Bytes read since the last record, when streaming from a reader (see [`Capped`]).
    since_record: Option<std::rc::Rc<std::cell::Cell<usize>>>,
    record_index: u64,
    line: Option<u64>,
    sink: &'a mut dyn FnMut(Item),
}

impl Emitter<'_> {
    fn error(&mut self, reason: String) {
        let origin = Origin {
            record_index: Some(self.record_index),
            line: self.line,
            ..self.origin.clone()
        };
        (self.sink)(Item::Error(DecodeError { origin, reason }));
    }

    fn skip(&mut self, reason: String) {
        self.error(reason);
        self.record_index += 1;
    }

    /// A record or line too long to take in, reported and skipped.
    fn too_long(&mut self, len: usize) {
        let max = self.max_record;
        self.skip(format!(
            "record of {len} bytes is longer than the limit of {max} bytes"
        ));
    }

    fn record(&mut self, record: RawRecord, kind: LogKind) {
        if let Some(c) = &self.since_record {
            c.set(0);
        }
        match formats::normalize(record, kind) {
            Ok(ev) => (self.sink)(Item::Event(Box::new(ev))),
            Err(reason) => self.error(reason),
        }
        self.record_index += 1;
    }

    /// One object: a record, a container of records, or something else.
    fn object(&mut self, object: RawRecord) {
        match formats::classify(object, self.hint) {
            Shape::Record(r, kind) => self.record(r, kind),
            Shape::Records(items) => {
                for item in items {
                    match item {
                        Ok(r) => self.element(r),
                        Err(reason) => self.skip(reason),
                    }
                }
            }
            Shape::Digest => (self.sink)(Item::Digest),
            Shape::Insight => (self.sink)(Item::Insight),
            Shape::Unknown(reason) => self.skip(reason),
        }
    }

    /// One element of a record list: a record (or an envelope around one), never another list.
    fn element(&mut self, element: RawRecord) {
        match formats::classify(element, self.hint) {
            Shape::Record(r, kind) => self.record(r, kind),
            Shape::Digest => (self.sink)(Item::Digest),
            Shape::Insight => (self.sink)(Item::Insight),
            Shape::Records(_) => self.skip("nested record list inside a record list".into()),
            Shape::Unknown(reason) => self.skip(reason),
        }
    }

    /// The JSON text of one element of a top-level array or Records list.
    fn element_text(&mut self, text: String) {
        if let Some(c) = &self.since_record {
            c.set(0);
        }
        if text.len() > self.max_record {
            return self.too_long(text.len());
        }
        match RawRecord::parse(text) {
            Ok(r) => self.element(r),
            Err(e) => self.skip(e.to_string()),
        }
    }

    /// One top-level JSON text (a line, or a whole document).
    fn top_text(&mut self, text: &str) {
        if text.len() > self.max_record && !text.starts_with('[') {
            return self.too_long(text.len());
        }
        if text.starts_with('[') {
            match cloudtrail::parse_array(text) {
                Ok(items) => {
                    for item in items {
                        match item {
                            Ok(r) => self.element(r),
                            Err(reason) => self.skip(reason),
                        }
                    }
                }
                Err(reason) => self.skip(reason),
            }
            return;
        }
        match RawRecord::parse(text) {
            Ok(r) => self.object(r),
            Err(e) => self.skip(format!("invalid JSON: {e}")),
        }
    }
}

/// Deserializes one top-level value, streaming the elements of arrays and of a `Records` list
/// into the emitter instead of building the whole document.
struct TopLevel<'a, 'b>(&'a mut Emitter<'b>);

impl<'de> DeserializeSeed<'de> for TopLevel<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopLevel<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a CloudTrail record, a Records list or an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<Box<RawValue>>()? {
            self.0.element_text(String::from(v.get()));
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Keep the other keys as raw text, to rebuild the object when it is not a container.
        let mut rest: Vec<(String, Box<RawValue>)> = Vec::new();
        let mut streamed = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "Records" {
                map.next_value_seed(RecordList(&mut *self.0))?;
                streamed = true;
            } else {
                rest.push((key, map.next_value()?));
            }
        }
        if !streamed {
            let mut text = String::from("{");
            for (i, (k, v)) in rest.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(&serde_json::to_string(k).unwrap_or_default());
                text.push(':');
                text.push_str(v.get());
            }
            text.push('}');
            self.0.top_text(&text);
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.0
            .skip("expected a JSON object, found a boolean".into());
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.0.skip("expected a JSON object, found a number".into());
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.0.skip("expected a JSON object, found a number".into());
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.0.skip("expected a JSON object, found a number".into());
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.0.skip("expected a JSON object, found a string".into());
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.skip("expected a JSON object, found null".into());
        Ok(())
    }
}

/// The `Records` list of an S3 delivery file, streamed element by element.
struct RecordList<'a, 'b>(&'a mut Emitter<'b>);

impl<'de> DeserializeSeed<'de> for RecordList<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordList<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of CloudTrail records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<Box<RawValue>>()? {
            self.0.element_text(String::from(v.get()));
        }
        Ok(())
    }
}

fn stream_documents<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    emitter: &mut Emitter<'_>,
) {
    loop {
        match de.end() {
            Ok(()) => return,
            Err(e) if e.is_syntax() || e.is_data() => {
                // More input follows: read the next document.
            }
            Err(e) => {
                emitter.error(format!("read failed: {e}"));
                return;
            }
        }
        if let Err(e) = TopLevel(emitter).deserialize(&mut de) {
            let reason = if e.is_io() {
                format!("{e}; the rest of this input was not read")
            } else if e.is_eof() {
                format!("truncated input: {e}")
            } else {
                format!("invalid JSON: {e}")
            };
            emitter.error(reason);
            return;
        }
    }
}

/// How one line was read by [`read_line_capped`].
enum Line {
    /// End of input.
    End,
    /// A whole line (with its newline, if any) is in the buffer.
    Whole,
    /// The line is longer than the cap: the buffer holds its first `cap` bytes and the reader
    /// stands right after them.
    Overlong,
}

/// `read_until(b'\n')` that never holds more than `cap` bytes of one line.
fn read_line_capped<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<Line> {
    loop {
        let avail = match reader.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(if buf.is_empty() {
                Line::End
            } else {
                Line::Whole
            });
        }
        let room = cap - buf.len();
        let newline = avail.iter().position(|&b| b == b'\n');
        let (take, done) = match newline {
            Some(i) if i < room => (i + 1, true),
            _ if avail.len() <= room => (avail.len(), false),
            _ => (room, false),
        };
        buf.extend_from_slice(&avail[..take]);
        reader.consume(take);
        if done {
            return Ok(Line::Whole);
        }
        if buf.len() >= cap {
            return Ok(Line::Overlong);
        }
    }
}

/// The rest of the current line of a reader (the newline is consumed, not returned).
struct RestOfLine<'r, R> {
    inner: &'r mut R,
    done: bool,
}

impl<R: BufRead> Read for RestOfLine<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.done || out.is_empty() {
            return Ok(0);
        }
        let avail = self.inner.fill_buf()?;
        if avail.is_empty() {
            self.done = true;
            return Ok(0);
        }
        let (n, consumed) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) if i <= out.len() => {
                self.done = true;
                (i, i + 1)
            }
            _ => {
                let n = avail.len().min(out.len());
                (n, n)
            }
        };
        out[..n].copy_from_slice(&avail[..n]);
        self.inner.consume(consumed);
        Ok(n)
    }
}

/// A reader that fails once more than `max` bytes were read since the emitter last took a
/// record, so that no single record is ever held in memory past the limit.
struct Capped<R> {
    inner: R,
    since: std::rc::Rc<std::cell::Cell<usize>>,
    max: usize,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let since = self.since.get();
        if since >= self.max {
            return Err(std::io::Error::other(format!(
                "a record is longer than the limit of {} bytes",
                self.max
            )));
        }
        let room = (self.max - since).min(out.len());
        let n = self.inner.read(&mut out[..room])?;
        self.since.set(since + n);
        Ok(n)
    }
}

/// Streams documents from a reader, each record held to the emitter's limit.
fn stream_documents_capped(reader: impl Read, emitter: &mut Emitter<'_>) {
    let since = std::rc::Rc::new(std::cell::Cell::new(0));
    let previous = emitter.since_record.replace(std::rc::Rc::clone(&since));
    let capped = Capped {
        inner: reader,
        since,
        max: emitter.max_record,
    };
    stream_documents(serde_json::Deserializer::from_reader(capped), emitter);
    emitter.since_record = previous;
}

/// Whether the input's first line is a CSV header: comma-separated column names, no JSON.
fn looks_like_csv_header(head: &[u8]) -> bool {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = std::str::from_utf8(line)
        .unwrap_or_default()
        .trim_start_matches('\u{feff}');
    let columns: Vec<&str> = line.trim_end().split(',').collect();
    columns.len() >= 3
        && columns.iter().all(|c| {
            let c = c.trim_matches('"');
            !c.is_empty()
                && c.len() <= 128
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.@ []-".contains(&b))
        })
}

/// A CSV table with a header row: each row becomes an object of its columns' text (a column
/// holding JSON, as exports write `dynamic` columns, stays a string for the format to parse).
/// Empty cells are left out. Rows are capped like any record.
fn decode_csv<R: Read>(reader: R, emitter: &mut Emitter<'_>) {
    let mut rows = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    // The Azure portal names a time column `TimeGenerated [UTC]` and writes its cells as
    // `11/21/2026, 9:14:27.521 AM`: the column keeps its name, the cell becomes RFC 3339.
    let mut utc = Vec::new();
    let header: Vec<String> = match rows.headers() {
        Ok(h) => h
            .iter()
            .map(|c| {
                let c = c.trim_start_matches('\u{feff}');
                let name = c.strip_suffix(" [UTC]");
                utc.push(name.is_some());
                name.unwrap_or(c).to_string()
            })
            .collect(),
        Err(e) => {
            emitter.line = Some(1);
            emitter.error(format!("CSV header: {e}"));
            return;
        }
    };
    let mut record = csv::StringRecord::new();
    loop {
        match rows.read_record(&mut record) {
            Ok(false) => return,
            Ok(true) => {}
            Err(e) => {
                emitter.line = e.position().map(|p| p.line());
                emitter.error(format!("CSV: {e}"));
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return;
                }
                continue;
            }
        }
        emitter.line = record.position().map(|p| p.line());
        if record.as_slice().len() > emitter.max_record {
            emitter.too_long(record.as_slice().len());
            continue;
        }
        let mut object = serde_json::Map::new();
        for ((name, cell), utc) in header.iter().zip(record.iter()).zip(&utc) {
            if cell.is_empty() {
                continue;
            }
            let value = match utc.then(|| portal_time(cell)).flatten() {
                Some(t) => t,
                None => cell.to_string(),
            };
            object.insert(name.clone(), serde_json::Value::from(value));
        }
        match RawRecord::from_value(&serde_json::Value::Object(object)) {
            Ok(r) => emitter.object(r),
            Err(e) => emitter.error(e.to_string()),
        }
    }
}

/// `11/21/2026, 9:14:27.521 AM` (the Azure portal's CSV time) as `2026-11-21T09:14:27.521Z`.
fn portal_time(cell: &str) -> Option<String> {
    chrono::NaiveDateTime::parse_from_str(cell, "%m/%d/%Y, %I:%M:%S%.f %p")
        .ok()
        .map(|t| {
            t.and_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        })
}

fn decode_lines<R: BufRead>(mut reader: R, emitter: &mut Emitter<'_>) {
    let mut buf = Vec::with_capacity(4096);
    let mut line_no = 0u64;
    loop {
        buf.clear();
        match read_line_capped(&mut reader, &mut buf, emitter.max_record) {
            Ok(Line::End) => return,
            Ok(Line::Whole) => {}
            Ok(Line::Overlong) => {
                // One line past the limit: a container (a delivery file's `Records`, an array)
                // is streamed record by record, each held to the limit; a single record that
                // long is reported. Either way the line is never held whole.
                line_no += 1;
                emitter.line = Some(line_no);
                let head = std::mem::take(&mut buf);
                let mut rest = RestOfLine {
                    inner: &mut reader,
                    done: false,
                };
                stream_documents_capped(
                    BufReader::new(Cursor::new(head).chain(&mut rest)),
                    emitter,
                );
                if let Err(e) = std::io::copy(&mut rest, &mut std::io::sink()) {
                    emitter.error(format!("read failed: {e}"));
                    return;
                }
                continue;
            }
            Err(e) => {
                emitter.line = Some(line_no + 1);
                emitter.error(format!("read failed: {e}"));
                return;
            }
        }
        line_no += 1;
        let line = buf.trim_ascii();
        if line.is_empty() {
            continue;
        }
        emitter.line = Some(line_no);
        match std::str::from_utf8(line) {
            Ok(text) => emitter.top_text(text),
            Err(e) => emitter.skip(format!("not UTF-8 at byte {}", e.valid_up_to())),
        }
    }
}

/// True when the first line of `head` is a complete JSON value (so the input is JSON Lines).
/// A first line longer than a few MiB is taken for one big document (an S3 delivery file).
fn first_line_is_complete(head: &[u8]) -> bool {
    const LONGEST_FIRST_LINE: usize = 4 * 1024 * 1024;
    let window = &head[..head.len().min(LONGEST_FIRST_LINE)];
    let Some(end) = memchr::memchr(b'\n', window) else {
        return false;
    };
    let line = head[..end].trim_ascii();
    !line.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok()
}

/// Decodes everything in `reader` (plain or gzip) and hands each item to `sink`.
pub fn decode_reader(reader: impl Read, origin: Origin, sink: &mut dyn FnMut(Item)) {
    decode_reader_with(reader, origin, None, sink)
}

/// Like [`decode_reader`], with format detection restricted to one provider.
pub fn decode_reader_with(
    reader: impl Read,
    origin: Origin,
    options: impl Into<ReadOptions>,
    sink: &mut dyn FnMut(Item),
) {
    let options = options.into();
    let mut emitter = Emitter {
        hint: options.hint,
        max_record: options.max_record_bytes.max(1),
        since_record: None,
        origin,
        record_index: 0,
        line: None,
        sink,
    };
    let mut reader = BufReader::with_capacity(256 * 1024, reader);
    let is_gzip = match reader.fill_buf() {
        Ok(head) => options.decompress && head.starts_with(&[0x1f, 0x8b]),
        Err(e) => {
            emitter.error(format!("read failed: {e}"));
            return;
        }
    };
    if is_gzip {
        let gz = flate2::read::MultiGzDecoder::new(reader);
        decode_plain(BufReader::with_capacity(256 * 1024, gz), &mut emitter);
    } else {
        decode_plain(reader, &mut emitter);
    }
}

fn decode_plain<R: Read>(reader: R, emitter: &mut Emitter<'_>) {
    // Read up to the in-memory limit; parse from memory when the whole input fits.
    let mut buf = Vec::new();
    let mut limited = reader.take(IN_MEMORY_LIMIT as u64);
    if let Err(e) = limited.read_to_end(&mut buf) {
        emitter.error(format!("read failed: {e}"));
        return;
    }
    let reader = limited.into_inner();
    let whole = buf.len() < IN_MEMORY_LIMIT;
    let first = buf.iter().position(|b| !b.is_ascii_whitespace());
    let Some(first) = first else {
        return; // empty input: nothing to do
    };
    if buf[first] != b'{' && buf[first] != b'[' && looks_like_csv_header(&buf[first..]) {
        // A table exported as CSV (a KQL query's results, a SIEM search): one record per row.
        return decode_csv(Cursor::new(buf).chain(reader), emitter);
    }
    let lines = buf[first] == b'{' && first_line_is_complete(&buf[first..]);
    match (whole, lines) {
        (true, true) => decode_lines(&buf[..], emitter),
        (true, false) => stream_documents(serde_json::Deserializer::from_slice(&buf), emitter),
        (false, true) => decode_lines(BufReader::new(Cursor::new(buf).chain(reader)), emitter),
        (false, false) => {
            stream_documents_capped(BufReader::new(Cursor::new(buf).chain(reader)), emitter)
        }
    }
}

/// Decodes a byte buffer (an HTTP body, a test fixture).
pub fn decode_bytes(bytes: &[u8], origin: Origin, sink: &mut dyn FnMut(Item)) {
    decode_reader(bytes, origin, sink)
}

/// Like [`decode_bytes`], with format detection restricted to one provider.
pub fn decode_bytes_with(
    bytes: &[u8],
    origin: Origin,
    options: impl Into<ReadOptions>,
    sink: &mut dyn FnMut(Item),
) {
    decode_reader_with(bytes, origin, options, sink)
}

/// Decodes one file.
pub fn decode_file(path: &Path, sink: &mut dyn FnMut(Item)) {
    decode_file_with(path, None, sink)
}

/// Like [`decode_file`], with format detection restricted to one provider.
pub fn decode_file_with(path: &Path, options: impl Into<ReadOptions>, sink: &mut dyn FnMut(Item)) {
    let origin = Origin {
        source: "file".into(),
        path: Some(path.display().to_string()),
        ..Origin::default()
    };
    match File::open(path) {
        Ok(f) => decode_reader_with(f, origin, options, sink),
        Err(e) => sink(Item::Error(DecodeError {
            origin,
            reason: format!("cannot open: {e}"),
        })),
    }
}

/// A piece of work: a whole file, or a range of lines of a large JSON Lines file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub path: PathBuf,
    /// Byte range of whole lines; `None` for the whole file.
    pub range: Option<std::ops::Range<u64>>,
}

impl Unit {
    /// Bytes this unit covers.
    pub fn len(&self) -> u64 {
        match &self.range {
            Some(r) => r.end - r.start,
            None => std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Splits files into units of about `chunk` bytes so that several threads can share one big
/// file. Only plain (not gzip) JSON Lines files larger than `chunk` are split, at line ends;
/// everything else is one unit.
pub fn plan_units(files: &[PathBuf], chunk: u64) -> Vec<Unit> {
    let mut units = Vec::new();
    for path in files {
        match line_ranges(path, chunk) {
            Some(ranges) if ranges.len() > 1 => {
                units.extend(ranges.into_iter().map(|r| Unit {
                    path: path.clone(),
                    range: Some(r),
                }));
            }
            _ => units.push(Unit {
                path: path.clone(),
                range: None,
            }),
        }
    }
    units
}

fn line_ranges(path: &Path, chunk: u64) -> Option<Vec<std::ops::Range<u64>>> {
    use std::io::{Seek, SeekFrom};
    let len = std::fs::metadata(path).ok()?.len();
    if len <= chunk {
        return None;
    }
    let mut f = File::open(path).ok()?;
    let mut head = vec![0u8; 4 * 1024 * 1024];
    let n = f.read(&mut head).ok()?;
    head.truncate(n);
    let first = head.iter().position(|b| !b.is_ascii_whitespace())?;
    if head.starts_with(&[0x1f, 0x8b])
        || head[first] != b'{'
        || !first_line_is_complete(&head[first..])
    {
        return None;
    }
    let mut bounds = vec![0u64];
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = chunk;
    while at < len {
        f.seek(SeekFrom::Start(at)).ok()?;
        // The next line starts after the next newline.
        let mut pos = at;
        loop {
            let n = f.read(&mut buf).ok()?;
            if n == 0 {
                pos = len;
                break;
            }
            if let Some(i) = buf[..n].iter().position(|&b| b == b'\n') {
                pos += i as u64 + 1;
                break;
            }
            pos += n as u64;
        }
        if pos >= len {
            break;
        }
        if pos > *bounds.last().expect("non-empty") {
            bounds.push(pos);
        }
        at = pos + chunk;
    }
    bounds.push(len);
    Some(bounds.windows(2).map(|w| w[0]..w[1]).collect())
}

/// Decodes one unit. Errors in a range carry line numbers counted from the start of the file.
pub fn decode_unit(unit: &Unit, options: impl Into<ReadOptions>, sink: &mut dyn FnMut(Item)) {
    use std::io::{Seek, SeekFrom};
    let options = options.into();
    let Some(range) = unit.range.clone().filter(|r| r.start > 0) else {
        return match &unit.range {
            Some(r) => decode_range_from_start(&unit.path, r.end, options, sink),
            None => decode_file_with(&unit.path, options, sink),
        };
    };
    let origin = Origin {
        source: "file".into(),
        path: Some(unit.path.display().to_string()),
        ..Origin::default()
    };
    let mut f = match File::open(&unit.path) {
        Ok(f) => f,
        Err(e) => {
            return sink(Item::Error(DecodeError {
                origin,
                reason: format!("cannot open: {e}"),
            }));
        }
    };
    if let Err(e) = f.seek(SeekFrom::Start(range.start)) {
        return sink(Item::Error(DecodeError {
            origin,
            reason: format!("cannot seek: {e}"),
        }));
    }
    let mut buf = Vec::with_capacity((range.end - range.start) as usize);
    if let Err(e) = f.take(range.end - range.start).read_to_end(&mut buf) {
        return sink(Item::Error(DecodeError {
            origin,
            reason: format!("read failed: {e}"),
        }));
    }
    // Lines before this range, counted only if an error needs them.
    let mut lines_before: Option<u64> = None;
    let path = unit.path.clone();
    let mut fix = |item: Item| match item {
        Item::Error(mut e) => {
            if let Some(line) = e.origin.line {
                let base = *lines_before.get_or_insert_with(|| count_lines(&path, range.start));
                e.origin.line = Some(base + line);
            }
            e.origin.record_index = None;
            sink(Item::Error(e))
        }
        other => sink(other),
    };
    let mut emitter = Emitter {
        hint: options.hint,
        max_record: options.max_record_bytes.max(1),
        since_record: None,
        origin,
        record_index: 0,
        line: None,
        sink: &mut fix,
    };
    decode_lines(&buf[..], &mut emitter);
}

fn decode_range_from_start(
    path: &Path,
    end: u64,
    options: ReadOptions,
    sink: &mut dyn FnMut(Item),
) {
    let origin = Origin {
        source: "file".into(),
        path: Some(path.display().to_string()),
        ..Origin::default()
    };
    match File::open(path) {
        Ok(f) => {
            let mut emitter = Emitter {
                hint: options.hint,
                max_record: options.max_record_bytes.max(1),
                since_record: None,
                origin,
                record_index: 0,
                line: None,
                sink,
            };
            decode_lines(BufReader::new(f.take(end)), &mut emitter);
        }
        Err(e) => sink(Item::Error(DecodeError {
            origin,
            reason: format!("cannot open: {e}"),
        })),
    }
}

/// Newlines in the first `upto` bytes of a file.
fn count_lines(path: &Path, upto: u64) -> u64 {
    let Ok(f) = File::open(path) else { return 0 };
    let mut r = BufReader::with_capacity(1 << 20, f.take(upto));
    let mut n = 0u64;
    loop {
        let buf = match r.fill_buf() {
            Ok([]) | Err(_) => return n,
            Ok(b) => b,
        };
        n += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let len = buf.len();
        r.consume(len);
    }
}

/// The time a log file's path says its records are from, as `YYYYMMDDHHMM` digits:
/// CloudTrail's delivery name (`<account>_CloudTrail_<region>_20260302T1005Z_<id>.json.gz`), an
/// Azure diagnostic export path (`.../y=2026/m=03/d=02/h=10/m=00/PT1H.json`) or a Cloud Logging
/// sink's file in Cloud Storage (`.../2026/03/02/10:00:00_10:59:59_S0.json`). `None` when the
/// path carries no time.
pub fn time_in_name(path: &Path) -> Option<u64> {
    if let Some(t) = time_in_gcs_sink_name(path) {
        return Some(t);
    }
    let text = path.to_string_lossy();
    if let Some(name) = path.file_name().map(|n| n.to_string_lossy()) {
        for part in name.split('_') {
            let b = part.as_bytes();
            if b.len() == 14
                && b[8] == b'T'
                && b[13] == b'Z'
                && b[..8].iter().chain(&b[9..13]).all(u8::is_ascii_digit)
            {
                return format!("{}{}", &part[..8], &part[9..13]).parse().ok();
            }
        }
    }
    let field = |key: &str| -> Option<&str> {
        let at = text.find(key)? + key.len();
        let v = text[at..].split('/').next()?;
        (!v.is_empty() && v.bytes().all(|c| c.is_ascii_digit())).then_some(v)
    };
    let (y, mo, d, h) = (field("/y=")?, field("/m=")?, field("/d=")?, field("/h=")?);
    let minute = text
        .find(&format!("/h={h}/m="))
        .map(|i| &text[i + h.len() + 6..])
        .and_then(|rest| rest.split('/').next())
        .filter(|m| m.len() == 2 && m.bytes().all(|c| c.is_ascii_digit()))
        .unwrap_or("00");
    format!("{y:0>4}{mo:0>2}{d:0>2}{h:0>2}{minute}")
        .parse()
        .ok()
}

/// A Cloud Logging sink's hourly file: `YYYY/MM/DD/HH:MM:SS_HH:MM:SS_S<n>.json`.
fn time_in_gcs_sink_name(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let b = name.as_bytes();
    let clock = |at: usize| {
        b.len() > at + 8
            && b[at + 2] == b':'
            && b[at + 5] == b':'
            && [0, 1, 3, 4, 6, 7]
                .iter()
                .all(|i| b[at + i].is_ascii_digit())
    };
    if !(clock(0) && b[8] == b'_' && clock(9) && b.get(17) == Some(&b'_')) {
        return None;
    }
    let mut dirs = path.parent()?.iter().rev().map(|c| c.to_str());
    let (d, m, y) = (dirs.next()??, dirs.next()??, dirs.next()??);
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|c| c.is_ascii_digit());
    if !(digits(y, 4) && digits(m, 2) && digits(d, 2)) {
        return None;
    }
    format!("{y}{m}{d}{}{}", &name[0..2], &name[3..5])
        .parse()
        .ok()
}

/// How long one file's records can span, from the layout its path shows: an hour for an Azure
/// diagnostic export blob (`PT1H.json`) or a Cloud Logging sink's hourly file, `None` for other
/// files (a CloudTrail delivery file covers about five minutes).
pub fn span_in_name(path: &Path) -> Option<u64> {
    if time_in_gcs_sink_name(path).is_some() {
        return Some(3600);
    }
    let name = path.file_name()?.to_str()?;
    (name.eq_ignore_ascii_case("PT1H.json") && time_in_name(path).is_some()).then_some(3600)
}

/// Orders files as one stream in time: by the time their path carries ([`time_in_name`]), then
/// by path; files without a time keep their place before the timed ones, in path order. An
/// organisation trail's tree (account, then region, then date) is then read across accounts and
/// regions at once instead of one account's whole history after another.
pub fn order_by_time(files: &mut [PathBuf]) {
    files.sort_by_cached_key(|p| (time_in_name(p), p.clone()));
}

/// Expands files and directories (recursively, e.g. `AWSLogs/<account>/CloudTrail/...`) into
/// the list of files to read, in time order where the paths carry a time ([`order_by_time`]),
/// else in path order. Hidden files are skipped.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, DecodeError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| DecodeError {
            origin: Origin {
                source: "file".into(),
                path: Some(p.display().to_string()),
                ..Origin::default()
            },
            reason: format!("cannot read: {e}"),
        })?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    order_by_time(&mut out);
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DecodeError> {
    let err = |e: std::io::Error| DecodeError {
        origin: Origin {
            source: "file".into(),
            path: Some(dir.display().to_string()),
            ..Origin::default()
        },
        reason: format!("cannot list directory: {e}"),
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(err)?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let ft = entry.file_type().map_err(err)?;
        if ft.is_dir() {
            walk(&path, out)?;
        } else if ft.is_file() || ft.is_symlink() {
            let n = name.to_string_lossy().to_ascii_lowercase();
            if n.ends_with(".json")
                || n.ends_with(".json.gz")
                || n.ends_with(".jsonl")
                || n.ends_with(".jsonl.gz")
                || n.ends_with(".ndjson")
                || n.ends_with(".ndjson.gz")
                || n.ends_with(".csv")
                || n.ends_with(".gz")
            {
                out.push(path);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::io::Write;

    #[test]
    fn files_are_ordered_by_the_time_their_paths_carry() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            time_in_name(&p(
                "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/03/02/111122223333_CloudTrail_eu-west-1_20260302T1005Z_abc.json.gz"
            )),
            Some(202603021005)
        );
        assert_eq!(
            time_in_name(&p(
                "insights-activity-logs/resourceId=/SUBSCRIPTIONS/X/y=2026/m=03/d=02/h=10/m=00/PT1H.json"
            )),
            Some(202603021000)
        );
        assert_eq!(
            time_in_name(&p(
                "sink/cloudaudit.googleapis.com/data_access/2026/03/02/10:00:00_10:59:59_S0.json"
            )),
            Some(202603021000)
        );
        assert_eq!(time_in_name(&p("logs/events.jsonl")), None);
        assert_eq!(time_in_name(&p("logs/10:00:00_10:59:59_S0.json")), None);
        // How long a file's records span, where the layout says.
        assert_eq!(
            span_in_name(&p(
                "sink/cloudaudit.googleapis.com/activity/2026/03/02/10:00:00_10:59:59_S0.json"
            )),
            Some(3600)
        );
        assert_eq!(
            span_in_name(&p(
                "insights-logs-auditevent/resourceId=/X/y=2026/m=03/d=02/h=10/m=00/PT1H.json"
            )),
            Some(3600)
        );
        assert_eq!(
            span_in_name(&p(
                "AWSLogs/1/CloudTrail/us-east-1/2026/03/01/1_CloudTrail_us-east-1_20260301T0900Z_b.json.gz"
            )),
            None
        );
        let mut files = vec![
            p(
                "AWSLogs/2/CloudTrail/us-east-1/2026/03/01/2_CloudTrail_us-east-1_20260301T0900Z_b.json.gz",
            ),
            p(
                "AWSLogs/1/CloudTrail/us-east-1/2026/03/02/1_CloudTrail_us-east-1_20260302T0000Z_a.json.gz",
            ),
            p("z-notime.jsonl"),
            p(
                "AWSLogs/1/CloudTrail/us-east-1/2026/03/01/1_CloudTrail_us-east-1_20260301T0905Z_a.json.gz",
            ),
            p(
                "AWSLogs/1/CloudTrail/eu-west-1/2026/03/01/1_CloudTrail_eu-west-1_20260301T0900Z_a.json.gz",
            ),
            p("a-notime.jsonl"),
        ];
        order_by_time(&mut files);
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "a-notime.jsonl",
                "z-notime.jsonl",
                "1_CloudTrail_eu-west-1_20260301T0900Z_a.json.gz",
                "2_CloudTrail_us-east-1_20260301T0900Z_b.json.gz",
                "1_CloudTrail_us-east-1_20260301T0905Z_a.json.gz",
                "1_CloudTrail_us-east-1_20260302T0000Z_a.json.gz",
            ]
        );
    }

    fn rec(id: &str) -> String {
        format!(
            r#"{{"eventVersion":"1.08","eventTime":"2024-07-30T21:31:21Z","eventSource":"iam.amazonaws.com","eventName":"ListUsers","eventID":"{id}","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/bob"}}}}"#
        )
    }

    fn run(bytes: &[u8]) -> (Vec<String>, Vec<DecodeError>, DecodeStats) {
        let mut ids = Vec::new();
        let mut errors = Vec::new();
        let mut stats = DecodeStats::default();
        decode_bytes(
            bytes,
            Origin {
                source: "test".into(),
                path: Some("in.json".into()),
                ..Origin::default()
            },
            &mut |item| {
                stats.count(&item);
                match item {
                    Item::Event(e) => ids.push(e.id),
                    Item::Error(e) => errors.push(e),
                    _ => {}
                }
            },
        );
        (ids, errors, stats)
    }

    fn run_with(bytes: &[u8], options: ReadOptions) -> (Vec<String>, Vec<DecodeError>) {
        let mut ids = Vec::new();
        let mut errors = Vec::new();
        decode_bytes_with(bytes, Origin::default(), options, &mut |item| match item {
            Item::Event(e) => ids.push(e.id),
            Item::Error(e) => errors.push(e),
            _ => {}
        });
        (ids, errors)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    fn small_records() -> ReadOptions {
        ReadOptions {
            max_record_bytes: 4096,
            ..ReadOptions::default()
        }
    }

    /// Guards "a single 1 GiB line takes hunt to 2.2 GB": a line past the limit is a bad record,
    /// the lines around it still come through.
    #[test]
    fn a_line_past_the_record_limit_is_reported_and_the_rest_is_read() {
        let huge = format!(r#"{{"eventName":"{}"}}"#, "x".repeat(100_000));
        let text = format!("{}\n{huge}\n{}\n", rec("a"), rec("b"));
        for body in [text.clone().into_bytes(), gzip(text.as_bytes())] {
            let (ids, errors) = run_with(&body, small_records());
            assert_eq!(ids, ["a", "b"]);
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(
                errors[0]
                    .reason
                    .contains("longer than the limit of 4096 bytes"),
                "{}",
                errors[0].reason
            );
            assert_eq!(errors[0].origin.line, Some(2));
        }
    }

    /// A delivery file written on one line may be longer than one record's limit: it is
    /// streamed record by record, and only a record past the limit is refused.
    #[test]
    fn a_long_records_line_is_streamed_record_by_record() {
        let records: Vec<String> = (0..100).map(|i| rec(&format!("r{i}"))).collect();
        let doc = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        assert!(doc.len() > 4096 * 4);
        let text = format!("{}\n{doc}\n{}\n", rec("first"), rec("last"));
        let (ids, errors) = run_with(text.as_bytes(), small_records());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(ids.len(), 102);
        assert_eq!((ids[0].as_str(), ids[101].as_str()), ("first", "last"));
        // A first line that long makes the input one document, read from memory: a record
        // past the limit is reported and skipped.
        let big = format!(r#"{{"eventName":"{}"}}"#, "y".repeat(10_000));
        let doc = format!(
            r#"{{"Records":[{},{big},{}]}}"#,
            records.join(","),
            rec("after")
        );
        let (ids, errors) = run_with(
            doc.as_bytes(),
            ReadOptions {
                max_record_bytes: 4096,
                ..ReadOptions::default()
            },
        );
        assert_eq!(
            ids.len(),
            101,
            "the records around the long one come through"
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].reason.contains("longer than the limit"),
            "{}",
            errors[0].reason
        );
    }

    /// The same, streaming from a reader (an input too large to read whole): the reader is not
    /// drained into memory.
    #[test]
    fn a_huge_document_is_cut_at_the_record_limit_while_streaming() {
        struct Endless(u64);
        impl Read for Endless {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    out[0] = b'{';
                    out[1] = b'"';
                    self.0 += 2;
                    return Ok(2);
                }
                out.fill(b'z');
                self.0 += out.len() as u64;
                Ok(out.len())
            }
        }
        let mut errors = Vec::new();
        let mut reader = Endless(0);
        decode_reader_with(
            (&mut reader).take(200 * 1024 * 1024),
            Origin::default(),
            ReadOptions {
                max_record_bytes: 1 << 20,
                ..ReadOptions::default()
            },
            &mut |item| {
                if let Item::Error(e) = item {
                    errors.push(e)
                }
            },
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].reason.contains("not read"),
            "{}",
            errors[0].reason
        );
        assert!(
            reader.0 < 80 * 1024 * 1024,
            "read {} bytes: stopped soon after the in-memory window",
            reader.0
        );
    }

    /// Guards the gzip-inside-gzip memory blow-up: gzip is undone once, and not at all for a
    /// body that was decompressed already.
    #[test]
    fn gzip_is_undone_once() {
        let plain = format!("{}\n", rec("a"));
        let (ids, _) = run_with(&gzip(plain.as_bytes()), ReadOptions::default());
        assert_eq!(ids, ["a"]);
        let (ids, errors) = run_with(&gzip(&gzip(plain.as_bytes())), ReadOptions::default());
        assert!(ids.is_empty());
        assert_eq!(errors.len(), 1);
        let (ids, errors) = run_with(
            &gzip(plain.as_bytes()),
            ReadOptions {
                decompress: false,
                ..ReadOptions::default()
            },
        );
        assert!(ids.is_empty() && errors.len() == 1, "{ids:?} {errors:?}");
    }

    #[test]
    fn s3_delivery_file_on_one_line() {
        let doc = format!(r#"{{"Records":[{},{}]}}"#, rec("a"), rec("b"));
        let (ids, errors, _) = run(doc.as_bytes());
        assert_eq!(ids, ["a", "b"]);
        assert!(errors.is_empty());
    }

    #[test]
    fn pretty_printed_file_and_array() {
        let v: Value =
            serde_json::from_str(&format!(r#"{{"Records":[{},{}]}}"#, rec("a"), rec("b"))).unwrap();
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        assert_eq!(run(pretty.as_bytes()).0, ["a", "b"]);
        let arr = format!("[\n{},\n{}\n]", rec("c"), rec("d"));
        assert_eq!(run(arr.as_bytes()).0, ["c", "d"]);
    }

    #[test]
    fn gzip_is_detected_by_content() {
        let doc = format!(r#"{{"Records":[{}]}}"#, rec("z"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(doc.as_bytes()).unwrap();
        let bytes = gz.finish().unwrap();
        assert_eq!(run(&bytes).0, ["z"]);
    }

    #[test]
    fn json_lines_skip_broken_lines_and_report_them() {
        let input = format!("{}\n{{\"eventName\": broken\n\n{}\n", rec("a"), rec("b"));
        let (ids, errors, stats) = run(input.as_bytes());
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].origin.line, Some(2));
        assert_eq!(errors[0].origin.record_index, Some(1));
        assert!(
            errors[0].to_string().contains("in.json line 2 record 1"),
            "{}",
            errors[0]
        );
        assert_eq!(stats.events, 2);
    }

    #[test]
    fn bad_record_inside_records_names_its_index() {
        let doc = format!(
            r#"{{"Records":[{},{{"eventName":"X","eventSource":"s3.amazonaws.com","eventTime":"not a time"}},{}]}}"#,
            rec("a"),
            rec("c")
        );
        let (ids, errors, _) = run(doc.as_bytes());
        assert_eq!(ids, ["a", "c"]);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].origin.record_index, Some(1));
        assert!(errors[0].reason.contains("eventTime"));
    }

    #[test]
    fn truncated_document_is_reported_after_good_records() {
        let doc = format!(
            "{{\"Records\":[\n{},\n{},\n{{\"eventName\":",
            rec("a"),
            rec("b")
        );
        let (ids, errors, _) = run(doc.as_bytes());
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].reason.contains("truncated") || errors[0].reason.contains("invalid"),
            "{}",
            errors[0].reason
        );
        assert!(errors[0].reason.contains("line 4"), "{}", errors[0].reason);
    }

    #[test]
    fn eventbridge_digest_and_insight_are_recognised() {
        let eb = format!(
            r#"{{"version":"0","detail-type":"AWS API Call via CloudTrail","source":"aws.iam","detail":{}}}"#,
            rec("e")
        );
        let digest = r#"{"awsAccountId":"1","digestStartTime":"2024-01-01T00:00:00Z","digestEndTime":"2024-01-01T01:00:00Z","digestPublicKeyFingerprint":"ab"}"#;
        let insight = r#"{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","eventCategory":"Insight","eventName":"X","insightDetails":{}}"#;
        let input = format!("{eb}\n{digest}\n{insight}\n");
        let (ids, errors, stats) = run(input.as_bytes());
        assert_eq!(ids, ["e"]);
        assert!(errors.is_empty());
        assert_eq!((stats.digests, stats.insights), (1, 1));
    }

    #[test]
    fn single_pretty_record_and_concatenated_documents() {
        let v: Value = serde_json::from_str(&rec("p")).unwrap();
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        let two = format!("{pretty}\n{pretty}");
        assert_eq!(run(two.as_bytes()).0, ["p", "p"]);
    }

    #[test]
    fn big_json_lines_split_into_units_that_decode_to_the_same_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.jsonl");
        let mut text = String::new();
        for i in 0..200 {
            if i == 150 {
                text.push_str("{broken\n");
            }
            text.push_str(&rec(&format!("e{i}")));
            text.push('\n');
        }
        std::fs::write(&path, &text).unwrap();
        let units = plan_units(std::slice::from_ref(&path), 4096);
        assert!(units.len() > 5, "{} units", units.len());
        let covered: u64 = units.iter().map(Unit::len).sum();
        assert_eq!(covered, text.len() as u64);
        let mut ids = Vec::new();
        let mut errors = Vec::new();
        for u in &units {
            decode_unit(u, None, &mut |item| match item {
                Item::Event(e) => ids.push(e.id),
                Item::Error(e) => errors.push(e),
                _ => {}
            });
        }
        let expected: Vec<String> = (0..200).map(|i| format!("e{i}")).collect();
        assert_eq!(ids, expected);
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].origin.line,
            Some(151),
            "line numbers count from the start of the file"
        );
        // Small files and gzip files stay whole.
        assert_eq!(plan_units(std::slice::from_ref(&path), 1 << 20).len(), 1);
    }

    #[test]
    fn discover_walks_cloudtrail_tree() {
        let dir = tempfile::tempdir().unwrap();
        let day = dir
            .path()
            .join("AWSLogs/111122223333/CloudTrail/us-east-1/2024/07/30");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::write(day.join("b.json.gz"), b"").unwrap();
        std::fs::write(day.join("a.json"), b"").unwrap();
        std::fs::write(day.join("notes.txt"), b"").unwrap();
        std::fs::write(day.join(".hidden.json"), b"").unwrap();
        let files = discover(&[dir.path().to_path_buf()]).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, ["a.json", "b.json.gz"]);
        assert!(discover(&[dir.path().join("missing")]).is_err());
    }
}
