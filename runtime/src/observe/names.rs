//! The names of the metrics farcall records through the `metrics` facade
//! (feature `telemetry`). Install any recorder (say
//! `metrics-exporter-prometheus`) before the first call; farcall installs
//! none. Labels are in brackets.
//!
//! | name | kind | labels | what |
//! | --- | --- | --- | --- |
//! | `farcall_calls_started_total` | counter | side, interface, method | calls and one-way messages begun (side: `client` or `server`) |
//! | `farcall_calls_finished_total` | counter | side, interface, method, outcome | calls ended; outcome `ok`, `cancelled` or the fault (`deadline_exceeded`, `unauthorized`, ...) |
//! | `farcall_call_duration_seconds` | histogram | side, interface, method | from start to answer |
//! | `farcall_calls_in_flight` | gauge | side, interface, method | calls begun and not yet ended |
//! | `farcall_bytes_received_total` | counter | | bytes read from connections |
//! | `farcall_bytes_sent_total` | counter | | bytes written to connections |
//! | `farcall_connections` | gauge | | connections open |
//! | `farcall_connections_opened_total` | counter | | connections ever opened |
//! | `farcall_leases_held` | gauge | | leases peers hold on this node's exported objects |
//! | `farcall_streams_open` | gauge | | streams open on this node's connections |
//! | `farcall_stream_credit_granted_total` | counter | | stream items consumers allowed their producers (window updates) |
//! | `farcall_broker_messages_in_total` | counter | queue | messages a broker accepted into a queue |
//! | `farcall_broker_messages_out_total` | counter | queue | deliveries, first ones and redeliveries |
//! | `farcall_broker_redelivered_total` | counter | queue | redeliveries |
//! | `farcall_broker_dead_lettered_total` | counter | queue | messages moved to `<queue>.dlq` |
//! | `farcall_broker_queue_depth` | gauge | queue | messages waiting (not in flight) |
//! | `farcall_broker_published_total` | counter | | messages published on topics |
//! | `farcall_broker_subscriber_drops_total` | counter | | messages a slow subscriber lost |
//! | `farcall_directory_bindings` | gauge | | members bound in a directory |
//! | `farcall_directory_watchers` | gauge | | watches open on a directory |

/// Calls begun.
pub const CALLS_STARTED: &str = "farcall_calls_started_total";
/// Calls ended, by outcome.
pub const CALLS_FINISHED: &str = "farcall_calls_finished_total";
/// Call latency, in seconds.
pub const CALL_DURATION: &str = "farcall_call_duration_seconds";
/// Calls in flight.
pub const CALLS_IN_FLIGHT: &str = "farcall_calls_in_flight";
/// Bytes read.
pub const BYTES_RECEIVED: &str = "farcall_bytes_received_total";
/// Bytes written.
pub const BYTES_SENT: &str = "farcall_bytes_sent_total";
/// Connections open.
pub const CONNECTIONS: &str = "farcall_connections";
/// Connections opened.
pub const CONNECTIONS_OPENED: &str = "farcall_connections_opened_total";
/// Leases held on this node's objects.
pub const LEASES_HELD: &str = "farcall_leases_held";
/// Streams open.
pub const STREAMS_OPEN: &str = "farcall_streams_open";
/// Stream credit granted.
pub const STREAM_CREDIT: &str = "farcall_stream_credit_granted_total";
/// Broker: messages accepted into a queue.
pub const BROKER_IN: &str = "farcall_broker_messages_in_total";
/// Broker: deliveries.
pub const BROKER_OUT: &str = "farcall_broker_messages_out_total";
/// Broker: redeliveries.
pub const BROKER_REDELIVERED: &str = "farcall_broker_redelivered_total";
/// Broker: dead-lettered messages.
pub const BROKER_DEAD_LETTERED: &str = "farcall_broker_dead_lettered_total";
/// Broker: queue depth.
pub const BROKER_DEPTH: &str = "farcall_broker_queue_depth";
/// Broker: messages published.
pub const BROKER_PUBLISHED: &str = "farcall_broker_published_total";
/// Broker: messages dropped for slow subscribers.
pub const BROKER_DROPS: &str = "farcall_broker_subscriber_drops_total";
/// Directory: members bound.
pub const DIRECTORY_BINDINGS: &str = "farcall_directory_bindings";
/// Directory: watches open.
pub const DIRECTORY_WATCHERS: &str = "farcall_directory_watchers";

/// The `outcome` label of a call that ended with `fault`.
pub fn fault_label(fault: &crate::Fault) -> &'static str {
    use crate::Fault as F;
    match fault {
        F::NoSuchObject => "no_such_object",
        F::NoSuchMethod => "no_such_method",
        F::Decode(_) => "decode",
        F::DeadlineExceeded => "deadline_exceeded",
        F::Overloaded => "overloaded",
        F::Panicked => "panicked",
        F::Rejected(_) => "rejected",
        F::Closing => "closing",
        F::NoRoute => "no_route",
        F::InterfaceMismatch(_) => "interface_mismatch",
        F::Unauthorized(_) => "unauthorized",
    }
}
