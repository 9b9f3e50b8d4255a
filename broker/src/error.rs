//! The broker's error.

use farcall_runtime::RemoteError;
use serde::{Deserialize, Serialize};

use crate::config::QueueConfig;

/// Why a broker operation failed.
///
/// It crosses the wire as the error of every call to a standalone broker;
/// a failed call (deadline, disconnection, ...) arrives as
/// [`BrokerError::Remote`].
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error, farcall_macros::Schema,
)]
#[schema(crate = "::farcall_runtime")]
#[non_exhaustive]
pub enum BrokerError {
    /// A subject given to `publish` breaks the subject rules.
    #[error("invalid subject {subject:?}: {reason}")]
    InvalidSubject {
        /// The subject as given (cut to 300 bytes).
        subject: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// A pattern given to `subscribe` breaks the pattern rules.
    #[error("invalid pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern as given (cut to 300 bytes).
        pattern: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// A queue name breaks the naming rules.
    #[error("invalid queue name {name:?}: {reason}")]
    InvalidQueueName {
        /// The name as given (cut to 300 bytes).
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// A message is larger than the broker accepts.
    #[error("message of {size} bytes is over the broker's limit of {limit} bytes")]
    TooLarge {
        /// The encoded size of the message.
        size: u64,
        /// The broker's limit.
        limit: u64,
    },
    /// The queue exists with another configuration.
    #[error("queue {name:?} exists with another configuration: {existing} (asked for {asked})")]
    QueueConfigMismatch {
        /// The queue.
        name: String,
        /// The configuration it has.
        existing: QueueConfig,
        /// The configuration asked for.
        asked: QueueConfig,
    },
    /// A durable queue was asked of a broker that has no storage (an
    /// embedded broker made without a data directory).
    #[error("queue {0:?} is durable but the broker has no data directory")]
    NoStorage(String),
    /// The delivery is no longer in flight: it was acknowledged already,
    /// or its ack-wait passed and it went back to the queue.
    #[error(
        "delivery {tag} of queue {queue:?} is not in flight (acked already, or its ack-wait passed)"
    )]
    NotInFlight {
        /// The queue.
        queue: String,
        /// The delivery's tag.
        tag: u64,
    },
    /// A subscriber fell further behind than its buffer and its policy is
    /// to be disconnected.
    #[error("subscription to {pattern:?} cut off: it fell {buffer} messages behind")]
    SlowSubscriber {
        /// The subscription's pattern.
        pattern: String,
        /// Its buffer size.
        buffer: u32,
    },
    /// The queue holds as many messages as its configuration allows.
    #[error("queue {name:?} is full: {depth} messages (its max_depth)")]
    QueueFull {
        /// The queue.
        name: String,
        /// Its limit.
        depth: u64,
    },
    /// The broker's storage failed.
    #[error("storage: {0}")]
    Storage(String),
    /// A message did not decode as the type asked for.
    #[error("could not decode a message: {0}")]
    Decode(String),
    /// A message did not encode.
    #[error("could not encode a message: {0}")]
    Encode(String),
    /// The broker refused the request (too many consumers, ...).
    #[error("rejected: {0}")]
    Rejected(String),
    /// The broker's policy does not allow this client this operation.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The distributed backend (NATS) failed.
    #[error("nats: {0}")]
    Backend(String),
    /// The broker is shutting down or gone.
    #[error("the broker is closed")]
    Closed,
    /// The client could not be set up (an address that is not one, ...).
    #[error("broker configuration: {0}")]
    Config(String),
    /// The call failed in the runtime.
    #[error(transparent)]
    Remote(RemoteError),
    /// A consumer asked for a prefetch of 0: it could never hold a
    /// delivery, so it would never receive one.
    #[error(
        "a consumer of queue {queue:?} with a prefetch of 0 would never receive a message: ask for at least 1"
    )]
    ZeroPrefetch {
        /// The queue the consumer was for.
        queue: String,
    },
    /// The queue asked for does not exist (an operation that never
    /// creates one: `recv`, peek, info, purge, delete, move).
    #[error("queue {name:?} does not exist")]
    NoSuchQueue {
        /// The queue.
        name: String,
    },
}

impl From<RemoteError> for BrokerError {
    fn from(e: RemoteError) -> Self {
        match e {
            RemoteError::Unauthorized(why) => BrokerError::Unauthorized(why),
            other => BrokerError::Remote(other),
        }
    }
}

/// A runtime failure (connecting to a standalone broker, ...), as the
/// call error it is: [`BrokerError::Remote`].
impl From<farcall_runtime::Error> for BrokerError {
    fn from(e: farcall_runtime::Error) -> Self {
        RemoteError::from(e).into()
    }
}

/// A broker error where a [`RemoteError`] is expected (a remote method
/// that uses the broker, a call carried by a queue): a failed call as it
/// was, a refusal by policy as `Unauthorized`, a message over the limit as
/// `Encode`, anything else as `Rejected` with the broker's sentence.
impl From<BrokerError> for RemoteError {
    fn from(e: BrokerError) -> Self {
        match e {
            BrokerError::Remote(r) => r,
            BrokerError::Unauthorized(why) => RemoteError::Unauthorized(why),
            e @ BrokerError::TooLarge { .. } => RemoteError::Encode(e.to_string()),
            other => RemoteError::Rejected(other.to_string()),
        }
    }
}

/// `TooLarge` if `payload` is over `limit` bytes (every backend checks
/// before sending or storing).
pub(crate) fn check_size(payload: &[u8], limit: u64) -> Result<(), BrokerError> {
    let size = payload.len() as u64;
    if size > limit {
        return Err(BrokerError::TooLarge { size, limit });
    }
    Ok(())
}

/// `s` cut to at most 300 bytes (on a character boundary), for errors.
pub(crate) fn cut(s: &str) -> String {
    let mut end = s.len().min(300);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_by_policy_stays_typed() {
        let e = BrokerError::from(RemoteError::Unauthorized("no publishing here".into()));
        assert_eq!(e, BrokerError::Unauthorized("no publishing here".into()));
        assert_eq!(e.to_string(), "unauthorized: no publishing here");
        let e = BrokerError::from(RemoteError::Overloaded);
        assert_eq!(e, BrokerError::Remote(RemoteError::Overloaded));
    }

    #[test]
    fn a_runtime_error_crosses_with_question_mark() {
        fn connect() -> Result<(), BrokerError> {
            let addr: farcall_runtime::Address = "mem://broker".parse().unwrap();
            Err(farcall_runtime::Error::Connect {
                addr,
                source: std::io::ErrorKind::ConnectionRefused.into(),
            })?
        }
        let e = connect().unwrap_err();
        let BrokerError::Remote(RemoteError::Io(why)) = &e else {
            panic!("expected Remote(Io), got {e:?}");
        };
        assert!(why.starts_with("cannot connect to mem://broker: "), "{why}");
        assert_eq!(
            &e.to_string(),
            why,
            "the connect error is the whole message"
        );

        fn closed() -> Result<(), BrokerError> {
            Err(farcall_runtime::Error::Closed)?
        }
        assert_eq!(closed(), Err(BrokerError::Remote(RemoteError::Closed)));
    }

    #[test]
    fn a_broker_error_crosses_into_a_remote_error() {
        fn serve() -> Result<(), RemoteError> {
            Err(BrokerError::QueueFull {
                name: "jobs".into(),
                depth: 3,
            })?
        }
        assert_eq!(
            serve(),
            Err(RemoteError::Rejected(
                "queue \"jobs\" is full: 3 messages (its max_depth)".into()
            ))
        );
        let back = |e: BrokerError| RemoteError::from(e);
        assert_eq!(
            back(BrokerError::Unauthorized("no".into())),
            RemoteError::Unauthorized("no".into())
        );
        assert_eq!(
            back(BrokerError::Remote(RemoteError::Overloaded)),
            RemoteError::Overloaded
        );
        assert_eq!(
            back(BrokerError::TooLarge { size: 9, limit: 4 }),
            RemoteError::Encode("message of 9 bytes is over the broker's limit of 4 bytes".into())
        );

        // An application's error that takes remote errors takes the
        // broker's through them.
        #[derive(Debug, PartialEq)]
        struct AppError(RemoteError);
        impl From<RemoteError> for AppError {
            fn from(e: RemoteError) -> Self {
                AppError(e)
            }
        }
        fn app() -> Result<(), AppError> {
            Err(RemoteError::from(BrokerError::Closed))?
        }
        assert_eq!(
            app(),
            Err(AppError(RemoteError::Rejected(
                "the broker is closed".into()
            )))
        );
    }

    #[test]
    fn a_configuration_mismatch_reads_as_a_sentence() {
        let e = BrokerError::QueueConfigMismatch {
            name: "jobs".into(),
            existing: QueueConfig::durable().max_depth(100),
            asked: QueueConfig::default()
                .ack_wait(std::time::Duration::from_millis(250))
                .max_deliver(0),
        };
        assert_eq!(
            e.to_string(),
            "queue \"jobs\" exists with another configuration: durable, ack-wait 30 s, \
             dead-lettered after 5 deliveries, max depth 100 (asked for not durable, \
             ack-wait 250 ms, never dead-lettered, max depth 1000000)"
        );
    }
}
