//! Run directories: where a training run writes its config, metrics and weights.
//!
//! A run directory belongs to one run: it is created new (a directory that already
//! holds files is refused, or with [`RunDir::create_replacing`] moved aside, never
//! deleted), and an advisory lock on its `.lock` file (which holds the owner's PID) is
//! held as long as the [`RunDir`] lives, so a second writer or a resume of a live run is
//! refused at once, naming the process that holds it.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use candle_nn::VarMap;
use serde::Serialize;

use crate::error::{IoContext, Result, TrainError};

/// The lock file inside every run directory (it holds the PID of the run that owns it).
pub const LOCK_FILE: &str = ".lock";

/// A directory holding one run's outputs, locked while this value (or a clone) lives.
#[derive(Clone, Debug)]
pub struct RunDir {
    path: PathBuf,
    _lock: Arc<File>,
}

impl RunDir {
    /// A directory for a new run: creates `path` (and its parents) or takes an empty
    /// one, and locks it; fails early if it is not writable, so that no training time
    /// is lost.
    ///
    /// Errors: [`TrainError::RunDirInUse`] when another process holds its lock,
    /// [`TrainError::RunDirNotEmpty`] when it already holds files (a previous run).
    pub fn create(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        fs::create_dir_all(&path).at(&path)?;
        let run = Self::lock(path)?;
        let entries = run.entries()?;
        if !entries.is_empty() {
            return Err(TrainError::RunDirNotEmpty {
                path: run.path.clone(),
                entries,
            });
        }
        Ok(run)
    }

    /// [`RunDir::create`], but a directory that holds a previous run is first renamed
    /// to `<path>.old-<UTC time>` (never deleted); returns where it went.
    pub fn create_replacing(path: impl Into<PathBuf>) -> Result<(Self, Option<PathBuf>)> {
        let path = path.into();
        let mut moved = None;
        if path.is_dir() {
            let old = Self::lock(path.clone())?;
            if !old.entries()?.is_empty() {
                let aside = unused_name(&format!("{}.old-{}", path.display(), utc_timestamp()));
                fs::rename(&path, &aside).at(&path)?;
                moved = Some(aside);
            }
        }
        Ok((Self::create(path)?, moved))
    }

    /// An existing run directory, locked, to continue the run in it (`--resume`).
    pub fn reopen(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        if !path.is_dir() {
            return Err(TrainError::Checkpoint {
                path,
                message: "no such run directory".into(),
            });
        }
        Self::lock(path)
    }

    /// A new `<task>-<UTC timestamp>` directory under `root`, with `-2`, `-3`, …
    /// appended when runs start within the same second.
    pub fn timestamped(root: &Path, task: &str) -> Result<Self> {
        fs::create_dir_all(root).at(root)?;
        let base = root.join(format!("{task}-{}", utc_timestamp()));
        for n in 1..=10_000u32 {
            let path = if n == 1 {
                base.clone()
            } else {
                PathBuf::from(format!("{}-{n}", base.display()))
            };
            match fs::create_dir(&path) {
                Ok(()) => return Self::create(path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).at(&path),
            }
        }
        Err(TrainError::Config(format!(
            "{}: no free run directory name",
            base.display()
        )))
    }

    /// Takes the lock of `path` (an existing directory), writing this process's PID.
    fn lock(path: PathBuf) -> Result<Self> {
        let lock_path = path.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .at(&path)?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                return Err(TrainError::RunDirInUse {
                    pid: holder_pid(&lock_path),
                    path,
                })
            }
            Err(fs4::TryLockError::Error(e)) => return Err(e).at(&lock_path),
        }
        file.set_len(0).at(&lock_path)?;
        writeln!(file, "{}", std::process::id()).at(&lock_path)?;
        Ok(Self {
            path,
            _lock: Arc::new(file),
        })
    }

    /// The names of the directory's entries besides the lock file, sorted.
    fn entries(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.path).at(&self.path)? {
            let name = entry.at(&self.path)?.file_name();
            if name != LOCK_FILE {
                names.push(name.to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A file inside the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `bytes` to `name` atomically: a temporary file (named for this process,
    /// so no other writer shares it), fsync, then rename, so a crash leaves either the
    /// old file or the new one, never a torn one. On failure (a full disk) the
    /// temporary file is removed.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let target = self.file(name);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self.file(&format!(".{name}.{}-{n}.tmp", std::process::id()));
        let written = File::create(&tmp).and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
        if let Err(e) = written.and_then(|()| fs::rename(&tmp, &target)) {
            let _ = fs::remove_file(&tmp);
            return Err(e).at(&target);
        }
        Ok(target)
    }
    /// Writes `value` as pretty JSON to `name`, atomically.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<PathBuf> {
        let path = self.file(name);
        let bytes =
            serde_json::to_vec_pretty(value).map_err(|source| TrainError::Json { path, source })?;
        self.write_atomic(name, &bytes)
    }

    /// Saves every variable of `varmap` as safetensors to `name`, atomically (see
    /// [`RunDir::write_atomic`]).
    pub fn save_weights(&self, name: &str, varmap: &VarMap) -> Result<PathBuf> {
        let tensors = crate::snapshot::current_tensors(varmap);
        let bytes = safetensors::serialize(tensors, None).map_err(|e| TrainError::Checkpoint {
            path: self.file(name),
            message: format!("cannot serialise the weights: {e}"),
        })?;
        self.write_atomic(name, &bytes)
    }
}

/// The PID written in a lock file by its holder (retried briefly: the holder writes it
/// just after taking the lock).
fn holder_pid(lock_path: &Path) -> Option<u32> {
    for _ in 0..20 {
        let mut text = String::new();
        if let Ok(mut f) = File::open(lock_path) {
            let _ = f.read_to_string(&mut text);
        }
        if let Ok(pid) = text.trim().parse() {
            return Some(pid);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    None
}

/// `base`, or `base-2`, `base-3`, … : the first name that does not exist.
fn unused_name(base: &str) -> PathBuf {
    (1..)
        .map(|n| {
            PathBuf::from(if n == 1 {
                base.to_string()
            } else {
                format!("{base}-{n}")
            })
        })
        .find(|p| !p.exists())
        .unwrap_or_else(|| PathBuf::from(base))
}

/// The current UTC time as `YYYYMMDD-HHMMSS`.
pub fn utc_timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_timestamp(secs)
}

/// Formats seconds since the Unix epoch as `YYYYMMDD-HHMMSS` (UTC).
pub fn format_timestamp(secs: u64) -> String {
    let days = i32::try_from(secs / 86_400).unwrap_or(i32::MAX);
    let rem = secs % 86_400;
    let date = lstm_datasets::stock::format_date(days).replace('-', "");
    format!(
        "{date}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_civil_dates() {
        assert_eq!(format_timestamp(0), "19700101-000000");
        assert_eq!(format_timestamp(1_795_000_000), "20261118-110640");
        assert_eq!(format_timestamp(951_782_400), "20000229-000000");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("lstm-rundir-{}", std::process::id()));
        let run = RunDir::create(&dir)?;
        run.write_atomic("a.txt", b"one")?;
        run.write_atomic("a.txt", b"two")?;
        assert_eq!(fs::read(run.file("a.txt")).unwrap(), b"two");
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [LOCK_FILE, "a.txt"]);
        fs::remove_dir_all(&dir).unwrap();
        Ok(())
    }

    #[test]
    fn a_directory_is_owned_by_one_run() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("lstm-rundir-own-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let run = RunDir::create(&dir)?;
        let err = RunDir::reopen(&dir).unwrap_err().to_string();
        assert!(
            err.contains(&format!("PID {}", std::process::id())),
            "{err}"
        );
        run.write_atomic("config.json", b"{}")?;
        drop(run);
        let err = RunDir::create(&dir).unwrap_err().to_string();
        assert!(
            err.contains("config.json") && err.contains("already holds a run"),
            "{err}"
        );
        let (run, moved) = RunDir::create_replacing(&dir)?;
        let moved = moved.expect("the old run is moved aside");
        assert_eq!(fs::read(moved.join("config.json")).unwrap(), b"{}");
        assert!(!run.file("config.json").exists());
        drop(run);
        fs::remove_dir_all(&dir).unwrap();
        fs::remove_dir_all(&moved).unwrap();
        Ok(())
    }

    #[test]
    fn timestamped_names_are_unique_within_a_second() -> Result<()> {
        let root = std::env::temp_dir().join(format!("lstm-rundir-ts-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let a = RunDir::timestamped(&root, "mnist")?;
        let b = RunDir::timestamped(&root, "mnist")?;
        assert_ne!(a.path(), b.path());
        assert!(a.path().is_dir() && b.path().is_dir());
        fs::remove_dir_all(&root).unwrap();
        Ok(())
    }

    #[test]
    fn a_failed_atomic_write_leaves_no_temporary_file() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("lstm-rundir-fail-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let run = RunDir::create(&dir)?;
        // A directory where the file should go: the final rename fails.
        fs::create_dir(run.file("model.safetensors")).unwrap();
        let err = run
            .write_atomic("model.safetensors", b"weights")
            .unwrap_err();
        assert!(err.to_string().contains("model.safetensors"), "{err}");
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [LOCK_FILE, "model.safetensors"]);
        fs::remove_dir_all(&dir).unwrap();
        Ok(())
    }

    #[test]
    fn unwritable_directory_is_an_error_naming_it() {
        let err = RunDir::create("/proc/lstm-cannot-be-here").unwrap_err();
        assert!(
            err.to_string().contains("/proc/lstm-cannot-be-here"),
            "{err}"
        );
    }
}
