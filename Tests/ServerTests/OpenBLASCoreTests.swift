import Foundation
import TestSupport
import XCTest

/// The built `serve` runs on OpenBLAS kernels that use the CPU's vectors: where OpenBLAS's own detection
/// falls back to generic kernels (Debian's 0.3.21 on newer Xeons), `serve` restarts itself with
/// OPENBLAS_CORETYPE set. OpenBLAS's own report (OPENBLAS_VERBOSE=2 prints "Core: NAME" as it loads) says
/// which kernels the last process ran.
final class OpenBLASCoreTests: XCTestCase {
    func testServeRunsOnVectorKernels() throws {
        guard let serve = TestPaths.releaseServe else { throw XCTSkip("build `serve` in release first") }
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = Set(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        try XCTSkipUnless(flags.contains("avx2") && flags.contains("fma"), "a CPU without AVX2 keeps OpenBLAS's choice")

        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_CORETYPE"] = nil
        env["OPENBLAS_VERBOSE"] = "2"
        let (status, text) = try runToEnd(serve, ["template", "--help"], environment: env)
        XCTAssertEqual(status, 0, text)
        let cores = text.split(separator: "\n").filter { $0.hasPrefix("Core: ") }.map { $0.dropFirst(6).lowercased() }
        let last = try XCTUnwrap(cores.last, "OpenBLAS printed no core: \(text)")
        let wide = ["skylakex", "cooperlake", "sapphirerapids"]
        let accepted = flags.contains("avx512f") && flags.contains("avx512bw") ? wide : wide + ["haswell", "zen"]
        XCTAssertTrue(accepted.contains(last), "serve ran on OpenBLAS's \"\(last)\" kernels: \(text)")
        XCTAssertLessThanOrEqual(cores.count, 2, "restarted more than once: \(text)")
    }
}
