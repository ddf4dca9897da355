//! Compiles the wire contract with protox, so building Adze needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/dispatcher.proto",
        "proto/events.proto",
        "proto/workflows.proto",
        "proto/v1/shared/trigger.proto",
        "proto/v1/workflows.proto",
    ];
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
