//! The image-compressor handler over the in-memory object store, driven by `events/image-compressor/`.

use domain::image::parse_variants;
use domain::testing::InMemoryObjectStore;
use domain::PortError;
use image_compressor::pipeline::PipelineConfig;
use image_compressor::{Compressor, RecordOutcome, Settings};
use serde_json::Value;

const SOURCE: &str = "rust-suite-local-uploads-123456789012-us-east-1";
const DEST: &str = "variants";

fn settings() -> Settings {
    Settings {
        destination_bucket: DEST.into(),
        max_object_bytes: 50 * 1024 * 1024,
        cache_control: "public, max-age=31536000, immutable".into(),
        pipeline: PipelineConfig {
            variants: parse_variants("thumbnail:150,small:300,medium:600,large:1200").unwrap(),
            jpeg_quality: 85,
            optimize: image_compressor::pipeline::Optimize::Speed,
            webp_quality: None,
            max_pixels: 100_000_000,
            max_pixels_per_byte: image_compressor::config::DEFAULT_MAX_PIXELS_PER_BYTE,
            max_decode_bytes: 512 * 1024 * 1024,
            background: [255, 255, 255],
            memory_budget: image_compressor::memory_budget::image_budget(
                image_compressor::memory_budget::DEFAULT_FUNCTION_MEMORY_MB,
            ),
        },
    }
}

fn image(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/testdata/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn event(name: &str) -> Value {
    let path = format!(
        "{}/../../events/image-compressor/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn compressor() -> Compressor<InMemoryObjectStore> {
    Compressor::new(InMemoryObjectStore::default(), settings())
}

/// The objects `s3-multiple-records.json` names: a PNG, a file that is not an image (`not_an_image`),
/// and an EXIF-rotated JPEG.
fn insert_the_three_uploads(c: &Compressor<InMemoryObjectStore>, not_an_image: Vec<u8>) {
    c.store.insert(
        SOURCE,
        "uploads/spring-rgba.png",
        image("good/spring-rgba-1600x1200.png"),
    );
    c.store
        .insert(SOURCE, "uploads/not-an-image.jpg", not_an_image);
    c.store.insert(
        SOURCE,
        "uploads/storm-exif-orientation6.jpg",
        image("good/storm-exif-orientation6-gps.jpg"),
    );
}

#[tokio::test]
async fn writes_every_variant_with_metadata_then_nothing_on_a_repeat() {
    let c = compressor();
    c.store.insert(
        SOURCE,
        "photos/garden.jpg",
        image("good/garden-2560x1600.jpg"),
    );
    let outcomes = c.handle(event("s3-put-emulator.json")).await.unwrap();
    assert_eq!(outcomes, [RecordOutcome::Written(4)]);
    let keys = c.store.keys(DEST);
    assert_eq!(
        keys,
        [
            "large/photos/garden.jpg",
            "medium/photos/garden.jpg",
            "small/photos/garden.jpg",
            "thumbnail/photos/garden.jpg"
        ]
    );
    let large = c.store.object(DEST, "large/photos/garden.jpg").unwrap();
    assert_eq!(large.content_type, "image/jpeg");
    assert_eq!(large.cache_control, "public, max-age=31536000, immutable");
    assert_eq!(large.metadata["width"], "1200");
    assert_eq!(large.metadata["height"], "750");
    assert_eq!(large.metadata["source-key"], "photos/garden.jpg");
    assert_eq!(
        large.metadata["original-size"],
        image("good/garden-2560x1600.jpg").len().to_string()
    );
    assert_eq!(
        large.metadata["compressed-size"],
        large.body.len().to_string()
    );
    assert!(!large.metadata["source-etag"].is_empty());

    let puts = c.store.faults.calls("put");
    let gets = c.store.faults.calls("get");
    assert_eq!(
        c.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::AlreadyDone]
    );
    assert_eq!(c.store.faults.calls("put"), puts, "nothing written again");
    assert_eq!(
        c.store.faults.calls("get"),
        gets,
        "not even downloaded again"
    );

    // A new upload under the same key (new ETag) is processed again.
    c.store.insert(
        SOURCE,
        "photos/garden.jpg",
        image("good/storm-1920x1280.jpg"),
    );
    assert_eq!(
        c.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::Written(4)]
    );
}

#[tokio::test]
async fn one_bad_record_does_not_stop_the_others() {
    let c = compressor();
    insert_the_three_uploads(&c, image("bad/text-named.jpg"));
    let outcomes = c.handle(event("s3-multiple-records.json")).await.unwrap();
    assert_eq!(outcomes[0], RecordOutcome::Written(4));
    assert!(
        matches!(&outcomes[1], RecordOutcome::Skipped(r) if r.contains("UNSUPPORTED_FORMAT")),
        "{:?}",
        outcomes[1]
    );
    assert_eq!(outcomes[2], RecordOutcome::Written(4));
    let rotated = c
        .store
        .object(DEST, "large/uploads/storm-exif-orientation6.jpg")
        .unwrap();
    assert_eq!(
        (
            rotated.metadata["width"].as_str(),
            rotated.metadata["height"].as_str()
        ),
        ("800", "1200")
    );
    assert!(
        c.store
            .keys(DEST)
            .iter()
            .all(|k| !k.contains("not-an-image")),
        "no output for a bad file"
    );
}

#[tokio::test]
async fn every_bad_file_is_skipped_with_its_reason_and_no_output() {
    let c = compressor();
    let files = [
        ("zero-bytes.jpg", "empty"),
        ("text-named.jpg", "UNSUPPORTED_FORMAT"),
        ("garden-truncated-40pct.jpg", "TRUNCATED"),
        ("video-001-progressive-truncated.jpeg", "TRUNCATED"),
        ("invalid-zlib.png", "CORRUPT"),
        ("png-bomb-50000x50000.png", "TOO_MANY_PIXELS"),
        ("jpeg-sof-65500x65500.jpg", "TOO_MANY_PIXELS"),
        ("video-001-truncated-with-eoi.jpeg", "TRUNCATED"),
        (
            "tiff-deflate-8184x8184-rgba16.tif",
            "IMAGE_TOO_LARGE_FOR_MEMORY",
        ),
        (
            "webp-animated-9000x9000-lossless.webp",
            "IMAGE_TOO_LARGE_FOR_MEMORY",
        ),
        ("gif-1x1-screen-23000x23000-frame.gif", "TOO_MANY_PIXELS"),
    ];
    for (file, reason) in files {
        c.store.insert(SOURCE, file, image(&format!("bad/{file}")));
        let mut e = event("s3-put-emulator.json");
        e["Records"][0]["s3"]["object"]["key"] = file.into();
        let outcomes = c.handle(e).await.unwrap();
        match &outcomes[0] {
            RecordOutcome::Skipped(r) => assert!(r.contains(reason), "{file}: {r}"),
            other => panic!("{file}: {other:?}"),
        }
    }
    assert!(c.store.keys(DEST).is_empty());
}

#[tokio::test]
async fn transient_failures_fail_the_invocation_and_a_retry_completes() {
    let c = compressor();
    c.store.insert(
        SOURCE,
        "photos/garden.jpg",
        image("good/garden-2560x1600.jpg"),
    );
    c.store
        .faults
        .fail_next("head", PortError::Throttled("s3 SlowDown".into()));
    assert!(c.handle(event("s3-put-emulator.json")).await.is_err());
    assert!(c.store.keys(DEST).is_empty());
    for _ in 0..2 {
        c.store
            .faults
            .fail_next("put", PortError::Unavailable("timeout".into()));
    }
    assert!(c.handle(event("s3-put-emulator.json")).await.is_err());
    assert!(c.handle(event("s3-put-emulator.json")).await.is_err());
    assert_eq!(
        c.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::Written(4)]
    );
    assert_eq!(c.store.keys(DEST).len(), 4);
}

#[tokio::test]
async fn a_retry_writes_only_the_missing_variants() {
    let store = InMemoryObjectStore::default();
    store.insert(
        SOURCE,
        "photos/garden.jpg",
        image("good/garden-2560x1600.jpg"),
    );
    let mut only_thumbnail = settings();
    only_thumbnail.pipeline.variants = parse_variants("thumbnail:150").unwrap();
    let first = Compressor::new(store, only_thumbnail);
    assert_eq!(
        first.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::Written(1)]
    );
    let full = Compressor::new(first.store, settings());
    assert_eq!(
        full.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::Written(3)]
    );
    assert_eq!(full.store.keys(DEST).len(), 4);
}

#[tokio::test]
async fn limits_and_guards_skip_without_downloading() {
    let mut s = settings();
    s.max_object_bytes = 1000;
    let c = Compressor::new(InMemoryObjectStore::default(), s);
    c.store.insert(
        SOURCE,
        "photos/garden.jpg",
        image("good/garden-2560x1600.jpg"),
    );
    let outcomes = c.handle(event("s3-put-emulator.json")).await.unwrap();
    assert!(matches!(&outcomes[0], RecordOutcome::Skipped(r) if r.contains("TOO_LARGE")));
    assert_eq!(
        c.store.faults.calls("get"),
        0,
        "size checked from HEAD, before downloading"
    );

    let c = compressor();
    let mut e = event("s3-put-emulator.json");
    e["Records"][0]["s3"]["bucket"]["name"] = DEST.into();
    let outcomes = c.handle(e).await.unwrap();
    assert!(matches!(&outcomes[0], RecordOutcome::Skipped(r) if r.contains("destination bucket")));
    assert_eq!(c.store.faults.total_calls(), 0);

    let outcomes = c.handle(event("s3-put-emulator.json")).await.unwrap();
    assert!(matches!(&outcomes[0], RecordOutcome::Skipped(r) if r.contains("no longer exists")));
}

#[tokio::test]
async fn non_creation_and_test_events_are_ignored() {
    let c = compressor();
    assert_eq!(
        c.handle(event("s3-removed.json")).await.unwrap(),
        [RecordOutcome::Ignored]
    );
    assert!(c
        .handle(event("s3-test-event.json"))
        .await
        .unwrap()
        .is_empty());
    assert!(c
        .handle(serde_json::json!("garbage"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(c.store.faults.total_calls(), 0);
}

#[tokio::test]
async fn real_aws_keys_are_decoded() {
    let c = compressor();
    c.store.insert(
        SOURCE,
        "photos/summer 2024/storm(1).jpg",
        image("good/storm-1920x1280.jpg"),
    );
    let outcomes = c.handle(event("s3-put.json")).await.unwrap();
    assert_eq!(outcomes, [RecordOutcome::Written(4)]);
    assert!(c
        .store
        .object(DEST, "thumbnail/photos/summer 2024/storm(1).jpg")
        .is_some());
}

#[tokio::test]
async fn webp_twins_are_written_and_checked_like_the_jpegs() {
    let mut with_webp = settings();
    with_webp.pipeline.webp_quality = Some(80);
    let c = Compressor::new(InMemoryObjectStore::default(), with_webp);
    c.store.insert(
        SOURCE,
        "photos/garden.jpg",
        image("good/garden-2560x1600.jpg"),
    );
    let outcomes = c.handle(event("s3-put-emulator.json")).await.unwrap();
    assert_eq!(outcomes, [RecordOutcome::Written(8)]);
    let webp = c.store.object(DEST, "large/photos/garden.webp").unwrap();
    assert_eq!(webp.content_type, "image/webp");
    assert_eq!(webp.metadata["width"], "1200");
    assert_eq!(
        webp.metadata["compressed-size"],
        webp.body.len().to_string()
    );
    let decoded =
        image::load_from_memory_with_format(&webp.body, image::ImageFormat::WebP).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (1200, 750));
    let jpeg = c.store.object(DEST, "large/photos/garden.jpg").unwrap();
    assert_eq!(jpeg.metadata["source-etag"], webp.metadata["source-etag"]);
    assert_eq!(
        c.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::AlreadyDone]
    );
    // A WebP missing for this version is written again, and nothing else.
    c.store
        .insert(DEST, "small/photos/garden.webp", b"stale".to_vec());
    assert_eq!(
        c.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::Written(1)]
    );
    let small = c.store.object(DEST, "small/photos/garden.webp").unwrap();
    assert!(small.body.starts_with(b"RIFF"));
}

static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The real pipeline, except that it panics (as a decoder bug would) on a PNG.
fn panics_on_png(
    bytes: &[u8],
    config: &PipelineConfig,
) -> Result<image_compressor::pipeline::Processed, image_compressor::pipeline::ImageError> {
    if bytes.starts_with(b"\x89PNG") {
        PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        panic!("a decoder bug met this image");
    }
    image_compressor::pipeline::process_image(bytes, config)
}

#[tokio::test]
async fn a_panic_in_the_pipeline_skips_that_record_and_the_instance_lives_on() {
    let mut c = compressor();
    c.pipeline = panics_on_png;
    insert_the_three_uploads(&c, b"plain text".to_vec());
    let outcomes = c.handle(event("s3-multiple-records.json")).await.unwrap();
    assert_eq!(
        PANICS.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "it really panicked"
    );
    assert!(
        matches!(&outcomes[0], RecordOutcome::Skipped(r) if r.contains("DECODER_PANIC")),
        "the panicking record is reported, not retried: {:?}",
        outcomes[0]
    );
    assert!(matches!(&outcomes[1], RecordOutcome::Skipped(_)));
    assert_eq!(
        outcomes[2],
        RecordOutcome::Written(4),
        "the next record still runs"
    );
    assert!(c.store.keys(DEST).iter().all(|k| !k.contains("spring")));
    // The same instance takes the next invocation.
    c.store.insert(
        SOURCE,
        "photos/garden.jpg",
        image("good/garden-2560x1600.jpg"),
    );
    let next = c.handle(event("s3-put-emulator.json")).await.unwrap();
    assert_eq!(next, [RecordOutcome::Written(4)]);
}

#[tokio::test]
async fn the_format_comes_from_the_bytes_whatever_the_name() {
    // With no suffix filter on the trigger, every upload arrives: upper-case extensions, none at
    // all, and files that are not images.
    let c = compressor();
    let mut e = event("s3-multiple-records.json");
    let uploads = [
        ("uploads/IMG_0001.JPG", image("good/storm-1920x1280.jpg")),
        ("uploads/scan", image("good/spring-rgba-1600x1200.png")),
        ("uploads/notes.txt", b"not an image at all".to_vec()),
    ];
    for (record, (key, bytes)) in e["Records"].as_array_mut().unwrap().iter_mut().zip(uploads) {
        record["s3"]["object"]["key"] = key.into();
        c.store.insert(SOURCE, key, bytes);
    }
    let outcomes = c.handle(e).await.unwrap();
    assert_eq!(outcomes[0], RecordOutcome::Written(4));
    assert_eq!(outcomes[1], RecordOutcome::Written(4));
    assert!(
        matches!(&outcomes[2], RecordOutcome::Skipped(r) if r.contains("UNSUPPORTED_FORMAT")),
        "{:?}",
        outcomes[2]
    );
    let keys = c.store.keys(DEST);
    assert!(
        keys.contains(&"large/uploads/IMG_0001.jpg".to_string()),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"thumbnail/uploads/scan.jpg".to_string()),
        "{keys:?}"
    );
    assert!(keys.iter().all(|k| !k.contains("notes")));
}

#[test]
fn the_metrics_emitted_are_the_catalogued_ones() {
    use adapters::metric_catalog::{capture, emitted_by};
    let emitted = capture(async {
        // Written, skipped (a bad file) and failed transiently.
        let c = compressor();
        insert_the_three_uploads(&c, image("bad/text-named.jpg"));
        c.handle(event("s3-multiple-records.json")).await.unwrap();
        c.store
            .faults
            .fail_next("head", PortError::Unavailable("s3 timeout".into()));
        assert!(c.handle(event("s3-put-emulator.json")).await.is_err());
    });
    assert_eq!(emitted.unwrap(), emitted_by("image-compressor"));
}
