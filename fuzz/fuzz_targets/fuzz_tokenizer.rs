//! The world tokenizer. First byte even: the rest is text for the shipped vocabulary. Odd: the
//! rest is a vocabulary file, a NUL, then text for it. Encoding must decode back to the text,
//! and decoding any token ids gives bytes or a typed error.
#![no_main]

use std::sync::OnceLock;

use echos_rwkv_io::tokenizer::{Tokenizer, Utf8Stream, WorldTokenizer};
use libfuzzer_sys::fuzz_target;

fn shipped() -> &'static WorldTokenizer {
    static T: OnceLock<WorldTokenizer> = OnceLock::new();
    T.get_or_init(WorldTokenizer::shipped)
}

fn check(t: &WorldTokenizer, text: &[u8]) {
    let ids = t.encode(text);
    let mut back = Vec::new();
    for &id in &ids {
        back.extend_from_slice(t.token_bytes(id).expect("encode gives known ids"));
    }
    assert_eq!(back, text);
    // Arbitrary ids from the text's bytes: known or a typed error.
    for w in text.chunks(4) {
        let mut b = [0u8; 4];
        b[..w.len()].copy_from_slice(w);
        let _ = t.token_bytes(u32::from_le_bytes(b));
    }
}

fuzz_target!(
    // Parsed before the first input, so its time is not counted as an input's.
    init: {
        shipped();
    },
    |data: &[u8]| echos_fuzz::timed(|| run(data))
);

fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        check(shipped(), rest);
        let bytes = Tokenizer::Bytes;
        if let Ok(ids) = bytes.encode_bytes(rest) {
            assert_eq!(bytes.decode_bytes(&ids).expect("byte ids decode"), rest);
        }
        let mut stream = Utf8Stream::default();
        let mut text = stream.push(rest);
        text.push_str(&stream.finish());
        return;
    }
    let (vocab, text) = match rest.iter().position(|&b| b == 0) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(vocab) = std::str::from_utf8(vocab) else {
        return;
    };
    if let Ok(t) = WorldTokenizer::parse(vocab) {
        check(&t, text);
    }
}
