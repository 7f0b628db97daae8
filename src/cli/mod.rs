//! One module per subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use cloudsentinel_detect::{RuleSet, RuleSetBuilder};

pub mod eval;
pub mod eval_anomaly;
pub mod generate;
pub mod generate_cloud;
pub mod hunt;
pub mod loadgen;
pub mod models;
pub mod respond;
pub mod rules;
pub mod s3;
pub mod serve;

/// The run did what was asked.
pub const EXIT_OK: ExitCode = ExitCode::SUCCESS;
/// The run failed (IO, nothing decodable, failing checks).
pub const EXIT_FAILED: ExitCode = ExitCode::FAILURE;
/// The command line was wrong.
pub fn exit_usage() -> ExitCode {
    ExitCode::from(2)
}

/// An error in how the command was called: exits with 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Loads the built-in pack (unless `no_builtin`) plus extra rule files or directories. A rule
/// that cannot load is reported on stderr and skipped; a path that does not exist is a usage error.
pub fn load_rules(extra: &[PathBuf], no_builtin: bool, quiet: bool) -> Result<RuleSet, UsageError> {
    let mut builder = RuleSetBuilder::new();
    if !no_builtin {
        cloudsentinel_detect::add_builtin(&mut builder);
    }
    for p in extra {
        builder
            .add_path(p)
            .map_err(|e| UsageError(format!("--rules {}: {}", p.display(), e.error)))?;
    }
    let set = builder.build();
    if !quiet {
        for f in set.failures() {
            eprintln!("warning: rule skipped: {}: {}", f.path, f.error);
        }
    }
    Ok(set)
}

/// Runs `f`, turning a [`UsageError`] into exit code 2.
pub fn usage_or<T>(r: Result<T, UsageError>) -> Result<T, ExitCode> {
    r.map_err(|e| {
        eprintln!("error: {e}");
        exit_usage()
    })
}
