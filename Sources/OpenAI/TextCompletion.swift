import JSON

/// A non-streamed text completion: the `text_completion` object of `/v1/completions`.
public struct TextCompletion: Sendable, Equatable {
    public var id: String
    public var created: Int64
    public var model: String
    public var text: String
    /// Per-token log-probabilities when the request set `logprobs`.
    public var logprobs: [TokenLogprob]?
    public var finishReason: FinishReason
    public var usage: Usage

    public init(id: String, created: Int64, model: String, text: String, logprobs: [TokenLogprob]? = nil,
                finishReason: FinishReason, usage: Usage) {
        self.id = id
        self.created = created
        self.model = model
        self.text = text
        self.logprobs = logprobs
        self.finishReason = finishReason
        self.usage = usage
    }

    /// `{"id", "object": "text_completion", "created", "model", "choices": [{"text", "index",
    /// "logprobs", "finish_reason"}], "usage"}`; `logprobs` in the legacy shape (see `TokenLogprob`).
    public var json: JSONValue {
        [
            "id": .string(id),
            "object": "text_completion",
            "created": .int(created),
            "model": .string(model),
            "choices": [[
                "text": .string(text),
                "index": 0,
                "logprobs": TokenLogprob.legacyJSON(logprobs, textOffset: 0),
                "finish_reason": .string(finishReason.rawValue),
            ]],
            "usage": usage.json,
        ]
    }
}

/// Builds the chunks of one streamed text completion (also `"object": "text_completion"`).
///
/// Send `textChunk` per piece, then `finishChunk`, then `usageChunk` when `includeUsage`, then
/// `ServerSentEvents.done`. The builder is a value: keep it in a `var` so `text_offset` advances.
public struct TextCompletionChunkBuilder: Sendable, Equatable {
    public var id: String
    public var created: Int64
    public var model: String
    public var includeUsage: Bool
    /// Unicode scalars emitted so far, the base of the next chunk's `text_offset`.
    public private(set) var emittedScalars = 0

    public init(id: String, created: Int64, model: String, includeUsage: Bool = false) {
        self.id = id
        self.created = created
        self.model = model
        self.includeUsage = includeUsage
    }

    /// A chunk with more text.
    public mutating func textChunk(_ text: String, logprobs: [TokenLogprob]? = nil) -> JSONValue {
        let value = chunk(text: text, logprobs: TokenLogprob.legacyJSON(logprobs, textOffset: emittedScalars), finishReason: nil)
        emittedScalars += text.unicodeScalars.count
        return value
    }

    /// The last choice chunk: empty text and the finish reason.
    public func finishChunk(_ reason: FinishReason) -> JSONValue {
        chunk(text: "", logprobs: .null, finishReason: reason)
    }

    /// The usage chunk: `choices: []`.
    public func usageChunk(_ usage: Usage) -> JSONValue {
        var object = header()
        object["choices"] = .array([])
        object["usage"] = usage.json
        return .object(object)
    }

    private func header() -> JSONObject {
        JSONObject([("id", .string(id)), ("object", "text_completion"), ("created", .int(created)), ("model", .string(model))])
    }

    private func chunk(text: String, logprobs: JSONValue, finishReason: FinishReason?) -> JSONValue {
        var object = header()
        object["choices"] = [[
            "text": .string(text), "index": 0, "logprobs": logprobs, "finish_reason": JSONValue(finishReason?.rawValue),
        ]]
        if includeUsage { object["usage"] = .null }
        return .object(object)
    }
}
