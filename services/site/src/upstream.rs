//! gRPC clients of the domain services site reads from. Channels connect lazily with timeouts, so
//! site starts (and shows what it can) even when a service is down.

use std::time::Duration;

use omneuro_platform::config::UpstreamsConfig;
use omneuro_platform::grpc::{self, TracedChannel};
use omneuro_proto::billing::v1::billing_service_client::BillingServiceClient;
use omneuro_proto::garage::v1::garage_service_client::GarageServiceClient;
use omneuro_proto::jobs::v1::jobs_service_client::JobsServiceClient;
use omneuro_proto::kb::v1::kb_service_client::KbServiceClient;
use omneuro_proto::repairbot::v1::repairbot_service_client::RepairbotServiceClient;
use omneuro_proto::shop::v1::shop_service_client::ShopServiceClient;

/// The longest a reply from repairbot (model and tools included) may take.
const REPLY_LIMIT: Duration = Duration::from_secs(90);

#[derive(Clone)]
pub struct Upstreams {
    pub garage: GarageServiceClient<TracedChannel>,
    pub jobs: JobsServiceClient<TracedChannel>,
    pub shop: ShopServiceClient<TracedChannel>,
    pub billing: BillingServiceClient<TracedChannel>,
    /// With a longer per-call limit: a streamed reply may take the model a while.
    pub repairbot: RepairbotServiceClient<TracedChannel>,
    /// Help pages (client-visible knowledge-base documents); a large document is read whole.
    pub kb: KbServiceClient<TracedChannel>,
}

/// The largest `GetDocument` answer site reads (a document's text twice: body and sections).
pub const KB_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

impl Upstreams {
    pub fn connect(cfg: &UpstreamsConfig) -> anyhow::Result<Self> {
        let connect = Duration::from_millis(cfg.connect_timeout_ms);
        let request = Duration::from_millis(cfg.request_timeout_ms);
        let ch = |url: &str| grpc::channel(url, connect, request);
        Ok(Self {
            garage: GarageServiceClient::new(ch(&cfg.garage)?),
            jobs: JobsServiceClient::new(ch(&cfg.jobs)?),
            shop: ShopServiceClient::new(ch(&cfg.shop)?),
            billing: BillingServiceClient::new(ch(&cfg.billing)?),
            repairbot: RepairbotServiceClient::new(grpc::channel(
                &cfg.repairbot,
                connect,
                request.max(REPLY_LIMIT),
            )?),
            kb: KbServiceClient::new(ch(&cfg.kb)?).max_decoding_message_size(KB_MESSAGE_BYTES),
        })
    }
}
