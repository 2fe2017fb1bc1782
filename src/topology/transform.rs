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
