//! The temporal event queue (echos-core `EventQueue`): a fuzzer-chosen sequence of push,
//! pop, pop_into, pop_until and re-split operations, checked step by step against a simple
//! model (a VecDeque with the same late and overflow rules): every outcome, every popped event
//! and the dropped/late counters must match.
#![no_main]

use std::collections::VecDeque;

use echos_core::events::{
    DvsEvent, EventQueue, LatePolicy, OverflowPolicy, PushError, PushOutcome,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| echos_fuzz::timed(|| run(data)));

struct Model {
    q: VecDeque<DvsEvent>,
    cap: usize,
    last_t: Option<u64>,
    late: u64,
    dropped: u64,
    overflow: OverflowPolicy,
    late_policy: LatePolicy,
}

impl Model {
    fn push(&mut self, mut e: DvsEvent) -> Result<PushOutcome, PushError> {
        let mut outcome = PushOutcome::Queued;
        if let Some(last) = self.last_t.filter(|&l| e.t < l) {
            self.late += 1;
            match self.late_policy {
                LatePolicy::Drop => return Ok(PushOutcome::DroppedLate),
                LatePolicy::Clamp => {
                    e.t = last;
                    outcome = PushOutcome::Clamped;
                }
            }
        }
        if self.q.len() == self.cap {
            return match self.overflow {
                OverflowPolicy::DropNewest => {
                    self.dropped += 1;
                    Ok(PushOutcome::DroppedFull)
                }
                OverflowPolicy::Refuse => Err(PushError::Full),
            };
        }
        self.q.push_back(e);
        self.last_t = Some(e.t);
        Ok(outcome)
    }

    fn pop_before(&mut self, until: Option<u64>, max: usize) -> Vec<DvsEvent> {
        let mut out = Vec::new();
        while out.len() < max {
            match self.q.front() {
                Some(e) if until.is_none_or(|u| e.t < u) => out.push(self.q.pop_front().unwrap()),
                _ => break,
            }
        }
        out
    }
}

fn run(data: &[u8]) {
    let Some((&cfg, mut ops)) = data.split_first() else {
        return;
    };
    let cap = 1 + (cfg & 15) as usize;
    let overflow = if cfg & 16 != 0 {
        OverflowPolicy::Refuse
    } else {
        OverflowPolicy::DropNewest
    };
    let late_policy = if cfg & 32 != 0 {
        LatePolicy::Clamp
    } else {
        LatePolicy::Drop
    };
    let mut queue = EventQueue::new(cap, overflow, late_policy).expect("capacity ≥ 1");
    let mut model = Model {
        q: VecDeque::new(),
        cap,
        last_t: None,
        late: 0,
        dropped: 0,
        overflow,
        late_policy,
    };
    let mut t: u64 = 0;
    let mut out = [DvsEvent::default(); 20];
    // each round splits the queue anew (the producer's last time must carry over)
    while !ops.is_empty() {
        let (mut prod, mut cons) = queue.split();
        while let Some((&op, rest)) = ops.split_first() {
            ops = rest;
            let arg = ops.first().copied().unwrap_or(0);
            match op % 6 {
                0 | 1 => {
                    // push at a time that moves by a signed step (late events included)
                    ops = ops.get(1..).unwrap_or(&[]);
                    let step = (arg as i8) as i64;
                    t = t.saturating_add_signed(step * if op & 8 != 0 { 1000 } else { 1 });
                    let e = DvsEvent::new(t, (op as u16) << 3 | arg as u16, arg as u16, op >> 7);
                    assert_eq!(prod.push(e), model.push(e), "push {e:?}");
                }
                2 => assert_eq!(cons.pop(), model.pop_before(None, 1).first().copied()),
                3 => {
                    ops = ops.get(1..).unwrap_or(&[]);
                    let k = (arg as usize) % (out.len() + 1);
                    let n = cons.pop_into(&mut out[..k]);
                    assert_eq!(&out[..n], &model.pop_before(None, k)[..]);
                }
                4 => {
                    ops = ops.get(1..).unwrap_or(&[]);
                    let until = t.saturating_add_signed((arg as i8) as i64 * 4);
                    let k = 1 + (arg as usize) % out.len();
                    let n = cons.pop_until(until, &mut out[..k]);
                    assert_eq!(&out[..n], &model.pop_before(Some(until), k)[..]);
                }
                _ => {
                    assert_eq!(cons.peek(), model.q.front().copied());
                    break;
                }
            }
        }
        drop((prod, cons));
        assert_eq!(queue.len(), model.q.len());
        assert_eq!(queue.dropped(), model.dropped);
        assert_eq!(queue.late(), model.late);
    }
}
