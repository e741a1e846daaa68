//! Why a worker or supervisor stopped.

use std::any::Any;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The reason a worker or supervisor stopped, as its supervisor sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitReason {
    /// The process finished its job; a handler asked to stop normally.
    Normal,
    /// The process was asked to stop by its supervisor, or chose to stop as if it had been.
    Shutdown,
    /// A handler returned an error it could not recover from.
    Error(String),
    /// A handler panicked; the payload's message is kept.
    Panic(String),
    /// The process was aborted without running `terminate` (brutal kill, or a shutdown timeout).
    Killed,
    /// A supervisor restarted its children more than its intensity allows within its period.
    ///
    /// OTP's supervisor exits with reason `shutdown` in this case, so for the
    /// parent's restart decision this counts as a shutdown (a transient child
    /// supervisor is not restarted); it is a separate variant so that the
    /// cause can be reported at the top of the tree.
    MaxRestartIntensity,
}

impl ExitReason {
    /// Builds an `Error` reason from anything printable.
    pub fn error(message: impl fmt::Display) -> Self {
        ExitReason::Error(message.to_string())
    }

    /// Whether a `Transient` child that exits with this reason is restarted.
    ///
    /// OTP treats `normal` and `shutdown` as expected exits and everything
    /// else (including `killed`) as a crash.
    pub fn is_abnormal(&self) -> bool {
        !matches!(
            self,
            ExitReason::Normal | ExitReason::Shutdown | ExitReason::MaxRestartIntensity
        )
    }

    /// Turns a caught panic payload into a `Panic` reason.
    pub(crate) fn from_panic(payload: Box<dyn Any + Send>) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "panic with a non-string payload".to_string()
        };
        ExitReason::Panic(message)
    }

    /// Turns a task's join error into a reason: cancellation is a kill.
    pub(crate) fn from_join_error(err: tokio::task::JoinError) -> Self {
        if err.is_panic() {
            ExitReason::from_panic(err.into_panic())
        } else {
            ExitReason::Killed
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::Error(m) => write!(f, "error: {m}"),
            ExitReason::Panic(m) => write!(f, "panic: {m}"),
            ExitReason::Killed => f.write_str("killed"),
            ExitReason::MaxRestartIntensity => f.write_str("reached max restart intensity"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_normal_and_shutdown_exits_are_expected_ones() {
        for reason in [
            ExitReason::Normal,
            ExitReason::Shutdown,
            ExitReason::MaxRestartIntensity,
        ] {
            assert!(!reason.is_abnormal(), "{reason}");
        }
        for reason in [
            ExitReason::error("x"),
            ExitReason::Panic("x".into()),
            ExitReason::Killed,
        ] {
            assert!(reason.is_abnormal(), "{reason}");
        }
    }

    #[test]
    fn panic_payloads_keep_their_message() {
        assert_eq!(
            ExitReason::from_panic(Box::new("static")),
            ExitReason::Panic("static".into())
        );
        assert_eq!(
            ExitReason::from_panic(Box::new(String::from("owned"))),
            ExitReason::Panic("owned".into())
        );
        assert!(matches!(
            ExitReason::from_panic(Box::new(7_u8)),
            ExitReason::Panic(_)
        ));
    }
}
