//! Placeholder: implemented in its own issue.
#![forbid(unsafe_code)]
