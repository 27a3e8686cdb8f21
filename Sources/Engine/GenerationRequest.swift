import Llama

/// Identifies one submitted request for the life of an engine.
public struct RequestID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: RequestID, b: RequestID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "req-\(rawValue)" }
}

/// An unmerged adapter and the multiplier on its delta.
public struct ScaledAdapter: Sendable {
    public var adapter: LoRAAdapter
    public var scale: Float

    public init(_ adapter: LoRAAdapter, scale: Float = 1) {
        self.adapter = adapter
        self.scale = scale
    }
}

/// The adapters one request runs with, already resolved by the caller: merged weights replace
/// base matrices for this request's rows, and every unmerged adapter adds `scale · ΔW` on top.
public struct AdapterPayload: Sendable {
    public var adapters: [ScaledAdapter]
    public var merged: MergedWeights?

    public init(adapters: [ScaledAdapter] = [], merged: MergedWeights? = nil) {
        self.adapters = adapters
        self.merged = merged
    }

    /// No adapter: the base model.
    public static let none = AdapterPayload()
    public var isEmpty: Bool { adapters.isEmpty && merged == nil }
}

/// When generation ends, besides the token limit.
public struct StopConditions: Sendable, Equatable {
    /// Also stop on the tokenizer's end-of-generation tokens (`eos`, `<|im_end|>`, `<|eot_id|>`, …).
    public var useModelEndTokens: Bool
    /// Further token ids that end generation.
    public var tokenIDs: Set<Int32>
    /// Strings that end generation; neither they nor anything after them is emitted.
    public var strings: [String]

    public init(useModelEndTokens: Bool = true, tokenIDs: Set<Int32> = [], strings: [String] = []) {
        self.useModelEndTokens = useModelEndTokens
        self.tokenIDs = tokenIDs
        self.strings = strings
    }
}

/// One piece of a streamed generation: the tokens sampled in one step and the text they
/// released. `text` may be empty (a token whose text is held back: part of a character, or a
/// possible stop-string prefix) and may include text of earlier tokens.
public struct GenerationDelta: Sendable, Equatable {
    /// Visible tokens (a stop token is not listed), with log-probabilities when asked for.
    public var tokens: [SampledToken]
    public var text: String

    public init(tokens: [SampledToken], text: String) {
        self.tokens = tokens
        self.text = text
    }
}

/// How a request ended.
public enum GenerationOutcome: Sendable, Equatable {
    /// A stop token or stop string.
    case stop(StopCause)
    /// `maxTokens` or the end of the context.
    case length
    /// `cancel` was called, or the engine stopped at its deadline.
    case cancelled
    /// The forward pass failed; the message says why.
    case error(String)

    /// OpenAI's `finish_reason` spelling.
    public var finishReason: String {
        switch self {
        case .stop: "stop"
        case .length: "length"
        case .cancelled: "cancelled"
        case .error: "error"
        }
    }
}

/// The last event of every request.
public struct GenerationSummary: Sendable, Equatable {
    public var id: RequestID
    public var outcome: GenerationOutcome
    public var promptTokens: Int
    /// Prompt tokens whose keys and values came from the prefix cache (no forward pass).
    public var cachedPromptTokens: Int
    /// Sampled tokens, the stop token included.
    public var completionTokens: Int
    /// From submission to the first sampled token (nil when none was sampled).
    public var timeToFirstToken: Duration?
    /// From submission to the end.
    public var duration: Duration
    /// From submission to the first forward pass that included the request.
    public var queueTime: Duration?

    public init(id: RequestID, outcome: GenerationOutcome, promptTokens: Int, cachedPromptTokens: Int = 0, completionTokens: Int,
                timeToFirstToken: Duration?, duration: Duration, queueTime: Duration?) {
        self.id = id
        self.outcome = outcome
        self.promptTokens = promptTokens
        self.cachedPromptTokens = cachedPromptTokens
        self.completionTokens = completionTokens
        self.timeToFirstToken = timeToFirstToken
        self.duration = duration
        self.queueTime = queueTime
    }
}

/// What the engine reports about a request, from its own thread, in order: zero or more
/// `.delta`, then exactly one `.finished`.
public enum GenerationEvent: Sendable, Equatable {
    case delta(GenerationDelta)
    case finished(GenerationSummary)
}

/// Everything the engine needs to run one generation; the prompt is already tokenized and the
/// adapters are already resolved.
public struct GenerationRequest: Sendable {
    /// The prompt's token ids (BOS and chat template already applied).
    public var prompt: [Int32]
    public var sampling: SamplingParameters
    public var stop: StopConditions
    /// Most tokens to sample (≥ 1); the end of the context may stop generation earlier.
    public var maxTokens: Int
    public var adapters: AdapterPayload
    /// Leave control tokens out of the text (they still count as tokens).
    public var skipSpecialTokens: Bool
    /// Called on the engine thread for every event; keep it short (it delays the next step).
    public var onEvent: @Sendable (GenerationEvent) -> Void

    public init(prompt: [Int32], sampling: SamplingParameters = SamplingParameters(), stop: StopConditions = StopConditions(),
                maxTokens: Int = 256, adapters: AdapterPayload = .none, skipSpecialTokens: Bool = true,
                onEvent: @escaping @Sendable (GenerationEvent) -> Void) {
        self.prompt = prompt
        self.sampling = sampling
        self.stop = stop
        self.maxTokens = maxTokens
        self.adapters = adapters
        self.skipSpecialTokens = skipSpecialTokens
        self.onEvent = onEvent
    }
}
