//! The Drover compiler library and the `dslc` command-line tool.

pub mod cli;
pub mod scripted;
