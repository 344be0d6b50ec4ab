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
//! registered on registers again there. Its first slot is not lost: a
//! slot is given back by whoever ends it first, its deadline (polled or
//! dropped) or its thread's sweeper when it passes, and a generation
//! number tells a deadline that its slot was given back by the sweeper
//! (it elapsed) rather than still being its own.

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
    slot: Option<Held>,
}

/// The slot a deadline waits in.
#[derive(Clone, Copy)]
struct Held {
    /// Its thread's slab, by address.
    slab: usize,
    index: usize,
    /// The slot's generation when taken: a different one means the
    /// sweeper gave it back, the deadline having passed.
    generation: u32,
}

#[derive(Default)]
struct Slot {
    generation: u32,
    /// Set while taken.
    waiting: Option<(Instant, Waker)>,
}

#[derive(Default)]
struct Slots {
    entries: Vec<Slot>,
    free: Vec<usize>,
    sweeping: bool,
}

impl Slots {
    fn take(&mut self, at: Instant, waker: Waker) -> (usize, u32) {
        let index = self.free.pop().unwrap_or_else(|| {
            self.entries.push(Slot::default());
            self.entries.len() - 1
        });
        let slot = &mut self.entries[index];
        slot.waiting = Some((at, waker));
        (index, slot.generation)
    }

    /// Gives slot `index` back; its waker, if it was taken.
    fn give_back(&mut self, index: usize) -> Option<Waker> {
        let slot = &mut self.entries[index];
        let (_, waker) = slot.waiting.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index);
        Some(waker)
    }

    /// The slot `held` names, when it is still the holder's.
    fn held(&mut self, held: Held) -> Option<&mut Slot> {
        self.entries
            .get_mut(held.index)
            .filter(|s| s.generation == held.generation && s.waiting.is_some())
    }

    fn waiting(&self) -> bool {
        self.entries.len() > self.free.len()
    }
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
            if let Some(held) = this.slot
                && held.slab == id
            {
                let Some(slot) = slots.held(held) else {
                    // Given back by the sweeper: the deadline passed.
                    this.slot = None;
                    return Poll::Ready(Err(Elapsed));
                };
                if let Some((_, waker)) = &mut slot.waiting
                    && !waker.will_wake(cx.waker())
                {
                    *waker = cx.waker().clone();
                }
                return Poll::Pending;
            }
            // First poll, or polled on another thread than before: the
            // slot there is given back by that thread's sweeper in time.
            let (index, generation) = slots.take(this.at, cx.waker().clone());
            this.slot = Some(Held {
                slab: id,
                index,
                generation,
            });
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
        let Some(held) = self.slot.take() else {
            return;
        };
        // During thread teardown the slab may already be gone: nothing to
        // free. On another thread, the sweeper of the slot's own gives it
        // back when it passes.
        let _ = SLOTS.try_with(|cell| {
            let mut slots = cell.borrow_mut();
            if slab_id(cell) == held.slab && slots.held(held).is_some() {
                drop(slots.give_back(held.index));
            }
        });
    }
}

/// Every `TICK` while any deadline waits on this thread, gives back the
/// slots of those that passed and wakes their tasks.
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
            for index in 0..slots.entries.len() {
                if matches!(slots.entries[index].waiting, Some((at, _)) if at <= now) {
                    due.extend(slots.give_back(index));
                }
            }
            slots.waiting()
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

    fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(f).poll(&mut cx)
    }

    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    /// Registered on one thread, then polled (`poll_there`) or only
    /// dropped on another: the first thread's slot is given back when the
    /// deadline passes and its sweeper stops.
    fn moved_to_another_thread(poll_there: bool) {
        let here = current_thread();
        let mut deadline = within(
            Duration::from_millis(100),
            Box::pin(std::future::pending::<()>()),
        );
        {
            // Registered here: its sweeper is spawned on this runtime.
            let _runtime = here.enter();
            assert!(poll_once(&mut deadline).is_pending());
        }
        std::thread::spawn(move || {
            current_thread().block_on(async move {
                if poll_there {
                    assert!((&mut deadline).await.is_err(), "it elapses there");
                    SLOTS.with_borrow(|s| assert!(!s.waiting(), "given back there"));
                }
                drop(deadline);
            });
        })
        .join()
        .unwrap();
        here.block_on(async { tokio::time::sleep(Duration::from_millis(100) + 3 * TICK).await });
        SLOTS.with_borrow(|slots| {
            assert_eq!(slots.entries.len(), 1);
            assert!(!slots.waiting(), "the first thread's slot is given back");
            assert!(!slots.sweeping, "and its sweeper stopped");
        });
    }

    #[test]
    fn a_deadline_polled_on_another_thread_leaves_nothing_behind() {
        moved_to_another_thread(true);
    }

    #[test]
    fn a_deadline_dropped_on_another_thread_leaves_nothing_behind() {
        moved_to_another_thread(false);
    }

    #[test]
    fn a_slot_given_back_by_the_sweeper_and_taken_again_is_not_confused() {
        current_thread().block_on(async {
            let pending = || Box::pin(std::future::pending::<()>());
            let mut passed = within(Duration::ZERO, pending());
            assert!(poll_once(&mut passed).is_pending());
            tokio::time::sleep(2 * TICK).await;
            // The sweeper gave the slot back; a new deadline takes it.
            let mut later = within(Duration::from_secs(60), pending());
            assert!(poll_once(&mut later).is_pending());
            SLOTS.with_borrow(|s| assert_eq!(s.entries.len(), 1, "the same slot"));
            assert!(matches!(poll_once(&mut passed), Poll::Ready(Err(Elapsed))));
            drop(passed);
            SLOTS.with_borrow(|s| assert!(s.waiting(), "the new holder keeps it"));
            assert!(poll_once(&mut later).is_pending());
            drop(later);
            SLOTS.with_borrow(|s| assert!(!s.waiting()));
        });
    }
}
