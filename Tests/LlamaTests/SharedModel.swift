import Foundation
import Llama
import SafeTensors
import TestSupport

/// The default model, loaded once for all tests of this target.
enum SharedModel {
    nonisolated(unsafe) static var loaded: LlamaModel?
    static let lock = NSLock()

    static func get() throws -> LlamaModel {
        lock.lock(); defer { lock.unlock() }
        if let loaded { return loaded }
        let m = try LlamaModel(path: TestPaths.defaultModel.path, threads: 2)
        loaded = m
        return m
    }
}

/// One reference sequence: prompt ids and the reference logits at every position.
struct ReferenceSequence {
    let ids: [Int32]
    let logits: [Float]   // [ids.count, vocab]
}

func referenceSequences(_ file: String) throws -> [ReferenceSequence] {
    let st = try SafeTensorsFile(path: TestPaths.referenceFile(file).path)
    var out: [ReferenceSequence] = []
    var i = 0
    while st.tensor(named: "input_ids.\(i)") != nil {
        out.append(ReferenceSequence(ids: try st.ints(named: "input_ids.\(i)").map { Int32($0) },
                                     logits: try st.floats(named: "logits.\(i)")))
        i += 1
    }
    return out
}

/// Runs `ids` as one prompt and returns logits at every position.
func allLogits(_ model: LlamaModel, _ ids: [Int32], workspace: Workspace = Workspace()) throws -> [Float] {
    let cache = model.makeCache()
    var batch = Batch()
    let rows = batch.add(ids, startingAt: 0, cache: cache, logits: true)
    batch.logitRows = Array(rows)
    var logits: [Float] = []
    try model.forward(batch, workspace: workspace, logits: &logits)
    return logits
}

func maxAbsDiff(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Float {
    precondition(a.count == b.count)
    var m: Float = 0
    for (x, y) in zip(a, b) { m = max(m, abs(x - y)) }
    return m
}
