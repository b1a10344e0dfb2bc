//! The one sink every capability reports its refusals to. The runtime turns
//! the collected denials into audit events after the call; capabilities
//! never write the audit log themselves.

use crate::policy::{DenialKind, ViolationAction};
use std::sync::{Arc, Mutex};

/// One refused (or, in `log` mode, allowed-but-recorded) capability use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Denial {
    pub kind: DenialKind,
    /// What was attempted: `read`, `write`, `create`, `remove`, `connect`, ...
    pub op: String,
    /// The guest path, `host:port`, address or program.
    pub target: String,
    /// Why: the rule that refused it.
    pub rule: String,
    /// `denied`, or `logged` under `sandbox_violation_action = "log"`.
    pub action: &'static str,
}

impl Denial {
    /// A denial whose `action` records what `action` did: refused
    /// (`denied`) or let through in discovery mode (`logged`).
    pub fn new(kind: DenialKind, op: &str, target: String, rule: String, action: ViolationAction) -> Denial {
        let action = match action {
            ViolationAction::Deny => "denied",
            ViolationAction::Log => "logged",
        };
        Denial { kind, op: op.into(), target, rule, action }
    }
}

impl std::fmt::Display for Denial {
    /// `denied fs write /data/x: read-only mount /data`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {} {}: {}", self.action, self.kind.as_str(), self.op, self.target, self.rule)
    }
}

/// Shared per-call list of denials; cheap to clone into host closures.
#[derive(Debug, Clone, Default)]
pub struct Denials(Arc<Mutex<Vec<Denial>>>);

impl Denials {
    pub fn record(&self, d: Denial) {
        tracing::warn!(kind = d.kind.as_str(), op = %d.op, target = %d.target, rule = %d.rule, action = d.action, "capability refused");
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(d);
    }

    pub fn take(&self) -> Vec<Denial> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
