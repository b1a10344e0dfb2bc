//! On-disk cache of compiled components, keyed by the component's sha256 and
//! the engine's compatibility hash, so a restart loads in about a
//! millisecond instead of recompiling.
//!
//! Each artifact has a sidecar with its own sha256, written after the
//! artifact; an entry whose bytes do not match (corrupt, truncated,
//! swapped) or that the engine refuses (stale) is rebuilt, never trusted.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};
use wasmtime::component::Component;
use wasmtime::Engine;

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheOutcome {
    Hit,
    Miss,
    /// An entry existed but failed its check and was replaced.
    Rebuilt,
    Disabled,
}

/// A compile cache in one directory (created 0700).
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
}

/// Hashes the engine's compatibility hash into hex with a stable hasher.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        unreachable!("only the digest is read")
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn engine_key(engine: &Engine) -> String {
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex::encode(&h.0.finalize()[..12])
}

impl CompileCache {
    /// A cache in `dir`; `None` compiles every time.
    pub fn new(dir: Option<PathBuf>) -> Self {
        CompileCache { dir }
    }

    /// The default directory: `$WASMWARD_CACHE_DIR`, else the user cache dir.
    pub fn default_dir() -> Option<PathBuf> {
        std::env::var_os("WASMWARD_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("wasmward").join("compiled")))
    }

    /// Loads `bytes` (whose sha256 is `digest`) compiled for `engine`.
    pub fn load(&self, engine: &Engine, digest: &str, bytes: &[u8]) -> wasmtime::Result<(Component, CacheOutcome)> {
        let Some(dir) = &self.dir else {
            return Ok((compile(engine, digest, bytes)?, CacheOutcome::Disabled));
        };
        let path = dir.join(format!("{digest}-{}.cwasm", engine_key(engine)));
        let existed = path.exists();
        if existed {
            match read_verified(engine, &path) {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "compile cache entry rejected; recompiling"),
            }
        }
        let component = compile(engine, digest, bytes)?;
        if let Err(e) = write_entry(dir, &path, &component) {
            tracing::warn!(dir = %dir.display(), error = %e, "could not write compile cache entry");
        }
        Ok((component, if existed { CacheOutcome::Rebuilt } else { CacheOutcome::Miss }))
    }
}

/// How often a long compile reports that it is still running.
const HEARTBEAT: Duration = Duration::from_secs(2);

/// Compiles, logging a line when a compile starts and then every
/// [`HEARTBEAT`] until it ends: a 15 MB Python or JS component takes
/// seconds, and a silent startup looks like a hang.
fn compile(engine: &Engine, digest: &str, bytes: &[u8]) -> wasmtime::Result<Component> {
    let started = Instant::now();
    let mb = bytes.len() as f64 / (1 << 20) as f64;
    let short = &digest[..digest.len().min(12)];
    tracing::info!(sha256 = short, "compiling {mb:.1} MB component (once; later loads use the compile cache)");
    let (stop, stopped) = mpsc::channel::<()>();
    let short_owned = short.to_string();
    let beat = std::thread::Builder::new().name("wasmward-compile-heartbeat".into()).spawn(move || {
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(HEARTBEAT) {
            tracing::info!(sha256 = %short_owned, "still compiling {mb:.1} MB component: {:.0} s", started.elapsed().as_secs_f64());
        }
    });
    let result = Component::from_binary(engine, bytes);
    drop(stop);
    if let Ok(handle) = beat {
        let _ = handle.join();
    }
    tracing::info!(sha256 = short, ms = started.elapsed().as_millis() as u64, ok = result.is_ok(), "compile finished");
    result
}

fn sidecar(path: &Path) -> PathBuf {
    path.with_extension("cwasm.sha256")
}

fn read_verified(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    let bytes = std::fs::read(path)?;
    let want = std::fs::read_to_string(sidecar(path))?;
    let got = hex::encode(Sha256::digest(&bytes));
    anyhow::ensure!(want.trim() == got, "artifact digest {got} does not match its sidecar {}", want.trim());
    // SAFETY: the bytes are exactly what this process family serialized
    // (checked against the sidecar written after them) and the engine
    // checks its own compatibility header before use.
    unsafe { Component::deserialize(engine, &bytes) }.map_err(|e| anyhow::anyhow!("{e}"))
}

fn write_entry(dir: &Path, path: &Path, component: &Component) -> anyhow::Result<()> {
    create_private_dir(dir)?;
    let bytes = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
    write_atomic(path, &bytes)?;
    Ok(write_atomic(&sidecar(path), hex::encode(Sha256::digest(&bytes)).as_bytes())?)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
