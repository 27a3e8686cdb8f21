import JSON

/// A non-streamed chat completion: the `chat.completion` object.
public struct ChatCompletion: Sendable, Equatable {
    public struct Choice: Sendable, Equatable {
        public var index: Int
        /// The assistant's reply.
        public var content: String
        /// Per-token log-probabilities when the request asked for them.
        public var logprobs: [TokenLogprob]?
        public var finishReason: FinishReason

        public init(index: Int = 0, content: String, logprobs: [TokenLogprob]? = nil, finishReason: FinishReason) {
            self.index = index
            self.content = content
            self.logprobs = logprobs
            self.finishReason = finishReason
        }
    }

    /// "chatcmpl-…", see `ResponseID`.
    public var id: String
    /// Unix time in seconds.
    public var created: Int64
    public var model: String
    public var choices: [Choice]
    public var usage: Usage

    public init(id: String, created: Int64, model: String, choices: [Choice], usage: Usage) {
        self.id = id
        self.created = created
        self.model = model
        self.choices = choices
        self.usage = usage
    }

    /// The OpenAI shape:
    /// `{"id", "object": "chat.completion", "created", "model", "choices": [{"index",
    /// "message": {"role": "assistant", "content", "refusal": null}, "logprobs", "finish_reason"}], "usage"}`.
    public var json: JSONValue {
        [
            "id": .string(id),
            "object": "chat.completion",
            "created": .int(created),
            "model": .string(model),
            "choices": .array(choices.map { choice in
                [
                    "index": JSONValue(choice.index),
                    "message": ["role": "assistant", "content": .string(choice.content), "refusal": nil],
                    "logprobs": TokenLogprob.chatJSON(choice.logprobs),
                    "finish_reason": .string(choice.finishReason.rawValue),
                ]
            }),
            "usage": usage.json,
        ]
    }
}
