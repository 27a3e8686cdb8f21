/// A lexical token, with the position of its first character.
struct Token: Sendable {
    enum Kind: Sendable, Equatable {
        /// Literal template text, already trimmed by whitespace control.
        case text(String)
        case variableBegin, variableEnd, blockBegin, blockEnd
        case name(String)
        case int(Int)
        case float(Double)
        case string(String)
        /// Punctuation and operators: `+`, `//`, `==`, `(`, `|`, …
        case op(String)
        case eof
    }

    var kind: Kind
    var position: SourcePosition
}

/// Turns template source into tokens, applying Jinja's whitespace rules: `-` and `+` tag modifiers,
/// `trim_blocks` (drop the first newline after a block or comment tag) and `lstrip_blocks` (drop
/// spaces and tabs before a block or comment tag that starts a line). Like Jinja, newlines are
/// normalized to `\n` and one trailing newline is dropped first.
struct Lexer {
    private let chars: [Unicode.Scalar]
    private let options: TemplateOptions
    private var lineStarts: [Int] = [0]
    private var index = 0
    private var tokens: [Token] = []

    init(_ source: String, options: TemplateOptions) {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(source.utf8.count)
        var afterCR = false
        for c in source.unicodeScalars {
            if c == "\r" {
                scalars.append("\n")
                afterCR = true
                continue
            }
            if !(afterCR && c == "\n") { scalars.append(c) }
            afterCR = false
        }
        if !options.keepTrailingNewline, scalars.last == "\n" { scalars.removeLast() }
        chars = scalars
        self.options = options
        for (i, c) in chars.enumerated() where c == "\n" { lineStarts.append(i + 1) }
    }

    static func tokenize(_ source: String, options: TemplateOptions) throws(TemplateError) -> [Token] {
        var lexer = Lexer(source, options: options)
        try lexer.run()
        return lexer.tokens
    }

    // MARK: - Positions

    func position(_ offset: Int) -> SourcePosition {
        var lo = 0
        var hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        return SourcePosition(line: lo + 1, column: offset - lineStarts[lo] + 1)
    }

    private func error(_ message: String, at offset: Int) -> TemplateError {
        TemplateError(.syntax, message, at: position(offset))
    }

    private func peek(_ ahead: Int = 0) -> Unicode.Scalar? {
        let i = index + ahead
        return i < chars.count ? chars[i] : nil
    }

    private func matches(_ text: String, at offset: Int) -> Bool {
        var i = offset
        for c in text.unicodeScalars {
            guard i < chars.count, chars[i] == c else { return false }
            i += 1
        }
        return true
    }

    // MARK: - Template level

    private mutating func run() throws(TemplateError) {
        var lineStarting = true
        var stripLeading = false
        while index < chars.count {
            let textStart = index
            var tagStart = index
            while tagStart < chars.count {
                if chars[tagStart] == "{", tagStart + 1 < chars.count,
                   chars[tagStart + 1] == "{" || chars[tagStart + 1] == "%" || chars[tagStart + 1] == "#" {
                    break
                }
                tagStart += 1
            }
            var text = chars[textStart..<tagStart]
            if stripLeading { text = text.drop(while: Self.isSpace) }
            stripLeading = false
            guard tagStart < chars.count else {
                emitText(text, at: textStart)
                index = tagStart
                break
            }
            let tagKind = chars[tagStart + 1]
            let modifier = tagStart + 2 < chars.count ? chars[tagStart + 2] : nil
            if modifier == "-" {
                while let last = text.last, Self.isSpace(last) { text = text.dropLast() }
            } else if modifier != "+", options.lstripBlocks, tagKind != "{" {
                text = Self.lstripped(text, lineStarting: lineStarting)
            }
            emitText(text, at: textStart)
            index = tagStart + 2
            if modifier == "-" || modifier == "+" { index += 1 }

            let endModifier: Unicode.Scalar?
            switch tagKind {
            case "#":
                endModifier = try skipComment(from: tagStart)
            case "{":
                tokens.append(Token(kind: .variableBegin, position: position(tagStart)))
                endModifier = try lexTag(closing: "}", from: tagStart)
                tokens.append(Token(kind: .variableEnd, position: position(index - 2)))
            default:
                tokens.append(Token(kind: .blockBegin, position: position(tagStart)))
                let firstTokenIndex = tokens.count
                endModifier = try lexTag(closing: "%", from: tagStart)
                tokens.append(Token(kind: .blockEnd, position: position(index - 2)))
                if tokens.count == firstTokenIndex + 2, case .name("raw") = tokens[firstTokenIndex].kind {
                    tokens.removeLast(3)
                    guard endModifier != "+" else { throw error("'raw' cannot end with '+%}'", at: tagStart) }
                    lineStarting = try lexRaw(afterTagEndModifier: endModifier, from: tagStart)
                    continue
                }
            }
            let consumedFrom = index
            if endModifier == "-" {
                stripLeading = true
            } else if endModifier != "+", tagKind != "{", options.trimBlocks, peek() == "\n" {
                index += 1
            }
            if stripLeading {
                while let c = peek(), Self.isSpace(c) { index += 1 }
                stripLeading = false
            }
            lineStarting = index > consumedFrom ? chars[index - 1] == "\n" : false
        }
        tokens.append(Token(kind: .eof, position: position(chars.count)))
    }

    private mutating func emitText(_ text: ArraySlice<Unicode.Scalar>, at offset: Int) {
        guard !text.isEmpty else { return }
        tokens.append(Token(kind: .text(PythonString.string(text)), position: position(offset)))
    }

    /// Skips to the end of a comment; returns the modifier before `#}` (`-`, `+` or nil).
    private mutating func skipComment(from start: Int) throws(TemplateError) -> Unicode.Scalar? {
        let contentStart = index
        while index + 1 < chars.count {
            if chars[index] == "#", chars[index + 1] == "}" {
                let modifier = index > contentStart ? chars[index - 1] : nil
                index += 2
                return modifier == "-" || modifier == "+" ? modifier : nil
            }
            index += 1
        }
        throw error("missing end of comment tag", at: start)
    }

    /// Everything up to `{% endraw %}` becomes one text token. As in Jinja, `{% raw %}` itself never
    /// trims the newline after it, while the text before `{% endraw %}` gets the usual `-` and
    /// lstrip_blocks treatment. Returns whether the endraw tag left us at the start of a line.
    private mutating func lexRaw(afterTagEndModifier modifier: Unicode.Scalar?, from start: Int) throws(TemplateError) -> Bool {
        let afterTag = index
        if modifier == "-" {
            while let c = peek(), Self.isSpace(c) { index += 1 }
        }
        let lineStarting = index > afterTag && chars[index - 1] == "\n"
        let bodyStart = index
        var i = index
        while i + 1 < chars.count {
            if chars[i] == "{", chars[i + 1] == "%" {
                var j = i + 2
                let open = j < chars.count ? chars[j] : nil
                if open == "-" || open == "+" { j += 1 }
                while j < chars.count, Self.isSpace(chars[j]) { j += 1 }
                if matches("endraw", at: j) {
                    j += 6
                    while j < chars.count, Self.isSpace(chars[j]) { j += 1 }
                    var close: Unicode.Scalar? = nil
                    if j < chars.count, chars[j] == "-" || chars[j] == "+" { close = chars[j]; j += 1 }
                    if matches("%}", at: j) {
                        var body = chars[bodyStart..<i]
                        if open == "-" {
                            while let last = body.last, Self.isSpace(last) { body = body.dropLast() }
                        } else if open != "+", options.lstripBlocks {
                            body = Self.lstripped(body, lineStarting: lineStarting)
                        }
                        emitText(body, at: bodyStart)
                        index = j + 2
                        let tagEnd = index
                        if close == "-" {
                            while let c = peek(), Self.isSpace(c) { index += 1 }
                        } else if close != "+", options.trimBlocks, peek() == "\n" {
                            index += 1
                        }
                        return index > tagEnd && chars[index - 1] == "\n"
                    }
                }
            }
            i += 1
        }
        throw error("missing endraw for raw block", at: start)
    }

    static func startsName(_ c: Unicode.Scalar) -> Bool {
        if c.value < 0x80 { return c == "_" || ("a"..."z").contains(c) || ("A"..."Z").contains(c) }
        return c.properties.isAlphabetic
    }

    /// Python's `\s`, which Jinja's whitespace rules use.
    static func isSpace(_ c: Unicode.Scalar) -> Bool { PythonString.isSpace(c) }

    /// lstrip_blocks: drops the spaces and tabs between the last newline of `text` and a block tag
    /// (or from the start of `text` when it starts a line) if nothing else stands there.
    static func lstripped(_ text: ArraySlice<Unicode.Scalar>, lineStarting: Bool) -> ArraySlice<Unicode.Scalar> {
        var lineStart = text.startIndex
        if let newline = text.lastIndex(of: "\n") { lineStart = newline + 1 }
        guard lineStart > text.startIndex || lineStarting else { return text }
        guard text[lineStart...].allSatisfy({ $0 == " " || $0 == "\t" }) else { return text }
        return text[..<lineStart]
    }

    // MARK: - Inside tags

    /// Lexes expression tokens up to the closing `}}` or `%}`; returns the modifier before it.
    private mutating func lexTag(closing: Unicode.Scalar, from start: Int) throws(TemplateError) -> Unicode.Scalar? {
        var depth = 0
        while true {
            while let c = peek(), c == " " || c == "\t" || c == "\n" || c == "\r" { index += 1 }
            guard let c = peek() else {
                throw error(closing == "}" ? "missing end of print tag '}}'" : "missing end of block tag '%}'", at: start)
            }
            if depth == 0 {
                if c == closing, peek(1) == "}" {
                    index += 2
                    return nil
                }
                // `+}}` is not a thing in Jinja: only block tags take `+` on their right side.
                if c == "-" || (c == "+" && closing == "%"), peek(1) == closing, peek(2) == "}" {
                    index += 3
                    return c
                }
            }
            let tokenStart = index
            let pos = position(tokenStart)
            if Self.startsName(c) {
                while let d = peek(), Self.startsName(d) || ("0"..."9").contains(d) { index += 1 }
                tokens.append(Token(kind: .name(PythonString.string(chars[tokenStart..<index])), position: pos))
            } else if ("0"..."9").contains(c) {
                tokens.append(Token(kind: try lexNumber(), position: pos))
            } else if c == "'" || c == "\"" {
                tokens.append(Token(kind: .string(try lexString()), position: pos))
            } else {
                let twoChar = ["//", "**", "==", "!=", "<=", ">="]
                if let next = peek(1), twoChar.contains(String(c) + String(next)) {
                    tokens.append(Token(kind: .op(String(c) + String(next)), position: pos))
                    index += 2
                    continue
                }
                guard "+-*/%~<>=()[]{},.:|".unicodeScalars.contains(c) else {
                    throw error("unexpected character '\(c)'", at: tokenStart)
                }
                if c == "(" || c == "[" || c == "{" { depth += 1 }
                if c == ")" || c == "]" || c == "}" { depth -= 1 }
                tokens.append(Token(kind: .op(String(c)), position: pos))
                index += 1
            }
        }
    }

    private mutating func lexNumber() throws(TemplateError) -> Token.Kind {
        let start = index
        var digits = ""
        func scanDigits(_ lexer: inout Lexer, into out: inout String) {
            while let d = lexer.peek(), ("0"..."9").contains(d) || (d == "_" && !out.isEmpty) {
                if d != "_" { out.unicodeScalars.append(d) }
                lexer.index += 1
            }
        }
        scanDigits(&self, into: &digits)
        var isFloat = false
        let afterDot = start > 0 && chars[start - 1] == "."
        if !afterDot, peek() == ".", let d = peek(1), ("0"..."9").contains(d) {
            isFloat = true
            index += 1
            digits += "."
            var fraction = ""
            scanDigits(&self, into: &fraction)
            digits += fraction
        }
        if !afterDot, let e = peek(), e == "e" || e == "E" {
            var j = 1
            if let sign = peek(1), sign == "+" || sign == "-" { j = 2 }
            if let d = peek(j), ("0"..."9").contains(d) {
                isFloat = true
                digits += "e"
                if j == 2, let sign = peek(1) { digits.unicodeScalars.append(sign) }
                index += j
                var exponent = ""
                scanDigits(&self, into: &exponent)
                digits += exponent
            }
        }
        if isFloat {
            guard let value = Double(digits) else { throw error("invalid number '\(digits)'", at: start) }
            return .float(value)
        }
        guard let value = Int(digits) else { throw error("integer literal '\(digits)' is too large", at: start) }
        return .int(value)
    }

    private mutating func lexString() throws(TemplateError) -> String {
        let start = index
        guard let quote = peek() else { throw error("unterminated string", at: start) }
        index += 1
        var out = String.UnicodeScalarView()
        while let c = peek() {
            index += 1
            if c == quote { return String(out) }
            guard c == "\\" else {
                out.append(c)
                continue
            }
            guard let e = peek() else { break }
            index += 1
            switch e {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "0"..."7":
                // Python's octal escape: up to three octal digits.
                var code = e.value - 0x30
                var digits = 1
                while digits < 3, let d = peek(), ("0"..."7").contains(d) {
                    code = code * 8 + d.value - 0x30
                    index += 1
                    digits += 1
                }
                guard let scalar = Unicode.Scalar(code) else { throw error("invalid octal escape in string", at: index) }
                out.append(scalar)
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "v": out.append("\u{0B}")
            case "\\", "'", "\"": out.append(e)
            case "\n": break
            case "x", "u", "U":
                let width = e == "x" ? 2 : e == "u" ? 4 : 8
                var hex = ""
                for _ in 0..<width {
                    guard let h = peek(), h.properties.isASCIIHexDigit else {
                        throw error("truncated \\\(e) escape in string", at: index)
                    }
                    hex.unicodeScalars.append(h)
                    index += 1
                }
                guard let code = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(code) else {
                    throw error("invalid \\\(e) escape in string", at: index)
                }
                out.append(scalar)
            default:
                out.append("\\")
                out.append(e)
            }
        }
        throw error("unterminated string", at: start)
    }
}
