//! The Today screen with real jobs and portal on both databases: today's booked drop-offs in their
//! windows in time order (not tomorrow's, not released ones, not finished jobs), who is signed in
//! right now (not who signed out), what waits on parts, and a clear notice when jobs is down.

use omneuro_tests::*;

/// The HTML of the element that starts at `marker` up to the next `</section>`.
fn section<'a>(body: &'a str, marker: &str) -> &'a str {
    let at = body
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {body}"));
    let rest = &body[at..];
    &rest[..rest.find("</section>").unwrap()]
}

fn seed(db: &TestDb) {
    let now = chrono::Utc::now();
    let local = now
        .with_timezone(&chrono_tz::America::New_York)
        .date_naive();
    let today = local.format("%Y-%m-%d");
    let tomorrow = (local + chrono::Days::new(1)).format("%Y-%m-%d");
    let stamp = now.naive_utc().format("%Y-%m-%d %H:%M:%S");
    let mut sql = String::from("BEGIN;");
    for (id, status, safety, tech, appt) in [
        (
            "job_today0000000001",
            "intake",
            true,
            "",
            Some((today.to_string(), "morning", "11:00", "booked")),
        ),
        (
            "job_today0000000002",
            "diagnosing",
            false,
            "",
            Some((today.to_string(), "morning", "10:00", "booked")),
        ),
        (
            "job_today0000000003",
            "intake",
            false,
            "",
            Some((today.to_string(), "evening", "15:30", "booked")),
        ),
        (
            "job_tomorrow0000001",
            "intake",
            false,
            "",
            Some((tomorrow.to_string(), "morning", "10:00", "booked")),
        ),
        (
            "job_released0000001",
            "intake",
            false,
            "",
            Some((today.to_string(), "morning", "10:30", "canceled")),
        ),
        (
            "job_finished0000001",
            "delivered",
            false,
            "",
            Some((today.to_string(), "morning", "10:45", "booked")),
        ),
        (
            "job_parts0000000001",
            "awaiting_parts",
            false,
            "Marcus",
            None,
        ),
    ] {
        sql.push_str(&format!(
            "INSERT INTO work_orders (id, client_id, vehicle_id, vehicle_label, status, services, problem, safety_flag, assigned_tech, source, status_token, created_at, updated_at) \
             VALUES ('{id}', 'cli_today', 'veh_{id}', 'Vehicle {id}', '{status}', 'diagnostics', '', {}, '{tech}', 'booking', NULL, '{stamp}', '{stamp}');",
            if safety { "TRUE" } else { "FALSE" }
        ));
        if let Some((day, window, start, st)) = appt {
            sql.push_str(&format!(
                "INSERT INTO appointments (id, job_id, client_id, day, window_code, start_local, starts_at, status, created_at, updated_at) \
                 VALUES ('apt_{id}', '{id}', 'cli_today', '{day}', '{window}', '{start}', '{stamp}', '{st}', '{stamp}', '{stamp}');"
            ));
        }
    }
    sql.push_str("COMMIT;");
    db.execute_batch(&sql);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn today_shows_drop_offs_by_window_who_is_on_and_what_waits_on_parts() {
    for backend in backends() {
        let (jdb, pdb) = (TestDb::new(backend, "jobs"), TestDb::new(backend, "portal"));
        let j = start_domain(
            "jobs",
            &jdb.url,
            &[("OMNEURO__WORKER__ENABLED", "false".to_owned())],
        )
        .await;
        wait_ready(&j).await;
        seed(&jdb);
        let portal = start_portal(&pdb.url, &[("jobs", j.grpc_url())], &[]).await;
        wait_ready(&portal).await;
        let mut staff = seed_staff(&pdb.url).await;
        let base = portal.url("");
        let (mut tech, mut owner, mut desk) = (
            Browser::new(&base),
            Browser::new(&base),
            Browser::new(&base),
        );
        assert_eq!(
            staff_sign_in(&mut tech, &mut staff.tech).await.location,
            "/jobs"
        );
        assert_eq!(
            staff_sign_in(&mut owner, &mut staff.owner).await.location,
            "/jobs"
        );
        assert_eq!(
            staff_sign_in(&mut desk, &mut staff.desk).await.location,
            "/jobs"
        );
        let csrf = desk.get("/account").await.csrf();
        desk.post("/signout", &[("csrf", &csrf)]).await;

        // Signed in, `/` opens Today.
        assert_eq!(tech.get("/").await.location, "/today");
        let p = tech.get("/today").await;
        assert_eq!(p.status, 200, "{}", p.body);
        let windows: Vec<&str> = p
            .body
            .match_indices("class=\"panel window\"")
            .map(|(i, _)| section(&p.body[i..], "class=\"panel window\""))
            .collect();
        assert_eq!(windows.len(), 3, "morning, afternoon, evening");
        let jobs_in = |w: &str| -> Vec<String> {
            w.match_indices("data-job=\"")
                .map(|(i, _)| w[i + 10..].chars().take_while(|c| *c != '"').collect())
                .collect()
        };
        assert!(windows[0].contains("Morning") || windows[0].to_lowercase().contains("morning"));
        assert_eq!(
            jobs_in(windows[0]),
            ["job_today0000000002", "job_today0000000001"],
            "{}",
            windows[0]
        );
        assert!(windows[0].contains("⚠ safety") && windows[0].contains("Diagnosing"));
        assert!(jobs_in(windows[1]).is_empty() && windows[1].contains("No drop-offs."));
        assert_eq!(jobs_in(windows[2]), ["job_today0000000003"]);
        for absent in ["job_tomorrow", "job_released", "job_finished"] {
            assert!(!p.body.contains(absent), "{absent} shown on Today");
        }
        let on = section(&p.body, "id=\"on\"");
        assert!(
            on.contains("Marcus Tech") && on.contains("Dana Owner"),
            "{on}"
        );
        assert!(!on.contains("Fran Desk"), "signed out, not on: {on}");
        let parts = section(&p.body, "id=\"parts\"");
        assert_eq!(jobs_in(parts), ["job_parts0000000001"]);
        assert!(parts.contains("Marcus"));

        // jobs down: a notice, not an empty day that looks real.
        j.stop().await;
        let p = tech.get("/today").await;
        assert_eq!(p.status, 503);
        assert!(p.body.contains("jobs service isn") && !p.body.contains("No drop-offs."));
        portal.stop().await;
    }
}
