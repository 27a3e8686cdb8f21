/// Turns token ids, fed one at a time, into text as soon as it is complete UTF-8.
///
/// A character whose bytes are split over several tokens is held until its last byte arrives;
/// bytes that can no longer become a valid character come out as U+FFFD (exactly where
/// `decode` would put them, so the pieces always concatenate to `decode(ids)`).
///
/// ```swift
/// var stream = StreamingDecoder(tokenizer: tokenizer)
/// for id in generated { send(stream.push(id)) }
/// send(stream.finish())
/// ```
public struct StreamingDecoder: Sendable {
    public let tokenizer: Tokenizer
    /// Drop control tokens, like `decode(_:skipSpecial: true)`.
    public let skipSpecial: Bool
    private var pending: [UInt8] = []

    public init(tokenizer: Tokenizer, skipSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecial = skipSpecial
    }

    /// True when bytes of an unfinished character are held back.
    public var hasPendingBytes: Bool { !pending.isEmpty }

    /// Adds one token; returns the text that is now complete (often empty or one piece).
    /// An id outside the vocabulary adds nothing.
    public mutating func push(_ id: Int32) -> String {
        tokenizer.appendBytes(of: id, skipSpecial: skipSpecial, to: &pending)
        let keep = Self.incompleteTailStart(pending)
        guard keep > 0 else { return "" }
        let text = String(decoding: pending[..<keep], as: UTF8.self)
        pending.removeFirst(keep)
        return text
    }

    /// Ends the stream: whatever is still held back comes out (as U+FFFD).
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Where a trailing, not yet complete but still valid, UTF-8 sequence starts in `bytes`
    /// (`bytes.count` when there is none).
    static func incompleteTailStart(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        var lead = n - 1
        while lead >= 0 && lead >= n - 3 && bytes[lead] & 0xC0 == 0x80 { lead -= 1 }
        guard lead >= 0 && lead >= n - 3 else { return n }
        let b0 = bytes[lead]
        let length: Int
        switch b0 {
        case 0xC2...0xDF: length = 2
        case 0xE0...0xEF: length = 3
        case 0xF0...0xF4: length = 4
        default: return n
        }
        guard n - lead < length else { return n }  // complete, or ill-formed: decode it now
        if lead + 1 < n {
            let b1 = bytes[lead + 1]
            let ok: Bool
            switch b0 {
            case 0xE0: ok = (0xA0...0xBF).contains(b1)
            case 0xED: ok = (0x80...0x9F).contains(b1)
            case 0xF0: ok = (0x90...0xBF).contains(b1)
            case 0xF4: ok = (0x80...0x8F).contains(b1)
            default: ok = true  // a continuation byte, checked above
            }
            if !ok { return n }
        }
        return lead
    }
}
