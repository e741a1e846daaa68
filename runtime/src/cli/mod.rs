//! The `drover` command line.
