//! The dashboard's two plotters charts, drawn once per figures (they are cached with them):
//! recap jobs and failures per hour over the last 24 hours, and each stage's average
//! duration. Drawn small, so that in a 400-pixel window the labels still read.

use plotters::prelude::*;

use crate::model::{DashboardCharts, JobStats};
use crate::server::svg_chart::{render, Drawn};

const JOBS: RGBColor = RGBColor(147, 197, 253);
const FAILURES: RGBColor = RGBColor(220, 38, 38);
const STAGE: RGBColor = RGBColor(37, 99, 235);
const GRID: RGBColor = RGBColor(229, 231, 235);
const TEXT: RGBColor = RGBColor(75, 85, 99);

const WIDTH: u32 = 480;
const HEIGHT: u32 = 240;

pub fn charts(stats: &JobStats) -> DashboardCharts {
    DashboardCharts {
        per_hour_svg: render("jobs per hour", (WIDTH, HEIGHT), |svg| per_hour(svg, stats)),
        stages_svg: render("stage durations", (WIDTH, HEIGHT), |svg| stages(svg, stats)),
    }
}

/// Bars of every finished job per hour, its failures in red over them; hours are labelled by
/// their start in UTC, every fourth one.
fn per_hour<'a>(svg: &'a mut String, stats: &JobStats) -> Drawn<'a> {
    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let hours = stats.per_hour.len();
    let most = stats.per_hour.iter().map(|h| h.jobs).max().unwrap_or(0);
    let y_max = (most + most / 8).max(4) as u32;
    let mut chart = ChartBuilder::on(&root)
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(32)
        .build_cartesian_2d((0..hours).into_segmented(), 0u32..y_max)?;
    let starts: Vec<String> = stats
        .per_hour
        .iter()
        .map(|h| h.start.format("%H:%M").to_string())
        .collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .bold_line_style(GRID)
        .axis_style(GRID)
        .x_labels(hours)
        .y_labels(5)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if i % 4 == 0 => starts.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_formatter(&|n| n.to_string())
        .label_style(("sans-serif", 14, &TEXT))
        .draw()?;
    let bars = |pick: fn(&crate::model::HourStats) -> i64| {
        stats
            .per_hour
            .iter()
            .enumerate()
            .map(move |(i, h)| (i, pick(h) as u32))
    };
    chart.draw_series(
        Histogram::vertical(&chart)
            .style(JOBS.filled())
            .margin(2)
            .data(bars(|h| h.jobs)),
    )?;
    chart.draw_series(
        Histogram::vertical(&chart)
            .style(FAILURES.filled())
            .margin(2)
            .data(bars(|h| h.failures)),
    )?;
    root.present()?;
    Ok(())
}

/// One bar per stage in seed 002's order, its average in seconds.
fn stages<'a>(svg: &'a mut String, stats: &JobStats) -> Drawn<'a> {
    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let names: Vec<&str> = stats.stages.iter().map(|s| s.name.as_str()).collect();
    let secs: Vec<f64> = stats.stages.iter().map(|s| s.avg_ms / 1000.0).collect();
    let longest = secs.iter().copied().fold(0.0, f64::max);
    let x_max = if longest > 0.0 { longest * 1.1 } else { 1.0 };
    let mut chart = ChartBuilder::on(&root)
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(84)
        .build_cartesian_2d(0.0..x_max, (0..names.len().max(1)).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .bold_line_style(GRID)
        .axis_style(GRID)
        .x_labels(5)
        .y_labels(names.len().max(1))
        .x_label_formatter(&|s| seconds(*s))
        .y_label_formatter(&|v| match v {
            // Segments count from the bottom; the first stage goes on top.
            SegmentValue::CenterOf(i) if *i < names.len() => names[names.len() - 1 - i].to_string(),
            _ => String::new(),
        })
        .label_style(("sans-serif", 14, &TEXT))
        .draw()?;
    chart.draw_series(
        Histogram::horizontal(&chart)
            .style(STAGE.filled())
            .margin(4)
            .data(
                secs.iter()
                    .enumerate()
                    .map(|(i, s)| (secs.len() - 1 - i, *s)),
            ),
    )?;
    root.present()?;
    Ok(())
}

/// Axis seconds as people read them: "250ms", "2.5s", "45s", "2.5m", "1.2h".
fn seconds(s: f64) -> String {
    match s {
        s if s >= 3_600.0 => format!("{:.1}h", s / 3_600.0),
        s if s >= 60.0 => format!("{:.1}m", s / 60.0),
        s if s >= 10.0 => format!("{s:.0}s"),
        s if s >= 1.0 => format!("{s:.1}s"),
        s => format!("{:.0}ms", s * 1000.0),
    }
}
