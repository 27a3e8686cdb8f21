import Foundation

/// A value seen by a template: the variables a caller passes in and everything expressions produce.
///
/// The cases mirror the Python types Jinja works with. Strings are indexed, sliced and counted by
/// Unicode scalar (Python code point), not by Swift `Character`.
public indirect enum Value: Sendable {
    /// A missing variable, key or attribute (Jinja's default `Undefined`): prints as "", iterates as empty.
    case undefined
    /// Python `None`.
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    /// A Python list (tuples are lists here too).
    case array([Value])
    /// A Python dict with string keys, in insertion order.
    case object(ObjectValue)
    /// A `namespace()` object: attributes assignable across loop iterations.
    case namespace(Namespace)
    /// A macro, a built-in global function, or a bound method; only the interpreter can create these.
    case function(Function)
    /// The `loop` variable inside a `for` body; its attributes are computed when read.
    case loop(LoopContext)
}

/// The state behind `loop.index`, `loop.first`, …: the items of the loop and the current position.
/// Built once per iteration without copying the items (the array is shared).
public struct LoopContext: Sendable {
    let items: [Value]
    let index: Int

    func attribute(_ name: String) -> Value {
        let length = items.count
        switch name {
        case "index": return .int(index + 1)
        case "index0": return .int(index)
        case "revindex": return .int(length - index)
        case "revindex0": return .int(length - index - 1)
        case "first": return .bool(index == 0)
        case "last": return .bool(index == length - 1)
        case "length": return .int(length)
        case "depth": return .int(1)
        case "depth0": return .int(0)
        case "previtem": return index > 0 ? items[index - 1] : .undefined
        case "nextitem": return index + 1 < length ? items[index + 1] : .undefined
        default: return .undefined
        }
    }
}

// MARK: - Ordered dictionary

/// A dictionary with string keys that remembers insertion order, as Python dicts do.
public struct ObjectValue: Sendable, Equatable {
    public private(set) var keys: [String] = []
    private var storage: [String: Value] = [:]

    public init() {}

    /// Builds a dictionary from key-value pairs in order; a repeated key keeps its first position and its last value.
    public init(_ pairs: [(String, Value)]) {
        for (key, value) in pairs { self[key] = value }
    }

    public subscript(key: String) -> Value? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    /// The entries in insertion order.
    public var pairs: [(key: String, value: Value)] {
        keys.map { ($0, storage[$0] ?? .undefined) }
    }

    public var values: [Value] { keys.map { storage[$0] ?? .undefined } }

    public static func == (lhs: ObjectValue, rhs: ObjectValue) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for (key, value) in lhs.pairs {
            guard let other = rhs.storage[key], value == other else { return false }
        }
        return true
    }
}

// MARK: - Reference types

/// The storage of a `namespace(...)` object. Jinja namespaces are shared by reference: a `set ns.x`
/// inside a loop is seen after it.
///
/// `@unchecked Sendable` is sound because every access goes through `lock`; in practice a namespace
/// is created and used by one `render` call on one thread and never outlives it.
public final class Namespace: @unchecked Sendable {
    private let lock = NSLock()
    private var fields: ObjectValue

    init(_ fields: ObjectValue) { self.fields = fields }

    var snapshot: ObjectValue { lock.withLock { fields } }

    subscript(key: String) -> Value? {
        get { lock.withLock { fields[key] } }
        set { lock.withLock { fields[key] = newValue } }
    }
}

/// An opaque callable value: a template macro, a global function such as `range`, or a method bound
/// to its receiver (`"a,b".split`). Created by the interpreter only.
public struct Function: Sendable {
    enum Kind: Sendable {
        case macro(Macro)
        case builtin(String)
        case method(receiver: Value, name: String)
    }

    let kind: Kind

    var name: String {
        switch kind {
        case .macro(let macro): macro.name
        case .builtin(let name): name
        case .method(_, let name): name
        }
    }
}

// MARK: - Equality

extension Value: Equatable {
    /// Python equality: `1 == 1.0` and `True == 1` hold; lists and dicts compare element-wise.
    public static func == (lhs: Value, rhs: Value) -> Bool {
        switch (lhs, rhs) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let a), .string(let b)): return a.utf8.elementsEqual(b.utf8)
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)): return a == b
        case (.namespace(let a), .namespace(let b)): return a === b
        case (.function, .function): return false
        default:
            if let a = lhs.numeric, let b = rhs.numeric {
                switch (a, b) {
                case (.int(let x), .int(let y)): return x == y
                default: return a.asDouble == b.asDouble
                }
            }
            return false
        }
    }
}

// MARK: - Conversions from Swift

extension Value: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: Value...) { self = .array(elements) }
    /// Dictionary literals keep their written order.
    public init(dictionaryLiteral elements: (String, Value)...) { self = .object(ObjectValue(elements)) }
    public init(nilLiteral: ()) { self = .none }
}

// MARK: - Python-like behaviour

extension Value {
    /// Python truthiness; undefined is false.
    public var isTruthy: Bool {
        switch self {
        case .undefined, .none: false
        case .bool(let b): b
        case .int(let i): i != 0
        case .double(let d): d != 0
        case .string(let s): !s.isEmpty
        case .array(let a): !a.isEmpty
        case .object(let o): !o.isEmpty
        case .namespace, .function, .loop: true
        }
    }

    var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    /// Numbers as Python sees them: bools count as the integers 0 and 1.
    var numeric: Value? {
        switch self {
        case .int, .double: self
        case .bool(let b): .int(b ? 1 : 0)
        default: nil
        }
    }

    var asDouble: Double? {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        case .bool(let b): b ? 1 : 0
        default: nil
        }
    }

    /// The Python type name, for error messages.
    var typeName: String {
        switch self {
        case .undefined: "undefined"
        case .none: "NoneType"
        case .bool: "bool"
        case .int: "int"
        case .double: "float"
        case .string: "str"
        case .array: "list"
        case .object: "dict"
        case .namespace: "Namespace"
        case .function: "function"
        case .loop: "LoopContext"
        }
    }

    /// Python `str()`: what `{{ value }}` prints.
    public var renderedString: String {
        switch self {
        case .undefined: ""
        case .string(let s): s
        default: pythonRepr
        }
    }

    /// Python `repr()`: how values print inside lists and dicts.
    public var pythonRepr: String {
        switch self {
        case .undefined: "Undefined"
        case .none: "None"
        case .bool(let b): b ? "True" : "False"
        case .int(let i): String(i)
        case .double(let d): Value.formatDouble(d)
        case .string(let s): Value.reprString(s)
        case .array(let a): "[" + a.map(\.pythonRepr).joined(separator: ", ") + "]"
        case .object(let o):
            "{" + o.pairs.map { Value.reprString($0.key) + ": " + $0.value.pythonRepr }.joined(separator: ", ") + "}"
        case .namespace(let ns):
            "<Namespace {" + ns.snapshot.pairs.map { Value.reprString($0.key) + ": " + $0.value.pythonRepr }
                .joined(separator: ", ") + "}>"
        case .function(let f): "<function \(f.name)>"
        case .loop(let l): "<LoopContext \(l.index + 1)/\(l.items.count)>"
        }
    }

    /// Python float repr: shortest round-trip digits, `1.0` for integral values, `1e+16` past 16 digits.
    static func formatDouble(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        // Swift's description already uses shortest round-trip digits and Python's exponent thresholds.
        return d.description
    }

    /// Python string repr: single quotes unless the text holds a single quote and no double quote.
    static func reprString(_ s: String) -> String {
        let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if Character(scalar) == quote {
                    out += "\\" + String(quote)
                } else if scalar.value < 0x20 || scalar.value == 0x7f {
                    out += String(format: "\\x%02x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out.append(quote)
        return out
    }
}
