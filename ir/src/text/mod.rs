//! Text assembly.
