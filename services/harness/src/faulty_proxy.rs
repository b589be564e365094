//! An HTTP forwarding proxy that can lose replies or black-hole requests on command.
//!
//! For tests of unknown outcomes between reservation and payment before the Toxiproxy-compatible
//! proxy exists. Real HTTP on both sides: the request really reaches payment (or really does
//! not), and the caller really times out.

use std::sync::{
    Arc,
    atomic::{AtomicU32, AtomicUsize, Ordering},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Request, State},
    http::StatusCode,
    response::{IntoResponse as _, Response},
};
use tokio::net::TcpListener;

/// What the proxy does with the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Mode {
    /// Forward and answer.
    Pass = 0,
    /// Forward, let the upstream commit, then never answer (the reply is lost).
    LoseReplies = 1,
    /// Never forward, never answer (a black hole).
    BlackHole = 2,
}

#[derive(Debug)]
struct Shared {
    upstream: String,
    mode: AtomicU32,
    forwarded: AtomicUsize,
    lost: AtomicUsize,
    client: reqwest::Client,
}

/// A running proxy; controls are shared and take effect for the next request.
#[derive(Debug, Clone)]
pub struct FaultyProxy {
    shared: Arc<Shared>,
    port: u16,
}

impl FaultyProxy {
    /// Starts a proxy on a free port forwarding to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            mode: AtomicU32::new(Mode::Pass as u32),
            forwarded: AtomicUsize::new(0),
            lost: AtomicUsize::new(0),
            client: reqwest::Client::new(),
        });
        let app = Router::new().fallback(forward).with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { shared, port })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared.mode.store(mode as u32, Ordering::SeqCst);
    }

    /// Requests that reached the upstream.
    pub fn forwarded(&self) -> usize {
        self.shared.forwarded.load(Ordering::SeqCst)
    }

    /// Replies the upstream sent that the caller never got.
    pub fn lost_replies(&self) -> usize {
        self.shared.lost.load(Ordering::SeqCst)
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let mode = shared.mode.load(Ordering::SeqCst);
    if mode == Mode::BlackHole as u32 {
        return std::future::pending().await;
    }
    let (parts, body) = request.into_parts();
    let Ok(body): Result<Bytes, _> = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut upstream = shared
        .client
        .request(parts.method.clone(), format!("{}{path}", shared.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            upstream = upstream.header(name, value);
        }
    }
    let answer = upstream.send().await;
    shared.forwarded.fetch_add(1, Ordering::SeqCst);
    let Ok(answer) = answer else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    if mode == Mode::LoseReplies as u32 {
        shared.lost.fetch_add(1, Ordering::SeqCst);
        return std::future::pending().await;
    }
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}
