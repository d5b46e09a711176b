//! Training curves (loss, accuracy per epoch) drawn with plotters as PNG and SVG.
//!
//! PNGs are rendered into an RGB buffer and encoded with the `image` crate; text uses the
//! DejaVu Sans font embedded in the binary, so no system font is needed.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{CliError, Result};
use crate::metrics::EpochMetrics;

const SIZE: (u32, u32) = (800, 500);
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One line of a chart.
struct Curve {
    label: String,
    points: Vec<(f64, f64)>,
    color: RGBColor,
    dashed: bool,
}

/// One chart: title, y-axis name and its curves.
struct Chart {
    file_stem: &'static str,
    title: &'static str,
    y_desc: &'static str,
    legend_at: SeriesLabelPosition,
    curves: Vec<Curve>,
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is a known-good TTF, so registration cannot fail in practice.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn charts(runs: &[(String, Vec<EpochMetrics>)]) -> Vec<Chart> {
    let one = runs.len() == 1;
    let mut loss = Vec::new();
    let mut acc = Vec::new();
    for (i, (name, rows)) in runs.iter().enumerate() {
        // One run: train and validation in two colours; several: one colour per run.
        let (c_train, c_val) = if one {
            (COLORS[0], COLORS[1])
        } else {
            (COLORS[i % COLORS.len()], COLORS[i % COLORS.len()])
        };
        let label = |what: &str| {
            if one {
                what.to_string()
            } else {
                format!("{name} {what}")
            }
        };
        let series = |f: fn(&EpochMetrics) -> f64| -> Vec<(f64, f64)> {
            rows.iter().map(|r| (r.epoch as f64, f(r))).collect()
        };
        let curve = |what: &str, f: fn(&EpochMetrics) -> f64, train: bool| Curve {
            label: label(what),
            points: series(f),
            color: if train { c_train } else { c_val },
            dashed: train,
        };
        loss.push(curve("train loss", |r| r.train_loss, true));
        loss.push(curve("val loss", |r| r.val_loss, false));
        acc.push(curve("train accuracy", |r| r.train_acc, true));
        acc.push(curve("val accuracy", |r| r.val_acc, false));
    }
    vec![
        Chart {
            file_stem: "loss",
            title: "Loss",
            y_desc: "loss",
            legend_at: SeriesLabelPosition::UpperRight,
            curves: loss,
        },
        Chart {
            file_stem: "accuracy",
            title: "Accuracy",
            y_desc: "accuracy",
            legend_at: SeriesLabelPosition::LowerRight,
            curves: acc,
        },
    ]
}

/// `(lo, hi)` of the values with 5% padding (and a non-empty range).
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    (lo - pad, hi + pad)
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, chart: &Chart) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| CliError::msg(format!("plot: {e}"));
    root.fill(&WHITE).map_err(err)?;
    let all = || chart.curves.iter().flat_map(|c| c.points.iter());
    let (x0, x1) = span(all().map(|p| p.0));
    let (y0, y1) = span(all().map(|p| p.1));
    let mut ctx = ChartBuilder::on(&root)
        .caption(chart.title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    ctx.configure_mesh()
        .x_desc("epoch")
        .x_label_formatter(&|x: &f64| {
            if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                format!("{x:.1}")
            }
        })
        .y_desc(chart.y_desc)
        .light_line_style(RGBColor(235, 235, 235))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    for c in &chart.curves {
        let style = c.color.stroke_width(2);
        let (color, dashed) = (c.color, c.dashed);
        let ann = if c.dashed {
            let s = DashedLineSeries::new(c.points.iter().copied(), 8, 5, style);
            ctx.draw_series(s).map_err(err)?
        } else {
            ctx.draw_series(LineSeries::new(c.points.iter().copied(), style))
                .map_err(err)?
        };
        // Legend sample: two segments, with a gap when the curve is dashed.
        let gap = if dashed { 4 } else { 0 };
        ann.label(c.label.clone()).legend(move |(x, y)| {
            let s = color.stroke_width(2);
            EmptyElement::at((x, y))
                + PathElement::new([(0, 0), (10 - gap, 0)], s)
                + PathElement::new([(10 + gap, 0), (20, 0)], s)
        });
    }
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(chart.legend_at.clone())
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

fn write_png(path: &Path, chart: &Chart) -> Result<()> {
    let (w, h) = SIZE;
    let mut buf = vec![255u8; (w * h * 3) as usize];
    draw(
        BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area(),
        chart,
    )?;
    let img = image::RgbImage::from_raw(w, h, buf)
        .ok_or_else(|| CliError::msg("plot: bitmap buffer of the wrong size"))?;
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Png)
        .map_err(|e| CliError::msg(format!("{}: {e}", path.display())))?;
    mlfw_core::safetensors::write_atomic(path, bytes.get_ref())?;
    Ok(())
}

fn write_svg(path: &Path, chart: &Chart) -> Result<()> {
    let mut svg = String::new();
    draw(
        SVGBackend::with_string(&mut svg, SIZE).into_drawing_area(),
        chart,
    )?;
    mlfw_core::safetensors::write_atomic(path, svg.as_bytes())?;
    Ok(())
}

/// Draws `loss.{png,svg}` and `accuracy.{png,svg}` into `dir` for the runs `(name, metrics)`,
/// overlaid (train dashed, validation solid); returns the files written.
///
/// # Errors
/// `dir` cannot be created or a file cannot be drawn or written.
pub fn write_curves(dir: &Path, runs: &[(String, Vec<EpochMetrics>)]) -> Result<Vec<PathBuf>> {
    register_font();
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::msg(format!("cannot create {}: {e}", dir.display())))?;
    let mut files = Vec::new();
    for chart in charts(runs) {
        let png = dir.join(format!("{}.png", chart.file_stem));
        let svg = dir.join(format!("{}.svg", chart.file_stem));
        write_png(&png, &chart)?;
        write_svg(&svg, &chart)?;
        files.extend([png, svg]);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<EpochMetrics> {
        (1..=n)
            .map(|e| EpochMetrics {
                epoch: e,
                train_loss: 1.0 / e as f64,
                train_acc: 1.0 - 0.5 / e as f64,
                val_loss: 1.1 / e as f64,
                val_acc: 1.0 - 0.6 / e as f64,
                lr: 0.01,
                time_s: 1.0,
                images_per_s: 100.0,
            })
            .collect()
    }

    #[test]
    fn writes_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let runs = vec![("a".to_string(), rows(3)), ("b".to_string(), rows(1))];
        let files = write_curves(dir.path(), &runs).unwrap();
        assert_eq!(files.len(), 4);
        let png = image::open(dir.path().join("loss.png")).unwrap();
        assert_eq!((png.width(), png.height()), SIZE);
        let svg = std::fs::read_to_string(dir.path().join("accuracy.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("b val accuracy"));
    }
}
