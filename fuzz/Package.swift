// swift-tools-version:6.1
import PackageDescription

// libFuzzer targets of herald's decoders: each is built with `-sanitize=fuzzer,address` by
// scripts/fuzz (libFuzzer provides `main`), and calls one decoder with the fuzzer's bytes.
let targets: [(name: String, dependencies: [Target.Dependency])] = [
    ("fuzz-engineio-payload", [.product(name: "EngineIO", package: "herald")]),
    ("fuzz-websocket", [.product(name: "EngineIO", package: "herald"), .product(name: "NIOEmbedded", package: "swift-nio")]),
    ("fuzz-socketio-packet", [.product(name: "SocketIO", package: "herald"), .product(name: "EngineIO", package: "herald")]),
    ("fuzz-json", [.product(name: "SocketIO", package: "herald")]),
    ("fuzz-envelope", [.product(name: "Herald", package: "herald"), .product(name: "SocketIO", package: "herald")]),
    ("fuzz-sqs-response", [.product(name: "SQS", package: "herald")]),
    ("fuzz-recovery-offset", [.product(name: "SocketIO", package: "herald")]),
]

let package = Package(
    name: "herald-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "herald", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [.target(name: "FuzzSupport")]
        + targets.map { target in
            .executableTarget(
                name: target.name, dependencies: target.dependencies + ["FuzzSupport", .product(name: "NIOCore", package: "swift-nio")],
                swiftSettings: [.swiftLanguageMode(.v6)])
        }
)
