//! Limits and time-outs of a node, part of the protocol's safety.

use std::time::Duration;

/// The limits a node applies to every connection, with their defaults.
///
/// | limit | default | what happens at the limit |
/// | --- | --- | --- |
/// | `max_frame_len` | 16 MiB | a larger frame is refused before any allocation; the connection is closed with a reason |
/// | `max_in_flight` | 1024 | callers wait for a free slot (back-pressure); a peer that exceeds ours gets `Overloaded` replies |
/// | `handshake_timeout` | 5 s | a peer that has not finished the handshake is dropped |
/// | `idle_timeout` | none | a connection with no calls in flight and no traffic for this long is closed gracefully |
/// | `keepalive_interval` | 10 s | a ping is sent after this much silence from the peer |
/// | `keepalive_timeout` | 30 s | a peer silent for this long is declared dead: its calls fail with `Disconnected` |
/// | `write_buffer` | 1 MiB | senders wait while this many bytes are queued for the socket |
/// | `default_deadline` | 30 s | the deadline of a request that names none |
/// | `close_grace` | 5 s | how long a graceful close waits for calls in flight |
/// | `lease_time` | 60 s | how long a lease on a remote object lasts unless renewed (holders renew at half) |
///
/// ```
/// use std::time::Duration;
/// use farcall_runtime::Limits;
///
/// let limits = Limits::default()
///     .max_frame_len(1 << 20)
///     .max_in_flight(256)
///     .handshake_timeout(Duration::from_secs(2));
/// assert_eq!(limits.get_max_frame_len(), 1 << 20);
/// ```
#[derive(Clone, Debug)]
pub struct Limits {
    pub(crate) max_frame_len: u32,
    pub(crate) max_in_flight: u32,
    pub(crate) handshake_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) keepalive_interval: Duration,
    pub(crate) keepalive_timeout: Duration,
    pub(crate) write_buffer: usize,
    pub(crate) default_deadline: Duration,
    pub(crate) close_grace: Duration,
    pub(crate) lease_time: Duration,
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
        }
    }
}

impl Limits {
    /// The largest frame accepted or sent, in bytes (at least 1 KiB).
    pub fn max_frame_len(mut self, bytes: u32) -> Self {
        self.max_frame_len = bytes.max(1024);
        self
    }
    /// The most requests this node has in flight on one connection, and
    /// the most it serves at once for one peer (at least 1).
    pub fn max_in_flight(mut self, n: u32) -> Self {
        self.max_in_flight = n.max(1);
        self
    }
    /// How long a peer may take to complete the handshake.
    pub fn handshake_timeout(mut self, d: Duration) -> Self {
        self.handshake_timeout = d;
        self
    }
    /// Close connections idle for this long (`None`: never).
    pub fn idle_timeout(mut self, d: Option<Duration>) -> Self {
        self.idle_timeout = d;
        self
    }
    /// Ping a silent peer after `interval`; declare it dead after `timeout`.
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.keepalive_interval = interval;
        self.keepalive_timeout = timeout.max(interval);
        self
    }
    /// Bytes queued for one socket before senders wait.
    pub fn write_buffer(mut self, bytes: usize) -> Self {
        self.write_buffer = bytes.max(4096);
        self
    }
    /// The deadline given to requests that set none.
    pub fn default_deadline(mut self, d: Duration) -> Self {
        self.default_deadline = d;
        self
    }
    /// How long a graceful close waits for calls in flight to finish.
    pub fn close_grace(mut self, d: Duration) -> Self {
        self.close_grace = d;
        self
    }

    /// How long a lease on an exported object lasts unless renewed;
    /// holders renew at half this time (at least 20 ms).
    pub fn lease_time(mut self, d: Duration) -> Self {
        self.lease_time = d.max(Duration::from_millis(20));
        self
    }

    /// The configured lease time.
    pub fn get_lease_time(&self) -> Duration {
        self.lease_time
    }

    /// The configured maximum frame length.
    pub fn get_max_frame_len(&self) -> u32 {
        self.max_frame_len
    }
    /// The configured maximum of requests in flight per connection.
    pub fn get_max_in_flight(&self) -> u32 {
        self.max_in_flight
    }
    /// The configured handshake time-out.
    pub fn get_handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }
    /// The configured default deadline.
    pub fn get_default_deadline(&self) -> Duration {
        self.default_deadline
    }
}
