//! The N³ block: patches, search window, distances, the continuous
//! nearest-neighbour relaxation, aggregation and fold.
//!
//! [`relax`] and [`aggregate`] work on any data (rows of a matrix and an index
//! set); [`grid`] and [`block`] apply them to image patches.

pub mod aggregate;
pub mod block;
pub mod grid;
pub mod relax;
