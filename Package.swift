// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "teal",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "teal", targets: ["teal"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // libgit2 from the system (Debian: libgit2-dev).
        .systemLibrary(
            name: "CLibgit2",
            pkgConfig: "libgit2",
            providers: [.apt(["libgit2-dev"])]
        ),
        // Reading commits, trees, blobs and notes; writing commits and notes.
        .target(name: "Git", dependencies: ["CLibgit2"]),
        // Commit signatures: SSHSIG and allowed_signers parsed and verified with swift-crypto, OpenPGP through gpgv.
        .target(name: "Signatures", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        // The desired-state model: manifests decoded and validated, pure.
        .target(name: "Manifest", dependencies: [.product(name: "Yams", package: "Yams")]),
        // The desired state of a commit, read through Git.
        .target(name: "Desired", dependencies: ["Git", "Manifest"]),
        // Desired × observed → ordered steps, pure.
        .target(name: "Planning", dependencies: ["Manifest"]),
        // teal's own SQLite state store: what runs, the journal, audit records.
        .target(name: "State", dependencies: [
            "Planning",
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        // Expand/contract migrations on the app database.
        .target(name: "Schema", dependencies: [
            "Manifest",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Expand/contract migrations on PostgreSQL: version schemas of views, triggers, batched backfill.
        .target(name: "PostgresSchema", dependencies: [
            "Manifest", "Schema",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Colors as OS processes, their working copies and health checks.
        .target(name: "Runtime", dependencies: [
            "Manifest", "Git",
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        // The HTTP router process and its admin channel.
        .target(name: "Traffic", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]),
        // One reconcile pass as ordered stages, over four seams (Source, SchemaBackend, TrafficDriver,
        // ColorRuntime); typed failures. No implementation of a seam lives here.
        .target(name: "Reconcile", dependencies: [
            "Manifest", "Planning", "State",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The seams' real implementations: local repository and fetched mirror, SQLite, teal's router, OS processes.
        .target(name: "Drivers", dependencies: [
            "Reconcile", "Git", "Signatures", "Desired", "Manifest", "Planning", "State", "Schema", "PostgresSchema", "Runtime", "Traffic",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The agent: built from one configuration; watch loop, color supervisor, admin endpoint, metrics, status.
        .target(name: "Agent", dependencies: [
            "Reconcile", "Drivers", "Signatures", "Manifest", "Planning", "State", "Runtime",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // The command line: parses arguments into configuration and calls the library.
        .target(name: "TealCLI", dependencies: [
            "CLibgit2", "Git", "Signatures", "Manifest", "Desired", "Planning", "State", "Reconcile", "Drivers", "Agent", "Schema", "PostgresSchema", "Runtime", "Traffic",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "teal", dependencies: ["TealCLI"]),

        // Helpers shared by the tests: scratch git repositories, running the built binary.
        .target(name: "TestSupport", dependencies: ["Runtime"], path: "Tests/Support"),
        .testTarget(name: "GitTests", dependencies: ["Git", "TestSupport"]),
        .testTarget(name: "SignatureTests", dependencies: ["Signatures", "Git", "Drivers", "Reconcile", "TestSupport",
                                                           .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "ManifestTests", dependencies: ["Manifest", "Desired", "Git", "TestSupport"]),
        .testTarget(name: "PlannerTests", dependencies: ["Planning", "Manifest"]),
        .testTarget(name: "StateTests", dependencies: ["State", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "PipelineTests", dependencies: ["Reconcile", "Planning", "Manifest", "State"]),
        .testTarget(name: "AgentTests", dependencies: ["Agent", "Reconcile", "Drivers", "Git", "Manifest", "Planning", "State", "Traffic", "PostgresSchema", "TestSupport",
                                                       .product(name: "GRDB", package: "GRDB.swift"),
                                                       .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "CLITests", dependencies: ["TealCLI", "Git", "TestSupport", "teal"]),
        .testTarget(name: "SchemaTests", dependencies: ["Schema", "Manifest", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "Reconcile", "Drivers", "Agent", "Manifest", "Planning", "State", "Traffic", "Git", "TestSupport"]),
        .testTarget(name: "TrafficTests", dependencies: ["Traffic"]),
        .testTarget(name: "PostgresSchemaTests", dependencies: ["PostgresSchema", "Schema", "Manifest", "TestSupport"]),

        // Benchmarks: `swift run -c release <name>` prints a table.
        .executableTarget(name: "SchemaBenchmark", dependencies: ["Schema", "Manifest", .product(name: "GRDB", package: "GRDB.swift"),
                                                            .product(name: "GRDBSQLite", package: "GRDB.swift")], path: "Benchmarks/SchemaBenchmark"),
        .executableTarget(name: "RouterBenchmark", dependencies: ["Traffic", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")], path: "Benchmarks/RouterBenchmark"),
        .executableTarget(name: "AgentBenchmark", dependencies: [], path: "Benchmarks/AgentBenchmark"),
        .executableTarget(name: "PostgresBenchmark", dependencies: ["PostgresSchema", "Schema", "Manifest", "TestSupport",
                                                             .product(name: "PostgresNIO", package: "postgres-nio"),
                                                             .product(name: "Logging", package: "swift-log")], path: "Benchmarks/PostgresBenchmark"),
    ]
)
