//! Approvals: a call that needs one waits as pending until an operator
//! allows or denies it (`wasmward approve`), and is denied when no
//! decision comes in time. Fails closed: without an approver it is denied
//! at once, never approved.
//!
//! What an approver sees ([`PendingView`]): the function, its description,
//! the caller, the arguments redacted exactly as the audit log redacts
//! them (the audit's [`Redactor`](crate::audit::Redactor), built from
//! `[audit] redact_patterns` and `redact_ipv4`), and a summary of the
//! policy the call would run under ([`PolicySummary`]). While a call
//! waits, an optional [`Progress`] sink is told every
//! `approval_progress_interval_ms` (MCP `notifications/progress`).

use crate::policy::{EffectivePolicy, MountMode};
use crate::sandbox::Limits;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// A pending call as shown to approvers.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PendingView {
    pub id: String,
    /// Full (canonical) function name.
    pub tool: String,
    /// The function's doc comment (or the `[[tool]] description`).
    pub description: Option<String>,
    pub caller: String,
    /// Why approval is needed.
    pub reason: String,
    /// The arguments, redacted as the audit log redacts them.
    pub arguments: Value,
    /// sha256 of the canonical arguments (before redaction), as in the
    /// call's audit row.
    pub args_digest: String,
    /// The policy the call runs under if allowed.
    pub policy: PolicySummary,
    pub created_ms: u64,
    pub expires_ms: u64,
}

/// A mount as shown to approvers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountView {
    /// Path as the tool sees it.
    pub guest: String,
    /// Directory on the host.
    pub host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_bytes: Option<u64>,
}

/// The effective policy of a tool, reduced to what an approver weighs:
/// what it can read, write, reach and run, and its limits. Environment
/// values are not shown (they are often secrets), only their names.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct PolicySummary {
    pub read: Vec<MountView>,
    pub write: Vec<MountView>,
    /// `allowed_network_hosts`.
    pub hosts: Vec<String>,
    pub block_private_ips: bool,
    /// Allowlisted programs (absolute paths); empty unless `allow_subprocess`.
    pub programs: Vec<String>,
    /// Names of the variables in the tool's environment.
    pub env: Vec<String>,
    /// `deny` or `log`.
    pub sandbox_violation_action: String,
    /// In config vocabulary: `timeout_ms`, `memory_mb`, `fuel`,
    /// `max_output_bytes`, `max_write_bytes`.
    pub limits: Value,
}

impl PolicySummary {
    pub fn of(policy: &EffectivePolicy, limits: &Limits) -> PolicySummary {
        let mounts = |mode: MountMode| -> Vec<MountView> {
            policy
                .mounts
                .mounts()
                .iter()
                .filter(|m| m.mode == mode)
                .map(|m| MountView { guest: m.guest.clone(), host: m.host.to_string_lossy().into_owned(), quota_bytes: m.quota_bytes })
                .collect()
        };
        let sp = &policy.subprocess;
        PolicySummary {
            read: mounts(MountMode::Ro),
            write: mounts(MountMode::Rw),
            hosts: policy.network.patterns().iter().map(|p| p.to_string()).collect(),
            block_private_ips: policy.block_private_ips,
            programs: if sp.allowed { sp.programs.iter().map(|p| p.path.to_string_lossy().into_owned()).collect() } else { Vec::new() },
            env: policy.env.keys().cloned().collect(),
            sandbox_violation_action: match policy.violation_action {
                crate::policy::ViolationAction::Deny => "deny".into(),
                crate::policy::ViolationAction::Log => "log".into(),
            },
            limits: json!({
                "timeout_ms": limits.timeout.as_millis() as u64,
                "memory_mb": limits.memory_bytes >> 20,
                "fuel": limits.fuel,
                "max_output_bytes": limits.max_output_bytes,
                "max_write_bytes": limits.max_write_bytes,
            }),
        }
    }

    /// One line per grant, for `wasmward approve list`.
    pub fn lines(&self) -> Vec<String> {
        let mounts = |ms: &[MountView]| -> String {
            if ms.is_empty() {
                return "none".into();
            }
            ms.iter()
                .map(|m| {
                    let mut s = if m.guest == m.host { m.guest.clone() } else { format!("{} (host {})", m.guest, m.host) };
                    if let Some(q) = m.quota_bytes {
                        s.push_str(&format!(" quota {q} B"));
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let list = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
        let mut out = vec![
            format!("read:     {}", mounts(&self.read)),
            format!("write:    {}", mounts(&self.write)),
            format!("hosts:    {}{}", list(&self.hosts), if self.hosts.is_empty() || self.block_private_ips { "" } else { " (private IPs allowed)" }),
            format!("programs: {}", list(&self.programs)),
        ];
        if !self.env.is_empty() {
            out.push(format!("env:      {}", self.env.join(", ")));
        }
        if self.sandbox_violation_action != "deny" {
            out.push(format!("sandbox_violation_action = {:?}", self.sandbox_violation_action));
        }
        if let Value::Object(m) = &self.limits {
            let l: Vec<String> = m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| format!("{k} = {v}")).collect();
            out.push(format!("limits:   {}", l.join(", ")));
        }
        out
    }
}

/// Where a waiting call is while it waits, for progress reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitProgress {
    pub id: String,
    pub waited: Duration,
    pub timeout: Duration,
}

impl WaitProgress {
    /// `waiting for approval <id> (N s left)`.
    pub fn message(&self) -> String {
        let left = self.timeout.saturating_sub(self.waited);
        format!("waiting for approval {} ({} s left)", self.id, left.as_millis().div_ceil(1000))
    }
}

/// Told when a call becomes pending and then every interval until it is
/// decided or times out. Called on the waiting task: must not block.
pub type Progress = Arc<dyn Fn(&WaitProgress) + Send + Sync>;

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

    /// A fresh approval id (12 hex characters).
    pub fn new_id() -> String {
        hex::encode(rand::random::<[u8; 6]>())
    }

    /// Waits for a decision on a call. `approver_available` is false when
    /// nobody can reach the admin endpoint; the call is then denied. The
    /// view's `id` is kept if set (else a fresh one is made). `progress`
    /// is told at once and then every `every` while the call waits.
    pub async fn wait(
        &self,
        mut view: PendingView,
        timeout: Duration,
        approver_available: bool,
        progress: Option<(&Progress, Duration)>,
    ) -> Decision {
        if !approver_available {
            return Decision::NoApprover;
        }
        if view.id.is_empty() {
            view.id = Approvals::new_id();
        }
        view.created_ms = crate::server::now_ms();
        view.expires_ms = view.created_ms + timeout.as_millis() as u64;
        let (tx, mut rx) = oneshot::channel();
        let id = view.id.clone();
        tracing::warn!(id = %id, tool = %view.tool, caller = %view.caller, "call pending approval: `wasmward approve allow {id}` or `deny {id}`");
        self.lock().insert(id.clone(), Pending { view, tx });
        let _cleanup = Cleanup { approvals: self, id: id.clone() };
        let started = tokio::time::Instant::now();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticks = progress.map(|(p, every)| {
            let mut i = tokio::time::interval(every.max(Duration::from_millis(10)));
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            (p, i)
        });
        loop {
            tokio::select! {
                biased;
                r = &mut rx => return r.unwrap_or(Decision::TimedOut),
                _ = &mut deadline => return Decision::TimedOut,
                _ = async { ticks.as_mut().expect("guarded").1.tick().await }, if ticks.is_some() => {
                    if let Some((p, _)) = &ticks {
                        p(&WaitProgress { id: id.clone(), waited: started.elapsed().min(timeout), timeout });
                    }
                }
            }
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
            description: None,
            arguments: serde_json::json!({}),
            args_digest: "d".into(),
            policy: PolicySummary::default(),
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
                async move { a.wait(view("shell.run"), Duration::from_secs(10), true, None).await }
            });
            let id = pending_id(&a).await;
            let shown = a.decide(&id, allow, "ops").unwrap();
            assert_eq!(shown.tool, "shell.run");
            let want = if allow { Decision::Allowed { approver: "ops".into() } } else { Decision::Denied { approver: "ops".into() } };
            assert_eq!(waiter.await.unwrap(), want);
            assert!(a.list().is_empty());
            assert!(a.decide(&id, true, "ops").unwrap_err().contains("no pending call"));
        }
        assert_eq!(a.wait(view("t.x"), Duration::from_millis(20), true, None).await, Decision::TimedOut);
        assert!(a.list().is_empty(), "timed-out calls are removed");
        assert_eq!(a.wait(view("t.x"), Duration::from_secs(10), false, None).await, Decision::NoApprover);
    }

    #[tokio::test]
    async fn a_dropped_waiter_leaves_nothing_pending() {
        let a = Arc::new(Approvals::default());
        let waiter = tokio::spawn({
            let a = a.clone();
            async move { a.wait(view("t.x"), Duration::from_secs(10), true, None).await }
        });
        pending_id(&a).await;
        waiter.abort();
        let _ = waiter.await;
        assert!(a.list().is_empty());
    }

    /// Progress stops when the wait ends, and a timed-out wait reports
    /// nothing after its deadline.
    #[tokio::test]
    async fn progress_is_reported_until_the_wait_ends() {
        let a = Approvals::default();
        let seen = Arc::new(Mutex::new(Vec::<WaitProgress>::new()));
        let sink = seen.clone();
        let p: Progress = Arc::new(move |w: &WaitProgress| sink.lock().unwrap().push(w.clone()));
        let d = a.wait(view("t.x"), Duration::from_millis(350), true, Some((&p, Duration::from_millis(100)))).await;
        assert_eq!(d, Decision::TimedOut);
        let n = seen.lock().unwrap().len();
        assert!((1..=5).contains(&n), "{:?}", seen.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(seen.lock().unwrap().len(), n, "nothing after the wait ended");
        let first = seen.lock().unwrap()[0].clone();
        assert!(first.waited < Duration::from_millis(50), "told at once: {first:?}");
        assert_eq!(first.message(), format!("waiting for approval {} (1 s left)", first.id));
    }

    #[test]
    fn progress_messages_round_the_time_left_up() {
        let cases = [(0, 45_000, "45 s left"), (4_500, 45_000, "41 s left"), (44_999, 45_000, "1 s left"), (45_000, 45_000, "0 s left")];
        for (waited, timeout, want) in cases {
            let p = WaitProgress { id: "ab12".into(), waited: Duration::from_millis(waited), timeout: Duration::from_millis(timeout) };
            assert_eq!(p.message(), format!("waiting for approval ab12 ({want})"));
        }
    }

    /// The summary lists what the policy grants and nothing of the
    /// environment's values.
    #[test]
    fn policy_summary_shows_mounts_hosts_programs_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        let (ro, rw) = (dir.path().join("ro"), dir.path().join("rw"));
        std::fs::create_dir(&ro).unwrap();
        std::fs::create_dir(&rw).unwrap();
        let spec: crate::policy::PolicySpec = toml::from_str(&format!(
            "allowed_read_paths = [{ro:?}]\nallowed_write_paths = [{{ host = {rw:?}, guest = \"/out\", quota_bytes = 1000 }}]\nallowed_network_hosts = [\"api.example.com\", \"*.svc.example.org:8443\"]\nallow_subprocess = true\nsubprocess_allowlist = [\"true\"]\nenv = {{ REGION = \"s3cr3t-value\" }}\n",
            ro = ro.display().to_string(),
            rw = rw.display().to_string(),
        ))
        .unwrap();
        let policy = EffectivePolicy::resolve(None, Some(&spec), "t").unwrap();
        let limits = Limits { timeout: Duration::from_millis(2500), fuel: Some(9), ..Limits::default() };
        let s = PolicySummary::of(&policy, &limits);
        let (ro, rw) = (std::fs::canonicalize(ro).unwrap(), std::fs::canonicalize(rw).unwrap());
        assert_eq!(s.read, [MountView { guest: ro.display().to_string(), host: ro.display().to_string(), quota_bytes: None }]);
        assert_eq!(s.write, [MountView { guest: "/out".into(), host: rw.display().to_string(), quota_bytes: Some(1000) }]);
        assert_eq!(s.hosts, ["api.example.com", "*.svc.example.org:8443"]);
        assert!(s.block_private_ips);
        assert_eq!(s.programs.len(), 1);
        assert!(s.programs[0].ends_with("/true"), "{:?}", s.programs);
        assert_eq!(s.env, ["REGION"]);
        assert_eq!(s.limits["timeout_ms"], 2500);
        assert_eq!(s.limits["fuel"], 9);
        let text = s.lines().join("\n");
        assert!(!text.contains("s3cr3t") && !serde_json::to_string(&s).unwrap().contains("s3cr3t"), "{text}");
        for needle in ["write:    /out (host ", "quota 1000 B", "hosts:    api.example.com, *.svc.example.org:8443", "programs: /", "env:      REGION", "timeout_ms = 2500"] {
            assert!(text.contains(needle), "{needle:?} in\n{text}");
        }
        // Round trip through the JSON the CLI reads back.
        let back: PolicySummary = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        // Nothing granted: every line says so.
        let none = PolicySummary::of(&EffectivePolicy::resolve(None, None, "t").unwrap(), &Limits::default()).lines().join("\n");
        for needle in ["read:     none", "write:    none", "hosts:    none", "programs: none"] {
            assert!(none.contains(needle), "{needle:?} in\n{none}");
        }
    }
}
