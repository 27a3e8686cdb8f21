import JSON

/// Reads typed fields from one JSON object of a request, turning every mismatch into a 400 that
/// names the parameter by its path ("temperature", "messages[2].content", "lora[0].scale").
///
/// A field that is absent and a field that is `null` read the same: as "not given".
struct FieldReader {
    let object: JSONObject
    /// Path of this object inside the request, "" for the top level.
    let path: String

    /// Reads `value` as an object, or throws naming `path`.
    init(_ value: JSONValue, path: String) throws(OpenAIError) {
        guard case .object(let object) = value else {
            throw path.isEmpty
                ? .invalidRequest("The request body must be a JSON object, but got \(article(value.typeName)).")
                : typeError(path, expected: "an object", got: value)
        }
        self.object = object
        self.path = path
    }

    func param(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

    /// The value of `name`, nil when absent or null.
    func value(_ name: String) -> JSONValue? {
        guard let value = object[name], !value.isNull else { return nil }
        return value
    }

    /// Rejects any key outside `allowed`, naming the first one found.
    func rejectUnknown(_ allowed: Set<String>) throws(OpenAIError) {
        for key in object.keys where !allowed.contains(key) {
            throw path.isEmpty
                ? .invalidRequest("Unrecognized request argument supplied: \(key)", param: key)
                : .invalidRequest("Unrecognized field '\(key)' in '\(path)'.", param: param(key))
        }
    }

    func requiredValue(_ name: String) throws(OpenAIError) -> JSONValue {
        guard let value = value(name) else {
            throw .invalidRequest("Missing required parameter: '\(param(name))'.", param: param(name))
        }
        return value
    }

    func string(_ name: String) throws(OpenAIError) -> String? {
        guard let value = value(name) else { return nil }
        guard case .string(let s) = value else { throw typeError(param(name), expected: "a string", got: value) }
        return s
    }

    func requiredString(_ name: String) throws(OpenAIError) -> String {
        let value = try requiredValue(name)
        guard case .string(let s) = value else { throw typeError(param(name), expected: "a string", got: value) }
        return s
    }

    func bool(_ name: String) throws(OpenAIError) -> Bool? {
        guard let value = value(name) else { return nil }
        guard case .bool(let b) = value else { throw typeError(param(name), expected: "a boolean", got: value) }
        return b
    }

    /// An integer (integral numbers such as `3.0` count) within `range`.
    func integer(_ name: String, in range: ClosedRange<Int64>) throws(OpenAIError) -> Int64? {
        guard let value = value(name) else { return nil }
        return try readInteger(value, param: param(name), in: range)
    }

    /// A number within `range`; `exclusiveLowerBound` makes the lower end open.
    func number(_ name: String, in range: ClosedRange<Double>, exclusiveLowerBound: Bool = false) throws(OpenAIError) -> Double? {
        guard let value = value(name) else { return nil }
        return try readNumber(value, param: param(name), in: range, exclusiveLowerBound: exclusiveLowerBound)
    }
}

// MARK: - Shared helpers

func readInteger(_ value: JSONValue, param: String, in range: ClosedRange<Int64>) throws(OpenAIError) -> Int64 {
    guard let i = value.int64Value else {
        throw typeError(param, expected: "an integer", got: value)
    }
    guard range.contains(i) else { throw rangeError(param, range: describe(range), got: String(i)) }
    return i
}

func readNumber(_ value: JSONValue, param: String, in range: ClosedRange<Double>, exclusiveLowerBound: Bool = false) throws(OpenAIError) -> Double {
    guard let d = value.doubleValue else { throw typeError(param, expected: "a number", got: value) }
    let aboveLower = exclusiveLowerBound ? d > range.lowerBound : d >= range.lowerBound
    guard aboveLower, d <= range.upperBound else {
        let lower = exclusiveLowerBound ? "greater than \(format(range.lowerBound))" : "at least \(format(range.lowerBound))"
        let bounds = range.upperBound == .infinity ? lower : "\(lower) and at most \(format(range.upperBound))"
        throw rangeError(param, range: bounds, got: value.jsonString)
    }
    return d
}

func typeError(_ param: String, expected: String, got value: JSONValue) -> OpenAIError {
    .invalidRequest("Invalid type for '\(param)': expected \(expected), but got \(article(value.typeName)) instead.", param: param)
}

func rangeError(_ param: String, range: String, got: String) -> OpenAIError {
    .invalidRequest("Invalid value for '\(param)': expected a value \(range), but got \(got) instead.", param: param)
}

private func describe(_ range: ClosedRange<Int64>) -> String {
    if range.upperBound == .max { return "of at least \(range.lowerBound)" }
    return "between \(range.lowerBound) and \(range.upperBound)"
}

private func format(_ d: Double) -> String {
    d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
}

private func article(_ typeName: String) -> String {
    switch typeName {
    case "null": return "null"
    case "array", "object", "integer": return "an \(typeName)"
    default: return "a \(typeName)"
    }
}
