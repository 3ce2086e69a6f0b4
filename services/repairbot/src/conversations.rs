//! Conversations: domain types and queries.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, DbError, now_utc, write_transaction};
use omneuro_platform::ids;

use crate::schema::conversations;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Web,
    Sms,
    Voice,
    Portal,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Sms => "sms",
            Self::Voice => "voice",
            Self::Portal => "portal",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "web" => Self::Web,
            "sms" => Self::Sms,
            "voice" => Self::Voice,
            "portal" => Self::Portal,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: String,
    pub channel: Channel,
    pub client_id: Option<String>,
    pub started_at: NaiveDateTime,
}

pub fn start(
    conn: &mut DbConnection,
    channel: Channel,
    client_id: Option<String>,
) -> Result<Conversation, DbError> {
    let c = Conversation {
        id: ids::new_id("conv"),
        channel,
        client_id,
        started_at: now_utc(),
    };
    diesel::insert_into(conversations::table)
        .values((
            conversations::id.eq(&c.id),
            conversations::channel.eq(c.channel.as_str()),
            conversations::client_id.eq(&c.client_id),
            conversations::started_at.eq(c.started_at),
        ))
        .execute(conn)?;
    Ok(c)
}

pub fn get(conn: &mut DbConnection, id: &str) -> Result<Option<Conversation>, DbError> {
    let row: Option<(String, String, Option<String>, NaiveDateTime)> = conversations::table
        .find(id)
        .select((
            conversations::id,
            conversations::channel,
            conversations::client_id,
            conversations::started_at,
        ))
        .first(conn)
        .optional()?;
    Ok(
        row.map(|(id, channel, client_id, started_at)| Conversation {
            id,
            channel: Channel::parse(&channel).unwrap_or(Channel::Web),
            client_id,
            started_at,
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// Messages.

/// How a reply came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Model,
    Offline,
    Refused,
    Error,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Offline => "offline",
            Self::Refused => "refused",
            Self::Error => "error",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "model" => Self::Model,
            "offline" => Self::Offline,
            "refused" => Self::Refused,
            "error" => Self::Error,
            _ => return None,
        })
    }
}

/// A record an answer used (a job, an order, a product, the booking page, a kb document).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Source {
    pub kind: String,
    pub id: String,
    pub label: String,
    pub url: String,
}

/// One tool call made for a reply: what was asked, what came back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ToolRecord {
    pub name: String,
    pub arguments: String,
    pub result: String,
    pub refused: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: String,
    pub speaker: Speaker,
    pub content: String,
    pub mode: Option<Mode>,
    pub tool_calls: Vec<ToolRecord>,
    pub sources: Vec<Source>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub created_at: NaiveDateTime,
}

/// A message to store; `actor` is the encoded caller.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub speaker: Speaker,
    pub content: &'a str,
    pub mode: Option<Mode>,
    pub tool_calls: &'a [ToolRecord],
    pub sources: &'a [Source],
    pub actor: &'a str,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

type MessageRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    i64,
    i64,
    NaiveDateTime,
);

/// Appends `m` after the conversation's last message (in one transaction: `seq` is unique).
pub fn append(
    conn: &mut DbConnection,
    conversation: &str,
    m: &NewMessage<'_>,
) -> Result<StoredMessage, DbError> {
    use crate::schema::messages::dsl as ms;
    let stored = StoredMessage {
        id: ids::new_id("msg"),
        speaker: m.speaker,
        content: m.content.to_owned(),
        mode: m.mode,
        tool_calls: m.tool_calls.to_vec(),
        sources: m.sources.to_vec(),
        prompt_tokens: m.prompt_tokens,
        completion_tokens: m.completion_tokens,
        created_at: now_utc(),
    };
    let tool_calls = serde_json::to_string(m.tool_calls).unwrap_or_else(|_| "[]".into());
    let sources = serde_json::to_string(m.sources).unwrap_or_else(|_| "[]".into());
    // A write transaction from its first statement (SQLite: BEGIN IMMEDIATE): it reads the last
    // `seq` before inserting, and a read that turns into a write fails at once with "database is
    // locked" when a worker (kb_sync, the receptionist) wrote meanwhile.
    write_transaction::<_, DbError, _>(conn, |c| {
        let last: Option<i32> = ms::messages
            .filter(ms::conversation_id.eq(conversation))
            .select(diesel::dsl::max(ms::seq))
            .first(c)?;
        diesel::insert_into(ms::messages)
            .values((
                ms::id.eq(&stored.id),
                ms::conversation_id.eq(conversation),
                ms::seq.eq(last.unwrap_or(0).saturating_add(1)),
                ms::role.eq(match m.speaker {
                    Speaker::User => "user",
                    Speaker::Assistant => "assistant",
                }),
                ms::content.eq(&stored.content),
                ms::mode.eq(m.mode.map(Mode::as_str)),
                ms::tool_calls.eq(&tool_calls),
                ms::sources.eq(&sources),
                ms::actor.eq(m.actor),
                ms::prompt_tokens.eq(clamp_i64(m.prompt_tokens)),
                ms::completion_tokens.eq(clamp_i64(m.completion_tokens)),
                ms::created_at.eq(stored.created_at),
            ))
            .execute(c)?;
        // kb learns about the conversation with the message, or not at all (ADR 0020).
        crate::kbsync::conversation_changed(c, conversation, "message", stored.created_at)?;
        Ok(())
    })?;
    Ok(stored)
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The conversation's last `limit` messages, oldest first.
pub fn history(
    conn: &mut DbConnection,
    conversation: &str,
    limit: i64,
) -> Result<Vec<StoredMessage>, DbError> {
    use crate::schema::messages::dsl as ms;
    let rows: Vec<MessageRow> = ms::messages
        .filter(ms::conversation_id.eq(conversation))
        .order(ms::seq.desc())
        .limit(limit)
        .select((
            ms::id,
            ms::role,
            ms::content,
            ms::mode,
            ms::tool_calls,
            ms::sources,
            ms::prompt_tokens,
            ms::completion_tokens,
            ms::created_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .rev()
        .map(
            |(id, role, content, mode, tools, sources, pt, ct, created_at)| StoredMessage {
                id,
                speaker: if role == "user" {
                    Speaker::User
                } else {
                    Speaker::Assistant
                },
                content,
                mode: mode.as_deref().and_then(Mode::parse),
                tool_calls: serde_json::from_str(&tools).unwrap_or_default(),
                sources: serde_json::from_str(&sources).unwrap_or_default(),
                prompt_tokens: u64::try_from(pt).unwrap_or(0),
                completion_tokens: u64::try_from(ct).unwrap_or(0),
                created_at,
            },
        )
        .collect())
}

/// Tokens the model used since `since` (every conversation): the daily budget's starting point.
pub fn tokens_since(conn: &mut DbConnection, since: NaiveDateTime) -> Result<u64, DbError> {
    use crate::schema::messages::dsl as ms;
    let rows: Vec<(i64, i64)> = ms::messages
        .filter(ms::created_at.ge(since))
        .filter(ms::mode.eq("model"))
        .select((ms::prompt_tokens, ms::completion_tokens))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(p, c)| u64::try_from(p.saturating_add(c)).unwrap_or(0))
        .sum())
}

/// A conversation in a list: how many messages, the latest one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub conversation: Conversation,
    pub message_count: u32,
    pub last_message: String,
    pub last_at: NaiveDateTime,
}

/// The newest `limit` conversations (by start), optionally one client's, with their last message.
pub fn list(
    conn: &mut DbConnection,
    client_id: Option<&str>,
    limit: i64,
) -> Result<Vec<Summary>, DbError> {
    use crate::schema::messages::dsl as ms;
    let mut q = conversations::table
        .select((
            conversations::id,
            conversations::channel,
            conversations::client_id,
            conversations::started_at,
        ))
        .order((conversations::started_at.desc(), conversations::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some(c) = client_id {
        q = q.filter(conversations::client_id.eq(c.to_owned()));
    }
    let rows: Vec<(String, String, Option<String>, NaiveDateTime)> = q.load(conn)?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, channel, client_id, started_at) in rows {
        let count: i64 = ms::messages
            .filter(ms::conversation_id.eq(&id))
            .count()
            .get_result(conn)?;
        let last: Option<(String, NaiveDateTime)> = ms::messages
            .filter(ms::conversation_id.eq(&id))
            .order(ms::seq.desc())
            .select((ms::content, ms::created_at))
            .first(conn)
            .optional()?;
        let (last_message, last_at) = match last {
            Some((text, at)) => (text.chars().take(160).collect(), at),
            None => (String::new(), started_at),
        };
        out.push(Summary {
            conversation: Conversation {
                id,
                channel: Channel::parse(&channel).unwrap_or(Channel::Web),
                client_id,
                started_at,
            },
            message_count: u32::try_from(count).unwrap_or(u32::MAX),
            last_message,
            last_at,
        });
    }
    Ok(out)
}
