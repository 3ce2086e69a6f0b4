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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_adds_a_product_and_says_what_it_fits() {
    use omneuro_proto::garage::v1 as gpb;
    for backend in backends() {
        let (sdb, gdb, pdb) = (
            TestDb::new(backend, "shop"),
            TestDb::new(backend, "garage"),
            TestDb::new(backend, "portal"),
        );
        let sh = start_domain("shop", &sdb.url, &[]).await;
        let ga = start_domain("garage", &gdb.url, &[]).await;
        wait_ready(&sh).await;
        wait_ready(&ga).await;
        let mut sc = pb::shop_service_client::ShopServiceClient::new(sh.channel());
        let makes = gpb::garage_service_client::GarageServiceClient::new(ga.channel())
            .list_vehicle_makes(gpb::ListVehicleMakesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .makes;
        let (whole, single) = (
            &makes[0],
            makes.iter().find(|m| m.models.len() > 1).unwrap(),
        );
        let portal = start_portal(
            &pdb.url,
            &[("shop", sh.grpc_url()), ("garage", ga.grpc_url())],
            &[],
        )
        .await;
        wait_ready(&portal).await;
        let mut staff = seed_staff(&pdb.url).await;
        let mut owner = Browser::new(&portal.url(""));
        staff_sign_in(&mut owner, &mut staff.owner).await;
        let csrf = owner.get("/catalog").await.csrf();
        let count = |sdb: &TestDb| {
            sdb.query_pair(
                "SELECT COUNT(*) AS a, CAST(0 AS BIGINT) AS b FROM products WHERE name = 'Hub motor 1000W'",
            )
            .0
        };

        // Refused by the page: why, everything typed kept, nothing added.
        let typed = [
            ("csrf", csrf.as_str()),
            ("name", "Hub motor 1000W"),
            ("category", "motors"),
            ("price", "lots"),
            ("stock", "3"),
            ("description", "Rear hub, 11-inch."),
            ("active", "1"),
        ];
        let p = owner.post("/catalog", &typed).await;
        assert_eq!(p.status, 400, "{}", p.body);
        assert!(p.body.contains("should be dollars") && p.body.contains("id=\"message\""));
        for kept in [
            "value=\"Hub motor 1000W\"",
            "value=\"motors\"",
            "value=\"lots\"",
            "Rear hub, 11-inch.</textarea>",
        ] {
            assert!(p.body.contains(kept), "{kept} kept");
        }
        assert_eq!(count(&sdb), 0);

        // Added: shop has it, with its opening stock; its page asks what it fits.
        let mut good = typed;
        good[3] = ("price", "219");
        let p = owner.post("/catalog", &good).await;
        assert_eq!(p.status, 303, "{}", p.body);
        let id = p
            .location
            .strip_prefix("/catalog/")
            .and_then(|l| l.strip_suffix("?added=1"))
            .unwrap()
            .to_owned();
        let entry = catalog_entry(&mut sc, &id).await;
        let product = entry.product.clone().unwrap();
        assert_eq!(
            (
                product.slug.as_str(),
                product.price.as_ref().unwrap().amount_cents,
                entry.on_hand,
                entry.active
            ),
            ("hub-motor-1000w", 21900, 3, true)
        );
        let p = owner.get(&p.location).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("Added to the catalog"));
        assert!(p.body.contains(&format!("data-make=\"{}\"", whole.id)));

        // The same name again: shop refuses the taken address (slug), nothing added.
        let p = owner.post("/catalog", &good).await;
        assert_eq!(p.status, 400, "{}", p.body);
        assert!(p.body.contains("id=\"message\"") && p.body.contains("value=\"219\""));
        assert_eq!(count(&sdb), 1);

        // What it fits: one whole make and one model of another.
        let model = format!("{}/{}", single.id, single.models[1].id);
        let path = format!("/catalog/{id}/fitment");
        let p = owner
            .post(
                &path,
                &[
                    ("csrf", csrf.as_str()),
                    ("fit", whole.id.as_str()),
                    ("fit", model.as_str()),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let saved = catalog_entry(&mut sc, &id).await;
        let mut fits: Vec<(String, String)> = saved
            .product
            .as_ref()
            .unwrap()
            .fitment
            .iter()
            .map(|f| (f.make_id.clone(), f.model_id.clone()))
            .collect();
        fits.sort();
        let mut want = vec![
            (whole.id.clone(), String::new()),
            (single.id.clone(), single.models[1].id.clone()),
        ];
        want.sort();
        assert_eq!(fits, want);
        let p = owner.get(&p.location).await;
        assert!(p.body.contains("Saved what it fits"));
        assert!(p.body.contains(&format!("value=\"{model}\" checked")));
        assert!(p.body.contains(&format!("value=\"{}\" checked", whole.id)));

        // A forged make id: shop's reason on the page, the ticks as sent, nothing changed.
        let p = owner
            .post(
                &path,
                &[
                    ("csrf", csrf.as_str()),
                    ("fit", "NOT A MAKE"),
                    ("fits_all", "1"),
                ],
            )
            .await;
        assert_eq!(p.status, 400, "{}", p.body);
        assert!(p.body.contains("id=\"message\"") && p.body.contains("NOT A MAKE"));
        assert!(p.body.contains("name=\"fits_all\" value=\"1\" checked"));
        assert_eq!(catalog_entry(&mut sc, &id).await, saved);

        // No such product; then garage down: the page says so.
        let p = owner.get("/catalog/prd_0000000000000000000000").await;
        assert_eq!(p.status, 404, "{}", p.body);
        assert!(p.body.contains("no such product"));
        ga.stop().await;
        let p = owner.get(&format!("/catalog/{id}")).await;
        assert_eq!(p.status, 503);
        assert!(p.body.contains("vehicle catalog (garage)"));
        portal.stop().await;
        sh.stop().await;
    }
}
