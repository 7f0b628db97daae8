//! The tamper-evident audit log: every state change, append-only, each entry's HMAC covering
//! the entry and the previous entry's HMAC.
//!
//! Editing an entry breaks its own HMAC; deleting one leaves a gap in the sequence and a
//! previous-hash that points nowhere; deleting the newest entries is caught by the head file
//! (`audit.head`, the last sequence number and hash, rewritten after every append). Someone who
//! holds the HMAC key can rewrite the whole chain: keep the key (`audit.key`) where the database's
//! editors cannot read it.

use std::path::PathBuf;
use std::sync::Mutex;

use chrono::Utc;
use cloudsentinel_store::{AuditRecord, NewAudit, Store};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::hex;

pub struct AuditLog {
    key: Vec<u8>,
    head: PathBuf,
    /// Appends and head-file writes in one order.
    order: Mutex<()>,
}

/// What verification found.
#[derive(Debug, Default)]
pub struct Verification {
    pub entries: u64,
    pub problems: Vec<String>,
}

impl AuditLog {
    pub fn new(key: Vec<u8>, head: PathBuf) -> AuditLog {
        AuditLog {
            key,
            head,
            order: Mutex::new(()),
        }
    }

    /// The chain hash of an entry.
    pub fn hash(&self, prev: &str, seq: i64, e: &NewAudit) -> String {
        // A JSON array is an unambiguous encoding of the fields.
        let canonical = serde_json::json!([
            prev,
            seq,
            e.time.timestamp_millis(),
            e.actor,
            e.action,
            e.target,
            e.detail,
            e.source_ip
        ]);
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(canonical.to_string().as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// Appends one entry.
    pub fn record(
        &self,
        store: &dyn Store,
        actor: &str,
        action: &str,
        target: &str,
        detail: serde_json::Value,
        source_ip: Option<&str>,
    ) -> cloudsentinel_store::Result<AuditRecord> {
        let _g = self.order.lock().unwrap_or_else(|e| e.into_inner());
        let entry = NewAudit {
            time: Utc::now(),
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            detail: detail.to_string(),
            source_ip: source_ip.map(str::to_string),
        };
        let rec = store.append_audit(entry, &|prev, seq, e| self.hash(prev, seq, e))?;
        self.advance_head(rec.seq, &rec.hash)?;
        Ok(rec)
    }

    /// Moves the head file to `seq` unless it already names a later entry: processes sharing
    /// a data directory (the split roles on one store) append to one log, each under a lock on
    /// the head, so the head only moves forward.
    fn advance_head(&self, seq: i64, hash: &str) -> std::io::Result<()> {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.head.with_extension("head.lock"))?;
        lock.lock()?;
        let current = std::fs::read_to_string(&self.head)
            .ok()
            .and_then(|h| h.split_whitespace().next()?.parse::<i64>().ok());
        if current.is_none_or(|c| c < seq) {
            let tmp = self
                .head
                .with_extension(format!("head.{}.tmp", std::process::id()));
            std::fs::write(&tmp, format!("{seq} {hash}\n"))?;
            std::fs::rename(&tmp, &self.head)?;
        }
        lock.unlock()
    }

    /// Walks the whole chain.
    pub fn verify(&self, store: &dyn Store) -> cloudsentinel_store::Result<Verification> {
        let mut v = Verification::default();
        let mut prev_seq = 0i64;
        let mut prev_hash = String::new();
        // The head: the last entry written through this data directory. Other processes on
        // the same store may have appended after it.
        let head = std::fs::read_to_string(&self.head).map(|h| {
            let mut it = h.split_whitespace();
            let seq: i64 = it.next().and_then(|s| s.parse().ok()).unwrap_or(-1);
            (seq, it.next().unwrap_or("").to_string())
        });
        let mut hash_at_head = None;
        loop {
            let batch = store.audit(prev_seq, 1000)?;
            if batch.is_empty() {
                break;
            }
            for r in batch {
                v.entries += 1;
                if r.seq != prev_seq + 1 {
                    v.problems.push(format!(
                        "entries {}..{} are missing (deleted)",
                        prev_seq + 1,
                        r.seq - 1
                    ));
                }
                if r.prev_hash != prev_hash {
                    v.problems.push(format!(
                        "entry {}: does not follow the entry before it (chain broken)",
                        r.seq
                    ));
                }
                let entry = NewAudit {
                    time: r.time,
                    actor: r.actor.clone(),
                    action: r.action.clone(),
                    target: r.target.clone(),
                    detail: r.detail.clone(),
                    source_ip: r.source_ip.clone(),
                };
                if self.hash(&r.prev_hash, r.seq, &entry) != r.hash {
                    v.problems.push(format!(
                        "entry {}: contents changed after it was written",
                        r.seq
                    ));
                }
                if head.as_ref().is_ok_and(|(seq, _)| *seq == r.seq) {
                    hash_at_head = Some(r.hash.clone());
                }
                prev_seq = r.seq;
                prev_hash = r.hash;
            }
        }
        match head {
            Ok((seq, hash)) => {
                if seq > prev_seq || hash_at_head.as_deref() != Some(hash.as_str()) {
                    v.problems.push(format!(
                        "the log ends at entry {prev_seq} but entry {seq} was written last \
                         (newest entries deleted or replaced)"
                    ));
                }
            }
            Err(_) if prev_seq == 0 => {}
            Err(e) => v
                .problems
                .push(format!("head file {} unreadable: {e}", self.head.display())),
        }
        Ok(v)
    }
}
