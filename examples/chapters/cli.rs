//! What every example's `main` shares: the runtime, the arguments, the
//! exit code, and serving until stopped.
//!
//! ```ignore
//! #[path = "chapters/cli.rs"]
//! mod cli;
//!
//! fn main() -> std::process::ExitCode {
//!     cli::main(|args| async move {
//!         match cli::words(&args).as_slice() {
//!             [] => println!("one process"),
//!             _ => return Err(USAGE.into()),
//!         }
//!         Ok(())
//!     })
//! }
//! ```

// Each example uses the part it needs.
#![allow(dead_code)]

use std::error::Error;
use std::future::Future;
use std::process::ExitCode;

/// What an example's body returns: an error is printed as one sentence.
pub(crate) type Outcome = Result<(), Box<dyn Error>>;

/// Runs `body` with the command-line arguments (the program's name left
/// out) on a multi-threaded tokio runtime; exits 0, or prints the error
/// and exits 1.
pub(crate) fn main<F, Fut>(body: F) -> ExitCode
where
    F: FnOnce(Vec<String>) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(body(std::env::args().skip(1).collect())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The arguments as string slices, for matching on their shape.
pub(crate) fn words(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Says so under `tag` and keeps what serves alive until the process is
/// stopped: the work runs on tokio's worker threads, and the default
/// SIGINT action (Ctrl-C) ends the process.
pub(crate) async fn serve_until_stopped(tag: &str) -> Outcome {
    println!("  {tag:<6} | serving until stopped (Ctrl-C)");
    std::future::pending::<Outcome>().await
}
