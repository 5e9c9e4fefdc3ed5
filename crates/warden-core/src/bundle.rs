//! Policy bundles: the AWS-shaped directory layout (docs/bundle-format.md) built into an immutable,
//! validated [`Bundle`] with a content revision. Pure: [`from_files`] takes (path, bytes) pairs and
//! collects every problem, [`revision_of`] digests them. Reading a directory is the runtime's job
//! (`warden::runtime::files`).
pub mod ext_authz;
pub mod fields;
pub mod load;
pub mod model;
pub mod resource;
pub mod sagemaker;
pub mod schema;

pub use self::load::{from_files, from_read, revision_of};
pub use self::model::{Bundle, Counts, Domain, PartnerApp, ResourcePolicy, Role, Tags, TestCase, User};

/// A bundle file: its path relative to the bundle root, and its bytes.
pub type BundleFile = (String, Vec<u8>);
