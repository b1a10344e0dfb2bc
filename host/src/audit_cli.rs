//! `wasmward audit verify|prune|tail|export`: the operator's view of the log
//! named by `[audit]` in the config.

use crate::audit::{self, AuditKey};
use crate::cli::{usage, Failure};
use crate::config::Config;
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum AuditAction {
    /// Check the hash chain: edited, inserted, deleted rows and a cut tail.
    Verify {
        /// Config file [default: wasmward.toml]; one named here must exist.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Delete old rows; the chain stays verifiable from a signed anchor.
    Prune {
        /// Config file [default: wasmward.toml]; one named here must exist.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Default: `[audit] retention_days` (90).
        #[arg(long)]
        retention_days: Option<u32>,
        /// Default: `[audit] max_records` (100000).
        #[arg(long)]
        max_records: Option<u64>,
    },
    /// Print the last events; with --follow, keep printing new ones.
    Tail {
        /// Config file [default: wasmward.toml]; one named here must exist.
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u64,
        #[arg(long)]
        follow: bool,
    },
    /// Write every event as JSON lines to stdout.
    Export {
        /// Config file [default: wasmward.toml]; one named here must exist.
        #[arg(long)]
        config: Option<PathBuf>,
        /// JSON lines (the only format).
        #[arg(long, default_value_t = true)]
        jsonl: bool,
    },
}

/// The audit database of the config named by `--config` (which must
/// exist), else of `./wasmward.toml`, else of the built-in defaults.
fn db_path(config: Option<&Path>) -> Result<(PathBuf, Config), Failure> {
    let cfg = crate::cli::optional_config(config)?;
    Ok((cfg.resolve_path(&cfg.audit.path), cfg))
}

fn key_for(db: &Path) -> Result<AuditKey, Failure> {
    AuditKey::load(db).map_err(|e| usage(format!("{}: {e}", db.display())))
}

fn failed(e: impl std::fmt::Display) -> Failure {
    Failure { status: 1, message: e.to_string() }
}

pub async fn run(action: AuditAction) -> Result<(), Failure> {
    match action {
        AuditAction::Verify { config } => {
            let (db, _) = db_path(config.as_deref())?;
            let report = audit::verify(&db, &key_for(&db)?).map_err(failed)?;
            println!("{report}");
            if report.is_ok() {
                Ok(())
            } else {
                Err(failed(format!("{}: the audit chain does not verify", db.display())))
            }
        }
        AuditAction::Prune { config, retention_days, max_records } => {
            let (db, cfg) = db_path(config.as_deref())?;
            let days = retention_days.unwrap_or(cfg.audit.retention_days);
            let max = max_records.unwrap_or(cfg.audit.max_records);
            let r = audit::prune(&db, &key_for(&db)?, days, max).map_err(failed)?;
            println!("pruned {} row(s); {} remain; anchor at seq {:?}", r.deleted, r.remaining, r.anchor_seq);
            Ok(())
        }
        AuditAction::Tail { config, lines, follow } => {
            let (db, _) = db_path(config.as_deref())?;
            let rows = audit::tail(&db, lines).map_err(failed)?;
            let mut last = 0;
            for r in &rows {
                println!("{}", r.to_json_line());
                last = r.seq;
            }
            if follow {
                let mut f = audit::Follow::new(&db, last).map_err(failed)?;
                loop {
                    for r in f.poll().map_err(failed)? {
                        println!("{}", r.to_json_line());
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
            }
            Ok(())
        }
        AuditAction::Export { config, jsonl: _ } => {
            let (db, _) = db_path(config.as_deref())?;
            let n = audit::export_jsonl(&db, &mut std::io::stdout().lock()).map_err(failed)?;
            tracing::info!(events = n, "exported");
            Ok(())
        }
    }
}
