// swift-tools-version:5.9
//
// The Swift binding of liblease.
//
// CLease is the C library seen through include/lease.h:
// - on Linux (and wherever LIBLEASE_SYSTEM_LIBRARY is set), a system library target found through
//   pkg-config (`liblease.pc`, installed by `make install`, or written by run-tests.sh for the
//   cargo build);
// - on Apple platforms, a binary target: CLease.xcframework beside this file, holding liblease.a
//   for each platform with lease.h and a module map (see the README).
// Lease is the Swift API over it.

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
    ]
)
