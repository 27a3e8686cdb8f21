import JSON

/// A validated body of `POST /v1/chat/completions`.
///
/// We are strict: a field outside `acceptedFields` is a 400 naming it. Besides the sampling fields
/// (see `SamplingOptions`) we accept the harmless fields common clients send:
/// - `n` (only 1), `user` (string, unused), `stream_options` (`include_usage` only, and only with
///   `stream: true`), `response_format` (only `{"type": "text"}`),
/// - `tools` (only empty), `tool_choice` (only "none"), `parallel_tool_calls` (boolean, unused),
/// - `store` (only false), `logprobs`, `top_logprobs` (0…20, needs `logprobs: true`),
/// - our extension `lora`: `[{"name": String, "scale": Number}]`.
/// Any field may be `null`, which means "not given".
public struct ChatCompletionRequest: Sendable, Equatable {
    /// The model or adapter name the client asked for.
    public var model: String
    /// The conversation, at least one message.
    public var messages: [ChatMessage]
    /// Stream the answer as server-sent events.
    public var stream: Bool = false
    /// When streaming, end with a chunk that carries `usage`.
    public var includeUsage: Bool = false
    /// Most tokens to generate, from `max_completion_tokens` or `max_tokens`; nil = up to the context.
    public var maxTokens: Int?
    public var sampling: SamplingOptions
    public var lora: [LoraSelection]
    public var user: String?

    /// Top-level fields accepted in a request.
    public static let acceptedFields: Set<String> = SamplingOptions.fieldNames.union([
        "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "logprobs",
        "top_logprobs", "n", "user", "lora", "response_format", "tools", "tool_choice", "parallel_tool_calls", "store",
    ])

    public init(model: String, messages: [ChatMessage], sampling: SamplingOptions = SamplingOptions(), lora: [LoraSelection] = []) {
        self.model = model
        self.messages = messages
        self.sampling = sampling
        self.lora = lora
    }

    /// Parses and validates a request body.
    public init(json: JSONValue) throws(OpenAIError) {
        let reader = try FieldReader(json, path: "")
        try reader.rejectUnknown(Self.acceptedFields)

        model = try reader.requiredString("model")
        let messagesValue = try reader.requiredValue("messages")
        guard case .array(let list) = messagesValue else {
            throw typeError("messages", expected: "an array", got: messagesValue)
        }
        guard !list.isEmpty else {
            throw .invalidRequest("Invalid 'messages': expected at least one message, but got an empty array.", param: "messages")
        }
        var messages: [ChatMessage] = []
        messages.reserveCapacity(list.count)
        for (i, value) in list.enumerated() { messages.append(try ChatMessage.read(value, index: i)) }
        self.messages = messages

        sampling = try SamplingOptions(reading: reader)
        sampling.logprobs = try reader.bool("logprobs") ?? false
        if let top = try reader.integer("top_logprobs", in: 0...20) {
            guard sampling.logprobs else {
                throw .invalidRequest("Invalid 'top_logprobs': requires 'logprobs' to be true.", param: "top_logprobs")
            }
            sampling.topLogprobs = Int(top)
        }

        (stream, includeUsage) = try readStreaming(reader)
        maxTokens = try readMaxTokens(reader, names: ["max_completion_tokens", "max_tokens"])
        lora = try LoraSelection.read(reader)
        user = try reader.string("user")
        try requireOne(reader, "n")
        try checkUnsupportedChatFields(reader)
    }

    /// Parses a request body from bytes.
    public init(body: [UInt8]) throws(OpenAIError) {
        let json: JSONValue
        do { json = try JSONParser.parse(body) } catch { throw .invalidJSON(error) }
        try self.init(json: json)
    }
}

// MARK: - Fields shared with /v1/completions

/// Reads `stream` and `stream_options.include_usage`.
func readStreaming(_ reader: FieldReader) throws(OpenAIError) -> (stream: Bool, includeUsage: Bool) {
    let stream = try reader.bool("stream") ?? false
    guard let options = reader.value("stream_options") else { return (stream, false) }
    guard stream else {
        throw .invalidRequest("Invalid 'stream_options': only allowed when 'stream' is true.", param: "stream_options")
    }
    let optionsReader = try FieldReader(options, path: "stream_options")
    try optionsReader.rejectUnknown(["include_usage"])
    return (stream, try optionsReader.bool("include_usage") ?? false)
}

/// Reads the first given of `names` as a positive token count; two given with different values is an error.
func readMaxTokens(_ reader: FieldReader, names: [String]) throws(OpenAIError) -> Int? {
    var result: (name: String, value: Int)?
    for name in names {
        guard let value = try reader.integer(name, in: 1...Int64(Int32.max)) else { continue }
        if let earlier = result, earlier.value != Int(value) {
            throw .invalidRequest("'\(earlier.name)' and '\(name)' disagree; give only one.", param: name)
        }
        result = result ?? (name, Int(value))
    }
    return result?.value
}

/// Accepts an integer field only when it is 1 (we generate one choice per request).
func requireOne(_ reader: FieldReader, _ name: String) throws(OpenAIError) {
    guard let n = try reader.integer(name, in: Int64.min...Int64.max) else { return }
    guard n == 1 else {
        throw .invalidRequest("Invalid '\(name)': only \(name)=1 is supported by this server, but got \(n).", param: name)
    }
}

private func checkUnsupportedChatFields(_ reader: FieldReader) throws(OpenAIError) {
    if let format = reader.value("response_format") {
        let formatReader = try FieldReader(format, path: "response_format")
        try formatReader.rejectUnknown(["type"])
        let type = try formatReader.requiredString("type")
        guard type == "text" else {
            throw .invalidRequest("Invalid 'response_format.type': only 'text' is supported, but got '\(type)'.", param: "response_format.type")
        }
    }
    if let tools = reader.value("tools") {
        guard case .array(let list) = tools else { throw typeError("tools", expected: "an array", got: tools) }
        guard list.isEmpty else { throw .invalidRequest("'tools' is not supported by this server.", param: "tools") }
    }
    if let choice = reader.value("tool_choice"), choice.stringValue != "none" {
        throw .invalidRequest("Invalid 'tool_choice': only 'none' is supported by this server.", param: "tool_choice")
    }
    _ = try reader.bool("parallel_tool_calls")
    if try reader.bool("store") == true {
        throw .invalidRequest("Invalid 'store': storing completions is not supported by this server.", param: "store")
    }
}
