//! One image through the pipeline, repeated, single-threaded; prints one JSON line with the median
//! iteration's time (and the fastest one's), after one untimed warm-up iteration as the baselines do (used by `make bench`,
//! run once per process so peak RSS is per image):
//!
//!     bench_pipeline <file> <variants> <iterations> [<out-dir>]

use std::time::Instant;

use domain::image::parse_variants;
use image_compressor::pipeline::{compress_image, PipelineConfig};
use serde_json::json;

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (file, variants, iterations) = match args.as_slice() {
        [f, v, n, ..] => (f, v, n.parse::<u32>()?),
        _ => return Err("usage: bench_pipeline <file> <variants> <iterations> [<out-dir>]".into()),
    };
    // As the function's `main` does at cold start.
    image_compressor::allocator::keep_freed_memory();
    // The function's own settings (JPEG_QUALITY, JPEG_OPTIMIZE, ...) apart from the variants.
    let mut config = PipelineConfig::from_env(&settings::Env::from_process())?;
    config.variants = parse_variants(variants)?;
    config.max_decode_bytes = 1024 * 1024 * 1024;
    let bytes = std::fs::read(file)?;
    let rss_before = peak_rss_kb();
    let mut processed = compress_image(&bytes, &config)?;
    let mut times = Vec::new();
    for _ in 0..iterations.max(1) {
        let started = Instant::now();
        processed = compress_image(&bytes, &config)?;
        times.push(started.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let middle = times.len() / 2;
    let seconds = if times.len() % 2 == 0 {
        (times[middle - 1] + times[middle]) / 2.0
    } else {
        times[middle]
    };
    if let Some(out) = args.get(3) {
        for v in &processed.variants {
            std::fs::create_dir_all(out)?;
            std::fs::write(format!("{out}/{}.jpg", v.name), &v.jpeg)?;
            // The modern formats as the function writes them: only where smaller than the JPEG.
            if let Some(webp) = v.smaller(&v.webp) {
                std::fs::write(format!("{out}/{}.webp", v.name), webp)?;
            }
            if let Some(avif) = v.smaller(&v.avif) {
                std::fs::write(format!("{out}/{}.avif", v.name), avif)?;
            }
        }
    }
    let megapixels = f64::from(processed.width) * f64::from(processed.height) / 1e6;
    println!(
        "{}",
        json!({
            "engine": "rust",
            "optimize": config.optimize.as_str(),
            "file": file,
            "megapixels": megapixels,
            "seconds": seconds,
            "min_seconds": times[0],
            "mp_per_s": megapixels / seconds,
            "output_bytes": processed.variants.iter().map(|v| v.jpeg.len()).sum::<usize>(),
            // `webp_bytes` and `avif_bytes`: the files written (smaller than the JPEG), else null.
            "variants": processed.variants.iter().map(|v| json!({"name": v.name, "width": v.width, "height": v.height, "bytes": v.jpeg.len(),
                "webp_bytes": v.smaller(&v.webp).map(<[u8]>::len), "avif_bytes": v.smaller(&v.avif).map(<[u8]>::len),
                "webp_encoded": v.webp.as_ref().map(Vec::len), "avif_encoded": v.avif.as_ref().map(Vec::len)})).collect::<Vec<_>>(),
            "peak_rss_kb": peak_rss_kb(),
            "rss_before_kb": rss_before,
        })
    );
    Ok(())
}
