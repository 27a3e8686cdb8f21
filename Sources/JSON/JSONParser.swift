/// A strict RFC 8259 parser for untrusted bytes.
///
/// - Containers are tracked on an explicit stack, so nesting depth costs heap, not call stack,
///   and is capped by `Limits.maxDepth`.
/// - Strings must be well-formed UTF-8 (no overlongs, no encoded surrogates, nothing above
///   U+10FFFF); `\u` escapes must pair surrogates correctly.
/// - Integers that fit in `Int64` become `.int`; other numbers become `.number`, and a number
///   that overflows `Double` is an error rather than infinity.
/// - A repeated object key keeps its first position and its last value (as Python's `json`).
/// - A leading UTF-8 byte order mark is skipped (RFC 8259 §8.1 allows ignoring it).
/// - Never traps: every malformed input ends in a `JSONError` naming the byte offset.
public struct JSONParser {
    public struct Limits: Sendable, Equatable {
        /// Longest accepted document, in bytes.
        public var maxBytes: Int
        /// Deepest accepted nesting of arrays and objects (a bare scalar has depth 0).
        public var maxDepth: Int

        public init(maxBytes: Int = 16 << 20, maxDepth: Int = 64) {
            self.maxBytes = maxBytes
            self.maxDepth = maxDepth
        }
    }

    /// Parses one JSON document that must span all of `bytes` (surrounding whitespace allowed).
    public static func parse(_ bytes: [UInt8], limits: Limits = Limits()) throws(JSONError) -> JSONValue {
        guard bytes.count <= limits.maxBytes else {
            throw JSONError(.tooLarge, at: limits.maxBytes,
                            "document is \(bytes.count) bytes, more than the limit of \(limits.maxBytes)")
        }
        var parser = JSONParser(bytes: bytes, limits: limits)
        return try parser.parseDocument()
    }

    /// Parses the UTF-8 encoding of `text`.
    public static func parse(_ text: String, limits: Limits = Limits()) throws(JSONError) -> JSONValue {
        try parse(Array(text.utf8), limits: limits)
    }

    // MARK: - State

    private let bytes: [UInt8]
    private let limits: Limits
    private var pos = 0
    private var scratch: [UInt8] = []  // string bytes being decoded, reused between strings

    private init(bytes: [UInt8], limits: Limits) {
        self.bytes = bytes
        self.limits = limits
    }

    private enum Frame {
        case array([JSONValue])
        case object(JSONObject, key: String)
    }

    // MARK: - Structure

    private mutating func parseDocument() throws(JSONError) -> JSONValue {
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { pos = 3 }
        var stack: [Frame] = []
        var value: JSONValue

        parseValue: while true {
            skipWhitespace()
            guard let byte = peek() else { throw syntax("unexpected end of input, expected a value") }
            switch byte {
            case UInt8(ascii: "["):
                try checkDepth(stack.count)
                pos += 1
                skipWhitespace()
                if peek() == UInt8(ascii: "]") {
                    pos += 1
                    value = .array([])
                } else {
                    stack.append(.array([]))
                    continue parseValue
                }
            case UInt8(ascii: "{"):
                try checkDepth(stack.count)
                pos += 1
                skipWhitespace()
                if peek() == UInt8(ascii: "}") {
                    pos += 1
                    value = .object(JSONObject())
                } else {
                    let key = try parseKey()
                    stack.append(.object(JSONObject(), key: key))
                    continue parseValue
                }
            default:
                value = try parseScalar(byte)
            }

            // A value is complete: hand it to the enclosing container, closing as many as end here.
            while true {
                guard let frame = stack.popLast() else {
                    skipWhitespace()
                    if let extra = peek() { throw unexpected(extra, "extra data after the end of the document") }
                    return value
                }
                skipWhitespace()
                switch frame {
                case .array(var elements):
                    elements.append(value)
                    switch peek() {
                    case UInt8(ascii: ","):
                        pos += 1
                        stack.append(.array(elements))
                        continue parseValue
                    case UInt8(ascii: "]"):
                        pos += 1
                        value = .array(elements)
                    case let other:
                        throw unexpectedOrEnd(other, "expected ',' or ']' in array")
                    }
                case .object(var object, let key):
                    object[key] = value
                    switch peek() {
                    case UInt8(ascii: ","):
                        pos += 1
                        skipWhitespace()
                        let next = try parseKey()
                        stack.append(.object(object, key: next))
                        continue parseValue
                    case UInt8(ascii: "}"):
                        pos += 1
                        value = .object(object)
                    case let other:
                        throw unexpectedOrEnd(other, "expected ',' or '}' in object")
                    }
                }
            }
        }
    }

    private func checkDepth(_ depth: Int) throws(JSONError) {
        if depth >= limits.maxDepth {
            throw JSONError(.tooDeep, at: pos, "nesting is deeper than the limit of \(limits.maxDepth)")
        }
    }

    /// Parses `"key"` and the following `:`; `pos` is at the opening quote (whitespace skipped).
    private mutating func parseKey() throws(JSONError) -> String {
        guard peek() == UInt8(ascii: "\"") else { throw unexpectedOrEnd(peek(), "expected a string key in object") }
        let key = try parseString()
        skipWhitespace()
        guard peek() == UInt8(ascii: ":") else { throw unexpectedOrEnd(peek(), "expected ':' after object key") }
        pos += 1
        return key
    }

    // MARK: - Scalars

    private mutating func parseScalar(_ byte: UInt8) throws(JSONError) -> JSONValue {
        switch byte {
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw unexpected(byte, "expected a value")
        }
    }

    private mutating func expectLiteral(_ word: StaticString) throws(JSONError) {
        let start = pos
        let count = word.utf8CodeUnitCount
        let matches = word.withUTF8Buffer { literal in
            guard bytes.count - pos >= count else { return false }
            for i in 0..<count where bytes[pos + i] != literal[i] { return false }
            return true
        }
        guard matches else { throw JSONError(.syntax, at: start, "invalid literal, expected '\(word)'") }
        pos += count
    }

    private mutating func parseNumber() throws(JSONError) -> JSONValue {
        let start = pos
        var isInteger = true
        if peek() == UInt8(ascii: "-") { pos += 1 }
        guard let first = peek(), isDigit(first) else { throw unexpectedOrEnd(peek(), "expected a digit in number") }
        if first == UInt8(ascii: "0") {
            pos += 1
            if let next = peek(), isDigit(next) { throw JSONError(.syntax, at: pos, "leading zeros are not allowed in numbers") }
        } else {
            skipDigits()
        }
        if peek() == UInt8(ascii: ".") {
            isInteger = false
            pos += 1
            guard let d = peek(), isDigit(d) else { throw unexpectedOrEnd(peek(), "expected a digit after '.' in number") }
            skipDigits()
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            isInteger = false
            pos += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { pos += 1 }
            guard let d = peek(), isDigit(d) else { throw unexpectedOrEnd(peek(), "expected a digit in exponent") }
            skipDigits()
        }
        let text = String(decoding: bytes[start..<pos], as: UTF8.self)
        if isInteger, let exact = Int64(text) { return .int(exact) }
        guard let double = Double(text), double.isFinite else {
            throw JSONError(.numberOutOfRange, at: start, "number \(text.prefix(32)) is out of range")
        }
        return .number(double)
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private mutating func skipDigits() {
        while let byte = peek(), isDigit(byte) { pos += 1 }
    }

    // MARK: - Strings

    /// Parses a string; `pos` is at the opening quote.
    private mutating func parseString() throws(JSONError) -> String {
        pos += 1
        scratch.removeAll(keepingCapacity: true)
        while true {
            guard pos < bytes.count else { throw JSONError(.syntax, at: pos, "unterminated string") }
            let byte = bytes[pos]
            switch byte {
            case UInt8(ascii: "\""):
                pos += 1
                return String(decoding: scratch, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try parseEscape()
            case 0..<0x20:
                throw JSONError(.syntax, at: pos, "unescaped control character 0x\(hex(byte)) in string")
            case 0x20..<0x80:
                scratch.append(byte)
                pos += 1
            default:
                try copyMultibyteScalar()
            }
        }
    }

    /// Validates one multi-byte UTF-8 sequence at `pos` (Unicode Table 3-7) and copies it.
    private mutating func copyMultibyteScalar() throws(JSONError) {
        let lead = bytes[pos]
        let length: Int
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; secondRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; secondRange = 0x80...0x9F
        case 0xF0: length = 4; secondRange = 0x90...0xBF
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; secondRange = 0x80...0x8F
        default: throw JSONError(.invalidUTF8, at: pos, "invalid UTF-8 lead byte 0x\(hex(lead))")
        }
        for i in 1..<length {
            let at = pos + i
            guard at < bytes.count else { throw JSONError(.invalidUTF8, at: at, "truncated UTF-8 sequence") }
            let range = i == 1 ? secondRange : 0x80...0xBF
            guard range.contains(bytes[at]) else {
                throw JSONError(.invalidUTF8, at: at, "invalid UTF-8 continuation byte 0x\(hex(bytes[at]))")
            }
        }
        scratch.append(contentsOf: bytes[pos..<(pos + length)])
        pos += length
    }

    /// Parses one escape sequence; `pos` is at the backslash.
    private mutating func parseEscape() throws(JSONError) {
        let start = pos
        pos += 1
        guard let byte = peek() else { throw JSONError(.syntax, at: pos, "unterminated string") }
        pos += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scratch.append(byte)
        case UInt8(ascii: "b"): scratch.append(0x08)
        case UInt8(ascii: "f"): scratch.append(0x0C)
        case UInt8(ascii: "n"): scratch.append(0x0A)
        case UInt8(ascii: "r"): scratch.append(0x0D)
        case UInt8(ascii: "t"): scratch.append(0x09)
        case UInt8(ascii: "u"):
            let unit = try parseHex4()
            var scalarValue = UInt32(unit)
            switch unit {
            case 0xD800...0xDBFF:
                guard bytes.count - pos >= 6, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") else {
                    throw JSONError(.invalidUTF8, at: start, "unpaired UTF-16 high surrogate \\u\(hex(unit))")
                }
                pos += 2
                let low = try parseHex4()
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw JSONError(.invalidUTF8, at: start, "high surrogate \\u\(hex(unit)) not followed by a low surrogate")
                }
                scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
            case 0xDC00...0xDFFF:
                throw JSONError(.invalidUTF8, at: start, "unpaired UTF-16 low surrogate \\u\(hex(unit))")
            default:
                break
            }
            // Never nil: surrogates were handled above and the value is at most 0x10FFFF.
            if let scalar = Unicode.Scalar(scalarValue) { scratch.append(contentsOf: UTF8.encode(scalar)!) }
        default:
            throw JSONError(.syntax, at: start, "invalid escape sequence '\\\(Character(Unicode.Scalar(byte)))'")
        }
    }

    private mutating func parseHex4() throws(JSONError) -> UInt16 {
        guard bytes.count - pos >= 4 else { throw JSONError(.syntax, at: pos, "expected 4 hex digits after \\u") }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[pos]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw JSONError(.syntax, at: pos, "expected a hex digit in \\u escape")
            }
            value = value << 4 | UInt16(digit)
            pos += 1
        }
        return value
    }

    // MARK: - Helpers

    private func peek() -> UInt8? { pos < bytes.count ? bytes[pos] : nil }

    private mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    private func syntax(_ message: String) -> JSONError { JSONError(.syntax, at: pos, message) }

    private func unexpected(_ byte: UInt8, _ context: String) -> JSONError {
        let shown = (0x21..<0x7F).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(hex(byte))"
        return JSONError(.syntax, at: pos, "unexpected \(shown), \(context)")
    }

    private func unexpectedOrEnd(_ byte: UInt8?, _ context: String) -> JSONError {
        guard let byte else { return JSONError(.syntax, at: pos, "unexpected end of input, \(context)") }
        return unexpected(byte, context)
    }
}

func hex(_ value: some BinaryInteger & FixedWidthInteger) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    let width = value.bitWidth / 4
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}
