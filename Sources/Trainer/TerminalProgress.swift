import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The terminal side of a session on stderr: a one-line progress bar redrawn in place on a TTY (a plain line every
/// few steps otherwise) with step, loss, tokens/s, elapsed time and ETA; then the summary.
public final class TerminalProgress: TrainingReporter {
    private let isTTY: Bool
    private var start = DispatchTime.now().uptimeNanoseconds
    private var firstStep = 0
    private var tokens = 0
    private var lastEval: Double?
    private var lastLineLength = 0
    private var lastPrinted = 0

    public init() { isTTY = isatty(STDERR_FILENO) == 1 }

    private func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }

    public func note(_ text: String) {
        clearLine()
        write(text + "\n")
    }

    public func started(totalSteps: Int, completedSteps: Int) {
        start = DispatchTime.now().uptimeNanoseconds
        firstStep = completedSteps
        if completedSteps > 0 { note("resuming after step \(completedSteps) of \(totalSteps)") }
    }

    public func step(_ r: StepRecord, totalSteps: Int) {
        tokens += r.tokens
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let done = r.step - firstStep
        let eta = done > 0 ? elapsed / Double(done) * Double(totalSteps - r.step) : 0
        let rate = elapsed > 0 ? Double(tokens) / elapsed : 0
        let width = 24
        let filled = totalSteps > 0 ? min(width, width * r.step / totalSteps) : 0
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        var line = "\(bar) step \(r.step)/\(totalSteps) loss \(String(format: "%.4f", r.loss))"
        if let e = lastEval { line += " eval \(String(format: "%.4f", e))" }
        line += " | \(String(format: "%.0f", rate)) tok/s | \(Self.clock(elapsed)) elapsed, ETA \(Self.clock(eta))"
        if isTTY {
            clearLine()
            write(line)
            lastLineLength = line.count
        } else if r.step == totalSteps || r.step - lastPrinted >= max(1, totalSteps / 20) {
            write(line + "\n")
            lastPrinted = r.step
        }
    }

    public func eval(_ r: EvalRecord) {
        lastEval = r.loss
        note("epoch \(r.epoch) (step \(r.step)): eval loss \(String(format: "%.4f", r.loss)) over \(r.supervisedTokens) tokens")
    }

    private func clearLine() {
        if isTTY && lastLineLength > 0 {
            write("\r" + String(repeating: " ", count: lastLineLength) + "\r")
            lastLineLength = 0
        }
    }

    /// The closing summary.
    public func summary(_ s: SessionSummary) {
        clearLine()
        var out = "\n"
        if let r = s.result {
            out += "trained \(r.steps) steps in \(Self.clock(s.seconds))"
            if let from = r.resumedFrom { out += " (resumed after step \(from))" }
            if r.stoppedEarly { out += "; stopped early, kept step \(r.keptStep) (best eval)" }
            out += "\n"
            out += String(format: "trainable parameters: %d (%.3f%% of %d)\n", s.trainableParameters,
                          100 * Double(s.trainableParameters) / Double(max(1, s.baseParameters)), s.baseParameters)
            out += TrainingSession.describe(s.stats, path: "") .replacingOccurrences(of: "data '': ", with: "data: ") + "\n"
            if let l = r.finalTrainLoss { out += String(format: "final train loss %.4f", l) }
            if let e = r.finalEvalLoss { out += String(format: ", final eval loss %.4f", e) }
            if let b = r.bestEvalLoss, b != r.finalEvalLoss { out += String(format: " (best %.4f)", b) }
            out += "\n"
            let measured = r.stepRecords.filter { $0.tokensPerSecond > 0 }
            if !measured.isEmpty {
                let mean = measured.reduce(0) { $0 + $1.tokensPerSecond } / Double(measured.count)
                out += String(format: "throughput %.0f tokens/s (mean over steps)\n", mean)
            }
        }
        if let p = s.peakResidentBytes { out += String(format: "peak memory %.0f MB\n", Double(p) / 1_048_576) }
        if let o = s.outputPath { out += "adapter written to \(o)\n" }
        if let r = s.registered { out += "registered \(r)\n" }
        write(out)
    }

    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--:--" }
        let t = Int(seconds.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%02d:%02d", t / 60, t % 60)
    }
}
