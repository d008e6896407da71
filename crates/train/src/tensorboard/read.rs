//! Reading event files back: [`read_events`], for tests and tools.

use std::fs::File;
use std::io::{self, BufReader, ErrorKind, Read};
use std::path::Path;

use super::wire::{decode_event, masked_crc};
use super::MAX_RECORD_LEN;
use crate::error::{IoContext, Result, TrainError};

/// One decoded record of an event file.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Seconds since the Unix epoch when it was written.
    pub wall_time: f64,
    /// The training step (0 for the `file_version` record).
    pub step: i64,
    /// `"brain.Event:2"` in the first record, `None` in the others.
    pub file_version: Option<String>,
    /// The `(tag, simple_value)` pairs of its summary (values of other kinds are skipped).
    pub scalars: Vec<(String, f32)>,
}

/// What is wrong with a record of an event file, `record` counting from 0. It reaches
/// callers inside a [`TrainError::Io`] (kind `InvalidData`) that names the file; see
/// [`RecordError::find`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The CRC of the length bytes does not match.
    #[error(
        "record {record}: length CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
    )]
    LengthCrc {
        /// The record's index.
        record: usize,
        /// The masked CRC in the file.
        stored: u32,
        /// The masked CRC of the bytes read.
        computed: u32,
    },
    /// The CRC of the data does not match.
    #[error(
        "record {record}: data CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
    )]
    DataCrc {
        /// The record's index.
        record: usize,
        /// The masked CRC in the file.
        stored: u32,
        /// The masked CRC of the bytes read.
        computed: u32,
    },
    /// The file ends inside the record.
    #[error("record {record}: truncated (the file ends inside it)")]
    Truncated {
        /// The record's index.
        record: usize,
    },
    /// The record's length is over [`MAX_RECORD_LEN`].
    #[error("record {record}: length {len} is over the {MAX_RECORD_LEN}-byte limit")]
    TooLong {
        /// The record's index.
        record: usize,
        /// The length it claims.
        len: u64,
    },
    /// The data is not a valid `Event` protobuf.
    #[error("record {record}: bad Event protobuf: {message}")]
    Protobuf {
        /// The record's index.
        record: usize,
        /// What is wrong.
        message: String,
    },
}

impl RecordError {
    /// The record error inside `err`, if it is one from [`read_events`].
    pub fn find(err: &TrainError) -> Option<&RecordError> {
        match err {
            TrainError::Io { source, .. } => source.get_ref()?.downcast_ref(),
            _ => None,
        }
    }
}

/// Reads every record of the event file at `path`, checking both CRCs of each and
/// decoding its `Event`. Memory is bounded: a length over [`MAX_RECORD_LEN`] or past the
/// end of the file is an error, not an allocation. The file is read as far as it
/// reached when opened.
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    let file = File::open(path).at(path)?;
    let mut remaining = file.metadata().at(path)?.len();
    // Records appended while reading (a live run) are left for the next call.
    let mut input = BufReader::new(file).take(remaining);
    let fail = |e: RecordError| Err(io::Error::new(ErrorKind::InvalidData, e)).at(path);
    let mut events = Vec::new();
    loop {
        let record = events.len();
        let mut header = [0u8; 12];
        match read_full(&mut input, &mut header).at(path)? {
            0 => return Ok(events),
            12 => {}
            _ => return fail(RecordError::Truncated { record }),
        }
        let (len_bytes, stored) = header.split_at(8);
        let stored = u32::from_le_bytes(stored.try_into().expect("4 bytes"));
        let computed = masked_crc(len_bytes);
        if stored != computed {
            return fail(RecordError::LengthCrc {
                record,
                stored,
                computed,
            });
        }
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
        if len > MAX_RECORD_LEN {
            return fail(RecordError::TooLong { record, len });
        }
        remaining = remaining.saturating_sub(12);
        if len + 4 > remaining {
            return fail(RecordError::Truncated { record });
        }
        remaining -= len + 4;
        // Bounded by MAX_RECORD_LEN and by the file's size, checked above.
        let mut data = vec![0u8; len as usize + 4];
        if read_full(&mut input, &mut data).at(path)? < data.len() {
            return fail(RecordError::Truncated { record });
        }
        let crc_bytes = data.split_off(len as usize);
        let stored = u32::from_le_bytes(crc_bytes.try_into().expect("4 bytes"));
        let computed = masked_crc(&data);
        if stored != computed {
            return fail(RecordError::DataCrc {
                record,
                stored,
                computed,
            });
        }
        match decode_event(&data) {
            Ok(event) => events.push(event),
            Err(message) => return fail(RecordError::Protobuf { record, message }),
        }
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
