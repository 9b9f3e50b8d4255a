//! Dialing a node again after its connection broke: exponential backoff
//! within a bounded window, shared by every client that re-dials (remote
//! object stubs, direct message clients).

use std::time::{Duration, Instant};

use super::Node;
use crate::address::Address;
use crate::connection::Connection;
use crate::error::Error;

/// The first pause between attempts to reach a node; it doubles up to
/// [`MAX_BACKOFF`].
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(10);
/// The longest pause between attempts to reach a node.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// How long a call keeps trying to reach a node that does not answer
/// (within its deadline): long enough for a restart, short enough that a
/// caller of a dead node learns it promptly.
pub(crate) const RECONNECT_WINDOW: Duration = Duration::from_secs(2);

impl Node {
    /// An open connection to one of `addrs` (the node's own, reused when
    /// open, or a new one), dialed in turn with exponential backoff until
    /// `until` or for [`RECONNECT_WINDOW`], whichever comes first. Gives
    /// back the last attempt's error when none answered in time; `addrs`
    /// must not be empty.
    pub(crate) async fn redial(
        &self,
        addrs: &[Address],
        until: Instant,
    ) -> Result<Connection, Error> {
        let until = until.min(Instant::now() + RECONNECT_WINDOW);
        let mut pause = FIRST_BACKOFF;
        loop {
            let mut last = None;
            for addr in addrs {
                match self.connection(addr).await {
                    Ok(c) => return Ok(c),
                    Err(e @ Error::Shutdown) => return Err(e),
                    Err(e) => last = Some(e),
                }
            }
            let now = Instant::now();
            if now >= until {
                return Err(last.unwrap_or(Error::Closed));
            }
            // The last pause ends with the window: one more attempt then.
            tokio::time::sleep(pause.min(until - now)).await;
            pause = (pause * 2).min(MAX_BACKOFF);
        }
    }
}
