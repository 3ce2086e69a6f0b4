//! `omneuro.garage.v1.GarageService`: the RPCs and their proto ⇄ domain mapping.

use std::sync::Arc;

use omneuro_platform::db::Database;
use omneuro_proto::garage::v1 as pb;
use tonic::{Request, Response, Status};

use crate::catalog::{self, VehicleCategory, VehicleMake};

pub struct Garage {
    db: Arc<Database>,
}

impl Garage {
    pub fn new(db: Arc<Database>) -> Self {
        Self { db }
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
