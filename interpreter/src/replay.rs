//! Replay: re-feed a run's journal and check that the program produces the
//! commands the journal recorded, stopping at the first divergence.

use drover_ir::InstAddr;
use serde::{Deserialize, Serialize};

use crate::error::InterpError;
use crate::event::{Command, Event};
use crate::exec::{step, step_traced, Executed};
use crate::program::Program;
use crate::state::{Config, RunState};

/// One journaled step: the event at its tick and the commands it produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub tick: u64,
    pub event: Event,
    pub commands: Vec<Command>,
}

/// Why a replay stopped.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ReplayError {
    /// The program produced other commands than the journal recorded.
    #[error("{}", describe_divergence(*.entry, *.at, .expected, .actual))]
    Divergence {
        /// Index of the journal entry.
        entry: usize,
        /// The instruction behind the first command that differs.
        at: Option<InstAddr>,
        expected: Vec<Command>,
        actual: Vec<Command>,
    },
    /// The interpreter refused the journaled event.
    #[error("journal entry {entry}: the interpreter refused the event: {error}")]
    Refused { entry: usize, error: InterpError },
    /// The run could not be set up.
    #[error("cannot start the replay: {0}")]
    Setup(InterpError),
}

fn describe_divergence(
    entry: usize,
    at: Option<InstAddr>,
    expected: &[Command],
    actual: &[Command],
) -> String {
    let i = first_difference(expected, actual);
    let show = |c: Option<&Command>| c.map_or_else(|| "nothing".to_owned(), |c| format!("`{c}`"));
    let at = at.map_or_else(|| "?".to_owned(), |a| a.to_string());
    format!(
        "journal entry {entry}: the program at {at} produced {} but the journal recorded {}",
        show(actual.get(i)),
        show(expected.get(i)),
    )
}

fn first_difference(expected: &[Command], actual: &[Command]) -> usize {
    expected
        .iter()
        .zip(actual)
        .position(|(e, a)| e != a)
        .unwrap_or(expected.len().min(actual.len()))
}

/// Steps through a journal one entry at a time, for `drover replay --step`.
#[derive(Debug)]
pub struct Replayer<'a> {
    program: &'a Program,
    journal: &'a [JournalEntry],
    state: RunState,
    next: usize,
}

impl<'a> Replayer<'a> {
    /// A replay of `journal` from a fresh run of `workflow`.
    pub fn new(
        program: &'a Program,
        workflow: &str,
        config: Config,
        journal: &'a [JournalEntry],
    ) -> Result<Self, ReplayError> {
        let state = RunState::new(program, workflow, config).map_err(ReplayError::Setup)?;
        Ok(Replayer {
            program,
            journal,
            state,
            next: 0,
        })
    }

    /// The state after the entries replayed so far.
    pub fn state(&self) -> &RunState {
        &self.state
    }

    /// The index of the entry [`Replayer::next_entry`] replays next.
    pub fn position(&self) -> usize {
        self.next
    }

    /// Replays the next entry and returns it, or `None` at the end of the
    /// journal. After an error the replayer stays on the failing entry.
    pub fn next_entry(&mut self) -> Option<Result<&'a JournalEntry, ReplayError>> {
        self.advance(false)
            .map(|r| r.map(|(entry, _)| entry).map_err(|(e, _)| e))
    }

    /// [`Replayer::next_entry`], also returning every instruction the entry
    /// ran, in order: on success and, up to the point of divergence, on
    /// failure.
    #[allow(clippy::type_complexity)]
    pub fn next_entry_traced(
        &mut self,
    ) -> Option<Result<(&'a JournalEntry, Vec<Executed>), (ReplayError, Vec<Executed>)>> {
        self.advance(true)
    }

    #[allow(clippy::type_complexity)]
    fn advance(
        &mut self,
        traced: bool,
    ) -> Option<Result<(&'a JournalEntry, Vec<Executed>), (ReplayError, Vec<Executed>)>> {
        let entry = self.journal.get(self.next)?;
        let index = self.next;
        // Step a copy, so that a failed entry leaves the state where it was.
        let mut state = self.state.clone();
        let stepped = if traced {
            step_traced(self.program, &mut state, entry.tick, entry.event.clone())
        } else {
            step(self.program, &mut state, entry.tick, entry.event.clone()).map(|c| (c, Vec::new()))
        };
        let (actual, trace) = match stepped {
            Ok(stepped) => stepped,
            Err(error) => {
                return Some(Err((
                    ReplayError::Refused {
                        entry: index,
                        error,
                    },
                    Vec::new(),
                )))
            }
        };
        if actual != entry.commands {
            let i = first_difference(&entry.commands, &actual);
            let at = actual
                .get(i)
                .and_then(Command::at)
                .or_else(|| entry.commands.get(i).and_then(Command::at));
            return Some(Err((
                ReplayError::Divergence {
                    entry: index,
                    at,
                    expected: entry.commands.clone(),
                    actual,
                },
                trace,
            )));
        }
        self.state = state;
        self.next += 1;
        Some(Ok((entry, trace)))
    }
}

/// Replays the whole journal and returns the final state, or the first
/// divergence.
pub fn replay(
    program: &Program,
    workflow: &str,
    config: Config,
    journal: &[JournalEntry],
) -> Result<RunState, ReplayError> {
    let mut r = Replayer::new(program, workflow, config, journal)?;
    while let Some(res) = r.next_entry() {
        res?;
    }
    Ok(r.state)
}
