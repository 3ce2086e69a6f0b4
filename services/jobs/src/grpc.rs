//! `omneuro.jobs.v1.JobsService`: the RPCs, who may call them, and the proto ⇄ domain mapping.

use std::sync::Arc;

use chrono::{NaiveDate, NaiveTime, Utc};
use omneuro_platform::auth::{self, Actor, Permission};
use omneuro_platform::blobs::Blobs;
use omneuro_platform::config::LinksConfig;
use omneuro_platform::db::{Database, now_utc};
use omneuro_platform::error::DomainError;
use omneuro_platform::grpc::{self, TracedChannel};
use omneuro_platform::weeks::Weeks;
use omneuro_proto::common::v1::{Money, Timestamp};
use omneuro_proto::garage::v1 as garage;
use omneuro_proto::garage::v1::garage_service_client::GarageServiceClient;
use omneuro_proto::jobs::v1 as pb;
use omneuro_proto::shop::v1 as shop;
use omneuro_proto::shop::v1::shop_service_client::ShopServiceClient;
use tonic::{Request, Response, Status};

use crate::booking::{self, BookingRules, Window};
use crate::booking_store::{self, BookingInput, SlotRequest};
use crate::estimates::{self, Estimate, Line};
use crate::offerings::{self, OfferingInput, ServiceOffering};
use crate::photos::{self, Photo};
use crate::reports;
use crate::workorders::{self, Status as JobStatus, WorkOrder};

pub struct Jobs {
    db: Arc<Database>,
    garage: GarageServiceClient<TracedChannel>,
    shop: ShopServiceClient<TracedChannel>,
    links: LinksConfig,
    /// Job photos' bytes (`[photos] dir`).
    photos: Blobs,
}

/// What a caller sees when the photo store can't read or write (the error itself is logged).
const PHOTO_STORE_DOWN: &str =
    "Photos can't be stored or read right now; nothing was saved. Try again in a minute.";

impl Jobs {
    pub fn new(
        db: Arc<Database>,
        garage: GarageServiceClient<TracedChannel>,
        shop: ShopServiceClient<TracedChannel>,
        links: LinksConfig,
        photos: Blobs,
    ) -> Self {
        Self {
            db,
            garage,
            shop,
            links,
            photos,
        }
    }

    fn estimate_to_pb(&self, e: Estimate) -> pb::Estimate {
        pb::Estimate {
            url: format!(
                "{}/estimate/{}",
                self.links.public_url.trim_end_matches('/'),
                e.token
            ),
            id: e.id,
            job_id: e.job_id,
            vehicle_label: e.vehicle_label,
            total: Some(Money::usd(e.total_cents)),
            status: e.status,
            sent_at: Some(Timestamp::from_utc(e.sent_at)),
            lines: e.lines.into_iter().map(line_to_pb).collect(),
        }
    }

    /// The staff view of a job after a change.
    async fn workbench(&self, job_id: String) -> Result<Response<pb::JobWorkbench>, Status> {
        let (job, lines, notes, est, pictures) = self
            .db
            .run(move |c| {
                Ok::<_, DomainError>((
                    workorders::get(c, &job_id, None)?,
                    estimates::lines(c, &job_id)?,
                    estimates::notes(c, &job_id)?,
                    estimates::latest(c, &job_id)?,
                    photos::list(c, &job_id)?,
                ))
            })
            .await?;
        let total: i64 = lines.iter().map(|l| l.amount_cents).sum();
        Ok(Response::new(pb::JobWorkbench {
            job: Some(self.to_pb(job)),
            lines: lines.into_iter().map(line_to_pb).collect(),
            notes: notes
                .into_iter()
                .map(|n| pb::JobNote {
                    id: n.id,
                    at: Some(Timestamp::from_utc(n.at)),
                    author: n.author,
                    body: n.body,
                })
                .collect(),
            estimate: est.map(|e| self.estimate_to_pb(e)),
            lines_total: Some(Money::usd(total)),
            photos: pictures.into_iter().map(photo_to_pb).collect(),
            max_photos: u32::try_from(photos::MAX_PHOTOS_PER_JOB).unwrap_or(u32::MAX),
        }))
    }

    /// The estimate a request names: by its link token (anyone holding it), or by job for the
    /// signed-in client who owns it (or staff).
    async fn estimate_token(
        &self,
        actor: &Actor,
        token: String,
        job_id: String,
    ) -> Result<String, Status> {
        if !token.is_empty() {
            return Ok(token);
        }
        let owner = owner(actor);
        if owner.is_none() && !actor.is_staff() {
            return Err(Status::invalid_argument("token is required"));
        }
        let est = self
            .db
            .run(move |c| {
                workorders::get(c, &job_id, owner.as_deref())?;
                estimates::latest(c, &job_id)
            })
            .await?;
        est.map(|e| e.token)
            .ok_or_else(|| Status::not_found("This job has no estimate yet."))
    }

    fn to_pb(&self, w: WorkOrder) -> pb::WorkOrder {
        let status_url = w
            .status_token
            .as_ref()
            .map(|t| format!("{}/status/{t}", self.links.public_url.trim_end_matches('/')))
            .unwrap_or_default();
        pb::WorkOrder {
            status_label: w.status.label().into(),
            next_step: w.status.next_step().into(),
            next_statuses: w
                .status
                .next()
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            status: w.status.as_str().into(),
            id: w.id,
            client_id: w.client_id,
            vehicle_id: w.vehicle_id,
            vehicle_label: w.vehicle_label,
            services: w.services,
            problem: w.problem,
            safety_flag: w.safety_flag,
            assigned_tech: w.assigned_tech,
            appointment: w.appointment.map(appointment_to_pb),
            history: w
                .history
                .into_iter()
                .map(|e| pb::StatusEvent {
                    at: Some(Timestamp::from_utc(e.at)),
                    actor: e.actor,
                    from_status: e.from.map(|s| s.as_str().to_owned()).unwrap_or_default(),
                    to_status: e.to.as_str().into(),
                    note: e.note,
                })
                .collect(),
            status_url,
            created_at: Some(Timestamp::from_utc(w.created_at)),
        }
    }
}

fn appointment_to_pb(a: workorders::AppointmentInfo) -> pb::Appointment {
    pb::Appointment {
        id: a.id,
        date: a.day.to_string(),
        window_code: a.window_code,
        start: a.start_local,
        starts_at: Some(Timestamp::from_utc(a.starts_at)),
        booked: a.booked,
    }
}

/// The client a caller is confined to: a client sees only their own; staff and system see all.
fn owner(actor: &Actor) -> Option<String> {
    actor.client_id().map(str::to_owned)
}

fn slot_request(s: Option<pb::Slot>) -> Result<SlotRequest, Status> {
    let s = s.ok_or_else(|| Status::invalid_argument("Pick a drop-off time."))?;
    Ok(SlotRequest {
        date: s.date,
        window_code: s.window_code,
        start: s.start,
    })
}

fn rules_to_pb(r: &BookingRules) -> pb::BookingRules {
    pb::BookingRules {
        timezone: r.timezone.name().into(),
        dropoff_days: r
            .dropoff_days
            .iter()
            .map(|d| booking_store::day_code(*d).to_owned())
            .collect(),
        windows: r
            .windows
            .iter()
            .map(|w| pb::BookingWindow {
                code: w.code.clone(),
                label: w.label.clone(),
                start: w.start.format("%H:%M").to_string(),
                end: w.end.format("%H:%M").to_string(),
                capacity: w.capacity,
            })
            .collect(),
        slot_minutes: r.slot_minutes,
        horizon_days: r.horizon_days,
        min_lead_minutes: r.min_lead_minutes,
        blackout_days: r.blackouts.iter().map(|d| d.to_string()).collect(),
    }
}

fn rules_from_pb(r: pb::BookingRules) -> Result<BookingRules, Status> {
    let bad = |m: String| Status::invalid_argument(m);
    let time = |field: &str, v: &str| {
        NaiveTime::parse_from_str(v, "%H:%M")
            .map_err(|_| bad(format!("{field}: `{v}` is not a time like 10:00")))
    };
    Ok(BookingRules {
        timezone: r.timezone.parse().map_err(|_| {
            bad(format!(
                "timezone: `{}` is not an IANA time zone",
                r.timezone
            ))
        })?,
        dropoff_days: r
            .dropoff_days
            .iter()
            .map(|d| {
                booking_store::parse_day(d)
                    .ok_or_else(|| bad(format!("dropoff_days: `{d}` is not sun…sat")))
            })
            .collect::<Result<_, _>>()?,
        windows: r
            .windows
            .into_iter()
            .map(|w| {
                Ok(Window {
                    start: time(&format!("window `{}` start", w.code), &w.start)?,
                    end: time(&format!("window `{}` end", w.code), &w.end)?,
                    code: w.code,
                    label: w.label,
                    capacity: w.capacity,
                })
            })
            .collect::<Result<_, Status>>()?,
        slot_minutes: r.slot_minutes,
        horizon_days: r.horizon_days,
        min_lead_minutes: r.min_lead_minutes,
        blackouts: r
            .blackout_days
            .iter()
            .map(|d| {
                NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .map_err(|_| bad(format!("blackout_days: `{d}` is not YYYY-MM-DD")))
            })
            .collect::<Result<_, _>>()?,
    })
}

#[tonic::async_trait]
impl pb::jobs_service_server::JobsService for Jobs {
    async fn list_service_offerings(
        &self,
        req: Request<pb::ListServiceOfferingsRequest>,
    ) -> Result<Response<pb::ListServiceOfferingsResponse>, Status> {
        // Only staff see what is switched off; everyone else gets what clients may book.
        let all = req.get_ref().include_inactive && auth::actor(&req).is_ok_and(|a| a.is_staff());
        let list = self.db.run(move |c| offerings::list(c, all)).await?;
        Ok(Response::new(pb::ListServiceOfferingsResponse {
            offerings: list.into_iter().map(offering_to_pb).collect(),
        }))
    }

    async fn save_service_offering(
        &self,
        req: Request<pb::SaveServiceOfferingRequest>,
    ) -> Result<Response<pb::ServiceOffering>, Status> {
        let actor = auth::actor(&req)?;
        auth::require(&actor, Permission::EditSettings)?;
        let o = req
            .into_inner()
            .offering
            .ok_or_else(|| Status::invalid_argument("offering is required"))?;
        let price = o.starting_price.unwrap_or_default();
        let input = OfferingInput::parse(
            &o.code,
            &o.name,
            &o.description,
            price.amount_cents,
            &price.currency,
            i64::from(o.sort_order),
            o.active,
        )?;
        let saved = self.db.run(move |c| offerings::save(c, &input)).await?;
        tracing::info!(service = %saved.code, active = saved.active, actor = %actor.encode(), "service offering saved");
        Ok(Response::new(offering_to_pb(saved)))
    }

    async fn get_booking_rules(
        &self,
        _req: Request<pb::GetBookingRulesRequest>,
    ) -> Result<Response<pb::BookingRules>, Status> {
        let rules = self.db.run(booking_store::load_rules).await?;
        Ok(Response::new(rules_to_pb(&rules)))
    }

    async fn update_booking_rules(
        &self,
        req: Request<pb::UpdateBookingRulesRequest>,
    ) -> Result<Response<pb::BookingRules>, Status> {
        auth::require(&auth::actor(&req)?, Permission::EditSettings)?;
        let rules = rules_from_pb(req.into_inner().rules.unwrap_or_default())?;
        let now = now_utc();
        let saved = rules.clone();
        self.db
            .run(move |c| booking_store::save_rules(c, &saved, now))
            .await?;
        Ok(Response::new(rules_to_pb(&rules)))
    }

    async fn list_availability(
        &self,
        _req: Request<pb::ListAvailabilityRequest>,
    ) -> Result<Response<pb::ListAvailabilityResponse>, Status> {
        let now = Utc::now();
        let (rules, counts) = self
            .db
            .run(move |c| {
                let rules = booking_store::load_rules(c)?;
                let today = now.with_timezone(&rules.timezone).date_naive();
                Ok::<_, DomainError>((rules, booking_store::load_counts(c, today)?))
            })
            .await?;
        let windows = booking::availability(&rules, now, |d, w| {
            counts.get(&(d, w.to_owned())).copied().unwrap_or(0)
        });
        Ok(Response::new(pb::ListAvailabilityResponse {
            timezone: rules.timezone.name().into(),
            windows: windows
                .into_iter()
                .map(|w| pb::WindowAvailability {
                    remaining: w.capacity.saturating_sub(w.booked),
                    date: w.date.to_string(),
                    window_code: w.window_code,
                    label: w.label,
                    slots: w
                        .slots
                        .into_iter()
                        .map(|s| pb::Slot {
                            date: s.date.to_string(),
                            window_code: s.window_code,
                            start: s.start_local.format("%H:%M").to_string(),
                            starts_at: Some(Timestamp::from_utc(s.start_utc.naive_utc())),
                        })
                        .collect(),
                })
                .collect(),
        }))
    }

    async fn create_booking(
        &self,
        req: Request<pb::CreateBookingRequest>,
    ) -> Result<Response<pb::WorkOrder>, Status> {
        let client_id = auth::client(&req)?;
        let actor = auth::actor(&req)?;
        let r = req.into_inner();
        let slot = slot_request(r.slot)?;
        if r.vehicle_id.trim().is_empty() {
            return Err(Status::invalid_argument(
                "Pick the vehicle you're bringing.",
            ));
        }
        // The vehicle must be this client's (garage decides), and not archived.
        let mut g = self.garage.clone();
        let vehicle = grpc::call(
            "GarageService/GetVehicle",
            g.get_vehicle(auth::request(
                &actor,
                garage::GetVehicleRequest {
                    id: r.vehicle_id.clone(),
                },
            )),
        )
        .await
        .map_err(|s| match s.code() {
            tonic::Code::NotFound | tonic::Code::InvalidArgument => {
                Status::invalid_argument("That vehicle isn't in your garage.")
            }
            _ => Status::unavailable(
                "We can't check your vehicle right now; please try again in a minute.",
            ),
        })?
        .into_inner();
        if vehicle.archived {
            return Err(Status::invalid_argument(
                "That vehicle is archived; add it again to book it.",
            ));
        }
        let input = BookingInput {
            vehicle_id: vehicle.id,
            vehicle_label: vehicle.label,
            services: r.services,
            problem: r.problem,
            safety_flag: r.safety_flag,
            slot,
        };
        let now = Utc::now();
        let job = self
            .db
            .run(move |c| {
                let b = booking_store::book(c, &client_id, input, now)?;
                workorders::get(c, &b.job_id, None)
            })
            .await?;
        tracing::info!(job_id = %job.id, "drop-off booked");
        Ok(Response::new(self.to_pb(job)))
    }

    async fn reschedule_booking(
        &self,
        req: Request<pb::RescheduleBookingRequest>,
    ) -> Result<Response<pb::WorkOrder>, Status> {
        let actor = auth::actor(&req)?;
        let r = req.into_inner();
        let slot = slot_request(r.slot)?;
        let (owner, who, now) = (owner(&actor), actor.encode(), Utc::now());
        let job = self
            .db
            .run(move |c| {
                let b = booking_store::reschedule(c, &r.job_id, owner.as_deref(), &who, slot, now)?;
                workorders::get(c, &b.job_id, None)
            })
            .await?;
        Ok(Response::new(self.to_pb(job)))
    }

    async fn cancel_booking(
        &self,
        req: Request<pb::CancelBookingRequest>,
    ) -> Result<Response<pb::WorkOrder>, Status> {
        let actor = auth::actor(&req)?;
        let id = req.into_inner().job_id;
        let (owner, who, now) = (owner(&actor), actor.encode(), now_utc());
        let job = self
            .db
            .run(move |c| {
                let job = workorders::get(c, &id, owner.as_deref())?;
                if owner.is_some() && job.status != JobStatus::Intake {
                    return Err(DomainError::conflict(
                        "Your vehicle is already with us; call the shop to cancel this job.",
                    ));
                }
                workorders::move_status(
                    c,
                    &job.id,
                    JobStatus::Canceled,
                    &who,
                    "Booking canceled",
                    now,
                )
            })
            .await?;
        Ok(Response::new(self.to_pb(job)))
    }

    async fn list_jobs(
        &self,
        req: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let actor = auth::actor(&req)?;
        let statuses = req
            .into_inner()
            .statuses
            .iter()
            .map(|s| {
                JobStatus::parse(s)
                    .ok_or_else(|| Status::invalid_argument(format!("unknown status `{s}`")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let jobs = match actor {
            Actor::Client(id) => {
                self.db
                    .run(move |c| workorders::list_for_client(c, &id))
                    .await?
            }
            Actor::Staff { .. } | Actor::System(_) => {
                self.db
                    .run(move |c| workorders::list_by_status(c, &statuses))
                    .await?
            }
        };
        Ok(Response::new(pb::ListJobsResponse {
            jobs: jobs.into_iter().map(|j| self.to_pb(j)).collect(),
        }))
    }

    async fn get_job(
        &self,
        req: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::WorkOrder>, Status> {
        let owner = owner(&auth::actor(&req)?);
        let id = req.into_inner().id;
        let job = self
            .db
            .run(move |c| workorders::get(c, &id, owner.as_deref()))
            .await?;
        Ok(Response::new(self.to_pb(job)))
    }

    async fn move_job(
        &self,
        req: Request<pb::MoveJobRequest>,
    ) -> Result<Response<pb::WorkOrder>, Status> {
        let actor = auth::actor(&req)?;
        auth::require(&actor, Permission::MoveJobs)?;
        let r = req.into_inner();
        let to = JobStatus::parse(&r.to_status)
            .ok_or_else(|| Status::invalid_argument(format!("unknown status `{}`", r.to_status)))?;
        let (who, now) = (actor.encode(), now_utc());
        let job = self
            .db
            .run(move |c| workorders::move_status(c, &r.id, to, &who, &r.note, now))
            .await?;
        tracing::info!(job_id = %job.id, to = to.as_str(), "job moved");
        Ok(Response::new(self.to_pb(job)))
    }

    async fn renew_status_link(
        &self,
        req: Request<pb::StatusLinkRequest>,
    ) -> Result<Response<pb::WorkOrder>, Status> {
        let owner = owner(&auth::actor(&req)?);
        let id = req.into_inner().job_id;
        let now = now_utc();
        let job = self
            .db
            .run(move |c| {
                workorders::renew_status_link(c, &id, owner.as_deref(), now)?;
                workorders::get(c, &id, None)
            })
            .await?;
        Ok(Response::new(self.to_pb(job)))
    }

    async fn revoke_status_link(
        &self,
        req: Request<pb::StatusLinkRequest>,
    ) -> Result<Response<pb::WorkOrder>, Status> {
        let owner = owner(&auth::actor(&req)?);
        let id = req.into_inner().job_id;
        let now = now_utc();
        let job = self
            .db
            .run(move |c| {
                workorders::revoke_status_link(c, &id, owner.as_deref(), now)?;
                workorders::get(c, &id, None)
            })
            .await?;
        Ok(Response::new(self.to_pb(job)))
    }

    async fn create_walk_in(
        &self,
        req: Request<pb::CreateWalkInRequest>,
    ) -> Result<Response<pb::WorkOrder>, Status> {
        let actor = auth::actor(&req)?;
        auth::require(&actor, Permission::OpenWalkIn)?;
        let r = req.into_inner();
        let mut g = self.garage.clone();
        let vehicle = grpc::call(
            "GarageService/GetVehicle",
            g.get_vehicle(auth::request(
                &actor,
                garage::GetVehicleRequest {
                    id: r.vehicle_id.clone(),
                },
            )),
        )
        .await
        .map_err(|s| match s.code() {
            tonic::Code::NotFound | tonic::Code::InvalidArgument => {
                Status::invalid_argument("No such vehicle.")
            }
            _ => Status::unavailable("garage is unavailable; try again in a minute"),
        })?
        .into_inner();
        if vehicle.client_id != r.client_id {
            return Err(Status::invalid_argument(
                "That vehicle belongs to another client.",
            ));
        }
        let (who, now) = (actor.encode(), now_utc());
        let job = self
            .db
            .run(move |c| {
                let problem =
                    omneuro_platform::error::text("problem description", &r.problem, 2000, true)?;
                let services = booking_store::valid_services(c, &r.services)?;
                let id = omneuro_platform::db::write_transaction(c, |c| {
                    workorders::insert(
                        c,
                        workorders::NewOrder {
                            client_id: &r.client_id,
                            vehicle_id: &vehicle.id,
                            vehicle_label: &vehicle.label,
                            services: &services,
                            problem: &problem,
                            safety_flag: r.safety_flag,
                            source: "walk_in",
                            actor: &who,
                            note: "Walk-in at the counter",
                        },
                        now,
                    )
                })?;
                workorders::get(c, &id, None)
            })
            .await?;
        Ok(Response::new(self.to_pb(job)))
    }

    async fn get_workbench(
        &self,
        req: Request<pb::GetWorkbenchRequest>,
    ) -> Result<Response<pb::JobWorkbench>, Status> {
        auth::require(&auth::actor(&req)?, Permission::ViewJobs)?;
        self.workbench(req.into_inner().job_id).await
    }

    async fn add_note(
        &self,
        req: Request<pb::AddNoteRequest>,
    ) -> Result<Response<pb::JobWorkbench>, Status> {
        let actor = auth::actor(&req)?;
        auth::require(&actor, Permission::WorkBench)?;
        let r = req.into_inner();
        let (who, now, id) = (actor.encode(), now_utc(), r.job_id.clone());
        self.db
            .run(move |c| estimates::add_note(c, &r.job_id, &who, &r.body, now))
            .await?;
        self.workbench(id).await
    }

    async fn add_labor(
        &self,
        req: Request<pb::AddLaborRequest>,
    ) -> Result<Response<pb::JobWorkbench>, Status> {
        let actor = auth::actor(&req)?;
        auth::require(&actor, Permission::WorkBench)?;
        let r = req.into_inner();
        let (who, now, id) = (actor.encode(), now_utc(), r.job_id.clone());
        self.db
            .run(move |c| {
                estimates::add_labor(
                    c,
                    &r.job_id,
                    &r.description,
                    &r.hours,
                    r.rate_cents,
                    &who,
                    now,
                )
            })
            .await?;
        self.workbench(id).await
    }

    async fn add_part(
        &self,
        req: Request<pb::AddPartRequest>,
    ) -> Result<Response<pb::JobWorkbench>, Status> {
        let actor = auth::actor(&req)?;
        auth::require(&actor, Permission::WorkBench)?;
        let r = req.into_inner();
        // Name and price from the shop catalog, never from the caller.
        let mut s = self.shop.clone();
        let product = grpc::call(
            "ShopService/GetProduct",
            s.get_product(shop::GetProductRequest {
                id: r.product_id.clone(),
            }),
        )
        .await
        .map_err(|e| match e.code() {
            tonic::Code::NotFound | tonic::Code::InvalidArgument => {
                Status::invalid_argument("No such part in the shop catalog.")
            }
            _ => Status::unavailable("The shop catalog is unavailable; try again in a minute."),
        })?
        .into_inner()
        .product
        .ok_or_else(|| Status::invalid_argument("No such part in the shop catalog."))?;
        let price = product.price.unwrap_or_default();
        if !(1..=100).contains(&r.quantity) {
            return Err(Status::invalid_argument(
                "Quantity should be between 1 and 100.",
            ));
        }
        // The job must be open before stock moves.
        let (job_id, owner_check) = (r.job_id.clone(), r.job_id.clone());
        let job = self
            .db
            .run(move |c| workorders::get(c, &owner_check, None))
            .await?;
        if matches!(job.status, JobStatus::Delivered | JobStatus::Canceled) {
            return Err(Status::failed_precondition(
                "This job is closed; its lines can no longer change.",
            ));
        }
        // Off the shelf first, through shop's ledger (keyed by the new line's id, so a retry
        // takes it once); then the line.
        let line_id = omneuro_platform::ids::new_id("line");
        let part = shop::JobPartRequest {
            product_id: product.id.clone(),
            quantity: r.quantity,
            job_id: job_id.clone(),
            line_id: line_id.clone(),
        };
        let system = Actor::System("jobs".into());
        grpc::call(
            "ShopService/UseJobPart",
            s.use_job_part(auth::request(&system, part.clone())),
        )
        .await
        .map_err(|e| match e.code() {
            tonic::Code::FailedPrecondition | tonic::Code::InvalidArgument => {
                Status::failed_precondition(e.message().to_owned())
            }
            _ => Status::unavailable("The shop's stock is unavailable; try again in a minute."),
        })?;
        let (who, now, id) = (actor.encode(), now_utc(), r.job_id.clone());
        let added = self
            .db
            .run(move |c| {
                estimates::add_part(
                    c,
                    &r.job_id,
                    &line_id,
                    &product.id,
                    &product.name,
                    r.quantity,
                    price.amount_cents,
                    &price.currency,
                    &who,
                    now,
                )
            })
            .await;
        if let Err(e) = added {
            // The line was not written: put the part back.
            if let Err(back) = grpc::call(
                "ShopService/ReturnJobPart",
                s.return_job_part(auth::request(&system, part)),
            )
            .await
            {
                tracing::error!(error = %back.message(), "a part left the shelf without a job line; return it by hand");
            }
            return Err(e.into());
        }
        self.workbench(id).await
    }

    async fn remove_line(
        &self,
        req: Request<pb::RemoveLineRequest>,
    ) -> Result<Response<pb::JobWorkbench>, Status> {
        auth::require(&auth::actor(&req)?, Permission::WorkBench)?;
        let r = req.into_inner();
        let id = r.job_id.clone();
        let (job, line) = (r.job_id.clone(), r.line_id.clone());
        let part = self
            .db
            .run(move |c| estimates::part_of_line(c, &job, &line))
            .await?;
        // A part goes back on the shelf before its line goes (idempotent per line in shop).
        if let Some((product_id, quantity)) = part {
            let mut s = self.shop.clone();
            grpc::call(
                "ShopService/ReturnJobPart",
                s.return_job_part(auth::request(
                    &Actor::System("jobs".into()),
                    shop::JobPartRequest {
                        product_id,
                        quantity,
                        job_id: r.job_id.clone(),
                        line_id: r.line_id.clone(),
                    },
                )),
            )
            .await
            .map_err(|_| {
                Status::unavailable("The shop's stock is unavailable; try again in a minute.")
            })?;
        }
        self.db
            .run(move |c| estimates::remove_line(c, &r.job_id, &r.line_id))
            .await?;
        self.workbench(id).await
    }

    async fn assign_tech(
        &self,
        req: Request<pb::AssignTechRequest>,
    ) -> Result<Response<pb::JobWorkbench>, Status> {
        auth::require(&auth::actor(&req)?, Permission::AssignTech)?;
        let r = req.into_inner();
        let (now, id) = (now_utc(), r.job_id.clone());
        self.db
            .run(move |c| estimates::assign(c, &r.job_id, &r.tech, now))
            .await?;
        self.workbench(id).await
    }

    async fn add_photo(
        &self,
        req: Request<pb::AddPhotoRequest>,
    ) -> Result<Response<pb::JobWorkbench>, Status> {
        let actor = auth::actor(&req)?;
        auth::require(&actor, Permission::WorkBench)?;
        let r = req.into_inner();
        // Every check before anything is written: the bytes and caption, then the job's room.
        let checked = photos::check(&r.data, &r.caption)?;
        let job_id = r.job_id.clone();
        self.db
            .run(move |c| photos::room_for_one(c, &job_id))
            .await?;
        // The file first, then the row; a row that can't be written takes its file back out.
        let id = omneuro_platform::ids::new_id("pho");
        if let Err(e) = self.photos.put(id.clone(), r.data).await {
            tracing::error!(error = %e, job_id = %r.job_id, "photo store write failed");
            return Err(Status::unavailable(PHOTO_STORE_DOWN));
        }
        let (who, now, job_id, photo_id) =
            (actor.encode(), now_utc(), r.job_id.clone(), id.clone());
        let inserted = self
            .db
            .run(move |c| photos::insert(c, &photo_id, &job_id, &checked, &who, now))
            .await;
        if let Err(e) = inserted {
            if let Err(gone) = self.photos.delete(id.clone()).await {
                tracing::error!(error = %gone, photo_id = %id, "a photo file was left without its row");
            }
            return Err(e.into());
        }
        tracing::info!(job_id = %r.job_id, photo_id = %id, "photo added");
        self.workbench(r.job_id).await
    }

    async fn get_photo(
        &self,
        req: Request<pb::GetPhotoRequest>,
    ) -> Result<Response<pb::Photo>, Status> {
        auth::require(&auth::actor(&req)?, Permission::ViewJobs)?;
        let r = req.into_inner();
        let photo = self
            .db
            .run(move |c| photos::get(c, &r.job_id, &r.photo_id))
            .await?;
        let data = match self.photos.get(photo.id.clone()).await {
            Ok(Some(data)) => data,
            Ok(None) => {
                tracing::error!(photo_id = %photo.id, "a photo row has no file");
                return Err(Status::not_found("This photo's file is missing."));
            }
            Err(e) => {
                tracing::error!(error = %e, photo_id = %photo.id, "photo store read failed");
                return Err(Status::unavailable(PHOTO_STORE_DOWN));
            }
        };
        Ok(Response::new(pb::Photo {
            photo: Some(photo_to_pb(photo)),
            data,
        }))
    }

    async fn remove_photo(
        &self,
        req: Request<pb::RemovePhotoRequest>,
    ) -> Result<Response<pb::JobWorkbench>, Status> {
        auth::require(&auth::actor(&req)?, Permission::WorkBench)?;
        let r = req.into_inner();
        let (job_id, photo_id) = (r.job_id.clone(), r.photo_id.clone());
        self.db
            .run(move |c| photos::remove(c, &job_id, &photo_id))
            .await?;
        // The row is gone, so nothing serves the file any more; a failed delete only costs disk.
        if let Err(e) = self.photos.delete(r.photo_id.clone()).await {
            tracing::error!(error = %e, photo_id = %r.photo_id, "a removed photo's file stayed on disk");
        }
        self.workbench(r.job_id).await
    }

    async fn send_estimate(
        &self,
        req: Request<pb::SendEstimateRequest>,
    ) -> Result<Response<pb::Estimate>, Status> {
        let actor = auth::actor(&req)?;
        auth::require(&actor, Permission::SendEstimate)?;
        let id = req.into_inner().job_id;
        let (who, now) = (actor.encode(), now_utc());
        let est = self
            .db
            .run(move |c| estimates::send(c, &id, &who, now))
            .await?;
        tracing::info!(job_id = %est.job_id, total_cents = est.total_cents, "estimate sent");
        Ok(Response::new(self.estimate_to_pb(est)))
    }

    async fn get_estimate(
        &self,
        req: Request<pb::GetEstimateRequest>,
    ) -> Result<Response<pb::Estimate>, Status> {
        let actor = auth::actor(&req)?;
        let r = req.into_inner();
        let token = self.estimate_token(&actor, r.token, r.job_id).await?;
        let est = self.db.run(move |c| estimates::by_token(c, &token)).await?;
        Ok(Response::new(self.estimate_to_pb(est)))
    }

    async fn decide_estimate(
        &self,
        req: Request<pb::DecideEstimateRequest>,
    ) -> Result<Response<pb::Estimate>, Status> {
        let actor = auth::actor(&req)?;
        let r = req.into_inner();
        let token = self.estimate_token(&actor, r.token, r.job_id).await?;
        let who = match &actor {
            Actor::System(_) => "client:estimate-link".to_owned(),
            other => other.encode(),
        };
        let now = now_utc();
        let est = self
            .db
            .run(move |c| estimates::decide(c, &token, r.approve, &who, now))
            .await?;
        tracing::info!(job_id = %est.job_id, status = %est.status, "estimate decided");
        Ok(Response::new(self.estimate_to_pb(est)))
    }

    async fn mark_paid(
        &self,
        req: Request<pb::MarkPaidRequest>,
    ) -> Result<Response<pb::WorkOrder>, Status> {
        match auth::actor(&req)? {
            Actor::System(name) if name == "billing" => {}
            _ => return Err(Status::permission_denied("only billing reports payments")),
        }
        let r = req.into_inner();
        let now = now_utc();
        let job = self
            .db
            .run(move |c| {
                let job = workorders::get(c, &r.job_id, None)?;
                if job.status != JobStatus::AwaitingPayment {
                    return Ok(job);
                }
                let note = format!("Paid online (invoice {})", r.invoice_number);
                workorders::move_status(c, &job.id, JobStatus::Ready, "system:billing", &note, now)
            })
            .await?;
        Ok(Response::new(self.to_pb(job)))
    }

    async fn get_jobs_report(
        &self,
        req: Request<pb::GetJobsReportRequest>,
    ) -> Result<Response<pb::JobsReport>, Status> {
        auth::require(&auth::actor(&req)?, Permission::ViewReports)?;
        let weeks = Weeks::ending(req.into_inner().weeks, now_utc())?;
        let r = self.db.run(move |c| reports::load(c, &weeks)).await?;
        Ok(Response::new(report_to_pb(r)))
    }

    async fn get_status_page(
        &self,
        req: Request<pb::GetStatusPageRequest>,
    ) -> Result<Response<pb::StatusPage>, Status> {
        auth::actor(&req)?;
        let token = req.into_inner().token;
        let job = self
            .db
            .run(move |c| workorders::by_status_token(c, &token))
            .await?;
        Ok(Response::new(pb::StatusPage {
            vehicle_label: job.vehicle_label,
            status: job.status.as_str().into(),
            status_label: job.status.label().into(),
            next_step: job.status.next_step().into(),
            appointment: job.appointment.map(appointment_to_pb),
            // Only when and what: never who moved it or the notes.
            timeline: job
                .history
                .into_iter()
                .map(|e| pb::status_page::Step {
                    at: Some(Timestamp::from_utc(e.at)),
                    status: e.to.as_str().into(),
                    label: e.to.label().into(),
                })
                .collect(),
        }))
    }
}

fn report_to_pb(r: reports::JobsReport) -> pb::JobsReport {
    pb::JobsReport {
        weeks: r
            .weeks
            .into_iter()
            .map(|w| pb::JobsReportWeek {
                week_start: w.monday.to_string(),
                opened: w.opened,
                statuses: JobStatus::ALL
                    .iter()
                    .zip(w.by_status)
                    .map(|(s, count)| pb::jobs_report_week::StatusCount {
                        status: s.as_str().into(),
                        count,
                    })
                    .collect(),
                finished: w.turnaround.jobs,
                turnaround_avg_seconds: w.turnaround.average_seconds(),
            })
            .collect(),
        finished: r.turnaround.jobs,
        turnaround_avg_seconds: r.turnaround.average_seconds(),
        parts: r
            .parts
            .into_iter()
            .map(|p| pb::PartUsage {
                product_id: p.product_id,
                name: p.name,
                quantity: p.quantity,
            })
            .collect(),
    }
}

fn photo_to_pb(p: Photo) -> pb::JobPhoto {
    pb::JobPhoto {
        id: p.id,
        content_type: p.content_type,
        size_bytes: p.size_bytes,
        sha256: p.sha256,
        caption: p.caption,
        uploaded_by: p.uploaded_by,
        created_at: Some(Timestamp::from_utc(p.created_at)),
    }
}

fn line_to_pb(l: Line) -> pb::JobLine {
    pb::JobLine {
        hours: if l.kind == "labor" {
            format!(
                "{}.{:02}",
                l.hours_hundredths / 100,
                l.hours_hundredths % 100
            )
        } else {
            String::new()
        },
        id: l.id,
        kind: l.kind,
        description: l.description,
        product_id: l.product_id.unwrap_or_default(),
        quantity: l.quantity,
        unit_price: Some(Money {
            amount_cents: l.unit_price_cents,
            currency: l.currency.clone(),
        }),
        amount: Some(Money {
            amount_cents: l.amount_cents,
            currency: l.currency,
        }),
    }
}

fn offering_to_pb(o: ServiceOffering) -> pb::ServiceOffering {
    pb::ServiceOffering {
        code: o.code,
        name: o.name,
        description: o.description,
        starting_price: Some(Money {
            amount_cents: o.starting_price_cents,
            currency: o.currency,
        }),
        sort_order: u32::try_from(o.sort_order).unwrap_or(0),
        active: o.active,
    }
}
