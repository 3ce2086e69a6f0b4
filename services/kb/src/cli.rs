//! kb's command-line steps (run by `main.rs` instead of the service when named). Both talk to the
//! running kb over its gRPC port (which binds loopback: ADR 0007), as the system caller `kb-cli`,
//! so the service stays the only writer of its index.
//!
//! * `kb ingest [--visibility staff|client] [--server URL] [--config FILE] PATH…` walks files and
//!   folders, sends every `.md`/`.markdown`, `.html`/`.htm`, `.txt` and `.pdf` file (other files in
//!   folders are skipped; a file named on the command line with another extension is an error),
//!   shows progress with rate and ETA on stderr, reports each failure and goes on, and ends with
//!   a summary. Each file's source ref is `file:<absolute path>`: ingesting it again replaces it.
//!   Exit status 0 when everything was ingested, 1 when some files failed, 2 on bad usage.
//! * `kb rebuild-index [--server URL] [--config FILE]`: the whole index again from the database.
//!
//! Without `--server`, the address is the configured gRPC port on 127.0.0.1.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use omneuro_platform::auth::{self, Actor};
use omneuro_platform::config::{self, ServiceConfig};
use omneuro_proto::kb::v1 as pb;
use pb::kb_service_client::KbServiceClient;

use crate::extract::SourceFormat;
use crate::{DEFAULTS, NAME};

const USAGE: &str = "usage: kb ingest [--visibility staff|client] [--server URL] [--config FILE] PATH...\n       kb rebuild-index [--server URL] [--config FILE]";

/// Runs the command-line step named in the arguments, or `None` when none is (start the service).
pub async fn run() -> Option<ExitCode> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("ingest") => Some(ingest(&args[2..]).await),
        Some("rebuild-index") => Some(rebuild(&args[2..]).await),
        _ => None,
    }
}

/// Flags with a value, and the remaining positional arguments.
struct Args {
    server: Option<String>,
    config: Option<PathBuf>,
    visibility: Option<String>,
    paths: Vec<PathBuf>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut out = Args {
        server: None,
        config: None,
        visibility: None,
        paths: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--server" => out.server = Some(value("--server")?),
            "--config" => out.config = Some(PathBuf::from(value("--config")?)),
            "--visibility" => out.visibility = Some(value("--visibility")?),
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            p => out.paths.push(PathBuf::from(p)),
        }
    }
    Ok(out)
}

fn usage(msg: &str) -> ExitCode {
    if !msg.is_empty() {
        eprintln!("{NAME}: {msg}");
    }
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

/// The server address and the document size limit: from `--server`, else the configuration.
fn target(args: &Args) -> Result<(String, usize), String> {
    let cfg: Option<ServiceConfig> =
        match config::load(DEFAULTS, args.config.as_deref(), std::env::vars()) {
            Ok(c) => Some(c),
            Err(e) if args.server.is_none() => return Err(e.to_string()),
            Err(_) => None,
        };
    let limit = cfg
        .as_ref()
        .map_or(config::KbConfig::default().max_document_bytes, |c| {
            c.kb.max_document_bytes
        });
    let url = match (&args.server, &cfg) {
        (Some(s), _) => s.clone(),
        (None, Some(c)) => {
            let mut addr = c.grpc.addr();
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}")
        }
        (None, None) => return Err("no server address".into()),
    };
    Ok((url, limit))
}

type Client = KbServiceClient<omneuro_platform::grpc::TracedChannel>;

fn client(url: &str, timeout: Duration) -> Result<Client, String> {
    let channel = omneuro_platform::grpc::channel(url, Duration::from_secs(3), timeout)
        .map_err(|e| format!("bad server address {url}: {e}"))?;
    Ok(KbServiceClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX))
}

fn actor() -> Actor {
    Actor::System("kb-cli".into())
}

async fn rebuild(args: &[String]) -> ExitCode {
    let args = match parse_args(args) {
        Ok(a) if a.paths.is_empty() && a.visibility.is_none() => a,
        Ok(_) => return usage("rebuild-index takes no paths"),
        Err(e) => return usage(&e),
    };
    let result = async {
        let (url, _) = target(&args)?;
        let mut c = client(&url, Duration::from_secs(3600))?;
        let r = c
            .rebuild_index(auth::request(&actor(), pb::RebuildIndexRequest {}))
            .await
            .map_err(|s| format!("{url}: {}", s.message()))?
            .into_inner();
        Ok::<_, String>(r)
    }
    .await;
    match result {
        Ok(r) => {
            println!(
                "rebuilt the search index: {} documents, {} chunks in {} ms",
                r.documents, r.chunks, r.duration_ms
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{NAME}: cannot rebuild the index: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One file to send.
struct Job {
    path: PathBuf,
    format: SourceFormat,
    bytes: u64,
}

/// Files under `paths` (folders walked recursively, in name order, hidden entries skipped);
/// errors for named files that cannot be ingested; the number of files skipped in folders.
fn collect(paths: &[PathBuf]) -> (Vec<Job>, Vec<(PathBuf, String)>, usize) {
    let mut jobs = Vec::new();
    let mut errors = Vec::new();
    let mut skipped = 0;
    for p in paths {
        match std::fs::metadata(p) {
            Err(e) => errors.push((p.clone(), format!("cannot read: {e}"))),
            Ok(m) if m.is_dir() => walk(p, &mut jobs, &mut errors, &mut skipped),
            Ok(m) => match format_of(p) {
                Some(format) => jobs.push(Job {
                    path: p.clone(),
                    format,
                    bytes: m.len(),
                }),
                None => errors.push((
                    p.clone(),
                    "unsupported file type (kb takes .md, .html, .txt and .pdf)".into(),
                )),
            },
        }
    }
    (jobs, errors, skipped)
}

fn format_of(p: &Path) -> Option<SourceFormat> {
    p.extension()
        .and_then(|e| e.to_str())
        .and_then(SourceFormat::from_extension)
}

fn walk(dir: &Path, jobs: &mut Vec<Job>, errors: &mut Vec<(PathBuf, String)>, skipped: &mut usize) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push((dir.to_owned(), format!("cannot read folder: {e}")));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    paths.sort();
    for p in paths {
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => walk(&p, jobs, errors, skipped),
            Ok(m) => match format_of(&p) {
                Some(format) => jobs.push(Job {
                    path: p,
                    format,
                    bytes: m.len(),
                }),
                None => *skipped += 1,
            },
            Err(e) => errors.push((p, format!("cannot read: {e}"))),
        }
    }
}

fn to_pb_format(f: SourceFormat) -> pb::Format {
    match f {
        SourceFormat::Text => pb::Format::Text,
        SourceFormat::Markdown => pb::Format::Markdown,
        SourceFormat::Html => pb::Format::Html,
        SourceFormat::Pdf => pb::Format::Pdf,
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// A progress line on stderr: redrawn in place at a terminal, else printed at most every 2 s.
struct Progress {
    total_files: usize,
    total_bytes: u64,
    started: Instant,
    last: Option<Instant>,
    tty: bool,
}

impl Progress {
    fn line(&self, files: usize, bytes: u64) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-6);
        let rate_files = files as f64 / secs;
        let rate_bytes = bytes as f64 / secs;
        let eta = if bytes > 0 && self.total_bytes > bytes {
            duration((self.total_bytes - bytes) as f64 / rate_bytes)
        } else if files > 0 && self.total_files > files {
            duration((self.total_files - files) as f64 / rate_files)
        } else {
            "0s".into()
        };
        let width = 24;
        let done = if self.total_bytes > 0 {
            (bytes as f64 / self.total_bytes as f64 * width as f64) as usize
        } else {
            width * files / self.total_files.max(1)
        }
        .min(width);
        format!(
            "[{}{}] {files}/{} files, {:.1}/{:.1} MB, {rate_files:.1} files/s, {:.2} MB/s, ETA {eta}",
            "#".repeat(done),
            "-".repeat(width - done),
            self.total_files,
            mb(bytes),
            mb(self.total_bytes),
            rate_bytes / 1_000_000.0,
        )
    }

    fn show(&mut self, files: usize, bytes: u64, force: bool) {
        let now = Instant::now();
        let due = self.tty
            || force
            || self
                .last
                .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(2));
        if !due {
            return;
        }
        self.last = Some(now);
        let line = self.line(files, bytes);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    /// Prints a line above the bar.
    fn say(&self, msg: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(err, "{msg}");
    }
}

async fn ingest(args: &[String]) -> ExitCode {
    let args = match parse_args(args) {
        Ok(a) if !a.paths.is_empty() => a,
        Ok(_) => return usage("name at least one file or folder"),
        Err(e) => return usage(&e),
    };
    let visibility = match args.visibility.as_deref() {
        None | Some("staff") => pb::Visibility::Staff,
        Some("client") => pb::Visibility::Client,
        Some(v) => return usage(&format!("--visibility must be staff or client, not {v}")),
    };
    let (url, limit) = match target(&args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{NAME}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut c = match client(&url, Duration::from_secs(300)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{NAME}: {e}");
            return ExitCode::from(2);
        }
    };
    let (jobs, walk_errors, skipped) = collect(&args.paths);
    let mut progress = Progress {
        total_files: jobs.len(),
        total_bytes: jobs.iter().map(|j| j.bytes).sum(),
        started: Instant::now(),
        last: None,
        tty: std::io::stderr().is_terminal(),
    };
    let mut failed = walk_errors.len();
    for (p, e) in &walk_errors {
        progress.say(&format!("error: {}: {e}", p.display()));
    }
    let (mut created, mut replaced, mut unchanged) = (0usize, 0usize, 0usize);
    let (mut done_files, mut done_bytes) = (0usize, 0u64);
    for job in &jobs {
        match send(&mut c, job, visibility, limit).await {
            Ok(r) if r.created => created += 1,
            Ok(r) if r.replaced => replaced += 1,
            Ok(_) => unchanged += 1,
            Err(e) => {
                failed += 1;
                progress.say(&format!("error: {}: {e}", job.path.display()));
                if e.starts_with("kb is unavailable") {
                    break;
                }
            }
        }
        done_files += 1;
        done_bytes += job.bytes;
        progress.show(done_files, done_bytes, false);
    }
    progress.show(done_files, done_bytes, true);
    if progress.tty {
        eprintln!();
    }
    let secs = progress.started.elapsed().as_secs_f64().max(1e-6);
    println!(
        "ingested {} of {} files ({created} new, {replaced} replaced, {unchanged} unchanged), {failed} failed, {skipped} skipped; {:.1} MB in {:.1} s ({:.1} files/s, {:.2} MB/s)",
        created + replaced + unchanged,
        jobs.len() + walk_errors.len(),
        mb(done_bytes),
        secs,
        done_files as f64 / secs,
        mb(done_bytes) / secs,
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn send(
    c: &mut Client,
    job: &Job,
    visibility: pb::Visibility,
    limit: usize,
) -> Result<pb::PutDocumentResponse, String> {
    if job.bytes > limit as u64 {
        return Err(format!(
            "the file is {} bytes; the limit is {}",
            job.bytes,
            crate::extract::limit_text(limit)
        ));
    }
    let data = std::fs::read(&job.path).map_err(|e| format!("cannot read: {e}"))?;
    let abs = std::fs::canonicalize(&job.path).unwrap_or_else(|_| job.path.clone());
    let title = job
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| abs.display().to_string());
    let req = pb::PutDocumentRequest {
        title,
        data,
        format: to_pb_format(job.format).into(),
        visibility: visibility.into(),
        source_ref: format!("file:{}", abs.display()),
        ..Default::default()
    };
    match c.put_document(auth::request(&actor(), req)).await {
        Ok(r) => Ok(r.into_inner()),
        Err(s) if s.code() == tonic::Code::Unavailable => {
            Err(format!("kb is unavailable: {}", s.message()))
        }
        Err(s) => Err(s.message().to_owned()),
    }
}
