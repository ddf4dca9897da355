//! The bench's smoke configuration against a real `adze lite`: every scenario at a few
//! hundred runs, asserting only that each run executed each of its tasks exactly once.

mod smoke;
