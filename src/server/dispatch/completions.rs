//! Group commit for the protocol's commonest call: a worker completing tasks it holds.
//! Concurrent `completeTasks` calls of one actor share one finishing transaction
//! ([`leases::finish`]: job locks, the fenced completion, the jobs following, one commit),
//! and each caller is answered after it has committed. A lone call goes at once; under
//! load, calls queue while the writers are busy and the next transaction takes them all,
//! as `jobs::ReportQueue` does for `updateBatchJob`. (One transaction per single-task
//! completion was about half of PostgreSQL's time per task, which the machine's CPU
//! bounds.)
//!
//! A transaction never holds one task twice (a second call naming a task waits for the
//! next one, so a stale token is refused as it would be alone) and never mixes callers (a
//! job completed by the batch is recorded as completed by its caller: [`same_caller`]). A
//! transaction that fails is retried call by call, so each caller gets its own answer.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

use super::input::Finish;
use super::leases::{self, Finisher};
use super::{DispatchError, Dispatcher};
use crate::model::dispatch::FinishAnswer;
use crate::server::audit::Actor;

/// Tasks in one transaction at most: a call's own maximum.
const MAX_TASKS: usize = super::input::MAX_BATCH;
/// Transactions in flight at once (each holds one protocol connection): callers that
/// cannot share one (other tokens) still run side by side.
pub const WRITERS: usize = 4;
/// Calls waiting for a writer; past it a call runs on its own.
const QUEUE: usize = 1024;

type Reply = Result<FinishAnswer, DispatchError>;

pub(super) struct Queued {
    actor: Actor,
    finishes: Vec<Finish>,
    reply: oneshot::Sender<Reply>,
}

/// Handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct CompletionQueue {
    queue: mpsc::Sender<Queued>,
    transactions: Arc<AtomicU64>,
}

impl CompletionQueue {
    pub(super) fn channel() -> (Self, mpsc::Receiver<Queued>) {
        let (queue, inbox) = mpsc::channel(QUEUE);
        let transactions = Arc::default();
        (
            Self {
                queue,
                transactions,
            },
            inbox,
        )
    }

    /// Finishing transactions the writer has begun, for tests to see calls grouped.
    pub fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }

    /// Calls waiting for a writer.
    pub fn waiting(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Completes the tasks (the answer is committed), with other callers' where some wait.
    pub async fn complete(dispatcher: &Dispatcher, actor: &Actor, finishes: Vec<Finish>) -> Reply {
        let (reply, answer) = oneshot::channel();
        let queued = Queued {
            actor: actor.clone(),
            finishes,
            reply,
        };
        match dispatcher.completions.queue.try_send(queued) {
            Ok(()) => match answer.await {
                Ok(reply) => reply,
                // The writer answers every call it takes; it is gone only with the runtime.
                Err(_) => Err(DispatchError::Database(sqlx::Error::PoolClosed)),
            },
            Err(refused) => {
                let queued = refused.into_inner();
                leases::finish(dispatcher, actor, COMPLETE, queued.finishes).await
            }
        }
    }
}

const COMPLETE: Finisher<'static> = Finisher::Worker("completeTasks");

pub(super) async fn write_batches(dispatcher: Dispatcher, mut inbox: mpsc::Receiver<Queued>) {
    let writers = Arc::new(Semaphore::new(WRITERS));
    let mut held: Vec<Queued> = Vec::new();
    loop {
        let permit = writers.clone().acquire_owned().await.expect("never closed");
        if held.is_empty() {
            match inbox.recv().await {
                Some(first) => held.push(first),
                None => return,
            }
        }
        while held.len() < MAX_TASKS {
            match inbox.try_recv() {
                Ok(next) => held.push(next),
                Err(_) => break,
            }
        }
        let (batch, rest) = next_batch(held);
        held = rest;
        dispatcher
            .completions
            .transactions
            .fetch_add(1, Ordering::Relaxed);
        let dispatcher = dispatcher.clone();
        tokio::spawn(async move {
            write(&dispatcher, batch).await;
            drop(permit);
        });
    }
}

/// The calls the next transaction takes, in arrival order: the first one's actor's, no
/// task twice, at most [`MAX_TASKS`] tasks; the rest wait, in order.
fn next_batch(held: Vec<Queued>) -> (Vec<Queued>, Vec<Queued>) {
    let mut tasks: HashSet<Uuid> = HashSet::new();
    let mut batch: Vec<Queued> = Vec::new();
    let mut rest = Vec::new();
    for queued in held {
        let fits = match batch.first() {
            None => true,
            Some(first) => {
                same_caller(&first.actor, &queued.actor)
                    && tasks.len() + queued.finishes.len() <= MAX_TASKS
                    && queued.finishes.iter().all(|f| !tasks.contains(&f.task_id))
            }
        };
        if fits {
            tasks.extend(queued.finishes.iter().map(|f| f.task_id));
            batch.push(queued);
        } else {
            rest.push(queued);
        }
    }
    (batch, rest)
}

/// The same user or token, acting with the same role. Workers of one token on several hosts
/// share transactions; the job a shared transaction completes is recorded with the first
/// call's address.
fn same_caller(a: &Actor, b: &Actor) -> bool {
    (a.user_id, a.token_id, &a.label, &a.role) == (b.user_id, b.token_id, &b.label, &b.role)
}

async fn write(dispatcher: &Dispatcher, batch: Vec<Queued>) {
    if let [_] = batch.as_slice() {
        let Queued {
            actor,
            finishes,
            reply,
        } = batch.into_iter().next().expect("one call");
        let _ = reply.send(leases::finish(dispatcher, &actor, COMPLETE, finishes).await);
        return;
    }
    let actor = batch[0].actor.clone();
    let all: Vec<Finish> = batch
        .iter()
        .flat_map(|q| q.finishes.iter().cloned())
        .collect();
    match leases::finish(dispatcher, &actor, COMPLETE, all).await {
        Ok(answer) => {
            let mut results: HashMap<Uuid, _> =
                answer.results.into_iter().map(|r| (r.task_id, r)).collect();
            for queued in batch {
                let results = queued
                    .finishes
                    .iter()
                    .filter_map(|f| results.remove(&f.task_id))
                    .collect();
                let _ = queued.reply.send(Ok(FinishAnswer { results }));
            }
        }
        Err(error) => {
            tracing::warn!(%error, calls = batch.len(), "a grouped completion failed; retrying call by call");
            for queued in batch {
                let answer =
                    leases::finish(dispatcher, &queued.actor, COMPLETE, queued.finishes).await;
                let _ = queued.reply.send(answer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::audit::Actor;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn call(actor: &Actor, tasks: &[Uuid]) -> Queued {
        let finishes = tasks
            .iter()
            .map(|&task_id| Finish {
                task_id,
                lease_token: Uuid::nil(),
                failure: None,
            })
            .collect();
        Queued {
            actor: actor.clone(),
            finishes,
            reply: oneshot::channel().0,
        }
    }

    fn tasks_of(calls: &[Queued]) -> Vec<Vec<Uuid>> {
        calls
            .iter()
            .map(|q| q.finishes.iter().map(|f| f.task_id).collect())
            .collect()
    }

    #[test]
    fn a_batch_never_names_a_task_twice_nor_mixes_actors() {
        let (a, b, c) = (id(1), id(2), id(3));
        let worker = Actor::cli();
        let mut other = Actor::cli();
        other.label = "token:other".into();
        let held = vec![
            call(&worker, &[a]),
            call(&worker, &[a, b]),
            call(&other, &[c]),
            call(&worker, &[c]),
        ];
        let (batch, rest) = next_batch(held);
        assert_eq!(tasks_of(&batch), vec![vec![a], vec![c]]);
        assert_eq!(tasks_of(&rest), vec![vec![a, b], vec![c]]);
        assert_eq!(rest[1].actor.label, "token:other");
    }

    #[test]
    fn a_batch_holds_at_most_a_calls_maximum_of_tasks() {
        let worker = Actor::cli();
        let big: Vec<Uuid> = (0..MAX_TASKS as u128 - 1).map(id).collect();
        let held = vec![
            call(&worker, &big),
            call(&worker, &[id(5000), id(5001)]),
            call(&worker, &[id(5002)]),
        ];
        let (batch, rest) = next_batch(held);
        assert_eq!(batch.len(), 2);
        assert_eq!(
            batch.iter().map(|q| q.finishes.len()).sum::<usize>(),
            MAX_TASKS
        );
        assert_eq!(rest.len(), 1);
    }
}
