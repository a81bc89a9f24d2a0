//! Logs to stdout (JSON off a terminal, pretty on one) and, when `telemetry.otlp_endpoint` is
//! set, OpenTelemetry traces over OTLP/HTTP. W3C `traceparent` is honoured either way: the
//! request span continues the caller's trace, and its trace id is logged.
//!
//! [`init`] returns a [`TelemetryGuard`]; dropping it flushes spans still buffered.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, TelemetrySettings};

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `telemetry.log_level` is not a valid filter.
    #[error("invalid telemetry.log_level: {0}")]
    Filter(String),
    /// The OTLP exporter could not be built.
    #[error("cannot export traces to telemetry.otlp_endpoint: {0}")]
    Exporter(String),
}

/// Keeps the trace exporter alive; flushes and shuts it down on drop.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Flushes buffered spans now. Called on shutdown; also done on drop.
    pub fn flush(&self) {
        if let Some(Err(error)) = self.provider.as_ref().map(SdkTracerProvider::force_flush) {
            tracing::warn!(error = %error, "Flushing traces failed.");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(Err(error)) = self.provider.take().map(|provider| provider.shutdown()) {
            eprintln!("Shutting down the trace exporter failed: {error}");
        }
    }
}

/// Installs the global subscriber for service `name` at `version`.
///
/// Calling it again in the same process (several apps in one test) keeps the first subscriber.
pub fn init(
    name: &'static str,
    version: &'static str,
    settings: &TelemetrySettings,
) -> Result<TelemetryGuard, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_new(&settings.log_level)
        .map_err(|error| TelemetryError::Filter(error.to_string()))?;
    let format = settings
        .log_format
        .unwrap_or(if std::io::stdout().is_terminal() {
            LogFormat::Pretty
        } else {
            LogFormat::Json
        });
    let provider = match &settings.otlp_endpoint {
        Some(endpoint) => Some(tracer_provider(name, version, endpoint)?),
        None => None,
    };
    let otel_layer = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer(name)));
    let (json, pretty) = match format {
        LogFormat::Json => (
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            ),
            None,
        ),
        LogFormat::Pretty => (None, Some(tracing_subscriber::fmt::layer())),
    };
    // `try_init` fails when a subscriber is already set; the first one stays, which is what
    // several apps in one test process want.
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(otel_layer)
        .with(json)
        .with(pretty)
        .try_init()
        .is_ok();
    if installed {
        log_panics();
    }
    Ok(TelemetryGuard { provider })
}

/// Makes every panic (a handler's, a WebSocket session's, any task's) an `error` event in the
/// service's log format too, with its message and location: a plain-text panic on stderr is
/// what log pipelines split or drop, and a panicking task does not stop the process, so the log
/// is where it must show. The previous hook still runs (stderr, backtraces).
fn log_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|message| (*message).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(not a string)".to_owned());
        let location = info
            .location()
            .map(|location| format!("{}:{}", location.file(), location.line()));
        tracing::error!(
            panic.message = %message,
            panic.location = location.as_deref().unwrap_or("unknown"),
            "Panicked."
        );
        previous(info);
    }));
}

fn tracer_provider(
    name: &'static str,
    version: &'static str,
    endpoint: &str,
) -> Result<SdkTracerProvider, TelemetryError> {
    let endpoint = endpoint.trim_end_matches('/');
    let url = if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{endpoint}/v1/traces")
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .build()
        .map_err(|error| TelemetryError::Exporter(error.to_string()))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(name)
        .with_attribute(opentelemetry::KeyValue::new("service.version", version))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The trace id of a W3C `traceparent` header value (`00-<trace id>-<parent id>-<flags>`), if
/// well-formed, for logs when no exporter runs.
///
/// ```
/// let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// assert_eq!(platform::telemetry::trace_id(header), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
/// assert_eq!(platform::telemetry::trace_id("garbage"), None);
/// ```
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (_version, trace, parent, _flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(trace, 32) && hex(parent, 16) && trace.bytes().any(|b| b != b'0')).then_some(trace)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut buffer) = self.0.lock() {
                buffer.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_panic_becomes_an_error_event_with_its_message_and_location() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(move || writer.clone())
            .finish();
        super::log_panics();
        tracing::subscriber::with_default(subscriber, || {
            let _ = std::panic::catch_unwind(|| panic!("boom {}", 42));
        });
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let event: serde_json::Value = serde_json::from_str(log.trim()).unwrap();
        assert_eq!(event["level"], "ERROR");
        assert_eq!(event["message"], "Panicked.");
        assert_eq!(event["panic.message"], "boom 42");
        assert!(
            event["panic.location"]
                .as_str()
                .unwrap()
                .starts_with("crates/platform/src/telemetry.rs:"),
            "{event}"
        );
    }
}
