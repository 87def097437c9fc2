//! image-compressor against the moto server: the emulator's own S3 notification (bucket → SQS) drives
//! the handler through the real S3 adapter.

use adapters::s3::S3ObjectStore;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
use image_compressor::{Compressor, RecordOutcome};
use integration_tests as h;
use integration_tests::fixtures::test_image;

#[tokio::test]
async fn upload_notification_variants_then_nothing_new() {
    let config = h::sdk_config().await;
    let s3 = adapters::aws::s3_client(&config);
    let source = h::create_bucket(&config, "uploads").await;
    let destination = h::create_bucket(&config, "variants").await;
    let queue = h::create_queue(&config, "uploads-events", false).await;
    let queue_arn = h::queue_arn(&config, &queue).await;
    s3.put_bucket_notification_configuration()
        .bucket(&source)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .queue_arn(queue_arn)
                        .events(Event::S3ObjectCreated)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

    let keys = [
        "photos/été 2024/rotated+gps.jpg",
        "photos/spring.png",
        "photos/broken.jpg",
    ];
    let bodies = [
        test_image("good/storm-exif-orientation6-gps.jpg"),
        test_image("good/spring-rgba-1600x1200.png"),
        test_image("bad/garden-truncated-40pct.jpg"),
    ];
    for (key, body) in keys.iter().zip(&bodies) {
        s3.put_object()
            .bucket(&source)
            .key(*key)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
    }
    let notifications = h::drain(&config, &queue).await;
    let mut records = Vec::new();
    for n in &notifications {
        let event: serde_json::Value = serde_json::from_str(n.body().unwrap()).unwrap();
        records.extend(event["Records"].as_array().cloned().unwrap_or_default());
    }
    assert_eq!(records.len(), 3, "one notification per upload");
    let event = serde_json::json!({ "Records": records });

    let settings = h::fixtures::compressor_settings(&destination);
    let compressor = Compressor::new(S3ObjectStore::new(s3.clone()), settings);
    let outcomes = compressor.handle(event.clone()).await.unwrap();
    let written = outcomes
        .iter()
        .filter(|o| **o == RecordOutcome::Written(4))
        .count();
    let skipped = outcomes
        .iter()
        .filter(|o| matches!(o, RecordOutcome::Skipped(r) if r.contains("TRUNCATED")))
        .count();
    assert_eq!((written, skipped), (2, 1), "{outcomes:?}");

    let listed = s3
        .list_objects_v2()
        .bucket(&destination)
        .send()
        .await
        .unwrap();
    let mut stored: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    stored.sort();
    assert_eq!(
        stored.len(),
        2 * (4 + 1),
        "four variants and a manifest each"
    );
    assert!(
        stored.iter().all(|k| !k.contains("broken")),
        "no output for the corrupt upload"
    );
    let large = s3
        .head_object()
        .bucket(&destination)
        .key("large/photos/été 2024/rotated+gps.jpg.jpg")
        .send()
        .await
        .unwrap();
    assert_eq!(large.content_type(), Some("image/jpeg"));
    assert_eq!(large.cache_control(), Some("public, max-age=86400"));
    let meta = large.metadata().unwrap();
    assert_eq!(
        (meta["width"].as_str(), meta["height"].as_str()),
        ("800", "1200"),
        "EXIF orientation applied"
    );
    assert_eq!(
        meta["source-key"],
        "photos/%C3%A9t%C3%A9 2024/rotated+gps.jpg"
    );
    assert_eq!(meta["original-size"], bodies[0].len().to_string());
    let body = s3
        .get_object()
        .bucket(&destination)
        .key("large/photos/été 2024/rotated+gps.jpg.jpg")
        .send()
        .await
        .unwrap();
    let jpeg = body.body.collect().await.unwrap().into_bytes();
    assert_eq!(meta["compressed-size"], jpeg.len().to_string());
    assert!(
        !jpeg.windows(4).any(|w| w == b"Exif"),
        "no EXIF (and so no GPS) in the output"
    );
    let decoded = image::load_from_memory(&jpeg).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (800, 1200));

    // The manifest names the current source and lists objects that exist with its sizes.
    let source_etag = s3
        .head_object()
        .bucket(&source)
        .key(keys[0])
        .send()
        .await
        .unwrap()
        .e_tag()
        .map(str::to_string);
    let manifest = s3
        .get_object()
        .bucket(&destination)
        .key("manifest/photos/été 2024/rotated+gps.jpg.json")
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.content_type(), Some("application/json"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&manifest.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(manifest["source"]["etag"].as_str(), source_etag.as_deref());
    // The 1920 × 1280 file shown upright (EXIF orientation 6).
    assert_eq!(
        (&manifest["source"]["width"], &manifest["source"]["height"]),
        (&serde_json::json!(1280), &serde_json::json!(1920))
    );
    let images = manifest["formats"][0]["images"].as_array().unwrap();
    assert_eq!(images.len(), 4);
    for img in images {
        let src = img["src"].as_str().unwrap();
        let key = percent_decode(src.trim_start_matches('/'));
        let head = s3
            .head_object()
            .bucket(&destination)
            .key(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_length(), img["bytes"].as_i64(), "{key}");
        assert_eq!(
            head.metadata().unwrap()["width"],
            img["width"].to_string(),
            "{key}"
        );
    }
    assert_eq!(
        manifest["fallback"]["src"],
        "/large/photos/%C3%A9t%C3%A9%202024/rotated%2Bgps.jpg.jpg"
    );

    // The same event again (an S3 retry or duplicate delivery) writes nothing.
    let again = compressor.handle(event).await.unwrap();
    assert_eq!(
        again
            .iter()
            .filter(|o| **o == RecordOutcome::AlreadyDone)
            .count(),
        2
    );
}

/// Holds the pipeline on a PNG until released (at most a minute, so a failing test cannot hang).
static HELD: (std::sync::Mutex<(bool, bool)>, std::sync::Condvar) = (
    std::sync::Mutex::new((false, false)),
    std::sync::Condvar::new(),
);
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

fn held_on_png(
    bytes: &[u8],
    config: &image_compressor::pipeline::PipelineConfig,
) -> Result<image_compressor::pipeline::Compressed, image_compressor::pipeline::ImageError> {
    if bytes.starts_with(b"\x89PNG") {
        let mut state = HELD.0.lock().unwrap();
        state.0 = true;
        HELD.1.notify_all();
        let _released = HELD
            .1
            .wait_timeout_while(state, PATIENCE, |s| !s.1)
            .unwrap();
    }
    image_compressor::pipeline::compress_image(bytes, config)
}

struct ReleaseOnDrop;

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        HELD.0.lock().unwrap().1 = true;
        HELD.1.notify_all();
    }
}

#[tokio::test]
async fn a_reupload_during_processing_wins_and_long_cjk_keys_get_variants() {
    let config = h::sdk_config().await;
    let s3 = adapters::aws::s3_client(&config);
    let source = h::create_bucket(&config, "reuploads").await;
    let destination = h::create_bucket(&config, "reupload-variants").await;
    let upload = |key: String, body: Vec<u8>| {
        let (s3, source) = (s3.clone(), source.clone());
        async move {
            s3.put_object()
                .bucket(&source)
                .key(&key)
                .body(ByteStream::from(body))
                .send()
                .await
                .unwrap()
                .e_tag()
                .unwrap()
                .to_string()
        }
    };
    // A notification for `key`, encoded as S3 encodes keys in events.
    let record = |key: &str| {
        let encoded: String = key
            .bytes()
            .map(|b| match b {
                b if b.is_ascii_alphanumeric() || b"-_.".contains(&b) => (b as char).to_string(),
                b => format!("%{b:02X}"),
            })
            .collect();
        serde_json::json!({"Records": [{"eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": source}, "object": {"key": encoded}}}]})
    };
    // Every format on: the AVIF and WebP files follow the same protocol as the JPEGs.
    let mut settings = h::fixtures::compressor_settings(&destination);
    settings.pipeline.webp_quality = Some(image_compressor::config::DEFAULT_WEBP_QUALITY);
    settings.pipeline.avif_quality = Some(image_compressor::config::DEFAULT_AVIF_QUALITY);
    let mut compressor = Compressor::new(S3ObjectStore::new(s3.clone()), settings);
    compressor.pipeline = held_on_png;

    // A (a PNG) is held in its pipeline while B replaces it and is processed in full.
    let key = "photos/garden.png".to_string();
    upload(key.clone(), test_image("good/spring-rgba-1600x1200.png")).await;
    let first = compressor.handle(record(&key));
    let second = async {
        let _release = ReleaseOnDrop;
        tokio::task::spawn_blocking(|| {
            let state = HELD.0.lock().unwrap();
            let (state, _) = HELD
                .1
                .wait_timeout_while(state, PATIENCE, |s| !s.0)
                .unwrap();
            assert!(state.0, "A's pipeline started");
        })
        .await
        .unwrap();
        let etag = upload(key.clone(), test_image("good/storm-1920x1280.jpg")).await;
        let outcome = compressor.handle(record(&key)).await.unwrap();
        assert!(
            matches!(outcome[..], [RecordOutcome::Written(n)] if n > 4),
            "{outcome:?}"
        );
        etag
    };
    let (first, b_etag) = tokio::join!(first, second);
    assert!(
        matches!(first.as_deref(), Ok([RecordOutcome::Written(_)])),
        "{first:?}"
    );
    let keys = keys_in(&s3, &destination).await;
    assert!(keys.iter().any(|k| k.ends_with(".avif")), "{keys:?}");
    for object in keys.iter().filter(|k| !k.starts_with("manifest/")) {
        let head = s3
            .head_object()
            .bucket(&destination)
            .key(object)
            .send()
            .await
            .unwrap();
        let meta = head.metadata().unwrap();
        assert_eq!(meta["source-etag"], b_etag, "{object}: B's, not A's");
    }
    for variant in ["thumbnail", "small", "medium", "large"] {
        let head = s3
            .head_object()
            .bucket(&destination)
            .key(domain::image::variant_key(variant, &key, "jpg"))
            .send()
            .await
            .unwrap();
        let meta = head.metadata().unwrap();
        assert_eq!(meta["source-etag"], b_etag, "{variant}: B's, not A's");
        if variant == "large" {
            assert_eq!(
                (meta["width"].as_str(), meta["height"].as_str()),
                ("1200", "800")
            );
        }
    }
    // The manifest left last is B's too, whichever invocation wrote one first.
    let manifest = manifest_at(&s3, &destination, &key).await;
    assert_eq!(manifest["source"]["etag"], b_etag.as_str());
    assert_eq!(manifest["source"]["width"], 1920);

    // A key of 220 CJK characters, and one of S3's 1024-byte limit.
    for key in [
        format!("photos/{}.jpg", "写".repeat(220)),
        format!("{}x", "写".repeat(341)),
    ] {
        let etag = upload(key.clone(), test_image("good/garden-2560x1600.jpg")).await;
        let outcome = compressor.handle(record(&key)).await.unwrap();
        assert!(
            matches!(outcome[..], [RecordOutcome::Written(n)] if n > 4),
            "{} bytes: {outcome:?}",
            key.len()
        );
        let large = domain::image::variant_key("large", &key, "jpg");
        assert!(large.len() <= 1024);
        let head = s3
            .head_object()
            .bucket(&destination)
            .key(&large)
            .send()
            .await
            .unwrap();
        let meta = head.metadata().unwrap();
        assert_eq!(meta["source-etag"], etag);
        // With the formats it records, within S3's 2 KB.
        assert_eq!(meta["formats-tried"], "avif.webp.jpg");
        let size: usize = meta.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(size <= 2048, "{size} bytes of metadata");
        let manifest = manifest_at(&s3, &destination, &key).await;
        assert_eq!(manifest["source"]["etag"], etag.as_str());
        assert_eq!(manifest["source"]["key"], key.as_str());
    }
}

/// The keys in `bucket`, sorted.
async fn keys_in(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let listed = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    let mut keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn modern_formats_only_where_smaller_and_jpeg_only_when_asked() {
    let config = h::sdk_config().await;
    let s3 = adapters::aws::s3_client(&config);
    let source = h::create_bucket(&config, "formats-uploads").await;
    let body = test_image("good/garden-2560x1600.jpg");
    let key = "photos/garden.jpg";
    s3.put_object()
        .bucket(&source)
        .key(key)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let event = serde_json::json!({"Records": [{"eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": source}, "object": {"key": "photos/garden.jpg"}}}]});

    // The modern formats on, WebP at a quality that makes it larger than the JPEG, AVIF at its
    // default: each is written exactly where the pipeline's file is smaller than the JPEG.
    let destination = h::create_bucket(&config, "formats-variants").await;
    let mut settings = h::fixtures::compressor_settings(&destination);
    settings.pipeline =
        image_compressor::pipeline::PipelineConfig::from_env(&settings::Env::from_pairs(&[
            ("FORMATS", "avif,webp,jpeg"),
            ("WEBP_QUALITY", "100"),
        ]))
        .unwrap();
    settings.pipeline.optimize = image_compressor::pipeline::Optimize::Speed;
    let expected = image_compressor::pipeline::compress_image(&body, &settings.pipeline).unwrap();
    let compressor = Compressor::new(S3ObjectStore::new(s3.clone()), settings);
    compressor.handle(event.clone()).await.unwrap();
    let mut written = Vec::new();
    for v in &expected.variants {
        written.push(domain::image::variant_key(&v.name, key, "jpg"));
        for (extension, file) in [("avif", &v.avif), ("webp", &v.webp)] {
            if v.smaller(file).is_some() {
                written.push(domain::image::variant_key(&v.name, key, extension));
            }
        }
    }
    written.sort();
    assert!(written.iter().any(|k| k.ends_with(".avif")), "{written:?}");
    assert!(!written.iter().any(|k| k.ends_with(".webp")), "{written:?}");
    let manifest_key = image_compressor::manifest::manifest_key(key);
    let mut stored = keys_in(&s3, &destination).await;
    stored.retain(|k| *k != manifest_key);
    assert_eq!(stored, written);
    // The manifest lists exactly those objects, each with its stored size.
    let manifest = manifest_at(&s3, &destination, key).await;
    let mut listed = Vec::new();
    for group in manifest["formats"].as_array().unwrap() {
        for img in group["images"].as_array().unwrap() {
            let path = img["src"].as_str().unwrap().split('?').next().unwrap();
            let object = percent_decode(path.trim_start_matches('/'));
            let head = s3
                .head_object()
                .bucket(&destination)
                .key(&object)
                .send()
                .await
                .unwrap();
            assert_eq!(head.content_length(), img["bytes"].as_i64(), "{object}");
            assert_eq!(head.content_type(), group["type"].as_str(), "{object}");
            listed.push(object);
        }
    }
    listed.sort();
    assert_eq!(listed, written);
    // Settled: the same event again writes nothing.
    assert_eq!(
        compressor.handle(event.clone()).await.unwrap(),
        [RecordOutcome::AlreadyDone]
    );

    // FORMATS=jpeg: JPEGs and the manifest only.
    let destination = h::create_bucket(&config, "jpeg-variants").await;
    let mut settings = h::fixtures::compressor_settings(&destination);
    settings.pipeline = image_compressor::pipeline::PipelineConfig::from_env(
        &settings::Env::from_pairs(&[("FORMATS", "jpeg")]),
    )
    .unwrap();
    let compressor = Compressor::new(S3ObjectStore::new(s3.clone()), settings);
    assert_eq!(
        compressor.handle(event).await.unwrap(),
        [RecordOutcome::Written(4)]
    );
    let stored = keys_in(&s3, &destination).await;
    assert_eq!(stored.len(), 5, "{stored:?}");
    assert!(stored
        .iter()
        .all(|k| k.ends_with(".jpg") || *k == manifest_key));
    let manifest = manifest_at(&s3, &destination, key).await;
    assert_eq!(manifest["formats"].as_array().unwrap().len(), 1);
    assert_eq!(manifest["formats"][0]["type"], "image/jpeg");
}

/// The manifest of `source_key`, parsed.
async fn manifest_at(s3: &aws_sdk_s3::Client, bucket: &str, source_key: &str) -> serde_json::Value {
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(image_compressor::manifest::manifest_key(source_key))
        .send()
        .await
        .unwrap();
    serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap()
}

/// The key a manifest's URL path names.
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&path[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}
