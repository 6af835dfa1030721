//! Many sequences through one reservoir ([`BatchRunner`]: the batched kernel reads the matrix
//! once per step for a whole group of sequences; block-sparse reservoirs run the batched block
//! kernel, others the batched CSR kernel) and many independent reservoirs
//! ([`Ensemble`]), spread over the cores with rayon. Both give results bit-identical to running
//! the sequences / reservoirs one by one (batched lanes repeat the scalar arithmetic; ensemble
//! members run the same single-sequence kernel), which the tests check.
//!
//! Work is split so threads never synchronise inside a run: a batch is cut into groups of
//! sequences, each group stepping through all time steps on its own core.

use echos_core::kernels::block_bf16::BlockBf16;
use echos_core::kernels::reservoir::FusedReservoir;
use echos_core::kernels::sell::SLICE;
use echos_core::kernels::{Kernel, KernelError, Variant};
use rayon::prelude::*;
use thiserror::Error;

/// Why a batch or ensemble run was refused.
#[derive(Debug, Error)]
pub enum EnsembleError {
    /// A buffer does not match the run's shape.
    #[error("{what} has length {found}, expected {expected}")]
    Shape {
        what: &'static str,
        expected: usize,
        found: usize,
    },
    /// Batched stepping needs a sparse (CSR) reservoir.
    #[error("batched stepping needs a sparse (CSR) reservoir; this one is dense")]
    NotSparse,
    /// The row split cuts CSR rows; the batched block kernel steps whole tiles.
    #[error(
        "the row split runs the CSR batch kernel; a block-sparse reservoir's batch splits by sequences only"
    )]
    RowSplitOnBlock,
    /// The bf16-products format exists for block-sparse reservoirs only.
    #[error("the bf16-products batch format needs a block-sparse reservoir")]
    Bf16NeedsBlock,
    /// A batch of zero sequences or an ensemble of zero reservoirs.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// Ensemble members must all take the same number of inputs.
    #[error("ensemble member {member} takes {found} inputs, member 0 takes {expected}")]
    MixedInputs {
        member: usize,
        expected: usize,
        found: usize,
    },
    /// The kernel refused (dimensions, variant).
    #[error(transparent)]
    Kernel(#[from] KernelError),
}

/// A zeroed f32 buffer whose first element sits on a 64-byte boundary: the batched kernel loads
/// whole cache lines of one unit's batch lanes, and a misaligned base makes every 16-lane load
/// straddle two lines (glibc returns large blocks 16 bytes past a page boundary).
struct LineAligned {
    buf: Vec<f32>,
    offset: usize,
    len: usize,
}

impl LineAligned {
    const LINE_FLOATS: usize = 16;

    fn zeroed(len: usize) -> Self {
        let buf = vec![0.0f32; len + Self::LINE_FLOATS];
        // align_offset may decline (usize::MAX); then fall back to the unaligned start.
        let offset = match buf.as_ptr().align_offset(64) {
            o if o <= Self::LINE_FLOATS => o,
            _ => 0,
        };
        LineAligned { buf, offset, len }
    }

    fn as_slice(&self) -> &[f32] {
        &self.buf[self.offset..self.offset + self.len]
    }

    fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.buf[self.offset..self.offset + self.len]
    }
}

struct Group {
    /// First sequence of the group within the batch.
    b0: usize,
    width: usize,
    /// State, unit-major: x[i·width + b].
    x: LineAligned,
    next: LineAligned,
    /// This step's inputs, input-major: u[j·width + b].
    u: Vec<f32>,
    /// The bf16 format's rounded deviations (units·width; empty for f32 runners).
    scratch: Vec<u16>,
}

/// `batch` sequences stepping through one sparse reservoir: the batched block kernel
/// ([`Kernel::block_leaky_step_batch`]) when the reservoir is block-sparse
/// ([`FusedReservoir::block`]), else the batched CSR kernel.
pub struct BatchRunner<'r> {
    reservoir: &'r FusedReservoir,
    kernel: Kernel,
    /// The opt-in bf16-products format of the block weights ([`BatchRunner::new_bf16`]).
    bf16: Option<BlockBf16>,
    batch: usize,
    groups: Vec<Group>,
    /// Each group's rows are cut into this many parts, stepped in parallel every time step.
    row_parts: usize,
}

/// Lanes one pass of the widest kernel covers (two AVX-512 vectors): a group narrower than
/// this pays the per-entry index, broadcast and address work for fewer sequences.
const PASS_LANES: usize = 32;
/// Row parts are cut at multiples of the kernel's register block (4 rows).
const ROW_BLOCK: usize = 4;

impl<'r> BatchRunner<'r> {
    /// Splits the batch into `threads` contiguous groups of sequences (at most one per
    /// sequence; use the number of cores): threads never meet inside a run, the steadiest
    /// choice on a shared machine. States start at zero.
    pub fn new(
        reservoir: &'r FusedReservoir,
        kernel: Kernel,
        batch: usize,
        threads: usize,
    ) -> Result<Self, EnsembleError> {
        Self::with_split(reservoir, kernel, batch, threads, false)
    }

    /// As [`BatchRunner::new`], or with `split_rows`: groups of sequences only while each still
    /// fills a 32-lane pass, and when there are fewer such groups than threads, each group's
    /// rows are cut into parts stepped in parallel (one rayon join per time step). Faster on
    /// an idle machine (one 32-lane pass instead of two 16-lane ones), slower when other
    /// processes take turns on the cores (the join waits for the slowest thread).
    pub fn with_split(
        reservoir: &'r FusedReservoir,
        kernel: Kernel,
        batch: usize,
        threads: usize,
        split_rows: bool,
    ) -> Result<Self, EnsembleError> {
        if batch == 0 {
            return Err(EnsembleError::Empty("batch"));
        }
        if reservoir.csr_ref().is_none() {
            return Err(EnsembleError::NotSparse);
        }
        if reservoir.block().is_some() && split_rows {
            return Err(EnsembleError::RowSplitOnBlock);
        }
        let threads = threads.max(1);
        let (groups, row_parts) = if split_rows {
            let groups = threads.min(batch.div_ceil(PASS_LANES));
            let parts = (threads / groups).clamp(1, reservoir.units().div_ceil(ROW_BLOCK));
            (groups, parts)
        } else {
            (threads.min(batch), 1)
        };
        let (n, inputs) = (reservoir.units(), reservoir.inputs());
        let size = |what, a: usize, b: usize| {
            a.checked_mul(b)
                .ok_or(EnsembleError::Kernel(KernelError::Dimension {
                    what,
                    value: a.max(b),
                }))
        };
        let mut out = Vec::with_capacity(groups);
        let mut b0 = 0;
        for g in 0..groups {
            let width = batch / groups + usize::from(g < batch % groups);
            out.push(Group {
                b0,
                width,
                x: LineAligned::zeroed(size("units × batch", n, width)?),
                next: LineAligned::zeroed(n * width),
                u: vec![0.0; size("inputs × batch", inputs, width)?],
                scratch: Vec::new(),
            });
            b0 += width;
        }
        Ok(BatchRunner {
            reservoir,
            kernel,
            bf16: None,
            batch,
            groups: out,
            row_parts,
        })
    }

    /// As [`BatchRunner::new`] on a block-sparse reservoir, but in the reduced-precision
    /// bf16-products format ([`BlockBf16`]: weights and multiplied states rounded to bf16,
    /// f32 accumulation and states), the states multiplied as deviations from the reservoir's
    /// zero-input operating point ([`zero_input_centre`]). Results differ from the f32
    /// runner's; each sequence is still bit-identical to running it alone in this format.
    pub fn new_bf16(
        reservoir: &'r FusedReservoir,
        kernel: Kernel,
        batch: usize,
        threads: usize,
    ) -> Result<Self, EnsembleError> {
        Self::new_bf16_with_centre(
            reservoir,
            &zero_input_centre(reservoir)?,
            kernel,
            batch,
            threads,
        )
    }

    /// As [`BatchRunner::new_bf16`] with the caller's centre (one finite value per unit), e.g.
    /// the mean f32 state over calibration input.
    pub fn new_bf16_with_centre(
        reservoir: &'r FusedReservoir,
        centre: &[f32],
        kernel: Kernel,
        batch: usize,
        threads: usize,
    ) -> Result<Self, EnsembleError> {
        let m = reservoir.block().ok_or(EnsembleError::Bf16NeedsBlock)?;
        let bf16 = BlockBf16::with_centre(m, centre)?;
        let mut runner = Self::new(reservoir, kernel, batch, threads)?;
        for g in &mut runner.groups {
            g.scratch = vec![0; g.x.as_slice().len()];
        }
        runner.bf16 = Some(bf16);
        Ok(runner)
    }

    /// Worker threads a run keeps busy (groups × row parts).
    pub fn workers(&self) -> usize {
        self.groups.len() * self.row_parts
    }

    /// The code each group's step runs: `avx512-block-batch` / `portable-block-batch` on a
    /// block-sparse reservoir, else `scalar-batch`, `avx2-batch` or `avx512-batch` (CSR).
    pub fn step_kernel(&self) -> &'static str {
        if let Some(m) = &self.bf16 {
            return m.step_kernel_name(self.kernel);
        }
        match (self.reservoir.block().is_some(), self.kernel.variant()) {
            (true, Variant::Avx512) => "avx512-block-batch",
            (true, _) => "portable-block-batch",
            (false, Variant::Scalar) => "scalar-batch",
            (false, Variant::Avx2Fma) => "avx2-batch",
            (false, Variant::Avx512) => "avx512-batch",
        }
    }

    /// Number of sequences.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Zeroes every state.
    pub fn reset(&mut self) {
        for g in &mut self.groups {
            g.x.as_mut_slice().fill(0.0);
        }
    }

    /// Runs `steps` steps; `inputs` is step-major, then sequence, then input:
    /// `inputs[(t·batch + b)·inputs + j]`.
    pub fn run(&mut self, steps: usize, inputs: &[f32]) -> Result<(), EnsembleError> {
        let (batch, n_in) = (self.batch, self.reservoir.inputs());
        check_inputs("steps × batch × inputs", steps, batch, n_in, inputs.len())?;
        let (kernel, reservoir) = (self.kernel, self.reservoir);
        let w = reservoir.csr_ref().ok_or(EnsembleError::NotSparse)?;
        let block = reservoir.block();
        let bf16 = self.bf16.as_ref();
        let p = reservoir.update_ref();
        let units = reservoir.units();
        let part_rows = units.div_ceil(self.row_parts).div_ceil(ROW_BLOCK) * ROW_BLOCK;
        let row_parts = self.row_parts;
        self.groups.par_iter_mut().try_for_each(|g| {
            for t in 0..steps {
                for bl in 0..g.width {
                    let src = &inputs[(t * batch + g.b0 + bl) * n_in..][..n_in];
                    for (j, &v) in src.iter().enumerate() {
                        g.u[j * g.width + bl] = v;
                    }
                }
                let (width, u, x) = (g.width, &g.u, g.x.as_slice());
                let next = g.next.as_mut_slice();
                if let Some(m) = bf16 {
                    m.step_batch(kernel, p.leak_rate, width, u, x, &mut g.scratch, next)?;
                } else if let Some(m) = block {
                    kernel.block_leaky_step_batch(m, p.leak_rate, width, u, x, next)?;
                } else if row_parts == 1 {
                    kernel.leaky_step_batch_rows(w, p, width, 0..units, u, x, next)?;
                } else {
                    // Each row's sum is unchanged by the cut, so results stay bit-identical.
                    next.par_chunks_mut(part_rows * width)
                        .enumerate()
                        .try_for_each(|(c, out)| {
                            let start = c * part_rows;
                            let rows = start..start + out.len() / width;
                            kernel.leaky_step_batch_rows(w, p, width, rows, u, x, out)
                        })?;
                }
                std::mem::swap(&mut g.x, &mut g.next);
            }
            Ok(())
        })
    }

    /// Copies sequence `b`'s state into `out` (length `units`).
    pub fn copy_state(&self, b: usize, out: &mut [f32]) -> Result<(), EnsembleError> {
        let units = self.reservoir.units();
        if out.len() != units {
            return Err(EnsembleError::Shape {
                what: "state buffer",
                expected: units,
                found: out.len(),
            });
        }
        let g = self
            .groups
            .iter()
            .find(|g| b >= g.b0 && b < g.b0 + g.width)
            .ok_or(EnsembleError::Shape {
                what: "sequence index (must be below batch)",
                expected: self.batch,
                found: b,
            })?;
        let bl = b - g.b0;
        for (i, o) in out.iter_mut().enumerate() {
            *o = g.x.as_slice()[i * g.width + bl];
        }
        Ok(())
    }
}

/// Steps of zero input [`zero_input_centre`] runs from the zero state.
pub const CENTRE_STEPS: usize = 500;

/// The reservoir's state after [`CENTRE_STEPS`] steps of zero input from the zero state (the
/// scalar f32 step, so the same bits on every CPU): its bias-driven operating point when the
/// dynamics contract, the centre the bf16 format rounds deviations around. Needs no data.
pub fn zero_input_centre(reservoir: &FusedReservoir) -> Result<Vec<f32>, EnsembleError> {
    let mut r = reservoir.clone();
    r.reset();
    let zeros = vec![0.0f32; r.inputs()];
    for _ in 0..CENTRE_STEPS {
        r.step(Kernel::scalar(), &zeros)?;
    }
    Ok(r.state().to_vec())
}

/// Independent reservoirs stepped together, one rayon task per member.
pub struct Ensemble {
    members: Vec<FusedReservoir>,
    kernel: Kernel,
}

impl Ensemble {
    /// Members must share their number of inputs.
    pub fn new(members: Vec<FusedReservoir>, kernel: Kernel) -> Result<Self, EnsembleError> {
        let first = members
            .first()
            .ok_or(EnsembleError::Empty("ensemble"))?
            .inputs();
        if let Some((member, r)) = members
            .iter()
            .enumerate()
            .find(|(_, r)| r.inputs() != first)
        {
            return Err(EnsembleError::MixedInputs {
                member,
                expected: first,
                found: r.inputs(),
            });
        }
        Ok(Ensemble { members, kernel })
    }

    /// The reservoirs.
    pub fn members(&self) -> &[FusedReservoir] {
        &self.members
    }

    /// Runs `steps` steps; `inputs[(t·members + m)·inputs + j]` feeds member m at step t.
    pub fn run(&mut self, steps: usize, inputs: &[f32]) -> Result<(), EnsembleError> {
        let (m_count, n_in) = (self.members.len(), self.members[0].inputs());
        check_inputs(
            "steps × members × inputs",
            steps,
            m_count,
            n_in,
            inputs.len(),
        )?;
        let kernel = self.kernel;
        self.members
            .par_iter_mut()
            .enumerate()
            .try_for_each(|(m, r)| {
                for t in 0..steps {
                    r.step(kernel, &inputs[(t * m_count + m) * n_in..][..n_in])?;
                }
                Ok(())
            })
    }
}

/// Checks that a step-major input buffer holds `steps × lanes × n_in` values (`what` names that
/// product in the overflow error).
fn check_inputs(
    what: &'static str,
    steps: usize,
    lanes: usize,
    n_in: usize,
    found: usize,
) -> Result<(), EnsembleError> {
    let expected = steps
        .checked_mul(lanes)
        .and_then(|v| v.checked_mul(n_in))
        .ok_or(EnsembleError::Kernel(KernelError::Dimension {
            what,
            value: steps,
        }))?;
    if found != expected {
        return Err(EnsembleError::Shape {
            what: "inputs",
            expected,
            found,
        });
    }
    Ok(())
}

/// One sequence whose every step is shared by two threads: the SELL-16 slices are cut in two
/// halves, stepped with `rayon::join` (results in slot order), then put back in row order.
/// Each row's sum keeps its order, so states are bit-identical to [`FusedReservoir::step`].
/// A throughput tool (rayon's join synchronises), not a real-time path.
pub struct SplitStep<'r> {
    reservoir: &'r FusedReservoir,
    kernel: Kernel,
    state: Vec<f32>,
    slots: Vec<f32>,
}

impl<'r> SplitStep<'r> {
    /// A sparse reservoir, state zero.
    pub fn new(reservoir: &'r FusedReservoir, kernel: Kernel) -> Result<Self, EnsembleError> {
        let sell = reservoir.sell().ok_or(EnsembleError::NotSparse)?;
        Ok(SplitStep {
            reservoir,
            kernel,
            state: vec![0.0; reservoir.units()],
            slots: vec![0.0; sell.slot_rows().len()],
        })
    }

    /// The current state.
    pub fn state(&self) -> &[f32] {
        &self.state
    }

    /// One step with input `u`; returns the new state.
    pub fn step(&mut self, u: &[f32]) -> Result<&[f32], EnsembleError> {
        let r = self.reservoir;
        let m = r.sell().ok_or(EnsembleError::NotSparse)?;
        let (kernel, leak_rate) = (self.kernel, r.leak_rate());
        let slices = m.slices();
        let mid = slices.div_ceil(2);
        let (lo, hi) = self.slots.split_at_mut(mid * SLICE);
        let x = &self.state;
        let (a, b) = rayon::join(
            || kernel.sell_leaky_step_slots(m, leak_rate, u, x, 0..mid, lo),
            || kernel.sell_leaky_step_slots(m, leak_rate, u, x, mid..slices, hi),
        );
        a?;
        b?;
        // Slot order back to row order; slot_rows is a permutation of 0..units on its first
        // `units` entries, so every row is written exactly once.
        for (slot, &row) in m.slot_rows()[..r.units()].iter().enumerate() {
            self.state[row as usize] = self.slots[slot];
        }
        Ok(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{reservoir, BenchError, ReservoirSpec};

    /// The benchmark's reservoirs, as `Esn::new` builds them (the variant does not change the
    /// weights).
    fn random_reservoir(spec: &ReservoirSpec) -> Result<FusedReservoir, BenchError> {
        reservoir(spec, None, Variant::Scalar)
    }

    fn block_reservoir(spec: &ReservoirSpec, size: usize) -> Result<FusedReservoir, BenchError> {
        reservoir(spec, Some(size), Variant::Scalar)
    }

    fn input(t: usize, b: usize, j: usize) -> f32 {
        ((t * 13 + b * 5 + j) as f32 * 0.07).sin()
    }

    #[test]
    fn batch_runner_equals_one_by_one_scalar_for_every_variant_and_grouping() {
        let spec = ReservoirSpec {
            units: 150,
            inputs: 2,
            connectivity: 0.1,
            ..Default::default()
        };
        let r = random_reservoir(&spec).unwrap();
        let (batch, steps) = (37, 30);
        let inputs: Vec<f32> = (0..steps * batch * 2)
            .map(|k| input(k / (batch * 2), (k / 2) % batch, k % 2))
            .collect();
        let mut reference = Vec::new();
        for b in 0..batch {
            let mut one = r.clone();
            for t in 0..steps {
                one.step(Kernel::scalar(), &[input(t, b, 0), input(t, b, 1)])
                    .unwrap();
            }
            reference.push(one.state().to_vec());
        }
        for k in Kernel::available() {
            for (threads, split_rows) in [(1, true), (2, true), (5, true), (2, false), (5, false)] {
                let mut runner =
                    BatchRunner::with_split(&r, k, batch, threads, split_rows).unwrap();
                runner.run(steps, &inputs).unwrap();
                let mut s = vec![0.0; 150];
                for (b, want) in reference.iter().enumerate() {
                    runner.copy_state(b, &mut s).unwrap();
                    assert!(
                        s.iter().zip(want).all(|(p, q)| p.to_bits() == q.to_bits()),
                        "{:?} threads {threads} split_rows {split_rows} seq {b}",
                        k.variant()
                    );
                }
            }
        }
    }

    /// A block-sparse reservoir runs the batched block kernel in every group, and each
    /// sequence still ends bit-identical to that sequence stepped alone by the scalar block
    /// step, for group widths below, at and above 16 lanes.
    #[test]
    fn block_batch_runner_equals_one_by_one_for_every_variant_and_grouping() {
        let spec = ReservoirSpec {
            units: 200,
            inputs: 2,
            connectivity: 0.1,
            ..Default::default()
        };
        let r = block_reservoir(&spec, 16).unwrap();
        assert!(r.block().is_some());
        let (batch, steps) = (37, 30);
        let inputs: Vec<f32> = (0..steps * batch * 2)
            .map(|k| input(k / (batch * 2), (k / 2) % batch, k % 2))
            .collect();
        let mut reference = Vec::new();
        for b in 0..batch {
            let mut one = r.clone();
            for t in 0..steps {
                one.step(Kernel::scalar(), &[input(t, b, 0), input(t, b, 1)])
                    .unwrap();
            }
            reference.push(one.state().to_vec());
        }
        assert!(reference[0].iter().any(|&v| v != 0.0));
        for k in Kernel::available() {
            for threads in [1, 2, 5] {
                let mut runner = BatchRunner::new(&r, k, batch, threads).unwrap();
                let want_kernel = if k.variant() == Variant::Avx512 {
                    "avx512-block-batch"
                } else {
                    "portable-block-batch"
                };
                assert_eq!(runner.step_kernel(), want_kernel);
                runner.run(steps, &inputs).unwrap();
                let mut s = vec![0.0; 200];
                for (b, want) in reference.iter().enumerate() {
                    runner.copy_state(b, &mut s).unwrap();
                    assert!(
                        s.iter().zip(want).all(|(p, q)| p.to_bits() == q.to_bits()),
                        "{:?} threads {threads} seq {b}",
                        k.variant()
                    );
                }
            }
        }
        assert!(matches!(
            BatchRunner::with_split(&r, Kernel::scalar(), batch, 2, true),
            Err(EnsembleError::RowSplitOnBlock)
        ));
        let csr = random_reservoir(&spec).unwrap();
        assert_eq!(
            BatchRunner::new(&csr, Kernel::scalar(), 4, 1)
                .unwrap()
                .step_kernel(),
            "scalar-batch"
        );
    }

    /// The bf16 format through the runner: every grouping gives the bits of each sequence
    /// stepped alone by the format's own step (batch of one); close to, not equal to, f32.
    #[test]
    fn bf16_batch_runner_equals_one_by_one_in_its_format() {
        let spec = ReservoirSpec {
            units: 200,
            inputs: 1,
            connectivity: 0.1,
            ..Default::default()
        };
        let r = block_reservoir(&spec, 16).unwrap();
        let centre = zero_input_centre(&r).unwrap();
        assert!(centre.iter().any(|&v| v != 0.0));
        let m = BlockBf16::with_centre(r.block().unwrap(), &centre).unwrap();
        let (batch, steps) = (35, 25);
        let inputs: Vec<f32> = (0..steps * batch)
            .map(|k| input(k / batch, k % batch, 0))
            .collect();
        let mut reference = Vec::new();
        for b in 0..batch {
            let (mut x, mut next) = (vec![0.0f32; 200], vec![0.0f32; 200]);
            let mut scratch = vec![0u16; 200];
            for t in 0..steps {
                m.step_batch(
                    Kernel::scalar(),
                    r.leak_rate(),
                    1,
                    &[input(t, b, 0)],
                    &x,
                    &mut scratch,
                    &mut next,
                )
                .unwrap();
                std::mem::swap(&mut x, &mut next);
            }
            reference.push(x);
        }
        let mut f32_runner = BatchRunner::new(&r, Kernel::best(), batch, 2).unwrap();
        f32_runner.run(steps, &inputs).unwrap();
        for k in Kernel::available() {
            for threads in [1, 2, 3] {
                let mut runner = BatchRunner::new_bf16(&r, k, batch, threads).unwrap();
                assert!(runner.step_kernel().contains("bf16"));
                runner.run(steps, &inputs).unwrap();
                let (mut s, mut f) = (vec![0.0; 200], vec![0.0; 200]);
                for (b, want) in reference.iter().enumerate() {
                    runner.copy_state(b, &mut s).unwrap();
                    assert!(
                        s.iter().zip(want).all(|(p, q)| p.to_bits() == q.to_bits()),
                        "{:?} threads {threads} seq {b}",
                        k.variant()
                    );
                    f32_runner.copy_state(b, &mut f).unwrap();
                    assert!(s != f, "seq {b}: bf16 equals f32");
                }
            }
        }
        let csr = random_reservoir(&spec).unwrap();
        assert!(matches!(
            BatchRunner::new_bf16(&csr, Kernel::scalar(), 4, 1),
            Err(EnsembleError::Bf16NeedsBlock)
        ));
    }

    #[test]
    fn split_step_equals_the_single_thread_step_for_every_variant() {
        for units in [1, 40, 150] {
            let spec = ReservoirSpec {
                units,
                inputs: 2,
                connectivity: 0.1,
                ..Default::default()
            };
            let r = random_reservoir(&spec).unwrap();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            for k in Kernel::available() {
                let mut one = r.clone();
                let mut split = SplitStep::new(&r, k).unwrap();
                for t in 0..30 {
                    let u = [input(t, 0, 0), input(t, 0, 1)];
                    one.step(k, &u).unwrap();
                    pool.install(|| split.step(&u)).unwrap();
                }
                assert!(
                    one.state()
                        .iter()
                        .zip(split.state())
                        .all(|(p, q)| p.to_bits() == q.to_bits()),
                    "{:?} units {units}",
                    k.variant()
                );
            }
        }
    }

    #[test]
    fn ensemble_equals_members_run_one_by_one() {
        let members: Vec<FusedReservoir> = (0..9)
            .map(|m| {
                random_reservoir(&ReservoirSpec {
                    units: 40 + m * 7,
                    seed: m as u64,
                    ..Default::default()
                })
                .unwrap()
            })
            .collect();
        let steps = 25;
        let inputs: Vec<f32> = (0..steps * 9).map(|k| input(k / 9, k % 9, 0)).collect();
        for k in Kernel::available() {
            let mut e = Ensemble::new(members.clone(), k).unwrap();
            e.run(steps, &inputs).unwrap();
            for (m, got) in e.members().iter().enumerate() {
                let mut one = members[m].clone();
                for t in 0..steps {
                    one.step(k, &[input(t, m, 0)]).unwrap();
                }
                assert_eq!(one.state(), got.state(), "{:?} member {m}", k.variant());
            }
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        let r = random_reservoir(&ReservoirSpec::default()).unwrap();
        assert!(matches!(
            BatchRunner::new(&r, Kernel::scalar(), 0, 1),
            Err(EnsembleError::Empty(_))
        ));
        let mut b = BatchRunner::new(&r, Kernel::scalar(), 4, 2).unwrap();
        assert!(matches!(
            b.run(2, &[0.0; 7]),
            Err(EnsembleError::Shape { .. })
        ));
        assert!(b.run(usize::MAX, &[]).is_err());
        assert!(b.copy_state(4, &mut [0.0; 100]).is_err());
        assert!(b.copy_state(0, &mut [0.0; 99]).is_err());
        let dense = random_reservoir(&ReservoirSpec {
            units: 10,
            connectivity: 1.0,
            ..Default::default()
        })
        .unwrap();
        assert!(matches!(
            BatchRunner::new(&dense, Kernel::scalar(), 4, 1),
            Err(EnsembleError::NotSparse)
        ));
        assert!(matches!(
            Ensemble::new(vec![], Kernel::scalar()),
            Err(EnsembleError::Empty(_))
        ));
        let two = random_reservoir(&ReservoirSpec {
            inputs: 2,
            ..Default::default()
        })
        .unwrap();
        assert!(matches!(
            Ensemble::new(vec![r.clone(), two], Kernel::scalar()),
            Err(EnsembleError::MixedInputs { .. })
        ));
    }
}
