//! Compiles the .proto contracts with protox (pure Rust, no system `protoc`) and writes the
//! encoded descriptor set that gRPC reflection serves.

use std::path::PathBuf;

use prost::Message;

const PROTOS: &[&str] = &[
    "tryggdel/common/v1/common.proto",
    "tryggdel/disclosure/v1/disclosure.proto",
    "tryggdel/audit/v1/audit.proto",
    "tryggdel/audit/v1/review.proto",
    "tryggdel/audit/v1/subject_report.proto",
    "tryggdel/notification/v1/notification.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    for proto in PROTOS {
        println!(
            "cargo:rerun-if-changed={}",
            manifest_dir.join(proto).display()
        );
    }
    let file_descriptors = protox::compile(PROTOS, [&manifest_dir])?;
    std::fs::write(
        out_dir.join("tryggdel_descriptor.bin"),
        file_descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure().compile_fds(file_descriptors)?;
    Ok(())
}
