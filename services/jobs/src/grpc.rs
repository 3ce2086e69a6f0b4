//! `omneuro.jobs.v1.JobsService`: the RPCs and their proto ⇄ domain mapping.

use std::sync::Arc;

use omneuro_platform::db::Database;
use omneuro_proto::common::v1::Money;
use omneuro_proto::jobs::v1 as pb;
use tonic::{Request, Response, Status};

use crate::offerings::{self, ServiceOffering};

pub struct Jobs {
    db: Arc<Database>,
}

impl Jobs {
    pub fn new(db: Arc<Database>) -> Self {
        Self { db }
    }
}

#[tonic::async_trait]
impl pb::jobs_service_server::JobsService for Jobs {
    async fn list_service_offerings(
        &self,
        _req: Request<pb::ListServiceOfferingsRequest>,
    ) -> Result<Response<pb::ListServiceOfferingsResponse>, Status> {
        let list = self.db.run(offerings::list_active).await?;
        Ok(Response::new(pb::ListServiceOfferingsResponse {
            offerings: list.into_iter().map(to_pb).collect(),
        }))
    }
}

fn to_pb(o: ServiceOffering) -> pb::ServiceOffering {
    pb::ServiceOffering {
        code: o.code,
        name: o.name,
        description: o.description,
        starting_price: Some(Money {
            amount_cents: o.starting_price_cents,
            currency: o.currency,
        }),
        sort_order: u32::try_from(o.sort_order).unwrap_or(0),
    }
}
