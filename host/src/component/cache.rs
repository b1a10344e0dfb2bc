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
            return Ok((Component::from_binary(engine, bytes)?, CacheOutcome::Disabled));
        };
        let path = dir.join(format!("{digest}-{}.cwasm", engine_key(engine)));
        let existed = path.exists();
        if existed {
            match read_verified(engine, &path) {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "compile cache entry rejected; recompiling"),
            }
        }
        let component = Component::from_binary(engine, bytes)?;
        if let Err(e) = write_entry(dir, &path, &component) {
            tracing::warn!(dir = %dir.display(), error = %e, "could not write compile cache entry");
        }
        Ok((component, if existed { CacheOutcome::Rebuilt } else { CacheOutcome::Miss }))
    }
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
