import JSON

/// One message of a chat request, reduced to what a chat template needs.
///
/// `content` may be a string or a list of `{"type": "text", "text": …}` parts; parts are joined
/// with "\n" (as vLLM does). Other part types (images, audio) are rejected. Assistant messages may
/// have `null` content, read as "". The role "developer" (OpenAI's newer name) is read as system.
public struct ChatMessage: Sendable, Equatable {
    public enum Role: String, Sendable, Equatable, CaseIterable {
        case system, user, assistant, tool
    }

    public var role: Role
    public var content: String
    /// The optional participant name.
    public var name: String?
    /// For `tool` messages, the call this message answers.
    public var toolCallID: String?

    public init(role: Role, content: String, name: String? = nil, toolCallID: String? = nil) {
        self.role = role
        self.content = content
        self.name = name
        self.toolCallID = toolCallID
    }

    /// Fields accepted in a message object; anything else is rejected.
    static let fieldNames: Set<String> = ["role", "content", "name", "tool_call_id", "tool_calls", "refusal"]

    /// Reads `messages[index]`.
    static func read(_ value: JSONValue, index: Int) throws(OpenAIError) -> ChatMessage {
        let path = "messages[\(index)]"
        let reader = try FieldReader(value, path: path)
        try reader.rejectUnknown(fieldNames)
        let roleName = try reader.requiredString("role")
        let role: Role
        switch roleName {
        case "developer": role = .system
        default:
            guard let known = Role(rawValue: roleName) else {
                throw .invalidRequest(
                    "Invalid value for '\(path).role': expected one of 'system', 'developer', 'user', 'assistant', 'tool', but got '\(roleName)'.",
                    param: "\(path).role")
            }
            role = known
        }
        if let calls = reader.value("tool_calls"), calls.arrayValue?.isEmpty != true {
            throw .invalidRequest("'\(path).tool_calls' is not supported by this server.", param: "\(path).tool_calls")
        }
        let content: String
        if let value = reader.value("content") {
            content = try readContent(value, param: "\(path).content")
        } else if role == .assistant {
            content = ""
        } else {
            throw .invalidRequest("Missing required parameter: '\(path).content'.", param: "\(path).content")
        }
        let toolCallID = try reader.string("tool_call_id")
        if toolCallID != nil, role != .tool {
            throw .invalidRequest("'\(path).tool_call_id' is only allowed on messages with role 'tool'.", param: "\(path).tool_call_id")
        }
        return ChatMessage(role: role, content: content, name: try reader.string("name"), toolCallID: toolCallID)
    }

    private static func readContent(_ value: JSONValue, param: String) throws(OpenAIError) -> String {
        switch value {
        case .string(let s):
            return s
        case .array(let parts):
            var texts: [String] = []
            for (i, part) in parts.enumerated() {
                let reader = try FieldReader(part, path: "\(param)[\(i)]")
                let type = try reader.requiredString("type")
                guard type == "text" else {
                    throw .invalidRequest("Invalid value for '\(param)[\(i)].type': only 'text' content parts are supported, but got '\(type)'.",
                                          param: "\(param)[\(i)].type")
                }
                try reader.rejectUnknown(["type", "text"])
                texts.append(try reader.requiredString("text"))
            }
            return texts.joined(separator: "\n")
        default:
            throw typeError(param, expected: "a string or an array of content parts", got: value)
        }
    }
}
