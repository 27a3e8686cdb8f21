import Jinja

/// Keeps special-token text that comes from message content from becoming special tokens.
///
/// The template is rendered a second time with every control-token spelling inside user data
/// (message strings, `tools`, `documents`) "shielded": its first character is replaced by a
/// private-use sentinel that occurs nowhere else (not in the template, the variables or the
/// output). Special tokens the template writes itself are untouched, so in the shielded rendering
/// only they match the tokenizer's special tokens. Mapping the sentinels back gives the plain text
/// plus the byte offsets where content's special-token text starts; the tokenizer then matches
/// special tokens everywhere except at those offsets.
///
/// The shielded rendering is checked against the ordinary one: they agree unless the template
/// inspects special-token text inside content (`content.replace('<|im_end|>', '')`, ...). Then the
/// shielded rendering is used anyway, so content can still never produce a control token.
struct ContentShield: Sendable {
    /// Spellings of the control tokens, grouped by first scalar, longest first.
    private let byFirstScalar: [Unicode.Scalar: [[Unicode.Scalar]]]
    /// `asciiFirst[v]`: some spelling starts with the ASCII scalar v (a fast pre-check).
    private let asciiFirst: [Bool]

    init(protectedTexts: [String]) {
        var groups: [Unicode.Scalar: [[Unicode.Scalar]]] = [:]
        for text in Set(protectedTexts) where !text.isEmpty {
            let scalars = Array(text.unicodeScalars)
            groups[scalars[0], default: []].append(scalars)
        }
        for key in groups.keys { groups[key]?.sort { $0.count > $1.count } }
        byFirstScalar = groups
        asciiFirst = (0..<128).map { v in groups.keys.contains { $0.value == v } }
    }

    var isEmpty: Bool { byFirstScalar.isEmpty }

    // MARK: - Finding special-token text

    /// Offsets (in scalars) where a protected spelling starts, plus the start of a trailing
    /// partial spelling (content ending in `<|im_`), which the template could complete.
    private func protectedStarts(_ scalars: [Unicode.Scalar]) -> [Int] {
        var starts: [Int] = []
        var i = 0
        while i < scalars.count {
            let c = scalars[i]
            if c.value < 128 && !asciiFirst[Int(c.value)] {
                i += 1
                continue
            }
            guard let candidates = byFirstScalar[c] else {
                i += 1
                continue
            }
            var matched = 0
            for candidate in candidates {
                let end = i + candidate.count
                if end <= scalars.count, scalars[i..<end].elementsEqual(candidate) {
                    matched = candidate.count
                    break
                }
                if end > scalars.count, candidate.starts(with: scalars[i...]) {
                    matched = scalars.count - i
                    break
                }
            }
            if matched > 0 {
                starts.append(i)
                i += matched
            } else {
                i += 1
            }
        }
        return starts
    }

    /// Whether any string inside `value` holds protected text.
    func needsShield(_ value: Value) -> Bool {
        switch value {
        case .string(let s): return !protectedStarts(Array(s.unicodeScalars)).isEmpty
        case .array(let items): return items.contains(where: needsShield)
        case .object(let object): return object.values.contains(where: needsShield)
        default: return false
        }
    }

    /// The first scalars of protected text that occurs inside `value`.
    func firstScalars(in value: Value, into found: inout Set<Unicode.Scalar>) {
        switch value {
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            for start in protectedStarts(scalars) { found.insert(scalars[start]) }
        case .array(let items): for item in items { firstScalars(in: item, into: &found) }
        case .object(let object): for item in object.values { firstScalars(in: item, into: &found) }
        default: break
        }
    }

    // MARK: - Sentinels

    /// One private-use scalar per first scalar, none of them in `used`.
    static func sentinels(for firstScalars: Set<Unicode.Scalar>, avoiding used: Set<Unicode.Scalar>) -> [Unicode.Scalar: Unicode.Scalar]? {
        var mapping: [Unicode.Scalar: Unicode.Scalar] = [:]
        var candidates = (0xE000...0xF8FF).lazy.compactMap(Unicode.Scalar.init).filter { !used.contains($0) }.makeIterator()
        for first in firstScalars.sorted(by: { $0.value < $1.value }) {
            guard let sentinel = candidates.next() else { return nil }
            mapping[first] = sentinel
        }
        return mapping
    }

    /// Private-use scalars that occur in `value` (the only ones that could collide with sentinels).
    static func privateUseScalars(in value: Value, into used: inout Set<Unicode.Scalar>) {
        switch value {
        case .string(let s): privateUseScalars(in: s, into: &used)
        case .array(let items): for item in items { privateUseScalars(in: item, into: &used) }
        case .object(let object):
            for (key, item) in object.pairs {
                privateUseScalars(in: key, into: &used)
                privateUseScalars(in: item, into: &used)
            }
        default: break
        }
    }

    static func privateUseScalars(in text: String, into used: inout Set<Unicode.Scalar>) {
        for c in text.unicodeScalars where (0xE000...0xF8FF).contains(c.value) { used.insert(c) }
    }

    /// `value` with the first scalar of every protected spelling replaced by its sentinel.
    func shield(_ value: Value, with sentinels: [Unicode.Scalar: Unicode.Scalar]) -> Value {
        switch value {
        case .string(let s):
            var scalars = Array(s.unicodeScalars)
            let starts = protectedStarts(scalars)
            guard !starts.isEmpty else { return value }
            for start in starts {
                if let sentinel = sentinels[scalars[start]] { scalars[start] = sentinel }
            }
            var view = String.UnicodeScalarView()
            view.append(contentsOf: scalars)
            return .string(String(view))
        case .array(let items):
            return .array(items.map { shield($0, with: sentinels) })
        case .object(let object):
            return .object(ObjectValue(object.pairs.map { ($0.key, shield($0.value, with: sentinels)) }))
        default:
            return value
        }
    }

    /// Maps sentinels back: the plain text, and the UTF-8 offsets in it where a sentinel stood.
    static func unshield(_ text: String, sentinels: [Unicode.Scalar: Unicode.Scalar]) -> (text: String, plainAt: Set<Int>) {
        var original: [Unicode.Scalar: Unicode.Scalar] = [:]
        for (first, sentinel) in sentinels { original[sentinel] = first }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var plainAt = Set<Int>()
        for c in text.unicodeScalars {
            var scalar = c
            if (0xE000...0xF8FF).contains(c.value), let first = original[c] {
                plainAt.insert(bytes.count)
                scalar = first
            }
            UTF8.encode(scalar) { bytes.append($0) }
        }
        return (String(decoding: bytes, as: UTF8.self), plainAt)
    }
}
