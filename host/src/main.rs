use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = wasmward::cli::Cli::parse();
    wasmward::cli::init_logging(&cli);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let status = rt.block_on(wasmward::cli::run(cli));
    // Everything that matters has finished (the audit log is flushed); a
    // read of stdin parked on a blocking thread must not keep the process
    // alive (`serve --stdio` whose parent keeps stdin open).
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    status
}
