//! The timer table: every armed timer of every live run, ordered by the tick
//! it fires at. Nothing interrupts the loop: each tick pops what is due
//! (invariant 6).

use std::collections::BTreeSet;

use drover_interpreter::TimerId;
use drover_store::RunId;

/// Armed timers, by (tick, run, timer id).
#[derive(Debug, Default)]
pub struct TimerTable {
    due: BTreeSet<(u64, RunId, u64)>,
}

impl TimerTable {
    /// Arms `timer` of `run` for `at_tick`; arming the same timer twice is
    /// harmless (recovery re-arms what the journal already armed).
    pub fn arm(&mut self, run: RunId, timer: TimerId, at_tick: u64) {
        self.due.insert((at_tick, run, timer.0));
    }

    /// Removes and returns every timer due at or before `now_tick`, in tick
    /// order.
    pub fn pop_due(&mut self, now_tick: u64) -> Vec<(RunId, TimerId)> {
        let mut out = Vec::new();
        while let Some(&(at, run, id)) = self.due.first() {
            if at > now_tick {
                break;
            }
            self.due.pop_first();
            out.push((run, TimerId(id)));
        }
        out
    }

    /// Forgets the timers of a run that ended.
    pub fn forget(&mut self, run: RunId) {
        self.due.retain(|&(_, r, _)| r != run);
    }

    /// Armed timers.
    pub fn len(&self) -> usize {
        self.due.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_only_what_is_due_in_tick_order() {
        let mut t = TimerTable::default();
        t.arm(RunId(2), TimerId(1), 50);
        t.arm(RunId(1), TimerId(4), 10);
        t.arm(RunId(1), TimerId(4), 10);
        t.arm(RunId(3), TimerId(0), 100);
        assert_eq!(t.len(), 3);
        assert_eq!(t.pop_due(9), vec![]);
        assert_eq!(
            t.pop_due(50),
            vec![(RunId(1), TimerId(4)), (RunId(2), TimerId(1))]
        );
        t.forget(RunId(3));
        assert_eq!(t.len(), 0);
    }
}
