// BASELINE (not part of the suite): sharp, the engine of the AWS image solution, for `make bench`.
//
//     node bench/baselines/sharp.mjs <file> <variants> <iterations> [<out-dir>]
//
// Per variant, what the AWS solution's handler does with sharp: auto-orient, fit inside the size
// without enlarging (Lanczos-3, sharp's default kernel), flatten alpha onto white, JPEG at quality 85
// with optimised Huffman tables (sharp's defaults: 4:2:0, no trellis). With WEBP_QUALITY set, also a
// WebP of each variant at that quality; with AVIF_QUALITY set, also an AVIF (sharp's libheif with
// libaom) at that quality and AVIF_EFFORT (sharp's default 4 when unset). One thread: sharp.concurrency(1) here and UV_THREADPOOL_SIZE=1
// in the environment (bench/corpus.py sets it), and the process pinned to one core. sharp's operation
// cache is off, so every iteration does the whole work. Prints one JSON line in the shape of the Rust
// bench_pipeline example.
import { readFileSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), "..", "sharp", "package.json"));
const sharp = require("sharp");
sharp.concurrency(1);
sharp.cache(false);

const [file, spec, iterationsArg, outDir] = process.argv.slice(2);
const variants = spec.split(",").map((v) => {
  const [name, size] = v.split(":");
  return { name, size: Number(size) };
});
const webpQuality = process.env.WEBP_QUALITY ? Number(process.env.WEBP_QUALITY) : null;
const avifQuality = process.env.AVIF_QUALITY ? Number(process.env.AVIF_QUALITY) : null;
const avifEffort = process.env.AVIF_EFFORT ? Number(process.env.AVIF_EFFORT) : 4;
const data = readFileSync(file);

async function run() {
  const out = [];
  for (const { name, size } of variants) {
    const resized = sharp(data)
      .rotate()
      .resize(size, size, { fit: "inside", withoutEnlargement: true })
      .flatten({ background: "#ffffff" });
    const { data: jpeg, info } = await resized.clone().jpeg({ quality: 85 }).toBuffer({ resolveWithObject: true });
    const webp = webpQuality === null ? null : await resized.clone().webp({ quality: webpQuality }).toBuffer();
    const avif = avifQuality === null ? null
      : await resized.clone().avif({ quality: avifQuality, effort: avifEffort }).toBuffer();
    out.push({ name, width: info.width, height: info.height, jpeg, webp, avif });
  }
  return out;
}

function peakRssKb() {
  const line = readFileSync("/proc/self/status", "utf8").split("\n").find((l) => l.startsWith("VmHWM:"));
  return line ? Number(line.split(/\s+/)[1]) : 0;
}

const meta = await sharp(data).metadata();
const megapixels = (meta.width * meta.height) / 1e6;
let result = await run(); // warm-up
const times = [];
for (let i = 0; i < Math.max(1, Number(iterationsArg)); i++) {
  const started = process.hrtime.bigint();
  result = await run();
  times.push(Number(process.hrtime.bigint() - started) / 1e9);
}
times.sort((a, b) => a - b);
const middle = Math.floor(times.length / 2);
const seconds = times.length % 2 ? times[middle] : (times[middle - 1] + times[middle]) / 2;
if (outDir) {
  mkdirSync(outDir, { recursive: true });
  for (const v of result) {
    writeFileSync(join(outDir, `${v.name}.jpg`), v.jpeg);
    if (v.webp) writeFileSync(join(outDir, `${v.name}.webp`), v.webp);
    if (v.avif) writeFileSync(join(outDir, `${v.name}.avif`), v.avif);
  }
}
const sum = (key) => result.reduce((n, v) => n + (v[key] ? v[key].length : 0), 0);
console.log(JSON.stringify({
  engine: "sharp", file, megapixels, seconds, min_seconds: times[0], mp_per_s: megapixels / seconds,
  output_bytes: sum("jpeg"), webp_bytes: webpQuality === null ? null : sum("webp"),
  avif_bytes: avifQuality === null ? null : sum("avif"),
  variants: result.map((v) => ({ name: v.name, width: v.width, height: v.height, bytes: v.jpeg.length,
                                 webp_bytes: v.webp ? v.webp.length : null,
                                 avif_bytes: v.avif ? v.avif.length : null })),
  peak_rss_kb: peakRssKb(),
}));
