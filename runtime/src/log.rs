//! Structured logs from workflows: `log::info("charged", &fields)`. In IR
//! each is a `log` instruction (the message must be a literal); natively it
//! goes to the responder's [`crate::native::Responder::log`].

use serde::Serialize;

use drover_ir::Value;

/// The level of a log line.
pub use drover_ir::LogLevel as Level;

fn emit(level: Level, message: &str, fields: impl Serialize) {
    // A log line must never fail the workflow; a field that cannot be
    // represented is logged as the reason instead.
    let fields = drover_ir::to_value(&fields)
        .unwrap_or_else(|e| Value::Str(format!("fields not representable: {e}")));
    crate::native::log(level, message, &fields);
}

/// Logs at trace level.
pub fn trace(message: &str, fields: impl Serialize) {
    emit(Level::Trace, message, fields);
}

/// Logs at debug level.
pub fn debug(message: &str, fields: impl Serialize) {
    emit(Level::Debug, message, fields);
}

/// Logs at info level.
pub fn info(message: &str, fields: impl Serialize) {
    emit(Level::Info, message, fields);
}

/// Logs at warn level.
pub fn warn(message: &str, fields: impl Serialize) {
    emit(Level::Warn, message, fields);
}

/// Logs at error level.
pub fn error(message: &str, fields: impl Serialize) {
    emit(Level::Error, message, fields);
}
