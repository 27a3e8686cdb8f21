/// Cuts text into the pieces that BPE then encodes one at a time, as `tokenizer.ggml.pre` says.
///
/// Each pattern is the Hugging Face tokenizers regex of that model family, implemented as a
/// hand-written scanner over Unicode scalars (`\p{L}`: general category L*, `\p{N}`: N*,
/// `\s`: the White_Space property). The regexes, as alternations tried in order at each
/// position, leftmost match first:
///
/// - `gpt2` (GPT-2's ByteLevel pre-tokenizer):
///   `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// - `smollm` (and StarCoder): every `\p{N}` is split off on its own (HF `Digits` with
///   `individual_digits`) and the text between digits goes through the `gpt2` regex, whose
///   `\s+(?!\S)` still sees the digit that follows: `"\n\n2"` is `"\n"`, `"\n"`, `"2"`. That is what
///   the reference (transformers reading the GGUF: the GPT-2 regex over the whole text) gives, and
///   with a vocabulary that has no merges involving digits it is the same as that regex.
/// - `llama3` (Llama 3's `llama-bpe`):
///   `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
///   and BPE takes a piece whole when the vocabulary has it (HF `ignore_merges`).
/// - `qwen2`: the `llama3` regex with `\p{N}` one digit at a time, without `ignore_merges`.
public struct PreTokenizer: Sendable, Equatable {
    public enum Pattern: Sendable, Equatable {
        case gpt2, gpt2IndividualDigits, llama3, qwen2
    }

    /// The `tokenizer.ggml.pre` name this was made from.
    public let name: String
    public let pattern: Pattern

    /// `tokenizer.ggml.pre` names and the pattern each uses (following llama.cpp's grouping).
    public static let known: [String: Pattern] = [
        "default": .gpt2, "gpt2": .gpt2, "gpt-2": .gpt2, "mpt": .gpt2, "olmo": .gpt2, "jais": .gpt2,
        "phi-2": .gpt2,
        "smollm": .gpt2IndividualDigits, "starcoder": .gpt2IndividualDigits,
        "refact": .gpt2IndividualDigits, "command-r": .gpt2IndividualDigits,
        "codeshell": .gpt2IndividualDigits, "exaone": .gpt2IndividualDigits,
        "llama-bpe": .llama3, "llama3": .llama3, "llama-v3": .llama3, "falcon3": .llama3,
        "dbrx": .llama3, "smaug-bpe": .llama3,
        "qwen2": .qwen2, "stablelm2": .qwen2,
    ]

    public init(name: String) throws(TokenizerError) {
        guard let pattern = Self.known[name] else {
            throw .unknownPreTokenizer(name, known: Self.known.keys.sorted())
        }
        self.name = name
        self.pattern = pattern
    }

    public init(pattern: Pattern) {
        self.name = "\(pattern)"
        self.pattern = pattern
    }

    /// Llama 3 looks a whole piece up in the vocabulary before merging.
    public var ignoresMerges: Bool { pattern == .llama3 }

    /// The pieces of `text`, in order; they concatenate to `text`.
    public func split(_ text: String) -> [String] {
        let bytes = Array(text.utf8)
        var run = ScalarRun()
        var pieces = [Range<Int>]()
        split(bytes, 0..<bytes.count, run: &run, into: &pieces)
        return pieces.map { String(decoding: bytes[$0], as: UTF8.self) }
    }

    /// Appends the byte ranges of the pieces of `bytes[range]` to `pieces`.
    /// `bytes[range]` must be whole scalars (invalid UTF-8 is read as one U+FFFD per bad byte).
    func split(_ bytes: [UInt8], _ range: Range<Int>, run: inout ScalarRun, into pieces: inout [Range<Int>]) {
        run.load(bytes, range)
        let n = run.count
        switch pattern {
        case .gpt2:
            run.scanGPT2(0, n, into: &pieces)
        case .gpt2IndividualDigits:
            var start = 0
            for i in 0..<n where run.cls[i] & CharClass.number != 0 {
                if start < i { run.scanGPT2(start, i, nonSpaceFollows: true, into: &pieces) }
                run.emit(i, i + 1, into: &pieces)
                start = i + 1
            }
            if start < n { run.scanGPT2(start, n, into: &pieces) }
        case .llama3:
            run.scanLlama3(0, n, maxDigits: 3, into: &pieces)
        case .qwen2:
            run.scanLlama3(0, n, maxDigits: 1, into: &pieces)
        }
    }
}

// MARK: - Character classes

enum CharClass {
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let space: UInt8 = 4  // \s
    static let newline: UInt8 = 8  // \r or \n (always with `space`)

    static let ascii: [UInt8] = (0..<128).map { v -> UInt8 in
        switch v {
        case 0x0A, 0x0D: space | newline
        case 0x09, 0x0B, 0x0C, 0x20: space
        case 0x30...0x39: number
        case 0x41...0x5A, 0x61...0x7A: letter
        default: 0
        }
    }

    static func of(_ v: UInt32) -> UInt8 {
        if v < 128 { return ascii[Int(v)] }
        guard let scalar = Unicode.Scalar(v) else { return 0 }
        let p = scalar.properties
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return number
        default:
            return p.isWhitespace ? space : 0
        }
    }
}

// MARK: - Scanners

/// The scalars of one text segment: value, class and byte offset of each (reused between calls).
struct ScalarRun {
    var val: [UInt32] = []
    var cls: [UInt8] = []
    var off: [Int] = []  // off[i]: byte offset of scalar i; off[count]: end of the segment
    var count: Int { val.count }

    mutating func load(_ bytes: [UInt8], _ range: Range<Int>) {
        val.removeAll(keepingCapacity: true)
        cls.removeAll(keepingCapacity: true)
        off.removeAll(keepingCapacity: true)
        var i = range.lowerBound
        let end = range.upperBound
        while i < end {
            let b0 = UInt32(bytes[i])
            var v: UInt32 = 0xFFFD
            var len = 1
            if b0 < 0x80 {
                v = b0
            } else if b0 >= 0xC2, b0 < 0xE0, i + 1 < end {
                v = (b0 & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F); len = 2
            } else if b0 >= 0xE0, b0 < 0xF0, i + 2 < end {
                v = (b0 & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F); len = 3
            } else if b0 >= 0xF0, b0 < 0xF5, i + 3 < end {
                v = (b0 & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12
                    | UInt32(bytes[i + 2] & 0x3F) << 6 | UInt32(bytes[i + 3] & 0x3F); len = 4
            }
            val.append(v)
            cls.append(CharClass.of(v))
            off.append(i)
            i += len
        }
        off.append(end)
    }

    @inline(__always) func isLetter(_ i: Int) -> Bool { cls[i] & CharClass.letter != 0 }
    @inline(__always) func isNumber(_ i: Int) -> Bool { cls[i] & CharClass.number != 0 }
    @inline(__always) func isSpace(_ i: Int) -> Bool { cls[i] & CharClass.space != 0 }
    @inline(__always) func isNewline(_ i: Int) -> Bool { cls[i] & CharClass.newline != 0 }
    /// `[^\s\p{L}\p{N}]`
    @inline(__always) func isOther(_ i: Int) -> Bool { cls[i] == 0 }

    @inline(__always) func emit(_ a: Int, _ b: Int, into pieces: inout [Range<Int>]) {
        pieces.append(off[a]..<off[b])
    }

    /// Length of `'s|'t|'re|'ve|'m|'ll|'d` at `i` (0 when none matches).
    func contraction(_ i: Int, _ hi: Int, caseInsensitive: Bool) -> Int {
        guard val[i] == 0x27, i + 1 < hi else { return 0 }
        func lower(_ v: UInt32) -> UInt32 { caseInsensitive && v >= 0x41 && v <= 0x5A ? v + 32 : v }
        switch lower(val[i + 1]) {
        case 0x73, 0x74, 0x6D, 0x64: return 2  // s t m d
        case 0x72, 0x76:  // r v, then e
            return i + 2 < hi && lower(val[i + 2]) == 0x65 ? 3 : 0
        case 0x6C:  // l, then l
            return i + 2 < hi && lower(val[i + 2]) == 0x6C ? 3 : 0
        default: return 0
        }
    }

    /// The end of the run of scalars from `i` that satisfy `test`.
    @inline(__always) func runEnd(from i: Int, _ hi: Int, _ test: (Int) -> Bool) -> Int {
        var k = i
        while k < hi && test(k) { k += 1 }
        return k
    }

    /// `\s+(?!\S)|\s+` at a whitespace scalar `i`: a run of whitespace, leaving its last scalar
    /// to the next piece when a non-space follows (unless the run is that one scalar).
    /// `nonSpaceFollows`: the scalar after `hi` (outside this segment) is not whitespace.
    @inline(__always) func whitespace(_ i: Int, _ hi: Int, nonSpaceFollows: Bool = false) -> Int {
        let k = runEnd(from: i, hi, isSpace)
        return (k < hi || nonSpaceFollows) && k - i >= 2 ? k - 1 : k
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    func scanGPT2(_ lo: Int, _ hi: Int, nonSpaceFollows: Bool = false, into pieces: inout [Range<Int>]) {
        var i = lo
        while i < hi {
            var end = contraction(i, hi, caseInsensitive: false)
            if end > 0 {
                end += i
            } else {
                let s = val[i] == 0x20 && i + 1 < hi ? i + 1 : i
                if isLetter(s) {
                    end = runEnd(from: s, hi, isLetter)
                } else if isNumber(s) {
                    end = runEnd(from: s, hi, isNumber)
                } else if isOther(s) {
                    end = runEnd(from: s, hi, isOther)
                } else {
                    end = whitespace(i, hi, nonSpaceFollows: nonSpaceFollows)
                }
            }
            emit(i, end, into: &pieces)
            i = end
        }
    }

    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}|`
    /// ` ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    func scanLlama3(_ lo: Int, _ hi: Int, maxDigits: Int, into pieces: inout [Range<Int>]) {
        var i = lo
        while i < hi {
            var end = contraction(i, hi, caseInsensitive: true)
            if end > 0 {
                end += i
            } else if isLetter(i) {
                end = runEnd(from: i, hi, isLetter)
            } else if !isNewline(i) && !isNumber(i) && i + 1 < hi && isLetter(i + 1) {
                end = runEnd(from: i + 1, hi, isLetter)
            } else if isNumber(i) {
                end = i + 1
                while end < hi && end - i < maxDigits && isNumber(end) { end += 1 }
            } else if isOther(i) || (val[i] == 0x20 && i + 1 < hi && isOther(i + 1)) {
                end = runEnd(from: val[i] == 0x20 ? i + 1 : i, hi, isOther)
                end = runEnd(from: end, hi, isNewline)
            } else {
                // whitespace: `\s*[\r\n]+` ends after the last newline of the run
                let k = runEnd(from: i, hi, isSpace)
                var lastNewline = -1
                for j in i..<k where isNewline(j) { lastNewline = j }
                end = lastNewline >= 0 ? lastNewline + 1 : whitespace(i, hi)
            }
            emit(i, end, into: &pieces)
            i = end
        }
    }
}
