//! Links the kernel with its own linker script (physical load at 1 MiB, test registry section),
//! and builds the user programs (user/echos-user) first, since the kernel embeds their ELF files.
use std::process::Command;

/// Hard-float, so ring-3 code may use SSE/AVX (see DESIGN.md); linked without its C runtime.
const USER_TARGET: &str = "x86_64-unknown-linux-gnu";

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{dir}/linker.ld");
    println!("cargo:rerun-if-changed=linker.ld");

    let user = format!("{dir}/../user/echos-user");
    let target_dir = format!("{user}/target");
    for path in [
        "src",
        "Cargo.toml",
        "user.ld",
        "build.rs",
        ".cargo/config.toml",
    ] {
        println!("cargo:rerun-if-changed={user}/{path}");
    }
    println!("cargo:rerun-if-changed={dir}/../crates/echos-abi/src");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The kernel's own flags and target must not leak into the user build, which has its own.
    let status = Command::new(cargo)
        .current_dir(&user)
        .args(["build", "--release", "--target", USER_TARGET])
        .args(["--target-dir", &target_dir])
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .status()
        .expect("could not run cargo to build the user programs");
    assert!(status.success(), "building the user programs failed");
    // The demo's trained readout (xtask/src/demo_model.rs). A plain `cargo build` in kernel/
    // gets an empty blob, and the demo then reports that it has no model.
    println!("cargo:rerun-if-env-changed=ECHOS_DEMO_MODEL");
    let model = match std::env::var("ECHOS_DEMO_MODEL") {
        Ok(path) => path,
        Err(_) => {
            let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
            let path = format!("{out}/no-demo-model.bin");
            std::fs::write(&path, []).expect("writing the empty demo model");
            path
        }
    };
    println!("cargo:rerun-if-changed={model}");
    println!("cargo:rustc-env=ECHOS_DEMO_MODEL={model}");
    println!("cargo:rustc-env=ECHOS_USER_BIN={target_dir}/{USER_TARGET}/release");
}
