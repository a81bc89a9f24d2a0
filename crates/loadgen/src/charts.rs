//! The benchmark charts: SVG files beside the tables of BENCHMARKS.md, drawn with plotters' SVG
//! backend from results that each command also keeps as JSON beside them, so `loadgen charts`
//! redraws every chart without measuring again.
//!
//! - `http`: requests/s and p99 of every target of `loadgen bench`, against the baseline;
//! - `ladder`: chat's maximum-throughput ladders from `chatload bench`;
//! - `soak`: one soak's RSS over time with its fitted slope (`loadgen soak`, `chatload soak`).
//!
//! A chart is a function of its JSON alone (no clock, no machine facts beyond what the data
//! says), so drawing the same numbers again gives the same bytes, and a diff of a chart is a
//! diff of the numbers.

pub mod http;
pub mod ladder;
pub mod soak;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// Where `bench/run` and `bench/soak` put the charts, relative to the repository root.
pub const DEFAULT_DIR: &str = "bench/charts";

/// Every chart's text: SVG names the family and the viewer draws it, so no font is read here.
const FONT: &str = "sans-serif";

/// One chart's data, as kept in `NAME.json`; `chart` says which kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "chart", rename_all = "snake_case")]
pub enum Chart {
    /// `loadgen bench`: `NAME-requests.svg` and `NAME-p99.svg`.
    Http(http::HttpResults),
    /// `chatload bench`'s ladders: `NAME.svg`.
    Ladder(ladder::Ladders),
    /// One soak: `NAME.svg`.
    Soak(soak::SoakRss),
}

impl Chart {
    /// The SVG files this chart draws, each as the suffix of its file name after the stem and
    /// its text.
    pub fn render(&self) -> anyhow::Result<Vec<(&'static str, String)>> {
        Ok(match self {
            Chart::Http(results) => vec![
                ("-requests", http::requests_svg(results)?),
                ("-p99", http::p99_svg(results)?),
            ],
            Chart::Ladder(ladders) => vec![("", ladder::svg(ladders)?)],
            Chart::Soak(rss) => vec![("", soak::svg(rss)?)],
        })
    }
}

/// Writes `chart` as `dir/stem.json` and draws its SVG files beside it (creating `dir`);
/// returns the SVG files written.
pub fn write(dir: &Path, stem: &str, chart: &Chart) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let json = dir.join(format!("{stem}.json"));
    let mut text = serde_json::to_string_pretty(chart).context("cannot encode the chart data")?;
    text.push('\n');
    std::fs::write(&json, text).with_context(|| format!("cannot write {}", json.display()))?;
    draw(dir, stem, chart)
}

/// Draws every `*.json` of `dir` again; returns the SVG files written, in name order.
pub fn redraw(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut sources = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read {}", dir.display()))?
            .path();
        if path
            .extension()
            .is_some_and(|extension| extension == "json")
        {
            sources.push(path);
        }
    }
    sources.sort();
    let mut written = Vec::new();
    for source in sources {
        let text = std::fs::read_to_string(&source)
            .with_context(|| format!("cannot read {}", source.display()))?;
        let chart: Chart = serde_json::from_str(&text)
            .with_context(|| format!("{} is not chart data", source.display()))?;
        let stem = source
            .file_stem()
            .and_then(|stem| stem.to_str())
            .with_context(|| format!("{} has no UTF-8 name", source.display()))?;
        written.extend(draw(dir, stem, &chart)?);
    }
    Ok(written)
}

fn draw(dir: &Path, stem: &str, chart: &Chart) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (suffix, svg) in chart.render()? {
        let path = dir.join(format!("{stem}{suffix}.svg"));
        std::fs::write(&path, svg).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// A file-name part: lower-case letters and digits, every other run of characters one `-`
/// (`memory, TLS off` → `memory-tls-off`).
pub fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// Draws on a white SVG canvas of `size` pixels and returns the SVG text.
fn svg(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), DrawError>,
) -> anyhow::Result<String> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        let drawn = root
            .fill(&WHITE)
            .map_err(DrawError::from)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(DrawError::from));
        drawn.map_err(|error| anyhow::anyhow!("cannot draw the chart: {}", error.0))?;
    }
    Ok(text)
}

/// A plotters error as text: its error type carries the backend's, which need not be `Sync`.
#[derive(Debug)]
struct DrawError(String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for DrawError {
    fn from(error: DrawingAreaErrorKind<E>) -> Self {
        DrawError(error.to_string())
    }
}

/// The house style of every chart's axes: no minor grid (it turns a bar chart grey), 13 px
/// labels, 14 px axis names.
fn styled_mesh<'m, 'a, 'b, X, Y, DB>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB>
where
    X: plotters::coord::ranged1d::Ranged,
    Y: plotters::coord::ranged1d::Ranged,
    DB: DrawingBackend,
{
    mesh.light_line_style(TRANSPARENT)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
}

/// Draws the legend of the series labelled so far at `position`, on a translucent white box.
fn legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), DrawError>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}

/// A legend's sample of a line in `style`.
fn line_swatch(style: ShapeStyle) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style)
}

/// A dashed horizontal line at `y` across `x_range`: a bound the data is judged against.
fn threshold(
    x_range: std::ops::Range<f64>,
    y: f64,
) -> DashedLineSeries<std::array::IntoIter<(f64, f64), 2>, u32> {
    DashedLineSeries::new(
        [(x_range.start, y), (x_range.end, y)],
        8,
        5,
        threshold_style(),
    )
}

fn threshold_style() -> ShapeStyle {
    BLACK.mix(0.5).stroke_width(1)
}

/// The colour of a target's bars and lines, by backend: the baseline grey, each storage its own.
fn backend_color(backend: &str) -> RGBColor {
    match backend {
        "-" => RGBColor(150, 150, 150),
        "memory" => RGBColor(31, 119, 180),
        "sqlite" => RGBColor(44, 160, 44),
        "postgres" => RGBColor(255, 127, 14),
        _ => RGBColor(148, 103, 189),
    }
}

/// The `index`th colour of a few lines on one chart.
fn series_color(index: usize) -> RGBColor {
    const COLORS: [RGBColor; 5] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
    ];
    COLORS[index % COLORS.len()]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Parses `svg` as XML and returns it; fails the test when it is not well-formed.
    pub(crate) fn parse(svg: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(svg).unwrap_or_else(|error| panic!("not XML: {error}\n{svg}"))
    }

    /// The elements named `tag`.
    pub(crate) fn count(document: &roxmltree::Document<'_>, tag: &str) -> usize {
        document
            .descendants()
            .filter(|node| node.has_tag_name(tag))
            .count()
    }

    /// Every `<text>`'s content, trimmed (plotters puts it on a line of its own).
    pub(crate) fn texts(document: &roxmltree::Document<'_>) -> Vec<String> {
        document
            .descendants()
            .filter(|node| node.has_tag_name("text"))
            .filter_map(|node| node.text().map(|text| text.trim().to_owned()))
            .collect()
    }

    /// The number of points of every `<polyline>`.
    pub(crate) fn polylines(document: &roxmltree::Document<'_>) -> Vec<usize> {
        document
            .descendants()
            .filter(|node| node.has_tag_name("polyline"))
            .filter_map(|node| node.attribute("points"))
            .map(|points| points.split_whitespace().count())
            .collect()
    }

    /// Fails unless every one of `expected` is the text of some `<text>` of `document`.
    pub(crate) fn assert_texts(document: &roxmltree::Document<'_>, expected: &[&str]) {
        let texts = texts(document);
        for expected in expected {
            assert!(
                texts.iter().any(|text| text == expected),
                "{expected}: {texts:?}"
            );
        }
    }

    #[test]
    fn slugs_keep_letters_and_digits() {
        assert_eq!(slug("memory, TLS off"), "memory-tls-off");
        assert_eq!(slug("DynamoDB emulator"), "dynamodb-emulator");
        assert_eq!(slug("  a--b  "), "a-b");
    }

    #[test]
    fn charts_round_trip_through_their_json_and_redraw_to_the_same_bytes() {
        let scratch = crate::target::ScratchDir::new("loadgen-charts").expect("a scratch dir");
        // A directory `write` creates itself.
        let dir = scratch.path().join("charts");
        let chart = Chart::Soak(soak::tests::example());
        let written = write(&dir, "soak-hello-memory", &chart).expect("written");
        assert_eq!(written, [dir.join("soak-hello-memory.svg")]);
        let first = std::fs::read(&written[0]).expect("an SVG");
        let json = std::fs::read_to_string(dir.join("soak-hello-memory.json")).expect("JSON");
        assert!(json.contains("\"chart\": \"soak\""), "{json}");
        assert_eq!(serde_json::from_str::<Chart>(&json).expect("JSON"), chart);
        assert_eq!(redraw(&dir).expect("redrawn"), written);
        assert_eq!(std::fs::read(&written[0]).expect("an SVG"), first);
    }
}
