//! The knowledge graph (ADR 0014): entities (client, vehicle, make/model, job, product, document,
//! conversation) and edges (owns, is_model, serviced_in, used_part, fits, mentions, about), in the
//! database beside the documents they come from.
//!
//! Edges are built when a document is ingested, from two sources: the structured links the caller
//! sends (jobs: client owns vehicle, vehicle is_model make/model, vehicle serviced_in job, job
//! used_part product, product fits model) and mentions found in the text — make/model and product
//! names kb already knows (a small dictionary: the labelled model and product entities, which come
//! from job links and product documents) and job ids by their pattern. A document's edges are
//! replaced whenever it is put again and go away with it.
//!
//! Queries: the neighbours of an entity, past jobs on a make/model whose document mentions some
//! text, the parts most used on such jobs, and a shortest path between two entities.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, DbError};
use omneuro_platform::ids;

use crate::schema::{documents, edges, entities};

/// Most links one document may carry.
pub const MAX_LINKS: usize = 500;
/// Longest entity key or label, in characters.
pub const MAX_KEY_CHARS: usize = 200;
/// Deepest path search.
pub const MAX_DEPTH: usize = 6;
/// Path search when the caller names no depth.
pub const DEFAULT_DEPTH: usize = 4;
/// Shortest product name matched in text (shorter ones match too much).
const MIN_NAME_CHARS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntityKind {
    Client,
    Vehicle,
    Model,
    Job,
    Product,
    Document,
    Conversation,
}

impl EntityKind {
    pub const ALL: [EntityKind; 7] = [
        EntityKind::Client,
        EntityKind::Vehicle,
        EntityKind::Model,
        EntityKind::Job,
        EntityKind::Product,
        EntityKind::Document,
        EntityKind::Conversation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Client => "client",
            EntityKind::Vehicle => "vehicle",
            EntityKind::Model => "model",
            EntityKind::Job => "job",
            EntityKind::Product => "product",
            EntityKind::Document => "document",
            EntityKind::Conversation => "conversation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s.trim())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EdgeKind {
    Owns,
    IsModel,
    ServicedIn,
    UsedPart,
    Fits,
    Mentions,
    About,
}

impl EdgeKind {
    pub const ALL: [EdgeKind; 7] = [
        EdgeKind::Owns,
        EdgeKind::IsModel,
        EdgeKind::ServicedIn,
        EdgeKind::UsedPart,
        EdgeKind::Fits,
        EdgeKind::Mentions,
        EdgeKind::About,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Owns => "owns",
            EdgeKind::IsModel => "is_model",
            EdgeKind::ServicedIn => "serviced_in",
            EdgeKind::UsedPart => "used_part",
            EdgeKind::Fits => "fits",
            EdgeKind::Mentions => "mentions",
            EdgeKind::About => "about",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s.trim())
    }
}

/// An entity named by kind and key; [`EntityRef::new`] normalises the key (a model's name is
/// lower-cased with single spaces; record ids are kept as they are).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityRef {
    pub kind: EntityKind,
    pub key: String,
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl EntityRef {
    pub fn new(kind: EntityKind, key: &str) -> Result<Self, String> {
        let key = match kind {
            EntityKind::Model => squash(key).to_lowercase(),
            _ => key.trim().to_owned(),
        };
        if key.is_empty() {
            return Err(format!("a {} needs a key", kind.as_str()));
        }
        if key.chars().count() > MAX_KEY_CHARS || key.chars().any(char::is_control) {
            return Err(format!(
                "a {} key is at most {MAX_KEY_CHARS} characters, without control characters",
                kind.as_str()
            ));
        }
        Ok(Self { kind, key })
    }

    /// Parses "kind" and "key" as a caller sent them.
    pub fn parse(kind: &str, key: &str) -> Result<Self, String> {
        let k = EntityKind::parse(kind).ok_or_else(|| {
            format!(
                "`{kind}` is not an entity kind (client, vehicle, model, job, product, document, conversation)"
            )
        })?;
        Self::new(k, key)
    }

    /// The stored id: `<kind>:<key>`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.key)
    }

    fn from_id(id: &str, kind: &str) -> Option<Self> {
        let kind = EntityKind::parse(kind)?;
        let key = id.strip_prefix(kind.as_str())?.strip_prefix(':')?;
        Some(Self {
            kind,
            key: key.to_owned(),
        })
    }
}

/// An entity as stored: its label is a display name (may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    pub r: EntityRef,
    pub label: String,
}

/// One structured link a document carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub kind: EdgeKind,
    pub from: EntityRef,
    pub to: EntityRef,
    pub from_label: String,
    pub to_label: String,
}

/// What the graph learns from one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocFacts {
    pub document_id: String,
    pub source_ref: Option<String>,
    pub title: String,
    pub body: String,
    pub links: Vec<Link>,
}

/// The entity a document speaks for: the job of `job:job_…`, the product of `product:prd_…`,
/// the conversation of `conversation:…`, else the document itself.
pub fn subject(source_ref: Option<&str>, document_id: &str) -> EntityRef {
    let as_doc = || EntityRef {
        kind: EntityKind::Document,
        key: source_ref.unwrap_or(document_id).to_owned(),
    };
    let Some((prefix, rest)) = source_ref.and_then(|s| s.split_once(':')) else {
        return as_doc();
    };
    let kind = match prefix {
        "job" if ids::is_valid("job", rest) => EntityKind::Job,
        "product" if !rest.is_empty() => EntityKind::Product,
        "conversation" if !rest.is_empty() => EntityKind::Conversation,
        _ => return as_doc(),
    };
    EntityRef::new(kind, rest).unwrap_or_else(|_| as_doc())
}

/// A name kb may find in text.
#[derive(Debug, Clone)]
pub struct DictEntry {
    pub entity: EntityRef,
    /// Lower-cased, single-spaced.
    pub needle: String,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `needle` occurs in `hay` (both lower-cased) as whole words.
fn contains_words(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let mut from = 0;
    while let Some(pos) = hay.get(from..).and_then(|h| h.find(needle)) {
        let start = from + pos;
        let end = start + needle.len();
        let before = hay[..start].chars().next_back().is_none_or(|c| !is_word(c));
        let after = hay[end..].chars().next().is_none_or(|c| !is_word(c));
        if before && after {
            return true;
        }
        from = start + needle.chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// Entities named in `text`: dictionary names (whole words, any case) and job ids.
pub fn mentions(text: &str, dict: &[DictEntry]) -> BTreeSet<EntityRef> {
    let lower = squash(&text.to_lowercase());
    let mut found: BTreeSet<EntityRef> = dict
        .iter()
        .filter(|d| contains_words(&lower, &d.needle))
        .map(|d| d.entity.clone())
        .collect();
    let mut rest = text;
    while let Some(pos) = rest.find("job_") {
        let tail = &rest[pos..];
        let len = tail
            .char_indices()
            .skip(4)
            .find(|(_, c)| !(c.is_ascii_alphanumeric()))
            .map_or(tail.len(), |(i, _)| i);
        let id = &tail[..len];
        let boundary = rest[..pos].chars().next_back().is_none_or(|c| !is_word(c));
        if boundary
            && ids::is_valid("job", id)
            && let Ok(r) = EntityRef::new(EntityKind::Job, id)
        {
            found.insert(r);
        }
        rest = &tail[len.max(4)..];
    }
    found
}

/// The names kb knows: labelled makes/models and products.
pub fn dictionary(conn: &mut DbConnection) -> Result<Vec<DictEntry>, DbError> {
    let rows: Vec<(String, String, String)> = entities::table
        .filter(entities::kind.eq_any(["model", "product"]))
        .filter(entities::label.ne(""))
        .select((entities::id, entities::kind, entities::label))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, kind, label)| {
            let entity = EntityRef::from_id(&id, &kind)?;
            let needle = squash(&label).to_lowercase();
            (needle.chars().count() >= MIN_NAME_CHARS).then_some(DictEntry { entity, needle })
        })
        .collect())
}

fn upsert_entity(conn: &mut DbConnection, r: &EntityRef, label: &str) -> Result<(), DbError> {
    let id = r.id();
    let label: String = squash(label).chars().take(MAX_KEY_CHARS).collect();
    let existing: Option<String> = entities::table
        .find(&id)
        .select(entities::label)
        .first(conn)
        .optional()?;
    match existing {
        None => {
            diesel::insert_into(entities::table)
                .values((
                    entities::id.eq(&id),
                    entities::kind.eq(r.kind.as_str()),
                    entities::key.eq(&r.key),
                    entities::label.eq(&label),
                ))
                .execute(conn)?;
        }
        Some(old) if !label.is_empty() && old != label => {
            diesel::update(entities::table.find(&id))
                .set(entities::label.eq(&label))
                .execute(conn)?;
        }
        Some(_) => {}
    }
    Ok(())
}

/// Replaces the edges of `facts.document_id` (inside the caller's transaction): its structured
/// links, then `subject mentions X` for every known name and job id in the title and body.
pub fn replace(conn: &mut DbConnection, facts: &DocFacts) -> Result<usize, DbError> {
    diesel::delete(edges::table.filter(edges::document_id.eq(&facts.document_id))).execute(conn)?;
    let source = facts
        .source_ref
        .clone()
        .unwrap_or_else(|| format!("doc:{}", facts.document_id));
    let subject = subject(facts.source_ref.as_deref(), &facts.document_id);
    let subject_label = match subject.kind {
        // A product document names its product: that is how product names enter the dictionary.
        EntityKind::Product | EntityKind::Document | EntityKind::Conversation => {
            facts.title.clone()
        }
        _ => String::new(),
    };
    upsert_entity(conn, &subject, &subject_label)?;
    let mut edges_set: BTreeSet<(String, String, EdgeKind)> = BTreeSet::new();
    for l in &facts.links {
        upsert_entity(conn, &l.from, &l.from_label)?;
        upsert_entity(conn, &l.to, &l.to_label)?;
        edges_set.insert((l.from.id(), l.to.id(), l.kind));
    }
    let dict = dictionary(conn)?;
    let text = format!("{}\n{}", facts.title, facts.body);
    for m in mentions(&text, &dict) {
        if m == subject {
            continue;
        }
        upsert_entity(conn, &m, "")?;
        edges_set.insert((subject.id(), m.id(), EdgeKind::Mentions));
    }
    let n = edges_set.len();
    for (from, to, kind) in edges_set {
        diesel::insert_into(edges::table)
            .values((
                edges::from_entity.eq(from),
                edges::to_entity.eq(to),
                edges::kind.eq(kind.as_str()),
                edges::source_ref.eq(&source),
                edges::document_id.eq(&facts.document_id),
            ))
            .execute(conn)?;
    }
    Ok(n)
}

/// A stored entity, or None.
pub fn entity(conn: &mut DbConnection, r: &EntityRef) -> Result<Option<Entity>, DbError> {
    let label: Option<String> = entities::table
        .find(r.id())
        .select(entities::label)
        .first(conn)
        .optional()?;
    Ok(label.map(|label| Entity {
        r: r.clone(),
        label,
    }))
}

fn load_entities(
    conn: &mut DbConnection,
    ids: &BTreeSet<String>,
) -> Result<HashMap<String, Entity>, DbError> {
    let list: Vec<&String> = ids.iter().collect();
    let mut out = HashMap::new();
    for batch in list.chunks(500) {
        let rows: Vec<(String, String, String)> = entities::table
            .filter(entities::id.eq_any(batch.iter().map(|s| s.as_str())))
            .select((entities::id, entities::kind, entities::label))
            .load(conn)?;
        for (id, kind, label) in rows {
            if let Some(r) = EntityRef::from_id(&id, &kind) {
                out.insert(id, Entity { r, label });
            }
        }
    }
    Ok(out)
}

/// One neighbour of an entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub entity: Entity,
    pub edge: EdgeKind,
    /// True for `entity -[edge]-> neighbour`, false for `neighbour -[edge]-> entity`.
    pub outgoing: bool,
    /// The documents the edge comes from.
    pub source_refs: Vec<String>,
}

type EdgeRow = (String, String, String, String);

fn edges_touching(
    conn: &mut DbConnection,
    ids: &[String],
    kinds: &[EdgeKind],
) -> Result<Vec<EdgeRow>, DbError> {
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let mut out = Vec::new();
    for batch in ids.chunks(300) {
        let mut q = edges::table
            .filter(
                edges::from_entity
                    .eq_any(batch)
                    .or(edges::to_entity.eq_any(batch)),
            )
            .select((
                edges::from_entity,
                edges::to_entity,
                edges::kind,
                edges::source_ref,
            ))
            .into_boxed();
        if !kinds.is_empty() {
            q = q.filter(edges::kind.eq_any(kinds.clone()));
        }
        out.extend(q.load::<EdgeRow>(conn)?);
    }
    Ok(out)
}

/// The entities one edge away (either direction), optionally only over `kinds`; sorted by edge
/// kind, then direction, then entity; at most `limit`.
pub fn neighbours(
    conn: &mut DbConnection,
    of: &EntityRef,
    kinds: &[EdgeKind],
    limit: usize,
) -> Result<Vec<Neighbour>, DbError> {
    let me = of.id();
    let rows = edges_touching(conn, std::slice::from_ref(&me), kinds)?;
    let mut grouped: BTreeMap<(EdgeKind, bool, String), BTreeSet<String>> = BTreeMap::new();
    for (from, to, kind, source) in rows {
        let Some(kind) = EdgeKind::parse(&kind) else {
            continue;
        };
        let (other, outgoing) = if from == me {
            (to, true)
        } else {
            (from, false)
        };
        grouped
            .entry((kind, !outgoing, other))
            .or_default()
            .insert(source);
    }
    let ids: BTreeSet<String> = grouped.keys().map(|(_, _, id)| id.clone()).collect();
    let found = load_entities(conn, &ids)?;
    Ok(grouped
        .into_iter()
        .filter_map(|((edge, incoming, id), sources)| {
            Some(Neighbour {
                entity: found.get(&id)?.clone(),
                edge,
                outgoing: !incoming,
                source_refs: sources.into_iter().collect(),
            })
        })
        .take(limit)
        .collect())
}

/// A job that matched a query, with the document it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobMatch {
    pub job: Entity,
    pub source_ref: String,
    pub document_id: String,
}

fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Jobs on this make/model — its vehicles' jobs, and jobs whose document names the model — whose
/// job document contains every word of `text` (any case, whole words); sorted by job id.
pub fn jobs_mentioning(
    conn: &mut DbConnection,
    model: &EntityRef,
    text: &str,
) -> Result<Vec<JobMatch>, DbError> {
    let model_id = model.id();
    let vehicles: Vec<String> = edges::table
        .filter(edges::to_entity.eq(&model_id))
        .filter(edges::kind.eq(EdgeKind::IsModel.as_str()))
        .select(edges::from_entity)
        .distinct()
        .load(conn)?;
    let mut jobs: BTreeSet<String> = BTreeSet::new();
    for batch in vehicles.chunks(300) {
        let found: Vec<String> = edges::table
            .filter(edges::from_entity.eq_any(batch))
            .filter(edges::kind.eq(EdgeKind::ServicedIn.as_str()))
            .filter(edges::to_entity.like("job:%"))
            .select(edges::to_entity)
            .load(conn)?;
        jobs.extend(found);
    }
    let mentioning: Vec<String> = edges::table
        .filter(edges::to_entity.eq(&model_id))
        .filter(edges::kind.eq(EdgeKind::Mentions.as_str()))
        .filter(edges::from_entity.like("job:%"))
        .select(edges::from_entity)
        .load(conn)?;
    jobs.extend(mentioning);
    let wanted = words(text);
    let found = load_entities(conn, &jobs)?;
    let mut out = Vec::new();
    for id in jobs {
        let Some(job) = found.get(&id) else { continue };
        let source = format!("job:{}", job.r.key);
        let doc: Option<(String, String, String)> = documents::table
            .filter(documents::source_ref.eq(&source))
            .select((documents::id, documents::title, documents::body))
            .first(conn)
            .optional()?;
        let Some((doc_id, title, body)) = doc else {
            continue;
        };
        let have: BTreeSet<String> = words(&format!("{title}\n{body}")).into_iter().collect();
        if wanted.iter().all(|w| have.contains(w)) {
            out.push(JobMatch {
                job: job.clone(),
                source_ref: source,
                document_id: doc_id,
            });
        }
    }
    Ok(out)
}

/// A part and how many matching jobs used it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartUse {
    pub part: Entity,
    pub jobs: Vec<String>,
}

/// Parts used on the jobs [`jobs_mentioning`] finds for (`model`, `symptom`): most jobs first,
/// then by product id.
pub fn parts_for_symptom(
    conn: &mut DbConnection,
    model: &EntityRef,
    symptom: &str,
) -> Result<Vec<PartUse>, DbError> {
    let jobs: Vec<String> = jobs_mentioning(conn, model, symptom)?
        .into_iter()
        .map(|m| m.job.r.id())
        .collect();
    let mut by_part: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for batch in jobs.chunks(300) {
        let rows: Vec<(String, String)> = edges::table
            .filter(edges::from_entity.eq_any(batch))
            .filter(edges::kind.eq(EdgeKind::UsedPart.as_str()))
            .select((edges::from_entity, edges::to_entity))
            .load(conn)?;
        for (job, part) in rows {
            let key = job.strip_prefix("job:").unwrap_or(&job).to_owned();
            by_part.entry(part).or_default().insert(key);
        }
    }
    let ids: BTreeSet<String> = by_part.keys().cloned().collect();
    let found = load_entities(conn, &ids)?;
    let mut out: Vec<PartUse> = by_part
        .into_iter()
        .filter_map(|(id, jobs)| {
            Some(PartUse {
                part: found.get(&id)?.clone(),
                jobs: jobs.into_iter().collect(),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.jobs
            .len()
            .cmp(&a.jobs.len())
            .then_with(|| a.part.r.key.cmp(&b.part.r.key))
    });
    Ok(out)
}

/// One step of a path: the edge that led here (None for the start) and where it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub entity: Entity,
    pub edge: Option<EdgeKind>,
    /// True when the edge points along the path (previous -[edge]-> this).
    pub forward: bool,
}

/// A shortest path from `from` to `to` over edges in either direction, at most `max_depth` edges
/// long; None when there is none. Breadth-first, neighbours in id order: the same graph always
/// gives the same path.
pub fn path(
    conn: &mut DbConnection,
    from: &EntityRef,
    to: &EntityRef,
    max_depth: usize,
) -> Result<Option<Vec<Step>>, DbError> {
    let (start, goal) = (from.id(), to.id());
    // node → (previous node, edge, forward)
    let mut came: HashMap<String, Option<(String, EdgeKind, bool)>> = HashMap::new();
    came.insert(start.clone(), None);
    let mut frontier: Vec<String> = vec![start.clone()];
    let mut depth = 0;
    let mut reached = start == goal;
    while !reached && depth < max_depth && !frontier.is_empty() {
        depth += 1;
        let rows = edges_touching(conn, &frontier, &[])?;
        let in_frontier: BTreeSet<&String> = frontier.iter().collect();
        // (from frontier node, to node, edge, forward), in a fixed order.
        let mut steps: BTreeSet<(String, String, EdgeKind, bool)> = BTreeSet::new();
        for (a, b, kind, _) in rows {
            let Some(kind) = EdgeKind::parse(&kind) else {
                continue;
            };
            if in_frontier.contains(&a) {
                steps.insert((a.clone(), b.clone(), kind, true));
            }
            if in_frontier.contains(&b) {
                steps.insert((b, a, kind, false));
            }
        }
        let mut next = VecDeque::new();
        for (prev, node, kind, forward) in steps {
            if came.contains_key(&node) {
                continue;
            }
            came.insert(node.clone(), Some((prev, kind, forward)));
            if node == goal {
                reached = true;
            }
            next.push_back(node);
        }
        frontier = next.into_iter().collect();
    }
    if !reached {
        return Ok(None);
    }
    let mut chain = vec![(goal.clone(), None::<(EdgeKind, bool)>)];
    let mut at = goal;
    while let Some(Some((prev, kind, forward))) = came.get(&at) {
        if let Some(last) = chain.last_mut() {
            last.1 = Some((*kind, *forward));
        }
        chain.push((prev.clone(), None));
        at = prev.clone();
    }
    chain.reverse();
    let ids: BTreeSet<String> = chain.iter().map(|(id, _)| id.clone()).collect();
    let found = load_entities(conn, &ids)?;
    Ok(Some(
        chain
            .into_iter()
            .filter_map(|(id, e)| {
                Some(Step {
                    entity: found.get(&id)?.clone(),
                    edge: e.map(|(k, _)| k),
                    forward: e.is_some_and(|(_, f)| f),
                })
            })
            .collect(),
    ))
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    fn dict() -> Vec<DictEntry> {
        [
            (EntityKind::Model, "begode master", "begode master"),
            (EntityKind::Product, "prd_wire", "phase wire"),
        ]
        .into_iter()
        .map(|(kind, key, needle)| DictEntry {
            entity: EntityRef::new(kind, key).unwrap_or_else(|_| unreachable!()),
            needle: needle.into(),
        })
        .collect()
    }

    #[test]
    fn mentions_are_whole_names_in_any_case_and_job_ids() {
        let text = "Same as job_ABC123def on the BEGODE  Master: replaced the phase wire. \
                    Not phase wires, not xjob_zzz, not job_.";
        let found: Vec<String> = mentions(text, &dict()).iter().map(EntityRef::id).collect();
        assert_eq!(
            found,
            vec![
                "model:begode master",
                "job:job_ABC123def",
                "product:prd_wire"
            ]
        );
        assert!(mentions("phase wires only", &dict()).is_empty());
    }

    #[test]
    fn keys_are_normalised_and_checked() {
        let m = EntityRef::parse("model", "  Begode   MASTER ").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.id(), "model:begode master");
        assert!(EntityRef::parse("planet", "x").is_err());
        assert!(EntityRef::parse("job", "  ").is_err());
        assert_eq!(subject(Some("job:job_a1"), "doc_x").id(), "job:job_a1");
        assert_eq!(
            subject(Some("product:prd_1"), "doc_x").id(),
            "product:prd_1"
        );
        assert_eq!(subject(None, "doc_x").id(), "document:doc_x");
        assert_eq!(
            subject(Some("file:/a.md"), "doc_x").id(),
            "document:file:/a.md"
        );
    }
}
