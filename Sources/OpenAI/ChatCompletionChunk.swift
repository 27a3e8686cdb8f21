import JSON

/// Builds the `chat.completion.chunk` objects of one streamed chat completion.
///
/// The stream is: `roleChunk()`, then `contentChunk` per piece of text, then
/// `finishChunk(_:)`, then — when the request set `stream_options.include_usage` —
/// `usageChunk(_:)` (empty `choices`), then `ServerSentEvents.done`. With `includeUsage`
/// every other chunk carries `"usage": null`, as OpenAI sends it.
public struct ChatCompletionChunkBuilder: Sendable, Equatable {
    public var id: String
    public var created: Int64
    public var model: String
    public var includeUsage: Bool

    public init(id: String, created: Int64, model: String, includeUsage: Bool = false) {
        self.id = id
        self.created = created
        self.model = model
        self.includeUsage = includeUsage
    }

    /// The first chunk: `delta: {"role": "assistant", "content": ""}`.
    public func roleChunk() -> JSONValue {
        chunk(delta: ["role": "assistant", "content": ""], logprobs: nil, finishReason: nil)
    }

    /// A chunk with more text (and its tokens' log-probabilities when requested).
    public func contentChunk(_ text: String, logprobs: [TokenLogprob]? = nil) -> JSONValue {
        chunk(delta: ["content": .string(text)], logprobs: logprobs, finishReason: nil)
    }

    /// The last choice chunk: empty delta and the finish reason.
    public func finishChunk(_ reason: FinishReason) -> JSONValue {
        chunk(delta: [:], logprobs: nil, finishReason: reason)
    }

    /// The usage chunk sent after the finish chunk when `includeUsage` is set: `choices: []`.
    public func usageChunk(_ usage: Usage) -> JSONValue {
        var object = header()
        object["choices"] = .array([])
        object["usage"] = usage.json
        return .object(object)
    }

    private func header() -> JSONObject {
        JSONObject([
            ("id", .string(id)), ("object", "chat.completion.chunk"), ("created", .int(created)), ("model", .string(model)),
        ])
    }

    private func chunk(delta: JSONValue, logprobs: [TokenLogprob]?, finishReason: FinishReason?) -> JSONValue {
        var object = header()
        object["choices"] = [[
            "index": 0,
            "delta": delta,
            "logprobs": TokenLogprob.chatJSON(logprobs),
            "finish_reason": JSONValue(finishReason?.rawValue),
        ]]
        if includeUsage { object["usage"] = .null }
        return .object(object)
    }
}
