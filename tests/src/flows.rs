//! Steps many tests share, done the way a client would: sign in with the mailed link, add a
//! vehicle. Over real gRPC, with mail read back from the SMTP peer.

use omneuro_platform::auth::{self, Actor};
use omneuro_proto::garage::v1 as pb;
use pb::garage_service_client::GarageServiceClient;
use tonic::transport::Channel;

use crate::{SmtpSink, sign_in_token};

pub type GarageClient = GarageServiceClient<Channel>;

/// site, calling garage before anyone is signed in.
pub fn site_actor() -> Actor {
    Actor::System("site".into())
}

/// Asks for a link for `email`, reads it from the mail, spends it: the session grant.
pub async fn sign_in_rpc(g: &mut GarageClient, sink: &SmtpSink, email: &str) -> pb::SessionGrant {
    let before = sink.to(email).len();
    g.request_sign_in_link(auth::request(
        &site_actor(),
        pb::RequestSignInLinkRequest {
            email: email.into(),
            client_ip: "198.51.100.1".into(),
        },
    ))
    .await
    .unwrap();
    // By subject: booking mail and reminders to the same address may arrive meanwhile.
    let mail = sink
        .wait_for_subject(email, "Your Juice Junkiez sign-in link", before)
        .await;
    g.consume_sign_in_link(auth::request(
        &site_actor(),
        pb::ConsumeSignInLinkRequest {
            token: sign_in_token(&mail),
            client_ip: "198.51.100.1".into(),
            user_agent: "test".into(),
        },
    ))
    .await
    .unwrap()
    .into_inner()
}

/// A new client (fresh address) with one vehicle; returns (client, vehicle).
pub async fn client_with_vehicle(
    g: &mut GarageClient,
    sink: &SmtpSink,
    tag: &str,
    input: pb::VehicleInput,
) -> (pb::Client, pb::Vehicle) {
    let email = format!("{}@example.com", omneuro_platform::ids::new_id(tag));
    let client = sign_in_rpc(g, sink, &email).await.client.unwrap();
    let vehicle = g
        .create_vehicle(auth::request(
            &Actor::Client(client.id.clone()),
            pb::CreateVehicleRequest { input: Some(input) },
        ))
        .await
        .unwrap()
        .into_inner();
    (client, vehicle)
}

/// A vehicle typed in under "other" (no catalog lookup needed).
pub fn other_vehicle(make: &str, model: &str) -> pb::VehicleInput {
    pb::VehicleInput {
        category: pb::VehicleCategory::EScooter.into(),
        other_make: make.into(),
        other_model: model.into(),
        ..Default::default()
    }
}

/// Sets a client's phone and SMS consent.
pub async fn allow_sms(g: &mut GarageClient, client_id: &str, phone: &str) {
    g.update_profile(auth::request(
        &Actor::Client(client_id.into()),
        pb::UpdateProfileRequest {
            name: "Test Rider".into(),
            phone: phone.into(),
            contact_preference: pb::ContactPreference::Sms.into(),
            email_consent: true,
            sms_consent: true,
        },
    ))
    .await
    .unwrap();
}
