//! `fetch`: one HTTP GET through the SDK's `wasi:http` helper.

wasmward_sdk::wit_bindgen::generate!({
    path: "wit",
    world: "fetch",
    runtime_path: "wasmward_sdk::wit_bindgen::rt",
});
wasmward_sdk::embed_docs!("wit/world.wit");

use wasmward_sdk::http;

const DEFAULT_MAX_BODY_BYTES: u32 = 1024 * 1024;

struct Fetch;

impl Guest for Fetch {
    fn get(url: String, max_body_bytes: Option<u32>) -> Result<Response, String> {
        let cap = max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        let resp = http::Request::new("GET", &url)
            .max_body_bytes(cap as usize)
            .send()
            .map_err(|e| e.to_string())?;
        Ok(Response {
            status: resp.status,
            body: resp.text(),
            headers: resp.headers,
            truncated: resp.truncated,
        })
    }
}

export!(Fetch);
