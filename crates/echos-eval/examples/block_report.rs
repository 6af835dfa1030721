//! Block-sparse against random reservoirs on NARMA10 and memory capacity, seeds 0–2, every
//! other hyperparameter equal:
//! `cargo run --release -p echos-eval --example block_report [sizes…]` (default sizes 16 8);
//! `BLOCK_REPORT_UNITS=100,200` (the default) sets the reservoir sizes.

use echos_core::topology::Topology;
use echos_eval::block_eval::{mean_over, memory_capacity, narma10_nrmse};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    if sizes.is_empty() {
        sizes = vec![16, 8];
    }
    let mut topologies = vec![("random".to_string(), Topology::Random)];
    for s in sizes {
        topologies.push((format!("block {s}"), Topology::Block { size: s }));
    }
    let units_list: Vec<usize> = std::env::var("BLOCK_REPORT_UNITS")
        .unwrap_or_else(|_| "100,200".into())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    println!("| topology | N | NARMA10 NRMSE (mean of seeds 0-2) | per seed |");
    println!("|---|---|---|---|");
    for &units in &units_list {
        for (name, t) in &topologies {
            let (m, per) = mean_over(0..3, |s| narma10_nrmse(units, *t, s))?;
            println!("| {name} | {units} | {m:.4} | {per:.4?} |");
        }
    }
    println!();
    println!("| topology | N | memory capacity (mean of seeds 0-2) | per seed |");
    println!("|---|---|---|---|");
    for &units in &units_list {
        for (name, t) in &topologies {
            let (m, per) = mean_over(0..3, |s| memory_capacity(units, *t, s))?;
            println!("| {name} | {units} | {m:.2} | {per:.2?} |");
        }
    }
    Ok(())
}
