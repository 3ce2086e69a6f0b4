//! repairbot: conversations with clients and techs, the LLM and its tools, the phone receptionist.
//!
//! Layout: `conversations` (domain types and queries), `kbsync` (conversations into kb through
//! repairbot's `kb_outbox`, ADR 0020), `booking` (proposed bookings awaiting the client's yes),
//! `webhooks` (HTTP), `receptionist` (the SMS receptionist: texts answered by the assistant and
//! texted back, ADR 0023), `grpc` (the `RepairbotService` RPCs and proto mapping),
//! `schema` (diesel tables). `main.rs` only calls [`omneuro_platform::app::main`] with [`build`].

pub mod assistant;
pub mod booking;
pub mod conversations;
pub mod grpc;
pub mod intent;
pub mod kb;
pub mod kbsync;
pub mod llm;
pub mod receptionist;
pub mod schema;
pub mod tools;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use omneuro_platform::App;
use omneuro_platform::app::DomainSpec;
use omneuro_platform::config::ServiceConfig;
use omneuro_platform::db::{Database, Migrations};
use omneuro_platform::secrets::{SecretStore, names};
use omneuro_proto::garage::v1::garage_service_client::GarageServiceClient;
use omneuro_proto::jobs::v1::jobs_service_client::JobsServiceClient;
use omneuro_proto::kb::v1::kb_service_client::KbServiceClient;
use omneuro_proto::repairbot::v1::repairbot_service_server::{
    RepairbotServiceServer, SERVICE_NAME,
};
use omneuro_proto::shop::v1::shop_service_client::ShopServiceClient;

pub const NAME: &str = "repairbot";

/// Built-in defaults (DESIGN.md ports); the config file and `OMNEURO__…` env vars override them.
pub const DEFAULTS: &str = "[http]\nport = 7105\n[grpc]\nport = 7205\n[database]\n";

static PG: EmbeddedMigrations = embed_migrations!("migrations/postgres");
static SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

pub fn migrations() -> Migrations {
    Migrations {
        postgres: &PG,
        sqlite: &SQLITE,
    }
}

/// Binds repairbot's ports and wires its gRPC service; run it with [`App::run_until_stopped`].
pub async fn build(cfg: ServiceConfig) -> anyhow::Result<App> {
    let db = Arc::new(Database::new(&cfg.database, migrations())?);
    let up = &cfg.upstreams;
    let channel = |url: &str| {
        omneuro_platform::grpc::channel(
            url,
            Duration::from_millis(up.connect_timeout_ms),
            Duration::from_millis(up.request_timeout_ms),
        )
    };
    // search_kb: kb's Search RPC, made as the caller ([upstreams] kb).
    // parts_for_symptom, past_jobs (staff only): kb's graph RPCs, as the staff member.
    let kb_client = Arc::new(kb::KbClient::new(KbServiceClient::new(channel(&up.kb)?)));
    let kb: Arc<dyn tools::KbSearch> = kb_client.clone();
    let graph: Arc<dyn tools::KbGraph> = kb_client;
    // create_booking: the client's vehicles from garage ([upstreams] garage), as the client.
    let tools = tools::Tools::new(
        JobsServiceClient::new(channel(&up.jobs)?),
        ShopServiceClient::new(channel(&up.shop)?),
        GarageServiceClient::new(channel(&up.garage)?),
        Some(kb),
        Some(graph),
    );
    let limits = assistant::Limits::new(cfg.llm.per_client_per_minute, cfg.llm.daily_token_budget);
    let assistant = Arc::new(
        assistant::Assistant::new(db.clone(), tools, limits).with_public_url(&cfg.links.public_url),
    );
    // The model: configured ([llm] base_url + model) and its key resolved. Without either the
    // offline assistant answers; nothing is ever sent to a model without a key. The key is
    // resolved in the background so a slow secret store never delays start-up.
    match llm::LlmSettings::from_config(&cfg.llm) {
        None => tracing::info!(
            "no model configured ([llm] base_url, model): the offline assistant answers"
        ),
        Some(settings) => {
            let secrets_cfg = cfg.secrets.clone();
            let assistant = assistant.clone();
            tokio::spawn(async move {
                let secrets = SecretStore::from_config(&secrets_cfg).await;
                match secrets.get(names::OPENAI_API_KEY).await {
                    Ok(key) => {
                        let model = settings.model.clone();
                        match llm::Llm::new(settings, key) {
                            Ok(client) => {
                                assistant.set_llm(client);
                                tracing::info!(llm.model = %model, "LLM enabled");
                            }
                            Err(e) => tracing::error!(error = %e, "LLM disabled: HTTP client"),
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "LLM disabled: the offline assistant answers")
                    }
                }
            });
        }
    }
    // Telnyx webhooks: checked with the account's public key; without it they are refused (503)
    // and Telnyx retries, so nothing is acknowledged unchecked.
    let secrets = SecretStore::from_config(&cfg.secrets).await;
    let public_key = match secrets.get(names::TELNYX_PUBLIC_KEY).await {
        Ok(k) => {
            let parsed = webhooks::parse_public_key(k.expose());
            if parsed.is_none() {
                tracing::error!(
                    "the Telnyx public key is not base64 of 32 bytes: SMS webhooks are refused"
                );
            }
            parsed
        }
        Err(e) => {
            tracing::warn!(error = %e, "no Telnyx public key: SMS webhooks are refused until it is set");
            None
        }
    };
    let telnyx = actix_web::web::Data::new(webhooks::Telnyx {
        public_key,
        garage: GarageServiceClient::new(channel(&up.garage)?),
        db: db.clone(),
    });
    let service = grpc::Repairbot::new(db.clone(), assistant.clone());
    let spec = DomainSpec {
        name: NAME,
        routes: tonic::service::Routes::new(RepairbotServiceServer::new(service)),
        grpc_services: vec![SERVICE_NAME],
        http_routes: Some(Arc::new(move |c: &mut actix_web::web::ServiceConfig| {
            webhooks::routes(c, telnyx.clone())
        })),
        seed_demo: None,
    };
    let mut app = App::domain(&cfg, db.clone(), spec).await?;
    // Conversations into kb (ADR 0020): rows wait in `kb_outbox` while kb is away.
    if cfg.worker.enabled {
        let kb_sync = omneuro_platform::kb_outbox::Worker {
            db: db.clone(),
            outbox: kbsync::OUTBOX,
            kb: KbServiceClient::new(channel(&cfg.upstreams.kb)?),
            worker: cfg.worker.clone(),
            service: NAME,
            metrics: Some(app.metrics()),
            renderer: kbsync::ConversationDocs { db: db.clone() },
        };
        app.spawn_worker("kb_sync", move |stop| kb_sync.run(stop));
        // The SMS receptionist (ADR 0023): texts stored by the webhook, answered and texted back.
        let receptionist = receptionist::Receptionist::new(
            db,
            assistant,
            GarageServiceClient::new(channel(&cfg.upstreams.garage)?),
            omneuro_platform::sms::Sms::from_config(&cfg.sms, &secrets).await,
            cfg.worker.clone(),
        );
        app.spawn_worker("sms", move |stop| receptionist.run(stop));
    } else {
        tracing::warn!(
            "worker.enabled = false: conversations for kb wait in kb_outbox, clients' texts in sms_texts"
        );
    }
    Ok(app)
}
