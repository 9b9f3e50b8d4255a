//! farcall-bench: farcall side by side with its peers and the raw limit,
//! in one process run.
//!
//! ```text
//! cargo run --release -p farcall-bench -- dme [--quick]
//! cargo run --release -p farcall-bench -- rpc [--quick]
//! cargo run --release -p farcall-bench -- rmi [--quick]
//! cargo run --release -p farcall-bench -- directory [--quick]
//! cargo run --release -p farcall-bench -- broker [--quick]
//! ```
//!
//! Each scenario prints a readable table, then, as its last line, one JSON
//! object of figures keyed `<system>.<transport>.<scenario>.<metric>`.

mod broker;
mod directory;
mod dme;
mod measure;
#[path = "../../examples/chapters/pki.rs"]
mod pki;
mod raw;
mod report;
mod rmi;
mod rpc;
mod stream;

use std::time::Duration;

/// How long each throughput point runs, and how many sequential samples.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    pub(crate) window: Duration,
    pub(crate) seq_samples: usize,
    pub(crate) idle_conns: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let budget = if quick {
        Budget {
            window: Duration::from_millis(300),
            seq_samples: 2_000,
            idle_conns: 200,
        }
    } else {
        Budget {
            window: Duration::from_secs(2),
            seq_samples: 20_000,
            idle_conns: 1_000,
        }
    };
    let scenario = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(String::as_str)
        .unwrap_or("dme");
    if std::env::var("FARCALL_BENCH_TRACE").is_ok_and(|v| v == "1") {
        // Every call's span is created and recorded (no output).
        use tracing_subscriber::layer::SubscriberExt;
        let recorder =
            tracing_subscriber::registry().with(tracing_subscriber::filter::LevelFilter::INFO);
        tracing::subscriber::set_global_default(recorder).expect("one subscriber");
        eprintln!("FARCALL_BENCH_TRACE=1: a subscriber records a span per call");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match scenario {
        "dme" => rt.block_on(dme::run(budget)),
        "rpc" => rt.block_on(rpc::run(budget)),
        "rmi" => rt.block_on(rmi::run(budget)),
        "stream" => rt.block_on(stream::run(budget)),
        "directory" => rt.block_on(directory::run(budget)),
        "broker" => rt.block_on(broker::run(budget)),
        // Only farcall's hot path, for a profiler.
        "hot" => rt.block_on(rpc::hot(budget)),
        "hot-echo" => rt.block_on(rpc::hot_echo(budget)),
        "hot-seq" => rt.block_on(dme::hot_seq(budget)),
        "hot-late" => rt.block_on(directory::hot_late(budget)),
        other => {
            eprintln!(
                "unknown scenario `{other}`; available: dme, rpc, rmi, stream, directory, broker"
            );
            std::process::exit(2);
        }
    }
}
