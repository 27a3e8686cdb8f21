/// Why the engine refused a request or a configuration. Messages name the limit or the thing.
public enum EngineError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Too many requests are waiting; retry later (HTTP 429).
    case queueFull(limit: Int)
    /// The prompt does not fit the context.
    case promptTooLong(tokens: Int, limit: Int)
    case emptyPrompt
    case tokenOutOfVocabulary(token: Int32, index: Int, vocabularySize: Int)
    case invalidMaxTokens(Int)
    /// An adapter does not fit the model (wrong layer count or projection shape).
    case adapterMismatch(name: String, detail: String)
    case invalidConfiguration(String)
    /// `start()` has not been called.
    case notStarted
    /// `stop` has been called; no new requests.
    case shuttingDown

    public var description: String {
        switch self {
        case .queueFull(let limit):
            "the request queue is full (\(limit) requests waiting); retry later"
        case .promptTooLong(let tokens, let limit):
            "the prompt has \(tokens) tokens but the context holds at most \(limit)"
        case .emptyPrompt:
            "the prompt has no tokens"
        case .tokenOutOfVocabulary(let token, let index, let size):
            "prompt token \(index) is \(token), outside the vocabulary (0..<\(size))"
        case .invalidMaxTokens(let n):
            "max tokens must be at least 1, got \(n)"
        case .adapterMismatch(let name, let detail):
            "adapter '\(name)' does not fit the model: \(detail)"
        case .invalidConfiguration(let message):
            "invalid engine configuration: \(message)"
        case .notStarted:
            "the engine has not been started"
        case .shuttingDown:
            "the engine is shutting down and accepts no new requests"
        }
    }
}
