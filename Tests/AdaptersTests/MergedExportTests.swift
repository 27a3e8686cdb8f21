import Foundation
import GGUF
import Llama
import TestSupport
import XCTest
@testable import Adapters

/// `MergedModelExport` and `serve merge`: the written GGUF, loaded as a plain base model, behaves as base + adapter.
final class MergedExportTests: XCTestCase {
    var basePath: String { TestPaths.defaultModel.path }

    func exportModel(_ adapterName: String, type: MergedModelExport.TensorType) throws -> (String, LoRAAdapterFile, MergedModelExport.Summary) {
        let model = try ModelFixture.require()
        let adapter = try AdapterLoader.load(path: ModelFixture.adapterFolder(adapterName), name: adapterName,
                                             base: BaseModelShape(model.config))
        let out = try temporaryFolder().appendingPathComponent("\(adapterName)-\(type.rawValue).gguf").path
        var tensorsSeen = 0
        var wrote = 0
        let summary = try MergedModelExport.export(adapter: adapter, baseModel: basePath, to: out, type: type) { progress in
            switch progress {
            case .tensor(let done, _, _, _): XCTAssertEqual(done, tensorsSeen + 1); tensorsSeen = done
            case .writing(let bytes): wrote = bytes
            }
        }
        XCTAssertEqual(wrote, summary.bytes)
        XCTAssertEqual(tensorsSeen, summary.tensorCount)
        XCTAssertEqual(summary.mergedCount, adapter.modules.count)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: out)[.size] as? Int, summary.bytes)
        return (out, adapter, summary)
    }

    /// Max |logits − reference| over every position of every sequence of logits_<name>.
    func referenceDiff(modelAt path: String, reference name: String) throws -> Float {
        let merged = try LlamaModel(path: path, threads: 2)
        var worst: Float = 0
        for (ids, expected) in try ModelFixture.referenceLogits(name) {
            worst = max(worst, maxAbsDiff(try ModelFixture.logits(merged, ids), expected))
        }
        return worst
    }

    func testF32ExportGivesAdapterLogits() throws {
        for name in ["qv-r8", "attn-r4-rslora"] {
            let (path, adapter, _) = try exportModel(name, type: .f32)
            let diff = try referenceDiff(modelAt: path, reference: name)
            print("merged GGUF \(name) f32 as base model: max abs logit diff \(diff)")
            XCTAssertLessThan(diff, 1e-3, name)

            // Tensor by tensor: untouched ones byte-identical, merged ones equal to the naive merge.
            let base = try GGUFFile(path: basePath)
            let out = try GGUFFile(path: path)
            XCTAssertEqual(out.tensors.map(\.name), base.tensors.map(\.name))
            for info in base.tensors {
                let mine = try XCTUnwrap(out.tensor(named: info.name))
                XCTAssertEqual(mine.shape, info.shape)
                let parts = info.name.split(separator: ".")
                if parts.count == 4, let layer = Int(parts[1]), let target = LoRATarget(ggufName: String(parts[2])),
                   let module = adapter.module(layer: layer, target: target) {
                    XCTAssertEqual(mine.type, .f32, info.name)
                    var expected = try base.dequantize(info)
                    LoRAMerge.addDeltaNaive(to: &expected, out: info.shape[1], in: info.shape[0], module: module)
                    XCTAssertLessThan(maxAbsDiff(try out.dequantize(mine), expected), 1e-5, info.name)
                } else {
                    XCTAssertEqual(mine.type, info.type, info.name)
                    XCTAssertTrue(out.data(of: mine).elementsEqual(base.data(of: info)), info.name)
                }
            }
            // Every metadata key carried over unchanged, in order, plus the adapter's name.
            XCTAssertEqual(Array(out.metadataKeys.prefix(base.metadataKeys.count)), base.metadataKeys)
            for key in base.metadataKeys { XCTAssertEqual(out.metadata[key], base.metadata[key], key) }
            XCTAssertEqual(out.string("loraserve.merged_adapter"), name)
        }
    }

    func testF16ExportStoresRoundedMergedWeights() throws {
        let (path, adapter, _) = try exportModel("attn-r4-rslora", type: .f16)
        let base = try GGUFFile(path: basePath)
        let out = try GGUFFile(path: path)
        let name = "blk.7.attn_k.weight"
        let info = try XCTUnwrap(base.tensor(named: name))
        XCTAssertEqual(out.tensor(named: name)?.type, .f16)
        var expected = try base.dequantize(info)
        LoRAMerge.addDelta(to: &expected, out: info.shape[1], in: info.shape[0], module: try XCTUnwrap(adapter.module(layer: 7, target: .k)))
        XCTAssertEqual(try out.dequantize(try XCTUnwrap(out.tensor(named: name))), expected.map { Float(Float16($0)) })
        let diff = try referenceDiff(modelAt: path, reference: "attn-r4-rslora")
        print("merged GGUF attn-r4-rslora f16 as base model: max abs logit diff \(diff)")
        XCTAssertLessThan(diff, 5e-2)
    }

    func testExportRefusals() throws {
        let model = try ModelFixture.require()
        let adapter = try AdapterLoader.load(path: ModelFixture.adapterFolder("qv-r8"), name: "qv", base: BaseModelShape(model.config))
        XCTAssertThrowsError(try MergedModelExport.export(adapter: adapter, baseModel: basePath, to: basePath)) {
            XCTAssertTrue("\($0)".contains("output is the base model itself"), "\($0)")
        }
        let folder = try temporaryFolder()
        XCTAssertThrowsError(try MergedModelExport.export(adapter: adapter, baseModel: basePath, to: folder.path + "/no/dir/x.gguf")) {
            XCTAssertTrue("\($0)".contains("does not exist"), "\($0)")
        }
        XCTAssertThrowsError(try MergedModelExport.export(adapter: adapter, baseModel: TestPaths.referenceFile("adapters-gguf/qv-r8.gguf").path,
                                                          to: folder.path + "/x.gguf")) {
            XCTAssertTrue("\($0)".contains("is a LoRA adapter, not a base model"), "\($0)")
        }
        // A module for a layer the base model lacks.
        var wrong = adapter
        wrong.modules.append(LoRAModuleWeights(layer: 31, target: .q, rank: 1, alpha: 1, scale: 1,
                                               a: [Float](repeating: 0, count: 576), b: [Float](repeating: 0, count: 576)))
        XCTAssertThrowsError(try MergedModelExport.export(adapter: wrong, baseModel: basePath, to: folder.path + "/x.gguf")) {
            XCTAssertTrue("\($0)".contains("blk.31.attn_q.weight") && "\($0)".contains("has no tensor to merge into"), "\($0)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), [], "nothing left behind")
    }

    /// `serve merge` end to end, when the executable has been built.
    func testServeMergeCommand() throws {
        _ = try ModelFixture.require()
        let exe = TestPaths.packageRoot.appendingPathComponent(".build/release/serve")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: exe.path), "serve not built")
        let out = try temporaryFolder().appendingPathComponent("merged.gguf").path
        func run(_ arguments: [String]) throws -> (Int32, String) {
            let process = Process()
            process.executableURL = exe
            process.arguments = arguments
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, text)
        }
        let (status, log) = try run(["merge", "--adapter", TestPaths.referenceFile("adapters-gguf/qv-r8.gguf").path,
                                     "--output", out, "--model", basePath, "--type", "f32"])
        XCTAssertEqual(status, 0, log)
        XCTAssertTrue(log.contains("merging: 272/272 tensors (100%)"), log)
        XCTAssertTrue(log.contains("done: 272 tensors, 60 merged as f32"), log)
        let diff = try referenceDiff(modelAt: out, reference: "qv-r8")
        print("serve merge of qv-r8.gguf: max abs logit diff \(diff)")
        XCTAssertLessThan(diff, 1e-3)

        let (badType, typeLog) = try run(["merge", "--adapter", "x", "--output", out, "--type", "q4"])
        XCTAssertNotEqual(badType, 0)
        XCTAssertTrue(typeLog.contains("--type must be f32 or f16, not 'q4'"), typeLog)
        let (badAdapter, adapterLog) = try run(["merge", "--adapter", "/no/such/adapter", "--output", out, "--model", basePath])
        XCTAssertNotEqual(badAdapter, 0)
        XCTAssertTrue(adapterLog.contains("LoRA adapter '/no/such/adapter': no such file or folder"), adapterLog)
    }
}
