//! Why a request cannot be evaluated. Each of these refuses the request: an object of a kind
//! this policy owns that it cannot read is never waved through.

use std::fmt;

use crate::settings::SettingsErrors;
use crate::text::Shown;

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
    /// A field of one container or image volume that cannot be read.
    Slot {
        /// `spec.containers[0]`
        location: String,
        name: String,
        problem: SlotProblem,
    },
    /// A fix that cannot be applied to the object's text; never expected.
    NotMutable(String),
}

/// What is wrong with a container's or an image volume's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SlotProblem {
    NoImage,
    /// The field, as messages name it (`imagePullPolicy`, `image.reference`), is not a string.
    NotAString(&'static str),
    /// An image volume's `image` is not an object.
    ImageNotAnObject,
    /// An image volume's `image` has this key twice.
    DuplicateField(String),
}

impl fmt::Display for SlotProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoImage => f.write_str("has no image"),
            Self::NotAString(field) => write!(f, "{field} is not a string"),
            Self::ImageNotAnObject => f.write_str("image is not an object"),
            Self::DuplicateField(key) => {
                write!(f, "duplicate field `{}` in image", Shown(key))
            }
        }
    }
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
            Self::Slot {
                location,
                name,
                problem,
            } => write!(f, "{location} \"{}\": {problem}", Shown(name)),
            Self::NotMutable(pointer) => write!(f, "the object cannot be mutated at {pointer}"),
        }
    }
}
