//! Which lines are written: the level Lambda's logging settings give, debug lines for a sampled
//! share of invocations (`LOG_DEBUG_SAMPLE_RATE`), and the suite's own spans at any level.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tracing::subscriber::Interest;
use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::filter::{DynFilterFn, FilterExt, LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use settings::Env;

use crate::json_logs::{JsonLogLayer, LogFormat};
use crate::xray::{self, is_ours, SpanExport};

/// The log filter: `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's logging config), else `LOG_LEVEL`, else
/// `info`. The level is the suite's own: dependencies (the SDK, the HTTP stack, the runtime) log at
/// `warn` at the most, so no level can print what their debug output holds (headers, bodies).
/// A value with `=` or `,` is taken as a list of `target=level` directives, as it is.
///
/// A level per target is all this filter does, so it is `Targets`, not `EnvFilter`: `EnvFilter`'s
/// span and field directives bring a regular expression engine into every bootstrap (about 0.3 MB
/// of code and Unicode tables) that no setting here uses. A value `Targets` cannot read (such as a
/// span directive) falls back to `info`, like any other unreadable value.
pub fn log_filter(env: &Env) -> Targets {
    let level = env
        .get("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|| env.get("LOG_LEVEL"))
        .unwrap_or_else(|| "info".into())
        .to_lowercase();
    // Lambda's most severe level; `tracing` stops at error.
    let level = if level == "fatal" {
        "error".to_string()
    } else {
        level
    };
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let directives = if level.contains('=') || level.contains(',') {
        level
    } else {
        // A bare word that is not a level would parse as a target name: fall back to info.
        let level = if LEVELS.contains(&level.as_str()) {
            level
        } else {
            "info".into()
        };
        let others = if level == "error" || level == "off" {
            level.as_str()
        } else {
            "warn"
        };
        let mut directives = others.to_string();
        for target in xray::OUR_TARGETS {
            directives.push_str(&format!(",{target}={level}"));
        }
        directives
    };
    // `warn, user_api=debug`: spaces around a directive are not part of it.
    let directives = directives
        .split(',')
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        .collect::<Vec<_>>()
        .join(",");
    let targets_only = directives.split(',').all(|directive| {
        let target = directive.split_once('=').map_or("", |(target, _)| target);
        target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    });
    targets_only
        .then(|| directives.parse().ok())
        .flatten()
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

/// `LOG_DEBUG_SAMPLE_RATE`: the share of invocations logged at debug level (0 to 1).
pub const DEBUG_SAMPLE_RATE: &str = "LOG_DEBUG_SAMPLE_RATE";

/// The debug sampling rate, or why the setting is refused (then sampling is off).
pub fn debug_sample_rate(env: &Env) -> Result<f64, String> {
    match env.get(DEBUG_SAMPLE_RATE) {
        None => Ok(0.0),
        Some(raw) => match raw.trim().parse::<f64>() {
            Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
            _ => Err(format!(
                "{DEBUG_SAMPLE_RATE}={raw:?} is not a number from 0 to 1; debug sampling is off"
            )),
        },
    }
}

/// Whether the invocation with this request id is one of the `rate` share logged at debug level:
/// a hash of the id, so the choice is the same wherever it is made.
pub fn debug_sampled(request_id: &str, rate: f64) -> bool {
    if rate <= 0.0 {
        return false;
    }
    if rate >= 1.0 {
        return true;
    }
    let fnv = request_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    // FNV's high bits barely move between similar ids: mix them all in (MurmurHash3's finaliser).
    let mut hash = fnv;
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    (hash as f64 / u64::MAX as f64) < rate
}

/// The log layer with its filter: events as the level says, plus this suite's debug events while a
/// sampled invocation runs (`sampled`), plus this suite's spans at any level, so that a line keeps
/// its invocation's fields even when the level hides the spans' own level.
pub fn log_layer<S, W>(
    service: &str,
    writer: W,
    env: &Env,
    sampled: Arc<AtomicBool>,
) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    let ours_at_debug =
        |meta: &Metadata<'_>| *meta.level() <= Level::DEBUG && is_ours(meta.target());
    let sampled_debug = DynFilterFn::new(move |meta: &Metadata<'_>, _| {
        meta.is_event() && sampled.load(Ordering::Relaxed) && ours_at_debug(meta)
    })
    .with_callsite_filter(move |meta| {
        if meta.is_event() && ours_at_debug(meta) {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    })
    .with_max_level_hint(LevelFilter::DEBUG);
    JsonLogLayer::new(service, writer)
        .with_format(LogFormat::from_env(env))
        .with_filter(log_filter(env).or(sampled_debug).or(xray::our_spans()))
}

/// Reads every variable `Telemetry::init` reads (for checks that compare them with the template).
pub fn read_env(env: &Env) {
    let _ = log_filter(env);
    let _ = LogFormat::from_env(env);
    let _ = debug_sample_rate(env);
    let _ = SpanExport::from_env(env, "check");
}
