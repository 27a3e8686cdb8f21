/// Python methods of `str`, `dict` and `list` that templates call (`content.strip()`,
/// `message.items()`, …). Methods that change a list or dict are in `Evaluator.mutate`.
enum Methods {
    static let string: Set<String> = [
        "capitalize", "center", "count", "endswith", "find", "format", "index", "isalnum", "isalpha", "isdecimal",
        "isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip",
        "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit",
        "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title", "upper", "zfill",
    ]
    static let dict: Set<String> = ["items", "keys", "values", "get", "copy", "update", "pop", "setdefault"]
    static let list: Set<String> = ["index", "count", "copy", "append", "extend", "insert", "pop"]
    /// Methods that change their receiver.
    static let mutating: Set<String> = ["append", "extend", "insert", "pop", "update", "setdefault"]

    /// Whether `value.name` is a method (Python's attribute lookup finds methods before dict keys).
    static func isMethod(_ name: String, of value: Value) -> Bool {
        switch value {
        case .string: string.contains(name)
        case .object: dict.contains(name)
        case .array: list.contains(name)
        default: false
        }
    }
}

extension Interpreter {
    mutating func callMethod(_ name: String, on receiver: Value, _ args: Args) throws(TemplateError) -> Value {
        try step()
        switch receiver {
        case .string(let s): return try stringMethod(name, s, args)
        case .object(let o):
            switch name {
            case "items": return .array(o.pairs.map { .array([.string($0.key), $0.value]) })
            case "keys": return .array(o.keys.map(Value.string))
            case "values": return .array(o.values)
            case "get": return o[try args.required(0, "key").keyString] ?? args.optional(1, "default") ?? .none
            case "copy": return receiver
            default: break
            }
        case .array(let a):
            switch name {
            case "index":
                let needle = try args.required(0, "value")
                guard let i = a.firstIndex(of: needle) else {
                    throw TemplateError(.runtime, "\(needle.pythonRepr) is not in list")
                }
                return .int(i)
            case "count":
                let needle = try args.required(0, "value")
                return .int(a.count(where: { $0 == needle }))
            case "copy": return receiver
            default: break
            }
        case .undefined:
            throw TemplateError(.runtime, "cannot call '\(name)()' on an undefined value")
        default:
            break
        }
        throw TemplateError(.runtime, "'\(receiver.typeName)' object has no attribute '\(name)'")
    }

    private mutating func stringMethod(_ name: String, _ s: String, _ args: Args) throws(TemplateError) -> Value {
        func result(_ text: String) throws(TemplateError) -> Value {
            try chargeAllocation(text.utf8.count, at: nil)
            return .string(text)
        }
        switch name {
        case "strip", "lstrip", "rstrip":
            let chars = try args.string(0, "chars")
            return .string(PythonString.strip(s, chars, leading: name != "rstrip", trailing: name != "lstrip"))
        case "split", "rsplit":
            let separator = try args.string(0, "sep")
            let maxSplit = try args.int(1, "maxsplit") ?? -1
            let parts = name == "split" ? try PythonString.split(s, separator, maxSplit: maxSplit)
                : try PythonString.rsplit(s, separator, maxSplit: maxSplit)
            try chargeAllocation(parts.count, at: nil)
            return .array(parts.map(Value.string))
        case "splitlines":
            return .array(PythonString.splitLines(s).map(Value.string))
        case "startswith", "endswith":
            let candidates: [Value]
            switch try args.required(0, name == "startswith" ? "prefix" : "suffix") {
            case .array(let a): candidates = a
            case let v: candidates = [v]
            }
            for candidate in candidates {
                guard case .string(let c) = candidate else {
                    throw TemplateError(.runtime, "\(name)() argument must be a string or a tuple of strings, not \(candidate.typeName)")
                }
                if name == "startswith" ? PythonString.hasPrefix(s, c) : PythonString.hasSuffix(s, c) { return .bool(true) }
            }
            return .bool(false)
        case "replace":
            guard case .string(let old) = try args.required(0, "old"), case .string(let new) = try args.required(1, "new") else {
                throw TemplateError(.runtime, "replace() arguments must be strings")
            }
            return try result(PythonString.replace(s, old, new, count: try args.int(2, "count")))
        case "upper": return .string(PythonString.upper(s))
        case "lower": return .string(PythonString.lower(s))
        case "title": return .string(PythonString.title(s))
        case "capitalize": return .string(PythonString.capitalize(s))
        case "swapcase":
            return .string(s.unicodeScalars.map { c in
                c.properties.isUppercase ? PythonString.lower(c) : c.properties.isLowercase ? PythonString.upper(c) : String(c)
            }.joined())
        case "find", "rfind", "index", "rindex":
            guard case .string(let needle) = try args.required(0, "sub") else {
                throw TemplateError(.runtime, "\(name)() argument must be a string")
            }
            let found = name.hasPrefix("r") ? PythonString.rfind(needle, in: s) : PythonString.find(needle, in: s)
            if let found { return .int(found) }
            if name.hasSuffix("index") { throw TemplateError(.runtime, "substring not found") }
            return .int(-1)
        case "count":
            guard case .string(let needle) = try args.required(0, "sub") else {
                throw TemplateError(.runtime, "count() argument must be a string")
            }
            return .int(PythonString.count(needle, in: s))
        case "join":
            var parts: [String] = []
            for item in try iterate(try args.required(0, "iterable"), at: nil) {
                guard case .string(let p) = item else {
                    throw TemplateError(.runtime, "sequence item \(parts.count): expected str instance, \(item.typeName) found")
                }
                parts.append(p)
            }
            return try result(parts.joined(separator: s))
        case "format":
            return try result(try Self.pythonFormat(s, args))
        case "center", "ljust", "rjust":
            let width = try args.int(0, "width") ?? 0
            let fillText = try args.string(1, "fillchar") ?? " "
            guard fillText.unicodeScalars.count == 1, let fill = fillText.unicodeScalars.first else {
                throw TemplateError(.runtime, "The fill character must be exactly one character long")
            }
            let align: Alignment = name == "center" ? .center : name == "ljust" ? .left : .right
            return try result(try Self.pad(s, width: width, align: align, fill: fill))
        case "zfill":
            let width = try args.int(0, "width") ?? 0
            var scalars = Array(s.unicodeScalars)
            guard width > scalars.count else { return .string(s) }
            guard width <= 1 << 20 else { throw TemplateError(.limit, "zfill() width \(width) is too large") }
            let signed = scalars.first == "+" || scalars.first == "-"
            scalars.insert(contentsOf: Array(repeating: "0", count: width - scalars.count), at: signed ? 1 : 0)
            return .string(PythonString.string(scalars))
        case "partition", "rpartition":
            guard case .string(let sep) = try args.required(0, "sep"), !sep.isEmpty else {
                throw TemplateError(.runtime, "\(name)() needs a non-empty string separator")
            }
            let found = name == "partition" ? PythonString.find(sep, in: s) : PythonString.rfind(sep, in: s)
            let scalars = Array(s.unicodeScalars)
            guard let at = found else {
                return name == "partition" ? .array([.string(s), "", ""]) : .array(["", "", .string(s)])
            }
            let end = at + sep.unicodeScalars.count
            return .array([.string(PythonString.string(scalars[..<at])), .string(sep),
                           .string(PythonString.string(scalars[end...]))])
        case "removeprefix", "removesuffix":
            guard case .string(let affix) = try args.required(0, name == "removeprefix" ? "prefix" : "suffix") else {
                throw TemplateError(.runtime, "\(name)() argument must be a string")
            }
            let scalars = Array(s.unicodeScalars)
            let n = affix.unicodeScalars.count
            if name == "removeprefix", PythonString.hasPrefix(s, affix) { return .string(PythonString.string(scalars[n...])) }
            if name == "removesuffix", !affix.isEmpty, PythonString.hasSuffix(s, affix) {
                return .string(PythonString.string(scalars[..<(scalars.count - n)]))
            }
            return .string(s)
        case "isspace":
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(PythonString.isSpace))
        case "isalpha":
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic })
        case "isdigit", "isdecimal", "isnumeric":
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { c in
                switch c.properties.numericType {
                case .decimal?: return true
                case .digit?: return name != "isdecimal"
                case .numeric?: return name == "isnumeric"
                default: return false
                }
            })
        case "isalnum":
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil })
        case "isupper": return .bool(PythonString.isUpper(s))
        case "islower": return .bool(PythonString.isLower(s))
        case "istitle":
            return .bool(PythonString.title(s) == s && s.unicodeScalars.contains(where: PythonString.isCased))
        default:
            throw TemplateError(.runtime, "'str' object has no attribute '\(name)'")
        }
    }

    /// Python `str.format` for `{}`, `{0}`, `{name}`, `{name.attr}`, `!r`/`!s` and `{{`/`}}`
    /// (format specifications are not supported).
    static func pythonFormat(_ format: String, _ args: Args) throws(TemplateError) -> String {
        var out = ""
        var chars = Array(format.unicodeScalars)[...]
        var auto = 0
        while let c = chars.popFirst() {
            if c == "}" {
                guard chars.first == "}" else { throw TemplateError(.runtime, "Single '}' encountered in format string") }
                chars.removeFirst()
                out += "}"
                continue
            }
            guard c == "{" else { out.unicodeScalars.append(c); continue }
            if chars.first == "{" {
                chars.removeFirst()
                out += "{"
                continue
            }
            var field = ""
            while let d = chars.first, d != "}" {
                field.unicodeScalars.append(d)
                chars.removeFirst()
            }
            guard chars.popFirst() == "}" else { throw TemplateError(.runtime, "expected '}' before end of string") }
            var conversion: Character? = nil
            if let bang = field.firstIndex(of: "!") {
                conversion = field[field.index(after: bang)...].first
                field = String(field[..<bang])
            }
            guard !field.contains(":") else { throw TemplateError(.runtime, "format specifications are not supported") }
            let parts = field.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            let head = parts.first ?? ""
            var value: Value
            if head.isEmpty {
                guard auto < args.positional.count else { throw TemplateError(.runtime, "Replacement index \(auto) out of range") }
                value = args.positional[auto]
                auto += 1
            } else if let i = Int(head) {
                guard i >= 0, i < args.positional.count else { throw TemplateError(.runtime, "Replacement index \(i) out of range") }
                value = args.positional[i]
            } else {
                guard let v = args.keyword.first(where: { $0.0 == head })?.1 else { throw TemplateError(.runtime, "KeyError: '\(head)'") }
                value = v
            }
            for attribute in parts.dropFirst() {
                switch value {
                case .object(let o): value = o[attribute] ?? .undefined
                case .namespace(let ns): value = ns[attribute] ?? .undefined
                default: value = .undefined
                }
            }
            out += conversion == "r" ? value.pythonRepr : value.renderedString
        }
        return out
    }
}
