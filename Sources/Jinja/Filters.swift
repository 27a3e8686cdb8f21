import Foundation

/// The filters a template may use (`value | name(args)`): Jinja's built-in filters that chat
/// templates use, with Hugging Face's `tojson`. Unknown names are rejected when the template is parsed.
enum Filters {
    static let names: Set<String> = [
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
        "first", "float", "forceescape", "format", "groupby", "indent", "int", "items", "join", "last",
        "length", "list", "lower", "map", "max", "min", "pprint", "reject", "rejectattr", "replace", "reverse",
        "round", "safe", "select", "selectattr", "slice", "sort", "string", "sum", "title", "tojson", "trim",
        "truncate", "unique", "upper", "wordcount",
    ]
}

extension Interpreter {
    /// Applies `value | filter(arguments)`; errors are located at the filter's name.
    mutating func applyFilter(_ filter: FilterCall, to value: Value) throws(TemplateError) -> Value {
        do {
            let (positional, keyword) = try evaluate(filter.arguments)
            return try self.filter(filter.name, value, Args(positional, keyword, name: filter.name), at: filter.position)
        } catch {
            throw error.located(filter.position)
        }
    }

    mutating func filter(_ name: String, _ value: Value, _ args: Args,
                         at position: SourcePosition?) throws(TemplateError) -> Value {
        try step(at: position)
        if value.isUndefined, ["abs", "int", "float", "round", "sum"].contains(name) {
            throw TemplateError(.runtime, "the '\(name)' filter cannot convert an undefined value")
        }
        if ["dictsort", "groupby", "sort"].contains(name) { try step((try? length(of: value)) ?? 0, at: position) }
        switch name {
        case "abs":
            switch value.numeric {
            case .int(let i)?:
                guard i != .min else { throw TemplateError(.runtime, "integer overflow in abs()") }
                return .int(Swift.abs(i))
            case .double(let d)?: return .double(Swift.abs(d))
            default: throw TemplateError(.runtime, "bad operand type for abs(): '\(value.typeName)'")
            }
        case "attr":
            return attribute(try args.required(0, "name").keyString, of: value)
        case "batch":
            guard let size = try args.int(0, "linecount"), size > 0 else {
                throw TemplateError(.runtime, "batch() needs a positive line count")
            }
            let items = try iterate(value, at: position)
            var batches: [Value] = []
            var i = 0
            while i < items.count {
                var chunk = Array(items[i..<min(i + size, items.count)])
                if chunk.count < size, let fill = args.optional(1, "fill_with"), !fill.isNone {
                    chunk += Array(repeating: fill, count: size - chunk.count)
                }
                batches.append(.array(chunk))
                i += size
            }
            return .array(batches)
        case "capitalize":
            return .string(PythonString.capitalize(value.renderedString))
        case "center":
            let width = try args.int(0, "width") ?? 80
            return .string(try Self.pad(value.renderedString, width: width, align: .center, fill: " "))
        case "count", "length":
            return .int(try length(of: value))
        case "d", "default":
            let fallback = args.optional(0, "default_value") ?? .string("")
            let boolean = args.bool(1, "boolean", default: false)
            if value.isUndefined || (boolean && !value.isTruthy) { return fallback }
            return value
        case "dictsort":
            let caseSensitive = args.bool(0, "case_sensitive", default: false)
            let by = try args.string(1, "by") ?? "key"
            let reverse = args.bool(2, "reverse", default: false)
            guard by == "key" || by == "value" else {
                throw TemplateError(.runtime, "dictsort(): you can only sort by either 'key' or 'value'")
            }
            let pairs: [(key: String, value: Value)]
            switch value {
            case .object(let o): pairs = o.pairs
            case .namespace(let ns): pairs = ns.snapshot.pairs
            case .undefined: pairs = []
            default: throw TemplateError(.runtime, "dictsort() needs a mapping, not \(value.typeName)")
            }
            let items = pairs.map { Value.array([.string($0.key), $0.value]) }
            let index = by == "key" ? 0 : 1
            let sorted = try sortValues(items, reverse: reverse) { (v) throws(TemplateError) -> Value in
                let key = self.item(.int(index), of: v)
                return caseSensitive ? key : Self.caseFolded(key)
            }
            return .array(sorted)
        case "e", "escape", "forceescape":
            return .string(Self.htmlEscape(value.renderedString))
        case "first":
            return try iterate(value, at: position).first ?? .undefined
        case "last":
            return try iterate(value, at: position).last ?? .undefined
        case "float":
            let fallback = args.optional(0, "default") ?? .double(0)
            switch value {
            case .int(let i): return .double(Double(i))
            case .double: return value
            case .bool(let b): return .double(b ? 1 : 0)
            case .string(let s):
                return Self.parseFloat(s).map(Value.double) ?? fallback
            default: return fallback
            }
        case "int":
            let fallback = args.optional(0, "default") ?? .int(0)
            let base = try args.int(1, "base") ?? 10
            switch value {
            case .int: return value
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d):
                guard d.isFinite, let i = Int(exactly: d.rounded(.towardZero)) else { return fallback }
                return .int(i)
            case .string(let s):
                if let i = Self.parseInt(s, base: base) { return .int(i) }
                if let d = Self.parseFloat(s), d.isFinite, let i = Int(exactly: d.rounded(.towardZero)) { return .int(i) }
                return fallback
            default: return fallback
            }
        case "format":
            let formatArgs: [Value] = args.positional
            return .string(try Self.percentFormat(value.renderedString, formatArgs))
        case "groupby":
            let attributeName = try args.required(0, "attribute").keyString
            let fallback = args.optional(1, "default")
            let caseSensitive = args.bool(2, "case_sensitive", default: false)
            let items = try iterate(value, at: position)
            func key(_ interpreter: Interpreter, _ v: Value) -> Value {
                let k = interpreter.attributePath(attributeName, of: v)
                return k.isUndefined ? (fallback ?? .undefined) : k
            }
            let sorted = try sortValues(items, reverse: false) { (v) throws(TemplateError) -> Value in
                caseSensitive ? key(self, v) : Self.caseFolded(key(self, v))
            }
            var groups: [Value] = []
            var currentKey: Value? = nil
            var current: [Value] = []
            for v in sorted {
                let k = key(self, v)
                let compareKey = caseSensitive ? k : Self.caseFolded(k)
                if let existing = currentKey, (caseSensitive ? existing : Self.caseFolded(existing)) == compareKey {
                    current.append(v)
                } else {
                    if let existing = currentKey { groups.append(.array([existing, .array(current)])) }
                    currentKey = k
                    current = [v]
                }
            }
            if let existing = currentKey { groups.append(.array([existing, .array(current)])) }
            return .array(groups)
        case "indent":
            let width = args.optional(0, "width") ?? .int(4)
            let indentation: String
            if case .string(let s) = width { indentation = s } else {
                guard case .int(let n)? = width.numeric else {
                    throw TemplateError(.runtime, "indent() width must be an integer or a string")
                }
                try chargeAllocation(n, at: position)
                indentation = String(repeating: " ", count: max(n, 0))
            }
            let first = args.bool(1, "first", default: false)
            let blank = args.bool(2, "blank", default: false)
            let lines = PythonString.splitLines(value.renderedString + "\n")
            var result: String
            if blank {
                result = lines.joined(separator: "\n" + indentation)
            } else {
                result = lines.first ?? ""
                let rest = lines.dropFirst()
                if !rest.isEmpty {
                    result += "\n" + rest.map { $0.isEmpty ? $0 : indentation + $0 }.joined(separator: "\n")
                }
            }
            if first { result = indentation + result }
            try chargeAllocation(result.utf8.count, at: position)
            return .string(result)
        case "items":
            switch value {
            case .object(let o): return .array(o.pairs.map { .array([.string($0.key), $0.value]) })
            case .namespace(let ns): return .array(ns.snapshot.pairs.map { .array([.string($0.key), $0.value]) })
            case .undefined: return .array([])
            default: throw TemplateError(.runtime, "Can only get item pairs from a mapping, not \(value.typeName)")
            }
        case "join":
            let separator = try args.string(0, "d") ?? ""
            var items = try iterate(value, at: position)
            if let attributeName = try args.string(1, "attribute") {
                items = items.map { attributePath(attributeName, of: $0) }
            }
            let result = items.map(\.renderedString).joined(separator: separator)
            try chargeAllocation(result.utf8.count, at: position)
            return .string(result)
        case "list":
            return .array(try iterate(value, at: position))
        case "lower":
            return .string(PythonString.lower(value.renderedString))
        case "upper":
            return .string(PythonString.upper(value.renderedString))
        case "map":
            let items = try iterate(value, at: position)
            if let attributeName = try args.string(-1, "attribute") {
                let fallback = args.optional(-1, "default")
                return .array(items.map { item in
                    let v = attributePath(attributeName, of: item)
                    return v.isUndefined ? (fallback ?? .undefined) : v
                })
            }
            guard case .string(let filterName)? = args.positional.first else {
                throw TemplateError(.runtime, "map() needs a filter name or attribute=")
            }
            guard Filters.names.contains(filterName) else {
                throw TemplateError(.unknownName, "no filter named '\(filterName)'")
            }
            let rest = Args(Array(args.positional.dropFirst()), args.keyword, name: filterName)
            var mapped: [Value] = []
            for item in items { mapped.append(try filter(filterName, item, rest, at: position)) }
            return .array(mapped)
        case "max", "min":
            let caseSensitive = args.bool(0, "case_sensitive", default: false)
            var items = try iterate(value, at: position)
            if let attributeName = try args.string(1, "attribute") {
                items = items.map { attributePath(attributeName, of: $0) }
            }
            guard var best = items.first else { return .undefined }
            for item in items.dropFirst() {
                let a = caseSensitive ? item : Self.caseFolded(item)
                let b = caseSensitive ? best : Self.caseFolded(best)
                let order = try Self.order(a, b)
                if name == "max" ? order > 0 : order < 0 { best = item }
            }
            return best
        case "pprint":
            return .string(value.pythonRepr)
        case "select", "reject", "selectattr", "rejectattr":
            return .array(try selectFilter(name, value, args, at: position))
        case "replace":
            guard case .string(let old) = try args.required(0, "old") else {
                throw TemplateError(.runtime, "replace() arguments must be strings")
            }
            let new = try args.required(1, "new").renderedString
            let result = PythonString.replace(value.renderedString, old, new, count: try args.int(2, "count"))
            try chargeAllocation(result.utf8.count, at: position)
            return .string(result)
        case "reverse":
            if case .string(let s) = value { return .string(PythonString.string(s.unicodeScalars.reversed())) }
            return .array(try iterate(value, at: position).reversed())
        case "round":
            let precision = try args.int(0, "precision") ?? 0
            let method = try args.string(1, "method") ?? "common"
            guard let d = value.asDouble else {
                throw TemplateError(.runtime, "round() needs a number, not \(value.typeName)")
            }
            let rule: FloatingPointRoundingRule
            switch method {
            case "common": rule = .toNearestOrEven
            case "ceil": rule = .up
            case "floor": rule = .down
            default: throw TemplateError(.runtime, "round() method must be 'common', 'ceil' or 'floor'")
            }
            if method == "common", case .int(let i)? = value.numeric {
                guard precision < 0 else { return .int(i) }
                // Python's round(int, -n): to a multiple of 10^n, halves to even.
                let scale = Foundation.pow(10, Double(min(-precision, 18)))
                return .int(Int(exactly: (Double(i) / scale).rounded(.toNearestOrEven) * scale) ?? i)
            }
            let scale = Foundation.pow(10, Double(min(max(precision, -308), 308)))
            return .double(precision == 0 ? d.rounded(rule) : (d * scale).rounded(rule) / scale)
        case "safe", "string":
            if case .string = value { return value }
            return .string(value.renderedString)
        case "slice":
            guard let count = try args.int(0, "slices"), count > 0 else {
                throw TemplateError(.runtime, "slice() needs a positive number of slices")
            }
            try chargeAllocation(count, at: position)
            let items = try iterate(value, at: position)
            let fill = args.optional(1, "fill_with")
            let perSlice = items.count / count
            let withExtra = items.count % count
            var offset = 0
            var slices: [Value] = []
            for i in 0..<count {
                let start = offset + i * perSlice
                if i < withExtra { offset += 1 }
                let end = offset + (i + 1) * perSlice
                var chunk = Array(items[start..<end])
                if let fill, !fill.isNone, i >= withExtra { chunk.append(fill) }
                slices.append(.array(chunk))
            }
            return .array(slices)
        case "sort":
            let reverse = args.bool(0, "reverse", default: false)
            let caseSensitive = args.bool(1, "case_sensitive", default: false)
            let attributeName = try args.string(2, "attribute")
            let items = try iterate(value, at: position)
            return .array(try sortValues(items, reverse: reverse) { (v) throws(TemplateError) -> Value in
                let key = attributeName.map { self.attributePath($0, of: v) } ?? v
                return caseSensitive ? key : Self.caseFolded(key)
            })
        case "sum":
            var items = try iterate(value, at: position)
            if let attributeName = try args.string(0, "attribute") {
                items = items.map { attributePath(attributeName, of: $0) }
            }
            var total = args.optional(1, "start") ?? .int(0)
            for item in items { total = try binary("+", total, item, at: position ?? SourcePosition(line: 1, column: 1)) }
            return total
        case "title":
            return .string(PythonString.jinjaTitle(value.renderedString))
        case "tojson":
            let encoder = try PythonJSON(
                indent: args.optional(1, "indent"), separators: args.optional(2, "separators"),
                sortKeys: args.bool(3, "sort_keys", default: false),
                ensureASCII: args.bool(0, "ensure_ascii", default: false))
            let text = try encoder.encode(value)
            try chargeAllocation(text.utf8.count, at: position)
            return .string(text)
        case "trim":
            return .string(PythonString.strip(value.renderedString, try args.string(0, "chars")))
        case "truncate":
            let s = Array(value.renderedString.unicodeScalars)
            let length = try args.int(0, "length") ?? 255
            let killWords = args.bool(1, "killwords", default: false)
            let end = try args.string(2, "end") ?? "..."
            let leeway = try args.int(3, "leeway") ?? 5
            let endCount = end.unicodeScalars.count
            guard length >= endCount else { throw TemplateError(.runtime, "truncate(): expected length >= \(endCount), got \(length)") }
            guard leeway >= 0 else { throw TemplateError(.runtime, "truncate(): expected leeway >= 0, got \(leeway)") }
            if s.count <= length + leeway { return .string(PythonString.string(s)) }
            let cut = Array(s[..<(length - endCount)])
            if killWords { return .string(PythonString.string(cut) + end) }
            var kept = cut
            if let space = cut.lastIndex(of: " ") { kept = Array(cut[..<space]) }
            return .string(PythonString.string(kept) + end)
        case "unique":
            let caseSensitive = args.bool(0, "case_sensitive", default: false)
            let attributeName = try args.string(1, "attribute")
            var seen: [Value] = []
            var result: [Value] = []
            for item in try iterate(value, at: position) {
                try step(seen.count / 16, at: position)
                var key = attributeName.map { attributePath($0, of: item) } ?? item
                if !caseSensitive { key = Self.caseFolded(key) }
                if !seen.contains(key) {
                    seen.append(key)
                    result.append(item)
                }
            }
            return .array(result)
        case "wordcount":
            var count = 0
            var inWord = false
            for c in value.renderedString.unicodeScalars {
                let isWord = c == "_" || c.properties.isAlphabetic || c.properties.numericType != nil
                if isWord, !inWord { count += 1 }
                inWord = isWord
            }
            return .int(count)
        default:
            throw TemplateError(.unknownName, "no filter named '\(name)'")
        }
    }

    // MARK: - Helpers

    /// `len(value)`; undefined has length 0, as Jinja's Undefined does.
    func length(of value: Value) throws(TemplateError) -> Int {
        switch value {
        case .string(let s): return s.unicodeScalars.count
        case .array(let a): return a.count
        case .object(let o): return o.count
        case .undefined: return 0
        default: throw TemplateError(.runtime, "object of type '\(value.typeName)' has no len()")
        }
    }

    /// A dotted attribute path as filters take it (`"function.name"`, `"0"` for list items).
    func attributePath(_ path: String, of value: Value) -> Value {
        var current = value
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            if let index = Int(part), case .array = current {
                current = item(.int(index), of: current)
            } else {
                current = item(.string(String(part)), of: current)
            }
        }
        return current
    }

    /// Sorts by a key, stably, with Python ordering (mixed types that Python cannot order fail).
    func sortValues(_ items: [Value], reverse: Bool,
                    key: (Value) throws(TemplateError) -> Value) throws(TemplateError) -> [Value] {
        var keyed: [(key: Value, item: Value, index: Int)] = []
        for (i, item) in items.enumerated() { keyed.append((try key(item), item, i)) }
        var failure: TemplateError? = nil
        keyed.sort { a, b in
            do throws(TemplateError) {
                let order = try Self.order(a.key, b.key)
                if order == 0 { return a.index < b.index }
                return reverse ? order > 0 : order < 0
            } catch {
                failure = error
                return a.index < b.index
            }
        }
        if let failure { throw failure }
        return keyed.map(\.item)
    }

    /// The `select`/`reject`/`selectattr`/`rejectattr` filters.
    private mutating func selectFilter(_ name: String, _ value: Value, _ args: Args,
                                       at position: SourcePosition?) throws(TemplateError) -> [Value] {
        let byAttribute = name.hasSuffix("attr")
        let keep = name.hasPrefix("select")
        var rest = args.positional[...]
        var attributeName: String? = nil
        if byAttribute {
            guard case .string(let a)? = rest.popFirst() else {
                throw TemplateError(.runtime, "\(name)() needs an attribute name")
            }
            attributeName = a
        }
        var testName: String? = nil
        if let t = rest.popFirst() {
            guard case .string(let n) = t else { throw TemplateError(.runtime, "\(name)() test name must be a string") }
            guard Tests.names.contains(n) else { throw TemplateError(.unknownName, "no test named '\(n)'") }
            testName = n
        }
        let testArgs = Args(Array(rest), args.keyword, name: testName ?? name)
        var result: [Value] = []
        for item in try iterate(value, at: position) {
            try step(at: position)
            let subject = attributeName.map { attributePath($0, of: item) } ?? item
            let passed = try testName.map { (n) throws(TemplateError) in try applyTest(n, subject, testArgs) } ?? subject.isTruthy
            if passed == keep { result.append(item) }
        }
        return result
    }

    static func caseFolded(_ value: Value) -> Value {
        if case .string(let s) = value { return .string(PythonString.lower(s)) }
        return value
    }

    static func htmlEscape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&#34;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    enum Alignment { case left, right, center }

    /// Python `str.center` / `ljust` / `rjust`.
    static func pad(_ s: String, width: Int, align: Alignment, fill: Unicode.Scalar) throws(TemplateError) -> String {
        let count = s.unicodeScalars.count
        guard width > count else { return s }
        guard width <= 1 << 20 else { throw TemplateError(.limit, "padding width \(width) is too large") }
        let total = width - count
        let left: Int
        switch align {
        case .left: left = 0
        case .right: left = total
        case .center: left = total / 2 + (total & width & 1)
        }
        let f = String(Character(fill))
        return String(repeating: f, count: left) + s + String(repeating: f, count: total - left)
    }

    /// Python `int(s, base)`: surrounding whitespace, a sign, and `_` between digits are allowed.
    static func parseInt(_ s: String, base: Int) -> Int? {
        var t = PythonString.strip(s, nil)
        var negative = false
        if t.hasPrefix("-") || t.hasPrefix("+") {
            negative = t.hasPrefix("-")
            t.removeFirst()
        }
        guard !t.isEmpty, !t.hasPrefix("_"), !t.hasSuffix("_"), !t.contains("__") else { return nil }
        t = t.replacingOccurrences(of: "_", with: "")
        guard (2...36).contains(base), let magnitude = Int(t, radix: base) else { return nil }
        return negative ? -magnitude : magnitude
    }

    /// Python `float(s)`: surrounding whitespace, `inf`, `nan`, exponents.
    static func parseFloat(_ s: String) -> Double? {
        let t = PythonString.strip(s, nil)
        guard !t.isEmpty, t.unicodeScalars.allSatisfy({ $0.isASCII }) else { return nil }
        switch t.lowercased() {
        case "inf", "+inf", "infinity", "+infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        case "nan", "+nan", "-nan": return .nan
        default: break
        }
        guard t.allSatisfy({ "0123456789+-.eE_".contains($0) }) else { return nil }
        return Double(t.replacingOccurrences(of: "_", with: ""))
    }
}

extension Value {
    var isNone: Bool {
        if case .none = self { return true }
        return false
    }
}
