//! A local command as a model: `exec:./model.sh --flag`. Each call starts the command, writes
//! one JSON request to its stdin (`item_id`, `messages`, `params`) and reads one JSON object
//! from its stdout: `{"response": "..."}`, optionally with `"usage"`, or `{"filtered":
//! "reason"}`, or `{"error": "..."}` (retried). A non-zero exit is an error with its stderr.
//!
//! The request is written while stdout and stderr are read, all three at once: a program may
//! write as much as it likes to either before it reads its input without blocking on a full
//! pipe. Each stream is read up to the call's `max_response_bytes`; more is the call's error
//! and the command is killed.

use super::{CallError, CallLimits, Params, Reply, too_large};
use assay_ir::{Message, Usage};
use serde_json::{Value, json};
use std::process::Stdio;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

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
        limits: CallLimits,
        media: &[super::Media],
    ) -> Result<Reply, CallError> {
        let name = &self.command[0];
        let mut child = tokio::process::Command::new(name)
            .args(&self.command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| CallError::Fatal(format!("cannot start `{name}`: {e}")))?;
        let mut request = json!({ "item_id": item_id, "messages": messages, "params": params });
        if !media.is_empty() {
            // The command gets the attachments as they are sent to APIs: type and base64.
            request["attachments"] = json!(
                media
                    .iter()
                    .map(|m| json!({ "media_type": m.media_type, "sha256": m.sha256, "data": &*m.base64 }))
                    .collect::<Vec<_>>()
            );
        }
        let mut stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let max = limits.max_response_bytes;
        let exchange = async {
            let write = async move {
                let written = stdin.write_all(request.to_string().as_bytes()).await;
                // Dropping stdin closes it: the command sees the end of its input.
                Ok::<_, CallError>(written)
            };
            let stderr_too_large =
                CallError::Fatal(format!("`{name}` wrote more than {max} bytes to stderr"));
            let (written, stdout, stderr) = tokio::try_join!(
                write,
                read_bounded(name, stdout, max, too_large(max)),
                read_bounded(name, stderr, max, stderr_too_large),
            )?;
            let status = child
                .wait()
                .await
                .map_err(|e| retry(format!("`{name}` failed: {e}")))?;
            Ok::<_, CallError>((written, stdout, stderr, status))
        };
        // On an error or the timeout the child is dropped, which kills it.
        let (written, stdout, stderr, status) =
            match tokio::time::timeout(limits.timeout, exchange).await {
                Ok(done) => done?,
                Err(_) => {
                    return Err(retry(format!(
                        "`{name}` timed out after {:?}",
                        limits.timeout
                    )));
                }
            };
        if !status.success() {
            let stderr: String = String::from_utf8_lossy(&stderr).chars().take(300).collect();
            return Err(retry(format!(
                "`{name}` exited with {status}: {}",
                stderr.trim()
            )));
        }
        // A failed write matters only when the exit status said nothing worse.
        if let Err(e) = written {
            return Err(retry(format!("cannot write to `{name}`: {e}")));
        }
        let not_json = |why: &str| {
            retry(format!(
                "`{name}` did not print one JSON object ({why}): {}",
                String::from_utf8_lossy(&stdout)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ))
        };
        let text = std::str::from_utf8(&stdout).map_err(|_| not_json("not UTF-8"))?;
        let v: Value = serde_json::from_str(text.trim()).map_err(|e| not_json(&e.to_string()))?;
        if let Some(e) = v["error"].as_str() {
            return Err(retry(format!("`{name}`: {e}")));
        }
        if let Some(reason) = v["filtered"].as_str() {
            return Ok(Reply {
                text: String::new(),
                filtered: Some(reason.into()),
                usage: None,
                logprobs: None,
            });
        }
        let Some(response) = v["response"].as_str() else {
            return Err(CallError::Fatal(format!(
                "`{name}` printed no \"response\""
            )));
        };
        let usage = serde_json::from_value::<Usage>(v["usage"].clone()).ok();
        Ok(Reply {
            text: response.to_string(),
            filtered: None,
            usage,
            logprobs: None,
        })
    }
}

/// An error worth another try.
fn retry(message: String) -> CallError {
    CallError::Retryable {
        message,
        retry_after: None,
        rate_limited: false,
    }
}

/// Reads one of the command's outputs to its end; more than `max` bytes is `too_much`.
async fn read_bounded(
    name: &str,
    stream: impl AsyncRead + Unpin,
    max: usize,
    too_much: CallError,
) -> Result<Vec<u8>, CallError> {
    let mut out = Vec::new();
    stream
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .await
        .map_err(|e| retry(format!("cannot read the output of `{name}`: {e}")))?;
    if out.len() > max {
        return Err(too_much);
    }
    Ok(out)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use assay_ir::Role;
    use std::time::Duration;

    const LIMITS: CallLimits = CallLimits {
        timeout: Duration::from_secs(10),
        max_response_bytes: super::super::DEFAULT_MAX_RESPONSE_BYTES,
    };

    /// A shell script as a model, with a prompt of `prompt_bytes` bytes.
    async fn run_script(
        script: &str,
        prompt_bytes: usize,
        limits: CallLimits,
    ) -> Result<Reply, CallError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.sh");
        std::fs::write(&path, format!("{script}\n")).unwrap();
        // Run by the shell rather than executed itself: a file just written can be "busy"
        // (ETXTBSY) while another test thread forks with it still open.
        let exec = Exec::new(&format!("/bin/sh {}", path.display())).unwrap();
        let messages = [Message {
            role: Role::User,
            content: "x".repeat(prompt_bytes),
        }];
        exec.call("i1", &messages, &Params::new(), limits, &[])
            .await
    }

    /// 200 KB on stderr before reading a 200 KB request: both pipes overflow unless the
    /// request is written while stderr is read.
    #[tokio::test]
    async fn stderr_before_stdin_does_not_deadlock() {
        let reply = run_script(
            "head -c 204800 /dev/zero | tr '\\0' e >&2\n\
             wc -c > /dev/null\n\
             echo '{\"response\": \"read it all\"}'",
            200 * 1024,
            LIMITS,
        )
        .await;
        assert_eq!(reply.map(|r| r.text), Ok("read it all".to_string()));
    }

    #[tokio::test]
    async fn endless_stdout_stops_at_the_limit() {
        let limits = CallLimits {
            max_response_bytes: 10_000,
            ..LIMITS
        };
        assert_eq!(
            run_script("yes", 10, limits).await,
            Err(CallError::Fatal("response larger than 10000 bytes".into()))
        );
    }

    #[tokio::test]
    async fn endless_stderr_stops_at_the_limit() {
        let limits = CallLimits {
            max_response_bytes: 10_000,
            ..LIMITS
        };
        let Err(CallError::Fatal(message)) = run_script("yes >&2", 10, limits).await else {
            panic!("an endless stderr is the call's error")
        };
        assert!(
            message.ends_with("` wrote more than 10000 bytes to stderr"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_command_that_never_answers_times_out() {
        let limits = CallLimits {
            timeout: Duration::from_millis(300),
            ..LIMITS
        };
        let Err(CallError::Retryable { message, .. }) = run_script("sleep 5", 10, limits).await
        else {
            panic!("a timeout is retried")
        };
        assert!(message.ends_with("timed out after 300ms"), "{message}");
    }
}
