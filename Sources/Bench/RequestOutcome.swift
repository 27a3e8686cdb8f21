/// Why a request failed, as the report groups them.
public enum RequestErrorKind: Sendable, Hashable, CustomStringConvertible {
    /// The server answered with this non-2xx status.
    case http(Int)
    /// The connection could not be made, or was closed/reset before the response ended.
    case connection
    /// The request did not finish before `--timeout`.
    case timeout
    /// The response was not valid HTTP, SSE or JSON, or the stream ended without `[DONE]`.
    case protocolError
    /// The server reported an error inside a started stream (`data: {"error": …}`).
    case streamError

    /// The key in the report: `http_503`, `connection`, `timeout`, `protocol`, `stream_error`.
    public var description: String {
        switch self {
        case .http(let status): return "http_\(status)"
        case .connection: return "connection"
        case .timeout: return "timeout"
        case .protocolError: return "protocol"
        case .streamError: return "stream_error"
        }
    }

    init(_ error: HTTPClientError) {
        switch error {
        case .connect, .connectionClosed, .io: self = .connection
        case .timeout: self = .timeout
        case .protocolViolation: self = .protocolError
        }
    }
}

/// What one request did. Times are nanoseconds from the start of the run (`MonotonicClock`).
public struct RequestOutcome: Sendable {
    /// Position in the run (0-based), which also seeds its model, prompt and length.
    public var index: Int
    public var model: String
    public var maxTokens: Int
    /// When the request was due: equals `sentAt` in closed loop; in open loop the Poisson arrival time.
    /// Latencies count from here, so client-side queueing is not hidden.
    public var scheduledAt: UInt64
    public var sentAt: UInt64
    public var endedAt: UInt64
    /// First chunk with content (streaming only).
    public var firstTokenAt: UInt64?
    /// Arrival times of every chunk with content (streaming), for the inter-token latencies and the timeline.
    public var chunkTimes: [UInt64] = []
    /// From the server's `usage.completion_tokens`; when the server sent no usage, the count of content chunks.
    public var outputTokens: Int = 0
    public var promptTokens: Int?
    public var usageReported = false
    public var error: RequestErrorKind?
    /// The error's text (server message, errno text, …), shortened.
    public var errorDetail: String?

    public var succeeded: Bool { error == nil }
    public var latency: UInt64 { endedAt &- scheduledAt }
    public var timeToFirstToken: UInt64? { firstTokenAt.map { $0 &- scheduledAt } }

    public init(index: Int, model: String, maxTokens: Int, scheduledAt: UInt64, sentAt: UInt64) {
        self.index = index
        self.model = model
        self.maxTokens = maxTokens
        self.scheduledAt = scheduledAt
        self.sentAt = sentAt
        self.endedAt = sentAt
    }
}
