// The measurement behind the AVIF and WebP encoders and settings (BENCHMARKS.md, "Choosing the
// encoders"); run by measure.py, which makes the variants and scores them.
//
//     encoder-choice <out-dir> <png>...
//
// For each PNG (a variant's pixels, RGB8): JPEG (mozjpeg at 85, its trellis defaults and plain),
// WebP (libwebp) over WEBP_Q x WEBP_M (quality x method), AVIF through rav1e (`ravif`) over AVIF_Q x
// AVIF_S and through libavif with libaom over LAVIF_Q x LAVIF_S (quality x speed), one thread each.
// Prints one JSON line per encode (file, codec, setting, bytes, ms: the fastest of 3 under 200,000
// pixels, else of 1) and writes the file.
use std::time::Instant;

fn read_png(path: &str) -> (Vec<u8>, u32, u32) {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (buf, info.width, info.height)
}

fn time<F: FnMut() -> Vec<u8>>(mut f: F, pixels: u64) -> (Vec<u8>, f64) {
    let reps = if pixels < 200_000 { 3 } else { 1 };
    let mut best = f64::MAX;
    let mut out = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        out = f();
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
    }
    (out, best)
}

fn webp(px: &[u8], w: u32, h: u32, q: f32, method: i32) -> Vec<u8> {
    use libwebp_sys::*;
    unsafe {
        let mut config = WebPConfig::new().unwrap();

        config.quality = q; config.thread_level = 0;
        config.method = method;
        let mut pic = WebPPicture::new().unwrap();

        pic.width = w as i32;
        pic.height = h as i32;
        let mut writer = std::mem::zeroed::<WebPMemoryWriter>();
        WebPMemoryWriterInit(&mut writer);
        pic.writer = Some(WebPMemoryWrite);
        pic.custom_ptr = &mut writer as *mut _ as *mut _;
        assert!(WebPPictureImportRGB(&mut pic, px.as_ptr(), (w * 3) as i32) != 0);
        assert!(WebPEncode(&config, &mut pic) != 0);
        let out = std::slice::from_raw_parts(writer.mem, writer.size).to_vec();
        WebPPictureFree(&mut pic);
        WebPMemoryWriterClear(&mut writer);
        out
    }
}

fn jpeg(px: &[u8], w: u32, h: u32, trellis: bool) -> Vec<u8> {
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_size(w as usize, h as usize);
    c.set_quality(85.0);
    if !trellis { c.set_fastest_defaults(); c.set_optimize_coding(true); c.set_quality(85.0); }
    let mut s = c.start_compress(Vec::new()).unwrap();
    s.write_scanlines(px).unwrap();
    s.finish().unwrap()
}

fn libavif(px: &[u8], w: u32, h: u32, q: i32, speed: i32) -> Vec<u8> {
    use libavif_sys::*;
    unsafe {
        let image = avifImageCreate(w, h, 8, AVIF_PIXEL_FORMAT_YUV420);
        let mut rgb = avifRGBImage::default();
        avifRGBImageSetDefaults(&mut rgb, image);
        rgb.format = AVIF_RGB_FORMAT_RGB;
        rgb.pixels = px.as_ptr() as *mut u8;
        rgb.rowBytes = w * 3;
        assert_eq!(avifImageRGBToYUV(image, &rgb), AVIF_RESULT_OK);
        let enc = avifEncoderCreate();
        (*enc).codecChoice = AVIF_CODEC_CHOICE_AOM;
        (*enc).maxThreads = 1;
        (*enc).speed = speed;
        (*enc).quality = q;
        let mut out = avifRWData::default();
        assert_eq!(avifEncoderWrite(enc, image, &mut out), AVIF_RESULT_OK);
        let v = std::slice::from_raw_parts(out.data, out.size).to_vec();
        avifRWDataFree(&mut out);
        avifEncoderDestroy(enc);
        avifImageDestroy(image);
        v
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = &args[1];
    let avif_q: Vec<f32> = std::env::var("AVIF_Q").unwrap_or("50,60,70".into()).split(',').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    let avif_s: Vec<u8> = std::env::var("AVIF_S").unwrap_or("6,8,10".into()).split(',').map(|s| s.parse().unwrap()).collect();
    let webp_q: Vec<f32> = std::env::var("WEBP_Q").unwrap_or("70,75,80".into()).split(',').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    let webp_m: Vec<i32> = std::env::var("WEBP_M").unwrap_or("2,4".into()).split(',').map(|s| s.parse().unwrap()).collect();
    for path in &args[2..] {
        let (px, w, h) = read_png(path);
        let stem = std::path::Path::new(path).file_stem().unwrap().to_str().unwrap().to_string();
        let pixels = w as u64 * h as u64;
        let emit = |codec: &str, setting: String, ext: &str, bytes: Vec<u8>, ms: f64| {
            let name = format!("{out}/{stem}__{codec}_{setting}.{ext}");
            std::fs::write(&name, &bytes).unwrap();
            println!("{{\"file\":\"{stem}\",\"pixels\":{pixels},\"codec\":\"{codec}\",\"setting\":\"{setting}\",\"bytes\":{},\"ms\":{ms:.3},\"out\":\"{name}\"}}", bytes.len());
        };
        for trellis in [true, false] {
            let (b, ms) = time(|| jpeg(&px, w, h, trellis), pixels);
            emit("jpeg", format!("q85{}", if trellis {"t"} else {"p"}), "jpg", b, ms);
        }
        for &q in &webp_q { for &m in &webp_m {
            let (b, ms) = time(|| webp(&px, w, h, q, m), pixels);
            emit("webp", format!("q{q}m{m}"), "webp", b, ms);
        }}
        let lq: Vec<i32> = std::env::var("LAVIF_Q").unwrap_or("".into()).split(',').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
        let ls: Vec<i32> = std::env::var("LAVIF_S").unwrap_or("8,9,10".into()).split(',').map(|s| s.parse().unwrap()).collect();
        for &q in &lq { for &s in &ls {
            let (b, ms) = time(|| libavif(&px, w, h, q, s), pixels);
            emit("libavif-aom", format!("q{q}s{s}"), "avif", b, ms);
        }}
        let rgb: &[rgb::RGB8] = unsafe { std::slice::from_raw_parts(px.as_ptr() as *const rgb::RGB8, px.len() / 3) };
        let img = ravif::Img::new(rgb, w as usize, h as usize);
        for &q in &avif_q { for &s in &avif_s {
            let enc = ravif::Encoder::new().with_quality(q).with_speed(s).with_num_threads(Some(1));
            let (b, ms) = time(|| enc.encode_rgb(img.clone()).unwrap().avif_file, pixels);
            emit("ravif", format!("q{q}s{s}"), "avif", b, ms);
        }}
    }
}
