//! The client garage end to end in a real browser, through the real nginx, on both databases:
//! sign in with the mailed link, add a Begode and an "other" make, book Tuesday Morning; the owner
//! (made with `portal create-owner`) signs in with password + authenticator app and invites a
//! tech, who accepts, signs in and moves the job to diagnosing then ready; the client gets the email and the SMS, and the
//! status link shows the new state. Screenshots land in `target/browser-artifacts/<backend>/`.

use std::time::Duration;

use omneuro_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_books_in_the_browser_and_follows_the_repair_to_ready() {
    let Some((node, chromium, modules)) = browser_peers() else {
        return;
    };
    let (Some(sink), Some(telnyx)) = (SmtpSink::start(), FakeTelnyx::start()) else {
        return;
    };
    for (n, backend) in backends().into_iter().enumerate() {
        let tmp = TempDir::new("browser");
        let port = free_port();
        let public = format!("http://localhost:{port}");
        let tech = format!("http://tech.localhost:{port}");
        let links = [
            ("OMNEURO__LINKS__PUBLIC_URL", public.clone()),
            ("OMNEURO__LINKS__TECH_URL", tech.clone()),
        ];
        let (gdb, jdb) = (TestDb::new(backend, "garage"), TestDb::new(backend, "jobs"));
        let mut genv = vec![("OMNEURO__MAIL__SMTP_URL", sink.url())];
        genv.extend(links.iter().cloned());
        let g = start_domain("garage", &gdb.url, &genv).await;
        wait_ready(&g).await;

        let mut jenv = vec![
            ("OMNEURO__DATABASE__URL", jdb.url.clone()),
            ("OMNEURO__MAIL__SMTP_URL", sink.url()),
            ("OMNEURO__UPSTREAMS__GARAGE", g.grpc_url()),
            ("OMNEURO__WORKER__POLL_MS", "100".to_owned()),
            ("OMNEURO__SMS__BASE_URL", telnyx.base_url()),
            ("OMNEURO__SMS__FROM_NUMBER", "+14105550100".to_owned()),
            ("OMNEURO_SECRET_TELNYX_API_KEY", telnyx.api_key.clone()),
        ];
        jenv.extend(links.iter().cloned());
        let mut jobs = Proc::spawn("jobs", &jenv, &tmp.0);
        let ready = format!("http://{}/readyz", jobs.http);
        assert!(
            eventually(Duration::from_secs(20), || async {
                http_status(&ready).await == 200
            })
            .await
        );

        let mut senv = vec![
            ("OMNEURO__UPSTREAMS__GARAGE", g.grpc_url()),
            ("OMNEURO__UPSTREAMS__JOBS", jobs.grpc_url()),
        ];
        senv.extend(links.iter().cloned());
        let mut site = Proc::spawn("site", &senv, &tmp.0);
        // The first owner, made the documented way: `portal create-owner`, password on stdin.
        let pdb = TestDb::new(backend, "portal");
        let owner_password = "correct-horse-battery-staple-410";
        let made = create_owner_cli(&pdb.url, "owner@juicejunkiez.test", "Dana", owner_password);
        assert!(
            made.contains("Owner Dana <owner@juicejunkiez.test> created"),
            "{made}"
        );
        let mut penv = vec![
            ("OMNEURO__UPSTREAMS__JOBS", jobs.grpc_url()),
            ("OMNEURO__DATABASE__URL", pdb.url.clone()),
            ("OMNEURO__MAIL__SMTP_URL", sink.url()),
        ];
        penv.extend(links.iter().cloned());
        let mut portal = Proc::spawn("portal", &penv, &tmp.0);
        portal.wait_ready().await;
        let tech_email = format!(
            "{}@juicejunkiez.test",
            omneuro_platform::ids::new_id("tech")
        );
        let closed = format!("127.0.0.1:{}", free_port());
        let Some(_nginx) = Nginx::start_on(
            port,
            &tmp.0,
            &[
                ("SITE_ADDR", site.http.to_string()),
                ("PORTAL_ADDR", portal.http.to_string()),
                ("BILLING_ADDR", closed.clone()),
                ("REPAIRBOT_ADDR", closed),
            ],
        ) else {
            return;
        };

        let shots = repo_root()
            .join("target/browser-artifacts")
            .join(format!("{backend:?}").to_lowercase());
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).unwrap();
        let email = format!("{}@example.com", omneuro_platform::ids::new_id("browser"));
        let phone = format!("+1410555{:04}", 300 + n);
        let home = tmp.0.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let run = tokio::time::timeout(
            Duration::from_secs(180),
            tokio::process::Command::new(&node)
                .arg(repo_root().join("tests/browser/garage_flow.cjs"))
                .env("NODE_MODULES", &modules)
                .env("CHROMIUM", &chromium)
                .env("PUBLIC_URL", &public)
                .env("TECH_URL", &tech)
                .env("MAIL_DIR", sink.dir())
                .env("EMAIL", &email)
                .env("PHONE", &phone)
                .env("OWNER_EMAIL", "owner@juicejunkiez.test")
                .env("OWNER_PASSWORD", owner_password)
                .env("TECH_EMAIL", &tech_email)
                .env("TECH_PASSWORD", "wrench-and-solder-2026")
                .env("SHOTS", &shots)
                .env("HOME", &home)
                .env("XDG_CONFIG_HOME", home.join(".config"))
                .env("XDG_CACHE_HOME", home.join(".cache"))
                .output(),
        )
        .await
        .expect("the browser run took over 3 minutes")
        .unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "{backend:?}: browser flow failed (screenshots in {}):\n{}\n{}\n--- site ---\n{}\n--- portal ---\n{}",
            shots.display(),
            stdout,
            String::from_utf8_lossy(&run.stderr),
            site.logs(),
            portal.logs()
        );
        let result: serde_json::Value =
            serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
        assert!(
            result["status_url"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{public}/status/"))
        );
        let pngs = std::fs::read_dir(&shots).unwrap().count();
        assert!(pngs >= 10, "screenshots kept: {pngs}");

        // The client heard about it: the booking email (with its calendar invite), the
        // ready-for-pick-up email, and texts.
        let mails = || sink.to(&email);
        assert!(
            eventually(Duration::from_secs(15), || async {
                mails().iter().any(|m| {
                    m["subject"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("Ready for pick-up")
                })
            })
            .await,
            "{:#?}",
            mails()
        );
        let booked = mails()
            .into_iter()
            .find(|m| {
                m["subject"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("Drop-off booked")
            })
            .unwrap();
        assert_eq!(booked["attachments"][0]["content_type"], "text/calendar");
        let texts = || telnyx.to(&phone);
        assert!(
            eventually(Duration::from_secs(15), || async {
                texts().iter().any(|t| {
                    t["text"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("ready for pick-up")
                })
            })
            .await,
            "{:#?}",
            texts()
        );
        assert!(texts().iter().any(|t| {
            t["text"]
                .as_str()
                .unwrap_or_default()
                .contains("drop-off booked")
        }));

        // The audit log says who did it: the owner's invite and the tech's two moves.
        let (invites, moves) = pdb.query_pair(&format!(
            "SELECT (SELECT COUNT(*) FROM audit_log WHERE action = 'invited a staff member' AND staff_email = 'owner@juicejunkiez.test') AS a, \
                    (SELECT COUNT(*) FROM audit_log WHERE action = 'moved a job' AND outcome = 'ok' AND staff_email = '{tech_email}') AS b"
        ));
        assert_eq!((invites, moves), (1, 2));

        assert!(portal.terminate().success());
        assert!(site.terminate().success());
        assert!(jobs.terminate().success());
        g.stop().await;
    }
}
