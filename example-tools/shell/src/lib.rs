//! `shell`: run an allowlisted program through the SDK's process helper.

wasmward_sdk::wit_bindgen::generate!({
    path: "wit",
    world: "shell",
    runtime_path: "wasmward_sdk::wit_bindgen::rt",
});
wasmward_sdk::embed_docs!("wit/world.wit");

use wasmward_sdk::process;

struct Shell;

impl Guest for Shell {
    fn run(program: String, args: Vec<String>) -> Result<Output, String> {
        // ProcessError's Display starts a denial with "denied: ".
        let out = process::run(&program, &args, b"").map_err(|e| e.to_string())?;
        Ok(Output {
            status: out.status,
            stdout: out.stdout_lossy(),
            stderr: out.stderr_lossy(),
            truncated: out.truncated,
        })
    }
}

export!(Shell);
