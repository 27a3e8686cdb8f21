import Foundation
import Llama
import Tokenizer

/// A submitted request: its id, and a way to cancel it.
public struct RequestHandle: Sendable {
    public let id: RequestID
    let engine: Engine

    /// Cancels the request; it ends with `.cancelled` at the engine's next step (if it has not
    /// ended already) and its KV cache is freed.
    public func cancel() { engine.cancel(id) }
}

/// Runs generations on one dedicated thread that owns the model's KV caches and workspace,
/// with continuous batching: every step is ONE forward pass holding the decode token of every
/// running sequence plus chunks of waiting prompts, up to a token budget (see `Scheduler`).
/// Requests join at the next step and leave (freeing their caches) as soon as they end.
///
/// ```swift
/// let engine = try Engine(model: model, tokenizer: tokenizer)
/// engine.start()
/// let handle = try engine.submit(GenerationRequest(prompt: ids, maxTokens: 64) { event in … })
/// …
/// engine.stop(deadline: .now + .seconds(5))
/// ```
///
/// Events are delivered on the engine thread, in order, ending with exactly one `.finished`
/// per accepted request. Callbacks must not block (they delay every sequence) and must not call
/// `stop`. The thread keeps the engine alive until `stop` returns: call it before letting go.
///
/// `@unchecked Sendable`: the fields under "shared" are read and written only while holding
/// `condition`'s lock; the fields under "engine thread" are touched only by the engine thread
/// (after `start`, nothing else reads them); the rest are immutable.
public final class Engine: @unchecked Sendable {
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public let configuration: EngineConfiguration
    /// Tokens per sequence, prompt plus output.
    public let contextLength: Int

    private enum State: Equatable {
        case notStarted, running, stopping(deadline: ContinuousClock.Instant), stopped
    }

    private struct Arrival {
        let id: RequestID
        let request: GenerationRequest
        let submitted: ContinuousClock.Instant
    }

    // MARK: shared (under `condition`)
    private let condition = NSCondition()
    private var state = State.notStarted
    private var inbox: [Arrival] = []
    private var cancellations: Set<RequestID> = []
    private var schedulerWaiting = 0
    private var snapshot = EngineMetrics()
    private var nextID: UInt64 = 1
    private var exited = false

    // MARK: engine thread
    private var scheduler: Scheduler
    private var sequences: [RequestID: EngineSequence] = [:]
    private let workspace = Workspace()
    private let scratch: SamplerScratch
    private var logits: [Float] = []  // [sampled rows, vocab]
    private var counters = EngineMetrics()  // the engine thread's working copy
    private let prefixCache: PrefixCache?
    private let clock = ContinuousClock()

    public init(model: LlamaModel, tokenizer: Tokenizer, configuration: EngineConfiguration = EngineConfiguration()) throws(EngineError) {
        try configuration.validate()
        self.model = model
        self.tokenizer = tokenizer
        self.configuration = configuration
        contextLength = min(configuration.contextLength ?? model.config.contextLength, model.config.contextLength)
        scheduler = Scheduler(tokenBudget: configuration.tokenBudget, maxRunning: configuration.maxRunningSequences)
        scratch = SamplerScratch(vocabularySize: model.config.vocabSize)
        prefixCache = configuration.prefixCacheBytes > 0 ? PrefixCache(capacityBytes: configuration.prefixCacheBytes) : nil
        model.prepareTileWeights()
    }

    // MARK: - Public API

    /// Starts the engine thread. Calling it again does nothing.
    public func start() {
        condition.lock()
        guard state == .notStarted else { condition.unlock(); return }
        state = .running
        condition.unlock()
        let thread = Thread { [self] in run() }
        thread.name = "loraserve-engine"
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Queues a request. It is validated here (so errors reach the caller, not the callback);
    /// once this returns, `request.onEvent` will see exactly one `.finished`.
    ///
    /// - Throws: `queueFull` when `maxQueuedRequests` requests already wait; `promptTooLong`,
    ///   `emptyPrompt`, `tokenOutOfVocabulary`, `invalidMaxTokens`, `adapterMismatch` for a bad
    ///   request; `notStarted` / `shuttingDown` outside the engine's running life.
    @discardableResult
    public func submit(_ request: GenerationRequest) throws(EngineError) -> RequestHandle {
        try validate(request)
        let now = clock.now
        condition.lock()
        defer { condition.unlock() }
        switch state {
        case .notStarted: throw .notStarted
        case .stopping, .stopped: throw .shuttingDown
        case .running: break
        }
        guard inbox.count + schedulerWaiting < configuration.maxQueuedRequests else {
            throw .queueFull(limit: configuration.maxQueuedRequests)
        }
        let id = RequestID(rawValue: nextID)
        nextID += 1
        inbox.append(Arrival(id: id, request: request, submitted: now))
        condition.signal()
        return RequestHandle(id: id, engine: self)
    }

    /// Submits `request` and returns its events as an async stream (the request's own callback
    /// is still called first). The stream ends after `.finished`.
    public func submitStreaming(_ request: GenerationRequest) throws(EngineError) -> (RequestHandle, AsyncStream<GenerationEvent>) {
        let (stream, continuation) = AsyncStream.makeStream(of: GenerationEvent.self, bufferingPolicy: .unbounded)
        var request = request
        let original = request.onEvent
        request.onEvent = { event in
            original(event)
            continuation.yield(event)
            if case .finished = event { continuation.finish() }
        }
        let handle = try submit(request)
        return (handle, stream)
    }

    /// Cancels a request (see `RequestHandle.cancel`). Unknown or finished ids are ignored.
    public func cancel(_ id: RequestID) {
        condition.lock()
        if state != .stopped {
            cancellations.insert(id)
            condition.signal()
        }
        condition.unlock()
    }

    /// Stops accepting requests, lets running and queued ones finish until `deadline`, then
    /// cancels what is left, and returns when the engine thread has exited. Must not be called
    /// from an event callback.
    public func stop(deadline: ContinuousClock.Instant) {
        condition.lock()
        defer { condition.unlock() }
        switch state {
        case .notStarted:
            state = .stopped
            return
        case .stopped:
            return
        case .running:
            state = .stopping(deadline: deadline)
        case .stopping(let existing):
            state = .stopping(deadline: min(existing, deadline))
        }
        condition.broadcast()
        while !exited { condition.wait() }
    }

    /// `stop(deadline: now + timeout)`.
    public func stop(timeout: Duration = .zero) { stop(deadline: clock.now + timeout) }

    /// The counters as of the last step; `queueDepth` includes requests not yet seen by the thread.
    public func metrics() -> EngineMetrics {
        condition.lock()
        defer { condition.unlock() }
        var m = snapshot
        m.queueDepth = inbox.count + schedulerWaiting
        return m
    }

    // MARK: - Validation

    private func validate(_ request: GenerationRequest) throws(EngineError) {
        let prompt = request.prompt
        guard !prompt.isEmpty else { throw .emptyPrompt }
        guard prompt.count <= contextLength else { throw .promptTooLong(tokens: prompt.count, limit: contextLength) }
        let vocab = model.config.vocabSize
        for (i, t) in prompt.enumerated() where t < 0 || Int(t) >= vocab {
            throw .tokenOutOfVocabulary(token: t, index: i, vocabularySize: vocab)
        }
        guard request.maxTokens >= 1 else { throw .invalidMaxTokens(request.maxTokens) }
        try Self.validate(request.adapters, config: model.config)
    }

    /// Checks every adapter against the model's shapes, so that the forward pass never meets one
    /// that does not fit.
    static func validate(_ payload: AdapterPayload, config: LlamaConfiguration) throws(EngineError) {
        let projections = Projection.allCases.count
        for scaled in payload.adapters {
            let a = scaled.adapter
            guard scaled.scale.isFinite else { throw .adapterMismatch(name: a.name, detail: "scale \(scaled.scale) is not finite") }
            guard a.deltas.count <= config.layerCount else {
                throw .adapterMismatch(name: a.name, detail: "it has \(a.deltas.count) layers, the model \(config.layerCount)")
            }
            for (layer, row) in a.deltas.enumerated() {
                guard row.count == projections else {
                    throw .adapterMismatch(name: a.name, detail: "layer \(layer) lists \(row.count) projections, expected \(projections)")
                }
                for p in Projection.allCases {
                    guard let d = row[p.rawValue] else { continue }
                    let f = p.features(config)
                    guard d.inFeatures == f.in, d.outFeatures == f.out else {
                        throw .adapterMismatch(name: a.name, detail: "layer \(layer) \(p.peftName) is [\(d.outFeatures), \(d.inFeatures)], the model's [\(f.out), \(f.in)]")
                    }
                }
            }
        }
        if let m = payload.merged {
            guard m.overrides.count == config.layerCount else {
                throw .adapterMismatch(name: m.name, detail: "merged weights cover \(m.overrides.count) layers, the model has \(config.layerCount)")
            }
            for (layer, row) in m.overrides.enumerated() {
                guard row.count == projections else {
                    throw .adapterMismatch(name: m.name, detail: "layer \(layer) lists \(row.count) projections, expected \(projections)")
                }
                for p in Projection.allCases {
                    guard let w = row[p.rawValue] else { continue }
                    let f = p.features(config)
                    guard w.cols == f.in, w.rows == f.out else {
                        throw .adapterMismatch(name: m.name, detail: "merged layer \(layer) \(p.peftName) is [\(w.rows), \(w.cols)], the model's [\(f.out), \(f.in)]")
                    }
                }
            }
        }
    }

    // MARK: - Engine thread

    private func run() {
        while true {
            condition.lock()
            while inbox.isEmpty && cancellations.isEmpty && scheduler.isIdle && state == .running {
                condition.wait()
            }
            let arrivals = inbox
            inbox.removeAll(keepingCapacity: true)
            schedulerWaiting += arrivals.count
            let cancels = cancellations
            cancellations.removeAll()
            var deadline: ContinuousClock.Instant?
            if case .stopping(let d) = state { deadline = d }
            condition.unlock()

            for a in arrivals {
                let seq = EngineSequence(id: a.id, request: a.request, submitted: a.submitted,
                                         contextLength: contextLength, tokenizer: tokenizer)
                sequences[a.id] = seq
                scheduler.enqueue(a.id, promptLength: a.request.prompt.count)
            }
            for id in cancels.sorted() {
                if let seq = sequences[id] { finish(seq, .cancelled) }
            }
            if let deadline, scheduler.isIdle || clock.now >= deadline {
                for id in sequences.keys.sorted() {
                    if let seq = sequences[id] { finish(seq, .cancelled) }
                }
                publish()
                condition.lock()
                state = .stopped
                exited = true
                condition.broadcast()
                condition.unlock()
                return
            }
            step()
            publish()
        }
    }

    /// One forward pass over the scheduler's plan, then sampling, events and departures.
    private func step() {
        // The prefix cache is asked on admission, not arrival: a request that waited may find
        // prompts that finished meanwhile.
        let plan = scheduler.nextStep { id in
            guard let prefixCache, let seq = sequences[id] else { return 0 }
            seq.prefix = prefixCache.lookup(seq.request.prompt, adapters: seq.request.adapters)
            return seq.prefix?.length ?? 0
        }
        guard !plan.isEmpty else { return }
        if !plan.admitted.isEmpty {
            // Admitted requests stop counting against the queue limit before any of their events
            // goes out (a client that sees its first token may submit again at once).
            condition.lock()
            schedulerWaiting = scheduler.waitingCount
            condition.unlock()
        }
        let start = clock.now
        for id in plan.admitted {
            guard let seq = sequences[id] else { continue }
            let cache = model.makeCache(maxLength: seq.cacheLength)
            if let hit = seq.prefix {
                cache.copyPrefix(hit.length, from: hit.entry.kv)
                counters.promptTokensCachedTotal += hit.length
                seq.cachedPromptTokens = hit.length
                seq.prefix = nil
            }
            seq.cache = cache
            seq.started = start
        }

        var batch = Batch()
        var sampling: [EngineSequence] = []  // in logit row order
        var members: [EngineSequence] = []
        var prefilled: [EngineSequence] = []  // prompts this step completes
        var promptTokens = 0
        for item in plan.items {
            guard let seq = sequences[item.id], let cache = seq.cache else { continue }
            let rows: Range<Int>
            switch item.work {
            case .prefill(let range):
                rows = batch.add(seq.request.prompt[range], startingAt: range.lowerBound, cache: cache, logits: item.samples)
                promptTokens += range.count
                if item.samples { prefilled.append(seq) }
            case .decode:
                rows = batch.add(CollectionOfOne(seq.lastToken), startingAt: seq.decodePosition, cache: cache, logits: true)
            }
            for scaled in seq.request.adapters.adapters { batch.apply(scaled.adapter, scale: scaled.scale, rows: rows) }
            if let merged = seq.request.adapters.merged { batch.apply(merged, rows: rows) }
            members.append(seq)
            if item.samples { sampling.append(seq) }
        }

        do {
            try model.forward(batch, workspace: workspace, logits: &logits)
        } catch {
            for seq in members { finish(seq, .error(error.description)) }
            return
        }
        counters.steps += 1
        counters.lastStepTokens = batch.count
        counters.promptTokensTotal += promptTokens
        if let prefixCache {
            for seq in prefilled {
                guard let cache = seq.cache else { continue }
                prefixCache.insert(seq.request.prompt, adapters: seq.request.adapters, from: cache) { model.makeCache(maxLength: $0) }
            }
            counters.prefixCacheBytes = prefixCache.byteCount
        }

        let vocab = model.config.vocabSize
        let now = clock.now
        for (j, seq) in sampling.enumerated() {
            let token = logits.withUnsafeBufferPointer { all in
                seq.sampler.sample(UnsafeBufferPointer(rebasing: all[j * vocab..<(j + 1) * vocab]), scratch: scratch)
            }
            accept(token, for: seq, at: now)
        }
    }

    private func accept(_ token: SampledToken, for seq: EngineSequence, at now: ContinuousClock.Instant) {
        seq.generated += 1
        seq.lastToken = token.id
        counters.generationTokensTotal += 1
        if let last = seq.lastTokenTime {
            counters.interTokenLatency.observe(now - last)
        } else {
            seq.firstToken = now
            counters.timeToFirstToken.observe(now - seq.submitted)
        }
        seq.lastTokenTime = now

        let step = seq.output.accept(token.id)
        if step.visible || !step.text.isEmpty {
            seq.request.onEvent(.delta(GenerationDelta(tokens: step.visible ? [token] : [], text: step.text)))
        }
        switch step.stop {
        case nil: break
        case .length: finish(seq, .length)
        case let cause?: finish(seq, .stop(cause))
        }
    }

    /// Ends a sequence: it leaves the scheduler, its cache is freed, its last event goes out.
    private func finish(_ seq: EngineSequence, _ outcome: GenerationOutcome) {
        scheduler.remove(seq.id)
        sequences.removeValue(forKey: seq.id)
        seq.cache = nil
        counters.requestsFinished[outcome.finishReason, default: 0] += 1
        let end = clock.now
        seq.request.onEvent(.finished(GenerationSummary(
            id: seq.id, outcome: outcome, promptTokens: seq.request.prompt.count,
            cachedPromptTokens: seq.cachedPromptTokens, completionTokens: seq.generated,
            timeToFirstToken: seq.firstToken.map { $0 - seq.submitted }, duration: end - seq.submitted,
            queueTime: seq.started.map { $0 - seq.submitted })))
    }

    private func publish() {
        counters.runningSequences = scheduler.runningCount
        counters.kvCacheBytes = sequences.values.reduce(0) { $0 + ($1.cache?.byteCount ?? 0) }
        condition.lock()
        schedulerWaiting = scheduler.waitingCount
        counters.queueDepth = schedulerWaiting
        snapshot = counters
        condition.unlock()
    }
}
