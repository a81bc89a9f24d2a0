//! Prometheus rules generated from the SLO declarations: error-ratio recording rules and
//! multi-window multi-burn-rate alerts (Google SRE workbook, chapter "Alerting on SLOs"; rule
//! names follow Sloth's `slo:sli_error:ratio_rate<window>`).
//!
//! The application's own metrics carry no service label; Prometheus adds `job`. The rules
//! therefore select `job="<service>"` and rely on the scrape job being named after the service.
//!
//! Next to each service's request-based availability SLI runs a probe-based one, read from the
//! blackbox exporter's `probe_success`: when every replica is gone from the Service, no request
//! is recorded at all, but the probes keep failing and burn the same budget. Probe series are
//! selected by `service="<service>"`, a label the probe targets carry (compose's
//! `prometheus.yml` sets it per target group, each Kubernetes `Probe` in its `staticConfig`).
//!
//! The YAML is written by hand: the document has a fixed shape, every scalar goes through
//! [`quote`] or a literal block, and the output must be byte-for-byte deterministic because it is
//! committed and compared in CI.

use std::fmt::Write as _;
use std::time::Duration;

use crate::metrics::names::HTTP_REQUEST_DURATION;
use crate::slo::promql::{Events, job, quoted, with_job};
use crate::slo::{Sli, Slo};

/// The windows the error ratio is recorded over: every window an alert tier reads, plus the
/// default compliance window. An SLO with another compliance window records that one instead
/// of `30d` ([`recorded_windows`]).
pub const WINDOWS: &[&str] = &["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"];

/// The name of the recording rule that holds the error ratio over `window` (`5m` … `30d`),
/// labelled `service`, `slo` and, on Kubernetes, `namespace`. Dashboards read these.
pub fn ratio_rule(window: &str) -> String {
    format!("slo:sli_error:ratio_rate{window}")
}

/// The name of the recording rule that holds the failed-probe ratio over `window`, labelled like
/// [`ratio_rule`]'s: the probe-based SLI of the service's availability SLO.
pub fn probe_ratio_rule(window: &str) -> String {
    format!("slo:probe_error:ratio_rate{window}")
}

/// The blackbox exporter's result of one probe: 1 succeeded, 0 failed.
pub const PROBE_SUCCESS: &str = "probe_success";

/// The windows recorded for `slo`: the alert tiers' windows, then its compliance window.
fn recorded_windows(slo: &Slo) -> Vec<String> {
    let compliance = crate::slo::budget::duration_label(slo.window.as_secs());
    let mut windows: Vec<String> = WINDOWS[..WINDOWS.len() - 1]
        .iter()
        .map(|window| (*window).to_owned())
        .collect();
    if !windows.contains(&compliance) {
        windows.push(compliance);
    }
    windows
}

/// One burn-rate alert tier: it fires when the error ratio exceeds `burn_rate` times the budget
/// over both windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tier {
    /// `page` or `ticket`.
    pub severity: &'static str,
    /// Multiple of the error budget spent per unit of time that triggers the tier.
    pub burn_rate: f64,
    /// The window that proves the burn is significant.
    pub long_window: &'static str,
    /// The window that proves the burn is still going on, so the alert resolves soon after a fix.
    pub short_window: &'static str,
    /// Bad events the long window must hold: below it, a handful of failed requests at low
    /// traffic would be a 100% error ratio and fire the tier.
    pub min_bad_events: u32,
}

/// The workbook's four tiers. Pages need more evidence (10 bad events) than tickets (5), since
/// a page wakes someone up.
pub const TIERS: &[Tier] = &[
    Tier {
        severity: "page",
        burn_rate: 14.4,
        long_window: "1h",
        short_window: "5m",
        min_bad_events: 10,
    },
    Tier {
        severity: "page",
        burn_rate: 6.0,
        long_window: "6h",
        short_window: "30m",
        min_bad_events: 10,
    },
    Tier {
        severity: "ticket",
        burn_rate: 3.0,
        long_window: "1d",
        short_window: "2h",
        min_bad_events: 5,
    },
    Tier {
        severity: "ticket",
        burn_rate: 1.0,
        long_window: "3d",
        short_window: "6h",
        min_bad_events: 5,
    },
];

/// How long the SLI's metrics may be missing before the absent alert fires: longer than a
/// restart or a few failed scrapes.
const ABSENT_FOR: &str = "10m";

/// Where the alerts' `runbook_url` points by default: the README of the repository the workspace
/// declares (`repository` in the root `Cargo.toml`), whose `#runbook-<service>` sections are
/// the runbooks. `<service> slo rules --runbooks <URL>` points elsewhere at generation time.
pub const DEFAULT_RUNBOOKS: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/blob/main/README.md");

/// Renders the rule file for `service`'s `slos`: per SLO one recording group and one alert group,
/// then the dependency alert; runbook links point into [`DEFAULT_RUNBOOKS`].
pub fn render(service: &str, slos: &[Slo]) -> String {
    render_with_runbooks(service, slos, DEFAULT_RUNBOOKS)
}

/// [`render`] with the alerts' runbook links pointing at `runbooks#runbook-<service>`, an
/// absolute URL of the page that holds the runbooks.
///
/// ```
/// let yaml = platform::slo::rules::render_with_runbooks("demo", &[], "https://wiki.example/sre");
/// assert!(yaml.contains("runbook_url: \"https://wiki.example/sre#runbook-demo\""));
/// ```
pub fn render_with_runbooks(service: &str, slos: &[Slo], runbooks: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Generated by `{service} slo rules`; do not edit.");
    out.push_str(&job_comment(service));
    out.push_str(&render_groups(service, slos, runbooks));
    out
}

/// The same rules as [`render`], wrapped in a prometheus-operator `PrometheusRule` named
/// `<service>-slo`, for the service's Kubernetes base (`deploy/kubernetes/base/<service>/`).
///
/// ```
/// let yaml = platform::slo::rules::render_prometheus_rule("demo", &[]);
/// assert!(yaml.contains("kind: PrometheusRule"));
/// assert!(yaml.contains("  name: demo-slo"));
/// ```
pub fn render_prometheus_rule(service: &str, slos: &[Slo]) -> String {
    render_prometheus_rule_with_runbooks(service, slos, DEFAULT_RUNBOOKS)
}

/// [`render_prometheus_rule`] with runbook links into `runbooks`, as [`render_with_runbooks`].
pub fn render_prometheus_rule_with_runbooks(service: &str, slos: &[Slo], runbooks: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Generated by `{service} slo prometheus-rule`; do not edit."
    );
    out.push_str(&job_comment(service));
    let _ = write!(
        out,
        "apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: {service}-slo
  labels:
    app.kubernetes.io/name: {service}
    app.kubernetes.io/part-of: sre-platform
spec:
"
    );
    // Indenting every line, block scalars included, keeps the YAML meaning the same.
    for line in render_groups(service, slos, runbooks).lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

fn job_comment(service: &str) -> String {
    format!(
        "# Selects job=\"{service}\": the scrape job must be named after the service, since the
# service's own metrics carry no service label.
"
    )
}

/// `groups:` and one group per SLO.
fn render_groups(service: &str, slos: &[Slo], runbooks: &str) -> String {
    let runbook = format!("{runbooks}#runbook-{service}");
    let mut out = String::new();
    out.push_str("groups:\n");
    for slo in slos {
        // One group per SLO, recording rules first: rules in a group evaluate in order, so each
        // alert reads the ratio recorded in the same evaluation. Across groups the order is not
        // fixed, and an alert could read a ratio one evaluation old.
        let selectors = selectors(service, slo);
        let _ = writeln!(
            out,
            "  - name: {}",
            quote(&format!("{service}-slo-{}", slo.name))
        );
        out.push_str(
            "    rules:
",
        );
        render_recording_rules(&mut out, service, slo, &selectors);
        render_alert_rules(&mut out, service, slo, &selectors, &runbook);
    }
    // One probe SLI per service, under its first availability SLO's objective: the probes
    // measure the service as a whole, so a second availability SLO (a route subset) would only
    // count the same probes twice.
    if let Some(slo) = slos
        .iter()
        .find(|slo| matches!(slo.sli, Sli::Availability { .. }))
    {
        render_probe_group(&mut out, service, slo, &runbook);
    }
    render_dependency_alert(&mut out, service, &runbook);
    out
}

/// `probe_success{service="<service>"}`: every blackbox probe of the service's public endpoint.
pub(crate) fn probe_selector(service: &str) -> String {
    format!("{PROBE_SUCCESS}{{service={}}}", quoted(service))
}

/// The probe-based availability SLI: the ratio of failed probes per namespace, recorded over
/// the same windows as `slo`, and the same burn-rate tiers on it.
fn render_probe_group(out: &mut String, service: &str, slo: &Slo, runbook: &str) {
    let probes = probe_selector(service);
    let _ = writeln!(
        out,
        "  - name: {}",
        quote(&format!("{service}-slo-{}-probe", slo.name))
    );
    out.push_str("    rules:\n");
    for window in &recorded_windows(slo) {
        // The mean of each probed URL's success over the window, averaged over the URLs: every
        // URL is probed at the same interval, so this is the ratio of failed probes.
        let _ = writeln!(out, "      - record: {}", probe_ratio_rule(window));
        let _ = writeln!(
            out,
            "        expr: 1 - avg by (namespace) (avg_over_time({probes}[{window}]))"
        );
        out.push_str("        labels:\n");
        let _ = writeln!(out, "          service: {}", quote(service));
        let _ = writeln!(out, "          slo: {}", quote(slo.name));
    }
    let matchers = format!("{{service={},slo={}}}", quoted(service), quoted(slo.name));
    let prefix = format!("{}{}Probe", camel_case(service), camel_case(slo.name));
    for tier in TIERS {
        // No bad-event guard, unlike the request tiers: probes arrive at a steady pace whatever
        // the traffic, so a ratio is never taken over a handful of events.
        let threshold = format!("({} * (1 - {}))", tier.burn_rate, slo.objective);
        burn_rate_alert(
            out,
            &BurnRateAlert {
                prefix: &prefix,
                expr: &format!(
                    "          slo:probe_error:ratio_rate{}{matchers} > {threshold}\n          and\n          slo:probe_error:ratio_rate{}{matchers} > {threshold}",
                    tier.long_window, tier.short_window
                ),
                slo,
                service,
                tier,
                summary: &format!(
                    "{service}'s black-box probes are failing at {}x the {} error budget or faster ({} over {} and {})",
                    tier.burn_rate, slo.name, tier.severity, tier.long_window, tier.short_window
                ),
                description: &format!(
                    "{} Unlike the request-based SLI, the probes still count when no replica is left to answer.",
                    describe(slo, tier).replacen(
                        &format!("{} error ratio", slo.name),
                        &format!("Failed-probe ratio of {service}'s public endpoint"),
                        1
                    )
                ),
                runbook,
            },
        );
    }
    ticket_alert(
        out,
        &TicketAlert {
            name: &format!("{prefix}SLIMetricsAbsent"),
            expr: &format!("absent({probes})"),
            for_: ABSENT_FOR,
            slo: Some(slo.name),
            service,
            summary: &format!("{service} has no black-box probe results"),
            description: &format!(
                "No series match {probes} for {ABSENT_FOR}: the probe-based {} SLI and its burn-rate alerts are blind. Check that the blackbox exporter probes {service} and that its targets carry service=\"{service}\".",
                slo.name
            ),
            runbook,
        },
    );
}

/// How long a dependency check must fail before its alert fires: longer than a failover or a
/// restart of the dependency.
const DEPENDENCY_FAILING_FOR: &str = "2m";

/// One alert per failing dependency check (`check` label), from the health checks' gauge. It
/// names the cause while the replicas stay ready and answer `503`: the availability SLO's
/// burn-rate alerts say how much users suffer, this one says why. A ticket, not a page: the
/// burn-rate tiers page when the outage costs enough budget.
fn render_dependency_alert(out: &mut String, service: &str, runbook: &str) {
    let metric = crate::metrics::names::HEALTH_CHECK_STATUS;
    let _ = writeln!(
        out,
        "  - name: {}",
        quote(&format!("{service}-dependencies"))
    );
    out.push_str("    rules:\n");
    // `min`: one replica that cannot reach its dependency is already worth a look; the rest of
    // the Service may still serve.
    ticket_alert(
        out,
        &TicketAlert {
            name: &format!("{}DependencyFailing", camel_case(service)),
            expr: &format!(
                "min by (namespace, check) ({metric}{{{}}}) == 0",
                job(service)
            ),
            for_: DEPENDENCY_FAILING_FOR,
            slo: None,
            service,
            summary: &format!(
                "{service}'s dependency {{{{ $labels.check }}}} has failed its health check for {DEPENDENCY_FAILING_FOR}"
            ),
            description: &format!(
                "At least one {service} replica cannot reach {{{{ $labels.check }}}}. The replicas stay ready and answer what needs it with 503 problems, which the availability SLO counts; see its burn-rate alerts for the cost to users."
            ),
            runbook,
        },
    );
}

/// The PromQL expressions an SLI is made of, all scoped to the service's job.
struct Selectors {
    /// Bad events over `[w]` per namespace, as `sum by (namespace) (f(...[w]))` with `f` =
    /// `rate` or `increase`.
    bad: String,
    /// Every event, same shape as `bad`.
    total: String,
    /// A series that exists whenever the service reports the SLI at all.
    presence: String,
}

fn selectors(service: &str, slo: &Slo) -> Selectors {
    // By namespace: one Prometheus scraping `sre-dev` and `sre-prod` keeps two budgets, so dev's
    // errors never page prod. Without a namespace label (compose) it is one budget, as before.
    let sum = |selector: &str| format!("sum by (namespace) (FN({selector}[W]))");
    let (bad, total) = match Events::of(service, slo) {
        Events::Bad { bad, total } => (sum(&bad), sum(&total)),
        Events::Good { good, total } => {
            (format!("({} - {})", sum(&total), sum(&good)), sum(&total))
        }
    };
    let presence = match &slo.sli {
        Sli::Ratio { total, .. } => with_job(total, service),
        Sli::Availability { .. } | Sli::Latency { .. } => {
            format!("{HTTP_REQUEST_DURATION}_count{{{}}}", job(service))
        }
    };
    Selectors {
        bad,
        total,
        presence,
    }
}

/// Fills the `FN`/`W` placeholders of a [`Selectors`] expression.
fn over(template: &str, function: &str, window: &str) -> String {
    template
        .replace("FN(", &format!("{function}("))
        .replace("[W]", &format!("[{window}]"))
}

fn render_recording_rules(out: &mut String, service: &str, slo: &Slo, selectors: &Selectors) {
    let compliance = crate::slo::budget::duration_label(slo.window.as_secs());
    for window in &recorded_windows(slo) {
        // Short windows use rate, the compliance window increase; either way a ratio of sums
        // over the whole window, never an average of shorter ratios. The bad side defaults to 0
        // in each namespace that has traffic (`total * 0` carries the namespace label, where
        // `vector(0)` would carry none), so a service without a single error records 0, not
        // nothing; with no traffic at all the total side is empty and so is the ratio, which no
        // alert can fire on.
        let function = if *window == compliance {
            "increase"
        } else {
            "rate"
        };
        let bad = over(&selectors.bad, function, window);
        let total = over(&selectors.total, function, window);
        let _ = writeln!(out, "      - record: {}", ratio_rule(window));
        out.push_str("        expr: |\n");
        let _ = writeln!(out, "          ({bad} or {total} * 0)");
        out.push_str("          /\n");
        let _ = writeln!(out, "          {total}");
        out.push_str("        labels:\n");
        let _ = writeln!(out, "          service: {}", quote(service));
        let _ = writeln!(out, "          slo: {}", quote(slo.name));
    }
}

fn render_alert_rules(
    out: &mut String,
    service: &str,
    slo: &Slo,
    selectors: &Selectors,
    runbook: &str,
) {
    let matchers = format!("{{service={},slo={}}}", quoted(service), quoted(slo.name));
    let prefix = format!("{}{}", camel_case(service), camel_case(slo.name));
    for tier in TIERS {
        let threshold = format!("({} * (1 - {}))", tier.burn_rate, slo.objective);
        let bad_events = over(&selectors.bad, "increase", tier.long_window);
        burn_rate_alert(
            out,
            &BurnRateAlert {
                prefix: &prefix,
                expr: &format!(
                    "          (\n            slo:sli_error:ratio_rate{}{matchers} > {threshold}\n          and\n            slo:sli_error:ratio_rate{}{matchers} > {threshold}\n          )\n          and on(namespace) {bad_events} >= {}",
                    tier.long_window, tier.short_window, tier.min_bad_events
                ),
                slo,
                service,
                tier,
                summary: &format!(
                    "{service} is burning its {} error budget at {}x or faster ({} over {} and {})",
                    slo.name, tier.burn_rate, tier.severity, tier.long_window, tier.short_window
                ),
                description: &describe(slo, tier),
                runbook,
            },
        );
    }
    ticket_alert(
        out,
        &TicketAlert {
            name: &format!("{prefix}SLIMetricsAbsent"),
            expr: &format!("absent({})", selectors.presence),
            for_: ABSENT_FOR,
            slo: Some(slo.name),
            service,
            summary: &format!("{service} reports no metrics for its {} SLO", slo.name),
            description: &format!(
                "No series match {} for {ABSENT_FOR}: the {} SLO and its burn-rate alerts are blind. Check that job \"{service}\" is scraped and its targets are up.",
                selectors.presence, slo.name
            ),
            runbook,
        },
    );
}

/// One burn-rate tier's alert, `<prefix>BurnRate<Severity><long window>`: `expr` is the literal
/// block's body (indented lines), the labels name the SLO, the tier's severity and its windows.
struct BurnRateAlert<'a> {
    prefix: &'a str,
    expr: &'a str,
    slo: &'a Slo,
    service: &'a str,
    tier: &'a Tier,
    summary: &'a str,
    description: &'a str,
    runbook: &'a str,
}

fn burn_rate_alert(out: &mut String, alert: &BurnRateAlert<'_>) {
    let _ = writeln!(
        out,
        "      - alert: {}BurnRate{}{}",
        alert.prefix,
        camel_case(alert.tier.severity),
        alert.tier.long_window
    );
    out.push_str("        expr: |\n");
    let _ = writeln!(out, "{}", alert.expr);
    out.push_str("        labels:\n");
    let _ = writeln!(out, "          severity: {}", quote(alert.tier.severity));
    let _ = writeln!(out, "          slo: {}", quote(alert.slo.name));
    let _ = writeln!(out, "          service: {}", quote(alert.service));
    let _ = writeln!(
        out,
        "          long_window: {}",
        quote(alert.tier.long_window)
    );
    let _ = writeln!(
        out,
        "          short_window: {}",
        quote(alert.tier.short_window)
    );
    out.push_str("        annotations:\n");
    let _ = writeln!(out, "          summary: {}", quote(alert.summary));
    let _ = writeln!(out, "          description: {}", quote(alert.description));
    let _ = writeln!(out, "          runbook_url: {}", quote(alert.runbook));
}

/// A ticket alert that fires after `for_`, labelled with its service (and SLO).
struct TicketAlert<'a> {
    name: &'a str,
    expr: &'a str,
    for_: &'a str,
    slo: Option<&'a str>,
    service: &'a str,
    summary: &'a str,
    description: &'a str,
    runbook: &'a str,
}

fn ticket_alert(out: &mut String, alert: &TicketAlert<'_>) {
    let _ = writeln!(out, "      - alert: {}", alert.name);
    let _ = writeln!(out, "        expr: {}", alert.expr);
    let _ = writeln!(out, "        for: {}", alert.for_);
    out.push_str("        labels:\n");
    let _ = writeln!(out, "          severity: {}", quote("ticket"));
    if let Some(slo) = alert.slo {
        let _ = writeln!(out, "          slo: {}", quote(slo));
    }
    let _ = writeln!(out, "          service: {}", quote(alert.service));
    out.push_str("        annotations:\n");
    let _ = writeln!(out, "          summary: {}", quote(alert.summary));
    let _ = writeln!(out, "          description: {}", quote(alert.description));
    let _ = writeln!(out, "          runbook_url: {}", quote(alert.runbook));
}

/// The alert's description: the observed error ratio (`$value`, the long window's ratio, since
/// `and` keeps its left side) and what the tier's burn means for the budget, in words.
fn describe(slo: &Slo, tier: &Tier) -> String {
    let window_hours = slo.window.as_secs_f64() / 3600.0;
    let long_hours = hours(tier.long_window);
    let consumed = tier.burn_rate * long_hours / window_hours * 100.0;
    let exhausted_hours = window_hours / tier.burn_rate;
    format!(
        "{} error ratio over the last {}: {{{{ $value | humanizePercentage }}}} (objective {}, budget {}). At {}x the budget, {} of the {} error budget is spent in {} and the rest is gone within {}.",
        slo.name,
        tier.long_window,
        slo.objective,
        trim_float(slo.error_budget()),
        tier.burn_rate,
        format_args!("{}%", trim_float(consumed)),
        window_adjective(slo.window),
        tier.long_window,
        humantime(Duration::from_secs_f64(exhausted_hours * 3600.0)),
    )
}

/// Hours in a window written like `5m`, `1h`, `3d`.
fn hours(window: &str) -> f64 {
    let (number, unit) = window.split_at(window.len().saturating_sub(1));
    let number: f64 = number.parse().unwrap_or(0.0);
    match unit {
        "m" => number / 60.0,
        "h" => number,
        "d" => number * 24.0,
        _ => 0.0,
    }
}

/// `30-day`, or `12-hour` for a window that is not whole days.
fn window_adjective(duration: Duration) -> String {
    humantime(duration)
        .replace(' ', "-")
        .trim_end_matches('s')
        .to_owned()
}

/// Whole days when the duration is a day multiple, else whole hours.
fn humantime(duration: Duration) -> String {
    let hours = (duration.as_secs_f64() / 3600.0).round() as u64;
    let (count, unit) = if hours.is_multiple_of(24) {
        (hours / 24, "day")
    } else {
        (hours, "hour")
    };
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

/// A number rounded to 6 decimals without trailing zeros, so `1 - 0.999` reads `0.001`.
fn trim_float(value: f64) -> String {
    let text = format!("{value:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// `hello` → `Hello`, `error_rate` → `ErrorRate`.
fn camel_case(text: &str) -> String {
    text.split(['_', '-'])
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// A YAML double-quoted scalar, which can hold any text.
fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Vec<Slo> {
        vec![
            Slo::new("availability", "", 0.999, Sli::availability()),
            Slo::new("latency", "", 0.99, Sli::latency(0.1)),
        ]
    }

    #[test]
    fn starts_with_the_generated_header_and_is_deterministic() {
        let text = render("hello", &hello());
        assert!(
            text.starts_with("# Generated by `hello slo rules`; do not edit.\n"),
            "{text}"
        );
        assert_eq!(text, render("hello", &hello()));
    }

    #[test]
    fn records_every_window_per_slo() {
        let text = render("hello", &hello());
        for window in WINDOWS {
            let record = format!("- record: slo:sli_error:ratio_rate{window}\n");
            assert_eq!(text.matches(&record).count(), 2, "{record}");
        }
        // One group per SLO, its recording rules before its alerts.
        for slo in ["availability", "latency"] {
            let group = text
                .find(&format!("name: \"hello-slo-{slo}\"\n"))
                .expect("a group per SLO");
            let rest = &text[group..];
            let first_record = rest.find("- record:").expect("recording rules");
            let first_alert = rest.find("- alert:").expect("alerts");
            assert!(first_record < first_alert, "{slo}: recordings come first");
        }
        // Plus the probe SLI's group and the dependency alerts' group.
        assert_eq!(text.matches("  - name: ").count(), 4);
    }

    #[test]
    fn compliance_window_is_a_ratio_of_increases() {
        let text = render("hello", &hello());
        let start = text.find("ratio_rate30d").unwrap();
        let rule = &text[start..start + 800];
        assert!(
            rule.contains("(sum by (namespace) (increase(http_server_request_duration_seconds_count{job=\"hello\",http_route!~\"/livez|/readyz\",http_response_status_code=~\"5..\"}[30d])) or sum by (namespace) (increase(http_server_request_duration_seconds_count{job=\"hello\",http_route!~\"/livez|/readyz\"}[30d])) * 0)\n          /\n          sum by (namespace) (increase(http_server_request_duration_seconds_count{job=\"hello\",http_route!~\"/livez|/readyz\"}[30d]))"),
            "{rule}"
        );
    }

    #[test]
    fn latency_counts_requests_above_the_bucket_bound() {
        let text = render("hello", &hello());
        assert!(text.contains(
            "(sum by (namespace) (rate(http_server_request_duration_seconds_count{job=\"hello\",http_route!~\"/livez|/readyz\"}[5m])) - sum by (namespace) (rate(http_server_request_duration_seconds_bucket{job=\"hello\",http_route!~\"/livez|/readyz\",le=\"0.1\"}[5m])))"
        ));
        let text = render("x", &[Slo::new("latency", "", 0.99, Sli::latency(1.0))]);
        assert!(text.contains("le=\"1\""), "{text}");
    }

    #[test]
    fn one_alert_per_tier_with_its_threshold_and_windows() {
        let text = render("hello", &hello());
        for (name, threshold, long, short) in [
            (
                "HelloAvailabilityBurnRatePage1h",
                "(14.4 * (1 - 0.999))",
                "1h",
                "5m",
            ),
            (
                "HelloAvailabilityBurnRatePage6h",
                "(6 * (1 - 0.999))",
                "6h",
                "30m",
            ),
            (
                "HelloAvailabilityBurnRateTicket1d",
                "(3 * (1 - 0.999))",
                "1d",
                "2h",
            ),
            (
                "HelloAvailabilityBurnRateTicket3d",
                "(1 * (1 - 0.999))",
                "3d",
                "6h",
            ),
            (
                "HelloLatencyBurnRatePage1h",
                "(14.4 * (1 - 0.99))",
                "1h",
                "5m",
            ),
        ] {
            let header = format!("- alert: {name}\n");
            assert_eq!(text.matches(&header).count(), 1, "{name}");
            let start = text.find(&header).unwrap();
            let end = text[start + 1..]
                .find("- alert:")
                .map_or(text.len(), |i| start + 1 + i);
            let rule = &text[start..end];
            let slo = if name.contains("Latency") {
                "latency"
            } else {
                "availability"
            };
            assert!(
                rule.contains(&format!(
                    "slo:sli_error:ratio_rate{long}{{service=\"hello\",slo=\"{slo}\"}} > {threshold}"
                )),
                "{rule}"
            );
            assert!(
                rule.contains(&format!(
                    "slo:sli_error:ratio_rate{short}{{service=\"hello\",slo=\"{slo}\"}} > {threshold}"
                )),
                "{rule}"
            );
            assert!(rule.contains(&format!("long_window: \"{long}\"")), "{rule}");
            assert!(
                rule.contains(&format!("short_window: \"{short}\"")),
                "{rule}"
            );
            assert!(
                rule.contains(
                    "runbook_url: \"https://github.com/sre-platform/sre-platform/blob/main/README.md#runbook-hello\""
                ),
                "{rule}"
            );
        }
        // Request tiers for both SLOs, probe tiers for availability only.
        assert_eq!(
            text.matches("- alert: HelloAvailabilityBurnRate").count(),
            TIERS.len()
        );
        assert_eq!(
            text.matches("- alert: HelloLatencyBurnRate").count(),
            TIERS.len()
        );
        assert_eq!(text.matches("BurnRate").count(), 3 * TIERS.len());
    }

    #[test]
    fn probe_sli_is_the_failed_probe_ratio_per_namespace() {
        let text = render("hello", &hello());
        let group = text
            .find("  - name: \"hello-slo-availability-probe\"\n")
            .expect("a probe group");
        let rest = &text[group..];
        for window in WINDOWS {
            assert!(
                rest.contains(&format!(
                    "- record: slo:probe_error:ratio_rate{window}\n        expr: 1 - avg by (namespace) (avg_over_time(probe_success{{service=\"hello\"}}[{window}]))\n        labels:\n          service: \"hello\"\n          slo: \"availability\"\n"
                )),
                "{window}: {rest}"
            );
        }
        assert!(
            rest.contains(
                "- alert: HelloAvailabilityProbeBurnRatePage1h\n        expr: |\n          slo:probe_error:ratio_rate1h{service=\"hello\",slo=\"availability\"} > (14.4 * (1 - 0.999))\n          and\n          slo:probe_error:ratio_rate5m{service=\"hello\",slo=\"availability\"} > (14.4 * (1 - 0.999))\n        labels:\n          severity: \"page\"\n"
            ),
            "{rest}"
        );
        assert!(
            rest.contains("- alert: HelloAvailabilityProbeSLIMetricsAbsent\n        expr: absent(probe_success{service=\"hello\"})\n        for: 10m\n"),
            "{rest}"
        );
    }

    #[test]
    fn one_probe_sli_per_service_and_none_without_an_availability_slo() {
        let latency_only = render("x", &[Slo::new("latency", "", 0.99, Sli::latency(0.1))]);
        assert!(!latency_only.contains("probe_success"), "{latency_only}");
        // Two availability SLOs: the probes go under the first one's objective, once.
        let two = render(
            "x",
            &[
                Slo::new("latency", "", 0.99, Sli::latency(0.1)),
                Slo::new("availability", "", 0.995, Sli::availability()),
                Slo::new(
                    "writes",
                    "",
                    0.999,
                    Sli::Availability {
                        routes: crate::slo::Routes::Only(&["/w"]),
                    },
                ),
            ],
        );
        assert_eq!(
            two.matches("- record: slo:probe_error:ratio_rate5m\n")
                .count(),
            1
        );
        assert!(
            two.contains("  - name: \"x-slo-availability-probe\"\n"),
            "{two}"
        );
        assert!(
            two.contains("slo:probe_error:ratio_rate1h{service=\"x\",slo=\"availability\"} > (14.4 * (1 - 0.995))"),
            "{two}"
        );
    }

    #[test]
    fn pages_need_ten_bad_events_in_the_long_window() {
        let text = render("hello", &hello());
        assert!(text.contains(
            "and on(namespace) sum by (namespace) (increase(http_server_request_duration_seconds_count{job=\"hello\",http_route!~\"/livez|/readyz\",http_response_status_code=~\"5..\"}[1h])) >= 10\n"
        ), "{text}");
        assert!(text.contains("[3d])) >= 5\n"), "{text}");
    }

    #[test]
    fn descriptions_state_the_budget_consumption() {
        let text = render("hello", &hello());
        assert!(
            text.contains("At 14.4x the budget, 2% of the 30-day error budget is spent in 1h and the rest is gone within 50 hours."),
            "{text}"
        );
        assert!(
            text.contains("At 1x the budget, 10% of the 30-day error budget is spent in 3d and the rest is gone within 30 days."),
            "{text}"
        );
        assert!(text.contains("{{ $value | humanizePercentage }}"));
    }

    #[test]
    fn absent_alert_watches_the_job() {
        let text = render("hello", &hello());
        assert!(text.contains(
            "- alert: HelloAvailabilitySLIMetricsAbsent\n        expr: absent(http_server_request_duration_seconds_count{job=\"hello\"})\n        for: 10m\n"
        ), "{text}");
    }

    #[test]
    fn ratio_slis_are_scoped_to_the_job() {
        let text = render(
            "chat",
            &[Slo::new(
                "delivery",
                "",
                0.99,
                Sli::Ratio {
                    bad: "chat_messages_total{outcome=\"failed\"}",
                    total: "chat_messages_total",
                },
            )],
        );
        assert!(
            text.contains(
                "(sum by (namespace) (rate(chat_messages_total{job=\"chat\",outcome=\"failed\"}[5m])) or sum by (namespace) (rate(chat_messages_total{job=\"chat\"}[5m])) * 0)"
            ),
            "{text}"
        );
        assert!(
            text.contains("absent(chat_messages_total{job=\"chat\"})"),
            "{text}"
        );
        assert!(
            text.contains("- alert: ChatDeliveryBurnRatePage1h\n"),
            "{text}"
        );
    }

    #[test]
    fn yaml_strings_are_escaped() {
        assert_eq!(quote("a \"b\" \\ c"), r#""a \"b\" \\ c""#);
    }
}
