//! Every business metric the suite emits: one namespace (`telemetry::METRICS_NAMESPACE`), the
//! dimensions each carries besides `service`, and the function that emits it. Code emits through
//! these names, and each function's tests capture what it really emits and compare it with this
//! table, so a renamed metric or dimension is a conscious change here (and in docs/operations.md's table).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

/// Metrics as (name, sorted dimension names).
pub type MetricKeys = BTreeSet<(String, Vec<String>)>;

/// One metric: its name, unit and the dimensions it carries besides `service`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricSpec {
    pub name: &'static str,
    pub unit: &'static str,
    pub dimensions: &'static [&'static str],
    pub emitted_by: &'static str,
}

// Every function (telemetry).
pub const COLD_START: &str = "ColdStart";
pub const INVOCATION_DURATION: &str = "InvocationDuration";
// order-processor.
pub const ORDERS_CONFIRMED: &str = "OrdersConfirmed";
pub const ORDERS_CANCELLED: &str = "OrdersCancelled";
pub const ORDERS_ALREADY_PROCESSED: &str = "OrdersAlreadyProcessed";
pub const MESSAGES_PARKED: &str = "MessagesParked";
pub const MESSAGES_RETRIED: &str = "MessagesRetried";
/// A stock reservation cancelled because a concurrent one held the same items (each one, retried
/// or not): contention on hot products.
pub const STOCK_RESERVATION_CONFLICTS: &str = "StockReservationConflicts";
// order-settlement.
pub const ORDERS_PAID: &str = "OrdersPaid";
/// Pending orders that ended without payment and gave their stock back (`reason`:
/// `PAYMENT_FAILED`, `PAYMENT_TIMEOUT`).
pub const ORDERS_RELEASED: &str = "OrdersReleased";
/// Successful payments for orders that had already ended without them: each one needs a refund.
pub const PAYMENT_REFUNDS_REQUIRED: &str = "PaymentRefundsRequired";
/// Payment results and expiries that will be delivered again (a dependency failed) or can never
/// be applied (`reason`).
pub const SETTLEMENT_MESSAGES_FAILED: &str = "SettlementMessagesFailed";
// image-compressor.
pub const IMAGES_PROCESSED: &str = "ImagesProcessed";
pub const IMAGES_SKIPPED: &str = "ImagesSkipped";
pub const IMAGES_FAILED_TRANSIENTLY: &str = "ImagesFailedTransiently";
pub const VARIANTS_WRITTEN: &str = "VariantsWritten";
pub const IMAGE_BYTES_IN: &str = "ImageBytesIn";
pub const IMAGE_BYTES_OUT: &str = "ImageBytesOut";
pub const IMAGE_PROCESSING_MS: &str = "ImageProcessingMs";
// user-api.
pub const API_REQUESTS: &str = "ApiRequests";
pub const API_LATENCY: &str = "ApiLatency";

/// The dimension naming why (a reason code such as `INSUFFICIENT_INVENTORY`, `UNSUPPORTED_FORMAT`).
pub const REASON: &str = "reason";
/// The API route template (`/users`, `/users/{id}`, `unknown`).
pub const ROUTE: &str = "route";
/// `2xx`, `4xx` or `5xx`.
pub const STATUS_CLASS: &str = "status_class";

/// Metrics an AWS adapter emits (what happens inside DynamoDB, out of the reach of the in-memory
/// ports the handlers' unit tests use): the emulator tests check them.
pub const EMITTED_BY_ADAPTERS: &[&str] = &[STOCK_RESERVATION_CONFLICTS];

pub const CATALOG: &[MetricSpec] = &[
    spec(COLD_START, "Count", &[], "every function"),
    spec(INVOCATION_DURATION, "Milliseconds", &[], "every function"),
    spec(ORDERS_CONFIRMED, "Count", &[], "order-processor"),
    spec(ORDERS_CANCELLED, "Count", &[REASON], "order-processor"),
    spec(ORDERS_ALREADY_PROCESSED, "Count", &[], "order-processor"),
    spec(MESSAGES_PARKED, "Count", &[REASON], "order-processor"),
    spec(MESSAGES_RETRIED, "Count", &[], "order-processor"),
    spec(STOCK_RESERVATION_CONFLICTS, "Count", &[], "order-processor"),
    spec(ORDERS_PAID, "Count", &[], "order-settlement"),
    spec(ORDERS_RELEASED, "Count", &[REASON], "order-settlement"),
    spec(PAYMENT_REFUNDS_REQUIRED, "Count", &[], "order-settlement"),
    spec(
        SETTLEMENT_MESSAGES_FAILED,
        "Count",
        &[REASON],
        "order-settlement",
    ),
    spec(IMAGES_PROCESSED, "Count", &[], "image-compressor"),
    spec(IMAGES_SKIPPED, "Count", &[REASON], "image-compressor"),
    spec(IMAGES_FAILED_TRANSIENTLY, "Count", &[], "image-compressor"),
    spec(VARIANTS_WRITTEN, "Count", &[], "image-compressor"),
    spec(IMAGE_BYTES_IN, "Bytes", &[], "image-compressor"),
    spec(IMAGE_BYTES_OUT, "Bytes", &[], "image-compressor"),
    spec(IMAGE_PROCESSING_MS, "Milliseconds", &[], "image-compressor"),
    spec(API_REQUESTS, "Count", &[ROUTE, STATUS_CLASS], "user-api"),
    spec(API_LATENCY, "Milliseconds", &[ROUTE], "user-api"),
];

const fn spec(
    name: &'static str,
    unit: &'static str,
    dimensions: &'static [&'static str],
    emitted_by: &'static str,
) -> MetricSpec {
    MetricSpec {
        name,
        unit,
        dimensions,
        emitted_by,
    }
}

/// The catalogue's entries one function's handler emits (not its adapters: `EMITTED_BY_ADAPTERS`),
/// as (name, dimensions) pairs.
pub fn emitted_by(function: &str) -> MetricKeys {
    CATALOG
        .iter()
        .filter(|m| m.emitted_by == function && !EMITTED_BY_ADAPTERS.contains(&m.name))
        .map(|m| {
            let mut dims: Vec<String> = m.dimensions.iter().map(|d| d.to_string()).collect();
            dims.sort();
            (m.name.to_string(), dims)
        })
        .collect()
}

/// A recorder that keeps the name and dimension names of every metric registered through it, for
/// tests (`metrics::with_local_recorder`): what a handler really emits, compared with `CATALOG`.
#[derive(Clone, Default)]
pub struct CapturedMetrics(Arc<Mutex<MetricKeys>>);

impl CapturedMetrics {
    pub fn keys(&self) -> MetricKeys {
        self.0.lock().map(|k| k.clone()).unwrap_or_default()
    }

    fn note(&self, key: &Key) {
        let mut dims: Vec<String> = key.labels().map(|l| l.key().to_string()).collect();
        dims.sort();
        if let Ok(mut keys) = self.0.lock() {
            keys.insert((key.name().to_string(), dims));
        }
    }
}

/// Runs `work` to completion on a fresh single-threaded runtime with a capturing recorder, and
/// returns the metrics it registered (for tests of what a handler emits).
pub fn capture<F: std::future::Future>(work: F) -> std::io::Result<MetricKeys> {
    let captured = CapturedMetrics::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    metrics::with_local_recorder(&captured, || runtime.block_on(work));
    Ok(captured.keys())
}

struct Discard;

impl CounterFn for Discard {
    fn increment(&self, _: u64) {}
    fn absolute(&self, _: u64) {}
}

impl HistogramFn for Discard {
    fn record(&self, _: f64) {}
}

impl Recorder for CapturedMetrics {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.note(key);
        Counter::from_arc(Arc::new(Discard))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.note(key);
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.note(key);
        Histogram::from_arc(Arc::new(Discard))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_pins_every_name_and_dimension() {
        // A rename is a conscious change: this list, docs/operations.md's metrics table and dashboards.
        let pinned: Vec<String> = CATALOG
            .iter()
            .map(|m| format!("{}[{}] {}", m.name, m.dimensions.join(","), m.unit))
            .collect();
        assert_eq!(
            pinned,
            [
                "ColdStart[] Count",
                "InvocationDuration[] Milliseconds",
                "OrdersConfirmed[] Count",
                "OrdersCancelled[reason] Count",
                "OrdersAlreadyProcessed[] Count",
                "MessagesParked[reason] Count",
                "MessagesRetried[] Count",
                "StockReservationConflicts[] Count",
                "OrdersPaid[] Count",
                "OrdersReleased[reason] Count",
                "PaymentRefundsRequired[] Count",
                "SettlementMessagesFailed[reason] Count",
                "ImagesProcessed[] Count",
                "ImagesSkipped[reason] Count",
                "ImagesFailedTransiently[] Count",
                "VariantsWritten[] Count",
                "ImageBytesIn[] Bytes",
                "ImageBytesOut[] Bytes",
                "ImageProcessingMs[] Milliseconds",
                "ApiRequests[route,status_class] Count",
                "ApiLatency[route] Milliseconds",
            ]
        );
        let names: BTreeSet<&str> = CATALOG.iter().map(|m| m.name).collect();
        assert_eq!(names.len(), CATALOG.len(), "names are unique");
    }

    #[test]
    fn the_capture_records_names_and_dimension_names() {
        let captured = CapturedMetrics::default();
        metrics::with_local_recorder(&captured, || {
            metrics::counter!(API_REQUESTS, ROUTE => "/users", STATUS_CLASS => "2xx").increment(1);
            metrics::histogram!(API_LATENCY, ROUTE => "/users").record(1.0);
        });
        assert_eq!(captured.keys(), emitted_by("user-api"));
    }
}
