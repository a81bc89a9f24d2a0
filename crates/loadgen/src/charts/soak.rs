//! A soak's chart: the server's RSS once a second over the soak, the settling start the verdict
//! leaves out shaded, and the least-squares line the verdict judges drawn over the rest, with
//! its slope and the limit in the legend.

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::{DrawError, FONT, legend, line_swatch, series_color, styled_mesh};
use crate::report;
use crate::soak::{self, Sample, SoakReport};

/// What a soak's chart shows, from `loadgen soak` or `chatload soak`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakRss {
    /// When it ran, `2026-11-23 14:00 UTC`.
    pub when: String,
    /// The service.
    pub service: String,
    /// Its storage and TLS mode, `sqlite, TLS off`.
    pub backend: String,
    /// How long the load lasted, seconds.
    pub duration_secs: f64,
    /// The verdict's limit on the slope.
    pub max_growth_kib_per_min: f64,
    /// RSS once a second from the start of the load.
    pub samples: Vec<Sample>,
}

impl SoakRss {
    /// The chart's data of a soak.
    pub fn from_report(report: &SoakReport) -> SoakRss {
        SoakRss {
            when: report.when.clone(),
            service: report.service.clone(),
            backend: report.backend.clone(),
            duration_secs: report.duration.as_secs_f64(),
            max_growth_kib_per_min: report.max_growth_kib_per_min,
            samples: report.samples.clone(),
        }
    }

    /// The file name's stem: `soak-hello-memory-tls-off`.
    pub fn stem(&self) -> String {
        format!(
            "soak-{}-{}",
            super::slug(&self.service),
            super::slug(&self.backend)
        )
    }

    fn settle_secs(&self) -> f64 {
        soak::settle_secs(std::time::Duration::from_secs_f64(
            self.duration_secs.max(0.0),
        ))
    }
}

/// Keeps `report`'s samples as `dir/STEM.json` and draws `dir/STEM.svg` ([`SoakRss::stem`]);
/// returns the SVG written.
pub fn write(
    dir: &std::path::Path,
    report: &SoakReport,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let rss = SoakRss::from_report(report);
    super::write(dir, &rss.stem(), &super::Chart::Soak(rss))
}

const MIB: f64 = 1024.0 * 1024.0;

/// The chart of `rss`.
pub fn svg(rss: &SoakRss) -> anyhow::Result<String> {
    let settle = rss.settle_secs();
    // `10`, `2.5`: tenths at most, and no `.0` on whole seconds.
    let settle_text = (settle * 10.0).round() / 10.0;
    let fit = soak::fit(&rss.samples, settle);
    let mib: Vec<(f64, f64)> = rss
        .samples
        .iter()
        .map(|sample| (sample.at_secs, sample.rss_bytes as f64 / MIB))
        .collect();
    let end = mib
        .iter()
        .map(|(at, _)| *at)
        .fold(rss.duration_secs, f64::max)
        .max(1.0);
    let low = mib.iter().map(|(_, y)| *y).fold(f64::INFINITY, f64::min);
    let high = mib
        .iter()
        .map(|(_, y)| *y)
        .fold(f64::NEG_INFINITY, f64::max);
    let (low, high) = if low.is_finite() {
        (low, high)
    } else {
        (0.0, 1.0)
    };
    // A flat line still gets a readable scale: at least 1 MiB around it.
    let pad = ((high - low) * 0.15).max(0.5);
    let (y_low, y_high) = ((low - pad).max(0.0), high + pad);
    let mut title = format!(
        "{} ({}): RSS during the soak, {}",
        rss.service, rss.backend, rss.when
    );
    if rss.duration_secs < soak::FULL_SOAK.as_secs_f64() {
        title.push_str(&format!(
            " (smoke run of {:.0} s, not a measurement)",
            rss.duration_secs
        ));
    }
    let fit_label = match fit {
        Some(fit) => format!(
            "least-squares fit after {settle_text} s: {:+.0} KiB/min (limit {})",
            fit.kib_per_min(),
            report::thousands(rss.max_growth_kib_per_min)
        ),
        None => "too few samples for a fit".to_owned(),
    };
    let rss_color = series_color(0);
    let fit_color = series_color(1);
    super::svg((900, 420), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 16))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..end, y_low..y_high)?;
        styled_mesh(&mut chart.configure_mesh())
            .x_label_formatter(&|seconds| format!("{seconds:.0}"))
            .x_desc("seconds since the load started")
            .y_desc("RSS MiB")
            .draw()?;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, y_low), (settle.min(end), y_high)],
                BLACK.mix(0.06).filled(),
            )))?
            .label(format!(
                "settling, left out of the fit (first {settle_text} s)"
            ))
            .legend(|(x, y)| {
                Rectangle::new([(x, y - 5), (x + 16, y + 5)], BLACK.mix(0.15).filled())
            });
        chart
            .draw_series(LineSeries::new(
                mib.iter().copied(),
                rss_color.stroke_width(2),
            ))?
            .label("VmRSS, once a second")
            .legend(line_swatch(rss_color.stroke_width(2)));
        let line = fit.map(|fit| {
            let at = |seconds: f64| {
                (
                    seconds,
                    (fit.intercept_bytes + fit.bytes_per_sec * seconds) / MIB,
                )
            };
            vec![at(settle), at(end)]
        });
        chart
            .draw_series(DashedLineSeries::new(
                line.unwrap_or_default(),
                8,
                5,
                fit_color.stroke_width(2),
            ))?
            .label(fit_label)
            .legend(line_swatch(fit_color.stroke_width(2)));
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok::<(), DrawError>(())
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::charts::tests::{assert_texts, count, parse, polylines, texts};

    /// A 60 s soak growing 2 KiB per second (120 KiB/min) from 50 MiB.
    pub(crate) fn example() -> SoakRss {
        SoakRss {
            when: "2026-12-07 00:46 UTC".to_owned(),
            service: "hello".to_owned(),
            backend: "memory, TLS off".to_owned(),
            duration_secs: 60.0,
            max_growth_kib_per_min: 1024.0,
            samples: (0..=60u32)
                .map(|second| Sample {
                    at_secs: f64::from(second),
                    rss_bytes: 50 * 1024 * 1024 + 2048 * u64::from(second),
                })
                .collect(),
        }
    }

    #[test]
    fn the_chart_draws_every_sample_and_the_fitted_slope() {
        let rss = example();
        let svg = svg(&rss).expect("drawn");
        let document = parse(&svg);
        // The RSS line has a point per sample: 61.
        assert!(
            polylines(&document).contains(&61),
            "{:?}",
            polylines(&document)
        );
        assert_texts(
            &document,
            &[
                "hello (memory, TLS off): RSS during the soak, 2026-12-07 00:46 UTC",
                "least-squares fit after 10 s: +120 KiB/min (limit 1,024)",
                "VmRSS, once a second",
                "settling, left out of the fit (first 10 s)",
                "RSS MiB",
            ],
        );
        assert_eq!(rss.stem(), "soak-hello-memory-tls-off");
        assert_eq!(svg, super::svg(&rss).expect("drawn again"));
    }

    #[test]
    fn a_short_soak_is_marked_and_too_few_samples_draw_no_fit() {
        let rss = SoakRss {
            duration_secs: 5.0,
            samples: example().samples[..2].to_vec(),
            ..example()
        };
        let document_text = svg(&rss).expect("drawn");
        let document = parse(&document_text);
        let texts = texts(&document);
        assert!(
            texts
                .iter()
                .any(|text| text.ends_with("(smoke run of 5 s, not a measurement)")),
            "{texts:?}"
        );
        assert!(texts.iter().any(|text| text == "too few samples for a fit"));
        assert!(count(&document, "polyline") >= 1);
    }
}
