//! A member's send queue: bounded, filled by the room, drained by the member's connection.
//!
//! Not tokio's `mpsc`: a bounded tokio channel allocates a cache-padded header and a 32-slot
//! block up front (about 1.5 KiB) and keeps every block it grew for its life. Most chat
//! connections sit idle, so this queue costs about 100 bytes until frames wait in it, and
//! gives back what a burst made it grow once the connection has drained it.
//!
//! ```
//! # futures::executor::block_on(async {
//! use chat::queue;
//!
//! let (sender, mut receiver) = queue::bounded(2);
//! sender.try_send("a".into()).unwrap();
//! sender.try_send("b".into()).unwrap();
//! assert_eq!(sender.try_send("c".into()), Err(queue::SendError::Full));
//! drop(sender);
//!
//! let mut batch = Vec::new();
//! assert_eq!(receiver.recv_many(&mut batch, 10).await, 2);
//! // Every sender is gone and nothing waits: the queue is closed.
//! assert_eq!(receiver.recv_many(&mut batch, 10).await, 0);
//! # });
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Poll;

use futures::task::AtomicWaker;

use crate::protocol::Frame;

/// Slots a drained queue keeps; a burst's larger buffer is given back.
const IDLE_SLOTS: usize = 16;

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The queue holds its capacity: the member is too slow.
    #[error("the send queue is full")]
    Full,
    /// The connection is gone.
    #[error("the connection is gone")]
    Closed,
}

/// A queue holding at most `capacity` frames.
pub fn bounded(capacity: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            frames: VecDeque::new(),
            senders: 1,
            receiving: true,
        }),
        waker: AtomicWaker::new(),
        capacity,
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

struct Shared {
    state: Mutex<State>,
    waker: AtomicWaker,
    capacity: usize,
}

struct State {
    frames: VecDeque<Frame>,
    /// Strong senders; at zero the receiver sees the queue closed once it is drained.
    senders: usize,
    receiving: bool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock, and the state is whole at every step anyway.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, frame: Frame) -> Result<(), SendError> {
        self.push_all(std::slice::from_ref(&frame))
    }

    /// Queues every frame of `frames`, or none of them.
    fn push_all(&self, frames: &[Frame]) -> Result<(), SendError> {
        let mut state = self.state();
        if !state.receiving {
            return Err(SendError::Closed);
        }
        if state.frames.len() + frames.len() > self.capacity {
            return Err(SendError::Full);
        }
        let was_empty = state.frames.is_empty();
        state.frames.extend(frames.iter().cloned());
        drop(state);
        // A queue that already held frames has a wake-up on its way.
        if was_empty && !frames.is_empty() {
            self.waker.wake();
        }
        Ok(())
    }
}

/// The room's end. While one exists the queue is open.
pub struct Sender {
    shared: Arc<Shared>,
}

impl Sender {
    /// Queues `frame` unless the queue is full or its connection is gone; never waits.
    pub fn try_send(&self, frame: Frame) -> Result<(), SendError> {
        self.shared.push(frame)
    }

    /// Queues all of `frames` in order, or none of them when they do not all fit (the member is
    /// too slow) or its connection is gone; the connection is woken once for the lot.
    pub fn try_send_all(&self, frames: &[Frame]) -> Result<(), SendError> {
        self.shared.push_all(frames)
    }

    /// A handle that can queue frames but does not keep the queue open.
    pub fn downgrade(&self) -> WeakSender {
        WeakSender {
            shared: Arc::downgrade(&self.shared),
        }
    }
}

impl Clone for Sender {
    fn clone(&self) -> Self {
        self.shared.state().senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let last = {
            let mut state = self.shared.state();
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            self.shared.waker.wake();
        }
    }
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

/// Queues frames without keeping the queue open: answers that may outlive the membership.
#[derive(Clone, Debug)]
pub struct WeakSender {
    shared: Weak<Shared>,
}

impl WeakSender {
    /// Queues `frame` while the queue exists; a frame for a closed queue is dropped unread.
    pub fn try_send(&self, frame: Frame) -> Result<(), SendError> {
        match self.shared.upgrade() {
            Some(shared) => shared.push(frame),
            None => Err(SendError::Closed),
        }
    }
}

/// The connection's end.
pub struct Receiver {
    shared: Arc<Shared>,
}

impl Receiver {
    /// Waits for frames, then moves up to `max` of them into `batch`, oldest first, and returns
    /// how many; returns 0 once every [`Sender`] is gone and nothing is left.
    pub async fn recv_many(&mut self, batch: &mut Vec<Frame>, max: usize) -> usize {
        std::future::poll_fn(|cx| {
            // Registered before looking, so a frame queued after the look wakes this task.
            self.shared.waker.register(cx.waker());
            let mut state = self.shared.state();
            if state.frames.is_empty() {
                return if state.senders == 0 {
                    Poll::Ready(0)
                } else {
                    Poll::Pending
                };
            }
            let taken = state.frames.len().min(max);
            batch.extend(state.frames.drain(..taken));
            if state.frames.is_empty() {
                state.frames.shrink_to(IDLE_SLOTS);
            }
            Poll::Ready(taken)
        })
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.receiving = false;
        state.frames = VecDeque::new();
    }
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Frame {
        text.into()
    }

    #[tokio::test]
    async fn frames_arrive_in_order_in_batches_of_at_most_max() {
        let (sender, mut receiver) = bounded(10);
        for text in ["1", "2", "3"] {
            sender.try_send(frame(text)).unwrap();
        }
        let mut batch = Vec::new();
        assert_eq!(receiver.recv_many(&mut batch, 2).await, 2);
        assert_eq!(receiver.recv_many(&mut batch, 2).await, 1);
        let texts: Vec<&str> = batch.iter().map(|frame| frame.as_str()).collect();
        assert_eq!(texts, ["1", "2", "3"]);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_until_drained() {
        let (sender, mut receiver) = bounded(2);
        sender.try_send(frame("a")).unwrap();
        sender.try_send(frame("b")).unwrap();
        assert_eq!(sender.try_send(frame("c")), Err(SendError::Full));
        let mut batch = Vec::new();
        receiver.recv_many(&mut batch, 10).await;
        assert_eq!(sender.try_send(frame("c")), Ok(()));
    }

    #[tokio::test]
    async fn frames_sent_together_are_queued_all_or_none() {
        let (sender, mut receiver) = bounded(3);
        sender.try_send(frame("1")).unwrap();
        sender.try_send_all(&[frame("2"), frame("3")]).unwrap();
        // Two more do not fit beside three: neither is queued.
        assert_eq!(
            sender.try_send_all(&[frame("4"), frame("5")]),
            Err(SendError::Full)
        );
        let mut batch = Vec::new();
        assert_eq!(receiver.recv_many(&mut batch, 10).await, 3);
        let texts: Vec<&str> = batch.iter().map(|frame| frame.as_str()).collect();
        assert_eq!(texts, ["1", "2", "3"]);
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_a_frame_sent_from_another_task() {
        let (sender, mut receiver) = bounded(4);
        let waiting = tokio::spawn(async move {
            let mut batch = Vec::new();
            receiver.recv_many(&mut batch, 4).await;
            batch
        });
        tokio::task::yield_now().await;
        sender.try_send(frame("late")).unwrap();
        let batch = waiting.await.unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].as_str(), "late");
    }

    #[tokio::test]
    async fn the_queue_closes_once_the_last_strong_sender_is_gone_and_it_is_drained() {
        let (sender, mut receiver) = bounded(4);
        let weak = sender.downgrade();
        sender.try_send(frame("kept")).unwrap();
        // A weak sender can still queue, but does not hold the queue open.
        weak.try_send(frame("reply")).unwrap();
        drop(sender);
        let mut batch = Vec::new();
        assert_eq!(receiver.recv_many(&mut batch, 4).await, 2);
        assert_eq!(receiver.recv_many(&mut batch, 4).await, 0);
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_when_the_last_strong_sender_goes() {
        let (sender, mut receiver) = bounded(4);
        let clone = sender.clone();
        let waiting = tokio::spawn(async move {
            let mut batch = Vec::new();
            let first = receiver.recv_many(&mut batch, 4).await;
            (first, receiver.recv_many(&mut batch, 4).await)
        });
        tokio::task::yield_now().await;
        drop(sender);
        // One strong sender left: still open.
        clone.try_send(frame("still open")).unwrap();
        drop(clone);
        assert_eq!(waiting.await.unwrap(), (1, 0));
    }

    #[tokio::test]
    async fn senders_see_a_dropped_receiver_as_closed() {
        let (sender, receiver) = bounded(4);
        let weak = sender.downgrade();
        drop(receiver);
        assert_eq!(sender.try_send(frame("x")), Err(SendError::Closed));
        assert_eq!(weak.try_send(frame("x")), Err(SendError::Closed));
    }

    #[tokio::test]
    async fn a_drained_queue_gives_back_what_a_burst_grew() {
        let (sender, mut receiver) = bounded(1024);
        for _ in 0..500 {
            sender.try_send(frame("burst")).unwrap();
        }
        let mut batch = Vec::new();
        assert_eq!(receiver.recv_many(&mut batch, 1024).await, 500);
        let capacity = receiver.shared.state().frames.capacity();
        assert!(capacity <= IDLE_SLOTS, "kept {capacity} slots");
    }
}
