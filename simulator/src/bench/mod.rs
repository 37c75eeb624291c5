//! The benchmark harness (written next).
