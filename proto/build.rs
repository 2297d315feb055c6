//! Compiles the .proto contracts with the pure-Rust `protox` compiler (no system protoc needed)
//! and writes the encoded descriptor set next to the generated code for gRPC reflection.

use std::path::PathBuf;

use prost::Message;

const PROTOS: &[&str] = &[
    "vaxbook/auth/v1/auth.proto",
    "vaxbook/auth/v1/proxy.proto",
    "vaxbook/auth/v1/person_keys.proto",
    "vaxbook/auth/v1/staff.proto",
    "vaxbook/session/v1/session.proto",
    "vaxbook/session/v1/queue.proto",
    "vaxbook/scheduling/v1/scheduling.proto",
    "vaxbook/booking/v1/booking.proto",
    "vaxbook/booking/v1/staff.proto",
    "vaxbook/booking/v1/capacity.proto",
    "vaxbook/keys/v1/keys.proto",
    "vaxbook/audit/v1/audit.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["."])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("vaxbook_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
