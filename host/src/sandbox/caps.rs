//! Host bindings for wasmward's own WIT interfaces (`log`, `process`).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "wasmward:tool/host-capabilities",
    imports: { default: async },
});

pub use self::wasmward::tool::{log, process};
