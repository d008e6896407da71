//! Opening input files with their kind and size checked before anything is read.
//!
//! A directory, a device (`/dev/zero`), a pipe, or a file larger than its format can
//! need fails at once with a [`FileError`], instead of blocking or filling memory. Every
//! reader of the workspace (idx files, CSVs, images, checkpoints, weights, `config.json`)
//! goes through [`open_regular`] or [`read_capped`].

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The OS refused (missing file, no permission, read error).
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// The path is a directory, a device, a pipe or a socket.
    #[error("is {0}, not a regular file")]
    NotRegular(&'static str),
    /// The file is larger than this kind of file may be.
    #[error(
        "is {size} bytes, over the limit of {limit} bytes for this kind of file \
         (is it the right file?)"
    )]
    TooLarge {
        /// The file's size (or the bytes read before giving up).
        size: u64,
        /// The most accepted.
        limit: u64,
    },
}

impl FileError {
    /// This error as a [`crate::DatasetError`] naming `path`.
    pub fn at(self, path: &Path) -> crate::DatasetError {
        match self {
            FileError::Io(source) => crate::DatasetError::Io {
                path: path.to_path_buf(),
                source,
            },
            other => crate::DatasetError::File {
                path: path.to_path_buf(),
                source: other,
            },
        }
    }
}

/// What kind of non-regular file `meta` describes.
fn kind(meta: &std::fs::Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        return None;
    }
    if t.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() || t.is_block_device() {
            return Some("a device");
        }
        if t.is_fifo() {
            return Some("a pipe");
        }
        if t.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

/// Opens `path` for reading if it is a regular file, and returns it with its size.
///
/// The kind is checked before opening (opening a pipe would block) and again on the
/// open file.
pub fn open_regular(path: &Path) -> Result<(File, u64), FileError> {
    if let Some(k) = kind(&std::fs::metadata(path)?) {
        return Err(FileError::NotRegular(k));
    }
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if let Some(k) = kind(&meta) {
        return Err(FileError::NotRegular(k));
    }
    Ok((file, meta.len()))
}

/// Reads the whole of the regular file `path`, refusing one over `limit` bytes before
/// reading it (and one that grows past `limit` while it is read).
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let (file, size) = open_regular(path)?;
    if size > limit {
        return Err(FileError::TooLarge { size, limit });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_directories_and_large_files_are_refused_before_reading() {
        let err = read_capped(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(matches!(err, FileError::NotRegular("a device")), "{err}");
        assert_eq!(err.to_string(), "is a device, not a regular file");
        let err = read_capped(Path::new("/"), 1 << 20).unwrap_err();
        assert_eq!(err.to_string(), "is a directory, not a regular file");

        let path = std::env::temp_dir().join(format!("lstm-files-{}", std::process::id()));
        std::fs::write(&path, [7u8; 100]).unwrap();
        assert_eq!(read_capped(&path, 100).unwrap(), vec![7u8; 100]);
        let err = read_capped(&path, 99).unwrap_err();
        assert!(
            matches!(
                err,
                FileError::TooLarge {
                    size: 100,
                    limit: 99
                }
            ),
            "{err}"
        );
        std::fs::remove_file(&path).unwrap();
        let err = read_capped(&path, 99).unwrap_err();
        assert!(err.to_string().starts_with("cannot read: "), "{err}");
    }
}
