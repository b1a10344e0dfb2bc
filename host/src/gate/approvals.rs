//! Approvals: a call that needs one waits as pending until an operator
//! allows or denies it (`wasmward approve`), and is denied when no
//! decision comes in time. Fails closed: without an approver it is denied
//! at once, never approved.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;

/// A pending call as shown to approvers.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PendingView {
    pub id: String,
    /// Full function name.
    pub tool: String,
    pub caller: String,
    /// Why approval is needed.
    pub reason: String,
    /// sha256 of the canonical arguments (the arguments are not shown).
    pub args_digest: String,
    pub created_ms: u64,
    pub expires_ms: u64,
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed { approver: String },
    Denied { approver: String },
    TimedOut,
    NoApprover,
}

struct Pending {
    view: PendingView,
    tx: oneshot::Sender<Decision>,
}

#[derive(Default)]
pub struct Approvals {
    pending: Mutex<BTreeMap<String, Pending>>,
}

/// Removes the entry when a waiting call is dropped (client went away).
struct Cleanup<'a> {
    approvals: &'a Approvals,
    id: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        self.approvals.lock().remove(&self.id);
    }
}

impl Approvals {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a decision on a call. `approver_available` is false when
    /// nobody can reach the admin endpoint; the call is then denied.
    pub async fn wait(&self, mut view: PendingView, timeout: Duration, approver_available: bool) -> Decision {
        if !approver_available {
            return Decision::NoApprover;
        }
        view.id = hex::encode(rand::random::<[u8; 6]>());
        view.created_ms = crate::server::now_ms();
        view.expires_ms = view.created_ms + timeout.as_millis() as u64;
        let (tx, rx) = oneshot::channel();
        let id = view.id.clone();
        tracing::warn!(id = %id, tool = %view.tool, caller = %view.caller, "call pending approval: `wasmward approve allow {id}` or `deny {id}`");
        self.lock().insert(id.clone(), Pending { view, tx });
        let _cleanup = Cleanup { approvals: self, id };
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(d)) => d,
            Ok(Err(_)) | Err(_) => Decision::TimedOut,
        }
    }

    pub fn list(&self) -> Vec<PendingView> {
        self.lock().values().map(|p| p.view.clone()).collect()
    }

    /// Decides a pending call. Errors if it is unknown (decided, timed out,
    /// or never existed).
    pub fn decide(&self, id: &str, allow: bool, approver: &str) -> Result<PendingView, String> {
        let p = self.lock().remove(id).ok_or_else(|| {
            format!("no pending call with id {id:?}; it may have been decided or timed out (`wasmward approve list` shows pending calls)")
        })?;
        let approver = approver.to_string();
        let d = if allow { Decision::Allowed { approver } } else { Decision::Denied { approver } };
        // The waiter may have just timed out; then the decision is moot.
        let _ = p.tx.send(d);
        Ok(p.view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn view(tool: &str) -> PendingView {
        PendingView {
            id: String::new(),
            tool: tool.into(),
            caller: "agent".into(),
            reason: "require_approval".into(),
            args_digest: "d".into(),
            created_ms: 0,
            expires_ms: 0,
        }
    }

    async fn pending_id(a: &Approvals) -> String {
        for _ in 0..200 {
            if let Some(p) = a.list().first() {
                return p.id.clone();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("nothing became pending");
    }

    #[tokio::test]
    async fn allow_deny_timeout_and_no_approver() {
        let a = Arc::new(Approvals::default());
        for allow in [true, false] {
            let waiter = tokio::spawn({
                let a = a.clone();
                async move { a.wait(view("shell.run"), Duration::from_secs(10), true).await }
            });
            let id = pending_id(&a).await;
            let shown = a.decide(&id, allow, "ops").unwrap();
            assert_eq!(shown.tool, "shell.run");
            let want = if allow { Decision::Allowed { approver: "ops".into() } } else { Decision::Denied { approver: "ops".into() } };
            assert_eq!(waiter.await.unwrap(), want);
            assert!(a.list().is_empty());
            assert!(a.decide(&id, true, "ops").unwrap_err().contains("no pending call"));
        }
        assert_eq!(a.wait(view("t.x"), Duration::from_millis(20), true).await, Decision::TimedOut);
        assert!(a.list().is_empty(), "timed-out calls are removed");
        assert_eq!(a.wait(view("t.x"), Duration::from_secs(10), false).await, Decision::NoApprover);
    }

    #[tokio::test]
    async fn a_dropped_waiter_leaves_nothing_pending() {
        let a = Arc::new(Approvals::default());
        let waiter = tokio::spawn({
            let a = a.clone();
            async move { a.wait(view("t.x"), Duration::from_secs(10), true).await }
        });
        pending_id(&a).await;
        waiter.abort();
        let _ = waiter.await;
        assert!(a.list().is_empty());
    }
}
