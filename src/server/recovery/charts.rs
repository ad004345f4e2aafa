//! The recovery page's two plotters charts: errors per hour of the largest error types over
//! the period, and the share of each type's closed records that recovered.

use chrono::{DateTime, Duration, Utc};
use plotters::prelude::*;

use crate::model::TypeLine;
use crate::server::svg_chart::{render, Drawn};

/// Drawn small, so that in a half-width card the labels still read.
const SIZE: (u32, u32) = (480, 260);
const GRID: RGBColor = RGBColor(229, 231, 235);
const TEXT: RGBColor = RGBColor(75, 85, 99);
const RECOVERED: RGBColor = RGBColor(22, 163, 74);
/// One colour per drawn type, in the order of their counts; the rest are summed as "other".
const SERIES: [RGBColor; 6] = [
    RGBColor(220, 38, 38),
    RGBColor(37, 99, 235),
    RGBColor(217, 119, 6),
    RGBColor(124, 58, 237),
    RGBColor(8, 145, 178),
    RGBColor(107, 114, 128),
];

/// Errors per hour: the hours of the period in order, each type's count in them.
pub struct HourlyErrors {
    pub start: DateTime<Utc>,
    pub hours: usize,
    /// (type, count per hour), largest first.
    pub series: Vec<(String, Vec<i64>)>,
}

impl HourlyErrors {
    /// From `(hour, type, errors)` rows: the `SERIES.len() - 1` largest types, the rest summed.
    pub fn from_rows(
        start: DateTime<Utc>,
        hours: usize,
        rows: &[(DateTime<Utc>, String, i64)],
    ) -> Self {
        let mut totals: Vec<(String, i64)> = Vec::new();
        for (_, error_type, errors) in rows {
            match totals.iter_mut().find(|(t, _)| t == error_type) {
                Some((_, n)) => *n += errors,
                None => totals.push((error_type.clone(), *errors)),
            }
        }
        totals.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let named = SERIES.len() - 1;
        let mut series: Vec<(String, Vec<i64>)> = totals
            .iter()
            .take(named)
            .map(|(t, _)| (t.clone(), vec![0; hours]))
            .collect();
        let mut other = vec![0; hours];
        for (hour, error_type, errors) in rows {
            let i = (*hour - start).num_hours();
            if i < 0 || i as usize >= hours {
                continue;
            }
            match series.iter_mut().find(|(t, _)| t == error_type) {
                Some((_, counts)) => counts[i as usize] += errors,
                None => other[i as usize] += errors,
            }
        }
        if totals.len() > named {
            series.push(("other".into(), other));
        }
        Self {
            start,
            hours,
            series,
        }
    }
}

pub fn errors_per_hour_svg(errors: &HourlyErrors) -> String {
    render("errors per hour", SIZE, |svg| errors_per_hour(svg, errors))
}

fn errors_per_hour<'a>(svg: &'a mut String, errors: &HourlyErrors) -> Drawn<'a> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let end = errors.start + Duration::hours(errors.hours as i64);
    let most = errors
        .series
        .iter()
        .flat_map(|(_, counts)| counts.iter().copied())
        .max()
        .unwrap_or(0);
    let y_max = (most + most / 8).max(4);
    let format = if errors.hours <= 48 { "%H:%M" } else { "%m-%d" };
    let mut chart = ChartBuilder::on(&root)
        .margin(10)
        .x_label_area_size(26)
        .y_label_area_size(44)
        .build_cartesian_2d(errors.start..end, 0i64..y_max)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .bold_line_style(GRID)
        .axis_style(GRID)
        .x_labels(7)
        .y_labels(5)
        .x_label_formatter(&|t: &DateTime<Utc>| t.format(format).to_string())
        .label_style(("sans-serif", 14, &TEXT))
        .draw()?;
    for (i, (name, counts)) in errors.series.iter().enumerate() {
        let color = SERIES[i.min(SERIES.len() - 1)];
        let points = counts
            .iter()
            .enumerate()
            .map(|(h, n)| (errors.start + Duration::hours(h as i64), *n));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(3))
            });
    }
    if !errors.series.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(GRID)
            .label_font(("sans-serif", 14, &TEXT))
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// The types with a recovery rate, at most 10, largest count first.
pub fn recovery_rate_svg(types: &[TypeLine]) -> String {
    let rated: Vec<(&str, f64)> = types
        .iter()
        .filter_map(|t| t.recovery_rate.map(|r| (t.error_type.as_str(), r)))
        .take(10)
        .collect();
    if rated.is_empty() {
        return String::new();
    }
    render("recovery rate", SIZE, |svg| recovery_rate(svg, &rated))
}

fn recovery_rate<'a>(svg: &'a mut String, rated: &[(&str, f64)]) -> Drawn<'a> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let n = rated.len();
    let mut chart = ChartBuilder::on(&root)
        .margin(10)
        .x_label_area_size(26)
        .y_label_area_size(150)
        .build_cartesian_2d(0.0..100.0, (0..n).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .bold_line_style(GRID)
        .axis_style(GRID)
        .x_labels(6)
        .y_labels(n)
        .x_label_formatter(&|p| format!("{p:.0} %"))
        .y_label_formatter(&|v| match v {
            // Segments count from the bottom; the largest type goes on top.
            SegmentValue::CenterOf(i) if *i < n => rated[n - 1 - i].0.to_string(),
            _ => String::new(),
        })
        .label_style(("sans-serif", 14, &TEXT))
        .draw()?;
    chart.draw_series(
        Histogram::horizontal(&chart)
            .style(RECOVERED.filled())
            .margin(4)
            .data(
                rated
                    .iter()
                    .enumerate()
                    .map(|(i, (_, rate))| (n - 1 - i, rate * 100.0)),
            ),
    )?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_types_get_a_line_and_the_rest_are_summed() {
        let start: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        let at = |h| start + Duration::hours(h);
        let mut rows = vec![(at(0), "BIG".to_string(), 50), (at(1), "BIG".into(), 10)];
        for (i, name) in ["A", "B", "C", "D", "E", "F"].iter().enumerate() {
            rows.push((at(2), name.to_string(), 10 - i as i64));
        }
        rows.push((at(99), "BIG".into(), 1_000));
        let hourly = HourlyErrors::from_rows(start, 3, &rows);
        let names: Vec<&str> = hourly.series.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["BIG", "A", "B", "C", "D", "other"]);
        assert_eq!(
            hourly.series[0].1,
            [50, 10, 0],
            "outside the period is left out"
        );
        assert_eq!(hourly.series[5].1, [0, 0, 6 + 5], "E and F");
        assert!(errors_per_hour_svg(&hourly).starts_with("<svg viewBox"));
    }
}
