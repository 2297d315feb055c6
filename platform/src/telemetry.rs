//! Logging and tracing: `tracing` everywhere, OpenTelemetry OTLP export when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and W3C trace context carried across HTTP headers and
//! gRPC metadata so one request keeps one trace id from the gateway through every service.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the exporter alive; [`TelemetryGuard::shutdown`] flushes what is buffered.
#[derive(Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether spans are exported over OTLP.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes buffered spans and stops the exporter (blocking work runs off the async threads).
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            let flushed = tokio::task::spawn_blocking(move || {
                let flush = provider.force_flush();
                let stop = provider.shutdown();
                flush.and(stop)
            })
            .await;
            match flushed {
                Ok(Ok(())) => {}
                Ok(Err(err)) => eprintln!("telemetry flush failed: {err}"),
                Err(err) => eprintln!("telemetry flush task failed: {err}"),
            }
        }
    }
}

/// Installs the global subscriber: `RUST_LOG` filter (default `info`), human or JSON logs
/// (`VAXBOOK_LOG_FORMAT=json`), and OTLP export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
/// `service_name` becomes the OpenTelemetry `service.name` (overridable by `OTEL_SERVICE_NAME`).
pub fn init(service_name: &str) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = crate::config::string("VAXBOOK_LOG_FORMAT", "text") == "json";
    let fmt_layer = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        // Logs go to stderr; stdout is left to what a command prints for its user. Colour only
        // on a terminal, so a log file or pipe carries no escape codes.
        let colour = use_colour(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR").as_deref(),
        );
        tracing_subscriber::fmt::layer()
            .with_ansi(colour)
            .with_writer(std::io::stderr)
            .boxed()
    };

    // The OpenTelemetry layer is always installed, so trace context is continued and passed on
    // even by a process that does not export; only the exporter depends on the endpoint.
    let name = crate::config::string("OTEL_SERVICE_NAME", service_name);
    let mut builder = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(name).build());
    let exporting = crate::config::var("OTEL_EXPORTER_OTLP_ENDPOINT");
    match &exporting {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()?;
            builder = builder.with_batch_exporter(exporter);
        }
        // Nothing is exported: spans this process starts are not recorded (cheaper), yet
        // their ids still travel on, and a caller's sampled trace is still continued.
        None => {
            builder = builder.with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)));
        }
    }
    let provider = builder.build();
    let tracer = provider.tracer("vaxbook");
    opentelemetry::global::set_tracer_provider(provider.clone());
    let guard = TelemetryGuard {
        provider: exporting.map(|_| provider),
    };
    let otel_layer = tracing_opentelemetry::layer().with_tracer(tracer);

    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .map_err(|err| anyhow::anyhow!("installing the tracing subscriber: {err}"))?;
    Ok(guard)
}

/// Whether human-readable logs are coloured: only when they go to a terminal and `NO_COLOR`
/// (<https://no-color.org>) is unset or empty.
fn use_colour(to_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    to_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Installs a plain log subscriber for tests; a second call is harmless.
pub fn init_for_tests() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Makes `span` a child of the trace context carried in `headers` (W3C `traceparent`), if any.
pub fn set_parent_from_headers(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    let _ = span.set_parent(parent);
}

/// Writes the current span's trace context into outgoing gRPC metadata.
pub fn inject_current(metadata: &mut tonic::metadata::MetadataMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut MetadataInjector(metadata));
    });
}

/// The trace id of the current span, as 32 hex digits, when there is one.
pub fn current_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// The span of one inbound gRPC request, continuing the caller's trace.
pub fn grpc_server_span(request: &http::Request<()>) -> tracing::Span {
    let path = request.uri().path();
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.method = %path,
    );
    set_parent_from_headers(&span, request.headers());
    span
}

/// A tonic client interceptor that propagates the current trace context.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracePropagation;

impl tonic::service::Interceptor for TracePropagation {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        inject_current(request.metadata_mut());
        Ok(request)
    }
}

#[cfg(test)]
mod colour_tests {
    use std::ffi::OsStr;

    use super::use_colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
        assert!(!use_colour(false, Some(OsStr::new("1"))));
    }
}
