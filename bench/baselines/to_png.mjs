// `node bench/baselines/to_png.mjs <in> <out.png>`: decodes an AVIF or WebP (sharp's libheif and
// libwebp) to a PNG for bench/formats.py's SSIM, as a browser would show it (no resize, no colour
// management beyond sharp's sRGB).
import { createRequire } from "node:module";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), "..", "sharp", "package.json"));
const sharp = require("sharp");
const [input, output] = process.argv.slice(2);
await sharp(input).png().toFile(output);
