//! Real Docker containers (being written).
