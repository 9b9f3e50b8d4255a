//! The log's unit tests.

use super::record::{BODY_PREFIX_LEN, HEADER_LEN, KIND_MESSAGE, encode};
use super::segment::{list_segments, parse_segment_name, segment_path};
use super::*;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;

/// A fresh directory, deleted on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "farcall-log-test-{}-{name}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn config() -> LogConfig {
    LogConfig {
        fsync: Fsync::Every(Duration::from_millis(5)),
        ..LogConfig::default()
    }
}

fn payload(i: u64) -> Bytes {
    Bytes::from(format!("message {i}"))
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    list_segments(dir)
        .unwrap()
        .into_iter()
        .map(|(_, path)| path)
        .collect()
}

fn last_segment(dir: &Path) -> PathBuf {
    segment_files(dir).pop().unwrap()
}

fn append_raw(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
}

#[test]
fn log_is_send_and_sync() {
    fn assert<T: Send + Sync + 'static>() {}
    assert::<Log>();
    assert::<LogError>();
    assert::<LogStats>();
}

#[tokio::test]
async fn reopen_returns_exactly_the_unacked() {
    let dir = TempDir::new("unacked");
    let (log, unacked) = Log::open(&dir.0, config()).unwrap();
    assert!(unacked.is_empty());
    for i in 1..=5 {
        assert_eq!(log.append(payload(i)).await.unwrap(), i);
    }
    log.ack(2);
    log.ack(4);
    log.ack(4); // twice: harmless
    log.ack(99); // unknown: harmless
    log.flush().await.unwrap();
    drop(log);

    let (log, unacked) = Log::open(&dir.0, config()).unwrap();
    assert_eq!(
        unacked,
        vec![(1, payload(1)), (3, payload(3)), (5, payload(5))]
    );
    log.ack(1);
    drop(log); // drop writes what it has, without a flush
    let (_log, unacked) = Log::open(&dir.0, config()).unwrap();
    assert_eq!(unacked, vec![(3, payload(3)), (5, payload(5))]);
}

#[tokio::test]
async fn seq_continues_after_reopen() {
    let dir = TempDir::new("seq");
    let (log, _) = Log::open(&dir.0, config()).unwrap();
    for i in 1..=3 {
        assert_eq!(log.append(payload(i)).await.unwrap(), i);
    }
    drop(log);
    let (log, _) = Log::open(&dir.0, config()).unwrap();
    assert_eq!(log.append(payload(4)).await.unwrap(), 4);
    drop(log);

    // Everything acked, the head segments reclaimed: the numbers still
    // go on.
    let small = LogConfig {
        segment_bytes: 1,
        ..config()
    };
    let (log, unacked) = Log::open(&dir.0, small.clone()).unwrap();
    assert_eq!(unacked.len(), 4);
    for i in 5..=8 {
        assert_eq!(log.append(payload(i)).await.unwrap(), i);
    }
    for i in 1..=8 {
        log.ack(i);
    }
    log.flush().await.unwrap();
    drop(log);
    let (log, unacked) = Log::open(&dir.0, small.clone()).unwrap();
    assert!(unacked.is_empty());
    assert_eq!(log.stats().segments, 1);
    assert_eq!(log.append(payload(9)).await.unwrap(), 9);
    log.ack(9);
    // The ack makes the active segment all acked; the next message opens
    // a new segment and the old one goes.
    assert_eq!(log.append(payload(10)).await.unwrap(), 10);
    log.ack(10);
    log.flush().await.unwrap();
    drop(log);
    let (log, unacked) = Log::open(&dir.0, small).unwrap();
    assert!(unacked.is_empty());
    assert_eq!(log.append(payload(11)).await.unwrap(), 11);
}

#[tokio::test]
async fn seq_survives_an_empty_active_segment() {
    let dir = TempDir::new("empty-active");
    let (log, _) = Log::open(&dir.0, config()).unwrap();
    for i in 1..=3 {
        log.append(payload(i)).await.unwrap();
    }
    drop(log);
    // As if every segment had been reclaimed and a fresh one made.
    for path in segment_files(&dir.0) {
        fs::remove_file(path).unwrap();
    }
    File::create(segment_path(&dir.0, 4)).unwrap();
    let (log, unacked) = Log::open(&dir.0, config()).unwrap();
    assert!(unacked.is_empty());
    assert_eq!(log.append(payload(4)).await.unwrap(), 4);
}

#[tokio::test]
async fn torn_tail_garbage_is_cut() {
    let dir = TempDir::new("garbage");
    let (log, _) = Log::open(&dir.0, config()).unwrap();
    for i in 1..=3 {
        log.append(payload(i)).await.unwrap();
    }
    drop(log);
    let path = last_segment(&dir.0);
    let good_len = fs::metadata(&path).unwrap().len();
    append_raw(&path, &[0xde, 0xad, 0xbe, 0xef, 0x01]);

    let (log, unacked) = Log::open(&dir.0, config()).unwrap();
    assert_eq!(unacked.len(), 3);
    assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
    assert_eq!(log.append(payload(4)).await.unwrap(), 4);
    drop(log);
    let (_log, unacked) = Log::open(&dir.0, config()).unwrap();
    assert_eq!(
        unacked.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(unacked[3].1, payload(4));
}

#[tokio::test]
async fn record_cut_mid_write_is_dropped() {
    let dir = TempDir::new("torn");
    let (log, _) = Log::open(&dir.0, config()).unwrap();
    for i in 1..=3 {
        log.append(payload(i)).await.unwrap();
    }
    drop(log);
    let path = last_segment(&dir.0);
    let len = fs::metadata(&path).unwrap().len();
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 3).unwrap();
    drop(file);

    let (log, unacked) = Log::open(&dir.0, config()).unwrap();
    assert_eq!(unacked, vec![(1, payload(1)), (2, payload(2))]);
    // The cut message's number was never confirmed; it is given again.
    assert_eq!(log.append(payload(3)).await.unwrap(), 3);
    drop(log);
    let (_log, unacked) = Log::open(&dir.0, config()).unwrap();
    assert_eq!(unacked.len(), 3);
    assert_eq!(unacked[2], (3, payload(3)));
}

#[tokio::test]
async fn huge_length_prefix_is_damage_not_an_allocation() {
    let dir = TempDir::new("huge");
    let (log, _) = Log::open(&dir.0, config()).unwrap();
    log.append(payload(1)).await.unwrap();
    drop(log);
    let path = last_segment(&dir.0);
    let good_len = fs::metadata(&path).unwrap().len();
    // Claims 4 GiB; followed by enough bytes to look like a start.
    let mut bad = u32::MAX.to_le_bytes().to_vec();
    bad.extend_from_slice(&[0; 64]);
    append_raw(&path, &bad);

    let (log, unacked) = Log::open(&dir.0, config()).unwrap();
    assert_eq!(unacked, vec![(1, payload(1))]);
    assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
    drop(log);

    // Within max_record but over what the file holds: also cut.
    let mut bad = 1_000_000u32.to_le_bytes().to_vec();
    bad.extend_from_slice(&[0; 64]);
    append_raw(&path, &bad);
    let (log, unacked) = Log::open(&dir.0, config()).unwrap();
    assert_eq!(unacked, vec![(1, payload(1))]);
    assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
    assert_eq!(log.append(payload(2)).await.unwrap(), 2);
}

#[tokio::test]
async fn max_record_bounds_appends_and_reads() {
    let dir = TempDir::new("max-record");
    let small = LogConfig {
        max_record: 12,
        ..config()
    };
    let (log, _) = Log::open(&dir.0, small.clone()).unwrap();
    assert!(matches!(
        log.append(Bytes::from_static(b"four")).await,
        Err(LogError::TooLarge { size: 4, limit: 3 })
    ));
    assert_eq!(log.append(Bytes::from_static(b"abc")).await.unwrap(), 1);
    drop(log);
    let (log, unacked) = Log::open(&dir.0, small.clone()).unwrap();
    assert_eq!(unacked, vec![(1, Bytes::from_static(b"abc"))]);
    drop(log);
    // A record over the limit on disk is damage: a 13-byte body.
    let mut record = Vec::new();
    encode(&mut record, KIND_MESSAGE, 2, b"abcd");
    append_raw(&last_segment(&dir.0), &record);
    let (log, unacked) = Log::open(&dir.0, small).unwrap();
    assert_eq!(unacked, vec![(1, Bytes::from_static(b"abc"))]);
    assert_eq!(log.append(Bytes::from_static(b"xyz")).await.unwrap(), 2);
}

#[tokio::test]
async fn bad_checksum_in_an_older_segment_skips_its_rest() {
    let dir = TempDir::new("older");
    let small = LogConfig {
        segment_bytes: 60,
        ..config()
    };
    let (log, _) = Log::open(&dir.0, small.clone()).unwrap();
    for i in 1..=6 {
        log.append(payload(i)).await.unwrap();
    }
    drop(log);
    let files = segment_files(&dir.0);
    assert!(files.len() >= 2, "{files:?}");
    // Flip the last byte of the first segment's first record.
    let mut bytes = fs::read(&files[0]).unwrap();
    let first_len = HEADER_LEN + BODY_PREFIX_LEN + payload(1).len();
    bytes[first_len - 1] ^= 0xff;
    fs::write(&files[0], &bytes).unwrap();
    let in_first = (bytes.len() / first_len) as u64;

    let (log, unacked) = Log::open(&dir.0, small).unwrap();
    let seqs: Vec<u64> = unacked.iter().map(|(seq, _)| *seq).collect();
    let expected: Vec<u64> = (in_first + 1..=6).collect();
    assert_eq!(seqs, expected);
    // Nothing before the damage is unacknowledged: the segment goes.
    assert!(!files[0].exists());
    assert_eq!(log.append(payload(7)).await.unwrap(), 7);
}

#[tokio::test]
async fn segments_roll_and_acked_head_segments_go() {
    let dir = TempDir::new("roll");
    let small = LogConfig {
        segment_bytes: 100,
        ..config()
    };
    let (log, _) = Log::open(&dir.0, small.clone()).unwrap();
    let big = Bytes::from(vec![7u8; 60]);
    for i in 1..=10 {
        assert_eq!(log.append(big.clone()).await.unwrap(), i);
    }
    log.flush().await.unwrap();
    let files = segment_files(&dir.0);
    // Each segment takes two 77-byte records before it is full.
    assert_eq!(files.len(), 5, "{files:?}");
    let stats = log.stats();
    assert_eq!(stats.segments, 5);
    assert_eq!(stats.bytes, 10 * 77);

    // All acked but message 3 (second segment): only the first goes.
    for i in (1..=10).filter(|&i| i != 3) {
        log.ack(i);
    }
    log.flush().await.unwrap();
    assert_eq!(segment_files(&dir.0), files[1..]);
    assert_eq!(log.stats().segments, 4);
    drop(log);
    let (log, unacked) = Log::open(&dir.0, small.clone()).unwrap();
    assert_eq!(unacked, vec![(3, big.clone())]);

    // Acking it frees all but the active segment.
    log.ack(3);
    log.flush().await.unwrap();
    assert_eq!(segment_files(&dir.0), files[4..]);
    assert_eq!(log.append(big.clone()).await.unwrap(), 11);
    drop(log);
    let (_log, unacked) = Log::open(&dir.0, small).unwrap();
    assert_eq!(unacked, vec![(11, big)]);
}

#[tokio::test]
async fn fsync_always_and_every_both_work() {
    for fsync in [
        Fsync::Always,
        Fsync::Every(Duration::ZERO),
        Fsync::Every(Duration::from_millis(20)),
        Fsync::Every(Duration::MAX),
        Fsync::default(),
    ] {
        let dir = TempDir::new("fsync");
        let config = LogConfig {
            fsync,
            ..LogConfig::default()
        };
        let (log, _) = Log::open(&dir.0, config.clone()).unwrap();
        for i in 1..=20 {
            assert_eq!(log.append(payload(i)).await.unwrap(), i, "{fsync:?}");
        }
        log.ack(5);
        // Let the interval pass: the writer syncs on its own.
        tokio::time::sleep(Duration::from_millis(30)).await;
        log.flush().await.unwrap();
        drop(log);
        let (_log, unacked) = Log::open(&dir.0, config).unwrap();
        assert_eq!(unacked.len(), 19, "{fsync:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_appends() {
    let dir = TempDir::new("concurrent");
    let (log, _) = Log::open(&dir.0, config()).unwrap();
    let mut tasks = Vec::new();
    for task in 0..100u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::with_capacity(100);
            for i in 0..100 {
                seqs.push(log.append(payload(task * 100 + i)).await.unwrap());
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let seqs = task.await.unwrap();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        all.extend(seqs);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=10_000).collect::<Vec<_>>());
    drop(log);
    let (_log, unacked) = Log::open(&dir.0, config()).unwrap();
    assert_eq!(unacked.len(), 10_000);
    assert!(unacked.windows(2).all(|w| w[0].0 + 1 == w[1].0));
}

#[tokio::test]
async fn stray_files_and_names_are_ignored() {
    let dir = TempDir::new("stray");
    fs::create_dir_all(&dir.0).unwrap();
    fs::write(dir.0.join("notes.txt"), b"hello").unwrap();
    fs::write(dir.0.join("123.seg"), b"garbage").unwrap();
    fs::write(dir.0.join("99999999999999999999.seg"), b"garbage").unwrap();
    let (log, unacked) = Log::open(&dir.0, config()).unwrap();
    assert!(unacked.is_empty());
    assert_eq!(log.append(payload(1)).await.unwrap(), 1);
}

#[tokio::test]
async fn attempts_survive_a_reopen() {
    let dir = TempDir::new("attempts");
    {
        let (log, _) = Log::open(&dir.0, config()).unwrap();
        let a = log.append(payload(1)).await.unwrap();
        let b = log.append(payload(2)).await.unwrap();
        let c = log.append(payload(3)).await.unwrap();
        log.attempts(a, 1);
        log.attempts(a, 3);
        log.attempts(b, 2);
        log.ack(b);
        log.attempts(b, 9); // acked: not written
        log.attempts(c + 100, 4); // unknown: not written
        log.flush().await.unwrap();
    }
    let (log, pending) = Log::open(&dir.0, config()).unwrap();
    assert_eq!(pending.len(), 2);
    let attempts = log.take_attempts();
    assert_eq!(attempts.get(&pending[0].0), Some(&3));
    assert_eq!(attempts.len(), 1);
    assert!(log.take_attempts().is_empty());
}

#[test]
fn segment_names() {
    assert_eq!(
        segment_path(Path::new("d"), 42),
        Path::new("d").join("00000000000000000042.seg")
    );
    assert_eq!(parse_segment_name("00000000000000000042.seg"), Some(42));
    assert_eq!(parse_segment_name("0000000000000000042.seg"), None);
    assert_eq!(parse_segment_name("+0000000000000000042.seg"), None);
    assert_eq!(parse_segment_name("00000000000000000042.log"), None);
    assert_eq!(parse_segment_name("99999999999999999999.seg"), None);
}

#[test]
fn random_segment_content_never_panics() {
    let dir = TempDir::new("fuzz");
    fs::create_dir_all(&dir.0).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for round in 0..200u64 {
        // A valid record, then noise: some rounds with a plausible
        // header over the noise.
        let mut content = Vec::new();
        encode(&mut content, KIND_MESSAGE, 1, b"ok");
        let noise = (round % 50) as usize;
        for _ in 0..noise {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            content.push(state as u8);
        }
        if round % 3 == 0 && content.len() >= 27 {
            content[19..23].copy_from_slice(&(noise as u32).to_le_bytes());
        }
        let path = segment_path(&dir.0, 1);
        fs::write(&path, &content).unwrap();
        let (log, unacked) = Log::open(&dir.0, config()).unwrap();
        assert_eq!(unacked.first(), Some(&(1, Bytes::from_static(b"ok"))));
        drop(log);
    }
}
