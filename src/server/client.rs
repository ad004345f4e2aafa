//! A client of the seeds' `{action, data}` routes for the programs that drive Jobdeck from
//! outside (`jobdeck sim`, `loadgen`, and next `jobdeck worker`): the one place that knows
//! the routes, the envelope, the bearer token and what a refusal looks like. Actions are
//! named by `model::Call`, the list the server's operation enums answer with.

use serde_json::{json, Value};

use crate::model::Call;

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// Any answer but 2xx, with its body (`error`, `field`, `current_status`, ...).
    #[error("{action} answered {status}: {body}")]
    Refused {
        action: &'static str,
        status: u16,
        body: Value,
    },
}

impl CallError {
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Refused { status, .. } => Some(*status),
            CallError::Http(_) => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct OpsClient {
    http: reqwest::Client,
    base_url: String,
    token: String,
}

impl OpsClient {
    pub fn new(http: reqwest::Client, base_url: &str, token: &str) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }

    pub fn url(&self, call: impl Into<Call>) -> String {
        format!("{}{}", self.base_url, call.into().route())
    }

    /// The body of `call` around `data` already written as JSON (for callers that write
    /// their own, as the load generator does to keep its own cost out of the figures).
    pub fn envelope(call: impl Into<Call>, data_json: &str) -> String {
        format!(
            r#"{{"action":"{}","data":{data_json}}}"#,
            call.into().name()
        )
    }

    /// Sends `call` and gives back its `data`.
    pub async fn call(&self, call: impl Into<Call>, data: Value) -> Result<Value, CallError> {
        let call = call.into();
        let response = self
            .http
            .post(self.url(call))
            .bearer_auth(&self.token)
            .json(&json!({ "action": call.name(), "data": data }))
            .send()
            .await?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            Ok(body["data"].clone())
        } else {
            Err(CallError::Refused {
                action: call.name(),
                status,
                body,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobCall, TaskCall};

    #[test]
    fn an_envelope_names_its_action_and_route() {
        let body = OpsClient::envelope(JobCall::UpdateBatchJob, r#"{"job_id":"x"}"#);
        let parsed: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            parsed,
            json!({ "action": "updateBatchJob", "data": { "job_id": "x" } })
        );
        let client = OpsClient::new(reqwest::Client::new(), "http://h:1/", "t");
        assert_eq!(client.url(TaskCall::AddTasks), "http://h:1/task-operations");
        assert_eq!(client.url(JobCall::CreateJob), "http://h:1/job-operations");
    }
}
