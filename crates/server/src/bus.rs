//! The work bus between processes: RabbitMQ (AMQP 0-9-1), for the scaled-out roles.
//!
//! An ingest process checks a body (limits, decoding: a bad record is still a 400 with its line)
//! and publishes it as one message to a durable queue, persistent, with a publisher confirm: the
//! client's 202 means the broker has written the batch. A detect process consumes the queue with
//! manual acknowledgements and acknowledges a batch only after the pipeline has committed its
//! events and what they raised, so a batch acknowledged to the broker is stored, and a batch whose
//! worker died is delivered again (its events are recognised by id: nothing counts twice).
//!
//! One detect process at a time consumes: the one holding the detect lease (a PostgreSQL
//! advisory lock; `lead` in the service), which also sends the notifications and pulls the
//! sources. The others stand by; when the holder dies its database session ends, another takes
//! the lease, subscribes, and resumes alerting from the store. The queue also has a single
//! active consumer (RabbitMQ's `x-single-active-consumer`), so two holders cannot both receive
//! even for a moment. One consumer at a time keeps the order of batches, which is what makes
//! alerts identical to the single-process service's (docs/SCALING.md). Up to `prefetch` batches
//! are in hand: one is detected and queued while those before it commit.
//!
//! A batch the pipeline cannot take (it no longer decodes, say after an upgrade changed the
//! rules) goes to the dead-letter queue with the reason, and the queue moves on.
//!
//! A message is one line of JSON (`Envelope`'s header: provider, source, when received) then the
//! body as the client sent it, decompressed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amqprs::callbacks::{ChannelCallback, ConnectionCallback};
use amqprs::channel::{
    BasicAckArguments, BasicConsumeArguments, BasicPublishArguments, BasicQosArguments, Channel,
    ConfirmSelectArguments, QueueDeclareArguments,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::{
    Ack, BasicProperties, Cancel, Close, CloseChannel, FieldTable, FieldValue, Nack, Return,
};
use cloudsentinel_core::Provider;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

type AmqpResult<T> = Result<T, amqprs::error::Error>;

/// How to reach the broker and which queue to use.
#[derive(Clone)]
pub struct BusSettings {
    pub host: String,
    pub port: u16,
    pub vhost: String,
    pub user: String,
    pub password: String,
    /// The batches' queue; its dead letters go to `<queue>.dead`.
    pub queue: String,
    /// Batches a detect process holds unacknowledged at most.
    pub prefetch: u16,
}

impl std::fmt::Debug for BusSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("vhost", &self.vhost)
            .field("user", &self.user)
            .field("password", &"(redacted)")
            .field("queue", &self.queue)
            .field("prefetch", &self.prefetch)
            .finish()
    }
}

impl BusSettings {
    /// Reads `amqp://user@host:port/vhost` (the vhost percent-encoded, `%2f` for `/`; no password:
    /// it comes from the environment).
    pub fn parse(url: &str, password: Option<String>) -> Result<BusSettings, String> {
        let rest = url
            .strip_prefix("amqp://")
            .ok_or("expected amqp://user@host:port/vhost (TLS, amqps, is not supported)")?;
        let (authority, vhost) = rest.split_once('/').unwrap_or((rest, ""));
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (u, h),
            None => ("guest", authority),
        };
        if user.contains(':') {
            return Err("carries a password; give it in the environment instead".into());
        }
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?),
            None => (hostport, 5672),
        };
        if host.is_empty() {
            return Err("names no host".into());
        }
        let vhost = match vhost {
            "" => "/".to_string(),
            v => percent_decode(v)?,
        };
        Ok(BusSettings {
            host: host.to_string(),
            port,
            vhost,
            user: percent_decode(user)?,
            password: password.unwrap_or_else(|| {
                if user == "guest" {
                    "guest".into()
                } else {
                    String::new()
                }
            }),
            queue: "cloudsentinel.batches".into(),
            prefetch: 8,
        })
    }

    fn dead_queue(&self) -> String {
        format!("{}.dead", self.queue)
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
}

/// Why a publish did not go through.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker cannot be reached, or did not confirm in time: the batch may not be queued.
    #[error("the message broker is unavailable: {0}")]
    Unavailable(String),
    /// The broker refused the message (a nack: it could not write it).
    #[error("the message broker refused the batch")]
    Refused,
}

/// What travels with a batch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    /// `aws`, `azure`, `gcp`, or none to detect per record.
    pub provider: Option<String>,
    /// Where it came from (`http`, a source's name).
    pub source: String,
    /// Records in it, as the ingest process counted them.
    pub records: u64,
    /// When the ingest process received it (ms since 1970).
    pub received_ms: i64,
    /// Why it is a dead letter (only on the dead-letter queue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Header {
    pub fn provider(&self) -> Option<Provider> {
        match self.provider.as_deref() {
            Some("aws") => Some(Provider::Aws),
            Some("azure") => Some(Provider::Azure),
            Some("gcp") => Some(Provider::Gcp),
            _ => None,
        }
    }

    pub fn provider_name(p: Option<Provider>) -> Option<String> {
        p.map(|p| p.as_str().to_string())
    }
}

/// A message: its header line, then the body.
pub fn encode(header: &Header, body: &[u8]) -> Vec<u8> {
    let mut out = serde_json::to_vec(header).expect("a header serializes");
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// Splits a message into its header and body.
pub fn decode(message: &[u8]) -> Result<(Header, &[u8]), String> {
    let nl = message
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("no header line")?;
    let header: Header = serde_json::from_slice(&message[..nl])
        .map_err(|e| format!("the header line does not read: {e}"))?;
    Ok((header, &message[nl + 1..]))
}

/// Publisher confirms waiting for the broker, by delivery tag.
#[derive(Default)]
struct Confirms {
    waiting: BTreeMap<u64, oneshot::Sender<bool>>,
    broken: bool,
}

impl Confirms {
    fn settle(&mut self, tag: u64, multiple: bool, ok: bool) {
        let tags: Vec<u64> = if multiple {
            self.waiting.range(..=tag).map(|(t, _)| *t).collect()
        } else {
            vec![tag]
        };
        for t in tags {
            if let Some(tx) = self.waiting.remove(&t) {
                let _ = tx.send(ok);
            }
        }
    }

    /// The link is gone: nothing waiting will be confirmed.
    fn fail_all(&mut self) {
        self.broken = true;
        self.waiting.clear();
    }
}

/// Hears the broker's confirms and closes.
#[derive(Clone)]
struct Watch(Arc<Mutex<Confirms>>);

impl Watch {
    fn lock(&self) -> std::sync::MutexGuard<'_, Confirms> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl ChannelCallback for Watch {
    async fn close(&mut self, _: &Channel, close: CloseChannel) -> AmqpResult<()> {
        tracing::warn!(reason = %close, "the broker closed the channel");
        self.lock().fail_all();
        Ok(())
    }
    async fn cancel(&mut self, _: &Channel, _: Cancel) -> AmqpResult<()> {
        tracing::warn!("the broker cancelled the consumer");
        self.lock().fail_all();
        Ok(())
    }
    async fn flow(&mut self, _: &Channel, active: bool) -> AmqpResult<bool> {
        Ok(active)
    }
    async fn publish_ack(&mut self, _: &Channel, ack: Ack) {
        self.lock().settle(ack.delivery_tag(), ack.mutiple(), true);
    }
    async fn publish_nack(&mut self, _: &Channel, nack: Nack) {
        self.lock()
            .settle(nack.delivery_tag(), nack.multiple(), false);
    }
    async fn publish_return(&mut self, _: &Channel, _: Return, _: BasicProperties, _: Vec<u8>) {}
}

#[async_trait::async_trait]
impl ConnectionCallback for Watch {
    async fn close(&mut self, _: &Connection, close: Close) -> AmqpResult<()> {
        tracing::warn!(reason = %close, "the broker closed the connection");
        self.lock().fail_all();
        Ok(())
    }
    async fn blocked(&mut self, _: &Connection, reason: String) {
        tracing::warn!(reason, "the broker blocks publishing (a resource alarm)");
    }
    async fn unblocked(&mut self, _: &Connection) {
        tracing::info!("the broker accepts publishing again");
    }
    async fn secret_updated(&mut self, _: &Connection) {}
}

/// An open connection and channel, with what watches them.
struct Link {
    connection: Connection,
    channel: Channel,
    watch: Watch,
    /// The next publish's delivery tag (confirm mode numbers them from 1 per channel).
    next_tag: u64,
}

impl Link {
    fn alive(&self) -> bool {
        self.connection.is_open() && self.channel.is_open() && !self.watch.lock().broken
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a publish waits for the broker's confirm before it fails as unavailable.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a connection and a channel and declares the queues (idempotent).
async fn connect(s: &BusSettings, name: &str) -> Result<Link, BusError> {
    let unavailable = |e: amqprs::error::Error| BusError::Unavailable(e.to_string());
    let args = OpenConnectionArguments::new(&s.host, s.port, &s.user, &s.password)
        .virtual_host(&s.vhost)
        .connection_name(name)
        .heartbeat(10)
        .finish();
    let connection = tokio::time::timeout(CONNECT_TIMEOUT, Connection::open(&args))
        .await
        .map_err(|_| BusError::Unavailable(format!("no answer from {}:{}", s.host, s.port)))?
        .map_err(unavailable)?;
    let watch = Watch(Arc::new(Mutex::new(Confirms::default())));
    connection
        .register_callback(watch.clone())
        .await
        .map_err(unavailable)?;
    let channel = connection.open_channel(None).await.map_err(unavailable)?;
    channel
        .register_callback(watch.clone())
        .await
        .map_err(unavailable)?;
    declare(&channel, s).await.map_err(unavailable)?;
    Ok(Link {
        connection,
        channel,
        watch,
        next_tag: 1,
    })
}

/// The batches' queue (durable, one active consumer, dead letters to `<queue>.dead`) and the
/// dead-letter queue.
async fn declare(channel: &Channel, s: &BusSettings) -> AmqpResult<()> {
    let mut dead = FieldTable::new();
    dead.insert(
        "x-queue-type".try_into().expect("a short name"),
        FieldValue::from("classic"),
    );
    channel
        .queue_declare(
            QueueDeclareArguments::durable_client_named(&s.dead_queue())
                .arguments(dead)
                .finish(),
        )
        .await?;
    let mut args = FieldTable::new();
    args.insert(
        "x-single-active-consumer".try_into().expect("a short name"),
        FieldValue::from(true),
    );
    args.insert(
        "x-dead-letter-exchange".try_into().expect("a short name"),
        FieldValue::from(""),
    );
    args.insert(
        "x-dead-letter-routing-key"
            .try_into()
            .expect("a short name"),
        FieldValue::from(s.dead_queue().as_str()),
    );
    channel
        .queue_declare(
            QueueDeclareArguments::durable_client_named(&s.queue)
                .arguments(args)
                .finish(),
        )
        .await?;
    Ok(())
}

/// Publishes batches, each confirmed by the broker. Connects when first used and again after
/// the link broke.
pub struct Publisher {
    settings: BusSettings,
    link: tokio::sync::Mutex<Option<Link>>,
}

impl Publisher {
    pub fn new(settings: BusSettings) -> Publisher {
        Publisher {
            settings,
            link: tokio::sync::Mutex::new(None),
        }
    }

    /// Publishes one message to `queue` (the batches' queue unless given) and waits for the
    /// broker's confirm.
    pub async fn publish(&self, message: Vec<u8>, queue: Option<&str>) -> Result<(), BusError> {
        let confirmed = {
            let mut guard = self.link.lock().await;
            if !guard.as_ref().is_some_and(Link::alive) {
                if let Some(old) = guard.take() {
                    let _ = old.connection.close().await;
                }
                let link = connect(&self.settings, "cloudsentinel-publisher").await?;
                link.channel
                    .confirm_select(ConfirmSelectArguments::default())
                    .await
                    .map_err(|e| BusError::Unavailable(e.to_string()))?;
                *guard = Some(link);
            }
            let link = guard.as_mut().expect("connected above");
            let tag = link.next_tag;
            let (tx, rx) = oneshot::channel();
            link.watch.lock().waiting.insert(tag, tx);
            let props = BasicProperties::default()
                .with_persistence(true)
                .with_content_type("application/x-cloudsentinel-batch")
                .finish();
            let routing = queue.unwrap_or(&self.settings.queue);
            if let Err(e) = link
                .channel
                .basic_publish(props, message, BasicPublishArguments::new("", routing))
                .await
            {
                link.watch.lock().fail_all();
                return Err(BusError::Unavailable(e.to_string()));
            }
            link.next_tag += 1;
            rx
        };
        match tokio::time::timeout(CONFIRM_TIMEOUT, confirmed).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(BusError::Refused),
            Ok(Err(_)) => Err(BusError::Unavailable(
                "the connection to the broker was lost before it confirmed".into(),
            )),
            Err(_) => {
                // Whatever the link is doing, the next publish starts a fresh one.
                if let Some(link) = self.link.lock().await.as_ref() {
                    link.watch.lock().fail_all();
                }
                Err(BusError::Unavailable(
                    "the broker did not confirm within 10 s".into(),
                ))
            }
        }
    }

    /// Whether the broker can be reached now (connecting if needed).
    pub async fn ready(&self) -> bool {
        let mut guard = self.link.lock().await;
        if guard.as_ref().is_some_and(Link::alive) {
            return true;
        }
        match connect(&self.settings, "cloudsentinel-publisher").await {
            Ok(link) => {
                if link
                    .channel
                    .confirm_select(ConfirmSelectArguments::default())
                    .await
                    .is_err()
                {
                    return false;
                }
                *guard = Some(link);
                true
            }
            Err(_) => false,
        }
    }
}

/// What the consumer's handler decided about a batch.
pub enum Handled {
    /// Committed: acknowledge it.
    Done,
    /// It can never be processed: to the dead-letter queue with the reason.
    Poison(String),
    /// Not now (this process is stopping): left unacknowledged, to be delivered again.
    Retry,
}

/// One delivered batch.
pub struct Delivery {
    pub header: Header,
    pub body: Vec<u8>,
    /// Delivered before to a consumer that did not acknowledge it (it died, say).
    pub redelivered: bool,
    /// The first handed to the handler since this process subscribed: it may have just taken
    /// the queue over from another process, whose commits it has not seen.
    pub first: bool,
}

/// Consumes the batches' queue until `stop` turns true: connects (again after any failure,
/// backing off up to 10 s), subscribes, and hands every batch it receives to `handle` in
/// delivery order. `handle` answers once it has queued the batch (so the next one queues behind
/// it) with what finishes it; up to `prefetch` batches are in hand at once, and each is
/// acknowledged, in order, once finished. The finishing part retries while the store is
/// unavailable; it never drops a batch.
pub async fn consume<F, Queued, Done>(
    settings: BusSettings,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut handle: F,
) where
    F: FnMut(Delivery) -> Queued,
    Queued: std::future::Future<Output = Done>,
    Done: std::future::Future<Output = Handled> + Send + 'static,
{
    let mut backoff = Duration::from_millis(200);
    let dead = Publisher::new(settings.clone());
    while !*stop.borrow() {
        let link = match connect(&settings, "cloudsentinel-detect").await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach the broker; trying again");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        let subscribed = async {
            link.channel
                .basic_qos(BasicQosArguments::new(0, settings.prefetch, false))
                .await?;
            link.channel
                .basic_consume_rx(
                    BasicConsumeArguments::new(&settings.queue, "")
                        .manual_ack(true)
                        .finish(),
                )
                .await
        }
        .await;
        let mut rx = match subscribed {
            Ok((_, rx)) => rx,
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to the batches' queue");
                let _ = link.connection.close().await;
                continue;
            }
        };
        tracing::info!(queue = settings.queue, "subscribed to the batches' queue");
        let mut first = true;
        // Batches handed over in delivery order, committing; acknowledged in the same order.
        let mut inflight: std::collections::VecDeque<(
            u64,
            Vec<u8>,
            tokio::task::JoinHandle<Handled>,
        )> = std::collections::VecDeque::new();
        let room = usize::from(settings.prefetch.max(1));
        'link: loop {
            tokio::select! {
                m = rx.recv(), if inflight.len() < room => {
                    let Some(msg) = m else { break 'link };
                    let (Some(deliver), Some(content)) = (msg.deliver, msg.content) else {
                        continue;
                    };
                    let done = match decode(&content) {
                        Ok((header, body)) => {
                            let d = Delivery {
                                header,
                                body: body.to_vec(),
                                redelivered: deliver.redelivered(),
                                first,
                            };
                            first = false;
                            tokio::spawn(handle(d).await)
                        }
                        Err(e) => {
                            let reason = format!("not a CloudSentinel batch: {e}");
                            tokio::spawn(async move { Handled::Poison(reason) })
                        }
                    };
                    inflight.push_back((deliver.delivery_tag(), content, done));
                }
                outcome = async { (&mut inflight.front_mut().expect("not empty").2).await }, if !inflight.is_empty() => {
                    let (tag, content, _) = inflight.pop_front().expect("not empty");
                    let outcome = outcome.unwrap_or_else(|e| Handled::Poison(format!("the handler failed: {e}")));
                    if !settle(&link, &dead, &settings, tag, &content, outcome).await {
                        break 'link;
                    }
                }
                _ = stop.changed() => break 'link,
            }
        }
        // What is still in hand is not acknowledged: the broker delivers it again (to whoever
        // holds the queue next), and its events are known by id.
        for (_, _, done) in inflight {
            done.abort();
        }
        let _ = link.connection.close().await;
    }
}

/// Acknowledges a batch the handler is done with (a poison one once its dead letter is
/// confirmed); answers false when the link should be dropped (the batch then comes back).
async fn settle(
    link: &Link,
    dead: &Publisher,
    settings: &BusSettings,
    tag: u64,
    content: &[u8],
    outcome: Handled,
) -> bool {
    match outcome {
        Handled::Done => {}
        // The broker delivers it again once this channel closes.
        Handled::Retry => return false,
        Handled::Poison(reason) => {
            tracing::error!(
                reason,
                "a batch cannot be processed: to the dead-letter queue"
            );
            let (mut header, body) = match decode(content) {
                Ok((h, b)) => (h, b.to_vec()),
                Err(_) => (
                    Header {
                        provider: None,
                        source: "unknown".into(),
                        records: 0,
                        received_ms: 0,
                        error: None,
                    },
                    content.to_vec(),
                ),
            };
            header.error = Some(reason);
            // Acknowledged only once the dead letter is confirmed: on failure the batch comes
            // back and is judged again.
            if let Err(e) = dead
                .publish(encode(&header, &body), Some(&settings.dead_queue()))
                .await
            {
                tracing::warn!(error = %e, "the dead letter was not written; the batch comes back");
                return false;
            }
        }
    }
    if let Err(e) = link
        .channel
        .basic_ack(BasicAckArguments::new(tag, false))
        .await
    {
        // Not acknowledged: the broker delivers it again; its events are known by id.
        tracing::warn!(error = %e, "acknowledging a batch failed");
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_read_and_refuse_a_password() {
        let s =
            BusSettings::parse("amqp://cs@mq.internal:5673/prod%2feu", Some("pw".into())).unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.vhost.as_str(), s.user.as_str()),
            ("mq.internal", 5673, "prod/eu", "cs")
        );
        let d = BusSettings::parse("amqp://127.0.0.1", None).unwrap();
        assert_eq!(
            (
                d.port,
                d.vhost.as_str(),
                d.user.as_str(),
                d.password.as_str()
            ),
            (5672, "/", "guest", "guest")
        );
        assert!(
            BusSettings::parse("amqp://u:secret@h/", None)
                .unwrap_err()
                .contains("password")
        );
        assert!(BusSettings::parse("amqps://h/", None).is_err());
        assert!(format!("{:?}", s).contains("(redacted)") && !format!("{:?}", s).contains("pw"));
    }

    /// Against the RabbitMQ on 127.0.0.1:5672 (`.ci/run` starts it): a batch that cannot be
    /// processed goes to the dead-letter queue with the reason, and the queue moves on to the
    /// next, which is handled and acknowledged.
    #[test]
    fn a_poison_batch_goes_to_the_dead_letters_with_its_reason_and_the_queue_moves_on() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut s = BusSettings::parse("amqp://guest@127.0.0.1:5672/%2f", None).unwrap();
            s.queue = format!("cs.unit.{}.poison", std::process::id());
            let publisher = Publisher::new(s.clone());
            let good = Header {
                provider: Some("aws".into()),
                source: "http".into(),
                records: 1,
                received_ms: 1,
                error: None,
            };
            publisher
                .publish(b"not a batch".to_vec(), None)
                .await
                .expect("RabbitMQ on 127.0.0.1:5672 takes the message (bash .ci/run starts it)");
            publisher.publish(encode(&good, b"{}"), None).await.unwrap();
            let (stop_tx, stop) = tokio::sync::watch::channel(false);
            let handled = Arc::new(Mutex::new(Vec::new()));
            let seen = Arc::clone(&handled);
            let consumer = tokio::spawn(consume(s.clone(), stop, move |d| {
                seen.lock()
                    .unwrap()
                    .push((d.header.source.clone(), d.first));
                std::future::ready(std::future::ready(Handled::Done))
            }));
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while handled.lock().unwrap().is_empty() {
                assert!(std::time::Instant::now() < deadline, "nothing consumed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = stop_tx.send(true);
            consumer.await.unwrap();
            // The good batch is the first the handler sees (the poison one never reached it).
            assert_eq!(*handled.lock().unwrap(), vec![("http".to_string(), true)]);
            let link = connect(&s, "cloudsentinel-test").await.unwrap();
            let dead = link
                .channel
                .basic_get(amqprs::channel::BasicGetArguments::new(&s.dead_queue()))
                .await
                .unwrap()
                .expect("a dead letter");
            let (header, body) = decode(&dead.2).unwrap();
            assert!(
                header
                    .error
                    .as_deref()
                    .unwrap()
                    .contains("not a CloudSentinel batch"),
                "{header:?}"
            );
            assert_eq!(body, b"not a batch");
            for q in [s.queue.clone(), s.dead_queue()] {
                link.channel
                    .queue_delete(amqprs::channel::QueueDeleteArguments::new(&q))
                    .await
                    .unwrap();
            }
        });
    }

    #[test]
    fn a_message_carries_its_header_and_body() {
        let h = Header {
            provider: Some("aws".into()),
            source: "http".into(),
            records: 2,
            received_ms: 5,
            error: None,
        };
        let m = encode(&h, b"{\"a\":1}\n{\"b\":2}");
        let (back, body) = decode(&m).unwrap();
        assert_eq!(back, h);
        assert_eq!(body, b"{\"a\":1}\n{\"b\":2}");
        assert_eq!(back.provider(), Some(Provider::Aws));
        assert!(decode(b"no header").is_err());
    }
}
