//! Server-side SVG charts (plotters), inlined into pages.

use chrono::{DateTime, Duration, Utc};
use plotters::prelude::*;

use crate::model::{JobReportView, ReportStatus};
use crate::server::svg_chart::{render, Drawn};

const SUCCESS: RGBColor = RGBColor(22, 163, 74);
const ERROR: RGBColor = RGBColor(220, 38, 38);
const GRID: RGBColor = RGBColor(229, 231, 235);

/// Duration of each run over time, one dot per run coloured by outcome. Runs that reported
/// no duration sit on the zero line, so every outcome is visible.
pub fn runs_svg(runs: &[JobReportView]) -> String {
    render("job runs", SIZE, |svg| draw(svg, runs))
}

const SIZE: (u32, u32) = (720, 260);

fn draw<'a>(svg: &'a mut String, runs: &[JobReportView]) -> Drawn<'a> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (from, to) = time_range(runs);
    // Six labels over a short span would all read the same minute.
    let time_format = if to - from < Duration::minutes(30) {
        "%H:%M:%S"
    } else {
        "%m-%d %H:%M"
    };
    let max_secs = runs.iter().filter_map(|r| r.duration_ms).max().unwrap_or(0) as f64 / 1000.0;
    let y_max = if max_secs > 0.0 { max_secs * 1.15 } else { 1.0 };

    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(52)
        .build_cartesian_2d(from..to, 0.0..y_max)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .bold_line_style(GRID)
        .x_labels(6)
        .y_labels(5)
        .x_label_formatter(&|t: &DateTime<Utc>| t.format(time_format).to_string())
        .y_label_formatter(&|s: &f64| format!("{s:.1}s"))
        .label_style(("sans-serif", 12))
        .draw()?;

    for status in ReportStatus::ALL {
        let color = match status {
            ReportStatus::Success => SUCCESS,
            ReportStatus::Error => ERROR,
        };
        let points = runs
            .iter()
            .filter(|r| r.status == status)
            .map(|r| (r.finished_at, r.duration_ms.unwrap_or(0) as f64 / 1000.0));
        chart.draw_series(points.map(|p| Circle::new(p, 4, color.filled())))?;
    }
    root.present()?;
    Ok(())
}

fn time_range(runs: &[JobReportView]) -> (DateTime<Utc>, DateTime<Utc>) {
    let first = runs
        .iter()
        .map(|r| r.finished_at)
        .min()
        .unwrap_or_else(Utc::now);
    let last = runs
        .iter()
        .map(|r| r.finished_at)
        .max()
        .unwrap_or_else(Utc::now);
    let pad = ((last - first) / 20).max(Duration::minutes(1));
    (first - pad, last + pad)
}
