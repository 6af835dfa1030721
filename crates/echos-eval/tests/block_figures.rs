//! Issue 2's NARMA10 figure with the block-sparse topology: the same bound the random
//! reservoir must meet (NRMSE ≤ 0.33 at 100 units, mean of seeds 0, 1, 2), with the same
//! hyperparameters (chosen for random reservoirs on validation seeds, never on these).

use echos_core::topology::Topology;
use echos_eval::block_eval::{mean_over, narma10_nrmse};

#[test]
fn block_narma10_100_units_beats_0_33() {
    for size in [16, 8] {
        let (nrmse, per_seed) =
            mean_over(0..3, |s| narma10_nrmse(100, Topology::Block { size }, s)).unwrap();
        eprintln!("block {size} NARMA10 N=100: NRMSE {nrmse:.4} per seed {per_seed:.4?}");
        assert!(
            nrmse <= 0.33,
            "block {size}: NARMA10 NRMSE {nrmse} > 0.33 at 100 units"
        );
    }
}
