//! Administering the engine's queues: listing and describing them,
//! looking at their messages, purging, deleting, and moving messages
//! from one queue to another (a dead-letter queue back to its queue).
//! None of these creates a queue: a missing one is `NoSuchQueue`.

use std::sync::Arc;

use super::{Engine, QueueCore, lock};
use crate::config::{PeekedMessage, QueueInfo};
use crate::error::BrokerError;
use crate::subject::validate_queue_name;

impl Engine {
    /// The queue `name`, which must exist.
    pub(crate) fn named(&self, name: &str) -> Result<Arc<QueueCore>, BrokerError> {
        validate_queue_name(name)?;
        self.existing(name).ok_or_else(|| BrokerError::NoSuchQueue {
            name: name.to_owned(),
        })
    }

    /// Every queue, by name.
    pub(crate) fn queue_infos(&self) -> Vec<QueueInfo> {
        let queues: Vec<Arc<QueueCore>> = lock(&self.queues).values().cloned().collect();
        let mut out: Vec<QueueInfo> = queues.iter().map(|q| q.info()).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The queue `name`'s configuration and what it holds.
    pub(crate) fn queue_info(&self, name: &str) -> Result<QueueInfo, BrokerError> {
        Ok(self.named(name)?.info())
    }

    /// Up to `count` of the messages waiting in `name`, from the `skip`-th
    /// on, within about `max_bytes`; nothing about them changes.
    pub(crate) fn peek(
        &self,
        name: &str,
        skip: usize,
        count: usize,
        max_bytes: usize,
    ) -> Result<Vec<PeekedMessage>, BrokerError> {
        Ok(self.named(name)?.peek(skip, count, max_bytes))
    }

    /// Removes every message of `name`; returns how many.
    pub(crate) fn purge(&self, name: &str) -> Result<u64, BrokerError> {
        self.check_open()?;
        Ok(self.named(name)?.purge())
    }

    /// Deletes the queue `name`: its messages, its consumers (they end)
    /// and, for a durable queue, its directory.
    pub(crate) fn delete(&self, name: &str) -> Result<(), BrokerError> {
        self.check_open()?;
        validate_queue_name(name)?;
        // Under the lock, so that no one declares it again meanwhile.
        let mut queues = lock(&self.queues);
        let q = queues
            .remove(name)
            .ok_or_else(|| BrokerError::NoSuchQueue {
                name: name.to_owned(),
            })?;
        q.remove();
        if q.config.durable
            && let Some(dir) = self.queue_dir(name)
        {
            std::fs::remove_dir_all(&dir).map_err(|e| {
                BrokerError::Storage(format!("cannot remove {}: {e}", dir.display()))
            })?;
        }
        Ok(())
    }

    /// Moves up to `max` of the messages waiting in `from` to the end of
    /// `to`, oldest first, where they start again (no attempt counted);
    /// returns how many. Each is in `to` before it leaves `from`, so a
    /// crash between the two leaves it in both, never in neither. A
    /// message `to` refuses (full) stays first in `from`, and the error
    /// is returned: those moved before it stay moved.
    pub(crate) async fn move_messages(
        &self,
        from: &str,
        to: &str,
        max: u64,
    ) -> Result<u64, BrokerError> {
        self.check_open()?;
        let source = self.named(from)?;
        let target = self.named(to)?;
        if from == to {
            return Err(BrokerError::Rejected(format!(
                "cannot move the messages of queue {from:?} to itself"
            )));
        }
        let mut moved = 0;
        while moved < max {
            let Some(msg) = source.take_ready() else {
                break;
            };
            match target.send(msg.payload.clone()).await {
                Ok(()) => {
                    source.moved(&msg);
                    moved += 1;
                }
                Err(e) => {
                    source.put_back(msg);
                    return Err(e);
                }
            }
        }
        Ok(moved)
    }
}
