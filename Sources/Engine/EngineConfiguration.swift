/// Limits of one engine, resolved in one place.
public struct EngineConfiguration: Sendable, Equatable {
    /// Most tokens in one forward pass (decode tokens plus prompt chunks).
    public var tokenBudget: Int = 512
    /// Most sequences running at once (each holds a KV cache).
    public var maxRunningSequences: Int = 16
    /// Most requests waiting to run; `submit` throws `queueFull` beyond it.
    public var maxQueuedRequests: Int = 64
    /// Tokens per sequence (prompt plus output); nil means the model's context length. Larger
    /// values are capped to the model's.
    public var contextLength: Int? = nil
    /// Bytes of keys and values kept from recent prompts for later prompts that start the same
    /// way (`PrefixCache`); 0 turns prefix caching off.
    public var prefixCacheBytes: Int = 64 << 20

    public init(tokenBudget: Int = 512, maxRunningSequences: Int = 16, maxQueuedRequests: Int = 64, contextLength: Int? = nil,
                prefixCacheBytes: Int = 64 << 20) {
        self.tokenBudget = tokenBudget
        self.maxRunningSequences = maxRunningSequences
        self.maxQueuedRequests = maxQueuedRequests
        self.contextLength = contextLength
        self.prefixCacheBytes = prefixCacheBytes
    }

    func validate() throws(EngineError) {
        guard tokenBudget >= 1 else { throw .invalidConfiguration("tokenBudget must be at least 1, got \(tokenBudget)") }
        guard maxRunningSequences >= 1, maxRunningSequences <= tokenBudget else {
            throw .invalidConfiguration("maxRunningSequences must be in 1…tokenBudget (\(tokenBudget)), got \(maxRunningSequences)")
        }
        guard maxQueuedRequests >= 0 else { throw .invalidConfiguration("maxQueuedRequests must not be negative, got \(maxQueuedRequests)") }
        guard prefixCacheBytes >= 0 else { throw .invalidConfiguration("prefixCacheBytes must not be negative, got \(prefixCacheBytes)") }
        if let c = contextLength, c < 2 { throw .invalidConfiguration("contextLength must be at least 2, got \(c)") }
    }
}
