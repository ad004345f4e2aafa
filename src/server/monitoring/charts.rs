//! The job page's resource charts: cpu, memory and throughput over the job's life so far,
//! from `getJobMetrics` itself (so the page and the API agree), drawn on the server with
//! plotters. The page is a live region, so the charts grow as samples arrive.

use chrono::{DateTime, Duration, Utc};
use plotters::prelude::*;
use sqlx::PgPool;
use uuid::Uuid;

use super::input::GetJobMetrics;
use super::metrics::{get_job_metrics, Bucket};
use crate::model::{JobChart, JobCharts, JobView, MetricInterval, MetricName};
use crate::server::jobs::JobError;
use crate::server::svg_chart::{render, Drawn};

/// Buckets a chart shows at most: the shortest interval that fits the job's life in them.
const MAX_POINTS: i64 = 120;
const SIZE: (u32, u32) = (720, 200);
const LINE: RGBColor = RGBColor(37, 99, 235);
const PEAK: RGBColor = RGBColor(147, 197, 253);
const GRID: RGBColor = RGBColor(229, 231, 235);

/// The interval for a span: the shortest whose buckets fit in `MAX_POINTS`.
pub fn interval_for(span: Duration) -> MetricInterval {
    MetricInterval::ALL
        .into_iter()
        .find(|i| span.num_seconds() / i.seconds() < MAX_POINTS)
        .unwrap_or(MetricInterval::Day)
}

pub async fn job_charts(
    pool: &PgPool,
    job: &JobView,
    now: DateTime<Utc>,
) -> Result<JobCharts, JobError> {
    let start = job.started_at.unwrap_or(job.created_at);
    let end = job
        .finished_at
        .unwrap_or(now)
        .max(start + Duration::minutes(1));
    let interval = interval_for(end - start);
    let request = GetJobMetrics {
        job_ids: vec![job.id],
        metrics: vec![MetricName::Cpu, MetricName::Memory, MetricName::Throughput],
        interval: Some(interval),
        start_time: Some(start),
        end_time: Some(end),
    };
    let mut answer = get_job_metrics(pool, request).await?;
    let mut series = answer.jobs.pop().map(|j| j.metrics).unwrap_or_default();
    let mut chart = |metric: MetricName| {
        let buckets = series
            .remove(metric.as_str())
            .map(|s| s.buckets)
            .unwrap_or_default();
        chart_of(job.id, metric, (start, end), &buckets)
    };
    Ok(JobCharts {
        interval: interval.as_str().to_string(),
        cpu: chart(MetricName::Cpu),
        memory: chart(MetricName::Memory),
        throughput: chart(MetricName::Throughput),
    })
}

/// The x axis spans the job's life so far (`span`), so the line moves across as it runs.
fn chart_of(
    job_id: Uuid,
    metric: MetricName,
    span: (DateTime<Utc>, DateTime<Utc>),
    buckets: &[Bucket],
) -> JobChart {
    let points = buckets.iter().filter(|b| b.count > 0).count();
    let svg = if points == 0 {
        String::new()
    } else {
        render(&format!("{metric} of job {job_id}"), SIZE, |svg| {
            draw(svg, metric, span, buckets)
        })
    };
    JobChart {
        points,
        samples: buckets.iter().map(|b| b.count).sum(),
        svg,
    }
}

/// Small scales get a decimal, so the axis does not read "0%, 0%, 1%".
fn unit_label(metric: MetricName, value: f64, y_max: f64) -> String {
    let digits = if y_max < 10.0 { 1 } else { 0 };
    match metric {
        MetricName::Cpu => format!("{value:.digits$}%"),
        MetricName::Memory => format!("{value:.digits$} MB"),
        _ => format!("{value:.1}/s"),
    }
}

fn draw<'a>(
    svg: &'a mut String,
    metric: MetricName,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    buckets: &[Bucket],
) -> Drawn<'a> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    // Buckets start on their interval's edge, which may come before the job started.
    let from = buckets.first().map_or(from, |b| b.start.min(from));
    let to = to.max(from + Duration::minutes(1));
    let top = buckets.iter().filter_map(|b| b.max).fold(0.0_f64, f64::max);
    let y_max = if top > 0.0 { top * 1.15 } else { 1.0 };
    let time_format = if to - from < Duration::hours(24) {
        "%H:%M"
    } else {
        "%m-%d %H:%M"
    };
    let mut chart = ChartBuilder::on(&root)
        .margin(10)
        .x_label_area_size(26)
        .y_label_area_size(64)
        .build_cartesian_2d(from..to, 0.0..y_max)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .bold_line_style(GRID)
        .x_labels(6)
        .y_labels(4)
        .x_label_formatter(&|t: &DateTime<Utc>| t.format(time_format).to_string())
        .y_label_formatter(&|v: &f64| unit_label(metric, *v, y_max))
        .label_style(("sans-serif", 12))
        .draw()?;
    // A gap in the samples is a gap in the line.
    for run in buckets
        .split(|b| b.count == 0)
        .filter(|run| !run.is_empty())
    {
        let peak = run.iter().filter_map(|b| Some((b.start, b.max?)));
        chart.draw_series(LineSeries::new(peak, PEAK.stroke_width(1)))?;
        let average = run.iter().filter_map(|b| Some((b.start, b.avg?)));
        chart.draw_series(LineSeries::new(average, LINE.stroke_width(2)))?;
        if run.len() == 1 {
            let only = run.iter().filter_map(|b| Some((b.start, b.avg?)));
            chart.draw_series(only.map(|p| Circle::new(p, 3, LINE.filled())))?;
        }
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_the_shortest_that_fits() {
        assert_eq!(interval_for(Duration::minutes(30)), MetricInterval::Minute);
        assert_eq!(
            interval_for(Duration::hours(3)),
            MetricInterval::FiveMinutes
        );
        assert_eq!(
            interval_for(Duration::hours(20)),
            MetricInterval::FifteenMinutes
        );
        assert_eq!(interval_for(Duration::days(4)), MetricInterval::Hour);
        assert_eq!(interval_for(Duration::days(400)), MetricInterval::Day);
    }
}
