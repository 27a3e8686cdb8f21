import JSON

/// Why generation ended, as OpenAI spells it.
public enum FinishReason: String, Sendable, Equatable {
    /// A stop sequence or the end-of-sequence token.
    case stop
    /// `max_tokens` or the context length was reached.
    case length
}

/// Token counts of one request.
public struct Usage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    /// Prompt tokens served from the prefix cache (counted in `promptTokens` too).
    public var cachedTokens: Int
    public var totalTokens: Int { promptTokens + completionTokens }

    public init(promptTokens: Int, completionTokens: Int, cachedTokens: Int = 0) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedTokens = cachedTokens
    }

    /// `{"prompt_tokens": …, "completion_tokens": …, "total_tokens": …,
    ///   "prompt_tokens_details": {"cached_tokens": …}}`, as OpenAI reports prompt caching.
    public var json: JSONValue {
        ["prompt_tokens": JSONValue(promptTokens), "completion_tokens": JSONValue(completionTokens),
         "total_tokens": JSONValue(totalTokens), "prompt_tokens_details": ["cached_tokens": JSONValue(cachedTokens)]]
    }
}

/// The log-probability of one generated token and of its most likely alternatives.
public struct TokenLogprob: Sendable, Equatable {
    public struct Alternative: Sendable, Equatable {
        /// The token's text (lossy when its bytes are not complete UTF-8).
        public var token: String
        /// The token's raw bytes.
        public var bytes: [UInt8]
        public var logprob: Double

        public init(token: String, bytes: [UInt8], logprob: Double) {
            self.token = token
            self.bytes = bytes
            self.logprob = logprob
        }

        /// `{"token": …, "logprob": …, "bytes": […]}`
        public var json: JSONValue {
            ["token": .string(token), "logprob": jsonLogprob(logprob), "bytes": .array(bytes.map { JSONValue($0) })]
        }
    }

    public var token: String
    public var bytes: [UInt8]
    public var logprob: Double
    /// Most likely alternatives, most likely first (may include the chosen token).
    public var topLogprobs: [Alternative]

    public init(token: String, bytes: [UInt8], logprob: Double, topLogprobs: [Alternative] = []) {
        self.token = token
        self.bytes = bytes
        self.logprob = logprob
        self.topLogprobs = topLogprobs
    }

    /// The chat shape: `{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}`.
    public var json: JSONValue {
        ["token": .string(token), "logprob": jsonLogprob(logprob), "bytes": .array(bytes.map { JSONValue($0) }),
         "top_logprobs": .array(topLogprobs.map(\.json))]
    }

    /// Chat's choice-level `logprobs`: `{"content": [...], "refusal": null}`.
    static func chatJSON(_ logprobs: [TokenLogprob]?) -> JSONValue {
        guard let logprobs else { return .null }
        return ["content": .array(logprobs.map(\.json)), "refusal": nil]
    }

    /// The legacy completions shape: parallel lists `tokens`, `token_logprobs`, `top_logprobs`
    /// (one `{token: logprob}` object per position) and `text_offset` (in Unicode scalars,
    /// counted from `textOffset`).
    static func legacyJSON(_ logprobs: [TokenLogprob]?, textOffset: Int) -> JSONValue {
        guard let logprobs else { return .null }
        var offsets: [JSONValue] = []
        var offset = textOffset
        for entry in logprobs {
            offsets.append(JSONValue(offset))
            offset += entry.token.unicodeScalars.count
        }
        return [
            "tokens": .array(logprobs.map { .string($0.token) }),
            "token_logprobs": .array(logprobs.map { jsonLogprob($0.logprob) }),
            "top_logprobs": .array(logprobs.map { entry in
                .object(JSONObject(entry.topLogprobs.map { ($0.token, jsonLogprob($0.logprob)) }))
            }),
            "text_offset": .array(offsets),
        ]
    }
}

/// JSON has no -infinity; like vLLM we report impossible tokens as -9999.
func jsonLogprob(_ logprob: Double) -> JSONValue {
    .number(logprob.isFinite ? max(logprob, -9999) : -9999)
}

/// Response identifiers such as "chatcmpl-3kX9…".
public enum ResponseID {
    private static let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".utf8)

    /// `prefix` + "-" + 24 random alphanumerics.
    public static func make(prefix: String, using generator: inout some RandomNumberGenerator) -> String {
        var bytes = Array(prefix.utf8)
        bytes.append(UInt8(ascii: "-"))
        for _ in 0..<24 { bytes.append(alphabet[Int.random(in: 0..<alphabet.count, using: &generator)]) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `make(prefix:using:)` with the system's random generator.
    public static func make(prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        return make(prefix: prefix, using: &generator)
    }
}
