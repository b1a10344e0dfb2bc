//! Hot reload on SIGHUP and when the config file changes (its mtime and
//! size, polled every second). The new config is validated and its tools
//! compiled before anything is swapped; calls in flight finish on the old
//! tools; an invalid config leaves the old one serving and says why.

use super::Server;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

type Stamp = Option<(SystemTime, u64)>;

fn stamp(p: &Path) -> Stamp {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Watches for SIGHUP and file changes until `ct` is cancelled.
pub fn spawn(server: Arc<Server>, ct: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGHUP; reload by editing the config file");
                None
            }
        };
        let mut last = stamp(&server.config_path);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            #[cfg(unix)]
            let hup_recv = async {
                match hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hup_recv = std::future::pending::<Option<()>>();
            let why = tokio::select! {
                _ = ct.cancelled() => return,
                _ = hup_recv => "SIGHUP",
                _ = tick.tick() => {
                    let now = stamp(&server.config_path);
                    if now == last || now.is_none() {
                        continue;
                    }
                    "config file changed"
                }
            };
            last = stamp(&server.config_path);
            reload_now(&server, why).await;
        }
    })
}

pub async fn reload_now(server: &Server, why: &str) -> bool {
    tracing::info!(path = %server.config_path.display(), "reloading ({why})");
    match server.reload().await {
        Ok(()) => {
            eprintln!("wasmward: reloaded {} ({why}): {} tool(s)", server.config_path.display(), server.host.tools().len());
            true
        }
        Err(e) => {
            tracing::error!("reload failed; still serving the previous config: {e}");
            eprintln!("wasmward: reload failed ({why}); still serving the previous config:\n{e}");
            false
        }
    }
}
