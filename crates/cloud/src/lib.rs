//! Talking to the clouds' own APIs, without their SDKs: the few calls CloudSentinel makes, each
//! signed and parsed here.
//!
//! - [`aws`]: Signature Version 4 ([`aws::sigv4`]), the standard credential chain (environment,
//!   web identity, shared files, container, instance metadata; an optional role to assume) and
//!   the S3 and SQS calls a CloudTrail collector needs.
//! - [`azure`]: Blob Storage listing and range reads, with the account's shared key, a SAS
//!   token or an Entra ID application's client credentials.
//! - [`gcp`]: Pub/Sub pull, acknowledge and ack-deadline extension, with a service account key
//!   (an RS256 JWT exchanged for a token), the metadata server, or nothing (an emulator); the
//!   token code is shared with [`gcp_iam`]: a service account key's state and a project's IAM
//!   policy, for containment.
//! - [`graph`]: Microsoft Graph with an Entra ID application's client credentials, for
//!   containment.
//!
//! Every call goes through one small HTTP client (`ureq`, rustls) with timeouts; errors name
//! the service, the operation and what AWS answered (its error code and message), so a denied
//! permission reads as the IAM action that was denied.

mod auth;
pub mod aws;
pub mod azure;
pub mod gcp;
pub mod gcp_iam;
pub mod graph;
mod xml;
