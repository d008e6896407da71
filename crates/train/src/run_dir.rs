//! Run directories: where a training run writes its config, metrics and weights.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_nn::VarMap;
use serde::Serialize;

use crate::error::{IoContext, Result, TrainError};

/// A directory holding one run's outputs.
#[derive(Clone, Debug)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Uses `path`, creating it (and its parents) if needed; fails early if it is not
    /// writable, so that no training time is lost.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        fs::create_dir_all(&path).at(&path)?;
        let probe = path.join(".write-test");
        File::create(&probe).at(&path)?;
        fs::remove_file(&probe).at(&probe)?;
        Ok(Self { path })
    }

    /// `runs/<task>-<UTC timestamp>` under `root`.
    pub fn timestamped(root: &Path, task: &str) -> Result<Self> {
        Self::create(root.join(format!("{task}-{}", utc_timestamp())))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A file inside the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `bytes` to `name` atomically: a temporary file, fsync, then rename, so a
    /// crash leaves either the old file or the new one, never a torn one.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let target = self.file(name);
        let tmp = self.file(&format!(".{name}.tmp"));
        {
            let mut f = File::create(&tmp).at(&tmp)?;
            f.write_all(bytes).at(&tmp)?;
            f.sync_all().at(&tmp)?;
        }
        fs::rename(&tmp, &target).at(&target)?;
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
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["a.txt"]);
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
