//! The instruction set, declared once.
//!
//! [`instructions!`] below is the single source of truth: it generates the
//! [`Inst`] enum (whose serde derive is the wire codec), the [`Opcode`] table
//! with each instruction's mnemonic, operand kinds and flags (which the text
//! parser follows), operand visitors (which the printer and the verifier
//! use), and [`Inst::from_parts`] (which the parser builds with). Adding an
//! instruction here is enough for every one of them to know it.
//!
//! In the text syntax an instruction is `[dst =] mnemonic operand, operand...`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::builtins::Builtin;
use crate::entities::{Block, ConstId, EffectRef, Reg};
use crate::value::literal::write_name;

/// A name written bare when it is an identifier and quoted otherwise: a field,
/// a variant tag, a child workflow, a signal or a pure function.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Symbol(pub String);

impl Symbol {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Symbol {
    fn from(s: &str) -> Self {
        Symbol(s.to_owned())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_name(f, &self.0)
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// How an effect is retried: data carried on `perform`, carried out by the
/// interpreter with timers, so retries are journaled like everything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (so 1 means no retry).
    pub max_attempts: u32,
    /// Delay before the second attempt.
    pub initial_backoff_ms: u64,
    /// Upper bound of the delay between two attempts.
    pub max_backoff_ms: u64,
    /// Each delay is the previous one times this factor (at least 1).
    pub multiplier: u32,
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1`, where `attempt` counts from 1.
    pub fn backoff_ms(&self, attempt: u32) -> u64 {
        let mut delay = self.initial_backoff_ms;
        for _ in 1..attempt {
            delay = delay.saturating_mul(u64::from(self.multiplier.max(1)));
            if delay >= self.max_backoff_ms {
                return self.max_backoff_ms;
            }
        }
        delay.min(self.max_backoff_ms)
    }
}

/// Retry and timeout of one `perform`. The default is one attempt, no timeout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Policy {
    pub retry: Option<RetryPolicy>,
    /// A deadline for each attempt; an attempt that misses it fails as
    /// `timeout` (and is retried if the retry policy allows).
    pub timeout_ms: Option<u64>,
}

impl Policy {
    pub fn is_default(&self) -> bool {
        *self == Policy::default()
    }

    /// Attempts in all, the first one included.
    pub fn max_attempts(&self) -> u32 {
        self.retry.map_or(1, |r| r.max_attempts.max(1))
    }
}

/// The level of a `log` instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Trace,
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    pub fn from_name(s: &str) -> Option<LogLevel> {
        LogLevel::ALL.into_iter().find(|l| l.name() == s)
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `(field, register)` pairs of a `record`.
pub type Fields = Vec<(Symbol, Reg)>;
/// `(tag, block)` arms of a `match`.
pub type Arms = Vec<(Symbol, Block)>;

/// The kinds of operand. Each has one text form, which the printer writes and
/// the parser reads:
///
/// | kind | text | example |
/// |---|---|---|
/// | `Reg` | register | `r3` |
/// | `Regs` | parenthesised register list, written right after a preceding `Effect`, `Name` or `Builtin` operand with no comma | `(r1, r2)`, `memcache.get(r1)` |
/// | `Block` | label | `loop_head` |
/// | `OptBlock` | `default LABEL`, or nothing (and then no comma) | `default done` |
/// | `OptReg` | register, or nothing (and then no comma) | `r4` |
/// | `Const` | a literal value | `"hi"`, `[1, 2]`, `#Ok(1)` |
/// | `Effect` | effect name | `memcache.get` |
/// | `Name` | identifier or quoted string | `total`, `"odd name"` |
/// | `Str` | quoted string | `"x = {}"` |
/// | `Fields` | `{name: reg, ...}` | `{a: r1, b: r2}` |
/// | `Arms` | `[tag => label, ...]` | `[Ok => ok, Err => bad]` |
/// | `Policy` | optional `retry(ATTEMPTS, INITIAL, MAX, xFACTOR)` then optional `timeout(DURATION)`, separated by spaces, not commas; durations take `ms`, `s`, `m` or `h` | `retry(3, 100ms, 10s, x2) timeout(5s)` |
/// | `Level` | log level | `warn` |
/// | `Builtin` | builtin function name | `len` |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperandKind {
    Reg,
    Regs,
    Block,
    OptBlock,
    OptReg,
    Const,
    Effect,
    Name,
    Str,
    Fields,
    Arms,
    Policy,
    Level,
    Builtin,
}

/// A borrowed operand, for printing and analysis.
#[derive(Clone, Copy, Debug)]
pub enum OperandRef<'a> {
    Reg(&'a Reg),
    Regs(&'a [Reg]),
    Block(&'a Block),
    OptBlock(&'a Option<Block>),
    OptReg(&'a Option<Reg>),
    Const(&'a ConstId),
    Effect(&'a EffectRef),
    Name(&'a Symbol),
    Str(&'a String),
    Fields(&'a Fields),
    Arms(&'a Arms),
    Policy(&'a Policy),
    Level(&'a LogLevel),
    Builtin(&'a Builtin),
}

/// A mutably borrowed operand, for rewriting passes.
#[derive(Debug)]
pub enum OperandMut<'a> {
    Reg(&'a mut Reg),
    Regs(&'a mut Vec<Reg>),
    Block(&'a mut Block),
    OptBlock(&'a mut Option<Block>),
    OptReg(&'a mut Option<Reg>),
    Const(&'a mut ConstId),
    Effect(&'a mut EffectRef),
    Name(&'a mut Symbol),
    Str(&'a mut String),
    Fields(&'a mut Fields),
    Arms(&'a mut Arms),
    Policy(&'a mut Policy),
    Level(&'a mut LogLevel),
    Builtin(&'a mut Builtin),
}

/// An owned operand, as the parser produces it.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Reg(Reg),
    Regs(Vec<Reg>),
    Block(Block),
    OptBlock(Option<Block>),
    OptReg(Option<Reg>),
    Const(ConstId),
    Effect(EffectRef),
    Name(Symbol),
    Str(String),
    Fields(Fields),
    Arms(Arms),
    Policy(Policy),
    Level(LogLevel),
    Builtin(Builtin),
}

impl Operand {
    pub fn kind(&self) -> OperandKind {
        match self {
            Operand::Reg(_) => OperandKind::Reg,
            Operand::Regs(_) => OperandKind::Regs,
            Operand::Block(_) => OperandKind::Block,
            Operand::OptBlock(_) => OperandKind::OptBlock,
            Operand::OptReg(_) => OperandKind::OptReg,
            Operand::Const(_) => OperandKind::Const,
            Operand::Effect(_) => OperandKind::Effect,
            Operand::Name(_) => OperandKind::Name,
            Operand::Str(_) => OperandKind::Str,
            Operand::Fields(_) => OperandKind::Fields,
            Operand::Arms(_) => OperandKind::Arms,
            Operand::Policy(_) => OperandKind::Policy,
            Operand::Level(_) => OperandKind::Level,
            Operand::Builtin(_) => OperandKind::Builtin,
        }
    }
}

/// A Rust type that is one operand kind.
pub trait IsOperand: Sized {
    const KIND: OperandKind;
    fn operand_ref(&self) -> OperandRef<'_>;
    fn operand_mut(&mut self) -> OperandMut<'_>;
    fn from_operand(op: Operand) -> Option<Self>;
}

macro_rules! is_operand {
    ($($ty:ty => $kind:ident),* $(,)?) => {$(
        impl IsOperand for $ty {
            const KIND: OperandKind = OperandKind::$kind;
            fn operand_ref(&self) -> OperandRef<'_> {
                OperandRef::$kind(self)
            }
            fn operand_mut(&mut self) -> OperandMut<'_> {
                OperandMut::$kind(self)
            }
            fn from_operand(op: Operand) -> Option<Self> {
                match op {
                    Operand::$kind(v) => Some(v),
                    _ => None,
                }
            }
        }
    )*};
}

is_operand! {
    Reg => Reg,
    Vec<Reg> => Regs,
    Block => Block,
    Option<Block> => OptBlock,
    Option<Reg> => OptReg,
    ConstId => Const,
    EffectRef => Effect,
    Symbol => Name,
    String => Str,
    Fields => Fields,
    Arms => Arms,
    Policy => Policy,
    LogLevel => Level,
    Builtin => Builtin,
}

/// What the opcode table knows of one instruction.
#[derive(Debug)]
pub struct OpcodeInfo {
    pub opcode: Opcode,
    pub mnemonic: &'static str,
    /// Whether the instruction writes a destination register (`dst = ...`).
    pub has_dst: bool,
    /// The operands after the mnemonic, in text order.
    pub operands: &'static [OperandKind],
    /// Whether it ends a basic block.
    pub terminator: bool,
    /// Whether it may suspend the fiber until an event arrives.
    pub suspends: bool,
    pub doc: &'static str,
}

/// `from_parts` was given operands that do not fit the opcode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PartsError {
    #[error("`{mnemonic}` {}", if *.expected { "needs a destination register" } else { "takes no destination register" })]
    Dst {
        mnemonic: &'static str,
        expected: bool,
    },
    #[error("`{mnemonic}` takes {expected} operands, got {got}")]
    Count {
        mnemonic: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("operand {position} of `{mnemonic}` should be {expected:?}, got {got:?}")]
    Kind {
        mnemonic: &'static str,
        position: usize,
        expected: OperandKind,
        got: OperandKind,
    },
}

macro_rules! flag {
    (term) => {
        (true, false)
    };
    (suspend) => {
        (false, true)
    };
    () => {
        (false, false)
    };
}

macro_rules! instructions {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident $mnemonic:literal [$($dst:ident)?] { $($field:ident : $ty:ty),* $(,)? } $($flag:ident)?;
    )*) => {
        /// One instruction. Registers are mutable (not SSA); `dst` is written.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub enum Inst {
            $(
                $(#[doc = $doc])*
                $variant { $($dst: Reg,)? $($field: $ty,)* },
            )*
        }

        /// The opcode of an instruction, an index into [`OPCODES`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Opcode {
            $($variant,)*
        }

        /// Every instruction's mnemonic, operands and flags, indexed by [`Opcode`].
        pub static OPCODES: &[OpcodeInfo] = &[
            $(OpcodeInfo {
                opcode: Opcode::$variant,
                mnemonic: $mnemonic,
                has_dst: 0 $(+ [stringify!($dst)].len())? == 1,
                operands: &[$(<$ty as IsOperand>::KIND),*],
                terminator: flag!($($flag)?).0,
                suspends: flag!($($flag)?).1,
                doc: concat!($($doc, "\n"),*),
            },)*
        ];

        impl Inst {
            pub fn opcode(&self) -> Opcode {
                match self {
                    $(Inst::$variant { .. } => Opcode::$variant,)*
                }
            }

            /// The destination register, if the instruction writes one.
            pub fn dst(&self) -> Option<Reg> {
                match self {
                    $(Inst::$variant { $($dst,)? .. } => { None $(.or(Some(*$dst)))? })*
                }
            }

            pub fn dst_mut(&mut self) -> Option<&mut Reg> {
                match self {
                    $(Inst::$variant { $($dst,)? .. } => { None $(.or(Some($dst)))? })*
                }
            }

            /// Calls `f` on each operand after the mnemonic, in text order.
            pub fn for_each_operand<'a>(&'a self, mut f: impl FnMut(OperandRef<'a>)) {
                match self {
                    $(Inst::$variant { $($field,)* .. } => {
                        $(f(IsOperand::operand_ref($field));)*
                    })*
                }
            }

            /// Calls `f` on each operand after the mnemonic, mutably.
            pub fn for_each_operand_mut(&mut self, mut f: impl FnMut(OperandMut<'_>)) {
                match self {
                    $(Inst::$variant { $($field,)* .. } => {
                        $(f(IsOperand::operand_mut($field));)*
                    })*
                }
            }

            /// Builds an instruction from its opcode, destination and operands
            /// in text order, checking that they fit.
            pub fn from_parts(
                opcode: Opcode,
                dst: Option<Reg>,
                operands: Vec<Operand>,
            ) -> Result<Inst, PartsError> {
                let info = opcode.info();
                if dst.is_some() != info.has_dst {
                    return Err(PartsError::Dst { mnemonic: info.mnemonic, expected: info.has_dst });
                }
                if operands.len() != info.operands.len() {
                    return Err(PartsError::Count {
                        mnemonic: info.mnemonic,
                        expected: info.operands.len(),
                        got: operands.len(),
                    });
                }
                let mut ops = operands.into_iter().enumerate();
                let mut next = |expected: OperandKind| -> Result<Operand, PartsError> {
                    // The length was checked above, so there is always a next.
                    let (position, op) = ops.next().ok_or(PartsError::Count {
                        mnemonic: info.mnemonic,
                        expected: info.operands.len(),
                        got: 0,
                    })?;
                    if op.kind() != expected {
                        return Err(PartsError::Kind {
                            mnemonic: info.mnemonic,
                            position,
                            expected,
                            got: op.kind(),
                        });
                    }
                    Ok(op)
                };
                let _ = &mut next;
                match opcode {
                    $(Opcode::$variant => {
                        $(let $dst = dst.unwrap_or(Reg(0));)?
                        $(let $field = <$ty as IsOperand>::from_operand(
                            next(<$ty as IsOperand>::KIND)?,
                        ).expect("kind checked");)*
                        Ok(Inst::$variant { $($dst,)? $($field,)* })
                    })*
                }
            }
        }
    };
}

instructions! {
    /// `dst = const VALUE`: load a constant from the pool.
    Const "const" [dst] { value: ConstId };
    /// `dst = mov SRC`: copy a register.
    Move "mov" [dst] { src: Reg };
    /// `dst = neg A`: arithmetic negation of an int or float.
    Neg "neg" [dst] { a: Reg };
    /// `dst = not A`: boolean negation.
    Not "not" [dst] { a: Reg };
    /// `dst = add A, B`: sum of numbers; concatenation of strings, bytes or lists.
    Add "add" [dst] { a: Reg, b: Reg };
    /// `dst = sub A, B`: difference of numbers.
    Sub "sub" [dst] { a: Reg, b: Reg };
    /// `dst = mul A, B`: product of numbers.
    Mul "mul" [dst] { a: Reg, b: Reg };
    /// `dst = div A, B`: quotient; integer division truncates, and dividing by zero fails the run.
    Div "div" [dst] { a: Reg, b: Reg };
    /// `dst = rem A, B`: remainder, with the sign of A.
    Rem "rem" [dst] { a: Reg, b: Reg };
    /// `dst = eq A, B`: structural equality.
    Eq "eq" [dst] { a: Reg, b: Reg };
    /// `dst = ne A, B`: structural inequality.
    Ne "ne" [dst] { a: Reg, b: Reg };
    /// `dst = lt A, B`: less than, for two numbers, two strings or two bytes.
    Lt "lt" [dst] { a: Reg, b: Reg };
    /// `dst = le A, B`: less than or equal.
    Le "le" [dst] { a: Reg, b: Reg };
    /// `dst = gt A, B`: greater than.
    Gt "gt" [dst] { a: Reg, b: Reg };
    /// `dst = ge A, B`: greater than or equal.
    Ge "ge" [dst] { a: Reg, b: Reg };
    /// `dst = and A, B`: boolean and of two bools (both are evaluated).
    And "and" [dst] { a: Reg, b: Reg };
    /// `dst = or A, B`: boolean or of two bools (both are evaluated).
    Or "or" [dst] { a: Reg, b: Reg };
    /// `dst = field BASE, NAME`: the field NAME of a record; fails the run if it is missing.
    Field "field" [dst] { base: Reg, name: Symbol };
    /// `setfield BASE, NAME, SRC`: set field NAME of the record in BASE.
    SetField "setfield" [] { base: Reg, name: Symbol, src: Reg };
    /// `dst = index BASE, KEY`: element KEY of a list (an int, from 0) or a map.
    Index "index" [dst] { base: Reg, key: Reg };
    /// `setindex BASE, KEY, SRC`: set element KEY of the list or map in BASE.
    SetIndex "setindex" [] { base: Reg, key: Reg, src: Reg };
    /// `dst = record {NAME: REG, ...}`: build a record.
    Record "record" [dst] { fields: Fields };
    /// `dst = list (REG, ...)`: build a list.
    List "list" [dst] { items: Vec<Reg> };
    /// `dst = variant TAG [, PAYLOAD]`: build an enum variant; without a payload it is a unit variant.
    MakeVariant "variant" [dst] { tag: Symbol, payload: Option<Reg> };
    /// `dst = payload SRC`: the payload of a variant (a value that is not a variant is its own payload).
    Payload "payload" [dst] { src: Reg };
    /// `dst = unwrap SRC`: the payload of `Ok`/`Some`; fails the run with the payload of `Err`, or on `None`.
    Unwrap "unwrap" [dst] { src: Reg };
    /// `dst = format "TEMPLATE", (REG, ...)`: replace each `{}` in the template with the next value (`{{` and `}}` escape braces).
    Format "format" [dst] { template: String, args: Vec<Reg> };
    /// `dst = builtin NAME(REG, ...)`: call a builtin function on strings, lists, maps and options.
    CallBuiltin "builtin" [dst] { func: Builtin, args: Vec<Reg> };
    /// `dst = pure NAME(REG, ...)`: call a `#[pure]` function registered in the node by name.
    CallPure "pure" [dst] { func: Symbol, args: Vec<Reg> };
    /// `jmp LABEL`: continue at LABEL.
    Jump "jmp" [] { target: Block } term;
    /// `br COND, THEN, ELSE`: continue at THEN if COND is true, ELSE if false.
    Branch "br" [] { cond: Reg, then_block: Block, else_block: Block } term;
    /// `match SRC, [TAG => LABEL, ...] [, default LABEL]`: continue at the arm of SRC's variant tag (`null` matches `None` and other non-variants match `Some`).
    Match "match" [] { src: Reg, arms: Arms, default: Option<Block> } term;
    /// `dst = perform EFFECT(REG, ...) [retry(...)] [timeout(...)]`: perform an effect and wait; dst gets `Ok(value)` or `Err(error)`.
    Perform "perform" [dst] { effect: EffectRef, args: Vec<Reg>, policy: Policy } suspend;
    /// `dst = call WORKFLOW(REG, ...)`: run a child workflow and wait; dst gets `Ok(result)` or `Err(error)`.
    Call "call" [dst] { workflow: Symbol, args: Vec<Reg> } suspend;
    /// `dst = spawn LABEL`: start a fiber at LABEL with a copy of this fiber's registers; dst gets its handle.
    Spawn "spawn" [dst] { target: Block };
    /// `dst = join FIBER`: wait for the fiber whose handle is in FIBER; dst gets the value it returned.
    Join "join" [dst] { fiber: Reg } suspend;
    /// `dst = race FIBERS`: wait for the first of a list of fibers to return; dst gets `[index, value]` and the others are cancelled.
    Race "race" [dst] { fibers: Reg } suspend;
    /// `sleep MILLIS`: suspend the fiber for a duration, on a durable timer.
    Sleep "sleep" [] { millis: Reg } suspend;
    /// `dst = signal NAME`: wait for the next signal NAME sent to the run; dst gets its value.
    AwaitSignal "signal" [dst] { name: Symbol } suspend;
    /// `log LEVEL, "MESSAGE" [, FIELDS]`: emit a structured log event.
    Log "log" [] { level: LogLevel, message: String, fields: Option<Reg> };
    /// `ret VALUE`: return from the fiber; from the main fiber this completes the run.
    Ret "ret" [] { value: Reg } term;
    /// `fail ERROR`: fail the run with an error value.
    Fail "fail" [] { error: Reg } term;
}

impl Opcode {
    pub fn info(self) -> &'static OpcodeInfo {
        &OPCODES[self as usize]
    }

    pub fn mnemonic(self) -> &'static str {
        self.info().mnemonic
    }

    pub fn from_mnemonic(s: &str) -> Option<Opcode> {
        OPCODES.iter().find(|i| i.mnemonic == s).map(|i| i.opcode)
    }
}

impl Inst {
    pub fn info(&self) -> &'static OpcodeInfo {
        self.opcode().info()
    }

    pub fn mnemonic(&self) -> &'static str {
        self.info().mnemonic
    }

    pub fn is_terminator(&self) -> bool {
        self.info().terminator
    }

    /// The operands in text order.
    pub fn operands(&self) -> Vec<OperandRef<'_>> {
        let mut out = Vec::new();
        self.for_each_operand(|op| out.push(op));
        out
    }

    /// Every register the instruction reads.
    pub fn uses(&self) -> Vec<Reg> {
        let mut out = Vec::new();
        self.for_each_operand(|op| match op {
            OperandRef::Reg(r) => out.push(*r),
            OperandRef::Regs(rs) => out.extend_from_slice(rs),
            OperandRef::OptReg(Some(r)) => out.push(*r),
            OperandRef::Fields(fields) => out.extend(fields.iter().map(|(_, r)| *r)),
            _ => {}
        });
        out
    }

    /// Every block the instruction may continue at.
    pub fn targets(&self) -> Vec<Block> {
        let mut out = Vec::new();
        self.for_each_operand(|op| match op {
            OperandRef::Block(b) => out.push(*b),
            OperandRef::OptBlock(Some(b)) => out.push(*b),
            OperandRef::Arms(arms) => out.extend(arms.iter().map(|(_, b)| *b)),
            _ => {}
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcode_table_is_indexed_by_opcode() {
        for (i, info) in OPCODES.iter().enumerate() {
            assert_eq!(info.opcode as usize, i, "{}", info.mnemonic);
            assert_eq!(Opcode::from_mnemonic(info.mnemonic), Some(info.opcode));
        }
    }

    #[test]
    fn from_parts_rebuilds_every_operand_in_order() {
        let inst = Inst::Branch {
            cond: Reg(1),
            then_block: Block(2),
            else_block: Block(3),
        };
        let ops = inst
            .operands()
            .into_iter()
            .map(|op| match op {
                OperandRef::Reg(r) => Operand::Reg(*r),
                OperandRef::Block(b) => Operand::Block(*b),
                other => panic!("unexpected operand {other:?}"),
            })
            .collect();
        assert_eq!(Inst::from_parts(Opcode::Branch, None, ops), Ok(inst));
    }

    #[test]
    fn from_parts_names_what_does_not_fit() {
        let err = Inst::from_parts(Opcode::Move, Some(Reg(0)), vec![Operand::Block(Block(1))]);
        assert_eq!(
            err.unwrap_err().to_string(),
            "operand 0 of `mov` should be Reg, got Block"
        );
        let err = Inst::from_parts(Opcode::Jump, Some(Reg(0)), vec![]);
        assert_eq!(
            err.unwrap_err().to_string(),
            "`jmp` takes no destination register"
        );
    }

    #[test]
    fn uses_and_targets_follow_operands() {
        let inst = Inst::Record {
            dst: Reg(9),
            fields: vec![(Symbol::from("a"), Reg(1)), (Symbol::from("b"), Reg(2))],
        };
        assert_eq!(inst.uses(), vec![Reg(1), Reg(2)]);
        assert_eq!(inst.dst(), Some(Reg(9)));
        let m = Inst::Match {
            src: Reg(0),
            arms: vec![(Symbol::from("Ok"), Block(1))],
            default: Some(Block(2)),
        };
        assert_eq!(m.targets(), vec![Block(1), Block(2)]);
        assert!(m.is_terminator());
    }

    #[test]
    fn backoff_grows_and_caps() {
        let r = RetryPolicy {
            max_attempts: 5,
            initial_backoff_ms: 100,
            max_backoff_ms: 350,
            multiplier: 2,
        };
        assert_eq!(
            [r.backoff_ms(1), r.backoff_ms(2), r.backoff_ms(3)],
            [100, 200, 350]
        );
    }
}
