//! TODO(issue 3): generated from the SLO declarations.

use crate::slo::Slo;

/// Renders the openslo of `service`'s `slos`.
pub fn render(service: &str, slos: &[Slo]) -> String {
    let _ = (service, slos);
    String::new()
}
