import Adapters
import Dispatch
import Foundation
import GGUF
import Llama
import TestSupport
import Tokenizer
import XCTest
@testable import Engine

/// The default model and its tokenizer, loaded once for all engine tests.
let defaultModelResult: Result<(LlamaModel, Tokenizer), any Error> = Result {
    let path = TestPaths.defaultModel.path
    let tokenizer = try Tokenizer(gguf: try GGUFFile(path: path))
    let model = try LlamaModel(path: path, threads: 2)
    return (model, tokenizer)
}

func defaultModel() throws -> (LlamaModel, Tokenizer) { try defaultModelResult.get() }

/// Tests that start engines on the default model; every engine started is stopped after the test.
class EngineTestCase: XCTestCase {
    private var engines: [Engine] = []

    override func tearDown() {
        for e in engines { e.stop(timeout: .zero) }
        engines = []
        super.tearDown()
    }

    func makeEngine(_ configuration: EngineConfiguration = EngineConfiguration()) throws -> Engine {
        let (model, tokenizer) = try defaultModel()
        let engine = try Engine(model: model, tokenizer: tokenizer, configuration: configuration)
        engine.start()
        engines.append(engine)
        return engine
    }
}

/// Collects one request's events, from the engine thread, for the test thread.
///
/// `@unchecked Sendable`: every field is read and written under `lock`.
final class Collector: @unchecked Sendable {
    private let lock = NSLock()
    private var deltas: [GenerationDelta] = []
    private var summaryValue: GenerationSummary?
    private var eventsAfterFinish = 0
    private let done = DispatchSemaphore(value: 0)
    /// Called (on the engine thread) after each delta is stored.
    let onDelta: (@Sendable (Int) -> Void)?

    init(onDelta: (@Sendable (Int) -> Void)? = nil) { self.onDelta = onDelta }

    var callback: @Sendable (GenerationEvent) -> Void { { [self] in handle($0) } }

    private func handle(_ event: GenerationEvent) {
        lock.lock()
        if summaryValue != nil { eventsAfterFinish += 1 }
        var deltaCount = 0
        switch event {
        case .delta(let d):
            deltas.append(d)
            deltaCount = deltas.count
        case .finished(let s):
            summaryValue = s
        }
        lock.unlock()
        if case .finished = event { done.signal() } else { onDelta?(deltaCount) }
    }

    /// Waits for `.finished`; nil on timeout.
    func wait(seconds: Double = 120) -> GenerationSummary? {
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        done.signal()  // let later waits return at once
        return summary
    }

    var summary: GenerationSummary? { lock.lock(); defer { lock.unlock() }; return summaryValue }
    var text: String { lock.lock(); defer { lock.unlock() }; return deltas.map(\.text).joined() }
    var tokens: [SampledToken] { lock.lock(); defer { lock.unlock() }; return deltas.flatMap(\.tokens) }
    var lateEvents: Int { lock.lock(); defer { lock.unlock() }; return eventsAfterFinish }

    /// Every sampled id, the stop token included (what a plain greedy loop would produce).
    var sampledIDs: [Int32] {
        var ids = tokens.map(\.id)
        if case .stop(.token(let t))? = summary?.outcome { ids.append(t) }
        return ids
    }
}

/// A greedy case of `greedy_cases.json`.
struct GreedyCase {
    let promptIDs: [Int32]
    let greedyIDs: [Int32]
    let greedyText: String
    let margins: [Double]
}

func greedyCases(_ model: String) throws -> [GreedyCase] {
    let root = try TestPaths.loadJSON("greedy_cases.json") as! [String: Any]
    let cases = (root["cases"] as! [String: Any])[model] as! [[String: Any]]
    return cases.map {
        GreedyCase(promptIDs: ($0["prompt_ids"] as! [NSNumber]).map(\.int32Value),
                   greedyIDs: ($0["greedy_ids"] as! [NSNumber]).map(\.int32Value),
                   greedyText: $0["greedy_text"] as! String,
                   margins: ($0["top2_margins"] as! [NSNumber]).map(\.doubleValue))
    }
}

/// A SmolLM2 chat prompt (the GGUF template's layout with its default system message), as ids.
func chatPrompt(_ tokenizer: Tokenizer, _ user: String) -> [Int32] {
    let text = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        + "<|im_start|>user\n\(user)<|im_end|>\n<|im_start|>assistant\n"
    return tokenizer.encode(text, parseSpecial: true)
}

/// Polls `condition` until it holds or `seconds` pass.
func eventually(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        usleep(2000)
    }
    return condition()
}

/// A reference PEFT adapter from ../shared/reference/adapters, loaded as a user's would be.
func loadReferenceAdapterFile(_ name: String, model: LlamaModel) throws -> LoRAAdapterFile {
    try AdapterLoader.load(path: TestPaths.referenceFile("adapters/\(name)").path, name: name, base: BaseModelShape(model.config))
}
