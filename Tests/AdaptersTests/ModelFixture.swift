import Foundation
import Llama
import SafeTensors
import TestSupport
import XCTest
@testable import Adapters

/// The default model, loaded once for every test that runs it, and helpers to run sequences through it.
enum ModelFixture {
    static let model: LlamaModel? = try? LlamaModel(path: TestPaths.defaultModel.path, threads: 2)

    /// The model, or a skip when it is not installed.
    static func require() throws -> LlamaModel {
        guard let model else { throw XCTSkip("model not installed at \(TestPaths.defaultModel.path)") }
        return model
    }

    static func adapterFolder(_ name: String) -> String { TestPaths.referenceFile("adapters/\(name)").path }

    /// The reference sequences of `logits_<name>.safetensors`: ids and `[len, vocab]` logits.
    static func referenceLogits(_ name: String) throws -> [(ids: [Int32], logits: [Float])] {
        let file = try SafeTensorsFile(path: TestPaths.referenceFile("logits_\(name).safetensors").path)
        var out: [(ids: [Int32], logits: [Float])] = []
        var index = 0
        while file.tensor(named: "input_ids.\(index)") != nil {
            let ids = try file.ints(named: "input_ids.\(index)").map { Int32($0) }
            out.append((ids, try file.floats(named: "logits.\(index)")))
            index += 1
        }
        return out
    }

    /// Logits at every position of `ids`, run alone as one prefill; `apply` attaches adapters to the rows.
    static func logits(_ model: LlamaModel, _ ids: [Int32], apply: (inout Batch, Range<Int>) -> Void = { _, _ in }) throws -> [Float] {
        let cache = model.makeCache(maxLength: ids.count + 8)
        var batch = Batch()
        let rows = batch.add(ids, startingAt: 0, cache: cache, logits: false)
        batch.logitRows = Array(rows)
        apply(&batch, rows)
        var out: [Float] = []
        try model.forward(batch, workspace: Workspace(), logits: &out)
        return out
    }

    /// Greedy decoding: prefill `prompt`, then `count` argmax steps one token at a time.
    static func greedy(_ model: LlamaModel, prompt: [Int32], count: Int,
                       apply: (inout Batch, Range<Int>) -> Void = { _, _ in }) throws -> [Int32] {
        let cache = model.makeCache(maxLength: prompt.count + count + 1)
        let workspace = Workspace()
        var logits: [Float] = []
        var batch = Batch()
        apply(&batch, batch.add(prompt, startingAt: 0, cache: cache, logits: true))
        try model.forward(batch, workspace: workspace, logits: &logits)
        var out: [Int32] = []
        while out.count < count {
            let next = Int32(argmax(logits))
            out.append(next)
            if out.count == count { break }
            batch = Batch()
            apply(&batch, batch.add([next], startingAt: prompt.count + out.count - 1, cache: cache, logits: true))
            try model.forward(batch, workspace: workspace, logits: &logits)
        }
        return out
    }
}

func argmax(_ x: [Float]) -> Int {
    var best = 0
    for i in x.indices where x[i] > x[best] { best = i }
    return best
}
