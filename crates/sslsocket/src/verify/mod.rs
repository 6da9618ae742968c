//! Certificate verification that collects every error (Qt's rule), not only the first.

pub(crate) mod signature;
