//! A single handwritten digit from an image file, made to look like an MNIST image.
//!
//! MNIST digits are white strokes on a black background, 28×28, grayscale. An image of
//! another size is padded to a square with its background colour and resized; colour is
//! turned to gray (transparent pixels count as background: white paper under dark ink,
//! black under light ink); a light background (dark ink on white paper) is inverted. The result is the 784 pixels, row by row.

use std::path::Path;

use image::imageops::FilterType;
use image::{GrayImage, Luma};

use crate::error::DatasetError;
use crate::mnist::IMAGE_SIDE;

/// Largest width or height accepted (larger files are rejected before decoding them).
pub const MAX_IMAGE_SIDE: u32 = 4096;

/// Largest image file accepted, in bytes (a 4096×4096 RGBA PNG stored without
/// compression is 64 MiB; a digit drawn by hand is a few KiB).
pub const MAX_IMAGE_FILE_BYTES: u64 = 64 << 20;

/// Most memory the decoder may allocate for one image.
const MAX_DECODE_BYTES: u64 = 256 << 20;

/// Reads a PNG (or another format the `image` crate was built with) and returns the
/// 28×28 MNIST-style pixels (white digit on black), row by row.
///
/// Errors, naming the file: [`DatasetError::Io`] (cannot read), [`DatasetError::File`]
/// (not a regular file, or over [`MAX_IMAGE_FILE_BYTES`]), [`DatasetError::Image`]
/// (not a decodable image, empty, or larger than [`MAX_IMAGE_SIDE`]).
pub fn read_digit_image(path: &Path) -> Result<Vec<u8>, DatasetError> {
    let bytes = crate::files::read_capped(path, MAX_IMAGE_FILE_BYTES).map_err(|e| e.at(path))?;
    digit_from_image_bytes(path, &bytes)
}

/// [`read_digit_image`] on bytes already in memory; `path` names them in errors.
///
/// The dimensions are read from the header and checked before anything is decoded,
/// and the decoder's allocations are capped.
pub fn digit_from_image_bytes(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, DatasetError> {
    let bad = |message: String| DatasetError::Image {
        path: path.to_path_buf(),
        message,
    };
    if bytes.is_empty() {
        return Err(bad("file is empty".into()));
    }
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| bad(format!("cannot read: {e}")))
    };
    let (width, height) = reader()?
        .into_dimensions()
        .map_err(|e| bad(format!("not a readable image (PNG expected): {e}")))?;
    if width == 0 || height == 0 {
        return Err(bad(format!("image is {width}×{height} pixels")));
    }
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(bad(format!(
            "image is {width}×{height} pixels; at most {MAX_IMAGE_SIDE} on a side is accepted"
        )));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let mut decoder = reader()?;
    decoder.limits(limits);
    let decoded = decoder
        .decode()
        .map_err(|e| bad(format!("not a readable image (PNG expected): {e}")))?;
    let rgba = decoded.to_rgba8();
    if rgba.dimensions() != (width, height) {
        return Err(bad(format!(
            "the header says {width}×{height} pixels but {}×{} were decoded",
            rgba.width(),
            rgba.height()
        )));
    }
    // Transparent areas become paper of the colour the ink is not: the ink is what is
    // opaque, so its mean luminance (alpha-weighted) says whether it is light or dark.
    let paper = paper_under_transparency(&rgba);
    let gray = GrayImage::from_fn(width, height, |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let alpha = f32::from(a) / 255.0;
        let value = luma(r, g, b) * alpha + paper * (1.0 - alpha);
        Luma([(value * 255.0).round() as u8])
    });
    // The border's mean tells the background: light paper gets inverted.
    let background = border_mean(&gray);
    let light = background > 127.0;
    let ink = |v: u8| if light { 255 - v } else { v };
    let side = width.max(height);
    let fill = ink(background.round() as u8);
    let mut square = GrayImage::from_pixel(side, side, Luma([fill]));
    let (dx, dy) = ((side - width) / 2, (side - height) / 2);
    for (x, y, p) in gray.enumerate_pixels() {
        square.put_pixel(x + dx, y + dy, Luma([ink(p.0[0])]));
    }
    let target = IMAGE_SIDE as u32;
    let resized = if side == target {
        square
    } else {
        image::imageops::resize(&square, target, target, FilterType::Triangle)
    };
    Ok(resized.into_raw())
}

/// Luminance of a colour, in `[0, 1]`.
fn luma(r: u8, g: u8, b: u8) -> f32 {
    (0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)) / 255.0
}

/// The paper colour (0 black, 1 white) that transparent pixels are composited onto:
/// white under dark ink, black under light ink (white ink on a transparent background
/// would otherwise vanish into white paper). An opaque image is not affected.
fn paper_under_transparency(rgba: &image::RgbaImage) -> f32 {
    let (mut weight, mut light) = (0f64, 0f64);
    for p in rgba.pixels() {
        let [r, g, b, a] = p.0;
        let alpha = f64::from(a) / 255.0;
        weight += alpha;
        light += alpha * f64::from(luma(r, g, b));
    }
    if weight > 0.0 && light / weight > 0.5 {
        0.0
    } else {
        1.0
    }
}

/// Mean value of the outermost pixels.
fn border_mean(img: &GrayImage) -> f32 {
    let (w, h) = img.dimensions();
    let (mut sum, mut n) = (0f64, 0u64);
    for (x, y, p) in img.enumerate_pixels() {
        if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
            sum += f64::from(p.0[0]);
            n += 1;
        }
    }
    (sum / n.max(1) as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(img: &image::DynamicImage) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    /// A 28×28 "digit": a bright vertical bar on black.
    fn bar() -> GrayImage {
        GrayImage::from_fn(28, 28, |x, y| {
            Luma([if (12..16).contains(&x) && (4..24).contains(&y) {
                255
            } else {
                0
            }])
        })
    }

    #[test]
    fn an_mnist_style_png_comes_back_unchanged() {
        let img = bar();
        let got = digit_from_image_bytes(Path::new("d.png"), &png(&img.clone().into())).unwrap();
        assert_eq!(got, img.into_raw());
    }

    #[test]
    fn dark_ink_on_white_rgb_and_larger_sizes_are_converted() {
        let img = bar();
        let inverted_rgb = image::RgbImage::from_fn(56, 56, |x, y| {
            let v = 255 - img.get_pixel(x / 2, y / 2).0[0];
            image::Rgb([v, v, v])
        });
        let got = digit_from_image_bytes(Path::new("d.png"), &png(&inverted_rgb.into())).unwrap();
        assert_eq!(got.len(), 784);
        let want = img.into_raw();
        let diff: u32 = got
            .iter()
            .zip(&want)
            .map(|(&a, &b)| u32::from(a.abs_diff(b)))
            .sum();
        // The bar's edges blur a little in the resize; the rest matches.
        assert!(diff < 784 * 20, "total difference {diff}");
        assert!(got[14 * 28 + 13] > 200 && got[14 * 28 + 2] < 30);
    }

    #[test]
    fn transparent_background_counts_as_paper() {
        let rgba = image::RgbaImage::from_fn(28, 28, |x, _| {
            if (12..16).contains(&x) {
                image::Rgba([0, 0, 0, 255])
            } else {
                image::Rgba([0, 0, 0, 0])
            }
        });
        let got = digit_from_image_bytes(Path::new("t.png"), &png(&rgba.into())).unwrap();
        assert_eq!(got[13], 255);
        assert_eq!(got[0], 0);
    }

    #[test]
    fn white_ink_on_transparency_reads_as_the_same_digit() {
        let img = bar();
        let rgba = image::RgbaImage::from_fn(28, 28, |x, y| {
            let v = img.get_pixel(x, y).0[0];
            image::Rgba([255, 255, 255, v])
        });
        let got = digit_from_image_bytes(Path::new("w.png"), &png(&rgba.into())).unwrap();
        assert_eq!(got, img.into_raw());
    }

    #[test]
    fn garbage_and_empty_files_are_errors_naming_the_file() {
        for bytes in [
            &b""[..],
            b"not an image at all",
            &[0x89, b'P', b'N', b'G', 0, 0],
        ] {
            let err = digit_from_image_bytes(Path::new("bad.png"), bytes)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("bad.png: "), "{err}");
        }
        let err = read_digit_image(Path::new("/nonexistent/d.png"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/d.png"), "{err}");
    }
}
