import Foundation
import Llama
import SafeTensors
import Tensor
import TestSupport
import XCTest
import Tensor
@testable import Adapters

/// The registry against the real base model and copies of the reference adapters in temporary roots.
final class AdapterRegistryTests: XCTestCase {
    /// A fresh root holding copies of the named reference adapters (and the GGUF one when asked).
    func makeRoot(_ names: [String], gguf: Bool = false) throws -> URL {
        let root = try temporaryFolder().appendingPathComponent("root")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        for name in names {
            try FileManager.default.copyItem(atPath: ModelFixture.adapterFolder(name), toPath: root.appendingPathComponent(name).path)
        }
        if gguf {
            try FileManager.default.copyItem(atPath: TestPaths.referenceFile("adapters-gguf/qv-r8.gguf").path,
                                             toPath: root.appendingPathComponent("qv-r8.gguf").path)
        }
        // Copies of read-only folders are read-only; let the teardown delete them.
        let items = FileManager.default.enumerator(atPath: root.path)?.allObjects as? [String] ?? []
        for item in items { chmod(root.appendingPathComponent(item).path, 0o755) }
        return root
    }

    /// Bytes that `qv-r8` holds resident, by hand: 30 layers × (q: A 8×576 + B 576×8, v: A 8×576 + B 192×8) × 4.
    static let qvBytes = 30 * (8 * 576 + 576 * 8 + 8 * 576 + 192 * 8) * 4
    /// attn-r4-rslora: q, k, v, o at rank 4.
    static let attnBytes = 30 * 4 * ((576 + 576) + (576 + 192) + (576 + 192) + (576 + 576)) * 4

    func fileBytes(_ folder: String) throws -> Int {
        try ["adapter_config.json", "adapter_model.safetensors"].reduce(0) {
            $0 + (try FileManager.default.attributesOfItem(atPath: folder + "/" + $1)[.size] as? Int ?? 0)
        }
    }

    // MARK: - Register, lookup, list, remove

    func testRegisterLookupListRemove() throws {
        let model = try ModelFixture.require()
        let root = try makeRoot(["qv-r8", "attn-r4-rslora"], gguf: true)
        let registry = try AdapterRegistry(model: model, roots: [root.path])
        let qv = try registry.register(name: "qv", path: root.path + "/qv-r8")
        try registry.register(name: "rs", path: "attn-r4-rslora", merged: true)   // relative to the root
        try registry.register(name: "qv-gguf", path: "qv-r8.gguf")

        XCTAssertEqual(registry.list().map(\.name), ["qv", "qv-gguf", "rs"])
        XCTAssertEqual(qv.path, try XCTUnwrap(realpathString(root.path + "/qv-r8")))
        XCTAssertEqual(qv.format, .peft)
        XCTAssertEqual(qv.rank, 8)
        XCTAssertEqual(qv.alpha, 16)
        XCTAssertEqual(qv.scale, 2)
        XCTAssertEqual(qv.targets, ["q_proj", "v_proj"])
        XCTAssertEqual(qv.fileBytes, try fileBytes(root.path + "/qv-r8"))
        XCTAssertEqual(qv.sizeBytes, Self.qvBytes)
        XCTAssertTrue(qv.resident)
        XCTAssertFalse(qv.merged)
        XCTAssertEqual(qv.requestsServed, 0)

        let rs = try XCTUnwrap(registry.info("rs"))
        XCTAssertTrue(rs.merged)
        XCTAssertEqual(rs.scale, 4)   // 8 / sqrt(4)
        XCTAssertEqual(rs.targets, ["q_proj", "k_proj", "v_proj", "o_proj"])
        // Dense f32 copies of the four attention projections of 30 layers, and on AMX machines their tile layout
        // beside them (bfloat16 hi and lo: as many bytes again).
        let dense = 30 * (576 * 576 + 192 * 576 + 192 * 576 + 576 * 576) * 4
        XCTAssertEqual(rs.sizeBytes, AMXTiles.available ? 2 * dense : dense)

        let gguf = try XCTUnwrap(registry.info("qv-gguf"))
        XCTAssertEqual(gguf.format, .gguf)
        XCTAssertEqual(gguf.scale, 2)
        XCTAssertEqual(gguf.fileBytes, 1_851_488)
        XCTAssertEqual(registry.residentBytes, qv.sizeBytes + rs.sizeBytes + gguf.sizeBytes)

        // Handles give the adapters' reference logits.
        let reference = try ModelFixture.referenceLogits("qv-r8")[1]
        for name in ["qv", "qv-gguf"] {
            let handle = try registry.lookup(name)
            XCTAssertFalse(handle.isMerged)
            let logits = try ModelFixture.logits(model, reference.ids) { handle.apply(to: &$0, rows: $1) }
            XCTAssertLessThan(maxAbsDiff(logits, reference.logits), 1e-3, name)
            handle.release()
        }
        let rsHandle = try registry.lookup("rs")
        XCTAssertTrue(rsHandle.isMerged)
        let rsReference = try ModelFixture.referenceLogits("attn-r4-rslora")[1]
        XCTAssertLessThan(maxAbsDiff(try ModelFixture.logits(model, rsReference.ids) { rsHandle.apply(to: &$0, rows: $1) },
                                     rsReference.logits), 1e-3)
        XCTAssertEqual(registry.info("rs")?.activeRequests, 1)
        rsHandle.release()
        rsHandle.release()   // idempotent
        XCTAssertEqual(registry.info("rs")?.activeRequests, 0)
        XCTAssertEqual(registry.info("rs")?.requestsServed, 1)
        XCTAssertEqual(registry.info("qv")?.requestsServed, 1)

        // Removal while a request holds the adapter: new lookups fail at once, the holder keeps working.
        var held: AdapterHandle? = try registry.lookup("qv")
        weak var weights: LoRAAdapter?
        if case .unmerged(let lora) = try XCTUnwrap(held).adapter { weights = lora }
        XCTAssertNotNil(weights)
        try registry.remove(name: "qv")
        XCTAssertThrowsError(try registry.lookup("qv")) { error in
            XCTAssertTrue((error as? AdapterRegistryError)?.isNotFound ?? false, "\(error)")
            XCTAssertEqual("\(error)", "adapter 'qv' is not registered")
        }
        XCTAssertEqual(registry.list().map(\.name), ["qv-gguf", "rs"])
        let stillWorks = try ModelFixture.logits(model, reference.ids) { held!.apply(to: &$0, rows: $1) }
        XCTAssertLessThan(maxAbsDiff(stillWorks, reference.logits), 1e-3)
        XCTAssertNotNil(weights, "weights freed while a request holds them")
        held = nil   // dropping the handle releases it
        XCTAssertNil(weights, "weights outlive the last handle of a removed adapter")
        XCTAssertEqual(registry.residentBytes, rs.sizeBytes + gguf.sizeBytes)

        XCTAssertThrowsError(try registry.remove(name: "qv")) { XCTAssertTrue("\($0)".contains("'qv' is not registered")) }
        // The name is free again.
        try registry.register(name: "qv", path: "qv-r8")
        XCTAssertEqual(registry.info("qv")?.requestsServed, 0)
    }

    func testNamesAreCheckedAndUnique() throws {
        let model = try ModelFixture.require()
        let root = try makeRoot(["qv-r8"])
        let registry = try AdapterRegistry(model: model, roots: [root.path])
        try registry.register(name: "a", path: "qv-r8")
        XCTAssertThrowsError(try registry.register(name: "a", path: "qv-r8")) {
            XCTAssertEqual("\($0)", "adapter 'a' is already registered (remove it first to replace it)")
        }
        for (name, reason) in [("", "empty"), (".hidden", "starts with '.'"), ("a b", "character ' '"),
                               ("x/y", "character '/'"), (String(repeating: "n", count: 129), "longer than 128")] {
            XCTAssertThrowsError(try registry.register(name: name, path: "qv-r8")) {
                XCTAssertTrue("\($0)".contains("invalid adapter name") && "\($0)".contains(reason), "\($0)")
            }
        }
        XCTAssertEqual(registry.list().map(\.name), ["a"])
    }

    // MARK: - Path confinement

    func testPathsAreConfinedToRoots() throws {
        let model = try ModelFixture.require()
        let root = try makeRoot(["qv-r8"])
        let outside = root.deletingLastPathComponent().appendingPathComponent("outside")
        try FileManager.default.copyItem(atPath: ModelFixture.adapterFolder("attn-r4-rslora"), toPath: outside.path)
        chmod(outside.path, 0o755)
        // Links inside the root: one escaping it, one staying inside.
        try FileManager.default.createSymbolicLink(atPath: root.path + "/escape", withDestinationPath: outside.path)
        try FileManager.default.createSymbolicLink(atPath: root.path + "/alias", withDestinationPath: root.path + "/qv-r8")
        let registry = try AdapterRegistry(model: model, roots: [root.path])

        func assertOutside(_ path: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try registry.register(name: "x", path: path), file: file, line: line) { error in
                guard case .outsideRoots = error as? AdapterRegistryError else {
                    return XCTFail("\(error)", file: file, line: line)
                }
                XCTAssertTrue("\(error)".contains("is outside the adapter roots"), "\(error)", file: file, line: line)
                XCTAssertTrue("\(error)".contains(path), "\(error)", file: file, line: line)
            }
        }
        assertOutside(outside.path)
        assertOutside("../outside")
        assertOutside(root.path + "/../outside")
        assertOutside(root.path + "/qv-r8/../../outside")
        assertOutside("escape")
        assertOutside(root.path + "/escape")
        assertOutside("/etc/passwd")
        assertOutside("/no/such/place")        // missing and outside: reported as outside
        assertOutside("../../../../../../etc")
        XCTAssertThrowsError(try registry.register(name: "x", path: "missing")) {
            XCTAssertEqual("\($0)", "adapter path 'missing': no such file or folder")
        }
        XCTAssertTrue(registry.list().isEmpty)

        // Inside, through `..` or a link that stays inside: accepted, stored canonically.
        let viaDots = try registry.register(name: "dots", path: root.path + "/qv-r8/../qv-r8")
        let viaLink = try registry.register(name: "link", path: "alias")
        XCTAssertEqual(viaDots.path, viaLink.path)
        XCTAssertEqual(viaLink.path, realpathString(root.path + "/qv-r8"))

        XCTAssertThrowsError(try AdapterRegistry(model: model, roots: [root.path + "/nope"])) {
            XCTAssertTrue("\($0)".contains("does not exist"), "\($0)")
        }
        XCTAssertThrowsError(try AdapterRegistry(model: model, roots: [root.path + "/qv-r8/adapter_config.json"])) {
            XCTAssertTrue("\($0)".contains("is not a folder"), "\($0)")
        }
        // No roots: nothing may be loaded.
        let closed = try AdapterRegistry(model: model, roots: [])
        XCTAssertThrowsError(try closed.register(name: "x", path: root.path + "/qv-r8")) {
            XCTAssertTrue("\($0)".contains("outside the adapter roots []"), "\($0)")
        }
    }

    func testReloadChecksConfinementAgain() throws {
        let model = try ModelFixture.require()
        let root = try makeRoot(["qv-r8", "attn-r4-rslora"])
        let outside = root.deletingLastPathComponent().appendingPathComponent("outside")
        try FileManager.default.copyItem(atPath: ModelFixture.adapterFolder("qv-r8"), toPath: outside.path)
        chmod(outside.path, 0o755)
        let registry = try AdapterRegistry(model: model, roots: [root.path], residentBudget: Self.qvBytes)
        try registry.register(name: "qv", path: "qv-r8")
        try registry.register(name: "rs", path: "attn-r4-rslora")   // evicts qv
        XCTAssertEqual(registry.info("qv")?.resident, false)
        // Swap the folder for a link pointing outside the root.
        try FileManager.default.removeItem(atPath: root.path + "/qv-r8")
        try FileManager.default.createSymbolicLink(atPath: root.path + "/qv-r8", withDestinationPath: outside.path)
        XCTAssertThrowsError(try registry.lookup("qv")) { XCTAssertTrue("\($0)".contains("outside the adapter roots"), "\($0)") }
        XCTAssertEqual(registry.info("qv")?.resident, false)
    }

    // MARK: - Budget, eviction, reload

    func testLRUEvictionAndTransparentReload() throws {
        let model = try ModelFixture.require()
        let root = try makeRoot(["qv-r8", "attn-r4-rslora", "all-r16"])
        try FileManager.default.copyItem(atPath: root.path + "/qv-r8", toPath: root.path + "/qv-copy")
        // Room for two small adapters, not three.
        let budget = Self.qvBytes + Self.attnBytes + 1000
        let registry = try AdapterRegistry(model: model, roots: [root.path], residentBudget: budget)
        func resident() -> [String] { registry.list().filter(\.resident).map(\.name) }

        try registry.register(name: "qv", path: "qv-r8")
        try registry.register(name: "rs", path: "attn-r4-rslora")
        XCTAssertEqual(resident(), ["qv", "rs"])
        XCTAssertEqual(registry.residentBytes, Self.qvBytes + Self.attnBytes)
        try registry.lookup("qv").release()            // qv is now more recent than rs
        try registry.register(name: "copy", path: "qv-copy")
        XCTAssertEqual(resident(), ["copy", "qv"])      // rs was least recently used
        XCTAssertEqual(registry.list().map(\.name), ["copy", "qv", "rs"])   // still registered
        XCTAssertLessThanOrEqual(registry.residentBytes, budget)

        // The next lookup reloads rs transparently and evicts the least recently used idle one (qv).
        let rs = try registry.lookup("rs")
        XCTAssertEqual(resident(), ["copy", "rs"])
        let reference = try ModelFixture.referenceLogits("attn-r4-rslora")[1]
        XCTAssertLessThan(maxAbsDiff(try ModelFixture.logits(model, reference.ids) { rs.apply(to: &$0, rows: $1) },
                                     reference.logits), 1e-3)

        // Adapters in use are never evicted, even when the total goes over the budget.
        let copy = try registry.lookup("copy")
        let qv = try registry.lookup("qv")
        XCTAssertEqual(resident(), ["copy", "qv", "rs"])
        XCTAssertGreaterThan(registry.residentBytes, budget)
        // Releasing brings the total back within budget, evicting the least recently used idle adapter (rs).
        rs.release()
        XCTAssertEqual(resident(), ["copy", "qv"])
        copy.release()
        qv.release()
        XCTAssertLessThanOrEqual(registry.residentBytes, budget)
        XCTAssertEqual(registry.info("rs")?.requestsServed, 1)
        XCTAssertEqual(registry.info("qv")?.requestsServed, 2)

        // An adapter bigger than the whole budget is refused, and nothing is registered.
        XCTAssertThrowsError(try registry.register(name: "big", path: "all-r16")) {
            XCTAssertTrue("\($0)".contains("adapter 'big' needs 19"), "\($0)")
            XCTAssertTrue("\($0)".contains("more than the whole budget of \(budget) bytes"), "\($0)")
        }
        XCTAssertNil(registry.info("big"))

        // A removed-then-evicted race: lookup of an evicted adapter whose files vanished reports the load error.
        try FileManager.default.removeItem(atPath: root.path + "/attn-r4-rslora")
        XCTAssertThrowsError(try registry.lookup("rs")) { XCTAssertTrue("\($0)".contains("no such file"), "\($0)") }
        XCTAssertEqual(registry.info("rs")?.resident, false)
    }

    // MARK: - Startup scan

    func testScanRegistersFoldersAndGGUFFiles() throws {
        let model = try ModelFixture.require()
        let root = try makeRoot(["qv-r8", "attn-r4-rslora"], gguf: true)
        let outside = root.deletingLastPathComponent().appendingPathComponent("elsewhere")
        try FileManager.default.copyItem(atPath: ModelFixture.adapterFolder("qv-r8"), toPath: outside.path)
        try FileManager.default.createSymbolicLink(atPath: root.path + "/linked-out", withDestinationPath: outside.path)
        try FileManager.default.createDirectory(atPath: root.path + "/.hidden", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root.path + "/not-an-adapter", withIntermediateDirectories: true)
        try Data("notes".utf8).write(to: root.appendingPathComponent("README.txt"))
        try FileManager.default.createDirectory(atPath: root.path + "/broken", withIntermediateDirectories: true)
        try Data("{\"r\": 8, \"use_dora\": true}".utf8).write(to: root.appendingPathComponent("broken/adapter_config.json"))
        try Data("GGUF but not really".utf8).write(to: root.appendingPathComponent("junk.gguf"))

        let registry = try AdapterRegistry(model: model, roots: [root.path])
        let results = try registry.scan(directory: root.path)
        XCTAssertEqual(results.map(\.name), ["attn-r4-rslora", "broken", "junk", "linked-out", "qv-r8", "qv-r8"])
        func outcome(_ name: String, _ index: Int = 0) -> Result<AdapterInfo, AdapterRegistryError>? {
            results.filter { $0.name == name }.dropFirst(index).first?.outcome
        }
        guard case .failure(let broken) = outcome("broken") else { return XCTFail("broken adapter registered") }
        XCTAssertTrue("\(broken)".contains("DoRA is not supported"), "\(broken)")
        guard case .failure(let junk) = outcome("junk") else { return XCTFail("junk registered") }
        XCTAssertTrue("\(junk)".contains("cannot read as GGUF"), "\(junk)")
        guard case .failure(let linked) = outcome("linked-out") else { return XCTFail("escaping link registered") }
        XCTAssertTrue("\(linked)".contains("outside the adapter roots"), "\(linked)")
        // The folder qv-r8 comes first in the sorted listing; the file qv-r8.gguf then finds the name taken.
        guard case .success(let folder) = outcome("qv-r8"), case .failure(let taken) = outcome("qv-r8", 1) else {
            return XCTFail("\(results)")
        }
        XCTAssertEqual(folder.format, .peft)
        XCTAssertTrue("\(taken)".contains("already registered"), "\(taken)")
        XCTAssertEqual(registry.list().map(\.name), ["attn-r4-rslora", "qv-r8"])

        // A scan of a folder outside the roots is refused as a whole.
        XCTAssertThrowsError(try registry.scan(directory: outside.path)) {
            XCTAssertTrue("\($0)".contains("outside the adapter roots"), "\($0)")
        }
        // GGUF files register under their name without the extension.
        let other = try makeRoot([], gguf: true)
        let ggufRegistry = try AdapterRegistry(model: model, roots: [other.path])
        let ggufResults = try ggufRegistry.scan(directory: other.path, merged: true)
        XCTAssertEqual(ggufResults.map(\.name), ["qv-r8"])
        XCTAssertEqual(ggufRegistry.info("qv-r8")?.format, .gguf)
        XCTAssertEqual(ggufRegistry.info("qv-r8")?.merged, true)
    }

    // MARK: - Refusals through the registry

    /// Every kind of bad adapter is refused with a message naming the fault, and leaves nothing registered.
    func testBadAdaptersAreRefusedAndNothingIsHalfLoaded() throws {
        let model = try ModelFixture.require()
        let root = try makeRoot(["qv-r8"])
        let registry = try AdapterRegistry(model: model, roots: [root.path])
        let good = try SafeTensorsFile(path: root.path + "/qv-r8/adapter_model.safetensors")
        let goodConfig = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("qv-r8/adapter_config.json"))) as? [String: Any])
        let aName = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
        let bName = "base_model.model.model.layers.29.self_attn.v_proj.lora_B.weight"

        func tensors(editing edit: (inout [SafeTensorsWriter.Tensor]) -> Void) throws -> Data {
            var list = try good.tensors.map { SafeTensorsWriter.Tensor(name: $0.name, shape: $0.shape, values: try good.floats($0)) }
            edit(&list)
            return try SafeTensorsWriter.encode(list, metadata: ["format": "pt"])
        }
        func folder(_ name: String, config: [String: Any] = goodConfig, weights: Data) throws -> String {
            let url = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            try JSONSerialization.data(withJSONObject: config).write(to: url.appendingPathComponent("adapter_config.json"))
            try weights.write(to: url.appendingPathComponent("adapter_model.safetensors"))
            return name
        }
        let goodWeights = try Data(contentsOf: root.appendingPathComponent("qv-r8/adapter_model.safetensors"))
        func config(_ key: String, _ value: Any) -> [String: Any] {
            var c = goodConfig
            c[key] = value
            return c
        }

        let cases: [(String, String, [String])] = [
            ("truncated", try folder("truncated", weights: goodWeights.prefix(goodWeights.count - 100)), ["truncated"]),
            ("wrong-shape", try folder("wrong-shape", weights: tensors { list in
                let i = list.firstIndex { $0.name == aName }!
                list[i] = .init(name: aName, shape: [8, 575], values: Array(list[i].values.prefix(8 * 575)))
            }), [aName, "[8, 575]", "[8, 576]", "maybe wrong base model?"]),
            ("unknown-module", try folder("unknown-module", weights: tensors { list in
                list.append(.init(name: "base_model.model.model.layers.0.self_attn.rotary_proj.lora_A.weight", shape: [8, 576],
                                  values: [Float](repeating: 0, count: 8 * 576)))
            }), ["rotary_proj", "not a LoRA weight of a known projection"]),
            ("untargeted", try folder("untargeted", weights: tensors { list in
                list.append(.init(name: "base_model.model.model.layers.0.mlp.up_proj.lora_A.weight", shape: [8, 576],
                                  values: [Float](repeating: 0, count: 8 * 576)))
                list.append(.init(name: "base_model.model.model.layers.0.mlp.up_proj.lora_B.weight", shape: [1536, 8],
                                  values: [Float](repeating: 0, count: 1536 * 8)))
            }), ["model.layers.0.mlp.up_proj", "not selected by target_modules"]),
            ("rank-0", try folder("rank-0", config: config("r", 0), weights: goodWeights), ["'r'", "rank 0 must be positive"]),
            ("nan", try folder("nan", weights: tensors { list in
                let i = list.firstIndex { $0.name == bName }!
                list[i].values[100] = .nan
            }), [bName, "non-finite value (nan) at element 100"]),
            ("dora", try folder("dora", config: config("use_dora", true), weights: goodWeights), ["DoRA is not supported"]),
            ("bias", try folder("bias", config: config("bias", "all"), weights: goodWeights), ["'bias'", "only \"none\""]),
            ("modules-to-save", try folder("modules-to-save", config: config("modules_to_save", ["lm_head"]), weights: goodWeights),
             ["modules_to_save", "not supported"]),
        ]
        for (label, path, fragments) in cases {
            XCTAssertThrowsError(try registry.register(name: label, path: path), label) { error in
                guard case .invalidAdapter(let inner) = error as? AdapterRegistryError else { return XCTFail("\(label): \(error)") }
                XCTAssertTrue(inner.path.hasSuffix("/" + label), "\(label): \(error)")
                for fragment in fragments {
                    XCTAssertTrue("\(error)".contains(fragment), "\(label): '\(fragment)' not in \(error)")
                }
            }
            XCTAssertThrowsError(try registry.register(name: label, path: path, merged: true), label)
        }
        XCTAssertTrue(registry.list().isEmpty)
        XCTAssertEqual(registry.residentBytes, 0)
        // The good one still loads.
        XCTAssertNoThrow(try registry.register(name: "qv", path: "qv-r8"))
    }

    // MARK: - Concurrency

    /// Lookups keep completing quickly while another thread loads a large adapter, and counts stay consistent under
    /// concurrent lookup / release / register / remove.
    func testLoadingDoesNotBlockLookups() throws {
        let model = try ModelFixture.require()
        let root = try makeRoot(["qv-r8"])
        let big = try SyntheticAdapter.write(rank: 64, targets: LoRATarget.allCases, to: root.appendingPathComponent("big").path,
                                             config: model.config)
        let registry = try AdapterRegistry(model: model, roots: [root.path])
        try registry.register(name: "qv", path: "qv-r8")

        let loading = DispatchGroup()
        let loadTime = LockedBox<Double>(0)
        DispatchQueue.global().async(group: loading) {
            let start = DispatchTime.now()
            for round in 0 ..< 3 {
                do {
                    try registry.register(name: "big", path: big, merged: round == 1)
                    try registry.remove(name: "big")
                } catch {
                    XCTFail("\(error)")
                }
            }
            loadTime.value = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        }
        var worstLookup = 0.0
        var lookups = 0
        while loading.wait(timeout: .now()) == .timedOut {
            let start = DispatchTime.now()
            let handle = try registry.lookup("qv")
            worstLookup = max(worstLookup, Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
            handle.release()
            lookups += 1
        }
        print(String(format: "3 loads of a rank-64 all-linear adapter (one merged) took %.2f s; %d lookups meanwhile, slowest %.3f ms",
                     loadTime.value, lookups, worstLookup * 1000))
        XCTAssertGreaterThan(lookups, 100)
        XCTAssertLessThan(worstLookup, loadTime.value / 10)
        XCTAssertEqual(registry.info("qv")?.requestsServed, lookups)

        // Many threads looking up and releasing while names come and go.
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for i in 0 ..< 200 {
                if worker == 0 && i % 20 == 0 {
                    _ = try? registry.register(name: "tmp", path: "qv-r8")
                } else if worker == 1 && i % 20 == 10 {
                    _ = try? registry.remove(name: "tmp")
                } else if let handle = try? registry.lookup(i % 2 == 0 ? "qv" : "tmp") {
                    handle.release()
                }
            }
        }
        XCTAssertEqual(registry.info("qv")?.activeRequests, 0)
        // "qv" is looked up at every even i except where workers 0 and 1 register/remove (10 times each):
        // 6 workers × 100 + 2 × 90.
        XCTAssertEqual(registry.info("qv")?.requestsServed, lookups + 6 * 100 + 2 * 90)
        XCTAssertEqual(registry.info("tmp")?.activeRequests ?? 0, 0)
    }

    // MARK: - Load-time figures

    func testLoadTimes() throws {
        let model = try ModelFixture.require()
        let root = try temporaryFolder()
        let small = try SyntheticAdapter.write(rank: 8, targets: [.q, .v], to: root.appendingPathComponent("r8-qv").path,
                                               config: model.config)
        let large = try SyntheticAdapter.write(rank: 64, targets: LoRATarget.allCases, to: root.appendingPathComponent("r64-all").path,
                                               config: model.config)
        let registry = try AdapterRegistry(model: model, roots: [root.path])
        // (label, path, runs unmerged, runs merged); with fewer than 100 runs p99 is the slowest run.
        for (label, path, runsUnmerged, runsMerged) in [("rank-8 q,v", small, 100, 30), ("rank-64 all-linear", large, 30, 10)] {
            for merged in [false, true] {
                let runs = merged ? runsMerged : runsUnmerged
                var times: [Double] = []
                for _ in 0 ..< runs {
                    let start = DispatchTime.now()
                    try registry.register(name: "x", path: path, merged: merged)
                    times.append(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6)
                    try registry.remove(name: "x")
                }
                times.sort()
                let p50 = times[times.count / 2]
                let p99 = times[min(times.count - 1, Int((Double(times.count) * 0.99).rounded(.up)) - 1)]
                let info = try registry.register(name: "x", path: path, merged: merged)
                try registry.remove(name: "x")
                print(String(format: "load %@ %@ (%d runs, %.1f MB on disk, %.1f MB resident): p50 %.1f ms, p99 %.1f ms",
                             label, merged ? "merged" : "unmerged", runs, Double(info.fileBytes) / 1e6,
                             Double(info.sizeBytes) / 1e6, p50, p99))
            }
        }
    }
}

// MARK: - Helpers

func realpathString(_ path: String) -> String? { AdapterRoots.realPath(path) }

/// A value shared between a test and a background thread (tests only).
final class LockedBox<Value: Sendable>: @unchecked Sendable {
    // @unchecked Sendable: every access goes through `lock`.
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

/// PEFT adapters with deterministic pseudo-random weights, written with PEFTWriter.
enum SyntheticAdapter {
    static func write(rank: Int, targets: [LoRATarget], to folder: String, config: LlamaConfiguration) throws -> String {
        let shape = BaseModelShape(config)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 1000 * 0.02
        }
        var modules: [LoRAModuleWeights] = []
        for layer in 0 ..< shape.nLayers {
            for target in targets {
                let (inF, outF) = shape.features(of: target)
                modules.append(LoRAModuleWeights(layer: layer, target: target, rank: rank, alpha: Double(2 * rank), scale: 2,
                                                 a: (0 ..< rank * inF).map { _ in next() }, b: (0 ..< outF * rank).map { _ in next() }))
            }
        }
        let file = LoRAAdapterFile(name: "synthetic", path: folder, format: .peft, rank: rank, alpha: Double(2 * rank),
                                   useRSLoRA: false, modules: modules, byteSize: 0, metadata: [:], baseModelName: nil)
        try PEFTWriter.write(file, to: folder, base: shape)
        return folder
    }
}
