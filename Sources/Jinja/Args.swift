/// The evaluated arguments of a filter, test, method or global call, with Python-style lookup:
/// a parameter is found by position or by keyword.
struct Args {
    let positional: [Value]
    let keyword: [(String, Value)]
    /// The callee, for error messages.
    let name: String

    init(_ positional: [Value], _ keyword: [(String, Value)], name: String) {
        self.positional = positional
        self.keyword = keyword
        self.name = name
    }

    /// The argument at `index` or named `parameter`, if given.
    func optional(_ index: Int, _ parameter: String) -> Value? {
        if index >= 0, index < positional.count { return positional[index] }
        return keyword.first(where: { $0.0 == parameter })?.1
    }

    func required(_ index: Int, _ parameter: String) throws(TemplateError) -> Value {
        guard let value = optional(index, parameter) else {
            throw TemplateError(.runtime, "\(name)() missing required argument '\(parameter)'")
        }
        return value
    }

    func string(_ index: Int, _ parameter: String) throws(TemplateError) -> String? {
        guard let value = optional(index, parameter) else { return nil }
        switch value {
        case .string(let s): return s
        case .none, .undefined: return nil
        default:
            throw TemplateError(.runtime, "\(name)() argument '\(parameter)' must be a string, not \(value.typeName)")
        }
    }

    func int(_ index: Int, _ parameter: String) throws(TemplateError) -> Int? {
        guard let value = optional(index, parameter) else { return nil }
        switch value {
        case .none, .undefined: return nil
        default:
            guard case .int(let i)? = value.numeric else {
                throw TemplateError(.runtime, "\(name)() argument '\(parameter)' must be an integer, not \(value.typeName)")
            }
            return i
        }
    }

    func bool(_ index: Int, _ parameter: String, default defaultValue: Bool) -> Bool {
        optional(index, parameter)?.isTruthy ?? defaultValue
    }

    /// Fails when more than `count` positional arguments, or a keyword outside `keywords`, was given.
    func check(maxPositional count: Int, keywords: Set<String> = []) throws(TemplateError) {
        if positional.count > count {
            throw TemplateError(.runtime, "\(name)() takes at most \(count) positional argument(s), got \(positional.count)")
        }
        for (key, _) in keyword where !keywords.contains(key) {
            throw TemplateError(.runtime, "\(name)() got an unexpected keyword argument '\(key)'")
        }
    }
}
