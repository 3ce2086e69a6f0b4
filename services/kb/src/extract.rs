//! Extraction: turns what a caller sent (text or a file's bytes, in a [`SourceFormat`]) into the
//! text kb stores and chunks, or a clear [`ExtractError`].
//!
//! * Text, Markdown and HTML must be UTF-8 without NUL bytes or a run of control characters
//!   ("looks binary"); HTML stays markup here: the chunker strips tags, drops `script`/`style`
//!   and decodes entities while keeping citations into the markup.
//! * PDF: the text layer through `lopdf`, page by page. A file that is not a PDF, a broken or
//!   encrypted one, or one without any text (a scan) is refused with a reason. The parser runs
//!   under `catch_unwind`: a malformed file that makes it panic is an error, not a crash.
//! * Anything over the configured size limit is refused before it is looked at.

use std::fmt;

use crate::chunking::Format;

/// How a document's content is written, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    Text,
    Markdown,
    Html,
    Pdf,
}

impl SourceFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Markdown => "markdown",
            Self::Html => "html",
            Self::Pdf => "pdf",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "text" => Some(Self::Text),
            "markdown" => Some(Self::Markdown),
            "html" => Some(Self::Html),
            "pdf" => Some(Self::Pdf),
            _ => None,
        }
    }

    /// From a file name's extension (`md`, `markdown`, `html`, `htm`, `txt`, `text`, `pdf`).
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Some(Self::Markdown),
            "html" | "htm" | "xhtml" => Some(Self::Html),
            "txt" | "text" => Some(Self::Text),
            "pdf" => Some(Self::Pdf),
            _ => None,
        }
    }

    /// How the stored body is chunked (a PDF's extracted text is plain text).
    pub fn chunk_format(self) -> Format {
        match self {
            Self::Markdown => Format::Markdown,
            Self::Html => Format::Html,
            Self::Text | Self::Pdf => Format::Plain,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtractError {
    TooLarge { bytes: usize, limit: usize },
    Empty,
    Binary,
    NotUtf8,
    NotPdf,
    BrokenPdf(String),
    EncryptedPdf,
    NoTextLayer,
}

impl fmt::Display for ExtractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { bytes, limit } => write!(
                f,
                "the document is {bytes} bytes; the limit is {}",
                limit_text(*limit)
            ),
            Self::Empty => write!(f, "the document is empty"),
            Self::Binary => write!(
                f,
                "the document looks binary (NUL or control bytes), not text"
            ),
            Self::NotUtf8 => write!(f, "the document is not valid UTF-8 text"),
            Self::NotPdf => write!(f, "the file is not a PDF (no %PDF- header)"),
            Self::BrokenPdf(why) => write!(f, "the PDF cannot be read: {why}"),
            Self::EncryptedPdf => write!(f, "the PDF is encrypted; send an unlocked copy"),
            Self::NoTextLayer => write!(
                f,
                "the PDF has no text layer (a scan?); only text PDFs can be indexed"
            ),
        }
    }
}

impl std::error::Error for ExtractError {}

/// `20971520 bytes (20 MB)`, or just the bytes under a megabyte.
pub fn limit_text(limit: usize) -> String {
    let mb = limit / (1024 * 1024);
    if mb == 0 {
        format!("{limit} bytes")
    } else {
        format!("{limit} bytes ({mb} MB)")
    }
}

/// The text of `data` (a whole file or body as sent) in `format`, within `limit` bytes.
pub fn extract(data: &[u8], format: SourceFormat, limit: usize) -> Result<String, ExtractError> {
    if data.len() > limit {
        return Err(ExtractError::TooLarge {
            bytes: data.len(),
            limit,
        });
    }
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err(ExtractError::Empty);
    }
    match format {
        SourceFormat::Pdf => pdf_text(data),
        _ => {
            let text = std::str::from_utf8(data).map_err(|_| {
                if looks_binary(data) {
                    ExtractError::Binary
                } else {
                    ExtractError::NotUtf8
                }
            })?;
            check_text(text)?;
            Ok(text.strip_prefix('\u{feff}').unwrap_or(text).to_owned())
        }
    }
}

/// Refuses text that is blank or looks binary.
pub fn check_text(text: &str) -> Result<(), ExtractError> {
    if text.trim().is_empty() {
        return Err(ExtractError::Empty);
    }
    if looks_binary(text.as_bytes()) {
        return Err(ExtractError::Binary);
    }
    Ok(())
}

/// A NUL byte, or more than 1 in 10 of the first 8 KiB being control bytes other than tab, line
/// feed, carriage return and form feed.
fn looks_binary(data: &[u8]) -> bool {
    if data.contains(&0) {
        return true;
    }
    let head = &data[..data.len().min(8192)];
    let control = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c) || b == 0x7f)
        .count();
    control * 10 > head.len()
}

fn pdf_text(data: &[u8]) -> Result<String, ExtractError> {
    // The header may follow a little junk (allowed by readers); look in the first KiB.
    let head = &data[..data.len().min(1024)];
    if !head.windows(5).any(|w| w == b"%PDF-") {
        return Err(ExtractError::NotPdf);
    }
    let parsed = std::panic::catch_unwind(|| -> Result<String, ExtractError> {
        let doc =
            lopdf::Document::load_mem(data).map_err(|e| ExtractError::BrokenPdf(e.to_string()))?;
        if doc.is_encrypted() {
            return Err(ExtractError::EncryptedPdf);
        }
        let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
        if pages.is_empty() {
            return Err(ExtractError::BrokenPdf("it has no pages".into()));
        }
        let mut text = String::new();
        let mut failed = None;
        for page in pages {
            // One unreadable page (an odd font, a bad stream) should not lose the others.
            match doc.extract_text(&[page]) {
                Ok(t) => {
                    text.push_str(t.trim_end());
                    text.push_str("\n\n");
                }
                Err(e) => failed = Some(e.to_string()),
            }
        }
        if text.trim().is_empty() {
            let tail = &data[data.len().saturating_sub(1024)..];
            let truncated = !tail.windows(5).any(|w| w == b"%%EOF");
            return Err(match failed {
                Some(why) => ExtractError::BrokenPdf(why),
                None if truncated => {
                    ExtractError::BrokenPdf("the file is cut short (no %%EOF)".into())
                }
                None => ExtractError::NoTextLayer,
            });
        }
        Ok(text.replace('\0', ""))
    });
    parsed.unwrap_or_else(|_| Err(ExtractError::BrokenPdf("the parser gave up".into())))
}

/// Sample documents for tests (kb's own and the service tests): small, valid, built in code.
pub mod sample {
    /// A one-page PDF whose content stream shows `text` in Helvetica, with a correct xref table.
    pub fn one_page_pdf(text: &str) -> Vec<u8> {
        let stream = format!("BT /F1 12 Tf 72 712 Td ({text}) Tj ET");
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
            format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
        ];
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        out.extend_from_slice(
            format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
        );
        for off in offsets {
            out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::sample::one_page_pdf as tiny_pdf;

    #[test]
    fn text_formats_are_checked() {
        assert_eq!(
            extract(b"# Title\n\nBody", SourceFormat::Markdown, 100).unwrap(),
            "# Title\n\nBody"
        );
        assert_eq!(
            extract(b"  \n ", SourceFormat::Text, 100),
            Err(ExtractError::Empty)
        );
        assert_eq!(
            extract(b"", SourceFormat::Html, 100),
            Err(ExtractError::Empty)
        );
        assert_eq!(
            extract(b"a\0b", SourceFormat::Text, 100),
            Err(ExtractError::Binary)
        );
        assert_eq!(
            extract(
                &[0x89, b'P', b'N', b'G', 0, 1, 2, 3],
                SourceFormat::Text,
                100
            ),
            Err(ExtractError::Binary)
        );
        assert_eq!(
            extract(
                &[b'c', b'a', b'f', 0xe9, b' ', b'x'],
                SourceFormat::Text,
                100
            ),
            Err(ExtractError::NotUtf8)
        );
        let e = extract(&[b'x'; 101], SourceFormat::Text, 100).unwrap_err();
        assert_eq!(
            e,
            ExtractError::TooLarge {
                bytes: 101,
                limit: 100
            }
        );
        assert!(e.to_string().contains("limit"));
        assert_eq!(
            extract("\u{feff}hi".as_bytes(), SourceFormat::Text, 100).unwrap(),
            "hi"
        );
    }

    #[test]
    fn pdf_text_layer_is_extracted_and_bad_pdfs_are_refused() {
        let pdf = tiny_pdf("Sherman battery balancing procedure");
        let text = extract(&pdf, SourceFormat::Pdf, 1 << 20).unwrap();
        assert!(
            text.contains("Sherman battery balancing procedure"),
            "{text:?}"
        );

        assert_eq!(
            extract(b"hello, not a pdf", SourceFormat::Pdf, 1 << 20),
            Err(ExtractError::NotPdf)
        );
        let broken = &pdf[..pdf.len() / 3];
        let e = extract(broken, SourceFormat::Pdf, 1 << 20).unwrap_err();
        assert!(matches!(e, ExtractError::BrokenPdf(_)), "{e:?}");
        assert!(e.to_string().starts_with("the PDF cannot be read"));
        let garbage: Vec<u8> = b"%PDF-1.7\n"
            .iter()
            .copied()
            .chain((0..4000u32).map(|i| (i * 7 % 251) as u8))
            .collect();
        assert!(extract(&garbage, SourceFormat::Pdf, 1 << 20).is_err());
        let blank = tiny_pdf("");
        assert_eq!(
            extract(&blank, SourceFormat::Pdf, 1 << 20),
            Err(ExtractError::NoTextLayer)
        );
    }
}
