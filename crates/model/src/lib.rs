//! The vnet resource model: Azure's virtual-network resources, the rules Azure applies to them
//! (with Azure's error codes), IP address management, the peering state machine, and effective
//! routes. Pure: no IO, clock or randomness inside — time and random numbers come in through
//! [`ctx::Ctx`], so every rule is testable in memory.

pub mod cidr;
pub mod ctx;
pub mod doc;
pub mod error;
pub mod fuzzing;
pub mod id;
pub mod limits;
pub mod links;
pub mod ops;
pub mod render;
pub mod routes;
pub mod schema;
pub mod schemas;
pub mod state;
pub mod testkit;

pub use ctx::{Config, Ctx};
pub use error::{ArmError, ArmResult};
pub use id::{Kind, ResourceId};
pub use state::{Change, State, Tx};
