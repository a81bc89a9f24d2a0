//! `loadgen bench`'s charts: one horizontal bar per target and scenario, in the table's order
//! (grouped by scenario, baselines first), for requests/s and for p99. Baselines are grey and
//! services coloured by backend; each requests/s bar carries its share of its baseline.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};

use super::{DrawError, FONT, backend_color};
use crate::report;

/// What `loadgen bench` measured, as its charts need it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpResults {
    /// The day of the run, `2026-12-07`.
    pub date: String,
    /// Shorter or fewer runs than a measurement needs; the titles say so.
    pub smoke_run: bool,
    /// The table's rows, in its order.
    pub rows: Vec<HttpRow>,
}

/// One row of the `bench:all` table: the median run of a target and scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpRow {
    /// The service, or `baseline (bare axum)`.
    pub service: String,
    /// Its storage, `-` for the baseline.
    pub backend: String,
    /// `on` or `off`.
    pub tls: String,
    /// `GET /hello/{username}`.
    pub scenario: String,
    /// Successful requests per second.
    pub requests_per_sec: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// Requests/s over those of the baseline with the same TLS mode and scenario.
    pub ratio_to_baseline: Option<f64>,
}

impl HttpRow {
    /// The chart's figures of a table row.
    pub fn from_report(row: &report::Row) -> HttpRow {
        HttpRow {
            service: row.service.clone(),
            backend: row.backend.clone(),
            tls: row.tls.clone(),
            scenario: row.scenario.clone(),
            requests_per_sec: row.median.rps,
            p99_ms: row.median.p99_ms,
            ratio_to_baseline: row.ratio_to_baseline,
        }
    }

    fn is_baseline(&self) -> bool {
        self.backend == "-"
    }

    /// `hello · memory — GET /hello/{username}`, `baseline · TLS — POST /messages`.
    fn label(&self) -> String {
        let who = if self.is_baseline() {
            "baseline".to_owned()
        } else {
            format!("{} · {}", self.service, self.backend)
        };
        let tls = if self.tls == "on" { " · TLS" } else { "" };
        format!("{who}{tls} — {}", self.scenario)
    }
}

/// Requests/s of every row, each service's bar labelled with its share of the baseline.
pub fn requests_svg(results: &HttpResults) -> anyhow::Result<String> {
    bars(
        results,
        "Requests/s against the bare-axum baseline",
        "requests/s (median run)",
        |requests| report::thousands(*requests),
        |row| row.requests_per_sec,
        |row| {
            let rate = report::thousands(row.requests_per_sec);
            match (row.is_baseline(), row.ratio_to_baseline) {
                (true, _) => format!("{rate} (baseline)"),
                (false, Some(ratio)) => format!("{rate} ({:.1}%)", ratio * 100.0),
                (false, None) => rate,
            }
        },
    )
}

/// p99 latency of every row.
pub fn p99_svg(results: &HttpResults) -> anyhow::Result<String> {
    bars(
        results,
        "p99 latency against the bare-axum baseline",
        "p99 ms (median run by requests/s)",
        |ms| format!("{ms:.1}"),
        |row| row.p99_ms,
        |row| format!("{:.2} ms", row.p99_ms),
    )
}

/// Height of one bar's row, pixels.
const ROW_PIXELS: u32 = 22;
const WIDTH: u32 = 1100;

fn bars(
    results: &HttpResults,
    title: &str,
    axis: &str,
    x_label: impl Fn(&f64) -> String,
    value: impl Fn(&HttpRow) -> f64,
    caption: impl Fn(&HttpRow) -> String,
) -> anyhow::Result<String> {
    let rows = &results.rows;
    let count = i32::try_from(rows.len()).unwrap_or(i32::MAX).max(1);
    // Row 0 on top: plotters counts segments upwards.
    let segment = |idx: usize| count - 1 - i32::try_from(idx).unwrap_or(i32::MAX);
    let labels: Vec<String> = rows.iter().map(HttpRow::label).collect();
    // About 7 px per character at 13 px, the width plotters' SVG backend assumes too.
    let longest = labels.iter().map(|label| label.chars().count()).max();
    let label_pixels = u32::try_from(longest.unwrap_or(0)).unwrap_or(80) * 7 + 16;
    let height = 120 + ROW_PIXELS * count.unsigned_abs();
    let largest = rows.iter().map(&value).fold(0.0, f64::max);
    // Room right of the longest bar for its caption.
    let x_max = if largest > 0.0 { largest * 1.3 } else { 1.0 };
    let title = match results.smoke_run {
        true => format!("{title}, {} (smoke run, not a measurement)", results.date),
        false => format!("{title}, {}", results.date),
    };
    let y_label = |value: &SegmentValue<i32>| match value {
        SegmentValue::CenterOf(segment) => usize::try_from(count - 1 - segment)
            .ok()
            .and_then(|idx| labels.get(idx).cloned())
            .unwrap_or_default(),
        _ => String::new(),
    };
    super::svg((WIDTH, height), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 18))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(label_pixels)
            // An integer range includes its end: 0..count - 1 is count segments.
            .build_cartesian_2d(0.0..x_max, (0..count - 1).into_segmented())?;
        super::styled_mesh(&mut chart.configure_mesh())
            .disable_y_mesh()
            .y_labels(rows.len() + 1)
            .y_label_formatter(&y_label)
            .x_label_formatter(&x_label)
            .x_desc(axis)
            .draw()?;
        chart.draw_series(rows.iter().enumerate().map(|(idx, row)| {
            let top = segment(idx);
            let mut bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(top)),
                    (value(row), SegmentValue::Exact(top + 1)),
                ],
                backend_color(&row.backend).filled(),
            );
            bar.set_margin(3, 3, 0, 0);
            bar
        }))?;
        let caption_style = TextStyle::from((FONT, 12).into_font())
            .pos(Pos::new(HPos::Left, VPos::Center))
            .color(&BLACK);
        chart.draw_series(rows.iter().enumerate().map(|(idx, row)| {
            EmptyElement::at((value(row), SegmentValue::CenterOf(segment(idx))))
                + Text::new(caption(row), (4, 0), caption_style.clone())
        }))?;
        // A rule between scenarios, so each group of bars reads as one comparison.
        let rules = rows
            .windows(2)
            .enumerate()
            .filter(|(_, pair)| pair[0].scenario != pair[1].scenario)
            .map(|(idx, _)| {
                let boundary = SegmentValue::Exact(segment(idx));
                PathElement::new(
                    vec![(0.0, boundary.clone()), (x_max, boundary)],
                    BLACK.mix(0.35),
                )
            });
        chart.draw_series(rules)?;
        Ok::<(), DrawError>(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::tests::{assert_texts, count, parse, texts};

    fn row(service: &str, backend: &str, scenario: &str, rps: f64, ratio: f64) -> HttpRow {
        HttpRow {
            service: service.to_owned(),
            backend: backend.to_owned(),
            tls: "off".to_owned(),
            scenario: scenario.to_owned(),
            requests_per_sec: rps,
            p99_ms: 100_000.0 / rps,
            ratio_to_baseline: Some(ratio),
        }
    }

    fn example() -> HttpResults {
        HttpResults {
            date: "2026-12-07".to_owned(),
            smoke_run: false,
            rows: vec![
                row(
                    "baseline (bare axum)",
                    "-",
                    "GET /hello/{username}",
                    82_370.0,
                    1.0,
                ),
                row("hello", "memory", "GET /hello/{username}", 50_838.0, 0.617),
                row("hello", "sqlite", "GET /hello/{username}", 46_675.0, 0.567),
                row(
                    "baseline (bare axum)",
                    "-",
                    "PUT /hello/{username}",
                    65_991.0,
                    1.0,
                ),
                row("hello", "memory", "PUT /hello/{username}", 43_294.0, 0.656),
            ],
        }
    }

    #[test]
    fn each_row_is_one_labelled_bar_with_its_share_of_the_baseline() {
        let svg = requests_svg(&example()).expect("drawn");
        let document = parse(&svg);
        assert_texts(
            &document,
            &[
                "baseline — GET /hello/{username}",
                "hello · memory — GET /hello/{username}",
                "hello · sqlite — GET /hello/{username}",
                "hello · memory — PUT /hello/{username}",
                "82,370 (baseline)",
                "50,838 (61.7%)",
                "43,294 (65.6%)",
                "requests/s (median run)",
            ],
        );
        let texts = texts(&document);
        assert!(
            texts
                .iter()
                .any(|text| text.starts_with("Requests/s") && text.ends_with("2026-12-07")),
            "{texts:?}"
        );
        // Five bars, filled with their backend's colour: two grey baselines, two memory, one
        // SQLite (plus the white background).
        let fills: Vec<&str> = document
            .descendants()
            .filter(|node| node.has_tag_name("rect"))
            .filter_map(|node| node.attribute("fill"))
            .collect();
        let of = |color: RGBColor| {
            let hex = format!("#{:02X}{:02X}{:02X}", color.0, color.1, color.2);
            fills
                .iter()
                .filter(|fill| fill.eq_ignore_ascii_case(&hex))
                .count()
        };
        assert_eq!(of(backend_color("-")), 2, "{fills:?}");
        assert_eq!(of(backend_color("memory")), 2, "{fills:?}");
        assert_eq!(of(backend_color("sqlite")), 1, "{fills:?}");
        // One rule between the GET and the PUT group, drawn as a line of two points.
        assert!(count(&document, "polyline") >= 1);
    }

    #[test]
    fn the_p99_chart_shows_milliseconds_and_a_smoke_run_says_so() {
        let results = HttpResults {
            smoke_run: true,
            ..example()
        };
        let svg = p99_svg(&results).expect("drawn");
        let texts = texts(&parse(&svg));
        assert!(texts.iter().any(|text| text == "1.21 ms"), "{texts:?}");
        assert!(
            texts
                .iter()
                .any(|text| text.ends_with("(smoke run, not a measurement)")),
            "{texts:?}"
        );
    }

    #[test]
    fn the_same_numbers_draw_the_same_file() {
        assert_eq!(
            requests_svg(&example()).expect("drawn"),
            requests_svg(&example()).expect("drawn")
        );
        // And no rows is still a chart, not an error.
        let empty = HttpResults {
            rows: Vec::new(),
            ..example()
        };
        parse(&requests_svg(&empty).expect("drawn"));
    }
}
