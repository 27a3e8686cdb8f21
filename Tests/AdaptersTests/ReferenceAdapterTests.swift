import Foundation
import GGUF
import SafeTensors
import TestSupport
import XCTest
@testable import Adapters

/// The reference adapters in ../shared/reference/adapters, checked against the README's table and the raw files.
final class ReferenceAdapterTests: XCTestCase {
    /// SmolLM2-135M's published config: 30 layers, hidden 576, intermediate 1536, 9 heads, 3 KV heads.
    static let smolLM2 = BaseModelShape(nLayers: 30, dim: 576, ffnDim: 1536, nHeads: 9, nKVHeads: 3, headDim: 64)

    struct Expected {
        var name: String
        var r: Int
        var alpha: Double
        var targets: Set<LoRATarget>
        var rsLoRA: Bool
    }

    /// The README's adapter table.
    static let table: [Expected] = [
        Expected(name: "qv-r8", r: 8, alpha: 16, targets: [.q, .v], rsLoRA: false),
        Expected(name: "all-r16", r: 16, alpha: 16, targets: Set(LoRATarget.allCases), rsLoRA: false),
        Expected(name: "attn-r4-rslora", r: 4, alpha: 8, targets: [.q, .k, .v, .o], rsLoRA: true),
        Expected(name: "train-init", r: 8, alpha: 16, targets: Set(LoRATarget.allCases), rsLoRA: false),
    ]

    static func folder(_ name: String) -> String { TestPaths.referenceFile("adapters/\(name)").path }

    func testBaseModelShapeFromGGUF() throws {
        let path = TestPaths.defaultModel.path
        try XCTSkipUnless(FileManager.default.fileExists(atPath: path), "model not installed")
        XCTAssertEqual(try BaseModelShape(gguf: GGUFFile(path: path)), Self.smolLM2)
    }

    func testEveryReferenceAdapterLoads() throws {
        for expected in Self.table {
            let adapter = try AdapterLoader.load(path: Self.folder(expected.name), name: expected.name, base: Self.smolLM2)
            XCTAssertEqual(adapter.name, expected.name)
            XCTAssertEqual(adapter.format, .peft)
            XCTAssertEqual(adapter.rank, expected.r, expected.name)
            XCTAssertEqual(adapter.alpha, expected.alpha, expected.name)
            XCTAssertEqual(adapter.useRSLoRA, expected.rsLoRA, expected.name)
            XCTAssertEqual(adapter.targets, expected.targets, expected.name)
            XCTAssertEqual(adapter.modules.count, 30 * expected.targets.count, expected.name)
            XCTAssertEqual(adapter.baseModelName, "HuggingFaceTB/SmolLM2-135M-Instruct")
            XCTAssertEqual(adapter.metadata["format"], "pt")
            let scale = expected.rsLoRA ? expected.alpha / Double(expected.r).squareRoot() : expected.alpha / Double(expected.r)
            for module in adapter.modules {
                XCTAssertEqual(module.rank, expected.r)
                XCTAssertEqual(module.scale, Float(scale))
            }
        }
        // The README spells this one out: 8 / sqrt(4) = 4.
        let rs = try AdapterLoader.load(path: Self.folder("attn-r4-rslora"), name: "rs", base: Self.smolLM2)
        XCTAssertEqual(rs.modules.first?.scale, 4)
    }

    func testWeightsEqualRawSafetensorsWithQKRowsPermuted() throws {
        for expected in Self.table where expected.name == "all-r16" || expected.name == "qv-r8" {
            let adapter = try AdapterLoader.load(path: Self.folder(expected.name), name: expected.name, base: Self.smolLM2)
            let raw = try SafeTensorsFile(path: Self.folder(expected.name) + "/adapter_model.safetensors")
            XCTAssertEqual(raw.tensors.count, 2 * adapter.modules.count)
            for module in adapter.modules {
                let group = [.q, .k, .v, .o].contains(module.target) ? "self_attn" : "mlp"
                let stem = "base_model.model.model.layers.\(module.layer).\(group).\(module.target.rawValue)"
                XCTAssertEqual(module.a, try raw.floats(named: stem + ".lora_A.weight"))
                let rawB = try raw.floats(named: stem + ".lora_B.weight")
                switch module.target {
                case .q: XCTAssertEqual(module.b, numpyStylePermute(rawB, heads: 9, columns: module.rank))
                case .k: XCTAssertEqual(module.b, numpyStylePermute(rawB, heads: 3, columns: module.rank))
                default: XCTAssertEqual(module.b, rawB)
                }
            }
        }
    }

    /// llama.cpp's converter produced qv-r8.gguf from the same PEFT adapter: an independent check of the permutation.
    func testGGUFAdapterEqualsPEFTAdapter() throws {
        let peft = try AdapterLoader.load(path: Self.folder("qv-r8"), name: "peft", base: Self.smolLM2)
        let gguf = try AdapterLoader.load(path: TestPaths.referenceFile("adapters-gguf/qv-r8.gguf").path, name: "gguf",
                                          base: Self.smolLM2)
        XCTAssertEqual(gguf.format, .gguf)
        XCTAssertEqual(gguf.rank, 8)
        XCTAssertEqual(gguf.alpha, 16)
        XCTAssertEqual(gguf.targets, [.q, .v])
        XCTAssertEqual(gguf.modules.count, peft.modules.count)
        for (g, p) in zip(gguf.modules, peft.modules) {
            XCTAssertEqual(g.layer, p.layer)
            XCTAssertEqual(g.target, p.target)
            XCTAssertEqual(g.rank, p.rank)
            XCTAssertEqual(g.scale, p.scale)
            XCTAssertEqual(g.a.count, p.a.count)
            XCTAssertEqual(g.b.count, p.b.count)
            XCTAssertLessThanOrEqual(maxAbsDiff(g.a, p.a), 1e-7, "A of \(g.target) layer \(g.layer)")
            XCTAssertLessThanOrEqual(maxAbsDiff(g.b, p.b), 1e-7, "B of \(g.target) layer \(g.layer)")
        }
        // Without the permutation the q rows would differ: guard against a vacuous comparison.
        let q0 = try XCTUnwrap(peft.module(layer: 0, target: .q))
        let unpermuted = RotaryPermutation.ggufToHF(q0.b, columns: 8, heads: 9)
        XCTAssertGreaterThan(maxAbsDiff(unpermuted, try XCTUnwrap(gguf.module(layer: 0, target: .q)).b), 1e-3)
    }

    func testBaseModelIsNotAnAdapter() throws {
        let path = TestPaths.defaultModel.path
        try XCTSkipUnless(FileManager.default.fileExists(atPath: path), "model not installed")
        XCTAssertThrowsError(try AdapterLoader.load(path: path, name: "x", base: Self.smolLM2)) { error in
            XCTAssertTrue("\(error)".contains("not 'adapter'"), "\(error)")
        }
    }

    // MARK: - Writer

    func testWriterRoundTripRestoresHFOrderBitExactly() throws {
        let original = try AdapterLoader.load(path: Self.folder("all-r16"), name: "all", base: Self.smolLM2)
        let out = try temporaryFolder().appendingPathComponent("all-r16-copy").path
        try PEFTWriter.write(original, to: out, base: Self.smolLM2, metadata: ["step": "0"])
        let reread = try AdapterLoader.load(path: out, name: "copy", base: Self.smolLM2)
        XCTAssertEqual(reread.modules, original.modules)
        XCTAssertEqual(reread.rank, 16)
        XCTAssertEqual(reread.alpha, 16)
        XCTAssertEqual(reread.targets, original.targets)
        XCTAssertEqual(reread.metadata, ["format": "pt", "step": "0"])
        XCTAssertEqual(reread.baseModelName, original.baseModelName)

        // Tensor bytes equal the reference file's, so B rows are back in Hugging Face order.
        let reference = try SafeTensorsFile(path: Self.folder("all-r16") + "/adapter_model.safetensors")
        let written = try SafeTensorsFile(path: out + "/adapter_model.safetensors")
        XCTAssertEqual(Set(written.tensors.map(\.name)), Set(reference.tensors.map(\.name)))
        for info in reference.tensors {
            let mine = try XCTUnwrap(written.tensor(named: info.name))
            XCTAssertEqual(mine.shape, info.shape)
            XCTAssertEqual(written.bytes(of: mine), reference.bytes(of: info), info.name)
        }

        // The config uses the conservative key set and parses as PEFT's would.
        let config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/adapter_config.json"))) as? [String: Any])
        XCTAssertEqual(config["peft_type"] as? String, "LORA")
        XCTAssertEqual(config["task_type"] as? String, "CAUSAL_LM")
        XCTAssertEqual(config["bias"] as? String, "none")
        XCTAssertEqual(config["r"] as? Int, 16)
        XCTAssertEqual(Set(config["target_modules"] as? [String] ?? []), Set(LoRATarget.allCases.map(\.rawValue)))
        XCTAssertTrue(config["modules_to_save"] is NSNull)
        XCTAssertEqual((config["rank_pattern"] as? [String: Any])?.count, 0)

        // An existing folder is kept unless overwrite is asked for; nothing else is left behind.
        XCTAssertThrowsError(try PEFTWriter.write(original, to: out, base: Self.smolLM2))
        try PEFTWriter.write(original, to: out, base: Self.smolLM2, overwrite: true)
        let parent = URL(fileURLWithPath: out).deletingLastPathComponent().path
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: parent), ["all-r16-copy"])
        XCTAssertEqual(try AdapterLoader.load(path: out, name: "copy", base: Self.smolLM2).modules, original.modules)
    }

    func testWriterRoundTripOfRSLoRAAndGGUF() throws {
        let rs = try AdapterLoader.load(path: Self.folder("attn-r4-rslora"), name: "rs", base: Self.smolLM2)
        let outRS = try temporaryFolder().appendingPathComponent("rs").path
        try PEFTWriter.write(rs, to: outRS, base: Self.smolLM2)
        let rereadRS = try AdapterLoader.load(path: outRS, name: "rs", base: Self.smolLM2)
        XCTAssertTrue(rereadRS.useRSLoRA)
        XCTAssertEqual(rereadRS.modules, rs.modules)

        // GGUF → PEFT gives back the original PEFT tensors.
        let gguf = try AdapterLoader.load(path: TestPaths.referenceFile("adapters-gguf/qv-r8.gguf").path, name: "g",
                                          base: Self.smolLM2)
        let out = try temporaryFolder().appendingPathComponent("qv").path
        try PEFTWriter.write(gguf, to: out, base: Self.smolLM2)
        let written = try SafeTensorsFile(path: out + "/adapter_model.safetensors")
        let reference = try SafeTensorsFile(path: Self.folder("qv-r8") + "/adapter_model.safetensors")
        XCTAssertEqual(written.tensors.count, reference.tensors.count)
        for info in reference.tensors {
            XCTAssertLessThanOrEqual(maxAbsDiff(try written.floats(named: info.name), try reference.floats(info)), 1e-7, info.name)
        }
    }
}

// MARK: - Helpers

/// numpy's `w.reshape(n_head, 2, d/2, cols).swapaxes(1, 2).reshape(w.shape)`, spelled out index by index.
func numpyStylePermute(_ w: [Float], heads: Int, columns: Int) -> [Float] {
    let rows = w.count / columns
    let half = rows / heads / 2
    var out = [Float](repeating: .nan, count: w.count)
    // out[h, i, j, c] (shape [heads, half, 2, cols]) = w[h, j, i, c] (shape [heads, 2, half, cols])
    for h in 0 ..< heads {
        for i in 0 ..< half {
            for j in 0 ..< 2 {
                for c in 0 ..< columns {
                    out[((h * half + i) * 2 + j) * columns + c] = w[((h * 2 + j) * half + i) * columns + c]
                }
            }
        }
    }
    return out
}

func maxAbsDiff(_ x: [Float], _ y: [Float]) -> Float {
    guard x.count == y.count else { return .infinity }
    return zip(x, y).reduce(0) { max($0, abs($1.0 - $1.1)) }
}
