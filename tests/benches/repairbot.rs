//! Figures for the repairbot issue, printed (not asserted): time to the first streamed token,
//! fakellm (PEERS.md) as the model. The model's own: a streamed chat completion straight from
//! fakellm, to the first chunk with text. Through repairbot: `StreamReply` (the conversation
//! checked, the user message stored, the rate limit, the system prompt and history built, the
//! model called with its tools listed) to the first `token` event. The difference is what
//! repairbot adds.
//!
//! `scripts/bench-repairbot` (or `cargo build -p repairbot --bins && cargo bench -p omneuro-tests
//! --bench repairbot`). SQLite by default; `OMNEURO_TEST_PG_URL=postgres://postgres@127.0.0.1:5432`
//! adds PostgreSQL.

use std::time::{Duration, Instant};

use omneuro_platform::auth::{self, Actor};
use omneuro_proto::repairbot::v1 as pb;
use omneuro_tests::*;
use pb::repairbot_service_client::RepairbotServiceClient;

const RUNS: usize = 60;
const WARMUP: usize = 5;
const RULES: &str = r#"
version: 1
rules:
  - name: walrus
    when: { messages_contain: "walrus" }
    respond: { content: "The walrus answer comes in several small pieces of text." }
"#;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Whether an SSE buffer from the model holds a chunk with text yet.
fn has_text(buf: &str) -> bool {
    buf.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .any(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        })
}

/// Straight from the model: POST a streamed completion, time to the first text chunk.
async fn model_ttft(http: &reqwest::Client, base: &str, i: usize) -> Duration {
    let started = Instant::now();
    let mut resp = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth("sk-test-fakellm")
        .json(&serde_json::json!({
            "model": "gpt-4o-mini",
            "stream": true,
            "messages": [{"role": "user", "content": format!("walrus question {i}")}],
        }))
        .send()
        .await
        .unwrap();
    let mut buf = String::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        if has_text(&buf) {
            return started.elapsed();
        }
    }
    panic!("the model streamed no text: {buf}");
}

/// Through repairbot: StreamReply as a visitor, time to the first token event.
async fn repairbot_ttft(
    bot: &mut RepairbotServiceClient<tonic::transport::Channel>,
    i: usize,
) -> Duration {
    let who = Actor::System("site".into());
    let conv = bot
        .start_conversation(auth::request(
            &who,
            pb::StartConversationRequest {
                channel: pb::Channel::Web.into(),
                client_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .conversation
        .unwrap()
        .id;
    let started = Instant::now();
    let mut s = bot
        .stream_reply(auth::request(
            &who,
            pb::SendMessageRequest {
                conversation_id: conv,
                text: format!("walrus question {i}"),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    while let Some(ev) = s.message().await.unwrap() {
        if let Some(pb::reply_event::Event::Token(t)) = ev.event
            && !t.is_empty()
        {
            let took = started.elapsed();
            while s.message().await.unwrap().is_some() {}
            return took;
        }
    }
    panic!("repairbot streamed no token");
}

#[tokio::main]
async fn main() {
    let Some(llm) = FakeLlm::start(RULES) else {
        eprintln!("fakellm is missing (scripts/test installs it into the test venv)");
        return;
    };
    let http = reqwest::Client::new();
    for backend in backends() {
        let tmp = TempDir::new("benchbot");
        let db = TestDb::new(backend, "repairbot");
        let p = Proc::spawn(
            "repairbot",
            &[
                ("OMNEURO__DATABASE__URL", db.url.clone()),
                ("OMNEURO__LLM__BASE_URL", llm.base_url()),
                ("OMNEURO__LLM__MODEL", "gpt-4o-mini".into()),
                ("OMNEURO__LLM__PER_CLIENT_PER_MINUTE", "0".into()),
                ("OMNEURO_SECRET_OPENAI_API_KEY", "sk-test-fakellm".into()),
            ],
            &tmp.0,
        );
        p.wait_ready().await;
        assert!(
            eventually(Duration::from_secs(10), || async {
                p.logs().contains("LLM enabled")
            })
            .await,
            "{}",
            p.logs()
        );
        let mut bot = RepairbotServiceClient::connect(p.grpc_url()).await.unwrap();
        let (mut direct, mut via) = (Vec::new(), Vec::new());
        // Interleaved, so both see the same machine load.
        for i in 0..RUNS + WARMUP {
            let d = model_ttft(&http, &llm.base_url(), i).await;
            let v = repairbot_ttft(&mut bot, i).await;
            if i >= WARMUP {
                direct.push(d);
                via.push(v);
            }
        }
        direct.sort();
        via.sort();
        let (d50, v50) = (percentile(&direct, 0.5), percentile(&via, 0.5));
        let (d95, v95) = (percentile(&direct, 0.95), percentile(&via, 0.95));
        println!(
            "{backend:?}: time to first streamed token over {RUNS} runs\n  fakellm direct:    p50 {}  p95 {}\n  through repairbot: p50 {}  p95 {}\n  added by repairbot: p50 {}  p95 {}",
            ms(d50),
            ms(d95),
            ms(v50),
            ms(v95),
            ms(v50.saturating_sub(d50)),
            ms(v95.saturating_sub(d95)),
        );
    }
}
