//! Keeps `docs/language.md` honest: every ```rust block after a
//! `<!-- check -->` marker is compiled as a file by `dslc compile`'s
//! lowering, and the ```text block after it must be the printed IR (source
//! locations dropped); after `<!-- error -->`, the text block must be the
//! diagnostics, one `line:col: message` (and `  help: ..`) each.
//!
//! `DROVER_UPDATE_DOCS=1 cargo test -p drover-examples --test language_doc`
//! rewrites the text blocks from what the compiler says.

use std::path::Path;

use drover_compiler::lower::compile_file;

/// What a marked snippet should show.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    Ir,
    Errors,
}

/// One marked snippet: its source, and where its text block sits.
struct Snippet {
    expect: Expect,
    rust: String,
    /// Byte range of the text block's contents in the document.
    text: std::ops::Range<usize>,
    line: usize,
}

/// The contents of the next fenced block of `lang` at or after `from`: its
/// byte range, and the offset after its closing fence.
fn block(doc: &str, from: usize, lang: &str) -> Option<(std::ops::Range<usize>, usize)> {
    let open = format!("```{lang}\n");
    let start = doc[from..].find(&open)? + from + open.len();
    let end = doc[start..].find("```\n")? + start;
    Some((start..end, end + 4))
}

fn snippets(doc: &str) -> Vec<Snippet> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = doc[at..].find("<!-- ") {
        let marker = at + i;
        at = marker + 5;
        let expect = if doc[marker..].starts_with("<!-- check -->") {
            Expect::Ir
        } else if doc[marker..].starts_with("<!-- error -->") {
            Expect::Errors
        } else {
            continue;
        };
        let line = doc[..marker].lines().count() + 1;
        let (rust, after) = block(doc, marker, "rust")
            .unwrap_or_else(|| panic!("line {line}: a marker without a ```rust block"));
        let (text, after) = block(doc, after, "text")
            .unwrap_or_else(|| panic!("line {line}: a marker without a ```text block"));
        out.push(Snippet {
            expect,
            rust: doc[rust].to_owned(),
            text,
            line,
        });
        at = after;
    }
    out
}

/// The printed IR of every workflow in `src`, without source locations,
/// which would only tie the doc to line numbers.
fn ir(src: &str) -> Result<String, String> {
    let compiled = compile_file("snippet.rs", src).map_err(|e| {
        e.errors
            .iter()
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let mut out = String::new();
    for c in compiled {
        let report = drover_ir::verify::verify(&c.module);
        assert!(!report.has_errors(), "{}: {:?}", c.name, report.diags);
        for line in drover_ir::text::print(&c.module).lines() {
            let code = line.split("   @ ").next().unwrap_or(line);
            out.push_str(code.trim_end());
            out.push('\n');
        }
    }
    Ok(out)
}

/// The diagnostics of `src`, which must not compile.
fn errors(src: &str) -> String {
    let Err(errs) = compile_file("snippet.rs", src) else {
        panic!("expected errors from:\n{src}");
    };
    let mut out = String::new();
    for e in errs.errors {
        out.push_str(&format!(
            "{}:{}: {}\n",
            e.line_col.0, e.line_col.1, e.message
        ));
        if let Some(help) = e.help {
            out.push_str(&format!("  help: {help}\n"));
        }
    }
    out
}

#[test]
fn language_reference_snippets_compile_as_shown() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/language.md");
    let doc = std::fs::read_to_string(&path).expect("docs/language.md");
    let found = snippets(&doc);
    assert!(found.len() >= 10, "only {} checked snippets", found.len());
    let update = std::env::var_os("DROVER_UPDATE_DOCS").is_some();
    let mut rewritten = String::new();
    let mut last = 0;
    let mut wrong = Vec::new();
    for s in &found {
        let want = match s.expect {
            Expect::Ir => ir(&s.rust).unwrap_or_else(|e| panic!("line {}: {e}", s.line)),
            Expect::Errors => errors(&s.rust),
        };
        if doc[s.text.clone()] != want {
            wrong.push(format!(
                "docs/language.md line {}: shown\n{}\nbut the compiler says\n{want}",
                s.line,
                &doc[s.text.clone()]
            ));
        }
        rewritten.push_str(&doc[last..s.text.start]);
        rewritten.push_str(&want);
        last = s.text.end;
    }
    rewritten.push_str(&doc[last..]);
    if update {
        std::fs::write(&path, rewritten).expect("docs/language.md is writable");
    } else {
        assert!(
            wrong.is_empty(),
            "{}\n(DROVER_UPDATE_DOCS=1 regenerates them)",
            wrong.join("\n")
        );
    }
}
