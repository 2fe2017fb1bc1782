//! The loop every transform runs in its task: take a batch from the input buffer, let
//! the transform sort it into its outputs, send each output on; wake it at the deadline
//! it names; flush it when the input closes. Because each transform's outputs close only
//! after its flush, shutdown drains the transforms in graph order.

use super::buffer::BufferReceiver;
use super::component::{Task, Transform, TransformOutput};
use super::fanout::Fanout;
use super::sleep_until;

/// The fanouts of one transform: the default output and each named one, in the order
/// the transform declared them.
pub struct TransformOutputs {
    /// Consumers of `ID`.
    pub default: Fanout,
    /// Consumers of `ID.name`, by declared index.
    pub named: Vec<Fanout>,
}

impl TransformOutputs {
    /// Sends and empties every non-empty output. Fails once every consumer of an output
    /// that had events has stopped.
    async fn send(&self, out: &mut TransformOutput) -> Result<(), super::buffer::Closed> {
        if !out.default.is_empty() {
            let cap = out.default.len();
            let batch = std::mem::replace(&mut out.default, Vec::with_capacity(cap));
            self.default.send(batch).await?;
        }
        for (fanout, batch) in self.named.iter().zip(out.named.iter_mut()) {
            if !batch.is_empty() {
                fanout.send(std::mem::take(batch)).await?;
            }
        }
        Ok(())
    }
}

/// The task of one transform.
pub fn run(
    mut tf: Box<dyn Transform>,
    mut input: BufferReceiver,
    outputs: TransformOutputs,
) -> Task {
    Box::pin(async move {
        let mut out = TransformOutput::new(outputs.named.len());
        loop {
            let deadline = tf.next_deadline();
            tokio::select! {
                batch = input.recv() => match batch {
                    Some(batch) => tf.transform(batch, &mut out),
                    None => break,
                },
                _ = sleep_until(deadline), if deadline.is_some() => tf.on_deadline(&mut out),
            }
            if outputs.send(&mut out).await.is_err() {
                return;
            }
        }
        tf.flush(&mut out);
        let _ = outputs.send(&mut out).await;
    })
}

/// A copy of a transform at work on one batch, and what it made.
type Working = tokio::task::JoinHandle<(Box<dyn Transform>, TransformOutput)>;

/// The task of a transform that keeps no state between batches, run as several copies at
/// once (one per core, as Vector runs its function transforms): each batch goes to an
/// idle copy on a task of its own, so a costly VRL program is not held to one core, and
/// the results are sent in the order the batches came, so no event overtakes another
/// (the order of each connection or file is kept).
pub fn run_concurrent(
    mut idle: Vec<Box<dyn Transform>>,
    mut input: BufferReceiver,
    outputs: TransformOutputs,
) -> Task {
    Box::pin(async move {
        let named = outputs.named.len();
        let mut spare: Vec<TransformOutput> = Vec::new();
        let mut working: std::collections::VecDeque<Working> = std::collections::VecDeque::new();
        let mut open = true;
        while open || !working.is_empty() {
            tokio::select! {
                biased;
                done = async {
                    match working.front_mut() {
                        Some(w) => w.await,
                        None => std::future::pending().await,
                    }
                }, if !working.is_empty() => {
                    working.pop_front();
                    let Ok((tf, mut out)) = done else {
                        tracing::error!("A transform copy stopped in the middle of a batch; the transform stops.");
                        return;
                    };
                    if outputs.send(&mut out).await.is_err() {
                        return;
                    }
                    idle.push(tf);
                    spare.push(out);
                }
                batch = input.recv(), if open && !idle.is_empty() => match (batch, idle.pop()) {
                    (Some(batch), Some(mut tf)) => {
                        let mut out = spare.pop().unwrap_or_else(|| TransformOutput::new(named));
                        working.push_back(tokio::spawn(async move {
                            tf.transform(batch, &mut out);
                            (tf, out)
                        }));
                    }
                    (None, tf) => {
                        open = false;
                        idle.extend(tf);
                    }
                    (Some(_), None) => unreachable!("guarded by `!idle.is_empty()`"),
                },
            }
        }
        let mut out = TransformOutput::new(named);
        for mut tf in idle {
            tf.flush(&mut out);
            if outputs.send(&mut out).await.is_err() {
                return;
            }
        }
    })
}
