//! A local command as a model: `exec:./model.sh --flag`. Each call starts the command, writes
//! one JSON request to its stdin (`item_id`, `messages`, `params`) and reads one JSON object
//! from its stdout: `{"response": "..."}`, optionally with `"usage"`, or `{"filtered":
//! "reason"}`, or `{"error": "..."}` (retried). A non-zero exit is an error with its stderr.

use super::{CallError, Params, Reply};
use assay_ir::{Message, Usage};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

#[derive(Clone, Debug)]
pub struct Exec {
    pub command: Vec<String>,
}

impl Exec {
    pub fn new(spec: &str) -> Result<Self, String> {
        let command: Vec<String> = spec.split_whitespace().map(str::to_string).collect();
        if command.is_empty() {
            return Err("`exec:` needs a command".into());
        }
        Ok(Exec { command })
    }

    pub async fn call(
        &self,
        item_id: &str,
        messages: &[Message],
        params: &Params,
        timeout: Duration,
    ) -> Result<Reply, CallError> {
        let retry = |message: String| CallError::Retryable {
            message,
            retry_after: None,
            rate_limited: false,
        };
        let mut child = tokio::process::Command::new(&self.command[0])
            .args(&self.command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| CallError::Fatal(format!("cannot start `{}`: {e}", self.command[0])))?;
        let request = json!({ "item_id": item_id, "messages": messages, "params": params });
        let mut stdin = child.stdin.take().expect("piped");
        let write = async move {
            stdin.write_all(request.to_string().as_bytes()).await?;
            stdin.shutdown().await
        };
        let (written, output) = match tokio::time::timeout(timeout, async {
            let written = write.await;
            (written, child.wait_with_output().await)
        })
        .await
        {
            Ok(done) => done,
            Err(_) => {
                return Err(retry(format!(
                    "`{}` timed out after {timeout:?}",
                    self.command[0]
                )));
            }
        };
        let output = output.map_err(|e| retry(format!("`{}` failed: {e}", self.command[0])))?;
        if !output.status.success() {
            let stderr: String = String::from_utf8_lossy(&output.stderr)
                .chars()
                .take(300)
                .collect();
            return Err(retry(format!(
                "`{}` exited with {}: {}",
                self.command[0],
                output.status,
                stderr.trim()
            )));
        }
        if let Err(e) = written {
            return Err(retry(format!("cannot write to `{}`: {e}", self.command[0])));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let v: Value = serde_json::from_str(text.trim()).map_err(|_| {
            retry(format!(
                "`{}` did not print one JSON object: {}",
                self.command[0],
                text.chars().take(200).collect::<String>()
            ))
        })?;
        if let Some(e) = v["error"].as_str() {
            return Err(retry(format!("`{}`: {e}", self.command[0])));
        }
        if let Some(reason) = v["filtered"].as_str() {
            return Ok(Reply {
                text: String::new(),
                filtered: Some(reason.into()),
                usage: None,
            });
        }
        let Some(response) = v["response"].as_str() else {
            return Err(CallError::Fatal(format!(
                "`{}` printed no \"response\"",
                self.command[0]
            )));
        };
        let usage = serde_json::from_value::<Usage>(v["usage"].clone()).ok();
        Ok(Reply {
            text: response.to_string(),
            filtered: None,
            usage,
        })
    }
}
