//! A small client of the QEMU Machine Protocol: JSON objects, one per line, on the VM's
//! unix socket. The server greets, the client negotiates capabilities, then each command
//! gets one answer; asynchronous events (`STOP`, `SHUTDOWN`, …) may come in between and
//! are skipped, since the driver asks for state instead of following events.
//!
//! QEMU serves one QMP client at a time on a socket, so the driver connects per operation
//! and lets go at once; every read and write is under a timeout, so a hung QEMU (or
//! another client holding the socket) costs a bounded wait, never a stuck task.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// The longest line accepted from QEMU. Answers to the commands ims sends are a few
/// hundred bytes; a `human-monitor-command` may print more, never this much.
const MAX_LINE: u64 = 1 << 20;

/// Why a QMP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// The socket could not be reached or broke (QEMU gone, for instance).
    #[error("QMP connection: {0}")]
    Io(#[from] std::io::Error),
    /// QEMU did not answer in time.
    #[error("QMP did not answer {0} within {1:?}")]
    Timeout(String, Duration),
    /// QEMU sent something that is not QMP.
    #[error("QMP protocol: {0}")]
    Protocol(String),
    /// QEMU refused the command.
    #[error("QMP {command} failed: {class}: {desc}")]
    Command {
        /// The command.
        command: String,
        /// QEMU's error class (`GenericError`, `CommandNotFound`, …).
        class: String,
        /// QEMU's message.
        desc: String,
    },
}

/// One negotiated QMP session.
#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    timeout: Duration,
    next_id: u64,
}

impl Qmp {
    /// Connects to `socket`, reads the greeting and leaves negotiation mode, each step
    /// within `timeout`.
    pub async fn connect(socket: &Path, timeout: Duration) -> Result<Qmp, QmpError> {
        let stream = tokio::time::timeout(timeout, UnixStream::connect(socket))
            .await
            .map_err(|_| QmpError::Timeout("the connection".into(), timeout))??;
        let (read, writer) = stream.into_split();
        let mut qmp = Qmp {
            reader: BufReader::new(read),
            writer,
            timeout,
            next_id: 0,
        };
        let greeting = tokio::time::timeout(timeout, qmp.read_message())
            .await
            .map_err(|_| QmpError::Timeout("the greeting".into(), timeout))??;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Protocol(format!("no greeting: {greeting}")));
        }
        qmp.execute("qmp_capabilities", None).await?;
        Ok(qmp)
    }

    /// Runs `command` with `arguments` and returns its `return` value.
    pub async fn execute(
        &mut self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<Value, QmpError> {
        self.next_id += 1;
        let id = self.next_id;
        let mut request = json!({ "execute": command, "id": id });
        if let Some(arguments) = arguments {
            request["arguments"] = arguments;
        }
        let mut line = request.to_string();
        line.push('\n');
        let timeout = self.timeout;
        let exchange = async {
            self.writer.write_all(line.as_bytes()).await?;
            loop {
                let message = self.read_message().await?;
                if message.get("event").is_some() {
                    continue;
                }
                if message.get("id").and_then(Value::as_u64) != Some(id) {
                    return Err(QmpError::Protocol(format!("unexpected answer {message}")));
                }
                if let Some(value) = message.get("return") {
                    return Ok(value.clone());
                }
                if let Some(error) = message.get("error") {
                    let text = |k: &str| {
                        error
                            .get(k)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    };
                    return Err(QmpError::Command {
                        command: command.to_string(),
                        class: text("class"),
                        desc: text("desc"),
                    });
                }
                return Err(QmpError::Protocol(format!("unexpected answer {message}")));
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| QmpError::Timeout(command.to_string(), timeout))?
    }

    /// Runs a human monitor command line (`qemu-io …`, `info block`) and returns what
    /// it printed. HMP reports most failures as printed text, not as a QMP error.
    pub async fn human(&mut self, command_line: &str) -> Result<String, QmpError> {
        let out = self
            .execute(
                "human-monitor-command",
                Some(json!({ "command-line": command_line })),
            )
            .await?;
        Ok(out.as_str().unwrap_or_default().to_string())
    }

    /// The guest's run state as QEMU names it (`running`, `paused`, `shutdown`, …).
    pub async fn run_state(&mut self) -> Result<String, QmpError> {
        let status = self.execute("query-status", None).await?;
        status
            .get("status")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| QmpError::Protocol(format!("query-status gave {status}")))
    }

    /// One JSON object from the stream; end of stream is an error (QEMU went away).
    async fn read_message(&mut self) -> Result<Value, QmpError> {
        let mut buf = Vec::new();
        (&mut self.reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut buf)
            .await?;
        if buf.is_empty() {
            return Err(QmpError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "QEMU closed the QMP socket",
            )));
        }
        if buf.last() != Some(&b'\n') {
            return Err(QmpError::Protocol("an over-long or cut-off line".into()));
        }
        serde_json::from_slice(&buf).map_err(|e| QmpError::Protocol(format!("bad JSON: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::UnixListener;

    /// A fake QEMU: greets, then answers each request with the scripted lines.
    async fn serve(listener: UnixListener, script: Vec<Vec<String>>) {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write
            .write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n")
            .await
            .unwrap();
        for answers in script {
            let Ok(Some(request)) = lines.next_line().await else {
                return;
            };
            let id = serde_json::from_str::<Value>(&request).unwrap()["id"].clone();
            for answer in answers {
                let line = answer.replace("ID", &id.to_string());
                write.write_all(line.as_bytes()).await.unwrap();
                write.write_all(b"\n").await.unwrap();
            }
        }
        // Hold the connection open (a hung QEMU) until the client goes.
        let _ = lines.next_line().await;
    }

    fn socket() -> (tempfile::TempDir, std::path::PathBuf, UnixListener) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&path).unwrap();
        (dir, path, listener)
    }

    #[tokio::test]
    async fn events_are_skipped_and_errors_reported() {
        let (_dir, path, listener) = socket();
        let script = vec![
            vec![r#"{"return": {}, "id": ID}"#.into()],
            vec![
                r#"{"event": "STOP", "timestamp": {}}"#.into(),
                r#"{"return": {"status": "paused", "running": false}, "id": ID}"#.into(),
            ],
            vec![r#"{"error": {"class": "GenericError", "desc": "nope"}, "id": ID}"#.into()],
            vec![],
        ];
        tokio::spawn(serve(listener, script));
        let mut qmp = Qmp::connect(&path, Duration::from_secs(2)).await.unwrap();
        assert_eq!(qmp.run_state().await.unwrap(), "paused");
        match qmp.execute("cont", None).await {
            Err(QmpError::Command { class, desc, .. }) => {
                assert_eq!((class.as_str(), desc.as_str()), ("GenericError", "nope"))
            }
            other => panic!("{other:?}"),
        }
        // No answer: a bounded wait, then a timeout.
        let began = std::time::Instant::now();
        qmp.timeout = Duration::from_millis(200);
        assert!(matches!(
            qmp.execute("query-status", None).await,
            Err(QmpError::Timeout(..))
        ));
        assert!(began.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_peer_that_is_not_qmp_is_refused() {
        let (_dir, path, listener) = socket();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            stream.write_all(b"SSH-2.0-x\n").await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        assert!(Qmp::connect(&path, Duration::from_secs(2)).await.is_err());
    }
}
