//! The owner's catalog with real shop and portal on both databases: every product with its price,
//! listing and stock; a new price and unlisting are saved in shop (and the page says what happened
//! with Stripe, which is off here); a price that isn't dollars, or one shop refuses, shows why on
//! the same page with what was typed, changing nothing; shop down gets a notice.

use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_proto::shop::v1 as pb;
use omneuro_tests::*;
use tonic::transport::Channel;

async fn catalog_entry(
    s: &mut pb::shop_service_client::ShopServiceClient<Channel>,
    id: &str,
) -> pb::CatalogProduct {
    let owner = Actor::Staff {
        id: "stf_test".into(),
        role: StaffRole::Owner,
    };
    s.list_catalog(auth::request(&owner, pb::ListCatalogRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .products
        .into_iter()
        .find(|c| c.product.as_ref().is_some_and(|p| p.id == id))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_reprices_and_unlists_and_a_bad_price_changes_nothing() {
    for backend in backends() {
        let (sdb, pdb) = (TestDb::new(backend, "shop"), TestDb::new(backend, "portal"));
        let sh = start_domain("shop", &sdb.url, &[]).await;
        wait_ready(&sh).await;
        let mut sc = pb::shop_service_client::ShopServiceClient::new(sh.channel());
        let product = sc
            .list_products(pb::ListProductsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .products
            .into_iter()
            .next()
            .expect("demo products");
        let portal = start_portal(&pdb.url, &[("shop", sh.grpc_url())], &[]).await;
        wait_ready(&portal).await;
        let mut staff = seed_staff(&pdb.url).await;
        let mut owner = Browser::new(&portal.url(""));
        assert_eq!(
            staff_sign_in(&mut owner, &mut staff.owner).await.location,
            "/jobs"
        );

        let p = owner.get("/catalog").await;
        assert_eq!(p.status, 200, "{}", p.body);
        let row = &p.body[p
            .body
            .find(&format!("data-product=\"{}\"", product.id))
            .unwrap()..];
        let cents = product.price.as_ref().unwrap().amount_cents;
        assert!(
            row.contains(&format!("value=\"{}.{:02}\"", cents / 100, cents % 100)),
            "the current price is in the form"
        );
        let csrf = p.csrf();
        let path = format!("/catalog/{}", product.id);

        // A new price, and off the shop's shelves.
        let p = owner
            .post(&path, &[("csrf", &csrf), ("price", "$149.50")])
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(
            p.body.contains("Stripe is off"),
            "shop's word on Stripe: {}",
            p.body
        );
        let entry = catalog_entry(&mut sc, &product.id).await;
        assert_eq!(
            entry
                .product
                .as_ref()
                .unwrap()
                .price
                .as_ref()
                .unwrap()
                .amount_cents,
            14950
        );
        assert!(!entry.active);
        assert!(
            sc.get_product(pb::GetProductRequest {
                id: product.id.clone()
            })
            .await
            .is_err(),
            "an unlisted product is gone from the shop"
        );
        assert!(p.body.contains("not listed"));

        // Refused by the page (not dollars) or by shop (over its limit): why, as typed, unchanged.
        for (price, status, why) in [("12,99", 400, "should be dollars"), ("200000", 400, "")] {
            let p = owner
                .post(&path, &[("csrf", &csrf), ("price", price), ("active", "1")])
                .await;
            assert_eq!(p.status, status, "{price}: {}", p.body);
            assert!(
                p.body.contains("id=\"message\"") && p.body.contains(why),
                "{price}"
            );
            assert!(
                p.body.contains(&format!("value=\"{price}\"")),
                "{price}: typed kept"
            );
            let now = catalog_entry(&mut sc, &product.id).await;
            assert_eq!(now, entry, "{price}: nothing changed");
        }

        // shop down: a notice, no table that looks real.
        sh.stop().await;
        let p = owner.get("/catalog").await;
        assert_eq!(p.status, 503);
        assert!(p.body.contains("shop service isn") && !p.body.contains("id=\"catalog\""));
        portal.stop().await;
    }
}
