//! Threads lent by the host: the core has none of its own.
//!
//! A host with threads implements [`Parallel`] (the runtime does with
//! spinning helper threads, `n3net_runtime::spin::SpinJoin`)
//! and hands it to a [`crate::exec::stream::Stream`]; the stream then splits
//! the output channels of each convolution row between `join`ed halves, and
//! computes two N³ query patches at a time.
//! Every output value is computed by the same arithmetic either way, so the
//! output does not depend on the thread count.

/// A fork-join executor.
pub trait Parallel: Sync {
    /// How many threads `join` can keep busy (1 or more).
    fn threads(&self) -> usize;

    /// Runs `a` and `b`, possibly at the same time on two threads, and
    /// returns when both have returned.
    fn join(&self, a: &mut (dyn FnMut() + Send), b: &mut (dyn FnMut() + Send));
}
