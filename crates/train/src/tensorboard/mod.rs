//! TensorBoard event files: scalars that `tensorboard --logdir runs` shows, as
//! PyTorch's `torch.utils.tensorboard.SummaryWriter` writes them.
//!
//! An event file (`events.out.tfevents.<unix-seconds>.<hostname>`) is a sequence of
//! TFRecords: a `u64` little-endian length, the masked CRC-32C of those 8 bytes (`u32`
//! LE), the data, and the masked CRC-32C of the data. A masked CRC is
//! `((crc >> 15) | (crc << 17)) + 0xa282ead8`. Each record's data is a protobuf `Event`:
//! `double wall_time = 1; int64 step = 2;` and either `string file_version = 3` (the first
//! record, `"brain.Event:2"`) or `Summary summary = 5`, a list of `Value { string tag = 1;
//! float simple_value = 2; }`. Fields at their proto3 default (a zero step or wall time)
//! are left out, as TensorFlow does.
//!
//! [`EventWriter`] writes such a file and flushes after every call, so that TensorBoard
//! can follow a run while it trains; [`read_events`] reads one back, checking both CRCs
//! of every record (errors: [`RecordError`], inside a [`TrainError::Io`] naming the file).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{IoContext, Result, TrainError};

mod read;
#[cfg(test)]
mod tests;
mod wire;

pub use read::{read_events, Event, RecordError};
use wire::{encode_event, masked_crc};

/// The `file_version` of the first record of every event file.
pub const FILE_VERSION: &str = "brain.Event:2";

/// The longest record [`read_events`] accepts (and [`EventWriter`] writes), in bytes.
pub const MAX_RECORD_LEN: u64 = 16 << 20;

/// How many `.1`, `.2`, … suffixes [`EventWriter::create`] tries before giving up.
const MAX_SUFFIX: u32 = 1000;

/// Writes scalars to a new TensorBoard event file, flushing after every call.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// Creates `dir` if needed and a new event file in it,
    /// `events.out.tfevents.<unix-seconds>.<hostname>`, with a `.1`, `.2`, … suffix when
    /// that name is taken (an existing file is never overwritten), and writes the
    /// `file_version` record.
    pub fn create(dir: &Path) -> Result<EventWriter> {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self::create_named(dir, secs, &hostname())
    }

    /// [`EventWriter::create`] with the time and host in the file name given.
    fn create_named(dir: &Path, secs: u64, host: &str) -> Result<EventWriter> {
        fs::create_dir_all(dir).at(dir)?;
        let base = format!("events.out.tfevents.{secs}.{host}");
        let mut suffix = 0;
        let (path, file) = loop {
            let name = match suffix {
                0 => base.clone(),
                n => format!("{base}.{n}"),
            };
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == ErrorKind::AlreadyExists && suffix < MAX_SUFFIX => {
                    suffix += 1;
                }
                Err(e) => return Err(e).at(&path),
            }
        };
        let mut writer = EventWriter {
            path,
            out: BufWriter::new(file),
        };
        let data = encode_event(wall_time_now(), 0, Some(FILE_VERSION), &[]);
        writer.write_record(&data)?;
        writer.flush()?;
        Ok(writer)
    }

    /// The event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one scalar (stored as `f32`, as TensorBoard does) at `step`, stamped with
    /// the current time, and flushes.
    pub fn add_scalar(&mut self, tag: &str, value: f64, step: u64) -> Result<()> {
        self.add_scalars(step, &[(tag, value)])
    }

    /// Writes several scalars at `step` as one event (one tag each, not PyTorch's
    /// `add_scalars`, which writes one run per tag) and flushes; nothing for an empty list.
    pub fn add_scalars(&mut self, step: u64, values: &[(&str, f64)]) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        let step = i64::try_from(step).map_err(|_| self.invalid(format!("step {step}")))?;
        if values.iter().any(|(tag, _)| tag.is_empty()) {
            return Err(self.invalid("an empty scalar tag".into()));
        }
        // TensorBoard keeps scalars as f32: the narrowing is the format's.
        let scalars: Vec<(&str, f32)> = values.iter().map(|&(t, v)| (t, v as f32)).collect();
        let data = encode_event(wall_time_now(), step, None, &scalars);
        self.write_record(&data)?;
        self.flush()
    }

    /// Flushes buffered records to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().at(&self.path)
    }

    /// An `InvalidInput` error naming the file, for an argument it cannot hold.
    fn invalid(&self, what: String) -> TrainError {
        let message = format!("cannot write {what} to a TensorBoard event file");
        TrainError::Io {
            path: self.path.clone(),
            source: io::Error::new(ErrorKind::InvalidInput, message),
        }
    }

    /// Writes `data` as one TFRecord (not flushed).
    fn write_record(&mut self, data: &[u8]) -> Result<()> {
        if data.len() as u64 > MAX_RECORD_LEN {
            return Err(self.invalid(format!("a {}-byte record", data.len())));
        }
        let len = (data.len() as u64).to_le_bytes();
        let mut record = Vec::with_capacity(data.len() + 16);
        record.extend_from_slice(&len);
        record.extend_from_slice(&masked_crc(&len).to_le_bytes());
        record.extend_from_slice(data);
        record.extend_from_slice(&masked_crc(data).to_le_bytes());
        self.out.write_all(&record).at(&self.path)
    }
}

/// Seconds since the Unix epoch, now.
fn wall_time_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// This machine's name for event file names: `/etc/hostname`, else `$HOSTNAME`, else
/// `localhost`, sanitized.
fn hostname() -> String {
    let raw = fs::read_to_string("/etc/hostname")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    sanitize_host(&raw)
}

/// `raw` trimmed, at most 64 characters, each outside `[A-Za-z0-9._-]` replaced with `_`;
/// `localhost` when nothing is left.
fn sanitize_host(raw: &str) -> String {
    let host: String = raw
        .trim()
        .chars()
        .take(64)
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .collect();
    if host.is_empty() {
        "localhost".into()
    } else {
        host
    }
}
