//! fakellm (PEERS.md): a real OpenAI-compatible chat-completions server driven by YAML rules, run
//! from the test venv as `fakellm serve`. Rules match on message text (the system prompt
//! included: pick trigger words it never contains), turn (per conversation, keyed by the first
//! user message), and earlier tool results; a rule's `status` only applies to non-streamed calls.

use std::time::{Duration, Instant};

use crate::{TempDir, free_port, peer_or_skip, stop_child, venv_bin};

pub struct FakeLlm {
    pub port: u16,
    child: std::process::Child,
    dir: TempDir,
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

impl FakeLlm {
    /// Starts fakellm with `rules_yaml` (the whole config file), or skips the test when the venv has
    /// no fakellm (a failure when peers are required).
    pub fn start(rules_yaml: &str) -> Option<FakeLlm> {
        let bin = peer_or_skip(
            "fakellm (pip install fakellm in OMNEURO_TEST_VENV)",
            venv_bin("fakellm"),
        )?;
        let dir = TempDir::new("fakellm");
        let config = dir.0.join("rules.yaml");
        std::fs::write(&config, rules_yaml).unwrap();
        let port = free_port();
        let log = dir.0.join("fakellm.log");
        let mut child = std::process::Command::new(bin)
            .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--config")
            .arg(&config)
            .current_dir(&dir.0)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.0.join("fakellm.err")).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(FakeLlm { port, child, dir });
            }
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                stop_child(&mut child);
                panic!(
                    "fakellm did not start on {port} ({exited:?}):\n{}",
                    std::fs::read_to_string(dir.0.join("fakellm.err")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What `[llm] base_url` should be.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `/_fakellm/stats`: `total_requests`, `by_rule`, `recent`.
    pub async fn stats(&self) -> serde_json::Value {
        reqwest::get(format!("{}/_fakellm/stats", self.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// How many requests matched rule `name`.
    pub async fn matched(&self, name: &str) -> u64 {
        self.stats().await["by_rule"][name].as_u64().unwrap_or(0)
    }

    pub async fn total(&self) -> u64 {
        self.stats().await["total_requests"].as_u64().unwrap_or(0)
    }

    /// Forgets conversations (turn counts); stats are kept.
    pub async fn reset(&self) {
        reqwest::Client::new()
            .post(format!("{}/_fakellm/reset", self.base_url()))
            .send()
            .await
            .unwrap();
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir.0
    }
}

/// llmock (PEERS.md): an OpenAI-compatible server whose `/v1/embeddings` gives deterministic
/// 1536-number vectors (the same text, the same vector), run from the test venv.
pub struct LlMock {
    pub port: u16,
    child: Option<std::process::Child>,
    dir: TempDir,
}

impl Drop for LlMock {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            stop_child(c);
        }
    }
}

impl LlMock {
    /// Starts llmock on a free port, or skips the test when the venv has no llmock (a failure when
    /// peers are required).
    pub fn start() -> Option<LlMock> {
        Self::start_on(free_port())
    }

    /// Starts llmock on `port` (a restart on the port kb already points at).
    pub fn start_on(port: u16) -> Option<LlMock> {
        let bin = peer_or_skip(
            "llmock (pip install llmock in OMNEURO_TEST_VENV)",
            venv_bin("llmock"),
        )?;
        let dir = TempDir::new("llmock");
        let mut child = std::process::Command::new(bin)
            .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
            .current_dir(&dir.0)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(dir.0.join("llmock.log")).unwrap())
            .stderr(std::fs::File::create(dir.0.join("llmock.err")).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(LlMock {
                    port,
                    child: Some(child),
                    dir,
                });
            }
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                stop_child(&mut child);
                panic!(
                    "llmock did not start on {port} ({exited:?}):\n{}",
                    std::fs::read_to_string(dir.0.join("llmock.err")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What `[kb.embeddings] base_url` (or `[llm] base_url`) should be.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server (the port stays free for [`LlMock::start_on`]).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c);
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir.0
    }
}
