//! Reading MNIST from idx files (raw or gzip-compressed) into candle tensors.
//!
//! The idx format is a big-endian header (magic number, then one `u32` per
//! dimension) followed by the raw `u8` data. Images use magic 2051
//! (`0x00000803`, dims `count, rows, cols`), labels use magic 2049
//! (`0x00000801`, dim `count`). Every check names the file it rejects.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use flate2::read::MultiGzDecoder;

use crate::error::DatasetError;

/// Magic number of an idx image file (`0x00000803`).
pub const IMAGE_MAGIC: u32 = 0x0000_0803;
/// Magic number of an idx label file (`0x00000801`).
pub const LABEL_MAGIC: u32 = 0x0000_0801;
/// Height and width of an MNIST image, in pixels.
pub const IMAGE_SIDE: usize = 28;
/// Number of digit classes (labels are `0..=9`).
pub const NUM_CLASSES: usize = 10;

/// Canonical name of the training image file.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// Canonical name of the training label file.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// Canonical name of the test image file.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// Canonical name of the test label file.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// Mean subtracted after scaling pixels to `[0, 1]`.
const PIXEL_MEAN: f32 = 0.5;
/// Standard deviation divided out after subtracting the mean.
const PIXEL_STD: f32 = 1.0;

pub use crate::error::{MAX_IDX_PAYLOAD, MAX_TRAILING_COUNT};
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

/// The textbook's transform: `x / 255`, then `(x - 0.5) / 1.0`, giving `[-0.5, 0.5]`.
pub fn normalize_pixels(pixels: &[u8]) -> Vec<f32> {
    pixels
        .iter()
        .map(|&p| (f32::from(p) / 255.0 - PIXEL_MEAN) / PIXEL_STD)
        .collect()
}

/// One split of MNIST as CPU tensors.
#[derive(Clone, Debug)]
pub struct MnistSplit {
    /// Normalised images, shape `(N, 28, 28)`, dtype `f32`.
    pub images: Tensor,
    /// Digit labels, shape `(N,)`, dtype `u32`.
    pub labels: Tensor,
}

impl MnistSplit {
    /// Builds a split from raw pixels (`N * 784` bytes) and `N` labels.
    fn from_raw(pixels: &[u8], labels: &[u8]) -> Result<Self, DatasetError> {
        let n = labels.len();
        let images = Tensor::from_vec(
            normalize_pixels(pixels),
            (n, IMAGE_SIDE, IMAGE_SIDE),
            &Device::Cpu,
        )?;
        let labels = Tensor::from_vec(
            labels.iter().map(|&l| u32::from(l)).collect::<Vec<u32>>(),
            n,
            &Device::Cpu,
        )?;
        Ok(Self { images, labels })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.elem_count()
    }

    /// Whether the split holds no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Gathers the given rows: images `(B, 28, 28)` and labels `(B,)`.
    ///
    /// Any index `>= len()` is rejected with [`DatasetError::InvalidSplit`].
    pub fn batch(&self, indices: &[u32]) -> Result<(Tensor, Tensor), DatasetError> {
        let len = self.len();
        if let Some(&bad) = indices.iter().find(|&&i| i as usize >= len) {
            return Err(DatasetError::InvalidSplit {
                message: format!("batch index {bad} is out of range for a split of {len} examples"),
            });
        }
        let ids = Tensor::from_slice(indices, indices.len(), self.labels.device())?;
        let images = self.images.index_select(&ids, 0)?;
        let labels = self.labels.index_select(&ids, 0)?;
        Ok((images, labels))
    }

    /// The first `n` examples (all of them when `n >= len()`).
    pub fn take(&self, n: usize) -> Result<MnistSplit, DatasetError> {
        let n = n.min(self.len());
        Ok(Self {
            images: self.images.narrow(0, 0, n)?,
            labels: self.labels.narrow(0, 0, n)?,
        })
    }
}

/// Which split to evaluate on during training.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ValidationSource {
    /// The held-out tail of the training file ([`Mnist::validation`]).
    #[default]
    HeldOut,
    /// The test file ([`Mnist::test`]), as the textbook does.
    Test,
}

/// How to split and trim MNIST when loading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MnistOptions {
    /// Images taken from the end of the training file for validation (0 = none).
    pub validation_size: usize,
    /// Keep only the first N remaining training examples.
    pub train_limit: Option<usize>,
    /// Keep only the first N test examples.
    pub test_limit: Option<usize>,
}

impl Default for MnistOptions {
    /// 5000 validation images, no limits.
    fn default() -> Self {
        Self {
            validation_size: 5000,
            train_limit: None,
            test_limit: None,
        }
    }
}

/// MNIST loaded into CPU tensors.
#[derive(Clone, Debug)]
pub struct Mnist {
    /// Training examples (the training file minus the validation tail).
    pub train: MnistSplit,
    /// The last `validation_size` images of the training file, if any.
    pub validation: Option<MnistSplit>,
    /// The test file.
    pub test: MnistSplit,
}

impl Mnist {
    /// The split selected by `source`; an error if `HeldOut` was requested but none was loaded.
    pub fn validation_split(&self, source: ValidationSource) -> Result<&MnistSplit, DatasetError> {
        match source {
            ValidationSource::Test => Ok(&self.test),
            ValidationSource::HeldOut => {
                self.validation
                    .as_ref()
                    .ok_or_else(|| DatasetError::InvalidSplit {
                        message: "no held-out validation split was loaded (validation_size = 0)"
                            .into(),
                    })
            }
        }
    }
}

/// Finds `name`, or failing that `name.gz`, in `dir` (the uncompressed file wins).
fn find_file(dir: &Path, name: &str) -> Result<PathBuf, DatasetError> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DatasetError::MissingFile {
        dir: dir.to_path_buf(),
        name: name.to_string(),
    })
}

/// Reads an image/label file pair and checks that their counts agree.
fn read_pair(images_path: &Path, labels_path: &Path) -> Result<(IdxImages, Vec<u8>), DatasetError> {
    let images = read_idx_images(images_path)?;
    let labels = read_idx_labels(labels_path)?;
    if images.count != labels.len() {
        return Err(DatasetError::CountMismatch {
            images_path: images_path.to_path_buf(),
            images: images.count,
            labels_path: labels_path.to_path_buf(),
            labels: labels.len(),
        });
    }
    Ok((images, labels))
}

/// Loads the four canonical MNIST files (each as `name` or `name.gz`) from `dir`.
///
/// Validation is the last `validation_size` images of the training file and
/// train is the rest; `train_limit` and `test_limit` then keep the first N
/// examples of train and test. All tensors live on [`Device::Cpu`].
pub fn load_mnist(dir: &Path, opts: &MnistOptions) -> Result<Mnist, DatasetError> {
    if !dir.is_dir() {
        return Err(DatasetError::MissingDir {
            dir: dir.to_path_buf(),
        });
    }
    // Locate everything before the (slow) decoding, so a missing file fails fast.
    let train_images_path = find_file(dir, TRAIN_IMAGES)?;
    let train_labels_path = find_file(dir, TRAIN_LABELS)?;
    let test_images_path = find_file(dir, TEST_IMAGES)?;
    let test_labels_path = find_file(dir, TEST_LABELS)?;

    let (train_images, train_labels) = read_pair(&train_images_path, &train_labels_path)?;
    let (test_images, test_labels) = read_pair(&test_images_path, &test_labels_path)?;
    Mnist::from_raw(
        (&train_images.pixels, &train_labels),
        (&test_images.pixels, &test_labels),
        opts,
        &train_images_path.display().to_string(),
    )
}

impl Mnist {
    /// Splits and trims raw MNIST, `(pixels, labels)` per file: `N * 784` pixel bytes
    /// (row-major 28x28 images, `0..=255`) and `N` labels (`0..=9`, checked by the caller).
    ///
    /// Validation is the last `validation_size` training images and train is the rest;
    /// `train_limit` and `test_limit` then keep the first N examples of train and test.
    /// `origin` names the training data in error messages. Every loader ends here, so
    /// they all split the same way.
    pub(crate) fn from_raw(
        (train_pixels, train_labels): (&[u8], &[u8]),
        (test_pixels, test_labels): (&[u8], &[u8]),
        opts: &MnistOptions,
        origin: &str,
    ) -> Result<Self, DatasetError> {
        let pixels_per_image = IMAGE_SIDE * IMAGE_SIDE;
        for (name, pixels, labels) in [
            ("training", train_pixels, train_labels),
            ("test", test_pixels, test_labels),
        ] {
            if pixels.len() != labels.len() * pixels_per_image {
                return Err(DatasetError::InvalidSplit {
                    message: format!(
                        "{origin}: {} {name} pixel bytes for {} labels (expected {} per image)",
                        pixels.len(),
                        labels.len(),
                        pixels_per_image
                    ),
                });
            }
        }
        let total = train_labels.len();
        if opts.validation_size > 0 && opts.validation_size >= total {
            return Err(DatasetError::InvalidSplit {
                message: format!(
                    "validation size {} must be smaller than the {total} training examples in {origin}",
                    opts.validation_size,
                ),
            });
        }
        let split_at = total - opts.validation_size;
        let train_n = opts.train_limit.map_or(split_at, |l| l.min(split_at));
        let train = MnistSplit::from_raw(
            &train_pixels[..train_n * pixels_per_image],
            &train_labels[..train_n],
        )?;
        let validation = if opts.validation_size == 0 {
            None
        } else {
            Some(MnistSplit::from_raw(
                &train_pixels[split_at * pixels_per_image..],
                &train_labels[split_at..],
            )?)
        };
        let test_n = opts
            .test_limit
            .map_or(test_labels.len(), |l| l.min(test_labels.len()));
        if test_n == 0 {
            return Err(DatasetError::InvalidSplit {
                message: format!(
                    "no test images to evaluate: the test set beside {origin} holds {} \
                     images and the test limit is {} (it must be at least 1)",
                    test_labels.len(),
                    opts.test_limit
                        .map_or_else(|| "not set".to_string(), |l| l.to_string()),
                ),
            });
        }
        let test = MnistSplit::from_raw(
            &test_pixels[..test_n * pixels_per_image],
            &test_labels[..test_n],
        )?;
        Ok(Self {
            train,
            validation,
            test,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A unique scratch directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!(
                "lstm-datasets-test-{}-{tag}-{n}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("create temp dir");
            Self(dir)
        }

        fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
            let path = self.0.join(name);
            fs::write(&path, bytes).expect("write temp file");
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn image_bytes(count: u32, rows: u32, cols: u32, pixel: impl Fn(usize) -> u8) -> Vec<u8> {
        let mut out = Vec::new();
        for v in [IMAGE_MAGIC, count, rows, cols] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        let n = count as usize * rows as usize * cols as usize;
        out.extend((0..n).map(pixel));
        out
    }

    /// Image `i` is filled with the value `i * 10`, except pixel 0 which is 255.
    fn patterned_images(count: u32) -> Vec<u8> {
        image_bytes(count, 28, 28, |k| {
            if k % 784 == 0 {
                255
            } else {
                ((k / 784) * 10) as u8
            }
        })
    }

    fn label_bytes(labels: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&LABEL_MAGIC.to_be_bytes());
        out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        out.extend_from_slice(labels);
        out
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).expect("gzip write");
        enc.finish().expect("gzip finish")
    }

    /// Writes a complete synthetic MNIST directory (train gzipped, test raw).
    fn write_mnist(dir: &TempDir, train_labels: &[u8], test_labels: &[u8]) {
        dir.write(
            &format!("{TRAIN_IMAGES}.gz"),
            &gz(&patterned_images(train_labels.len() as u32)),
        );
        dir.write(
            &format!("{TRAIN_LABELS}.gz"),
            &gz(&label_bytes(train_labels)),
        );
        dir.write(TEST_IMAGES, &patterned_images(test_labels.len() as u32));
        dir.write(TEST_LABELS, &label_bytes(test_labels));
    }

    #[test]
    fn raw_and_gz_parse_identically() {
        let dir = TempDir::new("rawgz");
        let images = patterned_images(3);
        let labels = label_bytes(&[7, 0, 9]);
        let raw_i = read_idx_images(&dir.write("i.idx", &images)).unwrap();
        let gz_i = read_idx_images(&dir.write("i.idx.gz", &gz(&images))).unwrap();
        assert_eq!(raw_i, gz_i);
        assert_eq!((raw_i.count, raw_i.rows, raw_i.cols), (3, 28, 28));
        assert_eq!(raw_i.pixels.len(), 3 * 784);
        assert_eq!(raw_i.pixels[0], 255);
        assert_eq!(raw_i.pixels[1], 0);
        assert_eq!(raw_i.pixels[784 + 1], 10);
        assert_eq!(raw_i.pixels[2 * 784 + 5], 20);

        let raw_l = read_idx_labels(&dir.write("l.idx", &labels)).unwrap();
        let gz_l = read_idx_labels(&dir.write("l.idx.gz", &gz(&labels))).unwrap();
        assert_eq!(raw_l, vec![7, 0, 9]);
        assert_eq!(raw_l, gz_l);
    }

    #[test]
    fn zero_count_is_accepted() {
        let dir = TempDir::new("zero");
        let images = read_idx_images(&dir.write("i", &image_bytes(0, 28, 28, |_| 0))).unwrap();
        assert_eq!((images.count, images.pixels.len()), (0, 0));
        assert_eq!(
            read_idx_labels(&dir.write("l", &label_bytes(&[]))).unwrap(),
            Vec::<u8>::new()
        );
    }

    #[test]
    fn wrong_magic_is_bad_magic() {
        let dir = TempDir::new("magic");
        // A label file read as images, and vice versa.
        let path = dir.write("l", &label_bytes(&[1, 2]));
        match read_idx_images(&path) {
            Err(DatasetError::BadMagic {
                path: p,
                expected,
                found,
            }) => {
                assert_eq!(p, path);
                assert_eq!((expected, found), (2051, 2049));
            }
            other => panic!("expected BadMagic, got {other:?}"),
        }
        let path = dir.write("i", &patterned_images(1));
        let err = read_idx_labels(&path).unwrap_err();
        assert!(
            matches!(
                err,
                DatasetError::BadMagic {
                    expected: 2049,
                    found: 2051,
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        assert!(msg.contains("0x00000803"), "{msg}");
    }

    #[test]
    fn truncated_data_is_truncated() {
        let dir = TempDir::new("trunc");
        let mut images = patterned_images(2);
        images.truncate(16 + 784 + 100);
        let path = dir.write("i", &images);
        let err = read_idx_images(&path).unwrap_err();
        match &err {
            DatasetError::Truncated {
                path: p,
                expected_bytes,
                found_bytes,
            } => {
                assert_eq!(p, &path);
                assert_eq!(
                    (*expected_bytes, *found_bytes),
                    (16 + 2 * 784, 16 + 784 + 100)
                );
            }
            other => panic!("expected Truncated, got {other:?}"),
        }
        assert!(err.to_string().starts_with(&path.display().to_string()));

        let mut labels = label_bytes(&[1, 2, 3]);
        labels.pop();
        let err = read_idx_labels(&dir.write("l", &labels)).unwrap_err();
        assert!(
            matches!(
                err,
                DatasetError::Truncated {
                    expected_bytes: 11,
                    found_bytes: 10,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn truncated_header_is_truncated() {
        let dir = TempDir::new("header");
        let images = patterned_images(1);
        let err = read_idx_images(&dir.write("i", &images[..10])).unwrap_err();
        assert!(
            matches!(
                err,
                DatasetError::Truncated {
                    expected_bytes: 16,
                    found_bytes: 10,
                    ..
                }
            ),
            "{err:?}"
        );
        // Too short even for the magic number.
        let err = read_idx_images(&dir.write("i3", &images[..3])).unwrap_err();
        assert!(
            matches!(
                err,
                DatasetError::Truncated {
                    expected_bytes: 16,
                    found_bytes: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        let labels = label_bytes(&[1]);
        let err = read_idx_labels(&dir.write("l", &labels[..5])).unwrap_err();
        assert!(
            matches!(
                err,
                DatasetError::Truncated {
                    expected_bytes: 8,
                    found_bytes: 5,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let dir = TempDir::new("trail");
        let mut images = patterned_images(1);
        images.extend_from_slice(&[1, 2, 3]);
        let path = dir.write("i.gz", &gz(&images));
        match read_idx_images(&path) {
            Err(DatasetError::TrailingBytes { path: p, extra }) => {
                assert_eq!(p, path);
                assert_eq!(extra, 3);
            }
            other => panic!("expected TrailingBytes, got {other:?}"),
        }
        let mut labels = label_bytes(&[4]);
        labels.push(5);
        let err = read_idx_labels(&dir.write("l", &labels)).unwrap_err();
        assert!(
            matches!(err, DatasetError::TrailingBytes { extra: 1, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn bad_dimensions_are_rejected() {
        let dir = TempDir::new("dims");
        let err = read_idx_images(&dir.write("a", &image_bytes(2, 27, 28, |_| 0))).unwrap_err();
        assert!(
            matches!(
                err,
                DatasetError::BadDimensions {
                    rows: 27,
                    cols: 28,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = read_idx_images(&dir.write("b", &image_bytes(2, 0, 0, |_| 0))).unwrap_err();
        assert!(
            matches!(
                err,
                DatasetError::BadDimensions {
                    rows: 0,
                    cols: 0,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("0x0"), "{err}");
    }

    #[test]
    fn label_out_of_range_names_index() {
        let dir = TempDir::new("label");
        let path = dir.write("train-labels-idx1-ubyte", &label_bytes(&[0, 9, 10, 3]));
        let err = read_idx_labels(&path).unwrap_err();
        match &err {
            DatasetError::LabelOutOfRange {
                path: p,
                index,
                label,
            } => {
                assert_eq!(p, &path);
                assert_eq!((*index, *label), (2, 10));
            }
            other => panic!("expected LabelOutOfRange, got {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            format!(
                "{}: label 10 at index 2 is out of range 0..=9",
                path.display()
            )
        );
    }

    #[test]
    fn corrupt_gzip_is_gzip_error() {
        let dir = TempDir::new("gzip");
        // A valid 10-byte gzip header (deflate, no flags) followed by garbage.
        let mut bad = vec![0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff];
        bad.extend_from_slice(&[0xff; 64]);
        let path = dir.write("garbage.gz", &bad);
        match read_idx_images(&path) {
            Err(DatasetError::Gzip { path: p, .. }) => assert_eq!(p, path),
            other => panic!("expected Gzip, got {other:?}"),
        }

        // A valid stream cut in half.
        let full = gz(&patterned_images(4));
        let path = dir.write("half.gz", &full[..full.len() / 2]);
        let err = read_idx_images(&path).unwrap_err();
        assert!(matches!(err, DatasetError::Gzip { .. }), "{err:?}");
        assert!(err.to_string().starts_with(&path.display().to_string()));

        // Only the trailer is missing.
        let full = gz(&label_bytes(&[1, 2, 3]));
        let path = dir.write("notrailer.gz", &full[..full.len() - 8]);
        let err = read_idx_labels(&path).unwrap_err();
        assert!(matches!(err, DatasetError::Gzip { .. }), "{err:?}");
    }

    #[test]
    fn gzip_size_hint_is_bounded_by_the_input() {
        // A real stream: the hint is its exact uncompressed size.
        let images = patterned_images(3);
        assert_eq!(gzip_size_hint(&gz(&images)), images.len());
        // 30 bytes whose trailer claims 4 GiB - 1: capped by deflate's ratio.
        let mut forged = vec![0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff];
        forged.extend_from_slice(&[0; 16]);
        forged.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(gzip_size_hint(&forged), 30 * MAX_DEFLATE_RATIO);
        // A large input is still capped at MAX_SIZE_HINT.
        let mut big = vec![0u8; 1 << 20];
        big[(1 << 20) - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(gzip_size_hint(&big), MAX_SIZE_HINT);
        assert_eq!(gzip_size_hint(&[0x1f, 0x8b]), 0);
        // The forged stream itself is a typed error naming the path.
        let err = parse_idx_images(Path::new("forged.gz"), forged).unwrap_err();
        assert!(err.to_string().starts_with("forged.gz: "), "{err}");
    }

    #[test]
    fn empty_file_is_empty() {
        let dir = TempDir::new("empty");
        let path = dir.write("e", &[]);
        match read_idx_labels(&path) {
            Err(DatasetError::Empty { path: p }) => assert_eq!(p, path),
            other => panic!("expected Empty, got {other:?}"),
        }
        // A gzip stream of nothing is just as empty.
        let path = dir.write("e.gz", &gz(&[]));
        let err = read_idx_images(&path).unwrap_err();
        assert!(matches!(err, DatasetError::Empty { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("{}: file is empty", path.display())
        );
    }

    #[test]
    fn unreadable_file_is_io() {
        let dir = TempDir::new("io");
        let path = dir.0.join("nope");
        let err = read_idx_images(&path).unwrap_err();
        assert!(
            matches!(&err, DatasetError::Io { path: p, source } if p == &path
                && source.kind() == std::io::ErrorKind::NotFound),
            "{err:?}"
        );
        assert!(err
            .to_string()
            .starts_with(&format!("{}: cannot read", path.display())));
    }

    #[test]
    fn missing_file_and_dir() {
        let dir = TempDir::new("missing");
        write_mnist(&dir, &[1, 2, 3], &[4, 5]);
        fs::remove_file(dir.0.join(TEST_LABELS)).unwrap();
        let err = load_mnist(&dir.0, &MnistOptions::default()).unwrap_err();
        match &err {
            DatasetError::MissingFile { dir: d, name } => {
                assert_eq!(d, &dir.0);
                assert_eq!(name, TEST_LABELS);
            }
            other => panic!("expected MissingFile, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.starts_with(&dir.0.display().to_string()), "{msg}");
        assert!(msg.contains("t10k-labels-idx1-ubyte.gz"), "{msg}");

        let gone = dir.0.join("does-not-exist");
        let err = load_mnist(&gone, &MnistOptions::default()).unwrap_err();
        assert!(
            matches!(&err, DatasetError::MissingDir { dir: d } if d == &gone),
            "{err:?}"
        );
        assert!(err.to_string().starts_with(&gone.display().to_string()));
        assert!(err.to_string().contains("does not exist"));
    }

    #[test]
    fn count_mismatch_via_load_mnist() {
        let dir = TempDir::new("count");
        write_mnist(&dir, &[1, 2, 3], &[4, 5]);
        // Test file: 3 images but only 2 labels.
        let images_path = dir.write(TEST_IMAGES, &patterned_images(3));
        let err = load_mnist(
            &dir.0,
            &MnistOptions {
                validation_size: 1,
                ..MnistOptions::default()
            },
        )
        .unwrap_err();
        match &err {
            DatasetError::CountMismatch {
                images_path: ip,
                images,
                labels_path,
                labels,
            } => {
                assert_eq!(ip, &images_path);
                assert_eq!(labels_path, &dir.0.join(TEST_LABELS));
                assert_eq!((*images, *labels), (3, 2));
            }
            other => panic!("expected CountMismatch, got {other:?}"),
        }
        assert!(err
            .to_string()
            .starts_with(&images_path.display().to_string()));
    }

    #[test]
    fn load_mnist_splits_and_limits() {
        let dir = TempDir::new("split");
        let train_labels: Vec<u8> = (0..10).collect();
        write_mnist(&dir, &train_labels, &[9, 8, 7, 6]);
        let opts = MnistOptions {
            validation_size: 3,
            train_limit: Some(4),
            test_limit: Some(2),
        };
        let m = load_mnist(&dir.0, &opts).unwrap();
        assert_eq!(m.train.len(), 4);
        assert_eq!(m.train.labels.to_vec1::<u32>().unwrap(), vec![0, 1, 2, 3]);
        let val = m.validation.as_ref().expect("validation split");
        assert_eq!(val.labels.to_vec1::<u32>().unwrap(), vec![7, 8, 9]);
        assert_eq!(m.test.labels.to_vec1::<u32>().unwrap(), vec![9, 8]);
        assert_eq!(m.train.images.dims(), &[4, 28, 28]);
        assert_eq!(val.images.dims(), &[3, 28, 28]);
        assert_eq!(m.test.images.dtype(), candle_core::DType::F32);
        assert_eq!(m.test.labels.dtype(), candle_core::DType::U32);
        // Validation image 0 is training image 7: pixel 0 = 255, others 70.
        let v0 = val
            .images
            .get(0)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(v0[0], 0.5);
        assert!((v0[1] - (70.0 / 255.0 - 0.5)).abs() < 1e-6, "{}", v0[1]);
        assert!(!m.train.is_empty());

        let (bi, bl) = m.train.batch(&[3, 0, 3]).unwrap();
        assert_eq!(bi.dims(), &[3, 28, 28]);
        assert_eq!(bl.to_vec1::<u32>().unwrap(), vec![3, 0, 3]);
        let p = bi.get(0).unwrap().get(0).unwrap().to_vec1::<f32>().unwrap();
        assert!((p[1] - (30.0 / 255.0 - 0.5)).abs() < 1e-6, "{}", p[1]);
        let err = m.train.batch(&[4]).unwrap_err();
        assert!(matches!(err, DatasetError::InvalidSplit { .. }), "{err:?}");

        let t = m.test.take(1).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t.images.dims(), &[1, 28, 28]);
        assert_eq!(t.labels.to_vec1::<u32>().unwrap(), vec![9]);
        assert_eq!(m.test.take(100).unwrap().len(), 2);
        assert!(m.test.take(0).unwrap().is_empty());

        assert_eq!(
            m.validation_split(ValidationSource::HeldOut).unwrap().len(),
            3
        );
        assert_eq!(m.validation_split(ValidationSource::Test).unwrap().len(), 2);

        // No validation split, no limits.
        let m = load_mnist(
            &dir.0,
            &MnistOptions {
                validation_size: 0,
                ..MnistOptions::default()
            },
        )
        .unwrap();
        assert!(m.validation.is_none());
        assert_eq!((m.train.len(), m.test.len()), (10, 4));
        let err = m.validation_split(ValidationSource::HeldOut).unwrap_err();
        assert!(matches!(err, DatasetError::InvalidSplit { .. }), "{err:?}");
    }

    #[test]
    fn validation_too_large_is_invalid_split() {
        let dir = TempDir::new("valsize");
        write_mnist(&dir, &[1, 2, 3], &[4]);
        for size in [3, 4] {
            let opts = MnistOptions {
                validation_size: size,
                ..MnistOptions::default()
            };
            let err = load_mnist(&dir.0, &opts).unwrap_err();
            assert!(matches!(err, DatasetError::InvalidSplit { .. }), "{err:?}");
        }
    }

    #[test]
    fn normalize_matches_textbook() {
        assert_eq!(normalize_pixels(&[0, 255]), vec![-0.5, 0.5]);
        let mid = normalize_pixels(&[51])[0];
        assert!((mid - (0.2 - 0.5)).abs() < 1e-6, "{mid}");
        assert!(normalize_pixels(&[]).is_empty());
    }

    #[test]
    fn real_mnist() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/mnist"));
        let start = std::time::Instant::now();
        let m = load_mnist(dir, &MnistOptions::default()).unwrap();
        let elapsed = start.elapsed();
        let val = m.validation.as_ref().expect("validation split");
        assert_eq!(
            (m.train.len(), val.len(), m.test.len()),
            (55_000, 5_000, 10_000)
        );
        assert_eq!(m.train.images.dims(), &[55_000, 28, 28]);
        assert_eq!(val.images.dims(), &[5_000, 28, 28]);
        assert_eq!(m.test.images.dims(), &[10_000, 28, 28]);
        assert_eq!(
            m.train.labels.get(0).unwrap().to_scalar::<u32>().unwrap(),
            5
        );
        assert_eq!(m.test.labels.get(0).unwrap().to_scalar::<u32>().unwrap(), 7);
        for split in [&m.train, val, &m.test] {
            let min = split.images.flatten_all().unwrap().min(0).unwrap();
            let max = split.images.flatten_all().unwrap().max(0).unwrap();
            assert_eq!(min.to_scalar::<f32>().unwrap(), -0.5);
            assert_eq!(max.to_scalar::<f32>().unwrap(), 0.5);
            let labels = split.labels.to_vec1::<u32>().unwrap();
            assert!(labels.iter().all(|&l| l <= 9));
        }
        eprintln!("load_mnist took {elapsed:?}");
        // Typically ~0.5 s in release; the bound leaves room for a busy machine.
        assert!(elapsed.as_secs_f64() < 5.0, "load_mnist took {elapsed:?}");
    }
}
