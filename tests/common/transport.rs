//! The transports a scenario runs on. [`Transport`] makes fresh addresses
//! of each (a free loopback port, a new Unix socket in the temporary
//! directory, a new in-process name) and nodes listening on them;
//! [`on_transports!`] turns each scenario, an `async fn` taking a
//! [`Transport`], into one test per transport, in a module per transport.
//!
//! ```ignore
//! use common::transport::{Transport, on_transports};
//!
//! async fn echo(t: Transport) {
//!     let server = t.node().await;
//!     // ...
//! }
//!
//! // tcp::echo, unix::echo, mem::echo
//! on_transports!([tcp, unix, mem]; echo);
//! // tcp::echo and mem::echo, each failing after 20 s instead of hanging
//! on_transports!([tcp, mem] within 20; echo);
//! ```

#![allow(dead_code, unused_imports, unused_macros)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use farcall::Node;
use farcall::node::Limits;

/// How a scenario's nodes reach each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    /// TCP on loopback.
    Tcp,
    /// Unix domain sockets.
    Unix,
    /// In-process `mem://` addresses.
    Mem,
}

/// Numbers the addresses this process makes.
static NEXT_ADDRESS: AtomicU64 = AtomicU64::new(0);

impl Transport {
    /// A fresh address to listen on: a free port on 127.0.0.1, a new
    /// socket path in the temporary directory, or a new in-process name.
    pub(crate) fn addr(self) -> String {
        match self {
            Transport::Tcp => "tcp://127.0.0.1:0".to_owned(),
            Transport::Unix => format!("unix://{}", unix_socket_path().display()),
            Transport::Mem => format!("mem://test-{}-{}", std::process::id(), next()),
        }
    }

    /// A node listening on a fresh address of this transport.
    pub(crate) async fn node(self) -> Node {
        Node::listen(self.addr()).await.unwrap()
    }

    /// A node with `limits`, listening on a fresh address of this
    /// transport.
    pub(crate) async fn node_with(self, limits: Limits) -> Node {
        Node::builder()
            .limits(limits)
            .listen(self.addr())
            .await
            .unwrap()
    }
}

/// A path for a new Unix socket in the temporary directory, unique to
/// this process and call (nothing is created there).
pub(crate) fn unix_socket_path() -> PathBuf {
    let file = format!("farcall-test-{}-{}.sock", std::process::id(), next());
    std::env::temp_dir().join(file)
}

fn next() -> u64 {
    NEXT_ADDRESS.fetch_add(1, Ordering::Relaxed)
}

/// One `#[tokio::test]` (two worker threads) per scenario and transport:
/// `on_transports!([tcp, unix, mem]; a, b)` makes `tcp::a`, `tcp::b`,
/// `unix::a`, ... each calling the scenario of that name in the invoking
/// module with [`Transport::Tcp`], ... After the transports, `within SECS`
/// fails each test that takes longer than `SECS` seconds.
macro_rules! on_transports {
    ([$($transport:ident),+ $(,)?] $(within $secs:literal)?; $($scenario:ident),* $(,)?) => {
        $crate::common::transport::on_transports!(
            @each [$($transport),+] [$($secs)?] [$($scenario),*]
        );
    };
    (@each [$($transport:ident),+] $secs:tt $scenarios:tt) => {
        $(
            $crate::common::transport::on_transports!(@module $transport $secs $scenarios);
        )+
    };
    (@module $transport:ident $secs:tt [$($scenario:ident),*]) => {
        mod $transport {
            $(
                $crate::common::transport::on_transports!(@test $transport $secs $scenario);
            )*
        }
    };
    (@test $transport:ident [] $scenario:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $scenario() {
            super::$scenario($crate::common::transport::on_transports!(@variant $transport)).await
        }
    };
    (@test $transport:ident [$secs:literal] $scenario:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $scenario() {
            $crate::common::wait::within(
                $secs,
                stringify!($scenario),
                super::$scenario($crate::common::transport::on_transports!(@variant $transport)),
            )
            .await
        }
    };
    (@variant tcp) => {
        $crate::common::transport::Transport::Tcp
    };
    (@variant unix) => {
        $crate::common::transport::Transport::Unix
    };
    (@variant mem) => {
        $crate::common::transport::Transport::Mem
    };
}

pub(crate) use on_transports;
