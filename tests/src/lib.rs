//! The integration-test harness (written in its own commit).
