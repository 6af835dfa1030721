//! Prints the float32 / int16 / int8 comparison (bytes, NARMA10 NRMSE mean ± std over seeds
//! 0–2, memory capacity) for the given sizes:
//! `cargo run --release -p echos-eval --example quant_report -- 100 200` (add `--no-mc` to skip
//! memory capacity). NARMA10 is run twice: every format on float32's tuned hyperparameters,
//! and every format on its own tuned ones (where `quant_tune` was run at that size); then
//! int8's error split into readout, state and weight shares.

use echos_eval::quant_eval::{memory_capacity_row, narma10_row, Format, NarmaHyper};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mc = !args.iter().any(|a| a == "--no-mc");
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![100] } else { sizes };
    println!(
        "| format | N | hyperparameters | ridge | bytes | NARMA10 NRMSE (seeds 0–2) | vs float32 |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &n in &sizes {
        for (label, own) in [("float32-tuned", false), ("own-tuned", true)] {
            let mut base = None;
            for format in Format::ALL {
                let hyper = if own {
                    match NarmaHyper::tuned_for(format, n) {
                        Some(h) => h,
                        None => continue,
                    }
                } else {
                    NarmaHyper::float32_tuned(n)
                };
                match narma10_row(format, n, hyper) {
                    Ok(r) => {
                        let b = *base.get_or_insert(r.mean);
                        println!(
                            "| {} | {} | {label}: sr {} is {} bs {} | {:e} | {} | {:.4} ± {:.4} | {:+.1}% |",
                            r.format,
                            n,
                            hyper.spectral_radius,
                            hyper.input_scaling,
                            hyper.bias_scaling,
                            r.ridge,
                            r.bytes,
                            r.mean,
                            r.std,
                            100.0 * (r.mean / b - 1.0)
                        );
                    }
                    Err(e) => eprintln!("N = {n} {}: {e}", format.name()),
                }
            }
        }
    }
    println!();
    println!(
        "Where int8 loses (each row adds one error source; ridge chosen per row on tuning seeds):"
    );
    println!();
    println!("| variant | N | hyperparameters | NARMA10 NRMSE (seeds 0–2) | vs float32 |");
    println!("|---|---|---|---|---|");
    for &n in &sizes {
        let mut points = vec![("float32-tuned", NarmaHyper::float32_tuned(n))];
        if let Some(h) = NarmaHyper::tuned_for(Format::Int8, n) {
            points.push(("int8-tuned", h));
        }
        for (label, hyper) in points {
            let mut base = None;
            for format in Format::INT8_ERROR_BUDGET {
                match narma10_row(format, n, hyper) {
                    Ok(r) => {
                        let b = *base.get_or_insert(r.mean);
                        println!(
                            "| {} | {n} | {label}: sr {} is {} bs {} | {:.4} ± {:.4} | {:+.1}% |",
                            r.format,
                            hyper.spectral_radius,
                            hyper.input_scaling,
                            hyper.bias_scaling,
                            r.mean,
                            r.std,
                            100.0 * (r.mean / b - 1.0)
                        );
                    }
                    Err(e) => eprintln!("N = {n} {}: {e}", format.name()),
                }
            }
        }
    }
    if mc {
        println!();
        println!("| format | N | memory capacity (seeds 0–2) |");
        println!("|---|---|---|");
        for &n in &sizes {
            for format in Format::ALL {
                match memory_capacity_row(format, n) {
                    Ok((_, m, s)) => println!("| {} | {n} | {m:.2} ± {s:.2} |", format.name()),
                    Err(e) => eprintln!("N = {n} {}: {e}", format.name()),
                }
            }
        }
    }
}
