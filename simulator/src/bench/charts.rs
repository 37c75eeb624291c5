//! The benchmark charts, as PNG files drawn with plotters: single runner throughput, the scaling heatmap, the
//! latency heatmap and box plot, the timeout impact, the language share of throughput, and the school burst.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

type ChartResult = anyhow::Result<()>;

fn failed<E: std::fmt::Debug>(error: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart failed: {error:?}")
}

const OUTCOME_COLORS: [RGBColor; 6] = [
    RGBColor(46, 139, 87),
    RGBColor(218, 165, 32),
    RGBColor(205, 92, 92),
    RGBColor(106, 90, 205),
    RGBColor(112, 128, 144),
    RGBColor(210, 105, 30),
];

/// A colour from pale yellow to deep red for `value` between `low` and `high`.
fn heat(value: f64, low: f64, high: f64) -> RGBColor {
    let t = if high > low {
        ((value - low) / (high - low)).clamp(0.0, 1.0)
    } else {
        0.5
    };
    let lerp = |a: f64, b: f64| (a + (b - a) * t) as u8;
    RGBColor(lerp(255.0, 178.0), lerp(245.0, 24.0), lerp(200.0, 43.0))
}

/// Throughput (submissions per minute) against `RUNNER_MAX_PARALLEL` for one runner.
pub fn single_runner_throughput(path: &Path, points: &[(usize, f64)]) -> ChartResult {
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(failed)?;
    let max_x = points.iter().map(|p| p.0).max().unwrap_or(1) as f64;
    let max_y = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption("Single runner throughput", ("sans-serif", 28))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..max_x + 1.0, 0.0..max_y)
        .map_err(failed)?;
    chart
        .configure_mesh()
        .x_desc("RUNNER_MAX_PARALLEL")
        .y_desc("submissions / min")
        .x_labels(max_x as usize + 2)
        .x_label_formatter(&|x| {
            if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(failed)?;
    let series: Vec<(f64, f64)> = points.iter().map(|(x, y)| (*x as f64, *y)).collect();
    chart
        .draw_series(LineSeries::new(series.clone(), BLUE.stroke_width(3)))
        .map_err(failed)?;
    chart
        .draw_series(series.iter().map(|point| Circle::new(*point, 5, BLUE.filled())))
        .map_err(failed)?;
    chart
        .draw_series(series.iter().map(|(x, y)| {
            Text::new(
                format!("{y:.0}"),
                (*x + 0.05, *y + max_y * 0.04),
                ("sans-serif", 18).into_font(),
            )
        }))
        .map_err(failed)?;
    root.present().map_err(failed)
}

/// A grid of named rows and columns, each cell coloured and labelled by its value.
pub fn heatmap(
    path: &Path,
    title: &str,
    rows: &[String],
    columns: &[String],
    values: &[Vec<Option<f64>>],
    unit: &str,
) -> ChartResult {
    let root =
        BitMapBackend::new(path, (160 + 150 * columns.len() as u32, 120 + 70 * rows.len() as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(failed)?;
    let known: Vec<f64> = values.iter().flatten().flatten().copied().collect();
    let low = known.iter().copied().fold(f64::INFINITY, f64::min);
    let high = known.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(110)
        .build_cartesian_2d(0.0..columns.len() as f64, 0.0..rows.len() as f64)
        .map_err(failed)?;
    let column_label = |x: &f64| columns.get(x.floor() as usize).cloned().unwrap_or_default();
    let row_label = |y: &f64| rows.get(y.floor() as usize).cloned().unwrap_or_default();
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(columns.len() * 2 + 1)
        .y_labels(rows.len() * 2 + 1)
        .x_label_formatter(&|x| {
            if (x.fract() - 0.5).abs() < 1e-6 {
                column_label(x)
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| {
            if (y.fract() - 0.5).abs() < 1e-6 {
                row_label(y)
            } else {
                String::new()
            }
        })
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(failed)?;
    let centered = ("sans-serif", 18)
        .into_font()
        .into_text_style(&root)
        .pos(Pos::new(HPos::Center, VPos::Center));
    for (row, cells) in values.iter().enumerate() {
        for (column, value) in cells.iter().enumerate() {
            let (x, y) = (column as f64, row as f64);
            let color = value.map_or(RGBColor(235, 235, 235), |v| heat(v, low, high));
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    color.filled(),
                )))
                .map_err(failed)?;
            let label = value.map_or("-".to_owned(), |v| format!("{v:.2}{unit}"));
            chart
                .draw_series(std::iter::once(Text::new(label, (x + 0.5, y + 0.5), centered.clone())))
                .map_err(failed)?;
        }
    }
    root.present().map_err(failed)
}

/// Latency distributions, one box per named group.
pub fn boxplot(path: &Path, title: &str, groups: &[(String, Vec<f64>)]) -> ChartResult {
    let groups: Vec<&(String, Vec<f64>)> = groups.iter().filter(|(_, values)| !values.is_empty()).collect();
    let root = BitMapBackend::new(path, (200 + 64 * groups.len().max(1) as u32, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(failed)?;
    let high = groups
        .iter()
        .flat_map(|(_, values)| values.iter().copied())
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(55)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..groups.len() as f64, 0f32..high as f32)
        .map_err(failed)?;
    let label = |x: &f64| groups.get(x.floor() as usize).map(|g| g.0.clone()).unwrap_or_default();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len() * 2 + 1)
        .x_label_formatter(&|x| {
            if (x.fract() - 0.5).abs() < 1e-6 {
                label(x)
            } else {
                String::new()
            }
        })
        .x_label_style(("sans-serif", 13))
        .y_desc("seconds from send to result")
        .draw()
        .map_err(failed)?;
    for (index, (name, values)) in groups.iter().enumerate() {
        let outcome = name.rsplit(' ').next().unwrap_or_default();
        let color = OUTCOME_COLORS[crate::validate::outcome_rank(outcome).min(5)];
        let quartiles = Quartiles::new(values);
        chart
            .draw_series(std::iter::once(
                Boxplot::new_vertical(index as f64 + 0.5, &quartiles)
                    .width(18)
                    .style(color),
            ))
            .map_err(failed)?;
    }
    root.present().map_err(failed)
}

/// Named bars with their values.
pub fn bars(path: &Path, title: &str, y_desc: &str, bars: &[(String, f64)]) -> ChartResult {
    let root = BitMapBackend::new(path, (800, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(failed)?;
    let high = bars.iter().map(|b| b.1).fold(1.0, f64::max) * 1.2;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 26))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..bars.len() as f64, 0.0..high)
        .map_err(failed)?;
    let label = |x: &f64| bars.get(x.floor() as usize).map(|b| b.0.clone()).unwrap_or_default();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(bars.len() * 2 + 1)
        .x_label_formatter(&|x| {
            if (x.fract() - 0.5).abs() < 1e-6 {
                label(x)
            } else {
                String::new()
            }
        })
        .y_desc(y_desc)
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(failed)?;
    for (index, (_, value)) in bars.iter().enumerate() {
        let x = index as f64;
        let color = OUTCOME_COLORS[index % OUTCOME_COLORS.len()];
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x + 0.2, 0.0), (x + 0.8, *value)],
                color.filled(),
            )))
            .map_err(failed)?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{value:.1}"),
                (x + 0.4, *value + high * 0.02),
                ("sans-serif", 18).into_font(),
            )))
            .map_err(failed)?;
    }
    root.present().map_err(failed)
}

/// One bar per language: its share of all completed submissions, split by outcome.
pub fn stacked_shares(path: &Path, title: &str, languages: &[(String, Vec<(String, f64)>)]) -> ChartResult {
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(failed)?;
    let total: f64 = languages.iter().flat_map(|(_, parts)| parts.iter().map(|p| p.1)).sum();
    let tallest = languages
        .iter()
        .map(|(_, parts)| parts.iter().map(|p| p.1).sum::<f64>() / total.max(1.0) * 100.0)
        .fold(10.0, f64::max);
    let width = languages.len() + 2;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..width as f64, 0.0..tallest * 1.1)
        .map_err(failed)?;
    let label = |x: &f64| {
        languages
            .get(x.floor() as usize)
            .map(|l| l.0.clone())
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(width * 2 + 1)
        .x_label_formatter(&|x| {
            if (x.fract() - 0.5).abs() < 1e-6 {
                label(x)
            } else {
                String::new()
            }
        })
        .y_desc("% of all completed submissions")
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(failed)?;
    let mut legend: Vec<String> = Vec::new();
    for (index, (_, shares)) in languages.iter().enumerate() {
        let mut bottom = 0.0;
        for (outcome, count) in shares {
            let height = count / total.max(1.0) * 100.0;
            let color = OUTCOME_COLORS[crate::validate::outcome_rank(outcome).min(5)];
            let x = index as f64;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x + 0.15, bottom), (x + 0.85, bottom + height)],
                    color.filled(),
                )))
                .map_err(failed)?;
            if !legend.contains(outcome) {
                legend.push(outcome.clone());
            }
            bottom += height;
        }
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{bottom:.0}%"),
                (index as f64 + 0.35, bottom + tallest * 0.02),
                ("sans-serif", 15).into_font(),
            )))
            .map_err(failed)?;
    }
    let x = languages.len() as f64 + 0.3;
    for (row, outcome) in legend.iter().enumerate() {
        let y = tallest * (1.0 - row as f64 * 0.08);
        let color = OUTCOME_COLORS[crate::validate::outcome_rank(outcome).min(5)];
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x, y - tallest * 0.04), (x + 0.25, y)],
                color.filled(),
            )))
            .map_err(failed)?;
        chart
            .draw_series(std::iter::once(Text::new(
                outcome.to_uppercase(),
                (x + 0.35, y - tallest * 0.035),
                ("sans-serif", 15).into_font(),
            )))
            .map_err(failed)?;
    }
    root.present().map_err(failed)
}

/// The school burst: the share of submissions answered against seconds since the burst.
pub fn burst_curve(path: &Path, title: &str, latencies: &[f64], total: usize) -> ChartResult {
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(failed)?;
    let mut sorted = latencies.to_vec();
    sorted.sort_by(f64::total_cmp);
    let right = sorted.last().copied().unwrap_or(1.0).max(1.0) * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 26))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..right, 0.0..100.0)
        .map_err(failed)?;
    chart
        .configure_mesh()
        .x_desc("seconds since all submissions were sent")
        .y_desc("% of submissions answered")
        .draw()
        .map_err(failed)?;
    let points: Vec<(f64, f64)> = sorted
        .iter()
        .enumerate()
        .map(|(index, seconds)| (*seconds, (index + 1) as f64 / total.max(1) as f64 * 100.0))
        .collect();
    chart
        .draw_series(LineSeries::new(points, RED.stroke_width(3)))
        .map_err(failed)?;
    root.present().map_err(failed)
}
