//! The IAM policy language: documents parsed once into a compiled form (patterns pre-compiled, actions
//! lower-cased, CIDRs and dates parsed), condition operators, policy variables, principals and ARNs.
//! Pure: no I/O, no async, no clock. Depends on serde_json, ipnet, chrono, base64 only.
pub mod arn;
pub mod condition;
pub mod context;
pub mod document;
pub mod error;
pub mod hint;
pub mod ident;
pub mod index;
pub mod json;
pub mod pattern;
pub mod principal;
pub mod template;

pub use self::condition::{Condition, Tri};
pub use self::context::{Context, CtxVal, MapContext, Value};
pub use self::document::{Effect, Policy, PolicyKind, ResourcePattern, Statement, StatementInfo, document_value};
pub use self::error::{Problem, ProblemList, Problems, Warning, WarningRule, Warnings};
pub use self::index::{Layer, StatementIndex};
pub use self::principal::{Naming, PrincipalFacts, PrincipalKind, PrincipalSpec};
