//! Why a request cannot be evaluated. Each of these refuses the request: an object of a kind
//! this policy owns that it cannot read is never waved through.

use std::fmt;

use crate::settings::SettingsErrors;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestError {
    Unreadable(String),
    InvalidSettings(SettingsErrors),
    NoObject,
    ObjectNotAnObject,
    /// A field the policy needs is absent or null; the path is in the object.
    Missing(String),
    NotAnObject(String),
    NotAList(String),
    NotAString(String),
    /// A fix that cannot be applied to the object's text; never expected.
    NotMutable(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable(reason) => write!(f, "the request cannot be read: {reason}"),
            Self::InvalidSettings(errors) => {
                write!(f, "the policy settings are not valid: {errors}")
            }
            Self::NoObject => f.write_str("the request has no object to evaluate"),
            Self::ObjectNotAnObject => f.write_str("the object is not a JSON object"),
            Self::Missing(path) => write!(f, "the object has no {path}"),
            Self::NotAnObject(path) => write!(f, "{path} is not an object"),
            Self::NotAList(path) => write!(f, "{path} is not a list"),
            Self::NotAString(path) => write!(f, "{path} is not a string"),
            Self::NotMutable(pointer) => write!(f, "the object cannot be mutated at {pointer}"),
        }
    }
}
