/// A byte-level BPE tokenizer (GPT-2 family: SmolLM, Llama 3, Qwen 2, ...) built from a GGUF
/// vocabulary. Immutable and thread-safe; encoding and decoding never fail.
///
/// ```swift
/// let tokenizer = try Tokenizer(gguf: try GGUFFile(path: path))
/// let ids = tokenizer.encode(prompt, parseSpecial: true)
/// let text = tokenizer.decode(ids)
/// ```
public final class Tokenizer: Sendable {
    /// `tokenizer.ggml.token_type` values.
    public enum TokenType: Int32, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    public let vocabularySize: Int
    public let preTokenizer: PreTokenizer
    public let bos: Int32?
    public let eos: Int32?
    public let pad: Int32?
    public let unknown: Int32?
    /// `tokenizer.ggml.add_bos_token`: whether prompts should start with `bos`. `encode` never
    /// adds it; callers do.
    public let addsBOS: Bool
    /// Tokens that end a generation: `eos` plus every token of the vocabulary spelled like a
    /// known end-of-turn marker (`<|im_end|>`, `<|eot_id|>`, `<|end|>`, `<end_of_turn>`, ...).
    public let endOfGenerationIDs: Set<Int32>

    /// Spellings that end a turn in the chat formats we know (llama.cpp's list).
    public static let endOfGenerationTexts: Set<String> = [
        "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
        "<|end_of_text|>", "<EOT>", "<end_of_utterance>",
    ]

    let texts: [String]  // [vocabularySize] as spelled in the vocabulary
    let types: [TokenType]  // [vocabularySize]
    let pieceBytes: [UInt8]  // the decoded bytes of every token, concatenated
    let pieceOffsets: [Int]  // [vocabularySize + 1]: token i is pieceBytes[pieceOffsets[i]..<pieceOffsets[i+1]]
    let specials: SpecialTokenMatcher
    let model: BPEModel

    /// Builds a tokenizer from plain arrays, as stored under the `tokenizer.ggml.*` keys.
    ///
    /// - Parameters:
    ///   - tokens: every token, spelled in GPT-2's byte alphabet (control and user-defined tokens
    ///     are spelled as plain text).
    ///   - merges: "left right" pairs, highest priority first.
    ///   - tokenTypes: one `TokenType` raw value per token (unknown values count as normal);
    ///     nil means all normal.
    ///   - preTokenizer: a `tokenizer.ggml.pre` name (see `PreTokenizer.known`).
    public init(
        tokens: [String], merges: [String], tokenTypes: [Int32]? = nil, preTokenizer: String = "default",
        bos: Int32? = nil, eos: Int32? = nil, pad: Int32? = nil, unknown: Int32? = nil, addBOS: Bool = false
    ) throws(TokenizerError) {
        guard !tokens.isEmpty else { throw .emptyVocabulary }
        let n = tokens.count
        if let tokenTypes, tokenTypes.count != n {
            throw .lengthMismatch(what: "tokenizer.ggml.token_type", count: tokenTypes.count, expected: n)
        }
        for (key, id) in [("bos_token_id", bos), ("eos_token_id", eos), ("padding_token_id", pad),
                          ("unknown_token_id", unknown)] {
            if let id, id < 0 || Int(id) >= n {
                throw .tokenIDOutOfRange(key: "tokenizer.ggml.\(key)", id: Int(id), vocabularySize: n)
            }
        }
        self.preTokenizer = try PreTokenizer(name: preTokenizer)
        self.vocabularySize = n
        self.texts = tokens
        self.bos = bos
        self.eos = eos
        self.pad = pad
        self.unknown = unknown
        self.addsBOS = addBOS
        let types = (tokenTypes ?? []).map { TokenType(rawValue: $0) ?? .normal }
        self.types = types.isEmpty ? Array(repeating: .normal, count: n) : types

        // Bytes of each token, and the id of each spelling (first occurrence wins).
        var pieceBytes = [UInt8]()
        var pieceOffsets = [0]
        pieceOffsets.reserveCapacity(n + 1)
        var idOf = [String: Int32](minimumCapacity: n)
        for (i, text) in tokens.enumerated() {
            pieceBytes.append(contentsOf: Self.bytes(of: text, type: self.types[i]))
            pieceOffsets.append(pieceBytes.count)
            if idOf[text] == nil { idOf[text] = Int32(i) }
        }
        self.pieceBytes = pieceBytes
        self.pieceOffsets = pieceOffsets

        var byteToken = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            byteToken[b] = idOf[String(ByteLevel.scalarForByte[b])] ?? -1
        }

        var mergeTable = [UInt64: UInt64](minimumCapacity: merges.count)
        for (rank, merge) in merges.enumerated() {
            // Split at the first space after the first character, as llama.cpp does.
            let chars = merge.unicodeScalars
            guard let space = chars.dropFirst().firstIndex(of: " ") else {
                throw .malformedMerge(index: rank, merge: merge)
            }
            let left = String(chars[chars.startIndex..<space])
            let right = String(chars[chars.index(after: space)...])
            guard !right.isEmpty else { throw .malformedMerge(index: rank, merge: merge) }
            guard let l = idOf[left] else { throw .unknownMergeToken(index: rank, merge: merge, token: left) }
            guard let r = idOf[right] else { throw .unknownMergeToken(index: rank, merge: merge, token: right) }
            guard let m = idOf[left + right] else {
                throw .unknownMergeToken(index: rank, merge: merge, token: left + right)
            }
            // A repeated pair keeps its last rank, as Hugging Face tokenizers does.
            mergeTable[BPEModel.pairKey(l, r)] = UInt64(rank) << 32 | UInt64(UInt32(m))
        }

        var wholeTokens: [ArraySlice<UInt8>: Int32]? = nil
        if self.preTokenizer.ignoresMerges {
            var table = [ArraySlice<UInt8>: Int32](minimumCapacity: n)
            for i in 0..<n where self.types[i] == .normal {
                let key = pieceBytes[pieceOffsets[i]..<pieceOffsets[i + 1]]
                if table[key] == nil { table[Array(key)[...]] = Int32(i) }
            }
            wholeTokens = table
        }
        self.model = BPEModel(byteToken: byteToken, merges: mergeTable, wholeTokens: wholeTokens)

        var specialList = [(bytes: [UInt8], id: Int32)]()
        for i in 0..<n where self.types[i] == .control || self.types[i] == .userDefined {
            if !tokens[i].isEmpty { specialList.append((Array(tokens[i].utf8), Int32(i))) }
        }
        self.specials = SpecialTokenMatcher(specialList)

        var eog = Set<Int32>()
        if let eos { eog.insert(eos) }
        for text in Self.endOfGenerationTexts {
            if let id = idOf[text] { eog.insert(id) }
        }
        self.endOfGenerationIDs = eog
    }

    /// What a token stands for in decoded output.
    static func bytes(of text: String, type: TokenType) -> [UInt8] {
        switch type {
        case .normal:
            return ByteLevel.bytes(of: text)
        case .byte:
            let u = Array(text.utf8)  // "<0xAB>"
            if u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E,
               let b = UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16) {
                return [b]
            }
            return ByteLevel.bytes(of: text)
        case .unknown, .control, .userDefined:
            return Array(text.utf8)
        case .unused:
            return []
        }
    }

    // MARK: - Looking tokens up

    /// The token's spelling in the vocabulary (nil for an id outside it).
    public func tokenText(_ id: Int32) -> String? {
        id >= 0 && Int(id) < vocabularySize ? texts[Int(id)] : nil
    }

    /// The token's type (nil for an id outside the vocabulary).
    public func tokenType(_ id: Int32) -> TokenType? {
        id >= 0 && Int(id) < vocabularySize ? types[Int(id)] : nil
    }

    /// The bytes the token decodes to (empty for an id outside the vocabulary).
    public func tokenBytes(_ id: Int32) -> ArraySlice<UInt8> {
        guard id >= 0 && Int(id) < vocabularySize else { return [] }
        return pieceBytes[pieceOffsets[Int(id)]..<pieceOffsets[Int(id) + 1]]
    }

    /// Control and user-defined tokens: those `encode(_:parseSpecial: true)` matches as whole strings.
    public func isSpecial(_ id: Int32) -> Bool {
        let t = tokenType(id)
        return t == .control || t == .userDefined
    }

    /// The id of a token spelled exactly `text` among the special tokens, if any.
    public func specialTokenID(_ text: String) -> Int32? {
        let bytes = Array(text.utf8)
        guard let (length, id) = specials.match(bytes, at: 0), length == bytes.count else { return nil }
        return id
    }

    // MARK: - Encoding

    /// The token ids of `text`. No BOS is added. Bytes that have no single-byte token in the
    /// vocabulary are left out (see `BPEModel`), so `decode(encode(s)) == s` unless `s` holds them.
    ///
    /// - Parameter parseSpecial: when true, the text of every control and user-defined token
    ///   (`<|im_start|>`, ...) becomes that token (the longest one where several start at the
    ///   same place) and the text between is encoded on its own; when false such text is
    ///   encoded like any other.
    public func encode(_ text: String, parseSpecial: Bool = false) -> [Int32] {
        encode(text, parseSpecial: parseSpecial, plainAt: [])
    }

    /// `encode(text, parseSpecial:)`, except that special-token text starting at one of the UTF-8
    /// byte offsets `plainAt` is not matched there (it stays ordinary text). `ChatTemplate` uses
    /// this for special-token text that came from message content.
    func encode(_ text: String, parseSpecial: Bool, plainAt: Set<Int>) -> [Int32] {
        let bytes = Array(text.utf8)
        var out = [Int32]()
        out.reserveCapacity(bytes.count / 3 + 4)
        var scratch = Scratch()
        guard parseSpecial && !specials.isEmpty else {
            encodeOrdinary(bytes, 0..<bytes.count, &scratch, into: &out)
            return out
        }
        var segmentStart = 0
        var i = 0
        while i < bytes.count {
            if let (length, id) = specials.match(bytes, at: i), !plainAt.contains(i) {
                encodeOrdinary(bytes, segmentStart..<i, &scratch, into: &out)
                out.append(id)
                i += length
                segmentStart = i
            } else {
                i += 1
            }
        }
        encodeOrdinary(bytes, segmentStart..<bytes.count, &scratch, into: &out)
        return out
    }

    struct Scratch {
        var run = ScalarRun()
        var pieces = [Range<Int>]()
    }

    private func encodeOrdinary(_ bytes: [UInt8], _ range: Range<Int>, _ scratch: inout Scratch, into out: inout [Int32]) {
        guard !range.isEmpty else { return }
        scratch.pieces.removeAll(keepingCapacity: true)
        preTokenizer.split(bytes, range, run: &scratch.run, into: &scratch.pieces)
        for piece in scratch.pieces {
            model.encode(bytes[piece], into: &out)
        }
    }

    // MARK: - Decoding

    /// The text of `ids`. Ids outside the vocabulary are skipped; bytes that do not form valid
    /// UTF-8 become U+FFFD.
    ///
    /// - Parameter skipSpecial: drop control tokens (`<|im_end|>`, ...), as Hugging Face's
    ///   `skip_special_tokens` does; user-defined tokens are ordinary text and stay.
    public func decode(_ ids: [Int32], skipSpecial: Bool = false) -> String {
        var bytes = [UInt8]()
        bytes.reserveCapacity(ids.count * 4)
        for id in ids { appendBytes(of: id, skipSpecial: skipSpecial, to: &bytes) }
        return String(decoding: bytes, as: UTF8.self)
    }

    func appendBytes(of id: Int32, skipSpecial: Bool, to bytes: inout [UInt8]) {
        guard id >= 0 && Int(id) < vocabularySize else { return }
        if skipSpecial && types[Int(id)] == .control { return }
        bytes.append(contentsOf: pieceBytes[pieceOffsets[Int(id)]..<pieceOffsets[Int(id) + 1]])
    }
}

// MARK: - Special tokens

/// Finds special-token text in UTF-8 bytes: at a given offset, the longest token that starts there.
struct SpecialTokenMatcher: Sendable {
    /// Tokens by first byte, longest first.
    private let buckets: [[(bytes: [UInt8], id: Int32)]]
    let isEmpty: Bool

    init(_ tokens: [(bytes: [UInt8], id: Int32)]) {
        var buckets = [[(bytes: [UInt8], id: Int32)]](repeating: [], count: 256)
        var seen = Set<[UInt8]>()
        for t in tokens where !t.bytes.isEmpty && seen.insert(t.bytes).inserted {
            buckets[Int(t.bytes[0])].append(t)
        }
        for b in 0..<256 { buckets[b].sort { $0.bytes.count > $1.bytes.count } }
        self.buckets = buckets
        self.isEmpty = tokens.isEmpty
    }

    /// The length and id of the longest special token at `bytes[offset...]`.
    func match(_ bytes: [UInt8], at offset: Int) -> (Int, Int32)? {
        guard offset < bytes.count else { return nil }
        for t in buckets[Int(bytes[offset])] where offset + t.bytes.count <= bytes.count {
            var k = 1
            while k < t.bytes.count && bytes[offset + k] == t.bytes[k] { k += 1 }
            if k == t.bytes.count { return (k, t.id) }
        }
        return nil
    }
}
