//! Who is asking: the caller identity that travels with every gRPC call between services.
//!
//! site and portal authenticate people (client sessions, staff sessions) and then call domain
//! services *as* that person: they put an [`Actor`] into the `x-omneuro-actor` metadata of each
//! request. Domain services read it with [`actor`] and decide what the caller may see (a client
//! sees only their own records). Background workers call as [`Actor::System`].
//!
//! Trust boundary (ADR 0007): gRPC ports bind 127.0.0.1 and are never routed by nginx, so only
//! the fleet can set this header. A request without it is `UNAUTHENTICATED`, never "anyone".

use tonic::Status;
use tonic::metadata::MetadataValue;

pub const ACTOR_HEADER: &str = "x-omneuro-actor";

/// What a staff member is allowed to do is decided by their role (see docs/RULES.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffRole {
    Owner,
    Tech,
    FrontDesk,
}

impl StaffRole {
    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Owner => "owner",
            StaffRole::Tech => "tech",
            StaffRole::FrontDesk => "front_desk",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(StaffRole::Owner),
            "tech" => Some(StaffRole::Tech),
            "front_desk" => Some(StaffRole::FrontDesk),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in client (`cli_…`).
    Client(String),
    /// A staff member (`stf_…`) with a role.
    Staff { id: String, role: StaffRole },
    /// A service acting on its own (workers, site before sign-in); names the service.
    System(String),
}

impl Actor {
    /// `client:cli_…`, `staff:stf_…:tech`, `system:jobs`.
    pub fn encode(&self) -> String {
        match self {
            Actor::Client(id) => format!("client:{id}"),
            Actor::Staff { id, role } => format!("staff:{id}:{}", role.as_str()),
            Actor::System(name) => format!("system:{name}"),
        }
    }

    pub fn decode(s: &str) -> Option<Self> {
        let ok = |id: &str| {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        let mut parts = s.split(':');
        let actor = match (parts.next()?, parts.next()?, parts.next()) {
            ("client", id, None) if ok(id) => Actor::Client(id.to_owned()),
            ("system", name, None) if ok(name) => Actor::System(name.to_owned()),
            ("staff", id, Some(role)) if ok(id) => Actor::Staff {
                id: id.to_owned(),
                role: StaffRole::parse(role)?,
            },
            _ => return None,
        };
        parts.next().is_none().then_some(actor)
    }

    /// The client id when the caller is that client.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Actor::Client(id) => Some(id),
            _ => None,
        }
    }

    pub fn is_staff(&self) -> bool {
        matches!(self, Actor::Staff { .. })
    }

    /// May this caller see records of `owner` (a client id)? The client themself, staff, and
    /// system workers may; another client may not.
    pub fn may_see_client(&self, owner: &str) -> bool {
        match self {
            Actor::Client(id) => id == owner,
            Actor::Staff { .. } | Actor::System(_) => true,
        }
    }
}

/// Wraps a message in a request that carries `actor`.
pub fn request<T>(actor: &Actor, message: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    if let Ok(v) = MetadataValue::try_from(actor.encode()) {
        req.metadata_mut().insert(ACTOR_HEADER, v);
    }
    req
}

/// The caller of an incoming request; `UNAUTHENTICATED` when missing or malformed.
pub fn actor<T>(req: &tonic::Request<T>) -> Result<Actor, Status> {
    req.metadata()
        .get(ACTOR_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(Actor::decode)
        .ok_or_else(|| Status::unauthenticated("this call needs a caller identity"))
}

/// Refuses anyone but shop staff (`PERMISSION_DENIED`).
pub fn require_staff(actor: &Actor) -> Result<(), Status> {
    if actor.is_staff() {
        Ok(())
    } else {
        Err(Status::permission_denied("only shop staff may do this"))
    }
}

/// The caller, who must be a signed-in client.
pub fn client<T>(req: &tonic::Request<T>) -> Result<String, Status> {
    match actor(req)? {
        Actor::Client(id) => Ok(id),
        _ => Err(Status::permission_denied(
            "only a signed-in client may do this",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_round_trip_and_junk_is_refused() {
        for a in [
            Actor::Client("cli_abc".into()),
            Actor::Staff {
                id: "stf_1".into(),
                role: StaffRole::FrontDesk,
            },
            Actor::System("jobs".into()),
        ] {
            assert_eq!(Actor::decode(&a.encode()), Some(a));
        }
        for bad in [
            "",
            "client:",
            "client:a:b",
            "staff:stf_1",
            "staff:stf_1:god",
            "root:x",
            "client:a b",
            "system:jobs:extra",
        ] {
            assert_eq!(Actor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn requests_carry_the_actor_and_missing_ones_are_unauthenticated() {
        let req = request(&Actor::Client("cli_1".into()), ());
        assert_eq!(client(&req).unwrap(), "cli_1");
        let code = actor(&tonic::Request::new(())).unwrap_err().code();
        assert_eq!(code, tonic::Code::Unauthenticated);
        let sys = request(&Actor::System("jobs".into()), ());
        assert_eq!(
            client(&sys).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        assert!(!Actor::Client("cli_1".into()).may_see_client("cli_2"));
    }
}
