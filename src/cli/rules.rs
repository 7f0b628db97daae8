//! `cloudsentinel rules check|test|list`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use cloudsentinel_detect::lint::{self, Catalog};
use cloudsentinel_detect::{RuleKind, fixtures};
use serde_json::json;

use super::{EXIT_FAILED, EXIT_OK, load_rules, usage_or};

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Load and lint rules; report what loaded, what failed and why, and suspicious rules.
    Check(CheckArgs),
    /// Run every rule's fixtures (`<rule>.fixtures.json`): events it must and must not match.
    Test(TestArgs),
    /// List the loaded rules.
    List(ListArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    /// Rule files or directories (default: the built-in pack).
    pub paths: Vec<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 on warnings too.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Args)]
pub struct TestArgs {
    /// Rule directories or files with fixtures beside them.
    #[arg(default_value = "rules")]
    pub paths: Vec<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ListArgs {
    /// Extra rule directories, added to the built-in pack.
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    #[arg(long)]
    pub no_builtin: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: RulesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RulesCommand::Check(a) => check(a),
        RulesCommand::Test(a) => test(a),
        RulesCommand::List(a) => list(a),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let builtin = args.paths.is_empty();
    let set = match usage_or(load_rules(&args.paths, !builtin, true)) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let warnings = lint::lint(&set, Catalog::builtin());
    // Loaded and failed rules per logsource: how much of a public rule set works here.
    let mut by_logsource: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in set.rules() {
        let key = match r.kind {
            RuleKind::Correlation => "correlation".to_string(),
            RuleKind::Detection => format!(
                "{}/{}",
                r.product.as_deref().unwrap_or("-"),
                r.service.as_deref().unwrap_or("-")
            ),
        };
        by_logsource.entry(key).or_default().0 += 1;
    }
    for f in set.failures() {
        let text = match f.path.strip_prefix("builtin:") {
            Some(p) => cloudsentinel_detect::builtin_rules()
                .iter()
                .find(|(path, _)| *path == p)
                .map(|(_, y)| y.to_string()),
            None => std::fs::read_to_string(&f.path).ok(),
        };
        let key = text
            .as_deref()
            .and_then(cloudsentinel_detect::sigma::declared_logsource)
            .unwrap_or_else(|| "unknown".into());
        by_logsource.entry(key).or_default().1 += 1;
    }
    if args.json {
        let doc = json!({
            "files": set.files(),
            "loaded": set.len(),
            "failed": set.failures(),
            "warnings": warnings,
            "by_logsource": by_logsource
                .iter()
                .map(|(k, (loaded, failed))| (k.clone(), json!({"loaded": loaded, "failed": failed, "share_loaded": (*loaded as f64 / (*loaded + *failed).max(1) as f64 * 1000.0).round() / 1000.0})))
                .collect::<serde_json::Map<String, serde_json::Value>>(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        for f in set.failures() {
            writeln!(out, "FAILED  {}: {}", f.path, f.error)?;
        }
        for w in &warnings {
            writeln!(out, "WARNING {}: rule '{}': {}", w.path, w.rule, w.message)?;
        }
        let sources: Vec<String> = by_logsource
            .iter()
            .map(|(k, (loaded, failed))| {
                if *failed > 0 {
                    format!("{k} {loaded}/{}", loaded + failed)
                } else {
                    format!("{k} {loaded}")
                }
            })
            .collect();
        writeln!(
            out,
            "{} files: {} rules loaded ({}), {} failed, {} warnings",
            set.files(),
            set.len(),
            sources.join(", "),
            set.failures().len(),
            warnings.len()
        )?;
    }
    let bad = !set.failures().is_empty() || (args.strict && !warnings.is_empty());
    Ok(if bad { EXIT_FAILED } else { EXIT_OK })
}

fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let mut report = fixtures::FixtureReport::default();
    for p in &args.paths {
        if p.is_dir() {
            let r = fixtures::check_dir(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            report.rules += r.rules;
            report.cases += r.cases;
            report.failures.extend(r.failures);
        } else if p.is_file() {
            fixtures::check_rule_file(p, &mut report);
        } else {
            eprintln!("error: {}: no such file or directory", p.display());
            return Ok(super::exit_usage());
        }
    }
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        for f in &report.failures {
            if f.case.is_empty() {
                writeln!(out, "FAIL {}: {}", f.rule, f.reason)?;
            } else {
                writeln!(out, "FAIL {} {}: {}", f.rule, f.case, f.reason)?;
            }
        }
        writeln!(
            out,
            "{} rules, {} cases: {} passed, {} failed",
            report.rules,
            report.cases,
            report.cases.saturating_sub(
                report
                    .failures
                    .iter()
                    .filter(|f| !f.case.is_empty())
                    .count()
            ),
            report.failures.len()
        )?;
    }
    Ok(if report.failures.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let set = match usage_or(load_rules(&args.rules, args.no_builtin, false)) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    if args.json {
        let rules: Vec<_> = set.rules().collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rules)?)?;
    } else {
        for r in set.rules() {
            writeln!(
                out,
                "{:<13} {:<36} {} [{}]",
                r.level.as_str(),
                r.id,
                r.title,
                r.techniques.join(", ")
            )?;
        }
        writeln!(out, "{} rules", set.len())?;
    }
    Ok(EXIT_OK)
}
