//! `text`: pure functions over rich WIT types.

wasmward_sdk::wit_bindgen::generate!({
    path: "wit",
    world: "text",
    runtime_path: "wasmward_sdk::wit_bindgen::rt",
});
wasmward_sdk::embed_docs!("wit/world.wit");

use exports::example::text::analysis::{self, Stats};

struct Text;

impl Guest for Text {
    fn greet(name: String) -> String {
        format!("Hello, {name}!")
    }

    fn add(a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }

    fn echo_all(x: Everything) -> Everything {
        x
    }
}

impl analysis::Guest for Text {
    fn word_stats(text: String) -> Stats {
        let longest_word = text
            .split_whitespace()
            .fold(None, |best: Option<&str>, w| match best {
                Some(b) if b.chars().count() >= w.chars().count() => Some(b),
                _ => Some(w),
            })
            .map(str::to_string);
        Stats {
            words: text.split_whitespace().count() as u32,
            lines: text.lines().count() as u32,
            chars: text.chars().count() as u32,
            bytes: text.len() as u32,
            longest_word,
        }
    }

    fn parse_int(s: String) -> Result<i64, String> {
        s.trim()
            .parse()
            .map_err(|e| format!("not an integer: {:?}: {e}", s.trim()))
    }
}

export!(Text);
