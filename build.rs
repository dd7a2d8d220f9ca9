//! Regenerates `include/lease.h` from `src/ffi` with cbindgen, writing it only when it changed.
//!
//! The header's preamble is the documentation of `src/ffi/mod.rs`, so the Rust docs and the C
//! header say the same thing; its version macros come from `Cargo.toml`.

use std::env;
use std::fs;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");

    let crate_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let crate_dir = Path::new(&crate_dir);
    let ffi = crate_dir.join("src/ffi/mod.rs");

    let mut config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml is valid");
    config.header = Some(preamble(&fs::read_to_string(&ffi).expect("src/ffi/mod.rs is readable")));
    config.after_includes = Some(version_macros());
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(&ffi)
        .generate()
        .expect("cbindgen can read src/ffi");
    let mut header = Vec::new();
    bindings.write(&mut header);

    let path = crate_dir.join("include/lease.h");
    if fs::read(&path).ok().as_deref() != Some(header.as_slice()) {
        // A read-only source tree (a registry checkout) keeps its shipped header.
        if let Err(e) = fs::create_dir_all(crate_dir.join("include")).and_then(|()| fs::write(&path, &header))
        {
            println!("cargo:warning=cannot update {}: {e}", path.display());
        }
    }
}

/// The module documentation (`//!` lines) of `src/ffi/mod.rs` as a C comment.
fn preamble(source: &str) -> String {
    let mut comment = String::from("/*\n");
    for line in source.lines().map_while(|line| line.strip_prefix("//!")) {
        comment.push_str(" *");
        comment.push_str(line.trim_end());
        comment.push('\n');
    }
    comment.push_str(" */");
    comment
}

fn version_macros() -> String {
    let version = |part: &str| env::var(format!("CARGO_PKG_VERSION_{part}")).expect("cargo sets the version");
    format!(
        "\n/* The version of liblease this header describes; lease_version() gives the loaded one's. */\n\
         #define LEASE_VERSION_MAJOR {}\n\
         #define LEASE_VERSION_MINOR {}\n\
         #define LEASE_VERSION_PATCH {}\n\
         #define LEASE_VERSION_STRING \"{}\"",
        version("MAJOR"),
        version("MINOR"),
        version("PATCH"),
        env::var("CARGO_PKG_VERSION").expect("cargo sets the version"),
    )
}
