//! Atomic file writes: a reader sees the old file or the whole new one, never half of it (the
//! DESIGN.md contract for models and snapshots). `AtomicFile` streams (long generated series
//! are written chunk by chunk, never held whole); `write` is the one-buffer case.

use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// Writes `bytes` to a temp file in `path`'s directory, fsyncs it, renames it over `path`, then
/// fsyncs the directory so the rename itself survives a crash.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()
}

/// A file being written: its bytes go to a temp file beside `path`, which `commit` renames over
/// `path`. Dropped without `commit` (an error part way), the temp file is removed and `path`
/// keeps its old contents.
pub struct AtomicFile {
    tmp: BufWriter<NamedTempFile>,
    path: PathBuf,
}

impl AtomicFile {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let dir = dir_of(path);
        remove_stale_temps(dir);
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
            .tempfile_in(dir)
            .map_err(|e| {
                // tempfile appends ` at path "<random temp name>"`; the directory says more.
                let text = e.to_string();
                let cause = text.split(" at path \"").next().unwrap_or(&text);
                std::io::Error::new(e.kind(), format!("directory {}: {cause}", dir.display()))
            })?;
        Ok(Self {
            tmp: BufWriter::new(tmp),
            path: path.to_path_buf(),
        })
    }

    /// Flushes, fsyncs, renames over the target and fsyncs the directory.
    pub fn commit(self) -> std::io::Result<()> {
        let tmp = self.tmp.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        if let Ok(d) = std::fs::File::open(dir_of(&self.path)) {
            // Directory fsync is advisory on some filesystems; the data itself is already synced.
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tmp.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.tmp.write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.tmp.flush()
    }
}

/// Writers that learn a count only at the end (a `.npy` header) go back and patch it.
impl Seek for AtomicFile {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.tmp.seek(pos)
    }
}

/// Temp files are `.echos-tmp-<pid>-<random>`: the writer's pid lets a later save tell the
/// leftovers of a killed writer (SIGKILL, power loss: no destructor ran) from a live writer's.
const TEMP_PREFIX: &str = ".echos-tmp-";

/// Removes temp files in `dir` whose writer process no longer exists (Linux: no `/proc/PID`).
/// A live writer's temp file is never touched; a reused pid only leaves a file for later.
/// Best effort: an error here never fails the save.
fn remove_stale_temps(dir: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    #[test]
    fn replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        super::write(&p, b"first").unwrap();
        super::write(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// A directory that does not exist is named in the error, not the temp file's random name.
    #[test]
    fn a_missing_directory_is_named() {
        let e = super::write(std::path::Path::new("/nonexistent-dir/x.bin"), b"x").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        let text = e.to_string();
        assert!(text.starts_with("directory /nonexistent-dir: "), "{text}");
        assert!(!text.contains(".echos-tmp-"), "{text}");
    }

    /// A streamed write abandoned part way leaves the old file and no temp file behind.
    #[test]
    fn an_uncommitted_stream_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        super::write(&p, b"old").unwrap();
        let mut f = super::AtomicFile::create(&p).unwrap();
        f.write_all(&[7; 100_000]).unwrap();
        drop(f);
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut f = super::AtomicFile::create(&p).unwrap();
        for chunk in [&b"new "[..], b"in ", b"chunks"] {
            f.write_all(chunk).unwrap();
        }
        f.commit().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new in chunks");
    }
}
