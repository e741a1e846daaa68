//! Effect profiles: what each kind of effect costs, measured while it runs,
//! for the scheduler's placement and the control panel.

use std::collections::BTreeMap;
use std::time::Duration;

/// Weight of the newest sample in the moving averages.
const ALPHA: f64 = 0.2;

/// What one effect kind has cost on this node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EffectProfile {
    /// Attempts finished.
    pub count: u64,
    /// Attempts that returned an error.
    pub errors: u64,
    /// Exponential moving average of wall time, in milliseconds.
    pub avg_wall_ms: f64,
    /// The longest attempt seen, in milliseconds.
    pub max_wall_ms: f64,
    /// Resource units each attempt holds: (resource, units).
    pub resources: Vec<(String, u32)>,
}

impl EffectProfile {
    /// Folds one finished attempt in.
    pub fn record(&mut self, wall: Duration, ok: bool) {
        let ms = wall.as_secs_f64() * 1000.0;
        self.avg_wall_ms = if self.count == 0 {
            ms
        } else {
            ALPHA * ms + (1.0 - ALPHA) * self.avg_wall_ms
        };
        self.max_wall_ms = self.max_wall_ms.max(ms);
        self.count += 1;
        if !ok {
            self.errors += 1;
        }
    }
}

/// Profiles by effect name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profiles {
    by_effect: BTreeMap<String, EffectProfile>,
}

impl Profiles {
    /// Records one attempt of `effect`.
    pub fn record(&mut self, effect: &str, resources: &[(&str, u32)], wall: Duration, ok: bool) {
        let p = self.by_effect.entry(effect.to_owned()).or_default();
        if p.resources.is_empty() && !resources.is_empty() {
            p.resources = resources
                .iter()
                .map(|(r, n)| ((*r).to_owned(), *n))
                .collect();
        }
        p.record(wall, ok);
    }

    /// Every profile, by effect name.
    pub fn all(&self) -> &BTreeMap<String, EffectProfile> {
        &self.by_effect
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_moves_toward_new_samples() {
        let mut p = Profiles::default();
        p.record("a", &[("lic", 2)], Duration::from_millis(10), true);
        p.record("a", &[("lic", 2)], Duration::from_millis(20), false);
        let a = &p.all()["a"];
        assert_eq!(a.count, 2);
        assert_eq!(a.errors, 1);
        assert!((a.avg_wall_ms - 12.0).abs() < 0.5, "{}", a.avg_wall_ms);
        assert!((a.max_wall_ms - 20.0).abs() < 0.5);
        assert_eq!(a.resources, vec![("lic".to_owned(), 2)]);
    }
}
