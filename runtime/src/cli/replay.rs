//! `drover replay RUN`: re-executes a run offline from its journal. Each
//! journaled event is fed to the interpreter again, and the commands it
//! produces are compared with the ones recorded; effect results come from
//! the journal, so nothing is performed and nothing touches the network.

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;
use drover_interpreter::{
    Command, Config, Event, Executed, JournalEntry, Program, ReplayError, Replayer, Status,
};
use drover_ir::{InstAddr, Module};
use drover_store::{EmbeddedStore, Options, RunId, Store};

use super::{EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_NODE, EXIT_NOT_FOUND};
use crate::api::wire::JournalDump;
use crate::client::{Client, ClientError};
use crate::node::codec;

/// Arguments of `drover replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The run (`r-<n>`).
    run: String,
    /// Walk it one instruction at a time, showing each instruction, its
    /// source location and the register it wrote: Enter = next
    /// instruction, `n` = next journal entry, `c` = continue, `q` = quit.
    /// Without a terminal on stdin every instruction is printed.
    #[arg(long)]
    step: bool,
    /// Read the run from this data directory (the node must not be running
    /// on it) instead of asking a node.
    #[arg(long, conflicts_with = "node")]
    data: Option<PathBuf>,
    /// The node to fetch the journal and program from.
    #[arg(long, env = "DROVER_NODE", default_value = "http://127.0.0.1:7070")]
    node: String,
    /// Replay against this `.dbc` instead of the program the run is pinned
    /// to: does a new version still fit old journals?
    #[arg(long)]
    program: Option<PathBuf>,
    /// Replay a journal saved with `--save` instead of fetching one.
    #[arg(long, conflicts_with_all = ["data"])]
    journal: Option<PathBuf>,
    /// Save the fetched journal (MessagePack) to this file.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Milliseconds per tick of the node that recorded the run, with
    /// `--data` (a node answers it itself). `drover node` uses 10,
    /// `drover run` 1.
    #[arg(long, default_value_t = 10)]
    tick_ms: u64,
}

struct Fail(u8, String);

impl From<ClientError> for Fail {
    fn from(e: ClientError) -> Self {
        let code = match &e {
            ClientError::Api { status: 404, .. } => EXIT_NOT_FOUND,
            ClientError::Api { status, .. } if *status < 500 => EXIT_BAD_INPUT,
            _ => EXIT_NODE,
        };
        Fail(code, super::with_causes(&e))
    }
}

/// What a replay needs.
struct Recorded {
    dump: JournalDump,
    program: Vec<u8>,
}

impl ReplayArgs {
    /// Runs the command; returns the exit code.
    pub fn execute(self, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
        let interactive = self.step && std::io::stdin().is_terminal();
        match self.run(out, interactive) {
            Ok(code) => code,
            Err(Fail(code, m)) => {
                let _ = writeln!(err, "drover replay: {m}");
                code
            }
        }
    }

    fn run(self, out: &mut dyn Write, interactive: bool) -> Result<u8, Fail> {
        let recorded = self.fetch()?;
        if let Some(path) = &self.save {
            let bytes = rmp_serde::to_vec_named(&recorded.dump)
                .map_err(|e| Fail(EXIT_NODE, format!("cannot encode the journal: {e}")))?;
            std::fs::write(path, bytes).map_err(|e| {
                Fail(
                    EXIT_BAD_INPUT,
                    format!("cannot write {}: {e}", path.display()),
                )
            })?;
        }
        let program_bytes = match &self.program {
            Some(p) => std::fs::read(p)
                .map_err(|e| Fail(EXIT_BAD_INPUT, format!("cannot read {}: {e}", p.display())))?,
            None => recorded.program.clone(),
        };
        let program = load(&program_bytes).map_err(|m| Fail(EXIT_BAD_INPUT, m))?;
        replay(&recorded.dump, &program, self.step, interactive, out)
    }

    fn fetch(&self) -> Result<Recorded, Fail> {
        if let Some(path) = &self.journal {
            let bytes = std::fs::read(path).map_err(|e| {
                Fail(
                    EXIT_BAD_INPUT,
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            let dump: JournalDump = rmp_serde::from_slice(&bytes).map_err(|e| {
                Fail(
                    EXIT_BAD_INPUT,
                    format!("{} is not a saved journal: {e}", path.display()),
                )
            })?;
            if dump.run != self.run {
                return Err(Fail(
                    EXIT_BAD_INPUT,
                    format!(
                        "{} holds run {}, not {}",
                        path.display(),
                        dump.run,
                        self.run
                    ),
                ));
            }
            // The program: given, or asked of the node.
            let program = match &self.program {
                Some(_) => Vec::new(),
                None => self.runtime()?.block_on(async {
                    Ok::<_, Fail>(Client::new(&self.node)?.program(&dump.program).await?)
                })?,
            };
            return Ok(Recorded { dump, program });
        }
        let run: RunId = self
            .run
            .parse()
            .map_err(|e: <RunId as std::str::FromStr>::Err| Fail(EXIT_BAD_INPUT, e.to_string()))?;
        match &self.data {
            Some(dir) => self.runtime()?.block_on(from_store(dir, run, self.tick_ms)),
            None => self.runtime()?.block_on(async {
                let client = Client::new(&self.node)?;
                let dump = client.journal(&self.run).await?;
                let program = match &self.program {
                    Some(_) => Vec::new(),
                    None => client.program(&dump.program).await?,
                };
                Ok(Recorded { dump, program })
            }),
        }
    }

    fn runtime(&self) -> Result<tokio::runtime::Runtime, Fail> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Fail(EXIT_NODE, format!("tokio runtime: {e}")))
    }
}

async fn from_store(dir: &std::path::Path, run: RunId, tick_ms: u64) -> Result<Recorded, Fail> {
    if !dir.is_dir() {
        return Err(Fail(
            EXIT_BAD_INPUT,
            format!("{} is not a directory", dir.display()),
        ));
    }
    let d = dir.to_owned();
    let opened = tokio::task::spawn_blocking(move || EmbeddedStore::open(&d, Options::default()))
        .await
        .map_err(|e| Fail(EXIT_NODE, e.to_string()))?;
    let (store, _) = opened.map_err(|e| {
        Fail(
            EXIT_NODE,
            format!(
                "cannot open the store in {} ({e}); if a node runs on it, use --node",
                dir.display()
            ),
        )
    })?;
    let result = async {
        let data = store
            .load_run(run)
            .await
            .map_err(|e| Fail(EXIT_NODE, e.to_string()))?
            .ok_or_else(|| Fail(EXIT_NOT_FOUND, format!("no run {run} in {}", dir.display())))?;
        let mut entries = Vec::new();
        for (_, bytes) in store
            .journal(run)
            .await
            .map_err(|e| Fail(EXIT_NODE, e.to_string()))?
        {
            entries.push(codec::decode_entry(&bytes).map_err(|e| Fail(EXIT_NODE, e.to_string()))?);
        }
        let program = store
            .program(data.start.program)
            .await
            .map_err(|e| Fail(EXIT_NODE, e.to_string()))?
            .ok_or_else(|| {
                Fail(
                    EXIT_NODE,
                    format!("program {} is not stored", data.start.program.short()),
                )
            })?;
        Ok(Recorded {
            dump: JournalDump {
                run: run.to_string(),
                workflow: data.start.workflow,
                program: data.start.program.to_string(),
                tick_ms,
                entries,
            },
            program,
        })
    }
    .await;
    // Closing joins the store's writer thread: blocking work.
    let _ = tokio::task::spawn_blocking(move || drop(store)).await;
    result
}

/// Decodes, verifies and loads `.dbc` bytes with the linked pure fns.
fn load(bytes: &[u8]) -> Result<Program, String> {
    let module = drover_ir::wire::decode(bytes).map_err(|e| format!("bad program: {e}"))?;
    let report = drover_ir::verify::verify(&module);
    if report.has_errors() {
        let msgs: Vec<String> = report.errors().map(|d| d.message.clone()).collect();
        return Err(format!("bad program: {}", msgs.join("; ")));
    }
    Program::new(module)
        .map(|p| p.with_pure(crate::registry::pure_fns()))
        .map_err(|e| format!("bad program: {e}"))
}

/// `w0:bb2:3 (src/scan.rs:12:5)`, or the address alone without a span.
fn place(module: &Module, at: InstAddr) -> String {
    match module.source_map.describe(at) {
        Some(loc) => format!("{at} ({loc})"),
        None => at.to_string(),
    }
}

fn describe_event(e: &Event) -> String {
    let short = |s: String| -> String {
        if s.chars().count() > 160 {
            let mut t: String = s.chars().take(160).collect();
            t.push('…');
            t
        } else {
            s
        }
    };
    match e {
        Event::Start { args } => {
            let a: Vec<String> = args.iter().map(|v| v.to_string()).collect();
            short(format!("start({})", a.join(", ")))
        }
        Event::EffectDone {
            id,
            attempt,
            result,
        } => short(match result {
            Ok(v) => format!("result of {id} (attempt {attempt}) → {v}"),
            Err(err) => format!(
                "result of {id} (attempt {attempt}) ✗ {}: {}",
                err.kind, err.message
            ),
        }),
        Event::TimerFired { id } => format!("timer {id} fired"),
        Event::Signal { name, value } => short(format!("signal {name} = {value}")),
        Event::Cancel { reason } => short(format!("cancel: {reason}")),
    }
}

fn describe_command(module: &Module, c: &Command) -> String {
    match c.at() {
        Some(at) => format!("{c}    at {}", place(module, at)),
        None => c.to_string(),
    }
}

/// Replays `dump` against `program`; prints each step; the exit code is
/// [`EXIT_DIVERGED`] at the first divergence.
fn replay(
    dump: &JournalDump,
    program: &Program,
    step: bool,
    interactive: bool,
    out: &mut dyn Write,
) -> Result<u8, Fail> {
    let module = program.module();
    if module.workflow(&dump.workflow).is_none() {
        return Err(Fail(
            EXIT_DIVERGED,
            format!("the program has no workflow `{}`", dump.workflow),
        ));
    }
    let config = Config {
        tick_ms: dump.tick_ms.max(1),
        ..Config::default()
    };
    let mut r = Replayer::new(program, &dump.workflow, config, &dump.entries)
        .map_err(|e| Fail(EXIT_DIVERGED, e.to_string()))?;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "replaying {} of {} ({} journal entries, program {}); nothing is performed",
        dump.run,
        dump.workflow,
        dump.entries.len(),
        &dump.program[..dump.program.len().min(12)]
    );
    emit(out, &mut text);
    let first_tick = dump.entries.first().map_or(0, |e| e.tick);
    let mut walk = if step && interactive {
        Walk::Instructions
    } else {
        Walk::Through
    };
    let mut ran = 0usize;
    loop {
        let index = r.position();
        if !step {
            let Some(result) = r.next_entry() else { break };
            match result {
                Ok(entry) => {
                    print_entry(&mut text, module, index, entry, first_tick, dump.tick_ms);
                    emit(out, &mut text);
                }
                Err(e) => {
                    print_divergence(&mut text, module, dump, &e);
                    emit(out, &mut text);
                    return Ok(EXIT_DIVERGED);
                }
            }
            continue;
        }
        let Some(result) = r.next_entry_traced() else {
            break;
        };
        let (entry, trace, diverged) = match result {
            Ok((entry, trace)) => (entry, trace, None),
            Err((e, trace)) => (&dump.entries[index], trace, Some(e)),
        };
        print_event(&mut text, index, entry, first_tick, dump.tick_ms);
        emit(out, &mut text);
        for e in &trace {
            ran += 1;
            print_executed(&mut text, module, ran, e);
            emit(out, &mut text);
            if walk == Walk::Instructions {
                match ask(
                    out,
                    "[Enter] next instruction · n next entry · c continue · q quit",
                ) {
                    Answer::Quit => return Ok(stopped(out, index, ran)),
                    Answer::Continue => walk = Walk::Through,
                    Answer::NextEntry => walk = Walk::Entries,
                    Answer::Next | Answer::Step => {}
                }
            }
        }
        if let Some(e) = diverged {
            print_divergence(&mut text, module, dump, &e);
            emit(out, &mut text);
            return Ok(EXIT_DIVERGED);
        }
        for c in &entry.commands {
            let _ = writeln!(text, "        ⇒ {}", describe_command(module, c));
        }
        emit(out, &mut text);
        if walk == Walk::Entries {
            match ask(
                out,
                "[Enter] next entry · s step instructions · c continue · q quit",
            ) {
                Answer::Quit => return Ok(stopped(out, index, ran)),
                Answer::Continue => walk = Walk::Through,
                Answer::Step => walk = Walk::Instructions,
                Answer::Next | Answer::NextEntry => {}
            }
        }
    }
    let _ = writeln!(text);
    match r.state().status() {
        Status::Completed(v) => {
            let _ = writeln!(text, "completed: {}", v);
        }
        Status::Failed(e) => {
            let _ = writeln!(text, "failed: {}: {}", e.kind.name(), e.message);
        }
        Status::Running | Status::NotStarted => {
            let _ = writeln!(text, "the journal ends here; the run was still going");
        }
    }
    if step {
        let _ = writeln!(
            text,
            "replayed {} entries ({ran} instructions): every step matches the journal",
            dump.entries.len()
        );
    } else {
        let _ = writeln!(
            text,
            "replayed {} entries: every step matches the journal",
            dump.entries.len()
        );
    }
    emit(out, &mut text);
    Ok(0)
}

/// How `--step` walks: pausing at each instruction, at each journal
/// entry, or not at all.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Walk {
    Instructions,
    Entries,
    Through,
}

enum Answer {
    Next,
    NextEntry,
    Step,
    Continue,
    Quit,
}

/// Prompts on the terminal; end of input continues to the end.
fn ask(out: &mut dyn Write, prompt: &str) -> Answer {
    let _ = write!(out, "  {prompt} > ");
    let _ = out.flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).unwrap_or(0) == 0 {
        let _ = writeln!(out);
        return Answer::Continue;
    }
    match answer.trim() {
        "q" => Answer::Quit,
        "c" => Answer::Continue,
        "n" => Answer::NextEntry,
        "s" => Answer::Step,
        _ => Answer::Next,
    }
}

fn stopped(out: &mut dyn Write, entry: usize, ran: usize) -> u8 {
    let _ = writeln!(
        out,
        "stopped in journal entry #{entry}, after {ran} instructions"
    );
    0
}

/// `     12  f0  w0:bb2:1   r7 = add r5, r6   → r7 = 4   (src/scan.rs:12:5)`
fn print_executed(text: &mut String, module: &Module, n: usize, e: &Executed) {
    let inst = module
        .workflows
        .get(e.at.workflow.index())
        .and_then(|w| {
            let i = w
                .blocks
                .get(e.at.block.index())?
                .insts
                .get(e.at.index as usize)?;
            Some(drover_ir::text::print_inst(module, w, i))
        })
        .unwrap_or_else(|| "?".to_owned());
    let _ = write!(
        text,
        "  {n:>5}  f{:<2} {:<12} {inst:<40}",
        e.fiber,
        e.at.to_string()
    );
    if let Some((reg, v)) = &e.wrote {
        let mut v = v.to_string();
        if v.chars().count() > 60 {
            v = v.chars().take(60).collect::<String>() + "…";
        }
        let _ = write!(text, "  → {reg} = {v}");
    }
    if let Some(loc) = module.source_map.describe(e.at) {
        let _ = write!(text, "   ({loc})");
    }
    let _ = writeln!(text);
}

fn emit(out: &mut dyn Write, text: &mut String) {
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    text.clear();
}

fn print_event(
    text: &mut String,
    index: usize,
    entry: &JournalEntry,
    first_tick: u64,
    tick_ms: u64,
) {
    let _ = writeln!(
        text,
        "#{index:<4} +{}ms  {}",
        entry.tick.saturating_sub(first_tick) * tick_ms,
        describe_event(&entry.event)
    );
}

fn print_entry(
    text: &mut String,
    module: &Module,
    index: usize,
    entry: &JournalEntry,
    first_tick: u64,
    tick_ms: u64,
) {
    print_event(text, index, entry, first_tick, tick_ms);
    for c in &entry.commands {
        let _ = writeln!(text, "        {}", describe_command(module, c));
    }
}

fn print_divergence(text: &mut String, module: &Module, dump: &JournalDump, e: &ReplayError) {
    match e {
        ReplayError::Divergence {
            entry,
            at,
            expected,
            actual,
        } => {
            let _ = writeln!(text);
            let event = dump
                .entries
                .get(*entry)
                .map_or_else(String::new, |e| describe_event(&e.event));
            let _ = writeln!(text, "DIVERGED at journal entry #{entry} ({event})");
            match at {
                Some(at) => {
                    let _ = writeln!(text, "  at instruction {}", place(module, *at));
                }
                None => {
                    let _ = writeln!(text, "  at the end of the step");
                }
            }
            let i = expected
                .iter()
                .zip(actual)
                .position(|(a, b)| a != b)
                .unwrap_or(expected.len().min(actual.len()));
            let show = |c: Option<&Command>| {
                c.map_or_else(|| "nothing".to_owned(), |c| describe_command(module, c))
            };
            let _ = writeln!(text, "  recorded: {}", show(expected.get(i)));
            let _ = writeln!(text, "  replayed: {}", show(actual.get(i)));
        }
        other => {
            let _ = writeln!(text, "\nDIVERGED: {other}");
        }
    }
}
