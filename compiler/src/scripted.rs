//! Running a workflow against scripted effect responses on virtual time: the
//! engine behind `dslc run` and the file-driven interpreter tests.
//!
//! Effects are answered from a [`Script`]; timers fire when virtual time
//! reaches them; child workflows of the same module run in place. Every event
//! in and command out is recorded as a [`TraceLine`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use drover_interpreter::{
    step, Command, Config, EffectError, ErrorKind, Event, InterpError, Program, PureFns, RunState,
    WorkflowError,
};
use drover_ir::{InstAddr, Value};
use serde::Deserialize;

/// Child workflows nest at most this deep, so a recursive workflow stops.
const MAX_CHILD_DEPTH: usize = 16;
/// A run that has not finished after this many events is stopped.
const MAX_EVENTS: usize = 100_000;

/// One scripted answer to an effect.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub result: Result<Value, EffectError>,
    /// How long the effect takes, in virtual milliseconds.
    pub delay_ms: u64,
}

/// The JSON form of a response: `{"ok": v}`, `{"lit": "#Tag(..)"}` (a value
/// in Drover literal syntax, for what JSON cannot write, such as enum
/// variants) or `{"err": {...}}`, with an optional `"delay_ms"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponseJson {
    #[serde(default)]
    ok: Option<serde_json::Value>,
    #[serde(default)]
    lit: Option<String>,
    #[serde(default)]
    err: Option<ErrorJson>,
    #[serde(default)]
    delay_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorJson {
    kind: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    retryable: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(ResponseJson),
    Many(Vec<ResponseJson>),
}

impl TryFrom<ResponseJson> for Response {
    type Error = String;

    fn try_from(r: ResponseJson) -> Result<Response, String> {
        let result = match (r.ok, r.lit, r.err) {
            (_, _, Some(e)) => Err(EffectError {
                kind: e.kind,
                message: e.message,
                retryable: e.retryable,
            }),
            (Some(_), Some(_), None) => {
                return Err("give a response as \"ok\" or \"lit\", not both".into())
            }
            (Some(v), None, None) => Ok(Value::from_json(v)),
            (None, Some(text), None) => match drover_ir::text::parse_value("lit", &text) {
                Ok(v) => Ok(v),
                Err(e) => {
                    let detail = e
                        .errors()
                        .first()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    return Err(format!(
                        "\"lit\" {text:?} is not a Drover literal: {detail}"
                    ));
                }
            },
            (None, None, None) => Ok(Value::Null),
        };
        Ok(Response {
            result,
            delay_ms: r.delay_ms,
        })
    }
}

fn invalid(message: String) -> serde_json::Error {
    <serde_json::Error as serde::de::Error>::custom(message)
}

impl Response {
    /// Parses one response in its JSON form.
    pub fn from_json(text: &str) -> Result<Response, serde_json::Error> {
        Response::try_from(serde_json::from_str::<ResponseJson>(text)?).map_err(invalid)
    }
}

/// Responses per effect name, used in order; the last one repeats.
/// `sys.now`, `sys.random` and `sys.uuid` get deterministic answers unless
/// scripted; any other unscripted effect fails with kind `unscripted`.
/// `#[pure]` fns are scripted the same way, by name ([`Script::pure_fns`]).
#[derive(Clone, Debug, Default)]
pub struct Script {
    responses: BTreeMap<String, Vec<Response>>,
    used: HashMap<String, usize>,
    counter: u64,
}

impl Script {
    /// Parses `{"effect": response | [response, ...], ...}`.
    pub fn from_json(text: &str) -> Result<Script, serde_json::Error> {
        let parsed: BTreeMap<String, OneOrMany> = serde_json::from_str(text)?;
        let mut script = Script::default();
        for (name, r) in parsed {
            let list = match r {
                OneOrMany::One(r) => vec![r],
                OneOrMany::Many(rs) => rs,
            };
            for r in list {
                let r = Response::try_from(r).map_err(|e| invalid(format!("`{name}`: {e}")))?;
                script.push(&name, r);
            }
        }
        Ok(script)
    }

    /// Appends a response for `effect`.
    pub fn push(&mut self, effect: &str, response: Response) {
        self.responses
            .entry(effect.to_owned())
            .or_default()
            .push(response);
    }

    /// Pure fns answered from the script: a `#[pure]` fn is native code that
    /// only a node binary holds, so `dslc run` takes its results from the
    /// responses under its name, in order, the last one repeating. An `err`
    /// response fails the run as a failing pure fn does.
    pub fn pure_fns(&self) -> PureFns {
        let mut fns = PureFns::new();
        for (name, list) in &self.responses {
            let list = list.clone();
            let used = AtomicUsize::new(0);
            fns.register(name, move |_: &[Value]| {
                let i = used.fetch_add(1, Ordering::Relaxed);
                match list.get(i.min(list.len().saturating_sub(1))) {
                    Some(Response { result: Ok(v), .. }) => Ok(v.clone()),
                    Some(Response { result: Err(e), .. }) => {
                        Err(format!("{}: {}", e.kind, e.message))
                    }
                    None => Err("no scripted response".to_owned()),
                }
            });
        }
        fns
    }

    /// The next response to `effect` at virtual time `now_ms`.
    pub fn respond(&mut self, effect: &str, now_ms: u64) -> Response {
        if let Some(list) = self.responses.get(effect) {
            let used = self.used.entry(effect.to_owned()).or_default();
            let i = (*used).min(list.len().saturating_sub(1));
            *used += 1;
            if let Some(r) = list.get(i) {
                return r.clone();
            }
        }
        self.counter += 1;
        let result = match effect {
            // A fixed epoch keeps runs reproducible.
            "sys.now" => Ok(Value::Int(
                1_700_000_000_000_i64.saturating_add(i64::try_from(now_ms).unwrap_or(i64::MAX)),
            )),
            "sys.random" => Ok(Value::Int(
                (self.counter.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 1) as i64,
            )),
            "sys.uuid" => Ok(Value::Str(format!(
                "00000000-0000-4000-8000-{:012x}",
                self.counter
            ))),
            _ => Err(EffectError {
                kind: "unscripted".into(),
                message: format!("no scripted response for `{effect}`"),
                retryable: false,
            }),
        };
        Response {
            result,
            delay_ms: 0,
        }
    }
}

/// What a trace line records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceKind {
    Start,
    Perform,
    Done,
    Timer,
    Fired,
    Child,
    Signal,
    Log,
    Complete,
    Fail,
}

impl TraceKind {
    pub fn name(self) -> &'static str {
        match self {
            TraceKind::Start => "start",
            TraceKind::Perform => "perform",
            TraceKind::Done => "done",
            TraceKind::Timer => "timer",
            TraceKind::Fired => "fired",
            TraceKind::Child => "child",
            TraceKind::Signal => "signal",
            TraceKind::Log => "log",
            TraceKind::Complete => "complete",
            TraceKind::Fail => "fail",
        }
    }
}

/// One event in or command out, at a virtual time.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TraceLine {
    /// 0 for the run itself, 1 for its children, and so on.
    pub depth: usize,
    pub time_ms: u64,
    pub kind: TraceKind,
    pub text: String,
    /// `file:line:col` of the instruction, or its address without a source map.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// How a run ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    Completed(Value),
    Failed(WorkflowError),
    /// Nothing more would happen, or the event budget ran out.
    Stuck(String),
}

/// The result of [`run`].
#[derive(Clone, Debug)]
pub struct ScriptedRun {
    pub outcome: Outcome,
    pub trace: Vec<TraceLine>,
    /// Effect attempts, retries included.
    pub effects: usize,
    pub retries: usize,
    pub timers: usize,
    pub end_ms: u64,
}

/// Runs `workflow` with `args`, sending `signals` right after the start.
pub fn run(
    program: &Program,
    workflow: &str,
    args: Vec<Value>,
    signals: &[(String, Value)],
    script: &mut Script,
    config: Config,
) -> Result<ScriptedRun, InterpError> {
    let mut driver = Driver {
        program,
        script,
        tick_ms: config.tick_ms.max(1),
        config,
        trace: Vec::new(),
        events: 0,
        effects: 0,
        retries: 0,
        timers: 0,
    };
    let (outcome, end_tick) = driver.run(workflow, args, signals, 0, 0)?;
    Ok(ScriptedRun {
        outcome,
        effects: driver.effects,
        retries: driver.retries,
        timers: driver.timers,
        end_ms: end_tick * driver.tick_ms,
        trace: driver.trace,
    })
}

struct Driver<'a> {
    program: &'a Program,
    script: &'a mut Script,
    config: Config,
    tick_ms: u64,
    trace: Vec<TraceLine>,
    events: usize,
    effects: usize,
    retries: usize,
    timers: usize,
}

/// Events waiting for their virtual time, delivered in (tick, arrival) order.
#[derive(Default)]
struct Agenda {
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    events: BTreeMap<u64, Event>,
    next: u64,
}

impl Agenda {
    fn push(&mut self, tick: u64, event: Event) {
        self.heap.push(Reverse((tick, self.next)));
        self.events.insert(self.next, event);
        self.next += 1;
    }

    fn pop(&mut self) -> Option<(u64, Event)> {
        let Reverse((tick, n)) = self.heap.pop()?;
        self.events.remove(&n).map(|e| (tick, e))
    }
}

impl Driver<'_> {
    fn line(
        &mut self,
        depth: usize,
        tick: u64,
        kind: TraceKind,
        text: String,
        at: Option<InstAddr>,
    ) {
        let module = self.program.module();
        let at = at.map(|a| {
            module
                .source_map
                .describe(a)
                .unwrap_or_else(|| a.to_string())
        });
        self.trace.push(TraceLine {
            depth,
            time_ms: tick * self.tick_ms,
            kind,
            text,
            at,
        });
    }

    fn run(
        &mut self,
        workflow: &str,
        args: Vec<Value>,
        signals: &[(String, Value)],
        depth: usize,
        start_tick: u64,
    ) -> Result<(Outcome, u64), InterpError> {
        let mut state = RunState::new(self.program, workflow, self.config.clone())?;
        let mut agenda = Agenda::default();
        self.line(
            depth,
            start_tick,
            TraceKind::Start,
            format!("{workflow}{}", args_text(&args)),
            None,
        );
        let mut tick = start_tick;
        let mut next = Some(Event::Start { args });
        let mut started = false;
        loop {
            let event = match next.take() {
                Some(ev) => ev,
                None => match agenda.pop() {
                    Some((t, ev)) => {
                        tick = tick.max(t);
                        ev
                    }
                    None => {
                        return Ok((
                            Outcome::Stuck(
                                "the run is waiting and nothing more will happen (does it await a signal?)"
                                    .into(),
                            ),
                            tick,
                        ))
                    }
                },
            };
            self.events += 1;
            if self.events > MAX_EVENTS {
                return Ok((
                    Outcome::Stuck(format!("stopped after {MAX_EVENTS} events")),
                    tick,
                ));
            }
            self.trace_event(depth, tick, &event);
            let commands = step(self.program, &mut state, tick, event)?;
            if !started {
                started = true;
                for (name, value) in signals {
                    agenda.push(
                        tick,
                        Event::Signal {
                            name: name.clone(),
                            value: value.clone(),
                        },
                    );
                }
            }
            for cmd in commands {
                match cmd {
                    Command::Perform {
                        id,
                        attempt,
                        effect,
                        args,
                        at,
                        ..
                    } => {
                        self.effects += 1;
                        if attempt > 1 {
                            self.retries += 1;
                        }
                        self.line(
                            depth,
                            tick,
                            TraceKind::Perform,
                            format!("#{} {effect}{} attempt {attempt}", id.0, args_text(&args)),
                            Some(at),
                        );
                        let r = self.script.respond(&effect, tick * self.tick_ms);
                        let done = tick + r.delay_ms.div_ceil(self.tick_ms);
                        agenda.push(
                            done,
                            Event::EffectDone {
                                id,
                                attempt,
                                result: r.result,
                            },
                        );
                    }
                    Command::StartTimer { id, at_tick } => {
                        self.timers += 1;
                        self.line(
                            depth,
                            tick,
                            TraceKind::Timer,
                            format!("timer #{} set for {}ms", id.0, at_tick * self.tick_ms),
                            None,
                        );
                        agenda.push(at_tick, Event::TimerFired { id });
                    }
                    Command::StartChild {
                        id,
                        workflow,
                        args,
                        at,
                    } => {
                        self.line(
                            depth,
                            tick,
                            TraceKind::Child,
                            format!("#{} {workflow}{}", id.0, args_text(&args)),
                            Some(at),
                        );
                        let (result, done) = self.run_child(&workflow, args, depth + 1, tick)?;
                        agenda.push(
                            done,
                            Event::EffectDone {
                                id,
                                attempt: 1,
                                result,
                            },
                        );
                    }
                    Command::Log {
                        level,
                        message,
                        fields,
                        at,
                    } => {
                        let fields = if fields.is_null() {
                            String::new()
                        } else {
                            format!(" {fields}")
                        };
                        self.line(
                            depth,
                            tick,
                            TraceKind::Log,
                            format!("{level}: {message}{fields}"),
                            Some(at),
                        );
                    }
                    Command::Complete { value } => {
                        self.line(depth, tick, TraceKind::Complete, value.to_string(), None);
                        return Ok((Outcome::Completed(value), tick));
                    }
                    Command::Fail { error } => {
                        self.line(
                            depth,
                            tick,
                            TraceKind::Fail,
                            failure_text(self.program, &error),
                            None,
                        );
                        return Ok((Outcome::Failed(error), tick));
                    }
                }
            }
        }
    }

    fn run_child(
        &mut self,
        workflow: &str,
        args: Vec<Value>,
        depth: usize,
        tick: u64,
    ) -> Result<(Result<Value, EffectError>, u64), InterpError> {
        let refuse = |message: String| {
            Ok((
                Err(EffectError {
                    kind: "child".into(),
                    message,
                    retryable: false,
                }),
                tick,
            ))
        };
        if depth > MAX_CHILD_DEPTH {
            return refuse(format!(
                "child workflows nest deeper than {MAX_CHILD_DEPTH}"
            ));
        }
        if self.program.module().workflow(workflow).is_none() {
            return refuse(format!("no workflow `{workflow}` in this module"));
        }
        let (outcome, end) = self.run(workflow, args, &[], depth, tick)?;
        let result = match outcome {
            Outcome::Completed(v) => Ok(v),
            Outcome::Failed(e) => Err(EffectError {
                kind: "child_failed".into(),
                message: e.to_string(),
                retryable: false,
            }),
            Outcome::Stuck(message) => Err(EffectError {
                kind: "child_stuck".into(),
                message,
                retryable: false,
            }),
        };
        Ok((result, end))
    }

    fn trace_event(&mut self, depth: usize, tick: u64, event: &Event) {
        match event {
            Event::Start { .. } => {}
            Event::EffectDone {
                id,
                attempt,
                result,
            } => {
                let text = match result {
                    Ok(v) => format!("#{} ok {v}", id.0),
                    Err(e) => format!(
                        "#{} attempt {attempt} failed: {}: {}{}",
                        id.0,
                        e.kind,
                        e.message,
                        if e.retryable { " (retryable)" } else { "" }
                    ),
                };
                self.line(depth, tick, TraceKind::Done, text, None);
            }
            Event::TimerFired { id } => self.line(
                depth,
                tick,
                TraceKind::Fired,
                format!("timer #{}", id.0),
                None,
            ),
            Event::Signal { name, value } => self.line(
                depth,
                tick,
                TraceKind::Signal,
                format!("{name} {value}"),
                None,
            ),
            Event::Cancel { reason } => self.line(
                depth,
                tick,
                TraceKind::Fail,
                format!("cancel: {reason}"),
                None,
            ),
        }
    }
}

/// A workflow failure for people: its kind, what happened, and where, by
/// workflow, block and source location.
pub fn failure_text(program: &Program, e: &WorkflowError) -> String {
    let mut text = format!("{}: {}", e.kind, e.message);
    // Only `fail` carries a value its message does not already show.
    if e.kind == ErrorKind::Failed && !e.value.is_null() {
        text.push_str(&format!(" (error value {})", e.value));
    }
    if let Some(at) = e.at {
        text.push_str(&format!(", in {}", program.module().place(at)));
    }
    text
}

/// `(a, b)` for a list of arguments.
fn args_text(args: &[Value]) -> String {
    let parts: Vec<String> = args.iter().map(Value::to_string).collect();
    format!("({})", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_used_in_order_and_the_last_repeats() {
        let mut s = Script::from_json(r#"{"e": [{"ok": 1}, {"ok": 2, "delay_ms": 5}]}"#)
            .expect("valid script");
        assert_eq!(s.respond("e", 0).result, Ok(Value::Int(1)));
        assert_eq!(
            s.respond("e", 0),
            Response {
                result: Ok(Value::Int(2)),
                delay_ms: 5
            }
        );
        assert_eq!(s.respond("e", 0).result, Ok(Value::Int(2)));
        assert_eq!(s.respond("nope", 0).result.unwrap_err().kind, "unscripted");
    }

    #[test]
    fn literals_script_what_json_cannot_write() {
        let text = r##"{"scan": {"lit": "#Infected({\"name\": \"eicar\"})"}}"##;
        let mut s = Script::from_json(text).expect("valid script");
        let v = s.respond("scan", 0).result.expect("ok");
        assert_eq!(v.to_string(), r##"#Infected({"name": "eicar"})"##);
        let err =
            Script::from_json(r##"{"scan": {"lit": "#Infected(("}}"##).expect_err("bad literal");
        assert!(
            err.to_string()
                .starts_with(r##"`scan`: "lit" "#Infected((" is not a Drover literal: 1:"##),
            "{err}"
        );
        assert!(Script::from_json(r#"{"scan": {"ok": 1, "lit": "2"}}"#).is_err());
    }

    #[test]
    fn errors_carry_kind_message_and_retryable() {
        let r = Response::from_json(
            r#"{"err": {"kind": "busy", "message": "429", "retryable": true}}"#,
        )
        .expect("valid response");
        let e = r.result.unwrap_err();
        assert_eq!(
            (e.kind.as_str(), e.message.as_str(), e.retryable),
            ("busy", "429", true)
        );
        assert!(Response::from_json(r#"{"ok": 1, "later": 2}"#).is_err());
    }
}
