//! Prints the float32 / int16 / int8 comparison (bytes per reservoir, NARMA10 NRMSE, memory
//! capacity) for the given sizes: `cargo run --release -p echos-host --example quant_report -- 100 500`.

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() { vec![100] } else { sizes };
    println!("| format | N | bytes per reservoir | NARMA10 NRMSE | memory capacity |");
    println!("|---|---|---|---|---|");
    for n in sizes {
        match echos_host::quant_eval::compare(n, 3) {
            Ok(rows) => {
                for r in rows {
                    println!(
                        "| {} | {} | {} | {:.4} | {:.2} |",
                        r.format, r.units, r.bytes, r.narma10_nrmse, r.memory_capacity
                    );
                }
            }
            Err(e) => eprintln!("N = {n}: {e}"),
        }
    }
}
