//! Prometheus text metrics: calls by tool and outcome, sandbox denials by
//! tool and capability, gate refusals by tool and stage, rate-limit
//! rejections, a latency histogram per tool, calls in flight and the audit
//! queue depth.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Histogram bucket upper bounds, seconds.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Tables {
    /// Tool → outcome → calls (nested so that a call looks its counters up
    /// without allocating).
    calls: BTreeMap<String, BTreeMap<String, u64>>,
    denials: BTreeMap<(String, String), u64>,
    gate: BTreeMap<(String, String), u64>,
    /// Requests refused by the HTTP layer, by error code.
    http_refusals: BTreeMap<String, u64>,
    latency: BTreeMap<String, Histogram>,
}

#[derive(Default)]
pub struct Metrics {
    tables: Mutex<Tables>,
    in_flight: AtomicI64,
    /// MCP POST responses still being sent (shutdown waits for them).
    mcp_responses: AtomicI64,
}

/// Decrements the in-flight gauge when dropped.
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Metrics {
    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn start_call(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self)
    }

    /// A call task started (paired with [`Metrics::leave`]).
    pub fn enter(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    pub fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// One finished call: outcome `ok` or an error code; its sandbox
    /// denials by capability.
    /// `denials`: (kind, how many) pairs, summarised denials included.
    pub fn record_call<'k>(&self, tool: &str, outcome: &str, took: Duration, denials: impl Iterator<Item = (&'k str, u64)>) {
        let mut guard = self.tables();
        let t = &mut *guard;
        if !t.calls.contains_key(tool) {
            t.calls.insert(tool.into(), BTreeMap::new());
        }
        let by_outcome = t.calls.get_mut(tool).expect("inserted above");
        match by_outcome.get_mut(outcome) {
            Some(n) => *n += 1,
            None => {
                by_outcome.insert(outcome.into(), 1);
            }
        }
        for (kind, n) in denials {
            *t.denials.entry((tool.into(), kind.into())).or_default() += n;
        }
        if !t.latency.contains_key(tool) {
            t.latency.insert(tool.into(), Histogram::default());
        }
        let h = t.latency.get_mut(tool).expect("inserted above");
        let secs = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// A request refused by the HTTP layer (`Host`, `Origin`, body size,
    /// session limits), by its error code.
    pub fn record_http_refusal(&self, code: &str) {
        *self.tables().http_refusals.entry(code.into()).or_default() += 1;
    }

    /// An MCP POST response started (paired with [`Metrics::mcp_response_done`]).
    pub fn mcp_response_started(&self) {
        self.mcp_responses.fetch_add(1, Ordering::SeqCst);
    }

    pub fn mcp_response_done(&self) {
        self.mcp_responses.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn mcp_responses(&self) -> i64 {
        self.mcp_responses.load(Ordering::SeqCst)
    }

    pub fn record_refusal(&self, tool: &str, stage: &str) {
        *self.tables().gate.entry((tool.into(), stage.into())).or_default() += 1;
    }

    /// The Prometheus text exposition.
    pub fn render(&self, audit_queue_depth: usize, tools_loaded: usize) -> String {
        let t = self.tables();
        let mut o = String::new();
        let counter = |o: &mut String, name: &str, help: &str, labels: (&str, &str), map: &BTreeMap<(String, String), u64>| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((a, b), v) in map {
                let _ = writeln!(o, "{name}{{{}=\"{}\",{}=\"{}\"}} {v}", labels.0, esc(a), labels.1, esc(b));
            }
        };
        let calls: BTreeMap<(String, String), u64> = t.calls.iter().flat_map(|(tool, m)| m.iter().map(move |(o, n)| ((tool.clone(), o.clone()), *n))).collect();
        counter(&mut o, "wasmward_calls_total", "Tool calls that reached the runtime, by outcome (ok or an error code).", ("tool", "outcome"), &calls);
        counter(&mut o, "wasmward_denials_total", "Capability uses refused by the sandbox, by capability kind.", ("tool", "kind"), &t.denials);
        counter(&mut o, "wasmward_gate_refusals_total", "Requests refused by the gate, by stage.", ("tool", "stage"), &t.gate);
        let _ = writeln!(o, "# HELP wasmward_http_refusals_total Requests refused by the HTTP layer (Host, Origin, body size, MCP session limits), by error code.\n# TYPE wasmward_http_refusals_total counter");
        for (code, v) in &t.http_refusals {
            let _ = writeln!(o, "wasmward_http_refusals_total{{code=\"{}\"}} {v}", esc(code));
        }
        let rate: u64 = t.gate.iter().filter(|((_, s), _)| s == "rate_limit").map(|(_, v)| v).sum();
        let _ = writeln!(o, "# HELP wasmward_rate_limited_total Requests refused by a rate limit.\n# TYPE wasmward_rate_limited_total counter\nwasmward_rate_limited_total {rate}");
        let _ = writeln!(o, "# HELP wasmward_call_duration_seconds Call latency through the runtime.\n# TYPE wasmward_call_duration_seconds histogram");
        for (tool, h) in &t.latency {
            let tool = esc(tool);
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(o, "wasmward_call_duration_seconds_bucket{{tool=\"{tool}\",le=\"{b}\"}} {}", h.counts[i]);
            }
            let _ = writeln!(o, "wasmward_call_duration_seconds_bucket{{tool=\"{tool}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(o, "wasmward_call_duration_seconds_sum{{tool=\"{tool}\"}} {}", h.sum);
            let _ = writeln!(o, "wasmward_call_duration_seconds_count{{tool=\"{tool}\"}} {}", h.count);
        }
        let _ = writeln!(o, "# HELP wasmward_calls_in_flight Calls being served now.\n# TYPE wasmward_calls_in_flight gauge\nwasmward_calls_in_flight {}", self.in_flight());
        let _ = writeln!(o, "# HELP wasmward_mcp_responses_in_flight MCP responses being sent now.\n# TYPE wasmward_mcp_responses_in_flight gauge\nwasmward_mcp_responses_in_flight {}", self.mcp_responses());
        let _ = writeln!(o, "# HELP wasmward_audit_queue_depth Audit batches waiting for the writer.\n# TYPE wasmward_audit_queue_depth gauge\nwasmward_audit_queue_depth {audit_queue_depth}");
        let _ = writeln!(o, "# HELP wasmward_tools_loaded Tools loaded.\n# TYPE wasmward_tools_loaded gauge\nwasmward_tools_loaded {tools_loaded}");
        o
    }
}

/// Label value escaping (backslash, quote, newline).
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_was_recorded() {
        let m = Metrics::default();
        {
            let _a = m.start_call();
            assert_eq!(m.in_flight(), 1);
        }
        m.record_call("text.greet", "ok", Duration::from_micros(300), std::iter::empty());
        m.record_call("text.greet", "ok", Duration::from_millis(30), std::iter::empty());
        m.record_call("hostile.net", "ok", Duration::from_millis(2), [("network", 1), ("network", 1), ("fs", 40)].into_iter());
        m.record_refusal("text.greet", "rate_limit");
        m.record_refusal("x\"y", "filter");
        m.record_http_refusal("origin_not_allowed");
        m.record_http_refusal("origin_not_allowed");
        let text = m.render(3, 2);
        for line in [
            "wasmward_calls_total{tool=\"text.greet\",outcome=\"ok\"} 2",
            "wasmward_denials_total{tool=\"hostile.net\",kind=\"network\"} 2",
            "wasmward_denials_total{tool=\"hostile.net\",kind=\"fs\"} 40",
            "wasmward_gate_refusals_total{tool=\"text.greet\",stage=\"rate_limit\"} 1",
            "wasmward_gate_refusals_total{tool=\"x\\\"y\",stage=\"filter\"} 1",
            "wasmward_rate_limited_total 1",
            "wasmward_http_refusals_total{code=\"origin_not_allowed\"} 2",
            "wasmward_mcp_responses_in_flight 0",
            "wasmward_call_duration_seconds_bucket{tool=\"text.greet\",le=\"0.0005\"} 1",
            "wasmward_call_duration_seconds_bucket{tool=\"text.greet\",le=\"0.05\"} 2",
            "wasmward_call_duration_seconds_count{tool=\"text.greet\"} 2",
            "wasmward_calls_in_flight 0",
            "wasmward_audit_queue_depth 3",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
