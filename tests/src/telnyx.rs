//! A local fake of Telnyx's Messaging API (tests/peers/fake_telnyx.py, Python standard library
//! only) that keeps every accepted text as JSON, so a test can read back what a client would get.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use omneuro_platform::ids;
use omneuro_platform::secrets::{SecretStore, names};
use omneuro_platform::sms::SmsConfig;

use crate::{TempDir, free_port, peer_or_skip, repo_root, stop_child, venv_bin, which};

/// The fake Telnyx, listening on 127.0.0.1:`port` and accepting only `api_key`; stopped on drop.
pub struct FakeTelnyx {
    pub port: u16,
    pub api_key: String,
    child: std::process::Child,
    dir: TempDir,
}

impl Drop for FakeTelnyx {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

impl FakeTelnyx {
    /// Starts the fake (the test venv's python, else `python3` on PATH), or skips the test when
    /// there is no Python (a failure when peers are required).
    pub fn start() -> Option<FakeTelnyx> {
        let python = peer_or_skip(
            "python3 (for tests/peers/fake_telnyx.py)",
            venv_bin("python").or_else(|| which("python3")),
        )?;
        let port = free_port();
        let dir = TempDir::new("telnyx");
        let api_key = format!("KEY{}", ids::new_secret());
        let log = dir.0.join("fake_telnyx.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut child = std::process::Command::new(python)
            .arg(repo_root().join("tests/peers/fake_telnyx.py"))
            .arg(port.to_string())
            .arg(&dir.0)
            .arg(&api_key)
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                stop_child(&mut child);
                panic!(
                    "fake_telnyx.py did not listen on {port} ({exited:?}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(FakeTelnyx {
            port,
            api_key,
            child,
            dir,
        })
    }

    /// What `sms.base_url` should be to reach the fake.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `[sms]` config pointing at the fake, sending from `from`.
    pub fn config(&self, from: &str) -> SmsConfig {
        SmsConfig {
            base_url: self.base_url(),
            from_number: from.to_owned(),
            timeout_ms: 5_000,
            ..SmsConfig::default()
        }
    }

    /// A dev secret store holding `api_key` as `/omneuro/telnyx/api_key`.
    pub fn secrets_with_key(api_key: &str) -> SecretStore {
        SecretStore::env([(
            SecretStore::env_var_name(names::TELNYX_API_KEY),
            api_key.to_owned(),
        )])
    }

    /// A dev secret store holding the fake's own (right) API key.
    pub fn secrets(&self) -> SecretStore {
        Self::secrets_with_key(&self.api_key)
    }

    /// Every accepted message so far, oldest first: `{to, from, text, messaging_profile_id, id,
    /// idempotency_key}`.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir.0)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter_map(|s| serde_json::from_str(&s).ok())
            .collect()
    }

    /// Messages to `to`, oldest first.
    pub fn to(&self, to: &str) -> Vec<serde_json::Value> {
        self.messages()
            .into_iter()
            .filter(|m| m["to"] == to)
            .collect()
    }

    /// Waits (up to 15 s) until `to` has at least `n` messages and returns the newest.
    pub async fn wait_for(&self, to: &str, n: usize) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.to(to);
            if got.len() >= n {
                return got[got.len() - 1].clone();
            }
            assert!(
                Instant::now() < deadline,
                "no text #{n} to {to}; have {:#?}",
                self.messages()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Makes the next `count` calls to `/v2/messages` answer `status` (e.g. 429, 500) without
    /// storing anything.
    pub async fn fail_next(&self, status: u16, count: u32) {
        let res = crate::http()
            .post(format!("{}/_fake/fail", self.base_url()))
            .json(&serde_json::json!({ "status": status, "count": count }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status().as_u16(),
            200,
            "fake_telnyx refused /_fake/fail"
        );
    }
}
