/// The tests a template may use (`value is name(args)`), as Jinja defines them. Unknown names are
/// rejected when the template is parsed.
enum Tests {
    static let names: Set<String> = [
        "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "filter",
        "float", "ge", "greaterthan", "gt", "in", "integer", "iterable", "le", "lessthan", "lower", "lt", "mapping",
        "ne", "none", "number", "odd", "sameas", "sequence", "string", "test", "true", "undefined", "upper",
        "==", "!=", "<", "<=", ">", ">=",
    ]
}

extension Interpreter {
    mutating func applyTest(_ name: String, _ value: Value, _ args: Args) throws(TemplateError) -> Bool {
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": return value.isNone
        case "boolean":
            if case .bool = value { return true }
            return false
        case "true":
            if case .bool(true) = value { return true }
            return false
        case "false":
            if case .bool(false) = value { return true }
            return false
        case "integer":
            if case .int = value { return true }
            return false
        case "float":
            if case .double = value { return true }
            return false
        case "number":
            return value.numeric != nil
        case "string":
            if case .string = value { return true }
            return false
        case "mapping":
            if case .object = value { return true }
            return false
        case "iterable", "sequence":
            switch value {
            case .string, .array, .object, .undefined: return true
            default: return false
            }
        case "callable":
            if case .function = value { return true }
            return false
        case "escaped":
            return false
        case "lower":
            return PythonString.isLower(value.renderedString)
        case "upper":
            return PythonString.isUpper(value.renderedString)
        case "odd", "even":
            switch value.numeric {
            case .int(let i)?: return (i % 2 != 0) == (name == "odd")
            case .double(let d)?:
                let r = d - 2 * (d / 2).rounded(.down)  // Python's float modulo by 2
                return name == "odd" ? r == 1 : r == 0
            default:
                throw TemplateError(.runtime, "'\(name)' test needs a number, not \(value.typeName)")
            }
        case "divisibleby":
            guard case .int(let i)? = value.numeric, case .int(let n)? = try args.required(0, "num").numeric else {
                throw TemplateError(.runtime, "'divisibleby' test needs integers")
            }
            guard n != 0 else { throw TemplateError(.runtime, "integer division or modulo by zero") }
            return n == -1 || i % n == 0
        case "sameas":
            let other = try args.required(0, "other")
            switch (value, other) {
            case (.none, .none), (.undefined, .undefined): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.int(let a), .int(let b)): return a == b
            case (.string(let a), .string(let b)): return PythonString.equal(a, b)
            case (.namespace(let a), .namespace(let b)): return a === b
            default: return false
            }
        case "in":
            return try contains(try args.required(0, "seq"), value)
        case "filter":
            return Filters.names.contains(value.renderedString)
        case "test":
            return Tests.names.contains(value.renderedString)
        case "eq", "equalto", "==": return try compare("==", value, try args.required(0, "other"))
        case "ne", "!=": return try compare("!=", value, try args.required(0, "other"))
        case "lt", "lessthan", "<": return try compare("<", value, try args.required(0, "other"))
        case "le", "<=": return try compare("<=", value, try args.required(0, "other"))
        case "gt", "greaterthan", ">": return try compare(">", value, try args.required(0, "other"))
        case "ge", ">=": return try compare(">=", value, try args.required(0, "other"))
        default:
            throw TemplateError(.unknownName, "no test named '\(name)'")
        }
    }
}
