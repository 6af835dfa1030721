//! Kernel mutexes with priority inheritance: a task blocked on a mutex lends its effective
//! priority to the owner, transitively along the chain of owners that are themselves blocked,
//! so a high-priority task waits at most for the critical sections in front of it, never for
//! unrelated medium-priority work.
//!
//! Bounds: a lock walks at most [`MAX_CHAIN_DEPTH`] owners (longer chains are refused with
//! [`Errno::ChainTooDeep`], cycles with [`Errno::Deadlock`]); recomputing one task's effective
//! priority scans the fixed task table once (O(T)). So lock is O(depth · T), unlock O(T), both
//! with T fixed at build time. Waiters are woken highest effective priority first, FIFO among
//! equals; ownership passes directly to the woken waiter so no third task can barge in.
#![forbid(unsafe_code)]

use crate::sched::{Priority, TaskId};
use echos_abi::Errno;

pub type MutexId = u16;

/// Longest chain of blocked owners priority inheritance follows.
pub const MAX_CHAIN_DEPTH: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PriorityChange {
    pub task: TaskId,
    pub from: Priority,
    pub to: Priority,
}

/// Effective-priority changes a call caused, in chain order; the scheduler re-queues these tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Changes {
    items: [PriorityChange; MAX_CHAIN_DEPTH + 2],
    len: usize,
}

impl Changes {
    fn push(&mut self, c: PriorityChange) {
        // Capacity covers the longest chain plus the unlocker and the woken task.
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = c;
            self.len += 1;
        }
    }

    pub fn as_slice(&self) -> &[PriorityChange] {
        &self.items[..self.len]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockOutcome {
    Acquired,
    /// The caller must block; `owner` holds the mutex.
    Blocked {
        owner: TaskId,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unlocked {
    /// The waiter that now owns the mutex and must be made ready.
    pub woken: Option<TaskId>,
    pub changes: Changes,
}

/// Mutex and inheritance state for `T` tasks and `M` mutexes.
pub struct Mutexes<const T: usize, const M: usize> {
    inheritance: bool,
    base: [Priority; T],
    effective: [Priority; T],
    blocked_on: [Option<MutexId>; T],
    wait_since: [u64; T],
    sequence: u64,
    owner: [Option<TaskId>; M],
}

impl<const T: usize, const M: usize> Mutexes<T, M> {
    /// `inheritance: false` gives plain mutexes; it exists so the simulation can show what
    /// inheritance prevents.
    pub const fn new(inheritance: bool) -> Self {
        Self {
            inheritance,
            base: [0; T],
            effective: [0; T],
            blocked_on: [None; T],
            wait_since: [0; T],
            sequence: 0,
            owner: [None; M],
        }
    }

    fn task(&self, task: TaskId) -> Result<usize, Errno> {
        ((task as usize) < T)
            .then_some(task as usize)
            .ok_or(Errno::InvalidArgument)
    }

    fn mutex(&self, mutex: MutexId) -> Result<usize, Errno> {
        ((mutex as usize) < M)
            .then_some(mutex as usize)
            .ok_or(Errno::InvalidArgument)
    }

    /// Sets a task's own priority; its effective priority follows unless inheritance holds it
    /// higher. Call before the task takes part in locking.
    pub fn set_base_priority(&mut self, task: TaskId, priority: Priority) -> Result<(), Errno> {
        let t = self.task(task)?;
        self.base[t] = priority;
        self.effective[t] = self.computed(t);
        Ok(())
    }

    pub fn effective_priority(&self, task: TaskId) -> Option<Priority> {
        self.effective.get(task as usize).copied()
    }

    pub fn owner(&self, mutex: MutexId) -> Option<TaskId> {
        self.owner.get(mutex as usize).copied().flatten()
    }

    pub fn blocked_on(&self, task: TaskId) -> Option<MutexId> {
        self.blocked_on.get(task as usize).copied().flatten()
    }

    /// max(base, effective priority of every task waiting on a mutex `t` owns).
    fn computed(&self, t: usize) -> Priority {
        let mut p = self.base[t];
        if self.inheritance {
            for w in 0..T {
                if let Some(m) = self.blocked_on[w] {
                    if self.owner[m as usize] == Some(t as TaskId) {
                        p = p.max(self.effective[w]);
                    }
                }
            }
        }
        p
    }

    fn refresh(&mut self, t: usize, changes: &mut Changes) -> bool {
        let to = self.computed(t);
        let from = self.effective[t];
        if to == from {
            return false;
        }
        self.effective[t] = to;
        changes.push(PriorityChange {
            task: t as TaskId,
            from,
            to,
        });
        true
    }

    /// Re-evaluates owners down the chain starting at `t`, stopping where nothing changes.
    fn propagate(&mut self, mut t: usize, changes: &mut Changes) {
        for _ in 0..=MAX_CHAIN_DEPTH {
            if !self.refresh(t, changes) {
                return;
            }
            match self.blocked_on[t].and_then(|m| self.owner[m as usize]) {
                Some(next) => t = next as usize,
                None => return,
            }
        }
    }

    /// `task` (running, so not blocked) asks for `mutex`.
    pub fn lock(&mut self, task: TaskId, mutex: MutexId) -> Result<(LockOutcome, Changes), Errno> {
        let t = self.task(task)?;
        let m = self.mutex(mutex)?;
        if self.blocked_on[t].is_some() {
            return Err(Errno::InvalidArgument);
        }
        let mut changes = Changes::default();
        let Some(owner) = self.owner[m] else {
            self.owner[m] = Some(task);
            return Ok((LockOutcome::Acquired, changes));
        };
        if owner == task {
            return Err(Errno::NotOwner);
        }
        // Walk the chain of blocked owners before changing anything, so a refused lock leaves
        // no trace.
        let mut cursor = owner;
        let mut depth = 1;
        loop {
            if cursor == task {
                return Err(Errno::Deadlock);
            }
            let Some(next) = self.blocked_on[cursor as usize].and_then(|m| self.owner[m as usize])
            else {
                break;
            };
            depth += 1;
            if depth > MAX_CHAIN_DEPTH {
                return Err(Errno::ChainTooDeep);
            }
            cursor = next;
        }
        self.blocked_on[t] = Some(mutex);
        self.sequence += 1;
        self.wait_since[t] = self.sequence;
        self.propagate(owner as usize, &mut changes);
        Ok((LockOutcome::Blocked { owner }, changes))
    }

    /// `task` releases `mutex`; the most urgent waiter (FIFO among equals) becomes its owner.
    pub fn unlock(&mut self, task: TaskId, mutex: MutexId) -> Result<Unlocked, Errno> {
        let t = self.task(task)?;
        let m = self.mutex(mutex)?;
        if self.owner[m] != Some(task) {
            return Err(Errno::NotOwner);
        }
        let woken = self.most_urgent_waiter(mutex);
        self.owner[m] = woken;
        let mut changes = Changes::default();
        if let Some(w) = woken {
            self.blocked_on[w as usize] = None;
            self.refresh(w as usize, &mut changes);
        }
        // The unlocker is running, hence not blocked: nothing further down its chain.
        self.refresh(t, &mut changes);
        Ok(Unlocked { woken, changes })
    }

    fn most_urgent_waiter(&self, mutex: MutexId) -> Option<TaskId> {
        (0..T)
            .filter(|&w| self.blocked_on[w] == Some(mutex))
            .max_by_key(|&w| (self.effective[w], core::cmp::Reverse(self.wait_since[w])))
            .map(|w| w as TaskId)
    }

    /// A task stopped (exit or fault): it leaves any wait and hands on every mutex it held, so
    /// the others go on. `on_woken` is called for each waiter that now owns a mutex;
    /// `on_change` for each effective-priority change.
    pub fn stop_task(
        &mut self,
        task: TaskId,
        mut on_woken: impl FnMut(TaskId),
        mut on_change: impl FnMut(PriorityChange),
    ) -> Result<(), Errno> {
        let t = self.task(task)?;
        if let Some(m) = self.blocked_on[t].take() {
            if let Some(owner) = self.owner[m as usize] {
                let mut changes = Changes::default();
                self.propagate(owner as usize, &mut changes);
                changes.as_slice().iter().copied().for_each(&mut on_change);
            }
        }
        for m in 0..M {
            if self.owner[m] == Some(task) {
                let u = self.unlock(task, m as MutexId)?;
                u.woken.into_iter().for_each(&mut on_woken);
                u.changes
                    .as_slice()
                    .iter()
                    .copied()
                    .for_each(&mut on_change);
            }
        }
        self.effective[t] = self.base[t];
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::ReadyQueues;

    fn with_priorities<const T: usize>(prios: [Priority; T]) -> Mutexes<T, 4> {
        let mut m = Mutexes::new(true);
        for (t, p) in prios.iter().enumerate() {
            m.set_base_priority(t as TaskId, *p).unwrap();
        }
        m
    }

    #[test]
    fn inheritance_is_transitive_and_undone_step_by_step() {
        // 0 = low holds m0; 1 = mid holds m1 and waits on m0; 2 = high waits on m1.
        let mut m = with_priorities([1, 5, 10]);
        m.lock(0, 0).unwrap();
        m.lock(1, 1).unwrap();
        m.lock(1, 0).unwrap();
        assert_eq!(m.effective_priority(0), Some(5));
        let (outcome, changes) = m.lock(2, 1).unwrap();
        assert_eq!(outcome, LockOutcome::Blocked { owner: 1 });
        assert_eq!(
            changes.as_slice(),
            &[
                PriorityChange {
                    task: 1,
                    from: 5,
                    to: 10
                },
                PriorityChange {
                    task: 0,
                    from: 5,
                    to: 10
                }
            ]
        );
        let u = m.unlock(0, 0).unwrap();
        assert_eq!(u.woken, Some(1));
        assert_eq!(m.effective_priority(0), Some(1));
        assert_eq!(m.effective_priority(1), Some(10), "high still waits on m1");
        let u = m.unlock(1, 1).unwrap();
        assert_eq!(u.woken, Some(2));
        assert_eq!(m.effective_priority(1), Some(5));
        m.unlock(1, 0).unwrap();
        m.unlock(2, 1).unwrap();
        assert_eq!(m.owner(0), None);
        assert_eq!(m.owner(1), None);
    }

    #[test]
    fn holding_several_mutexes_restores_the_right_priority() {
        let mut m = with_priorities([1, 8, 6]);
        m.lock(0, 0).unwrap();
        m.lock(0, 1).unwrap();
        m.lock(1, 0).unwrap();
        m.lock(2, 1).unwrap();
        assert_eq!(m.effective_priority(0), Some(8));
        m.unlock(0, 0).unwrap();
        assert_eq!(
            m.effective_priority(0),
            Some(6),
            "still holds m1 with a waiter at 6"
        );
        m.unlock(0, 1).unwrap();
        assert_eq!(m.effective_priority(0), Some(1));
    }

    #[test]
    fn waiters_wake_by_priority_then_fifo() {
        let mut m = with_priorities([1, 4, 9, 4]);
        m.lock(0, 0).unwrap();
        m.lock(1, 0).unwrap();
        m.lock(3, 0).unwrap();
        m.lock(2, 0).unwrap();
        assert_eq!(m.unlock(0, 0).unwrap().woken, Some(2));
        assert_eq!(m.unlock(2, 0).unwrap().woken, Some(1));
        assert_eq!(m.unlock(1, 0).unwrap().woken, Some(3));
    }

    #[test]
    fn deadlock_chain_depth_and_ownership_errors() {
        let mut m = with_priorities([1, 2, 3]);
        m.lock(0, 0).unwrap();
        m.lock(1, 1).unwrap();
        m.lock(1, 0).unwrap();
        assert_eq!(m.lock(0, 1), Err(Errno::Deadlock));
        assert_eq!(m.blocked_on(0), None, "a refused lock leaves no trace");
        assert_eq!(m.lock(0, 0), Err(Errno::NotOwner));
        assert_eq!(m.unlock(2, 0), Err(Errno::NotOwner));
        assert_eq!(m.lock(0, 99), Err(Errno::InvalidArgument));
        assert_eq!(m.lock(99, 0), Err(Errno::InvalidArgument));

        // A chain of MAX_CHAIN_DEPTH owners is followed; one more is refused.
        const N: usize = MAX_CHAIN_DEPTH + 2;
        let mut c = Mutexes::<N, N>::new(true);
        for t in 0..N {
            c.set_base_priority(t as TaskId, t as Priority).unwrap();
            c.lock(t as TaskId, t as MutexId).unwrap();
        }
        // Task t+1 waits on task t's mutex: chain t+1 → t → ... → 0.
        for t in 1..MAX_CHAIN_DEPTH {
            c.lock(t as TaskId, (t - 1) as MutexId).unwrap();
        }
        let top = MAX_CHAIN_DEPTH as TaskId;
        assert!(c.lock(top, top - 1).is_ok());
        assert_eq!(c.effective_priority(0), Some(top as Priority));
        assert_eq!(c.lock(top + 1, top), Err(Errno::ChainTooDeep));
    }

    #[test]
    fn stopping_an_owner_hands_its_mutex_on() {
        let mut m = with_priorities([1, 9]);
        m.lock(0, 0).unwrap();
        m.lock(1, 0).unwrap();
        let mut woken = None;
        m.stop_task(0, |t| woken = Some(t), |_| {}).unwrap();
        assert_eq!(woken, Some(1));
        assert_eq!(m.owner(0), Some(1));
        assert_eq!(m.effective_priority(0), Some(1));
    }

    proptest::proptest! {
        /// Random lock/unlock/stop sequences: after every call each task's effective priority is
        /// exactly max(base, effective priority of the waiters on the mutexes it owns), every
        /// blocked task waits on an owned mutex, and no task waits on a mutex it owns.
        #[test]
        fn inheritance_invariant_holds(
            bases in proptest::array::uniform6(0u8..64),
            ops in proptest::collection::vec((0u8..3, 0u16..6, 0u16..4), 1..120),
        ) {
            let mut m = Mutexes::<6, 4>::new(true);
            for (t, p) in bases.iter().enumerate() {
                m.set_base_priority(t as TaskId, *p).unwrap();
            }
            for (op, task, mutex) in ops {
                if m.blocked_on(task).is_some() {
                    continue; // a blocked task cannot run, so it makes no calls
                }
                match op {
                    0 => { let _ = m.lock(task, mutex); }
                    1 => { let _ = m.unlock(task, mutex); }
                    _ => { m.stop_task(task, |_| {}, |_| {}).unwrap(); }
                }
                for t in 0..6u16 {
                    let mut expect = bases[t as usize];
                    for w in 0..6u16 {
                        if let Some(wm) = m.blocked_on(w) {
                            proptest::prop_assert!(m.owner(wm).is_some());
                            proptest::prop_assert_ne!(m.owner(wm), Some(w));
                            if m.owner(wm) == Some(t) {
                                expect = expect.max(m.effective_priority(w).unwrap());
                            }
                        }
                    }
                    proptest::prop_assert_eq!(m.effective_priority(t), Some(expect));
                }
            }
        }
    }

    // ---- Discrete-time simulation of the classic priority inversion ----

    #[derive(Clone, Copy)]
    enum Op {
        Lock(MutexId),
        Compute(u32),
        Unlock(MutexId),
    }

    struct SimTask {
        arrival: u32,
        ops: &'static [Op],
    }

    /// Runs tasks one tick at a time under the fixed-priority scheduler; returns, per task, the
    /// ticks between asking for a mutex and getting it (summed) and its finishing tick.
    fn simulate<const T: usize>(
        tasks: &[SimTask; T],
        priorities: [Priority; T],
        inheritance: bool,
    ) -> ([u32; T], [u32; T]) {
        let mut mx = Mutexes::<T, 2>::new(inheritance);
        for (t, p) in priorities.iter().enumerate() {
            mx.set_base_priority(t as TaskId, *p).unwrap();
        }
        let mut rq = ReadyQueues::<T>::new();
        let mut pc = [0usize; T];
        let mut left = [0u32; T];
        let mut waiting_since: [Option<u32>; T] = [None; T];
        let mut blocked = [0u32; T];
        let mut finished = [0u32; T];
        let requeue = |rq: &mut ReadyQueues<T>, changes: &[PriorityChange]| {
            for c in changes {
                if rq.is_ready(c.task) {
                    rq.change_priority(c.task, c.to).unwrap();
                }
            }
        };
        for tick in 0..10_000u32 {
            for (t, task) in tasks.iter().enumerate() {
                if task.arrival == tick {
                    rq.enqueue(t as TaskId, mx.effective_priority(t as TaskId).unwrap())
                        .unwrap();
                }
            }
            // Lock/unlock take no time; keep dispatching until someone computes this tick.
            let mut computed = false;
            while !computed {
                let Some((task, _)) = rq.peek() else { break };
                let t = task as usize;
                match tasks[t].ops.get(pc[t]) {
                    None => {
                        rq.remove(task).unwrap();
                        finished[t] = tick;
                    }
                    Some(Op::Lock(m)) => {
                        let (outcome, changes) = mx.lock(task, *m).unwrap();
                        pc[t] += 1;
                        if let LockOutcome::Blocked { .. } = outcome {
                            rq.remove(task).unwrap();
                            waiting_since[t] = Some(tick);
                        }
                        requeue(&mut rq, changes.as_slice());
                    }
                    Some(Op::Unlock(m)) => {
                        let u = mx.unlock(task, *m).unwrap();
                        pc[t] += 1;
                        requeue(&mut rq, u.changes.as_slice());
                        if let Some(w) = u.woken {
                            let since = waiting_since[w as usize].take().unwrap();
                            blocked[w as usize] += tick - since;
                            rq.enqueue(w, mx.effective_priority(w).unwrap()).unwrap();
                        }
                    }
                    Some(Op::Compute(n)) => {
                        if left[t] == 0 {
                            left[t] = *n;
                        }
                        left[t] -= 1;
                        if left[t] == 0 {
                            pc[t] += 1;
                        }
                        computed = true;
                    }
                }
            }
            if tasks
                .iter()
                .enumerate()
                .all(|(t, s)| pc[t] >= s.ops.len() && tick > s.arrival)
            {
                break;
            }
        }
        (blocked, finished)
    }

    /// Low (priority 1) takes the mutex for a 4-tick critical section; high (10) asks for it at
    /// tick 2; medium (5), which never touches the mutex, arrives at tick 3 with `medium_work`.
    fn inversion(medium_work: u32, inheritance: bool) -> u32 {
        const LOW: &[Op] = &[Op::Lock(0), Op::Compute(4), Op::Unlock(0), Op::Compute(1)];
        const HIGH: &[Op] = &[Op::Lock(0), Op::Compute(1), Op::Unlock(0)];
        let medium: &'static [Op] = match medium_work {
            0 => &[],
            1 => &[Op::Compute(1)],
            5 => &[Op::Compute(5)],
            20 => &[Op::Compute(20)],
            _ => &[Op::Compute(200)],
        };
        let tasks = [
            SimTask {
                arrival: 0,
                ops: LOW,
            },
            SimTask {
                arrival: 3,
                ops: medium,
            },
            SimTask {
                arrival: 2,
                ops: HIGH,
            },
        ];
        let (blocked, _) = simulate(&tasks, [1, 5, 10], inheritance);
        blocked[2]
    }

    #[test]
    fn inheritance_bounds_high_blocking_by_lows_critical_section() {
        // Low has run 2 of its 4 critical ticks when high asks, so high waits exactly the
        // remaining 2 ticks with inheritance, whatever medium does. Bound: the longest critical
        // section of a lower-priority task on that mutex (4 ticks here).
        for w in [0, 1, 5, 20, 200] {
            let with = inversion(w, true);
            assert_eq!(with, 2, "medium work {w}");
            assert!(with <= 4);
        }
        // Without inheritance medium preempts low inside its critical section, and high's
        // blocking grows tick for tick with medium's work.
        for w in [1, 5, 20, 200] {
            assert_eq!(inversion(w, false), 2 + w, "medium work {w}");
        }
        assert_eq!(inversion(0, false), 2);
    }
}
