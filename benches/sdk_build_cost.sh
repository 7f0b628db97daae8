#!/usr/bin/env bash
# What the cloud SDKs would cost the build (issue 18): builds a ten-line client using
# aws-config, aws-sdk-s3, aws-sdk-sqs and aws-sdk-sts, and crates/cloud, each from an empty
# target directory in release mode, and counts their crates and those new to this workspace.
#
#   bash benches/sdk_build_cost.sh          # about 5 minutes on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(mktemp -d /tmp/cs-sdkcost.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/sdk/src"
cat > "$WORK/sdk/Cargo.toml" <<'TOML'
[package]
name = "sdkcost"
version = "0.1.0"
edition = "2021"

[dependencies]
aws-config = { version = "1", features = ["behavior-version-latest"] }
aws-sdk-s3 = "1"
aws-sdk-sqs = "1"
aws-sdk-sts = "1"
tokio = { version = "1", features = ["rt-multi-thread", "macros"] }

[profile.release]
debug = false
TOML
cat > "$WORK/sdk/src/main.rs" <<'RS'
#[tokio::main]
async fn main() {
    let config = aws_config::load_from_env().await;
    let _ = aws_sdk_s3::Client::new(&config).list_objects_v2().bucket("b").send().await;
    let _ = aws_sdk_sqs::Client::new(&config).receive_message().queue_url("q").send().await;
    let _ = aws_sdk_sts::Client::new(&config).get_caller_identity().send().await;
}
RS
crates() { cargo tree -q -e normal --prefix none "$@" | sed 's/ (.*//' | sort -u; }
crates > "$WORK/ours.txt"
(cd "$WORK/sdk" && cargo fetch -q && crates > "$WORK/sdk.txt")
echo "crates of the SDK client: $(wc -l < "$WORK/sdk.txt"), new to this workspace: $(comm -13 "$WORK/ours.txt" "$WORK/sdk.txt" | wc -l)"
echo "crates of cloudsentinel-cloud: $(crates -p cloudsentinel-cloud | wc -l)"
start=$(date +%s)
(cd "$WORK/sdk" && CARGO_TARGET_DIR="$WORK/sdk-target" cargo build -q --release)
echo "SDK client, release build from empty: $(( $(date +%s) - start )) s"
start=$(date +%s)
CARGO_TARGET_DIR="$WORK/cloud-target" cargo build -q --release -p cloudsentinel-cloud
echo "cloudsentinel-cloud, release build from empty: $(( $(date +%s) - start )) s"
