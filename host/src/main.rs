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
    rt.block_on(wasmward::cli::run(cli))
}
