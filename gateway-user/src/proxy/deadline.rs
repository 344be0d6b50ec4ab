//! Backend response timeouts, and the idle checks of connections, without
//! a tokio timer each. Each worker thread keeps the deadlines of its
//! waiting exchanges and connections in a slab, and one
//! task per thread (running only while some wait) wakes those that passed
//! every `TICK`: a timeout fires up to `TICK` late. Registering and
//! removing a deadline is a slot taken and given back; tokio's timer wheel
//! was locked, updated and read twice per request, a tenth of the proxy's
//! own instructions once the rest was lean.
//!
//! A proxy connection and its requests stay on one worker thread (see
//! `workers`); a deadline polled on another thread than the one it was
//! registered on registers again there (its first slot is left to expire).

use std::{
    cell::RefCell,
    future::Future,
    pin::Pin,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

/// How often a thread's waiting deadlines are checked.
pub const TICK: Duration = Duration::from_millis(50);

/// `inner` did not finish in time.
#[derive(Debug)]
pub struct Elapsed;

/// Runs `inner` for at most `limit` (plus up to `TICK`).
pub fn within<F: Future + Unpin>(limit: Duration, inner: F) -> Deadline<F> {
    until(Instant::now() + limit, inner)
}

/// Runs `inner` until `at` (plus up to `TICK`): for a caller that has
/// just read the clock.
pub fn until<F: Future + Unpin>(at: Instant, inner: F) -> Deadline<F> {
    Deadline {
        inner,
        at,
        slot: None,
    }
}

pub struct Deadline<F> {
    inner: F,
    at: Instant,
    /// The slab it waits in (its thread's, by address) and its index.
    slot: Option<(usize, usize)>,
}

enum Slot {
    Free,
    Waiting { at: Instant, waker: Waker },
    Expired,
}

#[derive(Default)]
struct Slots {
    entries: Vec<Slot>,
    free: Vec<usize>,
    sweeping: bool,
}

thread_local! {
    static SLOTS: RefCell<Slots> = RefCell::new(Slots::default());
}

fn slab_id(slots: &RefCell<Slots>) -> usize {
    std::ptr::from_ref(slots) as usize
}

impl<F: Future + Unpin> Future for Deadline<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(out) = Pin::new(&mut self.inner).poll(cx) {
            return Poll::Ready(Ok(out));
        }
        let this = &mut *self;
        SLOTS.with(|cell| {
            let id = slab_id(cell);
            let mut slots = cell.borrow_mut();
            if let Some((slab, i)) = this.slot
                && slab == id
            {
                match slots.entries.get_mut(i) {
                    Some(Slot::Expired) => return Poll::Ready(Err(Elapsed)),
                    Some(Slot::Waiting { waker, .. }) => {
                        if !waker.will_wake(cx.waker()) {
                            *waker = cx.waker().clone();
                        }
                        return Poll::Pending;
                    }
                    // Not ours (cannot happen on one thread): register anew.
                    Some(Slot::Free) | None => {}
                }
            }
            let entry = Slot::Waiting {
                at: this.at,
                waker: cx.waker().clone(),
            };
            let i = match slots.free.pop() {
                Some(i) => {
                    slots.entries[i] = entry;
                    i
                }
                None => {
                    slots.entries.push(entry);
                    slots.entries.len() - 1
                }
            };
            this.slot = Some((id, i));
            if !slots.sweeping {
                slots.sweeping = true;
                tokio::spawn(sweep());
            }
            Poll::Pending
        })
    }
}

impl<F> Drop for Deadline<F> {
    fn drop(&mut self) {
        let Some((slab, i)) = self.slot.take() else {
            return;
        };
        // During thread teardown the slab may already be gone: nothing to free.
        let _ = SLOTS.try_with(|cell| {
            let mut slots = cell.borrow_mut();
            if slab_id(cell) == slab
                && let Some(slot) = slots.entries.get_mut(i)
                && !matches!(slot, Slot::Free)
            {
                *slot = Slot::Free;
                slots.free.push(i);
            }
        });
    }
}

/// Wakes the passed deadlines every `TICK` while any wait on this thread.
async fn sweep() {
    // Dropped with the task (its runtime shut down): a later runtime on
    // this thread starts its own.
    struct Sweeping;
    impl Drop for Sweeping {
        fn drop(&mut self) {
            let _ = SLOTS.try_with(|cell| cell.borrow_mut().sweeping = false);
        }
    }
    let _sweeping = Sweeping;
    let mut due = Vec::new();
    loop {
        tokio::time::sleep(TICK).await;
        let now = Instant::now();
        let waiting = SLOTS.with_borrow_mut(|slots| {
            for slot in &mut slots.entries {
                if matches!(slot, Slot::Waiting { at, .. } if *at <= now)
                    && let Slot::Waiting { waker, .. } = std::mem::replace(slot, Slot::Expired)
                {
                    due.push(waker);
                }
            }
            slots.entries.len() > slots.free.len()
        });
        // Woken outside the borrow, which waking must not meet.
        due.drain(..).for_each(Waker::wake);
        if !waiting {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_future_that_finishes_in_time_gives_its_output() {
        let quick = Box::pin(async { 7 });
        assert_eq!(within(Duration::from_secs(5), quick).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_future_that_waits_too_long_times_out_within_a_tick() {
        let started = Instant::now();
        let slow = Box::pin(tokio::time::sleep(Duration::from_secs(60)));
        assert!(within(Duration::from_millis(100), slow).await.is_err());
        // Never early.
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn slots_are_given_back_and_reused() {
        for _ in 0..3 {
            let slow = Box::pin(tokio::time::sleep(Duration::from_millis(20)));
            let waited = within(Duration::from_secs(5), slow).await;
            assert!(waited.is_ok());
        }
        SLOTS.with_borrow(|slots| {
            assert_eq!(slots.entries.len(), slots.free.len(), "every slot is free");
            assert!(slots.entries.len() <= 1, "one slot, reused");
        });
    }
}
