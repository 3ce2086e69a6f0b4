//! garage over real gRPC on both databases, with mail read back from a real SMTP server:
//! magic-link sign-in (single use, expiry, rate limits, same answer for everyone), sessions
//! (idle, sign-out everywhere), profile and STOP, and vehicles that only their owner can reach.

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
