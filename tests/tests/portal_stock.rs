//! Stock adjustments at the counter with real shop and portal on both databases: the front desk
//! sees what is available, adds parts that arrived with a reason (kept in shop's ledger), and a
//! refused change (no reason, not a number, more than there is) shows why on the same page with
//! what was typed, changing nothing; shop down gets a notice.

use omneuro_proto::shop::v1 as pb;
use omneuro_tests::*;

async fn available(
    s: &mut pb::shop_service_client::ShopServiceClient<tonic::transport::Channel>,
    id: &str,
) -> i64 {
    s.get_product(pb::GetProductRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap()
        .stock
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_desk_adjusts_stock_with_a_reason_and_refusals_change_nothing() {
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
        let mut desk = Browser::new(&portal.url(""));
        assert_eq!(
            staff_sign_in(&mut desk, &mut staff.desk).await.location,
            "/jobs"
        );

        let p = desk.get("/stock").await;
        assert_eq!(p.status, 200, "{}", p.body);
        let before = available(&mut sc, &product.id).await;
        assert!(
            p.body.contains(&format!("data-product=\"{}\"", product.id))
                && p.body.contains(&format!("data-available=\"{before}\"")),
            "{}",
            p.body
        );
        let csrf = p.csrf();
        let path = format!("/stock/{}", product.id);

        // Six arrived.
        let p = desk
            .post(
                &path,
                &[
                    ("csrf", &csrf),
                    ("delta", "+6"),
                    ("reason", "Box from the supplier"),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert_eq!(available(&mut sc, &product.id).await, before + 6);
        let p = desk.get(&p.location).await;
        assert!(p.body.contains(&format!("{} available now", before + 6)));
        let (ledger, _) = sdb.query_pair(&format!(
            "SELECT COUNT(*) AS a, CAST(0 AS BIGINT) AS b FROM inventory_ledger WHERE product_id = '{}' AND on_hand_delta = 6 AND reason = 'restock'",
            product.id
        ));
        assert_eq!(ledger, 1, "the change is in shop's ledger");

        // Refused: the reason on the page, what was typed kept, nothing changed.
        let too_many = format!("-{}", before + 7);
        for (delta, reason, status, why) in [
            ("6", "", 400, "Say why"),
            ("lots", "Count", 400, "how many to add"),
            (too_many.as_str(), "Count", 409, ""),
        ] {
            let p = desk
                .post(
                    &path,
                    &[("csrf", &csrf), ("delta", delta), ("reason", reason)],
                )
                .await;
            assert_eq!(p.status, status, "{delta}: {}", p.body);
            assert!(
                p.body.contains("id=\"message\"") && p.body.contains(why),
                "{delta}"
            );
            assert!(
                p.body.contains(&format!("value=\"{delta}\"")),
                "{delta}: typed kept"
            );
            assert_eq!(available(&mut sc, &product.id).await, before + 6, "{delta}");
        }

        // shop down: a notice, no table that looks real.
        sh.stop().await;
        let p = desk.get("/stock").await;
        assert_eq!(p.status, 503);
        assert!(p.body.contains("shop service isn") && !p.body.contains("id=\"stock\""));
        portal.stop().await;
    }
}
