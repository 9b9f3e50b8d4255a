//! Hostile frame streams: bytes go through `frame::split` as the reader
//! feeds them (in chunks, with a small limit), every body through
//! `Frame::decode`, and every frame that decodes is encoded again and must
//! decode to itself.

#![no_main]

use bytes::BytesMut;
use farcall_runtime::wire::frame::{self, Frame, FrameError, LEN_PREFIX};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[limit, chunk], stream)) = data.split_first_chunk::<2>() else {
        return;
    };
    // A small limit, so that the fuzzer reaches it; chunks of 1 to 64 bytes.
    let max = u32::from(limit) * 4;
    let chunk = usize::from(chunk % 64) + 1;
    let mut buf = BytesMut::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.len();
            match frame::split(&mut buf, max) {
                Ok(Some(body)) => {
                    assert!(body.len() <= max as usize);
                    assert_eq!(buf.len(), before - LEN_PREFIX - body.len());
                    if let Ok(f) = Frame::decode(body) {
                        round_trip(&f);
                    }
                }
                Ok(None) => break,
                Err(FrameError::TooLarge { len, max: m }) => {
                    assert!(len > u64::from(max) && m == max);
                    // The reader closes the connection here.
                    return;
                }
                Err(e) => panic!("split fails only with TooLarge, not {e:?}"),
            }
        }
    }
});

fn round_trip(f: &Frame) {
    let mut out = BytesMut::new();
    frame::encode(&mut out, f, u32::MAX).expect("a decoded frame encodes");
    let len = out.len() - LEN_PREFIX;
    let body = frame::split(&mut out, len as u32)
        .expect("within the limit")
        .expect("a whole frame");
    assert!(out.is_empty());
    assert_eq!(&Frame::decode(body).expect("an encoded frame decodes"), f);
}
