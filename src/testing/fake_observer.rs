//! A fake of the observing port that records the held-back counts it is told (the `scrc_held_back` gauge).

use std::sync::Mutex;

use crate::ports::Observer;

/// Records every held-back count it is told, in order.
#[derive(Debug, Default)]
pub struct HeldCounts(Mutex<Vec<usize>>);

impl HeldCounts {
    /// The counts told so far.
    pub fn seen(&self) -> Vec<usize> {
        crate::sync::lock(&self.0).clone()
    }
}

impl Observer for HeldCounts {
    fn held_back(&self, scripts: usize) {
        crate::sync::lock(&self.0).push(scripts);
    }
}
