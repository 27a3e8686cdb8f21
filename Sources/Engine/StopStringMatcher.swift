/// Finds stop strings in streamed text, holding back any tail that could still grow into one.
///
/// Text goes in piece by piece (complete UTF-8 characters, as `StreamingDecoder` yields them).
/// What comes out is exactly the text before the first stop string, split into pieces as soon as
/// each piece can no longer be part of a stop string. Matching is on UTF-8 bytes; since every
/// stop string starts with a character's first byte, a match or a held-back tail always starts on
/// a character boundary, so every released piece is valid UTF-8.
public struct StopStringMatcher: Sendable {
    private let stops: [[UInt8]]  // non-empty stop strings, in the caller's order
    private let stopTexts: [String]
    private var held: [UInt8] = []
    /// The stop string that ended the text, once one has matched.
    public private(set) var matched: String?

    /// - Parameter stops: stop strings; empty ones are ignored.
    public init(stops: [String]) {
        let kept = stops.filter { !$0.isEmpty }
        stopTexts = kept
        self.stops = kept.map { Array($0.utf8) }
    }

    /// Text currently held back because it is a prefix of some stop string.
    public var heldText: String { String(decoding: held, as: UTF8.self) }

    /// Adds `text`; returns the text now known to precede any stop string. After a match, this
    /// returns the text up to the match and then nothing, and `matched` names the stop string.
    public mutating func push(_ text: String) -> String {
        guard matched == nil else { return "" }
        if stops.isEmpty { return text }
        held.append(contentsOf: text.utf8)
        if let (start, which) = firstMatch() {
            matched = stopTexts[which]
            let out = String(decoding: held[..<start], as: UTF8.self)
            held.removeAll()
            return out
        }
        let keep = heldTailStart()
        guard keep > 0 else { return "" }
        let out = String(decoding: held[..<keep], as: UTF8.self)
        held.removeFirst(keep)
        return out
    }

    /// Ends the text: whatever is held back was not a stop string after all and comes out.
    public mutating func flush() -> String {
        defer { held.removeAll() }
        return String(decoding: held, as: UTF8.self)
    }

    /// The earliest position where a whole stop string occurs (the first listed wins a tie).
    private func firstMatch() -> (Int, Int)? {
        let n = held.count
        for start in 0..<n {
            for (which, stop) in stops.enumerated() where stop.count <= n - start {
                var equal = true
                for j in 0..<stop.count where held[start + j] != stop[j] {
                    equal = false
                    break
                }
                if equal { return (start, which) }
            }
        }
        return nil
    }

    /// Where the longest tail of `held` that is a proper prefix of a stop string starts
    /// (`held.count` when none).
    private func heldTailStart() -> Int {
        let n = held.count
        for start in 0..<n {
            let tail = n - start
            for stop in stops where tail < stop.count {
                var prefix = true
                for j in 0..<tail where held[start + j] != stop[j] {
                    prefix = false
                    break
                }
                if prefix { return start }
            }
        }
        return n
    }
}
