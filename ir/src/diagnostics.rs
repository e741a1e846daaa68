//! Rendering miette diagnostics to strings, for CLIs and for tests that show
//! the message a user sees.

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme};

/// Renders a diagnostic as plain text (no colour), the way a user sees it on
/// a terminal that is not a TTY.
pub fn render(diag: &dyn Diagnostic) -> String {
    render_with(diag, GraphicalTheme::unicode_nocolor())
}

/// Renders a diagnostic with colours, for a TTY.
pub fn render_color(diag: &dyn Diagnostic) -> String {
    render_with(diag, GraphicalTheme::unicode())
}

fn render_with(diag: &dyn Diagnostic, theme: GraphicalTheme) -> String {
    let mut out = String::new();
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    // Writing into a String cannot fail.
    let _ = handler.render_report(&mut out, diag);
    out
}
