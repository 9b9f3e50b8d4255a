//! Timing helpers: latency percentiles, windowed throughput, RSS.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Latency percentiles in microseconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Latency {
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
}

/// One operation of a sequential measurement, boxed so that several
/// systems can be measured together.
pub(crate) type SeqOp = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Boxes an operation for [`interleaved`].
pub(crate) fn seq_op<F, Fut>(mut op: F) -> SeqOp
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Box::new(move || Box::pin(op()))
}

/// Rounds that [`interleaved`] alternates the systems in.
const ROUNDS: usize = 20;

/// Measures the latency of each operation, `n` samples each, one call
/// after another on a runtime worker (as an application's task would).
/// The systems take turns in rounds, so that a machine whose speed drifts
/// (a shared virtual machine does) affects them alike.
pub(crate) async fn interleaved(n: usize, ops: Vec<SeqOp>) -> Vec<Latency> {
    tokio::spawn(async move {
        let mut ops = ops;
        for op in ops.iter_mut() {
            for _ in 0..n / 10 + 100 {
                op().await;
            }
        }
        let mut samples: Vec<Vec<Duration>> = ops.iter().map(|_| Vec::with_capacity(n)).collect();
        for _ in 0..ROUNDS {
            for (op, out) in ops.iter_mut().zip(samples.iter_mut()) {
                for _ in 0..n.div_ceil(ROUNDS) {
                    let t = Instant::now();
                    op().await;
                    out.push(t.elapsed());
                }
            }
        }
        samples.into_iter().map(Latency::of).collect()
    })
    .await
    .expect("benchmark task")
}

impl Latency {
    fn of(mut samples: Vec<Duration>) -> Latency {
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
        Latency {
            p50_us: at(0.50).as_secs_f64() * 1e6,
            p99_us: at(0.99).as_secs_f64() * 1e6,
        }
    }
}

/// Runs `inflight` concurrent loops of `op` for `window` and returns
/// completed operations per second.
pub(crate) async fn concurrent<F, Fut>(inflight: usize, window: Duration, op: F) -> f64
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let counting = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::with_capacity(inflight);
    for _ in 0..inflight {
        let (op, stop, count, counting) =
            (op.clone(), stop.clone(), count.clone(), counting.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                op().await;
                if counting.load(Ordering::Relaxed) {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(window / 5).await; // warm-up
    counting.store(true, Ordering::Relaxed);
    let t = Instant::now();
    tokio::time::sleep(window).await;
    let done = count.load(Ordering::Relaxed);
    let secs = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    done as f64 / secs
}

/// Heap bytes currently allocated by this process (user space; kernel
/// socket buffers are not counted, for any system).
pub(crate) fn live_heap_bytes() -> u64 {
    counting::LIVE.load(Ordering::Relaxed) as u64
}

#[allow(unsafe_code)]
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicIsize, Ordering};

    pub(super) static LIVE: AtomicIsize = AtomicIsize::new(0);

    /// The system allocator, counting live bytes.
    struct Counting;

    // SAFETY: defers every call to `System`, only counting sizes.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
            // SAFETY: same contract as ours.
            unsafe { System.alloc(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
            // SAFETY: same contract as ours.
            unsafe { System.dealloc(p, l) }
        }
        unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
            LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
            // SAFETY: same contract as ours.
            unsafe { System.alloc_zeroed(l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
            // SAFETY: same contract as ours.
            unsafe { System.realloc(p, l, new) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;
}
