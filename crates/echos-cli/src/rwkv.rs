//! `echos rwkv ...`: text generation, chat, logits for a token file, benchmarks. Loading,
//! checking arguments and printing only; the model runs in the engine and sampling, stop
//! strings and the generation loop live in `echos_rwkv_io::generate`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use echos_rwkv_io::generate::{self, GenerateError, Request, Sampler, Sampling};
use echos_rwkv_io::synthetic::{synthetic_v7, SyntheticShape};
use echos_rwkv_io::tokenizer::Tokenizer;
use echos_rwkv_io::{load_model, npy, state_io, Model, Parallel, Scratch, SpinPool, State};

#[derive(Subcommand)]
pub enum RwkvCommand {
    /// Continue a prompt, printing text as it is produced.
    Generate(GenerateArgs),
    /// Chat on standard input, one line per turn ("User: …\n\nAssistant:", as ChatRWKV), the
    /// state kept between turns; `/reset` starts over, `/save PATH` saves the state.
    Chat(ChatArgs),
    /// Logits after every token of a .npy token file (int32/int64), written as (tokens, vocab).
    Forward(ForwardArgs),
    /// Tokens per second of prefill and single-token decode; prints one JSON object.
    Bench(BenchArgs),
}

#[derive(Args)]
pub struct ModelArgs {
    /// Model file: BlinkDL .pth, safetensors or rwkv.cpp .bin.
    #[arg(long)]
    model: PathBuf,
    /// Worker threads for the matrix products.
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    threads: usize,
    /// Quantize the large matrices to int8 (one scale per row) after loading.
    #[arg(long)]
    int8: bool,
    /// Start from a state saved earlier (safetensors) instead of the empty state.
    #[arg(long)]
    state_in: Option<PathBuf>,
    /// Save the state after the run.
    #[arg(long)]
    state_out: Option<PathBuf>,
}

#[derive(Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The prompt text (may start with a hyphen).
    #[arg(long, conflicts_with = "prompt_file", allow_hyphen_values = true)]
    prompt: Option<String>,
    /// Read the prompt from a UTF-8 file.
    #[arg(long)]
    prompt_file: Option<PathBuf>,
    /// Most tokens to generate.
    #[arg(
        long,
        short = 'n',
        visible_alias = "max-tokens",
        default_value_t = 100,
        allow_negative_numbers = true
    )]
    tokens: usize,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// End the text at this string (not printed); repeatable, at most 16.
    #[arg(long = "stop", allow_hyphen_values = true)]
    stop: Vec<String>,
    /// End the text at this token id (not printed); repeatable.
    #[arg(long = "stop-token", allow_negative_numbers = true)]
    stop_token: Vec<u32>,
}

/// Sampling flags shared by `generate` and `chat` (their order and meaning:
/// `echos_rwkv_io::generate`, docs/rwkv.md).
#[derive(Args)]
pub struct SamplingArgs {
    /// Sampling temperature; 0 picks the most likely token (greedy).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    temperature: f32,
    /// Nucleus sampling: keep the most likely tokens whose probabilities sum to top-p.
    #[arg(long, default_value_t = 0.85, allow_negative_numbers = true)]
    top_p: f32,
    /// Keep at most this many candidates (≥ 1; default: no limit).
    #[arg(long, allow_negative_numbers = true)]
    top_k: Option<usize>,
    /// Subtracted from the logit of every token already generated.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    presence_penalty: f32,
    /// Subtracted per earlier occurrence of a token (decayed by --penalty-decay per token).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    frequency_penalty: f32,
    /// Occurrence counts are multiplied by this after every token, in (0, 1].
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    penalty_decay: f32,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 42, allow_negative_numbers = true)]
    seed: u64,
}

#[derive(Args)]
pub struct ChatArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Text fed before the first turn (a system prompt or an earlier conversation).
    #[arg(long, allow_hyphen_values = true)]
    system: Option<String>,
    /// Most tokens per reply.
    #[arg(long, default_value_t = 200, allow_negative_numbers = true)]
    max_tokens: usize,
    #[command(flatten)]
    sampling: SamplingArgs,
}

#[derive(Args)]
pub struct ForwardArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Token ids (.npy, 1-D, int32 or int64).
    #[arg(long)]
    tokens: PathBuf,
    /// Output logits (.npy, float32, shape (tokens, vocab)); the path must end in .npy.
    #[arg(long)]
    logits: PathBuf,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Model file; without it a synthetic v7 model of --shape with random weights.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Synthetic shape: n_layer,n_embd,head_size,vocab (default: the 0.1B shapes).
    #[arg(long, default_value = "12,768,64,65536")]
    shape: String,
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    threads: usize,
    #[arg(long)]
    int8: bool,
    /// Tokens in the prefill measurement.
    #[arg(long, default_value_t = 64, allow_negative_numbers = true)]
    prefill: usize,
    /// Tokens in the decode measurement.
    #[arg(long, default_value_t = 32, allow_negative_numbers = true)]
    decode: usize,
    /// Repetitions (the median is reported).
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    repeat: usize,
    /// Print JSON (the only output format; kept for scripts that pass it).
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: RwkvCommand) -> anyhow::Result<()> {
    match cmd {
        RwkvCommand::Generate(a) => generate(a),
        RwkvCommand::Chat(a) => chat(a),
        RwkvCommand::Forward(a) => forward(a),
        RwkvCommand::Bench(a) => bench(a),
    }
}

fn threads_arg(n: usize) -> anyhow::Result<SpinPool> {
    if n == 0 || n > 256 {
        bail!("--threads must be between 1 and 256, got {n}");
    }
    Ok(SpinPool::new(n))
}

/// Fails now, before any work, when `path` could not be written at the end: the atomic
/// writers create a file in its directory and rename it over `path`.
fn check_writable(flag: &str, path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        bail!("{flag} `{}` is a directory", path.display());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let probe = dir.join(format!(".echos-probe-{}-{nanos}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .with_context(|| {
            format!(
                "{flag} `{}`: cannot create a file in `{}`",
                path.display(),
                dir.display()
            )
        })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn open_model(a: &ModelArgs) -> anyhow::Result<(Model, State)> {
    if let Some(p) = &a.state_out {
        check_writable("--state-out", p)?;
    }
    let loaded =
        load_model(&a.model).with_context(|| format!("loading model `{}`", a.model.display()))?;
    let mut model = loaded.model;
    if a.int8 {
        model.quantize_int8();
    }
    let state = match &a.state_in {
        Some(p) => state_io::load_state(p, &model)?,
        None => State::new(&model),
    };
    Ok((model, state))
}

fn save_state(a: &ModelArgs, model: &Model, state: &State) -> anyhow::Result<()> {
    if let Some(p) = &a.state_out {
        state_io::save_state(p, model, state)?;
    }
    Ok(())
}

impl SamplingArgs {
    fn sampler(&self, vocab: usize) -> anyhow::Result<Sampler> {
        let params = Sampling {
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            presence_penalty: self.presence_penalty,
            frequency_penalty: self.frequency_penalty,
            penalty_decay: self.penalty_decay,
        };
        Sampler::new(params, vocab, self.seed).map_err(flagged)
    }
}

/// A generation error with its setting named as the flag that sets it (`--top-p`, not `top_p`).
fn flagged(e: GenerateError) -> anyhow::Error {
    match e {
        GenerateError::OutOfRange {
            name,
            expected,
            value,
        } => anyhow::anyhow!(
            "--{} must be {expected}, got {value}",
            name.replace('_', "-")
        ),
        GenerateError::EmptyStop { .. } => {
            anyhow::anyhow!(
                "--stop: a stop string must not be empty (it would stop before the first token)"
            )
        }
        GenerateError::LongStop { len, max, .. } => {
            anyhow::anyhow!("--stop: a stop string has {len} bytes; at most {max} are allowed")
        }
        GenerateError::TooManyStops { count, max } => {
            anyhow::anyhow!("--stop given {count} times; at most {max} stop strings are allowed")
        }
        other => anyhow::Error::new(other),
    }
}

/// Checks what can be checked before the model loads (it may take seconds).
fn check_sampling(s: &SamplingArgs) -> anyhow::Result<()> {
    s.sampler(1).map(|_| ())
}

fn generate(a: GenerateArgs) -> anyhow::Result<()> {
    check_sampling(&a.sampling)?;
    generate::StopScan::new(&a.stop).map_err(flagged)?;
    let prompt: Vec<u8> = match (&a.prompt, &a.prompt_file) {
        (Some(p), None) => p.as_bytes().to_vec(),
        (None, Some(f)) => {
            std::fs::read(f).with_context(|| format!("reading prompt file `{}`", f.display()))?
        }
        _ => bail!("give the prompt with --prompt or --prompt-file"),
    };
    let pool = threads_arg(a.model.threads)?;
    let (model, mut state) = open_model(&a.model)?;
    let tokenizer = Tokenizer::for_vocab(model.dims.vocab)?;
    let tokens = tokenizer
        .encode_bytes(&prompt)
        .context("tokenizing the prompt")?;
    if tokens.is_empty() {
        bail!("the prompt is empty: give at least one character to continue from");
    }
    let mut sampler = a.sampling.sampler(model.dims.vocab)?;
    let mut scratch = Scratch::new(&model, tokens.len().clamp(1, 64));
    let mut logits = Vec::with_capacity(model.dims.vocab);
    let req = Request {
        max_tokens: a.tokens,
        stop_tokens: a.stop_token.clone(),
        stop_strings: a.stop.clone(),
        ban_end_of_text: false,
    };
    let mut out = crate::output::stdout();
    let terminal = crate::output::stdout_is_terminal();
    // Flushed per piece so the text streams. A closed pipe (`| head`) ends the run here,
    // quietly (see `main`), and without --state-out: the run was cut short.
    let emit = streamer(&mut out, terminal);
    generate::generate(
        &model,
        &mut state,
        &mut scratch,
        &pool,
        &tokenizer,
        &mut sampler,
        &tokens,
        &mut logits,
        &req,
        emit,
    )
    .map_err(|e| e.context("generating"))?;
    writeln!(out)?;
    out.flush()?;
    save_state(&a.model, &model, &state)
}

/// Generated text to stdout as it streams: escaped for a terminal, flushed per piece.
fn streamer(
    out: &mut crate::output::Stdout,
    terminal: bool,
) -> impl FnMut(&str) -> anyhow::Result<()> + '_ {
    move |text| {
        out.write_all(crate::output::for_terminal(text, terminal).as_bytes())?;
        out.flush()?;
        Ok(())
    }
}

/// One turn in ChatRWKV's format; the reply ends at the blank line the model writes.
fn chat_turn(message: &str) -> String {
    format!("User: {message}\n\nAssistant:")
}

fn chat(a: ChatArgs) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal};
    check_sampling(&a.sampling)?;
    let pool = threads_arg(a.model.threads)?;
    let (model, mut state) = open_model(&a.model)?;
    let start = state.clone();
    let tokenizer = Tokenizer::for_vocab(model.dims.vocab)?;
    let mut sampler = a.sampling.sampler(model.dims.vocab)?;
    let mut scratch = Scratch::new(&model, 64);
    let mut logits = Vec::with_capacity(model.dims.vocab);
    let mut context = a.system.clone().unwrap_or_default();
    let req = Request {
        max_tokens: a.max_tokens,
        stop_tokens: Vec::new(),
        stop_strings: vec!["\n\n".into()],
        ban_end_of_text: true,
    };
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let terminal = crate::output::stdout_is_terminal();
    let mut out = crate::output::stdout();
    let mut input = stdin.lock();
    let mut line = String::new();
    loop {
        if interactive {
            crate::output::prompt("> ");
        }
        line.clear();
        if input
            .read_line(&mut line)
            .context("reading standard input")?
            == 0
        {
            break;
        }
        let message = line.trim();
        if message.is_empty() {
            continue;
        }
        if message == "/reset" {
            state = start.clone();
            sampler.reset_penalties();
            logits.clear();
            context = a.system.clone().unwrap_or_default();
            let _ = crate::output::note("chat: the conversation starts over");
            continue;
        }
        if let Some(path) = message.strip_prefix("/save ") {
            let path = Path::new(path.trim());
            check_writable("/save", path)?;
            state_io::save_state(path, &model, &state)?;
            let _ = crate::output::note(format_args!("chat: state saved to {}", path.display()));
            continue;
        }
        // A newline inside a turn would end it early; the turn is one line.
        context.push_str(&chat_turn(message));
        let tokens = tokenizer
            .encode_bytes(context.as_bytes())
            .context("tokenizing the message")?;
        context.clear();
        let emit = streamer(&mut out, terminal);
        let reply = generate::generate(
            &model,
            &mut state,
            &mut scratch,
            &pool,
            &tokenizer,
            &mut sampler,
            &tokens,
            &mut logits,
            &req,
            emit,
        )
        .map_err(|e| e.context("generating a reply"))?;
        // The state has seen the reply's closing blank line; a reply cut at --max-tokens gets
        // one now, so every turn starts the same way and the state alone (for /save and
        // --state-out) holds the whole conversation.
        if !matches!(reply.finish, generate::Finish::StopString(_)) {
            let close = tokenizer.encode("\n\n");
            model.prefill(&mut state, &close, &mut scratch, &pool, false)?;
            logits.clear();
        }
        writeln!(out, "\n")?;
        out.flush()?;
    }
    save_state(&a.model, &model, &state)
}

fn forward(a: ForwardArgs) -> anyhow::Result<()> {
    let pool = threads_arg(a.model.threads)?;
    if !a
        .logits
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
    {
        bail!(
            "--logits `{}`: logits are written as .npy (float32, shape (tokens, vocab)); give a path ending in .npy",
            a.logits.display()
        );
    }
    check_writable("--logits", &a.logits)?;
    let tokens = npy::read_tokens(&a.tokens)?;
    if tokens.is_empty() {
        bail!("`{}` holds no tokens", a.tokens.display());
    }
    let (model, mut state) = open_model(&a.model)?;
    let vocab = model.dims.vocab;
    let block = tokens.len().min(256);
    let mut scratch = Scratch::new(&model, block);
    let mut all = Vec::with_capacity(tokens.len() * vocab);
    for chunk in tokens.chunks(block) {
        all.extend_from_slice(model.prefill(&mut state, chunk, &mut scratch, &pool, true)?);
    }
    npy::write_f32_2d(&a.logits, tokens.len(), vocab, &all)?;
    save_state(&a.model, &model, &state)
}

fn parse_shape(s: &str) -> anyhow::Result<SyntheticShape> {
    let v: Vec<usize> = s
        .split(',')
        .map(|x| x.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!("--shape `{s}`: expected four integers n_layer,n_embd,head_size,vocab")
        })?;
    let [n_layer, n_embd, head_size, vocab] = v[..] else {
        bail!("--shape `{s}`: expected four integers n_layer,n_embd,head_size,vocab");
    };
    if n_layer == 0 || n_embd == 0 || head_size == 0 || n_embd % head_size != 0 || vocab == 0 {
        bail!("--shape `{s}`: all positive and n_embd a multiple of head_size");
    }
    if n_layer * n_embd * n_embd > 1 << 34 || vocab * n_embd > 1 << 33 {
        bail!("--shape `{s}` is too large for a synthetic model");
    }
    Ok(SyntheticShape {
        n_layer,
        n_embd,
        head_size,
        vocab,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Streaming read of a buffer much larger than the caches, split over the pool's threads:
/// the bandwidth a bandwidth-bound decode can at best reach.
fn measure_bandwidth(pool: &SpinPool) -> f64 {
    let n = 64 << 20; // 64 Mi u64 = 512 MiB
    let buf: Vec<u64> = (0..n as u64).collect();
    let threads = pool.threads();
    let sums: Vec<std::sync::atomic::AtomicU64> =
        (0..threads).map(|_| Default::default()).collect();
    let mut best = 0.0f64;
    for _ in 0..3 {
        let t0 = Instant::now();
        pool.run(&|i| {
            let part = &buf[n * i / threads..n * (i + 1) / threads];
            let mut acc = [0u64; 8];
            for c in part.chunks_exact(8) {
                for j in 0..8 {
                    acc[j] = acc[j].wrapping_add(c[j]);
                }
            }
            sums[i].store(
                acc.iter().fold(0, |a, &b| a.wrapping_add(b)),
                std::sync::atomic::Ordering::Relaxed,
            );
        });
        let dt = t0.elapsed().as_secs_f64();
        best = best.max((n * 8) as f64 / dt / 1e9);
    }
    best
}

fn bench(a: BenchArgs) -> anyhow::Result<()> {
    let pool = threads_arg(a.threads)?;
    if a.prefill == 0 || a.decode == 0 || a.repeat == 0 {
        bail!("--prefill, --decode and --repeat must be at least 1");
    }
    let (mut model, name) = match &a.model {
        Some(p) => (
            load_model(p)
                .with_context(|| format!("loading model `{}`", p.display()))?
                .model,
            p.display().to_string(),
        ),
        None => {
            let shape = parse_shape(&a.shape)?;
            (
                synthetic_v7(&shape, 1)?,
                format!("synthetic-v7-{}", a.shape),
            )
        }
    };
    if a.int8 {
        model.quantize_int8();
    }
    let vocab = model.dims.vocab as u32;
    let prompt: Vec<u32> = (0..a.prefill as u32)
        .map(|i| (i * 7919 + 13) % vocab)
        .collect();
    let mut scratch = Scratch::new(&model, a.prefill);
    let mut state = State::new(&model);
    // Warm-up: page in every weight once.
    model.prefill(&mut state, &prompt, &mut scratch, &pool, false)?;
    // Bandwidth before and after the runs, the best kept: on a shared machine one measurement
    // can land in a slow moment.
    let bandwidth_before = measure_bandwidth(&pool);
    let mut prefill = Vec::new();
    let mut decode = Vec::new();
    for _ in 0..a.repeat {
        state.reset(&model);
        let t0 = Instant::now();
        model.prefill(&mut state, &prompt, &mut scratch, &pool, false)?;
        prefill.push(a.prefill as f64 / t0.elapsed().as_secs_f64());
        let mut tok = 1u32;
        let t0 = Instant::now();
        for _ in 0..a.decode {
            let logits = model.step(&mut state, tok, &mut scratch, &pool)?;
            tok = (logits[0].to_bits() ^ tok.wrapping_mul(2654435761)) % vocab;
        }
        decode.push(a.decode as f64 / t0.elapsed().as_secs_f64());
    }
    let bandwidth = measure_bandwidth(&pool).max(bandwidth_before);
    let bytes = model.weight_bytes_per_token() as f64;
    let decode_tps = median(decode);
    let limit = bandwidth * 1e9 / bytes;
    let json = serde_json::json!({
        "model": name,
        "version": model.version.name(),
        "n_layer": model.dims.n_layer,
        "n_embd": model.dims.n_embd,
        "vocab": model.dims.vocab,
        "precision": if a.int8 { "int8" } else { "f32" },
        "kernel": model.kernel().name(),
        "threads": a.threads,
        "prefill_tokens": a.prefill,
        "prefill_tokens_per_s": median(prefill),
        "decode_tokens_per_s": decode_tps,
        "weight_bytes_per_token": bytes as u64,
        "measured_read_bandwidth_gb_per_s": bandwidth,
        "decode_bandwidth_limit_tokens_per_s": limit,
        "decode_fraction_of_bandwidth_limit": decode_tps / limit,
    });
    crate::output::println(json)?;
    Ok(())
}
