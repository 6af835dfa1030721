//! O(1) fixed-priority ready queues: one FIFO per priority, linked through index arrays over a
//! fixed task table, and a 64-bit bitmap of non-empty priorities, so selecting the next task is
//! one `leading_zeros` and enqueue/remove are a few array writes — no search, no allocation.
//!
//! Priority 63 is the most urgent, 0 the least. Within a priority, tasks run in FIFO order;
//! [`ReadyQueues::rotate`] gives round-robin when a time slice ends.
#![forbid(unsafe_code)]

/// Number of priority levels (one bit each in the bitmap).
pub const PRIORITIES: usize = 64;

pub type TaskId = u16;
pub type Priority = u8;

const NIL: u16 = u16::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedError {
    /// The task id is beyond the table.
    UnknownTask { task: TaskId },
    /// The priority is not below [`PRIORITIES`].
    BadPriority { priority: Priority },
    /// The task is already in a ready queue.
    AlreadyQueued { task: TaskId },
    /// The task is not in a ready queue.
    NotQueued { task: TaskId },
}

impl core::fmt::Display for SchedError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::UnknownTask { task } => write!(f, "task {task} is not in the task table"),
            Self::BadPriority { priority } => {
                write!(f, "priority {priority} is not below {PRIORITIES}")
            }
            Self::AlreadyQueued { task } => write!(f, "task {task} is already ready"),
            Self::NotQueued { task } => write!(f, "task {task} is not ready"),
        }
    }
}

/// Ready queues over a table of `N` tasks (ids `0..N`, `N < 65535`).
pub struct ReadyQueues<const N: usize> {
    bitmap: u64,
    head: [u16; PRIORITIES],
    tail: [u16; PRIORITIES],
    next: [u16; N],
    prev: [u16; N],
    /// Priority of the queue a task is in, or `None` when not ready.
    queued_at: [Option<Priority>; N],
}

impl<const N: usize> Default for ReadyQueues<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> ReadyQueues<N> {
    const _FITS: () = assert!(N < NIL as usize, "task ids must fit below the NIL marker");

    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::_FITS;
        Self {
            bitmap: 0,
            head: [NIL; PRIORITIES],
            tail: [NIL; PRIORITIES],
            next: [NIL; N],
            prev: [NIL; N],
            queued_at: [None; N],
        }
    }

    fn check(&self, task: TaskId, priority: Priority) -> Result<usize, SchedError> {
        if task as usize >= N {
            return Err(SchedError::UnknownTask { task });
        }
        if priority as usize >= PRIORITIES {
            return Err(SchedError::BadPriority { priority });
        }
        if self.queued_at[task as usize].is_some() {
            return Err(SchedError::AlreadyQueued { task });
        }
        Ok(task as usize)
    }

    /// Makes `task` ready at the back of its priority's queue.
    pub fn enqueue(&mut self, task: TaskId, priority: Priority) -> Result<(), SchedError> {
        let t = self.check(task, priority)?;
        let p = priority as usize;
        self.prev[t] = self.tail[p];
        self.next[t] = NIL;
        match self.tail[p] {
            NIL => self.head[p] = task,
            last => self.next[last as usize] = task,
        }
        self.tail[p] = task;
        self.queued_at[t] = Some(priority);
        self.bitmap |= 1 << p;
        Ok(())
    }

    /// Makes `task` ready at the front of its queue: a preempted task resumes before its peers,
    /// so preemption by a higher priority does not cost it its turn.
    pub fn enqueue_front(&mut self, task: TaskId, priority: Priority) -> Result<(), SchedError> {
        let t = self.check(task, priority)?;
        let p = priority as usize;
        self.next[t] = self.head[p];
        self.prev[t] = NIL;
        match self.head[p] {
            NIL => self.tail[p] = task,
            first => self.prev[first as usize] = task,
        }
        self.head[p] = task;
        self.queued_at[t] = Some(priority);
        self.bitmap |= 1 << p;
        Ok(())
    }

    /// Takes `task` out of its queue (it blocked, or its priority is about to change).
    pub fn remove(&mut self, task: TaskId) -> Result<Priority, SchedError> {
        let t = task as usize;
        let priority = self
            .queued_at
            .get(t)
            .copied()
            .flatten()
            .ok_or(SchedError::NotQueued { task })?;
        let p = priority as usize;
        let (prev, next) = (self.prev[t], self.next[t]);
        match prev {
            NIL => self.head[p] = next,
            prev => self.next[prev as usize] = next,
        }
        match next {
            NIL => self.tail[p] = prev,
            next => self.prev[next as usize] = prev,
        }
        if self.head[p] == NIL {
            self.bitmap &= !(1 << p);
        }
        self.queued_at[t] = None;
        self.next[t] = NIL;
        self.prev[t] = NIL;
        Ok(priority)
    }

    /// Moves a ready task to another priority's queue (priority inheritance changed it); it goes
    /// to the back of the new queue.
    pub fn change_priority(&mut self, task: TaskId, priority: Priority) -> Result<(), SchedError> {
        if priority as usize >= PRIORITIES {
            return Err(SchedError::BadPriority { priority });
        }
        self.remove(task)?;
        self.enqueue(task, priority)
    }

    /// The highest ready priority, if any task is ready.
    pub fn highest_priority(&self) -> Option<Priority> {
        (self.bitmap != 0).then(|| (63 - self.bitmap.leading_zeros()) as Priority)
    }

    /// The task that would run next, without dequeuing it.
    pub fn peek(&self) -> Option<(TaskId, Priority)> {
        let p = self.highest_priority()?;
        Some((self.head[p as usize], p))
    }

    /// Dequeues the task to run next: the head of the highest non-empty queue.
    pub fn pop(&mut self) -> Option<(TaskId, Priority)> {
        let (task, p) = self.peek()?;
        // Cannot fail: the head of a non-empty queue is queued.
        self.remove(task).ok()?;
        Some((task, p))
    }

    /// Whether a task running at `current` should be preempted: only a strictly higher ready
    /// priority preempts (equal priority waits for the slice end or a yield).
    pub fn should_preempt(&self, current: Priority) -> bool {
        self.highest_priority().is_some_and(|p| p > current)
    }

    /// Round-robin: moves the head of `priority`'s queue to its back.
    pub fn rotate(&mut self, priority: Priority) {
        if let Some(&head) = self.head.get(priority as usize) {
            if head != NIL && self.head[priority as usize] != self.tail[priority as usize] {
                // Cannot fail: head is queued at this priority.
                let _ = self.remove(head);
                let _ = self.enqueue(head, priority);
            }
        }
    }

    pub fn is_ready(&self, task: TaskId) -> bool {
        self.queued_at
            .get(task as usize)
            .copied()
            .flatten()
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn highest_priority_first_fifo_within_priority() {
        let mut q = ReadyQueues::<16>::new();
        q.enqueue(1, 5).unwrap();
        q.enqueue(2, 40).unwrap();
        q.enqueue(3, 5).unwrap();
        q.enqueue(4, 63).unwrap();
        q.enqueue(5, 0).unwrap();
        let order: [TaskId; 5] = core::array::from_fn(|_| q.pop().unwrap().0);
        assert_eq!(order, [4, 2, 1, 3, 5]);
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn errors_name_the_problem() {
        let mut q = ReadyQueues::<4>::new();
        assert_eq!(q.enqueue(4, 1), Err(SchedError::UnknownTask { task: 4 }));
        assert_eq!(
            q.enqueue(0, 64),
            Err(SchedError::BadPriority { priority: 64 })
        );
        q.enqueue(0, 1).unwrap();
        assert_eq!(q.enqueue(0, 2), Err(SchedError::AlreadyQueued { task: 0 }));
        assert_eq!(q.remove(1), Err(SchedError::NotQueued { task: 1 }));
        assert_eq!(q.remove(900), Err(SchedError::NotQueued { task: 900 }));
    }

    #[test]
    fn preemption_front_insertion_rotation_and_priority_change() {
        let mut q = ReadyQueues::<8>::new();
        q.enqueue(1, 10).unwrap();
        q.enqueue(2, 10).unwrap();
        assert!(q.should_preempt(9));
        assert!(!q.should_preempt(10));
        q.enqueue_front(3, 10).unwrap();
        assert_eq!(q.peek(), Some((3, 10)));
        q.rotate(10);
        assert_eq!(q.peek(), Some((1, 10)));
        q.change_priority(2, 20).unwrap();
        assert_eq!(q.pop(), Some((2, 20)));
        assert_eq!(q.pop(), Some((1, 10)));
        assert_eq!(q.pop(), Some((3, 10)));
        assert_eq!(q.highest_priority(), None);
    }

    proptest! {
        /// Against a naive model (scan for max priority, FIFO by insertion), over random
        /// enqueue/remove/pop sequences.
        #[test]
        fn matches_a_naive_model(ops in proptest::collection::vec((0u8..3, 0u16..12, 0u8..64), 1..200)) {
            let mut q = ReadyQueues::<12>::new();
            let mut model: std::vec::Vec<(TaskId, Priority)> = std::vec::Vec::new();
            for (op, task, prio) in ops {
                match op {
                    0 => {
                        let ok = q.enqueue(task, prio).is_ok();
                        prop_assert_eq!(ok, !model.iter().any(|&(t, _)| t == task));
                        if ok { model.push((task, prio)); }
                    }
                    1 => {
                        let got = q.remove(task).ok();
                        let pos = model.iter().position(|&(t, _)| t == task);
                        prop_assert_eq!(got, pos.map(|i| model[i].1));
                        if let Some(i) = pos { model.remove(i); }
                    }
                    _ => {
                        let best = model.iter().map(|&(_, p)| p).max();
                        let expect = best.map(|b| {
                            let i = model.iter().position(|&(_, p)| p == b).unwrap();
                            model.remove(i)
                        });
                        prop_assert_eq!(q.pop(), expect);
                    }
                }
            }
        }
    }
}
