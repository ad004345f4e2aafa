//! A job's task graph as SVG, for the error record's page: tasks in columns by depth (a task
//! sits one column right of its deepest dependency), coloured by status, the tasks a
//! recovery would run again outlined. Drawn by hand rather than with plotters: it is boxes
//! and lines, and the names must stay text a test and a screen reader can find.

use std::collections::HashMap;
use std::fmt::Write;

use super::manual::GraphTask;
use crate::model::RerunReason;

/// Past this many tasks the graph is not drawn (the page lists the re-run set instead): a
/// picture of thousands of boxes says nothing.
pub const MAX_DRAWN: usize = 80;

const BOX: (i64, i64) = (160, 34);
const GAP: (i64, i64) = (48, 14);
const MARGIN: i64 = 8;
const NAME_CHARS: usize = 20;

pub fn task_graph_svg(tasks: &[GraphTask], rerun: &HashMap<&str, RerunReason>) -> String {
    if tasks.is_empty() || tasks.len() > MAX_DRAWN {
        return String::new();
    }
    let depth = depths(tasks);
    let mut rows: Vec<usize> = Vec::new();
    let mut place: HashMap<&str, (i64, i64)> = HashMap::new();
    for (task, &column) in tasks.iter().zip(&depth) {
        if rows.len() <= column {
            rows.resize(column + 1, 0);
        }
        let x = MARGIN + column as i64 * (BOX.0 + GAP.0);
        let y = MARGIN + rows[column] as i64 * (BOX.1 + GAP.1);
        rows[column] += 1;
        place.insert(task.name.as_str(), (x, y));
    }
    let width = MARGIN * 2 + rows.len() as i64 * (BOX.0 + GAP.0) - GAP.0;
    let height = MARGIN * 2 + *rows.iter().max().unwrap_or(&1) as i64 * (BOX.1 + GAP.1) - GAP.1;
    let mut svg = format!(
        r#"<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" class="task-graph" xmlns="http://www.w3.org/2000/svg">"#
    );
    for task in tasks {
        let (x, y) = place[task.name.as_str()];
        for dependency in &task.depends_on {
            let Some(&(dx, dy)) = place.get(dependency.as_str()) else {
                continue;
            };
            let (x1, y1) = (dx + BOX.0, dy + BOX.1 / 2);
            let (x2, y2) = (x, y + BOX.1 / 2);
            let mid = (x1 + x2) / 2;
            let class = if rerun.contains_key(task.name.as_str()) {
                "edge edge-rerun"
            } else {
                "edge"
            };
            let _ = write!(
                svg,
                r#"<path class="{class}" d="M{x1} {y1} C{mid} {y1} {mid} {y2} {x2} {y2}" fill="none"/>"#
            );
        }
    }
    for task in tasks {
        let (x, y) = place[task.name.as_str()];
        let reason = rerun.get(task.name.as_str());
        let name = escape(&task.name);
        let shown: String = if task.name.chars().count() > NAME_CHARS {
            let short: String = task.name.chars().take(NAME_CHARS - 1).collect();
            escape(&format!("{short}…"))
        } else {
            name.clone()
        };
        let status = task.status.as_str();
        let title = match reason {
            Some(reason) => format!("{name}: {status}, re-run ({})", reason.as_str()),
            None => format!("{name}: {status}"),
        };
        let rerun_attr = reason.map_or(String::new(), |r| format!(r#" data-rerun="{r}""#));
        let class = if reason.is_some() {
            format!("task task-{status} task-rerun")
        } else {
            format!("task task-{status}")
        };
        let _ = write!(
            svg,
            r#"<g class="{class}" data-task="{name}" data-status="{status}"{rerun_attr}><title>{title}</title><rect x="{x}" y="{y}" width="{}" height="{}" rx="6"/><text x="{}" y="{}">{shown}</text></g>"#,
            BOX.0,
            BOX.1,
            x + 10,
            y + BOX.1 / 2 + 5,
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Each task's column: 0 without dependencies, else one more than its deepest dependency.
/// A name the job does not have, or a cycle (the job's checks refuse both), counts as none.
fn depths(tasks: &[GraphTask]) -> Vec<usize> {
    let index: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    let mut depth: Vec<Option<usize>> = vec![None; tasks.len()];
    fn visit(
        i: usize,
        tasks: &[GraphTask],
        index: &HashMap<&str, usize>,
        depth: &mut Vec<Option<usize>>,
        on_path: &mut Vec<bool>,
    ) -> usize {
        if let Some(d) = depth[i] {
            return d;
        }
        if on_path[i] {
            return 0;
        }
        on_path[i] = true;
        let d = tasks[i]
            .depends_on
            .iter()
            .filter_map(|name| index.get(name.as_str()))
            .map(|&j| visit(j, tasks, index, depth, on_path) + 1)
            .max()
            .unwrap_or(0);
        on_path[i] = false;
        depth[i] = Some(d);
        d
    }
    let mut on_path = vec![false; tasks.len()];
    (0..tasks.len())
        .map(|i| visit(i, tasks, &index, &mut depth, &mut on_path))
        .collect()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TaskStatus;

    fn task(name: &str, status: TaskStatus, depends_on: &[&str]) -> GraphTask {
        GraphTask {
            name: name.into(),
            status,
            depends_on: depends_on.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn a_diamond_is_drawn_in_three_columns_with_the_rerun_set_marked() {
        use TaskStatus::*;
        let tasks = [
            task("a", Completed, &[]),
            task("b", Failed, &["a"]),
            task("c", Completed, &["a"]),
            task("d<&>", Cancelled, &["b", "c"]),
        ];
        assert_eq!(depths(&tasks), [0, 1, 1, 2]);
        let rerun = HashMap::from([
            ("b", RerunReason::Failed),
            ("d<&>", RerunReason::Downstream),
        ]);
        let svg = task_graph_svg(&tasks, &rerun);
        assert!(svg.contains(r#"data-task="b" data-status="failed" data-rerun="failed""#));
        assert!(svg.contains(r#"data-task="a" data-status="completed">"#));
        assert!(
            svg.contains(r#"data-task="d&lt;&amp;&gt;""#),
            "in attributes: {svg}"
        );
        assert!(svg.contains(">d&lt;&amp;&gt;</text>"), "and in text: {svg}");
        assert!(!svg.contains("d<&>"), "{svg}");
        assert_eq!(svg.matches("<path").count(), 4);
        assert_eq!(svg.matches("edge-rerun").count(), 3);
    }

    #[test]
    fn cycles_and_unknown_names_do_not_hang_and_big_graphs_are_not_drawn() {
        let tasks = [
            task("a", TaskStatus::Pending, &["b", "nowhere"]),
            task("b", TaskStatus::Pending, &["a"]),
        ];
        assert_eq!(depths(&tasks).len(), 2);
        let many: Vec<GraphTask> = (0..=MAX_DRAWN)
            .map(|i| task(&format!("t{i}"), TaskStatus::Pending, &[]))
            .collect();
        assert_eq!(task_graph_svg(&many, &HashMap::new()), "");
    }
}
