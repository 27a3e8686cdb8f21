import XCTest
import Llama
import TestSupport

/// The forward pass against logits computed by Hugging Face transformers (fp32) on the same GGUF.
final class ReferenceLogitsTests: XCTestCase {
    func testBaseLogitsMatchReferenceAtEveryPosition() throws {
        let model = try SharedModel.get()
        let vocab = model.config.vocabSize
        let sequences = try referenceSequences("logits_base.safetensors")
        XCTAssertGreaterThanOrEqual(sequences.count, 2)
        for (s, seq) in sequences.enumerated() {
            let logits = try allLogits(model, seq.ids)
            XCTAssertEqual(logits.count, seq.logits.count)
            let diff = maxAbsDiff(logits[...], seq.logits[...])
            print("logits_base sequence \(s) (\(seq.ids.count) tokens): max |diff| = \(diff)")
            XCTAssertLessThan(diff, 1e-3)
            // Token-by-token decode (the single-token kernels) must agree as well.
            let cache = model.makeCache()
            let ws = Workspace()
            var step: [Float] = []
            var worst: Float = 0
            for (p, t) in seq.ids.enumerated() {
                var b = Batch()
                b.add([t], startingAt: p, cache: cache, logits: true)
                try model.forward(b, workspace: ws, logits: &step)
                worst = max(worst, maxAbsDiff(step[...], seq.logits[p * vocab..<(p + 1) * vocab]))
            }
            print("logits_base sequence \(s) decoded token by token: max |diff| = \(worst)")
            XCTAssertLessThan(worst, 1e-3)
        }
    }

    /// A 160-token prompt in two prefill chunks (70 rows, then 90 rows at positions 70-159): attention splits
    /// each chunk into blocks of 64 rows that see keys only up to their own last row (two blocks each, one
    /// starting past a cached prefix). Every position's logits equal those of decoding the same tokens one at
    /// a time, which takes the one-row attention path (a dot product per key) and the one-token kernels.
    func testLongPromptInBlocksMatchesTokenByTokenDecode() throws {
        let model = try SharedModel.get()
        let vocab = model.config.vocabSize
        let seqs = try referenceSequences("logits_base.safetensors")
        var ids: [Int32] = []
        while ids.count < 160 { ids += seqs[0].ids + seqs[1].ids }
        ids = Array(ids.prefix(160))
        let ws = Workspace()

        let cache = model.makeCache()
        var chunked: [Float] = []
        var logits: [Float] = []
        for chunk in [0..<70, 70..<160] {
            var b = Batch()
            let rows = b.add(ids[chunk], startingAt: chunk.lowerBound, cache: cache, logits: true)
            b.logitRows = Array(rows)
            try model.forward(b, workspace: ws, logits: &logits)
            chunked += logits
        }
        XCTAssertEqual(chunked.count, 160 * vocab)

        let single = model.makeCache()
        var worst: Float = 0
        for (p, t) in ids.enumerated() {
            var b = Batch()
            b.add([t], startingAt: p, cache: single, logits: true)
            try model.forward(b, workspace: ws, logits: &logits)
            worst = max(worst, maxAbsDiff(chunked[p * vocab..<(p + 1) * vocab], logits[...]))
        }
        print("160-token prompt in two chunks vs token by token: max |diff| = \(worst)")
        // Different kernels on both sides (sgemm and blocked attention against one-row paths): the bound of
        // the batched test below.
        XCTAssertLessThan(worst, 5e-4)
    }

    /// Decode over a long cache takes `splitKeysDecode` (the keys of one or two streams split over the threads and
    /// combined): its logits must be what a prefill of the same tokens gives at those positions (sgemm attention).
    func testLongContextDecodeMatchesPrefill() throws {
        let model = try SharedModel.get()
        let vocab = model.config.vocabSize
        let seqs = try referenceSequences("logits_base.safetensors")
        var ids: [Int32] = []
        while ids.count < 620 { ids += seqs[0].ids + seqs[1].ids }
        ids = Array(ids.prefix(620))
        let decoded = 600..<620
        XCTAssertGreaterThanOrEqual(decoded.lowerBound, 2 * LlamaModel.splitKeysChunk, "the decode rows must be long enough to split")
        let ws = Workspace()
        var logits: [Float] = []

        var whole = Batch()
        let rows = whole.add(ids[...], startingAt: 0, cache: model.makeCache(), logits: false)
        whole.logitRows = Array(rows[decoded])
        try model.forward(whole, workspace: ws, logits: &logits)
        let prefilled = logits

        // Two streams with the same tokens decode side by side (two rows: still few enough units to split).
        let caches = [model.makeCache(), model.makeCache()]
        for cache in caches {
            var b = Batch()
            b.add(ids[..<decoded.lowerBound], startingAt: 0, cache: cache, logits: false)
            try model.forward(b, workspace: ws, logits: &logits)
        }
        var worst: Float = 0
        for p in decoded {
            var b = Batch()
            for cache in caches { b.add([ids[p]], startingAt: p, cache: cache, logits: true) }
            try model.forward(b, workspace: ws, logits: &logits)
            let i = p - decoded.lowerBound
            for stream in 0..<2 {
                worst = max(worst, maxAbsDiff(prefilled[i * vocab..<(i + 1) * vocab], logits[stream * vocab..<(stream + 1) * vocab]))
            }
        }
        print("620-token context, decode with split keys vs prefill: max |diff| = \(worst)")
        XCTAssertLessThan(worst, 5e-4)
    }

    /// Four sequences of different lengths in one batch (two prefill chunks, two decode tokens)
    /// give the same logits as each run alone.
    func testBatchedSequencesMatchEachRunAlone() throws {
        let model = try SharedModel.get()
        let vocab = model.config.vocabSize
        let seqs = try referenceSequences("logits_base.safetensors")
        let a = seqs[0].ids, b = seqs[1].ids
        let prompts: [[Int32]] = [a, b, Array(a.prefix(9)), Array(b.suffix(6))]
        let alone = try prompts.map { try allLogits(model, $0) }

        // Sequences 2 and 3 have all but their last token cached already; 0 and 1 arrive whole.
        let caches = prompts.map { _ in model.makeCache() }
        let ws = Workspace()
        var logits: [Float] = []
        for s in 2...3 {
            var pre = Batch()
            pre.add(prompts[s].dropLast(), startingAt: 0, cache: caches[s], logits: false)
            try model.forward(pre, workspace: ws, logits: &logits)
        }
        var batch = Batch()
        var rowsOf: [Range<Int>] = []
        rowsOf.append(batch.add(prompts[2].suffix(1), startingAt: prompts[2].count - 1, cache: caches[2], logits: true))
        rowsOf.append(batch.add(prompts[0], startingAt: 0, cache: caches[0], logits: true))
        rowsOf.append(batch.add(prompts[3].suffix(1), startingAt: prompts[3].count - 1, cache: caches[3], logits: true))
        rowsOf.append(batch.add(prompts[1], startingAt: 0, cache: caches[1], logits: true))
        batch.logitRows = Array(0..<batch.count)
        try model.forward(batch, workspace: ws, logits: &logits)

        let order = [2, 0, 3, 1]
        for (k, s) in order.enumerated() {
            let rows = rowsOf[k]
            let got = logits[rows.lowerBound * vocab..<rows.upperBound * vocab]
            let want = s >= 2 ? alone[s][(prompts[s].count - 1) * vocab..<prompts[s].count * vocab] : alone[s][...]
            let diff = maxAbsDiff(got, want)
            print("sequence \(s) batched vs alone: max |diff| = \(diff)")
            // Different batch shapes take different kernels (per-row quantized dots for ≤ 4 rows, tiled
            // sgemm above) and sum in different orders; f32 rounding on logits of magnitude ~20 gives ~1e-4.
            XCTAssertLessThan(diff, 5e-4)
        }
    }
}
