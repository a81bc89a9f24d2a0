//! `deploy/prometheus/` as the local stack uses it, made runnable on loopback.
//!
//! The committed configuration names its targets by compose host name (`hello:9081`,
//! `blackbox:9115`, `http://alert-webhook:9095/page`). The end-to-end test
//! (`tests/monitoring.rs`) starts the four services and the real Prometheus, blackbox exporter
//! and Alertmanager on random loopback ports, and feeds them the committed files through the
//! rewrites here, which change addresses and nothing else: the scrape jobs, relabelling, rules,
//! probe modules and routing tree under test are the ones an operator deploys.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

/// The overview dashboard over the four services, from their SLO declarations
/// (`deploy/grafana/dashboards/overview.json`; binary `overview-dashboard` prints it).
pub fn overview_dashboard() -> String {
    // Each service has its own settings type, so they do not fit one array.
    let (hello, messages) = (hello::service(), messages::service());
    let (notes, chat) = (notes::service(), chat::service());
    platform::slo::dashboard::overview(&[
        (hello.name(), hello.slos()),
        (messages.name(), messages.slos()),
        (notes.name(), notes.slos()),
        (chat.name(), chat.slos()),
    ])
}

/// What can go wrong reading a committed file.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("{0}")]
    Shape(&'static str),
}

/// Where each compose `host:port` runs in the test: `"hello:9081"` → `"127.0.0.1:40213"`.
#[derive(Debug, Default, Clone)]
pub struct Addresses(BTreeMap<String, String>);

impl Addresses {
    /// Maps compose address `from` (`host:port`) to `to`.
    pub fn insert(&mut self, from: impl Into<String>, to: impl Into<String>) {
        self.0.insert(from.into(), to.into());
    }

    /// `text` with every compose address in it replaced (inside URLs too).
    pub fn rewrite(&self, text: &str) -> String {
        self.0
            .iter()
            .fold(text.to_owned(), |text, (from, to)| text.replace(from, to))
    }
}

/// `deploy/prometheus/prometheus.yml` for the test: addresses rewritten, DNS service discovery
/// (chat's replicas) turned into the static targets it would resolve to, rule files read from
/// `rules_dir`, and scrapes and evaluations every `interval` so the test need not wait 15 s.
pub fn prometheus_config(
    committed: &str,
    addresses: &Addresses,
    rules_dir: &Path,
    interval: &str,
) -> Result<String, RewriteError> {
    let mut config: Value = serde_yaml_ng::from_str(committed)?;
    let global = config
        .get_mut("global")
        .and_then(Value::as_mapping_mut)
        .ok_or(RewriteError::Shape("no `global` section"))?;
    for key in ["scrape_interval", "evaluation_interval"] {
        global.insert(key.into(), interval.into());
    }
    let rule_files = config
        .get_mut("rule_files")
        .and_then(Value::as_sequence_mut)
        .ok_or(RewriteError::Shape("no `rule_files` list"))?;
    for file in rule_files.iter_mut() {
        let relative = file
            .as_str()
            .and_then(|file| file.strip_prefix("rules/"))
            .ok_or(RewriteError::Shape("rule files are expected under rules/"))?;
        *file = rules_dir.join(relative).display().to_string().into();
    }
    let jobs = config
        .get_mut("scrape_configs")
        .and_then(Value::as_sequence_mut)
        .ok_or(RewriteError::Shape("no `scrape_configs` list"))?;
    for job in jobs.iter_mut().filter_map(Value::as_mapping_mut) {
        resolve_dns_discovery(job)?;
    }
    let text = serde_yaml_ng::to_string(&config)?;
    Ok(addresses.rewrite(&text))
}

/// Replaces a job's `dns_sd_configs` by `static_configs` listing `name:port` for each name,
/// which [`Addresses`] then maps like any other target.
fn resolve_dns_discovery(job: &mut Mapping) -> Result<(), RewriteError> {
    let Some(discovery) = job.remove("dns_sd_configs") else {
        return Ok(());
    };
    let mut targets = Vec::new();
    for entry in discovery.as_sequence().into_iter().flatten() {
        let port = entry
            .get("port")
            .and_then(Value::as_u64)
            .ok_or(RewriteError::Shape(
                "an A-record dns_sd_config needs a port",
            ))?;
        for name in entry
            .get("names")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            targets.push(Value::from(format!("{name}:{port}")));
        }
    }
    let mut group = Mapping::new();
    group.insert("targets".into(), Value::Sequence(targets));
    job.insert(
        "static_configs".into(),
        Value::Sequence(vec![Value::Mapping(group)]),
    );
    Ok(())
}

/// `deploy/prometheus/alertmanager.yml` for the test: every webhook receiver's
/// `http://alert-webhook:9095` becomes `webhook` (the test's receiver), routing untouched.
pub fn alertmanager_config(committed: &str, webhook: &str) -> String {
    committed.replace("http://alert-webhook:9095", webhook)
}

/// [`alertmanager_config`] with the routing tree's waits cut to a second (`group_wait` 30s,
/// `group_interval` 5m), so a test sees a page and its resolution within seconds; the routes,
/// receivers and inhibitions are the committed ones.
pub fn alertmanager_config_without_waits(committed: &str, webhook: &str) -> String {
    alertmanager_config(committed, webhook)
        .replace("group_wait: 30s", "group_wait: 1s")
        .replace("group_interval: 5m", "group_interval: 1s")
}

/// `deploy/prometheus/blackbox.yml` for the test: the mounted messages certificate directory
/// becomes `certificate_dir`, where the test's messages generated its self-signed certificate.
pub fn blackbox_config(committed: &str, certificate_dir: &Path) -> String {
    committed.replace(
        "/etc/blackbox/messages-tls",
        &certificate_dir.display().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMITTED: &str = include_str!("../../../deploy/prometheus/prometheus.yml");

    fn addresses() -> Addresses {
        let mut addresses = Addresses::default();
        addresses.insert("chat:9084", "127.0.0.1:1");
        addresses.insert("chat:8084", "127.0.0.1:2");
        addresses.insert("blackbox:9115", "127.0.0.1:3");
        addresses
    }

    #[test]
    fn dns_discovery_becomes_the_mapped_static_target() {
        let config = prometheus_config(COMMITTED, &addresses(), Path::new("/r"), "1s").unwrap();
        let parsed: Value = serde_yaml_ng::from_str(&config).unwrap();
        let chat = parsed["scrape_configs"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|job| job["job_name"] == "chat")
            .unwrap();
        assert!(chat.get("dns_sd_configs").is_none());
        assert_eq!(chat["static_configs"][0]["targets"][0], "127.0.0.1:1");
    }

    #[test]
    fn probe_urls_relabelling_and_rule_files_are_rewritten() {
        let config = prometheus_config(COMMITTED, &addresses(), Path::new("/r"), "1s").unwrap();
        assert!(config.contains("http://127.0.0.1:2/livez"));
        assert!(config.contains("replacement: 127.0.0.1:3"));
        assert!(config.contains("- /r/*.yml"));
        assert!(config.contains("evaluation_interval: 1s"));
        assert!(!config.contains("chat:"), "{config}");
    }

    #[test]
    fn the_waits_are_cut_and_nothing_else_changes() {
        let committed = include_str!("../../../deploy/prometheus/alertmanager.yml");
        let config = alertmanager_config_without_waits(committed, "http://127.0.0.1:9");
        assert!(config.contains("group_wait: 1s") && !config.contains("group_wait: 30s"));
        assert!(config.contains("group_interval: 1s") && !config.contains("group_interval: 5m"));
        assert_eq!(
            config.matches("receiver:").count(),
            committed.matches("receiver:").count()
        );
    }

    #[test]
    fn the_committed_overview_dashboard_is_what_the_slos_generate() {
        let committed = include_str!("../../../deploy/grafana/dashboards/overview.json");
        assert!(
            committed == overview_dashboard(),
            "deploy/grafana/dashboards/overview.json is stale; regenerate it with \
             `cargo run -q -p monitoring-e2e --bin overview-dashboard > deploy/grafana/dashboards/overview.json`"
        );
        for service in ["hello", "messages", "notes", "chat"] {
            assert!(
                committed.contains(&format!("/d/slo-{service}?")),
                "{service} linked"
            );
        }
    }

    #[test]
    fn every_receiver_points_at_the_test_webhook() {
        let committed = include_str!("../../../deploy/prometheus/alertmanager.yml");
        let config = alertmanager_config(committed, "http://127.0.0.1:9");
        assert!(!config.contains("alert-webhook"));
        assert_eq!(config.matches("http://127.0.0.1:9/").count(), 3);
    }
}
