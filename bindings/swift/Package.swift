// swift-tools-version:6.0
//
// The Swift binding of liblease, in the Swift 6 language mode (complete concurrency checking).
//
// CLease is the C library seen through include/lease.h. The package finds it without any
// environment variable:
// - on Linux, as a system library target through pkg-config: `liblease.pc`, which `make install`
//   puts in $(PREFIX)/lib/pkgconfig beside liblease.so and liblease.a;
// - on Apple platforms, as a binary target: CLease.xcframework beside this file, holding
//   liblease.a for each platform with lease.h and a module map (see the README).
// Lease is the Swift API over it.
//
// One environment variable exists, for bindings/swift/run-tests.sh alone: LIBLEASE_SYSTEM_LIBRARY
// makes macOS use the system library target too, with the pkg-config file the script writes for
// the cargo build, so that the tests need no XCFramework.

import Foundation
import PackageDescription

#if os(Linux)
let useSystemLibrary = true
#else
let useSystemLibrary = ProcessInfo.processInfo.environment["LIBLEASE_SYSTEM_LIBRARY"] != nil
#endif

let cLease: Target = useSystemLibrary
    ? .systemLibrary(name: "CLease", path: "Sources/CLease", pkgConfig: "liblease")
    : .binaryTarget(name: "CLease", path: "CLease.xcframework")

let package = Package(
    name: "Lease",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Lease", targets: ["Lease"]),
    ],
    targets: [
        cLease,
        .target(name: "Lease", dependencies: ["CLease"]),
        // Another OS process for the tests, using the binding: they spawn it.
        .executableTarget(name: "LeaseTestChild", dependencies: ["Lease"], path: "Tests/LeaseTestChild"),
        .testTarget(name: "LeaseTests", dependencies: ["Lease"]),
    ],
    swiftLanguageModes: [.v6]
)
