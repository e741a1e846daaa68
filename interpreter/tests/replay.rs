//! Record a run, replay it; change one instruction, and the replay points
//! at it.

mod common;

use drover_interpreter::sim::Simulation;
use drover_interpreter::{replay, Config, ReplayError, Replayer};
use drover_ir::{Inst, InstAddr, Value};

fn recorded(workflow: &str, args: Vec<Value>, seed: u64) -> Vec<drover_interpreter::JournalEntry> {
    let mut sim = Simulation::new(seed, workflow, args);
    sim.run(&common::program()).expect("simulation").journal
}

#[test]
fn a_recorded_run_replays_identically() {
    for (workflow, args) in common::runs() {
        let journal = recorded(workflow, args, 7);
        let p = common::program();
        let state = replay(&p, workflow, Config::default(), &journal).expect("replay");
        let mut stepper = Replayer::new(&p, workflow, Config::default(), &journal).unwrap();
        let mut n = 0;
        while let Some(entry) = stepper.next_entry() {
            assert_eq!(entry.unwrap(), &journal[n]);
            n += 1;
        }
        assert_eq!(n, journal.len());
        assert_eq!(stepper.state(), &state);
    }
}

#[test]
fn a_changed_instruction_is_a_divergence_at_that_instruction() {
    let journal = recorded("counter", vec![Value::Int(4)], 3);
    let mut module = common::module();
    // Perform with the loop counter replaced by the key: `kv.incr(k, k)`.
    let body = &mut module.workflows[0].blocks[2].insts[0];
    let Inst::Perform { args, .. } = body else {
        panic!("bb2 starts with the perform")
    };
    args[1] = args[0];
    let changed = drover_interpreter::Program::new(module).unwrap();
    let err = replay(&changed, "counter", Config::default(), &journal).unwrap_err();
    let ReplayError::Divergence { entry, at, .. } = &err else {
        panic!("{err}")
    };
    // Entry 0 is Start, whose first command is the first perform.
    assert_eq!(*entry, 0);
    let expected_at = InstAddr::new(drover_ir::WorkflowId(0), drover_ir::Block(2), 0);
    assert_eq!(*at, Some(expected_at));
    let text = err.to_string();
    assert!(
        text.starts_with("journal entry 0: the program at w0:bb2:0 produced `perform memcache.incr(\"k\", \"k\")"),
        "{text}"
    );
    assert!(
        text.contains("but the journal recorded `perform memcache.incr(\"k\", 0)"),
        "{text}"
    );
}

#[test]
fn a_divergence_later_in_the_run_names_its_entry() {
    let journal = recorded("counter", vec![Value::Int(4)], 11);
    let mut module = common::module();
    // Change the increment of the loop counter from 1 to 2: the first
    // perform agrees, the second does not.
    let one = module
        .consts
        .iter()
        .position(|c| *c == Value::Int(1))
        .unwrap();
    module.consts[one] = Value::Int(2);
    let changed = drover_interpreter::Program::new(module).unwrap();
    let err = replay(&changed, "counter", Config::default(), &journal).unwrap_err();
    let ReplayError::Divergence { entry, .. } = err else {
        panic!("{err}")
    };
    assert!(entry > 0, "the first entry still agrees");
}
