//! One task's program: started in its own process group with the payload on stdin, its
//! stdout read for the command syntax and log lines, its process tree measured from /proc,
//! killed past the job's memory limit, suspended, resumed or stopped as the heartbeat says.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::watch;

use crate::model::dispatch::{codes, ClaimedTask, LeaseAnswer};

/// What the program said on stdout, and what was measured of it, since the last heartbeat.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub progress: Option<f64>,
    pub phase: Option<String>,
    pub items: Option<i64>,
    pub log: Vec<String>,
    pub cpu_percent: Option<f64>,
    pub memory_mb: Option<f64>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed,
    Failed {
        code: String,
        message: String,
        retryable: Option<bool>,
    },
    /// Told to stop (the job ended or the lease is lost): nothing is reported.
    Stopped,
}

/// A stdout line: one of the commands, or a line for the job's log.
#[derive(Debug, PartialEq)]
pub enum Line {
    Progress(f64),
    Phase(String),
    Items(i64),
    Error { code: String, message: String },
    Log(String),
}

/// `::progress 40`, `::phase Dedup`, `::items 120`, `::error CODE message`; anything else,
/// a malformed command included, is a log line.
pub fn parse_line(line: &str) -> Line {
    let log = || Line::Log(line.to_string());
    let Some(command) = line.strip_prefix("::") else {
        return log();
    };
    let (word, rest) = command.split_once(' ').unwrap_or((command, ""));
    let rest = rest.trim();
    match word {
        "progress" => match rest.parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Line::Progress(p),
            _ => log(),
        },
        "phase" if !rest.is_empty() => Line::Phase(rest.chars().take(200).collect()),
        "items" => rest.parse().map(Line::Items).unwrap_or_else(|_| log()),
        "error" if !rest.is_empty() => {
            let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
            // The codes with a meaning of their own are the worker's and the portal's to
            // say, not a program's.
            let code = if [codes::WORKER_SHUTDOWN, codes::LEASE_EXPIRED].contains(&code) {
                format!("PROGRAM_{code}")
            } else {
                code.to_string()
            };
            Line::Error {
                code: code.chars().take(200).collect(),
                message: message.to_string(),
            }
        }
        _ => log(),
    }
}

/// The process tree of a process group, from /proc: resident memory and CPU ticks.
fn measure_group(pgid: i32) -> (u64, u64) {
    let (mut rss_pages, mut ticks) = (0u64, 0u64);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return (0, 0);
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command may hold spaces and parentheses: fields start after the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // Fields from 3 (state): pgrp is 5, utime 14, stime 15, rss 24.
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        if field(5) != Some(pgid as u64) {
            continue;
        }
        ticks += field(14).unwrap_or(0) + field(15).unwrap_or(0);
        rss_pages += field(24).unwrap_or(0);
    }
    (rss_pages, ticks)
}

fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals the group; no memory is involved.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

static CGROUP_WARNED: AtomicBool = AtomicBool::new(false);

/// Caps the group's CPU with a cgroup v2 `cpu.max` of its own, where this process may create
/// one; otherwise warns once and only measures.
struct CpuCap(Option<PathBuf>);

impl CpuCap {
    fn apply(pid: u32, task: &ClaimedTask) -> Self {
        let cores = task.resource_limits.max_cpu;
        if cores <= 0.0 {
            return CpuCap(None);
        }
        let dir = PathBuf::from(format!(
            "/sys/fs/cgroup/jobdeck-{}-{}",
            std::process::id(),
            task.task_id.simple()
        ));
        let period = 100_000u64;
        let quota = ((cores * period as f64) as u64).max(1000);
        let made = std::fs::create_dir(&dir)
            .and_then(|_| std::fs::write(dir.join("cpu.max"), format!("{quota} {period}")))
            .and_then(|_| std::fs::write(dir.join("cgroup.procs"), pid.to_string()));
        match made {
            Ok(()) => CpuCap(Some(dir)),
            Err(error) => {
                let _ = std::fs::remove_dir(&dir);
                if !CGROUP_WARNED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, "cannot limit CPU with a cgroup v2 cpu.max here; CPU use is measured and reported only");
                }
                CpuCap(None)
            }
        }
    }
}

impl Drop for CpuCap {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Runs `program` for `task` until it exits or is stopped. `reports` gets what it said and
/// what it used; `control` carries the heartbeat's last word.
pub async fn run(
    program: &[String],
    task: &ClaimedTask,
    reports: &std::sync::Mutex<Report>,
    mut control: watch::Receiver<LeaseAnswer>,
    stop_grace: Duration,
) -> Outcome {
    let mut command = Command::new(&program[0]);
    command
        .args(&program[1..])
        .env("JOBDECK_JOB_ID", task.job_id.to_string())
        .env("JOBDECK_TASK_ID", task.task_id.to_string())
        .env("JOBDECK_ATTEMPT", task.attempt.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return Outcome::Failed {
                code: "SPAWN_FAILED".into(),
                message: format!("cannot start {}: {error}", program[0]),
                retryable: Some(false),
            }
        }
    };
    let pid = child.id().unwrap_or(0);
    let pgid = pid as i32;
    let _cap = CpuCap::apply(pid, task);
    if let Some(mut stdin) = child.stdin.take() {
        let payload = serde_json::to_vec(&task.payload).unwrap_or_default();
        tokio::spawn(async move {
            let _ = stdin.write_all(&payload).await;
            let _ = stdin.shutdown().await;
        });
    }
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut last_error: Option<(String, String)> = None;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as f64;
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let limit_mb = task.resource_limits.max_memory;
    let mut sample = tokio::time::interval(Duration::from_millis(250));
    let mut last_ticks: Option<(u64, Instant)> = None;
    let mut stdout_open = true;
    let mut paused = false;
    loop {
        tokio::select! {
            line = lines.next_line(), if stdout_open => match line {
                Ok(Some(line)) => take_line(&line, reports, &mut last_error),
                _ => stdout_open = false,
            },
            status = child.wait() => {
                // What it printed just before it exited is still in the pipe.
                let rest = async {
                    while let Ok(Some(line)) = lines.next_line().await {
                        take_line(&line, reports, &mut last_error);
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(1), rest).await;
                let status = status.ok();
                return match status.and_then(|s| if s.success() { None } else { Some(s) }) {
                    None if status.is_some() => Outcome::Completed,
                    other => {
                        use std::os::unix::process::ExitStatusExt;
                        let code = other
                            .and_then(|s| s.code().or(s.signal().map(|n| 128 + n)))
                            .unwrap_or(-1);
                        let (code, message) = last_error.take().unwrap_or_else(|| {
                            (format!("EXIT_{code}"), format!("{} exited with {code}", program[0]))
                        });
                        Outcome::Failed { code, message, retryable: None }
                    }
                };
            },
            _ = sample.tick() => {
                let (pages, ticks) = measure_group(pgid);
                let memory_mb = pages as f64 * page / (1024.0 * 1024.0);
                let now = Instant::now();
                let cpu = last_ticks.map(|(before, at)| {
                    let dt = now.duration_since(at).as_secs_f64().max(0.001);
                    100.0 * (ticks.saturating_sub(before)) as f64 / hz / dt
                });
                last_ticks = Some((ticks, now));
                {
                    let mut report = reports.lock().expect("report lock");
                    report.memory_mb = Some(memory_mb);
                    if cpu.is_some() {
                        report.cpu_percent = cpu;
                    }
                }
                if limit_mb > 0 && memory_mb > limit_mb as f64 {
                    signal_group(pgid, libc::SIGKILL);
                    let _ = child.wait().await;
                    return Outcome::Failed {
                        code: codes::RESOURCE_LIMIT_EXCEEDED.into(),
                        message: format!("used {memory_mb:.0} MB; the job allows {limit_mb} MB"),
                        retryable: None,
                    };
                }
            },
            changed = control.changed() => {
                if changed.is_err() {
                    continue;
                }
                let answer = *control.borrow();
                match answer {
                    LeaseAnswer::Pause if !paused => {
                        signal_group(pgid, libc::SIGSTOP);
                        paused = true;
                    }
                    LeaseAnswer::Continue if paused => {
                        signal_group(pgid, libc::SIGCONT);
                        paused = false;
                    }
                    LeaseAnswer::Stop => {
                        stop(&mut child, pgid, stop_grace).await;
                        return Outcome::Stopped;
                    }
                    _ => {}
                }
            },
        }
    }
}

/// A stdout line into the report: a command's value, or a log line (at most 10,000 held
/// between heartbeats, each cut at 4,000 characters).
fn take_line(
    line: &str,
    reports: &std::sync::Mutex<Report>,
    last_error: &mut Option<(String, String)>,
) {
    let mut report = reports.lock().expect("report lock");
    match parse_line(line) {
        Line::Progress(p) => report.progress = Some(p),
        Line::Phase(phase) => report.phase = Some(phase),
        Line::Items(n) => report.items = Some(n),
        Line::Error { code, message } => *last_error = Some((code, message)),
        Line::Log(text) => {
            if report.log.len() < 10_000 {
                report.log.push(text.chars().take(4000).collect());
            }
        }
    }
}

/// SIGTERM to the group (woken first if suspended), SIGKILL after the grace.
pub async fn stop(child: &mut tokio::process::Child, pgid: i32, grace: Duration) {
    signal_group(pgid, libc::SIGCONT);
    signal_group(pgid, libc::SIGTERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        signal_group(pgid, libc::SIGKILL);
        let _ = child.wait().await;
    }
    // What it left behind in its group.
    signal_group(pgid, libc::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_command_syntax_and_leaves_the_rest_for_the_log() {
        assert_eq!(parse_line("::progress 40"), Line::Progress(40.0));
        assert_eq!(
            parse_line("::phase Dedup words"),
            Line::Phase("Dedup words".into())
        );
        assert_eq!(parse_line("::items 120"), Line::Items(120));
        assert_eq!(
            parse_line("::error FETCH_TIMEOUT feed did not answer"),
            Line::Error {
                code: "FETCH_TIMEOUT".into(),
                message: "feed did not answer".into()
            }
        );
        for log in [
            "hello",
            "::progress 140",
            "::items many",
            "::phase",
            "::nope 1",
            ": progress 1",
        ] {
            assert_eq!(parse_line(log), Line::Log(log.into()), "{log}");
        }
    }
}
