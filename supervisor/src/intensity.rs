//! Restart intensity: how many restarts a supervisor tolerates within a
//! period before it gives up. Sans-IO: the caller passes the time in.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The restarts a supervisor made within its period.
#[derive(Debug)]
pub(crate) struct RestartWindow {
    intensity: u32,
    period: Duration,
    /// Oldest first; never longer than `intensity + 1`, because the
    /// supervisor stops as soon as it would be.
    restarts: VecDeque<Instant>,
}

impl RestartWindow {
    pub(crate) fn new(intensity: u32, period: Duration) -> Self {
        RestartWindow {
            intensity,
            period,
            restarts: VecDeque::new(),
        }
    }

    /// Records a restart at `now`; false when it makes more than
    /// `intensity` restarts within the last `period`, so the supervisor must stop.
    ///
    /// Like OTP, a restart exactly `period` ago still counts.
    pub(crate) fn record(&mut self, now: Instant) -> bool {
        while let Some(&oldest) = self.restarts.front() {
            if now.saturating_duration_since(oldest) > self.period {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
        self.restarts.push_back(now);
        self.restarts.len() <= self.intensity as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restart_beyond_intensity_within_the_period_is_refused() {
        let t0 = Instant::now();
        let mut w = RestartWindow::new(2, Duration::from_secs(5));
        assert!(w.record(t0));
        assert!(w.record(t0 + Duration::from_secs(1)));
        assert!(!w.record(t0 + Duration::from_secs(2)));
    }

    #[test]
    fn restarts_older_than_the_period_are_forgotten() {
        let t0 = Instant::now();
        let mut w = RestartWindow::new(2, Duration::from_secs(5));
        for i in 0..10 {
            assert!(w.record(t0 + Duration::from_secs(3 * i)), "restart {i}");
        }
    }

    #[test]
    fn a_restart_exactly_one_period_ago_still_counts() {
        let t0 = Instant::now();
        let mut w = RestartWindow::new(1, Duration::from_secs(5));
        assert!(w.record(t0));
        assert!(!w.record(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn intensity_zero_refuses_the_first_restart() {
        let mut w = RestartWindow::new(0, Duration::from_secs(5));
        assert!(!w.record(Instant::now()));
    }
}
