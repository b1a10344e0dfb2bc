//! The one `Engine` of the process: pooling allocator, copy-on-write memory
//! images, fuel metering, and epoch interruption driven by one ticker thread.

use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. Timeouts are rounded up to whole ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Largest linear memory any tool may be given (`memory_mb` ceiling).
pub const MAX_MEMORY_BYTES: usize = 4 << 30;

/// Pool sizes. A call holds one component instance; Python and JS
/// components bring a dozen core instances each.
#[derive(Debug, Clone)]
pub struct PoolSizes {
    pub component_instances: u32,
    pub core_instances: u32,
    pub memories: u32,
    pub tables: u32,
}

impl PoolSizes {
    /// Sizes for `max_concurrent_calls` calls in flight.
    pub fn for_concurrency(calls: u32) -> Self {
        let calls = calls.max(1);
        PoolSizes {
            component_instances: calls * 2,
            core_instances: calls * 32,
            memories: calls * 4,
            tables: calls * 32,
        }
    }
}

/// Builds the process engine. The engine's settings are part of the
/// compile-cache key, so changing them invalidates cached artifacts.
pub fn build_engine(pool: &PoolSizes) -> wasmtime::Result<Engine> {
    let mut pooling = PoolingAllocationConfig::new();
    pooling
        .total_component_instances(pool.component_instances)
        .total_core_instances(pool.core_instances)
        .total_memories(pool.memories)
        .total_tables(pool.tables)
        .total_stacks(pool.component_instances)
        .max_core_instances_per_component(64)
        .max_memories_per_component(8)
        .max_tables_per_component(64)
        .max_memories_per_module(2)
        .max_tables_per_module(8)
        .max_core_instance_size(4 << 20)
        .max_component_instance_size(4 << 20)
        .max_memory_size(MAX_MEMORY_BYTES)
        // Keeping a little of each slot resident avoids page-table flushes
        // across CPUs, which otherwise make concurrent fresh instances slower.
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(64 << 10)
        // Reset only the pages a call dirtied (Linux 6.7+; otherwise the
        // kept-resident part is cleared in full): without it, clearing 1 MiB
        // per call was a third of all CPU time.
        .pagemap_scan(wasmtime::Enabled::Auto);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(true)
        .memory_init_cow(true)
        .max_wasm_stack(1 << 20)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    Engine::new(&config)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is
/// dropped. One thread serves every store of the engine.
pub fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasmward-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        })
        .expect("spawn epoch ticker thread");
}

/// Epoch ticks that cover `timeout` (at least one).
pub fn ticks_for(timeout: Duration) -> u64 {
    (timeout.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64 + 1
}
