//! Why a script could not be run: it could not be read or parsed, or it asks for something impossible.
//! A script that runs and disagrees with the model is not an error: it is a failed [`super::Report`].

use thiserror::Error;

/// A script that cannot be run. Every message names the offending file, step or value.
#[derive(Debug, Error)]
pub enum BringupError {
    #[error("cannot read bring-up script {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Not JSON, or not this format (unknown step, unknown field, bad number): serde's message, with
    /// line and column.
    #[error("{origin}: not a valid bring-up script: {message}")]
    Parse { origin: String, message: String },
    /// The `model` option string was refused by the model's own parser, or names no model.
    #[error("{origin}: model `{model}`: {message}")]
    Model {
        origin: String,
        model: String,
        message: String,
    },
    /// The `memory` list is unusable (overlap, too large, misaligned, ...).
    #[error("{origin}: memory: {message}")]
    Memory { origin: String, message: String },
    /// A step is well-formed JSON but cannot be executed as written (`at` is its path, e.g.
    /// `steps[4].steps[1]`).
    #[error("{origin}: {at}: {message}")]
    Step {
        origin: String,
        at: String,
        message: String,
    },
}
