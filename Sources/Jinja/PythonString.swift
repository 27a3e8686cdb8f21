/// Python `str` operations, by Unicode scalar (code point) as Python counts, never by Swift
/// `Character`: Swift's grapheme and canonical-equivalence rules would make `"e\u{301}"` start
/// with `"é"`, which Python (and so Jinja) does not.
enum PythonString {
    typealias Scalars = [Unicode.Scalar]

    /// Python `str.isspace()` for one character: Unicode White_Space plus the separators U+001C–U+001F.
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        if c.value < 0x80 { return c.value == 0x20 || (0x09...0x0D).contains(c.value) || (0x1C...0x1F).contains(c.value) }
        return c.properties.isWhitespace
    }

    /// Builds a string from scalars through UTF-8 bytes (much faster than appending to a
    /// `String.UnicodeScalarView` one scalar at a time).
    static func string(_ scalars: some Sequence<Unicode.Scalar>) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(scalars.underestimatedCount)
        for scalar in scalars {
            if scalar.value < 0x80 {
                bytes.append(UInt8(truncatingIfNeeded: scalar.value))
            } else {
                UTF8.encode(scalar) { bytes.append($0) }
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func equal(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8)
    }

    // MARK: - Searching

    /// Offsets (in scalars) of non-overlapping occurrences of `needle`, left to right, at most `limit`.
    static func occurrences(of needle: Scalars, in haystack: Scalars, limit: Int = .max) -> [Int] {
        var found: [Int] = []
        guard !needle.isEmpty, needle.count <= haystack.count else { return found }
        var i = 0
        while i + needle.count <= haystack.count, found.count < limit {
            if haystack[i] == needle[0], haystack[i..<(i + needle.count)].elementsEqual(needle) {
                found.append(i)
                i += needle.count
            } else {
                i += 1
            }
        }
        return found
    }

    static func find(_ needle: String, in haystack: String) -> Int? {
        let n = Array(needle.unicodeScalars), h = Array(haystack.unicodeScalars)
        if n.isEmpty { return 0 }
        return occurrences(of: n, in: h, limit: 1).first
    }

    static func rfind(_ needle: String, in haystack: String) -> Int? {
        let n = Array(needle.unicodeScalars), h = Array(haystack.unicodeScalars)
        guard n.count <= h.count else { return nil }
        var i = h.count - n.count
        while i >= 0 {
            if h[i..<(i + n.count)].elementsEqual(n) { return i }
            i -= 1
        }
        return nil
    }

    static func contains(_ haystack: String, _ needle: String) -> Bool {
        needle.isEmpty || find(needle, in: haystack) != nil
    }

    static func hasPrefix(_ s: String, _ prefix: String) -> Bool {
        s.utf8.starts(with: prefix.utf8)
    }

    static func hasSuffix(_ s: String, _ suffix: String) -> Bool {
        s.utf8.count >= suffix.utf8.count && s.utf8.reversed().starts(with: suffix.utf8.reversed())
    }

    static func count(_ needle: String, in haystack: String) -> Int {
        let n = Array(needle.unicodeScalars)
        if n.isEmpty { return haystack.unicodeScalars.count + 1 }
        return occurrences(of: n, in: Array(haystack.unicodeScalars)).count
    }

    // MARK: - Transforming

    /// `str.strip(chars)`, `lstrip`, `rstrip`: with no `chars`, Python whitespace.
    static func strip(_ s: String, _ chars: String?, leading: Bool = true, trailing: Bool = true) -> String {
        let set = chars.map { Set($0.unicodeScalars) }
        func strippable(_ c: Unicode.Scalar) -> Bool { set?.contains(c) ?? isSpace(c) }
        let view = s.unicodeScalars
        var lo = view.startIndex
        var hi = view.endIndex
        if leading {
            while lo < hi, strippable(view[lo]) { lo = view.index(after: lo) }
        }
        if trailing {
            while hi > lo {
                let previous = view.index(before: hi)
                guard strippable(view[previous]) else { break }
                hi = previous
            }
        }
        if lo == view.startIndex && hi == view.endIndex { return s }
        return String(view[lo..<hi])
    }

    /// `str.replace(old, new, count)`; an empty `old` inserts `new` around every character, as Python does.
    static func replace(_ s: String, _ old: String, _ new: String, count: Int? = nil) -> String {
        let limit = count.map { $0 < 0 ? Int.max : $0 } ?? Int.max
        let h = Array(s.unicodeScalars), o = Array(old.unicodeScalars), n = Array(new.unicodeScalars)
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(h.count)
        if o.isEmpty {
            var inserted = 0
            for c in h {
                if inserted < limit { out.append(contentsOf: n); inserted += 1 }
                out.append(c)
            }
            if inserted < limit { out.append(contentsOf: n) }
            return string(out)
        }
        var last = 0
        for at in occurrences(of: o, in: h, limit: limit) {
            out.append(contentsOf: h[last..<at])
            out.append(contentsOf: n)
            last = at + o.count
        }
        if last == 0 { return s }
        out.append(contentsOf: h[last...])
        return string(out)
    }

    /// `str.split(sep, maxsplit)`: with no separator, runs of whitespace split and ends are dropped.
    static func split(_ s: String, _ separator: String?, maxSplit: Int = -1) throws(TemplateError) -> [String] {
        let limit = maxSplit < 0 ? Int.max : maxSplit
        let h = Array(s.unicodeScalars)
        guard let separator else {
            var parts: [String] = []
            var i = 0
            while i < h.count {
                while i < h.count, isSpace(h[i]) { i += 1 }
                guard i < h.count else { break }
                if parts.count == limit {
                    var end = h.count
                    while end > i, isSpace(h[end - 1]) { end -= 1 }
                    parts.append(string(h[i..<end]))
                    break
                }
                let start = i
                while i < h.count, !isSpace(h[i]) { i += 1 }
                parts.append(string(h[start..<i]))
            }
            return parts
        }
        let sep = Array(separator.unicodeScalars)
        guard !sep.isEmpty else { throw TemplateError(.runtime, "empty separator") }
        var parts: [String] = []
        var last = 0
        for at in occurrences(of: sep, in: h, limit: limit) {
            parts.append(string(h[last..<at]))
            last = at + sep.count
        }
        parts.append(string(h[last...]))
        return parts
    }

    /// `str.rsplit(sep, maxsplit)`.
    static func rsplit(_ s: String, _ separator: String?, maxSplit: Int = -1) throws(TemplateError) -> [String] {
        if maxSplit < 0 { return try split(s, separator, maxSplit: -1) }
        let reversed = string(s.unicodeScalars.reversed())
        let sep = separator.map { string($0.unicodeScalars.reversed()) }
        return try split(reversed, sep, maxSplit: maxSplit).reversed().map { string($0.unicodeScalars.reversed()) }
    }

    /// `str.splitlines()` without `keepends`.
    static func splitLines(_ s: String) -> [String] {
        let breaks: Set<UInt32> = [0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029]
        let h = Array(s.unicodeScalars)
        var lines: [String] = []
        var start = 0
        var i = 0
        while i < h.count {
            if breaks.contains(h[i].value) {
                lines.append(string(h[start..<i]))
                if h[i] == "\r", i + 1 < h.count, h[i + 1] == "\n" { i += 1 }
                start = i + 1
            }
            i += 1
        }
        if start < h.count { lines.append(string(h[start...])) }
        return lines
    }

    static func isCased(_ c: Unicode.Scalar) -> Bool {
        c.properties.isCased
    }

    static func upper(_ c: Unicode.Scalar) -> String { c.properties.uppercaseMapping }
    static func lower(_ c: Unicode.Scalar) -> String { c.properties.lowercaseMapping }
    static func titleCase(_ c: Unicode.Scalar) -> String { c.properties.titlecaseMapping }

    /// Python `str.upper()` / `str.lower()` (full case mappings, by scalar).
    static func upper(_ s: String) -> String { s.unicodeScalars.map(upper).joined() }
    static func lower(_ s: String) -> String { s.unicodeScalars.map(lower).joined() }

    /// Python `str.capitalize()`: the first character in title case, the rest lower case.
    static func capitalize(_ s: String) -> String {
        var out = ""
        for (i, c) in s.unicodeScalars.enumerated() { out += i == 0 ? titleCase(c) : lower(c) }
        return out
    }

    /// Python `str.title()`: title case after every uncased character, lower case elsewhere.
    static func title(_ s: String) -> String {
        var out = ""
        var previousCased = false
        for c in s.unicodeScalars {
            if isCased(c) {
                out += previousCased ? lower(c) : titleCase(c)
                previousCased = true
            } else {
                out.unicodeScalars.append(c)
                previousCased = false
            }
        }
        return out
    }

    /// Jinja's `title` filter: each word (split at whitespace, `-`, and opening brackets) gets an
    /// upper-case first character and a lower-case rest.
    static func jinjaTitle(_ s: String) -> String {
        func isBoundary(_ c: Unicode.Scalar) -> Bool { isSpace(c) || "-({[<".unicodeScalars.contains(c) }
        var out = ""
        var atWordStart = true
        for c in s.unicodeScalars {
            if isBoundary(c) {
                out.unicodeScalars.append(c)
                atWordStart = true
            } else {
                out += atWordStart ? upper(c) : lower(c)
                atWordStart = false
            }
        }
        return out
    }

    static func isUpper(_ s: String) -> Bool {
        var sawCased = false
        for c in s.unicodeScalars where isCased(c) {
            if c.properties.isLowercase { return false }
            sawCased = true
        }
        return sawCased
    }

    static func isLower(_ s: String) -> Bool {
        var sawCased = false
        for c in s.unicodeScalars where isCased(c) {
            if !c.properties.isLowercase { return false }
            sawCased = true
        }
        return sawCased
    }
}
