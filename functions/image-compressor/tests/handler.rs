//! The image-compressor handler over the in-memory object store, driven by `events/image-compressor/`.

use domain::image::{parse_variants, variant_key};
use domain::ports::{
    metadata_bytes, NewObject, ObjectStore, MAX_METADATA_BYTES, MAX_OBJECT_KEY_BYTES,
};
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
        cache_control: image_compressor::config::DEFAULT_CACHE_CONTROL.into(),
        pipeline: PipelineConfig {
            variants: parse_variants("thumbnail:150,small:300,medium:600,large:1200").unwrap(),
            optimize: image_compressor::pipeline::Optimize::Speed,
            webp_quality: None,
            avif_quality: None,
            ..PipelineConfig::default()
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
            "large/photos/garden.jpg.jpg",
            "manifest/photos/garden.jpg.json",
            "medium/photos/garden.jpg.jpg",
            "small/photos/garden.jpg.jpg",
            "thumbnail/photos/garden.jpg.jpg"
        ]
    );
    let large = c.store.object(DEST, "large/photos/garden.jpg.jpg").unwrap();
    assert_eq!(large.content_type, "image/jpeg");
    assert_eq!(large.cache_control, "public, no-cache");
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
        .object(DEST, "large/uploads/storm-exif-orientation6.jpg.jpg")
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
    assert_eq!(c.store.keys(DEST).len(), 4 + 1, "variants and the manifest");
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
    assert_eq!(
        full.store.keys(DEST).len(),
        4 + 1,
        "variants and the manifest"
    );
    let manifest = manifest_of(&full.store, "photos/garden.jpg");
    assert_eq!(
        manifest["formats"][0]["images"].as_array().unwrap().len(),
        4
    );
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
        .object(DEST, "thumbnail/photos/summer 2024/storm(1).jpg.jpg")
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
    let webp = c
        .store
        .object(DEST, "large/photos/garden.jpg.webp")
        .unwrap();
    assert_eq!(webp.content_type, "image/webp");
    assert_eq!(webp.metadata["width"], "1200");
    assert_eq!(
        webp.metadata["compressed-size"],
        webp.body.len().to_string()
    );
    let decoded =
        image::load_from_memory_with_format(&webp.body, image::ImageFormat::WebP).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (1200, 750));
    let jpeg = c.store.object(DEST, "large/photos/garden.jpg.jpg").unwrap();
    assert_eq!(jpeg.metadata["source-etag"], webp.metadata["source-etag"]);
    assert_eq!(
        c.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::AlreadyDone]
    );
    // A WebP missing for this version is written again, then its JPEG (which records it), and
    // nothing else.
    c.store
        .insert(DEST, "small/photos/garden.jpg.webp", b"stale".to_vec());
    assert_eq!(
        c.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::Written(2)]
    );
    let small = c
        .store
        .object(DEST, "small/photos/garden.jpg.webp")
        .unwrap();
    assert!(small.body.starts_with(b"RIFF"));
}

static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The real pipeline, except that it panics (as a decoder bug would) on a PNG.
fn panics_on_png(
    bytes: &[u8],
    config: &PipelineConfig,
) -> Result<image_compressor::pipeline::Compressed, image_compressor::pipeline::ImageError> {
    if bytes.starts_with(b"\x89PNG") {
        PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        panic!("a decoder bug met this image");
    }
    image_compressor::pipeline::compress_image(bytes, config)
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
        keys.contains(&"large/uploads/IMG_0001.JPG.jpg".to_string()),
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
    use telemetry::metric_catalog::{capture, emitted_by};
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

/// `s3-put-emulator.json` for another key (form-encoded, as S3 sends keys).
fn event_for(key: &str) -> Value {
    let encoded: String = key
        .bytes()
        .map(|b| match b {
            b' ' => "+".to_string(),
            b if b.is_ascii_alphanumeric() || b"-_.".contains(&b) => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect();
    let mut e = event("s3-put-emulator.json");
    e["Records"][0]["s3"]["object"]["key"] = encoded.into();
    e
}

const VARIANTS: [&str; 4] = ["thumbnail", "small", "medium", "large"];

/// Every JPEG variant of `key` carries `etag` as its source and has the `large` size given.
fn assert_variants_of(
    c: &Compressor<InMemoryObjectStore>,
    key: &str,
    etag: &str,
    large: (&str, &str),
) {
    for variant in VARIANTS {
        let output = variant_key(variant, key, "jpg");
        let object = c
            .store
            .object(DEST, &output)
            .unwrap_or_else(|| panic!("{output} exists"));
        assert_eq!(object.metadata["source-etag"], etag, "{output}");
        if variant == "large" {
            let size = (
                object.metadata["width"].as_str(),
                object.metadata["height"].as_str(),
            );
            assert_eq!(size, large, "{output}");
            let decoded = image::load_from_memory(&object.body).unwrap();
            assert_eq!(
                (decoded.width().to_string(), decoded.height().to_string()),
                (large.0.to_string(), large.1.to_string()),
                "{output}: the pixels are the source's"
            );
        }
    }
}

#[tokio::test]
async fn uploads_that_differ_only_in_their_extension_never_share_a_variant() {
    let c = compressor();
    let uploads = [
        (
            "photos/a.png",
            "good/spring-rgba-1600x1200.png",
            ("1200", "900"),
        ),
        ("photos/a.jpg", "good/garden-2560x1600.jpg", ("1200", "750")),
        ("photos/a", "good/storm-1920x1280.jpg", ("1200", "800")),
    ];
    for (key, file, _) in uploads {
        c.store.insert(SOURCE, key, image(file));
        assert_eq!(
            c.handle(event_for(key)).await.unwrap(),
            [RecordOutcome::Written(4)]
        );
    }
    assert_eq!(
        c.store.keys(DEST).len(),
        3 * (4 + 1),
        "{:?}",
        c.store.keys(DEST)
    );
    for (key, _, large) in uploads {
        let etag = c.store.object(SOURCE, key).unwrap().etag;
        assert_variants_of(&c, key, &etag, large);
        // A retry of any of them finds its own variants done: nothing flips back and forth.
        assert_eq!(
            c.handle(event_for(key)).await.unwrap(),
            [RecordOutcome::AlreadyDone]
        );
    }
    assert!(c
        .store
        .keys(DEST)
        .contains(&"thumbnail/photos/a.png.jpg".to_string()));
}

/// Holds a pipeline run on a PNG until the test releases it.
struct Gate {
    state: std::sync::Mutex<(bool, bool)>,
    changed: std::sync::Condvar,
}

static GATE: Gate = Gate {
    state: std::sync::Mutex::new((false, false)),
    changed: std::sync::Condvar::new(),
};
const GATE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

impl Gate {
    /// Pipeline side: says it has started, then waits for the release.
    fn hold(&self) {
        let mut state = self.state.lock().unwrap();
        state.0 = true;
        self.changed.notify_all();
        let _released = self
            .changed
            .wait_timeout_while(state, GATE_PATIENCE, |s| !s.1)
            .unwrap();
    }

    fn wait_until_held(&self) {
        let state = self.state.lock().unwrap();
        let (state, _) = self
            .changed
            .wait_timeout_while(state, GATE_PATIENCE, |s| !s.0)
            .unwrap();
        assert!(state.0, "the first upload's pipeline started");
    }

    fn release(&self) {
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }
}

/// Releases the gate however the test ends, so a held pipeline never outlives it.
struct ReleaseOnDrop;

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        GATE.release();
    }
}

/// The real pipeline, held at the gate when it meets a PNG.
fn held_on_png(
    bytes: &[u8],
    config: &PipelineConfig,
) -> Result<image_compressor::pipeline::Compressed, image_compressor::pipeline::ImageError> {
    if bytes.starts_with(b"\x89PNG") {
        GATE.hold();
    }
    image_compressor::pipeline::compress_image(bytes, config)
}

#[tokio::test]
async fn a_reupload_is_never_shadowed_by_the_older_upload_finishing_last() {
    let mut c = compressor();
    c.pipeline = held_on_png;
    let key = "photos/garden.jpg";
    // A: a PNG whose processing is slow (held); B replaces it under the same key meanwhile.
    c.store
        .insert(SOURCE, key, image("good/spring-rgba-1600x1200.png"));
    let first = c.handle(event("s3-put-emulator.json"));
    let second = async {
        let _release = ReleaseOnDrop;
        tokio::task::spawn_blocking(|| GATE.wait_until_held())
            .await
            .unwrap();
        c.store
            .insert(SOURCE, key, image("good/storm-1920x1280.jpg"));
        let outcome = c.handle(event("s3-put-emulator.json")).await.unwrap();
        assert_eq!(outcome, [RecordOutcome::Written(4)]);
        c.store
            .object(DEST, &variant_key("large", key, "jpg"))
            .unwrap()
            .body
    };
    let (first, b_large) = tokio::join!(first, second);
    assert!(
        matches!(first.as_deref(), Ok([RecordOutcome::Written(_)])),
        "{first:?}"
    );
    // A's invocation finished last, yet the variants are B's: its pixels, its ETag.
    let b_etag = c.store.object(SOURCE, key).unwrap().etag;
    assert_variants_of(&c, key, &b_etag, ("1200", "800"));
    assert_eq!(
        c.store
            .object(DEST, &variant_key("large", key, "jpg"))
            .unwrap()
            .body,
        b_large,
        "the very bytes B's own invocation wrote"
    );
    assert_eq!(
        c.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::AlreadyDone]
    );
}

#[tokio::test]
async fn variants_are_labelled_with_the_etag_of_the_object_their_pixels_come_from() {
    let c = compressor();
    let key = "photos/garden.jpg";
    let (a, b) = (
        image("good/garden-2560x1600.jpg"),
        image("good/storm-1920x1280.jpg"),
    );
    c.store.insert(SOURCE, key, a.clone());
    // B replaces A after the handler's HEAD, just before its download; then A is uploaded again
    // (the same bytes, so the same ETag) just before the first variant is written.
    c.store
        .before_next("get", move |s| s.insert(SOURCE, key, b));
    c.store
        .before_next("put", move |s| s.insert(SOURCE, key, a));
    let outcome = c.handle(event("s3-put-emulator.json")).await.unwrap();
    assert!(
        matches!(outcome.as_slice(), [RecordOutcome::Written(_)]),
        "{outcome:?}"
    );
    // A is current: its variants carry A's ETag and A's pixels (never B's under A's ETag).
    let a_etag = c.store.object(SOURCE, key).unwrap().etag;
    assert_variants_of(&c, key, &a_etag, ("1200", "750"));
    // So A's second upload, whose own record comes next, rightly finds them done.
    assert_eq!(
        c.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::AlreadyDone]
    );
}

#[tokio::test]
async fn an_object_replaced_during_every_round_is_retried_not_half_done() {
    let c = compressor();
    let key = "photos/garden.jpg";
    let (a, b) = (
        image("good/garden-2560x1600.jpg"),
        image("good/storm-1920x1280.jpg"),
    );
    c.store.insert(SOURCE, key, a.clone());
    for round in 0..image_compressor::MAX_ROUNDS {
        let next = if round % 2 == 0 { b.clone() } else { a.clone() };
        c.store
            .before_next("get", move |s| s.insert(SOURCE, key, next));
    }
    assert!(c.handle(event("s3-put-emulator.json")).await.is_err());
    assert!(c.store.keys(DEST).is_empty());
    // Lambda's retry meets a settled object.
    assert_eq!(
        c.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::Written(4)]
    );
    let current = c.store.object(SOURCE, key).unwrap();
    let large = if current.body == a {
        ("1200", "750")
    } else {
        ("1200", "800")
    };
    assert_variants_of(&c, key, &current.etag, large);
}

#[tokio::test]
async fn the_longest_keys_s3_accepts_get_their_variants() {
    let c = compressor();
    let keys = [
        // 220 CJK characters: 660 bytes, about 2 KB once percent-encoded for metadata.
        format!("photos/{}.jpg", "写".repeat(220)),
        // 1024 bytes, S3's limit: its readable variant keys would be longer than that.
        format!("{}x", "写".repeat(341)),
    ];
    for key in &keys {
        assert!(key.len() <= MAX_OBJECT_KEY_BYTES);
        c.store
            .insert(SOURCE, key, image("good/garden-2560x1600.jpg"));
        assert_eq!(
            c.handle(event_for(key)).await.unwrap(),
            [RecordOutcome::Written(4)],
            "{} bytes",
            key.len()
        );
        let etag = c.store.object(SOURCE, key).unwrap().etag;
        assert_variants_of(&c, key, &etag, ("1200", "750"));
        for variant in VARIANTS {
            let object = c
                .store
                .object(DEST, &variant_key(variant, key, "jpg"))
                .unwrap();
            assert!(metadata_bytes(&object.metadata) <= MAX_METADATA_BYTES);
        }
        assert_eq!(
            c.handle(event_for(key)).await.unwrap(),
            [RecordOutcome::AlreadyDone]
        );
    }
    let outputs = c.store.keys(DEST);
    assert_eq!(outputs.len(), 2 * (4 + 1));
    assert!(outputs.contains(&format!(
        "manifest.sha256/{}.json",
        domain::image::source_key_sha256(&keys[1])
    )));
    assert!(outputs.iter().all(|k| k.len() <= MAX_OBJECT_KEY_BYTES));
    assert!(outputs.contains(&format!("large/{}.jpg", keys[0])));
    assert!(outputs.contains(&format!(
        "large.sha256/{}.jpg",
        domain::image::source_key_sha256(&keys[1])
    )));
}

/// The manifest written for `source_key`, parsed.
fn manifest_of(store: &InMemoryObjectStore, source_key: &str) -> Value {
    let object = store
        .object(DEST, &image_compressor::manifest::manifest_key(source_key))
        .unwrap_or_else(|| panic!("no manifest for {source_key}"));
    assert_eq!(object.content_type, "application/json");
    serde_json::from_slice(&object.body).unwrap()
}

#[tokio::test]
async fn the_manifest_lists_every_variant_as_stored_and_is_written_last() {
    let mut with_webp = settings();
    with_webp.pipeline.webp_quality = Some(80);
    with_webp.pipeline.avif_quality = Some(70);
    let c = Compressor::new(InMemoryObjectStore::default(), with_webp);
    c.store.insert(
        SOURCE,
        "photos/garden.jpg",
        image("good/garden-2560x1600.jpg"),
    );
    // The manifest is the last object written: when the twelfth file (4 variants in AVIF, WebP and
    // JPEG: each smaller than the JPEG here) is written, it is not there.
    let last_variant_put = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    for _ in 0..12 {
        let seen = last_variant_put.clone();
        c.store.before_next("put", move |s| {
            seen.lock()
                .unwrap()
                .push(s.keys(DEST).iter().any(|k| k.starts_with("manifest/")));
        });
    }
    assert_eq!(
        c.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::Written(12)]
    );
    assert_eq!(*last_variant_put.lock().unwrap(), [false; 12]);
    assert_eq!(c.store.faults.calls("put"), 12 + 1);

    let source = c.store.object(SOURCE, "photos/garden.jpg").unwrap();
    let manifest = manifest_of(&c.store, "photos/garden.jpg");
    assert_eq!(manifest["source"]["etag"], source.etag.as_str());
    assert_eq!(manifest["source"]["key"], "photos/garden.jpg");
    assert_eq!(manifest["source"]["width"], 2560);
    assert_eq!(manifest["source"]["height"], 1600);
    let types: Vec<&str> = manifest["formats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["image/avif", "image/webp", "image/jpeg"]);
    // Every listed image is an object with that type, size and dimensions.
    for group in manifest["formats"].as_array().unwrap() {
        let images = group["images"].as_array().unwrap();
        assert_eq!(images.len(), 4);
        let mut srcset = Vec::new();
        for img in images {
            // A JPEG's URL also names the formats beside it, for the edge function.
            let key = img["src"].as_str().unwrap().split('?').next().unwrap();
            let object = c.store.object(DEST, key.trim_start_matches('/')).unwrap();
            assert_eq!(object.content_type, group["type"].as_str().unwrap());
            assert_eq!(img["bytes"], object.body.len());
            assert_eq!(img["width"].to_string(), object.metadata["width"]);
            assert_eq!(img["height"].to_string(), object.metadata["height"]);
            srcset.push(format!(
                "{} {}w",
                img["src"].as_str().unwrap(),
                img["width"]
            ));
        }
        assert_eq!(group["srcset"], srcset.join(", "));
    }
    assert_eq!(
        manifest["fallback"]["src"],
        "/large/photos/garden.jpg.jpg?formats=avif.webp"
    );
    let stored = c
        .store
        .object(DEST, "manifest/photos/garden.jpg.json")
        .unwrap();
    assert_eq!(stored.cache_control, "public, no-cache");
    assert_eq!(
        stored.metadata["source-etag"],
        image_compressor::event::metadata_value(&source.etag)
    );

    // A repeat writes nothing, not even the manifest.
    assert_eq!(
        c.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::AlreadyDone]
    );
    assert_eq!(c.store.faults.calls("put"), 12 + 1);
}

#[tokio::test]
async fn variants_already_done_still_get_their_missing_manifest() {
    let c = compressor();
    c.store.insert(
        SOURCE,
        "photos/garden.jpg",
        image("good/garden-2560x1600.jpg"),
    );
    // The manifest's write fails after every variant is written: the retry finds the variants done.
    for _ in 0..4 {
        c.store.before_next("put", |_| {});
    }
    c.store.before_next("put", |s| {
        s.faults
            .fail_next("put", PortError::Unavailable("timeout".into()))
    });
    assert!(c.handle(event("s3-put-emulator.json")).await.is_err());
    assert_eq!(c.store.keys(DEST).len(), 4, "the variants, no manifest");
    let gets = c.store.faults.calls("get");
    assert_eq!(
        c.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::AlreadyDone]
    );
    assert_eq!(c.store.faults.calls("get"), gets, "nothing downloaded");
    let manifest = manifest_of(&c.store, "photos/garden.jpg");
    assert_eq!(
        manifest["formats"][0]["images"].as_array().unwrap().len(),
        4
    );
}

#[tokio::test]
async fn a_re_upload_rewrites_the_manifest_after_its_variants() {
    let c = compressor();
    c.store.insert(
        SOURCE,
        "photos/garden.jpg",
        image("good/garden-2560x1600.jpg"),
    );
    c.handle(event("s3-put-emulator.json")).await.unwrap();
    let first = manifest_of(&c.store, "photos/garden.jpg");
    c.store.insert(
        SOURCE,
        "photos/garden.jpg",
        image("good/storm-1920x1280.jpg"),
    );
    // While the new variants are written, the manifest there is still the first one.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    for _ in 0..4 {
        let seen = seen.clone();
        c.store.before_next("put", move |s| {
            let m = s.object(DEST, "manifest/photos/garden.jpg.json").unwrap();
            seen.lock()
                .unwrap()
                .push(serde_json::from_slice::<Value>(&m.body).unwrap()["source"]["etag"].clone());
        });
    }
    assert_eq!(
        c.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::Written(4)]
    );
    assert_eq!(
        *seen.lock().unwrap(),
        vec![first["source"]["etag"].clone(); 4]
    );
    let second = manifest_of(&c.store, "photos/garden.jpg");
    let current = c.store.object(SOURCE, "photos/garden.jpg").unwrap().etag;
    assert_eq!(second["source"]["etag"], current.as_str());
    assert_ne!(first["source"]["etag"], second["source"]["etag"]);
    assert_eq!(second["source"]["width"], 1920);
    assert_eq!(second["fallback"]["height"], 800);
}

#[tokio::test]
async fn a_manifest_written_for_a_replaced_object_is_rewritten_for_the_current_one() {
    let c = compressor();
    let key = "photos/garden.jpg";
    c.store
        .insert(SOURCE, key, image("good/garden-2560x1600.jpg"));
    // The object is replaced just before the manifest of the first version is written.
    for _ in 0..4 {
        c.store.before_next("put", |_| {});
    }
    c.store.before_next("put", move |s| {
        s.insert(SOURCE, key, image("good/storm-1920x1280.jpg"))
    });
    assert_eq!(
        c.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::Written(8)]
    );
    let current = c.store.object(SOURCE, key).unwrap().etag;
    let manifest = manifest_of(&c.store, key);
    assert_eq!(manifest["source"]["etag"], current.as_str());
    assert_eq!(manifest["source"]["width"], 1920);
    for img in manifest["formats"][0]["images"].as_array().unwrap() {
        let object = c
            .store
            .object(DEST, img["src"].as_str().unwrap().trim_start_matches('/'))
            .unwrap();
        assert_eq!(
            object.metadata["source-etag"],
            image_compressor::event::metadata_value(&current)
        );
    }
}

#[tokio::test]
async fn variants_without_the_manifests_fields_are_written_again() {
    let c = compressor();
    c.store.insert(
        SOURCE,
        "photos/garden.jpg",
        image("good/garden-2560x1600.jpg"),
    );
    c.handle(event("s3-put-emulator.json")).await.unwrap();
    // A variant written by a version that did not record the source's size.
    let mut old = c.store.object(DEST, "small/photos/garden.jpg.jpg").unwrap();
    old.metadata.remove("source-width");
    c.store
        .put(NewObject {
            bucket: DEST.into(),
            key: "small/photos/garden.jpg.jpg".into(),
            body: old.body,
            content_type: old.content_type,
            cache_control: old.cache_control,
            metadata: old.metadata,
        })
        .await
        .unwrap();
    assert_eq!(
        c.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::Written(1)]
    );
}

/// Keys in the destination bucket ending with `.{extension}`.
fn keys_ending(store: &InMemoryObjectStore, extension: &str) -> Vec<String> {
    let mut keys: Vec<String> = store
        .keys(DEST)
        .into_iter()
        .filter(|k| k.ends_with(&format!(".{extension}")))
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn modern_formats_are_written_only_where_smaller_and_listed_exactly() {
    // WebP at quality 100 is larger than the JPEG at 85 on a photo; AVIF at 80 is smaller.
    let mut both = settings();
    both.pipeline.webp_quality = Some(100);
    both.pipeline.avif_quality = Some(80);
    let expected = image_compressor::pipeline::compress_image(
        &image("good/garden-2560x1600.jpg"),
        &both.pipeline,
    )
    .unwrap();
    let c = Compressor::new(InMemoryObjectStore::default(), both);
    c.store.insert(
        SOURCE,
        "photos/garden.jpg",
        image("good/garden-2560x1600.jpg"),
    );
    c.handle(event("s3-put-emulator.json")).await.unwrap();
    let (mut webp_skipped, mut avif_written) = (0, 0);
    for v in &expected.variants {
        let jpeg = c
            .store
            .object(DEST, &variant_key(&v.name, "photos/garden.jpg", "jpg"))
            .unwrap();
        assert_eq!(jpeg.body, v.jpeg, "{}", v.name);
        let mut written = Vec::new();
        for (extension, file) in [("avif", &v.avif), ("webp", &v.webp)] {
            let file = file.as_ref().unwrap();
            let stored = c
                .store
                .object(DEST, &variant_key(&v.name, "photos/garden.jpg", extension));
            if file.len() < v.jpeg.len() {
                let stored = stored.unwrap_or_else(|| panic!("{} {extension} missing", v.name));
                assert_eq!(&stored.body, file);
                assert_eq!(stored.content_type, format!("image/{extension}"));
                assert_eq!(stored.metadata["source-etag"], jpeg.metadata["source-etag"]);
                written.push(extension);
                avif_written += usize::from(extension == "avif");
            } else {
                assert!(stored.is_none(), "{} {extension} is not smaller", v.name);
                webp_skipped += usize::from(extension == "webp");
            }
        }
        written.push("jpg");
        assert_eq!(jpeg.metadata["formats-written"], written.join("."));
        assert_eq!(jpeg.metadata["formats-tried"], "avif.webp.jpg");
    }
    assert_eq!(
        (avif_written, webp_skipped),
        (4, 4),
        "both cases are exercised"
    );
    // The manifest lists exactly the objects there are, and each JPEG's URL names its AVIF.
    let manifest = manifest_of(&c.store, "photos/garden.jpg");
    let mut listed: Vec<String> = Vec::new();
    for group in manifest["formats"].as_array().unwrap() {
        for img in group["images"].as_array().unwrap() {
            let src = img["src"].as_str().unwrap();
            let path = src.split('?').next().unwrap().trim_start_matches('/');
            assert!(c.store.object(DEST, path).is_some(), "{src}");
            listed.push(path.to_string());
            if path.ends_with(".jpg") {
                assert!(src.ends_with(".jpg?formats=avif"), "{src}");
            }
        }
    }
    listed.sort();
    let mut stored: Vec<String> = c
        .store
        .keys(DEST)
        .into_iter()
        .filter(|k| !k.starts_with("manifest/"))
        .collect();
    stored.sort();
    assert_eq!(listed, stored);
    assert!(keys_ending(&c.store, "webp").is_empty());
    // A format tried and not kept is settled: a repeat writes nothing.
    let puts = c.store.faults.calls("put");
    assert_eq!(
        c.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::AlreadyDone]
    );
    assert_eq!(c.store.faults.calls("put"), puts);
}

#[tokio::test]
async fn another_versions_file_in_a_skipped_format_is_replaced_not_left_behind() {
    // An earlier upload's WebP at this key (smaller back then): this version's WebP is not smaller
    // than its JPEG, but the old one must not go on being served for the new picture.
    let mut webp = settings();
    webp.pipeline.webp_quality = Some(100);
    let c = Compressor::new(InMemoryObjectStore::default(), webp);
    c.store.insert(
        SOURCE,
        "photos/garden.jpg",
        image("good/garden-2560x1600.jpg"),
    );
    c.store
        .put(NewObject {
            bucket: DEST.into(),
            key: "small/photos/garden.jpg.webp".into(),
            body: b"an older picture".to_vec(),
            content_type: "image/webp".into(),
            cache_control: "public, no-cache".into(),
            metadata: [("source-etag".to_string(), "\"older\"".to_string())].into(),
        })
        .await
        .unwrap();
    c.handle(event("s3-put-emulator.json")).await.unwrap();
    let small = c
        .store
        .object(DEST, "small/photos/garden.jpg.webp")
        .unwrap();
    assert!(small.body.starts_with(b"RIFF"));
    let jpeg = c.store.object(DEST, "small/photos/garden.jpg.jpg").unwrap();
    assert_eq!(small.metadata["source-etag"], jpeg.metadata["source-etag"]);
    assert_eq!(jpeg.metadata["formats-written"], "webp.jpg");
    // The other variants' WebPs were not smaller and had no predecessor: not written.
    assert_eq!(
        keys_ending(&c.store, "webp"),
        ["small/photos/garden.jpg.webp"]
    );
    let manifest = manifest_of(&c.store, "photos/garden.jpg");
    assert_eq!(manifest["formats"][0]["type"], "image/webp");
    assert_eq!(
        manifest["formats"][0]["images"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn a_format_enabled_later_is_tried_for_uploads_already_done() {
    // Compressed with JPEG only; then AVIF is enabled: the JPEGs record that it was never tried, so
    // the next event for the upload encodes it (and rewrites the JPEGs recording it).
    let mut later = compressor();
    later.store.insert(
        SOURCE,
        "photos/garden.jpg",
        image("good/garden-2560x1600.jpg"),
    );
    later.handle(event("s3-put-emulator.json")).await.unwrap();
    assert!(keys_ending(&later.store, "avif").is_empty());
    let mut with_avif = settings();
    with_avif.pipeline.avif_quality = Some(70);
    later.settings = std::sync::Arc::new(with_avif);
    assert_eq!(
        later.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::Written(8)]
    );
    assert_eq!(keys_ending(&later.store, "avif").len(), 4);
    let jpeg = later
        .store
        .object(DEST, "large/photos/garden.jpg.jpg")
        .unwrap();
    assert_eq!(jpeg.metadata["formats-tried"], "avif.jpg");
    assert_eq!(
        later.handle(event("s3-put-emulator.json")).await.unwrap(),
        [RecordOutcome::AlreadyDone]
    );
}
