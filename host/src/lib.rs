//! wasmward: a host for untrusted WebAssembly tools.
//!
//! A call flows one way through the stages, one module each:
//! server → gate → [`runtime`] → [`sandbox`] capabilities → audit.
//! [`component`] loads tools and maps their WIT to JSON Schemas;
//! [`config`] reads the operator's file.

pub mod component;
pub mod config;
pub mod error;
pub mod gate;
pub mod host;
pub mod policy;
pub mod runtime;
pub mod audit;
pub mod audit_cli;
pub mod cli;
pub mod sandbox;
pub mod scaffold;
pub mod server;

pub use error::CallError;
pub use runtime::{CallRecord, Runtime, RuntimeOptions};
