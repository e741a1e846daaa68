//! Deterministic simulation over every test workflow and many seeds.
//! `DROVER_SIM_SEED=0x... cargo test -p drover-interpreter sim` reruns one seed.

mod common;

use drover_interpreter::sim::{seed_from_env, Responder, Rng, Simulation};
use drover_interpreter::{Config, EffectError, Status};
use drover_ir::Value;

const SEEDS: u64 = 1_000;

/// Answers `sys.now` with a growing clock and everything else randomly,
/// with some slow effects so that timeouts fire.
struct Clock(i64);

impl Responder for Clock {
    fn effect(
        &mut self,
        rng: &mut Rng,
        effect: &str,
        _: &[Value],
        _: u32,
    ) -> Result<Value, EffectError> {
        self.0 += 1;
        Ok(match effect {
            "sys.now" => Value::Int(self.0),
            "memcache.incr" => Value::Int(rng.below(10) as i64),
            _ => drover_interpreter::sim::random_value(rng),
        })
    }
}

#[test]
fn sim_every_workflow_over_many_seeds() {
    let program = common::program();
    let seeds: Vec<u64> = match seed_from_env() {
        Some(seed) => vec![seed],
        None => (0..SEEDS).collect(),
    };
    let mut ended = [0usize; 3];
    for &seed in &seeds {
        for (workflow, args) in common::runs() {
            let mut sim = Simulation::new(seed, workflow, args);
            sim.responder = Box::new(Clock(0));
            sim.extra_signals = vec!["approve".into(), "unrelated".into()];
            // Small limits, so that the simulation reaches them.
            sim.config = Config {
                max_buffered_signals: 2,
                ..Config::default()
            };
            match sim.run(&program) {
                Ok(report) => match report.status {
                    Status::Completed(_) => ended[0] += 1,
                    Status::Failed(_) => ended[1] += 1,
                    _ => ended[2] += 1,
                },
                Err(failure) => panic!("{failure}"),
            }
        }
    }
    if seeds.len() > 1 {
        // The schedules must exercise both endings, or the test is too tame.
        assert!(
            ended[0] > 100 && ended[1] > 100,
            "completed/failed/unfinished: {ended:?}"
        );
    }
}

#[test]
fn sim_failure_names_the_seed_and_the_command() {
    let f = drover_interpreter::sim::SimFailure {
        seed: 0xabc,
        workflow: "w".into(),
        step: 3,
        message: "boom".into(),
        journal: vec![],
    };
    let text = f.to_string();
    assert!(text.contains("seed 0xabc"), "{text}");
    assert!(
        text.contains("DROVER_SIM_SEED=0xabc cargo test -p drover-interpreter sim"),
        "{text}"
    );
}

#[test]
fn sim_is_deterministic_per_seed() {
    let program = common::program();
    for seed in [1, 42, 0xdead_beef] {
        let run = || {
            let mut sim = Simulation::new(seed, "fibers", vec![]);
            sim.run(&program).expect("simulation").journal
        };
        assert_eq!(run(), run());
    }
}
