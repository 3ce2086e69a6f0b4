//! garage over real gRPC on both databases, with mail read back from a real SMTP server:
//! magic-link sign-in (single use, expiry, rate limits, same answer for everyone), sessions
//! (idle, sign-out everywhere), profile and STOP, vehicles that only their owner can reach, and
//! staff's client search.

use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_proto::garage::v1 as pb;
use omneuro_tests::*;
use pb::garage_service_client::GarageServiceClient;
use tonic::Code;
use tonic::transport::Channel;

type Garage = GarageServiceClient<Channel>;

fn site() -> Actor {
    site_actor()
}

async fn start(backend: Backend, sink: &SmtpSink) -> (TestDb, Running) {
    let db = TestDb::new(backend, "garage");
    let g = start_domain(
        "garage",
        &db.url,
        &[
            ("OMNEURO__MAIL__SMTP_URL", sink.url()),
            ("OMNEURO__LINKS__PUBLIC_URL", "http://jj.test".to_owned()),
        ],
    )
    .await;
    wait_ready(&g).await;
    (db, g)
}

async fn ask_link(g: &mut Garage, email: &str, ip: &str) -> Result<(), tonic::Status> {
    g.request_sign_in_link(auth::request(
        &site(),
        pb::RequestSignInLinkRequest {
            email: email.into(),
            client_ip: ip.into(),
        },
    ))
    .await
    .map(|_| ())
}

async fn consume(g: &mut Garage, token: &str) -> Result<pb::SessionGrant, tonic::Status> {
    g.consume_sign_in_link(auth::request(
        &site(),
        pb::ConsumeSignInLinkRequest {
            token: token.into(),
            client_ip: "127.0.0.1".into(),
            user_agent: "test".into(),
        },
    ))
    .await
    .map(|r| r.into_inner())
}

async fn authenticate(g: &mut Garage, session: &str) -> Result<pb::Client, tonic::Status> {
    g.authenticate(auth::request(
        &site(),
        pb::AuthenticateRequest {
            session_token: session.into(),
        },
    ))
    .await
    .map(|r| r.into_inner().client.unwrap())
}

/// The whole magic-link round trip: ask, read the mail, spend the link.
async fn sign_in(g: &mut Garage, sink: &SmtpSink, email: &str) -> pb::SessionGrant {
    sign_in_rpc(g, sink, email).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_sign_in_once_per_link_with_limits_and_sessions_end_properly() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    for backend in backends() {
        let (db, svc) = start(backend, &sink).await;
        let mut g = Garage::new(svc.channel());

        // No caller identity, or a bad address: typed errors, no mail.
        let anon = g
            .request_sign_in_link(pb::RequestSignInLinkRequest {
                email: "x@example.com".into(),
                client_ip: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(anon.code(), Code::Unauthenticated);
        for bad in ["", "rider", "rider@example", "a b@example.com"] {
            let e = ask_link(&mut g, bad, "198.51.100.1").await.unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{bad}");
            assert!(e.message().contains("valid email"), "{}", e.message());
        }

        // A new address gets the same answer and the same kind of mail as a known one.
        let email = format!("{}@example.com", ids_tag("new"));
        ask_link(&mut g, &email.to_uppercase(), "198.51.100.1")
            .await
            .unwrap();
        let mail = sink.wait_for(&email, 1).await;
        assert_eq!(mail["subject"], "Your Juice Junkiez sign-in link");
        let text = mail["text"].as_str().unwrap();
        assert!(text.contains("http://jj.test/signin/link?token="), "{text}");
        let token = sign_in_token(&mail);
        assert_eq!(token.len(), 43);

        // Two racing POSTs of the same link: exactly one session.
        let (mut g1, mut g2) = (g.clone(), g.clone());
        let (a, b) = tokio::join!(consume(&mut g1, &token), consume(&mut g2, &token));
        let (grant, loser) = match (a, b) {
            (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
            other => panic!("{backend:?}: both or neither won: {other:?}"),
        };
        assert_eq!(loser.code(), Code::FailedPrecondition);
        assert!(loser.message().contains("expired or was already used"));
        assert!(grant.new_client);
        let client = grant.client.clone().unwrap();
        assert_eq!(client.email, email);
        assert!(client.id.starts_with("cli_"));
        assert_eq!(
            authenticate(&mut g, &grant.session_token).await.unwrap().id,
            client.id
        );

        // A second sign-in finds the same client; the link text is the same for known addresses.
        let again = sign_in(&mut g, &sink, &email).await;
        assert!(!again.new_client);
        assert_eq!(again.client.unwrap().id, client.id);

        // An expired link is refused like a used one.
        ask_link(&mut g, &email, "198.51.100.1").await.unwrap();
        let stale = sign_in_token(&sink.wait_for(&email, 3).await);
        db.execute(
            "UPDATE sign_in_links SET expires_at = '2000-01-01 00:00:00' WHERE consumed_at IS NULL",
        );
        assert_eq!(
            consume(&mut g, &stale).await.unwrap_err().code(),
            Code::FailedPrecondition
        );
        assert_eq!(
            consume(&mut g, "not-a-token").await.unwrap_err().code(),
            Code::FailedPrecondition
        );

        // Per address: 5 links per 15 minutes (3 used above), then a clear refusal.
        ask_link(&mut g, &email, "198.51.100.2").await.unwrap();
        ask_link(&mut g, &email, "198.51.100.3").await.unwrap();
        let limited = ask_link(&mut g, &email, "198.51.100.4").await.unwrap_err();
        assert_eq!(limited.code(), Code::ResourceExhausted);
        assert!(limited.message().contains("wait 15 minutes"));
        // Per IP: 20 links per 15 minutes across addresses.
        for i in 0..20 {
            ask_link(
                &mut g,
                &format!("ip{i}-{}@example.com", ids_tag("x")),
                "203.0.113.9",
            )
            .await
            .unwrap();
        }
        let by_ip = ask_link(&mut g, "another@example.com", "203.0.113.9")
            .await
            .unwrap_err();
        assert_eq!(by_ip.code(), Code::ResourceExhausted);

        // Sign out everywhere ends both sessions; a session idle for too long has ended too.
        g.sign_out(auth::request(
            &site(),
            pb::SignOutRequest {
                session_token: grant.session_token.clone(),
                everywhere: true,
            },
        ))
        .await
        .unwrap();
        for s in [&grant.session_token, &again.session_token] {
            assert_eq!(
                authenticate(&mut g, s).await.unwrap_err().code(),
                Code::Unauthenticated
            );
        }
        let idle = sign_in(&mut g, &sink, &format!("{}@example.com", ids_tag("idle"))).await;
        authenticate(&mut g, &idle.session_token).await.unwrap();
        db.execute("UPDATE client_sessions SET last_seen_at = '2000-01-01 00:00:00'");
        assert_eq!(
            authenticate(&mut g, &idle.session_token)
                .await
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );
        svc.stop().await;
    }
}

fn ids_tag(prefix: &str) -> String {
    omneuro_platform::ids::new_id(prefix)
}

fn as_client(id: &str) -> Actor {
    Actor::Client(id.into())
}

fn euc(model_id: &str) -> pb::VehicleInput {
    pb::VehicleInput {
        category: pb::VehicleCategory::ElectricUnicycle.into(),
        model_id: model_id.into(),
        nickname: "Big Wheel".into(),
        battery_format: pb::BatteryFormat::BatteryFormat21700.into(),
        voltage_class: 134,
        battery_serial: "BG-134-0042".into(),
        motor_serial: "M/7781".into(),
        notes: "Cuts out above 30 mph.\nTire pressure sensor missing.".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vehicles_and_profiles_belong_to_their_client_only() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    for backend in backends() {
        let (_db, svc) = start(backend, &sink).await;
        let mut g = Garage::new(svc.channel());
        let a = sign_in(&mut g, &sink, &format!("{}@example.com", ids_tag("a")))
            .await
            .client
            .unwrap();
        let b = sign_in(&mut g, &sink, &format!("{}@example.com", ids_tag("b")))
            .await
            .client
            .unwrap();

        let makes = g
            .list_vehicle_makes(pb::ListVehicleMakesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .makes;
        let begode = makes.iter().find(|m| m.name == "Begode").unwrap();
        let model = &begode.models[0];

        // A adds a Begode from the catalog; B adds an "other" make typed in.
        let va = g
            .create_vehicle(auth::request(
                &as_client(&a.id),
                pb::CreateVehicleRequest {
                    input: Some(euc(&model.id)),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(va.make_name, "Begode");
        assert_eq!(va.model_name, model.name);
        assert_eq!(va.label, format!("Big Wheel (Begode {})", model.name));
        assert!(va.id.starts_with("veh_"));
        let other = pb::VehicleInput {
            category: pb::VehicleCategory::EScooter.into(),
            other_make: "Wolf Warrior".into(),
            other_model: "King GT Pro".into(),
            voltage_class: 72,
            ..Default::default()
        };
        let vb = g
            .create_vehicle(auth::request(
                &as_client(&b.id),
                pb::CreateVehicleRequest {
                    input: Some(other.clone()),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(vb.label, "Wolf Warrior King GT Pro");

        // B can reach none of A's vehicles by any RPC, and cannot list A's garage.
        let b_actor = as_client(&b.id);
        let e = g
            .get_vehicle(auth::request(
                &b_actor,
                pb::GetVehicleRequest { id: va.id.clone() },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        let e = g
            .update_vehicle(auth::request(
                &b_actor,
                pb::UpdateVehicleRequest {
                    id: va.id.clone(),
                    input: Some(other.clone()),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        let e = g
            .archive_vehicle(auth::request(
                &b_actor,
                pb::ArchiveVehicleRequest { id: va.id.clone() },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        let e = g
            .list_vehicles(auth::request(
                &b_actor,
                pb::ListVehiclesRequest {
                    client_id: a.id.clone(),
                    include_archived: true,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        let e = g
            .get_client(auth::request(
                &b_actor,
                pb::GetClientRequest {
                    client_id: a.id.clone(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        let mine = g
            .list_vehicles(auth::request(&b_actor, pb::ListVehiclesRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .vehicles;
        assert_eq!(mine.iter().map(|v| &v.id).collect::<Vec<_>>(), [&vb.id]);
        // Without an identity nothing is answered; staff may look (the portal issue adds them).
        assert_eq!(
            g.list_vehicles(pb::ListVehiclesRequest::default())
                .await
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );
        let staff = Actor::Staff {
            id: "stf_test".into(),
            role: StaffRole::Tech,
        };
        let seen = g
            .list_vehicles(auth::request(
                &staff,
                pb::ListVehiclesRequest {
                    client_id: a.id.clone(),
                    include_archived: false,
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .vehicles;
        assert_eq!(seen.len(), 1);

        // Bad input: clear INVALID_ARGUMENT messages.
        let a_actor = as_client(&a.id);
        let other_make_model = begode.models.iter().map(|m| m.id.clone()).next().unwrap();
        let inmotion = makes.iter().find(|m| m.name == "Inmotion").unwrap();
        for (input, want) in [
            (pb::VehicleInput::default(), "kind of vehicle"),
            (
                pb::VehicleInput {
                    category: pb::VehicleCategory::EBike.into(),
                    ..Default::default()
                },
                "make and model",
            ),
            (
                pb::VehicleInput {
                    make_id: inmotion.id.clone(),
                    ..euc(&other_make_model)
                },
                "not made by",
            ),
            (
                pb::VehicleInput {
                    voltage_class: 500,
                    ..euc(&model.id)
                },
                "voltage",
            ),
            (
                pb::VehicleInput {
                    notes: "x".repeat(2001),
                    ..euc(&model.id)
                },
                "notes is too long",
            ),
            (
                pb::VehicleInput {
                    battery_serial: "<script>".into(),
                    ..euc(&model.id)
                },
                "battery serial",
            ),
            (
                pb::VehicleInput {
                    model_id: "mdl_nope".into(),
                    ..euc("")
                },
                "Pick a model",
            ),
        ] {
            let e = g
                .create_vehicle(auth::request(
                    &a_actor,
                    pb::CreateVehicleRequest { input: Some(input) },
                ))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{want}");
            assert!(e.message().contains(want), "{want}: {}", e.message());
        }

        // Edit, archive, and the archived one only shows when asked.
        let edited = g
            .update_vehicle(auth::request(
                &a_actor,
                pb::UpdateVehicleRequest {
                    id: va.id.clone(),
                    input: Some(pb::VehicleInput {
                        nickname: "Commuter".into(),
                        ..euc(&model.id)
                    }),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(edited.label.starts_with("Commuter ("));
        let archived = g
            .archive_vehicle(auth::request(
                &a_actor,
                pb::ArchiveVehicleRequest { id: va.id.clone() },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(archived.archived);
        let list = |include_archived| {
            let mut g = g.clone();
            let a_actor = a_actor.clone();
            async move {
                g.list_vehicles(auth::request(
                    &a_actor,
                    pb::ListVehiclesRequest {
                        include_archived,
                        client_id: String::new(),
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .vehicles
                .len()
            }
        };
        assert_eq!(list(false).await, 0);
        assert_eq!(list(true).await, 1);

        // Profile: phone normalised, SMS needs a number, STOP turns SMS off (gateway only).
        let profile = |phone: &str, sms: bool| pb::UpdateProfileRequest {
            name: "Ada Rider".into(),
            phone: phone.into(),
            contact_preference: pb::ContactPreference::Sms.into(),
            email_consent: true,
            sms_consent: sms,
        };
        let e = g
            .update_profile(auth::request(&a_actor, profile("", true)))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        let e = g
            .update_profile(auth::request(&a_actor, profile("call me", true)))
            .await
            .unwrap_err();
        assert!(e.message().contains("phone number"));
        let p = g
            .update_profile(auth::request(&a_actor, profile("(410) 555-0123", true)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(p.phone, "+14105550123");
        assert!(p.sms_consent && !p.sms_opted_out);
        let e = g
            .record_sms_opt_out(auth::request(
                &a_actor,
                pb::RecordSmsOptOutRequest {
                    phone: "+14105550123".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        let n = g
            .record_sms_opt_out(auth::request(
                &Actor::System("repairbot".into()),
                pb::RecordSmsOptOutRequest {
                    phone: "410-555-0123".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .clients_updated;
        assert_eq!(n, 1);
        let after = g
            .get_client(auth::request(&a_actor, pb::GetClientRequest::default()))
            .await
            .unwrap()
            .into_inner();
        assert!(!after.sms_consent && after.sms_opted_out);
        svc.stop().await;
    }
}

/// Staff's client search, as `actor`.
async fn search_as(
    g: &mut Garage,
    actor: &Actor,
    query: &str,
    limit: i32,
) -> Result<Vec<pb::ClientMatch>, tonic::Status> {
    g.search_clients(auth::request(
        actor,
        pb::SearchClientsRequest {
            query: query.into(),
            limit,
        },
    ))
    .await
    .map(|r| r.into_inner().matches)
}

/// The names of the clients found, in the order they came.
fn names(found: &[pb::ClientMatch]) -> Vec<String> {
    found
        .iter()
        .map(|m| m.client.as_ref().unwrap().name.clone())
        .collect()
}

async fn set_profile(g: &mut Garage, client_id: &str, name: &str, phone: &str) {
    g.update_profile(auth::request(
        &as_client(client_id),
        pb::UpdateProfileRequest {
            name: name.into(),
            phone: phone.into(),
            contact_preference: pb::ContactPreference::Email.into(),
            email_consent: true,
            sms_consent: false,
        },
    ))
    .await
    .unwrap();
}

async fn add_vehicle(g: &mut Garage, client_id: &str, input: pb::VehicleInput) -> pb::Vehicle {
    g.create_vehicle(auth::request(
        &as_client(client_id),
        pb::CreateVehicleRequest { input: Some(input) },
    ))
    .await
    .unwrap()
    .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_find_clients_by_person_or_vehicle_and_only_staff_may_search() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    for backend in backends() {
        let (_db, svc) = start(backend, &sink).await;
        let mut g = Garage::new(svc.channel());
        let owner = Actor::Staff {
            id: "stf_owner".into(),
            role: StaffRole::Owner,
        };

        // Alice: a catalog Begode Master (serials BG-134-0042, M/7781) and an archived scooter.
        let (alice, master) =
            client_with_vehicle(&mut g, &sink, "alice", euc("mdl_begode_master")).await;
        set_profile(&mut g, &alice.id, "Alice Voltage", "(410) 555-0101").await;
        let zephyr = add_vehicle(
            &mut g,
            &alice.id,
            pb::VehicleInput {
                motor_serial: "ZZ-404".into(),
                ..other_vehicle("Zephyr", "Ghost")
            },
        )
        .await;
        g.archive_vehicle(auth::request(
            &as_client(&alice.id),
            pb::ArchiveVehicleRequest { id: zephyr.id },
        ))
        .await
        .unwrap();
        // Bruno: two typed-in Wolf Warriors, one with an underscore in its nickname.
        let (bruno, king) = client_with_vehicle(
            &mut g,
            &sink,
            "bruno",
            pb::VehicleInput {
                nickname: "Half_Pint".into(),
                battery_serial: "WW-72-1".into(),
                ..other_vehicle("Wolf Warrior", "King GT Pro")
            },
        )
        .await;
        set_profile(&mut g, &bruno.id, "Bruno Sparks", "+1 443 555 0199").await;
        let mini = add_vehicle(&mut g, &bruno.id, other_vehicle("Wolf Warrior", "Mini")).await;
        // Carmen: a catalog make (Inmotion) with a typed model, "50% Club", and no phone.
        let (carmen, custom) = client_with_vehicle(
            &mut g,
            &sink,
            "carmen",
            pb::VehicleInput {
                category: pb::VehicleCategory::ElectricUnicycle.into(),
                make_id: "mk_inmotion".into(),
                other_model: "Custom V9".into(),
                nickname: "50% Club".into(),
                ..Default::default()
            },
        )
        .await;
        set_profile(&mut g, &carmen.id, "Carmen Ruiz", "").await;
        assert_eq!(custom.make_name, "Inmotion");

        let search = |query: &str| {
            let (mut g, owner, query) = (g.clone(), owner.clone(), query.to_owned());
            async move { search_as(&mut g, &owner, &query, 0).await.unwrap() }
        };
        let alice_only = vec!["Alice Voltage".to_owned()];
        let bruno_only = vec!["Bruno Sparks".to_owned()];
        let carmen_only = vec!["Carmen Ruiz".to_owned()];

        // A part of a name, any case; the match carries the client and every live vehicle.
        let found = search("ice volt").await;
        assert_eq!(names(&found), alice_only, "{backend:?}");
        assert_eq!(found[0].client.as_ref().unwrap().id, alice.id);
        let ids: Vec<&str> = found[0].vehicles.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(
            ids,
            [master.id.as_str()],
            "the archived scooter is not shown"
        );
        assert_eq!(names(&search("ALICE").await), alice_only);
        let found = search("bruno").await;
        let mut ids: Vec<&str> = found[0].vehicles.iter().map(|v| v.id.as_str()).collect();
        ids.sort_unstable();
        let mut want = [king.id.as_str(), mini.id.as_str()];
        want.sort_unstable();
        assert_eq!(ids, want);
        // Email (a part of it, upper case).
        let local = carmen.email.split('@').next().unwrap().to_uppercase();
        assert_eq!(names(&search(&local).await), carmen_only);
        // Phone, typed with punctuation, or as stored.
        assert_eq!(names(&search("(410) 555-01").await), alice_only);
        assert_eq!(names(&search("443.555").await), bruno_only);
        assert_eq!(names(&search("+1443").await), bruno_only);
        // Catalog make and model, typed make and model, nickname, serials.
        assert_eq!(names(&search("begode").await), alice_only);
        assert_eq!(names(&search("MASTER").await), alice_only);
        assert_eq!(names(&search("inmotion").await), carmen_only);
        assert_eq!(names(&search("custom v9").await), carmen_only);
        assert_eq!(names(&search("wolf warrior").await), bruno_only);
        assert_eq!(names(&search("gt pro").await), bruno_only);
        assert_eq!(names(&search("big wheel").await), alice_only);
        assert_eq!(names(&search("bg-134").await), alice_only);
        assert_eq!(names(&search("m/778").await), alice_only);
        assert_eq!(names(&search("ww-72").await), bruno_only);
        // Two vehicles matching still find their client once.
        assert_eq!(search("wolf").await.len(), 1);
        // `%` and `_` are themselves, not wildcards; a backslash is just a character.
        assert_eq!(names(&search("f_p").await), bruno_only);
        assert_eq!(names(&search("0% c").await), carmen_only);
        for literal in ["%%", "__", "a_f", "l%p", r"\%", r"\\"] {
            assert!(search(literal).await.is_empty(), "{literal:?} matched");
        }
        // Archived vehicles are not searched.
        assert!(search("zephyr").await.is_empty());
        assert!(search("zz-404").await.is_empty());
        assert!(search("nobody like this").await.is_empty());

        // Everyone (the same email domain), by name; the limit cuts the list, 0 means the default
        // and more than 50 is capped rather than refused.
        let everyone = ["Alice Voltage", "Bruno Sparks", "Carmen Ruiz"];
        assert_eq!(names(&search("@EXAMPLE.com").await), everyone);
        let two = search_as(&mut g, &owner, "example.com", 2).await.unwrap();
        assert_eq!(names(&two), everyone[..2]);
        let many = search_as(&mut g, &owner, "example.com", 1000)
            .await
            .unwrap();
        assert_eq!(many.len(), 3);

        // Bad queries: clear INVALID_ARGUMENT sentences.
        for (query, limit, want) in [
            ("a", 0, "at least 2 characters"),
            ("  a  ", 0, "at least 2 characters"),
            ("", 0, "at least 2 characters"),
            (&"x".repeat(101) as &str, 0, "at most 100 characters"),
            ("alice", -1, "cannot be negative"),
        ] {
            let e = search_as(&mut g, &owner, query, limit).await.unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{query:?}");
            assert!(e.message().contains(want), "{query:?}: {}", e.message());
        }
        assert!(
            search_as(&mut g, &owner, &"x".repeat(100), 0)
                .await
                .unwrap()
                .is_empty()
        );

        // Who may search: staff whose role may view clients; not a client, not a service, not
        // anyone without a caller.
        for role in [StaffRole::Tech, StaffRole::FrontDesk, StaffRole::Owner] {
            let staff = Actor::Staff {
                id: "stf_search".into(),
                role,
            };
            let found = search_as(&mut g, &staff, "wolf", 0).await.unwrap();
            assert_eq!(names(&found), bruno_only, "{role:?}");
        }
        for caller in [as_client(&alice.id), site()] {
            let e = search_as(&mut g, &caller, "alice", 0).await.unwrap_err();
            assert_eq!(e.code(), Code::PermissionDenied, "{caller:?}");
        }
        let e = g
            .search_clients(pb::SearchClientsRequest {
                query: "alice".into(),
                limit: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
        // A refused caller's bad query is still refused for who they are, not for the query.
        let e = search_as(&mut g, &as_client(&alice.id), "a", 0)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        svc.stop().await;
    }
}
