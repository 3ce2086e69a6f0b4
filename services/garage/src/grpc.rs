//! `omneuro.garage.v1.GarageService`: the RPCs, who may call them, and the proto ⇄ domain mapping.

use std::sync::Arc;

use omneuro_platform::auth::{self, Actor, Permission};
use omneuro_platform::config::LinksConfig;
use omneuro_platform::db::{Database, now_utc};
use omneuro_platform::error::DomainError;
use omneuro_platform::mail::{Mail, MailError, Mailer};
use omneuro_proto::common::v1::Timestamp;
use omneuro_proto::garage::v1 as pb;
use tonic::{Request, Response, Status};

use crate::catalog::{self, VehicleCategory, VehicleMake};
use crate::clients::{self, Client, ContactPreference, ProfileInput};
use crate::search::{self, ClientMatch, ClientSearch};
use crate::vehicles::{self, BatteryFormat, Vehicle, VehicleInput};

pub struct Garage {
    db: Arc<Database>,
    mailer: Arc<Mailer>,
    links: LinksConfig,
}

impl Garage {
    pub fn new(db: Arc<Database>, mailer: Arc<Mailer>, links: LinksConfig) -> Self {
        Self { db, mailer, links }
    }

    async fn mail_link(&self, email: &str, token: &str) -> Result<(), DomainError> {
        let link = format!(
            "{}/signin/link?token={token}",
            self.links.public_url.trim_end_matches('/')
        );
        let text = format!(
            "Hi,\n\nTap the link below to sign in to your Juice Junkiez garage. It works once, for the next {} minutes.\n\n{link}\n\nIf you didn't ask for this, ignore this email: nobody can sign in without the link.\n\nJuice Junkiez · 409 S Addison St, Baltimore, MD\n",
            clients::LINK_TTL_MINUTES
        );
        self.mailer
            .send(Mail {
                to: email.to_owned(),
                subject: "Your Juice Junkiez sign-in link".into(),
                text,
                html: None,
                attachments: Vec::new(),
                message_id: None,
            })
            .await
            .map_err(|e| match e {
                MailError::BadAddress(_) | MailError::Rejected(_) => DomainError::invalid(
                    "We couldn't send an email to that address. Please check it and try again.",
                ),
                other => {
                    tracing::warn!(error = %other, "sign-in mail not sent");
                    DomainError::Unavailable(
                        "We couldn't send the email just now. Please try again in a minute.".into(),
                    )
                }
            })
    }
}

/// The client whose records the caller may touch: a client is confined to themself; staff and
/// system workers name the client (required).
fn scope(actor: &Actor, requested: &str) -> Result<String, Status> {
    match actor {
        Actor::Client(id) if requested.is_empty() || requested == id => Ok(id.clone()),
        Actor::Client(_) => Err(Status::not_found("no such client")),
        _ if requested.is_empty() => Err(Status::invalid_argument("client_id is required")),
        _ => Ok(requested.to_owned()),
    }
}

#[tonic::async_trait]
impl pb::garage_service_server::GarageService for Garage {
    async fn list_vehicle_makes(
        &self,
        req: Request<pb::ListVehicleMakesRequest>,
    ) -> Result<Response<pb::ListVehicleMakesResponse>, Status> {
        let category = match pb::VehicleCategory::try_from(req.get_ref().category) {
            Ok(pb::VehicleCategory::Unspecified) => None,
            Ok(c) => Some(category_from_pb(c)),
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "unknown vehicle category {}",
                    req.get_ref().category
                )));
            }
        };
        let makes = self
            .db
            .run(move |c| catalog::list_makes(c, category))
            .await?;
        Ok(Response::new(pb::ListVehicleMakesResponse {
            makes: makes.into_iter().map(make_to_pb).collect(),
        }))
    }

    async fn request_sign_in_link(
        &self,
        req: Request<pb::RequestSignInLinkRequest>,
    ) -> Result<Response<pb::RequestSignInLinkResponse>, Status> {
        auth::actor(&req)?;
        let r = req.into_inner();
        let email = clients::normalize_email(&r.email)?;
        let ip = r.client_ip.chars().take(64).collect::<String>();
        let (e, now) = (email.clone(), now_utc());
        let token = self
            .db
            .run(move |c| clients::request_link(c, &e, &ip, now))
            .await?;
        self.mail_link(&email, &token).await?;
        Ok(Response::new(pb::RequestSignInLinkResponse {}))
    }

    async fn consume_sign_in_link(
        &self,
        req: Request<pb::ConsumeSignInLinkRequest>,
    ) -> Result<Response<pb::SessionGrant>, Status> {
        auth::actor(&req)?;
        let r = req.into_inner();
        let now = now_utc();
        let g = self
            .db
            .run(move |c| clients::consume_link(c, &r.token, &r.client_ip, &r.user_agent, now))
            .await?;
        if g.new_client {
            tracing::info!(client_id = %g.client.id, "new client signed up");
        }
        Ok(Response::new(pb::SessionGrant {
            session_token: g.session_token,
            client: Some(client_to_pb(g.client)),
            expires_at: Some(Timestamp::from_utc(g.expires_at)),
            new_client: g.new_client,
        }))
    }

    async fn authenticate(
        &self,
        req: Request<pb::AuthenticateRequest>,
    ) -> Result<Response<pb::AuthenticateResponse>, Status> {
        auth::actor(&req)?;
        let token = req.into_inner().session_token;
        let now = now_utc();
        let client = self
            .db
            .run(move |c| clients::authenticate(c, &token, now))
            .await?;
        Ok(Response::new(pb::AuthenticateResponse {
            client: Some(client_to_pb(client)),
        }))
    }

    async fn sign_out(
        &self,
        req: Request<pb::SignOutRequest>,
    ) -> Result<Response<pb::SignOutResponse>, Status> {
        auth::actor(&req)?;
        let r = req.into_inner();
        let now = now_utc();
        self.db
            .run(move |c| clients::sign_out(c, &r.session_token, r.everywhere, now))
            .await?;
        Ok(Response::new(pb::SignOutResponse {}))
    }

    async fn get_client(
        &self,
        req: Request<pb::GetClientRequest>,
    ) -> Result<Response<pb::Client>, Status> {
        let actor = auth::actor(&req)?;
        let id = scope(&actor, &req.get_ref().client_id)?;
        let client = self.db.run(move |c| clients::load(c, &id)).await?;
        Ok(Response::new(client_to_pb(client)))
    }

    async fn update_profile(
        &self,
        req: Request<pb::UpdateProfileRequest>,
    ) -> Result<Response<pb::Client>, Status> {
        let id = auth::client(&req)?;
        let r = req.into_inner();
        let input = ProfileInput {
            name: r.name,
            phone: r.phone,
            contact_preference: match pb::ContactPreference::try_from(r.contact_preference) {
                Ok(pb::ContactPreference::Sms) => ContactPreference::Sms,
                Ok(_) => ContactPreference::Email,
                Err(_) => return Err(Status::invalid_argument("unknown contact preference")),
            },
            email_consent: r.email_consent,
            sms_consent: r.sms_consent,
        };
        let now = now_utc();
        let client = self
            .db
            .run(move |c| clients::update_profile(c, &id, input, now))
            .await?;
        Ok(Response::new(client_to_pb(client)))
    }

    async fn record_sms_opt_out(
        &self,
        req: Request<pb::RecordSmsOptOutRequest>,
    ) -> Result<Response<pb::RecordSmsOptOutResponse>, Status> {
        if auth::actor(&req)?.client_id().is_some() {
            return Err(Status::permission_denied(
                "only the SMS gateway or staff record opt-outs",
            ));
        }
        let phone = req.into_inner().phone;
        let now = now_utc();
        let n = self
            .db
            .run(move |c| clients::record_sms_opt_out(c, &phone, now))
            .await?;
        tracing::info!(clients = n, "SMS opt-out recorded");
        Ok(Response::new(pb::RecordSmsOptOutResponse {
            clients_updated: u32::try_from(n).unwrap_or(u32::MAX),
        }))
    }

    async fn find_clients_by_phone(
        &self,
        req: Request<pb::FindClientsByPhoneRequest>,
    ) -> Result<Response<pb::FindClientsByPhoneResponse>, Status> {
        // Caller ID is not a sign-in: only a fleet worker (the SMS receptionist) may ask.
        if !matches!(auth::actor(&req)?, Actor::System(_)) {
            return Err(Status::permission_denied(
                "only the SMS receptionist looks clients up by phone number",
            ));
        }
        let phone = req.into_inner().phone;
        let found = self
            .db
            .run(move |c| clients::find_by_phone(c, &phone))
            .await?;
        Ok(Response::new(pb::FindClientsByPhoneResponse {
            clients: found.into_iter().map(client_to_pb).collect(),
        }))
    }

    async fn list_vehicles(
        &self,
        req: Request<pb::ListVehiclesRequest>,
    ) -> Result<Response<pb::ListVehiclesResponse>, Status> {
        let actor = auth::actor(&req)?;
        let r = req.into_inner();
        let owner = scope(&actor, &r.client_id)?;
        let list = self
            .db
            .run(move |c| vehicles::list(c, &owner, r.include_archived))
            .await?;
        Ok(Response::new(pb::ListVehiclesResponse {
            vehicles: list.into_iter().map(vehicle_to_pb).collect(),
        }))
    }

    async fn get_vehicle(
        &self,
        req: Request<pb::GetVehicleRequest>,
    ) -> Result<Response<pb::Vehicle>, Status> {
        let owner = auth::actor(&req)?.client_id().map(str::to_owned);
        let id = req.into_inner().id;
        let v = self
            .db
            .run(move |c| vehicles::get(c, &id, owner.as_deref()))
            .await?;
        Ok(Response::new(vehicle_to_pb(v)))
    }

    async fn create_vehicle(
        &self,
        req: Request<pb::CreateVehicleRequest>,
    ) -> Result<Response<pb::Vehicle>, Status> {
        let owner = auth::client(&req)?;
        let input = input_from_pb(req.into_inner().input)?;
        let now = now_utc();
        let v = self
            .db
            .run(move |c| vehicles::create(c, &owner, input, now))
            .await?;
        Ok(Response::new(vehicle_to_pb(v)))
    }

    async fn update_vehicle(
        &self,
        req: Request<pb::UpdateVehicleRequest>,
    ) -> Result<Response<pb::Vehicle>, Status> {
        let owner = auth::actor(&req)?.client_id().map(str::to_owned);
        let r = req.into_inner();
        let input = input_from_pb(r.input)?;
        let now = now_utc();
        let v = self
            .db
            .run(move |c| vehicles::update(c, &r.id, owner.as_deref(), input, now))
            .await?;
        Ok(Response::new(vehicle_to_pb(v)))
    }

    async fn archive_vehicle(
        &self,
        req: Request<pb::ArchiveVehicleRequest>,
    ) -> Result<Response<pb::Vehicle>, Status> {
        let owner = auth::actor(&req)?.client_id().map(str::to_owned);
        let id = req.into_inner().id;
        let now = now_utc();
        let v = self
            .db
            .run(move |c| vehicles::archive(c, &id, owner.as_deref(), now))
            .await?;
        Ok(Response::new(vehicle_to_pb(v)))
    }

    async fn search_clients(
        &self,
        req: Request<pb::SearchClientsRequest>,
    ) -> Result<Response<pb::SearchClientsResponse>, Status> {
        auth::require(&auth::actor(&req)?, Permission::ViewClients)?;
        let r = req.into_inner();
        let query = ClientSearch::parse(&r.query, r.limit)?;
        let found = self.db.run(move |c| search::clients(c, &query)).await?;
        Ok(Response::new(pb::SearchClientsResponse {
            matches: found.into_iter().map(match_to_pb).collect(),
        }))
    }
}

fn client_to_pb(c: Client) -> pb::Client {
    pb::Client {
        id: c.id,
        email: c.email,
        name: c.name,
        phone: c.phone,
        contact_preference: match c.contact_preference {
            ContactPreference::Email => pb::ContactPreference::Email,
            ContactPreference::Sms => pb::ContactPreference::Sms,
        }
        .into(),
        email_consent: c.email_consent,
        sms_consent: c.sms_consent,
        sms_opted_out: c.sms_opted_out,
        created_at: Some(Timestamp::from_utc(c.created_at)),
    }
}

fn match_to_pb(m: ClientMatch) -> pb::ClientMatch {
    pb::ClientMatch {
        client: Some(client_to_pb(m.client)),
        vehicles: m.vehicles.into_iter().map(vehicle_to_pb).collect(),
    }
}

fn input_from_pb(i: Option<pb::VehicleInput>) -> Result<VehicleInput, Status> {
    let i = i.ok_or_else(|| Status::invalid_argument("input is required"))?;
    let category = match pb::VehicleCategory::try_from(i.category) {
        Ok(pb::VehicleCategory::Unspecified) | Err(_) => {
            return Err(Status::invalid_argument(
                "Pick what kind of vehicle it is (electric unicycle, e-bike, e-scooter, e-skateboard or other).",
            ));
        }
        Ok(c) => category_from_pb(c),
    };
    let battery_format = match pb::BatteryFormat::try_from(i.battery_format) {
        Ok(pb::BatteryFormat::Unspecified) => BatteryFormat::Unknown,
        Ok(pb::BatteryFormat::BatteryFormat18650) => BatteryFormat::Cells18650,
        Ok(pb::BatteryFormat::BatteryFormat21700) => BatteryFormat::Cells21700,
        Ok(pb::BatteryFormat::Lfp) => BatteryFormat::Lfp,
        Ok(pb::BatteryFormat::Other) => BatteryFormat::Other,
        Err(_) => return Err(Status::invalid_argument("unknown battery format")),
    };
    Ok(VehicleInput {
        category,
        make_id: i.make_id,
        model_id: i.model_id,
        other_make: i.other_make,
        other_model: i.other_model,
        nickname: i.nickname,
        battery_format,
        voltage_class: i.voltage_class,
        battery_serial: i.battery_serial,
        motor_serial: i.motor_serial,
        notes: i.notes,
    })
}

fn vehicle_to_pb(v: Vehicle) -> pb::Vehicle {
    let label = v.label();
    let i = v.input;
    pb::Vehicle {
        id: v.id,
        client_id: v.client_id,
        input: Some(pb::VehicleInput {
            category: category_to_pb(i.category).into(),
            make_id: i.make_id,
            model_id: i.model_id,
            other_make: i.other_make,
            other_model: i.other_model,
            nickname: i.nickname,
            battery_format: match i.battery_format {
                BatteryFormat::Unknown => pb::BatteryFormat::Unspecified,
                BatteryFormat::Cells18650 => pb::BatteryFormat::BatteryFormat18650,
                BatteryFormat::Cells21700 => pb::BatteryFormat::BatteryFormat21700,
                BatteryFormat::Lfp => pb::BatteryFormat::Lfp,
                BatteryFormat::Other => pb::BatteryFormat::Other,
            }
            .into(),
            voltage_class: i.voltage_class,
            battery_serial: i.battery_serial,
            motor_serial: i.motor_serial,
            notes: i.notes,
        }),
        make_name: v.make_name,
        model_name: v.model_name,
        label,
        archived: v.archived,
        created_at: Some(Timestamp::from_utc(v.created_at)),
        updated_at: Some(Timestamp::from_utc(v.updated_at)),
    }
}

fn category_from_pb(c: pb::VehicleCategory) -> VehicleCategory {
    match c {
        pb::VehicleCategory::ElectricUnicycle => VehicleCategory::ElectricUnicycle,
        pb::VehicleCategory::EBike => VehicleCategory::EBike,
        pb::VehicleCategory::EScooter => VehicleCategory::EScooter,
        pb::VehicleCategory::ESkateboard => VehicleCategory::ESkateboard,
        pb::VehicleCategory::Other | pb::VehicleCategory::Unspecified => VehicleCategory::Other,
    }
}

fn category_to_pb(c: VehicleCategory) -> pb::VehicleCategory {
    match c {
        VehicleCategory::ElectricUnicycle => pb::VehicleCategory::ElectricUnicycle,
        VehicleCategory::EBike => pb::VehicleCategory::EBike,
        VehicleCategory::EScooter => pb::VehicleCategory::EScooter,
        VehicleCategory::ESkateboard => pb::VehicleCategory::ESkateboard,
        VehicleCategory::Other => pb::VehicleCategory::Other,
    }
}

fn make_to_pb(m: VehicleMake) -> pb::VehicleMake {
    pb::VehicleMake {
        id: m.id,
        name: m.name,
        models: m
            .models
            .into_iter()
            .map(|md| pb::VehicleModel {
                id: md.id,
                name: md.name,
                category: category_to_pb(md.category).into(),
            })
            .collect(),
    }
}
