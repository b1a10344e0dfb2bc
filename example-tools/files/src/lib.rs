//! `files`: read and write files through `std::fs`. What it can reach is
//! exactly what the operator mounted; errors are the I/O error's text.

wasmward_sdk::wit_bindgen::generate!({
    path: "wit",
    world: "files",
    runtime_path: "wasmward_sdk::wit_bindgen::rt",
});
wasmward_sdk::embed_docs!("wit/world.wit");

use exports::example::files::fs::{Entry, Guest, Info, Kind};
use std::fs;
use std::time::UNIX_EPOCH;

struct Files;

fn kind(t: fs::FileType) -> Kind {
    if t.is_symlink() {
        Kind::Symlink
    } else if t.is_dir() {
        Kind::Directory
    } else if t.is_file() {
        Kind::File
    } else {
        Kind::Other
    }
}

fn text(e: std::io::Error) -> String {
    e.to_string()
}

impl Guest for Files {
    fn list(dir: String) -> Result<Vec<Entry>, String> {
        let mut entries = fs::read_dir(&dir)
            .map_err(text)?
            .map(|e| {
                let e = e.map_err(text)?;
                let meta = e.metadata().map_err(text)?;
                Ok(Entry {
                    name: e.file_name().to_string_lossy().into_owned(),
                    kind: kind(meta.file_type()),
                    size: meta.len(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    fn read(path: String) -> Result<String, String> {
        fs::read_to_string(path).map_err(text)
    }

    fn write(path: String, contents: String) -> Result<u64, String> {
        fs::write(path, &contents).map_err(text)?;
        Ok(contents.len() as u64)
    }

    fn stat(path: String) -> Result<Info, String> {
        let meta = fs::symlink_metadata(path).map_err(text)?;
        Ok(Info {
            kind: kind(meta.file_type()),
            size: meta.len(),
            modified_secs: meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs()),
        })
    }
}

export!(Files);
