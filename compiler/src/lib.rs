//! The Drover compiler library and the `dslc` command-line tool.
//!
//! [`lower`] turns a `#[workflow]` fn into Drover IR; [`expand`] expands the
//! `#[workflow]`, `#[activity]` and `#[pure]` attributes for `drover-macros`.

pub mod cli;
pub mod expand;
pub mod lower;
pub mod scripted;
