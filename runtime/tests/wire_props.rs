//! Property tests of the pure wire functions: decoders never panic on
//! hostile bytes, encoders and decoders agree, and addresses print to
//! strings that parse back to the same value.

use bytes::{Bytes, BytesMut};
use farcall_runtime::wire::frame::{self, Fault, Frame, FrameError, LEN_PREFIX};
use farcall_runtime::wire::handshake::{
    self, ANSWER_PREFIX, HELLO_PREFIX, HandshakeError, Hello, MAX_BODY, Welcome,
};
use farcall_runtime::{Address, NodeId, ObjectId};
use proptest::collection::vec;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(384)
}

// ---------------------------------------------------------------- strategies

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn object_id() -> impl Strategy<Value = ObjectId> {
    prop_oneof![
        // Well-known ids, as the DME and peer protocols use.
        (0u128..(1 << 32)).prop_map(ObjectId),
        any::<u128>().prop_map(ObjectId),
    ]
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        Just(Fault::NoSuchObject),
        Just(Fault::NoSuchMethod),
        ".{0,40}".prop_map(Fault::Decode),
        Just(Fault::DeadlineExceeded),
        Just(Fault::Overloaded),
        Just(Fault::Panicked),
        ".{0,40}".prop_map(Fault::Rejected),
        Just(Fault::Closing),
        Just(Fault::NoRoute),
        ".{0,40}".prop_map(Fault::InterfaceMismatch),
        ".{0,40}".prop_map(Fault::Unauthorized),
    ]
}

/// Every variant of [`Frame`], with arbitrary fields.
fn frame_value() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (
            any::<u64>(),
            any::<u64>(),
            object_id(),
            any::<u64>(),
            bytes(40),
            bytes(300)
        )
            .prop_map(
                |(id, timeout_us, object, method, metadata, payload)| Frame::Call {
                    id,
                    timeout_us,
                    object,
                    method,
                    flags: 0,
                    metadata,
                    payload,
                }
            ),
        (any::<u64>(), bytes(300)).prop_map(|(id, p)| Frame::Reply { id, result: Ok(p) }),
        (any::<u64>(), fault()).prop_map(|(id, f)| Frame::Reply { id, result: Err(f) }),
        any::<u64>().prop_map(|id| Frame::Cancel { id }),
        (object_id(), any::<u64>(), bytes(300)).prop_map(|(object, method, payload)| {
            Frame::Message {
                object,
                method,
                flags: 0,
                metadata: Bytes::new(),
                payload,
            }
        }),
        (any::<u64>(), bytes(300))
            .prop_map(|(stream, payload)| Frame::StreamItem { stream, payload }),
        (any::<u64>(), proptest::option::of(fault()))
            .prop_map(|(stream, fault)| Frame::StreamEnd { stream, fault }),
        vec(object_id(), 0..20).prop_map(|objects| Frame::LeaseRenew { objects }),
        vec(object_id(), 0..20).prop_map(|objects| Frame::LeaseRelease { objects }),
        any::<u64>().prop_map(|nonce| Frame::Ping { nonce }),
        any::<u64>().prop_map(|nonce| Frame::Pong { nonce }),
        ".{0,200}".prop_map(|reason| Frame::Close { reason }),
        (any::<u64>(), any::<u32>())
            .prop_map(|(stream, items)| Frame::StreamCredit { stream, items }),
        any::<u64>().prop_map(|stream| Frame::StreamCancel { stream }),
        (13u8..=255).prop_map(|kind| Frame::Unknown { kind }),
    ]
}

fn hello() -> impl Strategy<Value = Hello> {
    (
        any::<u128>(),
        any::<u32>(),
        any::<u32>(),
        proptest::option::of(bytes(64)),
    )
        .prop_map(|(n, max_frame_len, max_in_flight, credentials)| Hello {
            node: NodeId(n),
            max_frame_len,
            max_in_flight,
            credentials,
        })
}

/// Bytes that start like a frame more often than uniform noise would.
fn frame_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..200),
        (0u8..=14, vec(any::<u8>(), 0..200)).prop_map(|(k, mut rest)| {
            rest.insert(0, k);
            rest
        }),
    ]
}

// ---------------------------------------------------------------- (a) frames

proptest! {
    #![proptest_config(config())]

    #[test]
    fn frame_decode_never_panics(body in frame_like_bytes()) {
        let _ = Frame::decode(Bytes::from(body));
    }

    #[test]
    fn split_never_panics_nor_exceeds_max(
        data in vec(any::<u8>(), 0..600),
        max in prop_oneof![0u32..64, any::<u32>()],
    ) {
        let mut buf = BytesMut::from(&data[..]);
        // Split as the reader does, until it asks for more bytes or fails.
        loop {
            let before = buf.len();
            match frame::split(&mut buf, max) {
                Ok(Some(body)) => {
                    prop_assert!(body.len() <= max as usize);
                    prop_assert_eq!(buf.len(), before - LEN_PREFIX - body.len());
                    let _ = Frame::decode(body);
                }
                Ok(None) => {
                    prop_assert_eq!(buf.len(), before);
                    break;
                }
                Err(FrameError::TooLarge { len, max: m }) => {
                    prop_assert!(len > max as u64);
                    prop_assert_eq!(m, max);
                    prop_assert_eq!(buf.len(), before);
                    break;
                }
                Err(e) => prop_assert!(false, "split only fails with TooLarge, not {e:?}"),
            }
        }
    }

    #[test]
    fn split_refuses_a_huge_length_without_reserving(
        len in (64 * 1024u32..),
        tail in vec(any::<u8>(), 0..32),
    ) {
        let mut buf = BytesMut::with_capacity(LEN_PREFIX + tail.len());
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(&tail);
        let cap = buf.capacity();
        let r = frame::split(&mut buf, 64 * 1024 - 1);
        let refused = matches!(r, Err(FrameError::TooLarge { .. }));
        prop_assert!(refused);
        prop_assert_eq!(buf.capacity(), cap);
    }
}

// ------------------------------------------------------------ (b) handshake

proptest! {
    #![proptest_config(config())]

    #[test]
    fn hello_decoders_never_panic(data in vec(any::<u8>(), 0..300)) {
        let _ = handshake::decode_hello(&data);
        let _ = handshake::decode_hello_body(&data);
        if let Some(p) = data.get(..HELLO_PREFIX) {
            let p: &[u8; HELLO_PREFIX] = p.try_into().unwrap();
            if let Ok(len) = handshake::decode_hello_prefix(p) {
                prop_assert!(len <= MAX_BODY);
            }
        }
    }

    #[test]
    fn hello_decoders_never_panic_behind_a_good_prefix(
        body in vec(any::<u8>(), 0..200),
        announced in any::<u16>(),
    ) {
        let mut b = handshake::MAGIC.to_vec();
        b.extend_from_slice(&handshake::PROTOCOL_VERSION.to_be_bytes());
        b.extend_from_slice(&announced.to_be_bytes());
        b.extend_from_slice(&body);
        match handshake::decode_hello(&b) {
            Ok(_) => {}
            Err(HandshakeError::BodyTooLarge(n)) => prop_assert!(n > MAX_BODY),
            Err(HandshakeError::Malformed(_)) => {}
            Err(e) => prop_assert!(false, "unexpected error {e:?}"),
        }
    }

    #[test]
    fn answer_decoders_never_panic(data in vec(any::<u8>(), 0..300), status in any::<u8>()) {
        let _ = handshake::decode_answer_body(status, &data);
        if let Some(p) = data.get(..ANSWER_PREFIX) {
            let p: &[u8; ANSWER_PREFIX] = p.try_into().unwrap();
            if let Ok((s, len)) = handshake::decode_answer_prefix(p) {
                prop_assert!(s <= 1);
                prop_assert!(len <= MAX_BODY);
                let body = data.get(ANSWER_PREFIX..).unwrap_or(&[]);
                let _ = handshake::decode_answer_body(s, &body[..len.min(body.len())]);
            }
        }
    }

    #[test]
    fn answer_decoders_never_panic_behind_magic(
        rest in vec(any::<u8>(), 5..300),
    ) {
        let mut b = handshake::MAGIC.to_vec();
        b.extend_from_slice(&rest);
        let p: &[u8; ANSWER_PREFIX] = b[..ANSWER_PREFIX].try_into().unwrap();
        if let Ok((s, len)) = handshake::decode_answer_prefix(p) {
            let body = &b[ANSWER_PREFIX..];
            let _ = handshake::decode_answer_body(s, &body[..len.min(body.len())]);
        }
    }

    #[test]
    fn hello_round_trips(h in hello()) {
        prop_assert_eq!(handshake::decode_hello(&handshake::encode_hello(&h)).unwrap(), h);
    }

    #[test]
    fn welcome_and_refusal_round_trip(
        n in any::<u128>(),
        max_frame_len in any::<u32>(),
        max_in_flight in any::<u32>(),
        reason in ".{0,100}",
    ) {
        let w = Welcome { node: NodeId(n), max_frame_len, max_in_flight };
        let b = handshake::encode_welcome(&w);
        let p: &[u8; ANSWER_PREFIX] = b[..ANSWER_PREFIX].try_into().unwrap();
        let (s, len) = handshake::decode_answer_prefix(p).unwrap();
        prop_assert_eq!(s, 0);
        prop_assert_eq!(len, b.len() - ANSWER_PREFIX);
        prop_assert_eq!(handshake::decode_answer_body(s, &b[ANSWER_PREFIX..]).unwrap(), w);

        let b = handshake::encode_refusal(&reason);
        let p: &[u8; ANSWER_PREFIX] = b[..ANSWER_PREFIX].try_into().unwrap();
        let (s, len) = handshake::decode_answer_prefix(p).unwrap();
        prop_assert_eq!(s, 1);
        prop_assert_eq!(
            handshake::decode_answer_body(s, &b[ANSWER_PREFIX..ANSWER_PREFIX + len]),
            Err(HandshakeError::Refused(reason))
        );
    }
}

// ------------------------------------------------------- (c) frame round trip

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_frame_round_trips(f in frame_value()) {
        let mut buf = BytesMut::new();
        frame::encode(&mut buf, &f, u32::MAX).unwrap();
        let len = u32::from_le_bytes(buf[..LEN_PREFIX].try_into().unwrap());
        prop_assert_eq!(len as usize, buf.len() - LEN_PREFIX);
        let body = frame::split(&mut buf, len).unwrap().expect("a whole frame");
        prop_assert!(buf.is_empty());
        match f.kind() {
            Some(k) => prop_assert_eq!(body[0], k as u8),
            None => prop_assert!(body[0] >= 13),
        }
        prop_assert_eq!(Frame::decode(body).unwrap(), f);
    }

    #[test]
    fn an_oversize_frame_is_refused_and_leaves_the_buffer_alone(
        f in frame_value().prop_filter("Unknown frames do not check the limit", |f| f.kind().is_some()),
        prefix in vec(any::<u8>(), 0..8),
    ) {
        let mut one = BytesMut::new();
        frame::encode(&mut one, &f, u32::MAX).unwrap();
        let len = (one.len() - LEN_PREFIX) as u32;
        let mut buf = BytesMut::from(&prefix[..]);
        let r = frame::encode(&mut buf, &f, len - 1);
        let refused = matches!(r, Err(FrameError::TooLarge { .. }));
        prop_assert!(refused);
        prop_assert_eq!(&buf[..], &prefix[..]);
        // Exactly at the limit it is accepted.
        frame::encode(&mut buf, &f, len).unwrap();
        prop_assert_eq!(buf.len(), prefix.len() + one.len());
    }

    #[test]
    fn a_stream_of_frames_splits_back_whatever_the_chunking(
        frames in vec(frame_value(), 1..8),
        cuts in vec(1usize..64, 1..40),
    ) {
        let mut wire = BytesMut::new();
        for f in &frames {
            frame::encode(&mut wire, f, u32::MAX).unwrap();
        }
        let wire = wire.freeze();
        // Feed the bytes in arbitrary chunks, as a socket delivers them.
        let mut got = Vec::new();
        let mut buf = BytesMut::new();
        let mut at = 0;
        let mut cuts = cuts.into_iter().cycle();
        while at < wire.len() {
            let n = cuts.next().unwrap().min(wire.len() - at);
            buf.extend_from_slice(&wire[at..at + n]);
            at += n;
            while let Some(body) = frame::split(&mut buf, u32::MAX).unwrap() {
                got.push(Frame::decode(body).unwrap());
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, frames);
    }
}

// ------------------------------------------------------------ (d) addresses

/// Strings near the address grammar, so that parsing gets past the scheme.
fn address_like() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        Just("tcp://"),
        Just("unix://"),
        Just("mem://"),
        Just("nats://"),
        Just("tcp:/"),
        Just("ftp://"),
        Just(""),
    ];
    (scheme, "[a-z0-9:/.%@ _\\-]{0,24}").prop_map(|(s, rest)| format!("{s}{rest}"))
}

/// Host-and-port strings, including IPv6 forms in and out of brackets.
fn host_port_like() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        "[a-z0-9.\\-]{1,12}",
        "[0-9a-f:]{1,16}",
        "\\[[0-9a-f:]{1,16}\\]",
        "(25[0-5]|1?[0-9]{1,2})(\\.(25[0-5]|1?[0-9]{1,2})){3}",
    ];
    let scheme = prop_oneof![Just("tcp"), Just("nats")];
    let port = prop_oneof!["[0-9]{1,5}", "[0-9a-z+\\-]{0,6}"];
    (scheme, host, port).prop_map(|(s, h, p)| format!("{s}://{h}:{p}"))
}

fn assert_display_reparses(s: &str) -> Result<(), TestCaseError> {
    if let Ok(a) = s.parse::<Address>() {
        let shown = a.to_string();
        let again = shown.parse::<Address>();
        prop_assert_eq!(
            again.as_ref(),
            Ok(&a),
            "`{}` parsed, printed as `{}`, which does not parse back",
            s,
            shown
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn address_parse_never_panics(s in any::<String>()) {
        let _ = s.parse::<Address>();
    }

    #[test]
    fn address_like_strings_never_panic_and_reparse(s in address_like()) {
        assert_display_reparses(&s)?;
    }

    #[test]
    fn host_port_addresses_reparse(s in host_port_like()) {
        assert_display_reparses(&s)?;
    }

    #[test]
    fn unix_and_mem_addresses_reparse(
        s in prop_oneof![
            "unix:///[a-zA-Z0-9._ \\-/]{1,30}",
            "mem://[^/]{1,40}",
        ],
    ) {
        let a: Address = s.parse().unwrap();
        prop_assert_eq!(a.to_string().parse::<Address>().unwrap(), a);
    }

    #[test]
    fn unicode_addresses_reparse(s in "(tcp|nats|unix|mem)://\\PC{0,20}") {
        assert_display_reparses(&s)?;
    }
}

/// A host with a square bracket in it would print as a string that does not
/// parse back (`tcp://a]:b:1` as `tcp://[a]:b]:1`), so such hosts are
/// refused, and whatever parses prints back to itself.
#[test]
fn hosts_with_brackets_reparse() {
    for s in [
        "tcp://a]:b:1",
        "tcp://[[a]:1",
        "tcp://a[b]:c:1",
        "nats://[x]y:z]:2",
    ] {
        assert_display_reparses(s).unwrap();
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
        fn hosts_with_brackets_reparse_prop(s in "(tcp|nats)://[a-c:\\[\\]]{1,8}:[0-9]{1,3}") {
        assert_display_reparses(&s)?;
    }
}

/// The byte examples of `docs/PROTOCOL.md`, so that the document cannot
/// drift from the code.
#[test]
fn protocol_document_examples() {
    let hello = handshake::encode_hello(&Hello {
        node: NodeId(1),
        max_frame_len: 16 << 20,
        max_in_flight: 1024,
        credentials: None,
    });
    assert_eq!(
        &hello[..],
        &[
            0x46, 0x41, 0x52, 0x43, 0x41, 0x4C, 0x4C, 0x00, 0x00, 0x02, 0x00, 0x08, 0x01, 0x80,
            0x80, 0x80, 0x08, 0x80, 0x08, 0x00
        ]
    );

    let mut b = BytesMut::new();
    frame::encode(&mut b, &Frame::Ping { nonce: 7 }, 1024).unwrap();
    assert_eq!(&b[..], &[0x02, 0x00, 0x00, 0x00, 0x08, 0x07]);

    let mut b = BytesMut::new();
    let call = Frame::Call {
        id: 1,
        timeout_us: 1_000_000,
        object: ObjectId::DME,
        method: 0,
        flags: 0,
        metadata: Bytes::new(),
        payload: farcall_runtime::codec::encode(&20u64).unwrap(),
    };
    frame::encode(&mut b, &call, 1024).unwrap();
    assert_eq!(
        &b[..],
        &[
            0x09, 0x00, 0x00, 0x00, 0x00, 0x01, 0xC0, 0x84, 0x3D, 0x01, 0x00, 0x00, 0x14
        ]
    );

    // Fault discriminants are the variant order of the table.
    let faults = [
        Fault::NoSuchObject,
        Fault::NoSuchMethod,
        Fault::Decode(String::new()),
        Fault::DeadlineExceeded,
        Fault::Overloaded,
        Fault::Panicked,
        Fault::Rejected(String::new()),
        Fault::Closing,
        Fault::NoRoute,
        Fault::InterfaceMismatch(String::new()),
        Fault::Unauthorized(String::new()),
    ];
    for (i, f) in faults.iter().enumerate() {
        let mut b = BytesMut::new();
        let reply = Frame::Reply {
            id: 0,
            result: Err(f.clone()),
        };
        frame::encode(&mut b, &reply, 1024).unwrap();
        // length(4) kind id ok=false discriminant ...
        assert_eq!(b[4..8], [1, 0, 0, i as u8], "{f:?}");
    }

    // Refusal reasons as the listener words them.
    let r = handshake::encode_refusal("not a farcall peer (bad magic bytes)");
    assert_eq!(
        &r[..ANSWER_PREFIX],
        &[0x46, 0x41, 0x52, 0x43, 0x41, 0x4C, 0x4C, 0, 0, 2, 1, 0, 36]
    );
    assert_eq!(
        HandshakeError::BadMagic.to_string(),
        "not a farcall peer (bad magic bytes)"
    );
    assert_eq!(
        HandshakeError::BodyTooLarge(5000).to_string(),
        "handshake body of 5000 bytes exceeds the limit of 4096"
    );
    assert_eq!(
        FrameError::TooLarge {
            len: 65537,
            max: 65536
        }
        .to_string(),
        "frame of 65537 bytes exceeds the limit of 65536 bytes"
    );
    assert_eq!(FrameError::Empty.to_string(), "empty frame");
    assert_eq!(ObjectId::DME, ObjectId(1));
    assert_eq!(ObjectId::PEER, ObjectId(2));
}
