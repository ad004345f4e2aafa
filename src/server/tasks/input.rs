//! The bodies of `POST /task-operations`, `{action, data}` as seed 001 prints them, parsed
//! into validating newtypes (`server::input`), and the checks that span a call's items (a
//! task graph has no cycle, a name is updated once).

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use uuid::Uuid;

use crate::model::{Permission, TaskCall, TaskStatus, JOB_LIMITS};
use crate::server::dispatch::input::{
    ClaimRequest, CompleteRequest, FailRequest, HeartbeatRequest,
};
use crate::server::input::{check_batch, first_duplicate, Counter, InvalidInput, Message, Name};
use crate::server::jobs::input::ErrorDetails;
use crate::server::monitoring::input::ReportMetrics;

#[derive(Debug, Deserialize)]
#[serde(tag = "action", content = "data", rename_all = "camelCase")]
pub enum TaskOperation {
    AddTasks(NewTasks),
    UpdateTasks(TaskUpdates),
    RecordArticles(NewArticles),
    ClaimTasks(ClaimRequest),
    Heartbeat(HeartbeatRequest),
    CompleteTasks(CompleteRequest),
    FailTasks(FailRequest),
    ReportMetrics(ReportMetrics),
}

impl TaskOperation {
    /// The action, as serde reads it; its name is also the audit row's action.
    pub fn call(&self) -> TaskCall {
        match self {
            TaskOperation::AddTasks(_) => TaskCall::AddTasks,
            TaskOperation::UpdateTasks(_) => TaskCall::UpdateTasks,
            TaskOperation::RecordArticles(_) => TaskCall::RecordArticles,
            TaskOperation::ClaimTasks(_) => TaskCall::ClaimTasks,
            TaskOperation::Heartbeat(_) => TaskCall::Heartbeat,
            TaskOperation::CompleteTasks(_) => TaskCall::CompleteTasks,
            TaskOperation::FailTasks(_) => TaskCall::FailTasks,
            TaskOperation::ReportMetrics(_) => TaskCall::ReportMetrics,
        }
    }

    pub fn name(&self) -> &'static str {
        self.call().as_str()
    }

    /// Tasks are the pipeline's own work: whoever drives the job or runs its tasks (a worker
    /// token) may.
    pub fn permission(&self) -> Permission {
        Permission::ReportOnJobs
    }

    /// The one job a pipeline's call is about; the worker protocol's calls span jobs.
    pub fn job_id(&self) -> Option<Uuid> {
        match self {
            TaskOperation::AddTasks(new) => Some(new.job_id),
            TaskOperation::UpdateTasks(updates) => Some(updates.job_id),
            TaskOperation::RecordArticles(batch) => Some(batch.job_id),
            TaskOperation::ReportMetrics(report) => Some(report.job_id),
            _ => None,
        }
    }

    /// Whether success is `201 Created`.
    pub fn creates(&self) -> bool {
        matches!(
            self,
            TaskOperation::AddTasks(_) | TaskOperation::RecordArticles(_)
        )
    }
}

/// A task's payload: a JSON object of at most `JOB_LIMITS.payload_bytes` when written out.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(try_from = "serde_json::Map<String, serde_json::Value>")]
pub struct Payload(serde_json::Map<String, serde_json::Value>);

impl TryFrom<serde_json::Map<String, serde_json::Value>> for Payload {
    type Error = String;

    fn try_from(value: serde_json::Map<String, serde_json::Value>) -> Result<Self, String> {
        let size = serde_json::to_vec(&value).map_or(usize::MAX, |bytes| bytes.len());
        if size > JOB_LIMITS.payload_bytes {
            Err(format!(
                "at most {} bytes of JSON, got {size}",
                JOB_LIMITS.payload_bytes
            ))
        } else {
            Ok(Payload(value))
        }
    }
}

impl Payload {
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::Value::Object(self.0.clone())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    pub name: Name,
    #[serde(default)]
    pub payload: Option<Payload>,
    #[serde(default)]
    pub depends_on: Vec<Name>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTasks {
    pub job_id: Uuid,
    pub tasks: Vec<NewTask>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskUpdate {
    pub name: Name,
    pub status: Option<TaskStatus>,
    pub articles: Option<Counter>,
    pub clusters: Option<Counter>,
    pub message: Option<Message>,
    pub error_details: Option<ErrorDetails>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskUpdates {
    pub job_id: Uuid,
    pub tasks: Vec<TaskUpdate>,
}

impl TaskUpdates {
    pub fn check(&self) -> Result<(), InvalidInput> {
        check_batch("data.tasks", self.tasks.len(), JOB_LIMITS.batch_items)?;
        if let Some(dup) = first_duplicate(self.tasks.iter().map(|t| t.name.as_str())) {
            return Err(InvalidInput::new(
                "data.tasks",
                format!("task {dup:?} is updated twice in one call"),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Article {
    pub feed_id: Name,
    pub original_user_id: Name,
    pub genre: Name,
    pub article_id: Option<Name>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewArticles {
    pub job_id: Uuid,
    pub articles: Vec<Article>,
}

impl NewArticles {
    pub fn check(&self) -> Result<(), InvalidInput> {
        check_batch("data.articles", self.articles.len(), JOB_LIMITS.batch_items)
    }
}

/// The names of a job's existing tasks that a call of new `tasks` must know about: the
/// new names themselves (to refuse a clash) and the dependencies they name outside the
/// call. Nothing else of the graph matters: an existing task cannot depend on a new one,
/// so a cycle can only run through the new tasks.
pub fn names_to_look_up(tasks: &[NewTask]) -> Vec<&str> {
    let mut names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    let new: HashSet<&str> = names.iter().copied().collect();
    for dep in tasks.iter().flat_map(|t| &t.depends_on) {
        if !new.contains(dep.as_str()) && !names.contains(&dep.as_str()) {
            names.push(dep.as_str());
        }
    }
    names
}

/// New tasks: at most `JOB_LIMITS.batch_items` per call, unique names none of which the job
/// has (`existing`: those of [`names_to_look_up`] the job has), dependencies on tasks that
/// exist (new or existing), and no cycle.
pub fn check_tasks(
    field: &'static str,
    tasks: &[NewTask],
    existing: &HashSet<String>,
) -> Result<(), InvalidInput> {
    if tasks.len() > JOB_LIMITS.batch_items {
        return check_batch(field, tasks.len(), JOB_LIMITS.batch_items);
    }
    if let Some(dup) = first_duplicate(tasks.iter().map(|t| t.name.as_str())) {
        return Err(InvalidInput::new(
            field,
            format!("task {dup:?} is listed twice"),
        ));
    }
    let mut graph: HashMap<&str, Vec<&str>> = HashMap::new();
    for task in tasks {
        if existing.contains(task.name.as_str()) {
            return Err(InvalidInput::new(
                field,
                format!("the job already has a task {:?}", task.name.as_str()),
            ));
        }
        graph.insert(
            task.name.as_str(),
            task.depends_on.iter().map(Name::as_str).collect(),
        );
    }
    for task in tasks {
        for dep in &task.depends_on {
            if !graph.contains_key(dep.as_str()) && !existing.contains(dep.as_str()) {
                return Err(InvalidInput::new(
                    field,
                    format!(
                        "task {:?} depends on {:?}, which the job does not have",
                        task.name.as_str(),
                        dep.as_str()
                    ),
                ));
            }
        }
    }
    if let Some(cycle) = find_cycle(&graph) {
        return Err(InvalidInput::new(
            field,
            format!("the dependencies form a cycle: {}", cycle.join(" → ")),
        ));
    }
    Ok(())
}

/// A cycle in the dependency graph, as the names along it, found by depth-first search.
/// Dependencies outside `graph` (existing tasks) are leaves.
fn find_cycle<'a>(graph: &HashMap<&'a str, Vec<&'a str>>) -> Option<Vec<&'a str>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit<'a>(
        node: &'a str,
        graph: &HashMap<&'a str, Vec<&'a str>>,
        marks: &mut HashMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Visiting) => {
                let start = path.iter().position(|n| *n == node).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(node);
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node, Mark::Visiting);
        path.push(node);
        for dep in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(dep, graph, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(node, Mark::Done);
        None
    }
    let mut marks = HashMap::new();
    let mut names: Vec<&str> = graph.keys().copied().collect();
    names.sort_unstable();
    names
        .into_iter()
        .find_map(|name| visit(name, graph, &mut marks, &mut Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(name: &str, deps: &[&str]) -> NewTask {
        NewTask {
            name: Name::for_test(name),
            payload: None,
            depends_on: deps.iter().map(|d| Name::for_test(d)).collect(),
        }
    }

    fn none() -> HashSet<String> {
        HashSet::new()
    }

    #[test]
    fn a_cycle_is_found_and_named() {
        let tasks = [task("a", &["c"]), task("b", &["a"]), task("c", &["b"])];
        let error = check_tasks("data.tasks", &tasks, &none()).unwrap_err();
        assert!(error.to_string().contains("cycle"), "{error}");
        let tasks = [task("a", &[]), task("b", &["a"]), task("c", &["a", "b"])];
        check_tasks("data.tasks", &tasks, &none()).unwrap();
        let error = check_tasks("data.tasks", &[task("a", &["a"])], &none()).unwrap_err();
        assert!(error.to_string().contains("a → a"), "{error}");
    }

    #[test]
    fn only_the_names_a_call_mentions_are_looked_up() {
        let tasks = [task("b", &["a", "x"]), task("c", &["b", "a"])];
        assert_eq!(names_to_look_up(&tasks), ["b", "c", "a", "x"]);
        let existing: HashSet<String> = ["a".to_string()].into();
        let error = check_tasks("data.tasks", &tasks, &existing).unwrap_err();
        assert!(error.to_string().contains("depends on \"x\""), "{error}");
        let existing: HashSet<String> = ["a".to_string(), "x".to_string()].into();
        check_tasks("data.tasks", &tasks, &existing).unwrap();
        let existing: HashSet<String> = ["c".to_string()].into();
        let error = check_tasks("data.tasks", &tasks, &existing).unwrap_err();
        assert!(
            error.to_string().contains("already has a task \"c\""),
            "{error}"
        );
    }

    #[test]
    fn a_payload_has_a_size_bound() {
        let big = "x".repeat(JOB_LIMITS.payload_bytes);
        let body = serde_json::json!({ "name": "t", "payload": { "blob": big } });
        let error = serde_json::from_value::<NewTask>(body)
            .unwrap_err()
            .to_string();
        assert!(error.contains("at most 16384 bytes"), "{error}");
        let body = serde_json::json!({ "name": "t", "payload": { "blob": "small" } });
        assert!(serde_json::from_value::<NewTask>(body)
            .unwrap()
            .payload
            .is_some());
    }
}
