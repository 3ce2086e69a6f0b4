//! `omneuro.billing.v1.BillingService`: the RPCs and their proto ⇄ domain mapping.

use std::sync::Arc;

use omneuro_platform::db::Database;
use omneuro_proto::billing::v1 as pb;
use tonic::{Request, Response, Status};

use crate::tax::{self, Jurisdiction};

pub struct Billing {
    db: Arc<Database>,
}

impl Billing {
    pub fn new(db: Arc<Database>) -> Self {
        Self { db }
    }
}

#[tonic::async_trait]
impl pb::billing_service_server::BillingService for Billing {
    async fn get_tax_rate(
        &self,
        req: Request<pb::GetTaxRateRequest>,
    ) -> Result<Response<pb::GetTaxRateResponse>, Status> {
        let j =
            Jurisdiction::parse(&req.get_ref().jurisdiction).map_err(Status::invalid_argument)?;
        let name = j.as_str().to_owned();
        let rate = self
            .db
            .run(move |c| tax::get(c, &j))
            .await?
            .ok_or_else(|| Status::not_found(format!("no tax rate for {name}")))?;
        Ok(Response::new(pb::GetTaxRateResponse {
            tax_rate: Some(pb::TaxRate {
                jurisdiction: rate.jurisdiction,
                rate_bps: rate.rate_bps,
            }),
        }))
    }
}
