//! Limits and time-outs of a node, part of the protocol's safety.

use std::time::Duration;

/// The limits a node applies to every connection, with their defaults.
///
/// Set the fields you need on [`Limits::default()`]; the type is
/// `#[non_exhaustive]`, so later versions can add limits without breaking
/// the programs that set today's. A value below a field's minimum is raised
/// to that minimum when a node takes the limits
/// ([`NodeBuilder::limits`](crate::NodeBuilder::limits)).
///
/// | field | default | minimum | what happens at the limit |
/// | --- | --- | --- | --- |
/// | `max_frame_len` | 16 MiB | 1 KiB | a larger frame is refused before any allocation; the connection is closed with a reason |
/// | `max_in_flight` | 1024 | 1 | announced in the handshake: a caller past the peer's figure waits for a free slot (back-pressure); a peer that ignores it gets `Overloaded` replies |
/// | `handshake_timeout` | 5 s | | a peer that has not finished the handshake is dropped |
/// | `idle_timeout` | none | | a connection with no calls in flight and no traffic for this long is closed gracefully |
/// | `keepalive_interval` | 10 s | | a ping is sent after this much silence from the peer |
/// | `keepalive_timeout` | 30 s | `keepalive_interval` | a peer silent for this long is declared dead: its calls fail with `Disconnected` |
/// | `write_buffer` | 1 MiB | 4 KiB | senders wait while this many bytes are queued for the socket |
/// | `default_deadline` | 30 s | | the deadline of a request that names none |
/// | `close_grace` | 5 s | | how long a graceful close waits for calls in flight |
/// | `lease_time` | 60 s | 20 ms | how long a lease on a remote object lasts unless renewed (holders renew at half) |
///
/// ```
/// use std::time::Duration;
/// use farcall_runtime::{Limits, Node};
///
/// let mut limits = Limits::default();
/// limits.max_frame_len = 1 << 20;
/// limits.max_in_flight = 256;
/// limits.handshake_timeout = Duration::from_secs(2);
/// let node = Node::builder().limits(limits).build();
/// assert_eq!(node.limits().max_frame_len, 1 << 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest frame accepted or sent, in bytes (at least 1 KiB).
    pub max_frame_len: u32,
    /// The most requests this node has in flight on one connection, and
    /// the most it serves at once for one peer (at least 1). Announced in
    /// the handshake: a caller past the smaller of the two figures waits
    /// for a free slot (back-pressure, within its deadline) rather than
    /// being refused.
    pub max_in_flight: u32,
    /// How long a peer may take to complete the handshake.
    pub handshake_timeout: Duration,
    /// Close connections idle for this long (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// Ping a peer after this much silence.
    pub keepalive_interval: Duration,
    /// Declare a peer dead after this much silence (at least
    /// `keepalive_interval`).
    pub keepalive_timeout: Duration,
    /// Bytes queued for one socket before senders wait (at least 4 KiB).
    pub write_buffer: usize,
    /// The deadline given to requests that set none.
    pub default_deadline: Duration,
    /// How long a graceful close waits for calls in flight to finish.
    pub close_grace: Duration,
    /// How long a lease on an exported object lasts unless renewed;
    /// holders renew at half this time (at least 20 ms).
    pub lease_time: Duration,
    /// How much metadata one call or message may carry; more is refused
    /// before any of it is read (see [`crate::Metadata`]).
    pub metadata: crate::MetadataLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_len: 16 << 20,
            max_in_flight: 1024,
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: None,
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(30),
            write_buffer: 1 << 20,
            default_deadline: Duration::from_secs(30),
            close_grace: Duration::from_secs(5),
            lease_time: Duration::from_secs(60),
            metadata: crate::MetadataLimits::default(),
        }
    }
}

impl Limits {
    /// The same limits with every field raised to its minimum.
    pub(crate) fn clamped(mut self) -> Limits {
        self.max_frame_len = self.max_frame_len.max(1024);
        self.max_in_flight = self.max_in_flight.max(1);
        self.keepalive_timeout = self.keepalive_timeout.max(self.keepalive_interval);
        self.write_buffer = self.write_buffer.max(4096);
        self.lease_time = self.lease_time.max(Duration::from_millis(20));
        self
    }
}

/// The environment variable that sets the replicas of what farcall
/// creates on NATS (the broker's streams, the directory's bucket).
pub const REPLICAS_ENV: &str = "FARCALL_NATS_REPLICAS";

/// How farcall's NATS backends (the broker's and the directory's) use a
/// NATS server or cluster. Plain data, present with or without the `nats`
/// feature; `#[non_exhaustive]`: start from [`NatsOptions::default()`] or
/// [`NatsOptions::from_env()`] and set the fields you need.
///
/// ```
/// use farcall_runtime::NatsOptions;
///
/// let mut options = NatsOptions::default();
/// options.replicas = 3;
/// assert_eq!(options.replicas, 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatsOptions {
    /// Replicas of each stream or bucket farcall creates: 1 on a single
    /// server, 3 on a three-server cluster to survive the loss of one.
    /// Streams and buckets that exist already are used as they are.
    pub replicas: usize,
    /// How to authenticate to the server.
    pub auth: NatsAuth,
    /// TLS to the server.
    pub tls: NatsTls,
}

impl Default for NatsOptions {
    fn default() -> Self {
        NatsOptions {
            replicas: 1,
            auth: NatsAuth::None,
            tls: NatsTls::default(),
        }
    }
}

/// How farcall authenticates to a NATS server. Secrets never show in
/// `Debug` output.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum NatsAuth {
    /// No credentials.
    #[default]
    None,
    /// A token (nats-server's `authorization { token }`).
    Token(String),
    /// A user name and password.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// An NKey seed (`SU…`).
    NKey(String),
    /// A `.creds` file (a user JWT and its NKey seed), as `nsc` writes it.
    CredentialsFile(std::path::PathBuf),
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatsAuth::None => f.write_str("None"),
            NatsAuth::Token(_) => f.write_str("Token(<hidden>)"),
            NatsAuth::UserPassword { user, .. } => write!(f, "UserPassword({user}, <hidden>)"),
            NatsAuth::NKey(_) => f.write_str("NKey(<hidden>)"),
            NatsAuth::CredentialsFile(p) => write!(f, "CredentialsFile({})", p.display()),
        }
    }
}

/// TLS from farcall to a NATS server (`nats://` addresses; `tls://` names
/// a farcall node).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatsTls {
    /// Refuse to talk to the server without TLS.
    pub require: bool,
    /// Roots (PEM file) the server's certificate must be signed by; the
    /// system's roots otherwise.
    pub roots: Option<std::path::PathBuf>,
    /// A client certificate and its key (PEM files), for servers that
    /// verify clients.
    pub client_cert: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl NatsOptions {
    /// The options the environment sets: [`REPLICAS_ENV`] (1 to 5), else 1.
    pub fn from_env() -> NatsOptions {
        let replicas = std::env::var(REPLICAS_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .filter(|r: &usize| (1..=5).contains(r))
            .unwrap_or(1);
        NatsOptions {
            replicas,
            ..NatsOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_below_a_minimum_are_raised_to_it() {
        let limits = Limits {
            max_frame_len: 0,
            max_in_flight: 0,
            keepalive_interval: Duration::from_secs(20),
            keepalive_timeout: Duration::from_secs(1),
            write_buffer: 1,
            lease_time: Duration::ZERO,
            ..Limits::default()
        };
        let l = limits.clamped();
        assert_eq!(l.max_frame_len, 1024);
        assert_eq!(l.max_in_flight, 1);
        assert_eq!(l.keepalive_timeout, Duration::from_secs(20));
        assert_eq!(l.write_buffer, 4096);
        assert_eq!(l.lease_time, Duration::from_millis(20));
        assert_eq!(Limits::default().clamped(), Limits::default());
    }

    #[test]
    fn a_node_takes_its_limits_raised() {
        let limits = Limits {
            max_in_flight: 0,
            ..Limits::default()
        };
        let node = crate::Node::builder().limits(limits).build();
        assert_eq!(node.limits().max_in_flight, 1);
    }
}
