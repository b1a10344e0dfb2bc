//! Write wasmward tools in Rust.
//!
//! A tool is a WebAssembly component built with
//! `cargo build --release --target wasm32-wasip2`. This crate gives it the
//! host's capabilities through small helpers:
//!
//! - [`log`]: levelled, structured logging into the host's log (never into
//!   the agent's protocol stream);
//! - [`process`]: run a program the operator allowlisted;
//! - [`http`]: outgoing HTTP requests over `wasi:http`;
//! - [`is_denied`]: tells a policy refusal from an ordinary failure, for
//!   `std::io::Error` (files, sockets), [`http::HttpError`] and
//!   [`process::ProcessError`].
//!
//! Files, environment variables, clocks, randomness and sockets need no
//! helper: use `std` (`std::fs`, `std::env`, `std::net`, ...). What actually
//! works is decided by the operator's policy on each call.
//!
//! A tool declares its exports in its own WIT file and generates bindings
//! for them with the re-exported [`wit_bindgen`], passing `runtime_path` so
//! that the tool needs no direct `wit-bindgen` dependency:
//!
//! ```ignore
//! wasmward_sdk::wit_bindgen::generate!({
//!     path: "wit",
//!     world: "my-tool",
//!     runtime_path: "wasmward_sdk::wit_bindgen::rt",
//! });
//! wasmward_sdk::embed_docs!("wit/world.wit");
//! ```
//!
//! [`embed_docs!`] stores the WIT source (with its `///` comments) in a
//! `wasmward-docs` custom section, from which the host takes the
//! descriptions of the tool's functions and parameters.

/// The `wit-bindgen` this SDK is built with. Tools generate their export
/// bindings with `wasmward_sdk::wit_bindgen::generate!` and
/// `runtime_path: "wasmward_sdk::wit_bindgen::rt"`.
pub use wit_bindgen;

/// Raw bindings for the `wasmward:tool/imports` world: the host's own
/// interfaces (`wasmward::tool::{log, process}`) and every WASI 0.2
/// interface a tool may import. The helper modules wrap the common cases.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "wasmward:tool/imports@0.1.0",
        generate_all,
        // wit-parser 0.239 (wit-bindgen 0.46) resolves the gated
        // `import wasi:clocks/timezone` in wasi:cli/imports@0.2.12 even when
        // the feature is off, and then fails; turning it on only adds
        // bindings, and nothing is imported unless it is used.
        features: ["clocks-timezone"],
    });
}

pub mod denial;
pub mod http;
pub mod log;
pub mod process;

pub use denial::{is_denied, Denial};

/// Embed the tool's WIT source in the component, in a custom section named
/// `wasmward-docs`.
///
/// Components built by cargo and wit-bindgen keep the WIT types but not the
/// `///` doc comments; the host reads this section to describe the tool's
/// functions and parameters to agents. `$path` is relative to the tool
/// crate's manifest directory. Invoke it once, at the crate root:
///
/// ```ignore
/// wasmward_sdk::embed_docs!("wit/world.wit");
/// ```
#[macro_export]
macro_rules! embed_docs {
    ($path:literal) => {
        const _: () = {
            #[used]
            #[cfg_attr(target_family = "wasm", unsafe(link_section = "wasmward-docs"))]
            static WASMWARD_DOCS: [u8; include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/",
                $path
            ))
            .len()] = *include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $path));
        };
    };
}
