//! The frame codec's own tests (the protocol's byte examples are in
//! `runtime/tests/wire_props.rs`).

use super::*;

#[test]
fn too_large_is_refused_before_buffering() {
    let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 0][..]);
    let cap = buf.capacity();
    assert!(matches!(
        split(&mut buf, 1024),
        Err(FrameError::TooLarge {
            len: 0xffff_ffff,
            ..
        })
    ));
    assert_eq!(buf.capacity(), cap);
}

#[test]
fn partial_frames_wait() {
    let mut full = BytesMut::new();
    encode(&mut full, &Frame::Ping { nonce: 1 }, 1024).unwrap();
    let mut buf = BytesMut::from(&full[..full.len() - 1]);
    assert_eq!(split(&mut buf, 1024).unwrap(), None);
}

/// The examples of docs/PROTOCOL.md, section 6.9.
#[test]
fn stream_frames_as_documented() {
    let cases: [(Frame, &[u8]); 4] = [
        (
            Frame::StreamCredit {
                stream: 1,
                items: 32,
            },
            &[3, 0, 0, 0, 0x0B, 1, 0x20],
        ),
        (
            Frame::StreamItem {
                stream: 1,
                payload: Bytes::from_static(&[5]),
            },
            &[3, 0, 0, 0, 0x04, 1, 5],
        ),
        (
            Frame::StreamEnd {
                stream: 1,
                fault: None,
            },
            &[3, 0, 0, 0, 0x05, 1, 0],
        ),
        (Frame::StreamCancel { stream: 1 }, &[2, 0, 0, 0, 0x0C, 1]),
    ];
    for (f, bytes) in cases {
        let mut buf = BytesMut::new();
        encode(&mut buf, &f, 1024).unwrap();
        assert_eq!(&buf[..], bytes, "{f:?}");
        let body = split(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(Frame::decode(body).unwrap(), f);
    }
    let mut buf = BytesMut::new();
    encode_stream_item(
        &mut buf,
        1,
        |b| -> Result<(), ()> {
            b.put_u8(5);
            Ok(())
        },
        1024,
    )
    .unwrap();
    assert_eq!(&buf[..], &[3, 0, 0, 0, 0x04, 1, 5]);
}

#[test]
fn unknown_kinds_are_skippable() {
    let mut buf = BytesMut::new();
    encode(&mut buf, &Frame::Unknown { kind: 200 }, 1024).unwrap();
    let f = split(&mut buf, 1024).unwrap().unwrap();
    assert_eq!(Frame::decode(f).unwrap(), Frame::Unknown { kind: 200 });
}
