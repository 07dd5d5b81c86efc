//! The gRPC contracts of Tryggdel, generated at build time from `proto/tryggdel/**.proto`.
//!
//! Invariant: this crate owns all generated code; services and clients depend on it and never
//! on each other. The encoded descriptor set is exported for gRPC reflection.
#![forbid(unsafe_code)]
#![allow(
    clippy::derive_partial_eq_without_eq,
    clippy::doc_lazy_continuation,
    clippy::large_enum_variant
)]

pub mod common {
    pub mod v1 {
        tonic::include_proto!("tryggdel.common.v1");
    }
}

pub mod disclosure {
    pub mod v1 {
        tonic::include_proto!("tryggdel.disclosure.v1");
    }
}

pub mod audit {
    pub mod v1 {
        tonic::include_proto!("tryggdel.audit.v1");
    }
}

pub mod notification {
    pub mod v1 {
        tonic::include_proto!("tryggdel.notification.v1");
    }
}

/// The encoded `FileDescriptorSet` of every contract, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tryggdel_descriptor.bin"));
