import Foundation
import GGUF
import Llama
@testable import Trainer

/// A tiny random llama model written with GGUFWriter and loaded back as any GGUF is.
enum TinyModel {
    static func config(layers: Int = 2, dim: Int = 32) -> LlamaConfiguration {
        LlamaConfiguration(layerCount: layers, dim: dim, ffnDim: 2 * dim, headCount: 4, kvHeadCount: 2, vocabSize: 96,
                           contextLength: 256, ropeBase: 10000, rmsEps: 1e-5)
    }

    /// Writes the model to a temporary file; `tied` leaves out output.weight; `type` is the projections' storage.
    static func write(_ c: LlamaConfiguration, seed: UInt64, tied: Bool = false, type: GGMLType = .f32) throws -> String {
        var rng = SplitMix64(seed: seed)
        func random(_ n: Int, _ scale: Float) -> [Float] { (0..<n).map { _ in (2 * rng.nextUnitFloat() - 1) * scale } }
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("llama.block_count", .uint32(UInt32(c.layerCount)))
        w.set("llama.embedding_length", .uint32(UInt32(c.dim)))
        w.set("llama.feed_forward_length", .uint32(UInt32(c.ffnDim)))
        w.set("llama.attention.head_count", .uint32(UInt32(c.headCount)))
        w.set("llama.attention.head_count_kv", .uint32(UInt32(c.kvHeadCount)))
        w.set("llama.vocab_size", .uint32(UInt32(c.vocabSize)))
        w.set("llama.context_length", .uint32(UInt32(c.contextLength)))
        w.set("llama.rope.freq_base", .float32(c.ropeBase))
        w.set("llama.attention.layer_norm_rms_epsilon", .float32(c.rmsEps))
        try w.addTensor(name: "token_embd.weight", shape: [c.dim, c.vocabSize], values: random(c.dim * c.vocabSize, 1))
        if !tied {
            try w.addTensor(name: "output.weight", shape: [c.dim, c.vocabSize], values: random(c.dim * c.vocabSize, 0.3))
        }
        try w.addTensor(name: "output_norm.weight", shape: [c.dim], values: random(c.dim, 0.5).map { $0 + 1 })
        for l in 0..<c.layerCount {
            try w.addTensor(name: "blk.\(l).attn_norm.weight", shape: [c.dim], values: random(c.dim, 0.5).map { $0 + 1 })
            try w.addTensor(name: "blk.\(l).ffn_norm.weight", shape: [c.dim], values: random(c.dim, 0.5).map { $0 + 1 })
            for p in Projection.allCases {
                let f = p.features(c)
                try w.addTensor(name: "blk.\(l).\(p.ggufName).weight", shape: [f.in, f.out],
                                values: random(f.in * f.out, 1.5 / Float(f.in).squareRoot()), as: type)
            }
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tiny-\(UUID().uuidString).gguf").path
        try w.write(to: path)
        return path
    }

    /// Random sequences over the vocabulary with a random supervised tail.
    static func sequences(_ lengths: [Int], vocab: Int, seed: UInt64) -> [TrainingSequence] {
        var rng = SplitMix64(seed: seed)
        return lengths.enumerated().map { (i, n) in
            let tokens = (0..<n).map { _ in Int32(rng.nextIndex(below: vocab)) }
            let start = 1 + rng.nextIndex(below: max(1, n - 1))
            return TrainingSequence(tokens: tokens, supervised: (0..<n).map { $0 >= start }, exampleID: i)
        }
    }
}
