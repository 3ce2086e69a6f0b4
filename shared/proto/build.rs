//! Compiles every `.proto` under the workspace's `proto/` folder.
//! A fresh machine has no `protoc`: unless `PROTOC` points at one, the vendored binary is used.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let services = ["garage", "jobs", "billing", "shop", "repairbot", "kb"];
    let mut files = vec![root.join("omneuro/common/v1/common.proto")];
    files.extend(
        services
            .iter()
            .map(|s| root.join(format!("omneuro/{s}/v1/{s}.proto"))),
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    println!("cargo:rerun-if-env-changed=PROTOC");

    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        // SAFETY: build scripts are single-threaded; nothing else reads the environment concurrently.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("PROTOC", protoc);
        }
    }
    tonic_prost_build::configure().compile_protos(&files, &[root])?;
    Ok(())
}
