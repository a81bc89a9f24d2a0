//! chat's ladder chart: each server set's climb to its maximum, offered deliveries/s against p99
//! (log scale, with the bound a step must stay under) above, and against the share of the
//! offered deliveries that arrived in the window (with the 95% a step needs) below. A filled
//! point passed, a hollow one failed.

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    DrawError, FONT, legend, line_swatch, series_color, styled_mesh, threshold, threshold_style,
};

/// The ladders one `chatload bench` climbed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ladders {
    /// When the bench started, `2026-12-07 00:31 UTC`.
    pub started: String,
    /// Shorter or fewer runs than a measurement needs; the title says so.
    pub smoke_run: bool,
    /// One per server set, in the order run.
    pub ladders: Vec<Ladder>,
}

/// One server set's ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ladder {
    /// `1 (memory)`, `3 (Redis log + NATS)`.
    pub servers: String,
    /// Members of the room.
    pub members: u32,
    /// A step passes only with p99 at or under this.
    pub p99_bound_ms: f64,
    /// The rates tried, in order, up to the first that failed.
    pub steps: Vec<LadderStep>,
}

/// One rate of a ladder: one short run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LadderStep {
    /// Messages per second published into the room.
    pub msgs_per_sec: f64,
    /// Messages × members per second.
    pub offered_deliveries_per_sec: f64,
    /// Deliveries that arrived in the window, per second.
    pub deliveries_per_sec: f64,
    /// 99th percentile from scheduled send to arrival, milliseconds.
    pub p99_ms: f64,
    /// Whether the step passed (p99 within the bound, nothing lost, ≥ 95% delivered in time).
    pub passed: bool,
}

impl LadderStep {
    /// Deliveries in the window over those offered, percent.
    pub fn delivered_percent(&self) -> f64 {
        if self.offered_deliveries_per_sec > 0.0 {
            100.0 * self.deliveries_per_sec / self.offered_deliveries_per_sec
        } else {
            0.0
        }
    }
}

/// The share a step must deliver in the window, percent (`chat::bench::passes`).
const DELIVERED_PERCENT_NEEDED: f64 = 95.0;

/// The chart of `ladders`.
pub fn svg(ladders: &Ladders) -> anyhow::Result<String> {
    let steps = || ladders.ladders.iter().flat_map(|ladder| &ladder.steps);
    // Offered deliveries/s in thousands on x, so the axis reads `400` rather than `400000`.
    let x_max = steps()
        .map(|step| step.offered_deliveries_per_sec / 1000.0)
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.05;
    let bounds = ladders.ladders.iter().map(|ladder| ladder.p99_bound_ms);
    let p99_high = steps()
        .map(|step| step.p99_ms)
        .chain(bounds.clone())
        .fold(1.0, f64::max)
        * 2.0;
    let p99_low = steps()
        .map(|step| step.p99_ms)
        .filter(|p99| *p99 > 0.0)
        .fold(p99_high / 2.0, f64::min)
        / 2.0;
    let share_low = steps()
        .map(LadderStep::delivered_percent)
        .fold(DELIVERED_PERCENT_NEEDED - 3.0, f64::min)
        - 1.0;
    let share_high = steps()
        .map(LadderStep::delivered_percent)
        .fold(100.0, f64::max)
        + 1.0;
    let mut title = format!(
        "chat's ladder, {} (a filled point passed, a hollow one failed)",
        ladders.started
    );
    if ladders.smoke_run {
        title.push_str(" (smoke run, not a measurement)");
    }
    let x_desc = "offered deliveries/s, thousands (messages/s × members)";
    let thousands = |value: &f64| format!("{value:.0}");
    super::svg((900, 720), |root| {
        let root = root.titled(&title, (FONT, 18))?;
        let (upper, lower) = root.split_vertically(360);

        let mut p99 = ChartBuilder::on(&upper)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, (p99_low..p99_high).log_scale())?;
        styled_mesh(&mut p99.configure_mesh())
            .x_label_formatter(&thousands)
            .y_label_formatter(&|ms| format!("{ms}"))
            .x_desc(x_desc)
            .y_desc("p99 ms (log)")
            .draw()?;
        let mut bounds: Vec<f64> = bounds.collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        for bound in bounds {
            p99.draw_series(threshold(0.0..x_max, bound))?
                .label(format!("p99 bound, {bound} ms"))
                .legend(line_swatch(threshold_style()));
        }
        for (idx, ladder) in ladders.ladders.iter().enumerate() {
            let color = series_color(idx);
            let points = ladder
                .steps
                .iter()
                .map(|step| (step.offered_deliveries_per_sec / 1000.0, step.p99_ms));
            p99.draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(format!(
                    "{}, {}-member room",
                    ladder.servers, ladder.members
                ))
                .legend(line_swatch(color.stroke_width(2)));
            p99.draw_series(ladder.steps.iter().map(|step| {
                marker(
                    (step.offered_deliveries_per_sec / 1000.0, step.p99_ms),
                    color,
                    step.passed,
                )
            }))?;
        }
        legend(&mut p99, SeriesLabelPosition::UpperLeft)?;

        let mut share = ChartBuilder::on(&lower)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, share_low..share_high)?;
        styled_mesh(&mut share.configure_mesh())
            .x_label_formatter(&thousands)
            .y_label_formatter(&|percent| format!("{percent:.0}"))
            .x_desc(x_desc)
            .y_desc("delivered in the window, %")
            .draw()?;
        share
            .draw_series(threshold(0.0..x_max, DELIVERED_PERCENT_NEEDED))?
            .label(format!("{DELIVERED_PERCENT_NEEDED}% needed to pass"))
            .legend(line_swatch(threshold_style()));
        for (idx, ladder) in ladders.ladders.iter().enumerate() {
            let color = series_color(idx);
            let points = ladder.steps.iter().map(|step| {
                (
                    step.offered_deliveries_per_sec / 1000.0,
                    step.delivered_percent(),
                )
            });
            share.draw_series(LineSeries::new(points, color.stroke_width(2)))?;
            share.draw_series(ladder.steps.iter().map(|step| {
                marker(
                    (
                        step.offered_deliveries_per_sec / 1000.0,
                        step.delivered_percent(),
                    ),
                    color,
                    step.passed,
                )
            }))?;
        }
        legend(&mut share, SeriesLabelPosition::LowerLeft)?;
        Ok::<(), DrawError>(())
    })
}

/// A step's point: filled when it passed, hollow when it failed.
fn marker(at: (f64, f64), color: RGBColor, passed: bool) -> Circle<(f64, f64), u32> {
    let style = match passed {
        true => color.filled(),
        false => color.stroke_width(2),
    };
    Circle::new(at, 4, style)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::tests::{assert_texts, count, parse, polylines};

    fn step(msgs_per_sec: f64, deliveries_per_sec: f64, p99_ms: f64, passed: bool) -> LadderStep {
        LadderStep {
            msgs_per_sec,
            offered_deliveries_per_sec: msgs_per_sec * 100.0,
            deliveries_per_sec,
            p99_ms,
            passed,
        }
    }

    fn example() -> Ladders {
        Ladders {
            started: "2026-12-07 00:31 UTC".to_owned(),
            smoke_run: false,
            ladders: vec![
                Ladder {
                    servers: "1 (memory)".to_owned(),
                    members: 100,
                    p99_bound_ms: 100.0,
                    steps: vec![
                        step(1000.0, 100_060.0, 6.7, true),
                        step(2000.0, 200_015.0, 6.6, true),
                        step(14000.0, 1_342_172.0, 551.4, false),
                    ],
                },
                Ladder {
                    servers: "3 (Redis log + NATS)".to_owned(),
                    members: 100,
                    p99_bound_ms: 100.0,
                    steps: vec![
                        step(1000.0, 100_021.0, 8.6, true),
                        step(11000.0, 1_084_106.0, 245.2, false),
                    ],
                },
            ],
        }
    }

    #[test]
    fn every_step_is_a_point_in_both_panels_and_failures_are_hollow() {
        let svg = svg(&example()).expect("drawn");
        let document = parse(&svg);
        // Five steps, each in both panels.
        assert_eq!(count(&document, "circle"), 10);
        let hollow = document
            .descendants()
            .filter(|node| node.has_tag_name("circle"))
            .filter(|node| node.attribute("fill") == Some("none"))
            .count();
        assert_eq!(hollow, 4, "two failed steps, in two panels");
        // One line per ladder per panel, with a point per step.
        let lines = polylines(&document);
        assert_eq!(
            lines.iter().filter(|&&points| points == 3).count(),
            2,
            "{lines:?}"
        );
        assert_texts(
            &document,
            &[
                "chat's ladder, 2026-12-07 00:31 UTC (a filled point passed, a hollow one failed)",
                "1 (memory), 100-member room",
                "3 (Redis log + NATS), 100-member room",
                "p99 bound, 100 ms",
                "95% needed to pass",
            ],
        );
        assert_eq!(svg, super::svg(&example()).expect("drawn again"));
    }

    #[test]
    fn the_delivered_share_is_a_percentage_of_the_offered() {
        let step = step(14000.0, 1_342_172.0, 551.4, false);
        assert!((step.delivered_percent() - 95.869).abs() < 0.001);
        assert_eq!(
            LadderStep {
                offered_deliveries_per_sec: 0.0,
                ..step
            }
            .delivered_percent(),
            0.0
        );
    }
}
