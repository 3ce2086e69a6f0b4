//! Chunking: splits a document body into search-sized chunks that carry their citation.
//!
//! A body is first parsed into blocks (headings and paragraphs) according to its [`Format`]:
//! Markdown (ATX `#` and setext headings, fenced code kept whole), HTML (a small tolerant tag
//! scanner: `h1`–`h6` headings, paragraphs from `p`/`li`/`br`/`div`/`tr` and other block tags,
//! `script`/`style` content dropped, common entities decoded) or plain text (paragraphs at blank
//! lines). Paragraphs are then packed into chunks per section:
//!
//! * a chunk never spans two sections (the heading path is the chunk's `heading_path`, never part
//!   of its text) and sections without text produce nothing;
//! * whole paragraphs are packed up to `max_chars`; only a paragraph longer than that is split,
//!   at sentence ends, then at whitespace (and, for a "word" longer than the limit, hard);
//! * each chunk after the first of a section starts with up to `overlap_chars` of the previous
//!   chunk's tail (whole sentences, else whole words), shrunk if needed so that no chunk is
//!   longer than `max_chars`.
//!
//! Citations: `start_char..end_char` are offsets in `char`s (Unicode scalar values) into the
//! original body — for HTML into the markup, covering the source of the chunk's first to last
//! character. Everything is deterministic: the same input gives the same chunks and hashes.

use sha2::{Digest, Sha256};

/// Default largest chunk, in characters.
pub const DEFAULT_MAX_CHARS: usize = 1200;
/// Default overlap with the previous chunk of the same section, in characters.
pub const DEFAULT_OVERLAP_CHARS: usize = 200;

/// How a document body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Markdown,
    Html,
    Plain,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Markdown => "markdown",
            Self::Html => "html",
            Self::Plain => "plain",
        }
    }

    /// Accepts a format name, a file extension or a MIME type (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        let s = s.split(';').next().unwrap_or("").trim();
        match s {
            "markdown" | "md" | "text/markdown" | "text/x-markdown" => Some(Self::Markdown),
            "html" | "htm" | "text/html" | "application/xhtml+xml" => Some(Self::Html),
            "plain" | "text" | "txt" | "text/plain" => Some(Self::Plain),
            _ => None,
        }
    }
}

/// Chunk size limits, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkConfig {
    /// Largest chunk (values below 1 count as 1).
    pub max_chars: usize,
    /// Most characters of the previous chunk's tail repeated at the start of the next one.
    pub overlap_chars: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        Self {
            max_chars: DEFAULT_MAX_CHARS,
            overlap_chars: DEFAULT_OVERLAP_CHARS,
        }
    }
}

/// One searchable piece of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Position among the document's chunks, from 0.
    pub index: usize,
    /// Headings enclosing the chunk, outermost first (e.g. `["Battery", "Balancing"]`).
    pub heading_path: Vec<String>,
    pub text: String,
    /// First source character (in `char`s from the start of the body) the chunk's text came from.
    pub start_char: usize,
    /// One past the last source character the chunk's text came from.
    pub end_char: usize,
    /// Lowercase hex SHA-256 of `text`.
    pub content_hash: String,
}

/// Splits `body` into chunks; see the module documentation for the rules.
pub fn chunk(body: &str, format: Format, config: ChunkConfig) -> Vec<Chunk> {
    let src: Vec<char> = body.chars().collect();
    let blocks = match format {
        Format::Markdown => parse_markdown(&src),
        Format::Html => parse_html(&src),
        Format::Plain => parse_plain(&src),
    };
    chunk_blocks(blocks, config)
}

/// Lowercase hex SHA-256 of `text`.
pub fn text_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Text with provenance

/// Text where every char remembers the source span (in chars) it was produced from.
#[derive(Debug, Clone, Default)]
struct Run {
    chars: Vec<char>,
    spans: Vec<(usize, usize)>,
}

impl Run {
    fn from_source(src: &[char], start: usize, end: usize) -> Self {
        Self {
            chars: src[start..end].to_vec(),
            spans: (start..end).map(|i| (i, i + 1)).collect(),
        }
    }

    fn len(&self) -> usize {
        self.chars.len()
    }

    fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    fn push(&mut self, c: char, span: (usize, usize)) {
        self.chars.push(c);
        self.spans.push(span);
    }

    /// Appends characters that exist in no source (separators), anchored after the last char.
    fn push_synthetic(&mut self, s: &str) {
        let at = self.spans.last().map_or(0, |s| s.1);
        for c in s.chars() {
            self.push(c, (at, at));
        }
    }

    fn extend(&mut self, other: &Run) {
        self.chars.extend_from_slice(&other.chars);
        self.spans.extend_from_slice(&other.spans);
    }

    fn slice(&self, start: usize, end: usize) -> Self {
        Self {
            chars: self.chars[start..end].to_vec(),
            spans: self.spans[start..end].to_vec(),
        }
    }

    /// The run without leading and trailing whitespace.
    fn trimmed(&self) -> Self {
        let start = self
            .chars
            .iter()
            .position(|c| !c.is_whitespace())
            .unwrap_or(self.len());
        let end = self
            .chars
            .iter()
            .rposition(|c| !c.is_whitespace())
            .map_or(start, |i| i + 1);
        self.slice(start, end.max(start))
    }

    fn text(&self) -> String {
        self.chars.iter().collect()
    }
}

#[derive(Debug)]
enum Block {
    Heading { level: usize, text: String },
    Para(Run),
}

fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------------
// Plain text and Markdown

/// Line ranges (start, end) excluding the line terminator.
fn lines(src: &[char]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &c) in src.iter().enumerate() {
        if c == '\n' {
            out.push((start, i));
            start = i + 1;
        }
    }
    if start < src.len() {
        out.push((start, src.len()));
    }
    out
}

fn is_blank(line: &[char]) -> bool {
    line.iter().all(|c| c.is_whitespace())
}

/// Tracks the paragraph being read: first and one-past-last non-blank source chars.
#[derive(Default)]
struct ParaAcc {
    range: Option<(usize, usize)>,
}

impl ParaAcc {
    fn add_line(&mut self, src: &[char], start: usize, end: usize) {
        let line = &src[start..end];
        let Some(first) = line.iter().position(|c| !c.is_whitespace()) else {
            return;
        };
        let last = line
            .iter()
            .rposition(|c| !c.is_whitespace())
            .map_or(first + 1, |i| i + 1);
        let (s, e) = (start + first, start + last);
        self.range = Some(match self.range {
            Some((s0, _)) => (s0, e),
            None => (s, e),
        });
    }

    fn flush(&mut self, src: &[char], blocks: &mut Vec<Block>) {
        if let Some((s, e)) = self.range.take()
            && s < e
        {
            blocks.push(Block::Para(Run::from_source(src, s, e)));
        }
    }
}

fn parse_plain(src: &[char]) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut para = ParaAcc::default();
    for (s, e) in lines(src) {
        if is_blank(&src[s..e]) {
            para.flush(src, &mut blocks);
        } else {
            para.add_line(src, s, e);
        }
    }
    para.flush(src, &mut blocks);
    blocks
}

/// Strips up to three leading spaces (Markdown's block indentation); `None` if indented more.
fn md_unindent(line: &[char]) -> Option<&[char]> {
    let n = line.iter().take_while(|&&c| c == ' ').count();
    (n <= 3).then(|| &line[n..])
}

/// `(level, text)` of an ATX heading line such as `## Balancing ##`.
fn md_atx_heading(line: &[char]) -> Option<(usize, String)> {
    let line = md_unindent(line)?;
    let level = line.iter().take_while(|&&c| c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &line[level..];
    if rest.first().is_some_and(|c| !c.is_whitespace()) {
        return None;
    }
    let mut text: String = rest.iter().collect::<String>().trim().to_owned();
    // Optional closing sequence: trailing #s preceded by a space (or the whole text).
    let without = text.trim_end_matches('#');
    if without.is_empty() || without.ends_with(char::is_whitespace) {
        text = without.trim_end().to_owned();
    }
    Some((level, collapse_ws(&text)))
}

/// Opening code fence: its char and length.
fn md_fence_open(line: &[char]) -> Option<(char, usize)> {
    let line = md_unindent(line)?;
    let c = *line.first()?;
    if c != '`' && c != '~' {
        return None;
    }
    let n = line.iter().take_while(|&&x| x == c).count();
    if n < 3 || (c == '`' && line[n..].contains(&'`')) {
        return None;
    }
    Some((c, n))
}

fn md_fence_close(line: &[char], fence: (char, usize)) -> bool {
    let Some(line) = md_unindent(line) else {
        return false;
    };
    let n = line.iter().take_while(|&&x| x == fence.0).count();
    n >= fence.1 && is_blank(&line[n..])
}

/// Setext underline level (`===` → 1, `---` → 2).
fn md_setext(line: &[char]) -> Option<usize> {
    let line = md_unindent(line)?;
    let c = *line.first()?;
    if c != '=' && c != '-' {
        return None;
    }
    let n = line.iter().take_while(|&&x| x == c).count();
    (n >= 2 && is_blank(&line[n..])).then_some(if c == '=' { 1 } else { 2 })
}

/// `***`, `---`, `___` (spaces allowed between the marks).
fn md_thematic_break(line: &[char]) -> bool {
    let Some(line) = md_unindent(line) else {
        return false;
    };
    let marks: Vec<char> = line
        .iter()
        .copied()
        .filter(|c| !c.is_whitespace())
        .collect();
    marks.len() >= 3 && ['*', '-', '_'].iter().any(|m| marks.iter().all(|c| c == m))
}

fn parse_markdown(src: &[char]) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut para = ParaAcc::default();
    let mut fence: Option<(char, usize)> = None;
    for (s, e) in lines(src) {
        let line = &src[s..e];
        if let Some(f) = fence {
            if md_fence_close(line, f) {
                fence = None;
                para.flush(src, &mut blocks);
            } else {
                para.add_line(src, s, e);
            }
            continue;
        }
        if is_blank(line) {
            para.flush(src, &mut blocks);
        } else if let Some(f) = md_fence_open(line) {
            para.flush(src, &mut blocks);
            fence = Some(f);
        } else if let Some((level, text)) = md_atx_heading(line) {
            para.flush(src, &mut blocks);
            if !text.is_empty() {
                blocks.push(Block::Heading { level, text });
            }
        } else if let (Some(level), Some((ps, pe))) = (md_setext(line), para.range) {
            para.range = None;
            let text = collapse_ws(&src[ps..pe].iter().collect::<String>());
            blocks.push(Block::Heading { level, text });
        } else if md_thematic_break(line) {
            para.flush(src, &mut blocks);
        } else {
            para.add_line(src, s, e);
        }
    }
    para.flush(src, &mut blocks);
    blocks
}

// ---------------------------------------------------------------------------------------------
// HTML

/// Tags whose content is not document text.
const HTML_SKIP: &[&str] = &["script", "style", "template", "noscript", "title"];

/// Tags that end the current paragraph (opening or closing).
const HTML_BLOCK: &[&str] = &[
    "p",
    "li",
    "br",
    "div",
    "tr",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "caption",
    "section",
    "article",
    "header",
    "footer",
    "nav",
    "aside",
    "main",
    "blockquote",
    "pre",
    "hr",
    "figure",
    "figcaption",
    "form",
    "fieldset",
    "address",
    "details",
    "summary",
    "body",
    "html",
    "head",
];

/// Tags that separate words without ending the paragraph.
const HTML_SPACE: &[&str] = &["td", "th", "img", "input", "option", "label", "button"];

fn html_heading_level(name: &str) -> Option<usize> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

fn named_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "deg" => '°',
        "times" => '×',
        "plusmn" => '±',
        "micro" => 'µ',
        "middot" => '·',
        "bull" => '•',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "euro" => '€',
        "pound" => '£',
        "cent" => '¢',
        _ => return None,
    })
}

/// Decodes the entity starting at `src[i] == '&'`: the char and the index after the `;`.
fn decode_entity(src: &[char], i: usize) -> Option<(char, usize)> {
    let semi = (i + 1..src.len().min(i + 34)).find(|&j| src[j] == ';')?;
    let name: String = src[i + 1..semi].iter().collect();
    let c = if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) if !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()) => {
                u32::from_str_radix(hex, 16).ok()
            }
            None if !num.is_empty() && num.chars().all(|c| c.is_ascii_digit()) => num.parse().ok(),
            _ => return None,
        };
        match code {
            Some(0xA0) => ' ',
            Some(0) | None => '\u{FFFD}',
            Some(n) => char::from_u32(n).unwrap_or('\u{FFFD}'),
        }
    } else {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        named_entity(&name)?
    };
    Some((c, semi + 1))
}

/// Positions of every `>` in the source, for finding the end of a tag in logarithmic time.
struct Gts(Vec<usize>);

impl Gts {
    fn new(src: &[char]) -> Self {
        Self(
            src.iter()
                .enumerate()
                .filter(|(_, c)| **c == '>')
                .map(|(j, _)| j)
                .collect(),
        )
    }

    /// The first `>` after `i`.
    fn after(&self, i: usize) -> Option<usize> {
        self.0.get(self.0.partition_point(|&j| j <= i)).copied()
    }
}

/// Index of the `>` ending the tag that starts at `src[i] == '<'`, honouring quoted attribute
/// values. Malformed tags (a quote that never closes, or a `<` before the end) end at the first
/// `>`; the scan stops at the next `<`, so parsing stays linear on any input.
fn tag_end(src: &[char], i: usize, gts: &Gts) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (j, &c) in src.iter().enumerate().skip(i + 1) {
        match quote {
            _ if c == '<' => break,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '>' => return Some(j),
            None => {}
        }
    }
    gts.after(i)
}

/// First index at or after `from` where `needle` (ASCII, lowercase) starts, ignoring case.
fn find_ci(src: &[char], from: usize, needle: &str) -> Option<usize> {
    let needle: Vec<char> = needle.chars().collect();
    if needle.is_empty() || src.len() < needle.len() {
        return None;
    }
    (from..=src.len() - needle.len()).find(|&j| {
        src[j..j + needle.len()]
            .iter()
            .zip(&needle)
            .all(|(a, b)| a.to_ascii_lowercase() == *b)
    })
}

struct HtmlText {
    blocks: Vec<Block>,
    para: Run,
    heading: Option<(usize, Run)>,
    /// A whitespace run seen since the last char: its first source span.
    pending_space: Option<(usize, usize)>,
    pre_depth: usize,
}

impl HtmlText {
    fn target(&mut self) -> &mut Run {
        match &mut self.heading {
            Some((_, run)) => run,
            None => &mut self.para,
        }
    }

    fn text(&mut self, c: char, span: (usize, usize)) {
        if self.pre_depth > 0 && self.heading.is_none() {
            self.pending_space = None;
            self.para.push(c, span);
        } else if c.is_whitespace() {
            self.pending_space.get_or_insert(span);
        } else {
            if let Some(ws) = self.pending_space.take() {
                let target = self.target();
                if target.chars.last().is_some_and(|c| !c.is_whitespace()) {
                    target.push(' ', ws);
                }
            }
            self.target().push(c, span);
        }
    }

    fn space(&mut self, at: usize) {
        self.pending_space.get_or_insert((at, at));
    }

    fn break_para(&mut self) {
        if self.heading.is_some() {
            self.pending_space.get_or_insert((0, 0));
            return;
        }
        self.pending_space = None;
        let para = std::mem::take(&mut self.para).trimmed();
        if !para.is_empty() {
            self.blocks.push(Block::Para(para));
        }
    }

    fn start_heading(&mut self, level: usize) {
        self.end_heading();
        self.break_para();
        self.heading = Some((level, Run::default()));
    }

    fn end_heading(&mut self) {
        if let Some((level, run)) = self.heading.take() {
            self.pending_space = None;
            let text = collapse_ws(&run.text());
            if !text.is_empty() {
                self.blocks.push(Block::Heading { level, text });
            }
        }
    }
}

fn parse_html(src: &[char]) -> Vec<Block> {
    let mut out = HtmlText {
        blocks: Vec::new(),
        para: Run::default(),
        heading: None,
        pending_space: None,
        pre_depth: 0,
    };
    let gts = Gts::new(src);
    let mut i = 0;
    while i < src.len() {
        let c = src[i];
        if c == '&' {
            if let Some((decoded, next)) = decode_entity(src, i) {
                out.text(decoded, (i, next));
                i = next;
            } else {
                out.text('&', (i, i + 1));
                i += 1;
            }
            continue;
        }
        if c != '<' {
            out.text(c, (i, i + 1));
            i += 1;
            continue;
        }
        let next = src.get(i + 1).copied();
        // Comments, doctype, processing instructions.
        if src[i..].starts_with(&['<', '!', '-', '-']) {
            i = find_ci(src, i + 4, "-->").map_or(src.len(), |j| j + 3);
            continue;
        }
        if matches!(next, Some('!' | '?')) {
            i = tag_end(src, i, &gts).map_or(src.len(), |j| j + 1);
            continue;
        }
        let closing = next == Some('/');
        let name_start = if closing { i + 2 } else { i + 1 };
        if !src.get(name_start).is_some_and(|c| c.is_ascii_alphabetic()) {
            out.text('<', (i, i + 1));
            i += 1;
            continue;
        }
        let Some(end) = tag_end(src, i, &gts) else {
            // Never closed: not a tag after all.
            out.text('<', (i, i + 1));
            i += 1;
            continue;
        };
        let name: String = src[name_start..end]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let self_closing = end > name_start && src[end - 1] == '/';
        i = end + 1;
        if !closing && !self_closing && HTML_SKIP.contains(&name.as_str()) {
            let close = format!("</{name}");
            i = find_ci(src, i, &close)
                .and_then(|j| tag_end(src, j, &gts))
                .map_or(src.len(), |j| j + 1);
            out.space(end);
            continue;
        }
        if let Some(level) = html_heading_level(&name) {
            if closing {
                out.end_heading();
            } else {
                out.start_heading(level);
            }
        } else if HTML_BLOCK.contains(&name.as_str()) {
            out.break_para();
            if name == "pre" && !self_closing {
                if closing {
                    out.pre_depth = out.pre_depth.saturating_sub(1);
                } else {
                    out.pre_depth += 1;
                }
            }
        } else if HTML_SPACE.contains(&name.as_str()) {
            out.space(end);
        }
    }
    out.end_heading();
    out.break_para();
    out.blocks
}

// ---------------------------------------------------------------------------------------------
// Sentences and words

/// Whether a sentence starts at `chars[i]`: after whitespace containing a line break, or after
/// whitespace that follows `.`/`!`/`?` (closing quotes and brackets allowed) when the next
/// character is not a lowercase letter (so "approx. 84 V" stays whole).
fn is_sentence_start(chars: &[char], i: usize) -> bool {
    if i == 0 || i >= chars.len() || chars[i].is_whitespace() || !chars[i - 1].is_whitespace() {
        return false;
    }
    let mut j = i;
    while j > 0 && chars[j - 1].is_whitespace() {
        j -= 1;
        if chars[j] == '\n' {
            return true;
        }
    }
    while j > 0
        && matches!(
            chars[j - 1],
            '"' | '\'' | ')' | ']' | '”' | '’' | '»' | '*' | '_'
        )
    {
        j -= 1;
    }
    j > 0
        && matches!(chars[j - 1], '.' | '!' | '?' | '…' | '。' | '！' | '？')
        && !chars[i].is_lowercase()
}

fn is_word_start(chars: &[char], i: usize) -> bool {
    i > 0 && i < chars.len() && !chars[i].is_whitespace() && chars[i - 1].is_whitespace()
}

/// Trimmed ranges of the pieces of `chars[start..end]` that begin where `is_start` holds.
fn pieces(
    chars: &[char],
    start: usize,
    end: usize,
    is_start: fn(&[char], usize) -> bool,
) -> Vec<(usize, usize)> {
    let mut bounds = vec![start];
    bounds.extend((start + 1..end).filter(|&i| is_start(&chars[..end], i)));
    bounds.push(end);
    bounds
        .windows(2)
        .filter_map(|w| {
            let (s, e) = (w[0], w[1]);
            let e = (s..e)
                .rev()
                .find(|&k| !chars[k].is_whitespace())
                .map(|k| k + 1)?;
            Some((s, e))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Packing

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sep {
    /// Starts a new paragraph: joined with a blank line.
    Para,
    /// Next sentence or word of the same paragraph: joined with a space.
    Space,
    /// Continuation of a word split because it alone exceeds the limit.
    None,
}

impl Sep {
    fn as_str(self) -> &'static str {
        match self {
            Self::Para => "\n\n",
            Self::Space => " ",
            Self::None => "",
        }
    }

    fn len(self) -> usize {
        self.as_str().chars().count()
    }
}

struct Unit {
    sep: Sep,
    run: Run,
}

/// Splits a paragraph into units of at most `max` chars: whole if it fits, else sentences, else
/// words, else fixed-size pieces.
fn para_units(para: Run, max: usize, out: &mut Vec<Unit>) {
    if para.len() <= max {
        out.push(Unit {
            sep: Sep::Para,
            run: para,
        });
        return;
    }
    let mut sep = Sep::Para;
    for (s, e) in pieces(&para.chars, 0, para.len(), is_sentence_start) {
        if e - s <= max {
            out.push(Unit {
                sep,
                run: para.slice(s, e),
            });
            sep = Sep::Space;
            continue;
        }
        for (ws, we) in pieces(&para.chars, s, e, is_word_start) {
            let mut k = ws;
            while k < we {
                let ke = (k + max).min(we);
                out.push(Unit {
                    sep,
                    run: para.slice(k, ke),
                });
                sep = Sep::None;
                k = ke;
            }
            sep = Sep::Space;
        }
        sep = Sep::Space;
    }
}

/// The longest tail of `prev` of at most `budget` chars that starts at a sentence, else at a word
/// (never the whole of `prev`).
fn overlap_tail(prev: &Run, budget: usize) -> Option<Run> {
    if budget == 0 {
        return None;
    }
    let len = prev.len();
    let first_from = len.saturating_sub(budget).max(1);
    let pick = |is_start: fn(&[char], usize) -> bool| {
        (first_from..len).find(|&i| is_start(&prev.chars, i))
    };
    let start = pick(is_sentence_start).or_else(|| pick(is_word_start))?;
    Some(prev.slice(start, len))
}

fn pack_section(paras: Vec<Run>, config: ChunkConfig) -> Vec<Run> {
    let max = config.max_chars.max(1);
    let mut units = Vec::new();
    for para in paras {
        para_units(para, max, &mut units);
    }
    let mut done: Vec<Run> = Vec::new();
    let mut cur: Option<Run> = None;
    for unit in units {
        if let Some(c) = cur.as_mut() {
            if c.len() + unit.sep.len() + unit.run.len() <= max {
                c.push_synthetic(unit.sep.as_str());
                c.extend(&unit.run);
                continue;
            }
            if let Some(c) = cur.take() {
                done.push(c);
            }
        }
        let budget = config
            .overlap_chars
            .min(max.saturating_sub(unit.sep.len() + unit.run.len()));
        let next = match done.last().and_then(|prev| overlap_tail(prev, budget)) {
            Some(mut tail) => {
                tail.push_synthetic(unit.sep.as_str());
                tail.extend(&unit.run);
                tail
            }
            None => unit.run,
        };
        cur = Some(next);
    }
    done.extend(cur);
    done
}

fn chunk_blocks(blocks: Vec<Block>, config: ChunkConfig) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut section: Vec<Run> = Vec::new();
    let emit = |path: &[(usize, String)], section: &mut Vec<Run>, out: &mut Vec<Chunk>| {
        if section.is_empty() {
            return;
        }
        let heading_path: Vec<String> = path.iter().map(|(_, t)| t.clone()).collect();
        for run in pack_section(std::mem::take(section), config) {
            let (Some(first), Some(last)) = (run.spans.first(), run.spans.last()) else {
                continue;
            };
            let text = run.text();
            out.push(Chunk {
                index: out.len(),
                heading_path: heading_path.clone(),
                start_char: first.0,
                end_char: last.1,
                content_hash: text_hash(&text),
                text,
            });
        }
    };
    for block in blocks {
        match block {
            Block::Heading { level, text } => {
                emit(&path, &mut section, &mut out);
                while path.last().is_some_and(|(l, _)| *l >= level) {
                    path.pop();
                }
                path.push((level, text));
            }
            Block::Para(run) => section.push(run),
        }
    }
    emit(&path, &mut section, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max_chars: usize, overlap_chars: usize) -> ChunkConfig {
        ChunkConfig {
            max_chars,
            overlap_chars,
        }
    }

    fn source(body: &str, c: &Chunk) -> String {
        body.chars()
            .skip(c.start_char)
            .take(c.end_char - c.start_char)
            .collect()
    }

    fn long_section(sentences: usize) -> String {
        (0..sentences)
            .map(|i| {
                format!(
                    "Sentence number {i} explains how the balancing board of pack {i} drains cell group {}.",
                    i % 20
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn format_parse() {
        assert_eq!(Format::parse("Markdown"), Some(Format::Markdown));
        assert_eq!(
            Format::parse("text/html; charset=utf-8"),
            Some(Format::Html)
        );
        assert_eq!(Format::parse("txt"), Some(Format::Plain));
        assert_eq!(Format::parse("pdf"), None);
        for f in [Format::Markdown, Format::Html, Format::Plain] {
            assert_eq!(Format::parse(f.as_str()), Some(f));
        }
    }

    #[test]
    fn markdown_nested_heading_paths() {
        let body = "Shop intro.\n\n# Battery\nPacks are 84V.\n\n## Balancing\nBalance at 4.2 V per cell.\n\n### Cells\n21700 cells.\n\n## Charging\nUse the 84V charger.\n\n# Motor ##\nHub motors.\n";
        let chunks = chunk(body, Format::Markdown, ChunkConfig::default());
        let got: Vec<(Vec<&str>, &str)> = chunks
            .iter()
            .map(|c| {
                (
                    c.heading_path.iter().map(String::as_str).collect(),
                    c.text.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (vec![], "Shop intro."),
                (vec!["Battery"], "Packs are 84V."),
                (vec!["Battery", "Balancing"], "Balance at 4.2 V per cell."),
                (vec!["Battery", "Balancing", "Cells"], "21700 cells."),
                (vec!["Battery", "Charging"], "Use the 84V charger."),
                (vec!["Motor"], "Hub motors."),
            ]
        );
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(c.index, i);
            assert_eq!(source(body, c), c.text, "citation of chunk {i}");
            assert_eq!(c.content_hash, text_hash(&c.text));
            assert_eq!(c.content_hash.len(), 64);
        }
    }

    #[test]
    fn markdown_setext_skipped_levels_and_code_fences() {
        let body = "Battery\n=======\n\nIntro text.\n\n### Deep\nDeep text.\n\nWiring\n------\n```\n# not a heading\n\nstill code\n```\nAfter code.\n";
        let chunks = chunk(body, Format::Markdown, ChunkConfig::default());
        let got: Vec<(Vec<String>, String)> = chunks
            .iter()
            .map(|c| (c.heading_path.clone(), c.text.clone()))
            .collect();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            got,
            vec![
                (s(&["Battery"]), "Intro text.".to_owned()),
                (s(&["Battery", "Deep"]), "Deep text.".to_owned()),
                (
                    s(&["Battery", "Wiring"]),
                    "# not a heading\n\nstill code\n\nAfter code.".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn long_section_splits_with_overlap() {
        let max = 300;
        let overlap = 120;
        let body = format!("# Battery\n## Balancing\n{}\n", long_section(40));
        let chunks = chunk(&body, Format::Markdown, cfg(max, overlap));
        assert!(chunks.len() > 5, "{} chunks", chunks.len());
        for c in &chunks {
            assert_eq!(c.heading_path, vec!["Battery", "Balancing"]);
            assert!(c.text.chars().count() <= max, "too long: {:?}", c.text);
            assert!(c.text.starts_with("Sentence number"), "{:?}", c.text);
            assert!(c.text.ends_with('.'), "{:?}", c.text);
        }
        for w in chunks.windows(2) {
            let (a, b) = (&w[0].text, &w[1].text);
            // The next chunk starts with whole sentences from the end of the previous one.
            let shared = (1..=overlap.min(a.len()))
                .rev()
                .find(|&n| a.is_char_boundary(a.len() - n) && b.starts_with(&a[a.len() - n..]))
                .unwrap_or(0);
            assert!(shared > 0, "no overlap between {a:?} and {b:?}");
            assert!(w[1].start_char < w[0].end_char);
        }
        // Every sentence is somewhere.
        for i in 0..40 {
            let needle = format!("Sentence number {i} ");
            assert!(chunks.iter().any(|c| c.text.contains(&needle)), "{needle}");
        }
    }

    #[test]
    fn paragraphs_are_not_split_when_they_fit() {
        let paras: Vec<String> = (0..6)
            .map(|i| format!("Paragraph {i}. It has two sentences about hub motor {i}."))
            .collect();
        let body = paras.join("\n\n");
        let chunks = chunk(&body, Format::Plain, cfg(120, 40));
        for c in &chunks {
            assert!(c.text.chars().count() <= 120);
            for p in c.text.split("\n\n") {
                // Every piece is a whole paragraph or a whole-sentence overlap tail of one.
                assert!(paras.iter().any(|q| q.ends_with(p)), "{p:?}");
            }
        }
        for p in &paras {
            assert!(chunks.iter().any(|c| c.text.contains(p.as_str())), "{p}");
        }
    }

    #[test]
    fn overly_long_sentence_and_word_are_split() {
        let sentence = (0..100)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let word = "x".repeat(130);
        let body = format!("{sentence}.\n\n{word}");
        let chunks = chunk(&body, Format::Plain, cfg(50, 10));
        assert!(chunks.iter().all(|c| c.text.chars().count() <= 50));
        let joined: String = chunks.iter().map(|c| c.text.as_str()).collect();
        assert!(joined.contains("w99."));
        assert!(chunks.iter().all(|c| !c.text.starts_with(' ')));
        // The giant word is cut into pieces of at most max_chars.
        assert_eq!(
            chunks
                .iter()
                .filter(|c| c.text.contains("xxxxxxxxxx"))
                .count(),
            3
        );
    }

    #[test]
    fn html_structure_script_style_and_entities() {
        let body = "<!DOCTYPE html><html><head><title>Ignored</title><style>p { color: red }</style></head>\
<body><h1>Battery &amp; BMS</h1><p>Charge to 84&nbsp;V &lt;max&gt; &quot;always&quot; &#39;ok&#39; &#8211; &#x2713;</p>\
<script type=\"text/javascript\">var x = '<p>not text</p>';</script>\
<h2 class=\"x\">Balancing</h2><ul><li>First   item</li><li>Second<br>line</li></ul>\
<div>Table:<table><tr><td>Cell A</td><td>Cell B</td></tr></table></div><!-- comment <p>gone</p> -->\
<p>Unclosed &bogus; & a < b</p></body></html>";
        let chunks = chunk(body, Format::Html, cfg(1000, 0));
        let texts: Vec<(&[String], &str)> = chunks
            .iter()
            .map(|c| (c.heading_path.as_slice(), c.text.as_str()))
            .collect();
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert_eq!(texts[0].0, ["Battery & BMS"]);
        assert_eq!(texts[0].1, "Charge to 84 V <max> \"always\" 'ok' – ✓");
        assert_eq!(texts[1].0, ["Battery & BMS", "Balancing"]);
        assert_eq!(
            texts[1].1,
            "First item\n\nSecond\n\nline\n\nTable:\n\nCell A Cell B\n\nUnclosed &bogus; & a < b"
        );
        for c in &chunks {
            assert!(!c.text.contains("not text") && !c.text.contains("color"));
            assert!(!c.text.contains("Ignored") && !c.text.contains("gone"));
        }
        // The citation covers the source markup from the first to the last character.
        let src = source(body, &chunks[0]);
        assert!(
            src.starts_with("Charge") && src.ends_with("&#x2713;"),
            "{src}"
        );
    }

    #[test]
    fn html_is_tolerant() {
        let body = "<p>open <b>bold</b> <unclosed attr=\"x>still\n<p>next &#99999999; &#0; &amp</p><script>never closed";
        let chunks = chunk(body, Format::Html, ChunkConfig::default());
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            vec!["open bold still\n\nnext \u{FFFD} \u{FFFD} &amp"]
        );
    }

    #[test]
    fn pathological_html_is_fast() {
        let body = "<a \"".repeat(100_000) + &"<b ".repeat(100_000) + "<p>end</p>";
        let started = std::time::Instant::now();
        let chunks = chunk(&body, Format::Html, ChunkConfig::default());
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        assert!(chunks.last().is_some_and(|c| c.text.ends_with("end")));
    }

    #[test]
    fn plain_text_paragraphs() {
        let body = "First paragraph\nwith two lines.\n\n\n  Second paragraph.  \r\n\r\nThird.";
        let chunks = chunk(body, Format::Plain, cfg(40, 5));
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "First paragraph\nwith two lines.",
                "Second paragraph.\n\nThird."
            ]
        );
        assert!(chunks.iter().all(|c| c.heading_path.is_empty()));
        assert_eq!(source(body, &chunks[0]), chunks[0].text);
        assert_eq!(
            source(body, &chunks[1]),
            "Second paragraph.  \r\n\r\nThird."
        );
        // With room, paragraphs share a chunk, separated by a blank line.
        let one = chunk(body, Format::Plain, ChunkConfig::default());
        assert_eq!(one.len(), 1);
        assert_eq!(
            one[0].text,
            "First paragraph\nwith two lines.\n\nSecond paragraph.\n\nThird."
        );
        assert_eq!(
            (one[0].start_char, one[0].end_char),
            (0, body.chars().count())
        );
    }

    #[test]
    fn deterministic() {
        let body = format!("# A\n{}\n\n## B\n{}\n", long_section(15), long_section(9));
        for format in [Format::Markdown, Format::Plain, Format::Html] {
            let a = chunk(&body, format, cfg(250, 60));
            let b = chunk(&body, format, cfg(250, 60));
            assert!(!a.is_empty());
            assert_eq!(a, b);
        }
    }

    #[test]
    fn empty_input_gives_no_chunks() {
        for format in [Format::Markdown, Format::Html, Format::Plain] {
            assert!(chunk("", format, ChunkConfig::default()).is_empty());
            assert!(chunk("  \n\n\t \r\n", format, ChunkConfig::default()).is_empty());
        }
        assert!(
            chunk(
                "# Only\n## Headings\n---\n",
                Format::Markdown,
                ChunkConfig::default()
            )
            .is_empty()
        );
        assert!(
            chunk(
                "<h1>Only</h1><script>x()</script><style>p{}</style><p> </p>",
                Format::Html,
                ChunkConfig::default()
            )
            .is_empty()
        );
    }

    #[test]
    fn empty_sections_produce_nothing() {
        let body = "# Battery\n## Empty\n## Balancing\nText.\n";
        let chunks = chunk(body, Format::Markdown, ChunkConfig::default());
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].heading_path, vec!["Battery", "Balancing"]);
    }

    #[test]
    fn changed_paragraph_changes_only_affected_hashes() {
        let paras: Vec<String> = (0..12)
            .map(|i| {
                format!("Note {i:02}: the controller on unit {i:02} was reflashed and tested.")
            })
            .collect();
        let section = |ps: &[String]| ps.join("\n\n");
        let mut changed = paras.clone();
        changed[7] = changed[7].replace("reflashed", "recabled!");
        let before = format!(
            "# One\n{}\n# Two\n{}\n# Three\nTail.\n",
            section(&paras),
            section(&paras)
        );
        let after = format!(
            "# One\n{}\n# Two\n{}\n# Three\nTail.\n",
            section(&paras),
            section(&changed)
        );
        let a = chunk(&before, Format::Markdown, cfg(200, 60));
        let b = chunk(&after, Format::Markdown, cfg(200, 60));
        assert_eq!(a.len(), b.len());
        let differing: Vec<usize> = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| x.content_hash != y.content_hash)
            .map(|(x, _)| x.index)
            .collect();
        assert!(!differing.is_empty());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.heading_path, y.heading_path);
            let affected = y.text.contains("recabled");
            assert_eq!(differing.contains(&x.index), affected, "chunk {}", x.index);
            if affected {
                assert_eq!(x.heading_path, vec!["Two"]);
            }
        }
    }

    #[test]
    fn unicode_offsets_are_chars() {
        let body = "# Überblick\nÄrger mit dem Akku — 84 V. 🔋 Zellen prüfen.\n";
        let chunks = chunk(body, Format::Markdown, ChunkConfig::default());
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].heading_path, vec!["Überblick"]);
        assert_eq!(source(body, &chunks[0]), chunks[0].text);
    }

    #[test]
    fn tiny_limits_terminate() {
        let chunks = chunk("abc def. Ghi.", Format::Plain, cfg(0, 5));
        assert!(chunks.iter().all(|c| c.text.chars().count() == 1));
        assert_eq!(chunks.len(), 11);
    }
}
