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

/// What a staff member may do. [`Permission::allows`] is the role table of docs/ROLES.md in code:
/// each domain service checks the permission an RPC needs with [`require`], so a role is enforced
/// where the data lives, not just hidden in the portal's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// The job board, a job and its bench, today's appointments.
    ViewJobs,
    /// Moving a job along the workflow.
    MoveJobs,
    /// Bench work: diagnostics notes, labor and parts lines, photos.
    WorkBench,
    /// Sending a job's estimate to the client.
    SendEstimate,
    /// Opening a job for a walk-in.
    OpenWalkIn,
    /// Putting a tech on a job.
    AssignTech,
    /// Finding clients and their vehicles.
    ViewClients,
    /// Invoices for jobs: create, issue, void.
    Invoice,
    /// Stock adjustments with a reason.
    AdjustStock,
    /// Money back to a client.
    Refund,
    /// Products, prices, fitment, the Stripe catalog.
    EditCatalog,
    /// Booking rules, services and fees, tax rate, techs' availability.
    EditSettings,
    /// Inviting, changing and disabling staff; the audit log.
    ManageStaff,
    /// Reports.
    ViewReports,
    /// Knowledge-base documents: uploading and deleting them.
    EditKnowledgeBase,
}

impl Permission {
    pub const ALL: [Permission; 15] = [
        Permission::ViewJobs,
        Permission::MoveJobs,
        Permission::WorkBench,
        Permission::SendEstimate,
        Permission::OpenWalkIn,
        Permission::AssignTech,
        Permission::ViewClients,
        Permission::Invoice,
        Permission::AdjustStock,
        Permission::Refund,
        Permission::EditCatalog,
        Permission::EditSettings,
        Permission::ManageStaff,
        Permission::ViewReports,
        Permission::EditKnowledgeBase,
    ];

    /// The role table. The owner may do everything; a tech works the bench; the front desk deals
    /// with clients, walk-ins, invoices and stock arriving. Either may put a tech on a job.
    pub fn allows(self, role: StaffRole) -> bool {
        use Permission::*;
        match role {
            StaffRole::Owner => true,
            StaffRole::Tech => matches!(
                self,
                ViewJobs
                    | MoveJobs
                    | WorkBench
                    | SendEstimate
                    | OpenWalkIn
                    | AssignTech
                    | ViewClients
                    | EditKnowledgeBase
            ),
            StaffRole::FrontDesk => matches!(
                self,
                ViewJobs
                    | MoveJobs
                    | SendEstimate
                    | OpenWalkIn
                    | AssignTech
                    | ViewClients
                    | Invoice
                    | AdjustStock
            ),
        }
    }

    /// How the permission is written in docs/ROLES.md.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ViewJobs => "view jobs",
            Permission::MoveJobs => "move jobs",
            Permission::WorkBench => "work the bench",
            Permission::SendEstimate => "send estimates",
            Permission::OpenWalkIn => "open walk-ins",
            Permission::AssignTech => "assign techs",
            Permission::ViewClients => "view clients",
            Permission::Invoice => "invoice",
            Permission::AdjustStock => "adjust stock",
            Permission::Refund => "refund",
            Permission::EditCatalog => "edit the catalog",
            Permission::EditSettings => "edit settings",
            Permission::ManageStaff => "manage staff",
            Permission::ViewReports => "view reports",
            Permission::EditKnowledgeBase => "edit the knowledge base",
        }
    }
}

impl Actor {
    /// Whether this caller is staff whose role allows `p`.
    pub fn may(&self, p: Permission) -> bool {
        matches!(self, Actor::Staff { role, .. } if p.allows(*role))
    }
}

/// Refuses anyone who is not staff with a role that allows `p` (`PERMISSION_DENIED`, naming what
/// was refused).
pub fn require(actor: &Actor, p: Permission) -> Result<(), Status> {
    if actor.may(p) {
        Ok(())
    } else if actor.is_staff() {
        Err(Status::permission_denied(format!(
            "your role may not {}",
            p.as_str()
        )))
    } else {
        Err(Status::permission_denied("only shop staff may do this"))
    }
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
