//! The model client: any OpenAI-compatible `POST {base_url}/v1/chat/completions` (OpenAI, Ollama,
//! vLLM, llama.cpp) over reqwest, plain or streamed (server-sent events), with tool calls.
//!
//! One call = at most `1 + max_retries` attempts. An attempt is retried after a 429, a 5xx or a
//! connection failure, never once part of the answer has been handed to the caller; the wait is
//! `retry_base · 2ⁿ` plus jitter, or the server's `Retry-After` when it sends one (a wait longer
//! than [`MAX_RETRY_WAIT`] is not waited for). Each attempt is cut off after `timeout`. Failures are
//! an [`LlmError`] whose [`LlmError::friendly`] text is what a client is shown.
//!
//! Pure parsing lives in [`SseParser`] and [`StreamAccumulator`] so it is unit-tested without a
//! server.

use std::time::Duration;

use omneuro_platform::config::LlmConfig;
use omneuro_platform::secrets::Secret;
use serde::Deserialize;
use serde_json::{Value, json};

/// Longest server-requested wait that is honoured; past it the call gives up (the user is waiting).
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One chat message as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// The calls an assistant message asked for.
    pub tool_calls: Vec<ToolCall>,
    /// For a [`Role::Tool`] message: the call it answers.
    pub tool_call_id: Option<String>,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    pub fn tool_result(call_id: &str, content: impl Into<String>) -> Self {
        Self {
            role: Role::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(call_id.to_owned()),
        }
    }

    fn to_wire(&self) -> Value {
        let mut m = json!({ "role": self.role.as_str(), "content": self.content });
        if !self.tool_calls.is_empty() {
            m["tool_calls"] = self
                .tool_calls
                .iter()
                .map(|c| {
                    json!({
                        "id": c.id,
                        "type": "function",
                        "function": { "name": c.name, "arguments": c.arguments },
                    })
                })
                .collect();
        }
        if let Some(id) = &self.tool_call_id {
            m["tool_call_id"] = json!(id);
        }
        m
    }
}

/// A function call the model asked for; `arguments` is the JSON text as the model wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// A tool offered to the model (JSON Schema parameters).
#[derive(Debug, Clone)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub parameters: Value,
}

/// What one model call produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completion {
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LlmError {
    #[error("the model did not answer within {0:?}")]
    Timeout(Duration),
    /// 429, 5xx or no connection, after every attempt.
    #[error("the model is unavailable after {attempts} attempt(s): {last}")]
    Unavailable { attempts: u32, last: String },
    /// A 4xx other than 429: retrying will not help (bad key, unknown model, request too big).
    #[error("the model refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the model's answer could not be read: {0}")]
    BadResponse(String),
}

impl LlmError {
    /// What the person chatting is told. Never the cause: that goes to the log.
    pub fn friendly(&self) -> &'static str {
        match self {
            LlmError::Timeout(_) => {
                "Sorry — the assistant is taking too long to answer right now. Please try again in a minute, or call the shop."
            }
            LlmError::Unavailable { .. } => {
                "Sorry — the assistant is busy right now. Please try again in a minute, or call the shop."
            }
            LlmError::Refused { .. } | LlmError::BadResponse(_) => {
                "Sorry — the assistant could not answer that just now. Please try again, or call the shop."
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct LlmSettings {
    pub base_url: String,
    pub model: String,
    pub timeout: Duration,
    pub max_retries: u32,
    pub retry_base: Duration,
}

impl LlmSettings {
    /// `None` when no model is configured (the offline assistant answers).
    pub fn from_config(cfg: &LlmConfig) -> Option<Self> {
        let base_url = cfg.base_url.trim().trim_end_matches('/');
        let model = cfg.model.trim();
        if base_url.is_empty() || model.is_empty() {
            return None;
        }
        Some(Self {
            base_url: base_url.to_owned(),
            model: model.to_owned(),
            timeout: Duration::from_millis(cfg.timeout_ms.max(1)),
            max_retries: cfg.max_retries.min(10),
            retry_base: Duration::from_millis(cfg.retry_base_ms),
        })
    }
}

pub struct Llm {
    http: reqwest::Client,
    settings: LlmSettings,
    key: Secret,
}

/// One failed attempt: whether another may follow, and how long the server asked us to wait.
enum AttemptError {
    Retry { why: String, wait: Option<Duration> },
    Fatal(LlmError),
}

impl Llm {
    pub fn new(settings: LlmSettings, key: Secret) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            http,
            settings,
            key,
        })
    }

    pub fn model(&self) -> &str {
        &self.settings.model
    }

    /// One model turn, read as one JSON answer.
    pub async fn complete(
        &self,
        messages: &[Message],
        tools: &[ToolSpec],
    ) -> Result<Completion, LlmError> {
        self.call::<fn(&str)>(messages, tools, None).await
    }

    /// One model turn, streamed: each text piece is handed to `on_delta` as it arrives.
    pub async fn stream<F: FnMut(&str) + Send>(
        &self,
        messages: &[Message],
        tools: &[ToolSpec],
        on_delta: &mut F,
    ) -> Result<Completion, LlmError> {
        self.call(messages, tools, Some(on_delta)).await
    }

    async fn call<F: FnMut(&str) + Send>(
        &self,
        messages: &[Message],
        tools: &[ToolSpec],
        mut on_delta: Option<&mut F>,
    ) -> Result<Completion, LlmError> {
        let stream = on_delta.is_some();
        let body = self.body(messages, tools, stream);
        let attempts = self.settings.max_retries + 1;
        let mut streamed_any = false;
        let mut last = String::new();
        for attempt in 0..attempts {
            let fut = self.attempt(&body, on_delta.as_deref_mut(), &mut streamed_any);
            let res = match tokio::time::timeout(self.settings.timeout, fut).await {
                Ok(r) => r,
                Err(_) => return Err(LlmError::Timeout(self.settings.timeout)),
            };
            match res {
                Ok(c) => return Ok(c),
                Err(AttemptError::Fatal(e)) => return Err(e),
                Err(AttemptError::Retry { why, wait }) => {
                    tracing::warn!(llm.attempt = attempt + 1, error = %why, "model call failed");
                    last = why;
                    if streamed_any || attempt + 1 == attempts {
                        break;
                    }
                    let wait = match wait {
                        Some(w) if w > MAX_RETRY_WAIT => break,
                        Some(w) => w,
                        None => backoff(self.settings.retry_base, attempt),
                    };
                    tokio::time::sleep(wait).await;
                }
            }
        }
        Err(LlmError::Unavailable { attempts, last })
    }

    fn body(&self, messages: &[Message], tools: &[ToolSpec], stream: bool) -> Value {
        let mut body = json!({
            "model": self.settings.model,
            "messages": messages.iter().map(Message::to_wire).collect::<Vec<_>>(),
            "stream": stream,
        });
        if stream {
            body["stream_options"] = json!({ "include_usage": true });
        }
        if !tools.is_empty() {
            body["tools"] = tools
                .iter()
                .map(|t| {
                    json!({
                        "type": "function",
                        "function": {
                            "name": t.name,
                            "description": t.description,
                            "parameters": t.parameters,
                        },
                    })
                })
                .collect();
        }
        body
    }

    async fn attempt<F: FnMut(&str) + Send>(
        &self,
        body: &Value,
        on_delta: Option<&mut F>,
        streamed_any: &mut bool,
    ) -> Result<Completion, AttemptError> {
        let url = format!("{}/v1/chat/completions", self.settings.base_url);
        let resp = self
            .http
            .post(url)
            .bearer_auth(self.key.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| AttemptError::Retry {
                why: format!("no connection: {e}"),
                wait: None,
            })?;
        let status = resp.status();
        if status.as_u16() == 429 || status.is_server_error() {
            let wait = retry_after(resp.headers());
            let text = resp.text().await.unwrap_or_default();
            return Err(AttemptError::Retry {
                why: format!("{status}: {}", error_message(&text)),
                wait,
            });
        }
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(AttemptError::Fatal(LlmError::Refused {
                status: status.as_u16(),
                message: error_message(&text),
            }));
        }
        let Some(on_delta) = on_delta else {
            let text = resp.text().await.map_err(|e| AttemptError::Retry {
                why: format!("answer cut off: {e}"),
                wait: None,
            })?;
            return parse_completion(&text).map_err(AttemptError::Fatal);
        };
        let mut resp = resp;
        let mut parser = SseParser::default();
        let mut acc = StreamAccumulator::default();
        loop {
            let chunk = resp.chunk().await.map_err(|e| AttemptError::Retry {
                why: format!("stream cut off: {e}"),
                wait: None,
            })?;
            let Some(chunk) = chunk else { break };
            for event in parser.push(&chunk) {
                match event {
                    SseEvent::Done => return Ok(acc.finish()),
                    SseEvent::Data(data) => {
                        let piece = acc.apply(&data).map_err(AttemptError::Fatal)?;
                        if let Some(piece) = piece {
                            *streamed_any = true;
                            on_delta(&piece);
                        }
                    }
                }
            }
        }
        // Some servers close without `[DONE]`: what arrived is the answer.
        Ok(acc.finish())
    }
}

/// `base · 2ⁿ` plus up to `base` of jitter, at most [`MAX_RETRY_WAIT`].
pub fn backoff(base: Duration, retry: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << retry.min(16));
    let jitter_ms = rand::random_range(0..=base.as_millis().min(60_000) as u64);
    (exp + Duration::from_millis(jitter_ms)).min(MAX_RETRY_WAIT)
}

/// `Retry-After: <seconds>` (the HTTP-date form is not used by model servers and is ignored).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// The `error.message` of an OpenAI-style error body, else the start of the body.
fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

#[derive(Deserialize)]
struct WireCompletion {
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: WireMessage,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default)]
    id: String,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    #[serde(default)]
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize, Clone, Copy, Default)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// A non-streamed answer.
pub fn parse_completion(body: &str) -> Result<Completion, LlmError> {
    let w: WireCompletion =
        serde_json::from_str(body).map_err(|e| LlmError::BadResponse(e.to_string()))?;
    let choice = w
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| LlmError::BadResponse("no choices".into()))?;
    let usage = w.usage.unwrap_or_default();
    Ok(Completion {
        content: choice.message.content.unwrap_or_default(),
        tool_calls: choice
            .message
            .tool_calls
            .into_iter()
            .map(|c| ToolCall {
                id: c.id,
                name: c.function.name,
                arguments: c.function.arguments,
            })
            .collect(),
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
    })
}

// ---------------------------------------------------------------------------------------------
// Server-sent events.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseEvent {
    /// The `data:` lines of one event, joined with `\n`.
    Data(String),
    /// `data: [DONE]`.
    Done,
}

/// Incremental SSE parser: bytes in (split anywhere, even inside a UTF-8 character or a `\r\n`),
/// events out. Only `data:` fields matter here; comments (`:`), `event:`, `id:` and `retry:` are
/// skipped.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    data: Vec<String>,
    /// The last byte seen was `\r`: a following `\n` belongs to the same line end.
    after_cr: bool,
}

/// A line longer than this is cut (a model never sends one; a broken server might).
const MAX_LINE: usize = 1 << 20;

impl SseParser {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.end_line(&line, &mut out);
                }
                _ if self.line.len() < MAX_LINE => self.line.push(b),
                _ => {}
            }
        }
        out
    }

    fn end_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if !self.data.is_empty() {
                let data = std::mem::take(&mut self.data).join("\n");
                out.push(if data.trim() == "[DONE]" {
                    SseEvent::Done
                } else {
                    SseEvent::Data(data)
                });
            }
            return;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (text.as_ref(), ""),
        };
        if field == "data" {
            self.data.push(value.to_owned());
        }
    }
}

/// Folds streamed `chat.completion.chunk`s into one [`Completion`]: text pieces appended, tool
/// calls assembled by `index` (id and name first, arguments in pieces).
#[derive(Debug, Default)]
pub struct StreamAccumulator {
    content: String,
    calls: Vec<ToolCall>,
    usage: Option<(u64, u64)>,
}

impl StreamAccumulator {
    /// Applies one event's JSON; returns the text piece it carried, if any.
    pub fn apply(&mut self, data: &str) -> Result<Option<String>, LlmError> {
        let v: Value = serde_json::from_str(data)
            .map_err(|e| LlmError::BadResponse(format!("stream chunk: {e}")))?;
        if let Some(msg) = v["error"]["message"].as_str() {
            return Err(LlmError::BadResponse(format!("stream error: {msg}")));
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = Some((
                u["prompt_tokens"].as_u64().unwrap_or(0),
                u["completion_tokens"].as_u64().unwrap_or(0),
            ));
        }
        let delta = &v["choices"][0]["delta"];
        if let Some(calls) = delta["tool_calls"].as_array() {
            for c in calls {
                let index = c["index"].as_u64().unwrap_or(0) as usize;
                if index > 64 {
                    return Err(LlmError::BadResponse("tool call index out of range".into()));
                }
                if self.calls.len() <= index {
                    self.calls.resize_with(index + 1, ToolCall::default);
                }
                let call = &mut self.calls[index];
                if let Some(id) = c["id"].as_str() {
                    call.id = id.to_owned();
                }
                if let Some(name) = c["function"]["name"].as_str() {
                    call.name.push_str(name);
                }
                if let Some(args) = c["function"]["arguments"].as_str() {
                    call.arguments.push_str(args);
                }
            }
        }
        match delta["content"].as_str() {
            Some(piece) if !piece.is_empty() => {
                self.content.push_str(piece);
                Ok(Some(piece.to_owned()))
            }
            _ => Ok(None),
        }
    }

    pub fn finish(self) -> Completion {
        let (prompt, completion) = self.usage.unwrap_or((0, 0));
        Completion {
            content: self.content,
            tool_calls: self
                .calls
                .into_iter()
                .filter(|c| !c.name.is_empty())
                .collect(),
            prompt_tokens: prompt,
            completion_tokens: completion,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(parser: &mut SseParser, parts: &[&[u8]]) -> Vec<SseEvent> {
        parts.iter().flat_map(|p| parser.push(p)).collect()
    }

    #[test]
    fn sse_events_split_anywhere() {
        let stream = "data: {\"a\":1}\n\n: keep-alive\n\nevent: x\ndata: two\ndata: lines\n\ndata:[DONE]\n\n";
        let expected = vec![
            SseEvent::Data("{\"a\":1}".into()),
            SseEvent::Data("two\nlines".into()),
            SseEvent::Done,
        ];
        // Every split point, including inside "\n\n" and "[DONE]".
        for i in 0..stream.len() {
            let (a, b) = stream.as_bytes().split_at(i);
            assert_eq!(
                all(&mut SseParser::default(), &[a, b]),
                expected,
                "split at {i}"
            );
        }
        // One byte at a time.
        let bytes: Vec<&[u8]> = stream.as_bytes().chunks(1).collect();
        assert_eq!(all(&mut SseParser::default(), &bytes), expected);
    }

    #[test]
    fn sse_crlf_and_utf8_split_inside_a_character() {
        let stream = "data: héllo — ✓\r\n\r\ndata: [DONE]\r\n\r\n".as_bytes();
        let at = stream.iter().position(|&b| b == 0xE2).unwrap_or(0) + 1;
        let (a, b) = stream.split_at(at);
        assert_eq!(
            all(&mut SseParser::default(), &[a, b]),
            vec![SseEvent::Data("héllo — ✓".into()), SseEvent::Done]
        );
        // A lone "\r" also ends a line; an event without a blank line after it is not yet out.
        assert_eq!(
            SseParser::default().push(b"data: x\r\rdata: y\n"),
            vec![SseEvent::Data("x".into())]
        );
    }

    #[test]
    fn stream_accumulates_text_and_tool_call_argument_chunks() {
        let mut acc = StreamAccumulator::default();
        let chunks = [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"Your "}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"scooter"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"job_status","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"job_"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","function":{"name":"order_status","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"id\":\"job_x\"}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#,
        ];
        let pieces: Vec<String> = chunks
            .iter()
            .filter_map(|c| acc.apply(c).ok().flatten())
            .collect();
        assert_eq!(pieces, vec!["Your ", "scooter"]);
        let c = acc.finish();
        assert_eq!(c.content, "Your scooter");
        assert_eq!(
            c.tool_calls,
            vec![
                ToolCall {
                    id: "call_1".into(),
                    name: "job_status".into(),
                    arguments: r#"{"job_id":"job_x"}"#.into()
                },
                ToolCall {
                    id: "call_2".into(),
                    name: "order_status".into(),
                    arguments: "{}".into()
                }
            ]
        );
        assert_eq!((c.prompt_tokens, c.completion_tokens), (12, 5));
    }

    #[test]
    fn bad_chunks_are_typed_errors() {
        let mut acc = StreamAccumulator::default();
        assert!(matches!(
            acc.apply("{not json"),
            Err(LlmError::BadResponse(_))
        ));
        assert!(matches!(
            acc.apply(r#"{"error":{"message":"overloaded"}}"#),
            Err(LlmError::BadResponse(_))
        ));
        assert!(matches!(
            acc.apply(r#"{"choices":[{"delta":{"tool_calls":[{"index":100000}]}}]}"#),
            Err(LlmError::BadResponse(_))
        ));
    }

    #[test]
    fn plain_completion_with_tool_calls() {
        let body = r#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_9","type":"function","function":{"name":"job_status","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#;
        let c = parse_completion(body).unwrap_or_default();
        assert_eq!(c.tool_calls.len(), 1);
        assert_eq!(c.tool_calls[0].name, "job_status");
        assert_eq!(c.content, "");
        assert_eq!(c.prompt_tokens, 3);
        assert!(parse_completion(r#"{"choices":[]}"#).is_err());
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        let base = Duration::from_millis(100);
        let b0 = backoff(base, 0);
        assert!(b0 >= base && b0 <= base * 2);
        let b3 = backoff(base, 3);
        assert!(b3 >= base * 8 && b3 <= base * 9);
        assert_eq!(backoff(base, 30), MAX_RETRY_WAIT);
    }

    #[test]
    fn settings_off_without_model_or_url() {
        let mut cfg = LlmConfig::default();
        assert!(LlmSettings::from_config(&cfg).is_none());
        cfg.base_url = "http://127.0.0.1:1/".into();
        assert!(LlmSettings::from_config(&cfg).is_none());
        cfg.model = "m".into();
        let s = LlmSettings::from_config(&cfg);
        assert_eq!(s.map(|s| s.base_url), Some("http://127.0.0.1:1".into()));
    }
}
