//! [`SpinJoin`]: the core's [`Parallel`] on helper threads that wait for
//! work by spinning.
//!
//! The core splits work finely: the output channels of one convolution row,
//! two N³ queries. A q16 row of a 256-pixel-wide image is about 0.1 ms of
//! work, close to what it costs to wake a sleeping thread, so a pool whose
//! idle threads sleep (rayon's) often runs both halves on the calling thread.
//! Here each helper spins for a while after its last task before it parks,
//! so a `join` in a busy stream starts its second half within about a
//! microsecond.

use std::any::Any;
use std::cell::UnsafeCell;
use std::hint::spin_loop;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use n3net_core::parallel::Parallel;

/// How long a helper spins after its last task before it parks.
const SPIN: Duration = Duration::from_millis(2);

const IDLE: u8 = 0;
const CLAIMED: u8 = 1;
const READY: u8 = 2;
const RUNNING: u8 = 3;
const DONE: u8 = 4;

/// A task lent to a helper: valid until the `join` that lent it returns.
type Task = *mut (dyn FnMut() + Send + 'static);

/// One helper's mailbox.
struct Slot {
    /// [`IDLE`] → [`CLAIMED`] (by a `join`) → [`READY`] (task stored) →
    /// [`RUNNING`] → [`DONE`] (by the helper) → [`IDLE`] (by the `join`); or
    /// [`READY`] → [`CLAIMED`] → [`IDLE`] when the `join` takes its task
    /// back before the helper started it.
    state: AtomicU8,
    /// Written by the `join` that claimed the slot before [`READY`], taken by
    /// whoever moves the slot from [`READY`].
    task: UnsafeCell<Option<Task>>,
    /// The task's panic, if it panicked.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

// SAFETY: `task` is only accessed by the one `join` that claimed the slot
// (before it publishes READY with release ordering) and then by the one
// thread whose compare-exchange moves the slot from READY (acquire
// ordering); the task is `Send`.
unsafe impl Sync for Slot {}
// SAFETY: as for `Sync`: the task pointer is handed over under that
// protocol, and what it points to is `Send`.
unsafe impl Send for Slot {}

struct Shared {
    slots: Vec<Slot>,
    stop: AtomicBool,
}

/// A fork-join executor of `threads` threads: the caller's and
/// `threads − 1` helpers, which live as long as the value.
pub struct SpinJoin {
    shared: Arc<Shared>,
    /// Helper `i` serves `shared.slots[i]`.
    helpers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SpinJoin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpinJoin")
            .field("threads", &self.threads())
            .finish()
    }
}

impl SpinJoin {
    /// Starts `threads − 1` helper threads (none for 0 or 1).
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let n = threads.max(1) - 1;
        let shared = Arc::new(Shared {
            slots: (0..n)
                .map(|_| Slot {
                    state: AtomicU8::new(IDLE),
                    task: UnsafeCell::new(None),
                    panic: Mutex::new(None),
                })
                .collect(),
            stop: AtomicBool::new(false),
        });
        let mut pool = SpinJoin {
            shared,
            helpers: Vec::with_capacity(n),
        };
        for i in 0..n {
            let shared = Arc::clone(&pool.shared);
            let handle = thread::Builder::new()
                .name(format!("n3net-helper-{i}"))
                .spawn(move || helper(&shared, i))?;
            pool.helpers.push(handle);
        }
        Ok(pool)
    }
}

impl Drop for SpinJoin {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for h in self.helpers.drain(..) {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

/// Helper `i`: runs the tasks of its slot until the pool stops.
fn helper(shared: &Shared, i: usize) {
    let slot = &shared.slots[i];
    loop {
        let since = Instant::now();
        let mut spins = 0u32;
        while slot
            .state
            .compare_exchange_weak(READY, RUNNING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            if shared.stop.load(Ordering::Acquire) {
                return;
            }
            spins = spins.wrapping_add(1);
            if spins % 1024 == 0 && since.elapsed() > SPIN {
                // A `join` stores READY before it unparks, so no wake-up is lost.
                thread::park();
            } else {
                spin_loop();
            }
        }
        // SAFETY: this thread moved the slot from READY (acquire ordering):
        // the claiming `join` stored the task before it and waits for DONE
        // before it returns, so the task is alive and no one else touches it.
        let task = unsafe { (*slot.task.get()).take() };
        if let Some(task) = task {
            // SAFETY: as above: the borrow the task was made from outlives
            // this call.
            let r = panic::catch_unwind(AssertUnwindSafe(|| unsafe { (*task)() }));
            if let Err(p) = r {
                *slot.panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
            }
        }
        slot.state.store(DONE, Ordering::Release);
    }
}

impl Parallel for SpinJoin {
    fn threads(&self) -> usize {
        self.shared.slots.len() + 1
    }

    fn join(&self, a: &mut (dyn FnMut() + Send), b: &mut (dyn FnMut() + Send)) {
        let claimed = self.shared.slots.iter().zip(&self.helpers).find(|(s, _)| {
            s.state
                .compare_exchange(IDLE, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        });
        let Some((slot, helper)) = claimed else {
            // Every helper is busy (a nested split): both halves here.
            a();
            b();
            return;
        };
        let lent: *mut (dyn FnMut() + Send + '_) = &mut *b;
        // SAFETY: only the lifetime is erased; this function does not return
        // before the task has run and its runner let go of it.
        let task: Task = unsafe { std::mem::transmute(lent) };
        // SAFETY: this `join` claimed the slot; no one else reads the task
        // before READY.
        unsafe { *slot.task.get() = Some(task) };
        slot.state.store(READY, Ordering::Release);
        helper.thread().unpark();
        let ra = panic::catch_unwind(AssertUnwindSafe(a));
        let rb = if slot
            .state
            .compare_exchange(READY, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            // The helper had not started it (descheduled or parked): the
            // second half runs here rather than being waited for.
            // SAFETY: the slot is back in this `join`'s hands.
            unsafe { (*slot.task.get()) = None };
            panic::catch_unwind(AssertUnwindSafe(b)).err()
        } else {
            while slot.state.load(Ordering::Acquire) != DONE {
                spin_loop();
            }
            slot.panic.lock().unwrap_or_else(|e| e.into_inner()).take()
        };
        slot.state.store(IDLE, Ordering::Release);
        if let Err(p) = ra {
            panic::resume_unwind(p);
        }
        if let Some(p) = rb {
            panic::resume_unwind(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Sums `0..n` by recursive halving on `par`.
    fn sum(par: &SpinJoin, lo: u64, hi: u64) -> u64 {
        if hi - lo <= 1000 {
            return (lo..hi).sum();
        }
        let mid = (lo + hi) / 2;
        let (mut a, mut b) = (0, 0);
        par.join(&mut || a = sum(par, lo, mid), &mut || b = sum(par, mid, hi));
        a + b
    }

    #[test]
    fn nested_joins_compute_every_half_once() {
        for threads in [1, 2, 3, 5] {
            let par = SpinJoin::new(threads).unwrap();
            assert_eq!(par.threads(), threads);
            for _ in 0..20 {
                assert_eq!(sum(&par, 0, 1_000_000), 999_999 * 1_000_000 / 2);
            }
        }
    }

    #[test]
    fn a_parked_helper_wakes_or_its_half_runs_here() {
        let par = SpinJoin::new(2).unwrap();
        let main = thread::current().id();
        // Longer than the spin: the helper has parked. With a first half
        // that returns at once, the second runs on whichever thread gets it
        // first, once.
        thread::sleep(SPIN * 3);
        let runs = AtomicUsize::new(0);
        par.join(&mut || {}, &mut || {
            runs.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // A first half that waits for the second: the helper must wake.
        thread::sleep(SPIN * 3);
        let done = AtomicBool::new(false);
        let mut tb = None;
        par.join(
            &mut || {
                while !done.load(Ordering::Acquire) {
                    spin_loop();
                }
            },
            &mut || {
                tb = Some(thread::current().id());
                done.store(true, Ordering::Release);
            },
        );
        assert!(tb.is_some() && tb != Some(main));
    }

    #[test]
    fn a_panicking_half_reaches_the_caller_and_the_pool_still_works() {
        let par = SpinJoin::new(2).unwrap();
        let ran = AtomicUsize::new(0);
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            par.join(
                &mut || {
                    ran.fetch_add(1, Ordering::SeqCst);
                },
                &mut || panic!("second half"),
            )
        }));
        assert!(r.is_err());
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(sum(&par, 0, 100_000), 99_999 * 100_000 / 2);
    }
}
