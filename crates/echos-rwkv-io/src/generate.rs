//! Text generation over an RWKV model, the one home of it for the CLI (`echos rwkv generate`,
//! `echos rwkv chat`) and Python: the sampler (temperature, top-k, top-p, presence and
//! frequency penalties with decay), stop tokens and stop strings, a maximum length, and the
//! streaming loop that turns tokens into text.
//!
//! The sampler follows what users of rwkv.cpp and ChatRWKV know:
//! - penalties first, on the logits, as ChatRWKV's chat loop does: every token seen so far
//!   loses `presence + frequency · occurrence`, where `occurrence` counts the token's uses and
//!   decays by `penalty_decay` after each new token (1.0: no decay);
//! - then rwkv.cpp's `sample_logits`: softmax at temperature 1, the top-p nucleus (the most
//!   likely tokens until their probability sums to `top_p`), at most `top_k` of them, then the
//!   kept probabilities raised to `1 / temperature` and renormalised. Temperature 0 is greedy
//!   (the most likely token after penalties; the lowest id on ties).
//!
//! Sampling draws from the engine's xoshiro256** generator, so a seed gives the same text on
//! every platform. Buffers are sized to the vocabulary once; a token costs O(vocab log vocab)
//! for the sort, far below the model step it follows.

use crate::tokenizer::{Tokenizer, TokenizerError, Utf8Stream};
use crate::{Model, Parallel, RwkvError, Scratch, State};

/// Sampling settings (see the module docs for their order and meaning).
#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    /// ≥ 0; 0 is greedy.
    pub temperature: f32,
    /// In (0, 1].
    pub top_p: f32,
    /// At most this many candidates (≥ 1); `None`: no limit.
    pub top_k: Option<usize>,
    /// Subtracted from the logit of every token already seen; finite.
    pub presence_penalty: f32,
    /// Subtracted per (decayed) occurrence of a token already seen; finite.
    pub frequency_penalty: f32,
    /// Occurrence counts are multiplied by this after every token; in (0, 1].
    pub penalty_decay: f32,
}

impl Default for Sampling {
    /// rwkv.cpp's defaults: temperature 1.0, top-p 0.85 (its chat script's), no top-k, no
    /// penalties.
    fn default() -> Self {
        Sampling {
            temperature: 1.0,
            top_p: 0.85,
            top_k: None,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            penalty_decay: 1.0,
        }
    }
}

/// A generation or sampling setting out of range, named as the CLI and Python spell it.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum GenerateError {
    #[error("{name} must be {expected}, got {value}")]
    OutOfRange {
        name: &'static str,
        expected: &'static str,
        value: String,
    },
    #[error("stop string {index} is empty: an empty string would stop before the first token")]
    EmptyStop { index: usize },
    #[error("stop string {index} has {len} bytes; at most {max} are allowed")]
    LongStop {
        index: usize,
        len: usize,
        max: usize,
    },
    #[error("{count} stop strings given; at most {max} are allowed")]
    TooManyStops { count: usize, max: usize },
    #[error("stop token {token} is not below the vocabulary size {vocab}")]
    StopTokenOutOfRange { token: u32, vocab: usize },
    #[error(transparent)]
    Model(#[from] RwkvError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
}

impl Sampling {
    /// Checks every field, naming the first that is out of range.
    pub fn validate(&self) -> Result<(), GenerateError> {
        let bad = |name, expected, value: String| {
            Err(GenerateError::OutOfRange {
                name,
                expected,
                value,
            })
        };
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad(
                "temperature",
                "a finite number >= 0",
                self.temperature.to_string(),
            );
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", "in (0, 1]", self.top_p.to_string());
        }
        if self.top_k == Some(0) {
            return bad("top_k", "at least 1 (omit it for no limit)", "0".into());
        }
        if !self.presence_penalty.is_finite() {
            return bad(
                "presence_penalty",
                "finite",
                self.presence_penalty.to_string(),
            );
        }
        if !self.frequency_penalty.is_finite() {
            return bad(
                "frequency_penalty",
                "finite",
                self.frequency_penalty.to_string(),
            );
        }
        if !(self.penalty_decay > 0.0 && self.penalty_decay <= 1.0) {
            return bad("penalty_decay", "in (0, 1]", self.penalty_decay.to_string());
        }
        Ok(())
    }

    fn penalised(&self) -> bool {
        self.presence_penalty != 0.0 || self.frequency_penalty != 0.0
    }
}

/// A seeded sampler with its buffers and the occurrence counts its penalties need.
pub struct Sampler {
    params: Sampling,
    rng: echos_core::rng::Rng,
    adjusted: Vec<f32>,
    probs: Vec<(f32, u32)>,
    occurrence: Vec<f32>,
    /// Tokens with a nonzero occurrence, so decay touches only those.
    seen: Vec<u32>,
}

impl Sampler {
    /// A sampler for a vocabulary of `vocab` tokens.
    pub fn new(params: Sampling, vocab: usize, seed: u64) -> Result<Sampler, GenerateError> {
        params.validate()?;
        Ok(Sampler {
            params,
            rng: echos_core::rng::Rng::new(seed),
            adjusted: Vec::with_capacity(vocab),
            probs: Vec::with_capacity(vocab),
            occurrence: vec![0.0; vocab],
            seen: Vec::new(),
        })
    }

    pub fn params(&self) -> &Sampling {
        &self.params
    }

    /// Forgets the occurrence counts (a new conversation).
    pub fn reset_penalties(&mut self) {
        for &t in &self.seen {
            self.occurrence[t as usize] = 0.0;
        }
        self.seen.clear();
    }

    /// Counts `token` as used (for the penalties), after decaying the earlier counts.
    pub fn observe(&mut self, token: u32) {
        let Some(slot) = self.occurrence.get(token as usize) else {
            return;
        };
        if !self.params.penalised() {
            return;
        }
        let fresh = *slot == 0.0;
        if self.params.penalty_decay != 1.0 {
            for &t in &self.seen {
                self.occurrence[t as usize] *= self.params.penalty_decay;
            }
        }
        self.occurrence[token as usize] += 1.0;
        if fresh {
            self.seen.push(token);
        }
    }

    /// The next token for `logits` (one per vocabulary entry). `banned` tokens are never
    /// drawn (chat bans the end-of-text token, as ChatRWKV does).
    pub fn sample(&mut self, logits: &[f32], banned: &[u32]) -> u32 {
        let p = &self.params;
        self.adjusted.clear();
        self.adjusted.extend_from_slice(logits);
        if p.penalised() {
            for &t in &self.seen {
                let t = t as usize;
                if let Some(l) = self.adjusted.get_mut(t) {
                    *l -= p.presence_penalty + p.frequency_penalty * self.occurrence[t];
                }
            }
        }
        for &t in banned {
            if let Some(l) = self.adjusted.get_mut(t as usize) {
                *l = f32::NEG_INFINITY;
            }
        }
        let argmax = self
            .adjusted
            .iter()
            .enumerate()
            .fold((0usize, f32::NEG_INFINITY), |b, (i, &v)| {
                if v > b.1 {
                    (i, v)
                } else {
                    b
                }
            })
            .0;
        let max = self.adjusted[argmax];
        if p.temperature == 0.0 || !max.is_finite() {
            return argmax as u32;
        }
        // Softmax at temperature 1 (NaN logits count as impossible).
        self.probs.clear();
        let mut sum = 0.0f64;
        for (i, &l) in self.adjusted.iter().enumerate() {
            let e = if l.is_nan() { 0.0 } else { (l - max).exp() };
            sum += f64::from(e);
            self.probs.push((e, i as u32));
        }
        self.probs
            .sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        // The nucleus, then at most top-k of it.
        let mut keep = 0;
        let mut cum = 0.0f64;
        for &(e, _) in &self.probs {
            keep += 1;
            cum += f64::from(e) / sum;
            if cum >= f64::from(p.top_p) {
                break;
            }
        }
        if let Some(k) = p.top_k {
            keep = keep.min(k);
        }
        let kept = &mut self.probs[..keep.max(1)];
        if p.temperature != 1.0 {
            let inv = 1.0 / p.temperature;
            for w in kept.iter_mut() {
                // Relative to the largest kept weight (1.0), so the power cannot overflow.
                w.0 = w.0.powf(inv);
            }
        }
        let total: f64 = kept.iter().map(|w| f64::from(w.0)).sum();
        let mut r = self.rng.uniform01() * total;
        for &(w, id) in kept.iter() {
            let w = f64::from(w);
            if r < w {
                return id;
            }
            r -= w;
        }
        kept[kept.len() - 1].1
    }
}

/// Most stop strings one generation takes, and their longest length in bytes: the held-back
/// text is bounded by the latter.
pub const MAX_STOP_STRINGS: usize = 16;
pub const MAX_STOP_BYTES: usize = 256;

/// Finds stop strings in streamed bytes without ever emitting a byte that could start one:
/// what could still become a stop string is held back until it cannot.
#[derive(Debug, Default, Clone)]
pub struct StopScan {
    stops: Vec<Vec<u8>>,
    pending: Vec<u8>,
}

/// What [`StopScan::push`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// These bytes are final text; go on.
    Text(Vec<u8>),
    /// Stop string `index` completed; the bytes before it are the last text.
    Stop { index: usize, before: Vec<u8> },
}

impl StopScan {
    pub fn new(stops: &[impl AsRef<[u8]>]) -> Result<StopScan, GenerateError> {
        if stops.len() > MAX_STOP_STRINGS {
            return Err(GenerateError::TooManyStops {
                count: stops.len(),
                max: MAX_STOP_STRINGS,
            });
        }
        for (index, s) in stops.iter().enumerate() {
            let len = s.as_ref().len();
            if len == 0 {
                return Err(GenerateError::EmptyStop { index });
            }
            if len > MAX_STOP_BYTES {
                return Err(GenerateError::LongStop {
                    index,
                    len,
                    max: MAX_STOP_BYTES,
                });
            }
        }
        Ok(StopScan {
            stops: stops.iter().map(|s| s.as_ref().to_vec()).collect(),
            pending: Vec::new(),
        })
    }

    pub fn push(&mut self, bytes: &[u8]) -> Scan {
        self.pending.extend_from_slice(bytes);
        // The earliest complete stop string (the first listed on a tie).
        let mut hit: Option<(usize, usize)> = None;
        for (index, s) in self.stops.iter().enumerate() {
            if let Some(pos) = self
                .pending
                .windows(s.len())
                .position(|w| w == s.as_slice())
            {
                if hit.is_none_or(|(p, _)| pos < p) {
                    hit = Some((pos, index));
                }
            }
        }
        if let Some((pos, index)) = hit {
            let before = self.pending[..pos].to_vec();
            self.pending.clear();
            return Scan::Stop { index, before };
        }
        // Hold back the longest suffix that is a proper prefix of some stop string.
        let n = self.pending.len();
        let hold = self
            .stops
            .iter()
            .map(|s| {
                (1..s.len().min(n + 1))
                    .rev()
                    .find(|&k| self.pending[n - k..] == s[..k])
                    .unwrap_or(0)
            })
            .max()
            .unwrap_or(0);
        let text = self.pending[..n - hold].to_vec();
        self.pending.drain(..n - hold);
        Scan::Text(text)
    }

    /// The bytes held back at the end of a generation (they did not become a stop string).
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }
}

/// Why a generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// `max_tokens` were generated.
    Length,
    /// The model produced the end-of-text token (0 in the world vocabulary).
    EndOfText,
    /// A stop token (given by the caller) was drawn.
    StopToken(u32),
    /// Stop string `index` appeared in the text.
    StopString(usize),
}

impl Finish {
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Length => "length",
            Finish::EndOfText => "end_of_text",
            Finish::StopToken(_) => "stop_token",
            Finish::StopString(_) => "stop_string",
        }
    }
}

/// What to generate after the prompt.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub max_tokens: usize,
    /// Ending tokens (not part of the text).
    pub stop_tokens: Vec<u32>,
    /// Ending strings (not part of the text; the state has seen them).
    pub stop_strings: Vec<String>,
    /// Never draw the end-of-text token (chat).
    pub ban_end_of_text: bool,
}

/// The end-of-text token of the world vocabulary.
pub const END_OF_TEXT: u32 = 0;

/// The result of one generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generated {
    /// The tokens drawn (a stop token and the end-of-text token excluded).
    pub tokens: Vec<u32>,
    pub finish: Finish,
}

/// Feeds `prompt` (which may be empty if `logits` already hold the state's next-token logits),
/// then draws up to `req.max_tokens` tokens, calling `emit` with each piece of final text (whole
/// UTF-8 characters; never a byte of a stop string). Every drawn token is fed back into
/// `state`, so a later call continues the same text or conversation. `logits` carries the
/// next-token logits between calls (length = vocabulary). `emit` returning an error stops the
/// generation with that error (a closed pipe, say); the state has then seen what was emitted.
#[allow(clippy::too_many_arguments)]
pub fn generate<E: From<GenerateError>>(
    model: &Model,
    state: &mut State,
    scratch: &mut Scratch,
    pool: &dyn Parallel,
    tokenizer: &Tokenizer,
    sampler: &mut Sampler,
    prompt: &[u32],
    logits: &mut Vec<f32>,
    req: &Request,
    mut emit: impl FnMut(&str) -> Result<(), E>,
) -> Result<Generated, E> {
    let vocab = model.dims.vocab;
    for &t in &req.stop_tokens {
        if t as usize >= vocab {
            return Err(GenerateError::StopTokenOutOfRange { token: t, vocab }.into());
        }
    }
    let mut stops = StopScan::new(&req.stop_strings)?;
    if !prompt.is_empty() {
        let l = model
            .prefill(state, prompt, scratch, pool, false)
            .map_err(GenerateError::from)?;
        logits.clear();
        logits.extend_from_slice(l);
    }
    if logits.len() != vocab {
        return Err(GenerateError::OutOfRange {
            name: "prompt",
            expected: "at least one token (there are no logits to continue from)",
            value: "empty".into(),
        }
        .into());
    }
    let world = vocab == 65536;
    let banned: &[u32] = if req.ban_end_of_text && world {
        &[END_OF_TEXT]
    } else {
        &[]
    };
    let mut utf8 = Utf8Stream::default();
    let mut tokens = Vec::new();
    let mut finish = Finish::Length;
    for _ in 0..req.max_tokens {
        let next = sampler.sample(logits, banned);
        if world && next == END_OF_TEXT {
            finish = Finish::EndOfText;
            break;
        }
        if req.stop_tokens.contains(&next) {
            finish = Finish::StopToken(next);
            break;
        }
        sampler.observe(next);
        tokens.push(next);
        // The state sees every drawn token, a stop string's included, so a conversation goes
        // on from the end of the turn.
        let l = model
            .step(state, next, scratch, pool)
            .map_err(GenerateError::from)?;
        logits.copy_from_slice(l);
        let bytes = tokenizer
            .decode_bytes(&[next])
            .map_err(GenerateError::from)?;
        match stops.push(&bytes) {
            Scan::Text(b) => {
                let text = utf8.push(&b);
                if !text.is_empty() {
                    emit(&text)?;
                }
            }
            Scan::Stop { index, before } => {
                let mut text = utf8.push(&before);
                text.push_str(&utf8.finish());
                if !text.is_empty() {
                    emit(&text)?;
                }
                return Ok(Generated {
                    tokens,
                    finish: Finish::StopString(index),
                });
            }
        }
    }
    let mut text = utf8.push(&stops.finish());
    text.push_str(&utf8.finish());
    if !text.is_empty() {
        emit(&text)?;
    }
    Ok(Generated { tokens, finish })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(p: Sampling, vocab: usize) -> Sampler {
        Sampler::new(p, vocab, 1).unwrap()
    }

    #[test]
    fn out_of_range_settings_are_named() {
        let cases: [(Sampling, &str); 6] = [
            (
                Sampling {
                    temperature: -1.0,
                    ..Default::default()
                },
                "temperature",
            ),
            (
                Sampling {
                    top_p: 0.0,
                    ..Default::default()
                },
                "top_p",
            ),
            (
                Sampling {
                    top_p: 1.5,
                    ..Default::default()
                },
                "top_p",
            ),
            (
                Sampling {
                    top_k: Some(0),
                    ..Default::default()
                },
                "top_k",
            ),
            (
                Sampling {
                    frequency_penalty: f32::NAN,
                    ..Default::default()
                },
                "frequency_penalty",
            ),
            (
                Sampling {
                    penalty_decay: 0.0,
                    ..Default::default()
                },
                "penalty_decay",
            ),
        ];
        for (p, name) in cases {
            match Sampler::new(p, 10, 0) {
                Err(GenerateError::OutOfRange { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name}: {:?}", other.map(|_| ())),
            }
        }
        assert!(Sampler::new(Sampling::default(), 10, 0).is_ok());
    }

    #[test]
    fn greedy_takes_the_largest_logit_and_bans_apply() {
        let mut s = sampler(
            Sampling {
                temperature: 0.0,
                ..Default::default()
            },
            4,
        );
        assert_eq!(s.sample(&[0.1, 3.0, 2.0, -1.0], &[]), 1);
        assert_eq!(s.sample(&[0.1, 3.0, 2.0, -1.0], &[1]), 2);
    }

    #[test]
    fn top_k_one_and_a_tiny_top_p_are_greedy() {
        let logits = [0.5f32, 1.0, 0.9, 0.2];
        for p in [
            Sampling {
                top_k: Some(1),
                top_p: 1.0,
                ..Default::default()
            },
            Sampling {
                top_p: 1e-6,
                ..Default::default()
            },
        ] {
            let mut s = sampler(p, 4);
            for _ in 0..200 {
                assert_eq!(s.sample(&logits, &[]), 1);
            }
        }
    }

    #[test]
    fn sampling_follows_the_softmax_within_the_nucleus() {
        // Probabilities 0.5, 0.3, 0.2 (logits are their logs); top-p 0.75 keeps the first two,
        // renormalised to 0.625 / 0.375; temperature 1.
        let logits = [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
        let mut s = sampler(
            Sampling {
                top_p: 0.75,
                ..Default::default()
            },
            3,
        );
        let mut counts = [0usize; 3];
        let n = 40_000;
        for _ in 0..n {
            counts[s.sample(&logits, &[]) as usize] += 1;
        }
        assert_eq!(counts[2], 0, "outside the nucleus: {counts:?}");
        let f0 = counts[0] as f64 / n as f64;
        // Binomial standard deviation at n = 40,000 is 0.0024: 5 sigma.
        assert!((f0 - 0.625).abs() < 0.012, "{f0} {counts:?}");
        // Temperature 0.5 squares the weights: 0.625² : 0.375² → 0.735.
        let mut s = sampler(
            Sampling {
                top_p: 0.75,
                temperature: 0.5,
                ..Default::default()
            },
            3,
        );
        let hits = (0..n).filter(|_| s.sample(&logits, &[]) == 0).count();
        let f0 = hits as f64 / n as f64;
        assert!((f0 - 0.7353).abs() < 0.012, "{f0}");
    }

    #[test]
    fn penalties_push_down_seen_tokens_and_decay() {
        let mut s = sampler(
            Sampling {
                temperature: 0.0,
                presence_penalty: 0.5,
                frequency_penalty: 1.0,
                penalty_decay: 0.5,
                ..Default::default()
            },
            3,
        );
        let logits = [2.0f32, 1.0, 0.0];
        assert_eq!(s.sample(&logits, &[]), 0);
        s.observe(0); // 0: occurrence 1 → 2.0 − 0.5 − 1.0 = 0.5 < 1.0
        assert_eq!(s.sample(&logits, &[]), 1);
        s.observe(1); // 0 decays to 0.5 → 2.0 − 0.5 − 0.5 = 1.0; 1 → 1.0 − 1.5 = −0.5
        assert_eq!(s.sample(&logits, &[]), 0);
        s.reset_penalties();
        assert_eq!(s.sample(&[0.0, 1.0, 0.5], &[]), 1);
    }

    #[test]
    fn same_seed_same_draws() {
        let logits: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        let draw = |seed| {
            let mut s = Sampler::new(Sampling::default(), 100, seed).unwrap();
            (0..50).map(|_| s.sample(&logits, &[])).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    #[test]
    fn stop_strings_are_never_emitted_even_across_pieces() {
        let mut s = StopScan::new(&["\n\nUser:", "END"]).unwrap();
        assert_eq!(s.push(b"Hello"), Scan::Text(b"Hello".to_vec()));
        // "\n" could start the first stop string: held back.
        assert_eq!(s.push(b" there\n"), Scan::Text(b" there".to_vec()));
        assert_eq!(s.push(b"\nUs"), Scan::Text(Vec::new()));
        assert_eq!(
            s.push(b"er: hi"),
            Scan::Stop {
                index: 0,
                before: Vec::new()
            }
        );
        let mut s = StopScan::new(&["END"]).unwrap();
        assert_eq!(s.push(b"the EN"), Scan::Text(b"the ".to_vec()));
        assert_eq!(
            s.push(b"D"),
            Scan::Stop {
                index: 0,
                before: Vec::new()
            }
        );
        // A held-back prefix that does not complete is released.
        let mut s = StopScan::new(&["END"]).unwrap();
        assert_eq!(s.push(b"EN"), Scan::Text(Vec::new()));
        assert_eq!(s.push(b"x"), Scan::Text(b"ENx".to_vec()));
        assert_eq!(s.push(b"E"), Scan::Text(Vec::new()));
        assert_eq!(s.finish(), b"E".to_vec());
        // The earliest stop wins.
        let mut s = StopScan::new(&["bc", "ab"]).unwrap();
        assert_eq!(
            s.push(b"xabc"),
            Scan::Stop {
                index: 1,
                before: b"x".to_vec()
            }
        );
    }

    #[test]
    fn bad_stop_strings_are_refused() {
        assert_eq!(
            StopScan::new(&[""]).unwrap_err(),
            GenerateError::EmptyStop { index: 0 }
        );
        let long = "x".repeat(MAX_STOP_BYTES + 1);
        assert!(matches!(
            StopScan::new(&[long.as_str()]),
            Err(GenerateError::LongStop { index: 0, .. })
        ));
        let many = vec!["a"; MAX_STOP_STRINGS + 1];
        assert!(matches!(
            StopScan::new(&many),
            Err(GenerateError::TooManyStops { .. })
        ));
    }
}
