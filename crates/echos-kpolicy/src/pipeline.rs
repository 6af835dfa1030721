//! Pipeline order within a period: the stages of a reservoir pipeline (e.g. encoder → reservoir →
//! readout) share state pages, so stage k+1 may run period p only after stage k finished period
//! p (its input is ready), and stage k may start period p only after stage k+1 finished period
//! p − 1 (the single shared page has been consumed). Priorities alone cannot give this order;
//! the scheduler asks [`Pipeline::runnable`] before making a stage ready.
//!
//! State is one counter per stage; every query and update is O(1).
#![forbid(unsafe_code)]

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipelineError {
    /// A pipeline needs 1..=S stages.
    BadStageCount {
        stages: usize,
        capacity: usize,
    },
    UnknownStage {
        stage: usize,
    },
    /// The stage completed a period other than the one it was due to run.
    WrongPeriod {
        stage: usize,
        period: u64,
        expected: u64,
    },
    /// The stage completed a period it was not allowed to run (input not ready or output page
    /// not yet consumed, or the period not released).
    OutOfOrder {
        stage: usize,
        period: u64,
    },
}

impl core::fmt::Display for PipelineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::BadStageCount { stages, capacity } => {
                write!(f, "{stages} stages: a pipeline holds 1 to {capacity}")
            }
            Self::UnknownStage { stage } => write!(f, "stage {stage} is not in the pipeline"),
            Self::WrongPeriod {
                stage,
                period,
                expected,
            } => write!(
                f,
                "stage {stage} completed period {period} but was due to run period {expected}"
            ),
            Self::OutOfOrder { stage, period } => write!(
                f,
                "stage {stage} completed period {period} before it was allowed to run it"
            ),
        }
    }
}

pub struct Pipeline<const S: usize> {
    stages: usize,
    /// Periods released to stage 0.
    released: u64,
    /// Periods each stage has completed (so also the period it runs next).
    done: [u64; S],
}

impl<const S: usize> Pipeline<S> {
    pub fn new(stages: usize) -> Result<Self, PipelineError> {
        if stages == 0 || stages > S {
            return Err(PipelineError::BadStageCount {
                stages,
                capacity: S,
            });
        }
        Ok(Self {
            stages,
            released: 0,
            done: [0; S],
        })
    }

    /// A period starts (the pipeline's periodic release); returns its number.
    pub fn release_period(&mut self) -> u64 {
        self.released += 1;
        self.released - 1
    }

    /// The period `stage` may run now, if any.
    pub fn runnable(&self, stage: usize) -> Option<u64> {
        if stage >= self.stages {
            return None;
        }
        let p = self.done[stage];
        let input_ready = match stage {
            0 => p < self.released,
            k => self.done[k - 1] > p,
        };
        let output_free = stage + 1 == self.stages || self.done[stage + 1] >= p;
        (input_ready && output_free).then_some(p)
    }

    /// `stage` finished `period`. Returns the stage that became runnable through it, if any
    /// (the next stage for the same period, or the previous stage for its next period).
    pub fn complete(
        &mut self,
        stage: usize,
        period: u64,
    ) -> Result<(Option<usize>, Option<usize>), PipelineError> {
        if stage >= self.stages {
            return Err(PipelineError::UnknownStage { stage });
        }
        let expected = self.done[stage];
        if period != expected {
            return Err(PipelineError::WrongPeriod {
                stage,
                period,
                expected,
            });
        }
        if self.runnable(stage) != Some(period) {
            return Err(PipelineError::OutOfOrder { stage, period });
        }
        self.done[stage] += 1;
        let next =
            (stage + 1 < self.stages && self.runnable(stage + 1).is_some()).then_some(stage + 1);
        let prev = (stage > 0 && self.runnable(stage - 1).is_some()).then(|| stage - 1);
        Ok((next, prev))
    }

    pub fn completed(&self, stage: usize) -> Option<u64> {
        (stage < self.stages).then(|| self.done[stage])
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::sched::ReadyQueues;
    use std::vec::Vec;

    #[test]
    fn stages_are_gated_forward_and_backward() {
        let mut p = Pipeline::<4>::new(3).unwrap();
        assert_eq!(p.runnable(0), None, "nothing released yet");
        assert_eq!(p.release_period(), 0);
        assert_eq!(p.runnable(0), Some(0));
        assert_eq!(p.runnable(1), None);
        assert_eq!(
            p.complete(1, 0),
            Err(PipelineError::OutOfOrder {
                stage: 1,
                period: 0
            })
        );
        assert_eq!(p.complete(0, 0), Ok((Some(1), None)));
        p.release_period();
        // Stage 0 may not overwrite the page stage 1 has not consumed yet.
        assert_eq!(p.runnable(0), None);
        assert_eq!(p.complete(1, 0), Ok((Some(2), Some(0))));
        assert_eq!(p.runnable(0), Some(1));
        assert_eq!(
            p.complete(2, 1),
            Err(PipelineError::WrongPeriod {
                stage: 2,
                period: 1,
                expected: 0
            })
        );
        assert_eq!(
            p.complete(5, 0),
            Err(PipelineError::UnknownStage { stage: 5 })
        );
        assert!(matches!(
            Pipeline::<4>::new(0),
            Err(PipelineError::BadStageCount { .. })
        ));
        assert!(matches!(
            Pipeline::<4>::new(5),
            Err(PipelineError::BadStageCount { .. })
        ));
    }

    /// Three stages as tasks whose priorities run the wrong way round (the last stage is the
    /// most urgent), sharing one value page between neighbours. Each period's value must flow
    /// through all stages intact, in order, whatever the stage costs.
    /// Returns the completion order `(stage, period)` and the last stage's `(period, value)`s.
    type Trace = (Vec<(usize, u64)>, Vec<(u64, i64)>);

    fn simulate(costs: [u32; 3], period: u32, ticks: u32) -> Trace {
        const PRIORITY: [u8; 3] = [1, 5, 9];
        let mut pipe = Pipeline::<3>::new(3).unwrap();
        // page[k] carries (period, value) from stage k to stage k+1.
        let mut page: [Option<(u64, i64)>; 2] = [None; 2];
        let mut left = [0u32; 3];
        let mut order = Vec::new();
        let mut outputs = Vec::new();
        for tick in 0..ticks {
            if tick % period == 0 {
                pipe.release_period();
            }
            let mut rq = ReadyQueues::<3>::new();
            for (s, &priority) in PRIORITY.iter().enumerate() {
                if pipe.runnable(s).is_some() {
                    rq.enqueue(s as u16, priority).unwrap();
                }
            }
            let Some((s, _)) = rq.pop() else { continue };
            let s = s as usize;
            if left[s] == 0 {
                left[s] = costs[s];
            }
            left[s] -= 1;
            if left[s] > 0 {
                continue;
            }
            let p = pipe.runnable(s).unwrap();
            let value = match s {
                0 => p as i64 * 100,
                k => {
                    let (tag, v) = page[k - 1].unwrap();
                    assert_eq!(
                        tag, p,
                        "stage {k} read period {tag}'s page while running {p}"
                    );
                    v + k as i64
                }
            };
            match s {
                2 => outputs.push((p, value)),
                k => page[k] = Some((p, value)),
            }
            pipe.complete(s, p).unwrap();
            order.push((s, p));
        }
        (order, outputs)
    }

    #[test]
    fn simulation_keeps_stage_order_and_data_intact() {
        // Light load (7 of 10 ticks) and overload (12 of 10): order and data hold in both; under
        // overload the pipeline falls behind instead of corrupting pages.
        for costs in [[2, 3, 2], [4, 4, 4]] {
            let (order, outputs) = simulate(costs, 10, 1_000);
            for (i, &(p, v)) in outputs.iter().enumerate() {
                assert_eq!(p, i as u64);
                assert_eq!(v, p as i64 * 100 + 1 + 2);
            }
            for (i, &(s, p)) in order.iter().enumerate() {
                if s > 0 {
                    let before = order[..i].iter().any(|&x| x == (s - 1, p));
                    assert!(before, "stage {s} ran period {p} before stage {}", s - 1);
                }
            }
            // The processor is never idle while work is pending, so the pipeline delivers a
            // period per `sum(costs)` ticks when overloaded, every period otherwise.
            let n = outputs.len();
            if costs == [2, 3, 2] {
                assert_eq!(n, 100);
            } else {
                assert!((1_000 / 12 - 1..=1_000 / 12).contains(&n), "{n} outputs");
            }
        }
    }
}
