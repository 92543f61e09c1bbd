//! Measures from many devices written together: every transport's
//! ingestion hands its entity upserts to one task that takes whatever has
//! queued up while the previous commit was in flight and writes it as one
//! batch upsert per tenant — one commit and one fsync for hundreds of
//! devices instead of one each. A caller still waits for its own measures
//! to be committed (a QoS 1 PUBACK or an HTTP 200 still means written);
//! measures of one device keep their order (one queue, written in order).

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use dosi_broker::codec::decode::EntityInput;
use dosi_broker::Broker;
use dosi_ngsi::{NgsiError, Result, TenantId};
use tokio::sync::{mpsc, oneshot};

/// Most entity upserts in one commit.
const MAX_BATCH: usize = 2048;
/// Queued jobs before callers wait (back-pressure on the transports).
const QUEUE: usize = 16_384;

struct Job {
    tenant: TenantId,
    inputs: Vec<EntityInput>,
    done: oneshot::Sender<Result<()>>,
}

/// The queue in front of the write task (started on first use).
#[derive(Default)]
pub struct Batcher {
    tx: OnceLock<mpsc::Sender<Job>>,
}

impl Batcher {
    /// Upserts `inputs` (update semantics) for `tenant` in a shared commit;
    /// returns once committed, with the first error of these inputs.
    pub async fn upsert(
        &self,
        broker: &Arc<Broker>,
        tenant: TenantId,
        inputs: Vec<EntityInput>,
    ) -> Result<()> {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(run(broker.clone(), rx));
            tx
        });
        let (done, wait) = oneshot::channel();
        tx.send(Job {
            tenant,
            inputs,
            done,
        })
        .await
        .map_err(|_| NgsiError::internal("the ingestion writer stopped"))?;
        wait.await
            .map_err(|_| NgsiError::internal("the ingestion writer stopped"))?
    }
}

async fn run(broker: Arc<Broker>, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut n = jobs[0].inputs.len();
        while n < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => {
                    n += j.inputs.len();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        write(&broker, jobs).await;
    }
}

/// Writes the jobs in order and answers each with the outcome of its own
/// inputs. A commit keeps one state per entity, so an entity written twice
/// (two measures of one device) must not share a commit — history records
/// every instance: the inputs are cut into rounds in which every entity
/// appears once, each round one batch upsert per tenant.
async fn write(broker: &Broker, jobs: Vec<Job>) {
    let mut outcomes: Vec<Result<()>> = jobs.iter().map(|_| Ok(())).collect();
    let mut answers = Vec::with_capacity(jobs.len());
    // (job index, tenant, input) in arrival order.
    let mut items = Vec::new();
    for (i, j) in jobs.into_iter().enumerate() {
        for input in j.inputs {
            items.push((i, j.tenant.clone(), input));
        }
        answers.push(j.done);
    }
    let mut round: Vec<(usize, TenantId, EntityInput)> = Vec::new();
    let mut seen: HashSet<(TenantId, String)> = HashSet::new();
    for item in items {
        let key = (item.1.clone(), id_of(&item.2));
        if seen.contains(&key) {
            commit_round(broker, std::mem::take(&mut round), &mut outcomes).await;
            seen.clear();
        }
        seen.insert(key);
        round.push(item);
    }
    commit_round(broker, round, &mut outcomes).await;
    for (done, o) in answers.into_iter().zip(outcomes) {
        let _ = done.send(o);
    }
}

fn id_of(input: &EntityInput) -> String {
    input
        .id
        .as_ref()
        .map(|e| e.as_str().to_string())
        .unwrap_or_default()
}

/// One batch upsert per tenant of a round; the first error of a job is kept.
async fn commit_round(
    broker: &Broker,
    round: Vec<(usize, TenantId, EntityInput)>,
    outcomes: &mut [Result<()>],
) {
    let mut by_tenant: Vec<(TenantId, Vec<usize>, Vec<EntityInput>)> = Vec::new();
    for (job, tenant, input) in round {
        match by_tenant.iter_mut().find(|(t, _, _)| *t == tenant) {
            Some((_, jobs, inputs)) => {
                jobs.push(job);
                inputs.push(input);
            }
            None => by_tenant.push((tenant, vec![job], vec![input])),
        }
    }
    for (tenant, jobs, inputs) in by_tenant {
        let ids: Vec<String> = inputs.iter().map(id_of).collect();
        match broker.batch_upsert(&tenant, inputs, true).await {
            Ok(out) => {
                for (id, e) in &out.errors {
                    // Ids are unique within the round: one job per id.
                    if let Some(k) = ids.iter().position(|x| x == id) {
                        let o = &mut outcomes[jobs[k]];
                        if o.is_ok() {
                            *o = Err(e.clone());
                        }
                    }
                }
            }
            Err(e) => {
                for j in jobs {
                    if outcomes[j].is_ok() {
                        outcomes[j] = Err(e.clone());
                    }
                }
            }
        }
    }
}
