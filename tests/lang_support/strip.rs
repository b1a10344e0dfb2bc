//! Removes every custom section from a component, recursively through its
//! nested core modules and components, rewriting section sizes: what an
//! author hiding a runtime's producers and names would do.

fn leb(bytes: &[u8], mut i: usize) -> (u64, usize) {
    let (mut value, mut shift) = (0u64, 0);
    loop {
        let b = bytes[i];
        i += 1;
        value |= u64::from(b & 0x7f) << shift;
        shift += 7;
        if b < 0x80 {
            return (value, i);
        }
    }
}

fn put_leb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        out.push(if v == 0 { b } else { b | 0x80 });
        if v == 0 {
            return;
        }
    }
}

/// Component sections that hold a whole nested binary: core module (1)
/// and component (4).
const NESTED: [u8; 2] = [1, 4];

/// `bytes` without custom sections at any depth.
pub fn strip_custom_sections(bytes: &[u8]) -> Vec<u8> {
    assert!(bytes.len() >= 8 && &bytes[..4] == b"\0asm", "not a wasm binary");
    let is_component = bytes[6..8] == [1, 0];
    let mut out = bytes[..8].to_vec();
    let mut i = 8;
    while i < bytes.len() {
        let id = bytes[i];
        let (size, start) = leb(bytes, i + 1);
        let end = start + size as usize;
        let payload = &bytes[start..end];
        if id != 0 {
            let body = if is_component && NESTED.contains(&id) { strip_custom_sections(payload) } else { payload.to_vec() };
            out.push(id);
            put_leb(&mut out, body.len() as u64);
            out.extend_from_slice(&body);
        }
        i = end;
    }
    out
}

/// How many custom sections `bytes` holds at any depth.
pub fn count_custom_sections(bytes: &[u8]) -> usize {
    let is_component = bytes[6..8] == [1, 0];
    let (mut n, mut i) = (0, 8);
    while i < bytes.len() {
        let id = bytes[i];
        let (size, start) = leb(bytes, i + 1);
        let end = start + size as usize;
        if id == 0 {
            n += 1;
        } else if is_component && NESTED.contains(&id) {
            n += count_custom_sections(&bytes[start..end]);
        }
        i = end;
    }
    n
}
