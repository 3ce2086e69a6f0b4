//! Conversations into the knowledge base (ADR 0014, ADR 0020), through repairbot's `kb_outbox`.
//!
//! Every stored message (the caller's text, the assistant's reply, an SMS stored as a message)
//! writes a row in the message's own transaction ([`conversation_changed`], called from
//! [`crate::conversations::append`]). The shared worker ([`omneuro_platform::kb_outbox::Worker`])
//! asks [`ConversationDocs`] for the conversation as it is now and puts it into kb as
//! `system:repairbot`: one **staff-only** document per conversation (`conversation:<id>`, owned by
//! its client when it has one), replaced as messages arrive — who spoke, when, what was said, the
//! tools used and the records cited — linked client -owns-> conversation -about-> each job,
//! product and order it cited. Source links are left out: an order's carries its status token.

use std::sync::Arc;

use chrono::NaiveDateTime;
use omneuro_platform::db::{Database, DbConnection, DbError};
use omneuro_platform::kb_outbox::{Doc, End, LinkFact, Outbox, Render, Renderer, Visibility};

use crate::conversations::{self, Conversation, Speaker, StoredMessage};

/// repairbot's `kb_outbox`, keyed by source ref.
pub const OUTBOX: Outbox = Outbox::BY_SOURCE_REF;

/// The newest messages a conversation's document carries.
pub const MAX_MESSAGES: i64 = 200;
/// The longest message text a document carries, in characters (the rest is cut with "…").
pub const MAX_MESSAGE_CHARS: usize = 4_000;
/// The longest tool arguments shown, in characters.
const MAX_ARGUMENT_CHARS: usize = 200;

pub fn conversation_ref(id: &str) -> String {
    format!("conversation:{id}")
}

/// Queues the conversation for kb (inside the transaction that stores a message).
pub fn conversation_changed(
    conn: &mut DbConnection,
    id: &str,
    event: &str,
    now: NaiveDateTime,
) -> diesel::QueryResult<()> {
    OUTBOX.enqueue(conn, &conversation_ref(id), event, now)
}

fn clip(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// The conversation as kb gets it: staff-only, owned by its client.
pub fn render(c: &Conversation, messages: &[StoredMessage], earlier: bool) -> Doc {
    let source_ref = conversation_ref(&c.id);
    let who = c.client_id.as_deref().unwrap_or("a visitor");
    let title = format!("Conversation {} — {} with {who}", c.id, c.channel.as_str());
    let mut body = format!("# Conversation {}\n\n", c.id);
    body.push_str(&format!("- Channel: {}\n", c.channel.as_str()));
    match &c.client_id {
        Some(id) => body.push_str(&format!("- Client: {id}\n")),
        None => body.push_str("- Client: a visitor (not signed in)\n"),
    }
    body.push_str(&format!(
        "- Started: {} UTC\n",
        c.started_at.format("%Y-%m-%d %H:%M")
    ));
    body.push_str("\n## Messages\n");
    if earlier {
        body.push_str(&format!(
            "\n(Earlier messages left out: the newest {MAX_MESSAGES} follow.)\n"
        ));
    }
    let this = End::new("conversation", &c.id, &title);
    let mut links = Vec::new();
    if let Some(id) = &c.client_id {
        links.push(LinkFact::new(
            "owns",
            End::new("client", id, ""),
            this.clone(),
        ));
    }
    for m in messages {
        let role = match m.speaker {
            Speaker::User => "caller",
            Speaker::Assistant => "assistant",
        };
        body.push_str(&format!(
            "\n### {} — {role}\n\n{}\n",
            m.created_at.format("%Y-%m-%d %H:%M:%S"),
            clip(&m.content, MAX_MESSAGE_CHARS)
        ));
        if !m.tool_calls.is_empty() {
            let tools: Vec<String> = m
                .tool_calls
                .iter()
                .map(|t| {
                    format!(
                        "{}({}){}",
                        t.name,
                        clip(&t.arguments, MAX_ARGUMENT_CHARS),
                        if t.refused { " — refused" } else { "" }
                    )
                })
                .collect();
            body.push_str(&format!("\nTools used: {}\n", tools.join("; ")));
        }
        if !m.sources.is_empty() {
            let cited: Vec<String> = m
                .sources
                .iter()
                .map(|s| format!("{} {} ({})", s.kind, s.id, s.label))
                .collect();
            body.push_str(&format!("\nSources: {}\n", cited.join("; ")));
        }
        for s in &m.sources {
            let to = match s.kind.as_str() {
                "job" => End::new("job", &s.id, &s.label),
                "product" => End::new("product", &s.id, &s.label),
                "order" => End::new("document", &format!("order:{}", s.id), &s.label),
                _ => continue,
            };
            if s.id.trim().is_empty()
                || links
                    .iter()
                    .any(|l: &LinkFact| l.to.kind == to.kind && l.to.key == to.key)
            {
                continue;
            }
            links.push(LinkFact::new("about", this.clone(), to));
        }
    }
    Doc {
        title,
        body,
        visibility: Visibility::Staff,
        owner_client: c.client_id.clone().unwrap_or_default(),
        source_ref,
        links,
    }
}

/// Renders repairbot's queued conversations for the shared worker.
pub struct ConversationDocs {
    pub db: Arc<Database>,
}

impl Renderer for ConversationDocs {
    async fn render(&self, key: &str) -> Render {
        let Some(id) = key.strip_prefix("conversation:").map(str::to_owned) else {
            return Render::Nothing(format!("`{key}` is not a conversation"));
        };
        let found = self
            .db
            .run(move |c| {
                let Some(conv) = conversations::get(c, &id)? else {
                    return Ok::<_, DbError>(None);
                };
                // One more than the document carries: whether earlier ones were left out.
                let mut history = conversations::history(c, &id, MAX_MESSAGES + 1)?;
                let earlier = history.len() as i64 > MAX_MESSAGES;
                if earlier {
                    history.remove(0);
                }
                Ok(Some((conv, history, earlier)))
            })
            .await;
        match found {
            Ok(Some((conv, messages, earlier))) => Render::Put(render(&conv, &messages, earlier)),
            Ok(None) => Render::Delete {
                source_ref: key.to_owned(),
                why: "the conversation no longer exists".into(),
            },
            Err(e) => Render::Retry(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversations::{Channel, Mode, Source, ToolRecord};

    fn at() -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 3, 2)
            .and_then(|d| d.and_hms_opt(9, 0, 0))
            .unwrap_or_default()
    }

    fn msg(speaker: Speaker, text: &str, sources: Vec<Source>) -> StoredMessage {
        StoredMessage {
            id: "msg_1".into(),
            speaker,
            content: text.into(),
            mode: (speaker == Speaker::Assistant).then_some(Mode::Offline),
            tool_calls: if sources.is_empty() {
                Vec::new()
            } else {
                vec![ToolRecord {
                    name: "job_status".into(),
                    arguments: "{}".into(),
                    result: "{\"secret\":\"tok_x\"}".into(),
                    refused: false,
                }]
            },
            sources,
            prompt_tokens: 0,
            completion_tokens: 0,
            created_at: at(),
        }
    }

    fn source(kind: &str, id: &str) -> Source {
        Source {
            kind: kind.into(),
            id: id.into(),
            label: format!("{kind} label"),
            url: format!("/shop/orders/tok_secret_{id}"),
        }
    }

    #[test]
    fn a_conversation_is_staff_only_with_who_said_what_and_what_it_cited() {
        let c = Conversation {
            id: "conv_a".into(),
            channel: Channel::Web,
            client_id: Some("cli_a".into()),
            started_at: at(),
        };
        let messages = vec![
            msg(Speaker::User, "Is my wheel ready?", vec![]),
            msg(
                Speaker::Assistant,
                "Your Begode is on the bench.",
                vec![
                    source("job", "job_a"),
                    source("job", "job_a"),
                    source("order", "ord_a"),
                    source("product", "prd_a"),
                    source("slots", ""),
                    source("doc", "doc_a"),
                ],
            ),
        ];
        let d = render(&c, &messages, false);
        assert_eq!(d.source_ref, "conversation:conv_a");
        assert_eq!(d.visibility, Visibility::Staff);
        assert_eq!(d.owner_client, "cli_a");
        for s in [
            "caller",
            "Is my wheel ready?",
            "assistant",
            "on the bench",
            "Tools used: job_status({})",
            "job job_a (job label)",
            "2026-03-02 09:00:00",
        ] {
            assert!(d.body.contains(s), "{s} in {}", d.body);
        }
        assert!(!d.body.contains("tok_"), "{}", d.body);
        let links: Vec<(&str, String)> = d
            .links
            .iter()
            .map(|l| (l.kind, format!("{}:{}", l.to.kind, l.to.key)))
            .collect();
        assert_eq!(
            links,
            vec![
                ("owns", "conversation:conv_a".into()),
                ("about", "job:job_a".into()),
                ("about", "document:order:ord_a".into()),
                ("about", "product:prd_a".into()),
            ]
        );
        let visitor = render(
            &Conversation {
                client_id: None,
                ..c
            },
            &[msg(
                Speaker::User,
                &"x".repeat(MAX_MESSAGE_CHARS + 10),
                vec![],
            )],
            true,
        );
        assert!(visitor.owner_client.is_empty());
        assert!(visitor.links.is_empty());
        assert!(visitor.body.contains("Earlier messages left out"));
        assert!(visitor.body.contains(&format!("{}…", "x".repeat(10))));
    }
}
