//! Runs the image pipeline over a folder, as the function would, and prints one JSON line per file:
//!
//!     cargo run --release -p image-compressor --example compress -- <in-dir> <out-dir>
//!
//! Reads the function's settings (`VARIANTS`, `JPEG_QUALITY`, `JPEG_OPTIMIZE`, `WEBP_QUALITY`,
//! `MAX_PIXELS`, `MAX_DECODE_BYTES`, `MAX_OBJECT_BYTES`, `BACKGROUND_COLOR`, and
//! `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` for the memory budget). Writes
//! `<out-dir>/<variant>/<name>.jpg` (and `.avif`, `.webp` where smaller, per `FORMATS`); nothing for a file that
//! fails. Exits 0 when every file was processed (bad files included, reported with `ok: false`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use image_compressor::pipeline::{compress_image, ImageError, PipelineConfig};
use serde_json::json;
use settings::Env;

fn main() {
    if let Err(e) = run() {
        eprintln!("compress: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        return Err("usage: compress <in-dir> <out-dir>".into());
    };
    let env = Env::from_process();
    let config = PipelineConfig::from_env(&env)?;
    let max_object_bytes = env.number_in("MAX_OBJECT_BYTES", 50 * 1024 * 1024, 1..=u64::MAX)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(input)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for path in files {
        let started = Instant::now();
        let result = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                if bytes.len() as u64 > max_object_bytes {
                    return Err(ImageError::TooLarge {
                        size: bytes.len() as u64,
                        limit: max_object_bytes,
                    }
                    .to_string());
                }
                compress_image(&bytes, &config).map_err(|e| e.to_string())
            });
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        match result {
            Ok(processed) => {
                let stem = Path::new(&name)
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default();
                let mut variants = Vec::new();
                for v in &processed.variants {
                    let dir = Path::new(output).join(&v.name);
                    std::fs::create_dir_all(&dir)?;
                    std::fs::write(dir.join(format!("{stem}.jpg")), &v.jpeg)?;
                    let mut entry = json!({"name": v.name, "width": v.width, "height": v.height, "bytes": v.jpeg.len()});
                    // As the function writes them: only where smaller than the JPEG.
                    if let Some(webp) = v.smaller(&v.webp) {
                        std::fs::write(dir.join(format!("{stem}.webp")), webp)?;
                        entry["webp_bytes"] = webp.len().into();
                    }
                    if let Some(avif) = v.smaller(&v.avif) {
                        std::fs::write(dir.join(format!("{stem}.avif")), avif)?;
                        entry["avif_bytes"] = avif.len().into();
                    }
                    variants.push(entry);
                }
                println!(
                    "{}",
                    json!({"file": name, "ok": true, "error": null, "ms": (ms * 100.0).round() / 100.0, "variants": variants})
                );
            }
            Err(error) => {
                println!(
                    "{}",
                    json!({"file": name, "ok": false, "error": error, "ms": (ms * 100.0).round() / 100.0, "variants": []})
                );
            }
        }
    }
    Ok(())
}
