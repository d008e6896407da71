//! The idx format: headers checked, data read (raw or gzip) without ever holding more
//! than the header announces, images and labels validated.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::{
    IMAGE_MAGIC, IMAGE_SIDE, LABEL_MAGIC, MAX_IDX_PAYLOAD, MAX_TRAILING_COUNT, NUM_CLASSES,
};
use crate::error::DatasetError;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Upper bound on the capacity reserved from a gzip trailer's size hint.
const MAX_SIZE_HINT: usize = 256 << 20;
/// Deflate's largest expansion: a stored byte never decodes to more than
/// about 1032 bytes, so a valid stream is at most this times its length.
const MAX_DEFLATE_RATIO: usize = 1032;

/// The decoded content of an idx image file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image (always 28 after validation).
    pub rows: usize,
    /// Columns per image (always 28 after validation).
    pub cols: usize,
    /// `count * rows * cols` pixels, row-major, image after image.
    pub pixels: Vec<u8>,
}

/// The capacity to reserve for gunzipping `raw`: the gzip trailer's ISIZE
/// (uncompressed size mod 2^32), which is only a hint and an untrusted one.
///
/// It is capped by [`MAX_SIZE_HINT`] and by what `raw` could decompress to at
/// all, so that a few forged bytes cannot reserve 256 MiB (found by fuzzing).
fn gzip_size_hint(raw: &[u8]) -> usize {
    raw.len()
        .checked_sub(4)
        .and_then(|start| raw.get(start..))
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, |b| u32::from_le_bytes(b) as usize)
        .min(MAX_SIZE_HINT)
        .min(raw.len().saturating_mul(MAX_DEFLATE_RATIO))
}

/// Big-endian `u32` at `offset`, if the data is long enough.
fn be_u32(data: &[u8], offset: usize) -> Option<u32> {
    let end = offset.checked_add(4)?;
    let bytes = <[u8; 4]>::try_from(data.get(offset..end)?).ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// Checks the magic number and header length, returning the header's dims.
fn parse_header<const N: usize>(
    path: &Path,
    data: &[u8],
    magic: u32,
) -> Result<[usize; N], DatasetError> {
    let header_len = 4 * (N + 1);
    let truncated = || DatasetError::Truncated {
        path: path.to_path_buf(),
        expected_bytes: header_len as u64,
        found_bytes: data.len() as u64,
    };
    let found = be_u32(data, 0).ok_or_else(truncated)?;
    if found != magic {
        return Err(DatasetError::BadMagic {
            path: path.to_path_buf(),
            expected: magic,
            found,
        });
    }
    let mut dims = [0usize; N];
    for (i, dim) in dims.iter_mut().enumerate() {
        *dim = be_u32(data, 4 * (i + 1)).ok_or_else(truncated)? as usize;
    }
    Ok(dims)
}

/// Reads one idx file from `source` (raw, or gzip when it starts with the gzip magic;
/// several gzip members, as `cat a.gz b.gz` makes, are one stream), never holding more
/// than the header announces: the header is read and checked (`check_dims`) first, then
/// exactly the announced data, then trailing bytes are only counted (up to
/// [`MAX_TRAILING_COUNT`]). `capacity_hint` caps the memory reserved up front.
fn read_idx_into<const N: usize>(
    path: &Path,
    source: impl Read,
    magic: u32,
    capacity_hint: usize,
    check_dims: impl Fn(&[usize; N]) -> Result<(), DatasetError>,
) -> Result<([usize; N], Vec<u8>), DatasetError> {
    let empty = || DatasetError::Empty {
        path: path.to_path_buf(),
    };
    let mut buffered = BufReader::new(source);
    let start = buffered.fill_buf().map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if start.is_empty() {
        return Err(empty());
    }
    let gzip = start.starts_with(&GZIP_MAGIC);
    if gzip {
        read_idx_stream(
            path,
            MultiGzDecoder::new(buffered),
            true,
            magic,
            capacity_hint,
            check_dims,
        )
    } else {
        read_idx_stream(path, buffered, false, magic, capacity_hint, check_dims)
    }
}

/// The body of [`read_idx_into`], on the (decompressed) stream.
fn read_idx_stream<const N: usize>(
    path: &Path,
    mut reader: impl Read,
    gzip: bool,
    magic: u32,
    capacity_hint: usize,
    check_dims: impl Fn(&[usize; N]) -> Result<(), DatasetError>,
) -> Result<([usize; N], Vec<u8>), DatasetError> {
    let empty = || DatasetError::Empty {
        path: path.to_path_buf(),
    };
    let failed = |source: std::io::Error| {
        if gzip {
            DatasetError::Gzip {
                path: path.to_path_buf(),
                source,
            }
        } else {
            DatasetError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let header_len = 4 * (N + 1);
    let mut header = Vec::with_capacity(header_len);
    (&mut reader)
        .take(header_len as u64)
        .read_to_end(&mut header)
        .map_err(failed)?;
    if header.is_empty() {
        return Err(empty());
    }
    let dims = parse_header::<N>(path, &header, magic)?;
    check_dims(&dims)?;
    let announced = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .unwrap_or(u64::MAX);
    if announced > MAX_IDX_PAYLOAD {
        return Err(DatasetError::IdxTooLarge {
            path: path.to_path_buf(),
            announced,
            limit: MAX_IDX_PAYLOAD,
        });
    }
    let mut data = Vec::with_capacity((announced as usize).min(capacity_hint));
    (&mut reader)
        .take(announced)
        .read_to_end(&mut data)
        .map_err(failed)?;
    if (data.len() as u64) < announced {
        return Err(DatasetError::Truncated {
            path: path.to_path_buf(),
            expected_bytes: header_len as u64 + announced,
            found_bytes: (header_len + data.len()) as u64,
        });
    }
    let extra = std::io::copy(
        &mut (&mut reader).take(MAX_TRAILING_COUNT),
        &mut std::io::sink(),
    )
    .map_err(failed)?;
    if extra > 0 {
        return Err(DatasetError::TrailingBytes {
            path: path.to_path_buf(),
            extra,
        });
    }
    Ok((dims, data))
}

/// Rejects image dimensions other than 28x28.
fn check_image_dims(path: &Path, &[_, rows, cols]: &[usize; 3]) -> Result<(), DatasetError> {
    if rows != IMAGE_SIDE || cols != IMAGE_SIDE {
        return Err(DatasetError::BadDimensions {
            path: path.to_path_buf(),
            rows,
            cols,
        });
    }
    Ok(())
}

/// Rejects a label outside `0..=9`.
fn check_labels(path: &Path, labels: &[u8]) -> Result<(), DatasetError> {
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, &l)| usize::from(l) >= NUM_CLASSES)
    {
        return Err(DatasetError::LabelOutOfRange {
            path: path.to_path_buf(),
            index,
            label,
        });
    }
    Ok(())
}

/// Opens an idx file (a regular file), with a capacity hint from its size.
fn open_idx(path: &Path) -> Result<(fs::File, usize), DatasetError> {
    let (file, size) = crate::files::open_regular(path).map_err(|e| e.at(path))?;
    let hint = usize::try_from(size)
        .unwrap_or(usize::MAX)
        .saturating_mul(MAX_DEFLATE_RATIO)
        .min(MAX_SIZE_HINT);
    Ok((file, hint))
}

/// The hint for bytes already in memory: their length, or the gzip trailer's size.
fn bytes_hint(bytes: &[u8]) -> usize {
    if bytes.starts_with(&GZIP_MAGIC) {
        gzip_size_hint(bytes)
    } else {
        bytes.len()
    }
}

/// Images from a checked header and its data.
fn images_of([count, rows, cols]: [usize; 3], pixels: Vec<u8>) -> IdxImages {
    IdxImages {
        count,
        rows,
        cols,
        pixels,
    }
}

/// Reads an idx image file (raw or gzip), requiring 28x28 images.
///
/// A count of zero is accepted; zero or non-28 dimensions are not. The file is
/// streamed: memory never exceeds what its header announces (at most
/// [`MAX_IDX_PAYLOAD`]), whatever the file's size or compression ratio.
pub fn read_idx_images(path: &Path) -> Result<IdxImages, DatasetError> {
    let (file, hint) = open_idx(path)?;
    let (dims, pixels) =
        read_idx_into(path, file, IMAGE_MAGIC, hint, |d| check_image_dims(path, d))?;
    Ok(images_of(dims, pixels))
}

/// Parses the bytes of an idx image file (raw, or gzip when they start with
/// the gzip magic), requiring 28x28 images, exactly as [`read_idx_images`] does.
///
/// `path` only names the source in error messages; nothing is read from it.
pub fn parse_idx_images(path: &Path, bytes: Vec<u8>) -> Result<IdxImages, DatasetError> {
    let (dims, pixels) = read_idx_into(
        path,
        bytes.as_slice(),
        IMAGE_MAGIC,
        bytes_hint(&bytes),
        |d| check_image_dims(path, d),
    )?;
    Ok(images_of(dims, pixels))
}

/// Reads an idx label file (raw or gzip), requiring every label to be `0..=9`.
///
/// Streamed as [`read_idx_images`] is.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DatasetError> {
    let (file, hint) = open_idx(path)?;
    let (_, labels) = read_idx_into::<1>(path, file, LABEL_MAGIC, hint, |_| Ok(()))?;
    check_labels(path, &labels)?;
    Ok(labels)
}

/// Parses the bytes of an idx label file (raw, or gzip when they start with
/// the gzip magic), requiring every label to be `0..=9`, exactly as
/// [`read_idx_labels`] does.
///
/// `path` only names the source in error messages; nothing is read from it.
pub fn parse_idx_labels(path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>, DatasetError> {
    let (_, labels) = read_idx_into::<1>(
        path,
        bytes.as_slice(),
        LABEL_MAGIC,
        bytes_hint(&bytes),
        |_| Ok(()),
    )?;
    check_labels(path, &labels)?;
    Ok(labels)
}

#[cfg(test)]
mod tests;
