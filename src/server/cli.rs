//! The `jobdeck` command line: `serve` (the default) and the account commands an operator
//! runs on the server. Each command reads `DATABASE_URL` and applies migrations first.

use std::io::{BufRead, IsTerminal};

use clap::{Parser, Subcommand};

use super::accounts::password::Password;
use super::accounts::tokens::{self, Granter, NewToken, TokenCache, TokenRef};
use super::accounts::users::{self, Email, NewUser, UserRef};
use super::accounts::AccountError;
use super::audit::Actor;
use super::startup::{self, StartError};
use crate::model::Role;

#[derive(Parser)]
#[command(
    name = "jobdeck",
    version,
    about = "Jobdeck: watch and control batch jobs"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the portal (the default).
    Serve,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Simulate recap pipelines and scripts through the HTTP APIs (needs an operator
    /// token), or with `--bulk N` write N jobs of history straight into the database.
    Sim {
        /// Write this many jobs of history with COPY and exit.
        #[arg(long)]
        bulk: Option<u64>,
        /// Seed of the bulk history.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, env = "JOBDECK_URL", default_value = "http://127.0.0.1:3000")]
        url: String,
        #[arg(long, env = "JOBDECK_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Recap jobs at once.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// How much faster than real pipelines.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Stop after this many jobs.
        #[arg(long)]
        jobs: Option<usize>,
        /// One job in this many fails at a random stage (1: every job, 0: none).
        #[arg(long, default_value_t = 8)]
        fail_every: u32,
        /// Also start this many `jobdeck worker` processes and create dispatched batch jobs
        /// for them (queue `demo`) every 20 s.
        #[arg(long, default_value_t = 0)]
        workers: usize,
    },
    /// The program the simulator's workers run per task (reads its payload on stdin).
    #[command(hide = true)]
    DemoTask,
    /// Run tasks of dispatched jobs: `jobdeck worker --queue Q -- PROGRAM ARGS...` runs
    /// PROGRAM once per claimed task, the payload as JSON on stdin.
    Worker(WorkerArgs),
}

#[derive(clap::Args)]
struct WorkerArgs {
    #[arg(long, env = "JOBDECK_URL", default_value = "http://127.0.0.1:3000")]
    url: String,
    /// A worker (or operator) token; read from JOBDECK_TOKEN.
    #[arg(long, env = "JOBDECK_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A queue to serve; give it again for more.
    #[arg(long = "queue", default_value = "default")]
    queues: Vec<String>,
    /// Tasks run at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Memory this worker offers, in MB (default: none declared, so no bound).
    #[arg(long)]
    memory_mb: Option<i64>,
    /// Cores this worker offers (default: none declared).
    #[arg(long)]
    cpus: Option<f64>,
    /// How this worker names itself to the portal (default: host-pid).
    #[arg(long)]
    id: Option<String>,
    #[arg(long, default_value_t = 2000)]
    heartbeat_ms: u64,
    /// After SIGTERM, how long running tasks may finish before they are stopped.
    #[arg(long, default_value_t = 10)]
    grace_secs: u64,
    /// Between SIGTERM and SIGKILL when a program is told to stop.
    #[arg(long, default_value_t = 5)]
    stop_grace_secs: u64,
    /// The program run once per task, and its arguments.
    #[arg(last = true, required = true)]
    program: Vec<String>,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user. The password is read from stdin when it is not a terminal; otherwise one
    /// is generated and printed once.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        name: Option<String>,
    },
    /// Set a new password (from stdin, or generated and printed once); the user must change
    /// it at next login and their sessions end.
    ResetPassword {
        #[arg(long)]
        email: String,
        /// Also revoke every API token the user owns.
        #[arg(long)]
        revoke_tokens: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token; it is printed alone on the last line of stdout.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Revoke the live token with this name.
    Revoke {
        #[arg(long)]
        name: String,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| "expected viewer, operator, admin or worker".to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("DATABASE_URL is not set")]
    NoDatabaseUrl,
    #[error("cannot reach the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Account(#[from] AccountError),
    #[error("{0}")]
    Input(String),
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let command = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => return Ok(startup::serve_from_env().await?),
        sim @ Command::Sim { bulk: None, .. } => return simulate(sim).await,
        Command::Worker(args) => return work(args).await,
        Command::DemoTask => std::process::exit(super::sim::dispatched::demo_task()),
        other => other,
    };
    let url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .ok_or(CliError::NoDatabaseUrl)?;
    let pool = sqlx::PgPool::connect(&url).await?;
    super::db::migrate(&pool).await?;
    match command {
        Command::Serve
        | Command::Sim { bulk: None, .. }
        | Command::Worker(_)
        | Command::DemoTask => {
            unreachable!("handled above")
        }
        Command::Sim {
            bulk: Some(jobs),
            seed,
            ..
        } => {
            let started = std::time::Instant::now();
            let counts = super::sim::bulk::bulk(&pool, jobs, seed).await?;
            println!(
                "wrote {} jobs, {} events, {} errors, {} phases, {} articles in {:.1}s",
                counts.jobs,
                counts.events,
                counts.errors,
                counts.phases,
                counts.articles,
                started.elapsed().as_secs_f64()
            );
        }
        Command::User(UserCommand::Add { email, role, name }) => {
            let (password, generated) = password_from_stdin_or_generated()?;
            let new = NewUser::new(&email, name.as_deref(), role, password)?;
            let email = new.email.as_str().to_string();
            users::create_user(&pool, &Actor::cli(), new).await?;
            println!("created {role} {email}");
            if let Some(generated) = generated {
                println!("password (shown once): {generated}");
            }
        }
        Command::User(UserCommand::ResetPassword {
            email,
            revoke_tokens,
        }) => {
            let email = Email::parse(&email)?;
            let (password, generated) = password_from_stdin_or_generated()?;
            // This process checks no tokens: other portals' caches forget within CACHE_TTL.
            let cache = TokenCache::default();
            let actor = Actor::cli();
            let user = UserRef::Email(&email);
            users::reset_password(&pool, &cache, &actor, user, Some(password), revoke_tokens)
                .await?;
            println!(
                "reset the password of {}; it must be changed at next login",
                email.as_str()
            );
            if let Some(generated) = generated {
                println!("password (shown once): {generated}");
            }
        }
        Command::Token(TokenCommand::Create {
            name,
            role,
            expires_in_days,
        }) => {
            let new = NewToken::new(&name, role, expires_in_days)?;
            let created = tokens::create_token(&pool, &Granter::cli(), new).await?;
            println!("created {role} token {name:?}; it is shown once:");
            println!("{}", created.token);
        }
        Command::Token(TokenCommand::Revoke { name }) => {
            tokens::revoke_token(&pool, &TokenCache::default(), None, TokenRef::Name(&name))
                .await?;
            println!("revoked token {name:?}");
        }
    }
    Ok(())
}

async fn simulate(command: Command) -> Result<(), CliError> {
    let Command::Sim {
        url,
        token,
        concurrency,
        speed,
        jobs,
        fail_every,
        workers,
        ..
    } = command
    else {
        unreachable!("only sim")
    };
    let token = token.ok_or_else(|| {
        CliError::Input("set JOBDECK_TOKEN (or --token) to an operator token".into())
    })?;
    let options = super::sim::live::LiveOptions {
        url: url.trim_end_matches('/').to_string(),
        token,
        webhook_secret: std::env::var("TC_PORTAL_WEBHOOK_SECRET")
            .ok()
            .filter(|s| !s.is_empty()),
        concurrency: concurrency.max(1),
        speed,
        jobs,
        fail_every,
        workers,
    };
    // SIGTERM ends the run (and so its demo workers, told to shut down) in order.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| CliError::Input(e.to_string()))?;
    tokio::select! {
        done = super::sim::live::run(options) => done.map_err(|e| CliError::Input(e.to_string())),
        _ = terminate.recv() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

async fn work(args: WorkerArgs) -> Result<(), CliError> {
    let token = args.token.ok_or_else(|| {
        CliError::Input("set JOBDECK_TOKEN (or --token) to a worker token".into())
    })?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "worker".into());
    let options = super::worker::WorkerOptions {
        url: args.url,
        token,
        worker_id: args
            .id
            .unwrap_or_else(|| format!("{host}-{}", std::process::id())),
        queues: args.queues,
        concurrency: args.concurrency.max(1),
        memory_mb: args.memory_mb,
        cpus: args.cpus,
        program: args.program,
        heartbeat: std::time::Duration::from_millis(args.heartbeat_ms.max(100)),
        shutdown_grace: std::time::Duration::from_secs(args.grace_secs),
        stop_grace: std::time::Duration::from_secs(args.stop_grace_secs),
    };
    super::worker::run(options).await.map_err(CliError::Input)
}

/// A password piped on stdin, or a generated one (returned also as text to print once).
fn password_from_stdin_or_generated() -> Result<(Password, Option<String>), CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::Input(format!("cannot read the password from stdin: {e}")))?;
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if !line.is_empty() {
            let password = Password::new(line).map_err(|e| CliError::Input(e.to_string()))?;
            return Ok((password, None));
        }
    }
    let password = Password::generate();
    let text = password.expose().to_string();
    Ok((password, Some(text)))
}
