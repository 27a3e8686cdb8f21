import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Deterministic mutation fuzzing without libFuzzer: a seed corpus, a fixed-seed random generator and a
/// stack of classic mutations (bit flips, interesting values, insert/delete/duplicate, splice, truncation,
/// dictionary tokens). Each target is a closure that must return (its input parsed or rejected with a
/// thrown error); a trap kills the test process, and the input being run is then written to
/// `/tmp/loraserve-fuzz-crash-<target>.bin` by a signal handler so the failure can be replayed.
struct FuzzRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    /// SplitMix64.
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
}

enum Mutator {
    static let interesting8: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0x20, 0x0A, 0x0D, 0x22, 0x5C, 0xC0, 0xED, 0xF4, 0xF8]
    static let interesting64: [UInt64] = [0, 1, 2, 7, 8, 16, 31, 32, 33, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF,
                                          0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 1 << 32, 1 << 40, 1 << 62,
                                          UInt64(Int64.max), 1 << 63, .max - 1, .max]

    /// One to four stacked mutations of `input`; `corpus` supplies splice partners, `dictionary` tokens.
    static func mutate(_ input: [UInt8], corpus: [[UInt8]], dictionary: [[UInt8]], rng: inout FuzzRandom) -> [UInt8] {
        var b = input
        for _ in 0..<(1 + rng.below(4)) {
            let p = rng.below(b.count + 1)   // a position in 0...count
            switch rng.below(12) {
            case 0:  // bit flip
                if p < b.count { b[p] ^= 1 << UInt8(rng.below(8)) }
            case 1:  // interesting byte
                if p < b.count { b[p] = interesting8[rng.below(interesting8.count)] }
            case 2:  // random byte
                if p < b.count { b[p] = UInt8(truncatingIfNeeded: rng.next()) }
            case 3:  // interesting little-endian integer of 1, 2, 4 or 8 bytes
                let v = interesting64[rng.below(interesting64.count)]
                let width = [1, 2, 4, 8][rng.below(4)]
                for i in 0..<width where p + i < b.count { b[p + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
            case 4:  // insert random bytes
                let n = 1 + rng.below(8)
                b.insert(contentsOf: (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: p)
            case 5:  // delete a range
                if p < b.count { b.removeSubrange(p..<min(b.count, p + 1 + rng.below(16))) }
            case 6:  // truncate
                b.removeSubrange(p...)
            case 7:  // duplicate a range
                if p < b.count {
                    let chunk = Array(b[p..<min(b.count, p + 1 + rng.below(32))])
                    b.insert(contentsOf: chunk, at: rng.below(b.count + 1))
                }
            case 8, 9:  // dictionary token, inserted or overwriting
                guard !dictionary.isEmpty else { break }
                let token = dictionary[rng.below(dictionary.count)]
                if rng.below(2) == 0 || p + token.count > b.count {
                    b.insert(contentsOf: token, at: p)
                } else {
                    b.replaceSubrange(p..<(p + token.count), with: token)
                }
            case 10:  // splice: a prefix of this input with a suffix of another corpus entry
                let other = corpus[rng.below(corpus.count)]
                let q = rng.below(other.count + 1)
                b = Array(b[..<p]) + other[q...]
            default:  // swap two bytes
                let q = rng.below(b.count + 1)
                if p < b.count, q < b.count { b.swapAt(p, q) }
            }
            if b.count > 1 << 20 { b.removeSubrange((1 << 20)...) }
        }
        return b
    }
}

/// Figures of one run.
struct FuzzReport {
    var target: String
    var inputs = 0
    var accepted = 0
    var seconds = 0.0
    var slowest = 0.0
    /// Inputs that took longer than the hang limit (hex of their first bytes, and the time).
    var hangs: [(input: [UInt8], seconds: Double)] = []
    var inputsPerSecond: Double { seconds > 0 ? Double(inputs) / seconds : 0 }
}

/// The input currently being run, kept where a signal handler can write it out (see `CrashRecorder`).
///
/// `nonisolated(unsafe)`: written only by the one fuzzing thread, read only by the signal handler of that
/// same thread's trap, so there is no concurrent access.
nonisolated(unsafe) private var crashBuffer = UnsafeMutableRawPointer.allocate(byteCount: (1 << 20) + 16, alignment: 8)
nonisolated(unsafe) private var crashLength = 0
nonisolated(unsafe) private var crashPath = UnsafeMutablePointer<CChar>.allocate(capacity: 256)

enum CrashRecorder {
    private static let installed: Void = {
        for sig in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT, SIGFPE] {
            signal(sig) { sig in
                // Async-signal-safe only: open/write/close, then die by the same signal.
                let fd = open(crashPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                if fd >= 0 { _ = write(fd, crashBuffer, crashLength); close(fd) }
                let msg = "fuzz: trap; input saved to "
                _ = write(2, msg, msg.utf8.count)
                _ = write(2, crashPath, strlen(crashPath))
                _ = write(2, "\n", 1)
                signal(sig, SIG_DFL)
                raise(sig)
            }
        }
    }()

    static func begin(target: String) {
        _ = installed
        let path = "/tmp/loraserve-fuzz-crash-\(target).bin"
        _ = path.withCString { strncpy(crashPath, $0, 255) }
        crashPath[255] = 0
    }

    static func record(_ input: [UInt8]) {
        let n = min(input.count, 1 << 20)
        input.withUnsafeBytes { if let base = $0.baseAddress { crashBuffer.copyMemory(from: base, byteCount: n) } }
        crashLength = n
    }
}

enum Fuzz {
    /// Inputs per target: `LORASERVE_FUZZ_ITERATIONS`, default 2,000.
    static var iterations: Int {
        ProcessInfo.processInfo.environment["LORASERVE_FUZZ_ITERATIONS"].flatMap { Int($0) } ?? 2_000
    }
    static let hangLimit = 1.0

    /// The seed corpus of one target: every file of Tests/FuzzTests/Corpus/<name>/, sorted by name.
    static func corpus(_ name: String) -> [[UInt8]] {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Corpus/\(name)")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path))?.sorted() ?? []
        return files.compactMap { FileManager.default.contents(atPath: dir.appendingPathComponent($0).path).map { [UInt8]($0) } }
    }

    /// Runs the corpus itself, then `iterations` mutated inputs, through `body`. The seed is fixed per target.
    static func run(_ target: String, corpus: [[UInt8]], dictionary: [[UInt8]] = [], seed: UInt64,
                    iterations: Int = Fuzz.iterations, body: ([UInt8]) -> Bool) -> FuzzReport {
        precondition(!corpus.isEmpty, "empty corpus for \(target)")  // test setup, not input
        CrashRecorder.begin(target: target)
        var rng = FuzzRandom(seed: seed)
        var report = FuzzReport(target: target)
        // Mutated inputs that were accepted join the pool, so later mutations go deeper.
        var pool = corpus
        let start = DispatchTime.now().uptimeNanoseconds
        for i in 0..<(corpus.count + iterations) {
            let input = i < corpus.count ? corpus[i]
                : Mutator.mutate(pool[rng.below(pool.count)], corpus: pool, dictionary: dictionary, rng: &rng)
            CrashRecorder.record(input)
            let t0 = DispatchTime.now().uptimeNanoseconds
            let ok = body(input)
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            report.inputs += 1
            if ok {
                report.accepted += 1
                if i >= corpus.count, pool.count < 256, rng.below(8) == 0 { pool.append(input) }
            }
            report.slowest = max(report.slowest, dt)
            if dt > hangLimit { report.hangs.append((input, dt)) }
        }
        report.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let line = String(format: "fuzz %@: %d inputs (%d accepted) in %.2f s = %.0f inputs/s, slowest %.1f ms",
                          target, report.inputs, report.accepted, report.seconds, report.inputsPerSecond, report.slowest * 1000)
        print(line)
        if let out = ProcessInfo.processInfo.environment["LORASERVE_FUZZ_REPORT"] {
            if let h = FileHandle(forWritingAtPath: out) ?? { _ = FileManager.default.createFile(atPath: out, contents: nil); return FileHandle(forWritingAtPath: out) }() {
                h.seekToEndOfFile(); h.write(Data((line + "\n").utf8)); h.closeFile()
            }
        }
        return report
    }

    static func tokens(_ strings: [String]) -> [[UInt8]] { strings.map { Array($0.utf8) } }
}
