//! `omneuro.shop.v1.ShopService`: the RPCs and their proto ⇄ domain mapping.

use std::sync::Arc;

use omneuro_platform::db::Database;
use omneuro_platform::ids;
use omneuro_proto::common::v1::{Money, PageResponse};
use omneuro_proto::shop::v1 as pb;
use tonic::{Request, Response, Status};

use crate::products::{self, Product, ProductQuery};

pub struct Shop {
    db: Arc<Database>,
}

impl Shop {
    pub fn new(db: Arc<Database>) -> Self {
        Self { db }
    }
}

#[tonic::async_trait]
impl pb::shop_service_server::ShopService for Shop {
    async fn list_products(
        &self,
        req: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        let req = req.into_inner();
        let page = req.page.unwrap_or_default();
        let q = ProductQuery::new(
            req.featured_only,
            &req.category,
            page.page_size,
            &page.page_token,
        )
        .map_err(Status::invalid_argument)?;
        let (list, next) = self.db.run(move |c| products::list(c, &q)).await?;
        Ok(Response::new(pb::ListProductsResponse {
            products: list.into_iter().map(to_pb).collect(),
            page: Some(PageResponse {
                next_page_token: next.unwrap_or_default(),
            }),
        }))
    }

    async fn get_product(
        &self,
        req: Request<pb::GetProductRequest>,
    ) -> Result<Response<pb::GetProductResponse>, Status> {
        let id = req.into_inner().id;
        if !ids::is_valid("prd", &id) {
            return Err(Status::invalid_argument(format!(
                "`{id}` is not a product id (prd_…)"
            )));
        }
        let p = self
            .db
            .run(move |c| products::get(c, &id))
            .await?
            .ok_or_else(|| Status::not_found("no such product"))?;
        Ok(Response::new(pb::GetProductResponse {
            product: Some(to_pb(p)),
        }))
    }
}

fn to_pb(p: Product) -> pb::Product {
    pb::Product {
        id: p.id,
        slug: p.slug,
        name: p.name,
        description: p.description,
        category: p.category,
        price: Some(Money {
            amount_cents: p.price_cents,
            currency: p.currency,
        }),
        stock: p.stock,
        featured: p.featured,
    }
}
