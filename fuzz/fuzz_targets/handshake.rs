//! Hostile handshakes: every decoder of hellos and answers takes arbitrary
//! bytes without panicking, and whatever decodes encodes back to itself.

#![no_main]

use farcall_runtime::wire::handshake::{
    self, ANSWER_PREFIX, HELLO_PREFIX, HandshakeError, MAX_BODY,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hello(data);
    answer(data);
    // The bodies alone, as a listener decodes them after a good prefix.
    let _ = handshake::decode_hello_body(data);
    if let Some((&status, body)) = data.split_first() {
        let _ = handshake::decode_answer_body(status, body);
    }
});

fn hello(data: &[u8]) {
    if let Some(p) = data.get(..HELLO_PREFIX) {
        let p: &[u8; HELLO_PREFIX] = p.try_into().unwrap();
        if let Ok(len) = handshake::decode_hello_prefix(p) {
            assert!(len <= MAX_BODY);
        }
    }
    if let Ok(h) = handshake::decode_hello(data) {
        let again = handshake::decode_hello(&handshake::encode_hello(&h))
            .expect("an encoded hello decodes");
        assert_eq!(again, h);
    }
}

fn answer(data: &[u8]) {
    let Some(p) = data.get(..ANSWER_PREFIX) else {
        return;
    };
    let p: &[u8; ANSWER_PREFIX] = p.try_into().unwrap();
    let Ok((status, len)) = handshake::decode_answer_prefix(p) else {
        return;
    };
    assert!(status <= 1 && len <= MAX_BODY);
    let Some(body) = data.get(ANSWER_PREFIX..ANSWER_PREFIX + len) else {
        return;
    };
    match handshake::decode_answer_body(status, body) {
        Ok(w) => {
            let b = handshake::encode_welcome(&w);
            let p: &[u8; ANSWER_PREFIX] = b[..ANSWER_PREFIX].try_into().unwrap();
            let (s, n) = handshake::decode_answer_prefix(p).expect("an encoded welcome decodes");
            assert_eq!(s, 0);
            let again = handshake::decode_answer_body(s, &b[ANSWER_PREFIX..ANSWER_PREFIX + n])
                .expect("an encoded welcome decodes");
            assert_eq!(again, w);
        }
        Err(HandshakeError::Refused(reason)) => {
            assert_eq!(status, 1);
            let b = handshake::encode_refusal(&reason);
            let p: &[u8; ANSWER_PREFIX] = b[..ANSWER_PREFIX].try_into().unwrap();
            let (s, n) = handshake::decode_answer_prefix(p).expect("an encoded refusal decodes");
            let again = handshake::decode_answer_body(s, &b[ANSWER_PREFIX..ANSWER_PREFIX + n]);
            // Lossy UTF-8 may have grown the reason past MAX_BODY, where
            // the refusal truncates it.
            if reason.len() <= MAX_BODY {
                assert_eq!(again, Err(HandshakeError::Refused(reason)));
            }
        }
        Err(_) => {}
    }
}
