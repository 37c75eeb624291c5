//! Connections to the outside world.
