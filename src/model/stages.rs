//! Where each stage of a job's pipeline is, decided once for the job page and the Recap
//! dashboard from the job's declared stages, its stage runs (`job_phases`) and its status.

use chrono::{DateTime, Utc};

use super::{JobPhaseView, JobStatus, StageProgress, StageState};

/// One entry per declared stage (or, for a job that declared none, per stage it reported,
/// in the order first reported). `usual_ms` is left for the caller to fill.
///
/// A stage that never ran is to come; the one a failed run entered last failed, whether or
/// not its run was closed; a run still open while the job is unfinished is running; any
/// other run is done.
pub fn stage_progress(
    declared: &[String],
    runs: &[JobPhaseView],
    status: JobStatus,
    now: DateTime<Utc>,
) -> Vec<StageProgress> {
    let mut names: Vec<String> = declared.to_vec();
    if names.is_empty() {
        for run in runs {
            if !names.contains(&run.name) {
                names.push(run.name.clone());
            }
        }
    }
    let last_entered = runs.last().map(|run| run.name.as_str());
    names
        .into_iter()
        .map(|name| {
            let run = runs.iter().rfind(|run| run.name == name);
            let state = match run {
                None => StageState::Pending,
                Some(_) if status == JobStatus::Failed && last_entered == Some(name.as_str()) => {
                    StageState::Failed
                }
                Some(run) if run.finished_at.is_none() && !status.is_finished() => {
                    StageState::Running
                }
                Some(_) => StageState::Done,
            };
            StageProgress {
                started_at: run.map(|run| run.started_at),
                elapsed_ms: run.map(|run| {
                    (run.finished_at.unwrap_or(now) - run.started_at)
                        .num_milliseconds()
                        .max(0)
                }),
                usual_ms: None,
                name,
                state,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    fn run(name: &str, from: i64, to: Option<i64>) -> JobPhaseView {
        JobPhaseView {
            name: name.into(),
            started_at: at(from),
            finished_at: to.map(at),
        }
    }

    fn states(stages: &[StageProgress]) -> Vec<(&str, StageState)> {
        stages.iter().map(|s| (s.name.as_str(), s.state)).collect()
    }

    #[test]
    fn each_stage_is_to_come_running_done_or_failed() {
        use StageState::*;
        let declared: Vec<String> = ["Fetch", "Dedup", "Persist"].map(String::from).to_vec();
        let live = [run("Fetch", 0, Some(10)), run("Dedup", 10, None)];
        let got = stage_progress(&declared, &live, JobStatus::Running, at(25));
        assert_eq!(
            states(&got),
            [("Fetch", Done), ("Dedup", Running), ("Persist", Pending)]
        );
        assert_eq!(got[1].elapsed_ms, Some(15_000));
        assert_eq!(got[2].started_at, None);

        // A failed run's last stage failed, closed or not; the stages before it are done.
        let closed = [run("Fetch", 0, Some(10)), run("Dedup", 10, Some(12))];
        for runs in [&live[..], &closed[..]] {
            let got = stage_progress(&declared, runs, JobStatus::Failed, at(30));
            assert_eq!(
                states(&got),
                [("Fetch", Done), ("Dedup", Failed), ("Persist", Pending)]
            );
        }
        // Paused: the open stage is still the one running. Cancelled: nothing runs.
        let got = stage_progress(&declared, &live, JobStatus::Paused, at(30));
        assert_eq!(got[1].state, Running);
        let got = stage_progress(&declared, &live, JobStatus::Cancelled, at(30));
        assert_eq!(got[1].state, Done);
        assert_eq!(
            got[0].elapsed_ms,
            Some(Duration::seconds(10).num_milliseconds())
        );
    }

    #[test]
    fn a_job_without_declared_stages_shows_the_ones_it_reported_once_each() {
        use StageState::*;
        let runs = [
            run("load", 0, Some(5)),
            run("send", 5, Some(6)),
            run("load", 6, None),
        ];
        let got = stage_progress(&[], &runs, JobStatus::Running, at(10));
        assert_eq!(states(&got), [("load", Running), ("send", Done)]);
        assert!(stage_progress(&[], &[], JobStatus::Pending, at(0)).is_empty());
    }
}
