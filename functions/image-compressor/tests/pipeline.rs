//! The pure pipeline on the real test images in `testdata/` (see testdata/SOURCES.md).

use domain::image::parse_variants;
use image::ImageEncoder;
use image_compressor::pipeline::{
    compress_image, ColourHandling, Compressed, ImageError, Optimize, PipelineConfig,
};

fn config() -> PipelineConfig {
    PipelineConfig {
        variants: parse_variants("thumbnail:150,small:300,medium:600,large:1200").unwrap(),
        optimize: image_compressor::pipeline::Optimize::Speed,
        webp_quality: None,
        avif_quality: None,
        ..PipelineConfig::default()
    }
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/testdata/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn run(path: &str) -> Result<Compressed, ImageError> {
    compress_image(&read(path), &config())
}

/// (component count, width, height) from a JPEG's frame header.
fn jpeg_frame(jpeg: &[u8]) -> (u8, u16, u16) {
    let at = jpeg
        .windows(2)
        .position(|w| w[0] == 0xFF && (w[1] == 0xC0 || w[1] == 0xC2))
        .unwrap();
    let h = u16::from_be_bytes([jpeg[at + 5], jpeg[at + 6]]);
    let w = u16::from_be_bytes([jpeg[at + 7], jpeg[at + 8]]);
    (jpeg[at + 9], w, h)
}

#[test]
fn every_good_image_gives_every_variant_with_the_right_size() {
    let dir = format!("{}/testdata/good", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 18);
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let out = compress_image(&std::fs::read(&path).unwrap(), &config())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out.variants.len(), 4, "{name}");
        for (variant, max_edge) in out.variants.iter().zip([150, 300, 600, 1200]) {
            let expected = domain::image::fit_within(out.width, out.height, max_edge);
            assert_eq!(
                (variant.width, variant.height),
                expected,
                "{name} {}",
                variant.name
            );
            let (_, w, h) = jpeg_frame(&variant.jpeg);
            assert_eq!(
                (u32::from(w), u32::from(h)),
                expected,
                "{name}: the JPEG says what we say"
            );
            assert!(
                variant.jpeg.starts_with(&[0xFF, 0xD8]) && variant.jpeg.ends_with(&[0xFF, 0xD9])
            );
            image::load_from_memory(&variant.jpeg)
                .unwrap_or_else(|e| panic!("{name}: output does not decode: {e}"));
        }
    }
}

#[test]
fn exif_orientation_is_applied_and_no_metadata_survives() {
    let source = read("good/storm-exif-orientation6-gps.jpg");
    assert!(
        source.windows(4).any(|w| w == b"Exif"),
        "the test file carries EXIF"
    );
    let out = compress_image(&source, &config()).unwrap();
    assert_eq!(
        (out.width, out.height),
        (1280, 1920),
        "orientation 6 turns it upright"
    );
    let large = &out.variants[3];
    assert_eq!((large.width, large.height), (800, 1200));
    for v in &out.variants {
        assert!(
            !v.jpeg.windows(4).any(|w| w == b"Exif"),
            "EXIF stripped from {}",
            v.name
        );
        assert!(
            !v.jpeg.windows(3).any(|w| w == b"GPS"),
            "no GPS in {}",
            v.name
        );
        assert!(
            !v.jpeg.windows(2).any(|w| w == [0xFF, 0xE1]),
            "no APP1 segment in {}",
            v.name
        );
    }
}

#[test]
fn never_upscales_small_images() {
    let out = run("good/pngsuite-basn2c16-16bit.png").unwrap();
    assert_eq!((out.width, out.height), (32, 32));
    assert!(out.variants.iter().all(|v| (v.width, v.height) == (32, 32)));
}

#[test]
fn grey_stays_grey_and_colour_is_rgb() {
    let grey = run("good/grey-gray-2560x1600.jpg").unwrap();
    assert_eq!(jpeg_frame(&grey.variants[0].jpeg).0, 1, "one component");
    let colour = run("good/garden-2560x1600.jpg").unwrap();
    assert_eq!(jpeg_frame(&colour.variants[0].jpeg).0, 3);
    let cmyk = run("good/video-001-cmyk.jpeg").unwrap();
    assert_eq!(jpeg_frame(&cmyk.variants[0].jpeg).0, 3, "CMYK becomes RGB");
}

#[test]
fn transparency_is_flattened_onto_the_background() {
    // A 32x16 RGBA PNG: the left half transparent red, the right half opaque blue.
    let mut pixels = Vec::new();
    for y in 0..16usize {
        for x in 0..32usize {
            // A little texture: flat blocks give single-symbol Huffman tables, which the `image`
            // crate's JPEG decoder misreads (libjpeg-turbo reads our output correctly).
            let t = ((x * 7 + y * 3) % 16) as u8;
            let pixel = if x < 16 {
                [255, t, 0, 0]
            } else {
                [t, t, 255 - t, 255]
            };
            pixels.extend_from_slice(&pixel);
        }
    }
    let mut png = Vec::new();
    let img = image::RgbaImage::from_raw(32, 16, pixels).unwrap();
    image::DynamicImage::ImageRgba8(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let mut cfg = config();
    cfg.background = [0, 255, 0];
    let out = compress_image(&png, &cfg).unwrap();
    let mut decoder = jpeg_decoder::Decoder::new(std::io::Cursor::new(&out.variants[0].jpeg));
    let rgb = decoder.decode().unwrap();
    let at = |x: usize, y: usize| &rgb[(y * 32 + x) * 3..(y * 32 + x) * 3 + 3];
    let (left, right) = (at(4, 8), at(27, 8));
    assert!(
        left[1] > 200 && left[0] < 70 && left[2] < 70,
        "transparent became the background: {left:?}"
    );
    assert!(
        right[2] > 190 && right[0] < 70 && right[1] < 70,
        "opaque kept its colour: {right:?}"
    );
}

#[test]
fn every_bad_file_gets_its_documented_error() {
    let expected = [
        ("bad/zero-bytes.jpg", "EMPTY"),
        ("bad/text-named.jpg", "UNSUPPORTED_FORMAT"),
        ("bad/garden-truncated-40pct.jpg", "TRUNCATED"),
        ("bad/video-001-progressive-truncated.jpeg", "TRUNCATED"),
        ("bad/invalid-zlib.png", "CORRUPT"),
        ("bad/png-bomb-50000x50000.png", "TOO_MANY_PIXELS"),
        ("bad/jpeg-sof-65500x65500.jpg", "TOO_MANY_PIXELS"),
        ("bad/video-001-truncated-with-eoi.jpeg", "TRUNCATED"),
        (
            "bad/gif-35-bytes-11254x4097-screen.gif",
            "TOO_MANY_PIXELS_PER_BYTE",
        ),
        ("bad/png-palette-index-out-of-range.png", "CORRUPT"),
        ("bad/png-palette-bomb-50000x50000.png", "TOO_MANY_PIXELS"),
        (
            "bad/png-palette-2bit-interlaced-index-out-of-range.png",
            "CORRUPT",
        ),
        // Within every per-buffer bound, over the memory of the whole process.
        (
            "bad/tiff-deflate-8184x8184-rgba16.tif",
            "IMAGE_TOO_LARGE_FOR_MEMORY",
        ),
        (
            "bad/webp-animated-9000x9000-lossless.webp",
            "IMAGE_TOO_LARGE_FOR_MEMORY",
        ),
        // A 1x1 screen: the frame's own size is the bound.
        (
            "bad/gif-1x1-screen-23000x23000-frame.gif",
            "TOO_MANY_PIXELS",
        ),
    ];
    let dir = format!("{}/testdata/bad", env!("CARGO_MANIFEST_DIR"));
    let mut listed: Vec<String> = expected.iter().map(|(f, _)| f[4..].to_string()).collect();
    let mut present: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    listed.sort();
    present.sort();
    assert_eq!(
        listed, present,
        "every bad file has its expected error here"
    );
    for (file, code) in expected {
        match run(file) {
            Ok(out) => panic!(
                "{file}: accepted as {}x{} {}",
                out.width, out.height, out.format
            ),
            Err(err) => assert_eq!(err.code(), code, "{file}: {err}"),
        }
    }
}

#[test]
fn the_memory_budget_comes_from_the_function_memory_and_is_checked_before_decoding() {
    // A progressive 8192x4096 photo: libjpeg keeps every coefficient (192 MiB) while it decodes.
    let photo = std::fs::read(format!(
        "{}/../../bench/corpus/flightgear-globe_colors-8192x4096-progressive.jpg",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let with_memory = |mb: &str| {
        PipelineConfig::from_env(&settings::Env::from_pairs(&[(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            mb,
        )]))
        .unwrap()
    };
    let small = with_memory("256");
    match compress_image(&photo, &small) {
        Err(ImageError::TooLargeForMemory { needed, budget }) => {
            assert_eq!(budget, small.memory_budget);
            assert!(needed > 192 << 20 && needed < 300 << 20, "{needed}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        compress_image(&photo, &with_memory("512"))
            .unwrap()
            .variants
            .len(),
        4
    );
    // The error is permanent, named, and says what the image needs against what it may use.
    let e = compress_image(&photo, &small).unwrap_err();
    assert_eq!(e.code(), "IMAGE_TOO_LARGE_FOR_MEMORY");
    assert!(
        e.to_string().contains(&small.memory_budget.to_string()),
        "{e}"
    );
}

#[test]
fn pixel_and_memory_limits_come_from_configuration() {
    let mut cfg = config();
    cfg.max_pixels = 1_000_000;
    let err = compress_image(&read("good/garden-2560x1600.jpg"), &cfg).unwrap_err();
    assert_eq!(
        err,
        ImageError::TooManyPixels {
            width: 2560,
            height: 1600,
            limit: 1_000_000
        }
    );
    let mut cfg = config();
    cfg.max_decode_bytes = 1024 * 1024;
    assert_eq!(
        compress_image(&read("good/garden-2560x1600.jpg"), &cfg)
            .unwrap_err()
            .code(),
        "TOO_MUCH_MEMORY"
    );
}

#[test]
fn quality_setting_changes_the_output() {
    let source = read("good/storm-1920x1280.jpg");
    let mut low = config();
    low.jpeg_quality = 40;
    let a = compress_image(&source, &config()).unwrap();
    let b = compress_image(&source, &low).unwrap();
    assert!(b.variants[3].jpeg.len() < a.variants[3].jpeg.len());
}

#[test]
fn arbitrary_bytes_never_panic() {
    let seed = read("good/video-001-progressive.jpeg");
    // Deterministic corruption: flip bytes throughout a real JPEG, and cut it at many points.
    for step in [7usize, 13, 101, 997] {
        let mut bytes = seed.clone();
        for i in (0..bytes.len()).step_by(step) {
            bytes[i] ^= 0x5A;
        }
        let _ = compress_image(&bytes, &config());
    }
    for cut in (0..seed.len()).step_by(seed.len() / 25) {
        if let Ok(out) = compress_image(&seed[..cut], &config()) {
            panic!(
                "a JPEG cut at {cut} of {} bytes was accepted ({}x{})",
                seed.len(),
                out.width,
                out.height
            );
        }
    }
}

#[test]
fn a_small_variant_matches_a_straight_lanczos_resize() {
    let mut cfg = config();
    cfg.variants = parse_variants("small:300").unwrap();
    let rotated = compress_image(&read("good/storm-exif-orientation6-gps.jpg"), &cfg).unwrap();
    assert_eq!(
        (rotated.variants[0].width, rotated.variants[0].height),
        (200, 300)
    );
    let out = compress_image(&read("good/storm-1920x1280.jpg"), &cfg).unwrap();
    // Decoded with an independent decoder (the `image` crate's misreads some optimised tables).
    let ours = jpeg_decoder::Decoder::new(std::io::Cursor::new(&out.variants[0].jpeg))
        .decode()
        .unwrap();
    let reference = image::load_from_memory(&read("good/storm-1920x1280.jpg"))
        .unwrap()
        .resize_exact(300, 200, image::imageops::FilterType::Lanczos3)
        .into_rgb8();
    assert_eq!(ours.len(), reference.as_raw().len());
    let mean_abs: f64 = ours
        .iter()
        .zip(reference.as_raw())
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).abs())
        .sum::<f64>()
        / ours.len() as f64;
    assert!(mean_abs < 4.0, "mean absolute difference {mean_abs}");
}

#[test]
fn outputs_decode_the_same_in_independent_decoders() {
    for file in [
        "good/storm-1920x1280.jpg",
        "good/garden-2560x1600.jpg",
        "good/spring-rgba-1600x1200.png",
        "good/grey-gray-2560x1600.jpg",
    ] {
        let out = run(file).unwrap();
        for v in &out.variants {
            let zune = image::load_from_memory(&v.jpeg).unwrap();
            let zune = if jpeg_frame(&v.jpeg).0 == 1 {
                zune.into_luma8().into_raw()
            } else {
                zune.into_rgb8().into_raw()
            };
            let other = jpeg_decoder::Decoder::new(std::io::Cursor::new(&v.jpeg))
                .decode()
                .unwrap();
            assert_eq!(zune.len(), other.len(), "{file} {}", v.name);
            let diff: f64 = zune
                .iter()
                .zip(&other)
                .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
                .sum::<f64>()
                / other.len() as f64;
            assert!(
                diff < 2.0,
                "{file} {}: decoders disagree by {diff} on average",
                v.name
            );
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Jpeg,
    Png,
    WebP,
}

/// A 64x32 picture, `left` colour on the left half and `right` on the right, as JPEG (quality
/// 100), PNG or lossless WebP, carrying `icc` when given.
fn two_colours(kind: Kind, icc: Option<&[u8]>, left: [u8; 3], right: [u8; 3]) -> Vec<u8> {
    let mut pixels = Vec::new();
    for _y in 0..32 {
        for x in 0..64 {
            pixels.extend_from_slice(if x < 32 { &left } else { &right });
        }
    }
    let mut out = Vec::new();
    let icc = icc.map(<[u8]>::to_vec);
    let rgb = image::ExtendedColorType::Rgb8;
    match kind {
        Kind::Jpeg => {
            let mut e = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 100);
            if let Some(icc) = icc {
                e.set_icc_profile(icc).unwrap();
            }
            e.write_image(&pixels, 64, 32, rgb).unwrap();
        }
        Kind::Png => {
            let mut e = image::codecs::png::PngEncoder::new(&mut out);
            if let Some(icc) = icc {
                e.set_icc_profile(icc).unwrap();
            }
            e.write_image(&pixels, 64, 32, rgb).unwrap();
        }
        Kind::WebP => {
            let mut e = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
            if let Some(icc) = icc {
                e.set_icc_profile(icc).unwrap();
            }
            e.write_image(&pixels, 64, 32, rgb).unwrap();
        }
    }
    out
}

/// The mean colour of an 8x8 patch in the middle of each half of a 64x32 JPEG variant.
fn half_colours(jpeg: &[u8]) -> [[f64; 3]; 2] {
    let rgb = jpeg_decoder::Decoder::new(std::io::Cursor::new(jpeg))
        .decode()
        .unwrap();
    let mean = |x0: usize| {
        let mut sum = [0.0; 3];
        for y in 12..20 {
            for x in x0..x0 + 8 {
                for (c, total) in sum.iter_mut().enumerate() {
                    *total += f64::from(rgb[(y * 64 + x) * 3 + c]) / 64.0;
                }
            }
        }
        sum
    };
    [mean(12), mean(44)]
}

fn assert_near(found: [f64; 3], want: [u8; 3], what: &str) {
    for c in 0..3 {
        assert!(
            (found[c] - f64::from(want[c])).abs() <= 6.0,
            "{what}: got {found:?}, want {want:?}"
        );
    }
}

#[test]
fn embedded_colour_profiles_are_converted_to_srgb() {
    let mut cfg = config();
    cfg.variants = parse_variants("whole:100").unwrap();
    let (red, green) = ([200, 60, 40], [60, 160, 70]);
    let swapped = read("icc/SwappedRedAndGreen.icc");
    let adobe = read("icc/AdobeRGB1998.icc");
    for format in [Kind::Jpeg, Kind::Png, Kind::WebP] {
        let kind = format!("{format:?}");
        let kind = kind.as_str();
        // A profile whose red is green and whose green is red: unmistakable when applied.
        let out = compress_image(&two_colours(format, Some(&swapped), red, green), &cfg).unwrap();
        assert_eq!(out.colour, ColourHandling::Converted, "{kind}");
        let [left, right] = half_colours(&out.variants[0].jpeg);
        assert_near(left, [60, 200, 40], &format!("{kind} swapped, left"));
        assert_near(right, [160, 60, 70], &format!("{kind} swapped, right"));
        // Adobe RGB (1998): the expected sRGB values are LittleCMS's (Pillow's ImageCms) for the
        // same profile, perceptual intent.
        let out = compress_image(&two_colours(format, Some(&adobe), red, green), &cfg).unwrap();
        assert_eq!(out.colour, ColourHandling::Converted, "{kind}");
        let [left, right] = half_colours(&out.variants[0].jpeg);
        assert_near(left, [231, 57, 34], &format!("{kind} Adobe RGB, left"));
        assert_near(right, [0, 161, 60], &format!("{kind} Adobe RGB, right"));
        // sRGB itself: nothing to convert, the very pixels of an untagged picture.
        let srgb = read("icc/sRGB.icc");
        let tagged = compress_image(&two_colours(format, Some(&srgb), red, green), &cfg).unwrap();
        let untagged = compress_image(&two_colours(format, None, red, green), &cfg).unwrap();
        assert_eq!(tagged.colour, ColourHandling::AlreadySrgb, "{kind}");
        assert_eq!(
            tagged.variants[0].jpeg, untagged.variants[0].jpeg,
            "{kind} sRGB"
        );
        // Rec. 709: sRGB's primaries with another curve, so it is converted (darker shadows).
        let rec709 = read("icc/Rec709.icc");
        let out = compress_image(&two_colours(format, Some(&rec709), red, green), &cfg).unwrap();
        assert_eq!(out.colour, ColourHandling::Converted, "{kind} Rec. 709");
        assert_ne!(
            out.variants[0].jpeg, untagged.variants[0].jpeg,
            "{kind} Rec. 709"
        );
        // No profile: the values are sRGB already.
        let out = compress_image(&two_colours(format, None, red, green), &cfg).unwrap();
        assert_eq!(out.colour, ColourHandling::Untagged, "{kind}");
        let [left, right] = half_colours(&out.variants[0].jpeg);
        assert_near(left, red, &format!("{kind} untagged, left"));
        assert_near(right, green, &format!("{kind} untagged, right"));
        // A profile that is not one: ignored, the pixels kept as they are.
        let garbage = vec![0x5A; 300];
        let out = compress_image(&two_colours(format, Some(&garbage), red, green), &cfg).unwrap();
        assert_eq!(out.colour, ColourHandling::Ignored, "{kind}");
        assert_near(half_colours(&out.variants[0].jpeg)[0], red, kind);
    }
}

#[test]
fn optimising_for_size_writes_fewer_bytes_of_the_same_variants() {
    let source = read("good/garden-2560x1600.jpg");
    let mut size = config();
    size.optimize = Optimize::Size;
    let small = compress_image(&source, &size).unwrap();
    let fast = compress_image(&source, &config()).unwrap();
    let total = |p: &Compressed| p.variants.iter().map(|v| v.jpeg.len()).sum::<usize>();
    for (a, b) in small.variants.iter().zip(&fast.variants) {
        assert_eq!(
            (a.name.as_str(), a.width, a.height),
            (b.name.as_str(), b.width, b.height)
        );
    }
    // Trellis on the two thumbnails (the 600- and 1200-px variants of a baseline JPEG are
    // progressive with libjpeg's quantisation, or sequential where that is smaller).
    assert!(
        total(&small) < total(&fast),
        "size {} vs speed {}",
        total(&small),
        total(&fast)
    );
}

#[test]
fn trellis_only_where_the_variant_is_much_smaller_than_the_picture() {
    // A 960x640 photo: a variant kept at that size is mostly encoder work (plain quantisation,
    // the bytes `speed` writes); one with a quarter of its pixels is a reduction (trellis, fewer
    // bytes). A BMP, so that both settings decode the same pixels.
    let source = read("good/storm-960x640.bmp");
    let mut size = config();
    size.variants = parse_variants("kept:960,quarter:480").unwrap();
    size.optimize = Optimize::Size;
    let mut speed = size.clone();
    speed.optimize = Optimize::Speed;
    let (size, speed) = (
        compress_image(&source, &size).unwrap(),
        compress_image(&source, &speed).unwrap(),
    );
    assert_eq!(
        (size.variants[1].width, size.variants[1].height),
        (480, 320)
    );
    assert!(
        pixels(&size.variants[0].jpeg) == pixels(&speed.variants[0].jpeg),
        "kept at its size: libjpeg's quantisation (maybe progressive, so other bytes)"
    );
    assert!(
        size.variants[1].jpeg.len() * 100 < speed.variants[1].jpeg.len() * 99,
        "a quarter of the pixels: size {} vs speed {}",
        size.variants[1].jpeg.len(),
        speed.variants[1].jpeg.len()
    );
}

/// Whether a JPEG's frame is progressive (SOF2) rather than baseline (SOF0).
fn progressive(jpeg: &[u8]) -> bool {
    let at = jpeg
        .windows(2)
        .position(|w| w[0] == 0xFF && (w[1] == 0xC0 || w[1] == 0xC2))
        .unwrap();
    jpeg[at + 1] == 0xC2
}

fn pixels(jpeg: &[u8]) -> Vec<u8> {
    jpeg_decoder::Decoder::new(std::io::Cursor::new(jpeg))
        .decode()
        .unwrap()
}

/// The two settings for these variants, `size` (the default) first.
fn both(source: &[u8], variants: &str) -> (Compressed, Compressed) {
    let mut size = config();
    size.variants = parse_variants(variants).unwrap();
    size.optimize = Optimize::Size;
    let mut speed = size.clone();
    speed.optimize = Optimize::Speed;
    (
        compress_image(source, &size).unwrap(),
        compress_image(source, &speed).unwrap(),
    )
}

#[test]
fn a_baseline_photo_s_large_variant_is_progressive_without_trellis() {
    // A 2560x1600 baseline JPEG: both settings decode it at half size for these variants, so they
    // encode the same pixels. Decoding it was cheap next to trellis on an 800-px variant, so the
    // default writes libjpeg's coefficients (the pixels `speed` writes) in progressive scans; the
    // thumbnail, where trellis costs little, is trellis-quantised.
    let (size, speed) = both(
        &read("good/garden-2560x1600.jpg"),
        "thumbnail:150,compressed:800",
    );
    let (thumbnail, large) = (&size.variants[0], &size.variants[1]);
    assert_eq!((large.width, large.height), (800, 500));
    assert!(progressive(&large.jpeg) && !progressive(&speed.variants[1].jpeg));
    assert!(
        pixels(&large.jpeg) == pixels(&speed.variants[1].jpeg),
        "no trellis on the 800-px variant"
    );
    assert!(!progressive(&thumbnail.jpeg));
    assert!(
        pixels(&thumbnail.jpeg) != pixels(&speed.variants[0].jpeg),
        "trellis on the thumbnail"
    );
    assert!(thumbnail.jpeg.len() < speed.variants[0].jpeg.len());
}

#[test]
fn a_progressive_photo_s_large_variant_is_trellis_quantised() {
    // A 2560x1600 progressive JPEG: decoding it costs several times trellis on an 800-px variant,
    // which then buys its bytes. Both settings decode the same pixels (half size).
    let source = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../bench/corpus/plasma-summer-1am-2560x1600-progressive.jpg"
    ))
    .unwrap();
    let (size, speed) = both(&source, "compressed:800");
    let (large, plain) = (&size.variants[0].jpeg, &speed.variants[0].jpeg);
    assert!(progressive(large));
    assert!(pixels(large) != pixels(plain), "trellis");
    assert!(
        large.len() * 100 < plain.len() * 98,
        "size {} vs speed {}",
        large.len(),
        plain.len()
    );
}

#[test]
fn webp_with_alpha_is_flattened_and_reduced_while_decoding() {
    // 400x200 lossless WebP: the left half transparent, the right half opaque blue.
    let mut pixels = Vec::new();
    for _y in 0..200 {
        for x in 0..400u32 {
            pixels.extend_from_slice(&if x < 200 {
                [255, 0, 0, 0]
            } else {
                [0, 0, 255, 255]
            });
        }
    }
    let mut webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .write_image(&pixels, 400, 200, image::ExtendedColorType::Rgba8)
        .unwrap();
    let mut cfg = config();
    cfg.variants = parse_variants("small:100").unwrap();
    cfg.background = [0, 255, 0];
    let out = compress_image(&webp, &cfg).unwrap();
    assert_eq!((out.format, out.width, out.height), ("webp", 400, 200));
    let v = &out.variants[0];
    assert_eq!((v.width, v.height), (100, 50));
    let rgb = jpeg_decoder::Decoder::new(std::io::Cursor::new(&v.jpeg))
        .decode()
        .unwrap();
    let at = |x: usize, y: usize| &rgb[(y * 100 + x) * 3..(y * 100 + x) * 3 + 3];
    let (left, right) = (at(20, 25), at(80, 25));
    assert!(
        left[1] > 200 && left[0] < 60 && left[2] < 60,
        "background: {left:?}"
    );
    assert!(
        right[2] > 200 && right[0] < 60 && right[1] < 60,
        "blue kept: {right:?}"
    );
}

#[test]
fn the_pixels_per_byte_bound_is_the_reason_and_is_configurable() {
    let bomb = read("bad/gif-35-bytes-11254x4097-screen.gif");
    match compress_image(&bomb, &config()) {
        Err(ImageError::TooManyPixelsPerByte {
            width: 11254,
            height: 4097,
            bytes: 35,
            limit,
        }) => assert_eq!(limit, image_compressor::config::DEFAULT_MAX_PIXELS_PER_BYTE),
        other => panic!("{other:?}"),
    }
    // Raised far enough, the same file is decoded (a 46 MP canvas): the bound alone refused it.
    let lenient = PipelineConfig {
        max_pixels_per_byte: 2_000_000,
        ..config()
    };
    let out = compress_image(&bomb, &lenient).expect("decoded once the bound allows it");
    assert_eq!((out.width, out.height), (11254, 4097));
    // The densest real file (a blank 1-bit 4000x4000 PNG, 2,650 pixels per byte) stays well inside.
    let blank = read("good/png-1bit-4000x4000-blank.png");
    let ratio = 4000 * 4000 / blank.len() as u64;
    assert!(
        ratio < image_compressor::config::DEFAULT_MAX_PIXELS_PER_BYTE / 4,
        "{ratio}"
    );
    assert!(compress_image(&blank, &config()).is_ok());
}

#[test]
fn palette_indices_are_checked_only_past_a_short_palette() {
    // A valid short palette with padding bits set (decoders ignore padding) is accepted.
    let ok = run("good/png-palette-2bit-3-colours-padding-bits-set.png").unwrap();
    assert_eq!((ok.width, ok.height), (13, 7));
    let err = run("bad/png-palette-2bit-interlaced-index-out-of-range.png").unwrap_err();
    assert!(
        err.to_string()
            .contains("palette index 3 is outside the 3-colour palette"),
        "{err}"
    );
}
