//! The HMAC key: from `WASMWARD_AUDIT_KEY` (hex), else from `<db>.key`,
//! created on first run with 32 random bytes at mode 0600.
//!
//! A key file that group or others can read is refused rather than fixed
//! silently: someone may already have copied it.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::error::{io_err, AuditError, Result};
use super::store::key_path;

/// Environment variable holding the key as hex (at least 16 bytes).
pub const KEY_ENV: &str = "WASMWARD_AUDIT_KEY";

const MIN_KEY_BYTES: usize = 16;

/// The key bytes (read by the tests) and the keyed HMAC state.
#[derive(Clone)]
pub struct AuditKey(#[cfg_attr(not(test), allow(dead_code))] Vec<u8>, Hmac<Sha256>);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

impl AuditKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<AuditKey> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(AuditError::Key(format!(
                "key is {} bytes; use at least {MIN_KEY_BYTES} (32 recommended)",
                bytes.len()
            )));
        }
        Ok(AuditKey::new(bytes))
    }

    pub fn from_hex(text: &str) -> Result<AuditKey> {
        let bytes = hex::decode(text.trim())
            .map_err(|e| AuditError::Key(format!("key is not valid hex: {e}")))?;
        AuditKey::from_bytes(&bytes)
    }

    /// For `verify`/`prune`: the env key, else the existing key file.
    pub fn load(db: &Path) -> Result<AuditKey> {
        resolve(std::env::var(KEY_ENV).ok().as_deref(), db, false)
    }

    /// For the writer: like [`AuditKey::load`], creating the key file if missing.
    pub fn load_or_create(db: &Path) -> Result<AuditKey> {
        resolve(std::env::var(KEY_ENV).ok().as_deref(), db, true)
    }

    fn new(bytes: &[u8]) -> AuditKey {
        // The keyed state (inner and outer pads hashed) is made once and
        // cloned per MAC.
        let mac = Hmac::<Sha256>::new_from_slice(bytes).expect("hmac takes any key size");
        AuditKey(bytes.to_vec(), mac)
    }

    /// hex(HMAC-SHA256(key, parts...)).
    pub(super) fn mac_hex(&self, parts: &[&[u8]]) -> String {
        let mut out = String::with_capacity(64);
        self.mac_hex_into(parts, &mut out);
        out
    }

    /// Like [`AuditKey::mac_hex`], into `out` (cleared first).
    pub(super) fn mac_hex_into(&self, parts: &[&[u8]], out: &mut String) {
        let mut mac = self.1.clone();
        for p in parts {
            mac.update(p);
        }
        out.clear();
        hex_into(&mac.finalize().into_bytes(), out);
    }
}

/// Appends the lowercase hex of `bytes` to `out` (what `hex::encode` gives).
pub(super) fn hex_into(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
}

pub(super) fn resolve(env: Option<&str>, db: &Path, create: bool) -> Result<AuditKey> {
    if let Some(text) = env.filter(|t| !t.trim().is_empty()) {
        return AuditKey::from_hex(text).map_err(|e| AuditError::Key(format!("{KEY_ENV}: {e}")));
    }
    let path = key_path(db);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            check_mode(&path)?;
            AuditKey::from_hex(&text)
                .map_err(|e| AuditError::Key(format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => create_key(&path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(AuditError::Key(format!(
            "no key: {KEY_ENV} is unset and {} does not exist",
            path.display()
        ))),
        Err(e) => Err(io_err(&path)(e)),
    }
}

fn create_key(path: &Path) -> Result<AuditKey> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err(dir))?;
    }
    let bytes: [u8; 32] = rand::random();
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(mut f) => {
            f.write_all(format!("{}\n", hex::encode(bytes)).as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(io_err(path))?;
            Ok(AuditKey::new(&bytes))
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            resolve(None, &db_of(path), false)
        }
        Err(e) => Err(io_err(path)(e)),
    }
}

fn db_of(key_file: &Path) -> std::path::PathBuf {
    key_file.with_extension("")
}

#[cfg(unix)]
fn check_mode(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(io_err(path))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(AuditError::KeyPermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_matches_rfc_4231_and_a_fresh_hmac() {
        // RFC 4231 test case 2 (split in parts, as the chain feeds it).
        let k = AuditKey::new(b"Jefe");
        let want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(k.mac_hex(&[b"what do ya ", b"want for nothing?"]), want);
        let mut out = "stale".to_string();
        k.mac_hex_into(&[b"what do ya want for nothing?"], &mut out);
        assert_eq!(out, want);
        let k = AuditKey::from_bytes(&[7u8; 32]).unwrap();
        let mut fresh = Hmac::<Sha256>::new_from_slice(&[7u8; 32]).unwrap();
        fresh.update(b"prev body");
        assert_eq!(k.mac_hex(&[b"prev", b" body"]), hex::encode(fresh.finalize().into_bytes()));
    }

    #[test]
    fn created_0600_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sub/audit.db");
        assert!(resolve(None, &db, false).is_err(), "load must not create");
        let k1 = resolve(None, &db, true).unwrap();
        let k2 = resolve(None, &db, false).unwrap();
        assert_eq!(k1.0, k2.0);
        assert_eq!(k1.0.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_path(&db))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn group_readable_key_refused_with_chmod_hint() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        resolve(None, &db, true).unwrap();
        let kp = key_path(&db);
        for mode in [0o644, 0o640, 0o604] {
            std::fs::set_permissions(&kp, std::fs::Permissions::from_mode(mode)).unwrap();
            let msg = resolve(None, &db, true).unwrap_err().to_string();
            assert!(
                msg.contains(&format!("chmod 600 {}", kp.display())),
                "{msg}"
            );
        }
    }

    #[test]
    fn env_key_table() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let good = "00112233445566778899aabbccddeeff";
        let cases: [(&str, Result<(), &str>); 4] = [
            (good, Ok(())),
            ("zz", Err("not valid hex")),
            ("0011", Err("at least 16")),
            ("  ", Err("does not exist")), // blank env falls back to the file
        ];
        for (env, want) in cases {
            match (resolve(Some(env), &db, false), want) {
                (Ok(k), Ok(())) => assert_eq!(hex::encode(&k.0), good),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{env}: {e}"),
                (got, want) => panic!("{env}: got {got:?}, want {want:?}"),
            }
        }
        assert!(!key_path(&db).exists(), "env key must not create a file");
    }

    #[test]
    fn mac_depends_on_key_and_input() {
        let a = AuditKey::from_bytes(&[1; 32]).unwrap();
        let b = AuditKey::from_bytes(&[2; 32]).unwrap();
        assert_eq!(a.mac_hex(&[b"x", b"y"]), a.mac_hex(&[b"xy"]));
        assert_ne!(a.mac_hex(&[b"x"]), b.mac_hex(&[b"x"]));
        assert_eq!(a.mac_hex(&[b"x"]).len(), 64);
    }
}
