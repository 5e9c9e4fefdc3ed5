//! Metrics (Prometheus, closed low-cardinality label sets, explicit µs-range buckets, upkeep) and
//! logging set-up. Names are declared once, here.
pub mod metrics;
