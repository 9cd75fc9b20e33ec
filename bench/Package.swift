// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "herald-bench",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "herald-loadgen", targets: ["herald-loadgen"]),
        .executable(name: "raw-broadcast-server", targets: ["raw-broadcast-server"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        .target(
            name: "BenchSupport",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio")
            ]
        ),
        .executableTarget(
            name: "herald-loadgen",
            dependencies: [
                "BenchSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "raw-broadcast-server",
            dependencies: [
                "BenchSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "BenchSupportTests",
            dependencies: ["BenchSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
