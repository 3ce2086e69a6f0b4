//! gRPC plumbing: the server every domain service runs (trace span per call from the incoming
//! `traceparent`, per-method metrics, `grpc.health.v1` driven by database readiness) and client
//! channels with connect/request timeouts that carry the caller's trace context.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tracing::Instrument;

use crate::metrics::Metrics;
use crate::telemetry;

/// The span each incoming call runs in; health checks are not traced (they are polled constantly).
pub fn server_span(req: &http::Request<()>) -> tracing::Span {
    let path = req.uri().path();
    if path.starts_with("/grpc.health.v1.Health/") {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.method = %path,
        trace_id = tracing::field::Empty,
    );
    telemetry::adopt(
        &span,
        telemetry::extract(&telemetry::HttpHeaders(req.headers())),
    );
    span
}

/// The largest gRPC message a service that carries files (jobs' photos: `AddPhoto`, `GetPhoto`)
/// sends or takes, on its server and on its callers' clients: a photo at its limit
/// ([`crate::blobs::MAX_PHOTO_BYTES`]) plus room for the rest of the message. Every other
/// service keeps tonic's 4 MiB default.
pub const FILE_MESSAGE_BYTES: usize = crate::blobs::MAX_PHOTO_BYTES + 2 * 1024 * 1024;

/// Serves `routes` (the service's own gRPC services plus health) until `shutdown` resolves,
/// then lets in-flight calls finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    routes: tonic::service::Routes,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .trace_fn(server_span)
        .layer(MetricsLayer { metrics })
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            // Without TCP_NODELAY a small reply waits for the client's delayed ACK (~40 ms).
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}

/// Tower layer counting calls by method and `grpc-status`, with latency.
#[derive(Clone)]
pub struct MetricsLayer {
    metrics: Metrics,
}

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Metrics,
}

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B, RB> tower::Service<http::Request<B>> for MetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFut<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req.uri().path().to_owned();
        let started = Instant::now();
        let fut = self.inner.call(req);
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let res = fut.await;
            let code = match &res {
                // Errors travel in headers (trailers-only responses); success puts 0 in the trailers.
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_owned(),
                Err(_) => "transport".to_owned(),
            };
            metrics.observe_grpc(&method, &code, started.elapsed());
            res
        })
    }
}

/// Puts the current span's `traceparent` on every outgoing call.
#[derive(Clone, Copy, Default, Debug)]
pub struct PropagateTrace;

impl Interceptor for PropagateTrace {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        telemetry::inject(
            &tracing::Span::current(),
            &mut telemetry::GrpcMetadata(req.metadata_mut()),
        );
        Ok(req)
    }
}

pub type TracedChannel = InterceptedService<Channel, PropagateTrace>;

/// A lazily connecting channel: the caller starts even when the peer is down, and each call fails
/// fast (connect timeout) or is cut off (request timeout) with `UNAVAILABLE` / `DEADLINE_EXCEEDED`.
pub fn channel(
    url: &str,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Result<TracedChannel, tonic::transport::Error> {
    let channel = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(connect_timeout)
        .timeout(request_timeout)
        .tcp_nodelay(true)
        .connect_lazy();
    Ok(InterceptedService::new(channel, PropagateTrace))
}

/// Runs one client call inside a client span named after the RPC, so the callee's server span is
/// its child in the trace.
pub async fn call<T>(
    rpc: &'static str,
    fut: impl Future<Output = Result<T, tonic::Status>>,
) -> Result<T, tonic::Status> {
    let span = tracing::info_span!(
        "grpc.client",
        otel.name = rpc,
        otel.kind = "client",
        rpc.system = "grpc"
    );
    let res = fut.instrument(span).await;
    if let Err(status) = &res {
        tracing::warn!(rpc, grpc.code = ?status.code(), grpc.message = status.message(), "upstream call failed");
    }
    res
}
