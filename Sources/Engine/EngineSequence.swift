import Llama
import Tokenizer

/// One request while the engine runs it: its KV cache (from admission to the end), its sampler
/// and its output state. Owned and touched only by the engine thread.
final class EngineSequence {
    let id: RequestID
    let request: GenerationRequest
    /// Most tokens to sample: `maxTokens`, less if the context ends first.
    let tokenLimit: Int
    /// Positions the cache must hold: the prompt plus every sampled token but the last.
    let cacheLength: Int
    var cache: KVCache?
    /// A cached prefix of the prompt, found and copied into `cache` on admission.
    var prefix: PrefixCache.Hit?
    /// Prompt tokens taken from the prefix cache.
    var cachedPromptTokens = 0
    var sampler: Sampler
    var output: SequenceOutput
    /// The last sampled token, the input of the next decode step.
    var lastToken: Int32 = 0
    var generated = 0

    let submitted: ContinuousClock.Instant
    var started: ContinuousClock.Instant?
    var firstToken: ContinuousClock.Instant?
    var lastTokenTime: ContinuousClock.Instant?

    init(id: RequestID, request: GenerationRequest, submitted: ContinuousClock.Instant, contextLength: Int, tokenizer: Tokenizer) {
        self.id = id
        self.request = request
        self.submitted = submitted
        // Sampling token j needs the prompt and tokens 0..<j in the cache: prompt + j ≤ context.
        tokenLimit = max(1, min(request.maxTokens, contextLength - request.prompt.count + 1))
        cacheLength = request.prompt.count + tokenLimit - 1
        sampler = Sampler(parameters: request.sampling, prompt: request.prompt)
        var stopTokens = request.stop.tokenIDs
        if request.stop.useModelEndTokens { stopTokens.formUnion(tokenizer.endOfGenerationIDs) }
        output = SequenceOutput(tokenizer: tokenizer, stopTokens: stopTokens, stopStrings: request.stop.strings,
                                tokenLimit: tokenLimit, skipSpecialTokens: request.skipSpecialTokens)
    }

    /// The position of the next decode token.
    var decodePosition: Int { request.prompt.count + generated - 1 }
}
