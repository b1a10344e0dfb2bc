//! `edges`: guest functions for the host's tests of the boundary's edges
//! (calls cancelled or outliving their caller, errors carrying secrets or
//! megabytes, ambiguous function names).

wasmward_sdk::wit_bindgen::generate!({
    path: "wit",
    world: "edges",
    runtime_path: "wasmward_sdk::wit_bindgen::rt",
});
wasmward_sdk::embed_docs!("wit/world.wit");

use exports::example::edges::{left, right};
use std::io::Write;
use std::time::Duration;

struct Edges;

impl Guest for Edges {
    fn deny_then_sleep(path: String, ms: u32) -> String {
        let wrote = match std::fs::write(&path, "edges") {
            Ok(()) => "write: ok".to_string(),
            Err(e) => format!("write: {e}"),
        };
        std::thread::sleep(Duration::from_millis(u64::from(ms)));
        wrote
    }

    fn return_err(text: String) -> Result<String, String> {
        Err(text)
    }

    fn err_of_size(bytes: u32) -> Result<String, String> {
        Err("e".repeat(bytes as usize))
    }

    fn print_both(text: String) -> String {
        let _ = writeln!(std::io::stdout(), "{text}");
        let _ = writeln!(std::io::stderr(), "{text}");
        "printed".to_string()
    }
}

impl left::Guest for Edges {
    fn dup() -> String {
        "left".to_string()
    }
}

impl right::Guest for Edges {
    fn dup() -> String {
        "right".to_string()
    }
}

export!(Edges);
