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

/// A warning on stderr (a failing stderr is ignored: the warning is not the result).
pub fn warn(text: impl fmt::Display) {
    let _ = writeln!(io::stderr(), "warning: {text}");
}

/// A line of information on stderr that is not the command's result (a URL to open, a
/// server's closing counters), so stdout stays the result (`--json` stays one object).
pub fn note(text: impl fmt::Display) -> io::Result<()> {
    writeln!(io::stderr(), "{text}")
}
