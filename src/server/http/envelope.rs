//! The seeds' request bodies, `{"action": "...", "data": {...}}`, for every domain: the body
//! parses straight into the domain's enum of actions (adjacently tagged, camelCase names),
//! whose data are structs of validating newtypes, so a handler only ever sees valid input.
//! A failure names the field by its path (`data.retry_config.max_attempts`).
//!
//! ```ignore
//! #[derive(Deserialize)]
//! #[serde(tag = "action", content = "data", rename_all = "camelCase")]
//! enum JobOperation { CreateJob(NewJob), DeleteJob(DeleteJob) }
//! async fn job_operations(principal: Principal, Envelope(op): Envelope<JobOperation>) -> ...
//! ```

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::server::failure::Refusal;

pub struct Envelope<T>(pub T);

impl<S, T> FromRequest<S> for Envelope<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        // A form or text body cannot be a cross-site JSON call in disguise: only JSON is read.
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(ApiError::Refused(
                Refusal::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "send the body as JSON with Content-Type: application/json",
                )
                .field("Content-Type"),
            ));
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|_| ApiError::invalid(None, "could not read the request body"))?;
        parse(&body).map(Envelope)
    }
}

/// Parses a JSON body into `T`, naming the failing field by its path.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut json = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut json).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = inner.to_string();
        // serde reports an unknown or missing tag at the root; the culprit is `action`.
        let field = if path == "." {
            message
                .contains("variant")
                .then(|| "action".to_string())
                .or_else(|| message.contains("`action`").then(|| "action".to_string()))
        } else {
            Some(path)
        };
        ApiError::Invalid {
            field: field.map(Into::into),
            message: message.into(),
        }
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    /// A validating newtype as domains write them: private field, checked on the way in.
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(try_from = "i64")]
    struct Priority(i16);

    impl TryFrom<i64> for Priority {
        type Error = String;
        fn try_from(value: i64) -> Result<Self, String> {
            (1..=10)
                .contains(&value)
                .then_some(Priority(value as i16))
                .ok_or_else(|| format!("priority must be 1 to 10, got {value}"))
        }
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Retry {
        max_attempts: u32,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct NewThing {
        priority: Priority,
        retry_config: Retry,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(tag = "action", content = "data", rename_all = "camelCase")]
    enum Operation {
        CreateThing(NewThing),
        DeleteThing { id: u64 },
    }

    fn field_of(body: &str) -> (Option<String>, String) {
        match parse::<Operation>(body.as_bytes()) {
            Err(ApiError::Invalid { field, message }) => {
                (field.map(|f| f.into_owned()), message.into_owned())
            }
            other => panic!("expected Invalid, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn a_valid_body_becomes_its_action() {
        let op: Operation = parse(br#"{"action":"deleteThing","data":{"id":7}}"#).unwrap();
        assert_eq!(op, Operation::DeleteThing { id: 7 });
        let op: Operation = parse(
            br#"{"action":"createThing","data":{"priority":3,"retry_config":{"max_attempts":2}}}"#,
        )
        .unwrap();
        assert_eq!(
            op,
            Operation::CreateThing(NewThing {
                priority: Priority(3),
                retry_config: Retry { max_attempts: 2 }
            })
        );
    }

    #[test]
    fn failures_name_the_field_by_its_path() {
        let (field, message) = field_of(
            r#"{"action":"createThing","data":{"priority":11,"retry_config":{"max_attempts":2}}}"#,
        );
        assert_eq!(field.as_deref(), Some("data.priority"));
        assert!(message.contains("1 to 10"), "{message}");
        let (field, _) = field_of(
            r#"{"action":"createThing","data":{"priority":1,"retry_config":{"max_attempts":-1}}}"#,
        );
        assert_eq!(field.as_deref(), Some("data.retry_config.max_attempts"));
        let (field, message) = field_of(r#"{"action":"launchThing","data":{}}"#);
        assert_eq!(field.as_deref(), Some("action"), "{message}");
        let (field, _) = field_of(r#"{"data":{"id":1}}"#);
        assert_eq!(field.as_deref(), Some("action"));
    }
}
