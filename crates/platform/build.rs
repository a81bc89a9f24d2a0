//! Stamps the git revision into the build, for `build_info`, `/info` and `--version`.
//! `GIT_REVISION` (set by the container build, which has no `.git`) wins over asking git.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=GIT_REVISION");
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/refs/heads");
    #[allow(clippy::disallowed_methods)] // Build scripts read their environment by design.
    let from_env = std::env::var("GIT_REVISION")
        .ok()
        .filter(|rev| !rev.is_empty());
    let revision = from_env.or_else(|| {
        let output = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    });
    println!(
        "cargo:rustc-env=PLATFORM_GIT_REVISION={}",
        revision.unwrap_or_else(|| "unknown".to_owned())
    );
}
