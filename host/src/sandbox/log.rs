//! `wasmward:tool/log`: guest log lines go to the host's `tracing` output,
//! tagged with the tool, never to the protocol stream.

use super::caps::log::{Host, Level};
use super::SandboxState;

/// Longest message or field kept; a guest cannot flood the host log.
const MAX_LOG_CHARS: usize = 4096;
const MAX_FIELDS: usize = 32;
/// Lines one call may log; the rest are counted, not written.
const MAX_LINES_PER_CALL: u32 = 1000;

fn clip(s: &str) -> &str {
    match s.char_indices().nth(MAX_LOG_CHARS) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl Host for SandboxState {
    async fn log(&mut self, lvl: Level, message: String, fields: Vec<(String, String)>) {
        self.log_lines = self.log_lines.saturating_add(1);
        if self.log_lines > MAX_LINES_PER_CALL {
            if self.log_lines == MAX_LINES_PER_CALL + 1 {
                tracing::warn!(target: "wasmward::guest", tool = %self.plan.tool, "guest log limit of {MAX_LINES_PER_CALL} lines per call reached; dropping the rest");
            }
            return;
        }
        let fields: Vec<String> = fields
            .iter()
            .take(MAX_FIELDS)
            .map(|(k, v)| format!("{}={}", clip(k), clip(v)))
            .collect();
        let fields = fields.join(" ");
        let (tool, msg) = (self.plan.tool.as_str(), clip(&message));
        match lvl {
            Level::Trace => tracing::trace!(target: "wasmward::guest", tool, fields, "{msg}"),
            Level::Debug => tracing::debug!(target: "wasmward::guest", tool, fields, "{msg}"),
            Level::Info => tracing::info!(target: "wasmward::guest", tool, fields, "{msg}"),
            Level::Warn => tracing::warn!(target: "wasmward::guest", tool, fields, "{msg}"),
            Level::Error => tracing::error!(target: "wasmward::guest", tool, fields, "{msg}"),
        }
    }
}
