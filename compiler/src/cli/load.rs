//! Loading a program from a `.dasm` or `.dbc` file.

use std::path::{Path, PathBuf};

use drover_ir::text::{self, TextMap};
use drover_ir::verify::{self, Report};
use drover_ir::wire;
use drover_ir::Module;

use super::output::eprint_diag;
use super::Failure;

/// A module with text that diagnostics can point into: the source for
/// `.dasm`, the disassembly for `.dbc`.
pub struct Loaded {
    pub path: PathBuf,
    pub module: Module,
    /// The name diagnostics show for `text`.
    pub text_name: String,
    pub text: String,
    pub map: TextMap,
    /// The encoded bytes, when the file was bytecode.
    pub bytes: Option<Vec<u8>>,
}

/// Reads a whole file, mapping failures to exit code 3.
pub fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::Io(format!("cannot read {}: {e}", path.display())))
}

/// Writes a whole file, mapping failures to exit code 3.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    std::fs::write(path, bytes)
        .map_err(|e| Failure::Io(format!("cannot write {}: {e}", path.display())))
}

/// Loads `.dasm` (assembling it) or `.dbc` (decoding it); the file's
/// contents decide, so a misnamed file still loads.
pub fn load(path: &Path) -> Result<Loaded, Failure> {
    let bytes = read(path)?;
    if bytes.starts_with(&wire::MAGIC) {
        load_bytecode(path, bytes)
    } else {
        load_text(path, &bytes)
    }
}

/// Loads a file that must be bytecode.
pub fn load_dbc(path: &Path) -> Result<Loaded, Failure> {
    let bytes = read(path)?;
    load_bytecode(path, bytes)
}

fn load_bytecode(path: &Path, bytes: Vec<u8>) -> Result<Loaded, Failure> {
    let module = wire::decode(&bytes).map_err(|e| {
        eprint_diag(&InFile {
            path: path.display().to_string(),
            inner: e,
        });
        Failure::Rejected
    })?;
    let (text, map) = text::print_with_map(&module);
    Ok(Loaded {
        path: path.to_owned(),
        module,
        text_name: format!("{} (disassembled)", path.display()),
        text,
        map,
        bytes: Some(bytes),
    })
}

fn load_text(path: &Path, bytes: &[u8]) -> Result<Loaded, Failure> {
    let src = std::str::from_utf8(bytes).map_err(|e| {
        Failure::Message(format!(
            "{} is neither Drover bytecode (no DRBC magic) nor UTF-8 assembly text: {e}",
            path.display()
        ))
    })?;
    let name = path.display().to_string();
    let (module, map) = text::assemble(&name, src).map_err(|errs| {
        eprint_diag(&errs);
        Failure::Rejected
    })?;
    Ok(Loaded {
        path: path.to_owned(),
        module,
        text_name: name,
        text: src.to_owned(),
        map,
        bytes: None,
    })
}

impl Loaded {
    /// Verifies the module, printing every diagnostic; errors reject it.
    pub fn verify(&self) -> Result<Report, Failure> {
        let report = verify::verify(&self.module);
        if !report.diags.is_empty() {
            eprint_diag(&report.diagnostic(&self.text_name, &self.text, &self.map));
        }
        if report.has_errors() {
            Err(Failure::Rejected)
        } else {
            Ok(report)
        }
    }

    /// The workflow called `name`, or a message listing those there are.
    pub fn workflow(&self, name: &str) -> Result<drover_ir::WorkflowId, Failure> {
        self.module.workflow(name).map(|(id, _)| id).ok_or_else(|| {
            let names: Vec<&str> = self
                .module
                .workflows
                .iter()
                .map(|w| w.name.as_str())
                .collect();
            Failure::Message(format!(
                "no workflow `{name}` in {}; it has: {}",
                self.path.display(),
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ))
        })
    }
}

/// A diagnostic about a whole file, prefixed with its path.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{path}: {inner}")]
#[diagnostic(forward(inner))]
struct InFile<E: miette::Diagnostic + 'static> {
    path: String,
    inner: E,
}
