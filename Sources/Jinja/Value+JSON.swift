import JSON

// MARK: - From JSON

extension Value {
    /// The template value of a JSON document: objects keep their member order.
    public init(json: JSONValue) {
        switch json {
        case .null: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = Int(exactly: i).map(Value.int) ?? .double(Double(i))
        case .number(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let a): self = .array(a.map(Value.init(json:)))
        case .object(let o): self = .object(ObjectValue(o.members.map { ($0.key, Value(json: $0.value)) }))
        }
    }

    /// Parses JSON text (for example a request's `messages` array) into a template value.
    public init(jsonText: String) throws(JSONError) {
        self.init(json: try JSONParser.parse(jsonText))
    }
}

// MARK: - To JSON

/// Python's `json.dumps`, which is what Hugging Face's `tojson` filter calls:
/// `json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`.
struct PythonJSON {
    /// Spaces (or text) per indentation level; nil writes everything on one line.
    var indent: String?
    var itemSeparator: String
    var keySeparator: String
    var sortKeys = false
    var ensureASCII = false

    /// `indent` as `json.dumps` takes it: an integer number of spaces (0 or negative: newlines only),
    /// a string used as is, or none. Default separators are `(", ", ": ")`, or `(",", ": ")` when indenting.
    init(indent: Value?, separators: Value?, sortKeys: Bool, ensureASCII: Bool) throws(TemplateError) {
        switch indent {
        case nil, .none?, .undefined?: self.indent = nil
        case .string(let s)?: self.indent = s
        case let v?:
            guard case .int(let n)? = v.numeric else {
                throw TemplateError(.runtime, "tojson() indent must be an integer or a string, not \(v.typeName)")
            }
            self.indent = String(repeating: " ", count: min(max(n, 0), 64))
        }
        switch separators {
        case nil, .none?, .undefined?:
            itemSeparator = self.indent == nil ? ", " : ","
            keySeparator = ": "
        case .array(let pair)? where pair.count == 2:
            guard case .string(let item) = pair[0], case .string(let key) = pair[1] else { fallthrough }
            itemSeparator = item
            keySeparator = key
        default:
            throw TemplateError(.runtime, "tojson() separators must be a pair of strings")
        }
        self.sortKeys = sortKeys
        self.ensureASCII = ensureASCII
    }

    func encode(_ value: Value) throws(TemplateError) -> String {
        var out = ""
        try write(value, level: 0, into: &out)
        return out
    }

    private func newline(_ level: Int, into out: inout String) {
        guard let indent else { return }
        out += "\n"
        for _ in 0..<level { out += indent }
    }

    private func write(_ value: Value, level: Int, into out: inout String) throws(TemplateError) {
        guard level < 512 else { throw TemplateError(.limit, "tojson(): value nested too deeply") }
        switch value {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isNaN { out += "NaN" } else if d.isInfinite { out += d < 0 ? "-Infinity" : "Infinity" } else {
                out += Value.formatDouble(d)
            }
        case .string(let s): writeString(s, into: &out)
        case .array(let items):
            guard !items.isEmpty else { out += "[]"; return }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += itemSeparator }
                newline(level + 1, into: &out)
                try write(item, level: level + 1, into: &out)
            }
            newline(level, into: &out)
            out += "]"
        case .object(let object):
            try writeObject(object.pairs, level: level, into: &out)
        case .namespace(let ns):
            try writeObject(ns.snapshot.pairs, level: level, into: &out)
        case .undefined:
            throw TemplateError(.runtime, "Object of type Undefined is not JSON serializable")
        case .function(let f):
            throw TemplateError(.runtime, "Object of type function ('\(f.name)') is not JSON serializable")
        case .loop:
            throw TemplateError(.runtime, "Object of type LoopContext is not JSON serializable")
        }
    }

    private func writeObject(_ pairs: [(key: String, value: Value)], level: Int, into out: inout String) throws(TemplateError) {
        guard !pairs.isEmpty else { out += "{}"; return }
        var members = pairs
        if sortKeys { members.sort { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) } }
        out += "{"
        for (i, member) in members.enumerated() {
            if i > 0 { out += itemSeparator }
            newline(level + 1, into: &out)
            writeString(member.key, into: &out)
            out += keySeparator
            try write(member.value, level: level + 1, into: &out)
        }
        newline(level, into: &out)
        out += "}"
    }

    private func writeString(_ s: String, into out: inout String) {
        out += "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if c.value < 0x20 || (ensureASCII && c.value > 0x7E) {
                    if c.value > 0xFFFF {
                        let v = c.value - 0x10000
                        out += Self.hexEscape(0xD800 + (v >> 10)) + Self.hexEscape(0xDC00 + (v & 0x3FF))
                    } else {
                        out += Self.hexEscape(c.value)
                    }
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        out += "\""
    }

    private static func hexEscape(_ v: UInt32) -> String {
        let hex = String(v, radix: 16)
        return "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}
