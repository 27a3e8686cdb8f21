/// How to pick the next token. Defaults are the OpenAI defaults: plain sampling at temperature 1
/// with every filter and penalty off.
///
/// Values arrive validated by the OpenAI layer; the sampler still treats out-of-range values
/// safely (a non-positive or NaN temperature means greedy, `topK <= 0` or `topK >= vocab` means
/// off, `topP` outside (0, 1) means off, and logit-bias ids outside the vocabulary are ignored).
public struct SamplingParameters: Sendable, Equatable {
    /// Softmax temperature; 0 selects greedy decoding (argmax, ties to the lowest token id).
    public var temperature: Float = 1
    /// Keep only the `topK` most likely tokens; 0 (or -1) turns the filter off.
    public var topK: Int = 0
    /// Nucleus sampling: keep the smallest set of most likely tokens whose mass reaches `topP`.
    public var topP: Float = 1
    /// Drop tokens whose probability is below `minP` times that of the most likely token.
    public var minP: Float = 0
    /// Seed for reproducible sampling; nil draws a random seed.
    public var seed: UInt64? = nil
    /// Divides positive logits / multiplies negative ones of every token seen in prompt or output.
    public var repetitionPenalty: Float = 1
    /// Subtracted once per occurrence of a token in the generated output (OpenAI's formula).
    public var frequencyPenalty: Float = 0
    /// Subtracted once from every token that occurs in the generated output.
    public var presencePenalty: Float = 0
    /// Added to the logit of the given token ids before anything else (-100 bans, +100 forces).
    public var logitBias: [Int32: Float] = [:]
    /// Report the chosen token's log-probability.
    public var logprobs: Bool = false
    /// Also report this many most likely alternatives (0…20) with their log-probabilities.
    public var topLogprobs: Int = 0

    public init(
        temperature: Float = 1, topK: Int = 0, topP: Float = 1, minP: Float = 0, seed: UInt64? = nil,
        repetitionPenalty: Float = 1, frequencyPenalty: Float = 0, presencePenalty: Float = 0,
        logitBias: [Int32: Float] = [:], logprobs: Bool = false, topLogprobs: Int = 0
    ) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.seed = seed
        self.repetitionPenalty = repetitionPenalty
        self.frequencyPenalty = frequencyPenalty
        self.presencePenalty = presencePenalty
        self.logitBias = logitBias
        self.logprobs = logprobs
        self.topLogprobs = topLogprobs
    }

    /// Greedy decoding: temperature 0.
    public static let greedy = SamplingParameters(temperature: 0)
}
