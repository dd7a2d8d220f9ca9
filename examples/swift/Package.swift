// swift-tools-version:6.0
//
// The liblease Swift sample, in the Swift 6 language mode: an app and its share extension sharing
// one database in an App Group container.
//
// - SampleShared: the code both targets link: where the shared database is (the App Group
//   container), its schema, and the work each process does under the lease "sync", with its
//   blocking database work on a queue of its own, off the main actor and Swift concurrency's pool.
// - lease-swift-sample: the same two processes on a desktop (macOS or Linux), the app starting the
//   extension as a second process, with a temporary directory standing in for the container.
//   `swift run lease-swift-sample` (with liblease found as the binding's Package.swift says).
// - iOS/: the app's and the extension's entry points, to add to an Xcode project (deployment
//   target iOS 16, for NavigationStack) whose two targets both have the App Group entitlement
//   (iOS/Sample.entitlements) and link SampleShared. The app suspends liblease in the background
//   (LeaseLifecycle), the extension when its request ends (LeaseExtensionLifecycle).

import PackageDescription

let package = Package(
    name: "LeaseSample",
    platforms: [.iOS(.v16), .macOS(.v12)],
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
    ],
    swiftLanguageModes: [.v6]
)
