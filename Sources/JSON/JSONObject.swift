/// A JSON object: string keys in insertion order, with O(1) lookup.
///
/// Setting an existing key replaces its value in place (the key keeps its first position), which
/// gives the parser Python's "last duplicate wins" behaviour. Equality ignores member order.
public struct JSONObject: Sendable, Equatable {
    /// Member keys in insertion order.
    public private(set) var keys: [String] = []
    /// Member values, parallel to `keys`.
    public private(set) var values: [JSONValue] = []
    private var positions: [String: Int] = [:]

    public init() {}

    /// Builds an object from ordered members; a repeated key keeps its last value.
    public init(_ members: [(String, JSONValue)]) {
        for (key, value) in members { self[key] = value }
    }

    /// The number of distinct keys.
    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    /// Members in insertion order.
    public var members: [(key: String, value: JSONValue)] {
        (0..<keys.count).map { (keys[$0], values[$0]) }
    }

    public subscript(key: String) -> JSONValue? {
        get { positions[key].map { values[$0] } }
        set {
            if let position = positions[key] {
                if let newValue {
                    values[position] = newValue
                } else {
                    keys.remove(at: position)
                    values.remove(at: position)
                    positions[key] = nil
                    for i in position..<keys.count { positions[keys[i]] = i }
                }
            } else if let newValue {
                positions[key] = keys.count
                keys.append(key)
                values.append(newValue)
            }
        }
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for (i, key) in lhs.keys.enumerated() {
            guard let other = rhs[key], other == lhs.values[i] else { return false }
        }
        return true
    }
}
