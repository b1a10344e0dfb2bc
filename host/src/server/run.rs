//! `wasmward serve`: start, serve until a signal (or stdin closes on
//! stdio), then shut down gracefully: stop accepting, finish calls in
//! flight, flush the audit log.

use super::mcp::{McpHandler, Mode};
use super::{reload, Server};
use crate::cli::{usage, Failure};
use crate::gate::Caller;
use rmcp::ServiceExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long shutdown waits, at least, for the results of the last calls to
/// reach their MCP clients once the calls are over.
const RESULT_DELIVERY: Duration = Duration::from_secs(2);

pub struct ServeOptions {
    pub config: PathBuf,
    pub stdio: bool,
    pub listen: Option<String>,
    pub token: Option<String>,
}

pub async fn serve(opts: ServeOptions) -> Result<(), Failure> {
    let started = Instant::now();
    eprintln!("wasmward: loading tools from {} ...", opts.config.display());
    let server = Server::open(opts.config.clone()).await.map_err(|e| usage(format!("{e:#}")))?;
    let cfg = server.host.config();
    crate::cli::log_policy_warnings(&cfg);
    eprintln!("wasmward: {} tool(s) ready in {} ms", server.host.tools().len(), started.elapsed().as_millis());

    let ct = CancellationToken::new();
    spawn_signal_handler(ct.clone());
    let reloader = reload::spawn(server.clone(), ct.clone());
    let flusher = spawn_unauthenticated_flusher(server.clone(), ct.clone());
    // MCP sessions outlive the signal until calls in flight are done.
    let sessions_ct = CancellationToken::new();

    let http = if !opts.stdio || opts.listen.is_some() {
        let addr = opts.listen.clone().unwrap_or_else(|| cfg.server.listen.clone());
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| usage(format!("cannot listen on {addr}: {e}; pick another address with --listen or [server] listen")))?;
        let local = listener.local_addr().map(|a| a.to_string()).unwrap_or(addr);
        server.set_approver_available(true);
        let app = super::http::router(server.clone(), cfg.server.clone(), sessions_ct.clone());
        eprintln!("wasmward: listening on http://{local} (MCP at /mcp, API at /v1, /healthz, /metrics)");
        let stop = ct.clone();
        // MCP answers on a POST's SSE stream in several writes; without
        // TCP_NODELAY the later ones wait for the client's delayed ACK
        // (about 40 ms a call on Linux).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
            }
        });
        Some(tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        }))
    } else {
        None
    };

    if opts.stdio {
        let caller = match &opts.token {
            Some(t) => Caller { stdio_parent: true, ..Caller::from_claims(&server.tokens.verify(t, crate::gate::tokens::now_secs()).map_err(|e| usage(format!("--token: {e}")))?) },
            None => Caller::stdio(),
        };
        let handler = McpHandler::new(server.clone(), Mode::Stdio(caller.clone()));
        // A signal while waiting for the client's `initialize` ends the
        // server too (a supervisor may stop a server no client talked to).
        let running = tokio::select! {
            r = handler.serve(super::stdio::stdio(server.clone(), caller.clone())) => Some(r.map_err(|e| usage(format!("MCP on stdio failed to start: {e}")))?),
            _ = ct.cancelled() => None,
        };
        if let Some(running) = running {
            let stdio_ct = running.cancellation_token();
            let waiting = running.waiting();
            tokio::pin!(waiting);
            tokio::select! {
                r = &mut waiting => {
                    if let Err(e) = r { tracing::warn!(error = %e, "MCP stdio session ended with an error"); }
                }
                _ = ct.cancelled() => {
                    // Let the calls in flight answer before the stream closes
                    // (rmcp sends the answers of finished handlers when its
                    // session is cancelled). stdin may stay open: the process
                    // exits anyway.
                    drain(&server, Duration::from_millis(cfg.server.shutdown_grace_ms)).await;
                    stdio_ct.cancel();
                    let _ = waiting.await;
                }
            }
        }
        ct.cancel();
    } else {
        ct.cancelled().await;
    }

    eprintln!("wasmward: shutting down; finishing calls in flight");
    let grace = Duration::from_millis(cfg.server.shutdown_grace_ms);
    let signalled = Instant::now();
    drain(&server, grace).await;
    // The calls are over; their results may still be on their way to MCP
    // clients (rmcp's session → the POST's SSE stream). Closing the sessions
    // now would cut those streams, so wait for every MCP POST response to
    // be sent, within the grace period (at least RESULT_DELIVERY).
    let deadline = (signalled + grace).max(Instant::now() + RESULT_DELIVERY);
    while server.metrics.mcp_responses() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if server.metrics.mcp_responses() > 0 {
        tracing::warn!(responses = server.metrics.mcp_responses(), "MCP responses still being sent at the end of the shutdown grace period; closing their sessions");
    }
    sessions_ct.cancel();
    if let Some(h) = http {
        match tokio::time::timeout(Duration::from_secs(10), h).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "HTTP server error"),
            Ok(Err(e)) => tracing::error!(error = %e, "HTTP server task failed"),
            Err(_) => tracing::warn!("HTTP connections still open 10 s after the calls ended; closing them"),
        }
    }
    let _ = reloader.await;
    let _ = flusher.await;
    finish(server).await
}

/// Shutdown, calls first: refuse new calls, let those in flight finish
/// within `grace`, then cancel the rest (each is recorded `cancelled`) and
/// wait until every call task has written its audit rows. Idempotent.
async fn drain(server: &Arc<Server>, grace: Duration) {
    server.begin_drain();
    if server.wait_calls(Instant::now() + grace).await {
        return;
    }
    tracing::warn!(in_flight = server.metrics.in_flight(), "shutdown grace period ([server] shutdown_grace_ms) over; cancelling the calls still running");
    server.cancel_calls();
    if !server.wait_calls(Instant::now() + Duration::from_secs(30)).await {
        tracing::error!(in_flight = server.metrics.in_flight(), "calls did not end 30 s after being cancelled");
    }
}

/// Records the unauthenticated-refusal counts of windows that closed.
fn spawn_unauthenticated_flusher(server: Arc<Server>, ct: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = ct.cancelled() => return,
            }
            for event in server.unauthenticated.flush(Instant::now(), false) {
                server.audit_gate(event).await;
            }
        }
    })
}

/// Records what is left of the unauthenticated-refusal counts, then flushes
/// the audit log (every call task has ended).
async fn finish(server: Arc<Server>) -> Result<(), Failure> {
    for event in server.unauthenticated.flush(Instant::now(), true) {
        server.audit_gate(event).await;
    }
    let deadline = Instant::now();
    let host = server.host.clone();
    drop(server);
    // MCP sessions drop their handles as they wind down.
    let mut host = host;
    loop {
        match Arc::try_unwrap(host) {
            Ok(h) => {
                h.shutdown().await.map_err(|e| Failure { status: 1, message: format!("{e:#}") })?;
                eprintln!("wasmward: audit log flushed; bye");
                return Ok(());
            }
            Err(h) if Instant::now() < deadline + Duration::from_secs(2) => {
                host = h;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => {
                return Err(Failure { status: 1, message: "shutdown: the host is still in use; the audit log was not flushed cleanly".into() });
            }
        }
    }
}

fn spawn_signal_handler(ct: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
                tracing::error!("cannot install signal handlers");
                return;
            };
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM"),
                _ = int.recv() => tracing::info!("SIGINT"),
                _ = ct.cancelled() => return,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        ct.cancel();
    });
}
