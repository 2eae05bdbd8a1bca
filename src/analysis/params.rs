//! Reading `(parameter, value)` pairs for the name -> estimator dispatches
//! ([`cluster::Method::parse`](super::cluster::Method::parse),
//! [`Reducer::parse`](super::Reducer::parse)): one wording of every error.

use crate::{Error, Result};

/// A non-negative integer parameter.
pub(crate) fn int(k: &str, v: &str) -> Result<usize> {
    v.parse::<usize>().map_err(|_| {
        Error::InvalidArgument(format!("parameter {k}={v} is not a non-negative integer"))
    })
}

/// A number parameter.
pub(crate) fn num(k: &str, v: &str) -> Result<f64> {
    v.parse::<f64>()
        .map_err(|_| Error::InvalidArgument(format!("parameter {k}={v} is not a number")))
}

/// A parameter `method` does not take, with those it does.
pub(crate) fn unknown(method: &str, k: &str, valid: &str) -> Error {
    Error::UnknownName {
        kind: format!("{method} parameter"),
        name: k.into(),
        valid: valid.into(),
    }
}
