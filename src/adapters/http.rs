//! The runner's HTTP listener (`RUNNER_HTTP_ADDR`): `/metrics` for Prometheus, `/healthz` (live) and `/readyz`
//! (ready) for orchestrators. Plain hyper 1 over the Tokio runtime the runner already has: three read-only routes
//! need no framework.
//!
//! The listener is an observer of the runner, never part of judging: a slow or hostile client costs one task and
//! one of [`MAX_CONNECTIONS`], and a request that has not sent its headers within [`HEADER_TIMEOUT`] is dropped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::metrics::{self, Metrics};
use crate::ports::Probes;

/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 64;

/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The listener could not be opened.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot listen on RUNNER_HTTP_ADDR={addr}: {source} (choose another address, or set RUNNER_HTTP_ADDR= to turn \
     the listener off)"
)]
pub struct BindError {
    /// The address asked for, named in the message with the variable it came from.
    pub addr: SocketAddr,
    /// Why the operating system refused it (the port is taken, or the address is not this host's).
    #[source]
    pub source: std::io::Error,
}

/// What the routes answer from.
pub struct Routes {
    /// Encoded at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Asked by `/healthz` (the runner's checks tick) and `/readyz` (it can take scripts).
    pub probes: Arc<dyn Probes>,
}

/// A bound listener, serving once [`HttpServer::serve`] runs.
pub struct HttpServer {
    /// Bound at startup, so that a taken port fails the start rather than leaving the endpoints missing.
    listener: TcpListener,
    /// Shared by every connection's task.
    routes: Arc<Routes>,
}

impl HttpServer {
    /// Binds `addr`. Binding happens at startup, so that a taken port is an error then rather than a missing
    /// endpoint later.
    ///
    /// # Errors
    /// [`BindError`] when the address cannot be bound.
    pub async fn bind(addr: SocketAddr, routes: Routes) -> Result<Self, BindError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| BindError { addr, source })?;
        Ok(Self {
            listener,
            routes: Arc::new(routes),
        })
    }

    /// The address bound, with the port the system chose when `addr` asked for port 0.
    ///
    /// # Errors
    /// When the socket cannot say (it is open, so in practice never).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` fires.
    pub async fn serve(self, stop: CancellationToken) {
        let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let permit = tokio::select! {
                () = stop.cancelled() => return,
                permit = connections.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
            };
            let (stream, _peer) = tokio::select! {
                () = stop.cancelled() => return,
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of descriptors, mostly: wait a moment rather than spin.
                        tracing::warn!(%error, "HTTP listener cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let routes = Arc::clone(&self.routes);
            let stop = stop.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let routes = Arc::clone(&routes);
                    async move { Ok::<_, Infallible>(routes.answer(&request)) }
                });
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    () = stop.cancelled() => {}
                    served = connection => if let Err(error) = served {
                        tracing::debug!(%error, "HTTP connection ended with an error");
                    },
                }
                drop(permit);
            });
        }
    }
}

impl Routes {
    fn answer(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n".to_owned());
        }
        match request.uri().path() {
            "/metrics" => {
                let mut response = text(StatusCode::OK, self.metrics.render());
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static(metrics::CONTENT_TYPE),
                );
                response
            }
            "/healthz" => probe(self.probes.why_not_live()),
            "/readyz" => probe(self.probes.why_not_ready()),
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: try /metrics, /healthz or /readyz\n".to_owned(),
            ),
        }
    }
}

fn probe(why_not: Option<String>) -> Response<Full<Bytes>> {
    match why_not {
        None => text(StatusCode::OK, "ok\n".to_owned()),
        Some(reason) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("{method} {path} HTTP/1.0\r\nHost: test\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, head.to_ascii_lowercase(), body.to_owned())
    }

    /// A runner that has not checked its health yet.
    struct NotChecked;

    impl Probes for NotChecked {
        fn why_not_live(&self) -> Option<String> {
            Some("the runner has not checked its health yet".into())
        }

        fn why_not_ready(&self) -> Option<String> {
            self.why_not_live()
        }
    }

    #[tokio::test]
    async fn routes_answer_with_their_status_and_content_type() {
        let server = HttpServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            Routes {
                metrics: Arc::new(Metrics::new(2)),
                probes: Arc::new(NotChecked),
            },
        )
        .await
        .unwrap();
        let addr = server.local_addr().unwrap();
        let stop = CancellationToken::new();
        let serving = tokio::spawn(server.serve(stop.clone()));

        let (status, head, body) = request(addr, "GET", "/metrics").await;
        assert_eq!(status, 200);
        assert!(head.contains("content-type: application/openmetrics-text"), "{head}");
        assert!(body.contains("scrc_slots 2") && body.ends_with("# EOF\n"), "{body}");
        let (status, _, body) = request(addr, "GET", "/readyz").await;
        assert_eq!(
            (status, body.as_str()),
            (503, "the runner has not checked its health yet\n")
        );
        assert_eq!(request(addr, "GET", "/healthz").await.0, 503);
        assert_eq!(request(addr, "GET", "/nowhere").await.0, 404);
        assert_eq!(request(addr, "POST", "/metrics").await.0, 405);

        let taken = HttpServer::bind(
            addr,
            Routes {
                metrics: Arc::new(Metrics::new(1)),
                probes: Arc::new(NotChecked),
            },
        )
        .await;
        let error = taken.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            error.contains(&format!("RUNNER_HTTP_ADDR={addr}")),
            "a taken port is a clear error: {error}"
        );

        stop.cancel();
        serving.await.unwrap();
    }
}
