import Foundation

/// Which vector kernels this CPU runs, decided once per process.
///
/// The kernels of `TensorAVX512` are compiled for skylake-avx512 and must only run where the CPU and
/// the operating system support AVX-512 F, BW, DQ and VL. Linux lists in /proc/cpuinfo only the
/// features the kernel enabled (it clears the AVX-512 flags when it does not save the 512-bit
/// registers), so those flags are the test. `LORASERVE_KERNELS=avx2` keeps the 256-bit kernels (A/B
/// benchmarks; a CPU whose 512-bit instructions are slower).
public enum CPUFeatures {
    public static let avx512: Bool = {
        if ProcessInfo.processInfo.environment["LORASERVE_KERNELS"]?.lowercased() == "avx2" { return false }
        return hardwareAVX512
    }()

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
