//! The errors a domain operation can end in, written once for every service, and how each becomes
//! a typed gRPC status at the boundary. Messages are for people: site and portal show them as they are.

use tonic::Status;

use crate::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// Bad input: `INVALID_ARGUMENT`.
    #[error("{0}")]
    Invalid(String),
    /// Missing, or not the caller's to see (the two look the same): `NOT_FOUND`.
    #[error("{0}")]
    NotFound(String),
    /// The record is not in a state that allows this (illegal status move, used link, full
    /// window): `FAILED_PRECONDITION`.
    #[error("{0}")]
    Conflict(String),
    /// Asked too often: `RESOURCE_EXHAUSTED`.
    #[error("{0}")]
    RateLimited(String),
    /// No valid caller or session: `UNAUTHENTICATED`.
    #[error("{0}")]
    Unauthenticated(String),
    /// A known caller without the right: `PERMISSION_DENIED`.
    #[error("{0}")]
    Forbidden(String),
    /// A dependency (mail server, another service) is down: `UNAVAILABLE`.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl DomainError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::Invalid(msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::NotFound(msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        Self::Conflict(msg.into())
    }

    /// The gRPC code this error is answered with (database failures count as unavailable; their
    /// exact code comes from [`DbError`]).
    pub fn code(&self) -> tonic::Code {
        match self {
            DomainError::Invalid(_) => tonic::Code::InvalidArgument,
            DomainError::NotFound(_) => tonic::Code::NotFound,
            DomainError::Conflict(_) => tonic::Code::FailedPrecondition,
            DomainError::RateLimited(_) => tonic::Code::ResourceExhausted,
            DomainError::Unauthenticated(_) => tonic::Code::Unauthenticated,
            DomainError::Forbidden(_) => tonic::Code::PermissionDenied,
            DomainError::Unavailable(_) | DomainError::Db(_) => tonic::Code::Unavailable,
        }
    }
}

impl From<diesel::result::Error> for DomainError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

impl From<DomainError> for Status {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Unavailable(m) => {
                tracing::warn!(error = %m, "dependency unavailable");
                Status::unavailable(m)
            }
            DomainError::Db(db) => db.into(),
            other => Status::new(other.code(), other.to_string()),
        }
    }
}

/// Checks free text from a person: trimmed, at most `max` characters, no control characters
/// other than newlines and tabs (when `multiline`). Returns the trimmed text.
pub fn text(field: &str, value: &str, max: usize, multiline: bool) -> Result<String, DomainError> {
    let v = value.trim();
    if v.chars().count() > max {
        return Err(DomainError::Invalid(format!(
            "{field} is too long (at most {max} characters)"
        )));
    }
    if v.chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\r' || c == '\t')))
    {
        return Err(DomainError::Invalid(format!(
            "{field} contains characters that are not allowed"
        )));
    }
    Ok(v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_own_code_and_text_is_checked() {
        let s: Status = DomainError::conflict("already used").into();
        assert_eq!(s.code(), tonic::Code::FailedPrecondition);
        assert_eq!(s.message(), "already used");
        let s: Status = DomainError::Db(DbError::Query(diesel::result::Error::NotFound)).into();
        assert_eq!(s.code(), tonic::Code::NotFound);
        assert_eq!(text("name", "  Ada ", 10, false).unwrap(), "Ada");
        assert!(text("name", "x".repeat(11).as_str(), 10, false).is_err());
        assert!(text("name", "a\nb", 10, false).is_err());
        assert_eq!(text("notes", "a\nb", 10, true).unwrap(), "a\nb");
    }
}
