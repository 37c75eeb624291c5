//! SCRC's wire format: script messages in (`inbound`), result messages out (`outbound`).
//!
//! Parsing is total: any bytes become either an [`Inbound`](crate::ports::Inbound) value or an [`Unreadable`]
//! reason, never a panic. Results carry every SCRC field under its SCRC name, and additions are optional fields
//! only: the JSON is a compatibility contract with SCRC producers and consumers (docs/schemas).

mod inbound;
mod outbound;

pub use inbound::{Coordinates, MessageLimits, TENANT_HEADER, Unreadable, parse_message};
pub use outbound::{OutputBlock, ReportTooLarge, ResultMessage, TestResultMessage, encode_report};
