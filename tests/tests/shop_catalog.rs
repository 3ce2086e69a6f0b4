//! Staff catalog management over real gRPC on both databases, with the Stripe catalog sync
//! against the fake Stripe peer: only staff may edit, bad input is refused with a message, a sync
//! makes exactly one Stripe Product and current Price per product (and a second sync makes no
//! call at all), a price change makes one new Price and archives the old one (also when the price
//! goes back to an earlier amount), a Stripe outage is retried without creating anything twice
//! and never fails an edit, and fitment edits change "fits my vehicle".

use std::time::Duration;

use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_proto::common::v1::{Money, PageRequest};
use omneuro_proto::shop::v1 as pb;
use omneuro_tests::*;
use pb::shop_service_client::ShopServiceClient;
use serde_json::Value;
use tonic::{Code, Status};

type Shop = ShopServiceClient<tonic::transport::Channel>;

const DEMO_PRODUCTS: u32 = 9;

fn staff() -> Actor {
    Actor::Staff {
        id: "stf_1".into(),
        role: StaffRole::Owner,
    }
}

fn usd(cents: i64) -> Option<Money> {
    Some(Money {
        amount_cents: cents,
        currency: "USD".into(),
    })
}

/// shop (demo catalog) as its own process, talking to `stripe` when given; ready to call.
async fn start_shop(
    db: &TestDb,
    stripe: Option<&FakeStripe>,
    dir: &std::path::Path,
) -> (Proc, Shop) {
    let mut env = vec![
        ("OMNEURO__DATABASE__URL", db.url.clone()),
        ("OMNEURO__DEMO_DATA", "true".to_owned()),
    ];
    if let Some(f) = stripe {
        env.extend([
            ("OMNEURO__STRIPE__BASE_URL", f.base_url()),
            ("OMNEURO__STRIPE__RETRY_BASE_MS", "20".to_owned()),
            ("OMNEURO_SECRET_STRIPE_SECRET_KEY", f.api_key.clone()),
        ]);
    }
    let shop = Proc::spawn("shop", &env, dir);
    let ready = format!("http://{}/readyz", shop.http);
    assert!(
        eventually(Duration::from_secs(20), || async {
            http_status(&ready).await == 200
        })
        .await,
        "shop not ready:\n{}",
        shop.logs()
    );
    let s = ShopServiceClient::new(
        tonic::transport::Endpoint::from_shared(shop.grpc_url())
            .unwrap()
            .timeout(Duration::from_secs(30))
            .connect_lazy(),
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            s.clone()
                .get_product(pb::GetProductRequest {
                    id: "prd_demo_bms_20s".into(),
                })
                .await
                .is_ok()
        })
        .await
    );
    (shop, s)
}

fn new_product() -> pb::CreateProductRequest {
    pb::CreateProductRequest {
        slug: "kaabo-mantis-fender".into(),
        name: "Kaabo Mantis rear fender".into(),
        description: "Reinforced 3D-printed rear fender.\nBolts to the stock holes.".into(),
        category: "mounts".into(),
        price: usd(2999),
        active: true,
        featured: false,
        sort_order: 20,
        image_url: "/static/img/mantis-fender.jpg".into(),
        opening_stock: 7,
        fits_all: false,
        fitment: vec![pb::Fitment {
            make_id: "mk_kaabo".into(),
            model_id: String::new(),
        }],
    }
}

async fn create(
    s: &mut Shop,
    actor: &Actor,
    req: pb::CreateProductRequest,
) -> Result<pb::CatalogProduct, Status> {
    s.create_product(auth::request(actor, req))
        .await
        .map(|r| r.into_inner().product.unwrap())
}

async fn update(
    s: &mut Shop,
    actor: &Actor,
    req: pb::UpdateProductRequest,
) -> Result<pb::CatalogProduct, Status> {
    s.update_product(auth::request(actor, req))
        .await
        .map(|r| r.into_inner().product.unwrap())
}

async fn set_fitment(
    s: &mut Shop,
    id: &str,
    fits_all: bool,
    list: &[(&str, &str)],
) -> Result<pb::CatalogProduct, Status> {
    s.set_fitment(auth::request(
        &staff(),
        pb::SetFitmentRequest {
            product_id: id.into(),
            fits_all,
            fitment: list
                .iter()
                .map(|(make, model)| pb::Fitment {
                    make_id: (*make).into(),
                    model_id: (*model).into(),
                })
                .collect(),
        },
    ))
    .await
    .map(|r| r.into_inner().product.unwrap())
}

async fn sync(s: &mut Shop) -> pb::SyncCatalogResponse {
    s.sync_catalog(auth::request(&staff(), pb::SyncCatalogRequest {}))
        .await
        .unwrap()
        .into_inner()
}

async fn catalog(s: &mut Shop) -> Vec<pb::CatalogProduct> {
    s.list_catalog(auth::request(
        &staff(),
        pb::ListCatalogRequest {
            page: Some(PageRequest {
                page_size: 200,
                page_token: String::new(),
            }),
        },
    ))
    .await
    .unwrap()
    .into_inner()
    .products
}

async fn entry(s: &mut Shop, id: &str) -> pb::CatalogProduct {
    catalog(s)
        .await
        .into_iter()
        .find(|p| p.product.as_ref().unwrap().id == id)
        .unwrap_or_else(|| panic!("{id} not in the catalog"))
}

fn stripe_of(p: &pb::CatalogProduct) -> &pb::StripeSync {
    p.stripe.as_ref().unwrap()
}

fn price_of(p: &pb::CatalogProduct) -> i64 {
    p.product
        .as_ref()
        .unwrap()
        .price
        .as_ref()
        .unwrap()
        .amount_cents
}

/// Products that fit (make, model), by id.
async fn fits(s: &mut Shop, make: &str, model: &str) -> Vec<String> {
    s.list_products(pb::ListProductsRequest {
        fits: vec![pb::Fitment {
            make_id: make.into(),
            model_id: model.into(),
        }],
        page: Some(PageRequest {
            page_size: 200,
            page_token: String::new(),
        }),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .products
    .into_iter()
    .map(|p| p.id)
    .collect()
}

/// (Stripe products, Stripe prices, authenticated /v1 requests) the fake has seen.
async fn counts(f: &FakeStripe) -> (i64, i64, i64) {
    let st = f.state().await;
    (
        st["counts"]["products"].as_i64().unwrap(),
        st["counts"]["prices"].as_i64().unwrap(),
        st["requests"].as_i64().unwrap(),
    )
}

/// `GET /v1/{path}` on the fake, as Stripe's API answers it.
async fn stripe_get(f: &FakeStripe, path: &str) -> Value {
    let res = http()
        .get(format!("{}/v1/{path}", f.base_url()))
        .bearer_auth(&f.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200, "GET /v1/{path}");
    res.json().await.unwrap()
}

fn assert_invalid(r: Result<pb::CatalogProduct, Status>, word: &str, what: &str) {
    let e = r.expect_err(what);
    assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
    assert!(
        e.message().to_lowercase().contains(&word.to_lowercase()),
        "{what}: `{}` does not mention `{word}`",
        e.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_edit_the_catalog_and_stripe_gets_one_product_and_current_price_each() {
    for backend in backends() {
        // A fresh Stripe per backend: both catalogs have the same product ids (and so keys).
        let Some(f) = FakeStripe::start() else {
            return;
        };
        let tmp = TempDir::new("shopcat");
        let db = TestDb::new(backend, "shop");
        let (shop, mut s) = start_shop(&db, Some(&f), &tmp.0).await;

        // ---- Only staff: nothing reaches the database or Stripe otherwise.
        let no_caller = s
            .create_product(tonic::Request::new(new_product()))
            .await
            .unwrap_err();
        assert_eq!(no_caller.code(), Code::Unauthenticated, "{backend:?}");
        for who in [Actor::Client("cli_1".into()), Actor::System("site".into())] {
            let e = create(&mut s, &who, new_product()).await.unwrap_err();
            assert_eq!(e.code(), Code::PermissionDenied, "{who:?}: {e:?}");
            let e = update(
                &mut s,
                &who,
                pb::UpdateProductRequest {
                    id: "prd_demo_xt90".into(),
                    price: usd(1),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
            assert_eq!(e.code(), Code::PermissionDenied, "{who:?}: {e:?}");
            let e = s
                .set_fitment(auth::request(
                    &who,
                    pb::SetFitmentRequest {
                        product_id: "prd_demo_xt90".into(),
                        fits_all: false,
                        fitment: vec![],
                    },
                ))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::PermissionDenied, "{who:?}: {e:?}");
            let e = s
                .sync_catalog(auth::request(&who, pb::SyncCatalogRequest {}))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::PermissionDenied, "{who:?}: {e:?}");
            let e = s
                .list_catalog(auth::request(&who, pb::ListCatalogRequest::default()))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::PermissionDenied, "{who:?}: {e:?}");
        }

        // ---- Bad input: INVALID_ARGUMENT saying what is wrong.
        let staff = staff();
        let bad: Vec<(pb::CreateProductRequest, &str)> = vec![
            (
                pb::CreateProductRequest {
                    slug: "Mantis Fender".into(),
                    ..new_product()
                },
                "slug",
            ),
            (
                pb::CreateProductRequest {
                    slug: "x".repeat(81),
                    ..new_product()
                },
                "slug",
            ),
            (
                pb::CreateProductRequest {
                    slug: "eu-phone-mount".into(),
                    ..new_product()
                },
                "already used",
            ),
            (
                pb::CreateProductRequest {
                    name: "n".repeat(121),
                    ..new_product()
                },
                "name",
            ),
            (
                pb::CreateProductRequest {
                    name: " ".into(),
                    ..new_product()
                },
                "name",
            ),
            (
                pb::CreateProductRequest {
                    category: "Mounts!".into(),
                    ..new_product()
                },
                "category",
            ),
            (
                pb::CreateProductRequest {
                    description: "d".repeat(4001),
                    ..new_product()
                },
                "description",
            ),
            (
                pb::CreateProductRequest {
                    price: usd(-1),
                    ..new_product()
                },
                "price",
            ),
            (
                pb::CreateProductRequest {
                    price: usd(10_000_001),
                    ..new_product()
                },
                "price",
            ),
            (
                pb::CreateProductRequest {
                    price: None,
                    ..new_product()
                },
                "price",
            ),
            (
                pb::CreateProductRequest {
                    price: Some(Money {
                        amount_cents: 2999,
                        currency: "EUR".into(),
                    }),
                    ..new_product()
                },
                "USD",
            ),
            (
                pb::CreateProductRequest {
                    image_url: "javascript:alert(1)".into(),
                    ..new_product()
                },
                "image",
            ),
            (
                pb::CreateProductRequest {
                    opening_stock: -1,
                    ..new_product()
                },
                "opening stock",
            ),
            (
                pb::CreateProductRequest {
                    fitment: vec![pb::Fitment {
                        make_id: "Kaabo!".into(),
                        model_id: String::new(),
                    }],
                    ..new_product()
                },
                "make id",
            ),
        ];
        for (req, word) in bad {
            let what = format!("{backend:?} create {word}");
            assert_invalid(create(&mut s, &staff, req).await, word, &what);
        }
        let bad_updates: Vec<(pb::UpdateProductRequest, &str)> = vec![
            (
                pb::UpdateProductRequest {
                    id: "prd_demo_xt90".into(),
                    name: Some("n".repeat(121)),
                    ..Default::default()
                },
                "name",
            ),
            (
                pb::UpdateProductRequest {
                    id: "prd_demo_xt90".into(),
                    price: usd(10_000_001),
                    ..Default::default()
                },
                "price",
            ),
            (
                pb::UpdateProductRequest {
                    id: "prd_demo_xt90".into(),
                    category: Some("Connectors & more".into()),
                    ..Default::default()
                },
                "category",
            ),
            (
                pb::UpdateProductRequest {
                    id: "prd_demo_xt90".into(),
                    description: Some("d".repeat(4001)),
                    ..Default::default()
                },
                "description",
            ),
            (
                pb::UpdateProductRequest {
                    id: "not a product".into(),
                    name: Some("x".into()),
                    ..Default::default()
                },
                "product id",
            ),
        ];
        for (req, word) in bad_updates {
            let what = format!("{backend:?} update {word}");
            assert_invalid(update(&mut s, &staff, req).await, word, &what);
        }
        let missing = update(
            &mut s,
            &staff,
            pb::UpdateProductRequest {
                id: "prd_nosuchproduct".into(),
                name: Some("Ghost".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
        assert_invalid(
            set_fitment(&mut s, "prd_demo_tube_10", false, &[("", "")]).await,
            "make id",
            "empty make",
        );
        assert_eq!(
            set_fitment(&mut s, "prd_nosuchproduct", true, &[])
                .await
                .unwrap_err()
                .code(),
            Code::NotFound
        );
        assert_eq!(catalog(&mut s).await.len(), DEMO_PRODUCTS as usize);
        assert_eq!(counts(&f).await, (0, 0, 0), "refused calls reached Stripe");

        // ---- The first sync: one Stripe Product and one Price per demo product.
        let first = sync(&mut s).await;
        assert_eq!(
            (first.created, first.updated, first.unchanged, first.failed),
            (DEMO_PRODUCTS, 0, 0, 0),
            "{backend:?}: {first:?}"
        );
        let (products, prices, _) = counts(&f).await;
        assert_eq!((products, prices), (9, 9));
        for p in catalog(&mut s).await {
            let st = stripe_of(&p);
            assert_eq!(st.state, pb::StripeSyncState::Synced as i32, "{p:?}");
            assert!(st.stripe_product_id.starts_with("prod_"), "{p:?}");
            assert!(st.stripe_price_id.starts_with("price_"), "{p:?}");
            assert!(st.synced_at.is_some() && st.error.is_empty(), "{p:?}");
        }
        let bms = entry(&mut s, "prd_demo_bms_20s").await;
        let stripe_product = stripe_get(
            &f,
            &format!("products/{}", stripe_of(&bms).stripe_product_id),
        )
        .await;
        assert_eq!(stripe_product["name"], "Smart BMS 20S 60A");
        assert_eq!(stripe_product["active"], true);
        assert_eq!(stripe_product["metadata"]["product_id"], "prd_demo_bms_20s");
        let original_price = stripe_of(&bms).stripe_price_id.clone();
        let price = stripe_get(&f, &format!("prices/{original_price}")).await;
        assert_eq!(price["unit_amount"], 8999);
        assert_eq!(price["currency"], "usd");
        assert_eq!(price["product"], stripe_product["id"]);
        assert_eq!(price["metadata"]["product_id"], "prd_demo_bms_20s");

        // ---- Nothing changed: the second sync makes no Stripe call at all.
        let before = counts(&f).await;
        let second = sync(&mut s).await;
        assert_eq!(
            (
                second.created,
                second.updated,
                second.unchanged,
                second.failed
            ),
            (0, 0, DEMO_PRODUCTS, 0),
            "{second:?}"
        );
        assert_eq!(counts(&f).await, before, "an unchanged sync called Stripe");

        // ---- A new product: opening stock through the ledger, synced at once.
        let made = create(&mut s, &staff, new_product()).await.unwrap();
        let id = made.product.as_ref().unwrap().id.clone();
        assert!(id.starts_with("prd_"), "{made:?}");
        assert!(
            made.active && made.sort_order == 20 && made.on_hand == 7,
            "{made:?}"
        );
        assert_eq!(
            stripe_of(&made).state,
            pb::StripeSyncState::Synced as i32,
            "{made:?}"
        );
        assert!(stripe_of(&made).note.contains("synced"), "{made:?}");
        let (products, prices, _) = counts(&f).await;
        assert_eq!((products, prices), (10, 10));
        let shown = s
            .get_product(pb::GetProductRequest { id: id.clone() })
            .await
            .unwrap()
            .into_inner()
            .product
            .unwrap();
        assert_eq!(shown.stock, 7);
        assert_eq!(shown.slug, "kaabo-mantis-fender");
        assert_eq!(shown.image_url, "/static/img/mantis-fender.jpg");
        let ledger = db.query_pair(&format!(
            "SELECT CAST(COALESCE(SUM(on_hand_delta), 0) AS BIGINT) AS a, CAST(COUNT(*) AS BIGINT) AS b FROM inventory_ledger WHERE product_id = '{id}'"
        ));
        assert_eq!(ledger, (7, 1), "the opening stock is one ledger entry");
        let dup = create(&mut s, &staff, new_product()).await;
        assert_invalid(dup, "already used", "the same slug twice");

        // ---- A price change: one new Price, the old one archived.
        let changed = update(
            &mut s,
            &staff,
            pb::UpdateProductRequest {
                id: "prd_demo_bms_20s".into(),
                price: usd(9499),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(price_of(&changed), 9499);
        assert_eq!(
            stripe_of(&changed).state,
            pb::StripeSyncState::Synced as i32,
            "{changed:?}"
        );
        let (products, prices, _) = counts(&f).await;
        assert_eq!((products, prices), (10, 11));
        let new_price = stripe_of(&changed).stripe_price_id.clone();
        assert_ne!(new_price, original_price);
        assert_eq!(
            stripe_get(&f, &format!("prices/{original_price}")).await["active"],
            false
        );
        let p = stripe_get(&f, &format!("prices/{new_price}")).await;
        assert_eq!(
            (p["unit_amount"].as_i64(), p["active"].as_bool()),
            (Some(9499), Some(true))
        );

        // Back to the old amount within the day: a fresh Price, never the archived one revived.
        let back = update(
            &mut s,
            &staff,
            pb::UpdateProductRequest {
                id: "prd_demo_bms_20s".into(),
                price: usd(8999),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let back_price = stripe_of(&back).stripe_price_id.clone();
        assert!(
            back_price != original_price && back_price != new_price,
            "{back:?}"
        );
        assert_eq!(counts(&f).await.1, 12);
        let p = stripe_get(&f, &format!("prices/{back_price}")).await;
        assert_eq!(
            (p["unit_amount"].as_i64(), p["active"].as_bool()),
            (Some(8999), Some(true))
        );
        assert_eq!(
            stripe_get(&f, &format!("prices/{new_price}")).await["active"],
            false
        );
        assert_eq!(
            stripe_get(&f, &format!("prices/{original_price}")).await["active"],
            false
        );

        // A name change and a deactivation update the Stripe Product; no new object.
        let off = update(
            &mut s,
            &staff,
            pb::UpdateProductRequest {
                id: "prd_demo_brake_pads".into(),
                name: Some("Sintered brake pads (pair)".into()),
                active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(!off.active, "{off:?}");
        assert_eq!(counts(&f).await.0, 10);
        assert_eq!(counts(&f).await.1, 12);
        let sp = stripe_get(
            &f,
            &format!("products/{}", stripe_of(&off).stripe_product_id),
        )
        .await;
        assert_eq!(sp["name"], "Sintered brake pads (pair)");
        assert_eq!(sp["active"], false);
        let hidden = s
            .get_product(pb::GetProductRequest {
                id: "prd_demo_brake_pads".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            hidden.code(),
            Code::NotFound,
            "an inactive product is not for sale"
        );
        assert_eq!(catalog(&mut s).await.len(), 10, "staff still see it");

        // ---- Stripe failing: retried with the same keys, never fails an edit, nothing twice.
        let xt90 = entry(&mut s, "prd_demo_xt90").await;
        f.fail_next(500, 2).await;
        let retried = update(
            &mut s,
            &staff,
            pb::UpdateProductRequest {
                id: "prd_demo_xt90".into(),
                price: usd(799),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(
            stripe_of(&retried).state,
            pb::StripeSyncState::Synced as i32,
            "{retried:?}"
        );
        assert_eq!(
            counts(&f).await.1,
            13,
            "two 500s, then exactly one new price"
        );
        assert_eq!(
            stripe_get(&f, &format!("prices/{}", stripe_of(&xt90).stripe_price_id)).await["active"],
            false
        );

        let charger = entry(&mut s, "prd_demo_charger_84v").await;
        f.fail_next(500, 1000).await;
        let saved = update(
            &mut s,
            &staff,
            pb::UpdateProductRequest {
                id: "prd_demo_charger_84v".into(),
                price: usd(13_999),
                ..Default::default()
            },
        )
        .await
        .expect("a Stripe outage does not fail the edit");
        assert_eq!(price_of(&saved), 13_999);
        let st = stripe_of(&saved);
        assert_eq!(st.state, pb::StripeSyncState::Failed as i32, "{saved:?}");
        assert!(
            !st.error.is_empty() && st.note.contains("retry"),
            "{saved:?}"
        );
        assert_eq!(st.stripe_price_id, stripe_of(&charger).stripe_price_id);
        let during = sync(&mut s).await;
        assert_eq!(
            (
                during.created,
                during.updated,
                during.unchanged,
                during.failed
            ),
            (0, 0, 9, 1),
            "{during:?}"
        );
        assert_eq!(during.failures[0].product_id, "prd_demo_charger_84v");
        assert!(!during.failures[0].error.is_empty());
        f.fail_next(500, 0).await;
        assert_eq!(
            counts(&f).await.1,
            13,
            "nothing was created while Stripe failed"
        );

        f.fail_next(500, 2).await;
        let after = sync(&mut s).await;
        assert_eq!(
            (after.created, after.updated, after.unchanged, after.failed),
            (0, 1, 9, 0),
            "{after:?}"
        );
        assert_eq!(
            counts(&f).await.1,
            14,
            "the retried sync made exactly one price"
        );
        let charger_now = entry(&mut s, "prd_demo_charger_84v").await;
        let st = stripe_of(&charger_now);
        assert_eq!(
            st.state,
            pb::StripeSyncState::Synced as i32,
            "{charger_now:?}"
        );
        assert!(st.error.is_empty());
        let p = stripe_get(&f, &format!("prices/{}", st.stripe_price_id)).await;
        assert_eq!(
            (p["unit_amount"].as_i64(), p["active"].as_bool()),
            (Some(13_999), Some(true))
        );
        assert_eq!(
            stripe_get(
                &f,
                &format!("prices/{}", stripe_of(&charger).stripe_price_id)
            )
            .await["active"],
            false
        );
        let before = counts(&f).await;
        let calm = sync(&mut s).await;
        assert_eq!(
            (calm.created, calm.updated, calm.unchanged, calm.failed),
            (0, 0, 10, 0)
        );
        assert_eq!(counts(&f).await, before, "an unchanged sync called Stripe");
        let (products, prices, _) = before;
        assert_eq!(
            (products, prices),
            (10, 14),
            "one product per product, no duplicates"
        );

        // ---- Fitment decides "fits my vehicle" (and never calls Stripe).
        let kaabo = fits(&mut s, "mk_kaabo", "mdl_mantis").await;
        assert!(kaabo.contains(&"prd_demo_tube_10".to_owned()), "{kaabo:?}");
        assert!(kaabo.contains(&id), "{kaabo:?}");
        assert!(
            !kaabo.contains(&"prd_demo_phone_mount".to_owned()),
            "{kaabo:?}"
        );
        let tube = set_fitment(&mut s, "prd_demo_tube_10", false, &[("mk_dualtron", "")])
            .await
            .unwrap();
        let fitment = &tube.product.as_ref().unwrap().fitment;
        assert_eq!(fitment.len(), 1);
        assert_eq!(fitment[0].make_id, "mk_dualtron");
        assert!(
            !fits(&mut s, "mk_kaabo", "mdl_mantis")
                .await
                .contains(&"prd_demo_tube_10".to_owned())
        );
        assert!(
            fits(&mut s, "mk_dualtron", "mdl_x")
                .await
                .contains(&"prd_demo_tube_10".to_owned())
        );
        set_fitment(
            &mut s,
            "prd_demo_tube_10",
            false,
            &[("mk_kaabo", "mdl_mantis")],
        )
        .await
        .unwrap();
        assert!(
            fits(&mut s, "mk_kaabo", "mdl_mantis")
                .await
                .contains(&"prd_demo_tube_10".to_owned())
        );
        assert!(
            !fits(&mut s, "mk_kaabo", "mdl_wolf")
                .await
                .contains(&"prd_demo_tube_10".to_owned())
        );
        let all = set_fitment(&mut s, "prd_demo_tube_10", true, &[])
            .await
            .unwrap();
        assert!(all.product.as_ref().unwrap().fits_all);
        assert!(
            fits(&mut s, "mk_begode", "")
                .await
                .contains(&"prd_demo_tube_10".to_owned())
        );
        assert_eq!(counts(&f).await, before, "fitment is not Stripe's business");

        // Staff see everything, in the shop's order, with where each product stands.
        let all = catalog(&mut s).await;
        assert_eq!(all.len(), 10);
        assert!(all.windows(2).all(|w| w[0].sort_order <= w[1].sort_order));

        // A create whose answer never arrived (the ids were not stored) and a rename since: the
        // key's replay is refused for the new name, so the sync finds the product Stripe already
        // has (by its metadata) and adopts it, and the price key replays the current Price.
        let xt90 = entry(&mut s, "prd_demo_xt90").await;
        db.execute(
            "UPDATE products SET stripe_product_id = NULL, stripe_price_id = NULL, \
             stripe_price_cents = NULL, stripe_name = NULL, stripe_active = NULL \
             WHERE id = 'prd_demo_xt90'",
        );
        let renamed = update(
            &mut s,
            &staff,
            pb::UpdateProductRequest {
                id: "prd_demo_xt90".into(),
                name: Some("XT90-S anti-spark connector pair".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let st = stripe_of(&renamed);
        assert_eq!(st.state, pb::StripeSyncState::Synced as i32, "{renamed:?}");
        assert_eq!(st.stripe_product_id, stripe_of(&xt90).stripe_product_id);
        assert_eq!(st.stripe_price_id, stripe_of(&xt90).stripe_price_id);
        let (products, prices, _) = counts(&f).await;
        assert_eq!((products, prices), (10, 14), "adopted, not created again");
        let sp = stripe_get(&f, &format!("products/{}", st.stripe_product_id)).await;
        assert_eq!(sp["name"], "XT90-S anti-spark connector pair");
        drop(shop);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_stripe_off_edits_still_save_and_a_sync_says_why() {
    for backend in backends() {
        let tmp = TempDir::new("shopcatoff");
        let db = TestDb::new(backend, "shop");
        let (_shop, mut s) = start_shop(&db, None, &tmp.0).await;
        let made = create(&mut s, &staff(), new_product()).await.unwrap();
        let st = stripe_of(&made);
        assert_eq!(
            st.state,
            pb::StripeSyncState::Pending as i32,
            "{backend:?}: {made:?}"
        );
        assert!(st.note.contains("Stripe is off"), "{made:?}");
        assert!(st.stripe_product_id.is_empty());
        let id = made.product.unwrap().id;
        let changed = update(
            &mut s,
            &staff(),
            pb::UpdateProductRequest {
                id: id.clone(),
                price: usd(3499),
                featured: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(price_of(&changed), 3499);
        assert!(changed.product.as_ref().unwrap().featured);
        let e = s
            .sync_catalog(auth::request(&staff(), pb::SyncCatalogRequest {}))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        assert!(e.message().contains("Stripe is off"), "{}", e.message());
    }
}
