import JSON

/// A validated body of `POST /v1/completions` (the legacy text completion endpoint).
///
/// Accepted besides the sampling fields (see `SamplingOptions`): `model`, `prompt`, `max_tokens`
/// (default 16, as OpenAI), `stream`, `stream_options`, `logprobs` (an integer 0…5: report that
/// many alternatives per token), `n` and `best_of` (only 1), `echo` (only false), `suffix` (only
/// empty), `user`, and our `lora` extension. Any field may be `null`, meaning "not given".
public struct CompletionRequest: Sendable, Equatable {
    /// The prompt: text, or token ids that bypass the tokenizer.
    public enum Prompt: Sendable, Equatable {
        case text(String)
        case tokens([Int32])
    }

    public var model: String
    public var prompt: Prompt
    public var stream: Bool = false
    public var includeUsage: Bool = false
    /// Most tokens to generate (OpenAI's default for this endpoint is 16).
    public var maxTokens: Int = CompletionRequest.defaultMaxTokens
    public var sampling: SamplingOptions
    public var lora: [LoraSelection]
    public var user: String?

    public static let defaultMaxTokens = 16
    /// Largest `logprobs` value (OpenAI's limit for this endpoint).
    public static let maxLogprobs = 5

    /// Top-level fields accepted in a request.
    public static let acceptedFields: Set<String> = SamplingOptions.fieldNames.union([
        "model", "prompt", "max_tokens", "stream", "stream_options", "logprobs", "n", "best_of", "echo", "suffix",
        "user", "lora",
    ])

    public init(model: String, prompt: Prompt, sampling: SamplingOptions = SamplingOptions(), lora: [LoraSelection] = []) {
        self.model = model
        self.prompt = prompt
        self.sampling = sampling
        self.lora = lora
    }

    /// Parses and validates a request body.
    public init(json: JSONValue) throws(OpenAIError) {
        let reader = try FieldReader(json, path: "")
        try reader.rejectUnknown(Self.acceptedFields)
        model = try reader.requiredString("model")
        prompt = try Self.readPrompt(try reader.requiredValue("prompt"))
        sampling = try SamplingOptions(reading: reader)
        if let n = try reader.integer("logprobs", in: 0...Int64(Self.maxLogprobs)) {
            sampling.logprobs = true
            sampling.topLogprobs = Int(n)
        }
        (stream, includeUsage) = try readStreaming(reader)
        maxTokens = try readMaxTokens(reader, names: ["max_tokens"]) ?? Self.defaultMaxTokens
        lora = try LoraSelection.read(reader)
        user = try reader.string("user")
        try requireOne(reader, "n")
        try requireOne(reader, "best_of")
        if try reader.bool("echo") == true {
            throw .invalidRequest("Invalid 'echo': echoing the prompt is not supported by this server.", param: "echo")
        }
        if let suffix = try reader.string("suffix"), !suffix.isEmpty {
            throw .invalidRequest("Invalid 'suffix': suffixes (insertion) are not supported by this server.", param: "suffix")
        }
    }

    /// Parses a request body from bytes.
    public init(body: [UInt8]) throws(OpenAIError) {
        let json: JSONValue
        do { json = try JSONParser.parse(body) } catch { throw .invalidJSON(error) }
        try self.init(json: json)
    }

    /// A string, a list of one string, a list of token ids, or a list of one list of token ids.
    private static func readPrompt(_ value: JSONValue) throws(OpenAIError) -> Prompt {
        switch value {
        case .string(let s):
            return .text(s)
        case .array(let elements):
            if elements.count == 1, case .string(let s) = elements[0] { return .text(s) }
            if elements.count == 1, case .array(let inner) = elements[0] { return .tokens(try readTokens(inner, param: "prompt[0]")) }
            if elements.count > 1, elements.allSatisfy({ $0.stringValue != nil || $0.arrayValue != nil }) {
                throw .invalidRequest("Invalid 'prompt': only one prompt per request is supported, but got \(elements.count).", param: "prompt")
            }
            return .tokens(try readTokens(elements, param: "prompt"))
        default:
            throw typeError("prompt", expected: "a string or an array of token ids", got: value)
        }
    }

    private static func readTokens(_ elements: [JSONValue], param: String) throws(OpenAIError) -> [Int32] {
        guard !elements.isEmpty else {
            throw .invalidRequest("Invalid '\(param)': expected at least one token id, but got an empty array.", param: param)
        }
        var tokens: [Int32] = []
        tokens.reserveCapacity(elements.count)
        for (i, element) in elements.enumerated() {
            tokens.append(Int32(try readInteger(element, param: "\(param)[\(i)]", in: 0...Int64(Int32.max))))
        }
        return tokens
    }
}
