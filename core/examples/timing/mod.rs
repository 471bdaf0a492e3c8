//! Timing shared by the speed examples.

use std::time::Instant;

/// The shortest of five runs of `f`, in seconds.
pub fn best_of_five(mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}
