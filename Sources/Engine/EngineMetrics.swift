/// A snapshot of the engine's state and counters, taken after each step.
public struct EngineMetrics: Sendable, Equatable {
    /// Requests submitted and not yet running.
    public var queueDepth = 0
    /// Sequences holding a KV cache (prefilling or decoding).
    public var runningSequences = 0
    /// Prompt tokens that went through a forward pass, since start.
    public var promptTokensTotal = 0
    /// Prompt tokens whose keys and values came from the prefix cache instead, since start.
    public var promptTokensCachedTotal = 0
    /// Bytes held by the prefix cache.
    public var prefixCacheBytes = 0
    /// Tokens sampled, since start.
    public var generationTokensTotal = 0
    /// Requests finished, by `GenerationOutcome.finishReason` ("stop", "length", "cancelled", "error").
    public var requestsFinished: [String: Int] = [:]
    /// Bytes held by the KV caches of running sequences.
    public var kvCacheBytes = 0
    /// Forward passes run.
    public var steps = 0
    /// Tokens in the most recent forward pass.
    public var lastStepTokens = 0
    public var timeToFirstToken = Histogram.timeToFirstToken()
    public var interTokenLatency = Histogram.interTokenLatency()

    public init() {}
}

