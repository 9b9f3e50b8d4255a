//! The broker itself, in process: queues and topics.
//!
//! An embedded broker calls it directly; a standalone one serves it to
//! other nodes ([`crate::expose`]).
//!
//! Here: the [`Engine`] (its queues by name, durable queues found on disk,
//! publishing, figures, closing); one queue is in `queue`, the topics in
//! `topic`.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;

use crate::config::{BrokerConfig, QueueConfig, QueueStats, Stats, SubscribeOptions};
use crate::error::BrokerError;
use crate::log::{Log, LogConfig};
use crate::subject::{Pattern, validate_queue_name, validate_subject};

mod admin;
mod queue;
mod topic;

use queue::Msg;
pub(crate) use queue::{EngineConsumer, QueueCore};
use topic::Topics;
pub(crate) use topic::{EngineSubscription, SubCore};

/// The suffix of a dead-letter queue's name.
pub const DLQ_SUFFIX: &str = ".dlq";
/// The file in a durable queue's directory that holds its configuration.
const CONFIG_FILE: &str = "queue.config";

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One message delivered to a consumer.
#[derive(Clone, Debug)]
pub(crate) struct RawDelivery {
    /// Names this delivery for ack and nack (unique within the queue).
    pub(crate) tag: u64,
    /// 1 for the first delivery, 2 for the first redelivery, ...
    pub(crate) attempt: u32,
    /// The message.
    pub(crate) payload: Bytes,
}

/// The in-process broker.
#[derive(Debug)]
pub(crate) struct Engine {
    config: BrokerConfig,
    queues: Mutex<HashMap<String, Arc<QueueCore>>>,
    topics: Topics,
    closed: AtomicBool,
    me: Weak<Engine>,
}

impl Engine {
    /// A broker with `config`; durable queues found under its data
    /// directory are opened with their messages.
    pub(crate) fn open(config: BrokerConfig) -> Result<Arc<Engine>, BrokerError> {
        if let Some(dir) = &config.data {
            std::fs::create_dir_all(dir).map_err(|e| {
                BrokerError::Storage(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let engine = Arc::new_cyclic(|me| Engine {
            config,
            queues: Mutex::new(HashMap::new()),
            topics: Topics::new(),
            closed: AtomicBool::new(false),
            me: me.clone(),
        });
        if let Some(dir) = engine.config.data.clone() {
            engine.recover(&dir)?;
        }
        Ok(engine)
    }

    fn recover(&self, dir: &Path) -> Result<(), BrokerError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| BrokerError::Storage(format!("cannot read {}: {e}", dir.display())))?;
        let mut queues = lock(&self.queues);
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(unhex)
                .filter(|n| validate_queue_name(n).is_ok())
            else {
                continue;
            };
            let Ok(raw) = std::fs::read(path.join(CONFIG_FILE)) else {
                tracing::warn!(dir = %path.display(), "no queue configuration; skipped");
                continue;
            };
            let config: QueueConfig = match postcard::from_bytes(&raw) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(dir = %path.display(), error = %e, "bad queue configuration; skipped");
                    continue;
                }
            };
            let q = self.make_queue(&name, config)?;
            let s = q.stats();
            tracing::info!(
                queue = %name,
                messages = s.depth,
                durable = q.config().durable,
                "queue recovered"
            );
            queues.insert(name, q);
        }
        Ok(())
    }

    /// The largest message accepted.
    pub(crate) fn max_message(&self) -> u64 {
        self.config.max_message
    }

    fn check_size(&self, payload: &Bytes) -> Result<(), BrokerError> {
        crate::error::check_size(payload, self.config.max_message)
    }

    fn check_open(&self) -> Result<(), BrokerError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BrokerError::Closed);
        }
        Ok(())
    }

    fn queue_dir(&self, name: &str) -> Option<PathBuf> {
        self.config.data.as_ref().map(|d| d.join(hex(name)))
    }

    fn make_queue(&self, name: &str, config: QueueConfig) -> Result<Arc<QueueCore>, BrokerError> {
        let mut ready = VecDeque::new();
        let mut next_seq = 1;
        let log = if config.durable {
            let dir = self
                .queue_dir(name)
                .ok_or_else(|| BrokerError::NoStorage(name.to_owned()))?;
            std::fs::create_dir_all(&dir).map_err(|e| {
                BrokerError::Storage(format!("cannot create {}: {e}", dir.display()))
            })?;
            let cfg_path = dir.join(CONFIG_FILE);
            if !cfg_path.exists() {
                let bytes = postcard::to_stdvec(&config)
                    .map_err(|e| BrokerError::Storage(e.to_string()))?;
                std::fs::write(&cfg_path, bytes).map_err(|e| {
                    BrokerError::Storage(format!("cannot write {}: {e}", cfg_path.display()))
                })?;
            }
            let log_config = LogConfig {
                fsync: self.config.fsync,
                segment_bytes: self.config.segment_bytes,
                ..LogConfig::default()
            };
            let (log, pending) = Log::open(&dir, log_config)
                .map_err(|e| BrokerError::Storage(format!("queue {name:?}: {e}")))?;
            let attempts = log.take_attempts();
            for (seq, payload) in pending {
                next_seq = next_seq.max(seq + 1);
                ready.push_back(Msg {
                    seq,
                    payload,
                    // Its deliveries before the restart count.
                    attempts: attempts.get(&seq).copied().unwrap_or(0),
                    since: std::time::Instant::now(),
                });
            }
            Some(log)
        } else {
            None
        };
        Ok(QueueCore::new(
            name,
            config,
            log,
            self.me.clone(),
            ready,
            next_seq,
        ))
    }

    /// The queue `name`, created with `config` (or the default) if it does
    /// not exist; with `Some(config)`, an existing queue must have it.
    pub(crate) fn declare(
        &self,
        name: &str,
        config: Option<QueueConfig>,
    ) -> Result<Arc<QueueCore>, BrokerError> {
        self.check_open()?;
        validate_queue_name(name)?;
        let mut queues = lock(&self.queues);
        if let Some(q) = queues.get(name) {
            if let Some(c) = config
                && c != q.config
            {
                return Err(BrokerError::QueueConfigMismatch {
                    name: name.to_owned(),
                    existing: q.config.clone(),
                    asked: c,
                });
            }
            return Ok(q.clone());
        }
        let dead_letters = config.as_ref().is_none_or(|c| c.max_deliver > 0);
        if dead_letters
            && !name.ends_with(DLQ_SUFFIX)
            && name.len() + DLQ_SUFFIX.len() > crate::subject::MAX_SUBJECT_LEN
        {
            return Err(BrokerError::InvalidQueueName {
                name: crate::error::cut(name),
                reason: format!(
                    "longer than {} bytes: its dead-letter queue's name `<name>{DLQ_SUFFIX}` must fit in {}",
                    crate::subject::MAX_SUBJECT_LEN - DLQ_SUFFIX.len(),
                    crate::subject::MAX_SUBJECT_LEN
                ),
            });
        }
        let q = self.make_queue(name, config.unwrap_or_default())?;
        queues.insert(name.to_owned(), q.clone());
        Ok(q)
    }

    /// The queue `name` if it exists.
    pub(crate) fn existing(&self, name: &str) -> Option<Arc<QueueCore>> {
        lock(&self.queues).get(name).cloned()
    }

    /// Publishes `payload` on `subject` to every matching subscription.
    pub(crate) fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BrokerError> {
        self.check_open()?;
        validate_subject(subject)?;
        self.check_size(&payload)?;
        self.topics.publish(subject, payload);
        Ok(())
    }

    /// Publishes a packed batch, in order; messages the broker refuses
    /// (subject, size) are left out and counted in the result, and a batch
    /// malformed from some point on is published up to there.
    pub(crate) fn publish_packed(&self, batch: &Bytes) -> Result<usize, BrokerError> {
        self.publish_packed_where(batch, |_| true)
    }

    /// [`Engine::publish_packed`], refusing (and counting) the messages
    /// whose subject `allowed` refuses.
    pub(crate) fn publish_packed_where(
        &self,
        batch: &Bytes,
        allowed: impl Fn(&str) -> bool,
    ) -> Result<usize, BrokerError> {
        self.check_open()?;
        let max = self.config.max_message as usize;
        let mut refused = 0;
        let mut good: Vec<(&str, Bytes)> = Vec::new();
        for m in crate::pack::unpack(batch) {
            match m {
                Ok((s, p)) if p.len() <= max && validate_subject(s).is_ok() && allowed(s) => {
                    good.push((s, p))
                }
                Ok(_) => refused += 1,
                Err(e) => {
                    tracing::debug!(error = %e, "a malformed batch; its rest is dropped");
                    refused += 1;
                    break;
                }
            }
        }
        self.topics.publish_many(good);
        Ok(refused)
    }

    /// A new subscription to `pattern`.
    pub(crate) fn subscribe(
        &self,
        pattern: &str,
        options: SubscribeOptions,
    ) -> Result<EngineSubscription, BrokerError> {
        self.check_open()?;
        let pattern = Pattern::parse(pattern)?;
        if options.buffer == 0 {
            return Err(BrokerError::Rejected(
                "a subscription's buffer must hold at least one message".into(),
            ));
        }
        Ok(self.topics.subscribe(pattern, options, self.me.clone()))
    }

    /// Sends `payload` to the queue `name` (created with the default
    /// configuration if absent).
    pub(crate) async fn send(&self, name: &str, payload: Bytes) -> Result<(), BrokerError> {
        self.check_size(&payload)?;
        let q = match self.existing(name) {
            Some(q) => q,
            None => self.declare(name, None)?,
        };
        q.send(payload).await
    }

    /// Every queue's and topic's figures.
    pub(crate) fn stats(&self) -> Stats {
        let mut queues: Vec<QueueStats> = lock(&self.queues).values().map(|q| q.stats()).collect();
        queues.sort_by(|a, b| a.name.cmp(&b.name));
        let (topics, subscriptions) = self.topics.stats();
        Stats {
            queues,
            topics,
            subscriptions,
            dropped: self.topics.dropped.load(Ordering::Relaxed),
        }
    }

    /// Stops taking messages; subscriptions end and consumers see the end.
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.topics.close_all();
        let queues: Vec<_> = lock(&self.queues).values().cloned().collect();
        for q in queues {
            q.close();
            if let Some(log) = &q.log
                && let Err(e) = log.flush().await
            {
                tracing::warn!(queue = %q.name, error = %e, "flushing the log failed");
            }
        }
    }
}

// ---------------------------------------------------------------- names on disk

fn hex(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) || s.len() > 2 * crate::subject::MAX_SUBJECT_LEN {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}
