//! Photos of a job, taken at the bench. jobs owns the rules: at most
//! [`MAX_PHOTO_BYTES`] (10 MiB), JPEG, PNG or WebP as the file's own first bytes say (what the
//! browser declared is ignored: tablets send `image/jpg`, `application/octet-stream` or nothing),
//! at most [`MAX_PHOTOS_PER_JOB`] per job, a caption of at most [`MAX_CAPTION`] characters.
//!
//! The bytes live in the photo store ([`omneuro_platform::blobs`]) under the photo's id; the row
//! here holds what the pages show. Order of writes (see `grpc.rs`): checks, then the file, then
//! the row (the file is removed again if the row can't be written); removal deletes the row,
//! then the file. So a row never points at a missing file; a crash between the two steps can at
//! worst leave a file without a row, which nothing ever serves.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, write_transaction};
use omneuro_platform::error::{DomainError, text};
use omneuro_platform::ids;
use sha2::{Digest, Sha256};

use crate::schema::{job_photos, work_orders};
use crate::workorders;

pub use omneuro_platform::blobs::MAX_PHOTO_BYTES;

pub const MAX_PHOTOS_PER_JOB: i64 = 30;
pub const MAX_CAPTION: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    pub id: String,
    pub job_id: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub caption: String,
    pub uploaded_by: String,
    pub created_at: NaiveDateTime,
}

/// A photo that passed the checks, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub content_type: &'static str,
    pub size_bytes: i64,
    pub sha256: String,
    pub caption: String,
}

/// The image type by the file's first bytes (magic numbers): JPEG, PNG or WebP, else why not.
pub fn sniff(bytes: &[u8]) -> Result<&'static str, DomainError> {
    if bytes.is_empty() {
        return Err(DomainError::invalid(
            "The file is empty. Take the photo again or pick another one.",
        ));
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok("image/jpeg");
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok("image/png");
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok("image/webp");
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Err(DomainError::invalid(
            "GIF images aren't taken. Send the photo as JPEG, PNG or WebP.",
        ));
    }
    Err(DomainError::invalid(
        "That file isn't a photo we can take: send a JPEG, PNG or WebP image.",
    ))
}

/// Every check that needs no database: size, type, caption.
pub fn check(bytes: &[u8], caption: &str) -> Result<Checked, DomainError> {
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(DomainError::invalid(too_large()));
    }
    let content_type = sniff(bytes)?;
    let caption = text("caption", caption, MAX_CAPTION, false)?;
    let sha256 = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Checked {
        content_type,
        size_bytes: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
        sha256,
        caption,
    })
}

/// The sentence for a photo over the limit (the portal shows the same one).
pub fn too_large() -> String {
    format!(
        "The photo is too large: at most {} MB.",
        MAX_PHOTO_BYTES / (1024 * 1024)
    )
}

fn count(conn: &mut DbConnection, job_id: &str) -> Result<i64, DomainError> {
    Ok(job_photos::table
        .filter(job_photos::job_id.eq(job_id))
        .count()
        .get_result(conn)?)
}

fn full() -> DomainError {
    DomainError::conflict(format!(
        "This job already has {MAX_PHOTOS_PER_JOB} photos, the most it can have. Remove one first."
    ))
}

/// Before the file is written: the job exists and has room for one more photo.
pub fn room_for_one(conn: &mut DbConnection, job_id: &str) -> Result<(), DomainError> {
    workorders::get(conn, job_id, None)?;
    if count(conn, job_id)? >= MAX_PHOTOS_PER_JOB {
        return Err(full());
    }
    Ok(())
}

/// The row, once the file is stored. The job's row is locked first (a no-op update), so two
/// uploads at once can't both take the last place.
pub fn insert(
    conn: &mut DbConnection,
    id: &str,
    job_id: &str,
    photo: &Checked,
    uploaded_by: &str,
    now: NaiveDateTime,
) -> Result<Photo, DomainError> {
    write_transaction(conn, |c| {
        let locked = diesel::update(work_orders::table.find(job_id))
            .set(work_orders::id.eq(job_id))
            .execute(c)?;
        if locked == 0 {
            return Err(DomainError::not_found("No such job."));
        }
        if count(c, job_id)? >= MAX_PHOTOS_PER_JOB {
            return Err(full());
        }
        diesel::insert_into(job_photos::table)
            .values((
                job_photos::id.eq(id),
                job_photos::job_id.eq(job_id),
                job_photos::content_type.eq(photo.content_type),
                job_photos::size_bytes.eq(photo.size_bytes),
                job_photos::sha256.eq(&photo.sha256),
                job_photos::caption.eq(&photo.caption),
                job_photos::uploaded_by.eq(uploaded_by),
                job_photos::created_at.eq(now),
            ))
            .execute(c)?;
        Ok(Photo {
            id: id.to_owned(),
            job_id: job_id.to_owned(),
            content_type: photo.content_type.to_owned(),
            size_bytes: photo.size_bytes,
            sha256: photo.sha256.clone(),
            caption: photo.caption.clone(),
            uploaded_by: uploaded_by.to_owned(),
            created_at: now,
        })
    })
}

type Row = (
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
    NaiveDateTime,
);

fn from_row(r: Row) -> Photo {
    Photo {
        id: r.0,
        job_id: r.1,
        content_type: r.2,
        size_bytes: r.3,
        sha256: r.4,
        caption: r.5,
        uploaded_by: r.6,
        created_at: r.7,
    }
}

macro_rules! columns {
    () => {
        (
            job_photos::id,
            job_photos::job_id,
            job_photos::content_type,
            job_photos::size_bytes,
            job_photos::sha256,
            job_photos::caption,
            job_photos::uploaded_by,
            job_photos::created_at,
        )
    };
}

/// A job's photos, oldest first.
pub fn list(conn: &mut DbConnection, job_id: &str) -> Result<Vec<Photo>, DomainError> {
    Ok(job_photos::table
        .filter(job_photos::job_id.eq(job_id))
        .order_by((job_photos::created_at, job_photos::id))
        .select(columns!())
        .load::<Row>(conn)?
        .into_iter()
        .map(from_row)
        .collect())
}

fn gone() -> DomainError {
    DomainError::not_found("No such photo on this job.")
}

/// One photo of this job (a photo of another job is "no such photo").
pub fn get(conn: &mut DbConnection, job_id: &str, photo_id: &str) -> Result<Photo, DomainError> {
    if !ids::is_valid("pho", photo_id) {
        return Err(gone());
    }
    job_photos::table
        .filter(job_photos::id.eq(photo_id))
        .filter(job_photos::job_id.eq(job_id))
        .select(columns!())
        .first::<Row>(conn)
        .optional()?
        .map(from_row)
        .ok_or_else(gone)
}

/// Deletes the row (the caller deletes the file after).
pub fn remove(conn: &mut DbConnection, job_id: &str, photo_id: &str) -> Result<(), DomainError> {
    if !ids::is_valid("pho", photo_id) {
        return Err(gone());
    }
    let n = diesel::delete(
        job_photos::table
            .filter(job_photos::id.eq(photo_id))
            .filter(job_photos::job_id.eq(job_id)),
    )
    .execute(conn)?;
    if n == 0 {
        return Err(gone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'];
    const WEBP: &[u8] = b"RIFF\x24\0\0\0WEBPVP8 ";

    #[test]
    fn the_type_is_what_the_bytes_say() {
        assert_eq!(sniff(JPEG).unwrap(), "image/jpeg");
        assert_eq!(sniff(PNG).unwrap(), "image/png");
        assert_eq!(sniff(WEBP).unwrap(), "image/webp");
        let refused = |b: &[u8]| match sniff(b) {
            Err(DomainError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(refused(b"").contains("empty"));
        assert!(refused(b"GIF89a\x01\0\x01\0").contains("GIF"));
        assert!(refused(b"GIF87a").contains("GIF"));
        for bad in [
            &b"hello, this is text named photo.jpg"[..],
            b"\xFF\xD8",
            b"\x89PNG\r\n",
            b"RIFF\0\0\0\0WAVE",
            b"RIFF",
            b"<svg xmlns='http://www.w3.org/2000/svg'/>",
            b"%PDF-1.7",
        ] {
            assert!(refused(bad).contains("JPEG, PNG or WebP"), "{bad:?}");
        }
    }

    #[test]
    fn size_and_caption_are_checked_and_the_hash_kept() {
        let ok = check(PNG, "  swollen cell, left pack ").unwrap();
        assert_eq!(ok.content_type, "image/png");
        assert_eq!(ok.size_bytes, PNG.len() as i64);
        assert_eq!(ok.caption, "swollen cell, left pack");
        assert_eq!(ok.sha256.len(), 64);
        let mut big = JPEG.to_vec();
        big.resize(MAX_PHOTO_BYTES, 0);
        assert!(check(&big, "").is_ok());
        big.push(0);
        assert!(matches!(check(&big, ""), Err(DomainError::Invalid(m)) if m.contains("10 MB")));
        assert!(check(PNG, &"x".repeat(MAX_CAPTION)).is_ok());
        assert!(check(PNG, &"x".repeat(MAX_CAPTION + 1)).is_err());
        assert!(check(PNG, "line\nbreak").is_err());
    }
}
