//! On-disk cache of compiled components, keyed by the component's sha256 and
//! the engine's compatibility hash, so a restart loads in about a
//! millisecond instead of recompiling.
//!
//! Each artifact has a sidecar with its own sha256 and the artifact's stamp
//! (length, inode, ctime), written after the artifact. An artifact whose
//! stamp is unchanged is mapped without being read; one that changed must
//! still match the sha256. An entry whose bytes do not match (corrupt,
//! truncated, swapped) or that the engine refuses (stale) is rebuilt,
//! never trusted.

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
        check_private_dir(dir).map_err(|e| wasmtime::format_err!("{e}"))?;
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

/// When an artifact was last changed: its length, inode and ctime. The
/// ctime cannot be set back by a user, so an unchanged stamp means the
/// bytes are the ones hashed when the stamp was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    ino: u64,
    ctime_ns: i128,
}

impl Stamp {
    fn of(path: &Path) -> std::io::Result<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path)?;
        Ok(Stamp { len: m.len(), ino: m.ino(), ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()) })
    }

    fn parse(line: &str) -> Option<Stamp> {
        let mut it = line.split_whitespace().map(str::parse::<i128>);
        let (Some(Ok(len)), Some(Ok(ino)), Some(Ok(ctime_ns)), None) = (it.next(), it.next(), it.next(), it.next()) else {
            return None;
        };
        Some(Stamp { len: u64::try_from(len).ok()?, ino: u64::try_from(ino).ok()?, ctime_ns })
    }
}

/// File timestamps tick coarsely (a few ms), so a file changed within this
/// of a stamp could keep the same ctime: such a "racy" stamp is not
/// recorded, and the next load checks the hash instead (as git does with
/// racily clean index entries).
const RACY: Duration = Duration::from_secs(2);

/// The sidecar: the artifact's sha256, then the stamp it had when hashed,
/// if its ctime is at least `min_age` old.
fn write_sidecar(path: &Path, sha256: &str, min_age: Duration) -> std::io::Result<()> {
    let st = Stamp::of(path)?;
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    let text = if now_ns - st.ctime_ns >= min_age.as_nanos() as i128 {
        format!("{sha256}\n{} {} {}\n", st.len, st.ino, st.ctime_ns)
    } else {
        format!("{sha256}\n")
    };
    write_atomic(&sidecar(path), text.as_bytes())
}

/// Loads a cached artifact. Untouched since it was hashed (same stamp): it
/// is mapped from the file without reading it, so a 40 MB artifact loads
/// in milliseconds. Otherwise its bytes must match the recorded sha256.
fn read_verified(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    let side = std::fs::read_to_string(sidecar(path))?;
    let mut lines = side.lines();
    let want = lines.next().unwrap_or_default().trim().to_string();
    let recorded = lines.next().and_then(Stamp::parse);
    if recorded.is_some() && recorded == Stamp::of(path).ok() {
        // SAFETY: the file is the one this process family serialized and
        // hashed (its stamp is unchanged), entries are replaced by rename
        // (never rewritten in place), and the engine checks its own
        // compatibility header before use.
        return unsafe { Component::deserialize_file(engine, path) }.map_err(|e| anyhow::anyhow!("{e}"));
    }
    let bytes = std::fs::read(path)?;
    let got = hex::encode(Sha256::digest(&bytes));
    anyhow::ensure!(want == got, "artifact digest {got} does not match its sidecar {want}");
    // SAFETY: the bytes are exactly what this process family serialized
    // (checked against the sidecar written after them) and the engine
    // checks its own compatibility header before use.
    let component = unsafe { Component::deserialize(engine, &bytes) }.map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Err(e) = write_sidecar(path, &got, RACY) {
        tracing::warn!(path = %path.display(), error = %e, "could not refresh the compile cache sidecar");
    }
    Ok(component)
}

fn write_entry(dir: &Path, path: &Path, component: &Component) -> anyhow::Result<()> {
    create_private_dir(dir)?;
    let bytes = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
    write_atomic(path, &bytes)?;
    Ok(write_sidecar(path, &hex::encode(Sha256::digest(&bytes)), RACY)?)
}

/// Refuses a cache directory someone else could write native code into:
/// writable by group or others, or owned by another user. A missing one is
/// fine (it is created 0700 on the first write).
fn check_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => anyhow::bail!("compile cache directory {}: {e}", dir.display()),
    };
    let shown = dir.display();
    let why = "anyone who can write there can plant native code that wasmward would run";
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        anyhow::bail!(
            "compile cache directory {shown} is owned by uid {}, not by this user (uid {me}): {why}; run `chown {me} {shown}`, or set [runtime] cache_dir (or WASMWARD_CACHE_DIR) to a directory of your own",
            meta.uid()
        );
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        anyhow::bail!(
            "compile cache directory {shown} is writable by group or others (mode {mode:03o}): {why}; run `chmod 700 {shown}`, or set [runtime] cache_dir (or WASMWARD_CACHE_DIR) to a private directory"
        );
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid component: the preamble alone.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn entry(dir: &Path, engine: &Engine) -> PathBuf {
        dir.join(format!("{}-{}.cwasm", digest_of(EMPTY_COMPONENT), engine_key(engine)))
    }

    fn digest_of(b: &[u8]) -> String {
        hex::encode(Sha256::digest(b))
    }

    #[test]
    fn untouched_entries_hit_changed_ones_are_checked_by_hash() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = CompileCache::new(Some(dir.path().to_path_buf()));
        let load = || cache.load(&engine, &digest_of(EMPTY_COMPONENT), EMPTY_COMPONENT).expect("load").1;
        let path = entry(dir.path(), &engine);
        let side = || std::fs::read_to_string(sidecar(&path)).expect("sidecar");
        assert_eq!(load(), CacheOutcome::Miss);
        assert_eq!(side().lines().count(), 1, "a fresh artifact's stamp is racy and not recorded");
        assert_eq!(load(), CacheOutcome::Hit, "checked by hash");

        let sha = side().lines().next().expect("sha line").to_string();
        write_sidecar(&path, &sha, Duration::ZERO).expect("stamp");
        assert_eq!(side().lines().count(), 2);
        assert_eq!(load(), CacheOutcome::Hit, "unchanged stamp: mapped without reading");

        // Rewritten in place with the same length, a few timestamp ticks
        // later: the stamp changed, the hash does not match, it is rebuilt.
        std::thread::sleep(Duration::from_millis(20));
        let mut bytes = std::fs::read(&path).expect("artifact");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&path, &bytes).expect("corrupt");
        assert_eq!(load(), CacheOutcome::Rebuilt);
        assert_eq!(load(), CacheOutcome::Hit);
    }

    /// A tampered entry (artifact and sidecar rewritten to match, as anyone
    /// able to write the directory could) is never deserialised when the
    /// directory is not private: the load fails and says the fix.
    #[test]
    fn shared_or_foreign_cache_dirs_are_refused_before_any_entry_is_read() {
        use std::os::unix::fs::PermissionsExt;
        let engine = Engine::default();
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("cache");
        let cache = CompileCache::new(Some(dir.clone()));
        let load = || cache.load(&engine, &digest_of(EMPTY_COMPONENT), EMPTY_COMPONENT);
        assert_eq!(load().expect("fresh").1, CacheOutcome::Miss);
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);

        // Tamper: junk "native code" with a sidecar that matches it.
        let path = entry(&dir, &engine);
        let junk = b"not native code at all".to_vec();
        std::fs::write(&path, &junk).unwrap();
        std::fs::write(sidecar(&path), format!("{}\n", digest_of(&junk))).unwrap();

        // (mode, owner uid or None for ours, error substrings)
        let me = unsafe { libc::geteuid() };
        let cases: &[(u32, Option<u32>, &[&str])] = &[
            (0o777, None, &["writable by group or others (mode 777)", "chmod 700"]),
            (0o770, None, &["mode 770", "chmod 700"]),
            (0o702, None, &["mode 702"]),
            (0o700, Some(if me == 65534 { 65533 } else { 65534 }), &["is owned by uid", "chown"]),
        ];
        for (mode, owner, want) in cases {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(*mode)).unwrap();
            if let Some(uid) = owner {
                if std::os::unix::fs::chown(&dir, Some(*uid), None).is_err() {
                    continue; // not root: cannot give the directory away
                }
            }
            let e = load().expect_err("refused").to_string();
            for w in *want {
                assert!(e.contains(w) && e.contains(&dir.display().to_string()), "{mode:o}: {e}");
            }
            assert_eq!(std::fs::read(&path).unwrap(), junk, "the entry was neither used nor replaced");
            std::os::unix::fs::chown(&dir, Some(me), None).ok();
        }
        // Private again: the tampered entry fails its check (the engine
        // refuses it) and is rebuilt, never run.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(load().expect("rebuilt").1, CacheOutcome::Rebuilt);
    }

    #[test]
    fn stamps_parse_only_three_integers() {
        assert_eq!(Stamp::parse("10 20 30"), Some(Stamp { len: 10, ino: 20, ctime_ns: 30 }));
        for bad in ["", "10 20", "10 20 30 40", "a 2 3", "-1 2 3"] {
            assert_eq!(Stamp::parse(bad), None, "{bad:?}");
        }
    }
}
