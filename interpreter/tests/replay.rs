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

#[test]
fn a_traced_replay_agrees_with_the_plain_one_and_lists_every_instruction() {
    for (workflow, args) in common::runs() {
        let journal = recorded(workflow, args, 5);
        let p = common::program();
        let plain = replay(&p, workflow, Config::default(), &journal).expect("replay");
        let mut traced = Replayer::new(&p, workflow, Config::default(), &journal).unwrap();
        let mut n = 0;
        let mut ran = 0;
        while let Some(res) = traced.next_entry_traced() {
            let (entry, trace) = res.expect("the traced replay agrees");
            assert_eq!(entry, &journal[n]);
            for e in &trace {
                let wf = &p.module().workflows[e.at.workflow.index()];
                let block = &wf.blocks[e.at.block.index()];
                let inst = &block.insts[e.at.index as usize];
                if let Some((reg, _)) = &e.wrote {
                    assert_eq!(inst.dst(), Some(*reg), "{workflow}: {}", e.at);
                }
            }
            ran += trace.len();
            n += 1;
        }
        assert_eq!(n, journal.len());
        assert!(ran > 0, "{workflow}: no instruction traced");
        assert_eq!(traced.state(), &plain, "{workflow}: same final state");
    }
}

#[test]
fn a_trace_holds_exactly_the_instructions_the_step_paid_fuel_for() {
    let journal = recorded("counter", vec![Value::Int(4)], 3);
    let p = common::program();
    let mut r = Replayer::new(&p, "counter", Config::default(), &journal).unwrap();
    let (_, trace) = r.next_entry_traced().unwrap().unwrap();
    let used = trace.len() as u64;
    // With exactly that much fuel the first step still runs as recorded;
    // with one less it runs out.
    let exact = Config {
        fuel_per_step: used,
        ..Config::default()
    };
    let mut s = drover_interpreter::RunState::new(&p, "counter", exact.clone()).unwrap();
    let first = &journal[0];
    let cmds = drover_interpreter::step(&p, &mut s, first.tick, first.event.clone()).unwrap();
    assert_eq!(cmds, first.commands);
    let short = Config {
        fuel_per_step: used - 1,
        ..exact
    };
    let mut s = drover_interpreter::RunState::new(&p, "counter", short).unwrap();
    let cmds = drover_interpreter::step(&p, &mut s, first.tick, first.event.clone()).unwrap();
    assert!(
        matches!(cmds.last(), Some(drover_interpreter::Command::Fail { error })
            if error.kind == drover_interpreter::ErrorKind::FuelExhausted),
        "{cmds:?}"
    );
}

#[test]
fn the_trace_shows_the_loop_counter_counting() {
    let journal = recorded("counter", vec![Value::Int(4)], 3);
    let p = common::program();
    let mut r = Replayer::new(&p, "counter", Config::default(), &journal).unwrap();
    let mut counter = Vec::new();
    let mut compares = 0;
    while let Some(res) = r.next_entry_traced() {
        for e in res.unwrap().1 {
            let inst =
                &p.module().workflows[0].blocks[e.at.block.index()].insts[e.at.index as usize];
            match inst {
                // `i = i + 1` in the `next` block.
                Inst::Add { dst, b, .. } if e.at.block == drover_ir::Block(4) => {
                    let (reg, v) = e.wrote.clone().expect("add writes");
                    assert_eq!(reg, *dst);
                    assert_ne!(b, dst);
                    counter.push(v);
                }
                // The compare and the branch after it show separately.
                Inst::Lt { .. } => compares += 1,
                _ => {}
            }
        }
    }
    assert_eq!(counter, (1..=4).map(Value::Int).collect::<Vec<_>>());
    assert_eq!(compares, 5, "i < n is tested for i = 0..=4");
}

#[test]
fn a_diverging_traced_entry_keeps_the_instructions_up_to_the_divergence() {
    let journal = recorded("counter", vec![Value::Int(4)], 3);
    let mut module = common::module();
    let Inst::Perform { args, .. } = &mut module.workflows[0].blocks[2].insts[0] else {
        panic!("bb2 starts with the perform")
    };
    args[1] = args[0];
    let changed = drover_interpreter::Program::new(module).unwrap();
    let mut r = Replayer::new(&changed, "counter", Config::default(), &journal).unwrap();
    let (err, trace) = r.next_entry_traced().unwrap().unwrap_err();
    assert!(
        matches!(err, ReplayError::Divergence { entry: 0, .. }),
        "{err}"
    );
    let last = trace
        .last()
        .expect("instructions ran before the divergence");
    assert_eq!(
        last.at,
        InstAddr::new(drover_ir::WorkflowId(0), drover_ir::Block(2), 0),
        "the trace ends at the perform that diverged"
    );
    // The replayer stays on the failing entry.
    assert_eq!(r.position(), 0);
}
