//! Generated protobuf types and gRPC stubs, one module per proto package
//! (`omneuro.<svc>.v1` → `omneuro_proto::<svc>::v1`). Nothing else lives here:
//! this crate never depends on diesel or on any service (chrono only, for timestamps).

pub mod common {
    pub mod v1 {
        tonic::include_proto!("omneuro.common.v1");

        impl Money {
            /// US dollars, in cents (the shop's only currency today).
            pub fn usd(amount_cents: i64) -> Self {
                Self {
                    amount_cents,
                    currency: "USD".into(),
                }
            }
        }

        impl Timestamp {
            /// From a UTC time as the services store it (diesel `Timestamp`, no zone).
            pub fn from_utc(t: chrono::NaiveDateTime) -> Self {
                Self {
                    unix_micros: t.and_utc().timestamp_micros(),
                }
            }

            /// Back to UTC; `None` when out of range.
            pub fn to_utc(&self) -> Option<chrono::NaiveDateTime> {
                chrono::DateTime::from_timestamp_micros(self.unix_micros).map(|d| d.naive_utc())
            }
        }
    }
}

macro_rules! service_package {
    ($($name:ident => $pkg:literal),* $(,)?) => {
        $(
            pub mod $name {
                pub mod v1 {
                    tonic::include_proto!($pkg);
                }
            }
        )*
    };
}

service_package! {
    garage => "omneuro.garage.v1",
    jobs => "omneuro.jobs.v1",
    billing => "omneuro.billing.v1",
    shop => "omneuro.shop.v1",
    repairbot => "omneuro.repairbot.v1",
    kb => "omneuro.kb.v1",
}
