//! Guest stdout/stderr: captured in memory up to a byte cap, never inherited
//! (inherited stdout would corrupt an MCP stdio stream).
//!
//! Past the cap, writes are accepted and dropped, and the pipe remembers it
//! was truncated. Refusing the write instead would make a Rust guest's
//! `println!` panic, turning chatty output into a failed call.

use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

#[derive(Debug, Default)]
struct Buffer {
    data: Vec<u8>,
    dropped: u64,
}

/// A capped in-memory output pipe; clones share the buffer.
#[derive(Debug, Clone)]
pub struct CappedPipe {
    cap: usize,
    buf: Arc<Mutex<Buffer>>,
}

impl CappedPipe {
    pub fn new(cap: usize) -> Self {
        CappedPipe { cap, buf: Arc::default() }
    }

    fn push(&self, bytes: &[u8]) {
        let mut b = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        let room = self.cap.saturating_sub(b.data.len());
        let take = room.min(bytes.len());
        b.data.extend_from_slice(&bytes[..take]);
        b.dropped += (bytes.len() - take) as u64;
    }

    /// The captured text (lossy UTF-8) and whether anything was dropped.
    pub fn take(&self) -> (String, bool) {
        let mut b = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        let data = std::mem::take(&mut b.data);
        (String::from_utf8_lossy(&data).into_owned(), b.dropped > 0)
    }

    /// Bytes the guest tried to write beyond the cap.
    pub fn dropped(&self) -> u64 {
        self.buf.lock().unwrap_or_else(|e| e.into_inner()).dropped
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_up_to_the_cap_and_counts_the_rest() {
        let cases: &[(usize, &[&str], &str, bool)] = &[
            (10, &["hello"], "hello", false),
            (5, &["hello"], "hello", false),
            (4, &["hello"], "hell", true),
            (6, &["abc", "def", "ghi"], "abcdef", true),
            (0, &["x"], "", true),
        ];
        for (cap, writes, want, truncated) in cases {
            let mut p = CappedPipe::new(*cap);
            for w in *writes {
                p.write(Bytes::copy_from_slice(w.as_bytes())).unwrap();
            }
            assert_eq!(p.take(), (want.to_string(), *truncated), "cap {cap} writes {writes:?}");
        }
    }
}
