// swift-tools-version:5.9
//
// The liblease Swift sample: an app and its share extension sharing one database in an App Group
// container.
//
// - SampleShared: the code both targets link: where the shared database is (the App Group
//   container), its schema, and the work each process does under the lease "sync".
// - lease-swift-sample: the same two processes on a desktop (macOS or Linux), the app starting the
//   extension as a second process, with a temporary directory standing in for the container.
//   `swift run lease-swift-sample` (with liblease found as bindings/swift/run-tests.sh finds it).
// - iOS/: the app's and the extension's entry points, to add to an Xcode project whose two targets
//   both have the App Group entitlement (iOS/Sample.entitlements) and link SampleShared.

import PackageDescription

let package = Package(
    name: "LeaseSample",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "SampleShared", targets: ["SampleShared"]),
    ],
    dependencies: [
        // A path dependency is named by its directory: "swift".
        .package(path: "../../bindings/swift"),
    ],
    targets: [
        .target(name: "SampleShared", dependencies: [.product(name: "Lease", package: "swift")]),
        .executableTarget(name: "lease-swift-sample", dependencies: ["SampleShared"]),
    ]
)
