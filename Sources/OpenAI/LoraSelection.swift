import JSON

/// One adapter to apply to a request, from our extension field
/// `"lora": [{"name": "sql", "scale": 0.8}, …]` (`scale` defaults to 1).
public struct LoraSelection: Sendable, Equatable {
    /// The adapter's registered name.
    public var name: String
    /// Multiplier on the adapter's delta; finite, in -10…10.
    public var scale: Double

    public init(name: String, scale: Double = 1) {
        self.name = name
        self.scale = scale
    }

    /// Most adapters one request may stack.
    public static let maxPerRequest = 8

    /// Reads the optional top-level `lora` field: an array of selections with distinct names.
    static func read(_ reader: FieldReader) throws(OpenAIError) -> [LoraSelection] {
        guard let value = reader.value("lora") else { return [] }
        guard case .array(let elements) = value else { throw typeError("lora", expected: "an array", got: value) }
        guard elements.count <= maxPerRequest else {
            throw .invalidRequest("Invalid 'lora': at most \(maxPerRequest) adapters per request, but got \(elements.count).", param: "lora")
        }
        var selections: [LoraSelection] = []
        for (i, element) in elements.enumerated() {
            let entry = try FieldReader(element, path: "lora[\(i)]")
            try entry.rejectUnknown(["name", "scale"])
            let name = try entry.requiredString("name")
            guard !name.isEmpty else {
                throw .invalidRequest("Invalid 'lora[\(i)].name': must not be empty.", param: "lora[\(i)].name")
            }
            guard !selections.contains(where: { $0.name == name }) else {
                throw .invalidRequest("Invalid 'lora[\(i)].name': adapter '\(name)' is listed twice.", param: "lora[\(i)].name")
            }
            let scale = try entry.number("scale", in: -10...10) ?? 1
            selections.append(LoraSelection(name: name, scale: scale))
        }
        return selections
    }
}
