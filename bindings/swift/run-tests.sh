#!/usr/bin/env bash
# Runs the Swift binding's tests (XCTest) against the liblease that cargo builds, where a Swift
# toolchain exists; elsewhere says clearly that they were skipped, and succeeds.
#
#   bindings/swift/run-tests.sh
#
# It builds liblease (cargo build), writes a pkg-config file that points at the repository's
# include/ and the cargo target directory, and runs `swift test` with it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if ! command -v swift >/dev/null 2>&1; then
  echo "Swift tests SKIPPED: no Swift toolchain on this machine"
  exit 0
fi

target=${CARGO_TARGET_DIR:-$root/target}
cargo build --manifest-path "$root/Cargo.toml" --lib
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)

pkgconfig="$target/swift-pkgconfig"
mkdir -p "$pkgconfig"
cat > "$pkgconfig/liblease.pc" <<PC
Name: liblease
Description: liblease as built by cargo, for the Swift tests
Version: $version
Libs: -L$target/debug -llease
Cflags: -I$root/include
PC
export PKG_CONFIG_PATH="$pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# The tests and their child process load liblease from the cargo build, under the name the
# library gives itself (build.rs), which cargo does not make: liblease.so.<major> on Linux (its
# soname), liblease.<major>.dylib on macOS (the leaf of its install name, @rpath/...). A link of
# that name goes beside the .pc file.
major=${version%%.*}
ln -sf "$target/debug/liblease.so" "$pkgconfig/liblease.so.$major"
ln -sf "$target/debug/liblease.dylib" "$pkgconfig/liblease.$major.dylib"
export LD_LIBRARY_PATH="$pkgconfig:$target/debug${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DYLD_LIBRARY_PATH="$pkgconfig:$target/debug${DYLD_LIBRARY_PATH:+:$DYLD_LIBRARY_PATH}"
# On macOS too: the system library through pkg-config, not the XCFramework.
export LIBLEASE_SYSTEM_LIBRARY=1

cd "$here"
swift build --build-tests
LEASE_TEST_CHILD="$(swift build --show-bin-path)/LeaseTestChild"
export LEASE_TEST_CHILD
swift test
