//! The one way `echos` writes to stdout. `println!` panics when stdout fails (a closed pipe, a
//! full disk); these return the error instead, and `main` ends a closed pipe quietly and reports
//! any other write failure (clippy's `print_stdout` lint keeps `println!` out of the crate).

use std::fmt;
use std::io::{self, BufWriter, StdoutLock, Write};

/// Writes `text` to stdout and flushes it.
pub fn print(text: impl fmt::Display) -> io::Result<()> {
    let mut out = stdout();
    write!(out, "{text}")?;
    out.flush()
}

/// Writes `text` and a newline to stdout and flushes it.
pub fn println(text: impl fmt::Display) -> io::Result<()> {
    print(format_args!("{text}\n"))
}

/// A buffered stdout for streamed output; call `flush` at the end (drop discards errors).
pub fn stdout() -> Stdout {
    Stdout(BufWriter::new(io::stdout().lock()))
}

/// Stdout whose errors say they are stdout's, keeping the `io::ErrorKind` that `main` checks.
pub struct Stdout(BufWriter<StdoutLock<'static>>);

fn named(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("writing to standard output: {e}"))
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(named)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf).map_err(named)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(named)
    }
}

/// Whether `e` (or any of its causes) is a write to a pipe whose reader has gone, as in
/// `echos … | head -1`: the reader chose to stop, so `main` ends quietly with success.
pub fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Whether stdout is a terminal (then text from a model is shown through [`for_terminal`]).
pub fn stdout_is_terminal() -> bool {
    use std::io::IsTerminal;
    io::stdout().is_terminal()
}

/// Model-generated `text` as it may reach a terminal: control characters other than newline
/// and tab (ESC sequences, carriage returns, bells, C1 controls, DEL) become visible `\u{..}`
/// escapes, so generated text can never move the cursor, retitle the window or worse. Output
/// to a pipe or file (`terminal` false) stays byte-exact.
pub fn for_terminal(text: &str, terminal: bool) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !terminal || !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A prompt on stderr without a newline, for an interactive reader.
pub fn prompt(text: &str) {
    let mut e = io::stderr();
    let _ = write!(e, "{text}");
    let _ = e.flush();
}

/// A warning on stderr (a failing stderr is ignored: the warning is not the result).
pub fn warn(text: impl fmt::Display) {
    let _ = writeln!(io::stderr(), "warning: {text}");
}

/// A line of information on stderr that is not the command's result (a URL to open, a
/// server's closing counters), so stdout stays the result (`--json` stays one object).
pub fn note(text: impl fmt::Display) -> io::Result<()> {
    writeln!(io::stderr(), "{text}")
}

#[cfg(test)]
mod tests {
    use super::for_terminal;

    #[test]
    fn control_characters_are_escaped_only_for_a_terminal() {
        let text = "ok\n\tgo \u{1b}[2J\r\u{7}\u{9b}end";
        assert_eq!(for_terminal(text, false), text);
        let shown = for_terminal(text, true);
        assert_eq!(shown, "ok\n\tgo \\u{1b}[2J\\u{d}\\u{7}\\u{9b}end");
        assert!(!shown
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'));
        assert!(matches!(
            for_terminal("plain text\n", true),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
