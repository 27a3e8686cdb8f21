import Foundation
import Llama
import TestSupport
import Tokenizer
import XCTest
@testable import Engine

/// The engine with the real default model: reference greedy continuations, batching that does
/// not change results, cancellation, limits, seeds, metrics.
final class EngineTests: EngineTestCase {
    private func greedyRequest(_ prompt: [Int32], maxTokens: Int, _ collector: Collector,
                               sampling: SamplingParameters = .greedy, stop: StopConditions = StopConditions(),
                               adapters: AdapterPayload = .none) -> GenerationRequest {
        GenerationRequest(prompt: prompt, sampling: sampling, stop: stop, maxTokens: maxTokens, adapters: adapters,
                          onEvent: collector.callback)
    }

    /// Runs requests to completion, all submitted at once.
    private func runAll(_ engine: Engine, _ requests: [(Collector) -> GenerationRequest]) throws -> [Collector] {
        let collectors = requests.map { _ in Collector() }
        for (r, c) in zip(requests, collectors) { try engine.submit(r(c)) }
        for c in collectors { XCTAssertNotNil(c.wait(), "a request did not finish") }
        return collectors
    }

    // MARK: - Reference

    func testChatPromptHelperMatchesReferenceTemplate() throws {
        let (_, tokenizer) = try defaultModel()
        XCTAssertEqual(chatPrompt(tokenizer, "What is the capital of France?"), try greedyCases("base")[0].promptIDs)
    }

    func testGreedyReferenceCasesOneAtATime() throws {
        let engine = try makeEngine()
        let cases = try greedyCases("base")
        for (i, ref) in cases.enumerated() {
            let c = try runAll(engine, [{ self.greedyRequest(ref.promptIDs, maxTokens: 32, $0) }])[0]
            XCTAssertEqual(c.sampledIDs, ref.greedyIDs, "case \(i)")
            let endsWithEOS = ref.greedyIDs.last == 2
            let expectedText = endsWithEOS ? String(ref.greedyText.dropLast("<|im_end|>".count)) : ref.greedyText
            XCTAssertEqual(c.text, expectedText, "case \(i)")
            let s = try XCTUnwrap(c.summary)
            XCTAssertEqual(s.outcome, endsWithEOS ? .stop(.token(2)) : .length, "case \(i)")
            XCTAssertEqual(s.promptTokens, ref.promptIDs.count)
            XCTAssertEqual(s.completionTokens, ref.greedyIDs.count)
            XCTAssertNotNil(s.timeToFirstToken)
            XCTAssertEqual(c.lateEvents, 0)
        }
        XCTAssert(eventually { engine.metrics().runningSequences == 0 })
        let m = engine.metrics()
        // Prompt tokens run or taken from the prefix cache (PrefixCacheTests checks which).
        XCTAssertEqual(m.promptTokensTotal + m.promptTokensCachedTotal, cases.reduce(0) { $0 + $1.promptIDs.count })
        XCTAssertEqual(m.generationTokensTotal, cases.reduce(0) { $0 + $1.greedyIDs.count })
        XCTAssertEqual(m.timeToFirstToken.count, UInt64(cases.count))
        XCTAssertEqual(m.interTokenLatency.count, UInt64(cases.reduce(0) { $0 + $1.greedyIDs.count - 1 }))
        XCTAssertEqual(m.kvCacheBytes, 0)
        XCTAssertEqual(m.requestsFinished, ["stop": 2, "length": 1])
    }

    func testGreedyReferenceCasesTogetherInSmallChunks() throws {
        // A budget of 16 tokens forces chunked prefill interleaved with other sequences' decoding.
        let engine = try makeEngine(EngineConfiguration(tokenBudget: 16, maxRunningSequences: 3))
        let cases = try greedyCases("base")
        let collectors = try runAll(engine, cases.map { ref in { self.greedyRequest(ref.promptIDs, maxTokens: 32, $0) } })
        for (i, (ref, c)) in zip(cases, collectors).enumerated() { XCTAssertEqual(c.sampledIDs, ref.greedyIDs, "case \(i)") }
        XCTAssertLessThanOrEqual(engine.metrics().lastStepTokens, 16)
    }

    func testTopLogprobMarginsMatchReference() throws {
        // log p1 - log p2 = l1 - l2: the top-2 logprob gap is the reference's logit margin.
        let engine = try makeEngine()
        let ref = try greedyCases("base")[1]
        let params = SamplingParameters(temperature: 0, logprobs: true, topLogprobs: 2)
        let c = try runAll(engine, [{ self.greedyRequest(ref.promptIDs, maxTokens: 32, $0, sampling: params) }])[0]
        let tokens = c.tokens
        XCTAssertEqual(tokens.count, ref.greedyIDs.count - 1)  // the final <|im_end|> is not a visible token
        for (i, t) in tokens.enumerated() {
            XCTAssertEqual(t.topLogprobs.count, 2)
            XCTAssertEqual(t.topLogprobs[0].id, t.id)
            XCTAssertEqual(t.logprob, t.topLogprobs[0].logprob)
            XCTAssertLessThan(t.logprob!, 0)
            XCTAssertEqual(Double(t.topLogprobs[0].logprob - t.topLogprobs[1].logprob), ref.margins[i], accuracy: 2e-3, "step \(i)")
        }
    }

    func testStopStringThroughEngine() throws {
        let engine = try makeEngine()
        let ref = try greedyCases("base")[0]  // "The capital of France is Paris.<|im_end|>"
        let stop = StopConditions(strings: [" Paris"])
        let c = try runAll(engine, [{ self.greedyRequest(ref.promptIDs, maxTokens: 32, $0, stop: stop) }])[0]
        XCTAssertEqual(c.text, "The capital of France is")
        XCTAssertEqual(c.summary?.outcome, .stop(.string(" Paris")))
        XCTAssertEqual(c.summary?.completionTokens, 6)  // "The capital of France is Paris"
    }

    // MARK: - Batching

    func testSixteenConcurrentGreedyRequestsEqualEachAlone() throws {
        let (_, tokenizer) = try defaultModel()
        let questions = [
            "What is the capital of France?", "Name three primary colors.", "How many legs does a spider have?",
            "Write a haiku about the sea.", "What is 12 times 12?", "Who wrote Hamlet?", "Explain photosynthesis briefly.",
            "What is the boiling point of water?", "Give me a synonym for happy.", "What language is spoken in Brazil?",
            "List two prime numbers.", "What is the largest planet?", "Translate 'thank you' into Spanish.",
            "What does a thermometer measure?", "Describe a cat in one sentence.", "Why is the sky blue?",
        ]
        let prompts = questions.map { chatPrompt(tokenizer, $0) }
        let maxTokens = (0..<16).map { 12 + $0 }  // different lengths, so sequences leave at different steps
        let engine = try makeEngine()

        var alone: [[Int32]] = []
        for (p, n) in zip(prompts, maxTokens) {
            alone.append(try runAll(engine, [{ self.greedyRequest(p, maxTokens: n, $0) }])[0].sampledIDs)
        }
        let stepsAlone = engine.metrics().steps
        let together = try runAll(engine, zip(prompts, maxTokens).map { p, n in { self.greedyRequest(p, maxTokens: n, $0) } })
        for i in 0..<16 {
            XCTAssertEqual(together[i].sampledIDs, alone[i], "request \(i): \(questions[i])")
            XCTAssertFalse(together[i].sampledIDs.isEmpty)
        }
        let stepsTogether = engine.metrics().steps - stepsAlone
        XCTAssertLessThan(stepsTogether, 40, "16 requests share steps instead of running one after another")
        XCTAssert(eventually { engine.metrics().kvCacheBytes == 0 })
    }

    func testBaseLoRAAndMergedRequestsShareABatch() throws {
        let (model, _) = try defaultModel()
        let qv = try loadReferenceAdapterFile("qv-r8", model: model)
        let all = try loadReferenceAdapterFile("all-r16", model: model)
        let engine = try makeEngine()
        // Base rows, unmerged qv-r8 rows and merged all-r16 rows in the same forward passes.
        let groups: [(String, AdapterPayload)] = [
            ("base", .none),
            ("qv-r8", AdapterPayload(adapters: [ScaledAdapter(try qv.makeLoRAAdapter(for: model.config))])),
            ("all-r16", AdapterPayload(merged: try all.makeMergedWeights(base: model.weights, config: model.config))),
        ]
        var requests: [(Collector) -> GenerationRequest] = []
        var expected: [(String, [Int32])] = []
        for (name, payload) in groups {
            for ref in try greedyCases(name) {
                requests.append { self.greedyRequest(ref.promptIDs, maxTokens: 32, $0, adapters: payload) }
                expected.append((name, ref.greedyIDs))
            }
        }
        let collectors = try runAll(engine, requests)
        for (i, (name, ids)) in expected.enumerated() {
            XCTAssertEqual(collectors[i].sampledIDs, ids, "\(name) case \(i % 3)")
        }
    }

    func testMismatchedAdapterIsRejected() throws {
        let (model, _) = try defaultModel()
        let c = model.config
        let wrong = LoRADelta(rank: 2, inFeatures: c.dim + 1, outFeatures: c.qDim, scale: 1,
                              a: [Float](repeating: 0, count: 2 * (c.dim + 1)), b: [Float](repeating: 0, count: c.qDim * 2))
        var layers = [[LoRADelta?]](repeating: [LoRADelta?](repeating: nil, count: 7), count: c.layerCount)
        layers[3][Projection.q.rawValue] = wrong
        let adapter = LoRAAdapter(name: "bad", deltas: layers)
        let engine = try makeEngine()
        XCTAssertThrowsError(try engine.submit(GenerationRequest(prompt: [1, 2], adapters: AdapterPayload(adapters: [ScaledAdapter(adapter)])) { _ in })) {
            guard case EngineError.adapterMismatch(name: "bad", let detail) = $0 else { return XCTFail("\($0)") }
            XCTAssert(detail.contains("layer 3 q_proj"), detail)
        }
    }

    // MARK: - Cancellation and limits

    func testCancelMidGenerationFreesTheSequence() throws {
        let (_, tokenizer) = try defaultModel()
        let engine = try makeEngine()
        let cacheBytesMidway = LockedValue(0)
        let handleBox = LockedValue<RequestHandle?>(nil)
        let collector = Collector(onDelta: { count in
            if count == 5 {
                cacheBytesMidway.set(engine.metrics().kvCacheBytes)
                handleBox.get()?.cancel()
            }
        })
        // No end tokens: only the cancel (or 2000 tokens) can end it.
        let request = GenerationRequest(prompt: chatPrompt(tokenizer, "Tell me a very long story."), sampling: .greedy,
                                        stop: StopConditions(useModelEndTokens: false), maxTokens: 2000,
                                        onEvent: collector.callback)
        let handle = try engine.submit(request)
        handleBox.set(handle)
        if collector.summary == nil, collector.tokens.count >= 5 { handle.cancel() }  // in case the callback ran before set
        let summary = try XCTUnwrap(collector.wait())
        XCTAssertEqual(summary.outcome, .cancelled)
        XCTAssertLessThan(summary.completionTokens, 20)
        XCTAssertGreaterThan(cacheBytesMidway.get(), 0)
        XCTAssert(eventually { engine.metrics().runningSequences == 0 && engine.metrics().kvCacheBytes == 0 })
        XCTAssertEqual(engine.metrics().requestsFinished["cancelled"], 1)
        XCTAssertEqual(collector.lateEvents, 0)
    }

    func testCancelWhileWaiting() throws {
        let (_, tokenizer) = try defaultModel()
        let engine = try makeEngine(EngineConfiguration(tokenBudget: 64, maxRunningSequences: 1))
        let first = Collector(), second = Collector()
        let p = chatPrompt(tokenizer, "Count to twenty.")
        let h1 = try engine.submit(GenerationRequest(prompt: p, sampling: .greedy, stop: StopConditions(useModelEndTokens: false),
                                                     maxTokens: 2000, onEvent: first.callback))
        let h2 = try engine.submit(GenerationRequest(prompt: p, maxTokens: 10, onEvent: second.callback))
        h2.cancel()
        XCTAssertEqual(second.wait()?.outcome, .cancelled)
        XCTAssertEqual(second.summary?.completionTokens, 0)
        XCTAssertNil(second.summary?.timeToFirstToken)
        h1.cancel()
        XCTAssertEqual(first.wait()?.outcome, .cancelled)
    }

    func testQueueFullIsReported() throws {
        let (_, tokenizer) = try defaultModel()
        let engine = try makeEngine(EngineConfiguration(tokenBudget: 64, maxRunningSequences: 1, maxQueuedRequests: 2))
        let p = chatPrompt(tokenizer, "Hello")
        let running = Collector()
        let h = try engine.submit(GenerationRequest(prompt: p, sampling: .greedy, stop: StopConditions(useModelEndTokens: false),
                                                    maxTokens: 2000, onEvent: running.callback))
        XCTAssert(eventually { !running.tokens.isEmpty })
        let queued = [Collector(), Collector()]
        var handles = [h]
        for c in queued { handles.append(try engine.submit(GenerationRequest(prompt: p, maxTokens: 4, onEvent: c.callback))) }
        XCTAssertEqual(engine.metrics().queueDepth, 2)
        XCTAssertThrowsError(try engine.submit(GenerationRequest(prompt: p, maxTokens: 4) { _ in })) {
            XCTAssertEqual($0 as? EngineError, .queueFull(limit: 2))
            XCTAssertEqual("\($0)", "the request queue is full (2 requests waiting); retry later")
        }
        for handle in handles { handle.cancel() }
        for c in [running] + queued { XCTAssertEqual(c.wait()?.outcome, .cancelled) }
    }

    func testPromptLongerThanContextIsRejected() throws {
        let (model, _) = try defaultModel()
        let modelContext = model.config.contextLength
        let engine = try makeEngine(EngineConfiguration(contextLength: 64))
        XCTAssertEqual(engine.contextLength, 64)
        XCTAssertThrowsError(try engine.submit(GenerationRequest(prompt: [Int32](repeating: 28, count: 65)) { _ in })) {
            XCTAssertEqual($0 as? EngineError, .promptTooLong(tokens: 65, limit: 64))
            XCTAssertEqual("\($0)", "the prompt has 65 tokens but the context holds at most 64")
        }
        let full = try makeEngine()
        XCTAssertThrowsError(try full.submit(GenerationRequest(prompt: [Int32](repeating: 28, count: modelContext + 1)) { _ in })) {
            XCTAssertEqual($0 as? EngineError, .promptTooLong(tokens: modelContext + 1, limit: modelContext))
        }
        // Other bad prompts.
        XCTAssertThrowsError(try engine.submit(GenerationRequest(prompt: []) { _ in })) { XCTAssertEqual($0 as? EngineError, .emptyPrompt) }
        XCTAssertThrowsError(try engine.submit(GenerationRequest(prompt: [1, Int32(model.config.vocabSize)]) { _ in })) {
            XCTAssertEqual($0 as? EngineError, .tokenOutOfVocabulary(token: Int32(model.config.vocabSize), index: 1, vocabularySize: model.config.vocabSize))
        }
        XCTAssertThrowsError(try engine.submit(GenerationRequest(prompt: [1], maxTokens: 0) { _ in })) {
            XCTAssertEqual($0 as? EngineError, .invalidMaxTokens(0))
        }
    }

    func testGenerationStopsAtTheEndOfTheContext() throws {
        let engine = try makeEngine(EngineConfiguration(contextLength: 20))
        let c = Collector()
        // 16 prompt tokens leave room to sample 5 (the last one is never fed back).
        try engine.submit(GenerationRequest(prompt: [Int32](repeating: 28, count: 16), sampling: .greedy,
                                            stop: StopConditions(useModelEndTokens: false), maxTokens: 100, onEvent: c.callback))
        let s = try XCTUnwrap(c.wait())
        XCTAssertEqual(s.outcome, .length)
        XCTAssertEqual(s.completionTokens, 5)
    }

    // MARK: - Seeds

    func testSeedReproducibility() throws {
        let (_, tokenizer) = try defaultModel()
        let engine = try makeEngine()
        let prompt = chatPrompt(tokenizer, "Write a short poem about autumn.")
        func request(_ seed: UInt64) -> (Collector) -> GenerationRequest {
            { self.greedyRequest(prompt, maxTokens: 24, $0, sampling: SamplingParameters(temperature: 1, topP: 0.95, seed: seed),
                                 stop: StopConditions(useModelEndTokens: false)) }
        }
        let first = try runAll(engine, [request(7)])[0].sampledIDs
        let again = try runAll(engine, [request(7)])[0].sampledIDs
        let batched = try runAll(engine, [request(99), request(7), request(8)])
        XCTAssertEqual(first.count, 24)
        XCTAssertEqual(again, first)
        XCTAssertEqual(batched[1].sampledIDs, first)
        XCTAssertNotEqual(batched[0].sampledIDs, first)
        XCTAssertNotEqual(batched[2].sampledIDs, first)
    }

    // MARK: - Life cycle

    func testStopDrainsThenRefusesNewRequests() throws {
        let (model, tokenizer) = try defaultModel()
        let engine = try Engine(model: model, tokenizer: tokenizer)
        XCTAssertThrowsError(try engine.submit(GenerationRequest(prompt: [1]) { _ in })) { XCTAssertEqual($0 as? EngineError, .notStarted) }
        engine.start()
        let collectors = [Collector(), Collector()]
        for (i, c) in collectors.enumerated() {
            try engine.submit(GenerationRequest(prompt: chatPrompt(tokenizer, "Say hello \(i)"), sampling: .greedy,
                                                stop: StopConditions(useModelEndTokens: false), maxTokens: 6, onEvent: c.callback))
        }
        engine.stop(deadline: .now + .seconds(60))
        for c in collectors {
            XCTAssertEqual(c.summary?.outcome, .length, "drained, not cancelled")
            XCTAssertEqual(c.summary?.completionTokens, 6)
        }
        XCTAssertThrowsError(try engine.submit(GenerationRequest(prompt: [1]) { _ in })) { XCTAssertEqual($0 as? EngineError, .shuttingDown) }
        engine.stop(timeout: .zero)  // a second stop returns at once
    }

    func testStopAtPastDeadlineCancelsWhatRuns() throws {
        let (model, tokenizer) = try defaultModel()
        let engine = try Engine(model: model, tokenizer: tokenizer)
        engine.start()
        let c = Collector()
        try engine.submit(GenerationRequest(prompt: chatPrompt(tokenizer, "Tell a story."), sampling: .greedy,
                                            stop: StopConditions(useModelEndTokens: false), maxTokens: 2000, onEvent: c.callback))
        XCTAssert(eventually { !c.tokens.isEmpty })
        engine.stop(timeout: .zero)
        XCTAssertEqual(c.summary?.outcome, .cancelled)
        XCTAssertEqual(engine.metrics().runningSequences, 0)
        XCTAssertEqual(engine.metrics().kvCacheBytes, 0)
    }

    func testStreamingAPI() async throws {
        let engine = try makeEngine()
        let ref = try greedyCases("base")[0]
        let (_, stream) = try engine.submitStreaming(GenerationRequest(prompt: ref.promptIDs, sampling: .greedy, maxTokens: 32) { _ in })
        var text = ""
        var finished: GenerationSummary?
        for await event in stream {
            switch event {
            case .delta(let d): text += d.text
            case .finished(let s): finished = s
            }
        }
        XCTAssertEqual(text, "The capital of France is Paris.")
        XCTAssertEqual(finished?.outcome, .stop(.token(2)))
    }
}

/// A value shared between the test thread and the engine thread.
///
/// `@unchecked Sendable`: `value` is only touched under `lock`.
final class LockedValue<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
}
