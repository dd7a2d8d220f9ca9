//! Regenerates `include/lease.h` from `src/ffi` with cbindgen, writing it only when it changed.
//!
//! The header's preamble is the documentation of `src/ffi/mod.rs`, so the Rust docs and the C
//! header say the same thing; its version macros come from `Cargo.toml`. It also names the shared
//! library for the dynamic linker (its soname, or its install name on Apple platforms).

use std::env;
use std::fs;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    name_shared_library();

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

/// The name under which programs linked with `liblease.so` look for it when they start.
///
/// It is the ABI's major version: `liblease.so.0` while the crate is 0.x (`make install` installs
/// `liblease.so.0.2.0` with the links `liblease.so.0` and `liblease.so`). 0 because there is no
/// stable ABI yet: the soname promises nothing beyond "a 0.x liblease", and a minor 0.x release
/// may still break the ABI (0.2 did), which the soname does not catch; programs and the wrappers
/// compare `lease_version()` with the header's `LEASE_VERSION_*`, and the CMake package accepts
/// only the same 0.x. From 1.0 on, the ABI policy allows breaking changes only in a major version,
/// and the soname follows it: `liblease.so.1` for every 1.x, `liblease.so.2` for 2.x.
///
/// - Android: `liblease.so`, unversioned. An APK carries only `lib*.so` files, without links, and
///   Android's loader finds a dependency by the name its user recorded: a library of the app linked
///   with `liblease.so.0` would look for a file that cannot be there. (Android also wants every
///   library to have a soname.) Not verified here.
/// - Apple platforms: the install name `@rpath/liblease.0.dylib`. The install prefix is not known
///   when cargo builds (`make install` does not build), so an absolute path is impossible, and an
///   app or framework bundle embeds its libraries and finds them through its rpath
///   (`@executable_path/../Frameworks`); a program linked against it must set that rpath. The file
///   cargo writes is still `liblease.dylib`: whoever installs it names it `liblease.0.dylib`. Not
///   verified here: this machine has no Apple linker.
/// - Elsewhere (Windows): nothing; a DLL has no such name.
fn name_shared_library() {
    let var = |name: &str| env::var(name).unwrap_or_default();
    let major = var("CARGO_PKG_VERSION_MAJOR");
    let arg = match (var("CARGO_CFG_TARGET_OS").as_str(), var("CARGO_CFG_TARGET_VENDOR").as_str()) {
        ("android", _) => "-Wl,-soname,liblease.so".to_string(),
        ("linux", _) => format!("-Wl,-soname,liblease.so.{major}"),
        (_, "apple") => format!("-Wl,-install_name,@rpath/liblease.{major}.dylib"),
        _ => return,
    };
    println!("cargo:rustc-cdylib-link-arg={arg}");
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
