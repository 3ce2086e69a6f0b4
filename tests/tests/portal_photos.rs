//! Job photos through the portal's pages, with real garage, shop and jobs on both databases: a
//! tech uploads a real (hand-made) JPEG and PNG from the job page, sees them there, and gets the
//! same bytes back with the type jobs decided; a text file named .jpg, an empty file, a GIF, an
//! 11 MB file, a long caption, no file and a forged post are each refused with the reason on the
//! job page, and nothing is stored (no row in jobs, no file in the photo directory); the front
//! desk sees photos but may not add them; a photo is removed (row and file); jobs down says the
//! photo wasn't saved. Through the real nginx: the tech host takes a photo over 1 MB on the
//! upload route and nowhere else, and the public host keeps 1 MB everywhere.

use omneuro_platform::auth::{self, Actor};
use omneuro_proto::jobs::v1 as jpb;
use omneuro_tests::*;

type JobsC = jpb::jobs_service_client::JobsServiceClient<tonic::transport::Channel>;

/// A real 8×8 grey baseline JPEG: quantisation table of ones, one DC and one AC Huffman code,
/// one block (DC 0, then end of block).
fn tiny_jpeg() -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x43, 0x00];
    j.extend([1u8; 64]);
    j.extend([
        0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00,
    ]);
    for class in [0x00u8, 0x10] {
        j.extend([0xFF, 0xC4, 0x00, 0x14, class, 0x01]);
        j.extend([0u8; 15]);
        j.push(0x00);
    }
    j.extend([
        0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00, 0x3F, 0xFF, 0xD9,
    ]);
    j
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for x in bytes {
        a = (a + u32::from(*x)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// A real 1×1 RGB PNG, encoded by hand: IHDR, one IDAT (zlib with a stored block), IEND.
fn tiny_png() -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    }
    let raw = [0u8, 0xE0, 0x40, 0x10]; // filter 0, one orange pixel
    let mut z = vec![0x78, 0x01, 0x01];
    z.extend((raw.len() as u16).to_le_bytes());
    z.extend((!(raw.len() as u16)).to_le_bytes());
    z.extend(raw);
    z.extend(adler32(&raw).to_be_bytes());
    let mut ihdr = Vec::new();
    ihdr.extend(1u32.to_be_bytes());
    ihdr.extend(1u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &z);
    chunk(&mut png, b"IEND", b"");
    png
}

fn photo_parts<'a>(
    csrf: &'a str,
    caption: &'a str,
    filename: &'a str,
    content_type: &'a str,
    data: &'a [u8],
) -> Vec<Part<'a>> {
    vec![
        Part {
            name: "csrf",
            file: None,
            data: csrf.as_bytes(),
        },
        Part {
            name: "caption",
            file: None,
            data: caption.as_bytes(),
        },
        Part {
            name: "photo",
            file: Some((filename, content_type)),
            data,
        },
    ]
}

/// A refused upload: caption, file name, declared type, bytes, status, what the page says.
type BadUpload<'a> = (&'a str, &'a str, &'a str, &'a [u8], u16, &'a str);

/// (rows in jobs' job_photos, files in the photo directory)
fn stored(jdb: &TestDb, dir: &std::path::Path) -> (i64, usize) {
    let (rows, _) = jdb.query_pair("SELECT COUNT(*) AS a, COUNT(*) AS b FROM job_photos");
    let files = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    (rows, files)
}

/// The photo ids the job page shows, in order.
fn photos_shown(body: &str) -> Vec<String> {
    body.match_indices("<li id=\"photo-")
        .map(|(i, m)| {
            body[i + m.len()..]
                .chars()
                .take_while(|c| *c != '"')
                .collect()
        })
        .collect()
}

/// Text as a person reads it (the templates escape apostrophes).
fn unescape(s: &str) -> String {
    s.replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
}

fn error_shown(body: &str) -> String {
    let Some(at) = body.find("id=\"error\">") else {
        return String::new();
    };
    let rest = &body[at + "id=\"error\">".len()..];
    unescape(&rest[..rest.find('<').unwrap_or(rest.len())])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn techs_add_photos_from_the_job_page_and_bad_files_are_refused_with_nothing_stored() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let (jpeg, png) = (tiny_jpeg(), tiny_png());
    for backend in backends() {
        let (gdb, jdb, sdb, pdb) = (
            TestDb::new(backend, "garage"),
            TestDb::new(backend, "jobs"),
            TestDb::new(backend, "shop"),
            TestDb::new(backend, "portal"),
        );
        let photo_dir = TempDir::new("photos");
        let dir = photo_dir.0.join("store");
        let g = start_domain(
            "garage",
            &gdb.url,
            &[("OMNEURO__MAIL__SMTP_URL", sink.url())],
        )
        .await;
        let s = start_domain("shop", &sdb.url, &[]).await;
        let jsvc = start_domain(
            "jobs",
            &jdb.url,
            &[
                ("OMNEURO__UPSTREAMS__GARAGE", g.grpc_url()),
                ("OMNEURO__UPSTREAMS__SHOP", s.grpc_url()),
                ("OMNEURO__WORKER__ENABLED", "false".to_owned()),
                ("OMNEURO__PHOTOS__DIR", dir.to_string_lossy().into_owned()),
            ],
        )
        .await;
        for r in [&g, &s, &jsvc] {
            wait_ready(r).await;
        }
        let mut gc =
            omneuro_proto::garage::v1::garage_service_client::GarageServiceClient::new(g.channel());
        let (client, vehicle) =
            client_with_vehicle(&mut gc, &sink, "photos", other_vehicle("InMotion", "V12")).await;
        let mut jc = JobsC::new(jsvc.channel());
        let slot = jc
            .list_availability(jpb::ListAvailabilityRequest {})
            .await
            .unwrap()
            .into_inner()
            .windows[0]
            .slots[0]
            .clone();
        let job = jc
            .create_booking(auth::request(
                &Actor::Client(client.id.clone()),
                jpb::CreateBookingRequest {
                    vehicle_id: vehicle.id.clone(),
                    services: vec!["diagnostics".into()],
                    problem: "Pack swells after charging.".into(),
                    safety_flag: true,
                    slot: Some(slot),
                },
            ))
            .await
            .unwrap()
            .into_inner();

        let ups = [
            ("garage", g.grpc_url()),
            ("jobs", jsvc.grpc_url()),
            ("shop", s.grpc_url()),
        ];
        let portal = start_portal(&pdb.url, &ups, &[]).await;
        wait_ready(&portal).await;
        let mut staff = seed_staff(&pdb.url).await;
        let mut tech = Browser::new(&portal.url(""));
        assert_eq!(
            staff_sign_in(&mut tech, &mut staff.tech).await.location,
            "/jobs"
        );
        let job_path = format!("/jobs/{}", job.id);
        let upload = format!("{job_path}/photos");

        // The empty section, and the form a tablet can use without JavaScript.
        let p = tech.get(&job_path).await;
        assert_eq!(p.status, 200);
        assert!(p.body.contains("id=\"no-photos\""), "{}", p.body);
        let form = &p.body[p.body.find("id=\"photo-form\"").unwrap() - 120..];
        let form = &form[..form.find("</form>").unwrap()];
        for needed in [
            "enctype=\"multipart/form-data\"",
            "name=\"csrf\"",
            "name=\"caption\"",
            "type=\"file\"",
            "accept=\"image/*\"",
            "capture=\"environment\"",
            &format!("action=\"{upload}\""),
        ] {
            assert!(form.contains(needed), "{needed} not in {form}");
        }
        let csrf = p.csrf();

        // A JPEG and a PNG go in.
        let p = tech
            .post_multipart(
                &upload,
                &photo_parts(
                    &csrf,
                    "Swollen cell, left pack",
                    "bench.jpg",
                    "image/jpeg",
                    &jpeg,
                ),
            )
            .await;
        assert_eq!(
            (p.status, p.location.as_str()),
            (303, format!("{job_path}#photos").as_str()),
            "{}",
            p.body
        );
        // The browser's declared type is ignored: the bytes say PNG.
        let p = tech
            .post_multipart(
                &upload,
                &photo_parts(&csrf, "", "IMG_0001", "application/octet-stream", &png),
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert_eq!(stored(&jdb, &dir), (2, 2));

        let p = tech.get(&job_path).await;
        let ids = photos_shown(&p.body);
        assert_eq!(ids.len(), 2, "{}", p.body);
        let first = &p.body[p.body.find(&format!("id=\"photo-{}\"", ids[0])).unwrap()..];
        let first = &first[..first.find("</li>").unwrap()];
        for needed in [
            format!("<img src=\"{upload}/{}\"", ids[0]),
            "alt=\"Swollen cell, left pack\"".to_owned(),
            "loading=\"lazy\"".to_owned(),
            "Swollen cell, left pack</p>".to_owned(),
            "Marcus Tech (tech)".to_owned(),
        ] {
            assert!(first.contains(&needed), "{needed} not in {first}");
        }
        let wb = jc
            .get_workbench(auth::request(
                &Actor::Staff {
                    id: "stf_test".into(),
                    role: omneuro_platform::auth::StaffRole::Owner,
                },
                jpb::GetWorkbenchRequest {
                    job_id: job.id.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            wb.photos
                .iter()
                .map(|p| (p.id.as_str(), p.content_type.as_str(), p.size_bytes))
                .collect::<Vec<_>>(),
            [
                (ids[0].as_str(), "image/jpeg", jpeg.len() as i64),
                (ids[1].as_str(), "image/png", png.len() as i64)
            ]
        );
        assert!(wb.photos[0].uploaded_by.starts_with("staff:stf_"));

        // The bytes come back as they went in, with the stored type, never sniffed.
        let http = http();
        for (id, bytes, ct) in [(&ids[0], &jpeg, "image/jpeg"), (&ids[1], &png, "image/png")] {
            let r = http
                .get(portal.url(&format!("{upload}/{id}")))
                .header(
                    "cookie",
                    format!("jjt_session={}", tech.cookies["jjt_session"]),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let h = r.headers().clone();
            assert_eq!(h["content-type"], ct);
            assert_eq!(h["x-content-type-options"], "nosniff");
            assert!(
                h["content-disposition"]
                    .to_str()
                    .unwrap()
                    .starts_with("inline")
            );
            assert!(
                h["cache-control"]
                    .to_str()
                    .unwrap()
                    .starts_with("private, max-age=")
            );
            assert_eq!(&r.bytes().await.unwrap()[..], &bytes[..]);
        }
        // Another job's id or a made-up photo: not found.
        assert_eq!(
            tech.get(&format!("{upload}/pho_notaphoto0000000"))
                .await
                .status,
            404
        );
        assert_eq!(
            tech.get(&format!("/jobs/job_nosuchjob00000000/photos/{}", ids[0]))
                .await
                .status,
            404
        );

        // Bad input: the reason on the job page, the caption kept, nothing stored.
        let mut big = jpeg.clone();
        big.resize(11 * 1024 * 1024, 0);
        let long = "x".repeat(201);
        let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
        let text = b"Not a photo at all, just notes saved as a .jpg";
        let cases: [BadUpload; 6] = [
            (
                "notes",
                "notes.jpg",
                "image/jpeg",
                text,
                400,
                "isn't a photo we can take",
            ),
            (
                "empty",
                "empty.jpg",
                "image/jpeg",
                b"",
                400,
                "The file is empty",
            ),
            (
                "gif",
                "spin.gif",
                "image/gif",
                gif,
                400,
                "GIF images aren't taken",
            ),
            (
                "huge",
                "huge.jpg",
                "image/jpeg",
                &big,
                413,
                "too large: at most 10 MB",
            ),
            (
                &long,
                "ok.png",
                "image/png",
                &png,
                400,
                "caption is too long",
            ),
            (
                "none",
                "",
                "application/octet-stream",
                b"",
                400,
                "Choose a photo",
            ),
        ];
        for (caption, filename, ct, data, status, says) in cases {
            let p = tech
                .post_multipart(&upload, &photo_parts(&csrf, caption, filename, ct, data))
                .await;
            assert_eq!(p.status, status, "{filename}: {}", error_shown(&p.body));
            assert!(
                error_shown(&p.body).contains(says),
                "{filename}: {:?}",
                error_shown(&p.body)
            );
            assert!(
                p.body.contains(&format!("value=\"{caption}\"")),
                "{filename}: caption not kept"
            );
            assert_eq!(stored(&jdb, &dir), (2, 2), "{filename}");
        }
        // Not multipart at all, and a forged token: refused, nothing stored.
        let p = tech.post(&upload, &[("csrf", &csrf)]).await;
        assert_eq!(p.status, 400);
        let p = tech
            .post_multipart(
                &upload,
                &photo_parts("forged", "", "a.jpg", "image/jpeg", &jpeg),
            )
            .await;
        assert_eq!(p.status, 403);
        assert_eq!(stored(&jdb, &dir), (2, 2));

        // The front desk sees the photos but may not add or remove them.
        let mut desk = Browser::new(&portal.url(""));
        assert_eq!(
            staff_sign_in(&mut desk, &mut staff.desk).await.location,
            "/jobs"
        );
        let p = desk.get(&job_path).await;
        assert_eq!(photos_shown(&p.body), ids);
        assert!(!p.body.contains("id=\"photo-form\""));
        assert!(!p.body.contains(&format!("{upload}/{}/remove", ids[0])));
        let desk_csrf = p.csrf();
        assert_eq!(desk.get(&format!("{upload}/{}", ids[1])).await.status, 200);
        let p = desk
            .post_multipart(
                &upload,
                &photo_parts(&desk_csrf, "", "a.jpg", "image/jpeg", &jpeg),
            )
            .await;
        assert_eq!(p.status, 403);
        assert!(p.body.contains("id=\"denied\""));
        let p = desk
            .post(
                &format!("{upload}/{}/remove", ids[0]),
                &[("csrf", &desk_csrf)],
            )
            .await;
        assert_eq!(p.status, 403);
        assert_eq!(stored(&jdb, &dir), (2, 2));

        // The tech removes one: row and file go.
        let p = tech
            .post(&format!("{upload}/{}/remove", ids[0]), &[("csrf", &csrf)])
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert_eq!(stored(&jdb, &dir), (1, 1));
        assert_eq!(
            photos_shown(&tech.get(&job_path).await.body),
            [ids[1].clone()]
        );
        assert_eq!(tech.get(&format!("{upload}/{}", ids[0])).await.status, 404);

        // A photo right at the limit (10 MiB) goes through jobs' larger gRPC messages both ways.
        let mut at_limit = jpeg.clone();
        at_limit.resize(omneuro_platform::blobs::MAX_PHOTO_BYTES, 7);
        let p = tech
            .post_multipart(
                &upload,
                &photo_parts(&csrf, "", "full.jpg", "image/jpeg", &at_limit),
            )
            .await;
        assert_eq!(p.status, 303, "{}", error_shown(&p.body));
        assert_eq!(stored(&jdb, &dir), (2, 2));
        let big_id = photos_shown(&tech.get(&job_path).await.body)[1].clone();
        let r = http
            .get(portal.url(&format!("{upload}/{big_id}")))
            .header(
                "cookie",
                format!("jjt_session={}", tech.cookies["jjt_session"]),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.bytes().await.unwrap()[..] == at_limit[..]);
        let p = tech
            .post(&format!("{upload}/{big_id}/remove"), &[("csrf", &csrf)])
            .await;
        assert_eq!(p.status, 303);
        assert_eq!(stored(&jdb, &dir), (1, 1));

        // Through the real edge: over 1 MB is taken on the tech host's upload route only.
        let tmp = TempDir::new("photos-edge");
        if let Some(nginx) = Nginx::start(
            &tmp.0,
            &[
                (
                    "PORTAL_ADDR",
                    portal.url("").trim_start_matches("http://").to_owned(),
                ),
                ("SITE_ADDR", "127.0.0.1:9".to_owned()),
                ("BILLING_ADDR", "127.0.0.1:9".to_owned()),
                ("REPAIRBOT_ADDR", "127.0.0.1:9".to_owned()),
            ],
        ) {
            let edge = format!("http://127.0.0.1:{}", nginx.port);
            let mut via = Browser::new(&edge).with_host(&format!("tech.localhost:{}", nginx.port));
            via.cookies = tech.cookies.clone();
            let mut two_mb = jpeg.clone();
            two_mb.resize(2 * 1024 * 1024, 0);
            let p = via
                .post_multipart(
                    &upload,
                    &photo_parts(&csrf, "through the edge", "big.jpg", "image/jpeg", &two_mb),
                )
                .await;
            assert_eq!(p.status, 303, "{}", p.body);
            assert_eq!(stored(&jdb, &dir), (2, 2));
            let c = nginx.client();
            let (ct, body) =
                multipart_body(&photo_parts(&csrf, "", "big.jpg", "image/jpeg", &two_mb));
            for (host, path) in [
                ("tech.localhost", format!("{job_path}/notes")),
                ("localhost", upload.clone()),
            ] {
                let r = c
                    .post(nginx.url(host, &path))
                    .header("content-type", ct.clone())
                    .header(
                        "cookie",
                        format!("jjt_session={}", tech.cookies["jjt_session"]),
                    )
                    .body(body.clone())
                    .send()
                    .await;
                assert!(
                    r.map(|r| r.status() == 413).unwrap_or(true),
                    "{host}{path}: 2 MB not refused at the edge"
                );
            }
            assert_eq!(stored(&jdb, &dir), (2, 2));
        }

        // At most 30 photos a job: jobs refuses the 31st (the page says so and stops offering
        // the form).
        let (rows, _) = stored(&jdb, &dir);
        let as_tech = Actor::Staff {
            id: "stf_test".into(),
            role: omneuro_platform::auth::StaffRole::Tech,
        };
        for _ in rows..30 {
            jc.add_photo(auth::request(
                &as_tech,
                jpb::AddPhotoRequest {
                    job_id: job.id.clone(),
                    content_type: String::new(),
                    data: png.clone(),
                    caption: String::new(),
                },
            ))
            .await
            .unwrap();
        }
        assert_eq!(stored(&jdb, &dir), (30, 30));
        let p = tech.get(&job_path).await;
        assert!(p.body.contains("id=\"photos-full\""), "{}", p.body);
        assert!(!p.body.contains("id=\"photo-form\""));
        let p = tech
            .post_multipart(
                &upload,
                &photo_parts(&csrf, "one more", "a.jpg", "image/jpeg", &jpeg),
            )
            .await;
        assert_eq!(p.status, 409);
        assert!(
            error_shown(&p.body).contains("already has 30 photos"),
            "{}",
            error_shown(&p.body)
        );
        assert_eq!(stored(&jdb, &dir), (30, 30));

        // jobs down: the upload says nothing was saved.
        jsvc.stop().await;
        let p = tech
            .post_multipart(
                &upload,
                &photo_parts(&csrf, "", "a.jpg", "image/jpeg", &jpeg),
            )
            .await;
        assert_eq!(p.status, 503);
        assert!(
            error_shown(&p.body).contains("the photo wasn't saved"),
            "{}",
            p.body
        );
        assert_eq!(stored(&jdb, &dir).1, 30);

        portal.stop().await;
        s.stop().await;
        g.stop().await;
    }
}
