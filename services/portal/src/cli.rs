//! The portal's command-line steps (run by `main.rs` before the service starts):
//!
//! `portal create-owner --email EMAIL --name NAME [--config FILE]` makes the first owner account.
//! The password is read from standard input (asked twice, without echo, at a terminal; the first
//! line when piped). There is no default password: until this step runs nobody can sign in. It is
//! refused once an active owner exists; later staff are invited from the portal.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use omneuro_platform::config::{self, PortalConfig};
use omneuro_platform::db::{Database, now_utc};

use crate::{accounts, defaults, migrations};

const USAGE: &str = "usage: portal create-owner --email EMAIL --name NAME [--config FILE]\n\nThe password is read from standard input.";

/// Runs the command-line step named in the arguments, or `None` when none is (start the service).
pub async fn run() -> Option<ExitCode> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("create-owner") => Some(create_owner(&args[2..]).await),
        _ => None,
    }
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn read_password() -> Result<String, String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password: {e}"))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let echo = |on: bool| {
        let _ = std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(std::process::Stdio::inherit())
            .status();
    };
    let ask = |prompt: &str| -> Result<String, String> {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        echo(false);
        let mut line = String::new();
        let read = stdin.lock().read_line(&mut line);
        echo(true);
        eprintln!();
        read.map_err(|e| format!("cannot read the password: {e}"))?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    };
    let first = ask("Password for the owner (at least 8 characters): ")?;
    let again = ask("Same password again: ")?;
    if first != again {
        return Err("the two passwords differ; nothing was created".into());
    }
    Ok(first)
}

async fn create_owner(args: &[String]) -> ExitCode {
    let (Some(email), Some(name)) = (flag(args, "--email"), flag(args, "--name")) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let file = flag(args, "--config").map(std::path::PathBuf::from);
    let cfg: PortalConfig = match config::load(&defaults(), file.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("portal: {e}");
            return ExitCode::from(2);
        }
    };
    let db = match Database::new(&cfg.database, migrations()) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("portal: cannot open the database: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = db.migrate_blocking() {
        eprintln!("portal: cannot migrate the database: {e}");
        return ExitCode::FAILURE;
    }
    let password = match read_password() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("portal: {e}");
            return ExitCode::FAILURE;
        }
    };
    let made = db
        .run(move |c| accounts::create_first_owner(c, &email, &name, &password, now_utc()))
        .await;
    match made {
        Ok(owner) => {
            println!(
                "Owner {} <{}> created. Sign in at {}/signin; you'll set up an authenticator app on the first sign-in.",
                owner.name,
                owner.email,
                cfg.links.tech_url.trim_end_matches('/')
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("portal: {e}");
            ExitCode::FAILURE
        }
    }
}
