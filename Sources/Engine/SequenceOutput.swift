import Tokenizer

/// Why a sequence stopped producing tokens.
public enum StopCause: Sendable, Equatable {
    /// An end-of-generation token was sampled (its text is not emitted).
    case token(Int32)
    /// A stop string appeared in the text (it is not emitted, nor anything after it).
    case string(String)
    /// The token limit was reached: `maxTokens`, or the end of the context.
    case length
}

/// Turns one sequence's sampled tokens into the text the client sees, and decides when the
/// sequence ends: end-of-generation tokens, stop strings that may span tokens, the token limit,
/// and UTF-8 characters split over tokens (held by a `StreamingDecoder`).
///
/// A pure value: no threads, no model; the engine feeds it one token per step.
public struct SequenceOutput: Sendable {
    private var decoder: StreamingDecoder
    private var matcher: StopStringMatcher
    public let stopTokens: Set<Int32>
    /// Most tokens this sequence may produce (at least 1).
    public let tokenLimit: Int
    /// Tokens accepted so far, the stopping token included.
    public private(set) var tokenCount = 0
    /// Set once the sequence has ended.
    public private(set) var stopCause: StopCause?

    public init(tokenizer: Tokenizer, stopTokens: Set<Int32>, stopStrings: [String], tokenLimit: Int,
                skipSpecialTokens: Bool = true) {
        decoder = StreamingDecoder(tokenizer: tokenizer, skipSpecial: skipSpecialTokens)
        matcher = StopStringMatcher(stops: stopStrings)
        self.stopTokens = stopTokens
        self.tokenLimit = max(1, tokenLimit)
    }

    /// The result of accepting one token.
    public struct Step: Sendable, Equatable {
        /// Text released by this token (possibly empty, possibly text of earlier tokens).
        public var text: String
        /// Whether the token is part of the visible output (false for a stop token).
        public var visible: Bool
        /// Set when this token ended the sequence.
        public var stop: StopCause?
    }

    /// Accepts the next sampled token. Must not be called after the sequence has ended.
    public mutating func accept(_ token: Int32) -> Step {
        precondition(stopCause == nil, "SequenceOutput.accept after the sequence ended")
        tokenCount += 1
        if stopTokens.contains(token) {
            stopCause = .token(token)
            return Step(text: finishText(), visible: false, stop: stopCause)
        }
        var text = matcher.push(decoder.push(token))
        if let stop = matcher.matched {
            stopCause = .string(stop)
            return Step(text: text, visible: true, stop: stopCause)
        }
        if tokenCount >= tokenLimit {
            text += finishText()
            stopCause = matcher.matched.map { .string($0) } ?? .length
            return Step(text: text, visible: true, stop: stopCause)
        }
        return Step(text: text, visible: true, stop: nil)
    }

    /// Bytes of an unfinished character (as U+FFFD), then held-back stop-string prefixes.
    /// The decoder's leftovers can still complete a stop string, so they go through the matcher.
    private mutating func finishText() -> String {
        let text = matcher.push(decoder.finish())
        if matcher.matched != nil { return text }
        return text + matcher.flush()
    }
}
