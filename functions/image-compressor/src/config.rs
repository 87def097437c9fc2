//! image-compressor configuration, read once at cold start.

use adapters::config::AwsSettings;
use domain::image::{parse_variants, VariantSpec, DEFAULT_VARIANTS};
use settings::{ConfigError, Env};

use crate::encode::{avif, webp};
use crate::manifest::MANIFEST_PREFIX;
use crate::memory_budget::{image_budget, DEFAULT_FUNCTION_MEMORY_MB};
use crate::pipeline::{Optimize, PipelineConfig};
use crate::Settings;

#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    /// The bucket uploads arrive in, when known: must differ from the destination.
    pub source_bucket: Option<String>,
    pub aws: AwsSettings,
}

pub use crate::limits::{
    DEFAULT_MAX_DECODE_BYTES, DEFAULT_MAX_OBJECT_BYTES, DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_PIXELS_PER_BYTE,
};
/// A re-upload rewrites its variants under the same keys, so a cache may keep a variant but must ask
/// again (by its ETag, a cheap 304 while it is unchanged) before each use.
pub const DEFAULT_CACHE_CONTROL: &str = "public, no-cache";

/// `CACHE_CONTROL`, checked: a header value, and never `immutable`, since variant keys are not
/// versioned (a re-upload rewrites the same keys, and an immutable copy would outlive it).
fn cache_control(raw: Option<String>) -> Result<String, ConfigError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_CACHE_CONTROL.into());
    };
    let value = raw.trim();
    if !value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return Err(ConfigError::new(
            "CACHE_CONTROL",
            format!(
                "= {raw:?} must be a Cache-Control header value, e.g. {DEFAULT_CACHE_CONTROL:?}"
            ),
        ));
    }
    let immutable = value.split(',').any(|directive| {
        let name = directive.split('=').next().unwrap_or_default();
        name.trim().eq_ignore_ascii_case("immutable")
    });
    if immutable {
        return Err(ConfigError::new(
            "CACHE_CONTROL",
            format!(
                "= {raw:?} must not say `immutable`: a re-upload rewrites its variants under the same keys, \
                 and a cache would keep serving the replaced picture (e.g. {DEFAULT_CACHE_CONTROL:?} or \
                 \"public, max-age=300\")"
            ),
        ));
    }
    Ok(value.to_string())
}

/// The formats written by default (`FORMATS`): the JPEG every client reads, and the modern formats
/// beside it wherever they are smaller.
pub const DEFAULT_FORMATS: &str = "avif,webp,jpeg";
/// The qualities the formats are written at unless `WEBP_QUALITY` / `AVIF_QUALITY` say otherwise.
pub const DEFAULT_WEBP_QUALITY: u8 = webp::DEFAULT_QUALITY;
pub const DEFAULT_AVIF_QUALITY: u8 = avif::DEFAULT_QUALITY;

/// `FORMATS`, checked: which of WebP and AVIF are written beside the JPEG, which is always written
/// (the fallback every client reads) and must be listed.
fn formats(raw: Option<String>) -> Result<(bool, bool), ConfigError> {
    let raw = raw.unwrap_or_else(|| DEFAULT_FORMATS.into());
    let (mut jpeg, mut webp, mut avif) = (false, false, false);
    for name in raw.split(',').map(|n| n.trim().to_ascii_lowercase()) {
        match name.as_str() {
            "jpeg" | "jpg" => jpeg = true,
            "webp" => webp = true,
            "avif" => avif = true,
            _ => {
                return Err(ConfigError::new(
                    "FORMATS",
                    format!(
                    "= {raw:?}: {name:?} is not one of jpeg, webp, avif (e.g. {DEFAULT_FORMATS:?})"
                ),
                ))
            }
        }
    }
    if !jpeg {
        return Err(ConfigError::new(
            "FORMATS",
            format!("= {raw:?} must list jpeg: the JPEG is the fallback every client reads (e.g. {DEFAULT_FORMATS:?}, or \"jpeg\" alone)"),
        ));
    }
    Ok((webp, avif))
}

/// A format's quality setting: its default when the format is written and the setting unset, an
/// error when it is set for a format `FORMATS` leaves out (it would silently do nothing).
fn quality(env: &Env, name: &str, written: bool, default: u8) -> Result<Option<u8>, ConfigError> {
    match (written, env.get(name)) {
        (false, None) => Ok(None),
        (false, Some(raw)) => Err(ConfigError::new(
            name,
            format!("= {raw:?} is set but FORMATS does not list that format"),
        )),
        (true, _) => Ok(Some(env.number_in(name, u64::from(default), 1..=100)? as u8)),
    }
}

fn parse_color(name: &str, raw: &str) -> Result<[u8; 3], ConfigError> {
    let hex = raw.trim().trim_start_matches('#');
    let bad = || ConfigError::new(name, format!("= {raw:?} must be a colour like #ffffff"));
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
    Ok([channel(0)?, channel(2)?, channel(4)?])
}

impl PipelineConfig {
    /// The pipeline settings alone (also used by the `compress` example and the benchmarks).
    pub fn from_env(env: &Env) -> Result<PipelineConfig, ConfigError> {
        let defaults = PipelineConfig::default();
        let variants: Vec<VariantSpec> = parse_variants(
            &env.get("VARIANTS")
                .unwrap_or_else(|| DEFAULT_VARIANTS.into()),
        )
        .map_err(|e| ConfigError::new("VARIANTS", e))?;
        let (webp, avif) = formats(env.get("FORMATS"))?;
        if variants.iter().any(|v| v.name == MANIFEST_PREFIX) {
            return Err(ConfigError::new(
                "VARIANTS",
                format!("variant name `{MANIFEST_PREFIX}` is where each upload's manifest is written; choose another"),
            ));
        }
        Ok(PipelineConfig {
            variants,
            jpeg_quality: env.number_in(
                "JPEG_QUALITY",
                u64::from(defaults.jpeg_quality),
                1..=100,
            )? as u8,
            optimize: match env.get("JPEG_OPTIMIZE").as_deref().map(str::trim) {
                None => defaults.optimize,
                Some("size") => Optimize::Size,
                Some("speed") => Optimize::Speed,
                Some(other) => {
                    return Err(ConfigError::new(
                        "JPEG_OPTIMIZE",
                        format!("= {other:?} must be `size` or `speed`"),
                    ))
                }
            },
            webp_quality: quality(env, "WEBP_QUALITY", webp, webp::DEFAULT_QUALITY)?,
            avif_quality: quality(env, "AVIF_QUALITY", avif, avif::DEFAULT_QUALITY)?,
            max_pixels: env.number_in("MAX_PIXELS", defaults.max_pixels, 1..=1_000_000_000)?,
            max_pixels_per_byte: env.number_in(
                "MAX_PIXELS_PER_BYTE",
                defaults.max_pixels_per_byte,
                1..=1_000_000_000,
            )?,
            max_decode_bytes: env.number_in(
                "MAX_DECODE_BYTES",
                defaults.max_decode_bytes,
                1024 * 1024..=8 * 1024 * 1024 * 1024,
            )?,
            background: match env.get("BACKGROUND_COLOR") {
                Some(raw) => parse_color("BACKGROUND_COLOR", &raw)?,
                None => defaults.background,
            },
            // Lambda sets it from `MemorySize` (128 to 10240 MB).
            memory_budget: image_budget(env.number_in(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                DEFAULT_FUNCTION_MEMORY_MB,
                128..=10_240,
            )?),
        })
    }
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let destination_bucket = env.required("DESTINATION_BUCKET")?;
        let source_bucket = env.get("SOURCE_BUCKET");
        if source_bucket.as_deref() == Some(destination_bucket.as_str()) {
            return Err(ConfigError::new(
                "DESTINATION_BUCKET",
                "must differ from SOURCE_BUCKET: writing variants into the source bucket would trigger this function again",
            ));
        }
        Ok(Config {
            settings: Settings {
                destination_bucket,
                max_object_bytes: env.number_in(
                    "MAX_OBJECT_BYTES",
                    DEFAULT_MAX_OBJECT_BYTES,
                    1..=5 * 1024 * 1024 * 1024,
                )?,
                cache_control: cache_control(env.get("CACHE_CONTROL"))?,
                pipeline: PipelineConfig::from_env(env)?,
            },
            source_bucket,
            aws: AwsSettings::from_env(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_pipeline_is_what_an_empty_environment_deploys() {
        assert_eq!(
            PipelineConfig::from_env(&Env::from_pairs(&[])).unwrap(),
            PipelineConfig::default()
        );
    }

    #[test]
    fn refuses_to_write_into_the_source_bucket() {
        let e = Config::from_env(&Env::from_pairs(&[
            ("DESTINATION_BUCKET", "same"),
            ("SOURCE_BUCKET", "same"),
        ]))
        .unwrap_err();
        assert_eq!(e.name, "DESTINATION_BUCKET");
    }

    #[test]
    fn defaults_and_named_errors() {
        let c = Config::from_env(&Env::from_pairs(&[("DESTINATION_BUCKET", "out")])).unwrap();
        assert_eq!(c.settings.pipeline.variants.len(), 4);
        assert_eq!(c.settings.pipeline.jpeg_quality, 85);
        assert_eq!(c.settings.pipeline.optimize, Optimize::Size);
        assert_eq!(
            c.settings.pipeline.webp_quality,
            Some(webp::DEFAULT_QUALITY)
        );
        assert_eq!(
            c.settings.pipeline.avif_quality,
            Some(avif::DEFAULT_QUALITY)
        );
        assert_eq!(c.settings.max_object_bytes, 50 * 1024 * 1024);
        assert_eq!(c.settings.pipeline.background, [255, 255, 255]);
        assert_eq!(c.settings.cache_control, DEFAULT_CACHE_CONTROL);
        assert_eq!(
            c.settings.pipeline.memory_budget,
            image_budget(DEFAULT_FUNCTION_MEMORY_MB)
        );
        let c = Config::from_env(&Env::from_pairs(&[
            ("DESTINATION_BUCKET", "out"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048"),
        ]))
        .unwrap();
        assert_eq!(c.settings.pipeline.memory_budget, image_budget(2048));
        for (name, value) in [
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "64"),
            ("VARIANTS", "small"),
            ("JPEG_QUALITY", "0"),
            ("MAX_PIXELS", "lots"),
            ("BACKGROUND_COLOR", "white"),
            ("JPEG_OPTIMIZE", "fast"),
            ("WEBP_QUALITY", "101"),
            ("AVIF_QUALITY", "0"),
            ("FORMATS", "avif,webp"),
            ("FORMATS", "jpeg,png"),
            ("FORMATS", "jpeg,,webp"),
            ("CACHE_CONTROL", "public, max-age=60\r\nX-Injected: 1"),
        ] {
            let e = Config::from_env(&Env::from_pairs(&[
                ("DESTINATION_BUCKET", "out"),
                (name, value),
            ]))
            .unwrap_err();
            assert_eq!(e.name, name);
        }
        let c = Config::from_env(&Env::from_pairs(&[
            ("DESTINATION_BUCKET", "out"),
            ("BACKGROUND_COLOR", "#102030"),
        ]))
        .unwrap();
        assert_eq!(c.settings.pipeline.background, [0x10, 0x20, 0x30]);
        let c = Config::from_env(&Env::from_pairs(&[
            ("DESTINATION_BUCKET", "out"),
            ("JPEG_OPTIMIZE", "speed"),
            ("WEBP_QUALITY", "75"),
        ]))
        .unwrap();
        assert_eq!(c.settings.pipeline.optimize, Optimize::Speed);
        assert_eq!(c.settings.pipeline.webp_quality, Some(75));
    }

    #[test]
    fn formats_list_the_jpeg_and_any_modern_format() {
        let with = |pairs: &[(&str, &str)]| {
            let mut all = vec![("DESTINATION_BUCKET", "out")];
            all.extend_from_slice(pairs);
            Config::from_env(&Env::from_pairs(&all)).map(|c| c.settings.pipeline)
        };
        let jpeg_only = with(&[("FORMATS", "jpeg")]).unwrap();
        assert_eq!(
            (jpeg_only.webp_quality, jpeg_only.avif_quality),
            (None, None)
        );
        let webp = with(&[("FORMATS", " WebP , jpg "), ("WEBP_QUALITY", "75")]).unwrap();
        assert_eq!((webp.webp_quality, webp.avif_quality), (Some(75), None));
        let avif = with(&[("FORMATS", "jpeg,avif"), ("AVIF_QUALITY", "60")]).unwrap();
        assert_eq!((avif.webp_quality, avif.avif_quality), (None, Some(60)));
        // A quality for a format that is not written is a mistake, named.
        let e = with(&[("FORMATS", "jpeg"), ("WEBP_QUALITY", "80")]).unwrap_err();
        assert_eq!(e.name, "WEBP_QUALITY");
        let e = with(&[("FORMATS", "webp,avif")]).unwrap_err();
        assert_eq!(e.name, "FORMATS");
        assert!(e.to_string().contains("jpeg"), "{e}");
    }

    #[test]
    fn no_variant_may_take_the_manifests_prefix() {
        let e = Config::from_env(&Env::from_pairs(&[
            ("DESTINATION_BUCKET", "out"),
            ("VARIANTS", "thumbnail:150,manifest:300"),
        ]))
        .unwrap_err();
        assert_eq!(e.name, "VARIANTS");
        assert!(e.to_string().contains("manifest"), "{e}");
    }

    #[test]
    fn cache_control_never_claims_immutability() {
        let with = |value: &str| {
            Config::from_env(&Env::from_pairs(&[
                ("DESTINATION_BUCKET", "out"),
                ("CACHE_CONTROL", value),
            ]))
        };
        for value in [
            "public, max-age=31536000, immutable",
            "Immutable",
            "public,immutable,max-age=60",
            " immutable = 1 ",
        ] {
            let e = with(value).unwrap_err();
            assert_eq!(e.name, "CACHE_CONTROL", "{value}");
            assert!(e.to_string().contains("immutable"), "{e}");
        }
        // The default passes its own check, and makes a cache revalidate before each use.
        let default = Config::from_env(&Env::from_pairs(&[("DESTINATION_BUCKET", "out")])).unwrap();
        assert_eq!(
            cache_control(Some(default.settings.cache_control.clone())).unwrap(),
            DEFAULT_CACHE_CONTROL
        );
        assert!(default
            .settings
            .cache_control
            .split(',')
            .any(|d| d.trim() == "no-cache"));
        let c = with(" public, max-age=300 ").unwrap();
        assert_eq!(c.settings.cache_control, "public, max-age=300");
    }
}
