//! Metrics (Prometheus, closed low-cardinality label sets, explicit µs-range buckets, upkeep) and the
//! decision log. Names are declared once, here.
pub mod decision_log;
pub mod metrics;
