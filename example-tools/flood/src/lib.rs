//! `flood`: pushes the host's per-call bounds (denials, disk, descriptors,
//! exits, memory), for the host's tests.

wasmward_sdk::wit_bindgen::generate!({
    path: "wit",
    world: "flood",
    runtime_path: "wasmward_sdk::wit_bindgen::rt",
});
wasmward_sdk::embed_docs!("wit/world.wit");

use std::ffi::c_int;
use std::fs::{self, File, OpenOptions};
use std::hint::black_box;
use std::io::{self, Write};

const MIB: usize = 1024 * 1024;

struct Flood;

/// `op: error`, so the caller sees which step failed.
fn fail(op: &str) -> impl Fn(io::Error) -> String + '_ {
    move |e| format!("{op}: {e}")
}

// wasi-libc's socket constants (sys/socket.h for WASI).
const AF_INET: c_int = 1;
const SOCK_DGRAM: c_int = 5;
const SOCK_STREAM: c_int = 6;

unsafe extern "C" {
    fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int;
    fn pwrite(fd: c_int, buf: *const u8, len: usize, offset: i64) -> isize;
}

/// Writes `buf` at `offset` with wasi-libc's `pwrite` (the descriptor's
/// `write` method, not an output stream).
fn pwrite_all(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    while !buf.is_empty() {
        // SAFETY: `buf` is valid for `len` bytes and `file` is open.
        let n = unsafe { pwrite(file.as_raw_fd(), buf.as_ptr(), buf.len(), offset as i64) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        buf = &buf[n as usize..];
        offset += n as u64;
    }
    Ok(())
}

impl Guest for Flood {
    fn stat_loop(path_len: u32, count: u32) -> u32 {
        let mut path = String::from("/nope/");
        while path.len() < path_len as usize {
            path.push('a');
        }
        let mut failed = 0;
        for _ in 0..count {
            if fs::metadata(black_box(&path)).is_err() {
                failed += 1;
            }
        }
        failed
    }

    fn write_bytes(path: String, bytes: u64, chunk: u32, mode: String) -> Result<u64, String> {
        let mut file = match mode.as_str() {
            "write" | "set-size" | "pwrite" => File::create(&path).map_err(fail("create"))?,
            "append" => OpenOptions::new().append(true).create(true).open(&path).map_err(fail("open"))?,
            other => return Err(format!("unknown mode {other:?}")),
        };
        if mode == "set-size" {
            file.set_len(bytes).map_err(fail("set_len"))?;
            return Ok(bytes);
        }
        let buf = vec![b'x'; chunk.max(1) as usize];
        let mut written = 0u64;
        if mode == "pwrite" {
            while written < bytes {
                let n = (bytes - written).min(buf.len() as u64) as usize;
                pwrite_all(&file, &buf[..n], written).map_err(|e| format!("pwrite after {written} bytes: {e}"))?;
                written += n as u64;
            }
            return Ok(written);
        }
        while written < bytes {
            let n = (bytes - written).min(buf.len() as u64) as usize;
            if let Err(e) = file.write_all(&buf[..n]) {
                return Err(format!("write after {written} bytes: {e}"));
            }
            written += n as u64;
        }
        file.flush().map_err(fail("flush"))?;
        Ok(written)
    }

    fn create_sockets(count: u32, udp: bool) -> Result<u32, String> {
        let ty = if udp { SOCK_DGRAM } else { SOCK_STREAM };
        let mut made = 0;
        for _ in 0..count {
            // SAFETY: plain libc call with constant arguments; the
            // descriptors are deliberately leaked until the call ends.
            let fd = unsafe { socket(AF_INET, ty, 0) };
            if fd < 0 {
                return Err(format!("socket after {made}: {}", io::Error::last_os_error()));
            }
            made += 1;
        }
        Ok(made)
    }

    fn open_files(path: String, count: u32) -> Result<u32, String> {
        let mut open = Vec::new();
        for _ in 0..count {
            match File::open(&path) {
                Ok(f) => open.push(f),
                Err(e) => return Err(format!("open after {}: {e}", open.len())),
            }
        }
        Ok(open.len() as u32)
    }

    fn exit_with(status: u32) -> u32 {
        std::process::exit(status as i32)
    }

    fn alloc_mib(mib: u32) -> String {
        let mut v: Vec<u8> = Vec::new();
        match v.try_reserve_exact(mib as usize * MIB) {
            Ok(()) => {
                black_box(&mut v);
                "allocated".into()
            }
            Err(_) => "refused".into(),
        }
    }

    fn fail_after_write(path: String) -> Result<String, String> {
        match fs::write(&path, "x") {
            Ok(()) => Err("wrote it, failing anyway".into()),
            Err(e) => Err(format!("write: {e}")),
        }
    }

    fn big_error(bytes: u32) -> Result<String, String> {
        Err("e".repeat(bytes as usize))
    }

    fn big_error_after_write(path: String, prefix: String, bytes: u32) -> Result<String, String> {
        let _ = fs::write(&path, "x");
        let mut e = prefix;
        let pad = (bytes as usize).saturating_sub(e.len());
        e.push_str(&"e".repeat(pad));
        Err(e)
    }
}

export!(Flood);
