//! `hostile`: attacks on the sandbox, used by the host's tests. World-root
//! functions push the limits; the `caps` interface tries every capability
//! and reports exactly what the guest saw.

wasmward_sdk::wit_bindgen::generate!({
    path: "wit",
    world: "hostile",
    runtime_path: "wasmward_sdk::wit_bindgen::rt",
});
wasmward_sdk::embed_docs!("wit/world.wit");

use exports::example::hostile::caps;
use std::fmt::Display;
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::{env, fs, io};
use wasmward_sdk::{http, process};

const MIB: usize = 1024 * 1024;

static COUNTER: AtomicU32 = AtomicU32::new(0);

struct Hostile;

impl Guest for Hostile {
    fn loop_forever() {
        let mut n = 0u64;
        loop {
            n = black_box(n.wrapping_add(1));
        }
    }

    fn recurse_forever(depth: u64) -> u64 {
        recurse(depth)
    }

    fn alloc_forever() -> u64 {
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut chunk = vec![0u8; MIB];
            // Touch every page so the memory is really committed.
            for page in chunk.chunks_mut(4096) {
                page[0] = 1;
            }
            chunks.push(black_box(chunk));
        }
    }

    fn print_flood(megabytes: u32) {
        let line = [b'x'; 1023]
            .iter()
            .chain(b"\n")
            .copied()
            .collect::<Vec<u8>>();
        let mut out = io::stdout();
        for _ in 0..megabytes as usize * 1024 {
            let _ = out.write_all(&line);
        }
        let _ = out.flush();
    }

    fn big_string(megabytes: u32) -> String {
        "x".repeat(megabytes as usize * MIB)
    }

    fn panic_now(msg: String) {
        panic!("{msg}");
    }

    fn counter() -> u32 {
        COUNTER.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn fake_jsonrpc() -> String {
        let mut out = io::stdout();
        let _ = out.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n");
        let _ = out.flush();
        "ok".to_string()
    }
}

/// Real recursion: a live stack buffer and work after the call keep it from
/// becoming a loop.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 64];
    frame[(depth % 64) as usize] = depth as u8;
    black_box(&mut frame);
    if black_box(depth) == u64::MAX {
        return depth;
    }
    let below = recurse(black_box(depth + 1));
    below.wrapping_add(frame[(depth % 64) as usize] as u64)
}

/// `std::os::wasi::fs::symlink_path` is unstable; wasi-libc's `symlink`
/// (linked in by std anyway) resolves `link` against the preopens the same
/// way `std::fs` does.
fn symlink(target: &str, link: &str) -> io::Result<()> {
    use std::ffi::{c_char, c_int, CString};
    unsafe extern "C" {
        fn symlink(target: *const c_char, link: *const c_char) -> c_int;
    }
    let target = CString::new(target).map_err(io::Error::other)?;
    let link = CString::new(link).map_err(io::Error::other)?;
    // SAFETY: both are valid NUL-terminated strings that outlive the call.
    if unsafe { symlink(target.as_ptr(), link.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `op: error`, so the caller sees which step failed.
fn fail(op: &str) -> impl Fn(io::Error) -> String + '_ {
    move |e| format!("{op}: {e}")
}

fn text(e: impl Display) -> String {
    e.to_string()
}

impl caps::Guest for Hostile {
    fn write_file(path: String, contents: String) -> Result<(), String> {
        fs::write(path, contents).map_err(fail("write"))
    }

    fn read_file(path: String) -> Result<String, String> {
        fs::read_to_string(path).map_err(fail("read"))
    }

    fn remove_file(path: String) -> Result<(), String> {
        fs::remove_file(path).map_err(fail("remove"))
    }

    fn make_dir(path: String) -> Result<(), String> {
        fs::create_dir(path).map_err(fail("mkdir"))
    }

    fn rename(from: String, to: String) -> Result<(), String> {
        fs::rename(from, to).map_err(fail("rename"))
    }

    fn symlink_escape(link_path: String, target: String) -> Result<String, String> {
        symlink(&target, &link_path).map_err(fail("symlink"))?;
        fs::read_to_string(&link_path).map_err(fail("read"))
    }

    fn list_dir(path: String) -> Result<Vec<String>, String> {
        let mut names = fs::read_dir(path)
            .map_err(fail("readdir"))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail("readdir"))?;
        names.sort();
        Ok(names)
    }

    fn resolve(name: String) -> Result<Vec<String>, String> {
        let addrs = (name.as_str(), 0)
            .to_socket_addrs()
            .map_err(fail("resolve"))?;
        Ok(addrs.map(|a| a.ip().to_string()).collect())
    }

    fn tcp_connect(addr: String) -> Result<String, String> {
        let mut stream = TcpStream::connect(&addr).map_err(fail("connect"))?;
        stream.write_all(b"ping\n").map_err(fail("write"))?;
        let mut buf = [0u8; 1024];
        match stream.read(&mut buf).map_err(fail("read"))? {
            0 => Ok("connected".to_string()),
            n => Ok(String::from_utf8_lossy(&buf[..n]).into_owned()),
        }
    }

    fn tcp_listen(addr: String) -> Result<(), String> {
        TcpListener::bind(&addr).map(drop).map_err(fail("listen"))
    }

    fn udp_send(addr: String, msg: String) -> Result<(), String> {
        let dest = addr
            .to_socket_addrs()
            .map_err(fail("resolve"))?
            .next()
            .ok_or_else(|| format!("resolve: no address for {addr}"))?;
        let local = if dest.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let socket = UdpSocket::bind(local).map_err(fail("bind"))?;
        socket
            .send_to(msg.as_bytes(), dest)
            .map(drop)
            .map_err(fail("send"))
    }

    fn http_get(url: String) -> Result<u16, String> {
        http::get(&url).map(|r| r.status).map_err(text)
    }

    fn env_get(key: String) -> Option<String> {
        env::var_os(key).map(|v| v.to_string_lossy().into_owned())
    }

    fn env_all() -> Vec<(String, String)> {
        env::vars_os()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect()
    }

    fn args_all() -> Vec<String> {
        env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn spawn(program: String, args: Vec<String>) -> Result<String, String> {
        process::run(&program, &args, b"")
            .map(|o| o.stdout_lossy())
            .map_err(text)
    }

    fn read_stdin() -> Result<String, String> {
        let mut s = String::new();
        io::stdin().read_to_string(&mut s).map_err(fail("read"))?;
        Ok(s)
    }
}

export!(Hostile);
