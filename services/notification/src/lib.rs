//! The notification service: delivery of approved disclosures to the police region they belong to.
