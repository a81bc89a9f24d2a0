//! OpenSLO v1 documents of a service's SLOs, generated from the declarations
//! (`<service> slo openslo`, committed under `deploy/openslo/`).
//!
//! One `kind: SLO` document per SLO, each starting with `---`, with an inline ratio indicator
//! over the same Prometheus counters the dashboard reads (`job="<service>"`). The YAML is
//! written by hand: the shape is fixed, and every string is emitted double-quoted with JSON
//! escapes, which YAML reads identically, so no value can change the structure.

use std::fmt::Write as _;

use crate::slo::Slo;
use crate::slo::budget::duration_label;
use crate::slo::dashboard::number;
use crate::slo::promql::{Events, quoted};

/// Renders one OpenSLO v1 document per SLO of `service`.
pub fn render(service: &str, slos: &[Slo]) -> String {
    let mut yaml = String::new();
    for slo in slos {
        document(&mut yaml, service, slo);
    }
    yaml
}

fn document(yaml: &mut String, service: &str, slo: &Slo) {
    let name = format!("{service}-{}", slo.name.replace('_', "-"));
    // OpenSLO counts a ratio of counters: `counter: true` tells the consumer to take increases.
    let (first, first_query, total_query) = match Events::of(service, slo) {
        Events::Bad { bad, total } => ("bad", bad, total),
        Events::Good { good, total } => ("good", good, total),
    };
    let lines = [
        "---".to_owned(),
        "apiVersion: openslo/v1".to_owned(),
        "kind: SLO".to_owned(),
        "metadata:".to_owned(),
        format!("  name: {}", quoted(&name)),
        format!(
            "  displayName: {}",
            quoted(&format!("{service} {}", slo.name))
        ),
        "spec:".to_owned(),
        format!("  description: {}", quoted(slo.description)),
        format!("  service: {}", quoted(service)),
        "  indicator:".to_owned(),
        "    metadata:".to_owned(),
        format!("      name: {}", quoted(&format!("{name}-sli"))),
        "    spec:".to_owned(),
        "      ratioMetric:".to_owned(),
        "        counter: true".to_owned(),
        format!("        {first}:"),
        "          metricSource:".to_owned(),
        "            type: Prometheus".to_owned(),
        "            spec:".to_owned(),
        format!(
            "              query: {}",
            quoted(&format!("sum({first_query})"))
        ),
        "        total:".to_owned(),
        "          metricSource:".to_owned(),
        "            type: Prometheus".to_owned(),
        "            spec:".to_owned(),
        format!(
            "              query: {}",
            quoted(&format!("sum({total_query})"))
        ),
        "  timeWindow:".to_owned(),
        format!(
            "    - duration: {}",
            quoted(&duration_label(slo.window.as_secs()))
        ),
        "      isRolling: true".to_owned(),
        "  budgetingMethod: Occurrences".to_owned(),
        "  objectives:".to_owned(),
        format!("    - displayName: {}", quoted(slo.description)),
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
    use crate::slo::Sli;

    #[test]
    fn one_document_per_slo_with_its_target() {
        let slos = [
            Slo::new("availability", "Not \"5xx\".", 0.999, Sli::availability()),
            Slo::new("latency", "Fast.", 0.99, Sli::latency(0.1)),
        ];
        let yaml = render("hello", &slos);
        assert_eq!(yaml.matches("\n---\n").count() + 1, 2);
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
}
