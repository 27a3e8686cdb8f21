import JSON

/// One entry of `GET /v1/models`: the base model or an adapter.
public struct ModelInfo: Sendable, Equatable {
    public var id: String
    /// Unix time in seconds when the model or adapter was loaded.
    public var created: Int64
    public var ownedBy: String
    /// For an adapter, the base model it applies to (vLLM's `parent` field).
    public var parent: String?

    public init(id: String, created: Int64, ownedBy: String = "loraserve", parent: String? = nil) {
        self.id = id
        self.created = created
        self.ownedBy = ownedBy
        self.parent = parent
    }

    /// `{"id", "object": "model", "created", "owned_by"}` plus `"parent"` for adapters.
    public var json: JSONValue {
        var object = JSONObject([
            ("id", .string(id)), ("object", "model"), ("created", .int(created)), ("owned_by", .string(ownedBy)),
        ])
        if let parent { object["parent"] = .string(parent) }
        return .object(object)
    }

    /// The list object: `{"object": "list", "data": [...]}`.
    public static func listJSON(_ models: [ModelInfo]) -> JSONValue {
        ["object": "list", "data": .array(models.map(\.json))]
    }
}
