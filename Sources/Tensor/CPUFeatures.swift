import Foundation

/// Which vector kernels this CPU runs, decided once per process.
///
/// The kernels of `TensorAVX512` are compiled for skylake-avx512 and must only run where the CPU and
/// the operating system support AVX-512 F, BW, DQ and VL. Linux lists in /proc/cpuinfo only the
/// features the kernel enabled (it clears the AVX-512 flags when it does not save the 512-bit
/// registers), so those flags are the test. `LORASERVE_KERNELS=avx2` keeps the 256-bit kernels (A/B
/// benchmarks; a CPU whose 512-bit instructions are slower); `LORASERVE_KERNELS=avx512` keeps the engine and the
/// trainer off the AMX tiles (AMXTiles).
public enum CPUFeatures {
    public static let avx512: Bool = {
        if requested == "avx2" { return false }
        return hardwareAVX512
    }()

    /// Whether the AMX tile products (MatrixAMX) may run: the CPU has them and nothing asked for less. Linux must
    /// still grant the tile state (AMXTiles asks).
    public static let amx: Bool = avx512 && requested != "avx512" && hardwareAMX

    /// AMX tiles with bfloat16 products, and AVX-512 BF16 conversions for packing.
    public static let hardwareAMX = hardwareAVX512 && ["amx_tile", "amx_bf16", "avx512_bf16"].allSatisfy(flags.contains)

    private static let requested = ProcessInfo.processInfo.environment["LORASERVE_KERNELS"]?.lowercased()

    /// What the CPU offers, whatever the environment says (tests run both kernels where they can).
    public static let hardwareAVX512 = ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains)

    /// AVX2 with FMA: what the `haswell`-compiled modules need.
    public static let hardwareAVX2 = ["avx2", "fma"].allSatisfy(flags.contains)

    /// The kernels' name for logs and benchmark records.
    public static var kernelName: String { avx512 ? "avx512" : "avx2" }

    /// The first processor's feature flags in /proc/cpuinfo (empty where there is none).
    static let flags: Set<String> = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
        return Set(line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == ":" }).map(String.init))
    }()
}
