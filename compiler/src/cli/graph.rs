//! `dslc graph`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use clap::Args;
use drover_ir::graph::{to_dot, GraphOptions};

use super::load;
use super::output::print_out;
use super::Failure;

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// A `.dasm` or `.dbc` file.
    file: PathBuf,
    /// The workflow to draw.
    workflow: String,
    /// Render SVG with Graphviz `dot` instead of printing DOT.
    #[arg(long)]
    svg: bool,
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

impl GraphArgs {
    pub fn execute(self) -> Result<(), Failure> {
        let loaded = load::load(&self.file)?;
        let id = loaded.workflow(&self.workflow)?;
        let dot = to_dot(&loaded.module, id, &GraphOptions::default())
            .ok_or_else(|| Failure::Message(format!("no workflow `{}`", self.workflow)))?;
        let out = if self.svg {
            render_svg(&dot)?
        } else {
            dot.into_bytes()
        };
        match self.output {
            Some(path) => load::write(&path, &out),
            None => print_out(&String::from_utf8_lossy(&out)),
        }
    }
}

/// Pipes DOT through `dot -Tsvg`.
fn render_svg(dot: &str) -> Result<Vec<u8>, Failure> {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Failure::Message(format!(
                "--svg needs Graphviz's `dot` on PATH ({e}); install it (apt-get install graphviz) or drop --svg to get DOT text"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(dot.as_bytes())
            .map_err(|e| Failure::Io(format!("writing to dot: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| Failure::Io(format!("running dot: {e}")))?;
    if !output.status.success() {
        return Err(Failure::Message(format!(
            "dot failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(output.stdout)
}
