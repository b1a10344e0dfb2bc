//! Per-call resource limits: linear memory and table growth.
//!
//! A refused growth is remembered so the runtime can report a trap that
//! follows it as `memory_limit` rather than a generic trap.

use wasmtime::ResourceLimiter;

/// Caps memory per call and records the peak and any refusal.
#[derive(Debug)]
pub struct MemoryLimiter {
    max_memory_bytes: usize,
    max_table_elements: usize,
    /// Sum of current sizes of all memories of the instance.
    current: usize,
    pub peak_bytes: usize,
    /// The size a refused growth asked for, if any.
    pub refused_bytes: Option<usize>,
}

impl MemoryLimiter {
    pub fn new(max_memory_bytes: usize) -> Self {
        MemoryLimiter {
            max_memory_bytes,
            max_table_elements: 1_000_000,
            current: 0,
            peak_bytes: 0,
            refused_bytes: None,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.current - current.min(self.current) + desired;
        if total > self.max_memory_bytes {
            self.refused_bytes = Some(total);
            return Ok(false);
        }
        self.current = total;
        self.peak_bytes = self.peak_bytes.max(total);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= self.max_table_elements)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_within_the_cap_is_allowed_and_beyond_is_refused() {
        // (cap, [(current, desired)], allowed of the last, refused_bytes)
        let cases: &[(usize, &[(usize, usize)], bool, Option<usize>)] = &[
            (100, &[(0, 50)], true, None),
            (100, &[(0, 100)], true, None),
            (100, &[(0, 101)], false, Some(101)),
            (100, &[(0, 60), (60, 90)], true, None),
            (100, &[(0, 60), (60, 120)], false, Some(120)),
        ];
        for (cap, steps, last_ok, refused) in cases {
            let mut l = MemoryLimiter::new(*cap);
            let mut ok = true;
            for (cur, want) in *steps {
                ok = l.memory_growing(*cur, *want, None).unwrap();
            }
            assert_eq!(ok, *last_ok, "cap {cap} steps {steps:?}");
            assert_eq!(l.refused_bytes, *refused);
        }
    }
}
