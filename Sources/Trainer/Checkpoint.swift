import Foundation
import SafeTensors

/// The whole training state after an optimiser step, in one safetensors file written atomically: parameters,
/// AdamW moments, the best parameters so far (early stopping) and the counters. Restoring it and running on
/// reproduces the uninterrupted run bit for bit: data order is a function of (seed, epoch) and dropout masks of
/// (seed, step, example, position), so nothing else carries state.
struct Checkpoint {
    static let fileName = "checkpoint.safetensors"
    static let format = "lora-serve-train-checkpoint-1"

    var step: Int
    var params: [Float]
    var m: [Float]
    var v: [Float]
    var best: [Float]?
    var bestEval: Double?
    var badEvals: Int
    var logBytes: Int
    var fingerprint: String

    func write(to path: String) throws(TrainerError) {
        var tensors: [SafeTensorsWriter.Tensor] = [
            .init(name: "params", shape: [params.count], values: params),
            .init(name: "adam_m", shape: [m.count], values: m),
            .init(name: "adam_v", shape: [v.count], values: v),
        ]
        if let best { tensors.append(.init(name: "best_params", shape: [best.count], values: best)) }
        let metadata: [String: String] = [
            "format": Self.format,
            "step": String(step),
            "best_eval_bits": bestEval.map { String($0.bitPattern, radix: 16) } ?? "none",
            "bad_evals": String(badEvals),
            "log_bytes": String(logBytes),
            "fingerprint": fingerprint,
        ]
        do {
            try SafeTensorsWriter.write(tensors, metadata: metadata, to: path)
        } catch {
            throw TrainerError("cannot write checkpoint '\(path)': \(error.description)")
        }
    }

    static func read(from path: String) throws(TrainerError) -> Checkpoint {
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: path) } catch {
            throw TrainerError("cannot read checkpoint '\(path)': \(error.description)")
        }
        let meta = file.metadata
        guard meta["format"] == format else {
            throw TrainerError("'\(path)' is not a training checkpoint (format \(meta["format"] ?? "missing"))")
        }
        func int(_ key: String) throws(TrainerError) -> Int {
            guard let s = meta[key], let v = Int(s), v >= 0 else { throw TrainerError("checkpoint '\(path)': bad '\(key)'") }
            return v
        }
        func floats(_ name: String) throws(TrainerError) -> [Float]? {
            guard file.tensor(named: name) != nil else { return nil }
            do { return try file.floats(named: name) } catch { throw TrainerError("checkpoint '\(path)': \(error.description)") }
        }
        guard let params = try floats("params"), let m = try floats("adam_m"), let v = try floats("adam_v"),
              m.count == params.count, v.count == params.count else {
            throw TrainerError("checkpoint '\(path)' lacks params / adam_m / adam_v of one size")
        }
        var bestEval: Double?
        if let bits = meta["best_eval_bits"], bits != "none" {
            guard let b = UInt64(bits, radix: 16) else { throw TrainerError("checkpoint '\(path)': bad 'best_eval_bits'") }
            bestEval = Double(bitPattern: b)
        }
        return Checkpoint(step: try int("step"), params: params, m: m, v: v, best: try floats("best_params"),
                          bestEval: bestEval, badEvals: try int("bad_evals"), logBytes: try int("log_bytes"),
                          fingerprint: meta["fingerprint"] ?? "")
    }
}
