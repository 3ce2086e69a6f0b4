//! Conversations: domain types and queries.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, DbError, now_utc};
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
