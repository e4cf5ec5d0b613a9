//! VM test harness.
