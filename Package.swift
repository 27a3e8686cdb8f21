// swift-tools-version:6.0
import PackageDescription

// Hot kernels are plain Swift over unsafe buffers with AVX2/FMA/F16C intrinsics; `haswell` is the
// oldest CPU with all three, so the same build runs on every x86-64 machine this project has run on
// (the Zen 1 VM of the first sessions, without AVX-512, and the Zen 4 one with it). Compiling for
// `znver4` instead gained nothing measurable (bench/README.md, "Zen 4 machine").
let kernelFlags: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]
// TensorAVX512 alone is compiled for skylake-avx512 (AVX-512 F/BW/DQ/VL, the
// set every AVX-512 CPU since 2017 has); Tensor calls it only after
// CPUFeatures found those in /proc/cpuinfo, so the same build still runs on AVX2-only machines.
let avx512Flags: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "skylake-avx512"])]
// MatrixAMX, the tile products (the trainer's, and the engine's quantized rows against a few tokens), is C: AMX
// instructions have no Swift spelling. Likewise only called after CPUFeatures found AMX-BF16 and AVX-512-BF16
// and Linux granted the tile state (AMXTiles.available).
let amxFlags: [CSetting] = [.unsafeFlags(["-O2", "-mamx-tile", "-mamx-bf16", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512bf16", "-mf16c", "-mfma"])]

let package = Package(
    name: "LoraServe",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "serve", targets: ["serve"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // System-library shims: a module map and one header each, nothing else.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CLibUV", path: "Sources/CLibUV"),
        .systemLibrary(name: "CHTTPParser", path: "Sources/CHTTPParser"),

        .target(name: "TensorAVX512", swiftSettings: avx512Flags),
        .target(name: "MatrixAMX", cSettings: amxFlags),
        .target(name: "Tensor", dependencies: ["CBLAS", "TensorAVX512", "MatrixAMX"], swiftSettings: kernelFlags),
        .target(name: "GGUF", dependencies: ["Tensor"], swiftSettings: kernelFlags),
        .target(name: "Jinja", dependencies: ["JSON"]),
        .target(name: "Tokenizer", dependencies: ["GGUF", "Jinja"]),
        .target(name: "Llama", dependencies: ["Tensor", "GGUF", "MatrixAMX"], swiftSettings: kernelFlags),
        .target(name: "JSON"),
        .target(name: "SafeTensors"),
        .target(name: "Adapters", dependencies: ["SafeTensors", "GGUF", "Llama", "Tensor"]),
        .target(name: "Engine", dependencies: ["Llama", "Tokenizer", "Tensor"]),
        .target(name: "HTTP", dependencies: ["CLibUV", "CHTTPParser"]),
        .target(name: "OpenAI", dependencies: ["Engine", "JSON"]),
        .target(
            name: "Bench",
            dependencies: ["Llama", "Tensor", "JSON", .product(name: "Histogram", package: "hdrhistogram-swift")]),
        .target(name: "Server", dependencies: ["HTTP", "OpenAI", "Engine", "Adapters", "JSON", "Tokenizer", "Llama"]),
        .target(name: "Trainer", dependencies: ["Tensor", "MatrixAMX", "GGUF", "Llama", "Tokenizer", "SafeTensors", "Adapters", "JSON", "HTTP"],
                swiftSettings: kernelFlags),
        .executableTarget(
            name: "serve",
            dependencies: [
                "Engine", "Llama", "Tokenizer", "GGUF", "Jinja", "Adapters", "HTTP", "OpenAI", "Bench", "Server", "JSON", "Trainer", "Tensor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        .testTarget(name: "TensorTests", dependencies: ["Tensor", "TensorAVX512", "GGUF"]),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF"]),
        .testTarget(name: "JinjaTests", dependencies: ["Jinja", "JSON", "TestSupport"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "GGUF", "TestSupport"]),
        .testTarget(name: "LlamaTests", dependencies: ["Llama", "GGUF", "Tensor", "SafeTensors", "TestSupport"]),
        .testTarget(name: "AdaptersTests", dependencies: ["Adapters", "SafeTensors", "GGUF", "Llama", "Tensor", "TestSupport"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Llama", "Tokenizer", "GGUF", "Adapters", "TestSupport"]),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP"]),
        .testTarget(name: "OpenAITests", dependencies: ["OpenAI", "JSON", "Engine"]),
        .testTarget(name: "FuzzTests", dependencies: ["GGUF", "SafeTensors", "Adapters", "OpenAI", "JSON", "HTTP"],
                    exclude: ["Corpus"]),
        .testTarget(name: "TrainerTests",
                    dependencies: ["Trainer", "Llama", "GGUF", "Adapters", "SafeTensors", "JSON", "Tensor", "TestSupport"]),
        .testTarget(name: "ServerTests", dependencies: ["Server", "HTTP", "JSON", "Adapters", "Trainer", "TestSupport"]),
        .testTarget(name: "BenchTests", dependencies: ["Bench", "JSON"]),
        .target(name: "TestSupport", dependencies: ["GGUF"], path: "Tests/TestSupport"),
    ]
)
