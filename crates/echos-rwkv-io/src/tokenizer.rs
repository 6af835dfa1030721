//! Tokenizers: the RWKV "world" vocabulary (greedy longest match over UTF-8 bytes, shipped
//! in `vocab/rwkv_vocab_v20230424.txt`) and byte-level for vocab-256 models.

use std::collections::HashMap;

/// The world vocabulary as shipped in the PyPI `rwkv` 0.8.32 wheel (Apache-2.0).
pub const WORLD_VOCAB: &str = include_str!("../vocab/rwkv_vocab_v20230424.txt");

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenizerError {
    #[error("the prompt is not valid UTF-8 (first bad byte at offset {0})")]
    InvalidUtf8(usize),
    #[error("token id {token} is outside the vocabulary (size {vocab})")]
    UnknownToken { token: u32, vocab: usize },
    #[error("vocabulary line {line}: {why}")]
    BadVocab { line: usize, why: String },
    #[error("no tokenizer for a vocabulary of {0} tokens (byte-level needs 256, world 65536)")]
    NoTokenizer(usize),
    #[error("the vocabulary has no token for byte 0x{0:02x}: every byte needs one, or some text could not be encoded")]
    MissingByte(u8),
}

pub enum Tokenizer {
    /// Token id = byte value.
    Bytes,
    World(WorldTokenizer),
}

impl Tokenizer {
    /// Byte-level for 256-token models, the world tokenizer for 65536-token models.
    pub fn for_vocab(vocab: usize) -> Result<Tokenizer, TokenizerError> {
        match vocab {
            256 => Ok(Tokenizer::Bytes),
            65536 => Ok(Tokenizer::World(WorldTokenizer::shipped())),
            _ => Err(TokenizerError::NoTokenizer(vocab)),
        }
    }

    /// Encodes UTF-8 text given as bytes (from a file or an argument), rejecting invalid UTF-8.
    pub fn encode_bytes(&self, text: &[u8]) -> Result<Vec<u32>, TokenizerError> {
        let text =
            std::str::from_utf8(text).map_err(|e| TokenizerError::InvalidUtf8(e.valid_up_to()))?;
        Ok(self.encode(text))
    }

    pub fn encode(&self, text: &str) -> Vec<u32> {
        match self {
            Tokenizer::Bytes => text.bytes().map(u32::from).collect(),
            Tokenizer::World(w) => w.encode(text.as_bytes()),
        }
    }

    /// The bytes of the tokens (may end in the middle of a UTF-8 character).
    pub fn decode_bytes(&self, tokens: &[u32]) -> Result<Vec<u8>, TokenizerError> {
        let mut out = Vec::new();
        for &t in tokens {
            match self {
                Tokenizer::Bytes => {
                    let b = u8::try_from(t).map_err(|_| TokenizerError::UnknownToken {
                        token: t,
                        vocab: 256,
                    })?;
                    out.push(b);
                }
                Tokenizer::World(w) => out.extend_from_slice(w.token_bytes(t)?),
            }
        }
        Ok(out)
    }
}

/// Ids are below this (the world vocabulary's are below 65536).
pub const MAX_ID: usize = 1 << 20;

pub struct WorldTokenizer {
    /// Indexed by id; id 0 (end of text) has no bytes.
    tokens: Vec<Vec<u8>>,
    trie: Trie,
}

/// A byte trie over the vocabulary, as the reference tokenizer's: node 0 is the root, an edge is
/// (node, byte) → child, and `id[node]` is the token ending there (0: none). Building it costs
/// the vocabulary's total length; a longest match from one position costs at most the longest
/// token's length in single-edge steps (not a hash of every candidate prefix, which was
/// quadratic in the longest token).
struct Trie {
    edges: HashMap<(u32, u8), u32>,
    id: Vec<u32>,
}

impl Trie {
    fn new() -> Trie {
        Trie {
            edges: HashMap::new(),
            id: vec![0],
        }
    }

    /// Adds `bytes` as token `id` (a later token with the same bytes replaces an earlier one).
    fn insert(&mut self, bytes: &[u8], id: u32) {
        let mut node = 0u32;
        for &b in bytes {
            let next = self.id.len() as u32;
            node = *self.edges.entry((node, b)).or_insert_with(|| next);
            if node == next {
                self.id.push(0);
            }
        }
        self.id[node as usize] = id;
    }

    /// The token of exactly `bytes`, if any.
    fn get(&self, bytes: &[u8]) -> Option<u32> {
        let mut node = 0u32;
        for &b in bytes {
            node = *self.edges.get(&(node, b))?;
        }
        Some(self.id[node as usize]).filter(|&id| id != 0)
    }

    /// The longest token that `text` starts with: `(id, length)`.
    fn longest_prefix(&self, text: &[u8]) -> Option<(u32, usize)> {
        let mut node = 0u32;
        let mut found = None;
        for (n, &b) in text.iter().enumerate() {
            match self.edges.get(&(node, b)) {
                Some(&next) => node = next,
                None => break,
            }
            let id = self.id[node as usize];
            if id != 0 {
                found = Some((id, n + 1));
            }
        }
        found
    }
}

impl WorldTokenizer {
    pub fn shipped() -> WorldTokenizer {
        WorldTokenizer::parse(WORLD_VOCAB)
            .expect("the shipped vocabulary parses (checked by tests)")
    }

    /// Parses lines `id repr byte_len`, where `repr` is a Python str or bytes literal.
    pub fn parse(text: &str) -> Result<WorldTokenizer, TokenizerError> {
        let mut tokens: Vec<Vec<u8>> = vec![Vec::new()];
        let mut trie = Trie::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let bad = |why: &str| TokenizerError::BadVocab {
                line: n + 1,
                why: why.to_string(),
            };
            let (id, rest) = line
                .split_once(' ')
                .ok_or_else(|| bad("no space after the id"))?;
            let (lit, len) = rest.rsplit_once(' ').ok_or_else(|| bad("no byte length"))?;
            let id: usize = id.parse().map_err(|_| bad("id is not a number"))?;
            let len: usize = len
                .parse()
                .map_err(|_| bad("byte length is not a number"))?;
            let bytes =
                parse_py_literal(lit).ok_or_else(|| bad("cannot parse the token literal"))?;
            if bytes.len() != len {
                return Err(bad(&format!(
                    "token has {} bytes, line says {len}",
                    bytes.len()
                )));
            }
            // Ids index a table: this bound caps what one line can make us allocate.
            if id >= MAX_ID {
                return Err(bad(&format!("id {id} is not below {MAX_ID}")));
            }
            if id == 0 {
                return Err(bad("id 0 is the end of text and has no bytes"));
            }
            if tokens.len() <= id {
                tokens.resize(id + 1, Vec::new());
            }
            if !tokens[id].is_empty() {
                return Err(bad(&format!("id {id} appears twice")));
            }
            trie.insert(&bytes, id as u32);
            tokens[id] = bytes;
        }
        // Greedy matching falls back to single bytes, so each must be a token.
        if let Some(b) = (0..=255u8).find(|&b| trie.get(&[b]).is_none()) {
            return Err(TokenizerError::MissingByte(b));
        }
        Ok(WorldTokenizer { tokens, trie })
    }

    pub fn vocab_len(&self) -> usize {
        self.tokens.len()
    }

    /// Greedy longest match from the left, as the reference's trie tokenizer does. Every byte
    /// is a token (`parse` refuses a vocabulary without one), so a match always exists.
    pub fn encode(&self, text: &[u8]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < text.len() {
            let (id, len) = self
                .trie
                .longest_prefix(&text[i..])
                .expect("parse checked that all 256 bytes are tokens");
            out.push(id);
            i += len;
        }
        out
    }

    pub fn token_bytes(&self, t: u32) -> Result<&[u8], TokenizerError> {
        self.tokens
            .get(t as usize)
            .map(Vec::as_slice)
            .ok_or(TokenizerError::UnknownToken {
                token: t,
                vocab: self.tokens.len(),
            })
    }
}

/// Python `'...'`, `"..."`, `b'...'` or `b"..."` with the escapes `repr` produces.
fn parse_py_literal(s: &str) -> Option<Vec<u8>> {
    let (is_bytes, body) = match s.strip_prefix('b') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let q = body.chars().next()?;
    if (q != '\'' && q != '"') || body.len() < 2 || !body.ends_with(q) {
        return None;
    }
    let inner = &body[1..body.len() - 1];
    let mut out = Vec::new();
    let mut chars = inner.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let e = chars.next()?;
        let hex = |chars: &mut std::str::Chars<'_>, n: usize| -> Option<u32> {
            let h: String = chars.by_ref().take(n).collect();
            if h.len() != n {
                return None;
            }
            u32::from_str_radix(&h, 16).ok()
        };
        match e {
            'n' => out.push(b'\n'),
            't' => out.push(b'\t'),
            'r' => out.push(b'\r'),
            '0' => out.push(0),
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'v' => out.push(11),
            '\\' => out.push(b'\\'),
            '\'' => out.push(b'\''),
            '"' => out.push(b'"'),
            'x' => {
                let v = hex(&mut chars, 2)?;
                if is_bytes {
                    out.push(v as u8);
                } else {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(char::from_u32(v)?.encode_utf8(&mut buf).as_bytes());
                }
            }
            'u' | 'U' => {
                let v = hex(&mut chars, if e == 'u' { 4 } else { 8 })?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(char::from_u32(v)?.encode_utf8(&mut buf).as_bytes());
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Turns a stream of byte chunks into whole UTF-8 characters for printing, holding back an
/// incomplete character until its last byte arrives (invalid bytes become U+FFFD).
#[derive(Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let good = e.valid_up_to();
                    out.push_str(
                        std::str::from_utf8(&self.pending[..good]).expect("validated prefix"),
                    );
                    match e.error_len() {
                        Some(bad) => {
                            out.push('\u{fffd}');
                            self.pending.drain(..good + bad);
                        }
                        None => {
                            self.pending.drain(..good);
                            return out;
                        }
                    }
                }
            }
        }
    }

    /// Whatever is left at the end (an incomplete character becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab_line(id: u32) -> &'static str {
        WORLD_VOCAB
            .lines()
            .find(|l| l.split(' ').next() == Some(&id.to_string()))
            .unwrap()
    }

    #[test]
    fn shipped_vocab_parses_fully() {
        let w = WorldTokenizer::shipped();
        assert_eq!(w.vocab_len(), 65530);
        assert_eq!(
            WORLD_VOCAB.lines().filter(|l| !l.trim().is_empty()).count(),
            65529
        );
        for b in 0..=255u8 {
            assert!(w.trie.get(&[b]).is_some(), "byte {b} missing");
        }
    }

    #[test]
    fn known_words_have_the_ids_of_the_vocab_file() {
        let w = Tokenizer::World(WorldTokenizer::shipped());
        // Ids read off the vocabulary file's lines (`22590 ' the' 4`, ...).
        for (text, id) in [
            (" the", 22590u32),
            ("Hello", 33155),
            (" world", 40213),
            ("\n\n", 261),
        ] {
            assert_eq!(w.encode(text), vec![id], "{text:?}");
        }
        // Greedy longest match: " the" wins over " t" + "he"; the whole text round-trips.
        assert_eq!(w.encode(" the world"), vec![22590, 40213]);
        for word in [" the", "Hello", " world", "\n\n"] {
            let ids = w.encode(word);
            assert_eq!(ids.len(), 1, "{word:?} should be one token, got {ids:?}");
            let line = vocab_line(ids[0]);
            let lit = line.split_once(' ').unwrap().1.rsplit_once(' ').unwrap().0;
            assert_eq!(
                parse_py_literal(lit).unwrap(),
                word.as_bytes(),
                "line {line}"
            );
        }
    }

    #[test]
    fn round_trip_on_unicode_text() {
        let w = Tokenizer::World(WorldTokenizer::shipped());
        let text = "In the beginning 起初神创造天地。 Ελληνικά, emoji 🦀 and tabs\t\r\n.";
        let ids = w.encode(text);
        assert!(ids.len() < text.len());
        assert_eq!(w.decode_bytes(&ids).unwrap(), text.as_bytes());
        let b = Tokenizer::Bytes;
        assert_eq!(b.decode_bytes(&b.encode(text)).unwrap(), text.as_bytes());
    }

    #[test]
    fn bad_inputs_are_errors() {
        let w = Tokenizer::World(WorldTokenizer::shipped());
        assert_eq!(
            w.encode_bytes(b"ok\xff").unwrap_err(),
            TokenizerError::InvalidUtf8(2)
        );
        assert!(matches!(
            w.decode_bytes(&[70000]),
            Err(TokenizerError::UnknownToken { .. })
        ));
        assert!(matches!(
            Tokenizer::Bytes.decode_bytes(&[256]),
            Err(TokenizerError::UnknownToken { .. })
        ));
        assert!(matches!(
            WorldTokenizer::parse("1 'a' 2\n"),
            Err(TokenizerError::BadVocab { line: 1, .. })
        ));
        assert_eq!(
            Tokenizer::for_vocab(300).err(),
            Some(TokenizerError::NoTokenizer(300))
        );
    }

    fn byte_vocab(skip: Option<u8>) -> String {
        (0..=255u8)
            .filter(|&b| Some(b) != skip)
            .map(|b| format!("{} b'\\x{b:02x}' 1\n", u32::from(b) + 1))
            .collect()
    }

    #[test]
    fn a_vocabulary_missing_a_byte_is_refused() {
        let w = WorldTokenizer::parse(&byte_vocab(None)).unwrap();
        assert_eq!(w.encode(b"AB\xff"), vec![0x42, 0x43, 0x100]);
        assert_eq!(
            WorldTokenizer::parse(&byte_vocab(Some(0x41))).err(),
            Some(TokenizerError::MissingByte(0x41))
        );
        let twice = byte_vocab(None) + "7 'ab' 2\n";
        assert!(
            matches!(WorldTokenizer::parse(&twice), Err(TokenizerError::BadVocab { line: 257, ref why }) if why.contains("twice"))
        );
        let big = byte_vocab(None) + "2000000 'ab' 2\n";
        assert!(matches!(
            WorldTokenizer::parse(&big),
            Err(TokenizerError::BadVocab { line: 257, .. })
        ));
    }

    #[test]
    fn utf8_stream_waits_for_whole_characters() {
        let mut s = Utf8Stream::default();
        let crab = "🦀".as_bytes();
        assert_eq!(s.push(&crab[..2]), "");
        assert_eq!(s.push(&crab[2..]), "🦀");
        assert_eq!(s.push(b"a\xffb"), "a\u{fffd}b");
    }

    /// The trie's greedy match equals the plain definition (try every prefix, longest first)
    /// on random vocabularies over a small alphabet, where long shared prefixes are common.
    #[test]
    fn trie_matches_the_longest_prefix_definition() {
        let mut rng = echos_core::rng::SplitMix64::new(7);
        for round in 0..50 {
            let mut text_vocab = byte_vocab(None);
            let mut words: Vec<Vec<u8>> = Vec::new();
            for k in 0..40 {
                let len = 2 + (rng.next_u64() % 12) as usize;
                let w: Vec<u8> = (0..len)
                    .map(|_| b'a' + (rng.next_u64() % 3) as u8)
                    .collect();
                let lit: String = w.iter().map(|&b| b as char).collect();
                text_vocab += &format!("{} '{lit}' {len}\n", 300 + k);
                words.push(w);
            }
            let w = WorldTokenizer::parse(&text_vocab).unwrap();
            let text: Vec<u8> = (0..200)
                .map(|_| b'a' + (rng.next_u64() % 3) as u8)
                .collect();
            let got = w.encode(&text);
            // The plain definition, over the same tokens (a later duplicate wins, as in parse).
            let id_of = |bytes: &[u8]| -> Option<u32> {
                if bytes.len() == 1 {
                    return Some(u32::from(bytes[0]) + 1);
                }
                words
                    .iter()
                    .rposition(|t| t == bytes)
                    .map(|k| 300 + k as u32)
            };
            let mut want = Vec::new();
            let mut i = 0;
            while i < text.len() {
                let len = (1..=(text.len() - i).min(13))
                    .rev()
                    .find(|&l| id_of(&text[i..i + l]).is_some())
                    .unwrap();
                want.push(id_of(&text[i..i + len]).unwrap());
                i += len;
            }
            assert_eq!(got, want, "round {round}");
            assert_eq!(
                Tokenizer::World(w).decode_bytes(&got).unwrap(),
                text,
                "round {round}"
            );
        }
    }
}
