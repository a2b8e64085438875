//! The output folder: made or accepted ([`prepare_dir`]), proved writable
//! before any simulation ([`check_writable`]), every path checked to stay
//! inside it ([`out_path`]), files written whole or not at all
//! ([`write_atomic`]), and kept tidy ([`tidy_dir`]): a manifest records
//! what asyncsim wrote, so that the next run can remove what it will not
//! write again, and temporary files that a killed run left are removed.
//! Files asyncsim did not write are never touched. The contents of the
//! files live elsewhere.

use std::fs;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

/// The file that marks a folder as asyncsim's own output.
pub const MARKER: &str = ".asyncsim-output";

/// Why output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The folder holds files asyncsim did not write.
    #[error("refusing to write into {0}: it holds files asyncsim did not write (pass --force to write there anyway, or choose another --out)")]
    Foreign(PathBuf),
    /// A file name that would land outside the output folder.
    #[error("refusing to write {name:?}: the file would not be directly inside the output folder {dir}")]
    Outside {
        /// The output folder.
        dir: PathBuf,
        /// The file name asked for.
        name: String,
    },
    /// The file system said no.
    #[error("cannot write {path}")]
    Io {
        /// What we tried to write.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io { path: path.to_path_buf(), source }
}

/// Makes `dir` ready for output: creates it (and marks it as ours) if it does
/// not exist; accepts it if it is empty or already ours, or if `force`.
pub fn prepare_dir(dir: &Path, force: bool) -> Result<(), OutputError> {
    if dir.exists() {
        let ours = dir.join(MARKER).exists();
        let empty = fs::read_dir(dir).map_err(io(dir))?.next().is_none();
        if !ours && !empty && !force {
            return Err(OutputError::Foreign(dir.to_path_buf()));
        }
    } else {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let marker = dir.join(MARKER);
    if !marker.exists() {
        write_atomic(&marker, b"This folder holds asyncsim output; asyncsim may overwrite its files.\n")?;
    }
    Ok(())
}

/// The path of the file `name` in the output folder `dir`, checked to stay
/// there: `name` must be one plain file name (no separator, no `..`, not
/// absolute), so the result is a direct child of `dir`.
pub fn out_path(dir: &Path, name: &str) -> Result<PathBuf, OutputError> {
    let outside = || OutputError::Outside { dir: dir.to_path_buf(), name: name.to_string() };
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(part)), None) if part == name && !name.contains(['/', '\\']) => {}
        _ => return Err(outside()),
    }
    let path = dir.join(name);
    if path.parent() != Some(dir) {
        return Err(outside());
    }
    Ok(path)
}

/// Checks, before any work, that files can be written into `dir` (which
/// [`prepare_dir`] made ready): creates and removes a temporary file there.
pub fn check_writable(dir: &Path) -> Result<(), OutputError> {
    let probe = out_path(dir, &format!("{TEMP_PREFIX}{}-write-test", std::process::id()))?;
    fs::File::create(&probe).and_then(|f| f.sync_all()).map_err(io(dir))?;
    fs::remove_file(&probe).map_err(io(dir))
}

/// Writes `bytes` to `path` through a temporary file in the same folder
/// (see [`temp_path`]) and a rename, so a reader never sees a half-written
/// file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io(path))
}

/// Ends a file streamed to its temporary name `tmp` (see [`temp_path`]):
/// flushes the buffer, syncs, and renames it to `path`. For writers that
/// stream (traces) rather than write in one go ([`write_atomic`]).
pub fn publish_streamed(out: std::io::BufWriter<fs::File>, tmp: &Path, path: &Path) -> std::io::Result<()> {
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    fs::rename(tmp, path)
}

/// The file, in an output folder, that lists what the last run wrote there.
pub const MANIFEST: &str = ".asyncsim-manifest.json";

/// How the names of asyncsim's temporary files begin: `.asyncsim-tmp-PID-NAME`.
pub const TEMP_PREFIX: &str = ".asyncsim-tmp-";

/// The temporary file a write of `path` goes through before its rename:
/// hidden, beside it, and named after this process, so that a later run
/// can tell a leftover (of a process that is gone) and remove it.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!("{TEMP_PREFIX}{}-{name}", std::process::id()))
}

/// What [`tidy_dir`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tidied {
    /// Files of an earlier run that this run does not write, removed.
    pub stale: Vec<String>,
    /// Temporary files that killed runs left, removed.
    pub temporary: Vec<String>,
    /// What it left alone, and why (a manifest entry that is not a plain
    /// file inside the folder, say).
    pub warnings: Vec<String>,
}

/// Before a run that will write the files `will_write` (plain names) into
/// `dir`, which [`prepare_dir`] made ready: removes the files the previous
/// run's manifest lists that this run will not write again, and the
/// temporary files of processes that are gone; then records `will_write`
/// (and whatever stale file could not be removed) as the new manifest.
///
/// Only regular files are removed, only those the manifest names or whose
/// names are asyncsim's temporary ones, and only directly inside `dir`: an
/// entry that is absolute, holds a separator or `..`, or names a link or
/// a folder is left alone with a warning.
pub fn tidy_dir(dir: &Path, will_write: &[&str]) -> Result<Tidied, OutputError> {
    let mut tidied = Tidied::default();
    let mut listed = Vec::new();
    for name in read_manifest(dir, &mut tidied.warnings) {
        if will_write.contains(&name.as_str()) {
            continue;
        }
        match out_path(dir, &name) {
            Ok(path) if name != MARKER && name != MANIFEST => match remove_regular(&path) {
                Ok(true) => tidied.stale.push(name),
                Ok(false) => tidied.warnings.push(format!("left {}: not a regular file", path.display())),
                Err(e) => {
                    tidied.warnings.push(format!("could not remove {}: {e}", path.display()));
                    listed.push(name);
                }
            },
            _ => tidied.warnings.push(format!("ignored {name:?} in {MANIFEST}: not a plain file name in the folder")),
        }
    }
    tidied.temporary = remove_leftover_temporaries(dir)?;
    listed.extend(will_write.iter().map(|s| s.to_string()));
    write_manifest(dir, &listed)?;
    Ok(tidied)
}

/// Before a command that adds files to an output folder without replacing
/// a run's output (`asyncsim diagram`): removes the temporary files of
/// processes that are gone, and records `adding` (plain names) in the
/// manifest beside what it already lists, so that nothing of the last
/// run's output is removed and the next run knows these files too.
pub fn tidy_dir_adding(dir: &Path, adding: &[&str]) -> Result<Tidied, OutputError> {
    let mut tidied = Tidied::default();
    let mut listed = read_manifest(dir, &mut tidied.warnings);
    for name in adding {
        out_path(dir, name)?;
        if !listed.iter().any(|l| l == name) {
            listed.push(name.to_string());
        }
    }
    tidied.temporary = remove_leftover_temporaries(dir)?;
    write_manifest(dir, &listed)?;
    Ok(tidied)
}

/// The names the manifest in `dir` lists; none (with a warning) when it
/// cannot be read as one, none (silently) when there is none.
fn read_manifest(dir: &Path, warnings: &mut Vec<String>) -> Vec<String> {
    let path = dir.join(MANIFEST);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            warnings.push(format!("cannot read {}: {e}; no earlier output removed", path.display()));
            return Vec::new();
        }
    };
    let files = serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| match v.get("files") {
        Some(serde_json::Value::Array(files)) => {
            files.iter().map(|f| f.as_str().map(String::from)).collect::<Option<Vec<_>>>()
        }
        _ => None,
    });
    files.unwrap_or_else(|| {
        warnings.push(format!("{} is not a list of files; no earlier output removed", path.display()));
        Vec::new()
    })
}

fn write_manifest(dir: &Path, files: &[String]) -> Result<(), OutputError> {
    let manifest = serde_json::json!({
        "about": "the files asyncsim wrote into this folder; the next run removes those it does not write again",
        "files": files,
    });
    let mut text = serde_json::to_string_pretty(&manifest).expect("a list of names serializes");
    text.push('\n');
    write_atomic(&dir.join(MANIFEST), text.as_bytes())
}

/// Removes `path` if it is a regular file (not a link, not a folder):
/// true if removed, false if left, and no error if it is already gone.
fn remove_regular(path: &Path) -> std::io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_file() => fs::remove_file(path).map(|()| true),
        Ok(_) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// Removes the temporary files in `dir` whose process is gone (this one's,
/// and those of runs still going, are kept); returns their names.
fn remove_leftover_temporaries(dir: &Path) -> Result<Vec<String>, OutputError> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = temporary_pid(&name) else { continue };
        if pid != std::process::id()
            && !process_alive(pid)
            && remove_regular(&entry.path()).map_err(io(&entry.path()))?
        {
            removed.push(name);
        }
    }
    removed.sort();
    Ok(removed)
}

/// The process id in the name of one of asyncsim's temporary files:
/// `.asyncsim-tmp-PID-NAME`, or the older `.NAME.tmp-PID` of a file
/// asyncsim writes.
fn temporary_pid(name: &str) -> Option<u32> {
    if let Some(rest) = name.strip_prefix(TEMP_PREFIX) {
        return rest.split('-').next()?.parse().ok();
    }
    let (file, pid) = name.strip_prefix('.')?.rsplit_once(".tmp-")?;
    let ours = file == "summary.json"
        || file == "timeseries.csv"
        || file == MARKER
        || (file.starts_with("trace-") && file.ends_with(".csv"));
    if ours {
        pid.parse().ok()
    } else {
        None
    }
}

/// Whether a process `pid` is running, where the system says (`/proc`);
/// elsewhere, assumed gone.
fn process_alive(pid: u32) -> bool {
    Path::new("/proc/self").exists() && Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_with_foreign_files_is_not_used_without_force() {
        let dir = std::env::temp_dir().join(format!("asyncsim-reports-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("thesis.tex"), "precious").unwrap();
        assert!(matches!(prepare_dir(&dir, false), Err(OutputError::Foreign(_))));
        assert!(prepare_dir(&dir, true).is_ok());
        // Once marked, it is ours, and the user's file is untouched.
        assert!(prepare_dir(&dir, false).is_ok());
        assert_eq!(fs::read_to_string(dir.join("thesis.tex")).unwrap(), "precious");
        write_atomic(&dir.join("summary.json"), b"{}").unwrap();
        assert_eq!(fs::read_to_string(dir.join("summary.json")).unwrap(), "{}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn adding_files_keeps_what_the_manifest_lists() {
        let dir = std::env::temp_dir().join(format!("asyncsim-reports-adding-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        prepare_dir(&dir, false).unwrap();
        write_atomic(&dir.join("summary.json"), b"{}").unwrap();
        tidy_dir(&dir, &["summary.json"]).unwrap();
        fs::write(dir.join(".asyncsim-tmp-999999999-x.svg"), "half").unwrap();
        for _ in 0..2 {
            let tidied = tidy_dir_adding(&dir, &["diagram-a.svg"]).unwrap();
            assert!(tidied.stale.is_empty());
        }
        assert!(dir.join("summary.json").exists(), "a run's output stays");
        assert!(!dir.join(".asyncsim-tmp-999999999-x.svg").exists(), "a dead process's temporary file goes");
        assert_eq!(read_manifest(&dir, &mut Vec::new()), ["summary.json", "diagram-a.svg"], "listed once each");
        assert!(matches!(tidy_dir_adding(&dir, &["../x.svg"]), Err(OutputError::Outside { .. })));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn out_path_keeps_files_inside_the_folder() {
        let dir = Path::new("/tmp/out");
        assert_eq!(out_path(dir, "trace-a.csv").unwrap(), dir.join("trace-a.csv"));
        for bad in ["", ".", "..", "../x", "a/b", "logs/../../../ESCAPED", "/etc/passwd", "a\\b", "x/"] {
            assert!(matches!(out_path(dir, bad), Err(OutputError::Outside { .. })), "{bad:?}");
        }
    }

    #[test]
    fn temporary_files_are_told_by_name() {
        assert_eq!(temporary_pid(".asyncsim-tmp-42-trace-a.csv"), Some(42));
        assert_eq!(temporary_pid(".asyncsim-tmp-42-write-test"), Some(42));
        assert_eq!(temporary_pid(".trace-a.csv.tmp-7"), Some(7), "the older naming");
        assert_eq!(temporary_pid(".summary.json.tmp-7"), Some(7));
        assert_eq!(temporary_pid("..asyncsim-output.tmp-7"), Some(7));
        for not_ours in
            [".thesis.tex.tmp-7", "summary.json", ".asyncsim-tmp-x-a", ".trace-a.csv.tmp-", "trace-a.csv.tmp-7"]
        {
            assert_eq!(temporary_pid(not_ours), None, "{not_ours}");
        }
        let tmp = temp_path(Path::new("/o/trace-a.csv"));
        let name = tmp.file_name().unwrap().to_str().unwrap();
        assert_eq!(tmp.parent(), Some(Path::new("/o")));
        assert_eq!(temporary_pid(name), Some(std::process::id()));
    }
}
