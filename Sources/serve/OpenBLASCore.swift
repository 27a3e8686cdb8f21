import Foundation
import Tensor
#if canImport(Glibc)
import Glibc
#endif

/// OpenBLAS picks its kernels when the library loads, before `main`; on a CPU it does not know it
/// falls back to generic ones (`BLAS.coreTypeReplacement`), three to six times slower for prompt
/// processing and training. Then `serve` starts itself again, once, with `OPENBLAS_CORETYPE` set.
/// A user's own `OPENBLAS_CORETYPE` is always left alone.
enum OpenBLASCore {
    static func restartIfGeneric() {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil else { return }
        let current = BLAS.coreName
        guard let core = BLAS.coreTypeReplacement(current: current, avx512: CPUFeatures.hardwareAVX512,
                                                  avx2: CPUFeatures.hardwareAVX2) else { return }
        FileHandle.standardError.write(Data(
            "openblas: \"\(current)\" is OpenBLAS's generic fallback on this CPU; restarting with OPENBLAS_CORETYPE=\(core)\n".utf8))
        setenv("OPENBLAS_CORETYPE", core, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Only reached when the restart failed: carry on with the generic kernels.
        FileHandle.standardError.write(Data("openblas: restart failed (\(String(cString: strerror(errno)))); continuing\n".utf8))
    }
}
