//! OpenSLO v1 documents of a service's SLOs, generated from the declarations
//! (`<service> slo openslo`, committed under `deploy/openslo/`).
//!
//! One `kind: SLO` document per SLO, each starting with `---`, with an inline ratio indicator
//! over the same Prometheus counters the dashboard reads (`job="<service>"`), and one more for
//! the probe-based availability SLI over the blackbox exporter's `probe_success`. The YAML is
//! written by hand: the shape is fixed, and every string is emitted double-quoted with JSON
//! escapes, which YAML reads identically, so no value can change the structure.

use std::fmt::Write as _;

use crate::slo::budget::duration_label;
use crate::slo::dashboard::number;
use crate::slo::promql::{Events, quoted};
use crate::slo::rules::probe_selector;
use crate::slo::{Sli, Slo};

/// Renders one OpenSLO v1 document per SLO of `service`, plus the probe-based availability SLI
/// the rules record (`rules::probe_ratio_rule`) under the first availability SLO's objective.
pub fn render(service: &str, slos: &[Slo]) -> String {
    let mut yaml = String::new();
    for slo in slos {
        // OpenSLO counts a ratio of counters: `counter: true` tells the consumer to take increases.
        let ratio = match Events::of(service, slo) {
            Events::Bad { bad, total } => Ratio::counters("bad", bad, total),
            Events::Good { good, total } => Ratio::counters("good", good, total),
        };
        let name = format!("{service}-{}", slo.name.replace('_', "-"));
        let display = format!("{service} {}", slo.name);
        document(
            &mut yaml,
            service,
            slo,
            &name,
            &display,
            &slo.description,
            ratio,
        );
    }
    if let Some(slo) = slos
        .iter()
        .find(|slo| matches!(slo.sli, Sli::Availability { .. }))
    {
        // probe_success is a gauge (1 or 0 per probe), so each sample is an event: good ones
        // are the successes, all of them the total. It keeps counting when no replica is left
        // to record a request.
        let probes = probe_selector(service);
        let ratio = Ratio {
            counter: false,
            first: "good",
            first_query: format!("sum({probes})"),
            total_query: format!("count({probes})"),
        };
        let name = format!("{service}-{}-probe", slo.name.replace('_', "-"));
        let display = format!("{service} {} (black-box probes)", slo.name);
        let description = "Black-box probes of the public endpoint succeed.";
        document(&mut yaml, service, slo, &name, &display, description, ratio);
    }
    yaml
}

/// An indicator's ratio: `first` (`good` or `bad`) events over the total.
struct Ratio {
    counter: bool,
    first: &'static str,
    first_query: String,
    total_query: String,
}

impl Ratio {
    fn counters(first: &'static str, first_events: String, total_events: String) -> Ratio {
        Ratio {
            counter: true,
            first,
            first_query: format!("sum({first_events})"),
            total_query: format!("sum({total_events})"),
        }
    }
}

fn document(
    yaml: &mut String,
    service: &str,
    slo: &Slo,
    name: &str,
    display: &str,
    description: &str,
    ratio: Ratio,
) {
    let lines = [
        "---".to_owned(),
        "apiVersion: openslo/v1".to_owned(),
        "kind: SLO".to_owned(),
        "metadata:".to_owned(),
        format!("  name: {}", quoted(name)),
        format!("  displayName: {}", quoted(display)),
        "spec:".to_owned(),
        format!("  description: {}", quoted(description)),
        format!("  service: {}", quoted(service)),
        "  indicator:".to_owned(),
        "    metadata:".to_owned(),
        format!("      name: {}", quoted(&format!("{name}-sli"))),
        "    spec:".to_owned(),
        "      ratioMetric:".to_owned(),
        format!("        counter: {}", ratio.counter),
        format!("        {}:", ratio.first),
        "          metricSource:".to_owned(),
        "            type: Prometheus".to_owned(),
        "            spec:".to_owned(),
        format!("              query: {}", quoted(&ratio.first_query)),
        "        total:".to_owned(),
        "          metricSource:".to_owned(),
        "            type: Prometheus".to_owned(),
        "            spec:".to_owned(),
        format!("              query: {}", quoted(&ratio.total_query)),
        "  timeWindow:".to_owned(),
        format!(
            "    - duration: {}",
            quoted(&duration_label(slo.window.as_secs()))
        ),
        "      isRolling: true".to_owned(),
        "  budgetingMethod: Occurrences".to_owned(),
        "  objectives:".to_owned(),
        format!("    - displayName: {}", quoted(description)),
        format!("      target: {}", number(slo.objective)),
    ];
    for line in lines {
        // Writing to a `String` cannot fail.
        let _ = writeln!(yaml, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_document_per_slo_with_its_target() {
        let slos = [
            Slo::new("availability", "Not \"5xx\".", 0.999, Sli::availability()),
            Slo::new("latency", "Fast.", 0.99, Sli::latency(0.1)),
        ];
        let yaml = render("hello", &slos);
        assert_eq!(
            yaml.matches("\n---\n").count() + 1,
            3,
            "two SLOs and the probe SLI"
        );
        assert!(yaml.starts_with("---\n"));
        assert!(yaml.contains("  name: \"hello-availability\"\n"));
        assert!(yaml.contains("      target: 0.999\n"));
        assert!(yaml.contains("      target: 0.99\n"));
        assert!(yaml.contains("description: \"Not \\\"5xx\\\".\""));
        assert!(
            yaml.contains("        good:\n"),
            "latency counts good events"
        );
    }

    #[test]
    fn the_probe_sli_counts_probe_samples_under_the_availability_objective() {
        let slos = [
            Slo::new("latency", "Fast.", 0.99, Sli::latency(0.1)),
            Slo::new("availability", "Not 5xx.", 0.995, Sli::availability()),
        ];
        let yaml = render("hello", &slos);
        let probe = &yaml[yaml
            .find("  name: \"hello-availability-probe\"")
            .expect("a probe SLO")..];
        assert!(probe.contains("        counter: false\n"), "{probe}");
        assert!(probe.contains("query: \"sum(probe_success{service=\\\"hello\\\"})\""));
        assert!(probe.contains("query: \"count(probe_success{service=\\\"hello\\\"})\""));
        assert!(probe.contains("      target: 0.995\n"));
        let latency_only = render("hello", &slos[..1]);
        assert!(
            !latency_only.contains("probe_success"),
            "no availability SLO, no probe SLI"
        );
    }
}
