/// A JSON document as a value.
///
/// Numbers keep their integer-ness: a literal without fraction or exponent that fits in `Int64`
/// parses as `.int`, everything else as `.number`. Equality compares numbers by value across the
/// two cases (`.int(2) == .number(2.0)`), and objects by their members regardless of order.
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

extension JSONValue: Equatable {
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.number(a), .number(b)): return a == b
        case let (.int(a), .number(b)), let (.number(b), .int(a)): return Double(exactly: a).map { $0 == b } ?? false
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)): return a == b
        default: return false
        }
    }
}

// MARK: - Literals (for building responses)

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// Members keep the literal's order; a repeated key keeps its first position and its last value.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        var object = JSONObject()
        for (key, value) in elements { object[key] = value }
        self = .object(object)
    }
}

extension JSONValue {
    /// `.int` for any `BinaryInteger` that fits in `Int64`, otherwise `.number`.
    public init(_ value: some BinaryInteger) {
        if let exact = Int64(exactly: value) { self = .int(exact) } else { self = .number(Double(value)) }
    }

    /// `.string(value)`, or `.null` when `value` is nil.
    public init(_ value: String?) { self = value.map(JSONValue.string) ?? .null }
}
