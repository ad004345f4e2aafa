//! The bodies of `POST /job-operations` and `POST /task-operations`, `{action, data}` as
//! seed 001 prints them, parsed by serde into validating newtypes (`http::envelope`), so a
//! service function only ever sees valid values. Checks that span fields (a batch job
//! needs its product, a task graph has no cycle) are in [`NewJob::check`] and friends.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use uuid::Uuid;

use super::JobError;
use crate::model::{JobKind, JobStatus, TaskStatus, JOB_LIMITS, RECAP_STAGES};

#[derive(Debug, Deserialize)]
#[serde(tag = "action", content = "data", rename_all = "camelCase")]
pub enum JobOperation {
    CreateJob(NewJob),
    UpdateBatchJob(JobUpdate),
    DeleteJob(DeleteJob),
    GetJobInfo(JobRef),
    PauseJob(JobCommand),
    ResumeJob(JobCommand),
    CancelJob(JobCommand),
}

#[derive(Debug, Deserialize)]
#[serde(tag = "action", content = "data", rename_all = "camelCase")]
pub enum TaskOperation {
    AddTasks(NewTasks),
    UpdateTasks(TaskUpdates),
    RecordArticles(NewArticles),
}

/// An id, code, phase or task name: 1 to `JOB_LIMITS.name_chars` characters, not blank.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Name(String);

impl TryFrom<String> for Name {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        if value.trim().is_empty() {
            Err("must not be empty".into())
        } else if value.chars().count() > JOB_LIMITS.name_chars {
            Err(format!("longer than {} characters", JOB_LIMITS.name_chars))
        } else {
            Ok(Name(value))
        }
    }
}

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text up to `N` characters.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Text<const N: usize>(String);

impl<const N: usize> TryFrom<String> for Text<N> {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        if value.chars().count() > N {
            Err(format!("longer than {N} characters"))
        } else {
            Ok(Text(value))
        }
    }
}

impl<const N: usize> Text<N> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub type Message = Text<{ JOB_LIMITS.message_chars }>;
pub type Stack = Text<{ JOB_LIMITS.stack_chars }>;

/// An integer within a documented range; the range is in the error message.
macro_rules! bounded {
    ($name:ident, $ty:ty, $range:expr) => {
        #[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
        #[serde(try_from = "i64")]
        pub struct $name($ty);

        impl TryFrom<i64> for $name {
            type Error = String;

            fn try_from(value: i64) -> Result<Self, String> {
                let (min, max) = $range;
                if (min as i64..=max as i64).contains(&value) {
                    Ok($name(value as $ty))
                } else {
                    Err(format!("must be between {min} and {max}, got {value}"))
                }
            }
        }

        impl $name {
            pub fn get(self) -> $ty {
                self.0
            }
        }
    };
}

bounded!(Priority, i16, JOB_LIMITS.priority);
bounded!(MaxParallelTasks, i32, JOB_LIMITS.max_parallel_tasks);
bounded!(MaxAttempts, i32, JOB_LIMITS.max_attempts);
bounded!(RetryInterval, i32, JOB_LIMITS.retry_interval);
bounded!(MaxMemory, i64, JOB_LIMITS.max_memory);
bounded!(Count, i32, (0, i32::MAX));
bounded!(Counter, i64, (0, i64::MAX));

/// CPU cores: a number from 0 (no limit) up to `JOB_LIMITS.max_cpu`.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub struct MaxCpu(f64);

impl TryFrom<f64> for MaxCpu {
    type Error = String;

    fn try_from(value: f64) -> Result<Self, String> {
        let (min, max) = JOB_LIMITS.max_cpu;
        if value.is_finite() && (min..=max).contains(&value) {
            Ok(MaxCpu(value))
        } else {
            Err(format!("must be between {min} and {max}, got {value}"))
        }
    }
}

impl MaxCpu {
    pub fn get(self) -> f64 {
        self.0
    }
}

/// 0 to 100.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub struct Percent(f64);

impl TryFrom<f64> for Percent {
    type Error = String;

    fn try_from(value: f64) -> Result<Self, String> {
        if value.is_finite() && (0.0..=100.0).contains(&value) {
            Ok(Percent(value))
        } else {
            Err(format!("must be between 0 and 100, got {value}"))
        }
    }
}

impl Percent {
    pub fn get(self) -> f64 {
        self.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerSource {
    System,
    User,
}

impl TriggerSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerSource::System => "system",
            TriggerSource::User => "user",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfigInput {
    pub max_attempts: MaxAttempts,
    pub retry_interval: RetryInterval,
    pub retry_on_errors: Vec<Name>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceLimitsInput {
    pub max_memory: MaxMemory,
    pub max_cpu: MaxCpu,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    pub name: Name,
    #[serde(default)]
    pub payload: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub depends_on: Vec<Name>,
}

/// `createJob`. Seed 001's fields, plus `kind`, `user_id`, `trigger_source`, `tasks` and
/// `stages`; every optional field has the default in `JOB_LIMITS`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewJob {
    pub product_id: Option<Name>,
    pub sending_group_id: Option<Name>,
    pub user_id: Option<Name>,
    pub priority: Option<Priority>,
    pub max_parallel_tasks: Option<MaxParallelTasks>,
    pub retry_config: Option<RetryConfigInput>,
    pub resource_limits: Option<ResourceLimitsInput>,
    pub kind: Option<JobKind>,
    pub trigger_source: Option<TriggerSource>,
    #[serde(default)]
    pub tasks: Vec<NewTask>,
    pub stages: Option<Vec<Name>>,
}

impl NewJob {
    pub fn kind(&self) -> JobKind {
        self.kind.unwrap_or(JobKind::Batch)
    }

    /// The job's stages: a recap job always has seed 002's eight.
    pub fn stages(&self) -> Vec<String> {
        match (self.kind(), &self.stages) {
            (JobKind::Recap, _) => RECAP_STAGES.map(String::from).to_vec(),
            (JobKind::Batch, Some(stages)) => stages.iter().map(|s| s.0.clone()).collect(),
            (JobKind::Batch, None) => Vec::new(),
        }
    }

    pub fn check(&self) -> Result<(), JobError> {
        if self.kind() == JobKind::Batch {
            if self.product_id.is_none() {
                return Err(JobError::invalid(
                    "data.product_id",
                    "product_id is required",
                ));
            }
            if self.sending_group_id.is_none() {
                return Err(JobError::invalid(
                    "data.sending_group_id",
                    "sending_group_id is required",
                ));
            }
        } else if self.stages.is_some() {
            return Err(JobError::invalid(
                "data.stages",
                "a recap job always has seed 002's eight stages; leave stages out",
            ));
        }
        if let Some(stages) = &self.stages {
            if let Some(dup) = first_duplicate(stages.iter().map(|s| s.as_str())) {
                return Err(JobError::invalid(
                    "data.stages",
                    format!("stage {dup:?} is listed twice"),
                ));
            }
        }
        check_tasks("data.tasks", &self.tasks, &HashMap::new())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailedStatusInput {
    pub current_phase: Name,
    pub progress_percentage: Percent,
    pub active_tasks: Count,
    pub error_count: Count,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetails {
    pub code: Name,
    pub message: Message,
    pub stack: Option<Stack>,
}

/// `updateBatchJob`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobUpdate {
    pub job_id: Uuid,
    pub status: Option<JobStatus>,
    pub detailed_status: Option<DetailedStatusInput>,
    pub error_details: Option<ErrorDetails>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteJob {
    pub job_id: Uuid,
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRef {
    pub job_id: Uuid,
}

/// `pauseJob`, `resumeJob`, `cancelJob`: an operator's command, with an optional reason
/// for the event trail.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobCommand {
    pub job_id: Uuid,
    pub reason: Option<Message>,
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
    pub fn check(&self) -> Result<(), JobError> {
        check_batch("data.tasks", self.tasks.len())?;
        if let Some(dup) = first_duplicate(self.tasks.iter().map(|t| t.name.as_str())) {
            return Err(JobError::invalid(
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
    pub fn check(&self) -> Result<(), JobError> {
        check_batch("data.articles", self.articles.len())
    }
}

fn check_batch(field: &'static str, len: usize) -> Result<(), JobError> {
    if len == 0 {
        Err(JobError::invalid(field, "must not be empty"))
    } else if len > JOB_LIMITS.batch_items {
        Err(JobError::invalid(
            field,
            format!("at most {} per call, got {len}", JOB_LIMITS.batch_items),
        ))
    } else {
        Ok(())
    }
}

fn first_duplicate<'a>(names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = HashSet::new();
    names.into_iter().find(|name| !seen.insert(*name))
}

/// New tasks: unique names, dependencies on tasks that exist (new or `existing`, which maps
/// a task's name to its dependencies), and no cycle.
pub fn check_tasks(
    field: &'static str,
    tasks: &[NewTask],
    existing: &HashMap<String, Vec<String>>,
) -> Result<(), JobError> {
    if tasks.len() > JOB_LIMITS.batch_items {
        return check_batch(field, tasks.len());
    }
    if let Some(dup) = first_duplicate(tasks.iter().map(|t| t.name.as_str())) {
        return Err(JobError::invalid(
            field,
            format!("task {dup:?} is listed twice"),
        ));
    }
    let mut graph: HashMap<&str, Vec<&str>> = existing
        .iter()
        .map(|(name, deps)| (name.as_str(), deps.iter().map(String::as_str).collect()))
        .collect();
    for task in tasks {
        if existing.contains_key(task.name.as_str()) {
            return Err(JobError::invalid(
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
            if !graph.contains_key(dep.as_str()) {
                return Err(JobError::invalid(
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
        return Err(JobError::invalid(
            field,
            format!("the dependencies form a cycle: {}", cycle.join(" → ")),
        ));
    }
    Ok(())
}

/// A cycle in the dependency graph, as the names along it, found by depth-first search.
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
    use crate::server::http::envelope::parse;

    fn task(name: &str, deps: &[&str]) -> NewTask {
        NewTask {
            name: Name(name.into()),
            payload: None,
            depends_on: deps.iter().map(|d| Name(d.to_string())).collect(),
        }
    }

    #[test]
    fn a_cycle_is_found_and_named() {
        let tasks = [task("a", &["c"]), task("b", &["a"]), task("c", &["b"])];
        let error = check_tasks("data.tasks", &tasks, &HashMap::new()).unwrap_err();
        assert!(error.to_string().contains("cycle"), "{error}");
        let tasks = [task("a", &[]), task("b", &["a"]), task("c", &["a", "b"])];
        check_tasks("data.tasks", &tasks, &HashMap::new()).unwrap();
        let error = check_tasks("data.tasks", &[task("a", &["a"])], &HashMap::new()).unwrap_err();
        assert!(error.to_string().contains("a → a"), "{error}");
    }

    #[test]
    fn seed_bodies_parse() {
        let op: JobOperation = parse(
            br#"{"action":"createJob","data":{"product_id":"p","sending_group_id":"g","priority":3,
                "max_parallel_tasks":2,"retry_config":{"max_attempts":3,"retry_interval":60,"retry_on_errors":["TIMEOUT"]},
                "resource_limits":{"max_memory":512,"max_cpu":1.5}}}"#,
        )
        .unwrap();
        let JobOperation::CreateJob(job) = op else {
            panic!("not createJob")
        };
        job.check().unwrap();
        assert_eq!(job.priority.unwrap().get(), 3);
    }
}
